//! Compressed bodies and answers through HTTP: gzip and zstd request bodies answer the same bytes
//! as plain ones on every door, other encodings 415, bodies that are not their encoding 400 (or an
//! error line mid-stream), a decompression bomb is cut off at the body limit; answers are
//! compressed when the client asks and they are 1 KiB or more, the stream's lines as they are
//! made.

use std::io::{Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::http::{Method, Request, header};
use http_body::Frame;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use prefeval::pipeline::fingerprint::FingerprintHasher;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::helpers::{Answer, Raw, SplitMix64, TestApp, gzip, zstd};

fn encode(encoding: &str, data: &[u8]) -> Vec<u8> {
    match encoding.to_ascii_lowercase().as_str() {
        "gzip" | "x-gzip" => gzip(data),
        "zstd" => zstd(data),
        other => panic!("no encoder for {other}"),
    }
}

/// An answer body decoded from its `Content-Encoding`.
fn decoded(answer: &Answer) -> Vec<u8> {
    match answer.header("content-encoding") {
        None => answer.body.clone(),
        Some("gzip") => {
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(&answer.body[..]).read_to_end(&mut out).unwrap();
            out
        }
        Some("zstd") => zstd::stream::decode_all(&answer.body[..]).unwrap(),
        Some(other) => panic!("unexpected Content-Encoding {other}"),
    }
}

/// `lists` lists of 3 to 12 items with seeded rewards.
fn lists(lists: usize, seed: u64) -> Vec<Value> {
    let mut rng = SplitMix64::new(seed);
    (0..lists)
        .map(|l| {
            let n = 3 + rng.below(10) as usize;
            let items: Vec<Value> =
                (0..n).map(|i| json!({"id": format!("l{l}i{i}"), "reward": rng.between(-2.0, 2.0)})).collect();
            json!({"id": format!("l{l}"), "items": items})
        })
        .collect()
}

fn ndjson(lists: &[Value]) -> Vec<u8> {
    lists.iter().flat_map(|list| format!("{list}\n").into_bytes()).collect()
}

fn compare_body(lists: &[Value]) -> Vec<u8> {
    let lists: Vec<Value> = lists
        .iter()
        .map(|list| {
            let items: Vec<Value> = list["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|item| {
                    let reward = item["reward"].as_f64().unwrap();
                    json!({"rewards": [reward, -reward * 0.5 + 0.1]})
                })
                .collect();
            json!({"items": items})
        })
        .collect();
    serde_json::to_vec(&json!({"models": ["a", "b"], "lists": lists})).unwrap()
}

async fn post(app: &TestApp, path: &str, content_type: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let mut all = vec![("content-type", content_type)];
    all.extend_from_slice(headers);
    app.request(Method::POST, path, &all, body.to_vec()).await
}

/// The summary's `run.input`, and the stream answer with it taken out.
fn without_input(answer: &Answer) -> (Vec<Value>, Value) {
    let mut lines = answer.ndjson();
    let summary = lines.last_mut().and_then(|line| line.get_mut("summary")).expect("a summary line");
    let input = summary["run"].as_object_mut().unwrap().remove("input").expect("summary.run.input");
    (lines, input)
}

fn fingerprint(bytes: &[u8]) -> Value {
    let mut hasher = FingerprintHasher::new();
    hasher.update(bytes);
    serde_json::to_value(hasher.finish()).unwrap()
}

