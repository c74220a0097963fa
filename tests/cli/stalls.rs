//! The memory budget against clients that stop reading or stop sending, through the binary and
//! real sockets: answers stay reserved until written and are released by the write timeout (HTTP/1
//! and an HTTP/2 peer that grants no window), streams whose lines cannot all fit at once still
//! finish, a body cut short still gets the answers of its whole lines, a trickling body is ended.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::datasets::{Scratch, prefeval};
use crate::helpers::{Answer, BinaryServer, Framing, Raw};

const MIB: usize = 1 << 20;

/// One list of `items` items with `include_pairs`: a ~25 MB answer for 700 items from a 33 KB body.
fn big_answer_batch(items: usize) -> Vec<u8> {
    let items: Vec<String> = (0..items).map(|k| format!(r#"{{"id":"r{k}","reward":{}}}"#, (k as f64).sin())).collect();
    format!(r#"{{"options":{{"include_pairs":true}},"lists":[{{"items":[{}]}}]}}"#, items.join(",")).into_bytes()
}

/// One NDJSON line of a list of `items` items (about 34 bytes each): the first ranked above all
/// the others, which tie, so a long line is large in memory but quick to evaluate.
fn line_of(items: usize) -> String {
    let items: Vec<String> = (0..items)
        .map(|k| format!(r#"{{"reward":{:.6},"rank":{}}}"#, (k as f64 * 0.37).sin(), if k == 0 { 1 } else { 2 }))
        .collect();
    format!("{{\"items\":[{}]}}\n", items.join(","))
}

fn metric(addr: SocketAddr, name: &str) -> f64 {
    let answer = Raw::get(addr, "/metrics").expect("metrics answer");
    answer
        .text()
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} is exported"))
}

fn reserved(addr: SocketAddr) -> usize {
    metric(addr, "prefeval_memory_reserved_bytes") as usize
}

/// Polls `check` every 50 ms until it holds or `within` passes; whether it held.
fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < within {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    check()
}

/// A socket that takes almost nothing into its receive buffer, for a client that never reads.
fn never_reading(addr: SocketAddr, request: &[u8]) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connects");
    stream.set_write_timeout(Some(Duration::from_secs(20))).expect("write timeout");
    let mut writer = &stream;
    writer.write_all(request).expect("request written");
    stream
}

fn post_head(addr: SocketAddr, path: &str, content_type: &str, length: usize) -> Vec<u8> {
    format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n\r\n")
        .into_bytes()
}

/// Asserts the server closes `stream` (after whatever it had sent) within `within`.
fn closed_within(mut stream: TcpStream, within: Duration) -> usize {
    stream.set_read_timeout(Some(within)).expect("read timeout");
    let started = Instant::now();
    let mut received = 0;
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return received,
            Ok(n) => received += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return received,
            Err(e) => panic!("the connection was still open after {:?}: {e}", started.elapsed()),
        }
        assert!(started.elapsed() < within, "the connection was still open after {within:?}");
    }
}

#[test]
fn an_answer_nobody_reads_stays_reserved_until_the_write_timeout_closes_its_connection() {
    let server = BinaryServer::start(&["--memory-limit-bytes", &(64 * MIB).to_string(), "--write-timeout-secs", "3"]);
    let body = big_answer_batch(700);
    let mut request = post_head(server.addr, "/v1/evaluate", "application/json", body.len());
    request.extend_from_slice(&body);
    let client = never_reading(server.addr, &request);
    assert!(eventually(Duration::from_secs(20), || reserved(server.addr) >= 20 * MIB), "the answer is made");
    // The answer is made and handed to the connection; the client takes nothing.
    std::thread::sleep(Duration::from_millis(1500));
    let held = reserved(server.addr);
    assert!(held >= 20 * MIB, "an answer waiting for its reader stays reserved, yet {held} bytes are");
    let timed_out = || metric(server.addr, "prefeval_write_timeouts_total") == 1.0;
    assert!(eventually(Duration::from_secs(10), timed_out), "the write timeout closed the connection");
    assert!(eventually(Duration::from_secs(5), || reserved(server.addr) == 0), "released with the connection");
    // What the kernel buffered before the close, then the end: never the whole answer.
    let received = closed_within(client, Duration::from_secs(10));
    assert!(received < 20 * MIB, "the client got {received} bytes, the whole answer");
}

/// A stream nobody reads, on a server with a 64 MiB budget and a 3 s write timeout: `path` with
/// `headers` (the head's other lines), and `lines`, whose answers are larger than they are, sent
/// over and over in chunks until the connection is closed. The answer fills the socket, the stream
/// stops reading, the write timeout closes the connection, and everything is released.
fn stream_nobody_reads(path: &str, headers: &str, lines: String) {
    let server = BinaryServer::start(&["--memory-limit-bytes", &(64 * MIB).to_string(), "--write-timeout-secs", "3"]);
    let addr = server.addr;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-ndjson\r\n{headers}\
         Transfer-Encoding: chunked\r\n\r\n"
    );
    let stream = never_reading(addr, head.as_bytes());
    let mut writer = stream.try_clone().expect("socket clones");
    let sender = std::thread::spawn(move || {
        let chunk = format!("{:x}\r\n{lines}\r\n", lines.len());
        let mut sent = 0usize;
        while writer.write_all(chunk.as_bytes()).is_ok() {
            sent += lines.len();
        }
        sent
    });
    let timed_out = || metric(addr, "prefeval_write_timeouts_total") == 1.0;
    assert!(eventually(Duration::from_secs(30), timed_out), "the write timeout closed the connection");
    assert!(eventually(Duration::from_secs(5), || reserved(addr) == 0), "released with the connection");
    let sent = sender.join().expect("the sender ends once the connection is closed");
    assert!(sent > 0, "lines were sent");
    let received = closed_within(stream, Duration::from_secs(10));
    assert!(received > 0, "the answer had begun");
}

