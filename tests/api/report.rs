//! `POST /v1/report` and `GET /ui`: the report of a body is the report drawn from the summary line
//! the stream ends with for the same body and query (evaluate, and compare with `models=`); every
//! refusal, before or after the body is read, is a JSON error with its status, never half a page.

use axum::http::Method;
use prefeval_report::{Meta, read_summary, report_date};
use prefeval_testkit::SplitMix64;
use serde_json::{Value, json};

use crate::helpers::{Answer, BinaryServer, Framing, Raw, TestApp, gzip};

const NDJSON: (&str, &str) = ("content-type", "application/x-ndjson");

/// Lists of 2 to 5 items with rewards, lengths and one of three groups; seeded.
fn lists(count: usize, seed: u64) -> Vec<u8> {
    let mut random = SplitMix64::new(seed);
    let mut out = String::new();
    for index in 0..count {
        let items: Vec<Value> = (0..2 + random.below(4))
            .map(|_| json!({"reward": random.between(-3.0, 3.0), "length": 10 + random.below(300)}))
            .collect();
        let list = json!({"id": format!("q{index}"), "group": format!("g{}", random.below(3)), "items": items});
        out.push_str(&format!("{list}\n"));
    }
    out.into_bytes()
}

/// Lists scored by two models, in `/v1/compare`'s shape.
fn compared_lists(count: usize, seed: u64) -> Vec<u8> {
    let mut random = SplitMix64::new(seed);
    let mut out = String::new();
    for index in 0..count {
        let items: Vec<Value> = (0..2 + random.below(3))
            .map(|_| json!({"rewards": [random.between(-2.0, 2.0), random.between(-2.0, 2.0)]}))
            .collect();
        out.push_str(&format!("{}\n", json!({"id": format!("c{index}"), "items": items})));
    }
    out.into_bytes()
}

async fn post(app: &TestApp, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    app.request(Method::POST, path, headers, body.to_vec()).await
}

/// The report drawn from the last line of a stream's answer, as `prefeval report` would draw it.
fn report_of_stream(answer: &Answer, date: &str) -> String {
    assert_eq!(answer.status, 200, "{}", answer.text());
    let last = answer.text().lines().last().expect("a last line");
    assert!(last.starts_with("{\"summary\""), "the stream ended with a summary: {last}");
    read_summary(last.as_bytes()).expect("the summary reads").to_html(&Meta { date: date.to_string() })
}

/// The page without its date row: the in-process server reads the date when it draws, and the
/// day may turn between two requests.
fn without_date(page: &str) -> String {
    let Some(start) = page.find("<tr data-run=\"report_date\">") else { return page.to_string() };
    let end = start + page[start..].find("</tr>").expect("the row ends") + "</tr>".len();
    format!("{}{}", &page[..start], &page[end..])
}

#[track_caller]
fn assert_html(answer: &Answer) {
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    assert_eq!(answer.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(answer.header("content-security-policy").is_some_and(|csp| csp.starts_with("default-src 'none'")));
}

#[track_caller]
fn assert_error(answer: &Answer, status: u16, code: &str, path: Option<&str>) {
    assert_eq!(answer.status.as_u16(), status, "{}", String::from_utf8_lossy(&answer.body));
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.error_code(), code, "{}", answer.text());
    if let Some(path) = path {
        assert_eq!(answer.error_path().as_deref(), Some(path), "{}", answer.text());
    }
}

#[tokio::test]
async fn the_report_is_the_report_of_the_evaluate_streams_summary_line() {
    let app = TestApp::spawn().await;
    let body = lists(300, 21);
    let query = "model=rm-7&calibration_bins=7&top_disagreements=5&beta=0.8&normalization=comparisons";
    let stream = post(&app, &format!("/v1/evaluate/stream?{query}"), &[NDJSON], &body).await;
    let report = post(&app, &format!("/v1/report?{query}"), &[NDJSON], &body).await;
    assert_html(&report);
    let expected = report_of_stream(&stream, &report_date());
    assert_eq!(without_date(report.text()), without_date(&expected));
    let page = report.text();
    assert!(page.contains("data-report-kind=\"evaluation\""));
    assert!(page.contains("<tr data-model=\"rm-7\">"), "the model named by the query");
    // The options reached the stream: seven calibration bins, five disagreements, the groups.
    assert!(page.contains("data-chart=\"reliability\""));
    assert_eq!(page.matches("<tr data-group=").count(), 3);
}

