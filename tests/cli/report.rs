//! `prefeval report` and `--report` as a user runs them: the report of an evaluation (plain, and
//! grouped with calibration, lengths and disagreements), of a comparison (`prefeval compare`, a
//! `/v1/compare` answer, several `prefeval eval` outputs compared as `prefeval diff` compares
//! them) shows the numbers of its JSON exactly; its charts hold their marks; it makes no request;
//! the same input gives the same bytes; `eval --report` writes it beside the results; every
//! refusal exits 2 and leaves no file behind. (The page in a real browser: `tests/browser/`.)

use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

use crate::compare_data::compare_lists;
use crate::compare_runs::model_lists;
use crate::datasets::{Scratch, ndjson, ndjson_values, stderr};

const DATE_EPOCH: &str = "1764806400"; // 2025-12-04

/// `prefeval ARGS` with a fixed report date.
fn prefeval(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_prefeval"))
        .args(args)
        .env("SOURCE_DATE_EPOCH", DATE_EPOCH)
        .stdin(Stdio::null())
        .output()
        .expect("prefeval runs")
}

fn run_ok(args: &[&str]) -> Vec<u8> {
    let run = prefeval(args);
    assert_eq!(run.status.code(), Some(0), "prefeval {args:?}: {}", stderr(&run));
    run.stdout
}

fn refused(args: &[&str], named: &[&str]) {
    let run = prefeval(args);
    let message = stderr(&run);
    assert_eq!(run.status.code(), Some(2), "prefeval {args:?}: {message}");
    assert!(run.stdout.is_empty(), "prefeval {args:?} printed something");
    for name in named {
        assert!(message.contains(name), "prefeval {args:?} does not name {name}: {message}");
    }
}

fn summary_of(path: &str) -> Value {
    let bytes = std::fs::read(path).expect("output");
    ndjson_values(&bytes).pop().expect("a summary line")["summary"].clone()
}

/// The `(data-figure, data-value, shown text)` of every figure cell or span in `html`.
fn figures(html: &str) -> Vec<(String, String, String)> {
    let mut found = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find("data-figure=\"") {
        rest = &rest[at + 13..];
        let name_end = rest.find('"').expect("attribute ends");
        let name = rest[..name_end].to_string();
        let tag_end = rest.find('>').expect("tag ends");
        let value = rest[..tag_end]
            .split_once("data-value=\"")
            .map(|(_, after)| after[..after.find('"').expect("value ends")].to_string())
            .unwrap_or_default();
        let text_end = rest[tag_end..].find('<').expect("text ends");
        found.push((name, value, rest[tag_end + 1..tag_end + text_end].to_string()));
        rest = &rest[tag_end..];
    }
    found
}

/// The part of `html` from the element opening with `start` to the next `end`.
fn segment<'h>(html: &'h str, start: &str, end: &str) -> &'h str {
    let from = html.find(start).unwrap_or_else(|| panic!("the report has no {start}"));
    let to = html[from..].find(end).map_or(html.len(), |to| from + to);
    &html[from..to]
}

/// A number as JSON writes it (shortest form), and as the report shows it (4 significant digits).
fn json_number(value: &Value) -> String {
    serde_json::to_string(value).expect("number")
}

fn four_digits(value: f64) -> String {
    let exponent = value.abs().log10().floor() as i32;
    let text = if value == 0.0 {
        "0".to_string()
    } else if (-4..6).contains(&exponent) {
        format!("{value:.*}", (3 - exponent).max(0) as usize)
    } else {
        let text = format!("{value:.3e}");
        let (mantissa, power) = text.split_once('e').expect("scientific");
        let mantissa =
            if mantissa.contains('.') { mantissa.trim_end_matches('0').trim_end_matches('.') } else { mantissa };
        return format!("{mantissa}e{power}");
    };
    if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_string() } else { text }
}

/// Every figure of `row` named in `expected` carries the JSON number exactly and shows it rounded.
fn assert_row(what: &str, row: &str, expected: &Value, names: &[&str]) {
    let cells = figures(row);
    for name in names {
        let Some(value) = expected.get(*name) else { continue };
        let (_, data, shown) = cells
            .iter()
            .find(|(figure, _, _)| figure == name)
            .unwrap_or_else(|| panic!("{what}: no figure {name} in {row}"));
        match value {
            Value::Array(interval) => {
                assert_eq!(
                    data,
                    &format!("[{},{}]", json_number(&interval[0]), json_number(&interval[1])),
                    "{what} {name}"
                );
                let (lo, hi) = (interval[0].as_f64().expect("lo"), interval[1].as_f64().expect("hi"));
                assert_eq!(shown, &format!("[{}, {}]", four_digits(lo), four_digits(hi)), "{what} {name}");
            }
            Value::Number(number) if number.is_u64() => {
                assert_eq!(
                    (data.as_str(), shown.as_str()),
                    (json_number(value).as_str(), json_number(value).as_str()),
                    "{what} {name}"
                );
            }
            _ => {
                assert_eq!(data, &json_number(value), "{what} {name}");
                assert_eq!(shown, &four_digits(value.as_f64().expect("number")), "{what} {name}");
            }
        }
    }
}

