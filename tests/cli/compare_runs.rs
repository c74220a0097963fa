//! `prefeval compare`, `prefeval diff` and `prefeval merge` of comparisons, as a user runs them:
//! compare answers what `POST /v1/compare/stream` answers, byte for byte; shards of a comparison
//! merge into the comparison of the whole (p-values and Holm's adjustment from the merged sums);
//! diff of two `prefeval eval` outputs is `/v1/compare` on the same lists; every refusal exits 2
//! naming the file and what is at fault.

use serde_json::{Value, json};

use crate::compare_data::compare_lists;
use crate::datasets::{Scratch, assert_same_bytes, ndjson, ndjson_values, prefeval, stderr};
use crate::helpers::{Answer, BinaryServer, Framing, Raw};
use crate::length_data::{Item, brute_force, brute_force_totals};

/// Model `j`'s view of compare lists: the evaluate stream's native lists, ranks and lengths kept.
pub(crate) fn model_lists(lists: &[Value], j: usize) -> Vec<Value> {
    (lists.iter())
        .map(|list| {
            let items: Vec<Value> = (list["items"].as_array().expect("items").iter())
                .map(|item| {
                    let mut single = json!({"id": item["id"], "reward": item["rewards"][j]});
                    for key in ["rank", "length"] {
                        if let Some(value) = item.get(key) {
                            single[key] = value.clone();
                        }
                    }
                    single
                })
                .collect();
            json!({"id": list["id"], "items": items})
        })
        .collect()
}

/// Model `j`'s view of compare lists as the brute force of length bias reads them: each item's
/// rank (its place when the list has no ranks), the model's reward and the length.
fn length_items(lists: &[Value], j: usize) -> Vec<Vec<Item>> {
    (lists.iter())
        .map(|list| {
            (list["items"].as_array().expect("items").iter().enumerate())
                .map(|(k, item)| Item {
                    rank: item.get("rank").map_or(k as u64 + 1, |rank| rank.as_u64().expect("a rank")),
                    reward: item["rewards"][j].as_f64().expect("a reward"),
                    length: item.get("length").map(|length| length.as_f64().expect("a length")),
                })
                .collect()
        })
        .collect()
}

/// Every model's `length` and `totals.models[j].length` of a compare summary against the brute
/// force over `lists` under that model's rewards: counts and ratios of counts, exactly.
fn assert_lengths_by_brute_force(what: &str, lists: &[Value], summary: &Value) {
    let models = summary["models"].as_array().expect("models");
    for (j, model) in models.iter().enumerate() {
        let items = length_items(lists, j);
        let figures = brute_force(&items).expect("the data have pairs with both lengths");
        assert_eq!(model["length"], figures, "{what}: models[{j}].length");
        assert_eq!(summary["totals"]["models"][j]["length"], brute_force_totals(&items), "{what}: totals.models[{j}]");
    }
}

fn post(server: &BinaryServer, target: &str, content_type: &str, body: &[u8]) -> Answer {
    Raw::exchange(server.addr, "POST", target, &[("Content-Type", content_type)], body, Framing::Length)
}

/// `prefeval ARGS`, which must succeed (exit 0); its stdout.
fn run_ok(args: &[&str]) -> Vec<u8> {
    let run = prefeval(args, None);
    assert_eq!(run.status.code(), Some(0), "prefeval {args:?}: {}", stderr(&run));
    run.stdout
}

/// `prefeval ARGS` refused: exit 2, nothing on stdout, stderr naming every one of `named`.
fn refused(args: &[&str], named: &[&str]) {
    let run = prefeval(args, None);
    let message = stderr(&run);
    assert_eq!(run.status.code(), Some(2), "prefeval {args:?}: {message}");
    assert!(run.stdout.is_empty(), "prefeval {args:?} printed {}", String::from_utf8_lossy(&run.stdout));
    for name in named {
        assert!(message.contains(name), "prefeval {args:?} does not name {name}: {message}");
    }
}

