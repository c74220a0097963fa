//! Seeded lists whose items carry lengths, written in every input format, and the length-bias
//! figures of docs/design/math.md, "Length bias", computed from their definitions by brute force
//! over the implied pairs, one at a time. Shared by the HTTP tests (`tests/api/length.rs`) and the
//! tests of the built binary (`tests/cli/length_doors.rs`).

use serde_json::{Value, json};

use crate::helpers::SplitMix64;

/// One list as the test knows it: each item's human rank (1 = best), reward and length.
#[derive(Clone, Debug)]
pub(crate) struct Item {
    pub(crate) rank: u64,
    pub(crate) reward: f64,
    pub(crate) length: Option<f64>,
}

/// `count` lists of 2–7 items: ranks with ties, rewards on a grid of ½ (ties), lengths on a
/// small grid (ties), a quarter of the items without one, integers and fractions alike.
pub(crate) fn random_lists(seed: u64, count: usize) -> Vec<Vec<Item>> {
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

/// Every implied pair (w ≻ v: w has the better rank) of every list whose two items both have a
/// length, as (ℓ_w, ℓ_v, r_w, r_v).
fn pairs_with_lengths(lists: &[Vec<Item>]) -> Vec<(f64, f64, f64, f64)> {
    let mut pairs = Vec::new();
    for items in lists {
        for w in items {
            for v in items.iter().filter(|v| w.rank < v.rank) {
                if let (Some(lw), Some(lv)) = (w.length, v.length) {
                    pairs.push((lw, lv, w.reward, v.reward));
                }
            }
        }
    }
    pairs
}

/// 1 when x > y, ½ on a tie, 0 otherwise.
fn score(x: f64, y: f64) -> f64 {
    if x > y {
        1.0
    } else if x == y {
        0.5
    } else {
        0.0
    }
}

/// The figures of math.md's "Length bias" (a summary's `length`), straight from the definitions
/// over every implied pair whose two items both have a length; `None` when there is none.
pub(crate) fn brute_force(lists: &[Vec<Item>]) -> Option<Value> {
    let (mut baseline, mut follows, mut longer, mut shorter) = (vec![], vec![], vec![], vec![]);
    for (lw, lv, rw, rv) in pairs_with_lengths(lists) {
        baseline.push(score(lw, lv));
        if lw != lv {
            // The longer item has the higher reward.
            follows.push(if lw > lv { score(rw, rv) } else { score(rv, rw) });
        }
        if lw > lv {
            longer.push(score(rw, rv));
        } else if lw < lv {
            shorter.push(score(rw, rv));
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

/// The pair counts a summary carries beside the figures (`totals.length`), counted one pair at a
/// time: agreements are the model's scores summed (a reward tie counts ½).
pub(crate) fn brute_force_totals(lists: &[Vec<Item>]) -> Value {
    let pairs = pairs_with_lengths(lists);
    let longer: Vec<f64> = pairs.iter().filter(|p| p.0 > p.1).map(|&(_, _, rw, rv)| score(rw, rv)).collect();
    let shorter: Vec<f64> = pairs.iter().filter(|p| p.0 < p.1).map(|&(_, _, rw, rv)| score(rw, rv)).collect();
    json!({
        "pairs": pairs.len(),
        "pairs_preferred_longer": longer.len(),
        "agreeing_preferred_longer": longer.iter().sum::<f64>(),
        "pairs_preferred_shorter": shorter.len(),
        "agreeing_preferred_shorter": shorter.iter().sum::<f64>(),
    })
}

/// A number as JSON: integral lengths written as integers, as exports do.
fn number(x: f64) -> Value {
    if x.fract() == 0.0 { json!(x as i64) } else { json!(x) }
}

/// The lists in `format`, with their lengths or without. `pairs` takes each implied pair of the
/// lists as one list (chosen = the better ranked item), which has the same pairs.
pub(crate) fn lists_in(format: &str, lists: &[Vec<Item>], with_lengths: bool) -> Vec<Value> {
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
