//! Length bias (docs/design/math.md, "Length bias") through every door that ends with a summary:
//! `POST /v1/evaluate/stream` of the built binary's server, `prefeval eval` of the same file (the
//! same bytes), of a batch file, `POST /v1/evaluate`, and `prefeval merge` of three shards. The
//! data (`length_data`: ties of rank, reward and length, items without a length) is written in the
//! `native`, `ranking` and `pairs` formats, under the formats' names and under the data's own
//! (`fields`). Every `length` and `totals.length` is a count or a ratio of counts: compared
//! exactly, with the brute force of `length_data` over the implied pairs.

use serde_json::{Value, json};

use crate::dataset_figures::{eval_to, summary_of, without};
use crate::datasets::{Doors, Scratch, assert_same_bytes, ndjson, prefeval, results_and_summary, start, stderr};
use crate::length_data::{Item, brute_force, brute_force_totals, lists_in, random_lists};

/// The formats whose lengths sit in three different places: on items, in a `lengths` object by
/// id, and as `chosen_length`/`rejected_length` of a pair.
const FORMATS: [&str; 3] = ["native", "ranking", "pairs"];

/// The length figures and pair counts of `lists` by brute force; the data must have some.
fn expected(lists: &[Vec<Item>]) -> (Value, Value) {
    let figures = brute_force(lists).expect("the data have pairs with both lengths");
    for name in ["reward_follows_length", "accuracy_preferred_longer", "accuracy_preferred_shorter"] {
        assert!(figures.get(name).is_some(), "the data exercise {name}: {figures}");
    }
    (figures, brute_force_totals(lists))
}

#[test]
fn the_stream_eval_and_the_batch_give_the_length_figures_of_their_definitions() {
    let server = start();
    let scratch = Scratch::new("length-doors");
    let lists = random_lists(0x1E9D, 60);
    let (figures, totals) = expected(&lists);
    for format in FORMATS {
        let lines = lists_in(format, &lists, true);
        let body = ndjson(&lines);
        let streamed = server.stream(&format!("format={format}&beta=0.7"), &body);
        let (_, summary) = results_and_summary(&streamed);
        assert_eq!(summary["lines_failed"], 0, "{format}: {summary}");
        assert_eq!(summary["length"], figures, "{format}: the stream's length");
        assert_eq!(summary["totals"]["length"], totals, "{format}: the stream's totals.length");

        let file = scratch.write(&format!("{format}.ndjson"), &body);
        let eval = prefeval(&["eval", &file, "--format", format, "--beta", "0.7", "--quiet"], None);
        assert_eq!(eval.status.code(), Some(0), "{format}: {}", stderr(&eval));
        assert_same_bytes(&format!("{format}: eval of the file and the stream"), &streamed.body, &eval.stdout);

        let request = json!({"options": {"format": format, "beta": 0.7, "include_pairs": false}, "lists": lines});
        let batch_file = scratch.write(&format!("{format}.json"), request.to_string().as_bytes());
        let from_batch = prefeval(&["eval", &batch_file, "--quiet"], None);
        assert_eq!(from_batch.status.code(), Some(0), "{format}: {}", stderr(&from_batch));
        let batch_summary = summary_of(&from_batch.stdout);
        assert_eq!(without(&batch_summary, "run"), without(&summary, "run"), "{format}: eval of a batch file");

        let (status, batch) = server.batch(&request);
        assert_eq!(status, 200, "{format}: {batch}");
        assert_eq!(batch["summary"]["length"], figures, "{format}: POST /v1/evaluate's length");
        assert_eq!(batch["summary"]["totals"]["length"], totals, "{format}: POST /v1/evaluate's totals.length");
    }
}

