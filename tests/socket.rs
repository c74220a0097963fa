//! The service on a real TCP socket (port 0 on 127.0.0.1): the binary as a user starts it, and the
//! library's `serve_until` with graceful draining.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{WORKED_EXAMPLE, WORKED_EXAMPLE_LOSS, close, hold_worker, test_config};
use prefeval::config::Config;
use prefeval::{AppState, Listeners, serve_until};
use serde_json::Value;

/// One HTTP/1.1 exchange with `Connection: close`; returns status and body.
fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connects");
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("reads the answer");
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status line");
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

#[test]
fn binary_serves_over_tcp_and_exits_zero_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_prefeval"))
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json", "--workers", "2"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("binary starts");
    let mut log = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    log.read_line(&mut line).expect("startup line");
    let startup: Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("startup line is not JSON ({e}): {line}"));
    assert_eq!(startup["message"], "prefeval serving");
    assert!(startup["config"].as_str().unwrap().contains("queue_depth: 64"), "effective config logged: {line}");
    let addr: SocketAddr = startup["listen"].as_str().unwrap().parse().unwrap();

    assert_eq!(http(addr, "GET", "/healthz", None).0, 200);
    let (status, body) = http(addr, "POST", "/v1/evaluate", Some(WORKED_EXAMPLE));
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert!(close(answer["loss"].as_f64().unwrap(), WORKED_EXAMPLE_LOSS));

    let probe = |target: &str| {
        Command::new(env!("CARGO_BIN_EXE_prefeval")).args(["healthcheck", "--listen", target]).output().unwrap()
    };
    assert!(probe(&addr.to_string()).status.success(), "healthcheck passes against the live server");
    let wildcard = format!("0.0.0.0:{}", addr.port());
    assert!(probe(&wildcard).status.success(), "a wildcard listen address is probed on loopback");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap(); // freed at once
    let failed = probe(&closed.to_string());
    assert!(!failed.status.success());
    assert!(String::from_utf8_lossy(&failed.stderr).contains("cannot connect"));

    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let mut exit = None;
    for _ in 0..100 {
        if let Some(status) = child.try_wait().unwrap() {
            exit = Some(status);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let exit = exit.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("prefeval did not exit within 10 s of SIGTERM")
    });
    assert!(exit.success(), "exit status {exit:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_turns_readiness_off_and_finishes_in_flight_requests() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = AppState::new(&Config { workers: Some(1), ..test_config() }).unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_until(
        Listeners { main: listener, metrics: None },
        state.clone(),
        Duration::from_secs(10),
        async {
            let _ = stop_rx.await;
        },
    ));

    let ready = tokio::task::spawn_blocking(move || http(addr, "GET", "/readyz", None)).await.unwrap();
    assert_eq!(ready.0, 200);

    // Hold the pool so that a request is provably in flight (admitted, waiting) when shutdown begins.
    let held = hold_worker(&state);
    let in_flight = tokio::task::spawn_blocking(move || http(addr, "POST", "/v1/evaluate", Some(WORKED_EXAMPLE)));
    for _ in 0..500 {
        if state.pool.queued() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(state.pool.queued(), 1, "the request reached the pool");
    stop_tx.send(()).unwrap();
    for _ in 0..500 {
        if !state.is_ready() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!state.is_ready(), "readiness turns off as soon as shutdown begins");
    held.release().await;

    let (status, body) = in_flight.await.unwrap();
    assert_eq!(status, 200, "the in-flight request completes: {body}");
    let done = tokio::time::timeout(Duration::from_secs(15), server).await.expect("server stops");
    done.unwrap();
    assert!(TcpStream::connect(addr).is_err(), "no new connections after shutdown");
}

#[test]
fn every_log_line_of_a_request_carries_its_request_id() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_prefeval"))
        .args(["--listen", "127.0.0.1:0", "--log-format", "json", "--log-level", "debug", "--workers", "1"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("binary starts");
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let startup: Value = serde_json::from_str(&lines_rx.recv_timeout(Duration::from_secs(30)).unwrap()).unwrap();
    let addr: SocketAddr = startup["listen"].as_str().unwrap().parse().unwrap();

    let mut stream = TcpStream::connect(addr).unwrap();
    let body = r#"{"lists":[{"items":[{"reward":1},{"reward":"x"}]}]}"#;
    write!(
        stream,
        "POST /v1/evaluate HTTP/1.1\r\nHost: t\r\nx-request-id: trace-me-1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.contains(r#""request_id":"trace-me-1""#), "{answer}");

    let mut request_lines = Vec::new();
    while let Ok(line) = lines_rx.recv_timeout(Duration::from_millis(500)) {
        let entry: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
        if entry["span"]["name"] == "request" {
            request_lines.push(entry);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(request_lines.len() >= 2, "the request was logged (start and finish)");
    for entry in &request_lines {
        assert_eq!(entry["span"]["request_id"], "trace-me-1", "{entry}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_gives_up_on_requests_still_running_after_the_grace_period() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = AppState::new(&Config { workers: Some(1), ..test_config() }).unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_until(
        Listeners { main: listener, metrics: None },
        state.clone(),
        Duration::from_secs(1),
        async {
            let _ = stop_rx.await;
        },
    ));
    // A request stuck behind a worker that never frees up within the grace period.
    let held = hold_worker(&state);
    let _stuck = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        let head = format!(
            "POST /v1/evaluate HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{WORKED_EXAMPLE}",
            WORKED_EXAMPLE.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        let mut rest = String::new();
        let _ = stream.read_to_string(&mut rest);
    });
    for _ in 0..500 {
        if state.pool.queued() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(state.pool.queued(), 1, "the request reached the pool");
    stop_tx.send(()).unwrap();
    let stopped = tokio::time::timeout(Duration::from_secs(10), server).await;
    assert!(stopped.is_ok(), "serve_until returns once the 1 s grace period is over");
    held.release().await;
}
