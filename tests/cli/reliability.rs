//! Reliability against real clients, through the binary a user starts: memory that a flood of
//! large batches cannot exhaust, early refusals that a client writing its whole body first can
//! still read, the cap on open connections, and the idle timeout of HTTP/2 connections.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::helpers::{Answer, BinaryServer, Raw};
use crate::stalls::h2_frame;

/// What `http.client` and many other clients do: write the request and its whole body, and only
/// then read the answer (to the end: `Connection: close`).
fn post_whole_body_then_read(addr: SocketAddr, path: &str, body: &[u8]) -> std::io::Result<Answer> {
    Raw::whole_body_then_read(addr, "POST", path, &[("Content-Type", "application/json")], body)
}

fn get(addr: SocketAddr, path: &str) -> std::io::Result<u16> {
    Raw::get(addr, path).map(|answer| answer.status.as_u16())
}

/// A valid batch of about `bytes` bytes: lists of 8 items with ids and full-precision rewards.
fn batch_of_about(bytes: usize) -> Vec<u8> {
    let mut body = String::with_capacity(bytes + 1024);
    body.push_str(r#"{"model":"flood","options":{"include_pairs":false},"lists":["#);
    let mut list = 0u64;
    while body.len() < bytes {
        if list > 0 {
            body.push(',');
        }
        body.push_str(&format!(r#"{{"id":"prompt-{list}","items":["#));
        for item in 0..8u64 {
            if item > 0 {
                body.push(',');
            }
            let reward = ((list * 8 + item) as f64 * 0.618_033_988_749_894_9).sin();
            body.push_str(&format!(r#"{{"id":"response-{item}","reward":{reward}}}"#));
        }
        body.push_str("]}");
        list += 1;
    }
    body.push_str("]}");
    body.into_bytes()
}

const MIB: usize = 1 << 20;

#[test]
fn a_flood_of_large_batches_stays_within_the_memory_budget() {
    let budget = 64 * MIB;
    let server = BinaryServer::start(&["--workers", "2", "--memory-limit-bytes", &budget.to_string()]);
    let addr = server.addr;
    let body = Arc::new(batch_of_about(6 * MIB));

    // Liveness must answer promptly throughout.
    let flooding = Arc::new(AtomicBool::new(true));
    let health = {
        let flooding = Arc::clone(&flooding);
        std::thread::spawn(move || {
            let mut slowest = Duration::ZERO;
            while flooding.load(Ordering::Acquire) {
                let started = Instant::now();
                assert_eq!(get(addr, "/healthz").expect("healthz answers"), 200);
                slowest = slowest.max(started.elapsed());
                std::thread::sleep(Duration::from_millis(50));
            }
            slowest
        })
    };
    let clients: Vec<_> = (0..16)
        .map(|_| {
            let body = Arc::clone(&body);
            std::thread::spawn(move || post_whole_body_then_read(addr, "/v1/evaluate", &body).expect("an answer"))
        })
        .collect();
    let answers: Vec<Answer> = clients.into_iter().map(|c| c.join().expect("client thread")).collect();
    flooding.store(false, Ordering::Release);
    let slowest_health = health.join().expect("health thread");

    let ok = answers.iter().filter(|a| a.status == 200).count();
    for answer in &answers {
        match answer.status.as_u16() {
            200 => {}
            503 => {
                assert_eq!(answer.error_code(), "memory_budget");
                let retry: u64 = answer.header("retry-after").expect("Retry-After").parse().expect("seconds");
                assert!(retry >= 1);
            }
            other => panic!("unexpected status {other}: {}", answer.text()),
        }
    }
    assert!(ok >= 1, "at least one batch is evaluated");
    assert!(slowest_health < Duration::from_secs(1), "healthz took {slowest_health:?}");
    // The budget plus the process itself (runtime, threads, connection buffers, allocator slack).
    let peak = server.peak_rss();
    assert!(peak < (budget + 64 * MIB) as u64, "peak RSS {} MiB over a budget of 64 MiB", peak >> 20);
    println!("flood: {ok} of 16 answered 200, peak RSS {} MiB, slowest healthz {slowest_health:?}", peak >> 20);
}

#[test]
fn a_client_that_writes_its_whole_body_first_reads_the_early_refusal() {
    let limit = MIB;
    let server = BinaryServer::start(&["--workers", "1", "--max-body-bytes", &limit.to_string()]);
    let too_large = vec![b' '; 3 * limit];
    for attempt in 0..20 {
        let answer = post_whole_body_then_read(server.addr, "/v1/evaluate", &too_large)
            .unwrap_or_else(|e| panic!("attempt {attempt}: the client failed instead of reading the 413: {e}"));
        assert_eq!(answer.status, 413, "attempt {attempt}: {}", answer.text());
        assert_eq!(answer.error_code(), "payload_too_large");
        assert_eq!(answer.header("connection"), Some("close"));
    }
    for attempt in 0..5 {
        let answer = post_whole_body_then_read(server.addr, "/v1/nowhere", &too_large)
            .unwrap_or_else(|e| panic!("attempt {attempt}: the client failed instead of reading the 404: {e}"));
        assert_eq!(answer.status, 404, "attempt {attempt}: {}", answer.text());
    }
    // The server still serves.
    assert_eq!(get(server.addr, "/healthz").unwrap(), 200);
}

#[test]
fn a_batch_that_alone_exceeds_the_memory_budget_is_413_not_503() {
    let server = BinaryServer::start(&["--workers", "1", "--memory-limit-bytes", &(4 * MIB).to_string()]);
    // Once scanned, 1 MiB of 8-item lists decodes to more than the whole 4 MiB budget: retrying
    // could never help, so the answer is 413, naming the setting.
    let body = batch_of_about(MIB);
    let answer = post_whole_body_then_read(server.addr, "/v1/evaluate", &body).expect("the client reads the answer");
    assert_eq!(answer.status, 413, "{}", answer.text());
    assert!(answer.text().contains("PREFEVAL_MEMORY_LIMIT_BYTES"), "{}", answer.text());
    // A small batch fits.
    let small = batch_of_about(16 * 1024);
    assert_eq!(post_whole_body_then_read(server.addr, "/v1/evaluate", &small).unwrap().status, 200);
}

#[test]
fn connections_past_the_cap_wait_until_one_closes() {
    let server = BinaryServer::start(&["--workers", "1", "--max-connections", "2"]);
    let first = TcpStream::connect(server.addr).unwrap();
    let _second = TcpStream::connect(server.addr).unwrap();
    // Both are accepted (and idle); a third is not served while they stay open.
    std::thread::sleep(Duration::from_millis(200));
    let mut third = TcpStream::connect(server.addr).unwrap();
    write!(third, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    third.set_read_timeout(Some(Duration::from_millis(700))).unwrap();
    let mut byte = [0u8; 1];
    let waited = third.read(&mut byte);
    assert!(waited.is_err(), "answered past the cap: {waited:?}");
    drop(first);
    third.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut response = String::new();
    third.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

#[test]
fn an_idle_http2_connection_is_closed_after_the_idle_timeout() {
    let server = BinaryServer::start(&["--workers", "1", "--header-read-timeout-secs", "1"]);
    let mut stream = TcpStream::connect(server.addr).unwrap();
    // HTTP/2 with prior knowledge: the preface and an empty SETTINGS frame, then no request; the
    // client answers SETTINGS and PING as any HTTP/2 client does, so the connection stays healthy.
    stream.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
    stream.write_all(&h2_frame(0x4, 0, 0, &[])).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let started = Instant::now();
    let mut saw_goaway = false;
    loop {
        let mut header = [0u8; 9];
        match stream.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => panic!("the server kept the idle connection open: {e}"),
        }
        let length = usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
        let (kind, flags) = (header[3], header[4]);
        let mut payload = vec![0u8; length];
        stream.read_exact(&mut payload).expect("a whole frame");
        const ACK: u8 = 0x1;
        match kind {
            0x4 if flags & ACK == 0 => stream.write_all(&h2_frame(0x4, ACK, 0, &[])).unwrap(),
            0x6 if flags & ACK == 0 => stream.write_all(&h2_frame(0x6, ACK, 0, &payload)).unwrap(),
            0x7 => saw_goaway = true,
            _ => {}
        }
    }
    assert!(saw_goaway, "the server said GOAWAY before closing");
    assert!(started.elapsed() < Duration::from_secs(10), "closed after {:?}", started.elapsed());
}
