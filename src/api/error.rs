//! How the error type answers over HTTP: the status of each code (as `design/api.md` gives them)
//! and the JSON response with its `Retry-After`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub use crate::error::{ApiError, ErrorCode};

impl ErrorCode {
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

impl ApiError {
    pub fn status(&self) -> StatusCode {
        self.code.status()
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
