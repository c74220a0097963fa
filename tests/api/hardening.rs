//! Faults and security through the user's path: tokens, CORS, panics, timeouts on a real socket,
//! and work skipped for clients that went away.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, header};
use axum::routing::get;
use prefeval::config::Config;
use prefeval::server::tokens::ApiTokens;
use prefeval::{AppState, app_with};
use serde_json::json;

use crate::helpers::{Raw, TestApp, hold_worker, oneshot};

fn evaluate_request(token: Option<&str>) -> Request<Body> {
    let mut request =
        Request::builder().method(Method::POST).uri("/v1/evaluate").header(header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    request.body(Body::from(r#"{"lists":[{"items":[{"reward":1},{"reward":0}]}]}"#)).unwrap()
}

#[tokio::test]
async fn api_tokens_guard_v1_routes_only() {
    let app = TestApp::builder().api_tokens("alpha,beta").build().await;

    let missing = app.send(evaluate_request(None)).await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.error_code(), "unauthorized");
    assert_eq!(missing.headers["www-authenticate"], r#"Bearer realm="prefeval""#);
    assert!(missing.json()["error"]["request_id"].is_string());

    let wrong = app.send(evaluate_request(Some("alphx"))).await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.headers["www-authenticate"].to_str().unwrap().contains("invalid_token"));
    assert!(!String::from_utf8_lossy(&wrong.body).contains("alph"), "tokens are never echoed");

    assert_eq!(app.send(evaluate_request(Some("beta"))).await.status, 200);
    for open in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(app.get(open).await.status, 200, "{open} stays open");
    }
}

#[tokio::test]
async fn api_tokens_file_is_read_and_a_missing_file_stops_start_up() {
    let path = std::env::temp_dir().join(format!("prefeval-tokens-{}", std::process::id()));
    std::fs::write(&path, "# tokens for the annotation tool\nfile-token\n").unwrap();
    let builder = TestApp::builder().api_tokens_file(&path);
    let config = builder.config().clone();
    let app = builder.build().await;
    assert_eq!(app.send(evaluate_request(Some("file-token"))).await.status, 200);
    assert_eq!(app.send(evaluate_request(None)).await.status, 401);
    std::fs::write(&path, "# no token here\n").unwrap();
    let with_flag_too = Config { api_tokens: Some(ApiTokens::parse("flag-token")), ..config.clone() };
    assert!(AppState::new(&with_flag_too).is_err(), "a token file without tokens is a start-up error");
    std::fs::remove_file(&path).unwrap();
    assert!(AppState::new(&config).is_err(), "an unreadable token file is a start-up error");
}

#[tokio::test]
async fn cors_is_off_by_default_and_follows_the_allow_list() {
    let preflight = |origin: &str| {
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/v1/evaluate")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type,authorization")
            .body(Body::empty())
            .unwrap()
    };
    let closed = TestApp::spawn().await;
    let answer = closed.send(preflight("https://label.example.com")).await;
    assert!(answer.headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());

    let open = TestApp::builder().cors_origins(&["https://label.example.com"]).build().await;
    let answer = open.send(preflight("https://label.example.com")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://label.example.com");
    let other = open.send(preflight("https://evil.example.net")).await;
    assert!(other.headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());

    // An OPTIONS that is no preflight is an ordinary request: 405 with the JSON error.
    let plain_options = Request::builder().method(Method::OPTIONS).uri("/v1/evaluate").body(Body::empty()).unwrap();
    let answer = open.send(plain_options).await;
    assert_eq!(answer.status, 405);
    assert_eq!(answer.error_code(), "method_not_allowed");
    assert!(answer.headers.contains_key("x-request-id"));

    let mut request = evaluate_request(None);
    request.headers_mut().insert(header::ORIGIN, "https://label.example.com".parse().unwrap());
    let answer = open.send(request).await;
    assert_eq!(answer.status, 200);
    let exposed = answer.headers[header::ACCESS_CONTROL_EXPOSE_HEADERS].to_str().unwrap().to_ascii_lowercase();
    assert!(exposed.contains("x-request-id") && exposed.contains("x-compute-time-ms"), "{exposed}");
}

#[tokio::test]
async fn a_panicking_handler_answers_500_json_with_the_request_id_and_serving_goes_on() {
    let state = AppState::new(TestApp::builder().config()).unwrap();
    async fn boom() -> &'static str {
        panic!("injected for the test")
    }
    let injected = Router::new().route("/injected-panic", get(boom));
    let router = app_with(state, injected);
    let request =
        Request::builder().uri("/injected-panic").header("x-request-id", "req-77").body(Body::empty()).unwrap();
    let answer = oneshot(&router, request).await;
    assert_eq!(answer.status, 500);
    assert_eq!(answer.error_code(), "internal_error");
    assert_eq!(answer.json()["error"]["request_id"], "req-77");
    assert_eq!(answer.headers["x-request-id"], "req-77");
    assert!(!String::from_utf8_lossy(&answer.body).contains("injected"), "panic text stays in the logs");
    let next = Request::builder()
        .method(Method::POST)
        .uri("/v1/evaluate")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({"lists": [{"items": [{"reward": 1}, {"reward": 0}]}]}).to_string()))
        .unwrap();
    let next = oneshot(&router, next).await;
    assert_eq!(next.status, 200);
}

