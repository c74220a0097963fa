//! Generative robustness of `POST /v1/evaluate` (proptest): (a) arbitrary JSON values (extreme
//! floats, integers past u64, unicode strings, nested arrays and objects with keys taken from the
//! real field names) placed at random positions of otherwise valid requests, and (b) random byte
//! mutations (bit flips, insertions, deletions, duplications, truncation) of valid bodies.
//!
//! Whatever arrives, the answer is 200 or 4xx (never 5xx), its body is JSON, an error carries a
//! stable code that matches its status, and a 200 holds only finite figures in their ranges.

use std::cell::Cell;

use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use serde_json::Value;
use tokio::runtime::Runtime;

use crate::helpers::{Answer, TestApp, test_data_dir};

/// Cases per generator: enough to reach the corners, small enough for the debug profile.
const CASES: u32 = 10_000;

// ---------------------------------------------------------------------------------------------
// JSON kept as text, so numbers can be anything the grammar allows (1e400, 600-digit integers,
// -0) and objects can repeat a key, neither of which `serde_json::Value` can hold.

#[derive(Clone, Debug)]
enum Json {
    Null,
    Bool(bool),
    /// The number exactly as written.
    Number(String),
    Text(String),
    Array(Vec<Json>),
    /// In order, duplicates allowed.
    Object(Vec<(String, Json)>),
}

impl Json {
    fn from_value(value: &Value) -> Json {
        match value {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Number(n) => Json::Number(n.to_string()),
            Value::String(s) => Json::Text(s.clone()),
            Value::Array(items) => Json::Array(items.iter().map(Json::from_value).collect()),
            Value::Object(map) => Json::Object(map.iter().map(|(k, v)| (k.clone(), Json::from_value(v))).collect()),
        }
    }

    fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Number(n) => out.push_str(n),
            Json::Text(s) => out.push_str(&quoted(s)),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Json::Object(fields) => {
                out.push('{');
                for (i, (key, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&quoted(key));
                    out.push(':');
                    value.write(out);
                }
                out.push('}');
            }
        }
    }

    fn text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    /// Every node, as the child indices that lead to it from the root (the root is `[]`).
    fn paths(&self) -> Vec<Vec<usize>> {
        let mut paths = vec![Vec::new()];
        let children: Vec<&Json> = match self {
            Json::Array(items) => items.iter().collect(),
            Json::Object(fields) => fields.iter().map(|(_, v)| v).collect(),
            _ => Vec::new(),
        };
        for (i, child) in children.into_iter().enumerate() {
            for mut path in child.paths() {
                path.insert(0, i);
                paths.push(path);
            }
        }
        paths
    }

    fn at_mut(&mut self, path: &[usize]) -> &mut Json {
        match (path.split_first(), self) {
            (None, node) => node,
            (Some((&i, rest)), Json::Array(items)) => items[i].at_mut(rest),
            (Some((&i, rest)), Json::Object(fields)) => fields[i].1.at_mut(rest),
            (Some(_), node) => node,
        }
    }
}

fn quoted(text: &str) -> String {
    serde_json::to_string(text).expect("a string serializes")
}

// ---------------------------------------------------------------------------------------------
// Valid requests to start from: hand-written ones covering every field, and the small golden
// vectors.

