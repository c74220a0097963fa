//! Bearer-token authentication for `/v1/*`: the middleware, given the tokens as its state.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use std::sync::Arc;

use crate::api::{Error, ErrorCode, HttpError};
use crate::server::tokens::ApiTokens;

/// Rejects a request without a valid `Authorization: Bearer <token>` when tokens are configured.
pub async fn require_token(State(tokens): State<Arc<ApiTokens>>, request: Request, next: Next) -> Response {
    if tokens.is_empty() {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.as_bytes().strip_prefix(b"Bearer "))
        .map(<[u8]>::trim_ascii);
    let (challenge, message) = match presented {
        Some(token) if tokens.accepts(token) => return next.run(request).await,
        Some(_) => ("Bearer realm=\"prefeval\", error=\"invalid_token\"", "the bearer token is not valid"),
        None => ("Bearer realm=\"prefeval\"", "this route needs `Authorization: Bearer <token>`"),
    };
    let mut response = HttpError(Error::new(ErrorCode::Unauthorized, message)).into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    response
}