#[tokio::test]
async fn gzip_and_zstd_bodies_answer_the_same_bytes_as_plain_ones_on_every_door() {
    let app = TestApp::spawn().await;
    let sample = lists(40, 7);
    let batch = serde_json::to_vec(&json!({"lists": sample})).unwrap();
    let compare = compare_body(&sample);
    let lines = ndjson(&sample);
    let plain_batch = post(&app, "/v1/evaluate", "application/json", &[], &batch).await;
    let plain_compare = post(&app, "/v1/compare", "application/json", &[], &compare).await;
    let plain_stream = post(&app, "/v1/evaluate/stream", "application/x-ndjson", &[], &lines).await;
    for answer in [&plain_batch, &plain_compare, &plain_stream] {
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
    let (plain_lines, plain_input) = without_input(&plain_stream);
    assert_eq!(plain_input, fingerprint(&lines));

    for encoding in ["gzip", "zstd", "GZip", "x-gzip", "identity, zstd"] {
        let coding = encoding.rsplit(' ').next().unwrap();
        let headers = [("content-encoding", encoding)];
        let answer = post(&app, "/v1/evaluate", "application/json", &headers, &encode(coding, &batch)).await;
        assert_eq!(answer.status, 200, "{encoding}: {}", answer.text());
        assert_eq!(answer.body, plain_batch.body, "{encoding}: /v1/evaluate");
        let answer = post(&app, "/v1/compare", "application/json", &headers, &encode(coding, &compare)).await;
        assert_eq!(answer.body, plain_compare.body, "{encoding}: /v1/compare");

        let sent = encode(coding, &lines);
        let answer = post(&app, "/v1/evaluate/stream", "application/x-ndjson", &headers, &sent).await;
        assert_eq!(answer.status, 200, "{encoding}: {}", answer.text());
        let (got_lines, input) = without_input(&answer);
        assert_eq!(got_lines, plain_lines, "{encoding}: the stream's lines and summary");
        assert_eq!(input, fingerprint(&sent), "{encoding}: the fingerprint is of the bytes as sent");
    }
}

#[tokio::test]
async fn other_encodings_answer_415_unsupported_encoding_naming_them() {
    let app = TestApp::spawn().await;
    let batch = serde_json::to_vec(&json!({"lists": lists(2, 1)})).unwrap();
    let doors = [
        ("/v1/evaluate", "application/json", batch.clone()),
        ("/v1/compare", "application/json", compare_body(&lists(2, 1))),
        ("/v1/evaluate/stream", "application/x-ndjson", ndjson(&lists(2, 1))),
    ];
    for (path, content_type, body) in &doors {
        for (encoding, named) in [
            ("br", "`br`"),
            ("deflate", "`deflate`"),
            ("BR", "`BR`"),
            ("x-custom", "`x-custom`"),
            ("gzip, zstd", "stacked"),
        ] {
            let answer = post(&app, path, content_type, &[("content-encoding", encoding)], body).await;
            assert_eq!(answer.status, 415, "{path} {encoding}: {}", answer.text());
            assert_eq!(answer.error_code(), "unsupported_encoding", "{path} {encoding}");
            let message = answer.json()["error"]["message"].as_str().unwrap().to_string();
            assert!(message.contains(named), "{path} {encoding}: {message}");
        }
    }
    assert_eq!(app.state.memory.reserved(), 0, "nothing held");
}

#[tokio::test]
async fn a_body_that_is_not_its_encoding_answers_400_malformed_encoding() {
    let app = TestApp::spawn().await;
    let batch = serde_json::to_vec(&json!({"lists": lists(30, 2)})).unwrap();
    let gz = gzip(&batch);
    let zst = zstd(&batch);
    let cases: [(&str, Vec<u8>); 5] = [
        ("gzip", batch.clone()),
        ("zstd", batch.clone()),
        ("gzip", gz[..gz.len() - 10].to_vec()),
        ("zstd", zst[..zst.len() / 2].to_vec()),
        ("gzip", Vec::new()),
    ];
    for (encoding, body) in &cases {
        for path in ["/v1/evaluate", "/v1/compare"] {
            let answer = post(&app, path, "application/json", &[("content-encoding", encoding)], body).await;
            assert_eq!(answer.status, 400, "{path} {encoding}: {}", answer.text());
            assert_eq!(answer.error_code(), "malformed_encoding", "{path} {encoding}");
            assert!(answer.text().contains(encoding), "{}", answer.text());
        }
        let answer =
            post(&app, "/v1/evaluate/stream", "application/x-ndjson", &[("content-encoding", encoding)], body).await;
        let stopped = answer.status == 400 && answer.error_code() == "malformed_encoding";
        let last = answer.status == 200 && answer.ndjson().last().unwrap()["error"]["code"] == "malformed_encoding";
        assert!(stopped || last, "the stream with {encoding}: {} {}", answer.status, answer.text());
    }

    // Broken after the first lines: their results, then the error line, and no summary.
    let lines = ndjson(&lists(4000, 3));
    let gz = gzip(&lines);
    let cut = &gz[..gz.len() * 3 / 4];
    let answer = post(&app, "/v1/evaluate/stream", "application/x-ndjson", &[("content-encoding", "gzip")], cut).await;
    assert_eq!(answer.status, 200);
    let got = answer.ndjson();
    let (last, results) = got.split_last().unwrap();
    assert_eq!(last["error"]["code"], "malformed_encoding", "{last}");
    assert!(results.len() > 100, "the whole lines before the break are answered: {}", results.len());
    assert!(results.iter().all(|line| line.get("loss").is_some()), "no summary");
    assert_eq!(app.state.memory.reserved(), 0, "nothing held");
}

#[tokio::test]
async fn a_decompression_bomb_is_cut_off_at_the_body_limit() {
    const LIMIT: usize = 1 << 20;
    let app = TestApp::builder().max_body_bytes(LIMIT).build().await;
    // 64 MiB of a JSON string that never ends, a few kilobytes compressed.
    let mut decoded = b"{\"lists\": [{\"id\": \"".to_vec();
    decoded.resize(64 << 20, b'a');
    for encoding in ["gzip", "zstd"] {
        let bomb = encode(encoding, &decoded);
        assert!(bomb.len() < LIMIT / 8, "{encoding}: {} bytes", bomb.len());
        for path in ["/v1/evaluate", "/v1/compare"] {
            let answer = post(&app, path, "application/json", &[("content-encoding", encoding)], &bomb).await;
            assert_eq!(answer.status, 413, "{path} {encoding}: {}", answer.text());
            assert_eq!(answer.error_code(), "payload_too_large");
        }
        let answer =
            post(&app, "/v1/evaluate/stream", "application/x-ndjson", &[("content-encoding", encoding)], &bomb).await;
        assert_eq!(answer.status, 200);
        let got = answer.ndjson();
        assert_eq!(got.len(), 1, "one error line, no summary: {got:?}");
        assert_eq!(got[0]["error"]["code"], "payload_too_large", "{}", got[0]);
        assert!(got[0]["error"]["message"].as_str().unwrap().contains(&LIMIT.to_string()));
    }
    assert_eq!(app.state.memory.reserved(), 0, "nothing held");
}

#[tokio::test]
async fn answers_are_compressed_when_asked_and_1_kib_or_more() {
    let app = TestApp::spawn().await;
    let batch = serde_json::to_vec(&json!({"lists": lists(20, 4)})).unwrap();
    let plain = post(&app, "/v1/evaluate", "application/json", &[], &batch).await;
    assert!(plain.body.len() > 4096);
    assert_eq!(plain.header("content-encoding"), None);
    let cases = [
        ("gzip", Some("gzip")),
        ("zstd", Some("zstd")),
        ("gzip, zstd", Some("zstd")),
        ("gzip;q=0.9, zstd;q=0.2", Some("gzip")),
        ("zstd;q=0, gzip", Some("gzip")),
        ("br", None),
        ("identity", None),
    ];
    for (accept, expected) in cases {
        let answer = post(&app, "/v1/evaluate", "application/json", &[("accept-encoding", accept)], &batch).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header("content-encoding"), expected, "Accept-Encoding: {accept}");
        assert_eq!(decoded(&answer), plain.body, "Accept-Encoding: {accept}");
        if expected.is_some() {
            assert!(answer.body.len() < plain.body.len() / 2, "compressed: {} bytes", answer.body.len());
            assert!(answer.header("vary").is_some_and(|vary| vary.to_ascii_lowercase().contains("accept-encoding")));
        }
    }
    // Small answers, errors included, go as they are.
    let small = post(&app, "/v1/evaluate", "application/json", &[("accept-encoding", "gzip")], b"{").await;
    assert_eq!(small.status, 400);
    assert!(small.body.len() < 1024);
    assert_eq!(small.header("content-encoding"), None);
    let health = app.request(Method::GET, "/healthz", &[("accept-encoding", "zstd")], Vec::new()).await;
    assert_eq!(health.header("content-encoding"), None);

    // The stream too, whatever its size; decoded, the same bytes.
    let lines = ndjson(&lists(300, 5));
    let plain = post(&app, "/v1/evaluate/stream", "application/x-ndjson", &[], &lines).await;
    for accept in ["gzip", "zstd"] {
        let headers = [("accept-encoding", accept)];
        let answer = post(&app, "/v1/evaluate/stream", "application/x-ndjson", &headers, &lines).await;
        assert_eq!(answer.header("content-encoding"), Some(accept));
        assert_eq!(decoded(&answer), plain.body, "the stream in {accept}");
    }
}