fn base_requests() -> Vec<String> {
    let mut bases: Vec<String> = [
        r#"{"model":"m","options":{"normalization":"comparisons","include_pairs":true,"beta":1.0},"lists":[{"id":"p","items":[{"id":"a","reward":1.5},{"id":"b","reward":0.5},{"id":"c","reward":-0.25}]}]}"#,
        r#"{"lists":[{"items":[{"reward":0.2,"rank":1},{"reward":0.5,"rank":1},{"reward":-1,"rank":2},{"reward":3,"rank":4}]}]}"#,
        r#"{"options":{"normalization":"sum","include_pairs":false,"beta":0.5},"lists":[{"items":[{"reward":1},{"reward":0}]},{"id":"q","items":[{"reward":-2},{"reward":2},{"reward":0}]}]}"#,
        r#"{"model":"rm-ü-测试","options":{"normalization":"ordered_pairs"},"lists":[{"id":"提示","items":[{"id":"✓","reward":1e-300,"rank":2},{"id":"✗","reward":-0.0,"rank":1}]}]}"#,
    ]
    .map(str::to_string)
    .to_vec();
    let path = test_data_dir().join("golden/evaluate.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let golden: Value = serde_json::from_str(&text).expect("the golden file is JSON");
    for case in golden["cases"].as_array().expect("golden cases") {
        let request = serde_json::to_string(&case["request"]).expect("serializes");
        if request.len() <= 2048 {
            bases.push(request);
        }
    }
    bases
}

// ---------------------------------------------------------------------------------------------
// Generators

const FIELD_NAMES: [&str; 10] =
    ["model", "options", "normalization", "include_pairs", "beta", "lists", "id", "items", "reward", "rank"];

fn number() -> impl Strategy<Value = String> {
    let extreme = prop::sample::select(vec![
        "0",
        "-0",
        "-0.0",
        "1",
        "2.0",
        "1.7976931348623157e308",
        "-1.7976931348623157e308",
        "1.7e308",
        "-1.7e308",
        "8e307",
        "5e-324",
        "2.2250738585072014e-308",
        "1e400",
        "-1e400",
        "1e-400",
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775808",
        "9007199254740993",
        "0.30000000000000004",
        "1E+2",
        "1e-0",
    ])
    .prop_map(str::to_string);
    prop_oneof![
        3 => extreme,
        2 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        2 => any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| format!("{f:e}")),
        1 => any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| format!("{f}")),
        1 => (any::<bool>(), "[1-9][0-9]{19,600}").prop_map(|(neg, digits)| format!("{}{digits}", if neg { "-" } else { "" })),
        1 => (-99_999i64..99_999, -2000i32..2000).prop_map(|(m, e)| format!("{m}e{e}")),
        1 => (0u32..1000, "[0-9]{1,30}", -400i32..400).prop_map(|(i, f, e)| format!("{i}.{f}E{e:+}")),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any::<String>(),
        2 => prop::sample::select(vec![
            "", "sum", "ordered_pairs", "comparisons", "SUM", "1.5", "1e3", " 2", "true", "null", "NaN", "\u{0}",
            "\u{feff}", "😀", "é",
        ])
        .prop_map(str::to_string),
        1 => prop::sample::select(FIELD_NAMES.to_vec()).prop_map(str::to_string),
        1 => (1020usize..1030, prop::sample::select(vec!["x", "é", "€", "😀"])).prop_map(|(n, c)| c.repeat(n / c.len())),
        1 => (250usize..262).prop_map(|n| "m".repeat(n)),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(FIELD_NAMES.to_vec()).prop_map(str::to_string),
        1 => "[a-z_]{0,12}",
        1 => any::<String>(),
    ]
}

/// Arbitrary JSON, up to 4 levels deep.
fn json() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        1 => Just(Json::Null),
        1 => any::<bool>().prop_map(Json::Bool),
        4 => number().prop_map(Json::Number),
        2 => text().prop_map(Json::Text),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Json::Array),
            prop::collection::vec((key(), inner), 0..8).prop_map(Json::Object),
        ]
    })
}

/// Where and how a value goes into a valid request.
#[derive(Clone, Debug)]
enum Placement {
    /// Replaces the node.
    Replace,
    /// Into an object: a field with this key (a duplicate if the key is there); into an array: an
    /// element; at a scalar: replaces it.
    Insert(String),
}

fn placement() -> impl Strategy<Value = Placement> {
    prop_oneof![Just(Placement::Replace), key().prop_map(Placement::Insert)]
}

/// The request `base` with `value` placed at its node `node` (modulo the number of nodes).
fn place(base: &Json, value: Json, node: usize, placement: &Placement, slot: usize) -> Json {
    let mut request = base.clone();
    let paths = request.paths();
    let target = request.at_mut(&paths[node % paths.len()]);
    match (placement, target) {
        (Placement::Insert(key), Json::Object(fields)) => {
            fields.insert(slot % (fields.len() + 1), (key.clone(), value))
        }
        (Placement::Insert(_), Json::Array(items)) => items.insert(slot % (items.len() + 1), value),
        (_, target) => *target = value,
    }
    request
}

#[derive(Clone, Debug)]
enum Edit {
    FlipBit {
        at: usize,
        bit: u8,
    },
    Insert {
        at: usize,
        byte: u8,
    },
    Delete {
        at: usize,
    },
    Replace {
        at: usize,
        byte: u8,
    },
    /// Repeats `len` bytes starting at `at`.
    Duplicate {
        at: usize,
        len: usize,
    },
    Truncate {
        at: usize,
    },
}

