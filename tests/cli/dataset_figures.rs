//! The dataset-scale figures of a summary (docs/design/math.md, "Dataset-scale figures"): groups
//! with their totals, macro accuracy, calibration with its per-bin sums, the k least probable
//! pairs with their lines, through every door that ends with a summary: the stream, `prefeval
//! eval` of an NDJSON file and of a batch file, and `prefeval merge` of shards. Each figure is
//! pinned by a brute force over the implied pairs written here, and compared with
//! `POST /v1/evaluate`'s. Also the limit of 10,000 groups a run, and what merge refuses.
//!
//! Tolerance: relative 1e-12 (absolute 1e-15 near zero) where a figure is a float sum, computed
//! here in another order or re-added by a merge; counts, ratios of counts and the probabilities of
//! the disagreements (the same margin through the same σ) are compared exactly.

use serde_json::{Value, json};

use crate::datasets::{Doors, Scratch, ndjson, ndjson_values, prefeval, results_and_summary, start, stderr};
use crate::helpers::SplitMix64;

const GROUPS: [&str; 5] = ["math", "code", "chat", "safety", "long \"quoted\" name"];
const BETA: f64 = 0.7;
const BINS: usize = 7;
const TOP: usize = 15;

/// `count` lists of 2–6 items with ids, explicit ranks (ties among them) and rewards on a grid of
/// ½, so that many pairs share a probability; most lists have a group, some none.
fn grouped_lists(seed: u64, count: usize) -> Vec<Value> {
    let mut rng = SplitMix64::new(seed);
    (0..count)
        .map(|index| {
            let n = 2 + rng.below(5) as usize;
            let mut ranks: Vec<u64> = (0..n).map(|_| 1 + rng.below(n as u64)).collect();
            if ranks.iter().all(|&rank| rank == ranks[0]) {
                ranks[0] = if ranks[0] == 1 { 2 } else { 1 };
            }
            let items: Vec<Value> = ranks
                .iter()
                .enumerate()
                .map(|(k, &rank)| {
                    let reward = rng.below(7) as f64 * 0.5 - 1.5;
                    json!({"id": format!("i{k}"), "reward": reward, "rank": rank})
                })
                .collect();
            let mut list = json!({"id": format!("p{index}"), "items": items});
            if rng.below(6) > 0 {
                list["group"] = json!(GROUPS[rng.below(GROUPS.len() as u64) as usize]);
            }
            list
        })
        .collect()
}

/// One implied pair, as the brute force sees it.
struct Pair {
    line: u64,
    preferred: usize,
    other: usize,
    margin: f64,
}

fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 { 1.0 / (1.0 + (-x).exp()) } else { x.exp() / (1.0 + x.exp()) }
}

/// Every implied pair of every list: w ≻ v when w's rank is smaller; margin β·(r_w − r_v).
fn all_pairs(lists: &[Value]) -> Vec<Pair> {
    let mut pairs = Vec::new();
    for (index, list) in lists.iter().enumerate() {
        let items = list["items"].as_array().expect("items");
        for (w, winner) in items.iter().enumerate() {
            for (v, loser) in items.iter().enumerate() {
                if winner["rank"].as_u64() < loser["rank"].as_u64() {
                    let margin = BETA * (winner["reward"].as_f64().unwrap() - loser["reward"].as_f64().unwrap());
                    pairs.push(Pair { line: index as u64 + 1, preferred: w, other: v, margin });
                }
            }
        }
    }
    pairs
}

fn close(what: &str, expected: f64, got: &Value) {
    let got = got.as_f64().unwrap_or_else(|| panic!("{what}: no number in {got}"));
    assert!((got - expected).abs() <= 1e-12 * expected.abs() + 1e-15, "{what}: expected {expected}, got {got}");
}

