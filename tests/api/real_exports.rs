//! Real preference exports as they are named: `options.fields` (the format's names mapped to the
//! data's), `options.unknown_fields` (extra columns refused or skipped) and integer ids, through
//! the batch, the stream and compare. A renamed export must give the figures of the same data
//! stripped and renamed to the format's own names, byte for byte.

use crate::helpers::TestApp;
use serde_json::{Value, json};

/// HH-RLHF-like conversation text: long, full of newlines, quotes, backslashes and `\u` escapes.
fn conversation(words: usize) -> String {
    let mut text = String::new();
    for k in 0..words {
        text.push_str(match k % 6 {
            0 => "\n\nHuman: ",
            1 => "say \"hi\" ",
            2 => "C:\\path\\to ",
            3 => "tab\there ",
            4 => "é☃😀 ",
            _ => "\n\nAssistant: ok ",
        });
    }
    text
}

/// UltraFeedback-binarized rows: scores, a subset, prompt ids, and the texts beside them.
fn ultrafeedback_rows() -> Vec<Value> {
    (0..6)
        .map(|k| {
            json!({
                "prompt_id": format!("p{k}"),
                "prompt": conversation(3 + k),
                "chosen": [{"role": "user", "content": conversation(5)}, {"role": "assistant", "content": "x"}],
                "rejected": {"nested": [[1, 2.5e-3, null, true], {"deep": "\"q\""}]},
                "score_chosen": 0.25 * k as f64 + 1.0,
                "score_rejected": 1.5 - 0.5 * k as f64,
                "subset": if k % 2 == 0 { "chat" } else { "reasoning" },
                "messages": [],
            })
        })
        .collect()
}

/// The same rows stripped to the `pairs` format's own names.
fn native_pairs(rows: &[Value]) -> Vec<Value> {
    rows.iter()
        .map(|row| {
            json!({
                "id": row["prompt_id"],
                "group": row["subset"],
                "chosen_reward": row["score_chosen"],
                "rejected_reward": row["score_rejected"],
            })
        })
        .collect()
}

const ULTRAFEEDBACK_FIELDS: &str =
    "chosen_reward:score_chosen,rejected_reward:score_rejected,group:subset,id:prompt_id";

fn ultrafeedback_fields() -> Value {
    json!({"chosen_reward": "score_chosen", "rejected_reward": "score_rejected", "group": "subset", "id": "prompt_id"})
}

#[tokio::test]
async fn a_renamed_export_gives_the_figures_of_the_same_data_named_natively() {
    let app = TestApp::spawn().await;
    let rows = ultrafeedback_rows();
    let options = json!({"format": "pairs", "fields": ultrafeedback_fields(), "unknown_fields": "ignore",
        "include_pair_ids": true, "top_disagreements": 3});
    let renamed = app.evaluate(json!({"options": options, "lists": rows})).await;
    assert_eq!(renamed.status, 200, "{}", renamed.text());
    let native_options = json!({"format": "pairs", "include_pair_ids": true, "top_disagreements": 3});
    let native = app.evaluate(json!({"options": native_options, "lists": native_pairs(&rows)})).await;
    assert_eq!(native.status, 200, "{}", native.text());
    assert_eq!(renamed.text(), native.text(), "the whole answer, byte for byte");
    let answer = renamed.json();
    assert_eq!(answer["lists"][2]["id"], json!("p2"));
    let groups: Vec<&Value> = answer["groups"].as_array().expect("groups").iter().map(|g| &g["group"]).collect();
    assert_eq!(groups, [&json!("chat"), &json!("reasoning")]);
}

