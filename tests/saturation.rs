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
    assert_eq!(refused.headers["retry-after"], "1");
    assert_eq!(refused.headers["content-type"], "application/json");
    // Liveness does no work and answers even while the pool is saturated.
    assert_eq!(get(&router, "/healthz").await.status, 200);

    held.release().await;
    queued.wait().await.unwrap();
    let accepted = post_json(&router, &body).await;
    assert_eq!(accepted.status, 200);
}
