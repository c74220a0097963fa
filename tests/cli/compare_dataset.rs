//! The README's "Compare two models on a whole dataset": its shell block is run as it is written
//! (bash, with the built binary first on PATH, in a scratch folder that sees `examples/`), then
//! what it wrote is checked: the comparison is its committed output, the merge of three shards and
//! the diff of two eval outputs hold the same figures, the service answers the same bytes, and the
//! table the README shows is the summary's figures.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::datasets::{Scratch, assert_same_bytes, ndjson_values};
use crate::helpers::{BinaryServer, Framing, Raw};

const MARKER: &str =
    "<!-- compare-dataset: tests/cli/compare_dataset.rs runs these commands and checks what they write -->";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn readme() -> String {
    std::fs::read_to_string(root().join("README.md")).expect("README.md")
}

/// The README's shell block under the marker.
fn readme_commands(readme: &str) -> String {
    let after = readme.split_once(MARKER).expect("the README has the compare-dataset block").1;
    let block = after.split_once("```sh\n").expect("a sh block follows the marker").1;
    block.split_once("\n```").expect("the block ends").0.to_string()
}

/// The block's commands but the last (curl, which needs a server on 8080: checked below against
/// one of the test's own).
fn offline_commands(commands: &str) -> String {
    commands.split_once("\n# The service answers").expect("the curl command comes last").0.to_string()
}

/// The block after it that draws the comparison's report.
fn readme_report_commands(readme: &str) -> String {
    let after = readme.split_once("The same comparison as a page to look at").expect("the README draws the report").1;
    let block = after.split_once("```sh\n").expect("a sh block draws it").1;
    block.split_once("\n```").expect("the block ends").0.to_string()
}

/// The query of the block's curl command.
fn readme_query(commands: &str) -> String {
    let start = commands.find("/v1/compare/stream?").expect("the curl command's URL");
    commands[start..].split('\'').next().expect("a quoted URL").to_string()
}

/// Runs `commands` with bash in `scratch`, where `examples/` is the repository's and `prefeval`
/// is the built binary.
fn run_in(scratch: &Scratch, commands: &str) {
    let bin = scratch.path("bin");
    std::fs::create_dir_all(&bin).expect("bin folder");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_prefeval"), bin.join("prefeval")).expect("links prefeval");
    std::os::unix::fs::symlink(root().join("examples"), scratch.path("examples")).expect("links examples");
    bash_in(scratch, commands);
}

fn summary_of(path: &PathBuf) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let lines = ndjson_values(&bytes);
    lines.last().expect("a summary line")["summary"].clone()
}

/// `summary` without `run` and `lines_failed` (which say how, not what).
fn figures(summary: &Value) -> Value {
    let mut figures = summary.clone();
    if let Some(object) = figures.as_object_mut() {
        object.remove("run");
    }
    figures
}

/// `a` and `b` have the same shape, the same integers and strings, and numbers within `relative`.
fn assert_close(a: &Value, b: &Value, relative: f64, at: &str) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>(), "{at}");
            x.iter().for_each(|(key, value)| assert_close(value, &y[key], relative, &format!("{at}.{key}")));
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{at}");
            x.iter().zip(y).enumerate().for_each(|(i, (x, y))| assert_close(x, y, relative, &format!("{at}[{i}]")));
        }
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().expect("a number"), y.as_f64().expect("a number"));
            assert!((x - y).abs() <= relative * x.abs().max(y.abs()), "{at}: {x} and {y}");
        }
        _ => assert_eq!(a, b, "{at}"),
    }
}

fn three(value: &Value) -> String {
    format!("{:.3}", value.as_f64().expect("a number"))
}

fn interval(value: &Value) -> String {
    format!("[{}, {}]", three(&value[0]), three(&value[1]))
}

/// The README's table of a comparison summary, every figure rounded to 3 decimals (p-values to 2).
fn table(summary: &Value) -> String {
    let mut rows = vec![
        "| model | accuracy [95 % CI] | loss [95 % CI] | preferred reply longer: pairs, accuracy | shorter: pairs, accuracy |"
            .to_string(),
        "|---|---|---|---|---|".to_string(),
    ];
    for model in summary["models"].as_array().expect("models") {
        let length = &model["length"];
        rows.push(format!(
            "| `{}` | {} {} | {} {} | {}, {} | {}, {} |",
            model["model"].as_str().expect("a name"),
            three(&model["accuracy"]),
            interval(&model["accuracy_ci"]),
            three(&model["loss"]),
            interval(&model["loss_ci"]),
            length["pairs_preferred_longer"],
            three(&length["accuracy_preferred_longer"]),
            length["pairs_preferred_shorter"],
            three(&length["accuracy_preferred_shorter"]),
        ));
    }
    for comparison in summary["comparisons"].as_array().expect("comparisons") {
        rows.push(format!(
            "| `{}` − `{}` | {} {}, p = {:.2} | {} {}, p = {:.2} | lists won {}, lost {}, tied {} | |",
            comparison["a"].as_str().expect("a name"),
            comparison["b"].as_str().expect("a name"),
            three(&comparison["accuracy_difference"]),
            interval(&comparison["accuracy_difference_ci"]),
            comparison["accuracy_p_value"].as_f64().expect("a p-value"),
            three(&comparison["loss_difference"]),
            interval(&comparison["loss_difference_ci"]),
            comparison["loss_p_value"].as_f64().expect("a p-value"),
            comparison["lists_a_better"],
            comparison["lists_b_better"],
            comparison["lists_tied"],
        ));
    }
    rows.push(format!(
        "\nThe length-only baseline (\"the longer reply is preferred\") scores {} over the {} pairs.",
        three(&summary["models"][0]["length"]["baseline_accuracy"]),
        summary["models"][0]["length"]["pairs"]
    ));
    rows.join("\n")
}