const HEADLINE: [&str; 9] =
    ["lists", "pairs", "loss", "loss_ci", "chance_loss", "accuracy", "accuracy_ci", "kendall_tau", "macro_accuracy"];

/// Every chart's `data-marks` is the count of its marks, and there is at least one; the names of
/// the charts drawn.
fn assert_charts(html: &str) -> Vec<String> {
    let mut names = Vec::new();
    for chart in html.split("<figure class=\"chart\"").skip(1) {
        let chart = &chart[..chart.find("</figure>").expect("figure ends")];
        let name = chart.split_once("data-chart=\"").expect("named").1.split('"').next().expect("name").to_string();
        let marks: usize =
            chart.split_once("data-marks=\"").expect("marks").1.split('"').next().expect("n").parse().expect("count");
        assert!(chart.contains("<svg") && chart.contains("</svg>"), "{name} holds no SVG");
        assert_eq!(chart.matches("class=\"mark").count(), marks, "{name}: data-marks");
        assert!(marks > 0, "{name} has no marks");
        names.push(name);
    }
    names
}

/// Nothing in the page can make a request: no source or link attribute, no stylesheet or import,
/// and a content security policy that forbids any.
fn assert_self_contained(html: &str) {
    assert!(html.contains("content=\"default-src 'none';"), "no content security policy");
    for forbidden in [" src=", " href=", "<link", "@import", "url(", "<iframe", "<img", "fetch(", "XMLHttpRequest"] {
        assert!(!html.contains(forbidden), "the report holds {forbidden}");
    }
    let without_namespace = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    assert!(
        !without_namespace.contains("http://") && !without_namespace.contains("https://"),
        "an address in the report"
    );
}

/// Native lists with groups and item lengths.
fn grouped_lists(count: usize) -> Vec<Value> {
    (0..count)
        .map(|index| {
            let items: Vec<Value> = (0..3)
                .map(|k| {
                    let reward = ((index * 7 + k * 13) % 11) as f64 / 3.0 - 1.5;
                    json!({"id": format!("r{k}"), "reward": reward, "length": (index * 5 + k * 31) % 17})
                })
                .collect();
            json!({"id": format!("list-{index}"), "group": format!("subset-{}", index % 4), "items": items})
        })
        .collect()
}

