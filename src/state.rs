//! What every handler shares: the worker pool, the request limits and the readiness flag.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::config::{Config, Limits};
use crate::pool::Pool;

#[derive(Clone, Debug)]
pub struct AppState {
    pub pool: Arc<Pool>,
    pub limits: Limits,
    pub max_body_bytes: usize,
    ready: Arc<AtomicBool>,
}

impl AppState {
    pub fn new(config: &Config) -> std::io::Result<AppState> {
        let pool = Pool::new(config.worker_count(), config.queue_depth)?;
        Ok(AppState {
            pool: Arc::new(pool),
            limits: config.limits(),
            max_body_bytes: config.max_body_bytes,
            ready: Arc::new(AtomicBool::new(true)),
        })
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Called once shutdown begins: readiness answers 503 from then on.
    pub fn begin_draining(&self) {
        self.ready.store(false, Ordering::Release);
    }
}