#[tokio::test]
async fn options_after_the_lists_still_rename_them() {
    let app = TestApp::spawn().await;
    let rows = serde_json::to_string(&ultrafeedback_rows()).expect("rows");
    let options = json!({"format": "pairs", "fields": ultrafeedback_fields(), "unknown_fields": "ignore"});
    let after = format!(r#"{{"lists":{rows},"model":"m","options":{options}}}"#);
    let before = format!(r#"{{"options":{options},"model":"m","lists":{rows}}}"#);
    let after = app.evaluate(after.as_str()).await;
    assert_eq!(after.status, 200, "{}", after.text());
    assert_eq!(after.text(), app.evaluate(before.as_str()).await.text());
    // Lists named natively but for one mapped field, options last: still read the data's way.
    let mapped_only =
        r#"{"lists":[{"id":1,"items":[{"score":1},{"score":0}]}],"options":{"fields":{"reward":"score"}}}"#;
    let answer = app.evaluate(mapped_only).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["lists"][0]["id"], json!(1));
    // And a native name that the mapping replaced is unknown there.
    let replaced = r#"{"lists":[{"items":[{"reward":1},{"reward":0}]}],"options":{"fields":{"reward":"score"}}}"#;
    let answer = app.evaluate(replaced).await;
    assert_eq!(answer.status, 422, "{}", answer.text());
    assert_eq!(
        (answer.error_code().as_str(), answer.error_path().as_deref()),
        ("unknown_field", Some("lists[0].items[0].reward"))
    );
}

#[tokio::test]
async fn each_format_reads_its_fields_under_the_data_names_at_list_and_item_level() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            json!({"fields": {"items": "responses", "reward": "score", "rank": "place", "id": "uid"}}),
            json!({"uid": "l", "responses": [{"uid": "a", "score": 0.5, "place": 2}, {"uid": "b", "score": 1.5, "place": 1}]}),
            json!({"id": "l", "items": [{"id": "a", "reward": 0.5, "rank": 2}, {"id": "b", "reward": 1.5, "rank": 1}]}),
            json!({}),
        ),
        (
            json!({"format": "ratings", "fields": {"rating": "stars", "reward": "score"}}),
            json!({"items": [{"stars": 5, "score": 0.1}, {"stars": 2, "score": 0.7}, {"stars": 5, "score": 0.3}]}),
            json!({"items": [{"rating": 5, "reward": 0.1}, {"rating": 2, "reward": 0.7}, {"rating": 5, "reward": 0.3}]}),
            json!({"format": "ratings"}),
        ),
        (
            json!({"format": "ranks_zero_based", "fields": {"rank": "position"}}),
            json!({"items": [{"reward": 1, "position": 0}, {"reward": 2, "position": 1}]}),
            json!({"items": [{"reward": 1, "rank": 0}, {"reward": 2, "rank": 1}]}),
            json!({"format": "ranks_zero_based"}),
        ),
        (
            json!({"format": "ranking", "fields": {"ranking": "order", "rewards": "scores", "id": "qid"}}),
            json!({"qid": 9, "order": [2, ["1", 3]], "scores": {"1": 0.5, "2": 0.25, "3": -1}}),
            json!({"id": 9, "ranking": [2, ["1", 3]], "rewards": {"1": 0.5, "2": 0.25, "3": -1}}),
            json!({"format": "ranking"}),
        ),
        (
            json!({"format": "pairs", "fields": {"chosen_reward": "good", "rejected_reward": "bad"}}),
            json!({"id": 4, "good": 2.0, "bad": 1.0}),
            json!({"id": 4, "chosen_reward": 2.0, "rejected_reward": 1.0}),
            json!({"format": "pairs"}),
        ),
    ];
    for (options, renamed, native, native_options) in cases {
        let mut with_pairs = options.clone();
        with_pairs["include_pair_ids"] = json!(true);
        let mut native_with_pairs = native_options.clone();
        native_with_pairs["include_pair_ids"] = json!(true);
        let mapped = app.evaluate(json!({"options": with_pairs, "lists": [renamed]})).await;
        assert_eq!(mapped.status, 200, "{options}: {}", mapped.text());
        let plain = app.evaluate(json!({"options": native_with_pairs, "lists": [native]})).await;
        assert_eq!(plain.status, 200, "{native_options}: {}", plain.text());
        assert_eq!(mapped.text(), plain.text(), "{options}");
    }
}