fn summary_of(output: &[u8]) -> Value {
    ndjson_values(output).pop().expect("a summary line")["summary"].clone()
}

/// `/v1/compare`'s fields of a compare summary.
fn comparison_of(summary: &Value) -> Value {
    let mut fields = summary.as_object().cloned().unwrap_or_default();
    for extra in ["lines_failed", "totals", "run"] {
        fields.remove(extra);
    }
    Value::Object(fields)
}

/// Equal, numbers within `relative` of each other (sums added in another order differ by rounding).
fn assert_near(what: &str, expected: &Value, got: &Value, relative: f64) {
    match (expected, got) {
        (Value::Number(e), Value::Number(g)) => {
            let (e, g) = (e.as_f64().unwrap_or(f64::NAN), g.as_f64().unwrap_or(f64::NAN));
            assert!((e - g).abs() <= relative * e.abs().max(g.abs()).max(1e-300), "{what}: expected {e}, got {g}");
        }
        (Value::Array(e), Value::Array(g)) => {
            assert_eq!(e.len(), g.len(), "{what}: length");
            e.iter().zip(g).enumerate().for_each(|(k, (e, g))| assert_near(&format!("{what}[{k}]"), e, g, relative));
        }
        (Value::Object(e), Value::Object(g)) => {
            assert_eq!(e.keys().collect::<Vec<_>>(), g.keys().collect::<Vec<_>>(), "{what}: fields");
            e.iter().for_each(|(key, e)| assert_near(&format!("{what}.{key}"), e, &g[key], relative));
        }
        _ => assert_eq!(expected, got, "{what}"),
    }
}

/// Holm's step-down adjustment, written out for the test.
fn holm(p: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut adjusted = vec![0.0; p.len()];
    let mut running = 0.0f64;
    for (step, &i) in order.iter().enumerate() {
        running = running.max(((p.len() - step) as f64 * p[i]).min(1.0));
        adjusted[i] = running;
    }
    adjusted
}

#[test]
fn compare_prints_what_the_compare_stream_answers_byte_for_byte() {
    let server = BinaryServer::start(&["--workers", "2"]);
    let scratch = Scratch::new("compare-bytes");
    let lists = compare_lists(0xCB, 600, 3);
    let mut lines = lists.clone();
    // An error line, a line without an id, a blank line and an empty list among them.
    lines.insert(5, json!({"items": [{"rewards": [1.0, 2.0]}, {"rewards": [0.0, 1.0, 2.0]}]}));
    lines.insert(9, json!({"items": [{"rewards": [1.0, 2.0, 3.0]}, {"rewards": [0.0, 1.0, 2.0]}]}));
    let mut body = ndjson(&lines);
    body.extend_from_slice(b"\n{\"items\": []}\n");
    let input = scratch.write("lists.ndjson", &body);
    for query in ["models=a,b,c", "models=a,b,c&normalization=sum&beta=0.5&confidence=0.8"] {
        let answer = post(&server, &format!("/v1/compare/stream?{query}"), "application/x-ndjson", &body);
        assert_eq!(answer.status, 200, "{}", answer.text());
        let flags: Vec<String> = (query.split('&'))
            .flat_map(|pair| {
                let (key, value) = pair.split_once('=').expect("key=value");
                [format!("--{key}"), value.to_string()]
            })
            .collect();
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let run = prefeval(&[&["compare", input.as_str(), "--quiet"], flags.as_slice()].concat(), None);
        assert_eq!(run.status.code(), Some(1), "some lines fail: {}", stderr(&run));
        assert_same_bytes(query, &answer.body, &run.stdout);
        assert_eq!(summary_of(&run.stdout)["lines_failed"], json!(2));
        // The lines added have no lengths: the length figures are those of `lists`.
        assert_lengths_by_brute_force(query, &lists, &summary_of(&run.stdout));
    }
    // The pairs format, from stdin.
    let pairs: Vec<Value> = (0..50)
        .map(|k| {
            json!({"id": k, "chosen_rewards": [k as f64 * 0.1, 1.0], "rejected_rewards": [0.5, k as f64 * 0.05],
            "chosen_length": k % 7, "rejected_length": 3})
        })
        .collect();
    let body = ndjson(&pairs);
    let answer = post(&server, "/v1/compare/stream?models=x,y&format=pairs", "application/x-ndjson", &body);
    let run = prefeval(&["compare", "-", "--models", "x,y", "--format", "pairs", "--quiet"], Some(&body));
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    assert_same_bytes("pairs from stdin", &answer.body, &run.stdout);
    assert!(summary_of(&run.stdout)["models"][1]["length"]["pairs"].as_u64() > Some(0));
}

