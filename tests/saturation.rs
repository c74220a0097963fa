//! Admission control through HTTP: a full queue answers 503 at once with Retry-After and the JSON
//! error, and the service recovers when the queue drains.

mod common;

use common::{get, hold_worker, post_json, router_with, test_config};
use prefeval::config::Config;
use serde_json::json;

#[tokio::test]
async fn full_queue_answers_503_with_retry_after_then_recovers() {
    let config = Config { workers: Some(1), queue_depth: 1, ..test_config() };
    let (router, state) = router_with(&config);

    // Occupy the only worker, then the only queue slot.
    let held = hold_worker(&state);
    let queued = state.pool.submit(|_| ()).unwrap();

    let body = json!({"lists": [{"items": [{"reward": 1.0}, {"reward": 0.0}]}]});
    let refused = post_json(&router, &body).await;
    assert_eq!(refused.status, 503);
    assert_eq!(refused.error_code(), "queue_full");
    assert_eq!(refused.headers["retry-after"], "1", "no compute history yet: the floor");
    assert_eq!(refused.headers["content-type"], "application/json");
    // Liveness does no work and answers even while the pool is saturated.
    assert_eq!(get(&router, "/healthz").await.status, 200);

    held.release().await;
    queued.wait().await.unwrap();
    let accepted = post_json(&router, &body).await;
    assert_eq!(accepted.status, 200);
}

#[tokio::test]
async fn retry_after_reflects_the_queue_and_recent_compute_times() {
    let config = Config { workers: Some(1), queue_depth: 12, ..test_config() };
    let (router, state) = router_with(&config);
    // One heavy job (about 1 s of work) sets the recent compute time.
    state.pool.submit(|_| std::thread::sleep(std::time::Duration::from_secs(1))).unwrap().wait().await.unwrap();

    // Twelve more queue behind the one worker.
    let held = hold_worker(&state);
    let queued: Vec<_> = (0..12).map(|_| state.pool.submit(|_| ()).unwrap()).collect();
    let body = json!({"lists": [{"items": [{"reward": 1.0}, {"reward": 0.0}]}]});
    let refused = post_json(&router, &body).await;
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
    let config = Config { memory_limit_bytes: Some(1 << 20), ..test_config() };
    let (router, state) = router_with(&config);
    // Other requests in flight hold nearly all of the budget.
    let others = state.memory.reserve((1 << 20) - 1000).unwrap();

    let body = json!({"lists": [{"items": [{"reward": 1.0}, {"reward": 0.0}]}]});
    let refused = post_json(&router, &body).await;
    assert_eq!(refused.status, 503);
    assert_eq!(refused.error_code(), "memory_budget");
    assert!(refused.headers.contains_key("retry-after"));
    let metrics = String::from_utf8(get(&router, "/metrics").await.body).unwrap();
    assert!(metrics.contains("prefeval_requests_rejected_total{reason=\"memory_budget\"} 1"), "{metrics}");

    drop(others);
    assert_eq!(post_json(&router, &body).await.status, 200);
    assert_eq!(state.memory.reserved(), 0, "every reservation is released once the answer is sent");
}

#[tokio::test]
async fn a_batch_larger_than_the_whole_memory_budget_answers_413() {
    let config = Config { memory_limit_bytes: Some(64 * 1024), ..test_config() };
    let (router, _state) = router_with(&config);
    let items: Vec<_> = (0..2000).map(|i| json!({"reward": f64::from(i)})).collect();
    let answer = post_json(&router, &json!({"lists": [{"items": items}]})).await;
    assert_eq!(answer.status, 413);
    assert_eq!(answer.error_code(), "payload_too_large");
    assert!(answer.json()["error"]["message"].as_str().unwrap().contains("PREFEVAL_MEMORY_LIMIT_BYTES"));
}
