//! The README's "Your data as it is": each export in `examples/exports/` (real HH-RLHF rows in the
//! shapes HH-RLHF, UltraFeedback-binarized and RewardBench export them, text columns, integer ids
//! and compressed copies included) read as it is, through `prefeval eval` and the stream with the
//! README's own flags and query. Each gives its committed output, the stream answers the same
//! bytes, and the figures are those of the same pairs stripped and renamed to native by hand.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::datasets::{Scratch, assert_same_bytes, ndjson, ndjson_values, prefeval, stderr};
use crate::helpers::{BinaryServer, Framing, Raw};

/// One export as the README evaluates it.
struct Export {
    /// The file under `examples/exports/`, as the README reads it.
    file: &'static str,
    /// How the body is sent to the stream (`Content-Encoding`), `None` for plain.
    encoding: Option<&'static str>,
    /// The data's names of the list id, the chosen score, the rejected score and the group.
    id: Option<&'static str>,
    chosen: &'static str,
    rejected: &'static str,
    group: Option<&'static str>,
    /// The committed output of `prefeval eval` on `file` with the flags below.
    output: &'static str,
}

const EXPORTS: [Export; 3] = [
    Export {
        file: "hh-rlhf.jsonl.gz",
        encoding: Some("gzip"),
        id: None,
        chosen: "chosen_score",
        rejected: "rejected_score",
        group: None,
        output: "hh-rlhf.out.ndjson",
    },
    Export {
        file: "ultrafeedback.jsonl.zst",
        encoding: Some("zstd"),
        id: Some("prompt_id"),
        chosen: "score_chosen",
        rejected: "score_rejected",
        group: None,
        output: "ultrafeedback.out.ndjson",
    },
    Export {
        file: "rewardbench.jsonl",
        encoding: None,
        id: None,
        chosen: "scores_chosen",
        rejected: "scores_rejected",
        group: Some("subset"),
        output: "rewardbench.out.ndjson",
    },
];

impl Export {
    fn path(&self) -> PathBuf {
        exports_dir().join(self.file)
    }

    /// `--fields`' value and the stream's `fields=`: the format's names to the data's.
    fn fields(&self) -> String {
        let mut fields = format!("chosen_reward:{},rejected_reward:{}", self.chosen, self.rejected);
        if let Some(id) = self.id {
            fields += &format!(",id:{id}");
        }
        if let Some(group) = self.group {
            fields += &format!(",group:{group}");
        }
        fields
    }

    fn eval_args(&self) -> Vec<String> {
        let path = self.path();
        let path = path.to_str().expect("a UTF-8 path");
        ["eval", path, "--format", "pairs", "--fields", &self.fields(), "--unknown-fields", "ignore"]
            .map(String::from)
            .to_vec()
    }

    /// The rows, decompressed.
    fn rows(&self) -> Vec<Value> {
        let raw = std::fs::read(self.path()).expect("a committed export");
        let mut plain = Vec::new();
        match self.encoding {
            Some("gzip") => {
                flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut plain).expect("gzip");
            }
            Some(_) => plain = zstd::stream::decode_all(&raw[..]).expect("zstd"),
            None => plain = raw,
        }
        ndjson_values(&plain)
    }

    /// Each row stripped to what the native format reads, under its names: the list's id (the
    /// `id` column as it is, or the mapped one), its group when mapped, and two items, the chosen
    /// one first.
    fn stripped(&self) -> Vec<Value> {
        self.rows()
            .iter()
            .map(|row| {
                let items = json!([{"id": "chosen", "reward": row[self.chosen]}, {"id": "rejected", "reward": row[self.rejected]}]);
                let mut list = json!({"items": items});
                if let Some(id) = row.get(self.id.unwrap_or("id")) {
                    list["id"] = id.clone();
                }
                if let Some(group) = self.group {
                    list["group"] = row[group].clone();
                }
                list
            })
            .collect()
    }
}

fn exports_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join("exports")
}

/// The output's lines with the summary's `run` taken out (it names the format and the input, which
/// differ between an export and its stripped copy by design).
fn without_run(output: &[u8]) -> Vec<Value> {
    let mut lines = ndjson_values(output);
    if let Some(summary) = lines.last_mut().and_then(|line| line.get_mut("summary")).and_then(Value::as_object_mut) {
        summary.remove("run");
    }
    lines
}

