//! Length bias through `POST /v1/evaluate`: items carry a `length` in every input format (`pairs`:
//! `chosen_length`/`rejected_length`; `ranking`: a `lengths` object by id), and the batch's
//! `summary.length` is checked against a brute-force computation from the definitions of
//! docs/design/math.md, "Length bias" (`length_data`): every implied pair of every list, one at a
//! time. The data are seeded random lists with ties of rank, of reward and of length, and items
//! without a length.

use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::length_data::{brute_force, brute_force_totals, lists_in, random_lists};

const FORMATS: [&str; 5] = ["native", "ratings", "ranks_zero_based", "ranking", "pairs"];

async fn evaluate(app: &TestApp, body: Value) -> Value {
    let answer = app.evaluate(body).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json()
}

#[tokio::test]
async fn every_format_gives_the_length_figures_of_their_definitions_and_the_same_as_native() {
    let app = TestApp::spawn().await;
    let lists = random_lists(0x1E46, 40);
    let expected = brute_force(&lists).expect("the data have pairs with both lengths");
    // The data exercise every figure, and its ties.
    for name in ["reward_follows_length", "accuracy_preferred_longer", "accuracy_preferred_shorter"] {
        assert!(expected.get(name).is_some(), "{name} in {expected}");
    }
    let native = evaluate(&app, json!({"lists": lists_in("native", &lists, true)})).await;
    for format in FORMATS {
        let body = json!({"options": {"format": format, "beta": 0.7}, "lists": lists_in(format, &lists, true)});
        let answer = evaluate(&app, body).await;
        let summary = &answer["summary"];
        assert_eq!(summary["length"], expected, "{format}");
        assert_eq!(summary["length"], native["summary"]["length"], "{format}");
        // The counts beside them, pair by pair, and they give the figures back.
        let totals = &summary["totals"]["length"];
        assert_eq!(totals, &brute_force_totals(&lists), "{format}");
        assert_eq!(totals["pairs"], expected["pairs"], "{format}: {totals}");
        assert_eq!(totals["pairs_preferred_longer"], expected["pairs_preferred_longer"], "{format}");
        assert_eq!(totals["pairs_preferred_shorter"], expected["pairs_preferred_shorter"], "{format}");
        let longer = totals["agreeing_preferred_longer"].as_f64().unwrap();
        let pairs_longer = totals["pairs_preferred_longer"].as_f64().unwrap();
        assert_eq!(Some(longer / pairs_longer), expected["accuracy_preferred_longer"].as_f64(), "{format}");
        let shorter = totals["agreeing_preferred_shorter"].as_f64().unwrap();
        let pairs_shorter = totals["pairs_preferred_shorter"].as_f64().unwrap();
        assert_eq!(Some(shorter / pairs_shorter), expected["accuracy_preferred_shorter"].as_f64(), "{format}");
    }
}

/// An answer without the length figures.
fn without_length(mut answer: Value) -> Value {
    let summary = answer["summary"].as_object_mut().unwrap();
    summary.remove("length");
    summary["totals"].as_object_mut().unwrap().remove("length");
    answer
}

#[tokio::test]
async fn lengths_change_nothing_else_in_the_answer() {
    let app = TestApp::spawn().await;
    let lists = random_lists(7, 12);
    for format in FORMATS {
        let options = json!({"format": format, "calibration_bins": 4, "top_disagreements": 3});
        let with = evaluate(&app, json!({"options": options, "lists": lists_in(format, &lists, true)})).await;
        let without = evaluate(&app, json!({"options": options, "lists": lists_in(format, &lists, false)})).await;
        assert!(with["summary"].get("length").is_some(), "{format}");
        assert!(without["summary"].get("length").is_none(), "{format}: {}", without["summary"]);
        assert!(without["summary"]["totals"].get("length").is_none(), "{format}");
        // The same bits: serde_json writes the shortest digits that read back to the same double.
        assert_eq!(without_length(with.clone()), without, "{format}");
        assert_eq!(with["loss"].as_f64().map(f64::to_bits), without["loss"].as_f64().map(f64::to_bits));
    }
}

