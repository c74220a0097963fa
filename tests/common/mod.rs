//! Test harness: drives the real router in-process (`oneshot`), exactly as a client would see it.
#![allow(dead_code)]

use std::path::PathBuf;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use prefeval::config::Config;
use prefeval::{AppState, app};
use serde_json::Value;
use tower::ServiceExt;

#[path = "../../src/eval/test_rng.rs"]
mod rng;
#[allow(unused_imports)] // not every test crate draws random data
pub use rng::SplitMix64;

/// The built-in defaults with a small pool, so tests do not start one thread per CPU each.
pub fn test_config() -> Config {
    Config { workers: Some(2), ..Config::default() }
}

pub fn router_with(config: &Config) -> (Router, AppState) {
    let state = AppState::new(config).expect("worker pool starts");
    (app(state.clone()), state)
}

pub fn router() -> Router {
    router_with(&test_config()).0
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// `error.code` of a JSON error body.
    pub fn error_code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap_or_else(|| panic!("no error.code in {}", self.json())).to_string()
    }

    pub fn error_path(&self) -> Option<String> {
        self.json()["error"]["path"].as_str().map(str::to_string)
    }
}

pub async fn send(router: &Router, request: Request<Body>) -> Answer {
    let response = router.clone().oneshot(request).await.expect("router is infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.expect("body reads").to_bytes().to_vec();
    Answer { status, headers, body }
}

/// POST raw bytes to `/v1/evaluate` as `application/json`.
pub async fn post_bytes(router: &Router, body: impl Into<Body>) -> Answer {
    let request = Request::builder()
        .method(Method::POST)
        .uri("/v1/evaluate")
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .expect("request builds");
    send(router, request).await
}

pub async fn post_json(router: &Router, body: &Value) -> Answer {
    post_bytes(router, serde_json::to_vec(body).expect("serializes")).await
}

pub async fn get(router: &Router, uri: &str) -> Answer {
    send(router, Request::builder().uri(uri).body(Body::empty()).expect("request builds")).await
}

/// `tests/data`: the vendored test data (golden vectors), read-only; see its README.md.
pub fn test_data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("data")
}

/// |got − expected| ≤ max(1e-12·|expected|, 1e-15), the golden vectors' tolerance.
pub fn close(got: f64, expected: f64) -> bool {
    (got - expected).abs() <= (1e-12 * expected.abs()).max(1e-15)
}

/// One pool worker held busy until `release`, for tests of queueing, shedding and draining.
pub struct HeldWorker {
    release: std::sync::mpsc::Sender<()>,
    job: prefeval::pool::PendingJob<()>,
}

/// Occupies a worker of `state`'s pool and returns once the worker is provably running the job.
pub fn hold_worker(state: &AppState) -> HeldWorker {
    let (release, hold) = std::sync::mpsc::channel::<()>();
    let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
    let job = state
        .pool
        .submit(move |_| {
            started_tx.send(()).expect("test waits for the start");
            // Returns when released, or when the test is gone.
            let _ = hold.recv();
        })
        .expect("the pool admits the holding job");
    started_rx.recv().expect("the holding job starts");
    HeldWorker { release, job }
}

impl HeldWorker {
    pub async fn release(self) {
        let _ = self.release.send(());
        self.job.wait().await.expect("the holding job ends");
    }
}

/// The worked example of `docs/design/api.md`, exactly as the page shows it.
pub const WORKED_EXAMPLE: &str = r#"{
  "model": "rm-7b-step-1200",
  "options": { "normalization": "ordered_pairs", "include_pairs": true, "beta": 1.0 },
  "lists": [
    { "id": "prompt-0001",
      "items": [ {"id": "C", "reward": 1.7}, {"id": "A", "reward": 0.4},
                 {"id": "D", "reward": 0.9}, {"id": "B", "reward": -0.3} ] },
    { "id": "prompt-0002",
      "items": [ {"id": "x", "reward": 0.2, "rank": 1}, {"id": "y", "reward": 0.5, "rank": 1},
                 {"id": "z", "reward": -1.0, "rank": 2} ] }
  ]
}"#;

/// Its batch loss, from the golden vectors.
pub const WORKED_EXAMPLE_LOSS: f64 = 0.13787392174453775;

/// The binary, started as a user starts it (`serve` on a free port of 127.0.0.1, JSON logs),
/// with `args` added; killed when dropped.
pub struct BinaryServer {
    child: std::process::Child,
    pub addr: std::net::SocketAddr,
}

impl BinaryServer {
    pub fn start(args: &[&str]) -> BinaryServer {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_prefeval"))
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json", "--log-level", "warn,prefeval=info"])
            .args(args)
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("binary starts");
        let mut log = std::io::BufReader::new(child.stderr.take().expect("stderr is piped"));
        let mut line = String::new();
        log.read_line(&mut line).expect("startup line");
        let startup: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("startup line ({e}): {line}"));
        let addr = startup["listen"].as_str().expect("listen address logged").parse().expect("an address");
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut log, &mut std::io::sink()));
        BinaryServer { child, addr }
    }

    /// Peak resident set of the server so far (VmHWM), in bytes.
    pub fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("proc status");
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM line");
        let kib: u64 = line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("VmHWM value");
        kib * 1024
    }
}

impl Drop for BinaryServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