/// A compressed stream nobody reads: the encoder takes the answer's frames only as the connection
/// takes its output, so the frames wait and the write timeout closes the connection.
#[test]
fn a_compressed_stream_nobody_reads_is_closed_by_the_write_timeout_and_released() {
    // Lines of about 60 items, 59 pairs each: more answer than line.
    let lines: String = (0..64).map(|k| line_of(60 + k % 3)).collect();
    stream_nobody_reads("/v1/evaluate/stream?include_pairs=true", "Accept-Encoding: gzip\r\n", lines);
}

/// A compare stream nobody reads: lines of 16 models, whose answers are larger than they are.
#[test]
fn a_compare_stream_nobody_reads_is_closed_by_the_write_timeout_and_released() {
    let models: Vec<String> = (0..16).map(|j| format!("m{j}")).collect();
    let rewards = |k: usize| (0..16).map(|j| ((j * 7 + k) % 11) as f64 / 4.0).collect::<Vec<_>>();
    let lines: String = (0..64)
        .map(|i| {
            let items = serde_json::json!([{"id": "a", "rewards": rewards(i)}, {"id": "b", "rewards": rewards(i + 3)}]);
            format!("{}\n", serde_json::json!({"id": i, "items": items}))
        })
        .collect();
    stream_nobody_reads(&format!("/v1/compare/stream?models={}", models.join(",")), "", lines);
}

// ----- HTTP/2 by hand -------------------------------------------------------------------------

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

/// An HTTP/2 frame by hand.
pub(crate) fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let length = payload.len();
    let mut frame = vec![(length >> 16) as u8, (length >> 8) as u8, length as u8, kind, flags];
    frame.extend_from_slice(&stream.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// HPACK literal header fields without indexing, no Huffman coding (names and values < 127 bytes).
fn hpack(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut block = Vec::new();
    for (name, value) in fields {
        block.push(0x00);
        block.push(name.len() as u8);
        block.extend_from_slice(name.as_bytes());
        block.push(value.len() as u8);
        block.extend_from_slice(value.as_bytes());
    }
    block
}

/// An h2c connection (prior knowledge) whose SETTINGS_INITIAL_WINDOW_SIZE is 1: the server may
/// send one byte per stream, and no more is ever granted.
fn connect_h2_with_one_byte_windows(addr: SocketAddr, read_timeout: Duration) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("connects");
    stream.set_read_timeout(Some(read_timeout)).expect("read timeout");
    stream.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").expect("preface");
    stream.write_all(&h2_frame(SETTINGS, 0, 0, &[0x0, 0x4, 0, 0, 0, 1])).expect("settings");
    stream
}

