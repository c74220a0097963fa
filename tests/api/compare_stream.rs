//! `POST /v1/compare/stream`: one list a line in `/v1/compare`'s shape; one result line per list
//! (every model's loss, accuracy and τ-b), error lines that do not stop the stream, and a summary
//! that is `/v1/compare`'s answer for the same lists, with the sums that let shards merge.

use serde_json::{Value, json};

use crate::compare_data::compare_lists;
use crate::helpers::{Answer, TestApp};

/// `POST /v1/compare/stream?query` with an NDJSON body.
async fn compare_stream(app: &TestApp, query: &str, body: &[u8]) -> Answer {
    let path = format!("/v1/compare/stream?{query}");
    app.request(axum::http::Method::POST, &path, &[("content-type", "application/x-ndjson")], body.to_vec()).await
}

fn ndjson(lines: &[Value]) -> Vec<u8> {
    lines.iter().map(|line| format!("{line}\n")).collect::<String>().into_bytes()
}

/// The fields of `/v1/compare`'s answer, from a compare summary.
fn comparison_of(summary: &Value) -> Value {
    let mut fields = summary.as_object().cloned().unwrap_or_default();
    for extra in ["lines_failed", "totals", "run"] {
        fields.remove(extra);
    }
    Value::Object(fields)
}

/// s/√m with s the two-pass sample standard deviation.
fn two_pass_standard_error(values: &[f64]) -> f64 {
    let m = values.len() as f64;
    let mean = values.iter().sum::<f64>() / m;
    let variance = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (m - 1.0);
    (variance / m).sqrt()
}

#[tokio::test]
async fn the_stream_summary_is_the_batch_comparison_of_the_same_lists_to_the_last_bit() {
    let app = TestApp::spawn().await;
    let models = ["rm-a", "rm-b", "rm-c"];
    // Enough lines for several chunks, so that the sums cross chunk boundaries.
    let lists = compare_lists(0xC5, 1500, models.len());
    let options = json!({"normalization": "comparisons", "beta": 0.7, "confidence": 0.9});
    let batch = app.compare(json!({"models": models, "options": options, "lists": lists})).await;
    assert_eq!(batch.status, 200, "{}", batch.text());
    let body = ndjson(&lists);
    let answer =
        compare_stream(&app, "models=rm-a,rm-b,rm-c&normalization=comparisons&beta=0.7&confidence=0.9", &body).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.header("content-type"), Some("application/x-ndjson"));
    let mut lines = answer.ndjson();
    let summary = lines.pop().expect("a summary")["summary"].clone();
    assert_eq!(lines.len(), lists.len(), "one result line per list");
    // The same sums added in the same order: equal to the last bit, not merely close.
    assert_eq!(comparison_of(&summary), batch.json());
    assert_eq!(summary["lines_failed"], json!(0));
    assert_eq!(summary["run"]["models"], json!(models));
    assert!(summary["run"].get("model").is_none(), "a comparison names its models, not one model");
    assert_eq!(summary["totals"]["models"].as_array().map(Vec::len), Some(3));
    assert_eq!(summary["totals"]["comparisons"].as_array().map(Vec::len), Some(3));
    assert!(batch.json()["models"][0]["length"]["pairs"].as_u64() > Some(0), "some lists carry lengths");

    // Each line, in order, with its list's id and every model's figures; the paired standard error
    // of the loss difference from these per-list losses, by the two-pass definition.
    for (k, (line, list)) in lines.iter().zip(&lists).enumerate() {
        assert_eq!(line["line"], json!(k + 1));
        assert_eq!(line["id"], list["id"]);
        assert_eq!(line["models"].as_array().map(Vec::len), Some(3), "{line}");
    }
    let loss = |line: &Value, j: usize| line["models"][j]["loss"].as_f64().expect("a loss");
    for (r, (a, b)) in [(0, 1), (0, 2), (1, 2)].into_iter().enumerate() {
        let differences: Vec<f64> = lines.iter().map(|line| loss(line, a) - loss(line, b)).collect();
        let expected = two_pass_standard_error(&differences);
        let got = summary["comparisons"][r]["loss_difference_se"].as_f64().expect("an SE");
        assert!((got - expected).abs() <= 1e-12 * expected, "comparisons[{r}]: {got} vs {expected}");
        let a_better = differences.iter().filter(|d| **d < 0.0).count();
        assert_eq!(summary["comparisons"][r]["lists_a_better"], json!(a_better));
    }
}