/// Pins a summary's groups, macro accuracy, calibration and disagreements by brute force.
fn check_against_brute_force(lists: &[Value], summary: &Value) {
    let pairs = all_pairs(lists);
    let score = |margin: f64| {
        if margin > 0.0 {
            1.0
        } else if margin < 0.0 {
            0.0
        } else {
            0.5
        }
    };
    // Groups, in order of first appearance.
    let mut names: Vec<&str> = Vec::new();
    for list in lists {
        if let Some(group) = list["group"].as_str().filter(|group| !names.contains(group)) {
            names.push(group);
        }
    }
    let groups = summary["groups"].as_array().expect("groups");
    assert_eq!(groups.iter().map(|g| g["group"].as_str().unwrap()).collect::<Vec<_>>(), names);
    let mut accuracies = Vec::new();
    for (group, name) in groups.iter().zip(&names) {
        let members: Vec<u64> = (lists.iter().enumerate())
            .filter(|(_, list)| list["group"].as_str() == Some(name))
            .map(|(index, _)| index as u64 + 1)
            .collect();
        let mine: Vec<&Pair> = pairs.iter().filter(|pair| members.contains(&pair.line)).collect();
        let agreeing: f64 = mine.iter().map(|pair| score(pair.margin)).sum();
        assert_eq!(group["lists"], json!(members.len()), "{name}");
        assert_eq!(group["pairs"], json!(mine.len()), "{name}");
        assert_eq!(group["totals"]["lists"], json!(members.len()), "{name}");
        assert_eq!(group["totals"]["agreeing"].as_f64(), Some(agreeing), "{name}");
        close(&format!("{name}: accuracy"), agreeing / mine.len() as f64, &group["accuracy"]);
        accuracies.push(agreeing / mine.len() as f64);
    }
    let macro_accuracy = accuracies.iter().sum::<f64>() / accuracies.len() as f64;
    close("macro_accuracy", macro_accuracy, &summary["macro_accuracy"]);

    // Calibration: q = σ(|d|), y the human's agreement, K bins of width 1/(2K) from ½.
    let scored: Vec<(f64, f64)> = pairs.iter().map(|pair| (sigmoid(pair.margin.abs()), score(pair.margin))).collect();
    let total = scored.len() as f64;
    let (mut ece, mut brier) = (0.0, 0.0);
    let bins = summary["calibration"]["bins"].as_array().expect("bins");
    let sums = summary["totals"]["calibration"].as_array().expect("totals.calibration");
    assert_eq!((bins.len(), sums.len()), (BINS, BINS));
    for j in 0..BINS {
        let members: Vec<&(f64, f64)> =
            scored.iter().filter(|(q, _)| (((q - 0.5) * (2 * BINS) as f64) as usize).min(BINS - 1) == j).collect();
        let count = members.len() as f64;
        let sum_q: f64 = members.iter().map(|(q, _)| q).sum();
        let sum_y: f64 = members.iter().map(|(_, y)| y).sum();
        let sum_e: f64 = members.iter().map(|(q, y)| (q - y) * (q - y)).sum();
        assert_eq!(bins[j]["count"], json!(members.len()), "bin {j}");
        assert_eq!(sums[j]["count"], json!(members.len()), "bin {j}");
        assert_eq!(sums[j]["sum_observed"].as_f64(), Some(sum_y), "bin {j}");
        close(&format!("bin {j}: sum_predicted"), sum_q, &sums[j]["sum_predicted"]);
        close(&format!("bin {j}: sum_squared_error"), sum_e, &sums[j]["sum_squared_error"]);
        if members.is_empty() {
            assert!(bins[j].get("mean_predicted").is_none(), "bin {j}: no means when empty");
            continue;
        }
        close(&format!("bin {j}: mean_predicted"), sum_q / count, &bins[j]["mean_predicted"]);
        assert_eq!(bins[j]["observed"].as_f64(), Some(sum_y / count), "bin {j}");
        ece += count / total * (sum_q / count - sum_y / count).abs();
        brier += sum_e;
    }
    close("ece", ece, &summary["calibration"]["ece"]);
    close("brier", brier / total, &summary["calibration"]["brier"]);

    // The k least probable pairs: lowest probability first, ties by line, then pair.
    let mut ranked: Vec<&Pair> = pairs.iter().collect();
    ranked.sort_by(|a, b| {
        (sigmoid(a.margin).total_cmp(&sigmoid(b.margin)))
            .then(a.line.cmp(&b.line))
            .then((a.preferred, a.other).cmp(&(b.preferred, b.other)))
    });
    let found = summary["disagreements"].as_array().expect("disagreements");
    assert_eq!(found.len(), TOP);
    let ties = ranked[..TOP].windows(2).filter(|w| w[0].margin == w[1].margin).count();
    assert!(ties > 0, "the data must have tied probabilities to test their order");
    for (entry, pair) in found.iter().zip(&ranked) {
        let list = &lists[pair.line as usize - 1];
        assert_eq!(entry["line"], json!(pair.line), "{entry}");
        assert_eq!(
            (entry["preferred"].as_u64(), entry["other"].as_u64()),
            (Some(pair.preferred as u64), Some(pair.other as u64))
        );
        assert_eq!(entry["list_id"], list["id"]);
        assert_eq!(entry["preferred_id"], list["items"][pair.preferred]["id"]);
        assert_eq!(entry["other_id"], list["items"][pair.other]["id"]);
        close("a disagreement's probability", sigmoid(pair.margin), &entry["probability"]);
        assert!(entry.get("input").is_none(), "a run's own disagreements name no input");
    }
}

