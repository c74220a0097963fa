//! `/metrics` through HTTP: every metric of api.md, exact domain counters, bounded labels, and the
//! optional separate listener.

mod common;

use std::time::Duration;

use common::{get, hold_worker, post_json, router_with, test_config};
use prefeval::config::Config;
use prefeval::{AppState, Listeners, serve_until};
use serde_json::{Value, json};

/// The value of the sample `series` (name plus its exact label set as exported), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

async fn scrape(router: &axum::Router) -> String {
    let answer = get(router, "/metrics").await;
    assert_eq!(answer.status, 200);
    assert!(answer.headers["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    String::from_utf8(answer.body).unwrap()
}

fn list(rewards: &[f64]) -> Value {
    json!({"items": rewards.iter().map(|r| json!({"reward": r})).collect::<Vec<_>>()})
}

#[tokio::test]
async fn every_documented_metric_is_exported_from_start_up() {
    let (router, _) = router_with(&test_config());
    let text = scrape(&router).await;
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

    post_json(&router, &json!({"lists": [list(&[1.0, 0.0])]})).await;
    let text = scrape(&router).await;
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
    let (router, _) = router_with(&test_config());
    // List 1: 4 items in rank order, rewards ordered 3 of 6 pairs correctly plus one tie (½).
    // List 2: 3 items, ranks with a tie: 2 pairs, both agreeing.
    let body = json!({
        "model": "rm-a",
        "lists": [
            list(&[2.0, 2.0, 0.0, 5.0]),
            {"items": [{"reward": 1.0, "rank": 1}, {"reward": 3.0, "rank": 1}, {"reward": -1.0, "rank": 2}]}
        ]
    });
    let answer = post_json(&router, &body).await;
    assert_eq!(answer.status, 200);
    let response = answer.json();
    // 6 + 2 pairs; agreeing: list 1 has (0,1) tie ½, (0,2) 1, (0,3) 0, (1,2) 1, (1,3) 0, (2,3) 0 = 2.5.
    assert_eq!(response["summary"]["pairs"], 8);
    let text = scrape(&router).await;
    assert_eq!(sample(&text, r#"prefeval_lists_evaluated_total{model="rm-a"}"#), Some(2.0));
    assert_eq!(sample(&text, r#"prefeval_pairs_evaluated_total{model="rm-a"}"#), Some(8.0));
    assert_eq!(sample(&text, r#"prefeval_pairs_agreeing_total{model="rm-a"}"#), Some(4.5));
    assert_eq!(sample(&text, r#"prefeval_list_loss_count{model="rm-a"}"#), Some(2.0));
    let accuracy = response["summary"]["accuracy"].as_f64().unwrap();
    assert_eq!(accuracy, 4.5 / 8.0, "accuracy = agreeing / evaluated, as the counters say");

    // A second request adds exactly its own counts.
    post_json(&router, &json!({"model": "rm-a", "lists": [list(&[0.0, 1.0])]})).await;
    let text = scrape(&router).await;
    assert_eq!(sample(&text, r#"prefeval_lists_evaluated_total{model="rm-a"}"#), Some(3.0));
    assert_eq!(sample(&text, r#"prefeval_pairs_evaluated_total{model="rm-a"}"#), Some(9.0));
    assert_eq!(sample(&text, r#"prefeval_pairs_agreeing_total{model="rm-a"}"#), Some(4.5));
}

#[tokio::test]
async fn model_labels_are_bounded_and_missing_models_are_unspecified() {
    let (router, _) = router_with(&Config { max_model_labels: 2, ..test_config() });
    for model in ["m1", "m2", "m3", "m4"] {
        assert_eq!(post_json(&router, &json!({"model": model, "lists": [list(&[1.0, 0.0])]})).await.status, 200);
    }
    post_json(&router, &json!({"lists": [list(&[1.0, 0.0])]})).await;
    let text = scrape(&router).await;
    assert_eq!(sample(&text, r#"prefeval_lists_evaluated_total{model="m1"}"#), Some(1.0));
    assert_eq!(sample(&text, r#"prefeval_lists_evaluated_total{model="m2"}"#), Some(1.0));
    assert_eq!(sample(&text, r#"prefeval_lists_evaluated_total{model="m3"}"#), None);
    assert_eq!(sample(&text, r#"prefeval_lists_evaluated_total{model="other"}"#), Some(2.0));
    assert_eq!(sample(&text, r#"prefeval_lists_evaluated_total{model="unspecified"}"#), Some(1.0));
}

#[tokio::test]
async fn http_metrics_use_the_route_template_and_count_rejections() {
    let config = Config { workers: Some(1), queue_depth: 0, ..test_config() };
    let (router, state) = router_with(&config);
    get(&router, "/no/such/path/12345").await;
    get(&router, "/healthz").await;
    // queue_depth 0 and a busy worker: the next request is shed.
    let held = hold_worker(&state);
    assert_eq!(post_json(&router, &json!({"lists": [list(&[1.0, 0.0])]})).await.status, 503);
    let text = scrape(&router).await;
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
    let (router, _) = router_with(&test_config());
    let answer = post_json(&router, &json!({"lists": [list(&[1.0, 0.0])]})).await;
    for header in ["x-queue-time-ms", "x-compute-time-ms"] {
        let value: f64 = answer.headers[header].to_str().unwrap().parse().unwrap();
        assert!(value >= 0.0, "{header}: {value}");
    }
    let text = scrape(&router).await;
    assert_eq!(sample(&text, "prefeval_queue_wait_seconds_count"), Some(1.0));
    assert_eq!(sample(&text, "prefeval_compute_seconds_count"), Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_listen_moves_metrics_to_their_own_listener() {
    let main = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (main_addr, metrics_addr) = (main.local_addr().unwrap(), metrics.local_addr().unwrap());
    let config = Config { metrics_listen: Some(metrics_addr), ..test_config() };
    let state = AppState::new(&config).unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server =
        tokio::spawn(serve_until(Listeners { main, metrics: Some(metrics) }, state, Duration::from_secs(5), async {
            let _ = stop_rx.await;
        }));
    let fetch = |addr: std::net::SocketAddr, path: &'static str| {
        tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut stream = std::net::TcpStream::connect(addr).unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
            let mut response = String::new();
            stream.read_to_string(&mut response).unwrap();
            response
        })
    };
    let on_metrics = fetch(metrics_addr, "/metrics").await.unwrap();
    assert!(on_metrics.starts_with("HTTP/1.1 200"), "{on_metrics}");
    assert!(on_metrics.contains("prefeval_build_info"));
    let on_main = fetch(main_addr, "/metrics").await.unwrap();
    assert!(on_main.starts_with("HTTP/1.1 404"), "metrics are off the main listener: {on_main}");
    let health = fetch(main_addr, "/healthz").await.unwrap();
    assert!(health.starts_with("HTTP/1.1 200"));
    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server).await.unwrap().unwrap();
}