#[test]
fn the_readme_comparison_of_a_whole_dataset_runs_as_written_and_its_doors_agree() {
    let readme = readme();
    let commands = readme_commands(&readme);
    let scratch = Scratch::new("compare-dataset");
    run_in(&scratch, &offline_commands(&commands));

    // The comparison is the committed output, byte for byte.
    let compared = std::fs::read(scratch.path("compare.out.ndjson")).expect("compare.out.ndjson");
    let committed_path = root().join("examples/compare/hh-rlhf-scored.out.ndjson");
    let committed = std::fs::read(&committed_path).expect("the committed output");
    assert_same_bytes("examples/compare/hh-rlhf-scored.out.ndjson is stale", &committed, &compared);
    let whole = summary_of(&scratch.path("compare.out.ndjson"));
    assert_eq!(whole["lists"], 500);
    assert_eq!(whole["lines_failed"], 0);

    // Three shards merged: the counts exactly, the figures to rounding; every input named once.
    let merged = summary_of(&scratch.path("merged.ndjson"));
    assert_close(&figures(&merged), &figures(&whole), 1e-12, "merged");
    assert_eq!(merged["run"]["inputs"].as_array().map(Vec::len), Some(3));

    // The service answers the comparison's bytes to the README's query.
    let server = BinaryServer::start(&[]);
    let body = std::fs::read(root().join("examples/compare/hh-rlhf-scored.jsonl.gz")).expect("the dataset");
    let headers = [("Content-Type", "application/x-ndjson"), ("Content-Encoding", "gzip")];
    let answer = Raw::exchange(server.addr, "POST", &readme_query(&commands), &headers, &body, Framing::Length);
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(answer.body == compared, "the stream and `prefeval compare` differ");

    // The README shows the summary's figures.
    let shown = table(&whole);
    assert!(readme.contains(&shown), "README.md does not show the comparison's figures; it should read:\n{shown}");

    // Two eval outputs of the same lists, paired by id: the comparison's figures to the last bit.
    let diffed = summary_of(&scratch.path("diff.ndjson"));
    assert_eq!(figures(&diffed), figures(&whole), "diff of the two eval outputs");

    // The report the README draws (and shows as a screenshot) carries the comparison's numbers.
    bash_in(&scratch, &readme_report_commands(&readme));
    let page = std::fs::read_to_string(scratch.path("report.html")).expect("report.html");
    assert!(page.contains("data-report-kind=\"comparison\""));
    for model in whole["models"].as_array().expect("models") {
        let accuracy = serde_json::to_string(&model["accuracy"]).expect("number");
        let row = page.split(&format!("<tr data-model=\"{}\">", model["model"].as_str().expect("name"))).nth(1);
        let row = row.and_then(|row| row.split("</tr>").next()).expect("the model's headline row");
        assert!(row.contains(&format!("data-figure=\"accuracy\" data-value=\"{accuracy}\"")), "{row}");
    }
}

/// Runs `commands` with bash in a scratch `run_in` has set up.
fn bash_in(scratch: &Scratch, commands: &str) {
    let path = format!("{}:{}", scratch.path("bin").display(), std::env::var("PATH").unwrap_or_default());
    let output = Command::new("bash")
        .args(["-euo", "pipefail", "-c", commands])
        .current_dir(&scratch.0)
        .env("PATH", path)
        .output()
        .expect("bash runs");
    assert!(output.status.success(), "the README's commands failed: {}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn the_dataset_is_what_make_dataset_writes() {
    let script = root().join("examples/compare/make_dataset.py");
    match Command::new("python3").arg(&script).arg("--check").output() {
        Ok(output) => assert!(
            output.status.success(),
            "examples/compare/hh-rlhf-scored.jsonl.gz is not what make_dataset.py writes: {}",
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("note: python3 is not installed; the dataset was not checked against make_dataset.py")
        }
        Err(error) => panic!("python3 does not start: {error}"),
    }
}
