//! The JSON body extractor: checks the content type and encoding, then reads the body, decoded
//! (`super::request_body`), under the byte limit and the memory budget, reserving before a byte is
//! buffered (from `Content-Length`, or as chunks arrive). The limit counts decoded bytes. Parsing happens later, on a worker. Also the answers to a body that exceeds
//! the budget, and the response bytes that keep their reservation until they are written.

use std::pin::Pin;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{FromRequest, Request};
use axum::http::header;

use super::error::{Error, ErrorCode, HttpError};
use super::request_body::{BodyError, RequestBody, content_coding};
use crate::memory::{ADMISSION_BYTES_PER_BODY_BYTE, OverBudget, Reservation};
use crate::runtime::metrics::REJECT_MEMORY_BUDGET;
use crate::server::state::AppState;

/// A request body declared as JSON, read in full and not yet parsed, with the budget it holds.
pub struct JsonBody {
    pub bytes: Vec<u8>,
    pub reservation: Reservation,
}

impl FromRequest<AppState> for JsonBody {
    type Rejection = HttpError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, HttpError> {
        let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        if !content_type.is_some_and(is_json) {
            let message = match content_type {
                Some(ct) => format!("Content-Type `{ct}` is not supported; send `application/json`"),
                None => "missing Content-Type; send `application/json`".to_string(),
            };
            return Err(Error::new(ErrorCode::UnsupportedMediaType, message).into());
        }
        let coding = content_coding(request.headers())?;
        let max = state.max_body_bytes;
        // A body announced as too large, or too large for the budget now, is refused before a
        // byte of it is read.
        let announced =
            request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        let announced = match announced {
            Some(length) if length > max as u64 => return Err(too_large(max).into()),
            Some(length) => length as usize,
            None => 0,
        };
        let mut reservation =
            state.memory.reserve(admission_charge(announced, state)).map_err(|e| over_budget(state, e))?;
        let mut bytes = Vec::with_capacity(announced);
        let mut body = RequestBody::new(request.into_body(), coding)?;
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
            let frame = frame.map_err(|error| match error {
                BodyError::Incomplete(error) => Error::new(
                    ErrorCode::BodyIncomplete,
                    format!("the request body broke off before it was complete: {error}"),
                ),
                BodyError::Malformed(error) => error,
            })?;
            let Ok(data) = frame.into_data() else { continue };
            // Decoded bytes: a compressed body is cut off here once it decodes past the limit.
            let needed = bytes.len() + data.len();
            if needed > max {
                return Err(too_large(max).into());
            }
            if needed > bytes.capacity() {
                // Chunked (or a short Content-Length, which hyper refuses anyway): grow by
                // doubling, charged before the new buffer exists.
                let capacity = needed.max(bytes.capacity() * 2).min(max);
                reservation.resize(admission_charge(capacity, state)).map_err(|e| over_budget(state, e))?;
                bytes.reserve_exact(capacity - bytes.len());
            }
            bytes.extend_from_slice(&data);
        }
        Ok(JsonBody { bytes, reservation })
    }
}

/// What a body of `length` bytes is charged before it can be scanned: the body plus an estimate
/// of its decoded form, but never more than the whole budget (the exact bound, known on a
/// worker, decides whether it can ever fit).
fn admission_charge(length: usize, state: &AppState) -> usize {
    length.saturating_mul(ADMISSION_BYTES_PER_BODY_BYTE).min(state.memory.limit().max(length))
}

/// The answer to a reservation the budget refused, counted under `memory_budget`: 503 with
/// `Retry-After` while other requests hold the budget, 413 when this request alone exceeds it.
pub fn over_budget(state: &AppState, refusal: OverBudget) -> Error {
    state.metrics.reject(REJECT_MEMORY_BUDGET);
    match refusal {
        OverBudget::Exhausted { .. } => Error::memory_budget(state.pool.retry_after_secs()),
        OverBudget::NeverFits { needed, limit } => Error::never_fits_budget(needed, limit),
    }
}

pub fn too_large(limit: usize) -> Error {
    Error::new(
        ErrorCode::PayloadTooLarge,
        format!("request body is larger than the limit of {limit} bytes (PREFEVAL_MAX_BODY_BYTES / --max-body-bytes)"),
    )
}

/// A response body whose bytes stay reserved until the connection has written them all (or
/// dropped them with the connection): see `reserved_bytes`.
pub fn reserved_body(bytes: Vec<u8>, reservation: Reservation) -> Body {
    Body::from(reserved_bytes(bytes, reservation))
}

/// `bytes` as one buffer that owns `reservation`: every slice of it (the frames hyper holds until
/// they reach the socket, see `crate::server::outbound`) keeps it alive, so the budget counts the
/// answer until its last byte is written, however slowly the client reads.
pub fn reserved_bytes(bytes: Vec<u8>, reservation: Reservation) -> Bytes {
    Bytes::from_owner(ReservedBytes { bytes, _reservation: reservation })
}

struct ReservedBytes {
    bytes: Vec<u8>,
    _reservation: Reservation,
}

impl AsRef<[u8]> for ReservedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
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
