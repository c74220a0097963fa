//! What every summary says about how it was made (`run`), the defaults of each door (pairs on the
//! batch, none on the stream), and `results=errors` on the stream, all over HTTP.

use serde_json::{Value, json};

use crate::helpers::TestApp;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn lists() -> Vec<Value> {
    vec![
        json!({"id": "a", "items": [{"reward": 2.0}, {"reward": 1.0}, {"reward": 0.5}]}),
        json!({"id": "b", "items": [{"reward": 0.0}, {"reward": 1.0}]}),
    ]
}

fn ndjson(lines: &[Value]) -> Vec<u8> {
    lines.iter().map(|line| format!("{line}\n")).collect::<String>().into_bytes()
}

/// The byte count and xxh3-64 of `bytes`, as `run.input` writes them.
fn input_of(bytes: &[u8]) -> Value {
    let mut hasher = prefeval::pipeline::fingerprint::FingerprintHasher::new();
    hasher.update(bytes);
    json!({"bytes": bytes.len(), "xxh3": format!("{:016x}", hasher.finish().xxh3)})
}

#[tokio::test]
async fn the_batch_summary_has_its_run_with_the_bodys_model_and_options_and_no_input() {
    let app = TestApp::spawn().await;
    let answer = app.evaluate(json!({"lists": lists()})).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        answer.json()["summary"]["run"],
        json!({"prefeval": VERSION, "normalization": "ordered_pairs", "beta": 1.0, "format": "native",
            "confidence": 0.95})
    );
    let options = json!({"normalization": "sum", "beta": 0.25, "confidence": 0.8});
    let answer = app.evaluate(json!({"model": "rm-7b", "options": options, "lists": lists()})).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        answer.json()["summary"]["run"],
        json!({"prefeval": VERSION, "model": "rm-7b", "normalization": "sum", "beta": 0.25, "format": "native",
            "confidence": 0.8})
    );
}

#[tokio::test]
async fn the_stream_summary_has_its_run_with_the_query_model_and_the_fingerprint_of_the_body() {
    let app = TestApp::spawn().await;
    let body = ndjson(&lists());
    let answer = app.stream("", body.clone()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let summary = answer.ndjson().pop().expect("a summary line");
    assert_eq!(
        summary["summary"]["run"],
        json!({"prefeval": VERSION, "normalization": "ordered_pairs", "beta": 1.0, "format": "native",
            "confidence": 0.95, "input": input_of(&body)})
    );
    assert!(summary["summary"].get("input").is_none(), "the fingerprint is in `run` only: {summary}");

    let answer = app.stream("model=rm-7b&beta=2&normalization=comparisons&confidence=0.9", body.clone()).await;
    let summary = answer.ndjson().pop().expect("a summary line");
    assert_eq!(
        summary["summary"]["run"],
        json!({"prefeval": VERSION, "model": "rm-7b", "normalization": "comparisons", "beta": 2.0,
            "format": "native", "confidence": 0.9, "input": input_of(&body)})
    );
}

#[tokio::test]
async fn pairs_are_returned_by_default_by_the_batch_and_only_when_asked_for_by_the_stream() {
    let app = TestApp::spawn().await;
    let batch = app.evaluate(json!({"lists": lists()})).await.json();
    assert_eq!(batch["lists"][0]["pairs"].as_array().map(Vec::len), Some(3), "{batch}");

    let streamed = app.stream("", ndjson(&lists())).await.ndjson();
    assert_eq!(streamed.len(), 3, "two results and the summary");
    assert!(streamed[..2].iter().all(|line| line.get("pairs").is_none()), "{streamed:?}");
    let streamed = app.stream("include_pairs=true", ndjson(&lists())).await.ndjson();
    assert_eq!(streamed[0]["pairs"], batch["lists"][0]["pairs"]);
}

#[tokio::test]
async fn results_errors_writes_the_error_lines_and_the_summary_only() {
    let app = TestApp::spawn().await;
    let mut lines: Vec<String> = lists().iter().map(Value::to_string).collect();
    lines.insert(1, r#"{"id":"bad","items":[{"reward":1.0}]}"#.to_string());
    lines.push("not json".to_string());
    lines.extend(lists().iter().map(Value::to_string));
    let body = lines.iter().map(|line| format!("{line}\n")).collect::<String>();

    let all = app.stream("", body.clone()).await.ndjson();
    let errors = app.stream("results=errors", body.clone()).await.ndjson();
    assert_eq!(all.len(), 7, "{all:?}");
    let error_lines: Vec<&Value> = all.iter().filter(|line| line.get("error").is_some()).collect();
    assert_eq!(errors.len(), 3, "two error lines and the summary: {errors:?}");
    assert_eq!(errors[..2].iter().collect::<Vec<_>>(), error_lines, "the same error lines, in order");
    assert_eq!((&errors[0]["line"], &errors[1]["line"]), (&json!(2), &json!(4)));
    assert_eq!(errors[2], all[6], "the same summary");
    assert_eq!(errors[2]["summary"]["lists"], 4);

    let refused = app.stream("results=some", body).await;
    assert_eq!(refused.status, 422, "{}", refused.text());
    assert_eq!(refused.error_path().as_deref(), Some("results"));
    let batch = app.evaluate(json!({"options": {"results": "errors"}, "lists": lists()})).await;
    assert_eq!(batch.status, 422, "an output option of the stream only: {}", batch.text());
    assert_eq!(batch.error_path().as_deref(), Some("options.results"));
}