/// `value` without `key`.
pub(crate) fn without(value: &Value, key: &str) -> Value {
    let mut value = value.clone();
    value.as_object_mut().expect("an object").remove(key);
    value
}

#[test]
fn the_stream_eval_of_ndjson_and_of_a_batch_file_and_the_batch_give_the_same_dataset_figures() {
    let server = start();
    let scratch = Scratch::new("dataset-doors");
    let lists = grouped_lists(5, 90);
    let body = ndjson(&lists);
    let file = scratch.write("data.ndjson", &body);
    let batch_file = scratch.write("data.json", json!({"lists": lists}).to_string().as_bytes());
    let query = format!("beta={BETA}&calibration_bins={BINS}&top_disagreements={TOP}");
    let flags = ["--beta", "0.7", "--calibration-bins", "7", "--top-disagreements", "15", "--quiet"];

    let streamed = server.stream(&query, &body);
    let (_, summary) = results_and_summary(&streamed);
    assert_eq!(summary["lines_failed"], 0, "{summary}");
    check_against_brute_force(&lists, &summary);
    assert_eq!(summary["run"]["calibration_bins"], json!(BINS));
    assert_eq!(summary["run"]["top_disagreements"], json!(TOP));

    let eval = prefeval(&[&["eval", file.as_str()], &flags[..]].concat(), None);
    assert_eq!(eval.status.code(), Some(0), "{}", stderr(&eval));
    assert_eq!(eval.stdout, streamed.body, "eval of the file answers the stream's bytes");

    let from_batch = prefeval(&[&["eval", batch_file.as_str()], &flags[..]].concat(), None);
    assert_eq!(from_batch.status.code(), Some(0), "{}", stderr(&from_batch));
    let batch_summary = ndjson_values(&from_batch.stdout).pop().expect("a summary")["summary"].clone();
    // Everything but the fingerprint of the input, which is another file.
    assert_eq!(without(&batch_summary, "run"), without(&summary, "run"), "a batch file's summary");

    let options = json!({"beta": BETA, "calibration_bins": BINS, "top_disagreements": TOP, "include_pairs": false});
    let (status, batch) = server.batch(&json!({"options": options, "lists": lists}));
    assert_eq!(status, 200, "{batch}");
    assert_eq!(batch["calibration"], summary["calibration"], "the batch's calibration, to the last bit");
    assert_eq!(batch["summary"]["macro_accuracy"], summary["macro_accuracy"]);
    let groups: Vec<Value> = summary["groups"].as_array().unwrap().iter().map(|g| without(g, "totals")).collect();
    assert_eq!(batch["groups"], json!(groups), "the batch's groups are the summary's without their totals");
    for (ours, theirs) in
        summary["disagreements"].as_array().unwrap().iter().zip(batch["disagreements"].as_array().unwrap())
    {
        assert_eq!(ours["line"], json!(theirs["list"].as_u64().unwrap() + 1), "a batch names the list, a run its line");
        assert_eq!(without(ours, "line"), without(theirs, "list"));
    }
}

