//! Draining through the serving loop (`serve_until`) on a real socket: readiness off as soon as
//! shutdown begins, in-flight requests finished, and the grace period that bounds the wait.

use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use crate::helpers::{Raw, TestApp, WORKED_EXAMPLE, hold_worker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_turns_readiness_off_and_finishes_in_flight_requests() {
    let app = Arc::new(TestApp::builder().workers(1).grace(Duration::from_secs(10)).build().await);
    let addr = app.addr;
    let server = app.serving_loop();

    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 200);

    // Hold the pool so that a request is provably in flight (admitted, waiting) when shutdown begins.
    let held = hold_worker(&app.state);
    let in_flight = tokio::spawn({
        let app = Arc::clone(&app);
        async move { app.evaluate(WORKED_EXAMPLE).await }
    });
    for _ in 0..500 {
        if app.state.pool.queued() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(app.state.pool.queued(), 1, "the request reached the pool");
    app.begin_stop();
    for _ in 0..500 {
        if !app.state.is_ready() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!app.state.is_ready(), "readiness turns off as soon as shutdown begins");
    held.release().await;

    let answer = in_flight.await.unwrap();
    assert_eq!(answer.status, 200, "the in-flight request completes: {}", answer.text());
    let done = tokio::time::timeout(Duration::from_secs(15), server).await.expect("server stops");
    done.unwrap();
    assert!(TcpStream::connect(addr).is_err(), "no new connections after shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_gives_up_on_requests_still_running_after_the_grace_period() {
    let app = TestApp::builder().workers(1).grace(Duration::from_secs(1)).build().await;
    let addr = app.addr;
    let server = app.serving_loop();
    // A request stuck behind a worker that never frees up within the grace period.
    let held = hold_worker(&app.state);
    let _stuck = tokio::task::spawn_blocking(move || {
        let mut raw = Raw::connect(addr);
        let head = format!(
            "POST /v1/evaluate HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{WORKED_EXAMPLE}",
            WORKED_EXAMPLE.len()
        );
        raw.write(head.as_bytes()).unwrap();
        let _ = raw.read_until_closed();
    });
    for _ in 0..500 {
        if app.state.pool.queued() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(app.state.pool.queued(), 1, "the request reached the pool");
    app.begin_stop();
    let stopped = tokio::time::timeout(Duration::from_secs(10), server).await;
    assert!(stopped.is_ok(), "serve_until returns once the 1 s grace period is over");
    held.release().await;
}
