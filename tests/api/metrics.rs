//! `/metrics` through HTTP: every metric of api.md, exact domain counters, bounded labels, and the
//! optional separate listener.

use std::time::Duration;

use crate::helpers::{Raw, TestApp, hold_worker};
use serde_json::{Value, json};

/// The value of the sample `series` (name plus its exact label set as exported), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

async fn scrape(app: &TestApp) -> String {
    let answer = app.metrics().await;
    assert_eq!(answer.status, 200);
    assert!(answer.headers["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    String::from_utf8(answer.body).unwrap()
}

fn list(rewards: &[f64]) -> Value {
    json!({"items": rewards.iter().map(|r| json!({"reward": r})).collect::<Vec<_>>()})
}

#[tokio::test]
async fn every_documented_metric_is_exported_from_start_up() {
    let app = TestApp::spawn().await;
    let text = scrape(&app).await;
    for name in [
        "prefeval_worker_queue_depth",
        "prefeval_worker_busy",
        "prefeval_requests_rejected_total",
        "prefeval_build_info",
        "prefeval_queue_wait_seconds",
        "prefeval_compute_seconds",
    ] {
        assert!(text.contains(&format!("# TYPE {name} ")), "{name} missing from:\n{text}");
    }
    assert_eq!(sample(&text, r#"prefeval_requests_rejected_total{reason="queue_full"}"#), Some(0.0));
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(sample(&text, &format!(r#"prefeval_build_info{{version="{version}"}}"#)), Some(1.0));

    app.evaluate(&json!({"lists": [list(&[1.0, 0.0])]})).await;
    let text = scrape(&app).await;
    for name in [
        "prefeval_http_requests_total",
        "prefeval_http_request_duration_seconds",
        "prefeval_lists_evaluated_total",
        "prefeval_pairs_evaluated_total",
        "prefeval_pairs_agreeing_total",
        "prefeval_list_loss",
    ] {
        assert!(text.contains(&format!("# TYPE {name} ")), "{name} missing from:\n{text}");
    }
}

#[tokio::test]
async fn domain_counters_rise_by_exactly_the_request_counts() {
    let app = TestApp::spawn().await;
    // List 1: 4 items in rank order, rewards ordered 3 of 6 pairs correctly plus one tie (½).
    // List 2: 3 items, ranks with a tie: 2 pairs, both agreeing.
    let body = json!({
        "model": "rm-a",
        "lists": [
            list(&[2.0, 2.0, 0.0, 5.0]),
            {"items": [{"reward": 1.0, "rank": 1}, {"reward": 3.0, "rank": 1}, {"reward": -1.0, "rank": 2}]}
        ]
    });
    let answer = app.evaluate(&body).await;
    assert_eq!(answer.status, 200);
    let response = answer.json();
    // 6 + 2 pairs; agreeing: list 1 has (0,1) tie ½, (0,2) 1, (0,3) 0, (1,2) 1, (1,3) 0, (2,3) 0 = 2.5.
    assert_eq!(response["summary"]["pairs"], 8);
    let text = scrape(&app).await;
    assert_eq!(sample(&text, r#"prefeval_lists_evaluated_total{model="rm-a"}"#), Some(2.0));
    assert_eq!(sample(&text, r#"prefeval_pairs_evaluated_total{model="rm-a"}"#), Some(8.0));
    assert_eq!(sample(&text, r#"prefeval_pairs_agreeing_total{model="rm-a"}"#), Some(4.5));
    assert_eq!(sample(&text, r#"prefeval_list_loss_count{model="rm-a"}"#), Some(2.0));
    let accuracy = response["summary"]["accuracy"].as_f64().unwrap();
    assert_eq!(accuracy, 4.5 / 8.0, "accuracy = agreeing / evaluated, as the counters say");

    // A second request adds exactly its own counts.
    app.evaluate(&json!({"model": "rm-a", "lists": [list(&[0.0, 1.0])]})).await;
    let text = scrape(&app).await;
    assert_eq!(sample(&text, r#"prefeval_lists_evaluated_total{model="rm-a"}"#), Some(3.0));
    assert_eq!(sample(&text, r#"prefeval_pairs_evaluated_total{model="rm-a"}"#), Some(9.0));
    assert_eq!(sample(&text, r#"prefeval_pairs_agreeing_total{model="rm-a"}"#), Some(4.5));
}

#[tokio::test]
async fn model_labels_are_bounded_and_missing_models_are_unspecified() {
    let app = TestApp::builder().max_model_labels(2).build().await;
    for model in ["m1", "m2", "m3", "m4"] {
        assert_eq!(app.evaluate(&json!({"model": model, "lists": [list(&[1.0, 0.0])]})).await.status, 200);
    }
    app.evaluate(&json!({"lists": [list(&[1.0, 0.0])]})).await;
    let text = scrape(&app).await;
    assert_eq!(sample(&text, r#"prefeval_lists_evaluated_total{model="m1"}"#), Some(1.0));
    assert_eq!(sample(&text, r#"prefeval_lists_evaluated_total{model="m2"}"#), Some(1.0));
    assert_eq!(sample(&text, r#"prefeval_lists_evaluated_total{model="m3"}"#), None);
    assert_eq!(sample(&text, r#"prefeval_lists_evaluated_total{model="other"}"#), Some(2.0));
    assert_eq!(sample(&text, r#"prefeval_lists_evaluated_total{model="unspecified"}"#), Some(1.0));
}

#[tokio::test]
async fn http_metrics_use_the_route_template_and_count_rejections() {
    let app = TestApp::builder().workers(1).queue_depth(0).build().await;
    app.get("/no/such/path/12345").await;
    app.get("/healthz").await;
    // queue_depth 0 and a busy worker: the next request is shed.
    let held = hold_worker(&app.state);
    assert_eq!(app.evaluate(&json!({"lists": [list(&[1.0, 0.0])]})).await.status, 503);
    let text = scrape(&app).await;
    held.release().await;

    assert_eq!(
        sample(&text, r#"prefeval_http_requests_total{method="GET",route="unmatched",status="404"}"#),
        Some(1.0)
    );
    assert_eq!(sample(&text, r#"prefeval_http_requests_total{method="GET",route="/healthz",status="200"}"#), Some(1.0));
    assert_eq!(
        sample(&text, r#"prefeval_http_requests_total{method="POST",route="/v1/evaluate",status="503"}"#),
        Some(1.0)
    );
    assert_eq!(sample(&text, r#"prefeval_requests_rejected_total{reason="queue_full"}"#), Some(1.0));
    assert_eq!(sample(&text, "prefeval_worker_busy"), Some(1.0));
    assert!(!text.contains("12345"), "raw paths never become labels");
}

#[tokio::test]
async fn evaluate_answers_say_where_the_time_went() {
    let app = TestApp::spawn().await;
    let answer = app.evaluate(&json!({"lists": [list(&[1.0, 0.0])]})).await;
    for header in ["x-queue-time-ms", "x-compute-time-ms"] {
        let value: f64 = answer.headers[header].to_str().unwrap().parse().unwrap();
        assert!(value >= 0.0, "{header}: {value}");
    }
    let text = scrape(&app).await;
    assert_eq!(sample(&text, "prefeval_queue_wait_seconds_count"), Some(1.0));
    assert_eq!(sample(&text, "prefeval_compute_seconds_count"), Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_listen_moves_metrics_to_their_own_listener() {
    let app = TestApp::builder().metrics_listener().grace(Duration::from_secs(5)).build().await;
    let (main_addr, metrics_addr) = (app.addr, app.metrics_addr.unwrap());
    let fetch = |addr: std::net::SocketAddr, path: &'static str| {
        tokio::task::spawn_blocking(move || Raw::get(addr, path).unwrap())
    };
    let on_metrics = fetch(metrics_addr, "/metrics").await.unwrap();
    assert_eq!(on_metrics.status, 200, "{}", on_metrics.text());
    assert!(on_metrics.text().contains("prefeval_build_info"));
    let on_main = fetch(main_addr, "/metrics").await.unwrap();
    assert_eq!(on_main.status, 404, "metrics are off the main listener: {}", on_main.text());
    let health = fetch(main_addr, "/healthz").await.unwrap();
    assert_eq!(health.status, 200);
    tokio::time::timeout(Duration::from_secs(10), app.stop()).await.unwrap();
}
