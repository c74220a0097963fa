//! The curl examples of README.md and docs/api.md print exactly what they say they print, and
//! docs/api.md's one-line example of each input format is a list the server evaluates in that format.

use crate::helpers::TestApp;
use axum::body::Body;
use axum::http::{Method, Request, header};
use serde_json::{Value, json};

/// A README example: the request's body and request id, and the output the README shows.
struct Example {
    body: String,
    request_id: Option<String>,
    output: String,
}

/// Each `curl ... -d '<body>'` block followed by a json block.
fn examples(readme: &str) -> Vec<Example> {
    let blocks: Vec<&str> = readme.split("```").collect();
    let mut found = Vec::new();
    // Odd indices are the insides of fenced blocks, starting with their language tag.
    for i in (1..blocks.len()).step_by(2) {
        let Some(shell) = blocks[i].strip_prefix("sh\n") else { continue };
        let Some((_, rest)) = shell.split_once("-d '") else { continue };
        let Some((body, _)) = rest.split_once('\'') else { continue };
        let Some(output) = blocks.get(i + 2).and_then(|b| b.strip_prefix("json\n")) else { continue };
        let request_id = shell
            .split_once("-H 'x-request-id: ")
            .and_then(|(_, rest)| rest.split_once('\''))
            .map(|(id, _)| id.to_string());
        found.push(Example { body: body.to_string(), request_id, output: output.trim_end().to_string() });
    }
    found
}

#[tokio::test]
async fn readme_curl_examples_print_what_the_readme_shows() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
        + &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/api.md")).unwrap();
    let examples = examples(&readme);
    assert!(examples.len() >= 2, "README lost its examples");
    let app = TestApp::spawn().await;
    for example in examples {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri("/v1/evaluate")
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(id) = &example.request_id {
            request = request.header("x-request-id", id);
        }
        let answer = app.send(request.body(Body::from(example.body.clone())).unwrap()).await;
        assert_eq!(String::from_utf8_lossy(&answer.body), example.output, "for the README request {}", example.body);
    }
}

/// The input formats of `options.format`.
const FORMATS: [&str; 5] = ["native", "pairs", "ranking", "ratings", "ranks_zero_based"];

/// The README's format examples: each `- `FORMAT` ...: `{...}`` line, as (format, list).
fn format_examples(readme: &str) -> Vec<(String, Value)> {
    let mut found = Vec::new();
    for line in readme.lines() {
        let Some(rest) = line.strip_prefix("- `") else { continue };
        let Some((format, rest)) = rest.split_once('`') else { continue };
        if !FORMATS.contains(&format) {
            continue;
        }
        let Some((_, list)) = rest.rsplit_once(": `") else { continue };
        let list = list.strip_suffix('`').unwrap_or_else(|| panic!("the example of {format} does not end the line"));
        let list = serde_json::from_str(list).unwrap_or_else(|e| panic!("the example of {format} is not JSON ({e})"));
        found.push((format.to_string(), list));
    }
    found
}

#[tokio::test]
async fn readme_format_examples_are_lists_of_their_format() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/api.md")).unwrap();
    let examples = format_examples(&readme);
    let formats: Vec<&str> = examples.iter().map(|(format, _)| format.as_str()).collect();
    assert_eq!(formats, FORMATS, "one example per format, in this order");
    let app = TestApp::spawn().await;
    for (format, list) in examples {
        let answer = app.evaluate(&json!({"options": {"format": format}, "lists": [list]})).await;
        assert_eq!(answer.status, 200, "the README's {format} example: {}", String::from_utf8_lossy(&answer.body));
        // Read in another format, the same list is refused; but for one pair: 1-based ranks are
        // also valid zero-based ranks.
        for other in FORMATS.iter().filter(|other| **other != format) {
            if (format.as_str(), *other) == ("native", "ranks_zero_based") {
                continue;
            }
            let answer = app.evaluate(&json!({"options": {"format": other}, "lists": [list]})).await;
            assert_eq!(answer.status, 422, "the README's {format} example read as {other}");
        }
    }
}