#[test]
fn shards_of_a_comparison_merge_into_the_comparison_of_the_whole() {
    let scratch = Scratch::new("compare-merge");
    let lists = compare_lists(0x3E, 900, 3);
    let whole = scratch.write("whole.ndjson", &ndjson(&lists));
    let whole = summary_of(&run_ok(&["compare", &whole, "--models", "rm-a,rm-b,rm-c", "--quiet"]));
    let shards: Vec<String> = [&lists[..200], &lists[200..650], &lists[650..]]
        .iter()
        .enumerate()
        .map(|(k, shard)| {
            let input = scratch.write(&format!("shard-{k}.ndjson"), &ndjson(shard));
            let output = run_ok(&["compare", &input, "--models", "rm-a,rm-b,rm-c", "--quiet"]);
            scratch.write(&format!("shard-{k}.out"), &output)
        })
        .collect();
    let merged =
        summary_of(&run_ok(&[&["merge"], shards.iter().map(String::as_str).collect::<Vec<_>>().as_slice()].concat()));
    // Every figure of the whole: the counts exactly, sums added in another order to rounding.
    assert_near("merged vs whole", &comparison_of(&whole), &comparison_of(&merged), 1e-12);
    // The length figures are counts and ratios of counts: exactly the whole's, and their definition.
    assert_lengths_by_brute_force("the whole", &lists, &whole);
    for j in 0..3 {
        assert_eq!(merged["models"][j]["length"], whole["models"][j]["length"], "models[{j}].length");
        let totals = |summary: &Value| summary["totals"]["models"][j]["length"].clone();
        assert_eq!(totals(&merged), totals(&whole), "totals.models[{j}].length");
    }
    assert_eq!(merged["totals"]["comparisons"][2]["lists"], json!(900));
    assert_eq!(merged["run"]["models"], json!(["rm-a", "rm-b", "rm-c"]));
    assert_eq!(merged["run"]["inputs"].as_array().map(Vec::len), Some(3));
    // Holm's adjustment over the merged p-values (never the shards'), as the definition says.
    for family in ["loss_p_value", "accuracy_p_value"] {
        let p: Vec<f64> = (0..3).map(|r| merged["comparisons"][r][family].as_f64().expect("a p-value")).collect();
        for (r, adjusted) in holm(&p).into_iter().enumerate() {
            assert_eq!(merged["comparisons"][r][format!("{family}_holm")], json!(adjusted), "{family}[{r}]");
        }
    }
    // A merged summary merges again, with the confidence asked for.
    let again = scratch.write("merged.out", &run_ok(&["merge", &shards[0], &shards[1]]));
    let twice = summary_of(&run_ok(&["merge", &again, &shards[2], "--confidence", "0.9"]));
    assert_near(
        "merged twice",
        &comparison_of(&merged)["comparisons"][0]["loss_difference"],
        &twice["comparisons"][0]["loss_difference"],
        1e-12,
    );
    assert_eq!(twice["confidence"], json!(0.9));
}

