//! prefeval: scores reward models against human rankings over HTTP and on the command line.
//!
//! The computation is the `prefeval-core` crate. This crate holds its doors and what runs them:
//! - `server`: listeners, connections, routes, layers, auth, state (HTTP plumbing);
//! - `api`: one file per endpoint, each a thin door onto the core;
//! - `runtime`: the worker pool, metrics and logging of a running service;
//! - `cli`: one file per subcommand, its arguments beside it;
//! - `config`: the service's settings (flags and `PREFEVAL_*` variables).
//!
//! docs/ARCHITECTURE.md walks through each door.

pub use prefeval_core::{error, limits, math, memory, pipeline, stats};

pub mod api;
pub mod cli;
pub mod config;
pub mod runtime;
pub mod server;

pub use server::listen::{Listeners, serve, serve_until};
pub use server::routes::{app, app_with, metrics_app};
pub use server::state::AppState;