#[tokio::test]
async fn the_stream_takes_both_options_in_its_query_string() {
    let app = TestApp::spawn().await;
    let rows = ultrafeedback_rows();
    let mut body = String::new();
    for row in &rows {
        let mut row = row.clone();
        // A stream has no groups.
        row.as_object_mut().expect("object").remove("subset");
        body.push_str(&serde_json::to_string(&row).expect("row"));
        body.push('\n');
    }
    let query = format!("format=pairs&fields={}&unknown_fields=ignore&include_pairs=false", ULTRAFEEDBACK_FIELDS);
    let renamed = app.stream(&query, body.as_str()).await;
    assert_eq!(renamed.status, 200, "{}", renamed.text());
    let mut native = String::new();
    for row in native_pairs(&rows) {
        let mut row = row;
        row.as_object_mut().expect("object").remove("group");
        native.push_str(&serde_json::to_string(&row).expect("row"));
        native.push('\n');
    }
    let plain = app.stream("format=pairs&include_pairs=false", native.as_str()).await;
    // Every line the same but the fingerprint of the input, which differs.
    let without_input = |lines: Vec<Value>| -> Vec<Value> {
        lines
            .into_iter()
            .map(|mut line| {
                if let Some(run) = line.pointer_mut("/summary/run").and_then(Value::as_object_mut) {
                    run.remove("input");
                }
                line
            })
            .collect()
    };
    assert_eq!(without_input(renamed.ndjson()), without_input(plain.ndjson()));
    assert_eq!(renamed.ndjson()[1]["id"], json!("p1"));

    // A line missing the mapped field is named as the data spells it; reject stays the default.
    let lines =
        "{\"prompt_id\":\"a\",\"score_chosen\":1}\n{\"chosen_reward\":1,\"rejected_reward\":0,\"prompt\":\"hi\"}\n";
    let answer = app
        .stream("format=pairs&fields=chosen_reward:score_chosen,rejected_reward:score_rejected,id:prompt_id", lines)
        .await;
    let lines = answer.ndjson();
    assert_eq!(lines[0]["error"]["code"], json!("missing_field"), "{}", answer.text());
    assert_eq!(lines[0]["error"]["path"], json!("score_rejected"));
    assert_eq!(lines[1]["error"]["code"], json!("unknown_field"));
    assert_eq!(lines[1]["error"]["path"], json!("chosen_reward"));

    for (query, path) in [
        ("fields=chosen_reward", "fields"),
        ("fields=id:a,group:a", "fields.group"),
        ("fields=id:", "fields.id"),
        ("format=pairs&fields=items:responses", "fields.items"),
        ("unknown_fields=skip", "unknown_fields"),
    ] {
        let answer = app.stream(query, "").await;
        assert_eq!(answer.status, 422, "{query}: {}", answer.text());
        assert_eq!(answer.error_path().as_deref(), Some(path), "{query}");
    }
}

#[tokio::test]
async fn ignored_values_are_skipped_whatever_they_hold() {
    let app = TestApp::spawn().await;
    let huge = conversation(20_000);
    assert!(huge.len() > 200_000);
    let line = json!({"prompt": huge, "id": 7, "meta": {"a": [1, {"b": [[], {}]}], "c": "\\\"\u{1}"},
        "items": [{"reward": 1, "text": huge, "extra": [null, false, -0.0, 1e300]}, {"reward": 0, "text": ""}]});
    let answer = app.stream("unknown_fields=ignore", format!("{line}\n").as_str()).await;
    let lines = answer.ndjson();
    assert_eq!(lines[0]["id"], json!(7), "{}", answer.text());
    assert_eq!(lines[0]["accuracy"], json!(1.0));
    // Escapes serde refuses are refused when skipped too: never silently read.
    let bad = "{\"items\":[{\"reward\":1},{\"reward\":0}],\"text\":\"bad \\x escape\"}\n";
    let lines = app.stream("unknown_fields=ignore", bad).await.ndjson();
    assert_eq!(lines[0]["error"]["code"], json!("malformed_json"));
    // Without the option the same columns are refused, by their name (`json!` sorts keys).
    let answer = app.evaluate(json!({"lists": [line]})).await;
    assert_eq!((answer.status.as_u16(), answer.error_code()), (422, "unknown_field".to_string()));
    assert_eq!(answer.error_path().as_deref(), Some("lists[0].items[0].extra"));
    // The batch body's own keys stay strict.
    let answer = app.evaluate(json!({"options": {"unknown_fields": "ignore"}, "lists": [], "extra": 1})).await;
    assert_eq!((answer.error_code().as_str(), answer.error_path().as_deref()), ("unknown_field", Some("extra")));
}

