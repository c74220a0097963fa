//! Admission control through HTTP: a full queue answers 503 at once with Retry-After and the JSON
//! error, and the service recovers when the queue drains.

use crate::helpers::{TestApp, hold_worker};
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
