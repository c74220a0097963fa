//! Whole datasets through the doors a user takes: `POST /v1/evaluate/stream` over a plain TCP
//! socket (bodies sent with Content-Length or chunked), `prefeval eval` on a file and on stdin,
//! `prefeval merge` of shards, with `POST /v1/evaluate` as the reference for the figures. The
//! binary is started as a user starts it; every dataset is generated here from a seed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::helpers::{Answer, BinaryServer, Framing, Raw, SplitMix64};
use serde_json::{Value, json};

const FORMATS: [&str; 5] = ["native", "pairs", "ranking", "ratings", "ranks_zero_based"];

// The server.

/// The binary with two workers, and the requests these tests send it.
pub(crate) type Server = BinaryServer;

pub(crate) fn start() -> Server {
    BinaryServer::start(&["--workers", "2"])
}

pub(crate) trait Doors {
    fn stream(&self, query: &str, body: &[u8]) -> Answer;
    fn post_stream(&self, query: &str, body: &[u8], framing: Framing<'_>) -> Answer;
    fn batch(&self, request: &Value) -> (u16, Value);
    fn get(&self, path: &str) -> Answer;
}

impl Doors for BinaryServer {
    /// `POST /v1/evaluate/stream?query` with an NDJSON body sent with its Content-Length.
    fn stream(&self, query: &str, body: &[u8]) -> Answer {
        let answer = self.post_stream(query, body, Framing::Length);
        assert_eq!(answer.status, 200, "stream ?{query}: {}", answer.text());
        answer
    }

    fn post_stream(&self, query: &str, body: &[u8], framing: Framing<'_>) -> Answer {
        let target = format!("/v1/evaluate/stream?{query}");
        exchange(self.addr, "POST", &target, Some("application/x-ndjson"), body, framing)
    }

    /// `POST /v1/evaluate`; the answer's status and JSON body.
    fn batch(&self, request: &Value) -> (u16, Value) {
        let body = serde_json::to_vec(request).unwrap();
        let answer = exchange(self.addr, "POST", "/v1/evaluate", Some("application/json"), &body, Framing::Length);
        (answer.status.as_u16(), answer.json())
    }

    fn get(&self, path: &str) -> Answer {
        exchange(self.addr, "GET", path, None, b"", Framing::Length)
    }
}

// HTTP/1.1 over a plain socket.

/// NDJSON: the result lines and the summary.
pub(crate) fn results_and_summary(answer: &Answer) -> (Vec<Value>, Value) {
    let mut lines = ndjson_values(&answer.body);
    let last = lines.pop().expect("at least the summary line");
    let summary = last.get("summary").unwrap_or_else(|| panic!("the last line is no summary: {last}")).clone();
    (lines, summary)
}

/// One request with `Connection: close` and this content type; the whole answer.
fn exchange(
    addr: SocketAddr,
    method: &str,
    target: &str,
    content_type: Option<&str>,
    body: &[u8],
    framing: Framing<'_>,
) -> Answer {
    let headers: Vec<(&str, &str)> = content_type.map(|value| ("Content-Type", value)).into_iter().collect();
    Raw::exchange(addr, method, target, &headers, body, framing)
}

// The command line.

/// `prefeval ARGS`, with `stdin` written to its standard input.
pub(crate) fn prefeval(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_prefeval"))
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    std::thread::scope(|scope| {
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            scope.spawn(move || pipe.write_all(input));
        }
        child.wait_with_output().expect("prefeval runs")
    })
}

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A folder of its own for one test under cargo's scratch space; removed when dropped.
pub(crate) struct Scratch(pub(crate) PathBuf);

impl Scratch {
    pub(crate) fn new(name: &str) -> Scratch {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("datasets-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch folder");
        Scratch(dir)
    }

    pub(crate) fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }

    pub(crate) fn write(&self, file: &str, bytes: &[u8]) -> String {
        let path = self.path(file);
        std::fs::write(&path, bytes).expect("writes the file");
        path.to_str().expect("UTF-8 path").to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// Data.

/// The datasets' draws from the shared seeded generator.
type Rng = SplitMix64;

/// The draws these datasets take beside the generator's own (the generator lives in another crate).
trait DatasetDraws {
    fn within(&mut self, range: Range<usize>) -> usize;
    fn reward(&mut self) -> f64;
    fn shuffle<T>(&mut self, items: &mut [T]);
}

impl DatasetDraws for SplitMix64 {
    /// Uniform in `range`.
    fn within(&mut self, range: Range<usize>) -> usize {
        range.start + self.below((range.end - range.start) as u64) as usize
    }

    /// A reward as a model prints one: four decimals in [-4, 4].
    fn reward(&mut self) -> f64 {
        ((self.unit() * 8.0 - 4.0) * 1e4).round() / 1e4
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.within(0..i + 1));
        }
    }
}

/// Ranks for `n` items drawn from `1..=top`, not all equal (the list must imply a preference).
fn some_ranks(rng: &mut Rng, n: usize, top: usize) -> Vec<usize> {
    let mut ranks: Vec<usize> = (0..n).map(|_| rng.within(1..top + 1)).collect();
    if ranks.iter().all(|&r| r == ranks[0]) {
        ranks[0] = if ranks[0] == 1 { 2 } else { 1 };
    }
    ranks
}

