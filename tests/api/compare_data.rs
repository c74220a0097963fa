//! Seeded lists for comparisons, in `/v1/compare`'s shape: shared by the HTTP tests
//! (`tests/api/compare_stream.rs`) and those of the built binary (`tests/cli/compare_runs.rs`).

use serde_json::{Value, json};

use crate::helpers::SplitMix64;

/// `lists` lists for `models` models with ids, 2 to 6 items each, on a grid of rewards (models tie
/// sometimes), ranked by array order or by ranks with ties, one in three with lengths.
pub(crate) fn compare_lists(seed: u64, lists: usize, models: usize) -> Vec<Value> {
    let mut rng = SplitMix64::new(seed);
    (0..lists)
        .map(|index| {
            let n = 2 + rng.below(5) as usize;
            let ranked = rng.below(2) == 0;
            let lengths = rng.below(3) == 0;
            let mut items: Vec<Value> = (0..n)
                .map(|k| {
                    let rewards: Vec<f64> = (0..models).map(|_| (rng.below(41) as f64 - 20.0) / 8.0).collect();
                    json!({"id": format!("r{k}"), "rewards": rewards})
                })
                .collect();
            if ranked {
                for item in &mut items {
                    item["rank"] = json!(1 + rng.below(3));
                }
                items[0]["rank"] = json!(1);
                items[1]["rank"] = json!(2);
            }
            if lengths {
                // Ties of length, and now and then an item without one.
                for item in &mut items {
                    if rng.below(5) > 0 {
                        item["length"] = json!(rng.below(6) * 10);
                    }
                }
            }
            json!({"id": format!("p{index}"), "items": items})
        })
        .collect()
}
