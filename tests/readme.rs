//! The README's curl examples print exactly what the README says they print.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, header};
use common::{router, send};

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
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let examples = examples(&readme);
    assert!(examples.len() >= 2, "README lost its examples");
    let router = router();
    for example in examples {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri("/v1/evaluate")
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(id) = &example.request_id {
            request = request.header("x-request-id", id);
        }
        let answer = send(&router, request.body(Body::from(example.body.clone())).unwrap()).await;
        assert_eq!(String::from_utf8_lossy(&answer.body), example.output, "for the README request {}", example.body);
    }
}
