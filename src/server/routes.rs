//! The router and its middleware stack, health and readiness.

use std::any::Any;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tower::ServiceExt;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::predicate::SizeAbove;
use tower_http::compression::{CompressionLayer, CompressionLevel};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnFailure, TraceLayer};
use tracing::Level;

use crate::api::{Error, ErrorCode, HttpError, compare, compare_stream, evaluate, report, stream};
use crate::runtime::metrics::GaugeReadings;
use crate::server::auth::require_token;
use crate::server::docs;
use crate::server::middleware::{REQUEST_ID, error_bodies, record_http, request_deadline, request_span};
use crate::server::request_id;
use crate::server::state::AppState;
use crate::server::ui;

/// The whole HTTP surface, ready to serve or to drive in-process with `oneshot`.
pub fn app(state: AppState) -> Router {
    app_with(state, Router::new())
}

/// `app` plus `extra` routes under the same middleware (for embedding, and for tests that need a
/// route the service itself does not have, such as one that panics).
pub fn app_with(state: AppState, extra: Router<AppState>) -> Router {
    let v1 = Router::new()
        .route("/v1/evaluate", post(evaluate::evaluate))
        .route("/v1/evaluate/stream", post(stream::evaluate_stream))
        .route("/v1/compare", post(compare::compare_models))
        .route("/v1/compare/stream", post(compare_stream::compare_stream))
        .route("/v1/report", post(report::report))
        .route_layer(middleware::from_fn_with_state(state.api_tokens.clone(), require_token));
    let mut router = Router::new()
        .merge(v1)
        .merge(probes())
        .route("/openapi.yaml", get(docs::openapi_yaml))
        .route("/docs", get(docs::index))
        .route("/docs/init.js", get(docs::init_js))
        .route("/docs/swagger-ui-bundle.js", get(docs::bundle_js))
        .route("/docs/swagger-ui.css", get(docs::css))
        .route("/ui", get(ui::page))
        .merge(extra);
    if state.metrics_on_main_listener {
        router = router.route("/metrics", get(metrics));
    }
    with_layers(router, state)
}

/// The router of the separate metrics listener (`PREFEVAL_METRICS_LISTEN`): `/metrics` and the
/// probes. That listener has connection slots of its own, so clients holding every connection of
/// the main listener cannot starve the kubelet's probes.
pub fn metrics_app(state: AppState) -> Router {
    with_layers(Router::new().route("/metrics", get(metrics)).merge(probes()), state)
}

/// Liveness and readiness, on both listeners.
fn probes() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz))
}

/// Innermost first: a panic becomes a 500; the request timeout (which also covers reading the
/// body; `request_deadline`) answers 408; every error body becomes JSON with the request id; the answer is compressed
/// when the client asks (`answer_compression`); metrics see the final
/// status; the span carries the request id, the client's own unless it is unusable; CORS answers
/// preflights before anything else.
fn with_layers(router: Router<AppState>, state: AppState) -> Router {
    let timeout = Duration::from_secs(state.request_timeout_secs);
    let cors = cors_layer(&state.cors_origins);
    let router = router
        .fallback(not_found)
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn_with_state(timeout, request_deadline))
        .layer(middleware::from_fn(error_bodies))
        .layer(answer_compression())
        .layer(middleware::from_fn_with_state(state.metrics.clone(), record_http))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| request_span(request))
                // A 503 under load is expected and counted in metrics; logging each at ERROR would
                // flood the logs exactly when the service is busiest. Panics log on their own.
                .on_failure(DefaultOnFailure::new().level(Level::DEBUG)),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(middleware::from_fn(request_id::replace_unusable))
        .with_state(state);
    match cors {
        None => router,
        Some(cors) => with_cors(router, cors),
    }
}

/// Answers of 1 KiB or more, and every stream (its size is not known ahead), compressed with gzip or
/// zstd for a client whose `Accept-Encoding` asks for one (q-values honoured; `Vary:
/// Accept-Encoding` added). At the fastest level: the cores are for evaluating. The encoder reads
/// the answer a frame at a time as the connection takes it, and flushes whenever the answer has no
/// frame ready, so a stream's lines reach a client as promptly as uncompressed; its compressed
/// frames pass through `crate::server::outbound` like any other, counted until written.
fn answer_compression() -> CompressionLayer<SizeAbove> {
    CompressionLayer::new().quality(CompressionLevel::Fastest).compress_when(SizeAbove::new(1024))
}

/// Sends cross-origin requests through `cors` and everything else straight to `router`.
/// `CorsLayer` takes every OPTIONS for a preflight; only one carrying `Origin` and
/// `Access-Control-Request-Method` is, and any other OPTIONS must get the router's 405.
fn with_cors(router: Router, cors: CorsLayer) -> Router {
    let cross_origin = router.clone().layer(cors);
    Router::new().fallback_service(tower::service_fn(move |request: Request| {
        let headers = request.headers();
        let is_cors = headers.contains_key(header::ORIGIN)
            && (request.method() != Method::OPTIONS || headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD));
        let service = if is_cors { cross_origin.clone() } else { router.clone() };
        service.oneshot(request)
    }))
}

/// `None` without an allow-list: no CORS headers at all, so browsers keep the same-origin policy.
fn cors_layer(origins: &[HeaderValue]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow =
        if origins.iter().any(|o| o == "*") { AllowOrigin::any() } else { AllowOrigin::list(origins.iter().cloned()) };
    let layer = CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE, header::CONTENT_ENCODING, header::AUTHORIZATION, REQUEST_ID])
        .expose_headers([
            REQUEST_ID,
            header::RETRY_AFTER,
            header::HeaderName::from_static("x-queue-time-ms"),
            header::HeaderName::from_static("x-compute-time-ms"),
        ])
        .max_age(Duration::from_secs(600));
    Some(layer)
}

fn panic_response(payload: Box<dyn Any + Send + 'static>) -> Response {
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("panic");
    tracing::error!(panic = message, "request handler panicked");
    HttpError(Error::internal()).into_response()
}

/// Alive: answers as long as the process serves HTTP; does no work.
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Ready to take work: not while draining for shutdown.
async fn readyz(State(state): State<AppState>) -> Response {
    if state.is_ready() {
        Json(json!({"status": "ready"})).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "draining"}))).into_response()
    }
}

async fn metrics(State(state): State<AppState>) -> Result<Response, HttpError> {
    let gauges = GaugeReadings {
        queued: state.pool.queued(),
        busy: state.pool.busy(),
        memory_reserved: state.memory.reserved(),
        memory_limit: state.memory.limit(),
        connections_open: state.open_connections.load(std::sync::atomic::Ordering::Relaxed),
    };
    let text = state.metrics.render(&gauges).map_err(|error| {
        tracing::error!(%error, "could not render metrics");
        Error::internal()
    })?;
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static(prometheus::TEXT_FORMAT))], text).into_response())
}

async fn not_found(request: Request) -> HttpError {
    HttpError(Error::new(ErrorCode::NotFound, format!("no route for {} {}", request.method(), request.uri().path())))
}
