//! `prefeval eval` as a person and a script meet it: the summary's `run` (the model label from
//! `--model` or a batch file, the options, the input's fingerprint), no pairs unless asked for,
//! `--results errors`, and the human summary it ends with on stderr (not with `--quiet`).

use serde_json::{Value, json};

use crate::datasets::{Scratch, input_of, native_dataset, ndjson, ndjson_values, prefeval, stderr};

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn summary_of(stdout: &[u8]) -> Value {
    ndjson_values(stdout).pop().expect("a summary line")["summary"].clone()
}

#[test]
fn the_run_names_the_model_the_options_and_the_input_of_an_ndjson_file_or_a_batch_file() {
    let scratch = Scratch::new("eval-run");
    let lists = native_dataset(151, 5, 2..6);
    let body = ndjson(&lists);
    let file = scratch.write("data.ndjson", &body);
    let output = prefeval(&["eval", &file, "--quiet"], None);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        summary_of(&output.stdout)["run"],
        json!({"prefeval": VERSION, "normalization": "ordered_pairs", "beta": 1.0, "format": "native",
            "confidence": 0.95, "input": input_of(&body)})
    );
    let flags = ["--model", "rm-7b", "--beta", "0.5", "--normalization", "sum", "--confidence", "0.9"];
    let output = prefeval(&[&["eval", file.as_str(), "--quiet"][..], &flags].concat(), None);
    assert_eq!(
        summary_of(&output.stdout)["run"],
        json!({"prefeval": VERSION, "model": "rm-7b", "normalization": "sum", "beta": 0.5, "format": "native",
            "confidence": 0.9, "input": input_of(&body)})
    );

    // A batch file: its own model and options, `--model` and the flags over them.
    let batch = json!({"model": "file-model", "options": {"beta": 3}, "lists": lists}).to_string();
    let batch_file = scratch.write("batch.json", batch.as_bytes());
    let output = prefeval(&["eval", &batch_file, "--quiet"], None);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let lines = ndjson_values(&output.stdout);
    assert!(lines[0].get("pairs").is_none(), "a batch file given to eval returns no pairs by default: {}", lines[0]);
    assert_eq!(
        lines[5]["summary"]["run"],
        json!({"prefeval": VERSION, "model": "file-model", "normalization": "ordered_pairs", "beta": 3.0,
            "format": "native", "confidence": 0.95, "input": input_of(batch.as_bytes())})
    );
    let output = prefeval(&["eval", &batch_file, "--quiet", "--model", "flag-model", "--beta", "2"], None);
    let run = &summary_of(&output.stdout)["run"];
    assert_eq!((&run["model"], &run["beta"]), (&json!("flag-model"), &json!(2.0)), "{run}");
    let output = prefeval(&["eval", &batch_file, "--quiet", "--include-pairs"], None);
    assert!(ndjson_values(&output.stdout)[0]["pairs"].is_array(), "pairs when asked for");
}

#[test]
fn results_errors_writes_the_error_lines_and_the_summary_only() {
    let scratch = Scratch::new("eval-results");
    let mut lines: Vec<String> = native_dataset(157, 6, 2..5).iter().map(Value::to_string).collect();
    lines[3] = r#"{"id":"bad","items":[{"reward":1.0}]}"#.into();
    let file = scratch.write("data.ndjson", &ndjson(&lines));
    let all = prefeval(&["eval", &file, "--quiet"], None);
    let errors = prefeval(&["eval", &file, "--quiet", "--results", "errors"], None);
    assert_eq!(errors.status.code(), Some(1), "a line failed: {}", stderr(&errors));
    let (all, errors) = (ndjson_values(&all.stdout), ndjson_values(&errors.stdout));
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0], all[3], "the error line of line 4");
    assert_eq!(errors[1], all[6], "the same summary");

    let batch = json!({"lists": native_dataset(163, 4, 2..5)}).to_string();
    let batch_file = scratch.write("batch.json", batch.as_bytes());
    let output = prefeval(&["eval", &batch_file, "--quiet", "--results=errors"], None);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let lines = ndjson_values(&output.stdout);
    assert_eq!(lines.len(), 1, "only the summary: {lines:?}");
    assert_eq!(lines[0]["summary"]["lists"], 4);

    let refused = prefeval(&["eval", &file, "--results", "some"], None);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("--results"), "{}", stderr(&refused));
}

#[test]
fn eval_ends_with_a_human_summary_on_stderr_unless_quiet_and_stdout_is_the_same() {
    let scratch = Scratch::new("eval-human");
    let mut lines: Vec<String> = native_dataset(167, 1200, 2..6).iter().map(Value::to_string).collect();
    lines[7] = "{".into();
    let file = scratch.write("data.ndjson", &ndjson(&lines));
    let out = scratch.path("data.out").to_str().expect("a path").to_string();
    let spoken = prefeval(&["eval", &file, "-o", &out], None);
    assert_eq!(spoken.status.code(), Some(1), "{}", stderr(&spoken));
    assert!(spoken.stdout.is_empty(), "the results went to the file");
    let written = std::fs::read(&out).expect("the output file");
    let summary = summary_of(&written);
    let text = stderr(&spoken);
    let expected_start = format!("1,199 lists, {} pairs · loss ", grouped(summary["pairs"].as_u64().unwrap_or(0)));
    assert!(text.starts_with(&expected_start), "{text}");
    let four = |value: &Value| format!("{:.4}", value.as_f64().unwrap_or(f64::NAN));
    let half_width = |ci: &Value| (ci[1].as_f64().unwrap_or(0.0) - ci[0].as_f64().unwrap_or(0.0)) / 2.0;
    for piece in [
        format!(
            "loss {} ± {:.4} (chance {})",
            four(&summary["loss"]),
            half_width(&summary["loss_ci"]),
            four(&summary["chance_loss"])
        ),
        format!(
            "accuracy {} [{}, {}]",
            four(&summary["accuracy"]),
            four(&summary["accuracy_ci"][0]),
            four(&summary["accuracy_ci"][1])
        ),
        format!("τ-b {}", four(&summary["kendall_tau"])),
        "1 line failed".to_string(),
        " MB/s".to_string(),
        "prefeval eval: 1 of 1200 lines failed; the first is line 8".to_string(),
    ] {
        assert!(text.contains(&piece), "{piece:?} in {text}");
    }
    for line in text.lines() {
        assert!(line.chars().count() <= 80, "{} columns: {line}", line.chars().count());
    }

    let quiet = prefeval(&["eval", &file, "--quiet"], None);
    assert_eq!(stderr(&quiet), "prefeval eval: 1 of 1200 lines failed; the first is line 8\n", "only the failure");
    let spoken = prefeval(&["eval", &file], None);
    assert_eq!(quiet.stdout, spoken.stdout, "stdout is the same with or without the human summary");
    assert_eq!(spoken.stdout, written);
}

fn grouped(count: u64) -> String {
    let digits = count.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}
