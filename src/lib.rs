//! prefeval: scores reward models against human rankings over HTTP.
//!
//! The path of a request: `server` (layers) → `api` (decode, validate) → `pool` (admission, a
//! blocking worker) → `eval` (pure math) → `api` (encode).

pub use prefeval_core::{error, eval, limits, memory, pipeline, stats};

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod connection;
pub mod docs;
pub mod healthcheck;
pub mod listen;
pub mod metrics;
pub mod middleware;
pub mod pool;
pub mod server;
pub mod state;
pub mod telemetry;
pub mod tokens;

pub use listen::{Listeners, serve, serve_until};
pub use server::{app, app_with, metrics_app};
pub use state::AppState;