/// A request body fed by the test as it goes (a producer that sends a line, then waits).
struct Feed(mpsc::Receiver<Bytes>);

impl HttpBody for Feed {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::convert::Infallible>>> {
        self.0.poll_recv(cx).map(|piece| piece.map(|bytes| Ok(Frame::data(bytes))))
    }
}

/// Reads answer frames into `decoder` until its output holds `lines` lines; fails after 20 s.
async fn read_until_lines(
    body: &mut hyper::body::Incoming,
    decoder: &mut zstd::stream::write::Decoder<'_, Vec<u8>>,
    lines: usize,
) {
    let wait = async {
        while decoder.get_ref().iter().filter(|&&b| b == b'\n').count() < lines {
            let frame = body.frame().await.expect("the answer goes on").expect("a frame");
            if let Ok(data) = frame.into_data() {
                decoder.write_all(&data).unwrap();
                decoder.flush().unwrap();
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .expect("the line's result arrives while the body is open");
}

#[tokio::test]
async fn a_compressed_stream_answers_each_line_before_the_body_ends() {
    let app = TestApp::spawn().await;
    let stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let (feed, receiver) = mpsc::channel(4);
    let request = Request::post("/v1/evaluate/stream")
        .header(header::HOST, app.addr.to_string())
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .header(header::CONTENT_ENCODING, "gzip")
        .header(header::ACCEPT_ENCODING, "zstd")
        .body(Body::new(Feed(receiver)))
        .unwrap();
    // The producer's gzip stream, flushed after each line (as a client sending as it goes does).
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let sample = lists(3, 6);
    let mut send_line = |list: &Value| {
        encoder.write_all(format!("{list}\n").as_bytes()).unwrap();
        encoder.flush().unwrap();
        Bytes::from(std::mem::take(encoder.get_mut()))
    };
    feed.send(send_line(&sample[0])).await.unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.headers()["content-encoding"], "zstd");
    let mut body = response.into_body();
    let mut answer = zstd::stream::write::Decoder::new(Vec::new()).unwrap();
    read_until_lines(&mut body, &mut answer, 1).await;
    feed.send(send_line(&sample[1])).await.unwrap();
    read_until_lines(&mut body, &mut answer, 2).await;
    feed.send(send_line(&sample[2])).await.unwrap();
    feed.send(Bytes::from(encoder.finish().unwrap())).await.unwrap();
    drop(feed);
    read_until_lines(&mut body, &mut answer, 4).await;
    let text = String::from_utf8(answer.get_ref().clone()).unwrap();
    let lines: Vec<Value> = text.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(lines.iter().map(|line| line["id"].clone()).take(3).collect::<Vec<_>>(), ["l0", "l1", "l2"]);
    assert_eq!(lines[3]["summary"]["lists"], 3, "{}", lines[3]);
}

#[tokio::test]
async fn a_compressed_stream_read_slowly_decodes_to_the_plain_answer() {
    let app = TestApp::spawn().await;
    let lines = ndjson(&lists(3000, 8));
    let path = "/v1/evaluate/stream?include_pairs=true";
    let plain = post(&app, path, "application/x-ndjson", &[], &lines).await;
    assert!(plain.body.len() > 4 << 20, "an answer larger than the buffers on the way");
    let addr = app.addr;
    let answer = tokio::task::spawn_blocking(move || {
        let mut raw = Raw::connect(addr);
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-ndjson\r\n\
             Accept-Encoding: gzip\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
            lines.len()
        );
        let mut writer = raw.stream.try_clone().unwrap();
        std::thread::scope(|scope| {
            scope.spawn(move || {
                let _ = writer.write_all(head.as_bytes()).and_then(|()| writer.write_all(&lines));
            });
            // A reader that takes a little at a time and pauses: the stream waits for it.
            let mut received = Vec::new();
            let mut piece = [0u8; 4096];
            loop {
                match raw.stream.read(&mut piece) {
                    Ok(0) => break,
                    Ok(n) => received.extend_from_slice(&piece[..n]),
                    Err(error) => panic!("reading: {error}"),
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Answer::parse(&received)
        })
    })
    .await
    .unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-encoding"), Some("gzip"));
    assert_eq!(decoded(&answer), plain.body);
    assert_eq!(app.state.memory.reserved(), 0, "nothing held");
}