#[tokio::test]
async fn fields_are_refused_with_the_path_of_the_entry_at_fault() {
    let app = TestApp::spawn().await;
    let list = json!({"chosen_reward": 1, "rejected_reward": 0});
    for (options, code, path) in [
        (json!({"format": "pairs", "fields": {"items": "responses"}}), "invalid_value", "options.fields.items"),
        (json!({"fields": {"chosen_reward": "a"}}), "invalid_value", "options.fields.chosen_reward"),
        (json!({"format": "pairs", "fields": {"id": 3}}), "invalid_type", "options.fields.id"),
        (json!({"format": "pairs", "fields": {"id": ""}}), "invalid_value", "options.fields.id"),
        // (`json!` sorts keys: `id` is the second to name `x`.)
        (json!({"format": "pairs", "fields": {"id": "x", "group": "x"}}), "invalid_value", "options.fields.id"),
        (json!({"format": "pairs", "fields": {"id": "group"}}), "invalid_value", "options.fields.id"),
        (json!({"format": "pairs", "fields": "id:x"}), "invalid_type", "options.fields"),
        (json!({"format": "pairs", "unknown_fields": "skip"}), "invalid_value", "options.unknown_fields"),
    ] {
        let answer = app.evaluate(json!({"options": options, "lists": [list]})).await;
        assert_eq!(answer.status, 422, "{options}: {}", answer.text());
        assert_eq!((answer.error_code().as_str(), answer.error_path().as_deref()), (code, Some(path)), "{options}");
    }
    // Missing and mistyped mapped fields are named as the data spells them, in their list.
    let options = json!({"format": "pairs", "fields": ultrafeedback_fields(), "unknown_fields": "ignore"});
    let mut rows = ultrafeedback_rows();
    rows[2].as_object_mut().expect("object").remove("score_chosen");
    let answer = app.evaluate(json!({"options": options, "lists": rows})).await;
    assert_eq!(
        (answer.error_code().as_str(), answer.error_path().as_deref()),
        ("missing_field", Some("lists[2].score_chosen"))
    );
    assert!(
        answer.json()["error"]["message"].as_str().is_some_and(|m| m.contains("score_chosen")),
        "{}",
        answer.text()
    );
    let mut rows = ultrafeedback_rows();
    rows[1]["score_rejected"] = json!("0.5");
    let answer = app.evaluate(json!({"options": options, "lists": rows})).await;
    assert_eq!(
        (answer.error_code().as_str(), answer.error_path().as_deref()),
        ("invalid_type", Some("lists[1].score_rejected"))
    );
    // Errors found after decoding name the data's fields too.
    let options = json!({"fields": {"items": "rs", "reward": "s", "rank": "r"}});
    let answer = app.evaluate(json!({"options": options, "lists": [{"rs": [{"s": 1}]}]})).await;
    assert_eq!((answer.error_code().as_str(), answer.error_path().as_deref()), ("too_few_items", Some("lists[0].rs")));
    let answer = app.evaluate(json!({"options": options, "lists": [{"rs": [{"s": 1, "r": 1}, {"s": 0}]}]})).await;
    assert_eq!(
        (answer.error_code().as_str(), answer.error_path().as_deref()),
        ("mixed_ranking", Some("lists[0].rs[1].r"))
    );
}

