//! prefeval: scores reward models against human rankings over HTTP.
//!
//! The path of a request: `server` (layers) → `api` (decode, validate) → `pool` (admission, a
//! blocking worker) → `eval` (pure math) → `api` (encode).

pub mod api;
pub mod config;
pub mod docs;
pub mod eval;
pub mod metrics;
pub mod pool;
pub mod server;
pub mod state;
pub mod telemetry;

pub use server::{Listeners, app, metrics_app, serve, serve_until};
pub use state::AppState;
