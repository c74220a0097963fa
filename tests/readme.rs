//! The README's curl examples print exactly what the README says they print.

mod common;

use common::{post_bytes, router};

/// (request body, expected output) for each `curl ... -d '<body>'` block followed by a json block.
fn examples(readme: &str) -> Vec<(String, String)> {
    let blocks: Vec<&str> = readme.split("```").collect();
    let mut found = Vec::new();
    // Odd indices are the insides of fenced blocks, starting with their language tag.
    for i in (1..blocks.len()).step_by(2) {
        let Some(shell) = blocks[i].strip_prefix("sh\n") else { continue };
        let Some((_, rest)) = shell.split_once("-d '") else { continue };
        let Some((body, _)) = rest.split_once('\'') else { continue };
        let Some(output) = blocks.get(i + 2).and_then(|b| b.strip_prefix("json\n")) else { continue };
        found.push((body.to_string(), output.trim_end().to_string()));
    }
    found
}

#[tokio::test]
async fn readme_curl_examples_print_what_the_readme_shows() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let examples = examples(&readme);
    assert!(examples.len() >= 2, "README lost its examples");
    let router = router();
    for (body, expected) in examples {
        let answer = post_bytes(&router, body.clone()).await;
        assert_eq!(String::from_utf8_lossy(&answer.body), expected, "for the README request {body}");
    }
}
