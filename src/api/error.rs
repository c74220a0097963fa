//! How the error type answers over HTTP: the status of each code (as `docs/design/api.md` gives
//! them) and the JSON response with its `Retry-After`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub use prefeval_core::error::{Error, ErrorCode};

/// The HTTP status of an error (the core knows no HTTP).
pub trait ErrorStatus {
    fn status(&self) -> StatusCode;
}

impl ErrorStatus for ErrorCode {
    fn status(&self) -> StatusCode {
        use ErrorCode::*;
        match self {
            MalformedJson | BodyIncomplete | MalformedEncoding => StatusCode::BAD_REQUEST,
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            UnsupportedMediaType | UnsupportedEncoding => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            NotFound => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            InvalidType | InvalidValue | MissingField | UnknownField | NumberOutOfRange | EmptyBatch | TooFewItems
            | TooManyItems | TooManyLists | TooManyPairs | TooManyGroups | MixedRanking | NoPreferences
            | NonFiniteResult => StatusCode::UNPROCESSABLE_ENTITY,
            Unauthorized => StatusCode::UNAUTHORIZED,
            RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            QueueFull | MemoryBudget => StatusCode::SERVICE_UNAVAILABLE,
            InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            BadRequest => StatusCode::BAD_REQUEST,
            UriTooLong => StatusCode::URI_TOO_LONG,
            HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        }
    }
}

impl ErrorStatus for Error {
    fn status(&self) -> StatusCode {
        self.code.status()
    }
}

/// An error on its way out as an HTTP answer: handlers return it, and `?` turns the core's error
/// into it.
#[derive(Debug)]
pub struct HttpError(pub Error);

impl From<Error> for HttpError {
    fn from(error: Error) -> Self {
        HttpError(error)
    }
}

/// The body carries no request id yet; the error stays in the response's extensions, so the
/// error-body middleware (which knows the id) can write it again with one.
impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let HttpError(error) = self;
        let mut response =
            (error.status(), [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], error.body(None))
                .into_response();
        if let Some(secs) = error.retry_after_secs {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response.extensions_mut().insert(error);
        response
    }
}
