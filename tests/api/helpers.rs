//! The test harness: a real server per test (`TestApp`: the serving loop of the binary on
//! 127.0.0.1:0, on the test's runtime) and the one client of its answers (`Answer`); a raw socket
//! client (`Raw`) for the tests that need byte-level control of HTTP/1.1; the built binary
//! (`BinaryServer`); the seeded generator and the shared test data.
#![allow(dead_code)] // the cli binary includes this file too and uses only part of it

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use prefeval::config::Config;
use prefeval::server::tokens::ApiTokens;
use prefeval::{AppState, Listeners, serve_until};
use serde_json::Value;
use tower::ServiceExt;

pub use prefeval_testkit::SplitMix64;

// ----- the server ------------------------------------------------------------------------------

/// The settings of a `TestApp`: the built-in defaults with a pool of two workers, so that tests do
/// not start one thread per CPU each.
pub struct TestAppBuilder {
    config: Config,
    grace: Duration,
    metrics_listener: bool,
}

impl TestAppBuilder {
    pub fn workers(mut self, workers: u16) -> Self {
        self.config.workers = Some(workers);
        self
    }

    pub fn queue_depth(mut self, depth: usize) -> Self {
        self.config.queue_depth = depth;
        self
    }

    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.config.memory_limit_bytes = Some(bytes);
        self
    }

    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.config.max_body_bytes = bytes;
        self
    }

    pub fn max_model_labels(mut self, labels: usize) -> Self {
        self.config.max_model_labels = labels;
        self
    }

    /// Comma-separated, as `--api-tokens` takes them.
    pub fn api_tokens(mut self, tokens: &str) -> Self {
        self.config.api_tokens = Some(ApiTokens::parse(tokens));
        self
    }

    pub fn api_tokens_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.api_tokens_file = Some(path.into());
        self
    }

    pub fn cors_origins(mut self, origins: &[&str]) -> Self {
        self.config.cors_origins = origins.iter().map(|origin| origin.to_string()).collect();
        self
    }

    pub fn request_timeout_secs(mut self, secs: u64) -> Self {
        self.config.request_timeout_secs = secs;
        self
    }

    pub fn header_read_timeout_secs(mut self, secs: u64) -> Self {
        self.config.header_read_timeout_secs = secs;
        self
    }

    /// Any other setting.
    pub fn with(mut self, change: impl FnOnce(&mut Config)) -> Self {
        change(&mut self.config);
        self
    }

    /// How long in-flight requests get once the server is told to stop (default 2 s).
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Serve `/metrics` on a listener of its own (`--metrics-listen`) instead of the main one.
    pub fn metrics_listener(mut self) -> Self {
        self.metrics_listener = true;
        self
    }

    /// The settings as built so far.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Starts the server on 127.0.0.1:0 on the current runtime; it stops (and drains) when the
    /// `TestApp` is dropped or `stop` is called.
    pub async fn build(mut self) -> TestApp {
        let main = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds a free port");
        let addr = main.local_addr().expect("a local address");
        let metrics = if self.metrics_listener {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds a free port");
            self.config.metrics_listen = Some(listener.local_addr().expect("a local address"));
            Some(listener)
        } else {
            None
        };
        let metrics_addr = self.config.metrics_listen;
        let state = AppState::new(&self.config).expect("the service starts");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_until(Listeners { main, metrics }, state.clone(), self.grace, async {
            let _ = stopped.await;
        }));
        TestApp {
            addr,
            metrics_addr,
            state,
            config: self.config,
            stop: Mutex::new(Some(stop)),
            server: Mutex::new(Some(server)),
            idle: Mutex::new(Vec::new()),
        }
    }
}

/// A running server and a keep-alive client of it.
pub struct TestApp {
    pub addr: SocketAddr,
    /// Where `/metrics` is served when `metrics_listener` was asked for.
    pub metrics_addr: Option<SocketAddr>,
    pub state: AppState,
    pub config: Config,
    stop: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    server: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Open connections between requests, reused: tests that send thousands of requests would
    /// otherwise leave thousands of sockets in TIME_WAIT.
    idle: Mutex<Vec<SendRequest<Body>>>,
}