#[tokio::test]
async fn with_models_the_report_is_the_report_of_the_compare_streams_summary_line() {
    let app = TestApp::spawn().await;
    let body = compared_lists(120, 5);
    let query = "models=rm-a,rm-b&confidence=0.9";
    let stream = post(&app, &format!("/v1/compare/stream?{query}"), &[NDJSON], &body).await;
    let report = post(&app, &format!("/v1/report?{query}"), &[NDJSON], &body).await;
    assert_html(&report);
    assert_eq!(without_date(report.text()), without_date(&report_of_stream(&stream, &report_date())));
    assert!(report.text().contains("data-report-kind=\"comparison\""));
    assert!(report.text().contains("data-pair=\"rm-a|rm-b\""));
}

#[tokio::test]
async fn a_gzip_body_is_read_as_the_stream_reads_it() {
    let app = TestApp::spawn().await;
    let body = gzip(&lists(200, 8));
    let headers = [NDJSON, ("content-encoding", "gzip")];
    let stream = post(&app, "/v1/evaluate/stream?calibration_bins=10", &headers, &body).await;
    let report = post(&app, "/v1/report?calibration_bins=10", &headers, &body).await;
    assert_html(&report);
    // The same fingerprint: the bytes as received, compressed.
    assert_eq!(without_date(report.text()), without_date(&report_of_stream(&stream, &report_date())));
}

#[tokio::test]
async fn a_line_that_fails_is_counted_and_the_report_still_drawn() {
    let app = TestApp::spawn().await;
    let mut body = lists(20, 3);
    body.extend_from_slice(b"{\"items\": [{\"reward\": 1.0}]}\n");
    body.extend_from_slice(&lists(5, 4));
    let report = post(&app, "/v1/report", &[NDJSON], &body).await;
    assert_html(&report);
    let row = report.text().find("<tr data-run=\"lines_failed\">").expect("the lines_failed row");
    let row = &report.text()[row..row + report.text()[row..].find("</tr>").expect("row end")];
    assert!(row.contains(">1<"), "one line failed: {row}");
}

#[tokio::test]
async fn bad_query_options_and_models_are_refused_naming_the_parameter() {
    let app = TestApp::spawn().await;
    let body = lists(3, 1);
    let cases = [
        ("beta=-1", "invalid_value", "beta"),
        ("calibration_bins=0", "invalid_value", "calibration_bins"),
        ("format=nope", "invalid_value", "format"),
        ("nonsense=1", "unknown_field", "nonsense"),
        ("beta=1&beta=2", "invalid_value", "beta"),
        ("models=a", "invalid_value", "models"),
        ("models=a,a", "invalid_value", "models[1]"),
        // Bins and k are an evaluation's: a comparison refuses them as its stream does.
        ("models=a,b&calibration_bins=10", "unknown_field", "calibration_bins"),
        ("models=a,b&model=c", "unknown_field", "model"),
    ];
    for (query, code, path) in cases {
        let answer = post(&app, &format!("/v1/report?{query}"), &[NDJSON], &body).await;
        assert_error(&answer, 422, code, Some(path));
        let stream = post(&app, &format!("/v1/evaluate/stream?{query}"), &[NDJSON], &body).await;
        if !query.contains("models") {
            let (stream, answer) = (stream.json(), answer.json());
            for field in ["code", "message", "path"] {
                assert_eq!(stream["error"][field], answer["error"][field], "{query}: as the stream names it");
            }
        }
    }
}

#[tokio::test]
async fn the_content_type_and_coding_are_the_streams() {
    let app = TestApp::spawn().await;
    let body = lists(3, 1);
    let answer = post(&app, "/v1/report", &[("content-type", "application/json")], &body).await;
    assert_error(&answer, 415, "unsupported_media_type", None);
    let answer = post(&app, "/v1/report", &[], &body).await;
    assert_error(&answer, 415, "unsupported_media_type", None);
    let answer = post(&app, "/v1/report", &[NDJSON, ("content-encoding", "br")], &body).await;
    assert_error(&answer, 415, "unsupported_encoding", None);
    let answer = post(&app, "/v1/report", &[NDJSON, ("content-encoding", "gzip")], &body).await;
    assert_error(&answer, 400, "malformed_encoding", None);
}