/// `POST /v1/evaluate` on stream 1 of a batch whose answer is about 25 MB.
fn post_big_answer_on_stream_1(stream: &mut TcpStream, addr: SocketAddr) {
    let body = big_answer_batch(700);
    let authority = addr.to_string();
    let headers = hpack(&[
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/v1/evaluate"),
        (":authority", &authority),
        ("content-type", "application/json"),
    ]);
    stream.write_all(&h2_frame(HEADERS, END_HEADERS, 1, &headers)).expect("headers");
    for (index, piece) in body.chunks(16 * 1024).enumerate() {
        let last = (index + 1) * 16 * 1024 >= body.len();
        stream.write_all(&h2_frame(DATA, if last { END_STREAM } else { 0 }, 1, piece)).expect("data");
    }
}

fn read_h2_frame(stream: &mut TcpStream) -> std::io::Result<(u8, u8, Vec<u8>)> {
    let mut header = [0u8; 9];
    stream.read_exact(&mut header)?;
    let length = usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
    let mut payload = vec![0u8; length];
    stream.read_exact(&mut payload)?;
    Ok((header[3], header[4], payload))
}

#[test]
fn an_http2_peer_that_grants_no_window_gets_32_streams_and_is_closed_by_the_write_timeout() {
    let server = BinaryServer::start(&["--memory-limit-bytes", &(64 * MIB).to_string(), "--write-timeout-secs", "3"]);
    let mut stream = connect_h2_with_one_byte_windows(server.addr, Duration::from_secs(20));
    let (kind, _, settings) = read_h2_frame(&mut stream).expect("the server's SETTINGS");
    assert_eq!(kind, SETTINGS);
    let max_streams = settings
        .chunks(6)
        .find(|setting| setting[..2] == [0x0, 0x3])
        .map(|setting| u32::from_be_bytes([setting[2], setting[3], setting[4], setting[5]]));
    assert_eq!(max_streams, Some(32), "SETTINGS_MAX_CONCURRENT_STREAMS");
    post_big_answer_on_stream_1(&mut stream, server.addr);
    let started = Instant::now();
    let mut answered_bytes = 0;
    let mut held_while_stalled = 0;
    loop {
        let (kind, flags, payload) = match read_h2_frame(&mut stream) {
            Ok(frame) => frame,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset) => {
                break;
            }
            Err(e) => panic!("the stalled connection was still open after {:?}: {e}", started.elapsed()),
        };
        match kind {
            SETTINGS if flags & ACK == 0 => stream.write_all(&h2_frame(SETTINGS, ACK, 0, &[])).expect("ack"),
            PING if flags & ACK == 0 => stream.write_all(&h2_frame(PING, ACK, 0, &payload)).expect("pong"),
            DATA => {
                answered_bytes += payload.len();
                // The one byte the window allows has come: the rest of the answer waits.
                std::thread::sleep(Duration::from_millis(1500));
                held_while_stalled = held_while_stalled.max(reserved(server.addr));
            }
            GOAWAY => {}
            _ => {}
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the stalled connection was never closed");
    }
    assert!(answered_bytes <= 1, "the window allowed 1 byte, {answered_bytes} came");
    assert!(held_while_stalled >= 20 * MIB, "the answer waiting for a window is reserved: {held_while_stalled}");
    assert!(eventually(Duration::from_secs(5), || reserved(server.addr) == 0), "released with the connection");
    assert_eq!(metric(server.addr, "prefeval_write_timeouts_total"), 1.0);
}

// ----- streams ----------------------------------------------------------------------------------

fn stream_answer(addr: SocketAddr, body: &[u8]) -> Answer {
    let headers = [("Content-Type", "application/x-ndjson")];
    Raw::exchange(addr, "POST", "/v1/evaluate/stream", &headers, body, Framing::Length)
}

fn stream_lines(addr: SocketAddr, body: &[u8]) -> Vec<Value> {
    stream_answer(addr, body).ndjson()
}

/// Every line of a stream's answer is a result or an error for its line, in order, then the
/// summary: `lines` input lines, each answered.
fn assert_complete(answer: &[Value], lines: u64, allowed_errors: &[&str]) {
    let (summary, per_line) = answer.split_last().expect("a non-empty answer");
    assert!(summary.get("summary").is_some(), "the last line is the summary: {summary}");
    let numbers: Vec<u64> = per_line.iter().map(|line| line["line"].as_u64().expect("a line number")).collect();
    assert_eq!(numbers, (1..=lines).collect::<Vec<_>>());
    for line in per_line {
        if let Some(code) = line["error"]["code"].as_str() {
            assert!(allowed_errors.contains(&code), "unexpected error line {line}");
        }
    }
}

