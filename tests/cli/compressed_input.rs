//! `prefeval eval` on gzip and zstd input, told by its first bytes whatever its name, from a file
//! or stdin: the same output as the plain input, its fingerprint of the bytes as read, the same
//! bytes as the stream given them with `Content-Encoding`; corrupt input is one clear error.

use serde_json::{Value, json};

use crate::datasets::{Scratch, input_of, native_dataset, ndjson, prefeval, stderr};
use crate::helpers::{BinaryServer, Framing, Raw, gzip, zstd};

/// The output with its summary's `run.input` taken out, and that `input`.
fn split_input(output: &[u8]) -> (Vec<Value>, Value) {
    let mut lines: Vec<Value> =
        std::str::from_utf8(output).unwrap().lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let summary = lines.last_mut().and_then(|line| line.get_mut("summary")).expect("a summary");
    let input = summary["run"].as_object_mut().unwrap().remove("input").expect("summary.run.input");
    (lines, input)
}

#[test]
fn eval_reads_gzip_and_zstd_files_and_stdin_as_the_plain_input() {
    let scratch = Scratch::new("compressed-input");
    let lists = native_dataset(21, 600, 2..9);
    let plain = ndjson(&lists);
    let batch = serde_json::to_vec(&json!({"lists": lists[..50]})).unwrap();
    for (body, what) in [(&plain, "NDJSON"), (&batch, "a JSON batch")] {
        let file = scratch.write("plain", body);
        let expected = prefeval(&["eval", &file], None);
        assert_eq!(expected.status.code(), Some(0), "{}", stderr(&expected));
        let (expected_lines, _) = split_input(&expected.stdout);
        for (name, compressed) in [
            ("data.ndjson.gz", gzip(body)),
            ("data.zst", zstd(body)),
            ("named-as-plain.ndjson", zstd(body)),
            ("two-members.gz", [gzip(&body[..body.len() / 2]), gzip(&body[body.len() / 2..])].concat()),
        ] {
            let path = scratch.write(name, &compressed);
            let from_file = prefeval(&["eval", &path], None);
            let from_stdin = prefeval(&["eval", "-"], Some(&compressed));
            for (door, output) in [("file", &from_file), ("stdin", &from_stdin)] {
                assert_eq!(output.status.code(), Some(0), "{what}, {name} from {door}: {}", stderr(output));
                let (lines, input) = split_input(&output.stdout);
                assert_eq!(lines, expected_lines, "{what}, {name} from {door}: as the plain input");
                assert_eq!(input, input_of(&compressed), "{what}, {name} from {door}: the bytes as read");
            }
        }
    }
}

#[test]
fn eval_of_a_compressed_file_is_the_stream_of_the_same_bytes_byte_for_byte() {
    let server = BinaryServer::start(&[]);
    let scratch = Scratch::new("compressed-stream");
    let body = ndjson(&native_dataset(22, 300, 2..7));
    for (encoding, compressed) in [("gzip", gzip(&body)), ("zstd", zstd(&body))] {
        let path = scratch.write("data", &compressed);
        let output = prefeval(&["eval", &path], None);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let headers = [("Content-Type", "application/x-ndjson"), ("Content-Encoding", encoding)];
        let answer = Raw::exchange(server.addr, "POST", "/v1/evaluate/stream", &headers, &compressed, Framing::Length);
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert!(answer.body == output.stdout, "{encoding}: eval and the stream differ");
    }
}

#[test]
fn corrupt_compressed_input_is_one_error_naming_it() {
    let scratch = Scratch::new("corrupt-input");
    let body = ndjson(&native_dataset(23, 3000, 2..7));
    let missing = prefeval(&["eval", &scratch.path("missing").to_string_lossy()], None);
    let unreadable = missing.status.code();
    assert_ne!(unreadable, Some(0));
    let gz = gzip(&body);
    let zst = zstd(&body);
    let mut flipped = gz.clone();
    let middle = flipped.len() / 2;
    flipped[middle..middle + 64].fill(0x55);
    for (name, bytes, cause) in [
        ("truncated.gz", gz[..gz.len() - 100].to_vec(), "not valid gzip"),
        ("corrupt.gz", flipped, "not valid gzip"),
        ("truncated.zst", zst[..zst.len() / 2].to_vec(), "not valid zstd"),
        ("header-only.gz", gz[..10].to_vec(), "not valid gzip"),
    ] {
        let path = scratch.write(name, &bytes);
        for (door, output) in
            [("file", prefeval(&["eval", &path], None)), ("stdin", prefeval(&["eval", "-"], Some(&bytes)))]
        {
            let message = stderr(&output);
            assert_eq!(output.status.code(), unreadable, "{name} from {door}: {message}");
            let named = if door == "file" { path.as_str() } else { "stdin" };
            assert!(message.contains(&format!("{named} is {cause}")), "{name} from {door}: {message}");
            assert!(!String::from_utf8_lossy(&output.stdout).contains("\"summary\""), "{name}: no summary");
        }
    }
}
