//! What every handler and layer shares (`AppState`): the worker pool, the metrics, the request
//! limits, the memory budget, the API tokens, the CORS allow-list, the connection settings and the
//! readiness flag. Built once from `crate::config::Config`; it imports no route or handler.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::HeaderValue;

use crate::config::Config;
use crate::limits::Limits;
use crate::memory::MemoryBudget;
use crate::runtime::metrics::{Metrics, REJECT_CLIENT_DISCONNECTED};
use crate::runtime::pool::Pool;
use crate::server::tokens::ApiTokens;

/// Cloned for every request and every layer that reads it: one reference count, not one per
/// field.
#[derive(Clone)]
pub struct AppState(Arc<SharedState>);

impl std::ops::Deref for AppState {
    type Target = SharedState;

    fn deref(&self) -> &SharedState {
        &self.0
    }
}

pub struct SharedState {
    pub pool: Arc<Pool>,
    pub metrics: Arc<Metrics>,
    pub limits: Limits,
    pub max_body_bytes: usize,
    /// Shared by every request in flight (see `crate::memory`).
    pub memory: MemoryBudget,
    /// Client connections open on the main listener, for the metrics gauge.
    pub open_connections: Arc<std::sync::atomic::AtomicUsize>,
    /// False when `/metrics` has a listener of its own.
    pub metrics_on_main_listener: bool,
    pub request_timeout_secs: u64,
    pub max_connections: u32,
    pub header_read_timeout_secs: u64,
    pub write_timeout_secs: u64,
    pub max_concurrent_streams: u32,
    /// Taken by the one stream at a time that reads a line longer than a chunk: long lines take
    /// turns instead of all holding part of the budget and waiting for the rest.
    pub long_line_turn: Arc<tokio::sync::Semaphore>,
    /// Streams waiting for that turn: a holder whose line is slow to arrive yields to them.
    pub long_line_waiting: std::sync::atomic::AtomicUsize,
    pub api_tokens: Arc<ApiTokens>,
    pub cors_origins: Vec<HeaderValue>,
    ready: AtomicBool,
}

impl AppState {
    pub fn new(config: &Config) -> std::io::Result<AppState> {
        let metrics = Arc::new(Metrics::new(config.max_model_labels).map_err(std::io::Error::other)?);
        let skipped = Arc::clone(&metrics);
        let pool = Pool::new(config.worker_count(), config.queue_depth)?
            .on_skip(Arc::new(move || skipped.reject(REJECT_CLIENT_DISCONNECTED)));
        Ok(AppState(Arc::new(SharedState {
            pool: Arc::new(pool),
            metrics,
            limits: config.limits(),
            max_body_bytes: config.max_body_bytes,
            memory: MemoryBudget::new(config.memory_limit()),
            open_connections: Arc::default(),
            metrics_on_main_listener: config.metrics_listen.is_none(),
            request_timeout_secs: config.request_timeout_secs,
            max_connections: config.max_connections,
            header_read_timeout_secs: config.header_read_timeout_secs,
            write_timeout_secs: config.write_timeout_secs,
            max_concurrent_streams: config.max_concurrent_streams,
            long_line_turn: Arc::new(tokio::sync::Semaphore::new(1)),
            long_line_waiting: std::sync::atomic::AtomicUsize::new(0),
            api_tokens: Arc::new(config.resolve_api_tokens()?),
            cors_origins: cors_origins(&config.cors_origins)?,
            ready: AtomicBool::new(true),
        })))
    }
}

impl SharedState {
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Called once shutdown begins: readiness answers 503 from then on.
    pub fn begin_draining(&self) {
        self.ready.store(false, Ordering::Release);
    }
}

fn cors_origins(origins: &[String]) -> std::io::Result<Vec<HeaderValue>> {
    origins
        .iter()
        .map(|origin| origin.trim())
        .filter(|origin| !origin.is_empty())
        .map(|origin| {
            HeaderValue::from_str(origin)
                .map_err(|_| std::io::Error::other(format!("PREFEVAL_CORS_ORIGINS: `{origin}` is not a valid origin")))
        })
        .collect()
}