#[test]
fn streams_whose_lines_can_never_fit_answer_them_with_error_lines_and_go_on() {
    let server = BinaryServer::start(&[
        "--memory-limit-bytes",
        &(8 * MIB).to_string(),
        "--max-items-per-list",
        "100000",
        "--request-timeout-secs",
        "10",
    ]);
    // 60,000 items: 1.4 MB of line, about 13 MB once decoded.
    let body = format!("{}{}", line_of(60_000), line_of(3));
    let started = Instant::now();
    let answers: Vec<Answer> = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..2).map(|_| scope.spawn(|| stream_answer(server.addr, body.as_bytes()))).collect();
        runs.into_iter().map(|run| run.join().expect("the stream thread")).collect()
    });
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
    // `prefeval eval` with the same budget answers the same bytes.
    let scratch = Scratch::new("never-fits");
    let file = scratch.write("never-fits.ndjson", body.as_bytes());
    let eval = prefeval(&["eval", &file, "--memory-limit-bytes", &(8 * MIB).to_string()], None);
    assert_eq!(eval.status.code(), Some(1), "a line failed");
    for answer in &answers {
        assert_eq!(String::from_utf8_lossy(&answer.body), String::from_utf8_lossy(&eval.stdout), "stream and eval");
    }
    for answer in answers.iter().map(Answer::ndjson) {
        assert_complete(&answer, 2, &["payload_too_large"]);
        assert_eq!(answer[0]["error"]["code"], "payload_too_large", "{}", answer[0]);
        let message = answer[0]["error"]["message"].as_str().expect("a message");
        assert!(message.contains(&(8 * MIB).to_string()), "the message names the budget: {message}");
        assert!(answer[1].get("loss").is_some(), "line 2 is evaluated: {}", answer[1]);
        assert_eq!(answer[2]["summary"]["lines_failed"], 1);
    }
}

#[test]
fn sixteen_streams_with_lines_near_the_budget_all_finish() {
    let server = BinaryServer::start(&[
        "--memory-limit-bytes",
        &(32 * MIB).to_string(),
        "--max-items-per-list",
        "100000",
        "--request-timeout-secs",
        "10",
    ]);
    // Each 40,000-item line needs about 9 MB: three fit the budget at once, not sixteen.
    let body = format!("{}{}{}", line_of(40_000), line_of(40_000), line_of(5));
    let started = Instant::now();
    let answers: Vec<Vec<Value>> = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..16).map(|_| scope.spawn(|| stream_lines(server.addr, body.as_bytes()))).collect();
        runs.into_iter().map(|run| run.join().expect("the stream thread")).collect()
    });
    assert!(started.elapsed() < Duration::from_secs(90), "took {:?}", started.elapsed());
    let mut evaluated = 0;
    for answer in &answers {
        assert_complete(answer, 3, &["memory_budget"]);
        evaluated += answer.iter().filter(|line| line.get("loss").is_some()).count();
    }
    assert!(evaluated >= 16, "most lines are evaluated, not refused: {evaluated} of 48");
    assert!(eventually(Duration::from_secs(5), || reserved(server.addr) == 0), "everything released");
}

#[test]
fn a_batch_that_can_never_fit_answers_413_naming_its_need_and_the_budget() {
    let server = BinaryServer::start(&["--memory-limit-bytes", &(64 * MIB).to_string()]);
    let body = big_answer_batch(1000);
    let headers = [("Content-Type", "application/json")];
    let answer = Raw::whole_body_then_read(server.addr, "POST", "/v1/evaluate", &headers, &body).expect("answer");
    assert_eq!(answer.status.as_u16(), 413, "{}", answer.text());
    assert_eq!(answer.error_code(), "payload_too_large");
    let message = answer.json()["error"]["message"].as_str().expect("a message").to_string();
    assert!(message.contains(&(64 * MIB).to_string()) && message.contains("needs about"), "{message}");
    assert!(answer.header("retry-after").is_none(), "nothing to retry");
}