#[tokio::test]
async fn compare_honours_the_mapping_and_ignores_extra_columns() {
    let app = TestApp::spawn().await;
    let renamed = json!({
        "models": ["a", "b"],
        "lists": [
            {"qid": 1, "prompt": "x", "responses": [{"scores": [1, 0], "place": 1, "text": "t"}, {"scores": [0, 1], "place": 2}]},
            {"qid": "two", "responses": [{"scores": [2, 1]}, {"scores": [1, 3]}]},
        ],
        "options": {"fields": {"id": "qid", "items": "responses", "rewards": "scores", "rank": "place"}, "unknown_fields": "ignore"},
    });
    let native = json!({
        "models": ["a", "b"],
        "lists": [
            {"id": 1, "items": [{"rewards": [1, 0], "rank": 1}, {"rewards": [0, 1], "rank": 2}]},
            {"id": "two", "items": [{"rewards": [2, 1]}, {"rewards": [1, 3]}]},
        ],
    });
    let mapped = app.compare(&renamed).await;
    assert_eq!(mapped.status, 200, "{}", mapped.text());
    assert_eq!(mapped.text(), app.compare(&native).await.text());
    let mut wrong = renamed.clone();
    wrong["lists"][1]["responses"][0]["scores"] = json!([1]);
    let answer = app.compare(&wrong).await;
    assert_eq!(answer.error_path().as_deref(), Some("lists[1].responses[0].scores"), "{}", answer.text());
    let mut wrong = renamed;
    wrong["options"]["fields"]["reward"] = json!("r");
    let answer = app.compare(&wrong).await;
    assert_eq!(answer.error_path().as_deref(), Some("options.fields.reward"), "{}", answer.text());
}

#[tokio::test]
async fn integer_ids_come_back_as_integers_everywhere_ids_are_echoed() {
    let app = TestApp::spawn().await;
    let big = u64::MAX;
    let body = json!({
        "options": {"include_pair_ids": true, "top_disagreements": 2},
        "lists": [
            {"id": 12, "items": [{"id": -3, "reward": 0.0}, {"id": "b", "reward": 1.0}]},
            {"id": "s", "items": [{"id": big, "reward": 2.0}, {"id": 0, "reward": 1.0}]},
        ],
    });
    let answer = app.evaluate(&body).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let text = answer.text();
    assert!(text.contains(r#""id":12,"#), "{text}");
    assert!(text.contains(r#""preferred_id":-3,"other_id":"b""#), "{text}");
    assert!(text.contains(&format!(r#""preferred_id":{big},"other_id":0"#)), "{text}");
    let answer = answer.json();
    assert_eq!(answer["disagreements"][0]["list_id"], json!(12));
    assert_eq!(answer["disagreements"][0]["preferred_id"], json!(-3));
    let line = "{\"id\":5,\"items\":[{\"id\":1,\"reward\":1},{\"id\":2,\"reward\":0}]}\n";
    let stream = app.stream("include_pairs=true&include_pair_ids=true", line).await;
    let stream = stream.text();
    assert!(stream.starts_with(r#"{"line":1,"id":5,"#), "{stream}");
    assert!(stream.contains(r#""preferred_id":1,"other_id":2"#), "{stream}");

    for (id, code) in [
        (json!(1.5), "invalid_type"),
        (json!(1.0), "invalid_type"),
        (json!(-0.0), "invalid_type"),
        (json!(true), "invalid_type"),
        (json!(1e20), "invalid_value"),
    ] {
        let answer = app.evaluate(json!({"lists": [{"id": id, "items": [{"reward": 1}, {"reward": 0}]}]})).await;
        assert_eq!((answer.error_code().as_str(), answer.error_path().as_deref()), (code, Some("lists[0].id")), "{id}");
    }
    let beyond = r#"{"lists":[{"items":[{"id":18446744073709551616,"reward":1},{"reward":0}]}]}"#;
    let answer = app.evaluate(beyond).await;
    assert_eq!(
        (answer.error_code().as_str(), answer.error_path().as_deref()),
        ("invalid_value", Some("lists[0].items[0].id"))
    );
    // In `ranking`, ids are looked up by text: `3` is the item `"3"` of `rewards`, and once.
    let ranking = |ranking: Value| json!({"options": {"format": "ranking"}, "lists": [{"ranking": ranking, "rewards": {"3": 1, "4": 0}}]});
    let answer = app.evaluate(ranking(json!([3, 4]))).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let answer = app.evaluate(ranking(json!([3, "3", 4]))).await;
    assert_eq!(
        (answer.error_code().as_str(), answer.error_path().as_deref()),
        ("invalid_value", Some("lists[0].ranking[1]"))
    );
}
