//! The JSON body extractor: checks the content type and reads the body under the byte limit,
//! mapping axum's own rejections into `ApiError`. Parsing happens later, on a worker.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};

use super::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// A request body declared as JSON, not yet parsed.
pub struct JsonBytes(pub Bytes);

impl FromRequest<AppState> for JsonBytes {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        if !content_type.is_some_and(is_json) {
            let message = match content_type {
                Some(ct) => format!("Content-Type `{ct}` is not supported; send `application/json`"),
                None => "missing Content-Type; send `application/json`".to_string(),
            };
            return Err(ApiError::new(ErrorCode::UnsupportedMediaType, message));
        }
        // A body announced as too large is refused before a byte of it is read.
        let announced =
            request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if announced.is_some_and(|length| length > state.max_body_bytes as u64) {
            return Err(too_large(state.max_body_bytes));
        }
        match Bytes::from_request(request, state).await {
            Ok(bytes) => Ok(JsonBytes(bytes)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(too_large(state.max_body_bytes))
            }
            Err(rejection) => {
                Err(ApiError::new(ErrorCode::MalformedJson, format!("could not read the body: {rejection}")))
            }
        }
    }
}

pub fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("request body is larger than the limit of {limit} bytes (PREFEVAL_MAX_BODY_BYTES / --max-body-bytes)"),
    )
}

/// `application/json` or any `application/*+json`, parameters (charset) allowed.
fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::is_json;

    #[test]
    fn accepts_json_media_types_only() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(is_json("application/vnd.api+json"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("application/x-www-form-urlencoded"));
        assert!(!is_json("application/jsonx"));
    }
}