impl TestApp {
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            config: Config { workers: Some(2), ..Config::default() },
            grace: Duration::from_secs(2),
            metrics_listener: false,
        }
    }

    /// A server with the test defaults.
    pub async fn spawn() -> TestApp {
        TestApp::builder().build().await
    }

    /// `POST /v1/evaluate` as `application/json`.
    pub async fn evaluate(&self, body: impl Payload) -> Answer {
        self.request(Method::POST, "/v1/evaluate", &[("content-type", "application/json")], body).await
    }

    /// `POST /v1/compare` as `application/json`.
    pub async fn compare(&self, body: impl Payload) -> Answer {
        self.request(Method::POST, "/v1/compare", &[("content-type", "application/json")], body).await
    }

    /// `POST /v1/evaluate/stream?query` with an NDJSON body.
    pub async fn stream(&self, query: &str, body: impl Payload) -> Answer {
        let path =
            if query.is_empty() { "/v1/evaluate/stream".to_string() } else { format!("/v1/evaluate/stream?{query}") };
        self.request(Method::POST, &path, &[("content-type", "application/x-ndjson")], body).await
    }

    /// `GET /metrics` (on the main listener).
    pub async fn metrics(&self) -> Answer {
        self.get("/metrics").await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.request(Method::GET, path, &[], Vec::new()).await
    }

    /// Any request; its body is sent with its Content-Length.
    pub async fn request(&self, method: Method, path: &str, headers: &[(&str, &str)], body: impl Payload) -> Answer {
        let body = Bytes::from(body.into_bytes());
        let build = || {
            let mut request =
                Request::builder().method(method.clone()).uri(path).header(header::HOST, self.addr.to_string());
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            request.body(Body::from(body.clone())).expect("request builds")
        };
        // A kept-alive connection the server has just closed fails the request before it is
        // sent; the request is then sent again on a new connection.
        if let Some(connection) = self.idle_connection().await {
            if let Ok(answer) = self.exchange(connection, build()).await {
                return answer;
            }
        }
        let connection = self.connect().await;
        self.exchange(connection, build()).await.unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// A request built by the test (any body, streamed ones included), on a new connection.
    pub async fn send(&self, mut request: Request<Body>) -> Answer {
        if !request.headers().contains_key(header::HOST) {
            request
                .headers_mut()
                .insert(header::HOST, HeaderValue::from_str(&self.addr.to_string()).expect("a header"));
        }
        let what = format!("{} {}", request.method(), request.uri());
        let connection = self.connect().await;
        self.exchange(connection, request).await.unwrap_or_else(|e| panic!("{what}: {e}"))
    }

    /// The raw socket client, connected to this server.
    pub fn raw(&self) -> Raw {
        Raw::connect(self.addr)
    }

    /// Tells the server to stop and waits until it has (drained within the grace period).
    pub async fn stop(self) {
        self.begin_stop();
        let server = self.serving_loop();
        tokio::time::timeout(Duration::from_secs(15), server).await.expect("the server stops").expect("serves");
    }

    /// Tells the server to stop (as SIGTERM does) without waiting for it.
    pub fn begin_stop(&self) {
        self.idle.lock().expect("idle connections").clear();
        drop(self.stop.lock().expect("stop signal").take());
    }

    /// The serving loop's task (`serve_until`), to wait for its end; taken once.
    pub fn serving_loop(&self) -> tokio::task::JoinHandle<()> {
        self.server.lock().expect("server task").take().expect("the serving loop is taken once")
    }

    async fn idle_connection(&self) -> Option<SendRequest<Body>> {
        loop {
            let mut connection = self.idle.lock().expect("idle connections").pop()?;
            if connection.ready().await.is_ok() {
                return Some(connection);
            }
        }
    }

    async fn connect(&self) -> SendRequest<Body> {
        let stream = tokio::net::TcpStream::connect(self.addr).await.expect("connects");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("HTTP/1.1 handshake");
        tokio::spawn(async move {
            let _ = connection.await;
        });
        sender
    }

    async fn exchange(
        &self,
        mut connection: SendRequest<Body>,
        request: Request<Body>,
    ) -> Result<Answer, hyper::Error> {
        connection.ready().await?;
        let response = connection.send_request(request).await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await?.to_bytes().to_vec();
        if connection.ready().await.is_ok() {
            self.idle.lock().expect("idle connections").push(connection);
        }
        Ok(Answer { status, headers, body })
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Dropping the sender is the stop signal; the serving loop drains on the test's runtime.
        if let Ok(stop) = self.stop.get_mut() {
            stop.take();
        }
    }
}

/// A request body: JSON values are serialized, text and bytes sent as they are.
pub trait Payload {
    fn into_bytes(self) -> Vec<u8>;
}

impl Payload for &Value {
    fn into_bytes(self) -> Vec<u8> {
        serde_json::to_vec(self).expect("serializes")
    }
}

impl Payload for Value {
    fn into_bytes(self) -> Vec<u8> {
        serde_json::to_vec(&self).expect("serializes")
    }
}