#[tokio::test]
async fn the_pairs_format_reads_chosen_and_rejected_rewards_and_lengths() {
    let app = TestApp::spawn().await;
    let pairs = [
        json!({"id": 1, "chosen_rewards": [2.0, 0.0], "rejected_rewards": [1.0, 1.0], "chosen_length": 50, "rejected_length": 10}),
        json!({"id": 2, "chosen_rewards": [0.5, 3.0], "rejected_rewards": [1.0, 1.0], "chosen_length": 5, "rejected_length": 10}),
        json!({"id": 3, "chosen_rewards": [1.0, 1.0], "rejected_rewards": [0.0, 1.0]}),
    ];
    let answer = compare_stream(&app, "models=a,b&format=pairs", &ndjson(&pairs)).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let lines = answer.ndjson();
    let summary = &lines[3]["summary"];
    // The same pairs natively, through /v1/compare with format native.
    let native: Vec<Value> = pairs
        .iter()
        .map(|pair| {
            let item = |side: &str| {
                let mut item = json!({"id": side, "rewards": pair[format!("{side}_rewards")]});
                if let Some(length) = pair.get(format!("{side}_length")) {
                    item["length"] = length.clone();
                }
                item
            };
            json!({"id": pair["id"], "items": [item("chosen"), item("rejected")]})
        })
        .collect();
    let batch = app.compare(json!({"models": ["a", "b"], "lists": native})).await.json();
    assert_eq!(comparison_of(summary), batch);
    assert_eq!(summary["run"]["format"], json!("pairs"));
    // Of the two pairs with lengths, the first prefers the longer item, the second the shorter:
    // the rule "longer wins" is right on one. Model a orders the first right and the second
    // wrong (its reward follows length both times); b the other way round.
    let length = &summary["models"][0]["length"];
    assert_eq!(length["pairs"], json!(2));
    assert_eq!(length["baseline_accuracy"], json!(0.5));
    assert_eq!(length["reward_follows_length"], json!(1.0));
    assert_eq!(length["accuracy_preferred_longer"], json!(1.0));
    assert_eq!(length["accuracy_preferred_shorter"], json!(0.0));
    let length = &summary["models"][1]["length"];
    assert_eq!(
        (&length["accuracy_preferred_longer"], &length["accuracy_preferred_shorter"]),
        (&json!(0.0), &json!(1.0))
    );
    assert_eq!(summary["totals"]["models"][1]["length"]["agreeing_preferred_shorter"], json!(1.0));
    // /v1/compare takes the format too.
    let body = json!({"models": ["a", "b"], "options": {"format": "pairs"}, "lists": pairs});
    assert_eq!(app.compare(body).await.json(), batch);
}

#[tokio::test]
async fn bad_models_and_options_are_refused_naming_the_parameter() {
    let app = TestApp::spawn().await;
    let body = ndjson(&compare_lists(1, 2, 2));
    let seventeen: Vec<String> = (0..17).map(|j| format!("m{j}")).collect();
    let cases = [
        ("", "missing_field", "models"),
        ("models=a", "invalid_value", "models"),
        ("models=a,a", "invalid_value", "models[1]"),
        ("models=a,", "invalid_value", "models[1]"),
        (&format!("models={}", seventeen.join(",")) as &str, "invalid_value", "models"),
        ("models=a,b&model=a", "unknown_field", "model"),
        ("models=a,b&include_pairs=true", "unknown_field", "include_pairs"),
        ("models=a,b&format=ranking", "invalid_value", "format"),
        ("models=a,b&beta=0", "invalid_value", "beta"),
        ("models=a,b&models=c,d", "invalid_value", "models"),
    ];
    for (query, code, path) in cases {
        let answer = compare_stream(&app, query, &body).await;
        assert_eq!(answer.status, 422, "?{query}: {}", answer.text());
        assert_eq!(answer.error_code(), code, "?{query}");
        assert_eq!(answer.error_path().as_deref(), Some(path), "?{query}");
    }
    let answer = app.compare(json!({"models": ["a", "b"], "options": {"format": "ratings"}, "lists": []})).await;
    assert_eq!((answer.error_code(), answer.error_path()), ("invalid_value".into(), Some("options.format".into())));
}

