//! Answers to what is not a usable HTTP request, written byte by byte on a raw socket: request
//! ids the server cannot echo, and request heads hyper refuses before any request exists.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{Answer, Raw, TestApp};

/// Writes `bytes` as they are, then reads the whole answer (the server closes the connection).
async fn send_raw(app: &TestApp, bytes: Vec<u8>) -> Answer {
    let addr = app.addr;
    tokio::task::spawn_blocking(move || {
        let mut raw = Raw::connect(addr);
        raw.write(&bytes).expect("writes the request");
        raw.read_answer().expect("reads the answer")
    })
    .await
    .expect("the client thread")
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
    let answer = tokio::time::timeout(Duration::from_secs(10), send_raw(&app, healthz)).await.expect("answers");
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("x-request-id").map(str::len), Some(36));
}
