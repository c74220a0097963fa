//! A broad, table-driven sweep of hostile input against one in-process router: malformed and
//! truncated JSON, encodings, deep nesting, numbers beyond f64, wrong types everywhere, bad ranks,
//! duplicate keys, media types, bodies and lists past every limit, unknown routes and methods.
//! Every row pins the exact status, `error.code` and (where given) `error.path`, and checks the
//! JSON error body carries the request id. The same router must still be healthy afterwards and
//! answer the api.md worked example exactly.
//!
//! `errors.rs` (beside this file) holds one focused test per status; this file is the wide net.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::http::{Method, Request, StatusCode, header};
use hyper::body::{Body as HttpBody, Frame};
use serde_json::Value;

use crate::helpers::{Answer, TestApp, WORKED_EXAMPLE, WORKED_EXAMPLE_LOSS, close, test_data_dir};

/// The limits every case runs under: small, so the limit families are cheap to reach, but a body
/// limit of 1 MiB so that 100,000-level nesting (up to ~600 KB) still reaches the parser.
async fn hostile_app() -> TestApp {
    TestApp::builder()
        .max_body_bytes(1024 * 1024)
        .with(|c| {
            c.max_items_per_list = 50;
            c.max_lists = 20;
            c.max_pairs = 100;
            c.max_evaluated_pairs = 2000;
        })
        .build()
        .await
}
const BODY_LIMIT: usize = 1024 * 1024;

/// A valid request with every field of the contract present.
const VALID: &str = r#"{"model":"m","options":{"normalization":"comparisons","include_pairs":true,"beta":1.0},"lists":[{"id":"p","items":[{"id":"a","reward":1.5},{"id":"b","reward":0.5},{"id":"c","reward":-0.25}]}]}"#;

/// What a row expects of `error.path`.
#[derive(Clone, Debug)]
enum Where {
    /// No single field is at fault: `path` must be absent.
    Nowhere,
    /// Exactly this path.
    At(String),
}

/// How the body travels.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Delivery {
    /// One buffer (the size is known to the server, as with Content-Length in-process).
    Whole,
    /// One buffer plus an explicit `Content-Length` header.
    WithLength,
    /// A stream of 16 KiB chunks with no size hint (as `Transfer-Encoding: chunked`).
    Chunked,
}

/// One row: what is sent, and the exact answer expected.
struct Case {
    name: String,
    method: Method,
    uri: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    delivery: Delivery,
    status: u16,
    code: &'static str,
    path: Option<Where>,
}

/// A POST to /v1/evaluate as `application/json`.
fn post(name: impl Into<String>, body: impl Into<Vec<u8>>, status: u16, code: &'static str, path: Where) -> Case {
    Case {
        name: name.into(),
        method: Method::POST,
        uri: "/v1/evaluate".into(),
        content_type: Some("application/json"),
        body: body.into(),
        delivery: Delivery::Whole,
        status,
        code,
        path: Some(path),
    }
}

fn malformed(name: impl Into<String>, body: impl Into<Vec<u8>>) -> Case {
    post(name, body, 400, "malformed_json", Where::Nowhere)
}

fn unprocessable(name: impl Into<String>, body: impl Into<Vec<u8>>, code: &'static str, path: &str) -> Case {
    post(name, body, 422, code, Where::At(path.to_string()))
}

fn invalid_type(name: impl Into<String>, body: impl Into<Vec<u8>>, path: &str) -> Case {
    unprocessable(name, body, "invalid_type", path)
}

fn invalid_value(name: impl Into<String>, body: impl Into<Vec<u8>>, path: &str) -> Case {
    unprocessable(name, body, "invalid_value", path)
}

/// Any method and path, no body.
fn route(name: impl Into<String>, method: Method, uri: impl Into<String>, status: u16, code: &'static str) -> Case {
    Case {
        name: name.into(),
        method,
        uri: uri.into(),
        content_type: None,
        body: Vec::new(),
        delivery: Delivery::Whole,
        status,
        code,
        path: Some(Where::Nowhere),
    }
}

fn with_content_type(name: &str, content_type: Option<&'static str>, status: u16, code: &'static str) -> Case {
    Case { content_type, ..post(name, VALID, status, code, Where::Nowhere) }
}

