//! Admission control through HTTP: a full queue answers 503 at once with Retry-After and the JSON
//! error, and the service recovers when the queue drains; probes still answer on the metrics
//! listener when the main listener's connections are all held.

use std::io::Read;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::helpers::{Raw, TestApp, hold_worker};
use serde_json::json;

#[tokio::test]
async fn full_queue_answers_503_with_retry_after_then_recovers() {
    let app = TestApp::builder().workers(1).queue_depth(1).build().await;

    // Occupy the only worker, then the only queue slot.
    let held = hold_worker(&app.state);
    let queued = app.state.pool.submit(|_| ()).unwrap();

    let body = json!({"lists": [{"items": [{"reward": 1.0}, {"reward": 0.0}]}]});
    let refused = app.evaluate(&body).await;
    assert_eq!(refused.status, 503);
    assert_eq!(refused.error_code(), "queue_full");
    assert_eq!(refused.headers["retry-after"], "1", "no compute history yet: the floor");
    assert_eq!(refused.headers["content-type"], "application/json");
    // Liveness does no work and answers even while the pool is saturated.
    assert_eq!(app.get("/healthz").await.status, 200);

    held.release().await;
    queued.wait().await.unwrap();
    let accepted = app.evaluate(&body).await;
    assert_eq!(accepted.status, 200);
}

#[tokio::test]
async fn retry_after_reflects_the_queue_and_recent_compute_times() {
    let app = TestApp::builder().workers(1).queue_depth(12).build().await;
    // One heavy job (about 1 s of work) sets the recent compute time.
    app.state.pool.submit(|_| std::thread::sleep(std::time::Duration::from_secs(1))).unwrap().wait().await.unwrap();

    // Twelve more queue behind the one worker.
    let held = hold_worker(&app.state);
    let queued: Vec<_> = (0..12).map(|_| app.state.pool.submit(|_| ()).unwrap()).collect();
    let body = json!({"lists": [{"items": [{"reward": 1.0}, {"reward": 0.0}]}]});
    let refused = app.evaluate(&body).await;
    assert_eq!(refused.status, 503);
    assert_eq!(refused.error_code(), "queue_full");
    let advised: u64 = refused.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(advised > 1, "13 jobs of about 1 s behind one worker, yet Retry-After is {advised}");

    held.release().await;
    for job in queued {
        job.wait().await.unwrap();
    }
}

#[tokio::test]
async fn a_request_the_memory_budget_cannot_cover_answers_503_memory_budget_then_recovers() {
    let app = TestApp::builder().memory_limit(1 << 20).build().await;
    // Other requests in flight hold nearly all of the budget.
    let others = app.state.memory.reserve((1 << 20) - 1000).unwrap();

    let body = json!({"lists": [{"items": [{"reward": 1.0}, {"reward": 0.0}]}]});
    let refused = app.evaluate(&body).await;
    assert_eq!(refused.status, 503);
    assert_eq!(refused.error_code(), "memory_budget");
    assert!(refused.headers.contains_key("retry-after"));
    let metrics = String::from_utf8(app.get("/metrics").await.body).unwrap();
    assert!(metrics.contains("prefeval_requests_rejected_total{reason=\"memory_budget\"} 1"), "{metrics}");

    drop(others);
    assert_eq!(app.evaluate(&body).await.status, 200);
    assert_eq!(app.state.memory.reserved(), 0, "every reservation is released once the answer is sent");
}

#[tokio::test]
async fn a_batch_larger_than_the_whole_memory_budget_answers_413() {
    let app = TestApp::builder().memory_limit(64 * 1024).build().await;
    let items: Vec<_> = (0..2000).map(|i| json!({"reward": f64::from(i)})).collect();
    let answer = app.evaluate(&json!({"lists": [{"items": items}]})).await;
    assert_eq!(answer.status, 413);
    assert_eq!(answer.error_code(), "payload_too_large");
    assert!(answer.json()["error"]["message"].as_str().unwrap().contains("PREFEVAL_MEMORY_LIMIT_BYTES"));
}

/// With every connection of the main listener held by a client that sent its headers and stalls
/// its body, the probes still answer on the metrics listener, whose connections are counted apart.
#[tokio::test]
async fn probes_answer_on_the_metrics_listener_while_the_main_one_is_full() {
    const MAX_CONNECTIONS: u32 = 4;
    let app =
        TestApp::builder().with(|config| config.max_connections = MAX_CONNECTIONS).metrics_listener().build().await;
    let (addr, admin) = (app.addr, app.metrics_addr.expect("a metrics listener"));

    // Complete headers announcing a large body, then a few bytes of it and silence: each request
    // is in flight, reading its body, so the header read timeout never closes the connection.
    let held: Vec<Raw> = tokio::task::spawn_blocking(move || {
        (0..MAX_CONNECTIONS)
            .map(|_| {
                let mut raw = Raw::connect(addr);
                let head = "POST /v1/evaluate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                            Content-Length: 1000000\r\n\r\n{\"lists\": [";
                raw.write(head.as_bytes()).expect("writes the head");
                raw
            })
            .collect()
    })
    .await
    .expect("the client thread");
    let started = Instant::now();
    while app.state.open_connections.load(Ordering::Relaxed) < MAX_CONNECTIONS as usize {
        assert!(started.elapsed() < Duration::from_secs(10), "the held connections were not all accepted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The main listener is full: a probe there waits in the kernel's backlog.
    let starved = tokio::task::spawn_blocking(move || {
        let mut raw = Raw::connect(addr);
        raw.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").expect("writes");
        raw.stream.set_read_timeout(Some(Duration::from_millis(500))).expect("read timeout");
        raw.stream.read(&mut [0u8; 64]).is_err()
    });
    assert!(starved.await.expect("the client thread"), "the main listener answered: it was not full");

    for path in ["/healthz", "/readyz"] {
        let started = Instant::now();
        let probe = tokio::task::spawn_blocking(move || Raw::get(admin, path));
        let answer = tokio::time::timeout(Duration::from_secs(5), probe)
            .await
            .unwrap_or_else(|_| panic!("{path} on the metrics listener timed out"))
            .expect("the client thread")
            .expect("an answer");
        assert_eq!(answer.status, 200, "{path}: {}", String::from_utf8_lossy(&answer.body));
        assert!(started.elapsed() < Duration::from_secs(2), "{path} took {:?}", started.elapsed());
    }
    drop(held);
}