/// A native list of `items` items: ranked by array order, or (one in two) by ranks with ties;
/// one reward in eight repeats the previous one (a tie of the model).
fn native_list(rng: &mut Rng, index: usize, items: Range<usize>) -> Value {
    let n = rng.within(items);
    let mut rewards: Vec<f64> = Vec::with_capacity(n);
    for k in 0..n {
        let tie = k > 0 && rng.within(0..8) == 0;
        rewards.push(if tie { rewards[k - 1] } else { rng.reward() });
    }
    let ranks = (rng.within(0..2) == 0).then(|| some_ranks(rng, n, 3));
    let items: Vec<Value> = (0..n)
        .map(|k| match &ranks {
            Some(ranks) => json!({"id": format!("resp-{k}"), "reward": rewards[k], "rank": ranks[k]}),
            None => json!({"id": format!("resp-{k}"), "reward": rewards[k]}),
        })
        .collect();
    json!({"id": format!("prompt-{index:05}"), "items": items})
}

pub(crate) fn native_dataset(seed: u64, lists: usize, items: Range<usize>) -> Vec<Value> {
    let mut rng = SplitMix64::new(seed);
    (0..lists).map(|index| native_list(&mut rng, index, items.clone())).collect()
}

/// One list in `format`, and the same list written natively as `docs/design/api.md` defines it.
fn format_case(rng: &mut Rng, format: &str, index: usize) -> (Value, Value) {
    let id = format!("prompt-{index:04}");
    let n = rng.within(2..8);
    match format {
        "native" => {
            let list = native_list(rng, index, 2..8);
            (list.clone(), list)
        }
        // Two items `chosen`, `rejected`, ranked in that order.
        "pairs" => {
            let (chosen, rejected) = (rng.reward(), rng.reward());
            let items = json!([{"id": "chosen", "reward": chosen}, {"id": "rejected", "reward": rejected}]);
            (json!({"id": id, "chosen_reward": chosen, "rejected_reward": rejected}), json!({"id": id, "items": items}))
        }
        // Positions best first, some of them ties; items in order of first appearance, rank =
        // position + 1.
        "ranking" => {
            let mut ids: Vec<String> = (0..n).map(|k| format!("resp-{k}")).collect();
            let rewards: serde_json::Map<String, Value> =
                ids.iter().map(|i| (i.clone(), json!(rng.reward()))).collect();
            rng.shuffle(&mut ids);
            let mut positions: Vec<Vec<String>> = Vec::new();
            let mut rest = ids.as_slice();
            while !rest.is_empty() {
                let (group, after) = rest.split_at(rng.within(1..4).min(rest.len()));
                positions.push(group.to_vec());
                rest = after;
            }
            if positions.len() == 1 {
                let last = positions[0].pop().expect("two ids or more");
                positions.push(vec![last]);
            }
            let ranking: Vec<Value> =
                positions.iter().map(|group| if group.len() == 1 { json!(group[0]) } else { json!(group) }).collect();
            let items: Vec<Value> = positions
                .iter()
                .enumerate()
                .flat_map(|(p, group)| group.iter().map(move |i| (p, i)))
                .map(|(p, i)| json!({"id": i, "reward": rewards[i], "rank": p + 1}))
                .collect();
            (json!({"id": id, "ranking": ranking, "rewards": rewards}), json!({"id": id, "items": items}))
        }
        // Higher rating is better, equal ratings tie: rank = 1 + distinct ratings above.
        "ratings" => {
            let scale = [1.0, 2.0, 2.5, 4.0, 4.75];
            let ratings: Vec<f64> = some_ranks(rng, n, scale.len()).iter().map(|&r| scale[r - 1]).collect();
            let rewards: Vec<f64> = (0..n).map(|_| rng.reward()).collect();
            let mut distinct = ratings.clone();
            distinct.sort_by(|a, b| b.total_cmp(a));
            distinct.dedup();
            let item = |k: usize| format!("resp-{k}");
            let rated = (0..n).map(|k| json!({"id": item(k), "rating": ratings[k], "reward": rewards[k]}));
            let ranked = (0..n).map(|k| {
                let rank = 1 + distinct.iter().filter(|&&r| r > ratings[k]).count();
                json!({"id": item(k), "reward": rewards[k], "rank": rank})
            });
            (
                json!({"id": id, "items": rated.collect::<Vec<_>>()}),
                json!({"id": id, "items": ranked.collect::<Vec<_>>()}),
            )
        }
        // 0 is best: rank + 1.
        "ranks_zero_based" => {
            let ranks = some_ranks(rng, n, 4);
            let rewards: Vec<f64> = (0..n).map(|_| rng.reward()).collect();
            let item = |k: usize, rank: usize| json!({"id": format!("resp-{k}"), "rank": rank, "reward": rewards[k]});
            let zero_based: Vec<Value> = (0..n).map(|k| item(k, ranks[k] - 1)).collect();
            let native: Vec<Value> = (0..n).map(|k| item(k, ranks[k])).collect();
            (json!({"id": id, "items": zero_based}), json!({"id": id, "items": native}))
        }
        other => panic!("no such format {other}"),
    }
}

/// One line per value, each ending with a newline.
pub(crate) fn ndjson<T: std::fmt::Display>(lines: &[T]) -> Vec<u8> {
    lines.iter().map(|line| format!("{line}\n")).collect::<String>().into_bytes()
}

pub(crate) fn ndjson_values(bytes: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(bytes).expect("UTF-8 NDJSON");
    text.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))).collect()
}

