use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use prefeval::config::Cli;
use prefeval::{AppState, serve, telemetry};

fn main() -> ExitCode {
    let config = Cli::parse().into_config();
    if let Err(error) = telemetry::init(&config.log_level, config.log_format) {
        eprintln!("prefeval: {error}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "could not start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let state = AppState::new(&config)?;
        let listener = tokio::net::TcpListener::bind(config.listen).await?;
        tracing::info!(
            listen = %listener.local_addr()?,
            workers = state.pool.workers(),
            config = ?config,
            version = env!("CARGO_PKG_VERSION"),
            "prefeval serving"
        );
        serve(listener, state, Duration::from_secs(config.shutdown_grace_secs)).await
    });
    match result {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!(%error, "prefeval failed");
            ExitCode::FAILURE
        }
    }
}