#[test]
fn the_report_of_an_evaluation_shows_its_json_and_draws_its_figures() {
    let scratch = Scratch::new("report-eval");
    let input = scratch.write("grouped.ndjson", &ndjson(&grouped_lists(240)));
    let output = scratch.path("grouped.out").display().to_string();
    let report = scratch.path("grouped.html").display().to_string();
    let flags = ["--calibration-bins", "10", "--top-disagreements", "15", "--model", "rm <a&b>", "--quiet"];
    run_ok(&[&["eval", input.as_str(), "-o", output.as_str(), "--report", report.as_str()], flags.as_slice()].concat());
    let summary = summary_of(&output);
    let html = std::fs::read_to_string(&report).expect("the report");
    assert!(html.starts_with("<!DOCTYPE html>") && html.ends_with("</html>\n"));
    assert!(html.contains("data-report-kind=\"evaluation\""));
    assert!(html.contains("rm &lt;a&amp;b&gt;") && !html.contains("rm <a&b>"), "the model's name is escaped");
    assert_self_contained(&html);
    assert_row("headline", segment(&html, "<tr data-model=", "</tr>"), &summary, &HEADLINE);
    assert!(segment(&html, "<tr data-run=\"report_date\"", "</tr>").contains("2025-12-04"));
    // Calibration: ECE, Brier, every bin; one bar per bin with pairs.
    let calibration = &summary["calibration"];
    let section = segment(&html, "data-section=\"calibration\"", "</section>");
    let spans = figures(section);
    for name in ["ece", "brier"] {
        assert!(
            spans.iter().any(|(figure, value, _)| figure == name && *value == json_number(&calibration[name])),
            "{name}"
        );
    }
    let bins = calibration["bins"].as_array().expect("bins");
    let filled = bins.iter().filter(|bin| bin["count"].as_u64() > Some(0)).count();
    let reliability = segment(section, "data-chart=\"reliability\"", "</figure>");
    assert_eq!(reliability.matches("class=\"mark bar\"").count(), filled);
    let rows: Vec<&str> = segment(section, "data-table=\"calibration\"", "</table>").split("<tr>").skip(2).collect();
    assert_eq!(rows.len(), bins.len());
    for (row, bin) in rows.iter().zip(bins) {
        assert_row("calibration bin", row, bin, &["count", "mean_predicted", "observed"]);
    }
    // Groups, length, disagreements: every row.
    let groups = summary["groups"].as_array().expect("groups");
    let table = segment(&html, "data-table=\"groups\"", "</table>");
    for group in groups {
        let row = segment(table, &format!("<tr data-group=\"{}\"", group["group"].as_str().expect("name")), "</tr>");
        assert_row("group", row, group, &["lists", "pairs", "loss", "chance_loss", "accuracy"]);
    }
    let length = segment(&html, "data-table=\"length\"", "</table>");
    assert_row(
        "length",
        length,
        &summary["length"],
        &["pairs", "baseline_accuracy", "reward_follows_length", "accuracy_preferred_longer", "pairs_preferred_longer"],
    );
    let disagreements = summary["disagreements"].as_array().expect("disagreements");
    let table = segment(&html, "data-table=\"disagreements\"", "</table>");
    let rows: Vec<&str> = table.split("<tr>").skip(2).collect();
    assert_eq!(rows.len(), disagreements.len());
    for (row, expected) in rows.iter().zip(disagreements) {
        assert_row("disagreement", row, expected, &["line", "preferred", "other", "probability"]);
    }
    let charts = assert_charts(&html);
    assert_eq!(charts, ["reliability", "probabilities", "groups", "length"]);
    // `prefeval report` of the output: the same page but for where it was drawn from.
    let again = scratch.path("again.html").display().to_string();
    run_ok(&["report", output.as_str(), "-o", again.as_str()]);
    let again = std::fs::read_to_string(&again).expect("the report");
    let without_sources = |html: &str| {
        let row = segment(html, "<tr data-run=\"sources\"", "</tr>").to_string();
        html.replace(&row, "")
    };
    assert_eq!(without_sources(&again), without_sources(&html));
}

#[test]
fn reports_are_the_same_bytes_for_the_same_input_and_name_what_is_missing() {
    let scratch = Scratch::new("report-same");
    let input = scratch.write("plain.ndjson", &ndjson(&grouped_lists(30)));
    let output = scratch.write("plain.out", &run_ok(&["eval", input.as_str(), "--quiet"]));
    let first = run_ok(&["report", output.as_str()]);
    let second = run_ok(&["report", output.as_str()]);
    assert_eq!(first, second, "two reports of one input differ");
    let html = String::from_utf8(first).expect("UTF-8");
    assert_self_contained(&html);
    for missing in ["calibration", "disagreements"] {
        assert!(html.contains(&format!("data-absent=\"{missing}\"")), "{missing} is not said missing");
    }
    assert_row("headline", segment(&html, "<tr data-model=", "</tr>"), &summary_of(&output), &HEADLINE);
    // Labelled by the output's file name when the run names no model.
    assert!(html.contains("<tr data-model=\"plain.out\">"));
    // From stdin, as in `prefeval eval … | prefeval report -`.
    let piped = crate::datasets::prefeval(&["report", "-"], Some(&std::fs::read(&output).expect("output")));
    assert_eq!(piped.status.code(), Some(0), "{}", stderr(&piped));
    let piped = String::from_utf8(piped.stdout).expect("UTF-8");
    assert!(piped.contains("<tr data-model=\"stdin\">"));
    assert_row("piped", segment(&piped, "<tr data-model=", "</tr>"), &summary_of(&output), &HEADLINE);
}