#[test]
fn merge_refuses_mixed_kinds_other_models_and_an_input_twice() {
    let scratch = Scratch::new("compare-merge-refusals");
    let lists = compare_lists(0x51, 30, 2);
    let input = scratch.write("a.ndjson", &ndjson(&lists[..15]));
    let other = scratch.write("b.ndjson", &ndjson(&lists[15..]));
    let ab = scratch.write("ab.out", &run_ok(&["compare", &input, "--models", "a,b", "-q"]));
    let ab_again = scratch.write("ab-again.out", &run_ok(&["compare", &input, "--models", "a,b", "-q"]));
    let ba = scratch.write("ba.out", &run_ok(&["compare", &other, "--models", "b,a", "-q"]));
    let beta = scratch.write("beta.out", &run_ok(&["compare", &other, "--models", "a,b", "--beta", "2", "-q"]));
    let single = scratch.write("single.ndjson", &ndjson(&model_lists(&lists, 0)));
    let evaluated = scratch.write("eval.out", &run_ok(&["eval", &single, "-q"]));
    refused(&["merge", &ab, &evaluated], &["eval.out", "ab.out", "do not merge"]);
    refused(&["merge", &evaluated, &ab], &["ab.out", "eval.out"]);
    refused(&["merge", &ab, &ba], &["ba.out", "summary.run.models"]);
    refused(&["merge", &ab, &beta], &["beta.out", "summary.run.beta"]);
    refused(&["merge", &ab, &ab_again], &["ab-again.out", "same input"]);
    let mut edited = summary_of(&std::fs::read(&ab).expect("reads"));
    edited["totals"]["comparisons"][0]["lists_tied"] = json!(999);
    let edited = scratch.write("edited.out", format!("{}\n", json!({"summary": edited})).as_bytes());
    refused(&["merge", &edited], &["edited.out", "summary.totals.comparisons[0].lists_tied"]);
}

/// Writes model `j`'s view of `lists`, evaluates it with `flags`, and returns the output's path.
fn eval_output(scratch: &Scratch, name: &str, lists: &[Value], flags: &[&str]) -> String {
    let input = scratch.write(&format!("{name}.ndjson"), &ndjson(lists));
    let output = prefeval(&[&["eval", input.as_str(), "--quiet"], flags].concat(), None);
    scratch.write(&format!("{name}.out"), &output.stdout)
}

#[test]
fn diff_of_two_eval_outputs_is_v1_compare_of_the_same_lists() {
    let server = BinaryServer::start(&["--workers", "2"]);
    let scratch = Scratch::new("diff");
    let lists = compare_lists(0xD1, 300, 2);
    for options in [json!({}), json!({"normalization": "comparisons", "beta": 0.5})] {
        let mut flags: Vec<String> = Vec::new();
        for (key, value) in options.as_object().expect("options") {
            flags.push(format!("--{key}"));
            flags.push(value.as_str().map_or_else(|| value.to_string(), str::to_string));
        }
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let a = eval_output(&scratch, "a", &model_lists(&lists, 0), &[&["--model", "rm-a"], flags.as_slice()].concat());
        let b = eval_output(&scratch, "b", &model_lists(&lists, 1), &[&["--model", "rm-b"], flags.as_slice()].concat());
        let diffed = summary_of(&run_ok(&["diff", &a, &b]));
        let request = json!({"models": ["rm-a", "rm-b"], "options": options, "lists": lists});
        let answer = post(&server, "/v1/compare", "application/json", &serde_json::to_vec(&request).expect("JSON"));
        assert_eq!(answer.status, 200, "{}", answer.text());
        // The same per-list figures, added in the same order: equal to the last bit; each model's
        // length bias from its output's length counts, as /v1/compare counts it.
        let expected = answer.json();
        assert_eq!(comparison_of(&diffed), expected, "{options}");
        assert_lengths_by_brute_force("diff", &lists, &diffed);
        assert_eq!(diffed["run"]["models"], json!(["rm-a", "rm-b"]));
        assert_eq!(diffed["run"]["inputs"].as_array().map(Vec::len), Some(2));
    }
}

