//! Accepting connections and shutting down gracefully. Built on hyper directly (not
//! `axum::serve`) for the header-read timeout, which stops idle and trickling connections from
//! piling up, the cap on open connections, an idle timeout that also covers HTTP/2, the write
//! timeout that closes connections whose client stops taking answer bytes, and the lingering
//! close of `crate::server::connection`.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulConnection;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

use crate::runtime::metrics::Metrics;
use crate::server::connection::{Activity, ClientStream, LingerOnClose};
use crate::server::outbound::outbound;
use crate::server::parse_errors::ParseErrorBodies;
use crate::server::routes::{app, metrics_app};
use crate::server::state::AppState;

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

/// How connections of one listener are kept.
#[derive(Clone)]
struct ConnectionRules {
    /// For the request headers, and how long a connection may sit idle.
    header_timeout: Duration,
    max_connections: u32,
    /// How long answer bytes may wait for a client that takes none before the connection closes.
    write_timeout: Duration,
    /// Streams one HTTP/2 connection may have open at once.
    max_concurrent_streams: u32,
    /// Counts the open connections, for the metrics gauge.
    open: Option<Arc<AtomicUsize>>,
    metrics: Arc<Metrics>,
}

/// Serves until `stop` completes; then readiness turns 503 at once, the listeners close (no new
/// connection is taken), and in-flight requests get up to `grace` to finish before this returns.
pub async fn serve_until(
    listeners: Listeners,
    state: AppState,
    grace: Duration,
    stop: impl Future<Output = ()> + Send + 'static,
) {
    let rules = ConnectionRules {
        header_timeout: Duration::from_secs(state.header_read_timeout_secs),
        max_connections: state.max_connections,
        write_timeout: Duration::from_secs(state.write_timeout_secs),
        max_concurrent_streams: state.max_concurrent_streams,
        open: Some(Arc::clone(&state.open_connections)),
        metrics: Arc::clone(&state.metrics),
    };
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
        let rules = ConnectionRules { open: None, ..rules.clone() };
        tokio::spawn(accept_loop(listener, router, rules, stopping_rx.clone()))
    });
    let open = accept_loop(listeners.main, app(state), rules, stopping_rx).await;
    if tokio::time::timeout(grace, open.all_closed()).await.is_err() {
        tracing::warn!("grace period over with requests still in flight; exiting");
    }
    if let Some(metrics) = metrics {
        metrics.abort();
    }
}

/// The connections of one listener, each holding a permit until it closes.
struct OpenConnections {
    permits: Arc<Semaphore>,
    max: u32,
}

impl OpenConnections {
    async fn all_closed(self) {
        let _ = self.permits.acquire_many(self.max).await;
    }
}

/// Accepts until `stopping` turns true; returns the connections still open, to be drained. At
/// most `max_connections` are open at once: past that, new ones wait in the kernel's backlog.
async fn accept_loop(
    listener: TcpListener,
    router: axum::Router,
    rules: ConnectionRules,
    stopping: watch::Receiver<bool>,
) -> OpenConnections {
    let permits = Arc::new(Semaphore::new(rules.max_connections as usize));
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(rules.header_timeout);
    builder.http2().timer(TokioTimer::new()).max_concurrent_streams(rules.max_concurrent_streams);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = stopped(stopping.clone()) => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = stopped(stopping.clone()) => break,
        };
        let _ = stream.set_nodelay(true);
        let activity = Activity::new();
        let client = ClientStream::new(stream, Arc::clone(&activity));
        let io = TokioIo::new(ParseErrorBodies::new(client, Arc::clone(&activity)));
        let connection = builder
            .serve_connection_with_upgrades(io, per_connection(router.clone(), Arc::clone(&activity)))
            .into_owned();
        let open = rules.open.clone();
        let timeouts = Timeouts { idle: rules.header_timeout, write: rules.write_timeout };
        let metrics = Arc::clone(&rules.metrics);
        let stopping = stopping.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _open = open.map(OpenGauge::enter);
            if drive(connection, &activity, timeouts, stopping).await == Ended::WriteStalled {
                metrics.write_timed_out();
                tracing::warn!(
                    write_timeout_secs = timeouts.write.as_secs(),
                    "closed a connection whose client took no answer bytes for the write timeout"
                );
            }
        });
    }
    OpenConnections { permits, max: rules.max_connections }
}

/// The router as one connection's service: each request carries the connection's linger switch
/// and counts as in flight until its answer is produced; each answer body goes out in frames
/// counted on the connection until written (`crate::server::outbound`).
fn per_connection(
    router: axum::Router,
    activity: Arc<Activity>,
) -> TowerToHyperService<
    impl tower::Service<
        Request<Incoming>,
        Response = axum::response::Response,
        Error = std::convert::Infallible,
        Future = impl Send,
    > + Clone,
> {
    TowerToHyperService::new(tower::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(LingerOnClose(Arc::clone(&activity)));
        let in_flight = activity.request_started();
        // Over HTTP/2 each answer has a write clock of its own (see `outbound`).
        let http2 = request.version() == axum::http::Version::HTTP_2;
        let answer = router.clone().oneshot(request);
        let activity = Arc::clone(&activity);
        async move {
            let response = answer.await;
            drop(in_flight);
            response.map(|response| response.map(|body| outbound(body, activity, http2)))
        }
    }))
}

#[derive(Clone, Copy)]
struct Timeouts {
    idle: Duration,
    write: Duration,
}

/// How a connection ended.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// The connection finished (closed by either side, or shut down gracefully).
    Closed,
    /// Answer bytes waited for the write timeout without the client taking one: dropped, with
    /// every request, body and reservation it held.
    WriteStalled,
}

/// Runs one connection to its end: shuts it down gracefully when the server stops, or when it
/// has been idle (no request in flight, no byte moved) for the idle timeout, over HTTP/1 and
/// HTTP/2 alike; drops it when its answers have waited for the write timeout.
async fn drive<C>(connection: C, activity: &Activity, timeouts: Timeouts, stopping: watch::Receiver<bool>) -> Ended
where
    C: GracefulConnection,
    C::Error: std::fmt::Display,
{
    let mut connection = std::pin::pin!(connection);
    let mut closing = false;
    let idle = timeouts.idle;
    loop {
        let idle_at = tokio::time::Instant::from_std(activity.idle_deadline(idle));
        let stall_at = tokio::time::Instant::from_std(activity.write_deadline(timeouts.write));
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended with an error");
                }
                return Ended::Closed;
            }
            // A graceful shutdown waits for answers to be written: a stalled one ends it too.
            () = tokio::time::sleep_until(stall_at) => {
                if activity.is_write_stalled(timeouts.write) {
                    return Ended::WriteStalled;
                }
            }
            () = stopped(stopping.clone()), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
            () = tokio::time::sleep_until(idle_at), if !closing => {
                if activity.is_idle(idle) {
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

/// Completes once the server is stopping.
async fn stopped(mut stopping: watch::Receiver<bool>) {
    // The guard `wait_for` returns is not `Send`; drop it inside this future.
    if stopping.wait_for(|stopping| *stopping).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// One open connection on the gauge.
struct OpenGauge(Arc<AtomicUsize>);

impl OpenGauge {
    fn enter(open: Arc<AtomicUsize>) -> OpenGauge {
        open.fetch_add(1, Ordering::Relaxed);
        OpenGauge(open)
    }
}

impl Drop for OpenGauge {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
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
