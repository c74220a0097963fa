//! `prefeval eval --fields … --unknown-fields ignore` on exports as they are named: the flags come
//! from the option table like every other, and give the lines of the same data named natively.

use serde_json::{Value, json};

use crate::datasets::{Scratch, ndjson_values, prefeval, stderr};

/// RewardBench-like rows: integer ids, long conversations, scores under their own names.
fn rows() -> Vec<Value> {
    (0..5)
        .map(|k| {
            let text = "\n\nHuman: \"why?\"\\n\n\nAssistant: because\t".repeat(500 * (k + 1));
            json!({"id": k * 7, "prompt": text, "chosen": text, "rejected": {"turns": [text, null]},
                "score_chosen": k as f64 * 0.5, "score_rejected": 1.0 - k as f64 * 0.25})
        })
        .collect()
}

fn lines(rows: &[Value]) -> Vec<u8> {
    rows.iter().flat_map(|row| format!("{row}\n").into_bytes()).collect()
}

/// Every output line but the summary's `run.input` (the fingerprint of the bytes read, which differ).
fn without_input(output: &[u8]) -> Vec<Value> {
    let mut lines = ndjson_values(output);
    for line in &mut lines {
        if let Some(run) = line.pointer_mut("/summary/run").and_then(Value::as_object_mut) {
            run.remove("input");
        }
    }
    lines
}

const FIELDS: &str = "chosen_reward:score_chosen,rejected_reward:score_rejected";

#[test]
fn fields_and_unknown_fields_flags_read_an_export_as_named() {
    let scratch = Scratch::new("real-exports");
    let rows = rows();
    let export = scratch.write("export.ndjson", &lines(&rows));
    let native_rows: Vec<Value> = rows
        .iter()
        .map(|row| json!({"id": row["id"], "chosen_reward": row["score_chosen"], "rejected_reward": row["score_rejected"]}))
        .collect();
    let native = scratch.write("native.ndjson", &lines(&native_rows));

    let args = ["eval", &export, "--format", "pairs", "--fields", FIELDS, "--unknown-fields", "ignore"];
    let renamed = prefeval(&args, None);
    assert!(renamed.status.success(), "{}", stderr(&renamed));
    let plain = prefeval(&["eval", &native, "--format", "pairs"], None);
    assert!(plain.status.success(), "{}", stderr(&plain));
    assert_eq!(without_input(&renamed.stdout), without_input(&plain.stdout));
    assert_eq!(ndjson_values(&renamed.stdout)[3]["id"], json!(21), "an integer id comes back an integer");

    // Unknown columns are refused unless ignored, by their name.
    let refused = prefeval(&["eval", &export, "--format", "pairs", "--fields", FIELDS], None);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    let first = &ndjson_values(&refused.stdout)[0];
    assert_eq!(first["error"]["code"], json!("unknown_field"), "{first}");

    // The same flags on a batch file, whose lists are named the data's way.
    let batch = scratch.write("batch.json", json!({"lists": rows}).to_string().as_bytes());
    let from_batch =
        prefeval(&["eval", &batch, "--format", "pairs", "--fields", FIELDS, "--unknown-fields=ignore"], None);
    assert!(from_batch.status.success(), "{}", stderr(&from_batch));
    let summary = |output: &[u8]| without_input(output).pop();
    assert_eq!(summary(&from_batch.stdout), summary(&plain.stdout));
}

#[test]
fn bad_fields_flags_are_refused_naming_the_entry() {
    let scratch = Scratch::new("real-exports-bad");
    let export = scratch.write("export.ndjson", &lines(&rows()));
    for (args, expected) in [
        (vec!["--fields", "chosen_reward"], "name:data_name"),
        (vec!["--fields", "id:a,group:a"], "both mapped to `a`"),
        (vec!["--format", "pairs", "--fields", "items:responses"], "`items` is not a field of format `pairs`"),
        (vec!["--unknown-fields", "skip"], "`reject` or `ignore`"),
    ] {
        let mut all = vec!["eval", export.as_str()];
        all.extend(&args);
        let run = prefeval(&all, None);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {}", stderr(&run));
        assert!(stderr(&run).contains(expected), "{args:?}: {}", stderr(&run));
    }
}
