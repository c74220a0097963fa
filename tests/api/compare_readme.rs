//! docs/api.md's "Is model B better than model A?" example stays true: `examples/compare/request.json`
//! is what `examples/compare/make_request.py` writes from `tests/data/real/`, the server answers it
//! with `examples/compare/response.json`, and docs/api.md shows that answer, its curl command and, in
//! its reading of the result, the figures of that answer.

use std::io::ErrorKind;
use std::path::PathBuf;
use std::process::Command;

use crate::helpers::{TestApp, close};
use axum::body::Body;
use axum::http::{Method, Request, header};
use serde_json::Value;

const CURL: &str = "curl -s -H 'Content-Type: application/json' --data-binary @examples/compare/request.json \
                    http://127.0.0.1:8080/v1/compare";
const HEADING: &str = "## Is model B better than model A?";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn json(path: &str) -> Value {
    serde_json::from_str(&read(path)).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"))
}

/// Panics unless `got` and `expected` have the same shape and keys, equal strings, booleans and
/// integers, and other numbers within the golden tolerance (1e-12 relative).
fn assert_matches(got: &Value, expected: &Value, path: &str) {
    match (got, expected) {
        (Value::Object(got), Value::Object(expected)) => {
            let keys = |o: &serde_json::Map<String, Value>| o.keys().cloned().collect::<Vec<_>>();
            assert_eq!(keys(got), keys(expected), "the keys of {path}");
            for (key, value) in expected {
                assert_matches(&got[key], value, &format!("{path}.{key}"));
            }
        }
        (Value::Array(got), Value::Array(expected)) => {
            assert_eq!(got.len(), expected.len(), "the length of {path}");
            for (i, (got, expected)) in got.iter().zip(expected).enumerate() {
                assert_matches(got, expected, &format!("{path}[{i}]"));
            }
        }
        (Value::Number(g), Value::Number(e)) if g.is_f64() || e.is_f64() => {
            let (g, e) = (g.as_f64().unwrap(), e.as_f64().unwrap());
            assert!(close(g, e), "{path}: {g} where {e} was expected");
        }
        _ => assert_eq!(got, expected, "{path}"),
    }
}

/// The README's section, from its heading to the next `## ` heading.
fn section(readme: &str) -> &str {
    let start = readme.find(HEADING).unwrap_or_else(|| panic!("README has no section {HEADING:?}"));
    let rest = &readme[start..];
    let end = rest[HEADING.len()..].find("\n## ").map_or(rest.len(), |end| HEADING.len() + end);
    &rest[..end]
}

#[test]
fn request_json_is_what_make_request_writes() {
    let run =
        Command::new("python3").arg("examples/compare/make_request.py").arg("--check").current_dir(root()).output();
    let output = match run {
        Ok(output) => output,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            eprintln!("note: python3 is not installed; request.json was not checked against make_request.py");
            return;
        }
        Err(e) => panic!("python3 does not start: {e}"),
    };
    assert!(
        output.status.success(),
        "examples/compare/request.json is not what make_request.py writes from tests/data/real/ ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn the_server_answers_response_json() {
    let app = TestApp::spawn().await;
    let request = Request::builder()
        .method(Method::POST)
        .uri("/v1/compare")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(read("examples/compare/request.json")))
        .expect("request builds");
    let answer = app.send(request).await;
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    assert_matches(&answer.json(), &json("examples/compare/response.json"), "answer");
}

#[test]
fn readme_shows_the_command_and_the_answer() {
    let readme = read("docs/api.md");
    let section = section(&readme);
    let (_, after) = section.split_once(CURL).unwrap_or_else(|| panic!("the section lost the command {CURL}"));
    let (_, shown) = after.split_once("```json\n").expect("the command is followed by its output");
    let (shown, _) = shown.split_once("```").expect("the output block ends");
    let shown: Value = serde_json::from_str(shown).expect("the output shown is JSON");
    assert_matches(&shown, &json("examples/compare/response.json"), "the README's output");
}

#[test]
fn readme_reading_quotes_the_answer() {
    let readme = read("docs/api.md");
    // Figures as printed, whatever the line breaks, with the minus sign as `format!` writes it.
    let text = section(&readme).replace('−', "-").split_whitespace().collect::<Vec<_>>().join(" ");
    let response = json("examples/compare/response.json");
    let number = |pointer: &str| response.pointer(pointer).and_then(Value::as_f64).expect(pointer);
    let [length, penalized] = ["/models/0", "/models/1"];
    let comparison = "/comparisons/0";
    assert_eq!(response.pointer("/models/0/model"), Some(&Value::from("length")));
    assert_eq!(response.pointer("/models/1/model"), Some(&Value::from("length-penalized")));
    assert!(number(&format!("{comparison}/loss_difference")) < 0.0, "the reading says `length` has the lower loss");
    assert!(number(&format!("{comparison}/accuracy_difference")) < 0.0, "the reading says `length` is less accurate");
    let figures = [
        format!("lower loss by {:.3}", -number(&format!("{comparison}/loss_difference"))),
        format!(
            "[{:.3}, {:.3}]",
            number(&format!("{comparison}/loss_difference_ci/0")),
            number(&format!("{comparison}/loss_difference_ci/1"))
        ),
        format!("(p = {:.2})", number(&format!("{comparison}/loss_p_value"))),
        format!("accuracy is lower by {:.3}", -number(&format!("{comparison}/accuracy_difference"))),
        format!("(p = {:.2})", number(&format!("{comparison}/accuracy_p_value"))),
        format!("the {} tied", response.pointer(&format!("{comparison}/lists_tied")).expect("lists_tied")),
        format!("standard error of {:.3}", number(&format!("{comparison}/loss_difference_se"))),
        format!(
            "{:.3} and {:.3} for the two losses",
            number(&format!("{length}/loss_se")),
            number(&format!("{penalized}/loss_se"))
        ),
        format!("losses of {:.2} and {:.2}", number(&format!("{length}/loss")), number(&format!("{penalized}/loss"))),
        format!("chance loss of {:.3}", number(&format!("{length}/chance_loss"))),
        format!(
            "accuracies of {:.3} and {:.3}",
            number(&format!("{length}/accuracy")),
            number(&format!("{penalized}/accuracy"))
        ),
    ];
    for figure in figures {
        assert!(text.contains(&figure), "the README's reading of the example should say {figure:?}");
    }
    // "with intervals below 0.5", "worse than guessing": both models are below chance.
    for model in [length, penalized] {
        assert!(number(&format!("{model}/accuracy_ci/1")) < 0.5, "{model}: the accuracy interval reaches 0.5");
        assert!(number(&format!("{model}/loss_ci/0")) > number(&format!("{model}/chance_loss")), "{model}");
    }
    // "neither is better": both intervals contain 0.
    for figure in ["loss_difference_ci", "accuracy_difference_ci"] {
        let (low, high) = (number(&format!("{comparison}/{figure}/0")), number(&format!("{comparison}/{figure}/1")));
        assert!(low < 0.0 && 0.0 < high, "{figure} excludes 0: the README's reading is wrong");
    }
}