#[test]
fn the_report_of_a_comparison_shows_every_pair_of_models() {
    let scratch = Scratch::new("report-compare");
    let lists = compare_lists(0x5E, 200, 3);
    let input = scratch.write("three.ndjson", &ndjson(&lists));
    let output = scratch.path("three.out").display().to_string();
    let report = scratch.path("three.html").display().to_string();
    run_ok(&["compare", input.as_str(), "--models", "a,b,c", "-q", "-o", output.as_str(), "--report", report.as_str()]);
    let summary = summary_of(&output);
    let html = std::fs::read_to_string(&report).expect("the report");
    assert!(html.contains("data-report-kind=\"comparison\""));
    assert_self_contained(&html);
    for model in summary["models"].as_array().expect("models") {
        let row = segment(&html, &format!("<tr data-model=\"{}\"", model["model"].as_str().expect("name")), "</tr>");
        let mut expected = model.clone();
        expected["lists"] = summary["lists"].clone();
        expected["pairs"] = summary["pairs"].clone();
        assert_row("model", row, &expected, &HEADLINE);
    }
    let pairs = summary["comparisons"].as_array().expect("comparisons");
    assert_eq!(pairs.len(), 3);
    for pair in pairs {
        let key = format!("<tr data-pair=\"{}|{}\"", pair["a"].as_str().expect("a"), pair["b"].as_str().expect("b"));
        let names = [
            "loss_difference",
            "loss_difference_ci",
            "loss_p_value",
            "loss_p_value_holm",
            "accuracy_difference",
            "accuracy_difference_ci",
            "accuracy_p_value",
            "accuracy_p_value_holm",
            "lists_a_better",
            "lists_b_better",
            "lists_tied",
        ];
        assert_row("pair", segment(&html, &key, "</tr>"), pair, &names);
    }
    let charts = assert_charts(&html);
    assert_eq!(charts, ["comparison-accuracy", "comparison-loss", "wins", "length"]);
    let accuracy = segment(&html, "data-chart=\"comparison-accuracy\"", "</figure>");
    assert_eq!(accuracy.matches("class=\"mark interval\"").count(), 3);
    // A `/v1/compare` answer: the same figures with no run.
    let mut answer = summary.clone();
    for extra in ["lines_failed", "totals", "run"] {
        answer.as_object_mut().expect("object").remove(extra);
    }
    let answer = scratch.write("answer.json", serde_json::to_string_pretty(&answer).expect("JSON").as_bytes());
    let html = String::from_utf8(run_ok(&["report", answer.as_str()])).expect("UTF-8");
    let key = "<tr data-pair=\"a|c\"";
    assert_row("answer", segment(&html, key, "</tr>"), &pairs[1], &["accuracy_difference_ci", "loss_p_value_holm"]);
}

#[test]
fn several_evaluations_of_the_same_lists_are_compared_as_diff_compares_them() {
    let scratch = Scratch::new("report-several");
    let lists = compare_lists(0xD7, 150, 2);
    let outputs: Vec<String> = (0..2)
        .map(|j| {
            let native = model_lists(&lists, j);
            let input = scratch.write(&format!("m{j}.ndjson"), &ndjson(&native));
            let model = format!("rm-{j}");
            let flags = ["--model", model.as_str(), "--calibration-bins", "5", "--quiet"];
            scratch.write(&format!("m{j}.out"), &run_ok(&[&["eval", input.as_str()], flags.as_slice()].concat()))
        })
        .collect();
    let diffed = ndjson_values(&run_ok(&["diff", &outputs[0], &outputs[1]])).pop().expect("summary")["summary"].clone();
    let html = String::from_utf8(run_ok(&["report", &outputs[0], &outputs[1]])).expect("UTF-8");
    assert!(html.contains("data-report-kind=\"comparison\""));
    let pair = &diffed["comparisons"][0];
    let names =
        ["loss_difference", "loss_difference_ci", "accuracy_difference_ci", "accuracy_p_value_holm", "lists_tied"];
    assert_row("pair", segment(&html, "<tr data-pair=\"rm-0|rm-1\"", "</tr>"), pair, &names);
    // Each model's own figures follow the comparison: two reliability diagrams.
    assert_eq!(html.matches("data-chart=\"reliability\"").count(), 2);
    assert_charts(&html);
    // Not the same lists, a comparison among them, the same output twice: refused.
    let fewer = scratch.write("fewer.out", &{
        let bytes = std::fs::read(&outputs[1]).expect("output");
        let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').filter(|line| !line.is_empty()).collect();
        let mut kept = Vec::new();
        for line in &lines[1..] {
            kept.extend_from_slice(line);
            kept.push(b'\n');
        }
        kept
    });
    refused(&["report", &outputs[0], &fewer], &["fewer.out"]);
    let compared = scratch.write("compared.out", &run_ok(&["diff", &outputs[0], &outputs[1]]));
    refused(&["report", &outputs[0], &compared], &["compared.out", "comparison"]);
    refused(&["report", &outputs[0], &outputs[0]], &["m0.out", "one output"]);
}