#[tokio::test]
async fn a_body_with_no_list_answers_422_and_one_whose_lines_all_failed_the_first_error() {
    let app = TestApp::spawn().await;
    for empty in [&b""[..], b"\n\n  \n"] {
        for path in ["/v1/report", "/v1/report?models=a,b"] {
            let answer = post(&app, path, &[NDJSON], empty).await;
            assert_error(&answer, 422, "empty_batch", None);
        }
    }
    let answer = post(&app, "/v1/report?models=a,b", &[NDJSON], b"{\"items\": [{\"rewards\": [1]}]}\n").await;
    assert_error(&answer, 422, "invalid_value", Some("items[0].rewards"));
    let body = b"{\"items\": [{\"reward\": 1.0}, {\"reward\": \"high\"}]}\n{\"items\": []}\n";
    let answer = post(&app, "/v1/report", &[NDJSON], body).await;
    assert_error(&answer, 422, "invalid_type", Some("items[1].reward"));
    let message = answer.json()["error"]["message"].as_str().expect("a message").to_string();
    assert!(message.contains("2 line(s) failed") && message.contains("line 1"), "{message}");
}

#[tokio::test]
async fn a_body_over_the_limit_answers_413_json() {
    const LIMIT: usize = 64 * 1024;
    let app = TestApp::builder().max_body_bytes(LIMIT).build().await;
    let long = format!("{{\"id\": \"{}\", \"items\": [{{\"reward\": 1}}, {{\"reward\": 0}}]}}\n", "x".repeat(LIMIT));
    // Plain: the one line over the limit is its error, and so the report's.
    let answer = post(&app, "/v1/report", &[NDJSON], long.as_bytes()).await;
    assert_error(&answer, 413, "payload_too_large", None);
    // Compressed: a line decoding past the limit (a bomb's endless line) stops the stream, and
    // the report with it, even after lines that were fine.
    let mut body = lists(10, 2);
    body.extend_from_slice(&[b' '; 4 * LIMIT]);
    let answer = post(&app, "/v1/report", &[NDJSON, ("content-encoding", "gzip")], &gzip(&body)).await;
    assert_error(&answer, 413, "payload_too_large", None);
}

#[tokio::test]
async fn a_body_cut_short_answers_a_json_error_not_half_a_report() {
    let app = TestApp::spawn().await;
    let addr = app.addr;
    let whole = String::from_utf8(lists(10, 6)).expect("UTF-8");
    let answer = tokio::task::spawn_blocking(move || {
        // Chunked framing that breaks after whole lines: the stream answers them, then stops.
        let broken = format!(
            "POST /v1/report HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-ndjson\r\n\
             Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{whole}\r\nzz\r\n",
            whole.len()
        );
        let mut raw = Raw::connect(addr);
        raw.write(broken.as_bytes()).expect("writes");
        raw.stream.shutdown(std::net::Shutdown::Write).expect("half-closes");
        raw.read_answer().expect("an answer")
    })
    .await
    .expect("the client thread");
    assert_error(&answer, 400, "body_incomplete", None);
}

#[tokio::test]
async fn with_tokens_the_report_needs_one_and_the_ui_says_so() {
    let app = TestApp::builder().api_tokens("s3cret").build().await;
    let body = lists(5, 9);
    let answer = post(&app, "/v1/report", &[NDJSON], &body).await;
    assert_error(&answer, 401, "unauthorized", None);
    assert!(answer.header("www-authenticate").is_some_and(|v| v.starts_with("Bearer")));
    let answer = post(&app, "/v1/report", &[NDJSON, ("authorization", "Bearer wrong")], &body).await;
    assert_error(&answer, 401, "unauthorized", None);
    let answer = post(&app, "/v1/report", &[NDJSON, ("authorization", "Bearer s3cret")], &body).await;
    assert_html(&answer);
    // The page itself needs no token (as /docs), and tells its script that the API does.
    let page = app.get("/ui").await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("<html lang=\"en\" data-auth=\"bearer\">"));
    let open = TestApp::spawn().await.get("/ui").await;
    assert!(open.text().contains("<html lang=\"en\" data-auth=\"none\">"));
}