/// `prefeval eval FILE FLAGS` of `lists` written to `name`: the whole output.
pub(crate) fn eval_to(scratch: &Scratch, name: &str, lists: &[Value], flags: &[&str]) -> (String, Vec<u8>) {
    let input = scratch.write(&format!("{name}.ndjson"), &ndjson(lists));
    let output = scratch.path(&format!("{name}.out")).display().to_string();
    let run = prefeval(&[&["eval", input.as_str(), "-o", output.as_str(), "--quiet"], flags].concat(), None);
    assert_eq!(run.status.code(), Some(0), "{name}: {}", stderr(&run));
    let bytes = std::fs::read(&output).expect("the output file");
    (output, bytes)
}

pub(crate) fn summary_of(output: &[u8]) -> Value {
    ndjson_values(output).pop().expect("a summary line")["summary"].clone()
}

/// Every number of `merged` against `whole`: integers and ratios of integers exactly, float sums
/// (re-added by the merge) within 1e-12.
fn assert_same_figures(what: &str, whole: &Value, merged: &Value) {
    match (whole, merged) {
        (Value::Object(whole), Value::Object(merged)) => {
            let keys = |map: &serde_json::Map<String, Value>| map.keys().cloned().collect::<Vec<_>>();
            assert_eq!(keys(whole), keys(merged), "{what}: the same fields");
            for (key, value) in whole {
                assert_same_figures(&format!("{what}.{key}"), value, &merged[key]);
            }
        }
        (Value::Array(whole), Value::Array(merged)) => {
            assert_eq!(whole.len(), merged.len(), "{what}: the same length");
            for (index, (w, m)) in whole.iter().zip(merged).enumerate() {
                assert_same_figures(&format!("{what}[{index}]"), w, m);
            }
        }
        (Value::Number(w), Value::Number(_)) if w.is_f64() => close(what, w.as_f64().unwrap(), merged),
        _ => assert_eq!(whole, merged, "{what}"),
    }
}