#[test]
fn refusals_exit_2_naming_the_input_and_leave_no_file() {
    let scratch = Scratch::new("report-refusals");
    let input = scratch.write("lists.ndjson", &ndjson(&grouped_lists(10)));
    let output = scratch.write("lists.out", &run_ok(&["eval", input.as_str(), "--quiet"]));
    let empty = scratch.write("empty.out", b"\n\n");
    let cut = scratch.write("cut.out", &std::fs::read(&output).expect("output")[..200]);
    let target = scratch.path("report.html").display().to_string();
    refused(&["report", &empty, "-o", &target], &["empty.out", "empty"]);
    refused(&["report", &cut, "-o", &target], &["cut.out", "did its run finish"]);
    refused(&["report", &input, "-o", &target], &["lists.ndjson"]);
    refused(&["report", &scratch.path("absent.out").display().to_string(), "-o", &target], &["absent.out"]);
    refused(&["report", &output, "-o", &output], &["is the input file"]);
    // `--report` onto the results' own file, or onto the input.
    let results = scratch.path("results.out").display().to_string();
    refused(&["eval", &input, "-q", "-o", &results, "--report", &results], &["--report", "results.out"]);
    refused(&["eval", &input, "-q", "-o", &results, "--report", &input], &["is the input file"]);
    let left: Vec<String> = std::fs::read_dir(scratch.path(""))
        .expect("scratch")
        .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("report") || name.contains("results") || name.contains("prefeval-tmp"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    // The input is untouched by the refusals.
    assert_eq!(std::fs::read(&input).expect("input"), ndjson(&grouped_lists(10)));
}

#[test]
fn the_largest_report_a_run_can_ask_for_stays_small() {
    // 10,000 groups (the run's limit), 100 bins and 1,000 disagreements: the tables are capped and
    // the charts aggregate, so the page stays under 2 MB.
    let scratch = Scratch::new("report-large");
    let lists: Vec<Value> = (0..10_000)
        .map(|index| {
            let items: Vec<Value> = (0..3)
                .map(|k| json!({"reward": ((index * 7 + k * 13) % 23) as f64 / 5.0, "length": (index + k * 3) % 29}))
                .collect();
            json!({"id": index, "group": format!("g{index}"), "items": items})
        })
        .collect();
    let input = scratch.write("large.ndjson", &ndjson(&lists));
    let output = scratch.path("large.out").display().to_string();
    let report = scratch.path("large.html").display().to_string();
    let flags = ["--calibration-bins", "100", "--top-disagreements", "1000", "-q"];
    run_ok(&[&["eval", input.as_str(), "-o", output.as_str(), "--report", report.as_str()], flags.as_slice()].concat());
    let html = std::fs::read_to_string(&report).expect("the report");
    assert!(html.len() < 2_000_000, "{} bytes", html.len());
    assert_eq!(html.matches("<tr data-group=").count(), 1000);
    assert!(html.contains("of 10000"));
    assert_charts(&html);
}

/// Whether process `pid` catches SIGINT yet (bit 2 of `SigCgt` in /proc/PID/status).
fn catches_sigint(pid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let caught = status.lines().find_map(|line| line.strip_prefix("SigCgt:")).unwrap_or("0");
    u64::from_str_radix(caught.trim(), 16).is_ok_and(|mask| mask & 0x2 != 0)
}

#[test]
fn sigint_while_reading_stdin_writes_nothing_and_says_so() {
    let scratch = Scratch::new("report-sigint");
    let target = scratch.path("report.html");
    let mut child = Command::new(env!("CARGO_BIN_EXE_prefeval"))
        .args(["report", "-", "-o", target.to_str().expect("UTF-8 path")])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("prefeval starts");
    let stdin = child.stdin.take();
    let started = std::time::Instant::now();
    while !catches_sigint(child.id()) {
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "SIGINT is never caught");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let sent = Command::new("kill").args(["-s", "INT", &child.id().to_string()]).status().expect("kill runs");
    assert!(sent.success());
    // Stdin stays open: only the signal can end the run; bounded, and killed if it does not.
    let waited = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waits") {
            break status;
        }
        if waited.elapsed() > std::time::Duration::from_secs(20) {
            let _ = child.kill();
            panic!("prefeval report did not end on SIGINT");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    drop(stdin);
    let mut message = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut message).expect("stderr");
    assert_eq!(status.code(), Some(130), "{message}");
    assert!(message.contains("prefeval report: interrupted by SIGINT; nothing written"), "{message}");
    let left: Vec<_> = std::fs::read_dir(scratch.path("")).expect("scratch").collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
