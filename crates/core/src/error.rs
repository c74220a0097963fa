//! The one error type: every failure a client or a CLI user can see becomes
//! `{"error": {"code", "message", "path"?}}`. No HTTP here: `api::error` maps codes to statuses and
//! errors to responses, so the pipeline and the CLI use the same type without any HTTP type.

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
    /// A line whose `group` would be one more than a run's limit of distinct groups.
    TooManyGroups,
    MixedRanking,
    NoPreferences,
    NonFiniteResult,
    Unauthorized,
    RequestTimeout,
    BodyIncomplete,
    /// A `Content-Encoding` other than `gzip`, `zstd` or `identity`.
    UnsupportedEncoding,
    /// A body sent as gzip or zstd that does not decode as such.
    MalformedEncoding,
    QueueFull,
    MemoryBudget,
    InternalError,
    /// A request head the HTTP server could not read (answered before any request existed).
    BadRequest,
    UriTooLong,
    HeadersTooLarge,
}

impl ErrorCode {
    /// Every code, for documentation checks.
    pub const ALL: [ErrorCode; 30] = {
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
            TooManyGroups,
            MixedRanking,
            NoPreferences,
            NonFiniteResult,
            Unauthorized,
            RequestTimeout,
            BodyIncomplete,
            UnsupportedEncoding,
            MalformedEncoding,
            QueueFull,
            MemoryBudget,
            InternalError,
            BadRequest,
            UriTooLong,
            HeadersTooLarge,
        ]
    };
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Seconds for the `Retry-After` header of a 503.
    #[serde(skip)]
    pub retry_after_secs: Option<u64>,
}

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error { code, message: message.into(), path: None, retry_after_secs: None }
    }

    pub fn at(code: ErrorCode, path: impl Into<String>, message: impl Into<String>) -> Self {
        Error { code, message: message.into(), path: Some(path.into()), retry_after_secs: None }
    }

    /// 503: every worker is busy and the queue is full.
    pub fn queue_full(retry_after_secs: u64) -> Self {
        let message = "all workers are busy and the queue is full; retry after the Retry-After delay";
        Error { retry_after_secs: Some(retry_after_secs), ..Self::new(ErrorCode::QueueFull, message) }
    }

    /// 503: requests in flight hold the memory budget; this one fits once some finish.
    pub fn memory_budget(retry_after_secs: u64) -> Self {
        let message = "requests in flight hold the memory budget (PREFEVAL_MEMORY_LIMIT_BYTES); \
                       retry after the Retry-After delay";
        Error { retry_after_secs: Some(retry_after_secs), ..Self::new(ErrorCode::MemoryBudget, message) }
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

    /// A stream or file line that alone would need more than the whole memory budget. The need
    /// is not named: how much of a line had arrived when that was clear depends on how the bytes
    /// were cut, and the stream and `prefeval eval` answer the same bytes for the same line.
    pub fn line_never_fits_budget(limit: usize) -> Self {
        Self::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "this line alone needs more memory to evaluate than the whole memory budget of {limit} bytes \
                 (PREFEVAL_MEMORY_LIMIT_BYTES / --memory-limit-bytes); split the list"
            ),
        )
    }

    /// A stream line given up after waiting `waited_secs` for memory other requests held.
    pub fn line_budget_busy(waited_secs: u64) -> Self {
        Self::new(
            ErrorCode::MemoryBudget,
            format!(
                "requests in flight held the memory budget (PREFEVAL_MEMORY_LIMIT_BYTES) for {waited_secs} s; \
                 this line was not evaluated; send it again later"
            ),
        )
    }

    /// A long stream line that took longer than `secs` to arrive while other long lines waited
    /// for their turn to hold memory.
    pub fn line_turn_expired(secs: u64) -> Self {
        Self::new(
            ErrorCode::MemoryBudget,
            format!(
                "this line took longer than {secs} s to arrive while other long lines waited for memory \
                 (PREFEVAL_REQUEST_TIMEOUT_SECS); it was not evaluated; send it again, faster or split"
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
    error: &'a Error,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
}

impl Error {
    /// The JSON error body, with the request id when known.
    pub fn body(&self, request_id: Option<&str>) -> Vec<u8> {
        let body = ErrorBody { error: ErrorFields { error: self, request_id } };
        // Plain strings and enums only: serializing cannot fail.
        serde_json::to_vec(&body).unwrap_or_default()
    }
}