impl Payload for &str {
    fn into_bytes(self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
}

impl Payload for String {
    fn into_bytes(self) -> Vec<u8> {
        self.into_bytes()
    }
}

impl Payload for &String {
    fn into_bytes(self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
}

impl Payload for &[u8] {
    fn into_bytes(self) -> Vec<u8> {
        self.to_vec()
    }
}

impl<const N: usize> Payload for &[u8; N] {
    fn into_bytes(self) -> Vec<u8> {
        self.to_vec()
    }
}

impl Payload for Vec<u8> {
    fn into_bytes(self) -> Vec<u8> {
        self
    }
}

impl Payload for &Vec<u8> {
    fn into_bytes(self) -> Vec<u8> {
        self.clone()
    }
}

impl Payload for Bytes {
    fn into_bytes(self) -> Vec<u8> {
        self.to_vec()
    }
}

/// The router in-process (`oneshot`), for the one test that serves a route of its own
/// (`app_with`), which the serving loop cannot be given.
pub async fn oneshot(router: &Router, request: Request<Body>) -> Answer {
    let response = router.clone().oneshot(request).await.expect("router is infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.expect("body reads").to_bytes().to_vec();
    Answer { status, headers, body }
}

// ----- the answer ------------------------------------------------------------------------------

/// An answer as the client saw it (a chunked body de-chunked).
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

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("UTF-8 body")
    }

    /// A header's value, when it is there and is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// An NDJSON body, one value a line.
    pub fn ndjson(&self) -> Vec<Value> {
        self.text()
            .lines()
            .filter(|line| !line.is_empty())
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("NDJSON line ({e}): {line}")))
            .collect()
    }

    /// Parses an HTTP/1.1 answer as read off a socket.
    pub fn parse(raw: &[u8]) -> Answer {
        let split =
            find(raw, b"\r\n\r\n").unwrap_or_else(|| panic!("no complete head in {:?}", String::from_utf8_lossy(raw)));
        let head = std::str::from_utf8(&raw[..split]).expect("ASCII head");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse::<u16>().ok())
            .and_then(|code| StatusCode::from_u16(code).ok())
            .unwrap_or_else(|| panic!("status line {status_line:?}"));
        let mut headers = HeaderMap::new();
        for line in lines {
            let (name, value) = line.split_once(':').unwrap_or_else(|| panic!("header line {line:?}"));
            headers.append(
                HeaderName::from_bytes(name.trim().as_bytes()).expect("a header name"),
                HeaderValue::from_str(value.trim()).expect("a header value"),
            );
        }
        let mut answer = Answer { status, headers, body: raw[split + 4..].to_vec() };
        if answer.header("transfer-encoding").is_some_and(|te| te.eq_ignore_ascii_case("chunked")) {
            answer.body = dechunk(&answer.body);
        }
        answer
    }
}

// ----- the raw socket client -------------------------------------------------------------------

/// How a request body goes on the wire.
#[derive(Clone, Copy)]
pub enum Framing<'a> {
    Length,
    /// `Transfer-Encoding: chunked`, in chunks of these sizes (cycled).
    Chunked(&'a [usize]),
}

/// A plain blocking TCP connection, for what a well-behaved client never does: a body cut short,
/// headers that never end, the whole body written before anything is read, HTTP/2 frames by hand.
/// Use it from `spawn_blocking` inside async tests.
pub struct Raw {
    pub stream: TcpStream,
}

impl Raw {
    pub fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).expect("connects");
        stream.set_read_timeout(Some(Duration::from_secs(60))).expect("read timeout");
        stream.set_write_timeout(Some(Duration::from_secs(60))).expect("write timeout");
        Raw { stream }
    }

    pub fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads until the server closes the connection (or 10 s pass); what arrived, and when.
    pub fn read_until_closed(&mut self) -> (String, Duration) {
        let started = Instant::now();
        self.stream.set_read_timeout(Some(Duration::from_secs(10))).expect("read timeout");
        let mut received = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            match self.stream.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
        (String::from_utf8_lossy(&received).into_owned(), started.elapsed())
    }

    /// Reads the whole answer (the server closes the connection after it).
    pub fn read_answer(&mut self) -> std::io::Result<Answer> {
        let mut response = Vec::new();
        self.stream.read_to_end(&mut response)?;
        Ok(Answer::parse(&response))
    }

    /// What `http.client` and many other clients do: write the request (`Connection: close`)
    /// and its whole body, and only then read the answer.
    pub fn whole_body_then_read(
        addr: SocketAddr,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<Answer> {
        let mut raw = Raw::connect(addr);
        raw.write(request_head(addr, method, path, headers, body.len(), Framing::Length).as_bytes())?;
        raw.write(body)?;
        raw.read_answer()
    }

    /// `bytes` written as they are, on a thread of their own while this one reads the whole answer
    /// (a write error is ignored: the server may answer, and stop reading, before the end).
    pub fn send_bytes(addr: SocketAddr, bytes: &[u8]) -> Answer {
        let mut raw = Raw::connect(addr);
        let mut writer = raw.stream.try_clone().expect("socket clones");
        std::thread::scope(|scope| {
            scope.spawn(move || {
                let _ = writer.write_all(bytes).and_then(|()| writer.flush());
            });
            raw.read_answer().expect("reads the answer")
        })
    }

    /// `GET path` with `Connection: close`, written whole before reading.
    pub fn get(addr: SocketAddr, path: &str) -> std::io::Result<Answer> {
        Raw::whole_body_then_read(addr, "GET", path, &[], b"")
    }

    /// One request with `Connection: close`; the whole answer. The body is written on a thread of
    /// its own while this one reads: the stream answers while it reads, as a real client must
    /// allow.
    pub fn exchange(
        addr: SocketAddr,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        framing: Framing<'_>,
    ) -> Answer {
        let mut raw = Raw::connect(addr);
        let head = request_head(addr, method, target, headers, body.len(), framing);
        let mut writer = raw.stream.try_clone().expect("socket clones");
        std::thread::scope(|scope| {
            // A write error means the server answered without reading everything: the answer says why.
            scope.spawn(move || {
                let _ = send_body(&mut writer, head.as_bytes(), body, framing);
            });
            raw.read_answer().expect("reads the answer")
        })
    }
}