fn stream_head(addr: SocketAddr, framing: &str) -> String {
    format!(
        "POST /v1/evaluate/stream HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-ndjson\r\n{framing}\r\n\r\n"
    )
}

/// Sends `head` and `body`, half-closes, and reads the answer to its end.
fn cut_short(addr: SocketAddr, head: &str, body: &[u8]) -> Answer {
    let mut raw = Raw::connect(addr);
    raw.write(head.as_bytes()).expect("head");
    raw.write(body).expect("body");
    raw.stream.shutdown(Shutdown::Write).expect("half-close");
    raw.read_answer().expect("the answer")
}

#[test]
fn a_stream_body_cut_short_answers_its_whole_lines_then_body_incomplete_evaluate_and_compare() {
    let server = BinaryServer::start(&[]);
    let whole = format!("{}{}", line_of(3), line_of(4));
    let partial = &line_of(5)[..20];
    let by_length = stream_head(server.addr, &format!("Content-Length: {}", whole.len() + 1000));
    let broken_chunks = format!("{:x}\r\n{whole}{partial}\r\nzz\r\n", whole.len() + partial.len());
    let chunked = stream_head(server.addr, "Transfer-Encoding: chunked");
    for (head, body) in [(by_length, format!("{whole}{partial}")), (chunked, broken_chunks)] {
        let answer = cut_short(server.addr, &head, body.as_bytes());
        assert_eq!(answer.status.as_u16(), 200);
        let lines = answer.ndjson();
        assert_eq!(lines.len(), 3, "two results and the error: {lines:?}");
        assert!(lines[0].get("loss").is_some() && lines[1].get("loss").is_some(), "{lines:?}");
        assert_eq!(lines[2]["error"]["code"], "body_incomplete", "{}", lines[2]);
        assert!(lines.iter().all(|line| line.get("summary").is_none()), "no summary after a broken body");
    }
    // The compare stream, on the same machinery, the same way.
    let compared = r#"{"items":[{"rewards":[1,0]},{"rewards":[0,1]}]}"#;
    let whole = format!("{compared}\n{compared}\n");
    let head = format!(
        "POST /v1/compare/stream?models=a,b HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-ndjson\r\n\
         Content-Length: {}\r\n\r\n",
        server.addr,
        whole.len() + 1000
    );
    let answer = cut_short(server.addr, &head, format!("{whole}{}", &compared[..20]).as_bytes());
    let lines = answer.ndjson();
    assert_eq!(lines.len(), 3, "two results and the error: {lines:?}");
    assert!(lines[0].get("models").is_some() && lines[1].get("models").is_some(), "{lines:?}");
    assert_eq!(lines[2]["error"]["code"], "body_incomplete", "{}", lines[2]);
}

#[test]
fn a_trickling_stream_body_is_ended_by_the_minimum_upload_rate() {
    let server = BinaryServer::start(&["--request-timeout-secs", "2"]);
    let mut raw = Raw::connect(server.addr);
    raw.write(stream_head(server.addr, "Content-Length: 1000").as_bytes()).expect("head");
    let line = line_of(3);
    let mut reader = raw.stream.try_clone().expect("socket clones");
    let started = Instant::now();
    let answer = std::thread::scope(|scope| {
        let reading = scope.spawn(move || {
            let mut received = Vec::new();
            let _ = reader.read_to_end(&mut received);
            (received, started.elapsed())
        });
        // A whole line first, then one byte every 400 ms (2.5 bytes/s), for at most 15 s.
        let _ = raw.write(line.as_bytes());
        for byte in b"{\"items\":[{\"reward\":0.5},{\"reward\":0.25}]}".iter().cycle().take(37) {
            if reading.is_finished() || raw.write(&[*byte]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(400));
        }
        reading.join().expect("the reading thread")
    });
    let (received, took) = answer;
    assert!(took < Duration::from_secs(10), "the trickle was ended after {took:?}");
    let lines = Answer::parse(&received).ndjson();
    assert!(lines[0].get("loss").is_some(), "the whole line sent is answered: {lines:?}");
    let last = lines.last().expect("a last line");
    assert_eq!(last["error"]["code"], "request_timeout", "{last}");
    assert!(last["error"]["message"].as_str().unwrap_or("").contains("bytes/s"), "{last}");
}

