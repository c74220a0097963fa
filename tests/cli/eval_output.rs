//! `prefeval eval` loses no data: an output that is the input is refused, a file output appears
//! whole or not at all (SIGINT and SIGTERM included), and a JSON batch over the body limit is one
//! error, not an error per line.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::datasets::{Scratch, native_dataset, ndjson, ndjson_values, prefeval, stderr};
use crate::helpers::gzip;

/// The names in `dir`, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("readable folder")
        .map(|entry| entry.expect("an entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn an_output_that_is_the_input_is_refused_and_the_input_left_intact() {
    let scratch = Scratch::new("output-is-input");
    let body = ndjson(&native_dataset(53, 20, 2..6));
    let input = scratch.write("data.ndjson", &body);
    std::os::unix::fs::symlink(&input, scratch.path("link.ndjson")).expect("a symlink");
    std::fs::hard_link(&input, scratch.path("hard.ndjson")).expect("a hard link");
    let link = scratch.path("link.ndjson").to_str().unwrap().to_string();
    let hard = scratch.path("hard.ndjson").to_str().unwrap().to_string();
    for (what, input_arg, output) in [
        ("the same path", input.as_str(), input.as_str()),
        ("a symlink to the input", input.as_str(), link.as_str()),
        ("the input through a symlink", link.as_str(), input.as_str()),
        ("a hard link to the input", input.as_str(), hard.as_str()),
    ] {
        let run = prefeval(&["eval", input_arg, "-o", output], None);
        assert_eq!(run.status.code(), Some(2), "{what}: {}", stderr(&run));
        let message = stderr(&run);
        assert_eq!(message.lines().count(), 1, "{what}: one line: {message}");
        assert!(message.contains("is the input file"), "{what}: {message}");
        assert_eq!(std::fs::read(&input).expect("the input"), body, "{what}: the input is intact");
    }
    // Stdin redirected from the file is the file too.
    let stdin = std::fs::File::open(&input).expect("the input");
    let run = Command::new(env!("CARGO_BIN_EXE_prefeval"))
        .args(["eval", "-", "-o", &input])
        .stdin(stdin)
        .output()
        .expect("prefeval runs");
    assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
    assert_eq!(std::fs::read(&input).expect("the input"), body, "stdin: the input is intact");
    assert_eq!(names_in(&scratch.0), ["data.ndjson", "hard.ndjson", "link.ndjson"], "no temporary left");
}

#[test]
fn a_file_output_replaces_the_target_only_once_complete_and_follows_a_symlink() {
    let scratch = Scratch::new("output-replaced");
    let input = scratch.write("data.ndjson", &ndjson(&native_dataset(59, 30, 2..6)));
    let target = scratch.write("out.ndjson", b"an older result\n");
    std::os::unix::fs::symlink(&target, scratch.path("latest")).expect("a symlink");
    let run = prefeval(&["eval", &input, "-o", scratch.path("latest").to_str().unwrap()], None);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    assert!(std::fs::symlink_metadata(scratch.path("latest")).expect("the link").is_symlink(), "the link stays");
    let lines = ndjson_values(&std::fs::read(&target).expect("the output"));
    assert_eq!(lines.len(), 31, "the results and the summary, in the file the link names");
    assert_eq!(names_in(&scratch.0), ["data.ndjson", "latest", "out.ndjson"], "no temporary left");

    // A run that fails (an invalid batch) leaves the older output as it was.
    let batch = scratch.write("batch.json", br#"{"lists": [{"items": [{"reward": 1.0}]}]}"#);
    let run = prefeval(&["eval", &batch, "-o", &target], None);
    assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
    assert_eq!(ndjson_values(&std::fs::read(&target).expect("the output")).len(), 31, "untouched");
    assert_eq!(names_in(&scratch.0), ["batch.json", "data.ndjson", "latest", "out.ndjson"]);
}

/// Waits at most `limit` for `child` to exit; kills it and fails past that.
fn wait_bounded(child: &mut Child, limit: Duration) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("the child's status") {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("prefeval did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits at most 20 s for `path` to exist.
fn wait_for_file(path: &Path, child: &mut Child) {
    let start = Instant::now();
    while !path.exists() {
        if let Some(status) = child.try_wait().expect("the child's status") {
            panic!("prefeval exited ({status}) before {} appeared", path.display());
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn send(signal: &str, child: &Child) {
    let sent = Command::new("kill").args(["-s", signal, &child.id().to_string()]).status().expect("kill runs");
    assert!(sent.success(), "kill -s {signal}");
}

/// `prefeval eval INPUT -o out.ndjson`, stopped by `signal` once its temporary exists; `feed`
/// writes its stdin (and keeps it open until the end) when the input is `-`.
fn interrupted(scratch: &Scratch, input: &str, signal: &str, feed: Option<&[u8]>) -> (ExitStatus, String) {
    interrupted_run(scratch, &["eval", input], signal, feed)
}

/// `prefeval COMMAND... --workers 1 -o out.ndjson`, stopped as `interrupted` says.
fn interrupted_run(scratch: &Scratch, command: &[&str], signal: &str, feed: Option<&[u8]>) -> (ExitStatus, String) {
    let target = scratch.path("out.ndjson");
    let mut child = Command::new(env!("CARGO_BIN_EXE_prefeval"))
        .args(command)
        .args(["--workers", "1", "-o", target.to_str().unwrap()])
        .stdin(if feed.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("prefeval starts");
    let mut stdin = child.stdin.take();
    if let (Some(pipe), Some(bytes)) = (stdin.as_mut(), feed) {
        pipe.write_all(bytes).expect("prefeval reads its stdin");
    }
    wait_for_file(&scratch.path(&format!(".out.ndjson.prefeval-tmp-{}", child.id())), &mut child);
    send(signal, &child);
    let status = wait_bounded(&mut child, Duration::from_secs(20));
    drop(stdin);
    let mut message = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut message).expect("stderr");
    (status, message)
}

#[test]
fn sigint_and_sigterm_leave_no_output_and_say_so() {
    let scratch = Scratch::new("signals");
    // About 30 MB of lists of 12 items: seconds of work with every pair written, on any machine.
    let lines: Vec<String> = native_dataset(61, 500, 12..13).iter().map(Value::to_string).collect();
    let body = ndjson(&lines).repeat(110);
    let input = scratch.write("big.ndjson", &body);

    let (status, message) = interrupted(&scratch, &input, "INT", None);
    assert_eq!(status.code(), Some(130), "SIGINT: {status}: {message}");
    assert_eq!(message.lines().count(), 1, "one line: {message}");
    assert!(message.contains("interrupted by SIGINT") && message.contains("out.ndjson"), "{message}");
    assert_eq!(names_in(&scratch.0), ["big.ndjson"], "no output and no temporary after SIGINT");

    // Stdin still open: the run is blocked reading when the signal comes.
    let (status, message) = interrupted(&scratch, "-", "TERM", Some(&body[..1 << 20]));
    assert_eq!(status.code(), Some(143), "SIGTERM: {status}: {message}");
    assert_eq!(message.lines().count(), 1, "one line: {message}");
    assert!(message.contains("interrupted by SIGTERM") && message.contains("nothing written"), "{message}");
    assert_eq!(names_in(&scratch.0), ["big.ndjson"], "no output and no temporary after SIGTERM");

    // With `--report`: neither the results nor the report, nor a temporary of either.
    let report = scratch.path("report.html").display().to_string();
    let (status, message) =
        interrupted_run(&scratch, &["eval", input.as_str(), "--report", report.as_str()], "INT", None);
    assert_eq!(status.code(), Some(130), "SIGINT with --report: {status}: {message}");
    assert!(message.contains("prefeval eval: interrupted by SIGINT"), "{message}");
    assert_eq!(names_in(&scratch.0), ["big.ndjson"], "no output, no report and no temporary after SIGINT");
}

#[test]
fn sigint_and_sigterm_stop_a_comparison_and_leave_no_output() {
    let scratch = Scratch::new("signals-compare");
    // About 30 MB of lists of 12 items scored by 4 models: seconds of work on any machine.
    let lines: Vec<String> = (0..500)
        .map(|i| {
            let items: Vec<Value> = (0..12)
                .map(|k| json!({"id": format!("r{k}"), "rewards": [k as f64 * 0.25, (i + k) as f64 % 7.0, -(k as f64), 0.5]}))
                .collect();
            json!({"id": format!("p{i}"), "items": items}).to_string()
        })
        .collect();
    let body = ndjson(&lines).repeat(110);
    let input = scratch.write("big.ndjson", &body);
    let compare = ["compare", input.as_str(), "--models", "a,b,c,d"];

    let (status, message) = interrupted_run(&scratch, &compare, "INT", None);
    assert_eq!(status.code(), Some(130), "SIGINT: {status}: {message}");
    assert!(message.contains("interrupted by SIGINT") && message.contains("out.ndjson"), "{message}");
    assert_eq!(names_in(&scratch.0), ["big.ndjson"], "no output and no temporary after SIGINT");

    let (status, message) =
        interrupted_run(&scratch, &["compare", "-", "--models", "a,b,c,d"], "TERM", Some(&body[..1 << 20]));
    assert_eq!(status.code(), Some(143), "SIGTERM: {status}: {message}");
    assert!(message.contains("interrupted by SIGTERM"), "{message}");
    assert_eq!(names_in(&scratch.0), ["big.ndjson"], "no output and no temporary after SIGTERM");
}

#[test]
fn sigint_and_sigterm_stop_a_compressed_input_too() {
    // The input is decoded on a thread of its own: a signal must end the run all the same, whether
    // that thread is decoding a file or blocked on a stdin left open.
    let scratch = Scratch::new("signals-compressed");
    let lines: Vec<String> = native_dataset(62, 500, 12..13).iter().map(Value::to_string).collect();
    let body = gzip(&ndjson(&lines).repeat(110));
    let input = scratch.write("big.ndjson.gz", &body);

    let (status, message) = interrupted(&scratch, &input, "INT", None);
    assert_eq!(status.code(), Some(130), "SIGINT: {status}: {message}");
    assert!(message.contains("interrupted by SIGINT"), "{message}");
    assert_eq!(names_in(&scratch.0), ["big.ndjson.gz"], "no output and no temporary after SIGINT");

    let (status, message) = interrupted(&scratch, "-", "TERM", Some(&body[..body.len() / 2]));
    assert_eq!(status.code(), Some(143), "SIGTERM: {status}: {message}");
    assert!(message.contains("interrupted by SIGTERM"), "{message}");
    assert_eq!(names_in(&scratch.0), ["big.ndjson.gz"], "no output and no temporary after SIGTERM");
}

#[test]
fn a_pretty_printed_batch_over_the_body_limit_is_one_error() {
    let scratch = Scratch::new("batch-too-large");
    let batch = json!({"lists": native_dataset(67, 100, 3..6)});
    let pretty = serde_json::to_vec_pretty(&batch).expect("JSON");
    assert!(pretty.len() > 8_000 && pretty.iter().filter(|&&b| b == b'\n').count() > 1000, "many lines");
    let file = scratch.write("batch.json", &pretty);
    let flag = prefeval(&["eval", &file, "--max-body-bytes", "4000"], None);
    let env = Command::new(env!("CARGO_BIN_EXE_prefeval"))
        .args(["eval", &file])
        .env("PREFEVAL_MAX_BODY_BYTES", "4000")
        .output()
        .expect("prefeval runs");
    for (what, run) in [("--max-body-bytes", &flag), ("PREFEVAL_MAX_BODY_BYTES", &env)] {
        assert_eq!(run.status.code(), Some(2), "{what}: {}", stderr(run));
        let message = stderr(run);
        assert_eq!(message.lines().count(), 1, "{what}: one line: {message}");
        assert!(message.contains("JSON batch larger than the limit of 4000 bytes"), "{what}: {message}");
        assert!(message.contains("--max-body-bytes") && message.contains("PREFEVAL_MAX_BODY_BYTES"), "{message}");
        assert!(run.stdout.is_empty(), "{what}: nothing on stdout");
    }
    let enough =
        prefeval(&["eval", &file, "--max-body-bytes", &pretty.len().to_string(), "--include-pairs=false"], None);
    assert_eq!(enough.status.code(), Some(0), "{}", stderr(&enough));
    assert_eq!(ndjson_values(&enough.stdout).len(), 101, "every list and the summary");
}