fn request_head(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    length: usize,
    framing: Framing<'_>,
) -> String {
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    match framing {
        Framing::Length => head.push_str(&format!("Content-Length: {length}\r\n\r\n")),
        Framing::Chunked(_) => head.push_str("Transfer-Encoding: chunked\r\n\r\n"),
    }
    head
}

fn send_body(writer: &mut TcpStream, head: &[u8], body: &[u8], framing: Framing<'_>) -> std::io::Result<()> {
    writer.write_all(head)?;
    match framing {
        Framing::Length => writer.write_all(body)?,
        Framing::Chunked(sizes) => {
            let mut rest = body;
            for &size in sizes.iter().cycle().take(body.len()) {
                if rest.is_empty() {
                    break;
                }
                let (piece, after) = rest.split_at(size.clamp(1, rest.len()));
                write!(writer, "{:x}\r\n", piece.len())?;
                writer.write_all(piece)?;
                writer.write_all(b"\r\n")?;
                writer.flush()?;
                rest = after;
            }
            writer.write_all(b"0\r\n\r\n")?;
        }
    }
    writer.flush()
}

/// The payload of a chunked body (chunk extensions and trailers ignored).
fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    // Each round consumes at least the size line's CRLF, so this ends.
    while !data.is_empty() {
        let end = find(data, b"\r\n").expect("a chunk size line");
        let size_line = std::str::from_utf8(&data[..end]).expect("ASCII size line");
        let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16).expect("hex size");
        data = &data[end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        assert_eq!(&data[size..size + 2], b"\r\n", "a chunk ends with CRLF");
        data = &data[size + 2..];
    }
    panic!("the chunked body has no last chunk")
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

// ----- the pool --------------------------------------------------------------------------------

/// One pool worker held busy until `release`, for tests of queueing, shedding and draining.
pub struct HeldWorker {
    release: std::sync::mpsc::Sender<()>,
    job: prefeval::runtime::pool::PendingJob<()>,
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

// ----- the binary ------------------------------------------------------------------------------

/// The binary, started as a user starts it (`serve` on a free port of 127.0.0.1, JSON logs),
/// with `args` added; killed when dropped.
pub struct BinaryServer {
    child: std::process::Child,
    pub addr: SocketAddr,
}

impl BinaryServer {
    pub fn start(args: &[&str]) -> BinaryServer {
        BinaryServer::start_with_env(args, &[])
    }

    /// As `start`, with these environment variables set for the server.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> BinaryServer {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_prefeval"))
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json", "--log-level", "warn,prefeval=info"])
            .args(args)
            .envs(env.iter().copied())
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

// ----- shared data -----------------------------------------------------------------------------

/// `tests/data`: the vendored test data (golden vectors), read-only; see its README.md.
pub fn test_data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("data")
}

/// |got − expected| ≤ max(1e-12·|expected|, 1e-15), the golden vectors' tolerance.
pub fn close(got: f64, expected: f64) -> bool {
    (got - expected).abs() <= (1e-12 * expected.abs()).max(1e-15)
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

// ----- compressed bodies -----------------------------------------------------------------------

/// `data` as gzip (one member, the default level).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// `data` as one zstd frame (level 3).
pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::bulk::compress(data, 3).unwrap()
}