#[test]
fn a_merge_of_three_shards_has_the_dataset_figures_of_the_whole() {
    let scratch = Scratch::new("dataset-merge");
    let lists = grouped_lists(29, 120);
    let flags = ["--beta", "0.7", "--calibration-bins", "7", "--top-disagreements", "15"];
    let (_, whole) = eval_to(&scratch, "whole", &lists, &flags);
    let whole = summary_of(&whole);
    let cuts = [0, 37, 41, 120];
    let shards: Vec<String> =
        (0..3).map(|s| eval_to(&scratch, &format!("shard{s}"), &lists[cuts[s]..cuts[s + 1]], &flags).0).collect();
    let merged = prefeval(&[&["merge"], &shards.iter().map(String::as_str).collect::<Vec<_>>()[..]].concat(), None);
    assert_eq!(merged.status.code(), Some(0), "{}", stderr(&merged));
    let merged = summary_of(&merged.stdout);

    // Groups, calibration and the totals: counts and ratios of counts exact, float sums re-added.
    for key in ["lists", "pairs", "accuracy", "macro_accuracy", "groups", "calibration", "lines_failed"] {
        assert_same_figures(key, &whole[key], &merged[key]);
    }
    assert_same_figures("totals", &whole["totals"], &merged["totals"]);
    assert_eq!(whole["macro_accuracy"], merged["macro_accuracy"], "a mean of ratios of the same counts");
    // The k least probable of the whole, each named by its shard and its line there; ties across
    // shards keep the file order.
    let found = merged["disagreements"].as_array().expect("disagreements");
    let expected = whole["disagreements"].as_array().expect("disagreements");
    assert_eq!(found.len(), expected.len());
    let mut tie_across_files = false;
    for (index, (entry, wanted)) in found.iter().zip(expected).enumerate() {
        let line = wanted["line"].as_u64().unwrap() as usize;
        let shard = (0..3).find(|&s| line <= cuts[s + 1]).unwrap();
        assert_eq!(entry["input"], json!(shard), "{entry}");
        assert_eq!(entry["line"], json!(line - cuts[shard]), "{entry}");
        assert_eq!(without(&without(entry, "input"), "line"), without(wanted, "line"), "the same pair, to the bit");
        if index > 0
            && found[index - 1]["probability"] == entry["probability"]
            && found[index - 1]["input"] != entry["input"]
        {
            tie_across_files = true;
        }
    }
    assert!(tie_across_files, "the data must tie probabilities across shards");

    // A merge of a merge with the last shard: the inputs and the disagreements as in one merge.
    let first_two = prefeval(&["merge", &shards[0], &shards[1]], None);
    let first_two = scratch.write("first-two.out", &first_two.stdout);
    let again = prefeval(&["merge", &first_two, &shards[2]], None);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    let again = summary_of(&again.stdout);
    assert_eq!(again["disagreements"], merged["disagreements"]);
    assert_eq!(again["run"]["inputs"], merged["run"]["inputs"]);
    assert_same_figures("merge of a merge", &without(&merged, "run"), &without(&again, "run"));
}

#[test]
fn shards_with_and_without_groups_merge_into_the_groups_of_the_whole() {
    let scratch = Scratch::new("dataset-merge-groups");
    let mut lists = grouped_lists(31, 40);
    for list in &mut lists[..15] {
        list.as_object_mut().unwrap().remove("group");
    }
    let (_, whole) = eval_to(&scratch, "whole", &lists, &[]);
    let (plain, plain_bytes) = eval_to(&scratch, "plain", &lists[..15], &[]);
    assert!(summary_of(&plain_bytes).get("groups").is_none(), "no groups without a group in the data");
    let (grouped, _) = eval_to(&scratch, "grouped", &lists[15..], &[]);
    let merged = prefeval(&["merge", &plain, &grouped], None);
    assert_eq!(merged.status.code(), Some(0), "{}", stderr(&merged));
    let (whole, merged) = (summary_of(&whole), summary_of(&merged.stdout));
    assert_same_figures("groups", &whole["groups"], &merged["groups"]);
    assert_eq!(whole["macro_accuracy"], merged["macro_accuracy"]);
}

/// Merges `files`; asserts exit status 2 naming `file` and `field` on stderr.
fn refused(files: &[&str], file: &str, field: &str) {
    let run = prefeval(&[&["merge"], files].concat(), None);
    let message = stderr(&run);
    assert_eq!(run.status.code(), Some(2), "{field}: {message}");
    assert!(run.stdout.is_empty());
    assert!(message.contains(file) && message.contains(field), "names {file} and {field}: {message}");
}