#[tokio::test]
async fn the_ui_is_one_offline_page_with_the_form_the_browser_tests_drive() {
    let app = TestApp::spawn().await;
    let page = app.get("/ui").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    let csp = page.header("content-security-policy").expect("a policy");
    assert!(csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"), "{csp}");
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    let text = page.text();
    for id in [
        "file",
        "paste",
        "format",
        "normalization",
        "beta",
        "calibration_bins",
        "top_disagreements",
        "models",
        "submit",
        "report",
        "status",
        "token",
    ] {
        assert_eq!(text.matches(&format!("id=\"{id}\"")).count(), 1, "#{id}");
    }
    assert!(text.contains("<input type=\"file\" id=\"file\""));
    assert!(text.contains("<textarea id=\"paste\""));
    assert!(text.contains("<iframe id=\"report\"") && text.contains("sandbox=\"allow-scripts"));
    assert!(
        text.contains(
            "id=\"calibration_bins\" name=\"calibration_bins\" min=\"1\" max=\"100\" step=\"1\" value=\"10\""
        )
    );
    assert!(text.contains(
        "id=\"top_disagreements\" name=\"top_disagreements\" min=\"1\" max=\"1000\" step=\"1\" value=\"20\""
    ));
    // Nothing from another origin: no absolute URL at all, no external script, style or font.
    assert!(!text.contains("http://") && !text.contains("https://") && !text.contains("//cdn"), "an absolute URL");
    assert!(!text.contains("<script src") && !text.contains("<link rel=\"stylesheet\"") && !text.contains("@import"));
    // The upload streams: the File itself is the body, never read into a string.
    assert!(text.contains("body: sent.data") && !text.contains("FileReader") && !text.contains(".text()\n"));
    assert!(!text.contains("chosen.text()") && !text.contains("arrayBuffer"));
}

#[tokio::test]
async fn other_methods_answer_405_and_head_of_the_ui_is_its_get() {
    let app = TestApp::spawn().await;
    for method in [Method::GET, Method::HEAD, Method::PUT, Method::DELETE] {
        let answer = app.request(method.clone(), "/v1/report", &[], Vec::new()).await;
        assert_eq!(answer.status, 405, "{method}");
        assert_eq!(answer.header("allow"), Some("POST"), "{method}");
    }
    let answer = app.request(Method::POST, "/ui", &[], Vec::new()).await;
    assert_eq!(answer.status, 405);
    assert!(answer.header("allow").is_some_and(|allow| allow.contains("GET") && allow.contains("HEAD")));
    let head = app.request(Method::HEAD, "/ui", &[], Vec::new()).await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(head.header("content-type"), Some("text/html; charset=utf-8"));
}

#[tokio::test]
async fn reports_are_counted_under_their_route_template() {
    let app = TestApp::spawn().await;
    let answer = post(&app, "/v1/report?calibration_bins=3", &[NDJSON], &lists(4, 2)).await;
    assert_html(&answer);
    let metrics = app.metrics().await;
    assert!(
        metrics.text().lines().any(|line| line.starts_with("prefeval_http_requests_total")
            && line.contains("route=\"/v1/report\"")
            && line.contains("status=\"200\"")),
        "{}",
        metrics.text()
    );
}

/// The built binary, as a user runs it, with the date fixed: the very bytes of the report drawn
/// from the stream's summary line.
#[tokio::test]
async fn the_binary_answers_the_report_byte_for_byte() {
    let body = lists(150, 17);
    let answers = tokio::task::spawn_blocking(move || {
        let server = BinaryServer::start_with_env(&[], &[("SOURCE_DATE_EPOCH", "1764806400")]);
        let headers = [("Content-Type", "application/x-ndjson")];
        let query = "calibration_bins=10&top_disagreements=20";
        let exchange = |path: &str| {
            Raw::exchange(server.addr, "POST", &format!("{path}?{query}"), &headers, &body, Framing::Length)
        };
        (exchange("/v1/evaluate/stream"), exchange("/v1/report"))
    })
    .await
    .expect("the client thread");
    let (stream, report) = answers;
    assert_html(&report);
    let expected = report_of_stream(&stream, "2025-12-04");
    assert!(report.body == expected.as_bytes(), "the binary's report differs from the stream's summary drawn");
    assert!(report.text().contains("2025-12-04"));
}

/// The page and the summary it is drawn from are reserved from the memory budget before they are
/// drawn: refused for now (503) while others hold the budget, never (413) when they cannot fit,
/// and released once the answer is written.
#[tokio::test]
async fn drawing_the_report_is_reserved_from_the_memory_budget() {
    const LIMIT: u64 = 64 << 20;
    let app = TestApp::builder().memory_limit(LIMIT).build().await;
    let body = lists(50, 12);
    // Others hold all but 1 MiB: the stream's chunks fit, the page does not, for now.
    let others = app.state.memory.reserve(LIMIT as usize - (1 << 20)).expect("reserves");
    let answer = post(&app, "/v1/report", &[NDJSON], &body).await;
    assert_error(&answer, 503, "memory_budget", None);
    assert!(answer.header("retry-after").is_some());
    drop(others);
    assert_html(&post(&app, "/v1/report", &[NDJSON], &body).await);
    // The stream's task lets go of its reading reservation just after it hands on the summary.
    for _ in 0..200 {
        if app.state.memory.reserved() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(app.state.memory.reserved(), 0, "everything released");
    // A budget smaller than a page can never draw one.
    let small = TestApp::builder().memory_limit(2 << 20).build().await;
    let answer = post(&small, "/v1/report", &[NDJSON], &body).await;
    assert_error(&answer, 413, "payload_too_large", None);
}

/// Writes `head` and then `body` in `pieces` parts `pause` apart on a plain connection; the answer.
fn paced(addr: std::net::SocketAddr, head: &str, body: &[u8], pieces: usize, pause: std::time::Duration) -> Answer {
    let mut raw = Raw::connect(addr);
    raw.write(head.as_bytes()).expect("head");
    for piece in body.chunks(body.len().div_ceil(pieces)) {
        std::thread::sleep(pause);
        raw.write(piece).expect("a piece of the body");
    }
    raw.read_answer().expect("an answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_body_that_keeps_coming_outlasts_the_request_timeout_and_a_batch_does_not() {
    // A report reads its whole body before it answers: like a stream's, its body is paced (a whole
    // window without enough bytes ends it), not cut off by the whole-request timeout.
    let app = TestApp::builder().request_timeout_secs(1).build().await;
    let addr = app.addr;
    let body = lists(12, 0x77);
    let report_head = format!(
        "POST /v1/report HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let pause = std::time::Duration::from_millis(300);
    let answer = tokio::task::spawn_blocking(move || paced(addr, &report_head, &body, 8, pause)).await.unwrap();
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(answer.text().contains("<td data-figure=\"lists\" data-value=\"12\">"), "every list was read");
    // The same pace over the same time, to a batch: 408.
    let batch = serde_json::to_vec(&json!({"lists": [{"items": [{"reward": 1.0}, {"reward": 0.5}]}]})).unwrap();
    let batch_head = format!(
        "POST /v1/evaluate HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        batch.len()
    );
    let answer = tokio::task::spawn_blocking(move || paced(addr, &batch_head, &batch, 8, pause)).await.unwrap();
    assert_error(&answer, 408, "request_timeout", None);
    // A report body that stops: 408 once a whole window passes without a byte.
    let (stalled, _) = tokio::task::spawn_blocking(move || {
        let mut raw = Raw::connect(addr);
        let head = "POST /v1/report HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-ndjson\r\nContent-Length: 10000\r\n\r\n";
        raw.write(head.as_bytes()).unwrap();
        raw.write(&lists(2, 0x78)).unwrap(); // ... and the rest never comes
        raw.read_until_closed()
    })
    .await
    .unwrap();
    assert!(stalled.starts_with("HTTP/1.1 408"), "{stalled}");
    assert!(stalled.contains(r#""code":"request_timeout""#), "{stalled}");
}