#[tokio::test]
async fn no_length_is_written_unless_a_pair_has_both_lengths() {
    let app = TestApp::spawn().await;
    // Lengths on one item of each list, or on items that imply no pair with each other (a tie).
    let bodies = [
        json!({"lists": [{"items": [{"reward": 1, "length": 5}, {"reward": 0}]},
                         {"items": [{"reward": 1}, {"reward": 0, "length": 0}]}]}),
        json!({"lists": [{"items": [{"reward": 1, "rank": 1, "length": 5}, {"reward": 0, "rank": 1, "length": 9},
                                    {"reward": 2, "rank": 2}]}]}),
        json!({"options": {"format": "pairs"}, "lists": [{"chosen_reward": 1, "rejected_reward": 0, "chosen_length": 3}]}),
        json!({"options": {"format": "ranking"},
               "lists": [{"ranking": ["a", "b"], "rewards": {"a": 1, "b": 0}, "lengths": {"b": 2}}]}),
    ];
    for body in bodies {
        let answer = evaluate(&app, body.clone()).await;
        assert!(answer["summary"].get("length").is_none(), "{body}: {}", answer["summary"]);
        assert!(answer["summary"]["totals"].get("length").is_none(), "{body}");
    }
    // One pair is enough; equal lengths count, and leave the other ratios out.
    let answer =
        evaluate(&app, json!({"lists": [{"items": [{"reward": 1, "length": 4}, {"reward": 0, "length": 4}]}]})).await;
    assert_eq!(
        answer["summary"]["length"],
        json!({"pairs": 1, "baseline_accuracy": 0.5, "pairs_preferred_longer": 0, "pairs_preferred_shorter": 0})
    );
}

#[tokio::test]
async fn options_fields_map_the_lengths_of_every_format() {
    let app = TestApp::spawn().await;
    let lists = random_lists(31, 10);
    let expected = brute_force(&lists);
    let rename = |list: &mut Value, own: &str, data: &str| {
        if let Some(value) = list.as_object_mut().unwrap().remove(own) {
            list[data] = value;
        }
    };
    for (format, fields) in [
        ("native", json!({"length": "n_tokens"})),
        ("ratings", json!({"length": "chars", "rating": "stars"})),
        ("ranks_zero_based", json!({"length": "n_tokens"})),
        ("ranking", json!({"lengths": "sizes"})),
        ("pairs", json!({"chosen_length": "len_a", "rejected_length": "len_b"})),
    ] {
        let mut renamed = lists_in(format, &lists, true);
        for list in &mut renamed {
            for (own, data) in fields.as_object().unwrap() {
                let data = data.as_str().unwrap();
                rename(list, own, data);
                for item in list.get_mut("items").and_then(Value::as_array_mut).into_iter().flatten() {
                    rename(item, own, data);
                }
            }
        }
        let body = json!({"options": {"format": format, "fields": fields}, "lists": renamed});
        let answer = evaluate(&app, body).await;
        assert_eq!(answer["summary"].get("length"), expected.as_ref(), "{format}");
        // With other columns skipped, too.
        let mut extra = renamed.clone();
        extra[0]["prompt"] = json!("Which is better?");
        let body = json!({"options": {"format": format, "fields": fields, "unknown_fields": "ignore"}, "lists": extra});
        assert_eq!(evaluate(&app, body).await["summary"].get("length"), expected.as_ref(), "{format}");
    }
}