#[test]
fn merge_refuses_summaries_of_another_k_or_number_of_bins_or_without_them() {
    let scratch = Scratch::new("dataset-merge-refusals");
    let lists = grouped_lists(37, 20);
    let shard =
        |name: &str, range: std::ops::Range<usize>, flags: &[&str]| eval_to(&scratch, name, &lists[range], flags).0;
    let seven = shard("k7", 0..10, &["--calibration-bins", "7"]);
    let five = shard("k5", 10..20, &["--calibration-bins", "5"]);
    let none = shard("none", 10..20, &[]);
    refused(&[&seven, &five], "k5.out", "summary.run.calibration_bins");
    refused(&[&seven, &none], "none.out", "summary.run.calibration_bins");
    refused(&[&none, &seven], "k7.out", "summary.run.calibration_bins");
    let top3 = shard("top3", 0..10, &["--top-disagreements", "3"]);
    let top4 = shard("top4", 10..20, &["--top-disagreements", "4"]);
    refused(&[&top3, &top4], "top4.out", "summary.run.top_disagreements");
    refused(&[&top3, &none], "none.out", "summary.run.top_disagreements");

    // A summary whose figures were edited into ones no run writes.
    let mut edited = summary_of(&std::fs::read(&seven).unwrap());
    edited["totals"]["calibration"][0]["count"] =
        json!(edited["totals"]["calibration"][0]["count"].as_u64().unwrap() + 1);
    let edited = scratch.write("edited.out", format!("{}\n", json!({"summary": edited})).as_bytes());
    refused(&[&edited], "edited.out", "summary.totals.calibration");
}

