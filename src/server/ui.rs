//! `GET /ui`: a page compiled into the binary (`assets/ui/index.html`, everything inline) from
//! which a person uploads a file or pasted lists to `POST /v1/report` and sees the report in the
//! page. Like `/docs` it needs no token itself (it holds nothing but the page); `/v1/report`
//! does, and the page is told whether tokens are on, so it asks for one up front.

use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::server::state::AppState;

const PAGE: &str = include_str!("../../assets/ui/index.html");

/// The page's marker of whether `/v1/report` needs a bearer token (`<html data-auth="...">`).
const NO_AUTH: &str = "data-auth=\"none\"";
const BEARER: &str = "data-auth=\"bearer\"";

/// Inline script and styles of its own, requests only to its own origin (`connect-src 'self'`),
/// the report shown in a sandboxed `srcdoc` frame (which inherits this policy), never framed
/// elsewhere.
const CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub async fn page(State(state): State<AppState>) -> Response {
    let page = if state.api_tokens.is_empty() { PAGE.to_string() } else { PAGE.replacen(NO_AUTH, BEARER, 1) };
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
        (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (HeaderName::from_static("referrer-policy"), HeaderValue::from_static("no-referrer")),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    (headers, page).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_carries_the_auth_marker_once() {
        assert_eq!(PAGE.matches(NO_AUTH).count(), 1);
        assert!(!PAGE.contains(BEARER));
    }
}
