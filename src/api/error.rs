//! The one error type of the HTTP surface. Every failure a client can see becomes
//! `{"error": {"code", "message", "path"?}}` with the status of `design/api.md`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Stable, machine-readable error codes (clients switch on these; never rename one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    MalformedJson,
    PayloadTooLarge,
    UnsupportedMediaType,
    NotFound,
    MethodNotAllowed,
    InvalidType,
    InvalidValue,
    MissingField,
    UnknownField,
    NumberOutOfRange,
    EmptyBatch,
    TooFewItems,
    TooManyItems,
    TooManyLists,
    TooManyPairs,
    MixedRanking,
    NoPreferences,
    NonFiniteResult,
    Unauthorized,
    RequestTimeout,
    QueueFull,
    MemoryBudget,
    InternalError,
}

impl ErrorCode {
    /// Every code, for documentation checks.
    pub const ALL: [ErrorCode; 23] = {
        use ErrorCode::*;
        [
            MalformedJson,
            PayloadTooLarge,
            UnsupportedMediaType,
            NotFound,
            MethodNotAllowed,
            InvalidType,
            InvalidValue,
            MissingField,
            UnknownField,
            NumberOutOfRange,
            EmptyBatch,
            TooFewItems,
            TooManyItems,
            TooManyLists,
            TooManyPairs,
            MixedRanking,
            NoPreferences,
            NonFiniteResult,
            Unauthorized,
            RequestTimeout,
            QueueFull,
            MemoryBudget,
            InternalError,
        ]
    };

    pub fn status(self) -> StatusCode {
        use ErrorCode::*;
        match self {
            MalformedJson => StatusCode::BAD_REQUEST,
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            NotFound => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            InvalidType | InvalidValue | MissingField | UnknownField | NumberOutOfRange | EmptyBatch | TooFewItems
            | TooManyItems | TooManyLists | TooManyPairs | MixedRanking | NoPreferences | NonFiniteResult => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Unauthorized => StatusCode::UNAUTHORIZED,
            RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            QueueFull | MemoryBudget => StatusCode::SERVICE_UNAVAILABLE,
            InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Seconds for the `Retry-After` header of a 503.
    #[serde(skip)]
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { code, message: message.into(), path: None, retry_after_secs: None }
    }

    pub fn at(code: ErrorCode, path: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError { code, message: message.into(), path: Some(path.into()), retry_after_secs: None }
    }

    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// 503: every worker is busy and the queue is full.
    pub fn queue_full(retry_after_secs: u64) -> Self {
        let message = "all workers are busy and the queue is full; retry after the Retry-After delay";
        ApiError { retry_after_secs: Some(retry_after_secs), ..Self::new(ErrorCode::QueueFull, message) }
    }

    /// 503: requests in flight hold the memory budget; this one fits once some finish.
    pub fn memory_budget(retry_after_secs: u64) -> Self {
        let message = "requests in flight hold the memory budget (PREFEVAL_MEMORY_LIMIT_BYTES); \
                       retry after the Retry-After delay";
        ApiError { retry_after_secs: Some(retry_after_secs), ..Self::new(ErrorCode::MemoryBudget, message) }
    }

    /// 413: this request alone would need more than the whole memory budget.
    pub fn never_fits_budget(needed: usize, limit: usize) -> Self {
        Self::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "this request needs about {needed} bytes of memory to evaluate, more than the whole memory budget \
                 of {limit} bytes (PREFEVAL_MEMORY_LIMIT_BYTES / --memory-limit-bytes); send a smaller batch"
            ),
        )
    }

    pub fn internal() -> Self {
        Self::new(ErrorCode::InternalError, "internal error; the request was not evaluated")
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorFields<'a>,
}

#[derive(Serialize)]
struct ErrorFields<'a> {
    #[serde(flatten)]
    error: &'a ApiError,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
}

impl ApiError {
    /// The JSON error body, with the request id when known.
    pub fn body(&self, request_id: Option<&str>) -> Vec<u8> {
        let body = ErrorBody { error: ErrorFields { error: self, request_id } };
        // Plain strings and enums only: serializing cannot fail.
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

/// The body carries no request id yet; the error stays in the response's extensions, so the
/// error-body middleware (which knows the id) can write it again with one.
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response =
            (self.status(), [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], self.body(None))
                .into_response();
        if let Some(secs) = self.retry_after_secs {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response.extensions_mut().insert(self);
        response
    }
}
