//! Faults and security through the user's path: tokens, CORS, panics, timeouts on a real socket,
//! and work skipped for clients that went away.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, header};
use axum::routing::get;
use common::{get as get_path, hold_worker, post_json, router_with, send, test_config};
use prefeval::config::Config;
use prefeval::tokens::ApiTokens;
use prefeval::{AppState, Listeners, app_with, serve_until};
use serde_json::json;

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
    let config = Config { api_tokens: Some(ApiTokens::parse("alpha,beta")), ..test_config() };
    let (router, _) = router_with(&config);

    let missing = send(&router, evaluate_request(None)).await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.error_code(), "unauthorized");
    assert_eq!(missing.headers["www-authenticate"], r#"Bearer realm="prefeval""#);
    assert!(missing.json()["error"]["request_id"].is_string());

    let wrong = send(&router, evaluate_request(Some("alphx"))).await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.headers["www-authenticate"].to_str().unwrap().contains("invalid_token"));
    assert!(!String::from_utf8_lossy(&wrong.body).contains("alph"), "tokens are never echoed");

    assert_eq!(send(&router, evaluate_request(Some("beta"))).await.status, 200);
    for open in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(get_path(&router, open).await.status, 200, "{open} stays open");
    }
}

#[tokio::test]
async fn api_tokens_file_is_read_and_a_missing_file_stops_start_up() {
    let path = std::env::temp_dir().join(format!("prefeval-tokens-{}", std::process::id()));
    std::fs::write(&path, "# tokens for the annotation tool\nfile-token\n").unwrap();
    let config = Config { api_tokens_file: Some(path.clone()), ..test_config() };
    let (router, _) = router_with(&config);
    assert_eq!(send(&router, evaluate_request(Some("file-token"))).await.status, 200);
    assert_eq!(send(&router, evaluate_request(None)).await.status, 401);
    std::fs::write(&path, "# no token here\n").unwrap();
    let with_flag_too = Config { api_tokens: Some(ApiTokens::parse("flag-token")), ..config.clone() };
    assert!(AppState::new(&with_flag_too).is_err(), "a token file without tokens is a start-up error");
    std::fs::remove_file(&path).unwrap();
    assert!(AppState::new(&config).is_err(), "an unreadable token file is a start-up error");
}

#[test]
fn tokens_never_appear_in_the_startup_log() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_prefeval"))
        .args(["--listen", "127.0.0.1:0", "--log-format", "json", "--workers", "1"])
        .env("PREFEVAL_API_TOKENS", "sup3r-secret-token")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stderr.take().unwrap()), &mut line).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(line.contains("prefeval serving"), "{line}");
    assert!(!line.contains("sup3r"), "token leaked into the log: {line}");
    assert!(line.contains("redacted"), "{line}");
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
    let (closed, _) = router_with(&test_config());
    let answer = send(&closed, preflight("https://label.example.com")).await;
    assert!(answer.headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());

    let config = Config { cors_origins: vec!["https://label.example.com".into()], ..test_config() };
    let (open, _) = router_with(&config);
    let answer = send(&open, preflight("https://label.example.com")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://label.example.com");
    let other = send(&open, preflight("https://evil.example.net")).await;
    assert!(other.headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());

    // An OPTIONS that is no preflight is an ordinary request: 405 with the JSON error.
    let plain_options = Request::builder().method(Method::OPTIONS).uri("/v1/evaluate").body(Body::empty()).unwrap();
    let answer = send(&open, plain_options).await;
    assert_eq!(answer.status, 405);
    assert_eq!(answer.error_code(), "method_not_allowed");
    assert!(answer.headers.contains_key("x-request-id"));

    let mut request = evaluate_request(None);
    request.headers_mut().insert(header::ORIGIN, "https://label.example.com".parse().unwrap());
    let answer = send(&open, request).await;
    assert_eq!(answer.status, 200);
    let exposed = answer.headers[header::ACCESS_CONTROL_EXPOSE_HEADERS].to_str().unwrap().to_ascii_lowercase();
    assert!(exposed.contains("x-request-id") && exposed.contains("x-compute-time-ms"), "{exposed}");
}