fn byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        1 => any::<u8>(),
        2 => prop::sample::select(b"{}[]\",:\\0123456789-+.eEntfu \x00\x7f\x80\xbf\xc0\xc3\xed\xf4\xff".to_vec()),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    let at = any::<usize>();
    prop_oneof![
        3 => (at, 0u8..8).prop_map(|(at, bit)| Edit::FlipBit { at, bit }),
        3 => (at, byte()).prop_map(|(at, byte)| Edit::Insert { at, byte }),
        3 => at.prop_map(|at| Edit::Delete { at }),
        3 => (at, byte()).prop_map(|(at, byte)| Edit::Replace { at, byte }),
        1 => (at, 1usize..64).prop_map(|(at, len)| Edit::Duplicate { at, len }),
        1 => at.prop_map(|at| Edit::Truncate { at }),
    ]
}

fn apply(body: &mut Vec<u8>, edit: &Edit) {
    let len = body.len();
    match *edit {
        Edit::FlipBit { at, bit } if len > 0 => body[at % len] ^= 1 << bit,
        Edit::Insert { at, byte } => body.insert(at % (len + 1), byte),
        Edit::Delete { at } if len > 0 => {
            body.remove(at % len);
        }
        Edit::Replace { at, byte } if len > 0 => body[at % len] = byte,
        Edit::Duplicate { at, len: span } if len > 0 => {
            let start = at % len;
            let span: Vec<u8> = body[start..(start + span).min(len)].to_vec();
            body.splice(start..start, span);
        }
        Edit::Truncate { at } => body.truncate(at % (len + 1)),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// What every answer must satisfy

/// The status of each stable error code (docs/api.md, Errors).
fn status_of(code: &str) -> Option<u16> {
    Some(match code {
        "malformed_json" => 400,
        "payload_too_large" => 413,
        "unsupported_media_type" => 415,
        "invalid_type"
        | "invalid_value"
        | "missing_field"
        | "unknown_field"
        | "number_out_of_range"
        | "empty_batch"
        | "too_few_items"
        | "too_many_items"
        | "too_many_lists"
        | "too_many_pairs"
        | "mixed_ranking"
        | "no_preferences"
        | "non_finite_result" => 422,
        _ => return None,
    })
}

fn in_unit(x: Option<f64>) -> bool {
    x.is_some_and(|x| (0.0..=1.0).contains(&x))
}

fn non_negative(x: Option<f64>) -> bool {
    x.is_some_and(|x| x.is_finite() && x >= 0.0)
}

/// No `null` anywhere and every number finite.
fn all_finite(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Number(n) => n.as_f64().is_some_and(f64::is_finite),
        Value::Array(items) => items.iter().all(all_finite),
        Value::Object(fields) => fields.values().all(all_finite),
        _ => true,
    }
}

/// Checks one answer; returns whether it was a 200. With `well_formed`, the request is known to
/// be grammatical JSON, so `malformed_json` would misreport it (api.md: 400 malformed JSON, 422
/// well-formed but invalid).
fn check_answer(request: &[u8], answer: &Answer, well_formed: bool) -> Result<bool, TestCaseError> {
    let shown = |bytes: &[u8]| -> String {
        let text = String::from_utf8_lossy(bytes);
        if text.chars().count() > 600 {
            format!("{}…", text.chars().take(600).collect::<String>())
        } else {
            text.into()
        }
    };
    let context = || format!("request {}\nanswer {} {}", shown(request), answer.status, shown(&answer.body));
    let status = answer.status.as_u16();
    prop_assert!(status == 200 || (400..500).contains(&status), "status out of 200/4xx; {}", context());
    let content_type = answer.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    prop_assert!(content_type.starts_with("application/json"), "Content-Type {:?}; {}", content_type, context());
    let body: Value = serde_json::from_slice(&answer.body)
        .map_err(|e| TestCaseError::fail(format!("body is not JSON ({e}); {}", context())))?;
    if status != 200 {
        let code = body["error"]["code"].as_str().unwrap_or("");
        prop_assert_eq!(status_of(code), Some(status), "error.code {:?} for status {}; {}", code, status, context());
        prop_assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "no message; {}", context());
        prop_assert!(!(well_formed && code == "malformed_json"), "well-formed JSON called malformed; {}", context());
        return Ok(false);
    }
    prop_assert!(all_finite(&body), "a null or non-finite figure; {}", context());
    prop_assert!(non_negative(body["loss"].as_f64()), "loss; {}", context());
    prop_assert!(in_unit(body["summary"]["accuracy"].as_f64()), "summary.accuracy; {}", context());
    let lists = body["lists"].as_array().ok_or_else(|| TestCaseError::fail(format!("no lists; {}", context())))?;
    prop_assert_eq!(body["summary"]["lists"].as_u64(), Some(lists.len() as u64), "summary.lists; {}", context());
    for list in lists {
        prop_assert!(non_negative(list["loss"].as_f64()), "list loss; {}", context());
        prop_assert!(in_unit(list["accuracy"].as_f64()), "list accuracy; {}", context());
        prop_assert!(list["n"].as_u64().is_some_and(|n| n >= 2), "list n; {}", context());
        if let Some(pairs) = list.get("pairs").and_then(Value::as_array) {
            prop_assert_eq!(list["pairs_count"].as_u64(), Some(pairs.len() as u64), "pairs_count; {}", context());
            for pair in pairs {
                prop_assert!(in_unit(pair["probability"].as_f64()), "probability; {}", context());
                let log_p = pair["log_probability"].as_f64();
                prop_assert!(log_p.is_some_and(|l| l <= 0.0), "log_probability; {}", context());
            }
        }
    }
    Ok(true)
}