#[test]
fn each_export_as_it_is_gives_its_committed_output() {
    for export in &EXPORTS {
        let args = export.eval_args();
        let output = prefeval(&args.iter().map(String::as_str).collect::<Vec<_>>(), None);
        assert_eq!(output.status.code(), Some(0), "{}: {}", export.file, stderr(&output));
        let expected = std::fs::read(exports_dir().join(export.output)).expect("a committed output");
        assert_same_bytes(&format!("examples/exports/{} is stale", export.output), &expected, &output.stdout);
        let lines = ndjson_values(&output.stdout);
        assert_eq!(lines.len(), 101, "{}: 100 rows and the summary", export.file);
        assert_eq!(lines[100]["summary"]["lines_failed"], 0, "{}", export.file);
    }
}

#[test]
fn the_stream_answers_each_export_as_eval_does_byte_for_byte() {
    let server = BinaryServer::start(&[]);
    for export in &EXPORTS {
        let args = export.eval_args();
        let output = prefeval(&args.iter().map(String::as_str).collect::<Vec<_>>(), None);
        assert_eq!(output.status.code(), Some(0), "{}: {}", export.file, stderr(&output));
        let body = std::fs::read(export.path()).expect("a committed export");
        let mut headers = vec![("Content-Type", "application/x-ndjson")];
        if let Some(encoding) = export.encoding {
            headers.push(("Content-Encoding", encoding));
        }
        let path = format!("/v1/evaluate/stream?format=pairs&fields={}&unknown_fields=ignore", export.fields());
        let answer = Raw::exchange(server.addr, "POST", &path, &headers, &body, Framing::Length);
        assert_eq!(answer.status, 200, "{}: {}", export.file, answer.text());
        assert!(answer.body == output.stdout, "{}: the stream and eval differ", export.file);
    }
}

#[test]
fn each_export_gives_the_figures_of_its_pairs_stripped_to_native() {
    let scratch = Scratch::new("exports-stripped");
    for export in &EXPORTS {
        let args = export.eval_args();
        let as_it_is = prefeval(&args.iter().map(String::as_str).collect::<Vec<_>>(), None);
        assert_eq!(as_it_is.status.code(), Some(0), "{}: {}", export.file, stderr(&as_it_is));
        let stripped = scratch.write(export.output, &ndjson(&export.stripped()));
        let native = prefeval(&["eval", &stripped], None);
        assert_eq!(native.status.code(), Some(0), "{} stripped: {}", export.file, stderr(&native));
        assert_eq!(without_run(&as_it_is.stdout), without_run(&native.stdout), "{}", export.file);
        // Integer ids come back as the integers they were; a mapped group gives per-group figures.
        if export.file.starts_with("rewardbench") {
            let lines = without_run(&as_it_is.stdout);
            assert!(lines[0]["id"].is_u64(), "{}", export.file);
            let groups = lines[100]["summary"]["groups"].as_array().expect("groups by subset");
            let names: Vec<&str> = groups.iter().filter_map(|group| group["group"].as_str()).collect();
            assert_eq!(
                names,
                ["multi-turn", "single-turn"],
                "{}: the subsets in order of first appearance",
                export.file
            );
        }
    }
}

#[test]
fn the_exports_are_what_make_exports_writes() {
    let script = exports_dir().join("make_exports.py");
    match Command::new("python3").arg(&script).arg("--check").output() {
        Ok(output) => assert!(
            output.status.success(),
            "examples/exports/ is not what make_exports.py writes from tests/data/real/: {}",
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("note: python3 is not installed; examples/exports/ was not checked against make_exports.py")
        }
        Err(error) => panic!("python3 does not start: {error}"),
    }
}

#[test]
fn the_readme_shows_the_commands_these_tests_run() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).expect("README.md");
    for export in &EXPORTS {
        let eval = format!(
            "prefeval eval examples/exports/{} --format pairs --unknown-fields ignore \\\n  --fields {}\n",
            export.file,
            export.fields()
        );
        let query = format!("/v1/evaluate/stream?format=pairs&unknown_fields=ignore&fields={}'", export.fields());
        let upload = format!("--data-binary @examples/exports/{}", export.file);
        for shown in [&eval, &query, &upload] {
            assert!(readme.contains(shown.as_str()), "README.md does not show {shown:?}");
        }
        if let Some(encoding) = export.encoding {
            assert!(readme.contains(&format!("-H 'Content-Encoding: {encoding}'")), "{}", export.file);
        }
    }
}
