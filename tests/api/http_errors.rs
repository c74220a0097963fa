//! Answers to what is not a usable HTTP request, written byte by byte on a raw socket: request
//! ids the server cannot echo, and request heads hyper refuses before any request exists.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{Answer, Raw, TestApp};

/// Writes `bytes` as they are and reads the whole answer (the server closes the connection).
async fn send_raw(app: &TestApp, bytes: Vec<u8>) -> Answer {
    let addr = app.addr;
    let exchange = tokio::task::spawn_blocking(move || Raw::send_bytes(addr, &bytes));
    tokio::time::timeout(Duration::from_secs(30), exchange).await.expect("answers in time").expect("the client thread")
}

/// `error.request_id` of a JSON error body, which must equal the `x-request-id` header.
fn request_id_of(answer: &Answer) -> String {
    let body: Value = answer.json();
    let id = body["error"]["request_id"].as_str().unwrap_or_else(|| panic!("no error.request_id in {body}"));
    assert!(!id.is_empty(), "an empty error.request_id");
    assert_eq!(answer.header("x-request-id"), Some(id), "the x-request-id header differs from error.request_id");
    id.to_string()
}

#[tokio::test]
async fn an_x_request_id_that_is_not_text_is_replaced_by_a_generated_one() {
    let app = TestApp::spawn().await;
    let head = |id: &[u8]| {
        [b"GET /no-such-route HTTP/1.1\r\nHost: x\r\nConnection: close\r\nx-request-id: ".as_slice(), id, b"\r\n\r\n"]
            .concat()
    };
    let mut generated = Vec::new();
    for id in [b"\xff\xfe".as_slice(), b"caf\xc3\xa9", b"ok\xffnot", &[b'x'; 300]] {
        let answer = send_raw(&app, head(id)).await;
        assert_eq!(answer.status, 404);
        assert_eq!(answer.error_code(), "not_found");
        let request_id = request_id_of(&answer);
        // The same generator as when the header is absent: a UUID.
        assert_eq!(request_id.len(), 36, "{request_id:?}");
        assert_eq!(request_id.matches('-').count(), 4, "{request_id:?}");
        generated.push(request_id);
    }
    generated.dedup();
    assert_eq!(generated.len(), 4, "each request gets an id of its own");
    // A usable id is still the client's own.
    let answer = send_raw(&app, head(b"client-7")).await;
    assert_eq!(request_id_of(&answer), "client-7");
    // And a successful answer carries the generated id as well.
    let healthz = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nx-request-id: \xff\r\n\r\n".to_vec();
    let answer = send_raw(&app, healthz).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("x-request-id").map(str::len), Some(36));
}

// ----- request heads hyper refuses -------------------------------------------------------------

/// hyper answers these itself, before any request exists; they keep their status and come with
/// the service's JSON error body and a generated request id.
#[tokio::test]
async fn request_heads_hyper_refuses_get_the_json_error_body() {
    let app = TestApp::spawn().await;
    let head = |extra: &str| format!("POST /v1/evaluate HTTP/1.1\r\nHost: x\r\n{extra}\r\n").into_bytes();
    let many_headers: String = (0..150).map(|i| format!("x-h{i}: v\r\n")).collect();
    let huge_header = format!("x-big: {}\r\n", "a".repeat(600 * 1024));
    let cases: [(&str, Vec<u8>, u16, &str); 6] = [
        ("a garbage request line", b"GARBAGE\r\n\r\n".to_vec(), 400, "bad_request"),
        ("a bad method token", b"GE(T / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), 400, "bad_request"),
        (
            "two different Content-Length headers",
            [head("Content-Type: application/json\r\nContent-Length: 5\r\nContent-Length: 6\r\n"), b"hello!".to_vec()]
                .concat(),
            400,
            "bad_request",
        ),
        (
            "a 70,000-byte request target",
            format!("GET /v1/evaluate?{} HTTP/1.1\r\nHost: x\r\n\r\n", "q".repeat(70_000)).into_bytes(),
            414,
            "uri_too_long",
        ),
        ("150 headers", head(&many_headers), 431, "headers_too_large"),
        ("a 600 KiB header", head(&huge_header), 431, "headers_too_large"),
    ];
    for (what, bytes, status, code) in cases {
        let answer = send_raw(&app, bytes).await;
        assert_eq!(answer.status, status, "{what}");
        assert_eq!(answer.header("content-type"), Some("application/json"), "{what}");
        assert_eq!(answer.header("connection"), Some("close"), "{what}");
        let length: usize = answer.header("content-length").and_then(|l| l.parse().ok()).expect("a content-length");
        assert_eq!(length, answer.body.len(), "{what}");
        let body = answer.json();
        assert_eq!(body["error"]["code"], code, "{what}: {body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: {body}");
        let fields: Vec<&String> = body["error"].as_object().expect("an object").keys().collect();
        assert_eq!(fields, ["code", "message", "request_id"], "{what}: the error body's shape");
        assert_eq!(request_id_of(&answer).len(), 36, "{what}");
    }
    // Serving goes on.
    assert_eq!(app.get("/healthz").await.status, 200);
}

/// Only what hyper writes before any request reached the service is rewritten: on a kept-alive
/// connection, the answer to a good request is untouched, and a malformed request after it keeps
/// hyper's own empty answer (docs/operating.md).
#[tokio::test]
async fn answers_of_dispatched_requests_are_never_rewritten() {
    let app = TestApp::spawn().await;
    let answer = send_raw(&app, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE\r\n\r\n".to_vec()).await;
    assert_eq!(answer.status, 200);
    let text = String::from_utf8(answer.body).expect("text");
    let (healthz, rest) = text.split_at(text.find("HTTP/1.1 400").expect("a second answer"));
    assert_eq!(healthz, r#"{"status":"ok"}"#);
    let second = Answer::parse(rest.as_bytes());
    assert_eq!(second.status, 400);
    assert_eq!(second.header("content-length"), Some("0"));
    assert!(second.body.is_empty());
}
