//! `prefeval merge` invents no data: counts that would wrap, totals no evaluation can write,
//! missing fields, the same input given twice, and summaries of other normalizations, β or models
//! are refused with exit status 2, naming the file and the field; the merged `run` says what was
//! merged.

use serde_json::{Value, json};

use crate::datasets::{Scratch, native_dataset, ndjson, ndjson_values, prefeval, stderr};

/// The summary line `prefeval eval` writes for a small dataset of `seed`.
fn real_summary(scratch: &Scratch, seed: u64) -> Value {
    eval_summary(scratch, seed, &[])
}

/// The summary line of `prefeval eval FLAGS` over a small dataset of `seed`.
fn eval_summary(scratch: &Scratch, seed: u64, flags: &[&str]) -> Value {
    let input = scratch.write(&format!("data-{seed}.ndjson"), &ndjson(&native_dataset(seed, 12, 2..6)));
    let run = prefeval(&[&["eval", input.as_str(), "--quiet"], flags].concat(), None);
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
        "run": {"prefeval": "0.1.0", "normalization": "ordered_pairs", "beta": 1.0, "format": "native",
            "confidence": 0.95, "input": {"bytes": 1, "xxh3": "0000000000000001"}}}})
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
fn the_same_input_given_twice_is_refused_even_inside_a_merged_summary() {
    let scratch = Scratch::new("merge-duplicates");
    let first = write_summary(&scratch, "first.out", &real_summary(&scratch, 97));
    let other = write_summary(&scratch, "other.out", &real_summary(&scratch, 101));
    refused(&[&first, &other, &first], "first.out", "same file");
    let copy = scratch.write("copy.out", &std::fs::read(&first).expect("first"));
    refused(&[&first, &other, &copy], "copy.out", "summary.run.input");

    let merged = prefeval(&["merge", &first, &other], None);
    assert_eq!(merged.status.code(), Some(0), "{}", stderr(&merged));
    assert!(merged.stderr.is_empty(), "{}", stderr(&merged));
    let merged = scratch.write("merged.out", &merged.stdout);
    // Merged again with one of its own inputs: that input would count twice.
    refused(&[&merged, &copy], "copy.out", "summary.run.input");
    refused(&[&copy, &merged], "merged.out", "summary.run.input");
}

#[test]
fn a_summary_without_run_or_its_fingerprint_is_refused_naming_the_field() {
    let scratch = Scratch::new("merge-no-run");
    let good = real_summary(&scratch, 103);
    let good_file = write_summary(&scratch, "good.out", &good);
    let mut old = real_summary(&scratch, 107);
    old["summary"].as_object_mut().expect("a summary").remove("run");
    let old = write_summary(&scratch, "old.out", &old);
    refused(&[&good_file, &old], "old.out", "summary.run");
    for field in ["input", "normalization", "beta", "format", "confidence", "prefeval"] {
        let mut line = real_summary(&scratch, 107);
        line["summary"]["run"].as_object_mut().expect("a run").remove(field);
        let file = write_summary(&scratch, &format!("no-{field}.out"), &line);
        refused(&[&good_file, &file], &format!("no-{field}.out"), &format!("summary.run.{field}"));
    }
}

#[test]
fn summaries_of_other_normalizations_betas_or_models_are_refused_naming_the_field_and_both_files() {
    let scratch = Scratch::new("merge-runs");
    let base = write_summary(&scratch, "base.out", &eval_summary(&scratch, 109, &["--model", "rm-a"]));
    let cases: [(&str, &[&str], &str); 5] = [
        ("sum.out", &["--model", "rm-a", "--normalization", "sum"], "summary.run.normalization"),
        ("beta2.out", &["--model", "rm-a", "--beta", "2"], "summary.run.beta"),
        ("other-model.out", &["--model", "rm-b"], "summary.run.model"),
        ("no-model.out", &[], "summary.run.model"),
        ("beta1.5.out", &["--model", "rm-a", "--beta", "1.5"], "summary.run.beta"),
    ];
    for (seed, (name, flags, field)) in (113..).zip(cases) {
        let file = write_summary(&scratch, name, &eval_summary(&scratch, seed, flags));
        refused(&[&base, &file], name, field);
        let run = prefeval(&["merge", &base, &file], None);
        assert!(stderr(&run).contains("base.out"), "names the first file too: {}", stderr(&run));
    }
    // A model on the first and none on the second differ too, in either order.
    let none = write_summary(&scratch, "none.out", &eval_summary(&scratch, 127, &[]));
    refused(&[&none, &base], "base.out", "summary.run.model");
}

#[test]
fn the_merged_run_records_what_was_merged_and_flattens_merges_of_merges() {
    let scratch = Scratch::new("merge-run");
    let shards: Vec<Value> = [
        (131, &["--model", "rm-a", "--beta", "0.5"][..]),
        (137, &["--model", "rm-a", "--beta", "0.5", "--confidence", "0.8"]),
        (139, &["--model", "rm-a", "--beta", "0.5"]),
    ]
    .into_iter()
    .map(|(seed, flags)| eval_summary(&scratch, seed, flags))
    .collect();
    let files: Vec<String> =
        shards.iter().enumerate().map(|(k, line)| write_summary(&scratch, &format!("s{k}.out"), line)).collect();
    let input = |k: usize| shards[k]["summary"]["run"]["input"].clone();

    let merged = prefeval(&["merge", &files[0], &files[1], "--confidence", "0.9"], None);
    assert_eq!(merged.status.code(), Some(0), "{}", stderr(&merged));
    let first_two = ndjson_values(&merged.stdout).remove(0);
    assert_eq!(
        first_two["summary"]["run"],
        json!({"prefeval": env!("CARGO_PKG_VERSION"), "model": "rm-a", "normalization": "ordered_pairs", "beta": 0.5,
            "format": "native", "confidence": 0.9, "inputs": [input(0), input(1)]}),
    );
    let first_two = scratch.write("first-two.out", &merged.stdout);
    let merged = prefeval(&["merge", &first_two, &files[2]], None);
    assert_eq!(merged.status.code(), Some(0), "{}", stderr(&merged));
    let all = ndjson_values(&merged.stdout).remove(0);
    assert_eq!(all["summary"]["run"]["inputs"], json!([input(0), input(1), input(2)]), "flattened, in file order");
    assert_eq!(all["summary"]["run"]["confidence"], 0.95, "the merge's own confidence");
    assert_eq!(all["summary"]["lists"], 36);

    // The format changes no figure: different formats merge, as `mixed`.
    let pairs = scratch.write("pairs.ndjson", b"{\"chosen_reward\":1.0,\"rejected_reward\":0.5}\n");
    let pairs = prefeval(&["eval", &pairs, "--quiet", "--format", "pairs", "--model", "rm-a", "--beta", "0.5"], None);
    assert_eq!(pairs.status.code(), Some(0), "{}", stderr(&pairs));
    let pairs = scratch.write("pairs.out", &pairs.stdout);
    let mixed = prefeval(&["merge", &files[0], &pairs], None);
    assert_eq!(mixed.status.code(), Some(0), "{}", stderr(&mixed));
    assert_eq!(ndjson_values(&mixed.stdout)[0]["summary"]["run"]["format"], "mixed");
}