#[test]
fn a_request_past_its_timeout_frees_its_worker_and_memory_within_a_second() {
    let server =
        BinaryServer::start(&["--workers", "1", "--request-timeout-secs", "1", "--max-evaluated-pairs", "2000000000"]);
    // 16 lists of 10,000 ranked items: 8·10^8 pairs, many seconds of one worker.
    let list: Vec<String> = (0..10_000).map(|k| format!(r#"{{"reward":{:.6}}}"#, (k as f64 * 0.37).sin())).collect();
    let list = format!(r#"{{"items":[{}]}}"#, list.join(","));
    let body = format!(r#"{{"options":{{"include_pairs":false}},"lists":[{}]}}"#, vec![list; 16].join(","));
    let headers = [("Content-Type", "application/json")];
    let answer =
        Raw::whole_body_then_read(server.addr, "POST", "/v1/evaluate", &headers, body.as_bytes()).expect("an answer");
    assert_eq!(answer.status.as_u16(), 408, "{}", answer.text());
    let timed_out = Instant::now();
    let free = || metric(server.addr, "prefeval_worker_busy") == 0.0 && reserved(server.addr) == 0;
    assert!(eventually(Duration::from_secs(1), free), "the worker and the memory are free within a second");
    assert!(timed_out.elapsed() < Duration::from_secs(2));
}

#[test]
fn an_http2_answer_that_gets_no_window_is_closed_even_while_pings_keep_the_connection_busy() {
    let server = BinaryServer::start(&["--memory-limit-bytes", &(64 * MIB).to_string(), "--write-timeout-secs", "3"]);
    let mut stream = connect_h2_with_one_byte_windows(server.addr, Duration::from_millis(300));
    post_big_answer_on_stream_1(&mut stream, server.addr);
    // The server answers every PING, so bytes keep moving on the connection; stream 1 never gets
    // more than its one byte of window.
    let started = Instant::now();
    let mut closed = false;
    while started.elapsed() < Duration::from_secs(15) {
        if stream.write_all(&h2_frame(PING, 0, 0, &[0; 8])).is_err() {
            closed = true;
            break;
        }
        match read_h2_frame(&mut stream) {
            Ok((SETTINGS, flags, _)) if flags & ACK == 0 => {
                let _ = stream.write_all(&h2_frame(SETTINGS, ACK, 0, &[]));
            }
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    assert!(closed, "the connection stayed open {:?} with its answer stalled", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(12), "closed after {:?}", started.elapsed());
    assert!(eventually(Duration::from_secs(5), || reserved(server.addr) == 0), "released with the connection");
    assert_eq!(metric(server.addr, "prefeval_write_timeouts_total"), 1.0);
}

/// A report nobody reads: its page (about 2 MB, 10,000 groups) is reserved until the connection
/// takes it or the write timeout closes the connection; either way everything is released and the
/// server goes on answering.
#[test]
fn a_report_nobody_reads_is_released() {
    let server = BinaryServer::start(&["--memory-limit-bytes", &(64 * MIB).to_string(), "--write-timeout-secs", "3"]);
    let mut body = String::new();
    for index in 0..10_000 {
        body.push_str(&format!(
            "{{\"id\":{index},\"group\":\"group-{index}\",\"items\":[{{\"reward\":{}}},{{\"reward\":0.5}}]}}\n",
            index % 7
        ));
    }
    let target = "/v1/report?calibration_bins=100&top_disagreements=1000";
    let mut request = post_head(server.addr, target, "application/x-ndjson", body.len());
    request.extend_from_slice(body.as_bytes());
    let client = never_reading(server.addr, &request);
    let drawn = || {
        let metrics = Raw::get(server.addr, "/metrics").expect("metrics answer");
        metrics.text().lines().any(|line| {
            line.starts_with("prefeval_http_requests_total{")
                && line.contains("route=\"/v1/report\"")
                && line.contains("status=\"200\"")
                && line.ends_with(" 1")
        })
    };
    assert!(eventually(Duration::from_secs(30), drawn), "the report was drawn");
    assert!(eventually(Duration::from_secs(20), || reserved(server.addr) == 0), "released");
    let health = Raw::get(server.addr, "/healthz").expect("the server answers");
    assert_eq!(health.status, 200);
    drop(client);
}