// ---------------------------------------------------------------------------------------------
// The runs

/// A server with limits small enough that no generated request is expensive.
async fn fuzz_app() -> TestApp {
    TestApp::builder()
        .max_body_bytes(256 * 1024)
        .with(|c| {
            c.max_items_per_list = 1000;
            c.max_lists = 1000;
            c.max_pairs = 100_000;
            c.max_evaluated_pairs = 1_000_000;
        })
        .build()
        .await
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime starts")
}

/// Runs `CASES` inputs of `strategy` through `body_of` and the server, checking every answer, and
/// requires both outcomes (200 and 4xx) to be at least `min_share` of the answers, so the generator
/// is neither trivially valid nor trivially broken. A body is well-formed JSON when
/// `always_well_formed` says so (grammatical by construction, even with 1e400 in it) or when
/// serde_json parses it into a `Value`.
fn fuzz<S: Strategy>(strategy: S, body_of: impl Fn(&S::Value) -> Vec<u8>, always_well_formed: bool, min_share: f64) {
    let runtime = runtime();
    let app = runtime.block_on(fuzz_app());
    let (ok, refused) = (Cell::new(0u32), Cell::new(0u32));
    for base in base_requests() {
        let answer = runtime.block_on(app.evaluate(base.clone()));
        assert_eq!(answer.status, 200, "base request {base}: {}", String::from_utf8_lossy(&answer.body));
    }
    let config =
        ProptestConfig { cases: CASES, failure_persistence: None, max_shrink_iters: 2000, ..ProptestConfig::default() };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&strategy, |input| {
        let body = body_of(&input);
        let answer = runtime.block_on(app.evaluate(body.clone()));
        let well_formed = always_well_formed || serde_json::from_slice::<Value>(&body).is_ok();
        let counter = if check_answer(&body, &answer, well_formed)? { &ok } else { &refused };
        counter.set(counter.get() + 1);
        Ok(())
    });
    if let Err(error) = result {
        panic!("{error}");
    }
    let total = f64::from(ok.get() + refused.get());
    for (what, n) in [("200", ok.get()), ("4xx", refused.get())] {
        assert!(
            f64::from(n) >= min_share * total,
            "only {n} of {total} answers were {what}: the generator is lopsided"
        );
    }
}

#[test]
fn arbitrary_json_at_random_positions_of_a_valid_request() {
    let bases: Vec<Json> =
        base_requests().iter().map(|b| Json::from_value(&serde_json::from_str(b).expect("base is JSON"))).collect();
    // Mostly single values (the likeliest to pass decoding and reach validation and the math),
    // often whole nested structures.
    let value = prop_oneof![
        3 => number().prop_map(Json::Number),
        1 => text().prop_map(Json::Text),
        3 => json(),
    ];
    let strategy = (0..bases.len(), value, any::<usize>(), placement(), any::<usize>());
    fuzz(
        strategy,
        |(base, value, node, placement, slot)| {
            place(&bases[*base], value.clone(), *node, placement, *slot).text().into_bytes()
        },
        true,
        0.05,
    );
}

#[test]
fn byte_mutations_of_valid_bodies() {
    let bases: Vec<Vec<u8>> = base_requests().into_iter().map(String::into_bytes).collect();
    let strategy = (0..bases.len(), prop::collection::vec(edit(), 1..6));
    fuzz(
        strategy,
        |(base, edits)| {
            let mut body = bases[*base].clone();
            for edit in edits {
                apply(&mut body, edit);
            }
            body
        },
        false,
        0.01,
    );
}