#[tokio::test]
async fn a_panicking_handler_answers_500_json_with_the_request_id_and_serving_goes_on() {
    let state = AppState::new(&test_config()).unwrap();
    async fn boom() -> &'static str {
        panic!("injected for the test")
    }
    let injected = Router::new().route("/injected-panic", get(boom));
    let router = app_with(state, injected);
    let request =
        Request::builder().uri("/injected-panic").header("x-request-id", "req-77").body(Body::empty()).unwrap();
    let answer = send(&router, request).await;
    assert_eq!(answer.status, 500);
    assert_eq!(answer.error_code(), "internal_error");
    assert_eq!(answer.json()["error"]["request_id"], "req-77");
    assert_eq!(answer.headers["x-request-id"], "req-77");
    assert!(!String::from_utf8_lossy(&answer.body).contains("injected"), "panic text stays in the logs");
    let next = post_json(&router, &json!({"lists": [{"items": [{"reward": 1}, {"reward": 0}]}]})).await;
    assert_eq!(next.status, 200);
}

#[tokio::test]
async fn work_of_a_client_that_went_away_is_skipped() {
    let config = Config { workers: Some(1), queue_depth: 4, ..test_config() };
    let (router, state) = router_with(&config);
    let held = hold_worker(&state);

    let waiting = tokio::spawn({
        let router = router.clone();
        async move {
            post_json(&router, &json!({"model": "gone", "lists": [{"items": [{"reward": 1}, {"reward": 0}]}]})).await
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while state.pool.queued() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(state.pool.queued(), 1, "the request waits for the worker");
    waiting.abort(); // the client disconnects
    let _ = waiting.await;
    held.release().await;
    while state.pool.queued() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The skip is counted once the worker has looked at the job.
    let mut text = String::new();
    while Instant::now() < deadline {
        text = String::from_utf8(get_path(&router, "/metrics").await.body).unwrap();
        if text.contains(r#"prefeval_requests_rejected_total{reason="client_disconnected"} 1"#) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(text.contains(r#"prefeval_requests_rejected_total{reason="client_disconnected"} 1"#), "{text}");
    assert!(!text.contains(r#"prefeval_lists_evaluated_total{model="gone"}"#), "skipped work was not computed");
}

/// A live server on 127.0.0.1:0 with short timeouts; stops when the returned sender is dropped.
async fn live_server(config: Config) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = AppState::new(&config).unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve_until(Listeners { main: listener, metrics: None }, state, Duration::from_secs(2), async {
        let _ = stop_rx.await;
    }));
    (addr, stop_tx)
}

/// Reads until the server closes the connection (or 10 s pass); returns what arrived and when.
fn read_until_closed(stream: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
        }
    }
    (String::from_utf8_lossy(&received).into_owned(), started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_arrives_too_slowly_gets_408_json_and_the_connection_closes() {
    let (addr, _stop) = live_server(Config { request_timeout_secs: 1, ..test_config() }).await;
    let (answer, took) = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        let head =
            "POST /v1/evaluate HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n";
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(b"{\"lists\":").unwrap(); // ... and the rest never comes
        read_until_closed(&mut stream)
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
    let (addr, _stop) = live_server(Config { header_read_timeout_secs: 1, ..test_config() }).await;
    let (trickled, idle) = tokio::task::spawn_blocking(move || {
        let mut trickling = TcpStream::connect(addr).unwrap();
        trickling.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n").unwrap(); // headers never end
        let trickled = read_until_closed(&mut trickling);

        let mut idle = TcpStream::connect(addr).unwrap();
        idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let idle = read_until_closed(&mut idle); // keep-alive: closed only by the idle timeout
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
    let (addr, _stop) = live_server(test_config()).await;
    let answers = tokio::task::spawn_blocking(move || {
        let mut results = Vec::new();
        for head in [
            // Announced far over the 32 MiB limit: refused before any of it is sent.
            "POST /v1/evaluate HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n",
            // Wrong content type: refused without reading the body that has not arrived yet.
            "POST /v1/evaluate HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nContent-Length: 54\r\n\r\n",
        ] {
            let mut stream = TcpStream::connect(addr).unwrap();
            stream.write_all(head.as_bytes()).unwrap();
            results.push(read_until_closed(&mut stream));
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
