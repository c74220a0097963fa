//! The binary as a user starts it, on a real TCP socket (port 0 on 127.0.0.1): serving, the
//! healthcheck command, SIGTERM, and what its logs hold.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::helpers::{Raw, WORKED_EXAMPLE, WORKED_EXAMPLE_LOSS, close};

/// One HTTP/1.1 exchange with `Connection: close`; returns status and body.
fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let body = body.unwrap_or("");
    let answer =
        Raw::whole_body_then_read(addr, method, path, &[("Content-Type", "application/json")], body.as_bytes())
            .expect("reads the answer");
    (answer.status.as_u16(), answer.text().to_string())
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

    let body = r#"{"lists":[{"items":[{"reward":1},{"reward":"x"}]}]}"#;
    let headers = [("x-request-id", "trace-me-1"), ("Content-Type", "application/json")];
    let answer = Raw::whole_body_then_read(addr, "POST", "/v1/evaluate", &headers, body.as_bytes()).unwrap();
    assert!(answer.text().contains(r#""request_id":"trace-me-1""#), "{}", answer.text());

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

#[test]
fn tokens_never_appear_in_the_startup_log() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_prefeval"))
        .args(["--listen", "127.0.0.1:0", "--log-format", "json", "--workers", "1"])
        .env("PREFEVAL_API_TOKENS", "sup3r-secret-token")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stderr.take().unwrap()), &mut line).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(line.contains("prefeval serving"), "{line}");
    assert!(!line.contains("sup3r"), "token leaked into the log: {line}");
    assert!(line.contains("redacted"), "{line}");
}
