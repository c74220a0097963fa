//! Test-only: the answers as serde's derive writes them (`PairReference`, `ListReference`),
//! which the hand-written encoders must match byte for byte, and the data they are compared on
//! (floats of every kind, ids that need every escape, random batches under several options).
//!
//! It must not be used outside tests, nor call the encoders it checks.

use serde::Serialize;

use crate::limits::Limits;
use crate::math::ListEvaluation;
use crate::pipeline::format::ListInput;
use crate::pipeline::wire::Id;
use crate::pipeline::{Options, Sequential, evaluate, validate};
use prefeval_testkit::SplitMix64 as Random;

/// Floats of every kind: chosen edge cases, then random bit patterns (subnormals, huge and
/// tiny magnitudes, NaN and infinities), probabilities and log-probabilities.
pub(super) fn floats(random: &mut Random, count: usize) -> Vec<f64> {
    let mut floats = vec![
        0.0,
        -0.0,
        0.5,
        1.0,
        -1.0,
        0.1,
        1e-300,
        -1e-300,
        5e-324,
        f64::MIN_POSITIVE,
        f64::MIN_POSITIVE / 3.0,
        f64::MAX,
        f64::MIN,
        f64::EPSILON,
        1.0 - f64::EPSILON / 2.0,
        1e-7,
        1e15,
        1e16,
        1e17,
        1e21,
        1e22,
        0.7858349830425586,
        -0.24100845383299224,
        -1e-17,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ];
    for _ in 0..count {
        let bits = random.next_u64();
        floats.push(f64::from_bits(bits));
        // Exponent bits all zero: a subnormal.
        floats.push(f64::from_bits(bits >> 12));
        floats.push(random.unit());
        floats.push(-random.unit() * 40.0);
        floats.push(random.unit().powi(40));
    }
    floats
}

/// A pair as serde's derive writes it: what the pair encoders must match byte for byte.
#[derive(Serialize)]
pub(super) struct PairReference<'a> {
    pub(super) preferred: u32,
    pub(super) other: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) preferred_id: Option<&'a Id<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) other_id: Option<&'a Id<'a>>,
    pub(super) probability: f64,
    pub(super) log_probability: f64,
}

/// Ids that need every kind of escape, and none.
pub(super) const IDS: [Option<&str>; 10] = [
    None,
    Some(""),
    Some("C"),
    Some("quote \" and backslash \\"),
    Some("controls \u{0}\u{1}\u{8}\u{9}\u{a}\u{c}\u{d}\u{1f} and \u{7f}"),
    Some("é ☃ 😀"),
    Some("line separators \u{2028}\u{2029}"),
    Some("</script>"),
    Some("slash / and tab\t"),
    Some("resp-12"),
];

/// A list result as serde's derive writes it.
#[derive(Serialize)]
pub(super) struct ListReference<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) id: Option<&'a Id<'a>>,
    pub(super) n: usize,
    pub(super) pairs_count: u64,
    pub(super) loss: f64,
    pub(super) accuracy: f64,
    pub(super) chance_loss: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) kendall_tau: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) gradients: Option<&'a [f64]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) pairs: Option<Vec<PairReference<'a>>>,
}

impl<'a> ListReference<'a> {
    pub(super) fn new(line: Option<u64>, input: &'a ListInput<'a>, e: &'a ListEvaluation, pair_ids: bool) -> Self {
        let id_of = |index: u32| {
            let item = input.items.get(index as usize).filter(|_| pair_ids);
            item.and_then(|item| item.id.as_ref())
        };
        let pairs = e.pairs.as_ref().map(|pairs| {
            pairs
                .iter()
                .map(|p| PairReference {
                    preferred: p.preferred,
                    other: p.other,
                    preferred_id: id_of(p.preferred),
                    other_id: id_of(p.other),
                    probability: p.probability,
                    log_probability: p.log_probability,
                })
                .collect()
        });
        ListReference {
            line,
            id: input.id.as_ref(),
            n: e.n,
            pairs_count: e.pairs_count,
            loss: e.loss,
            accuracy: e.accuracy,
            chance_loss: e.chance_loss,
            kendall_tau: e.kendall_tau,
            gradients: e.gradients.as_deref(),
            pairs,
        }
    }
}

/// A batch body of random lists: ids with escapes or none, ranks with ties or array order,
/// equal rewards, groups, lengths (with ties, on some items of some lists).
fn random_batch(random: &mut Random, options: serde_json::Value) -> Vec<u8> {
    let lists: Vec<serde_json::Value> = (0..40)
        .map(|index| {
            let n = 2 + random.below(9) as usize;
            let ranked = random.below(2) == 0;
            let items: Vec<serde_json::Value> = (0..n)
                .map(|k| {
                    let mut item = serde_json::json!({"reward": (random.unit() - 0.5) * 8.0});
                    if random.below(5) == 0 {
                        item["reward"] = serde_json::json!(1.0);
                    }
                    if let Some(id) = IDS[random.below(IDS.len() as u64) as usize] {
                        item["id"] = serde_json::json!(format!("{id}{k}"));
                    }
                    if ranked {
                        item["rank"] = serde_json::json!(1 + random.below(3));
                    }
                    if index % 5 == 2 && k != 1 {
                        item["length"] = serde_json::json!((k % 3) * 10);
                    }
                    item
                })
                .collect();
            let mut list = serde_json::json!({"items": items});
            if ranked {
                // At least two ranks, so the list implies a preference.
                list["items"][0]["rank"] = serde_json::json!(1);
                list["items"][1]["rank"] = serde_json::json!(4);
            }
            if index % 3 != 0 {
                list["id"] = serde_json::json!(format!("prompt \"{index}\" é"));
            }
            if index % 4 == 1 {
                list["group"] = serde_json::json!(["a", "b"][index % 2]);
            }
            list
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({"options": options, "lists": lists})).unwrap()
}

/// Random batches under each set of options, decoded and evaluated: what the answers and the
/// stream lines are checked on.
pub(super) fn for_each_random_batch(mut check: impl FnMut(&validate::Batch<'_>, &[ListEvaluation])) {
    let limits = Limits {
        max_line_bytes: 1 << 20,
        max_items_per_list: 100,
        max_lists: 100,
        max_pairs: 1 << 20,
        max_evaluated_pairs: 1 << 20,
    };
    let mut random = Random::new(0xA115);
    let option_sets = [
        serde_json::json!({}),
        serde_json::json!({"include_pair_ids": true}),
        serde_json::json!({"include_pairs": false, "include_pair_ids": true}),
        serde_json::json!({"include_pair_ids": true, "include_gradients": true, "calibration_bins": 7,
                           "top_disagreements": 5, "normalization": "sum", "beta": 0.3}),
        serde_json::json!({"include_gradients": true, "calibration_bins": 3, "top_disagreements": 50,
                           "confidence": 0.8}),
    ];
    for options in option_sets.iter().cycle().take(20) {
        let body = random_batch(&mut random, options.clone());
        let batch = validate::batch(&body, &limits, &Options::default(), &Default::default()).unwrap();
        let evaluations: Vec<ListEvaluation> =
            evaluate(&batch.ranked, &batch.options.math, &Sequential).into_iter().map(Result::unwrap).collect();
        check(&batch, &evaluations);
    }
}