#[tokio::test]
async fn a_bad_length_is_named_as_the_data_spells_it() {
    let app = TestApp::spawn().await;
    let fine = json!({"items": [{"reward": 1, "length": 3}, {"reward": 0, "length": 4}]});
    let items_with = |second: Value| json!({"items": [{"reward": 1, "length": 3}, second]});
    let pair = json!({"chosen_reward": 1, "rejected_reward": 0});
    let ranked = |lengths: Value| json!({"ranking": ["a", "b"], "rewards": {"a": 1, "b": 0}, "lengths": lengths});
    let cases = [
        (
            json!({"lists": [fine, fine, fine, items_with(json!({"reward": 0, "length": -1}))]}),
            "invalid_value",
            "lists[3].items[1].length",
        ),
        (
            json!({"options": {"format": "ratings"},
                   "lists": [{"items": [{"reward": 1, "rating": 2, "length": -0.5}, {"reward": 0, "rating": 1}]}]}),
            "invalid_value",
            "lists[0].items[0].length",
        ),
        (
            json!({"options": {"format": "ranks_zero_based"},
                   "lists": [{"items": [{"reward": 1, "rank": 0}, {"reward": 0, "rank": 1, "length": -1e-300}]}]}),
            "invalid_value",
            "lists[0].items[1].length",
        ),
        (
            json!({"options": {"format": "pairs"},
                   "lists": [{"chosen_reward": 1, "rejected_reward": 0, "chosen_length": -2, "rejected_length": 1}]}),
            "invalid_value",
            "lists[0].chosen_length",
        ),
        (
            json!({"options": {"format": "pairs"},
                   "lists": [pair, {"chosen_reward": 1, "rejected_reward": 0, "rejected_length": -7}]}),
            "invalid_value",
            "lists[1].rejected_length",
        ),
        (
            json!({"options": {"format": "ranking"},
                   "lists": [ranked(json!({})), ranked(json!({"a": 1})), ranked(json!({"a": 1, "b": -3}))]}),
            "invalid_value",
            "lists[2].lengths.b",
        ),
        (
            json!({"options": {"format": "ranking"}, "lists": [ranked(json!({"a": 1, "zz": 3}))]}),
            "invalid_value",
            "lists[0].lengths.zz",
        ),
        // Types, as for a reward.
        (
            json!({"lists": [items_with(json!({"reward": 0, "length": "4"}))]}),
            "invalid_type",
            "lists[0].items[1].length",
        ),
        (
            json!({"lists": [items_with(json!({"reward": 0, "length": null}))]}),
            "invalid_type",
            "lists[0].items[1].length",
        ),
        (
            json!({"lists": [items_with(json!({"reward": 0, "length": true}))]}),
            "invalid_type",
            "lists[0].items[1].length",
        ),
        (
            json!({"options": {"format": "pairs"},
                   "lists": [{"chosen_reward": 1, "rejected_reward": 0, "chosen_length": [3]}]}),
            "invalid_type",
            "lists[0].chosen_length",
        ),
        (
            json!({"options": {"format": "ranking"}, "lists": [ranked(json!({"a": "1"}))]}),
            "invalid_type",
            "lists[0].lengths.a",
        ),
        (
            json!({"options": {"format": "ranking"}, "lists": [ranked(json!([1, 2]))]}),
            "invalid_type",
            "lists[0].lengths",
        ),
        // Renamed: the data's name.
        (
            json!({"options": {"fields": {"length": "n_tokens"}},
                   "lists": [{"items": [{"reward": 1, "n_tokens": 3}, {"reward": 0, "n_tokens": -1}]}]}),
            "invalid_value",
            "lists[0].items[1].n_tokens",
        ),
        (
            json!({"options": {"format": "pairs", "fields": {"chosen_length": "len_a"}},
                   "lists": [{"chosen_reward": 1, "rejected_reward": 0, "len_a": -1}]}),
            "invalid_value",
            "lists[0].len_a",
        ),
        (
            json!({"options": {"format": "ranking", "fields": {"lengths": "sizes"}},
                   "lists": [{"ranking": ["a", "b"], "rewards": {"a": 1, "b": 0}, "sizes": {"b": -1}}]}),
            "invalid_value",
            "lists[0].sizes.b",
        ),
        (
            json!({"options": {"fields": {"length": "n_tokens"}},
                   "lists": [{"items": [{"reward": 1, "n_tokens": "3"}, {"reward": 0}]}]}),
            "invalid_type",
            "lists[0].items[0].n_tokens",
        ),
        // A format's length field where the format has none stays unknown.
        (
            json!({"lists": [{"items": [{"reward": 1}, {"reward": 0}], "chosen_length": 3}]}),
            "unknown_field",
            "lists[0].chosen_length",
        ),
        (
            json!({"options": {"format": "pairs"}, "lists": [{"chosen_reward": 1, "rejected_reward": 0, "lengths": {}}]}),
            "unknown_field",
            "lists[0].lengths",
        ),
        (
            json!({"options": {"format": "ranking"}, "lists": [{"ranking": ["a", "b"], "rewards": {"a": 1, "b": 0}, "chosen_length": 1}]}),
            "unknown_field",
            "lists[0].chosen_length",
        ),
        (
            json!({"lists": [{"items": [{"reward": 1}, {"reward": 0}], "length": 3}]}),
            "unknown_field",
            "lists[0].length",
        ),
        (
            json!({"options": {"format": "pairs", "fields": {"length": "n"}}, "lists": [pair]}),
            "invalid_value",
            "options.fields.length",
        ),
        (json!({"options": {"fields": {"lengths": "n"}}, "lists": [fine]}), "invalid_value", "options.fields.lengths"),
    ];
    for (body, code, path) in cases {
        let answer = app.evaluate(body.clone()).await;
        assert_eq!(answer.status, 422, "{body}: {}", answer.text());
        assert_eq!((answer.error_code(), answer.error_path()), (code.to_string(), Some(path.to_string())), "{body}");
    }
}

#[tokio::test]
async fn lengths_are_numbers_at_least_zero_and_minus_zero_is_zero() {
    let app = TestApp::spawn().await;
    // −0 and 0 are one length (a tie), as are 1 and 1.0; huge and tiny lengths are lengths.
    let answer = evaluate(
        &app,
        json!({"lists": [{"items": [{"reward": 1, "length": -0.0}, {"reward": 0, "length": 0}, {"reward": 2, "length": 1e300}]},
                         {"items": [{"reward": 0, "length": 1}, {"reward": 1, "length": 1.0}, {"reward": 1, "length": 5e-324}]}]}),
    )
    .await;
    assert_eq!(
        answer["summary"]["length"],
        // List 1: (a, b) equal lengths; (a, c) and (b, c) preferred shorter, the reward with the
        // longer. List 2: (d, e) equal lengths; (d, f) preferred longer against the reward, (e, f)
        // preferred longer with tied rewards.
        json!({"pairs": 6, "baseline_accuracy": 0.5, "reward_follows_length": 0.625,
               "accuracy_preferred_longer": 0.25, "pairs_preferred_longer": 2,
               "accuracy_preferred_shorter": 0.0, "pairs_preferred_shorter": 2})
    );
}