/// `{"lists":[{"items":[ITEMS]}]}`.
fn items(items: &str) -> String {
    format!(r#"{{"lists":[{{"items":[{items}]}}]}}"#)
}

/// Two items, the second with `reward` given as `value`.
fn reward(value: &str) -> String {
    items(&format!(r#"{{"reward":1}},{{"reward":{value}}}"#))
}

/// Two ranked items, the second with `rank` given as `value`.
fn rank(value: &str) -> String {
    items(&format!(r#"{{"reward":1,"rank":1}},{{"reward":0,"rank":{value}}}"#))
}

/// A valid batch with `options` given as `value`.
fn options(value: &str) -> String {
    format!(r#"{{"options":{value},"lists":[{{"items":[{{"reward":1}},{{"reward":0}}]}}]}}"#)
}

/// A valid batch with `model` given as `value`.
fn model(value: &str) -> String {
    format!(r#"{{"model":{value},"lists":[{{"items":[{{"reward":1}},{{"reward":0}}]}}]}}"#)
}

/// A valid batch with the list's `id` given as `value`.
fn list_id(value: &str) -> String {
    format!(r#"{{"lists":[{{"id":{value},"items":[{{"reward":1}},{{"reward":0}}]}}]}}"#)
}

/// A valid batch with the second item's `id` given as `value`.
fn item_id(value: &str) -> String {
    items(&format!(r#"{{"reward":1}},{{"id":{value},"reward":0}}"#))
}

/// A list of `n` unranked items with distinct rewards.
fn list_of(n: usize) -> String {
    let items: Vec<String> = (0..n).map(|i| format!(r#"{{"reward":{}}}"#, n - i)).collect();
    format!(r#"{{"items":[{}]}}"#, items.join(","))
}

fn batch(lists: &[String], options: &str) -> String {
    format!(r#"{{"options":{options},"lists":[{}]}}"#, lists.join(","))
}

fn quoted(text: &str) -> String {
    serde_json::to_string(text).expect("a string serializes")
}

/// The valid request followed by whitespace, `bytes` long in all: valid JSON whose only fault, if
/// any, is its size.
fn padded_to(bytes: usize) -> Vec<u8> {
    let mut body = VALID.as_bytes().to_vec();
    body.resize(bytes, b' ');
    body
}

fn cases() -> Vec<Case> {
    // ----- 400: not JSON, truncated, trailing garbage, encodings ------------------------------
    let mut cases = vec![malformed("empty body", "")];
    cases.push(malformed("whitespace-only body", " \t\r\n  \n"));
    cases.push(malformed(
        "a UTF-8 byte order mark before the body",
        [b"\xEF\xBB\xBF".as_slice(), VALID.as_bytes()].concat(),
    ));
    cases.push(malformed(
        "a UTF-16 byte order mark before the body",
        [b"\xFF\xFE".as_slice(), VALID.as_bytes()].concat(),
    ));
    cases.push(malformed("a NUL byte alone", "\0"));
    cases.push(malformed("bare word", "lists"));
    cases.push(malformed("single quotes", "{'lists': []}"));
    cases.push(malformed("unquoted key", "{lists: []}"));
    cases.push(malformed("trailing comma in an object", r#"{"lists":[{"items":[{"reward":1,},{"reward":0}]}]}"#));
    cases.push(malformed("trailing comma in an array", r#"{"lists":[{"items":[{"reward":1},{"reward":0},]}]}"#));
    cases.push(malformed("missing colon", r#"{"lists" [{"items":[{"reward":1},{"reward":0}]}]}"#));
    cases.push(malformed("missing comma between items", r#"{"lists":[{"items":[{"reward":1} {"reward":0}]}]}"#));
    cases.push(malformed("unbalanced close", r#"{"lists":[{"items":[{"reward":1},{"reward":0}]]]}"#));
    cases.push(malformed("a JavaScript comment", r#"{"lists":/* no */[{"items":[{"reward":1},{"reward":0}]}]}"#));
    cases.push(malformed(
        "an unescaped control character in a string",
        items("{\"id\":\"a\nb\",\"reward\":1},{\"reward\":0}"),
    ));
    cases.push(malformed("an invalid escape in a string", items(r#"{"id":"\q","reward":1},{"reward":0}"#)));
    cases.push(malformed("a short unicode escape", items(r#"{"id":"\u12","reward":1},{"reward":0}"#)));
    // Every proper prefix of a valid body: truncated anywhere, always 400.
    for end in 1..VALID.len() {
        cases.push(malformed(format!("truncated after {end} bytes: {}", &VALID[..end]), &VALID[..end]));
    }
    for garbage in ["x", "}", "]", "{}", "[]", "null", "0", r#"{"lists":[]}"#, "\0", "\u{feff}"] {
        cases.push(malformed(format!("trailing garbage {garbage:?}"), format!("{VALID}{garbage}")));
    }
    cases.push(malformed("two concatenated requests", format!("{VALID}\n{VALID}")));
    // Invalid UTF-8: in a string, in a key, between tokens; overlong forms; surrogates.
    cases.push(malformed(
        "invalid UTF-8 in an id",
        [br#"{"lists":[{"id":"a"#.as_slice(), b"\xFF\xFE", br#"","items":[{"reward":1},{"reward":0}]}]}"#].concat(),
    ));
    cases.push(malformed(
        "invalid UTF-8 in a key",
        [br#"{"li"#.as_slice(), b"\xC3", br#"sts":[{"items":[{"reward":1},{"reward":0}]}]}"#].concat(),
    ));
    cases.push(malformed(
        "invalid UTF-8 between tokens",
        [br#"{"lists":"#.as_slice(), b"\xFF", br#"[{"items":[{"reward":1},{"reward":0}]}]}"#].concat(),
    ));
    cases.push(malformed(
        "a lone continuation byte in the model",
        [br#"{"model":"m"#.as_slice(), b"\x80", br#"","lists":[{"items":[{"reward":1},{"reward":0}]}]}"#].concat(),
    ));
    cases.push(malformed(
        "overlong UTF-8 for '/' (C0 AF) in an id",
        [br#"{"lists":[{"id":""#.as_slice(), b"\xC0\xAF", br#"","items":[{"reward":1},{"reward":0}]}]}"#].concat(),
    ));
    cases.push(malformed(
        "overlong UTF-8 for NUL (E0 80 80) in the model",
        [br#"{"model":""#.as_slice(), b"\xE0\x80\x80", br#"","lists":[{"items":[{"reward":1},{"reward":0}]}]}"#]
            .concat(),
    ));
    cases.push(malformed(
        "a raw UTF-8-encoded surrogate (ED A0 80) in an id",
        [br#"{"lists":[{"id":""#.as_slice(), b"\xED\xA0\x80", br#"","items":[{"reward":1},{"reward":0}]}]}"#].concat(),
    ));
    cases.push(malformed(
        "a code point past U+10FFFF (F4 90 80 80)",
        [br#"{"model":""#.as_slice(), b"\xF4\x90\x80\x80", br#"","lists":[{"items":[{"reward":1},{"reward":0}]}]}"#]
            .concat(),
    ));
    cases.push(malformed(
        "a truncated multi-byte sequence at the end of a string",
        [br#"{"model":""#.as_slice(), b"\xE2\x82", br#"","lists":[{"items":[{"reward":1},{"reward":0}]}]}"#].concat(),
    ));
    cases.push(malformed(r"a lone leading surrogate \ud800 in an id", list_id(r#""\ud800""#)));
    cases.push(malformed(r"a lone trailing surrogate \udc00 in an item id", item_id(r#""x\udc00y""#)));
    cases.push(malformed(r"a reversed surrogate pair \udc00\ud800 in the model", model(r#""\udc00\ud800""#)));
    cases.push(malformed(r"a lone surrogate \ud800 in a key", r#"{"\ud800":1,"lists":[]}"#));
    // Non-JSON number tokens.
    for token in ["NaN", "nan", "Infinity", "-Infinity", "+1", ".5", "1.", "01", "0x10", "1e", "--1", "1_000"] {
        cases.push(malformed(format!("reward token {token}"), reward(token)));
    }
    cases.push(malformed("beta NaN", options(r#"{"beta":NaN}"#)));
    cases.push(malformed("rank Infinity", rank("Infinity")));

    // ----- deep nesting (100,000 levels) -----------------------------------------------------
    // The parser is strict and typed: it refuses the first token of the wrong type and never
    // descends, so none of these reaches a recursion limit, let alone the stack.
    const DEEP: usize = 100_000;
    let arrays = "[".repeat(DEEP);
    cases.push(post("100,000 unclosed [ as the whole body", arrays.clone(), 422, "invalid_type", Where::Nowhere));
    cases.push(post(
        "100,000 balanced [ ] as the whole body",
        format!("{arrays}{}", "]".repeat(DEEP)),
        422,
        "invalid_type",
        Where::Nowhere,
    ));
    cases.push(unprocessable(
        r#"100,000 levels of {"a": as the whole body"#,
        format!("{}1{}", r#"{"a":"#.repeat(DEEP), "}".repeat(DEEP)),
        "unknown_field",
        "a",
    ));
    cases.push(unprocessable(
        r#"100,000 levels of {"lists": inside lists"#,
        format!("{}[]{}", r#"{"lists":"#.repeat(DEEP), "}".repeat(DEEP)),
        "invalid_type",
        "lists",
    ));
    cases.push(invalid_type("100,000 [ inside lists", format!(r#"{{"lists":{arrays}"#), "lists[0]"));
    cases.push(invalid_type("100,000 [ as an item", format!(r#"{{"lists":[{{"items":{arrays}"#), "lists[0].items[0]"));
    cases.push(invalid_type(
        "100,000 [ as a reward",
        format!(r#"{{"lists":[{{"items":[{{"reward":{arrays}"#),
        "lists[0].items[0].reward",
    ));
    cases.push(invalid_type(
        "100,000 [ as a rank",
        format!(r#"{{"lists":[{{"items":[{{"reward":1,"rank":{arrays}"#),
        "lists[0].items[0].rank",
    ));
    cases.push(unprocessable(
        "100,000 [ inside an unknown field",
        format!(r#"{{"lists":[],"extra":{arrays}{}}}"#, "]".repeat(DEEP)),
        "unknown_field",
        "extra",
    ));
    cases.push(unprocessable(
        r#"100,000 {"a": inside an unknown option"#,
        format!(r#"{{"options":{{"x":{}"#, r#"{"a":"#.repeat(DEEP)),
        "unknown_field",
        "options.x",
    ));
    // 100,000 levels of {"a": as the normalization: in `normalization_of_the_wrong_type_is_422_invalid_type`.

    // ----- numbers beyond f64 ---------------------------------------------------------------
    cases.push(unprocessable("reward 1e400", reward("1e400"), "number_out_of_range", "lists[0].items[1].reward"));
    cases.push(unprocessable("reward -1e400", reward("-1e400"), "number_out_of_range", "lists[0].items[1].reward"));
    cases.push(unprocessable("reward 1.8e308", reward("1.8e308"), "number_out_of_range", "lists[0].items[1].reward"));
    let digits500 = format!("9{}", "0".repeat(499));
    cases.push(unprocessable(
        "reward: a 500-digit integer",
        reward(&digits500),
        "number_out_of_range",
        "lists[0].items[1].reward",
    ));
    cases.push(unprocessable(
        "reward: a negative 500-digit integer",
        reward(&format!("-{digits500}")),
        "number_out_of_range",
        "lists[0].items[1].reward",
    ));
    cases.push(unprocessable("beta 1e400", options(r#"{"beta":1e400}"#), "number_out_of_range", "options.beta"));
    cases.push(unprocessable("rank 1e400", rank("1e400"), "number_out_of_range", "lists[0].items[1].rank"));
    cases.push(invalid_value("beta 1e-400 is 0.0: not > 0", options(r#"{"beta":1e-400}"#), "options.beta"));
    // Rewards whose scaled difference or whose loss overflows. The path names the reward of
    // larger magnitude (the largest one on a tie).
    cases.push(unprocessable(
        "rewards ±1.7e308 (difference overflows)",
        items(r#"{"reward":-1.7e308},{"reward":1.7e308}"#),
        "non_finite_result",
        "lists[0].items[1].reward",
    ));
    cases.push(unprocessable(
        "rewards ±1.7e308, the larger first",
        items(r#"{"reward":1.7e308},{"reward":-1.7e308}"#),
        "non_finite_result",
        "lists[0].items[0].reward",
    ));
    cases.push(unprocessable(
        "beta 1e308 times a spread of 2 overflows",
        options(r#"{"beta":1e308}"#).replace(r#"{"reward":1},{"reward":0}"#, r#"{"reward":1},{"reward":-1}"#),
        "non_finite_result",
        "lists[0].items[0].reward",
    ));
    cases.push(unprocessable(
        "loss overflows under normalization sum",
        format!(
            r#"{{"options":{{"normalization":"sum"}},"lists":[{},{{"items":[{{"reward":-8e307}},{{"reward":8e307}},{{"reward":8e307}}]}}]}}"#,
            list_of(2)
        ),
        "non_finite_result",
        "lists[1]",
    ));

    // ----- wrong types everywhere ------------------------------------------------------------
    cases.push(post("the body is null", "null", 422, "invalid_type", Where::Nowhere));
    cases.push(post("the body is a string", r#""lists""#, 422, "invalid_type", Where::Nowhere));
    cases.push(post("the body is a number", "42", 422, "invalid_type", Where::Nowhere));
    cases.push(post("the body is true", "true", 422, "invalid_type", Where::Nowhere));
    cases.push(post("the body is an array of the request", format!("[{VALID}]"), 422, "invalid_type", Where::Nowhere));
    for (what, value) in [
        ("an object", r#"{"items":[]}"#),
        ("a string", r#""[]""#),
        ("a number", "2"),
        ("null", "null"),
        ("true", "true"),
    ] {
        cases.push(invalid_type(format!("lists as {what}"), format!(r#"{{"lists":{value}}}"#), "lists"));
    }
    for (what, value) in
        [("an object", r#"{"reward":1}"#), ("a string", r#""a,b""#), ("a number", "2"), ("null", "null")]
    {
        cases.push(invalid_type(
            format!("items as {what}"),
            format!(r#"{{"lists":[{{"items":{value}}}]}}"#),
            "lists[0].items",
        ));
    }
    for (what, value) in [
        ("an array", "[null,1.5]"),
        ("a string", r#""1.5""#),
        ("a number", "1.5"),
        ("null", "null"),
        ("false", "false"),
    ] {
        cases.push(invalid_type(
            format!("an item as {what}"),
            items(&format!(r#"{{"reward":1}},{value}"#)),
            "lists[0].items[1]",
        ));
    }
    for (what, value) in [
        ("true", "true"),
        ("an array", "[1]"),
        ("an object", r#"{"value":1}"#),
        ("a string", r#""x""#),
        ("null", "null"),
    ] {
        cases.push(invalid_type(format!("reward as {what}"), reward(value), "lists[0].items[1].reward"));
    }
    for (what, value) in [
        (r#""1.5""#, r#""1.5""#),
        (r#""1e3""#, r#""1e3""#),
        (r#"" 2""#, r#"" 2""#),
        (r#""NaN""#, r#""NaN""#),
        (r#""""#, r#""""#),
    ] {
        cases.push(invalid_type(format!("reward as the string {what}"), reward(value), "lists[0].items[1].reward"));
    }
    for (what, value) in [
        ("a fraction", "7.5"),
        ("an integral float", "7.0"),
        ("false", "false"),
        ("an object", r#"{"id":"p"}"#),
        ("an array", r#"["p"]"#),
        ("null", "null"),
    ] {
        cases.push(invalid_type(format!("list id as {what}"), list_id(value), "lists[0].id"));
    }
    for (what, value) in [("a fraction", "7.5"), ("an exponent", "7e0"), ("true", "true"), ("an object", "{}")] {
        cases.push(invalid_type(format!("item id as {what}"), item_id(value), "lists[0].items[1].id"));
    }
    // Integers are ids (echoed as integers) within 64 bits; past them they must be strings.
    cases.push(invalid_value("a list id past u64", list_id("18446744073709551616"), "lists[0].id"));
    cases.push(invalid_value("an item id below i64", item_id("-9223372036854775809"), "lists[0].items[1].id"));
    for (what, value) in
        [("a number", "7"), ("an array", r#"["m"]"#), ("an object", r#"{"name":"m"}"#), ("null", "null")]
    {
        cases.push(invalid_type(format!("model as {what}"), model(value), "model"));
    }
    for (what, value) in [("an array", r#"["sum"]"#), ("a string", r#""sum""#), ("a number", "1"), ("null", "null")] {
        cases.push(invalid_type(format!("options as {what}"), options(value), "options"));
    }
    // A normalization that is not a string: see `normalization_of_the_wrong_type_is_422_invalid_type`
    // (the server answers 400 malformed_json for some of these and accepts `{"sum": null}`).
    for (what, value) in [("0", "0"), ("1", "1"), (r#""true""#, r#""true""#), ("null", "null"), ("[]", "[]")] {
        cases.push(invalid_type(
            format!("include_pairs as {what}"),
            options(&format!(r#"{{"include_pairs":{value}}}"#)),
            "options.include_pairs",
        ));
    }
    for (what, value) in
        [("0", "0"), (r#""yes""#, r#""yes""#), (r#""true""#, r#""true""#), ("null", "null"), ("{}", "{}")]
    {
        cases.push(invalid_type(
            format!("include_pair_ids as {what}"),
            options(&format!(r#"{{"include_pair_ids":{value}}}"#)),
            "options.include_pair_ids",
        ));
    }
    for (what, value) in [(r#""1.0""#, r#""1.0""#), ("true", "true"), ("[1]", "[1]"), ("{}", "{}"), ("null", "null")] {
        cases.push(invalid_type(format!("beta as {what}"), options(&format!(r#"{{"beta":{value}}}"#)), "options.beta"));
    }

    // ----- bad values -------------------------------------------------------------------------
    for (value, code) in [
        ("0", "invalid_value"),
        ("-1", "invalid_value"),
        ("1.5", "invalid_value"),
        ("1e300", "invalid_value"),
        ("-0.0", "invalid_value"),
        ("18446744073709551616", "invalid_value"),
        ("9007199254740994.0", "invalid_value"),
        ("\"1\"", "invalid_type"),
        ("true", "invalid_type"),
        ("null", "invalid_type"),
        ("[1]", "invalid_type"),
        ("{}", "invalid_type"),
    ] {
        cases.push(unprocessable(format!("rank {value}"), rank(value), code, "lists[0].items[1].rank"));
    }
    for value in [r#""SUM""#, r#""ordered-pairs""#, r#""""#, r#""mean""#, r#""sum ""#] {
        cases.push(invalid_value(
            format!("normalization {value}"),
            options(&format!(r#"{{"normalization":{value}}}"#)),
            "options.normalization",
        ));
    }
    for value in ["0", "-0.0", "-1", "-1e-300", "-1.7e308"] {
        cases.push(invalid_value(format!("beta {value}"), options(&format!(r#"{{"beta":{value}}}"#)), "options.beta"));
    }

    // ----- missing, unknown and duplicated fields ---------------------------------------------
    cases.push(unprocessable("an empty object", "{}", "missing_field", "lists"));
    cases.push(unprocessable("a list without items", r#"{"lists":[{"id":"p"}]}"#, "missing_field", "lists[0].items"));
    cases.push(unprocessable(
        "an item without a reward",
        items(r#"{"reward":1},{"id":"b"}"#),
        "missing_field",
        "lists[0].items[1].reward",
    ));
    cases.push(unprocessable("an unknown top-level field", r#"{"lists":[],"Lists":[]}"#, "unknown_field", "Lists"));
    cases.push(unprocessable(
        "an unknown option",
        options(r#"{"normalisation":"sum"}"#),
        "unknown_field",
        "options.normalisation",
    ));
    cases.push(unprocessable(
        "an unknown list field",
        r#"{"lists":[{"items":[],"weight":2}]}"#,
        "unknown_field",
        "lists[0].weight",
    ));
    cases.push(unprocessable(
        "an unknown item field",
        items(r#"{"reward":1,"score":2},{"reward":0}"#),
        "unknown_field",
        "lists[0].items[0].score",
    ));
    // The empty key is refused, but an empty path would name nothing: no path.
    cases.push(post("an empty key", r#"{"":1,"lists":[]}"#, 422, "unknown_field", Where::Nowhere));
    // Duplicate keys are refused (serde's `duplicate field`, 422 invalid_value), never "last one
    // wins". The path names the object holding the duplicate (none at the top level).
    cases.push(invalid_value(
        "a duplicated reward",
        items(r#"{"reward":1,"reward":2},{"reward":0}"#),
        "lists[0].items[0]",
    ));
    cases.push(invalid_value(
        "a duplicated rank",
        items(r#"{"reward":1,"rank":1,"rank":2},{"reward":0,"rank":2}"#),
        "lists[0].items[0]",
    ));
    cases.push(invalid_value(
        "a duplicated item id",
        items(r#"{"id":"a","id":"b","reward":1},{"reward":0}"#),
        "lists[0].items[0]",
    ));
    cases.push(post(
        "duplicated lists",
        format!(r#"{{"lists":[{}],"lists":[{}]}}"#, list_of(2), list_of(3)),
        422,
        "invalid_value",
        Where::Nowhere,
    ));
    cases.push(post(
        "a duplicated options object",
        format!(r#"{{"options":{{}},"options":{{}},"lists":[{}]}}"#, list_of(2)),
        422,
        "invalid_value",
        Where::Nowhere,
    ));
    cases.push(invalid_value("a duplicated beta", options(r#"{"beta":1,"beta":2}"#), "options"));
    cases.push(invalid_value(
        "a duplicated list id",
        r#"{"lists":[{"id":"p","items":[{"reward":1},{"reward":0}],"id":"q"}]}"#,
        "lists[0]",
    ));
    cases.push(post(
        "a duplicated model",
        format!(r#"{{"model":"a","model":"b","lists":[{}]}}"#, list_of(2)),
        422,
        "invalid_value",
        Where::Nowhere,
    ));

    // ----- list shape ---------------------------------------------------------------------------
    cases.push(unprocessable("no lists", r#"{"lists":[]}"#, "empty_batch", "lists"));
    cases.push(unprocessable("a list of 1 item", items(r#"{"reward":1}"#), "too_few_items", "lists[0].items"));
    cases.push(unprocessable("a list of 0 items", r#"{"lists":[{"items":[]}]}"#, "too_few_items", "lists[0].items"));
    cases.push(unprocessable(
        "the third list has 1 item",
        batch(&[list_of(2), list_of(3), list_of(1)], "{}"),
        "too_few_items",
        "lists[2].items",
    ));
    cases.push(unprocessable(
        "ranked then unranked",
        items(r#"{"reward":1,"rank":1},{"reward":0}"#),
        "mixed_ranking",
        "lists[0].items[1].rank",
    ));
    cases.push(unprocessable(
        "unranked then ranked",
        items(r#"{"reward":1},{"reward":0,"rank":1}"#),
        "mixed_ranking",
        "lists[0].items[1].rank",
    ));
    cases.push(unprocessable(
        "every item shares one rank",
        items(r#"{"reward":1,"rank":3},{"reward":0,"rank":3}"#),
        "no_preferences",
        "lists[0].items",
    ));

    // ----- ids and model labels past their byte limits ---------------------------------------
    cases.push(invalid_value("a 1025-byte list id", list_id(&quoted(&"x".repeat(1025))), "lists[0].id"));
    cases.push(invalid_value("a 1025-byte item id", item_id(&quoted(&"x".repeat(1025))), "lists[0].items[1].id"));
    cases.push(invalid_value("a 257-byte model", model(&quoted(&"m".repeat(257))), "model"));
    cases.push(invalid_value("a 1 MB list id", list_id(&quoted(&"x".repeat(1_000_000))), "lists[0].id"));
    // Bytes, not characters: 513 two-byte characters are 1026 bytes.
    cases.push(invalid_value("513 × 'é' (1026 bytes) as a list id", list_id(&quoted(&"é".repeat(513))), "lists[0].id"));
    cases.push(invalid_value("86 × '€' (258 bytes) as the model", model(&quoted(&"€".repeat(86))), "model"));
    cases.push(invalid_value(
        "257 × '😀' (1028 bytes) as an item id",
        item_id(&quoted(&"😀".repeat(257))),
        "lists[0].items[1].id",
    ));
    // The limit applies to the decoded string, not to its escaped form.
    cases.push(invalid_value(
        r"1025 × \u0041 as a list id",
        list_id(&format!("\"{}\"", r"\u0041".repeat(1025))),
        "lists[0].id",
    ));
    cases.push(invalid_value(
        r"129 × \u00e9 (258 bytes) as the model",
        model(&format!("\"{}\"", r"\u00e9".repeat(129))),
        "model",
    ));

    // ----- configured limits --------------------------------------------------------------------
    cases.push(unprocessable(
        "51 items (limit 50)",
        batch(&[list_of(51)], r#"{"include_pairs":false}"#),
        "too_many_items",
        "lists[0].items",
    ));
    cases.push(unprocessable(
        "20,000 items (limit 50)",
        batch(&[list_of(20_000)], r#"{"include_pairs":false}"#),
        "too_many_items",
        "lists[0].items",
    ));
    cases.push(unprocessable(
        "a second list of 51 items",
        batch(&[list_of(2), list_of(51)], r#"{"include_pairs":false}"#),
        "too_many_items",
        "lists[1].items",
    ));
    cases.push(unprocessable("21 lists (limit 20)", batch(&vec![list_of(2); 21], "{}"), "too_many_lists", "lists"));
    cases.push(unprocessable(
        "10,000 lists (limit 20)",
        batch(&vec![list_of(2); 10_000], "{}"),
        "too_many_lists",
        "lists",
    ));
    // 15 items imply 105 pairs > max_pairs = 100 when returned.
    cases.push(unprocessable(
        "105 pairs returned (limit 100)",
        batch(&[list_of(15)], "{}"),
        "too_many_pairs",
        "options.include_pairs",
    ));
    cases.push(unprocessable(
        "7 lists of 6 items return 105 pairs",
        batch(&vec![list_of(6); 7], r#"{"include_pairs":true}"#),
        "too_many_pairs",
        "options.include_pairs",
    ));
    // 2 × C(50, 2) = 2450 implied pairs > max_evaluated_pairs = 2000, even without returning them.
    cases.push(unprocessable(
        "2450 pairs evaluated (limit 2000)",
        batch(&[list_of(50), list_of(50)], r#"{"include_pairs":false}"#),
        "too_many_pairs",
        "lists",
    ));

    // ----- media types ---------------------------------------------------------------------------
    for content_type in [
        "text/plain",
        "text/json",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonx",
        "application/json5",
        "application/xml",
        "application/x-ndjson",
        "json",
        "",
        "*/*",
    ] {
        cases.push(with_content_type(
            &format!("Content-Type {content_type:?}"),
            Some(content_type),
            415,
            "unsupported_media_type",
        ));
    }
    cases.push(with_content_type("no Content-Type", None, 415, "unsupported_media_type"));
    // The media type is checked before the body: a wrong type with a malformed body is still 415.
    cases.push(Case {
        content_type: Some("text/plain"),
        ..post("text/plain with a non-JSON body", "a=1&b=2", 415, "unsupported_media_type", Where::Nowhere)
    });
    cases.push(Case {
        content_type: None,
        ..post("no Content-Type and an empty body", "", 415, "unsupported_media_type", Where::Nowhere)
    });

    // ----- bodies over the byte limit ------------------------------------------------------------
    let over = padded_to(BODY_LIMIT + 1);
    cases.push(post("one byte over the limit", over.clone(), 413, "payload_too_large", Where::Nowhere));
    cases.push(Case {
        delivery: Delivery::WithLength,
        ..post(
            "over the limit, announced by Content-Length",
            padded_to(2 * BODY_LIMIT),
            413,
            "payload_too_large",
            Where::Nowhere,
        )
    });
    cases.push(Case {
        delivery: Delivery::Chunked,
        ..post(
            "over the limit, streamed with no length",
            padded_to(2 * BODY_LIMIT),
            413,
            "payload_too_large",
            Where::Nowhere,
        )
    });
    cases.push(Case {
        delivery: Delivery::Chunked,
        ..post(
            "8 MiB of whitespace streamed with no length",
            vec![b' '; 8 * BODY_LIMIT],
            413,
            "payload_too_large",
            Where::Nowhere,
        )
    });
    cases.push(post(
        "100,000 items (past the body limit before the item limit)",
        batch(&[list_of(100_000)], "{}"),
        413,
        "payload_too_large",
        Where::Nowhere,
    ));
    // The media type is checked first (without reading the body): 415, not 413.
    cases.push(Case {
        content_type: Some("text/plain"),
        ..post("over the limit as text/plain", over, 415, "unsupported_media_type", Where::Nowhere)
    });

    // ----- routes and methods ---------------------------------------------------------------------
    for uri in [
        "/v2/evaluate",
        "/v1/evaluate/",
        "/V1/EVALUATE",
        "/v1/Evaluate",
        "//v1/evaluate",
        "/v1/evaluate/stream/x",
        "/../etc/passwd",
        "/v1/../v1/evaluate",
        "/v1/evaluate%00",
        "/%2e%2e/etc/passwd",
        "/",
    ] {
        cases.push(Case { uri: uri.into(), ..post(format!("POST {uri}"), VALID, 404, "not_found", Where::Nowhere) });
    }
    cases.push(route("GET a 4 KiB path", Method::GET, format!("/{}", "a".repeat(4096)), 404, "not_found"));
    cases.push(Case {
        uri: format!("/v1/evaluate/{}", "b".repeat(4096)),
        ..post("POST a 4 KiB path under /v1/evaluate", VALID, 404, "not_found", Where::Nowhere)
    });
    cases.push(route("GET /nonexistent", Method::GET, "/nonexistent", 404, "not_found"));
    let query = Method::from_bytes(b"QUERY").expect("a valid method token");
    let made_up = Method::from_bytes(b"BREW").expect("a valid method token");
    for method in [
        Method::GET,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        query.clone(),
        made_up,
        Method::OPTIONS,
        Method::TRACE,
    ] {
        cases.push(route(format!("{method} /v1/evaluate"), method, "/v1/evaluate", 405, "method_not_allowed"));
    }
    cases.push(Case {
        method: Method::PUT,
        ..post("PUT /v1/evaluate with a valid JSON body", VALID, 405, "method_not_allowed", Where::Nowhere)
    });
    for method in [Method::POST, Method::PUT, Method::DELETE, query] {
        cases.push(route(format!("{method} /healthz"), method, "/healthz", 405, "method_not_allowed"));
    }
    cases.push(route("POST /metrics", Method::POST, "/metrics", 405, "method_not_allowed"));
    cases.push(route("DELETE /openapi.yaml", Method::DELETE, "/openapi.yaml", 405, "method_not_allowed"));

    cases
}

/// Requests that look hostile but are valid: each must be 200 with finite figures.
fn accepted() -> Vec<(&'static str, Vec<u8>)> {
    let unranked = r#"{"reward":1},{"reward":0}"#;
    vec![
        ("the baseline request", VALID.into()),
        ("trailing whitespace", format!("{VALID} \n\t\r\n").into_bytes()),
        ("leading whitespace", format!(" \n\t{VALID}").into_bytes()),
        ("reward 1e-400 (underflows to 0.0)", reward("1e-400").into_bytes()),
        ("reward -0.0", reward("-0.0").into_bytes()),
        ("reward 5e-324", reward("5e-324").into_bytes()),
        (
            "reward 1.7976931348623157e308 against 1e308",
            items(r#"{"reward":1.7976931348623157e308},{"reward":1e308}"#).into_bytes(),
        ),
        ("reward as a 19-digit integer", reward("9223372036854775807").into_bytes()),
        ("reward as a 20-digit integer", reward("18446744073709551615").into_bytes()),
        ("reward as a 25-digit integer", reward("1000000000000000000000000").into_bytes()),
        ("reward 1E+2", reward("1E+2").into_bytes()),
        ("rank 2.0", rank("2.0").into_bytes()),
        ("rank 2e0", rank("2e0").into_bytes()),
        ("rank 18446744073709551615", rank("18446744073709551615").into_bytes()),
        ("beta 5e-324", options(r#"{"beta":5e-324}"#).into_bytes()),
        ("beta 1e308 with a spread of 1", options(r#"{"beta":1e308}"#).into_bytes()),
        ("an empty options object", options("{}").into_bytes()),
        ("a 1024-byte list id", list_id(&quoted(&"x".repeat(1024))).into_bytes()),
        ("an integer list id", list_id("7").into_bytes()),
        ("the largest u64 as an item id", item_id("18446744073709551615").into_bytes()),
        ("the smallest i64 as an item id", item_id("-9223372036854775808").into_bytes()),
        ("a 256-byte model", model(&quoted(&"m".repeat(256))).into_bytes()),
        ("512 × 'é' (1024 bytes) as a list id", list_id(&quoted(&"é".repeat(512))).into_bytes()),
        ("85 × '€' + 'a' (256 bytes) as the model", model(&quoted(&format!("{}a", "€".repeat(85)))).into_bytes()),
        (r"1024 × \u0041 as a list id", list_id(&format!("\"{}\"", r"\u0041".repeat(1024))).into_bytes()),
        (r"a valid surrogate pair \ud83d\ude00", list_id(r#""\ud83d\ude00""#).into_bytes()),
        (r"\u0000 inside an id", item_id(r#""a\u0000b""#).into_bytes()),
        ("an empty id", format!(r#"{{"lists":[{{"id":"","items":[{unranked}]}}]}}"#).into_bytes()),
        ("50 items (the limit) without pairs", batch(&[list_of(50)], r#"{"include_pairs":false}"#).into_bytes()),
        ("20 lists (the limit)", batch(&vec![list_of(2); 20], "{}").into_bytes()),
        ("14 items: 91 pairs returned (limit 100)", batch(&[list_of(14)], "{}").into_bytes()),
        ("10 lists of 5 items: 100 pairs returned (the limit)", batch(&vec![list_of(5); 10], "{}").into_bytes()),
        (
            "lists of 50 and 39 items: 1225 + 741 = 1966 pairs evaluated (limit 2000)",
            batch(&[list_of(50), list_of(39)], r#"{"include_pairs":false}"#).into_bytes(),
        ),
        ("a body of exactly the byte limit (trailing whitespace)", padded_to(BODY_LIMIT)),
    ]
}

/// The body of a hostile case, as the server receives it.
fn request_of(case: &Case, request_id: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder().method(case.method.clone()).uri(case.uri.as_str());
    if let Some(content_type) = case.content_type {
        builder = builder.header(header::CONTENT_TYPE, content_type);
    }
    if let Some(id) = request_id {
        builder = builder.header("x-request-id", id);
    }
    let body = match case.delivery {
        Delivery::Whole => Body::from(case.body.clone()),
        Delivery::WithLength => {
            builder = builder.header(header::CONTENT_LENGTH, case.body.len());
            Body::from(case.body.clone())
        }
        Delivery::Chunked => Body::new(Chunked(case.body.chunks(16 * 1024).map(Bytes::copy_from_slice).collect())),
    };
    builder.body(body).expect("request builds")
}

/// A body of chunks with no size hint, so the server cannot know its length up front (as with
/// `Transfer-Encoding: chunked` on the wire).
struct Chunked(VecDeque<Bytes>);

impl HttpBody for Chunked {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|chunk| Ok(Frame::data(chunk))))
    }
}

/// Every check of one error answer; returns a description of the first failure.
fn check(case: &Case, answer: &Answer, sent_id: Option<&str>) -> Result<(), String> {
    let text = String::from_utf8_lossy(&answer.body);
    let text =
        if text.len() > 400 { format!("{}…", &text[..text.floor_char_boundary_compat(400)]) } else { text.into() };
    if answer.status.as_u16() != case.status {
        return Err(format!("status {} (expected {}); body {text}", answer.status, case.status));
    }
    let content_type = answer.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.starts_with("application/json") {
        return Err(format!("Content-Type {content_type:?}; body {text}"));
    }
    let body: Value = serde_json::from_slice(&answer.body).map_err(|e| format!("body is not JSON ({e}): {text}"))?;
    let error = body.get("error").and_then(Value::as_object).ok_or_else(|| format!("no error object: {text}"))?;
    if body.as_object().map(|o| o.len()) != Some(1) {
        return Err(format!("keys beside `error`: {text}"));
    }
    let code = error.get("code").and_then(Value::as_str).unwrap_or("<none>");
    if code != case.code {
        return Err(format!("error.code {code:?} (expected {:?}); body {text}", case.code));
    }
    if error.get("message").and_then(Value::as_str).is_none_or(|m| m.trim().is_empty()) {
        return Err(format!("no error.message: {text}"));
    }
    let request_id = error.get("request_id").and_then(Value::as_str).unwrap_or("");
    match sent_id {
        Some(id) if request_id != id => return Err(format!("error.request_id {request_id:?}, sent {id:?}")),
        None if request_id.is_empty() => return Err(format!("no error.request_id: {text}")),
        _ => {}
    }
    let header_id = answer.headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
    if header_id != request_id {
        return Err(format!("x-request-id header {header_id:?} differs from error.request_id {request_id:?}"));
    }
    let path = error.get("path").map(|p| p.as_str().map(str::to_string).ok_or(format!("non-string path: {text}")));
    match (&case.path, path.transpose()?) {
        (None, _) => {}
        (Some(Where::Nowhere), None) => {}
        (Some(Where::Nowhere), Some(got)) => return Err(format!("error.path {got:?} (expected none); body {text}")),
        (Some(Where::At(expected)), got) if got.as_deref() != Some(expected) => {
            return Err(format!("error.path {got:?} (expected {expected:?}); body {text}"));
        }
        (Some(Where::At(_)), _) => {}
    }
    if case.status == 405 {
        let allow = answer.headers.get(header::ALLOW).and_then(|v| v.to_str().ok()).unwrap_or("");
        if allow.is_empty() {
            return Err("405 without an Allow header".into());
        }
    }
    Ok(())
}

trait CharBoundary {
    fn floor_char_boundary_compat(&self, index: usize) -> usize;
}

impl CharBoundary for str {
    fn floor_char_boundary_compat(&self, mut index: usize) -> usize {
        while !self.is_char_boundary(index) {
            index -= 1;
        }
        index
    }
}

/// Every figure of a 200 answer is finite and in its range.
fn check_success(answer: &Answer) -> Result<(), String> {
    let text = String::from_utf8_lossy(&answer.body);
    if answer.status != StatusCode::OK {
        let short: String = text.chars().take(400).collect();
        return Err(format!("status {}; body {short}", answer.status));
    }
    let body: Value = serde_json::from_slice(&answer.body).map_err(|e| format!("not JSON: {e}"))?;
    let loss = body["loss"].as_f64().ok_or("no loss")?;
    let accuracy = body["summary"]["accuracy"].as_f64().ok_or("no accuracy")?;
    if !(loss.is_finite() && loss >= 0.0 && (0.0..=1.0).contains(&accuracy)) {
        return Err(format!("loss {loss}, accuracy {accuracy}"));
    }
    Ok(())
}

/// Sends every case (half of them with their own request id, which the error must echo; the
/// others get a generated one) and describes every answer that is not exactly as expected.
async fn failures_of(app: &TestApp, cases: &[Case]) -> Vec<String> {
    let mut failures = Vec::new();
    for (index, case) in cases.iter().enumerate() {
        let sent_id = (index % 2 == 0).then(|| format!("hostile-{index}"));
        let answer = app.send(request_of(case, sent_id.as_deref())).await;
        if let Err(why) = check(case, &answer, sent_id.as_deref()) {
            let name: String = case.name.chars().take(160).collect();
            failures.push(format!("[{index}] {} {} ({name}): {why}", case.method, short_uri(&case.uri)));
        }
    }
    failures
}

#[tokio::test]
async fn every_hostile_request_gets_its_exact_error_and_the_router_survives() {
    let app = hostile_app().await;
    let cases = cases();
    assert!(cases.len() >= 60, "only {} cases", cases.len());
    let mut failures = failures_of(&app, &cases).await;
    for (name, body) in accepted() {
        let answer = app.evaluate(body).await;
        if let Err(why) = check_success(&answer) {
            failures.push(format!("accepted case ({name}): {why}"));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
    assert_still_serving(&app).await;
}

/// `options.normalization` is a string (api.md, openapi.yaml). Anything else is valid JSON of the
/// wrong type: 422 `invalid_type` at `options.normalization`, like every other field.
///
/// Found by this sweep: the server decodes the field as a serde enum, so a number, boolean, null
/// or array there is answered 400 `malformed_json` ("expected value at line 1 column 29") although
/// the body is well-formed JSON, and serde's externally tagged form `{"sum": null}` is accepted
/// as `sum` (200), a second wire form outside the contract (and a `null` taken as a value).
#[tokio::test]
async fn normalization_of_the_wrong_type_is_422_invalid_type() {
    let app = hostile_app().await;
    let deep = format!("{}1{}", r#"{"a":"#.repeat(100_000), "}".repeat(100_000));
    let values = ["1", "true", "null", r#"["sum"]"#, r#"{"sum":null}"#, r#"{"sum":1}"#, "{}", &deep];
    let cases: Vec<Case> = values
        .into_iter()
        .map(|value| {
            let name: String = format!("normalization {value}").chars().take(40).collect();
            invalid_type(name, options(&format!(r#"{{"normalization":{value}}}"#)), "options.normalization")
        })
        .collect();
    let failures = failures_of(&app, &cases).await;
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

fn short_uri(uri: &str) -> String {
    if uri.len() > 60 { format!("{}…", &uri[..60]) } else { uri.to_string() }
}

async fn assert_still_serving(app: &TestApp) {
    let health = app.get("/healthz").await;
    assert_eq!(health.status, StatusCode::OK, "healthz: {}", String::from_utf8_lossy(&health.body));

    let answer = app.evaluate(WORKED_EXAMPLE).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", String::from_utf8_lossy(&answer.body));
    let got = answer.json();
    assert!(close(got["loss"].as_f64().unwrap(), WORKED_EXAMPLE_LOSS), "loss {}", got["loss"]);
    // Every other figure against the golden vector of the same example.
    let path = test_data_dir().join("golden/evaluate.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let golden: Value = serde_json::from_str(&text).unwrap();
    let case = golden["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "api_md_worked_example")
        .expect("the golden file has the worked example");
    let request: Value = serde_json::from_str(WORKED_EXAMPLE).unwrap();
    assert_eq!(case["request"], request, "api.md and the golden vector disagree on the request");
    assert_same_figures(&got, &case["response"], "$");
}

/// Structural equality with numbers compared by `close` and integers exactly.
fn assert_same_figures(got: &Value, expected: &Value, at: &str) {
    match (got, expected) {
        (Value::Number(g), Value::Number(e)) if e.is_f64() => {
            let (g, e) = (g.as_f64().unwrap(), e.as_f64().unwrap());
            assert!(close(g, e), "{at}: got {g:e}, expected {e:e}");
        }
        (Value::Object(g), Value::Object(e)) => {
            for (key, value) in e {
                let got = g.get(key).unwrap_or_else(|| panic!("{at}.{key} missing"));
                assert_same_figures(got, value, &format!("{at}.{key}"));
            }
        }
        (Value::Array(g), Value::Array(e)) => {
            assert_eq!(g.len(), e.len(), "{at}: length");
            for (i, (g, e)) in g.iter().zip(e).enumerate() {
                assert_same_figures(g, e, &format!("{at}[{i}]"));
            }
        }
        _ => assert_eq!(got, expected, "{at}"),
    }
}