/// Lines of `group` (under the data's name `subset`), padded so that the lines span chunks.
fn group_line(group: &str) -> String {
    let pad = "x".repeat(60);
    format!(r#"{{"id":"{pad}","subset":"{group}","items":[{{"reward":1.0}},{{"reward":0.5}}]}}"#)
}

/// 10,000 distinct groups, then lines that alternate a known group and a new one; the line
/// number (from 1) of every line that brings a group past the limit.
fn too_many_groups_dataset() -> (Vec<String>, Vec<u64>) {
    let mut lines: Vec<String> = (0..10_000).map(|g| group_line(&format!("g{g}"))).collect();
    let mut refused = Vec::new();
    for extra in 0..3_000 {
        lines.push(group_line(&format!("g{}", extra * 3)));
        lines.push(group_line(&format!("new{extra}")));
        refused.push(lines.len() as u64);
    }
    (lines, refused)
}

/// A run's answer to `too_many_groups_dataset`: the refused lines, and 10,000 groups.
fn check_group_limit(output: &[u8], refused: &[u64]) {
    let mut lines = ndjson_values(output);
    let summary = lines.pop().expect("a summary")["summary"].clone();
    let errors: Vec<&Value> = lines.iter().filter(|line| line.get("error").is_some()).collect();
    let lines_refused: Vec<u64> = errors.iter().map(|line| line["line"].as_u64().unwrap()).collect();
    assert!(
        lines_refused == refused,
        "exactly the lines that bring a group past the limit: {} refused from line {:?}, expected {} from {:?}",
        lines_refused.len(),
        lines_refused.first(),
        refused.len(),
        refused.first()
    );
    for error in errors {
        assert_eq!(error["error"]["code"], "too_many_groups", "{error}");
        assert_eq!(error["error"]["path"], "subset", "the field as the data names it: {error}");
    }
    assert_eq!(summary["groups"].as_array().unwrap().len(), 10_000);
    assert_eq!(summary["lines_failed"], json!(refused.len()));
    assert_eq!(summary["lists"], json!(10_000 + 3_000));
    assert_eq!(summary["groups"][0]["lists"], 2, "a known group's later line counts");
}

#[test]
fn a_run_keeps_10000_groups_and_each_line_that_would_add_one_more_answers_too_many_groups() {
    let scratch = Scratch::new("dataset-group-limit");
    let (lines, refused) = too_many_groups_dataset();
    let body = ndjson(&lines);
    assert!(body.len() > 4 * 256 * 1024, "the run spans several chunks");
    let file = scratch.write("groups.ndjson", &body);
    let eval = prefeval(&["eval", &file, "--fields", "group:subset", "--quiet"], None);
    assert_eq!(eval.status.code(), Some(1), "lines failed: {}", stderr(&eval));
    check_group_limit(&eval.stdout, &refused);
    // One worker, then many: the chunks evaluated in another order give the same bytes.
    let one = prefeval(&["eval", &file, "--fields", "group:subset", "--quiet", "--workers", "1"], None);
    assert_eq!(one.stdout, eval.stdout);

    let server = start();
    let streamed = server.post_stream("fields=group:subset", &body, crate::helpers::Framing::Length);
    assert_eq!(streamed.status, 200);
    assert_eq!(streamed.body, eval.stdout, "the stream answers eval's bytes");

    // A batch file is one run too.
    let values: Vec<Value> = lines.iter().map(|line| serde_json::from_str(line).unwrap()).collect();
    let batch = json!({"options": {"fields": {"group": "subset"}}, "lists": values});
    let batch = scratch.write("groups.json", batch.to_string().as_bytes());
    let from_batch = prefeval(&["eval", &batch, "--quiet"], None);
    assert_eq!(from_batch.status.code(), Some(1), "{}", stderr(&from_batch));
    check_group_limit(&from_batch.stdout, &refused);
}

#[test]
fn merge_adds_the_length_counts_of_its_shards_and_computes_the_figures_from_the_sums() {
    // The shards' counts are written into their summaries by hand, so that the figures of the sums
    // are checked against the formulas on known counts (length_doors.rs merges runs over lengths).
    let scratch = Scratch::new("dataset-merge-length");
    let lists = grouped_lists(41, 30);
    let counts = [[9u64, 4, 7, 3, 2], [0, 0, 0, 0, 0], [10, 5, 9, 4, 1]]; // pairs, longer, agreeing½, shorter, agreeing½
    let mut shards = Vec::new();
    for (s, [pairs, longer, agreeing_longer, shorter, agreeing_shorter]) in counts.iter().enumerate() {
        let (path, bytes) = eval_to(&scratch, &format!("length{s}"), &lists[s * 10..s * 10 + 10], &[]);
        let mut summary = summary_of(&bytes);
        if *pairs > 0 {
            summary["totals"]["length"] = json!({"pairs": pairs, "pairs_preferred_longer": longer,
                "agreeing_preferred_longer": *agreeing_longer as f64 / 2.0, "pairs_preferred_shorter": shorter,
                "agreeing_preferred_shorter": *agreeing_shorter as f64 / 2.0});
        }
        std::fs::write(&path, format!("{}\n", json!({"summary": summary}))).unwrap();
        shards.push(path);
    }
    let merged = prefeval(&[&["merge"], &shards.iter().map(String::as_str).collect::<Vec<_>>()[..]].concat(), None);
    assert_eq!(merged.status.code(), Some(0), "{}", stderr(&merged));
    let merged = summary_of(&merged.stdout);
    let (pairs, longer, agreeing_longer, shorter, agreeing_shorter) = (19.0, 9.0, 16.0 / 2.0, 7.0, 3.0 / 2.0);
    assert_eq!(
        merged["totals"]["length"],
        json!({"pairs": 19, "pairs_preferred_longer": 9, "agreeing_preferred_longer": agreeing_longer,
            "pairs_preferred_shorter": 7, "agreeing_preferred_shorter": agreeing_shorter})
    );
    let length = &merged["length"];
    assert_eq!(length["pairs"], 19);
    assert_eq!(length["baseline_accuracy"].as_f64(), Some((longer + (pairs - longer - shorter) / 2.0) / pairs));
    assert_eq!(length["accuracy_preferred_longer"].as_f64(), Some(agreeing_longer / longer));
    assert_eq!(length["accuracy_preferred_shorter"].as_f64(), Some(agreeing_shorter / shorter));
    let follows = agreeing_longer + (shorter - agreeing_shorter);
    assert_eq!(length["reward_follows_length"].as_f64(), Some(follows / (longer + shorter)));
    // Counts a run cannot have are refused.
    let mut broken = summary_of(&std::fs::read(&shards[0]).unwrap());
    broken["totals"]["length"]["pairs_preferred_longer"] = json!(100);
    let broken = scratch.write("broken.out", format!("{}\n", json!({"summary": broken})).as_bytes());
    refused(&[&broken], "broken.out", "summary.totals.length.pairs_preferred_longer");
}
