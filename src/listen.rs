//! Accepting connections and shutting down gracefully. Built on hyper directly (not
//! `axum::serve`) for the header-read timeout, which stops idle and trickling connections from
//! piling up.

use std::future::Future;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::server::{app, metrics_app};
use crate::state::AppState;

/// Where the service listens: the main address, and optionally a separate one for `/metrics`.
pub struct Listeners {
    pub main: TcpListener,
    pub metrics: Option<TcpListener>,
}

/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves until SIGTERM or SIGINT, then drains (see `serve_until`).
pub async fn serve(listeners: Listeners, state: AppState, grace: Duration) {
    serve_until(listeners, state, grace, shutdown_signal()).await
}

/// Serves until `stop` completes; then readiness turns 503 at once, the listeners close (no new
/// connection is taken), and in-flight requests get up to `grace` to finish before this returns.
pub async fn serve_until(
    listeners: Listeners,
    state: AppState,
    grace: Duration,
    stop: impl Future<Output = ()> + Send + 'static,
) {
    let header_timeout = Duration::from_secs(state.header_read_timeout_secs);
    let (stopping_tx, stopping_rx) = watch::channel(false);
    let draining = state.clone();
    tokio::spawn(async move {
        stop.await;
        tracing::info!(grace_secs = grace.as_secs(), "shutdown requested; draining");
        draining.begin_draining();
        let _ = stopping_tx.send(true);
    });
    let metrics = listeners.metrics.map(|listener| {
        let router = metrics_app(state.clone());
        tokio::spawn(accept_loop(listener, router, header_timeout, stopping_rx.clone()))
    });
    let drained = accept_loop(listeners.main, app(state), header_timeout, stopping_rx).await;
    let finished = tokio::time::timeout(grace, drained.shutdown()).await;
    if finished.is_err() {
        tracing::warn!("grace period over with requests still in flight; exiting");
    }
    if let Some(metrics) = metrics {
        metrics.abort();
    }
}

/// Accepts until `stopping` turns true; returns the connections still open, to be drained.
async fn accept_loop(
    listener: TcpListener,
    router: axum::Router,
    header_timeout: Duration,
    mut stopping: watch::Receiver<bool>,
) -> GracefulShutdown {
    let graceful = GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(header_timeout);
    builder.http2().timer(TokioTimer::new());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _peer)) => stream,
                    Err(error) => {
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let service = TowerToHyperService::new(router.clone());
                let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned();
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                });
            }
            // The guard `wait_for` returns is not `Send`; drop it inside the future.
            _ = async { stopping.wait_for(|stopping| *stopping).await.map(|_| ()) } => break,
        }
    }
    graceful
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
