//! Length bias through `POST /v1/evaluate`: items carry a `length` in every input format (`pairs`:
//! `chosen_length`/`rejected_length`; `ranking`: a `lengths` object by id), and the batch's
//! `summary.length` is checked against a brute-force computation written here from the
//! definitions of docs/design/math.md, "Length bias": every implied pair of every list, one at a
//! time. The data are seeded random lists with ties of rank, of reward and of length, and items
//! without a length.

use serde_json::{Value, json};

use crate::helpers::{SplitMix64, TestApp};

/// One list as the test knows it: each item's human rank (1 = best), reward and length.
#[derive(Clone, Debug)]
struct Item {
    rank: u64,
    reward: f64,
    length: Option<f64>,
}

/// `count` lists of 2–7 items: ranks with ties, rewards on a grid of ½ (ties), lengths on a
/// small grid (ties), a quarter of the items without one, integers and fractions alike.
fn random_lists(seed: u64, count: usize) -> Vec<Vec<Item>> {
    let mut rng = SplitMix64::new(seed);
    (0..count)
        .map(|_| {
            let n = 2 + rng.below(6) as usize;
            let mut items: Vec<Item> = (0..n)
                .map(|_| Item {
                    rank: 1 + rng.below(4),
                    reward: rng.below(9) as f64 / 2.0 - 2.0,
                    length: (rng.below(4) != 0).then(|| [0.0, 3.0, 12.0, 12.5, 40.0][rng.below(5) as usize]),
                })
                .collect();
            // At least one preference per list.
            items[0].rank = 1;
            items[1].rank = 5;
            items
        })
        .collect()
}

/// The figures of math.md's "Length bias", straight from the definitions over every implied pair
/// (w ≻ v: w has the better rank) whose two items both have a length; `None` when there is none.
fn brute_force(lists: &[Vec<Item>]) -> Option<Value> {
    let score = |x: f64, y: f64| {
        if x > y {
            1.0
        } else if x == y {
            0.5
        } else {
            0.0
        }
    };
    let (mut baseline, mut follows, mut longer, mut shorter) = (vec![], vec![], vec![], vec![]);
    for items in lists {
        for w in items {
            for v in items {
                let (Some(lw), Some(lv)) = (w.length, v.length) else { continue };
                if w.rank >= v.rank {
                    continue;
                }
                baseline.push(score(lw, lv));
                if lw != lv {
                    // The longer item has the higher reward.
                    follows.push(if lw > lv { score(w.reward, v.reward) } else { score(v.reward, w.reward) });
                }
                if lw > lv {
                    longer.push(score(w.reward, v.reward));
                } else if lw < lv {
                    shorter.push(score(w.reward, v.reward));
                }
            }
        }
    }
    if baseline.is_empty() {
        return None;
    }
    let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len() as f64;
    let mut figures = json!({
        "pairs": baseline.len(),
        "baseline_accuracy": mean(&baseline),
        "pairs_preferred_longer": longer.len(),
        "pairs_preferred_shorter": shorter.len(),
    });
    for (name, values) in [
        ("reward_follows_length", &follows),
        ("accuracy_preferred_longer", &longer),
        ("accuracy_preferred_shorter", &shorter),
    ] {
        if !values.is_empty() {
            figures[name] = json!(mean(values));
        }
    }
    Some(figures)
}

/// A number as JSON: integral lengths written as integers, as exports do.
fn number(x: f64) -> Value {
    if x.fract() == 0.0 { json!(x as i64) } else { json!(x) }
}

/// The lists in `format`, with their lengths or without. `pairs` takes each implied pair of the
/// lists as one list (chosen = the better ranked item), which has the same pairs.
fn lists_in(format: &str, lists: &[Vec<Item>], with_lengths: bool) -> Vec<Value> {
    let length = |item: &Item| item.length.filter(|_| with_lengths).map(number);
    match format {
        "native" | "ratings" | "ranks_zero_based" => lists
            .iter()
            .enumerate()
            .map(|(i, items)| {
                let items: Vec<Value> = items
                    .iter()
                    .enumerate()
                    .map(|(k, item)| {
                        let mut json = json!({"id": format!("i{k}"), "reward": item.reward});
                        match format {
                            "native" => json["rank"] = json!(item.rank),
                            "ranks_zero_based" => json["rank"] = json!(item.rank - 1),
                            _ => json["rating"] = json!(10 - item.rank),
                        }
                        if let Some(length) = length(item) {
                            json["length"] = length;
                        }
                        json
                    })
                    .collect();
                json!({"id": format!("l{i}"), "items": items})
            })
            .collect(),
        "ranking" => lists
            .iter()
            .map(|items| {
                let mut ranks: Vec<u64> = items.iter().map(|item| item.rank).collect();
                ranks.sort_unstable();
                ranks.dedup();
                let ranking: Vec<Value> = ranks
                    .iter()
                    .map(|&rank| {
                        let ids: Vec<String> =
                            (0..items.len()).filter(|&k| items[k].rank == rank).map(|k| format!("i{k}")).collect();
                        if ids.len() == 1 { json!(ids[0]) } else { json!(ids) }
                    })
                    .collect();
                let rewards: serde_json::Map<String, Value> =
                    items.iter().enumerate().map(|(k, item)| (format!("i{k}"), json!(item.reward))).collect();
                let lengths: serde_json::Map<String, Value> =
                    items.iter().enumerate().filter_map(|(k, item)| Some((format!("i{k}"), length(item)?))).collect();
                let mut list = json!({"ranking": ranking, "rewards": rewards});
                if !lengths.is_empty() {
                    list["lengths"] = Value::Object(lengths);
                }
                list
            })
            .collect(),
        "pairs" => {
            let mut pairs = Vec::new();
            for items in lists {
                for w in items {
                    for v in items.iter().filter(|v| w.rank < v.rank) {
                        let mut list = json!({"chosen_reward": w.reward, "rejected_reward": v.reward});
                        if let Some(length) = length(w) {
                            list["chosen_length"] = length;
                        }
                        if let Some(length) = length(v) {
                            list["rejected_length"] = length;
                        }
                        pairs.push(list);
                    }
                }
            }
            pairs
        }
        _ => unreachable!("{format}"),
    }
}

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
        // The counts beside them give them back.
        let totals = &summary["totals"]["length"];
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
