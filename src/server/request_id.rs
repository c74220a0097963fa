//! The id a request is known by: the client's `x-request-id` when it is usable as one, otherwise
//! a generated UUID, exactly as when the header is absent. An id the server cannot write back as
//! text (bytes outside visible ASCII, e.g. 0xff), an empty one, or one longer than
//! `MAX_REQUEST_ID_BYTES` would otherwise be echoed as it is, and be missing from the error body
//! and the log lines, which is where the id is needed.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

use crate::server::middleware::REQUEST_ID;

/// Longest client id kept: it is on every log line of its request.
pub const MAX_REQUEST_ID_BYTES: usize = 256;

/// Drops a client's `x-request-id` that is not a usable id, so that `SetRequestIdLayer` (inside
/// this) generates one.
pub async fn replace_unusable(mut request: Request, next: Next) -> Response {
    if request.headers().get(&REQUEST_ID).is_some_and(|id| !is_usable(id)) {
        request.headers_mut().remove(&REQUEST_ID);
    }
    next.run(request).await
}

/// Text (visible ASCII, spaces and tabs; what `HeaderValue::to_str` takes), not blank, and short.
pub fn is_usable(id: &HeaderValue) -> bool {
    id.len() <= MAX_REQUEST_ID_BYTES && id.to_str().is_ok_and(|text| !text.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_non_blank_text_is_a_usable_id() {
        let usable = |bytes: &[u8]| is_usable(&HeaderValue::from_bytes(bytes).expect("a header value"));
        assert!(usable(b"demo-42"));
        assert!(usable(b"0b7e3c43-5d0f-4c8a-9a3e-1f9d0c2b7a61"));
        assert!(usable(&[b'x'; MAX_REQUEST_ID_BYTES]));
        assert!(!usable(&[b'x'; MAX_REQUEST_ID_BYTES + 1]));
        assert!(!usable(b"\xff\xfe"));
        assert!(!usable(b"caf\xc3\xa9"));
        assert!(!usable(b""));
        assert!(!usable(b" \t "));
    }
}
