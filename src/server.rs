//! The router, its middleware stack, health and readiness, and serving with graceful shutdown.

use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::api::{ApiError, ErrorCode, evaluate};
use crate::docs;
use crate::state::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole HTTP surface, ready for `axum::serve` or in-process `oneshot` tests.
pub fn app(state: AppState) -> Router {
    let mut router = Router::new()
        .route("/v1/evaluate", post(evaluate::evaluate))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/openapi.yaml", get(docs::openapi_yaml))
        .route("/docs", get(docs::index))
        .route("/docs/init.js", get(docs::init_js))
        .route("/docs/swagger-ui-bundle.js", get(docs::bundle_js))
        .route("/docs/swagger-ui.css", get(docs::css));
    if state.metrics_on_main_listener {
        router = router.route("/metrics", get(metrics));
    }
    with_layers(router.layer(DefaultBodyLimit::max(state.max_body_bytes)), state)
}

/// The router of the separate metrics listener (`PREFEVAL_METRICS_LISTEN`).
pub fn metrics_app(state: AppState) -> Router {
    with_layers(Router::new().route("/metrics", get(metrics)), state)
}

fn with_layers(router: Router<AppState>, state: AppState) -> Router {
    router
        .fallback(not_found)
        .layer(middleware::from_fn(json_error_bodies))
        .layer(CatchPanicLayer::custom(|_| ApiError::internal().into_response()))
        .layer(middleware::from_fn_with_state(state.clone(), record_http))
        .layer(TraceLayer::new_for_http())
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}

/// Counts and times every answer under its route template (never the raw path, whose values
/// are unbounded).
async fn record_http(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let response = next.run(request).await;
    let route = route.as_deref().unwrap_or(UNMATCHED_ROUTE);
    state.metrics.observe_http(method.as_str(), route, response.status().as_u16(), started.elapsed());
    response
}

/// `route` label of requests that matched no route.
const UNMATCHED_ROUTE: &str = "unmatched";

async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let text = state.metrics.render(state.pool.queued(), state.pool.busy()).map_err(|error| {
        tracing::error!(%error, "could not render metrics");
        ApiError::internal()
    })?;
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static(prometheus::TEXT_FORMAT))], text).into_response())
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

async fn not_found(request: Request) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("no route for {} {}", request.method(), request.uri().path()))
}

/// Rewrites the plain-text error answers of axum and tower (405 with its `Allow`, 404, ...) into
/// the JSON error body, keeping their status and headers. Answers already in JSON pass untouched.
async fn json_error_bodies(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let response = next.run(request).await;
    let status = response.status();
    let is_json =
        response.headers().get(header::CONTENT_TYPE).is_some_and(|ct| ct.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let error = match status {
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            ErrorCode::MethodNotAllowed,
            format!("method {method} is not allowed here; see the Allow header"),
        ),
        StatusCode::NOT_FOUND => ApiError::new(ErrorCode::NotFound, "no such route"),
        StatusCode::PAYLOAD_TOO_LARGE => crate::api::body::too_large(0),
        _ => ApiError::internal(),
    };
    let body = serde_json::to_vec(&json!({ "error": error })).unwrap_or_default();
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

/// Where the service listens: the main address, and optionally a separate one for `/metrics`.
pub struct Listeners {
    pub main: tokio::net::TcpListener,
    pub metrics: Option<tokio::net::TcpListener>,
}

/// Serves until SIGTERM or SIGINT, then drains (see `serve_until`).
pub async fn serve(listeners: Listeners, state: AppState, grace: Duration) -> std::io::Result<()> {
    serve_until(listeners, state, grace, shutdown_signal()).await
}

/// Serves until `stop` completes; then readiness turns 503, no new connection is taken, and
/// in-flight requests get up to `grace` to finish before this returns.
pub async fn serve_until(
    listeners: Listeners,
    state: AppState,
    grace: Duration,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let metrics_server = listeners.metrics.map(|listener| {
        let router = metrics_app(state.clone());
        tokio::spawn(async move { axum::serve(listener, router).await })
    });
    let draining = state.clone();
    let (stopping_tx, mut stopping_rx) = tokio::sync::watch::channel(false);
    let server = axum::serve(listeners.main, app(state)).with_graceful_shutdown(async move {
        stop.await;
        tracing::info!(grace_secs = grace.as_secs(), "shutdown requested; draining");
        draining.begin_draining();
        let _ = stopping_tx.send(true);
    });
    let grace_over = async move {
        let _ = stopping_rx.wait_for(|stopping| *stopping).await;
        tokio::time::sleep(grace).await;
    };
    let result = tokio::select! {
        result = server => result,
        () = grace_over => {
            tracing::warn!("grace period over with requests still in flight; exiting");
            Ok(())
        }
    };
    if let Some(metrics_server) = metrics_server {
        metrics_server.abort();
    }
    result
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
