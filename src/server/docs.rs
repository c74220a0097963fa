//! The contract and its interactive page, compiled into the binary: the service documents
//! itself where nothing outside is reachable.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// `openapi.yaml` of the repository root, byte for byte.
pub const OPENAPI_YAML: &str = include_str!("../../openapi.yaml");

const INDEX_HTML: &str = include_str!("../../assets/swagger-ui/index.html");
const INIT_JS: &str = include_str!("../../assets/swagger-ui/init.js");
const BUNDLE_JS: &[u8] = include_bytes!("../../assets/swagger-ui/swagger-ui-bundle.js");
const CSS: &[u8] = include_bytes!("../../assets/swagger-ui/swagger-ui.css");

fn asset(content_type: &'static str, body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

pub async fn openapi_yaml() -> Response {
    asset("application/yaml", OPENAPI_YAML)
}

pub async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

pub async fn init_js() -> Response {
    asset("text/javascript; charset=utf-8", INIT_JS)
}

pub async fn bundle_js() -> Response {
    asset("text/javascript; charset=utf-8", BUNDLE_JS)
}

pub async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}
