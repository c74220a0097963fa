//! Middleware of every route: JSON error bodies that carry the request id, HTTP metrics under the
//! route template, and the request span that puts the request id on every log line.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, Version, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::{Error, ErrorCode};
use crate::runtime::metrics::Metrics;
use crate::server::connection::LingerOnClose;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// `route` label of requests that matched no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Every error answer becomes the JSON error body with `error.request_id`: `Error` answers are
/// written again with the id, and the plain-text answers of axum and tower (405 with its `Allow`,
/// 408 from the timeout) are replaced, keeping their status and headers. An error answered
/// before the request body was read in full closes the connection, lingering (see
/// `crate::server::connection`) so that the client can read the answer.
pub async fn error_bodies(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let request_id = request.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let has_body = request_has_body(&request);
    let linger =
        (request.version() <= Version::HTTP_11).then(|| request.extensions().get::<LingerOnClose>().cloned()).flatten();
    let (parts, body) = request.into_parts();
    let body_read = Arc::new(AtomicBool::new(false));
    let body = Body::new(ObservedBody { inner: body, finished: Arc::clone(&body_read) });
    let response = next.run(Request::from_parts(parts, body)).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json =
        response.headers().get(header::CONTENT_TYPE).is_some_and(|ct| ct.as_bytes().starts_with(b"application/json"));
    let (mut parts, mut body) = response.into_parts();
    let error = match parts.extensions.remove::<Error>() {
        Some(error) => Some(error),
        // JSON that is no error body of ours (readiness while draining) passes as it is.
        None if is_json => None,
        None => Some(replacement_for(status, &method)),
    };
    if let Some(error) = error {
        body = Body::from(error.body(request_id.as_deref()));
        parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        parts.headers.remove(header::CONTENT_LENGTH);
    }
    let body_unread = has_body && !body_read.load(Ordering::Acquire);
    if body_unread || status == StatusCode::REQUEST_TIMEOUT {
        // The body is unread or half read (or the client too slow to keep), so the connection
        // cannot carry another request: say so, rather than let the client find a closed socket
        // on its next request.
        parts.headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    if let Some(linger) = linger.filter(|_| body_unread) {
        linger.request();
    }
    Response::from_parts(parts, body)
}

/// A request body that reports when it has been read to its end.
struct ObservedBody {
    inner: Body,
    finished: Arc<AtomicBool>,
}

impl HttpBody for ObservedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.finished.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

fn request_has_body(request: &Request) -> bool {
    let headers = request.headers();
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|length| length > 0)
}

fn replacement_for(status: StatusCode, method: &axum::http::Method) -> Error {
    match status {
        StatusCode::METHOD_NOT_ALLOWED => Error::new(
            ErrorCode::MethodNotAllowed,
            format!("method {method} is not allowed here; see the Allow header"),
        ),
        StatusCode::NOT_FOUND => Error::new(ErrorCode::NotFound, "no such route"),
        StatusCode::REQUEST_TIMEOUT => Error::new(
            ErrorCode::RequestTimeout,
            "the request did not complete within the request timeout (PREFEVAL_REQUEST_TIMEOUT_SECS)",
        ),
        _ => Error::internal(),
    }
}

/// Counts and times every answer under its route template (never the raw path, whose values
/// are unbounded).
pub async fn record_http(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let response = next.run(request).await;
    let route = route.as_deref().unwrap_or(UNMATCHED_ROUTE);
    metrics.observe_http(method.as_str(), route, response.status(), started.elapsed());
    response
}

/// The span of one request: its id is on every log line written while handling it.
pub fn request_span(request: &Request) -> tracing::Span {
    let request_id = request.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
    tracing::info_span!("request", request_id, method = %request.method(), path = request.uri().path())
}

/// The route whose whole request is not under the request timeout: it reads a body of any size
/// before answering, paced as the streams' bodies are (no byte, or fewer than 16 bytes/s, over a
/// whole window of the timeout ends it), as the streams, which answer before reading, are not.
const UNTIMED_ROUTE: &str = "/v1/report";

/// The whole-request deadline: 408 once `timeout` has passed before the answer started, on every
/// route but `UNTIMED_ROUTE`.
pub async fn request_deadline(State(timeout): State<Duration>, request: Request, next: Next) -> Response {
    if request.uri().path() == UNTIMED_ROUTE {
        return next.run(request).await;
    }
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => StatusCode::REQUEST_TIMEOUT.into_response(),
    }
}