#[test]
fn diff_refuses_outputs_that_are_not_of_the_same_lists_naming_the_first_offender() {
    let scratch = Scratch::new("diff-refusals");
    let lists = compare_lists(0xD2, 12, 2);
    let (a_lists, b_lists) = (model_lists(&lists, 0), model_lists(&lists, 1));
    let a = eval_output(&scratch, "a", &a_lists, &[]);

    let mut no_id = b_lists.clone();
    no_id[4].as_object_mut().expect("a list").remove("id");
    refused(&["diff", &a, &eval_output(&scratch, "no-id", &no_id, &[])], &["no-id.out", "line 5", "no `id`"]);

    let missing = eval_output(&scratch, "missing", &b_lists[..11], &[]);
    refused(&["diff", &a, &missing], &["\"p11\"", "missing.out"]);
    let mut extra = b_lists.clone();
    extra.push(json!({"id": "p-extra", "items": [{"reward": 1.0}, {"reward": 0.0}]}));
    refused(&["diff", &a, &eval_output(&scratch, "extra", &extra, &[])], &["\"p-extra\"", "extra.out"]);

    let mut twice = b_lists.clone();
    twice.push(b_lists[3].clone());
    refused(&["diff", &a, &eval_output(&scratch, "twice", &twice, &[])], &["twice.out", "\"p3\"", "twice"]);

    refused(&["diff", &a, &eval_output(&scratch, "beta", &b_lists, &["--beta", "2"])], &["beta.out", "beta"]);
    let sum = eval_output(&scratch, "sum", &b_lists, &["--normalization", "sum"]);
    refused(&["diff", &a, &sum], &["sum.out", "normalization"]);

    let mut other_list = b_lists.clone();
    other_list[2]["items"] = json!([{"reward": 1.0}, {"reward": 0.5}, {"reward": 0.0}, {"reward": -1.0}, {"reward": -2.0}, {"reward": -3.0}, {"reward": -4.0}]);
    refused(&["diff", &a, &eval_output(&scratch, "other", &other_list, &[])], &["\"p2\"", "not the same list"]);

    let mut failing = b_lists.clone();
    failing[6]["items"] = json!([{"reward": 1.0}]);
    refused(&["diff", &a, &eval_output(&scratch, "failing", &failing, &[])], &["failing.out", "line 7", "error line"]);

    let errors_only = eval_output(&scratch, "errors-only", &b_lists, &["--results", "errors"]);
    refused(&["diff", &a, &errors_only], &["errors-only.out", "result lines"]);

    // The lists' lengths are the lists' own: under both models, the same pairs have two lengths
    // and the same item of each is the longer.
    // Items 0 and 1 always make a pair (item 0 is first, or ranked 1 and item 1 ranked 2).
    let both = |list: &&Value| (0..2).all(|k| list["items"][k].get("length").is_some());
    let lengthy = lists.iter().position(|list| both(&list)).expect("a list whose first two items have lengths");
    let mut fewer = b_lists.clone();
    fewer[lengthy]["items"][0].as_object_mut().expect("an item").remove("length");
    refused(&["diff", &a, &eval_output(&scratch, "fewer", &fewer, &[])], &["fewer.out", "summary.totals.length"]);
    let mut no_lengths = b_lists.clone();
    for item in no_lengths.iter_mut().flat_map(|list| list["items"].as_array_mut().expect("items")) {
        item.as_object_mut().expect("an item").remove("length");
    }
    let no_lengths = eval_output(&scratch, "no-lengths", &no_lengths, &[]);
    refused(&["diff", &a, &no_lengths], &["no-lengths.out", "summary.totals.length", "not carry the same lengths"]);
}