#[test]
fn three_shards_merge_into_the_length_figures_of_the_whole() {
    let scratch = Scratch::new("length-merge");
    let mut lists = random_lists(0x5A4D, 90);
    // The middle shard has no lengths at all: its summary carries no `length` to add.
    let cuts = [0, 35, 50, 90];
    for list in &mut lists[cuts[1]..cuts[2]] {
        list.iter_mut().for_each(|item| item.length = None);
    }
    let (figures, totals) = expected(&lists);
    for format in FORMATS {
        let flags = ["--format", format];
        let shards: Vec<Vec<Value>> = (0..3).map(|s| lists_in(format, &lists[cuts[s]..cuts[s + 1]], true)).collect();
        let (_, whole) = eval_to(&scratch, &format!("{format}-whole"), &shards.concat(), &flags);
        let whole = summary_of(&whole);
        assert_eq!((&whole["length"], &whole["totals"]["length"]), (&figures, &totals), "{format}: the whole");
        let outputs: Vec<String> = (shards.iter().enumerate())
            .map(|(s, shard)| eval_to(&scratch, &format!("{format}-shard{s}"), shard, &flags).0)
            .collect();
        let middle = summary_of(&std::fs::read(&outputs[1]).expect("the middle shard's output"));
        assert!(middle.get("length").is_none() && middle["totals"].get("length").is_none(), "{format}: {middle}");
        let merged =
            prefeval(&[&["merge"], &outputs.iter().map(String::as_str).collect::<Vec<_>>()[..]].concat(), None);
        assert_eq!(merged.status.code(), Some(0), "{format}: {}", stderr(&merged));
        let merged = summary_of(&merged.stdout);
        assert_eq!(merged["length"], whole["length"], "{format}: the merge's length");
        assert_eq!(merged["totals"]["length"], whole["totals"]["length"], "{format}: the merge's totals.length");
    }
}

/// `lines` with each field `own` renamed `data`, on lists and on their items.
fn renamed(lines: &[Value], names: &[(&str, &str)]) -> Vec<Value> {
    let rename = |object: &mut Value| {
        for (own, data) in names {
            if let Some(value) = object.as_object_mut().and_then(|map| map.remove(*own)) {
                object[*data] = value;
            }
        }
    };
    let mut lines = lines.to_vec();
    for line in &mut lines {
        rename(line);
        line.get_mut("items").and_then(Value::as_array_mut).into_iter().flatten().for_each(rename);
    }
    lines
}

#[test]
fn lengths_under_the_data_s_own_names_give_the_same_figures_through_the_stream_and_eval() {
    let server = start();
    let scratch = Scratch::new("length-fields");
    let lists = random_lists(0xF1E1D, 40);
    let (figures, totals) = expected(&lists);
    let cases: [(&str, &[(&str, &str)]); 3] = [
        ("pairs", &[("chosen_length", "len_a"), ("rejected_length", "len_b")]),
        ("native", &[("length", "n_tokens")]),
        ("ranking", &[("lengths", "sizes")]),
    ];
    for (format, names) in cases {
        let lines = renamed(&lists_in(format, &lists, true), names);
        // Real exports keep other columns: stepped over.
        let lines: Vec<Value> = (lines.into_iter().enumerate())
            .map(|(k, mut line)| {
                line["prompt"] = json!(format!("prompt {k}"));
                line
            })
            .collect();
        let fields: Vec<String> = names.iter().map(|(own, data)| format!("{own}:{data}")).collect();
        let fields = fields.join(",");
        let body = ndjson(&lines);
        let streamed = server.stream(&format!("format={format}&fields={fields}&unknown_fields=ignore"), &body);
        let (_, summary) = results_and_summary(&streamed);
        assert_eq!(summary["lines_failed"], 0, "{format}: {summary}");
        assert_eq!(summary["length"], figures, "{format}: {fields}");
        assert_eq!(summary["totals"]["length"], totals, "{format}: {fields}");
        let file = scratch.write(&format!("{format}.ndjson"), &body);
        let args = ["eval", &file, "--format", format, "--fields", &fields, "--unknown-fields", "ignore", "--quiet"];
        let eval = prefeval(&args, None);
        assert_eq!(eval.status.code(), Some(0), "{format}: {}", stderr(&eval));
        assert_same_bytes(&format!("{format}: eval with --fields {fields}"), &streamed.body, &eval.stdout);
        // Without the mapping, the lengths are columns like any other, stepped over.
        let unmapped = prefeval(&["eval", &file, "--format", format, "--unknown-fields", "ignore", "--quiet"], None);
        assert_eq!(unmapped.status.code(), Some(0), "{format}: {}", stderr(&unmapped));
        assert!(summary_of(&unmapped.stdout).get("length").is_none(), "{format}: no lengths read unmapped");
    }
}