/// An NDJSON answer without its summary's `input` (the fingerprint of every byte read), and that
/// `input` as JSON.
fn without_input(answer: &[u8]) -> (Vec<u8>, Option<Value>) {
    let text = String::from_utf8_lossy(answer);
    let Some(start) = text.rfind(r#","input":{"#) else { return (answer.to_vec(), None) };
    let end = start + text[start..].find('}').expect("the fingerprint ends") + 1;
    let input = serde_json::from_str(&text[start + r#","input":"#.len()..end]).expect("the fingerprint is JSON");
    (format!("{}{}", &text[..start], &text[end..]).into_bytes(), Some(input))
}

/// The summary's `input` for these bytes: their count and xxh3-64.
pub(crate) fn input_of(bytes: &[u8]) -> Value {
    let mut hasher = prefeval::pipeline::fingerprint::FingerprintHasher::new();
    hasher.update(bytes);
    let fingerprint = hasher.finish();
    json!({"bytes": bytes.len(), "xxh3": format!("{:016x}", fingerprint.xxh3)})
}

/// Two outputs are the same bytes; otherwise the first line that differs.
pub(crate) fn assert_same_bytes(what: &str, expected: &[u8], got: &[u8]) {
    if expected == got {
        return;
    }
    let (expected, got) = (String::from_utf8_lossy(expected), String::from_utf8_lossy(got));
    let mut pairs = expected.split_inclusive('\n').zip(got.split_inclusive('\n')).enumerate();
    match pairs.find(|(_, (e, g))| e != g) {
        Some((k, (e, g))) => {
            panic!("{what}: output line {} differs:\nexpected {}\ngot      {}", k + 1, e.trim_end(), g.trim_end())
        }
        None => panic!("{what}: {} lines expected, got {}", expected.lines().count(), got.lines().count()),
    }
}

/// Equal within 1e-12, relative.
fn assert_close(what: &str, expected: &Value, got: &Value) {
    let (e, g) = (expected.as_f64(), got.as_f64());
    let (Some(e), Some(g)) = (e, g) else { panic!("{what}: expected {expected}, got {got}") };
    assert!((e - g).abs() <= 1e-12 * e.abs().max(g.abs()), "{what}: expected {e}, got {g}");
}

/// The figures two summaries must share: loss, accuracy, chance loss (close); counts (equal).
fn assert_same_summary(what: &str, expected: &Value, got: &Value) {
    for field in ["loss", "accuracy", "chance_loss"] {
        assert_close(&format!("{what}: {field}"), &expected[field], &got[field]);
    }
    for field in ["lists", "pairs", "lines_failed", "normalization"] {
        assert_eq!(expected[field], got[field], "{what}: {field}");
    }
}

// The stream.

#[test]
fn the_stream_answers_every_line_in_order_and_names_the_line_and_field_of_each_error() {
    let server = start();
    let list = |id: &str| json!({"id": id, "items": [{"id": "a", "reward": 1.5}, {"id": "b", "reward": -0.25}]});
    let body = [
        list("p1").to_string(),                                                            // 1
        r#"{"id":"p2","items":[{"id":"a","reward":0.5},{"id":"b","reward":"x"}]}"#.into(), // 2
        String::new(),                                                                     // 3: blank
        list("p4").to_string(),                                                            // 4
        " \t\r".into(),                                                                    // 5: blank
        r#"{"id":"p6","items":[{"id":"a","reward":1.0}"#.into(),                           // 6: cut short
        list("p7").to_string(),                                                            // 7
    ];
    let answer = server.stream("", &ndjson(&body));
    assert_eq!(answer.header("content-type"), Some("application/x-ndjson"));
    let (lines, summary) = results_and_summary(&answer);
    let numbers: Vec<u64> = lines.iter().map(|line| line["line"].as_u64().expect("a line number")).collect();
    assert_eq!(numbers, [1, 2, 4, 6, 7], "one answer per non-blank line, numbered as in the body");
    for (line, id) in [(&lines[0], "p1"), (&lines[2], "p4"), (&lines[4], "p7")] {
        assert_eq!(line["id"], id);
        assert_eq!((line["n"].as_u64(), line["pairs_count"].as_u64()), (Some(2), Some(1)), "{line}");
        assert!(line.get("error").is_none(), "{line}");
    }
    assert_eq!(lines[1]["error"]["code"], "invalid_type", "{}", lines[1]);
    assert_eq!(lines[1]["error"]["path"], "items[1].reward", "{}", lines[1]);
    assert_eq!(lines[3]["error"]["code"], "malformed_json", "{}", lines[3]);
    assert_eq!(summary["lists"], 3);
    assert_eq!(summary["lines_failed"], 2);
}

#[test]
fn a_chunked_body_gets_the_same_answer_as_the_same_body_with_content_length() {
    let server = start();
    let body = ndjson(&native_dataset(7, 300, 2..9));
    let sized = server.stream("", &body);
    // Small and odd sizes: most lines straddle two chunks or more.
    let chunked = server.post_stream("", &body, Framing::Chunked(&[1, 7, 64, 3, 500, 4096, 33]));
    assert_eq!(chunked.status, 200, "{}", chunked.text());
    assert_eq!(results_and_summary(&sized).0.len(), 300);
    assert_same_bytes("chunked body", &sized.body, &chunked.body);
}

#[test]
fn stream_eval_of_a_file_and_eval_of_stdin_give_the_same_bytes_and_the_batch_figures() {
    let server = start();
    let scratch = Scratch::new("same-bytes");
    let lists = native_dataset(11, 400, 2..9);
    let body = ndjson(&lists);
    let file = scratch.write("data.ndjson", &body);
    let settings = [
        // The stream and eval leave pairs out by default; the batch keeps them unless told.
        ("", vec![], json!({"include_pairs": false})),
        (
            "normalization=comparisons&beta=0.5",
            vec!["--normalization", "comparisons", "--beta", "0.5"],
            json!({"normalization": "comparisons", "beta": 0.5, "include_pairs": false}),
        ),
        ("include_pairs=true", vec!["--include-pairs"], json!({})),
    ];
    for (query, flags, options) in settings {
        let streamed = server.stream(query, &body);
        let from_file = prefeval(&[&["eval", file.as_str()], flags.as_slice()].concat(), None);
        let from_stdin = prefeval(&[&["eval", "-"], flags.as_slice()].concat(), Some(&body));
        for (what, output) in [("eval FILE", &from_file), ("eval -", &from_stdin)] {
            assert_eq!(output.status.code(), Some(0), "{what} ?{query}: {}", stderr(output));
            // The same bytes, the summary's `input` included: both fingerprint every byte read.
            assert_same_bytes(&format!("{what} against the stream ?{query}"), &streamed.body, &output.stdout);
            let (_, fingerprint) = without_input(&output.stdout);
            assert_eq!(fingerprint, Some(input_of(&body)), "{what}: the summary's input is every byte read");
        }
        assert_same_bytes(&format!("eval FILE against eval - ?{query}"), &from_file.stdout, &from_stdin.stdout);

        let (status, batch) = server.batch(&json!({"options": options, "lists": lists}));
        assert_eq!(status, 200, "{batch}");
        let (results, summary) = results_and_summary(&streamed);
        let batch_lists = batch["lists"].as_array().expect("lists");
        assert_eq!(results.len(), batch_lists.len());
        for (k, (result, expected)) in results.iter().zip(batch_lists).enumerate() {
            let mut result = result.clone();
            let line = result.as_object_mut().expect("an object").remove("line");
            assert_eq!(line, Some(json!(k + 1)));
            assert_eq!(&result, expected, "?{query}: line {} differs from lists[{k}] of the batch", k + 1);
        }
        assert_close(&format!("?{query}: loss"), &batch["loss"], &summary["loss"]);
        assert_close(&format!("?{query}: accuracy"), &batch["summary"]["accuracy"], &summary["accuracy"]);
        assert_eq!(batch["summary"]["lists"], summary["lists"]);
        assert_eq!(batch["summary"]["pairs"], summary["pairs"]);
        assert_eq!(batch["normalization"], summary["normalization"]);
    }
}

// The ids of the returned pairs: opt-in on every door.

/// Lists whose items have ids, one of them needing JSON escapes, and one item without an id.
fn lists_with_ids() -> Vec<Value> {
    let mut lists = native_dataset(61, 12, 2..7);
    lists[0]["items"][1]["id"] = json!("quote \" backslash \\ tab \t é ☃ \u{1} \u{2028}");
    lists[1]["items"][0].as_object_mut().expect("an item object").remove("id");
    lists
}

/// Every pair of `results` (batch lists or stream result lines, in the order of `lists`) carries
/// `preferred_id` and `other_id` exactly when `with_ids` and its item has an id, equal to that id.
fn assert_pair_ids(what: &str, results: &[Value], lists: &[Value], with_ids: bool) {
    assert_eq!(results.len(), lists.len(), "{what}: one result per list");
    for (k, (result, list)) in results.iter().zip(lists).enumerate() {
        let pairs = result["pairs"].as_array().unwrap_or_else(|| panic!("{what}: list {k} has no pairs: {result}"));
        assert!(!pairs.is_empty(), "{what}: list {k}");
        for pair in pairs {
            for (index, id) in [("preferred", "preferred_id"), ("other", "other_id")] {
                let item = pair[index].as_u64().unwrap_or_else(|| panic!("{what}: {pair}")) as usize;
                let expected = if with_ids { list["items"][item].get("id") } else { None };
                assert_eq!(pair.get(id), expected, "{what}: list {k}, pair {pair}");
            }
        }
    }
}

/// The answer's pairs are the text serde_json writes for the same numbers, byte for byte: indices,
/// and floats in shortest form whatever their magnitude (probabilities near 1, tiny ones in
/// exponent form, log-probabilities near −700), across many of the encoder's 8 KiB blocks.
#[test]
fn pairs_on_the_wire_are_the_bytes_serde_json_writes_for_them() {
    let server = start();
    let mut rng = Rng::new(71);
    let lists: Vec<Value> = (0..4)
        .map(|k| {
            // Rewards from ±1e-3 to ±700 apart, so every magnitude of probability comes up.
            let scale = [1e-3, 1.0, 40.0, 700.0][k];
            let items: Vec<Value> = (0..45).map(|_| json!({"reward": (rng.unit() - 0.5) * 2.0 * scale})).collect();
            json!({"items": items})
        })
        .collect();
    let body = serde_json::to_vec(&json!({"lists": lists})).unwrap();
    let answer = exchange(server.addr, "POST", "/v1/evaluate", Some("application/json"), &body, Framing::Length);
    assert_eq!(answer.status, 200, "{}", answer.text());
    let text = answer.text();
    assert!(text.len() > 4 * 8192, "the pairs span many blocks: {} bytes", text.len());
    for (k, list) in answer.json()["lists"].as_array().expect("lists").iter().enumerate() {
        let pairs = list["pairs"].as_array().expect("pairs");
        assert_eq!(pairs.len(), 45 * 44 / 2);
        let number = |value: &Value| serde_json::to_string(&value.as_f64().expect("a number")).unwrap();
        let expected: Vec<String> = pairs
            .iter()
            .map(|pair| {
                format!(
                    "{{\"preferred\":{},\"other\":{},\"probability\":{},\"log_probability\":{}}}",
                    pair["preferred"],
                    pair["other"],
                    number(&pair["probability"]),
                    number(&pair["log_probability"])
                )
            })
            .collect();
        let expected = format!("\"pairs\":[{}]", expected.join(","));
        assert!(text.contains(&expected), "list {k}: the pairs' text is not serde_json's");
    }
}

#[test]
fn pair_ids_are_opt_in_on_the_batch_the_stream_and_the_command_line() {
    let server = start();
    let scratch = Scratch::new("pair-ids");
    let lists = lists_with_ids();
    let body = ndjson(&lists);
    let file = scratch.write("data.ndjson", &body);

    // The batch: no ids unless asked for; asked for, each pair names its items' ids.
    let batch_lists = |options: Value| {
        let (status, answer) = server.batch(&json!({"options": options, "lists": lists}));
        assert_eq!(status, 200, "{answer}");
        answer["lists"].as_array().expect("lists").clone()
    };
    let plain = batch_lists(json!({}));
    assert_pair_ids("batch, default", &plain, &lists, false);
    assert_eq!(batch_lists(json!({"include_pair_ids": false})), plain, "false is the default");
    let with_ids = batch_lists(json!({"include_pair_ids": true}));
    assert_pair_ids("batch, include_pair_ids", &with_ids, &lists, true);
    let size = |lists: &Vec<Value>| serde_json::to_string(lists).expect("serializes").len();
    assert!(size(&with_ids) > size(&plain) + 1000, "the ids take room");
    // Without pairs, the option changes nothing.
    let (_, without_pairs) = server.batch(&json!({"options": {"include_pairs": false}, "lists": lists}));
    let (_, ids_without_pairs) =
        server.batch(&json!({"options": {"include_pairs": false, "include_pair_ids": true}, "lists": lists}));
    assert_eq!(ids_without_pairs, without_pairs);
    assert!(without_pairs["lists"][0].get("pairs").is_none(), "{without_pairs}");

    // The stream and `prefeval eval`: the same, and the same bytes as each other.
    // Pairs are asked for: the stream and eval leave them out by default.
    for (query, flags, expected, with_ids) in [
        ("include_pairs=true", vec!["--include-pairs"], &plain, false),
        (
            "include_pairs=true&include_pair_ids=false",
            vec!["--include-pairs", "--include-pair-ids=false"],
            &plain,
            false,
        ),
        ("include_pairs=true&include_pair_ids=true", vec!["--include-pairs", "--include-pair-ids"], &with_ids, true),
        (
            "include_pair_ids=true&include_pairs=true",
            vec!["--include-pair-ids=true", "--include-pairs=true"],
            &with_ids,
            true,
        ),
    ] {
        let streamed = server.stream(query, &body);
        let (results, _) = results_and_summary(&streamed);
        assert_pair_ids(&format!("stream ?{query}"), &results, &lists, with_ids);
        for (k, (result, list)) in results.iter().zip(expected.iter()).enumerate() {
            let mut result = result.clone();
            result.as_object_mut().expect("an object").remove("line");
            assert_eq!(&result, list, "stream ?{query}: line {} differs from lists[{k}] of the batch", k + 1);
        }
        let output = prefeval(&[&["eval", file.as_str()], flags.as_slice()].concat(), None);
        assert_eq!(output.status.code(), Some(0), "eval {flags:?}: {}", stderr(&output));
        assert_same_bytes(&format!("eval {flags:?} against the stream ?{query}"), &streamed.body, &output.stdout);
    }

    // A batch file's own option applies, and a flag overrides it.
    let options = json!({"include_pairs": true, "include_pair_ids": true});
    let batch_file = scratch.write("batch.json", json!({"options": options, "lists": lists}).to_string().as_bytes());
    for (flags, with_ids) in [(vec![], true), (vec!["--include-pair-ids=false"], false)] {
        let output = prefeval(&[&["eval", batch_file.as_str()], flags.as_slice()].concat(), None);
        assert_eq!(output.status.code(), Some(0), "eval batch {flags:?}: {}", stderr(&output));
        let mut results = ndjson_values(&output.stdout);
        results.pop();
        assert_pair_ids(&format!("eval of a batch file {flags:?}"), &results, &lists, with_ids);
    }

    // Not a boolean: refused before a byte of body is read, naming the parameter or the flag.
    let refused = server.post_stream("include_pair_ids=yes", &body, Framing::Length);
    assert_eq!(refused.status, 422, "{}", refused.text());
    assert_eq!(refused.json()["error"]["path"], "include_pair_ids", "{}", refused.text());
    let output = prefeval(&["eval", file.as_str(), "--include-pair-ids=yes"], None);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("--include-pair-ids"), "{}", stderr(&output));
}

// Shards and the command line.

/// A few thousand lines as exported: lists of 2 to 12 items, a broken line now and then, and a
/// blank line.
fn export_lines(seed: u64, count: usize) -> Vec<String> {
    let mut lines: Vec<String> = native_dataset(seed, count, 2..13).iter().map(Value::to_string).collect();
    for k in (250..count).step_by(700) {
        lines[k] = r#"{"id":"broken","items":[{"id":"only","reward":1.0}]}"#.to_string();
    }
    lines[count / 2] = String::new();
    lines
}

#[test]
fn merge_of_shard_results_equals_eval_of_the_whole() {
    let scratch = Scratch::new("merge");
    let lines = export_lines(23, 3000);
    let whole = scratch.write("whole.ndjson", &ndjson(&lines));
    let evaluate = |input: &str, out: &str| {
        let output = prefeval(&["eval", input, "--output", out], None);
        assert_eq!(output.status.code(), Some(1), "broken lines fail: {}", stderr(&output));
        out.to_string()
    };
    let whole_out = evaluate(&whole, scratch.path("whole.out").to_str().unwrap());
    let shards: Vec<String> = [0..1000, 1000..2100, 2100..3000]
        .into_iter()
        .enumerate()
        .map(|(k, range)| {
            let input = scratch.write(&format!("shard-{k}.ndjson"), &ndjson(&lines[range]));
            evaluate(&input, scratch.path(&format!("shard-{k}.out")).to_str().unwrap())
        })
        .collect();

    let merged =
        prefeval(&[&["merge"], shards.iter().map(String::as_str).collect::<Vec<_>>().as_slice()].concat(), None);
    assert_eq!(merged.status.code(), Some(0), "{}", stderr(&merged));
    let merged = ndjson_values(&merged.stdout);
    assert_eq!(merged.len(), 1, "one summary line");
    let whole = ndjson_values(&std::fs::read(&whole_out).unwrap()).pop().expect("a summary");
    assert_eq!(whole["summary"]["lines_failed"], 4, "the dataset has its broken lines");
    assert_same_summary("merge of 3 shards", &whole["summary"], &merged[0]["summary"]);
}

#[test]
fn merge_refuses_mixed_normalizations_and_a_file_that_ends_without_a_summary() {
    let scratch = Scratch::new("merge-refusals");
    let input = scratch.write("shard.ndjson", &ndjson(&native_dataset(29, 40, 2..6)));
    let out = |name: &str, normalization: &str| {
        let path = scratch.path(name).to_str().unwrap().to_string();
        let output = prefeval(&["eval", &input, "--normalization", normalization, "--output", &path], None);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        path
    };
    let (ordered, sum) = (out("ordered.out", "ordered_pairs"), out("sum.out", "sum"));
    let mixed = prefeval(&["merge", &ordered, &sum], None);
    assert_eq!(mixed.status.code(), Some(2), "mixed normalizations: {}", stderr(&mixed));
    assert!(stderr(&mixed).contains("normalization"), "{}", stderr(&mixed));
    assert!(mixed.stdout.is_empty());

    // A run cut short: every result line but no summary.
    let text = std::fs::read_to_string(&ordered).unwrap();
    let cut = scratch.write("cut.out", text.lines().take(40).collect::<Vec<_>>().join("\n").as_bytes());
    let unfinished = prefeval(&["merge", &ordered, &cut], None);
    assert_eq!(unfinished.status.code(), Some(2), "no summary: {}", stderr(&unfinished));
    assert!(stderr(&unfinished).contains("cut.out"), "names the file: {}", stderr(&unfinished));
    assert!(unfinished.stdout.is_empty());
}

#[test]
fn eval_exits_0_when_clean_1_when_a_line_failed_and_2_for_usage_errors() {
    let scratch = Scratch::new("exit-status");
    let mut lines: Vec<String> = native_dataset(31, 6, 2..5).iter().map(Value::to_string).collect();
    let clean = scratch.write("clean.ndjson", &ndjson(&lines));
    lines[2] = r#"{"id":"bad","items":[{"reward":1.0},{"reward":"high"}]}"#.into();
    lines[4] = r#"{"id":"bad","items":[{"reward":1.0}]}"#.into();
    let failing = scratch.write("failing.ndjson", &ndjson(&lines));

    let ok = prefeval(&["eval", &clean, "--quiet"], None);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    assert!(ok.stderr.is_empty(), "nothing to say: {}", stderr(&ok));

    let failed = prefeval(&["eval", &failing], None);
    assert_eq!(failed.status.code(), Some(1), "{}", stderr(&failed));
    let message = stderr(&failed);
    assert!(message.contains("2 of 6 lines failed") && message.contains("line 3"), "count and first line: {message}");
    assert_eq!(ndjson_values(&failed.stdout).len(), 7, "the results are still written");

    let missing = prefeval(&["eval", scratch.path("absent.ndjson").to_str().unwrap()], None);
    assert_eq!(missing.status.code(), Some(2), "{}", stderr(&missing));
    assert!(stderr(&missing).contains("absent.ndjson"), "{}", stderr(&missing));
    for flag in [&["--normalization", "mean"][..], &["--beta", "0"], &["--format", "csv"], &["--include-pairs=maybe"]] {
        let usage = prefeval(&[&["eval", clean.as_str()], flag].concat(), None);
        assert_eq!(usage.status.code(), Some(2), "{flag:?}: {}", stderr(&usage));
        assert!(usage.stdout.is_empty(), "{flag:?}");
    }
}

// Formats.

#[test]
fn every_input_format_gives_the_figures_of_the_same_data_sent_natively() {
    let server = start();
    let mut rng = SplitMix64::new(37);
    for format in FORMATS {
        let (lists, natives): (Vec<Value>, Vec<Value>) = (0..25).map(|i| format_case(&mut rng, format, i)).unzip();
        let streamed = server.stream(&format!("format={format}"), &ndjson(&lists));
        let native = server.stream("", &ndjson(&natives));
        let (results, summary) = results_and_summary(&streamed);
        assert_eq!(summary["lines_failed"], 0, "{format}: {}", streamed.text());
        assert_eq!(results, results_and_summary(&native).0, "{format}: stream");
        // The same figures; only the runs (the format, the fingerprints of the inputs) differ.
        let figures = |mut summary: Value| {
            summary.as_object_mut().and_then(|fields| fields.remove("run")).expect("the summary's run");
            summary
        };
        assert_eq!(figures(summary.clone()), figures(results_and_summary(&native).1), "{format}: stream summary");

        let (status, mut batch) = server.batch(&json!({"options": {"format": format}, "lists": lists}));
        assert_eq!(status, 200, "{format}: {batch}");
        let (status, native_batch) = server.batch(&json!({"lists": natives}));
        assert_eq!(status, 200, "{format} written natively: {native_batch}");
        assert_eq!(batch["summary"]["run"]["format"], format, "{format}: the run names the format");
        batch["summary"]["run"]["format"] = json!("native");
        assert_eq!(batch, native_batch, "{format}: batch");
    }
}

#[test]
fn format_errors_name_the_fields_the_client_wrote() {
    let server = start();
    let cases = [
        (
            "ranking",
            json!({"id": "p", "ranking": ["a", ["zz", "b"]], "rewards": {"a": 1.0, "b": 0.5}}),
            "invalid_value",
            "ranking[1][0]",
        ),
        (
            "ratings",
            json!({"id": "p", "items": [{"id": "a", "reward": 1.0}, {"id": "b", "reward": 0.5, "rating": 3}]}),
            "missing_field",
            "items[0].rating",
        ),
        ("pairs", json!({"id": "p", "chosen_reward": 1.0}), "missing_field", "rejected_reward"),
        ("native", json!({"id": "p", "chosen_reward": 1.0, "rejected_reward": 0.5}), "unknown_field", "chosen_reward"),
    ];
    let mut rng = SplitMix64::new(41);
    for (format, bad, code, path) in cases {
        let good = format_case(&mut rng, format, 0).0;
        let answer = server.stream(&format!("format={format}"), &ndjson(&[&good, &bad]));
        let (lines, summary) = results_and_summary(&answer);
        assert!(lines[0].get("error").is_none(), "{format}: {}", lines[0]);
        assert_eq!(lines[1]["line"], 2, "{format}");
        assert_eq!((&lines[1]["error"]["code"], &lines[1]["error"]["path"]), (&json!(code), &json!(path)), "{format}");
        assert_eq!(summary["lines_failed"], 1);

        let (status, error) = server.batch(&json!({"options": {"format": format}, "lists": [good, bad]}));
        assert_eq!(status, 422, "{format}: {error}");
        assert_eq!(error["error"]["code"], code, "{format}: {error}");
        assert_eq!(error["error"]["path"], format!("lists[1].{path}"), "{format}: {error}");
    }
}

// The service around the stream.

/// The value of one series in a Prometheus text exposition.
fn metric(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

#[test]
fn streamed_lists_move_the_per_model_metrics() {
    let server = start();
    let lists = 37;
    let answer = server.stream("model=m1", &ndjson(&native_dataset(43, lists, 2..9)));
    let (_, summary) = results_and_summary(&answer);
    assert_eq!(summary["lists"], lists);
    let metrics = server.get("/metrics");
    assert_eq!(metrics.status, 200);
    let exposition = metrics.text();
    let pairs = summary["pairs"].as_f64().expect("pairs");
    assert_eq!(metric(exposition, r#"prefeval_lists_evaluated_total{model="m1"}"#), Some(lists as f64), "{exposition}");
    assert_eq!(metric(exposition, r#"prefeval_pairs_evaluated_total{model="m1"}"#), Some(pairs), "{exposition}");
}

#[test]
fn an_invalid_stream_query_is_a_422_naming_the_parameter_and_a_wrong_content_type_is_415() {
    let server = start();
    let body = ndjson(&native_dataset(47, 2, 2..4));
    for (query, code, parameter) in [
        ("beta=0", "invalid_value", "beta"),
        ("format=nope", "invalid_value", "format"),
        ("include_pairs=false&colour=blue", "unknown_field", "colour"),
    ] {
        let answer = server.post_stream(query, &body, Framing::Length);
        assert_eq!(answer.status, 422, "?{query}: {}", answer.text());
        assert_eq!(answer.header("content-type"), Some("application/json"), "?{query}");
        let error = answer.json();
        assert_eq!(error["error"]["code"], code, "?{query}: {error}");
        assert_eq!(error["error"]["path"], parameter, "?{query}: {error}");
    }
    for content_type in [Some("application/json"), Some("text/plain"), None] {
        let answer = exchange(server.addr, "POST", "/v1/evaluate/stream", content_type, &body, Framing::Length);
        assert_eq!(answer.status, 415, "{content_type:?}: {}", answer.text());
        assert_eq!(answer.json()["error"]["code"], "unsupported_media_type", "{content_type:?}");
    }
}

// The examples.

#[test]
fn the_examples_outputs_are_what_eval_prints_for_them() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    for format in FORMATS {
        let input = examples.join(format!("{format}.ndjson"));
        let expected = std::fs::read(examples.join(format!("{format}.out.ndjson"))).expect("committed output");
        let output = prefeval(&["eval", input.to_str().unwrap(), "--format", format], None);
        let status = if format == "native" { 1 } else { 0 };
        assert_eq!(output.status.code(), Some(status), "examples/{format}.ndjson: {}", stderr(&output));
        assert_same_bytes(&format!("examples/{format}.out.ndjson is stale"), &expected, &output.stdout);
    }
}

#[test]
fn a_stream_client_that_expects_100_continue_gets_it_before_sending_its_body() {
    let server = start();
    let body = ndjson(&[json!({"id": "a", "items": [{"reward": 1.0}, {"reward": 0.0}]})]);
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let head = format!(
        "POST /v1/evaluate/stream HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    // curl waits a second for this before sending anyway; the server must not make it wait.
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).expect("an interim answer before the body is sent");
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(&body).unwrap();
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    let rest = String::from_utf8_lossy(&rest);
    assert!(rest.starts_with("HTTP/1.1 200"), "{rest}");
    assert!(rest.contains(r#""lines_failed":0"#), "{rest}");
}

#[test]
fn eval_reads_a_cut_short_first_line_as_a_bad_ndjson_line_not_as_a_batch() {
    let scratch = Scratch::new("cut-short");
    let input = scratch.write(
        "data.ndjson",
        b"{\"id\":\"p1\",\"items\":[{\"id\":\"a\",\"reward\":1.0}\n{\"id\":\"p2\",\"items\":[{\"reward\":1},{\"reward\":0}]}\n",
    );
    let output = prefeval(&["eval", &input], None);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let lines = ndjson_values(&output.stdout);
    assert_eq!(lines[0]["line"], 1);
    assert_eq!(lines[0]["error"]["code"], "malformed_json");
    assert_eq!(lines[1]["id"], "p2");
    assert_eq!(lines[2]["summary"]["lines_failed"], 1);
}

#[test]
fn a_byte_order_mark_at_the_start_is_skipped_by_eval_and_the_stream() {
    let scratch = Scratch::new("bom");
    let lists = native_dataset(71, 3, 2..5);
    let plain = ndjson(&lists);
    let marked = [&b"\xEF\xBB\xBF"[..], &plain].concat();
    let file = scratch.write("marked.ndjson", &marked);
    let output = prefeval(&["eval", &file], None);
    assert_eq!(output.status.code(), Some(0), "line 1 is evaluated: {}", stderr(&output));
    let lines = ndjson_values(&output.stdout);
    assert_eq!((&lines[0]["line"], &lines[0]["id"]), (&json!(1), &lists[0]["id"]), "{}", lines[0]);
    assert_eq!(lines[3]["summary"]["run"]["input"], input_of(&marked), "the fingerprint is of the bytes as read");

    let batch = [&b"\xEF\xBB\xBF"[..], json!({"lists": lists}).to_string().as_bytes()].concat();
    let batch = scratch.write("marked.json", &batch);
    let output = prefeval(&["eval", &batch], None);
    assert_eq!(output.status.code(), Some(0), "a batch file with a mark: {}", stderr(&output));
    assert_eq!(ndjson_values(&output.stdout)[3]["summary"]["lists"], 3);

    let server = start();
    let streamed = server.stream("", &marked);
    let (results, summary) = results_and_summary(&streamed);
    assert_eq!(summary["lines_failed"], 0, "{}", streamed.text());
    assert_eq!(results[0]["id"], lists[0]["id"]);
}

/// A chunked stream request whose body the test writes piece by piece.
fn open_chunked_stream(server: &Server, query: &str) -> TcpStream {
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "POST /v1/evaluate/stream?{query} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream
}

fn write_chunk(stream: &mut TcpStream, data: &[u8]) {
    stream.write_all(format!("{:x}\r\n", data.len()).as_bytes()).unwrap();
    stream.write_all(data).unwrap();
    stream.write_all(b"\r\n").unwrap();
}

/// Reads until `needle` has arrived; everything read so far.
fn read_until(stream: &mut TcpStream, needle: &str) -> String {
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains(needle) {
        let read = stream.read(&mut buffer).unwrap_or_else(|e| panic!("waiting for {needle}: {e}"));
        assert!(read > 0, "the answer ended before {needle}: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buffer[..read]);
    }
    String::from_utf8_lossy(&seen).into_owned()
}

#[test]
fn a_slow_producer_gets_each_result_before_it_sends_the_next_line() {
    let server = start();
    let mut stream = open_chunked_stream(&server, "");
    for line in 1..=3u64 {
        let list = json!({"id": format!("p{line}"), "items": [{"reward": 1.0}, {"reward": 0.0}]});
        write_chunk(&mut stream, format!("{list}\n").as_bytes());
        // The body is still open; the result of this line must come anyway.
        read_until(&mut stream, &format!("\"line\":{line},"));
    }
    stream.write_all(b"0\r\n\r\n").unwrap();
    let rest = read_until(&mut stream, "\"summary\"");
    assert!(rest.contains("\"lists\":3"), "{rest}");
}

#[test]
fn a_stalled_stream_answers_every_whole_line_it_got_then_says_it_timed_out() {
    let server = BinaryServer::start(&["--workers", "2", "--request-timeout-secs", "1"]);
    let mut stream = open_chunked_stream(&server, "");
    let lines: String = (1..=3)
        .map(|i| format!("{}\n", json!({"id": format!("p{i}"), "items": [{"reward": 1}, {"reward": 0}]})))
        .collect();
    // Three whole lines and the start of a fourth, then nothing.
    write_chunk(&mut stream, format!("{lines}{{\"id\":\"cut").as_bytes());
    let answer = read_until(&mut stream, "request_timeout");
    for line in 1..=3 {
        assert!(answer.contains(&format!("\"line\":{line},\"id\":\"p{line}\"")), "{answer}");
    }
    assert!(!answer.contains("\"summary\""), "a cut stream has no summary: {answer}");
}
