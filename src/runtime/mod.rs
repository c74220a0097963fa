//! What a running service owns besides its sockets: the worker pool that runs the core off the
//! async runtime (`pool`), the Prometheus registry (`metrics`) and logging (`telemetry`).

pub mod metrics;
pub mod pool;
pub mod telemetry;
