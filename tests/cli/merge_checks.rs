//! `prefeval merge` invents no data: counts that would wrap, totals no evaluation can write,
//! missing fields and the same input given twice are refused with exit status 2, naming the file
//! and the field.

use serde_json::{Value, json};

use crate::datasets::{Scratch, native_dataset, ndjson, ndjson_values, prefeval, stderr};

/// The summary line `prefeval eval` writes for a small dataset of `seed`.
fn real_summary(scratch: &Scratch, seed: u64) -> Value {
    let input = scratch.write(&format!("data-{seed}.ndjson"), &ndjson(&native_dataset(seed, 12, 2..6)));
    let run = prefeval(&["eval", &input, "--include-pairs=false"], None);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    ndjson_values(&run.stdout).pop().expect("a summary line")
}

fn write_summary(scratch: &Scratch, name: &str, line: &Value) -> String {
    scratch.write(name, format!("{line}\n").as_bytes())
}

/// Merges `files`; asserts exit status 2 with one line on stderr naming `file` and `field`.
fn refused(files: &[&str], file: &str, field: &str) {
    let run = prefeval(&[&["merge"], files].concat(), None);
    let message = stderr(&run);
    assert_eq!(run.status.code(), Some(2), "{file} {field}: {message}");
    assert!(run.stdout.is_empty(), "{file} {field}: nothing merged");
    let line = message.lines().find(|line| !line.contains("warning:")).unwrap_or_default();
    assert!(line.contains(file) && line.contains(field), "names {file} and {field}: {message}");
}

/// Totals that every invariant allows, with counts at the top of u64.
fn full_counts() -> Value {
    let most = u64::MAX;
    json!({"summary": {"normalization": "ordered_pairs", "lists": most, "pairs": most, "lines_failed": 0,
        "totals": {"lists": most, "pairs": most, "agreeing": 0.0, "loss_sum": 0.0, "loss_sum_squares": 0.0,
            "chance_loss_sum": 0.0, "kendall_tau_sum": 0.0, "kendall_tau_lists": 0, "agreeing_squares": 0.0,
            "agreeing_pairs": 0.0, "pairs_squares": 18_446_744_073_709_551_616.0},
        "input": {"bytes": 1, "xxh3": "0000000000000001"}}})
}

#[test]
fn counts_that_would_wrap_are_refused_naming_the_file_and_the_field() {
    let scratch = Scratch::new("merge-overflow");
    let full = write_summary(&scratch, "full.out", &full_counts());
    let mut small = real_summary(&scratch, 73);
    small["summary"]["lines_failed"] = json!(1);
    let small = write_summary(&scratch, "small.out", &small);
    refused(&[&full, &small], "small.out", "summary.totals.lists");

    let mut failed = real_summary(&scratch, 79);
    failed["summary"]["lines_failed"] = json!(u64::MAX);
    let failed = write_summary(&scratch, "failed.out", &failed);
    refused(&[&failed, &small], "small.out", "summary.lines_failed");
}

#[test]
fn totals_no_evaluation_can_write_are_refused_naming_the_file_and_the_field() {
    let scratch = Scratch::new("merge-invariants");
    let good = real_summary(&scratch, 83);
    let good_file = write_summary(&scratch, "good.out", &good);
    type Change = fn(&mut Value);
    let cases: [(&str, &str, Change); 7] = [
        ("agreeing", "summary.totals.agreeing", |totals| {
            totals["agreeing"] = json!(totals["pairs"].as_f64().unwrap_or(0.0) + 3.0)
        }),
        ("tau-lists", "summary.totals.kendall_tau_lists", |totals| {
            totals["kendall_tau_lists"] = json!(totals["lists"].as_u64().unwrap_or(0) + 1)
        }),
        ("squares", "summary.totals.loss_sum_squares", |totals| totals["loss_sum_squares"] = json!(0.0)),
        ("negative", "summary.totals.chance_loss_sum", |totals| totals["chance_loss_sum"] = json!(-1.0)),
        ("fraction", "summary.totals.lists", |totals| totals["lists"] = json!(2.5)),
        ("pairs-squares", "summary.totals.pairs_squares", |totals| totals["pairs_squares"] = json!(1e12)),
        ("scaled", "summary.totals.loss_sum_scaled", |totals| totals["loss_sum_scaled"] = json!(1.0)),
    ];
    for (name, field, break_it) in cases {
        let mut line = good.clone();
        break_it(&mut line["summary"]["totals"]);
        let file = write_summary(&scratch, &format!("{name}.out"), &line);
        refused(&[&good_file, &file], &format!("{name}.out"), field);
    }
}

#[test]
fn a_missing_field_is_an_error_not_a_zero() {
    let scratch = Scratch::new("merge-missing");
    let good = real_summary(&scratch, 89);
    let good_file = write_summary(&scratch, "good.out", &good);
    for (name, field) in [
        ("loss_sum", "summary.totals.loss_sum"),
        ("kendall_tau_lists", "summary.totals.kendall_tau_lists"),
        ("agreeing", "summary.totals.agreeing"),
        ("pairs_squares", "summary.totals.pairs_squares"),
    ] {
        let mut line = good.clone();
        line["summary"]["totals"].as_object_mut().expect("totals").remove(name);
        let file = write_summary(&scratch, &format!("no-{name}.out"), &line);
        refused(&[&good_file, &file], &format!("no-{name}.out"), field);
    }
    let mut line = good.clone();
    line["summary"].as_object_mut().expect("a summary").remove("lines_failed");
    let file = write_summary(&scratch, "no-lines-failed.out", &line);
    refused(&[&good_file, &file], "no-lines-failed.out", "summary.lines_failed");
}

#[test]
fn the_same_input_given_twice_is_refused_and_a_summary_without_fingerprint_warns() {
    let scratch = Scratch::new("merge-duplicates");
    let first = write_summary(&scratch, "first.out", &real_summary(&scratch, 97));
    let other = write_summary(&scratch, "other.out", &real_summary(&scratch, 101));
    refused(&[&first, &other, &first], "first.out", "same file");
    let copy = scratch.write("copy.out", &std::fs::read(&first).expect("first"));
    refused(&[&first, &other, &copy], "copy.out", "summary.input");

    let merged = prefeval(&["merge", &first, &other], None);
    assert_eq!(merged.status.code(), Some(0), "{}", stderr(&merged));
    let summary = &ndjson_values(&merged.stdout)[0]["summary"];
    assert!(summary.get("input").is_none(), "a merge summarises several inputs: {summary}");
    assert_eq!(summary["lists"], 24);

    // A summary written before fingerprints: merged, with a warning that repeats go unseen.
    let mut old = ndjson_values(&std::fs::read(&other).expect("other")).remove(0);
    old["summary"].as_object_mut().expect("a summary").remove("input");
    let old = write_summary(&scratch, "old.out", &old);
    let merged = prefeval(&["merge", &first, &old], None);
    assert_eq!(merged.status.code(), Some(0), "{}", stderr(&merged));
    let message = stderr(&merged);
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(
        message.contains("warning") && message.contains("old.out") && message.contains("summary.input"),
        "{message}"
    );
}
