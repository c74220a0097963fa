use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use prefeval::cli::healthcheck;
use prefeval::cli::{Action, Cli};
use prefeval::runtime::telemetry;
use prefeval::{AppState, Listeners, cli, serve};

/// Requests allocate and free many small blocks and a few large ones; see Cargo.toml.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let config = match Cli::parse().into_action() {
        Action::Serve(config) => config,
        Action::Healthcheck(args) => {
            return match healthcheck::probe(&args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("prefeval healthcheck: {error}");
                    ExitCode::FAILURE
                }
            };
        }
        Action::Eval(args) => return cli::eval::run(&args),
        Action::Merge(args) => return cli::merge::run(&args),
        Action::Compare(args) => return cli::compare::run(&args),
        Action::Diff(args) => return cli::diff::run(&args),
        Action::Report(args) => return cli::report::run(&args),
    };
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
        let main = tokio::net::TcpListener::bind(config.listen).await?;
        let metrics = match config.metrics_listen {
            Some(addr) => Some(tokio::net::TcpListener::bind(addr).await?),
            None => None,
        };
        let metrics_listen = match &metrics {
            Some(listener) => listener.local_addr()?.to_string(),
            None => "main listener".to_string(),
        };
        tracing::info!(
            listen = %main.local_addr()?,
            metrics_listen,
            workers = state.pool.workers(),
            config = ?config,
            version = env!("CARGO_PKG_VERSION"),
            "prefeval serving"
        );
        serve(Listeners { main, metrics }, state, Duration::from_secs(config.shutdown_grace_secs)).await;
        Ok::<(), std::io::Error>(())
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