#[tokio::test]
async fn work_of_a_client_that_went_away_is_skipped() {
    let app = TestApp::builder().workers(1).queue_depth(4).build().await;
    let held = hold_worker(&app.state);

    let body = json!({"model": "gone", "lists": [{"items": [{"reward": 1}, {"reward": 0}]}]}).to_string();
    let mut client = app.raw();
    let head = format!(
        "POST /v1/evaluate HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    client.write(head.as_bytes()).unwrap();
    client.write(body.as_bytes()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.state.pool.queued() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(app.state.pool.queued(), 1, "the request waits for the worker");
    drop(client); // the client disconnects
    // Over TCP the server learns of it when it reads the end of the connection: wait until it
    // has closed its side (and dropped the request) before the worker frees up.
    while app.state.open_connections.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(app.state.open_connections.load(Ordering::Relaxed), 0, "the server saw the client go");
    held.release().await;
    while app.state.pool.queued() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The skip is counted once the worker has looked at the job.
    let mut text = String::new();
    while Instant::now() < deadline {
        text = String::from_utf8(app.metrics().await.body).unwrap();
        if text.contains(r#"prefeval_requests_rejected_total{reason="client_disconnected"} 1"#) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(text.contains(r#"prefeval_requests_rejected_total{reason="client_disconnected"} 1"#), "{text}");
    assert!(!text.contains(r#"prefeval_lists_evaluated_total{model="gone"}"#), "skipped work was not computed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_arrives_too_slowly_gets_408_json_and_the_connection_closes() {
    let app = TestApp::builder().request_timeout_secs(1).build().await;
    let addr = app.addr;
    let (answer, took) = tokio::task::spawn_blocking(move || {
        let mut raw = Raw::connect(addr);
        let head =
            "POST /v1/evaluate HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n";
        raw.write(head.as_bytes()).unwrap();
        raw.write(b"{\"lists\":").unwrap(); // ... and the rest never comes
        raw.read_until_closed()
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("connection: close"), "{answer}");
    assert!(answer.contains(r#""code":"request_timeout""#), "{answer}");
    assert!(took < Duration::from_secs(8), "closed after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickling_headers_and_idle_connections_are_closed() {
    let app = TestApp::builder().header_read_timeout_secs(1).build().await;
    let addr = app.addr;
    let (trickled, idle) = tokio::task::spawn_blocking(move || {
        let mut trickling = Raw::connect(addr);
        trickling.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\n").unwrap(); // headers never end
        let trickled = trickling.read_until_closed();

        let mut idle = Raw::connect(addr);
        idle.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let idle = idle.read_until_closed(); // keep-alive: closed only by the idle timeout
        (trickled, idle)
    })
    .await
    .unwrap();
    assert!(trickled.1 < Duration::from_secs(8), "trickling connection closed after {:?}", trickled.1);
    assert!(!trickled.0.contains("200 OK"), "{}", trickled.0);
    assert!(idle.0.starts_with("HTTP/1.1 200"), "{}", idle.0);
    assert!(idle.1 < Duration::from_secs(8), "idle keep-alive connection closed after {:?}", idle.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_refusals_answer_before_the_body_and_close_the_connection_openly() {
    let app = TestApp::spawn().await;
    let addr = app.addr;
    let answers = tokio::task::spawn_blocking(move || {
        let mut results = Vec::new();
        for head in [
            // Announced far over the 32 MiB limit: refused before any of it is sent.
            "POST /v1/evaluate HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n",
            // Wrong content type: refused without reading the body that has not arrived yet.
            "POST /v1/evaluate HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nContent-Length: 54\r\n\r\n",
        ] {
            let mut raw = Raw::connect(addr);
            raw.write(head.as_bytes()).unwrap();
            results.push(raw.read_until_closed());
        }
        results
    })
    .await
    .unwrap();
    for ((answer, took), status) in answers.iter().zip(["413", "415"]) {
        assert!(answer.starts_with(&format!("HTTP/1.1 {status}")), "{answer}");
        assert!(answer.to_ascii_lowercase().contains("connection: close"), "{answer}");
        assert!(*took < Duration::from_secs(8), "answered and closed after {took:?}");
    }
}