#[tokio::test]
async fn bad_lines_get_error_lines_naming_the_field_and_the_stream_goes_on() {
    let app = TestApp::spawn().await;
    let good = json!({"id": "ok", "items": [{"rewards": [1.0, 0.0]}, {"rewards": [0.0, 1.0]}]});
    let lines = [
        good.clone(),
        json!({"items": [{"rewards": [1.0, 0.0, 2.0]}, {"rewards": [0.0, 1.0]}]}),
        json!({"items": [{"rewards": [1.0, 0.0]}, {"rewards": [0.0, 1.0], "length": -1}]}),
        json!({"items": [{"rewards": [1.0, 0.0]}, {"rewards": [0.0, 1.0], "rank": 0}]}),
        json!({"chosen_rewards": [1.0, 0.0], "rejected_rewards": [0.0, 1.0]}),
        json!({"items": [{"rewards": [1.0, 0.0]}]}),
        good,
    ];
    let mut body = ndjson(&lines);
    body.extend_from_slice(b"{not json\n");
    let answer = compare_stream(&app, "models=a,b", &body).await;
    assert_eq!(answer.status, 200);
    let got = answer.ndjson();
    let expected = [
        (2, "invalid_value", Some("items[0].rewards")),
        (3, "invalid_value", Some("items[1].length")),
        (4, "invalid_value", Some("items[1].rank")),
        (5, "unknown_field", Some("chosen_rewards")),
        (6, "too_few_items", Some("items")),
        (8, "malformed_json", None),
    ];
    for (line, code, path) in expected {
        let error = &got[line - 1];
        assert_eq!(error["line"], json!(line), "{error}");
        assert_eq!(error["error"]["code"], json!(code), "line {line}: {error}");
        assert_eq!(error["error"]["path"].as_str(), path, "line {line}: {error}");
    }
    assert_eq!(got[6]["id"], json!("ok"), "the stream goes on after error lines");
    let summary = &got[8]["summary"];
    assert_eq!((summary["lists"].as_u64(), summary["lines_failed"].as_u64()), (Some(2), Some(6)));

    // Format pairs: its own fields, one reward per model each.
    let pairs = [
        json!({"chosen_rewards": [1.0], "rejected_rewards": [0.0, 1.0]}),
        json!({"chosen_rewards": [1.0, 2.0]}),
        json!({"chosen_rewards": [1.0, 2.0], "rejected_rewards": [0.0, 1.0], "rejected_length": "long"}),
        json!({"items": [], "chosen_rewards": [1.0, 2.0], "rejected_rewards": [0.0, 1.0]}),
        json!({"chosen_rewards": [1.0, 2.0], "rejected_rewards": [0.0, 1.0]}),
    ];
    let got = compare_stream(&app, "models=a,b&format=pairs", &ndjson(&pairs)).await.ndjson();
    let expected = [
        ("invalid_value", "chosen_rewards"),
        ("missing_field", "rejected_rewards"),
        ("invalid_type", "rejected_length"),
        ("unknown_field", "items"),
    ];
    for (k, (code, path)) in expected.into_iter().enumerate() {
        assert_eq!(got[k]["error"]["code"], json!(code), "line {}: {}", k + 1, got[k]);
        assert_eq!(got[k]["error"]["path"], json!(path), "line {}: {}", k + 1, got[k]);
    }
    assert!(got[4]["models"].is_array(), "{}", got[4]);
}

#[tokio::test]
async fn the_stream_moves_the_per_model_metrics_of_every_model() {
    let app = TestApp::spawn().await;
    let lists = compare_lists(7, 20, 2);
    let answer = compare_stream(&app, "models=metric-a,metric-b", &ndjson(&lists)).await;
    let summary = answer.ndjson().pop().expect("a summary")["summary"].clone();
    let metrics = app.metrics().await;
    for (j, model) in ["metric-a", "metric-b"].into_iter().enumerate() {
        let series = format!("prefeval_lists_evaluated_total{{model=\"{model}\"}} ");
        let line = metrics.text().lines().find(|line| line.starts_with(&series)).unwrap_or_default();
        assert_eq!(line.trim_start_matches(&series), "20", "{series}");
        let series = format!("prefeval_pairs_evaluated_total{{model=\"{model}\"}} ");
        let line = metrics.text().lines().find(|line| line.starts_with(&series)).unwrap_or_default();
        assert_eq!(
            Some(line.trim_start_matches(&series)),
            summary["totals"]["models"][j]["pairs"].as_u64().map(|p| p.to_string()).as_deref()
        );
    }
}
