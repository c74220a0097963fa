//! The promises of `docs/design/math.md`, checked over HTTP: property tests (proptest) on random
//! ranked lists, and fixed cases whose values follow from the formulas in closed form.

use std::collections::{BTreeMap, BTreeSet};
use std::f64::consts::LN_2;

use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::runtime::Runtime;

use crate::helpers::{Answer, TestApp, close};

// ---------------------------------------------------------------------------------------------
// Harness

/// Runs `property` on 64 values of `strategy`, with one runtime and one server for all of them.
fn check_property<S: Strategy>(
    strategy: S,
    property: impl Fn(&Runtime, &TestApp, S::Value) -> Result<(), TestCaseError>,
) {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime starts");
    let app = runtime.block_on(TestApp::spawn());
    let config = ProptestConfig { cases: 64, source_file: Some(file!()), ..ProptestConfig::default() };
    let mut runner = TestRunner::new(config);
    if let Err(error) = runner.run(&strategy, |value| property(&runtime, &app, value)) {
        panic!("{error}");
    }
}

/// POSTs `body` and returns the 200 answer's JSON; any other status fails the case.
fn evaluate(runtime: &Runtime, app: &TestApp, body: &Value) -> Result<Value, TestCaseError> {
    let answer = runtime.block_on(app.evaluate(body));
    prop_assert_eq!(answer.status, 200, "request {} answered {}", body, String::from_utf8_lossy(&answer.body));
    Ok(answer.json())
}

fn ok_json(answer: &Answer) -> Value {
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    answer.json()
}

fn num(value: &Value) -> f64 {
    value.as_f64().unwrap_or_else(|| panic!("expected a number, got {value}"))
}

fn count(value: &Value) -> u64 {
    value.as_u64().unwrap_or_else(|| panic!("expected a non-negative integer, got {value}"))
}

/// |a − b| ≤ rel · max(|a|, |b|): a purely relative check (two zeros are equal).
fn rel_close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs())
}

/// A list's pairs keyed by (preferred, other), each with (probability, log_probability).
fn pairs_of(list: &Value) -> BTreeMap<(u64, u64), (f64, f64)> {
    let pairs = list["pairs"].as_array().unwrap_or_else(|| panic!("no pairs in {list}"));
    let map: BTreeMap<_, _> = pairs
        .iter()
        .map(|p| ((count(&p["preferred"]), count(&p["other"])), (num(&p["probability"]), num(&p["log_probability"]))))
        .collect();
    assert_eq!(map.len(), pairs.len(), "a pair appears twice in {list}");
    map
}

/// log σ(z), written independently of the server: −ln(1 + e^(−z)) for z ≥ 0, z − ln(1 + e^z) below.
fn oracle_log_sigmoid(z: f64) -> f64 {
    if z >= 0.0 { -(-z).exp().ln_1p() } else { z - z.exp().ln_1p() }
}

fn oracle_sigmoid(z: f64) -> f64 {
    oracle_log_sigmoid(z).exp()
}

/// Neumaier-compensated sum, for the test's own reference values.
#[derive(Default)]
struct CompensatedSum {
    sum: f64,
    carry: f64,
}

impl CompensatedSum {
    fn add(&mut self, x: f64) {
        let t = self.sum + x;
        self.carry += if self.sum.abs() >= x.abs() { (self.sum - t) + x } else { (x - t) + self.sum };
        self.sum = t;
    }

    fn value(&self) -> f64 {
        self.sum + self.carry
    }
}

// ---------------------------------------------------------------------------------------------
// Generators

#[derive(Clone, Debug)]
struct List {
    rewards: Vec<f64>,
    /// One rank per item (1 = best, ties allowed), or `None` for "array order is the ranking".
    ranks: Option<Vec<u64>>,
}

impl List {
    fn len(&self) -> usize {
        self.rewards.len()
    }

    fn to_json(&self) -> Value {
        let items: Vec<Value> = self
            .rewards
            .iter()
            .enumerate()
            .map(|(i, &reward)| match &self.ranks {
                Some(ranks) => json!({"reward": reward, "rank": ranks[i]}),
                None => json!({"reward": reward}),
            })
            .collect();
        json!({ "items": items })
    }

    /// The same list with every reward shifted by `c`.
    fn shifted(&self, c: f64) -> List {
        List { rewards: self.rewards.iter().map(|r| r + c).collect(), ranks: self.ranks.clone() }
    }

    /// True when item `a` is ranked strictly better than item `b`.
    fn prefers(&self, a: usize, b: usize) -> bool {
        match &self.ranks {
            Some(ranks) => ranks[a] < ranks[b],
            None => a < b,
        }
    }

    /// The implied preferences, computed by the test from the definition.
    fn implied_pairs(&self) -> BTreeSet<(u64, u64)> {
        let n = self.len();
        (0..n)
            .flat_map(|a| (0..n).map(move |b| (a, b)))
            .filter(|&(a, b)| self.prefers(a, b))
            .map(|(a, b)| (a as u64, b as u64))
            .collect()
    }

    fn has_rank_ties(&self) -> bool {
        self.ranks.as_ref().is_some_and(|ranks| {
            let distinct: BTreeSet<_> = ranks.iter().collect();
            distinct.len() < ranks.len()
        })
    }
}

/// Multiples of 1/4 in [−2, 2] (frequent reward ties) or of 1/8 in [−50, 50]: both exact in
/// binary, so adding a dyadic shift to them is exact too.
fn dyadic_reward() -> BoxedStrategy<f64> {
    prop_oneof![(-8i32..=8).prop_map(|k| f64::from(k) / 4.0), (-400i32..=400).prop_map(|k| f64::from(k) / 8.0),].boxed()
}

/// Dyadic rewards (with ties) and arbitrary reals in [−50, 50).
fn any_reward() -> BoxedStrategy<f64> {
    prop_oneof![dyadic_reward(), -50.0..50.0f64].boxed()
}

/// `n` ranks with at least one strict preference: ties and gaps, or a strict permutation.
fn ranks(n: usize) -> BoxedStrategy<Vec<u64>> {
    let strict: Vec<u64> = (1..=n as u64).collect();
    prop_oneof![
        prop::collection::vec(1u64..=4, n)
            .prop_filter("some item must be ranked above another", |r| r.iter().any(|&x| x != r[0])),
        Just(strict.clone()).prop_shuffle(),
        Just(strict).prop_shuffle().prop_map(|r| r.into_iter().map(|x| 10 * x + 3).collect()),
    ]
    .boxed()
}

/// 2 to 12 items with rewards from `reward`, ranked by array order or by explicit ranks.
fn list_with(reward: BoxedStrategy<f64>) -> BoxedStrategy<List> {
    (2usize..=12)
        .prop_flat_map(move |n| {
            (prop::collection::vec(reward.clone(), n), prop::option::of(ranks(n)))
                .prop_map(|(rewards, ranks)| List { rewards, ranks })
        })
        .boxed()
}

fn any_list() -> BoxedStrategy<List> {
    list_with(any_reward())
}

/// A list with explicit ranks (ties possible).
fn ranked_list() -> BoxedStrategy<List> {
    (2usize..=12)
        .prop_flat_map(|n| {
            (prop::collection::vec(any_reward(), n), ranks(n))
                .prop_map(|(rewards, ranks)| List { rewards, ranks: Some(ranks) })
        })
        .boxed()
}

/// β = 1 half of the time, else anything in [0.25, 4): with rewards in [−50, 50] every
/// |β·(r_a − r_b)| stays ≤ 400, far from overflow and from e^(−z) underflowing to 0.
fn beta() -> BoxedStrategy<f64> {
    prop_oneof![Just(1.0), 0.25..4.0f64].boxed()
}

const NORMALIZATIONS: [&str; 3] = ["ordered_pairs", "comparisons", "sum"];

fn normalization() -> BoxedStrategy<&'static str> {
    prop::sample::select(NORMALIZATIONS.to_vec()).boxed()
}

fn request(lists: &[&List], beta: f64, normalization: &str, include_pairs: bool) -> Value {
    let lists: Vec<Value> = lists.iter().map(|l| l.to_json()).collect();
    json!({
        "options": {"beta": beta, "normalization": normalization, "include_pairs": include_pairs},
        "lists": lists,
    })
}

/// Asserts that two evaluated lists agree in every figure: counts exactly, numbers per `same`.
fn assert_same_list(
    got: &Value,
    expected: &Value,
    same: impl Fn(f64, f64) -> bool,
    what: &str,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(&got["n"], &expected["n"], "{}: n", what);
    prop_assert_eq!(&got["pairs_count"], &expected["pairs_count"], "{}: pairs_count", what);
    let (gl, el) = (num(&got["loss"]), num(&expected["loss"]));
    prop_assert!(same(gl, el), "{}: loss {:e} vs {:e}", what, gl, el);
    prop_assert_eq!(num(&got["accuracy"]), num(&expected["accuracy"]), "{}: accuracy", what);
    let (gp, ep) = (pairs_of(got), pairs_of(expected));
    prop_assert_eq!(gp.keys().collect::<Vec<_>>(), ep.keys().collect::<Vec<_>>(), "{}: pairs", what);
    for (key, &(p, lp)) in &gp {
        let (eprob, elp) = ep[key];
        prop_assert!(same(p, eprob), "{}: pair {:?} probability {:e} vs {:e}", what, key, p, eprob);
        prop_assert!(same(lp, elp), "{}: pair {:?} log_probability {:e} vs {:e}", what, key, lp, elp);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Properties

/// Dyadic rewards (multiples of 1/8, |r| ≤ 50) plus a dyadic shift (multiple of 1/8, |c| ≤ 100):
/// every r + c is exact in f64, so every difference r_a − r_b, and therefore every probability,
/// is mathematically unchanged. The spec's own tolerance (close(): relative 1e-12) is demanded.
#[test]
fn dyadic_shift_of_all_rewards_changes_no_probability_loss_or_accuracy() {
    let shift = (-800i32..=800).prop_map(|k| f64::from(k) / 8.0);
    check_property(
        (list_with(dyadic_reward()), shift, beta(), normalization()),
        |runtime, app, (list, c, beta, normalization)| {
            let shifted = list.shifted(c);
            let body = request(&[&list, &shifted], beta, normalization, true);
            let answer = evaluate(runtime, app, &body)?;
            assert_same_list(&answer["lists"][1], &answer["lists"][0], close, "shifted vs original")
        },
    );
}

/// Arbitrary real rewards in [−50, 50) and shift in [−100, 100), β = 1. Here r + c rounds: each
/// shifted reward is off by at most half an ulp of a number below 256, 2^−46 ≈ 1.4e−14, so
/// z = r_a − r_b moves by δz ≤ 2.9e−14 (plus the subtraction's own rounding, ≤ 1.1e−16·|z| ≤ 1.2e−14).
/// The relative change of σ(z) is (1 − σ(z))·δz ≤ δz, and that of log σ(z) is
/// δz·σ(−z)/softplus(−z) ≤ δz (since x/(1+x) ≤ ln(1+x)); a loss is a sum of same-sign terms, so
/// its relative change is bounded by the largest term's. Hence relative 1e−12 holds with a
/// margin of more than 20×. Rounding is monotone, so no reward order flips (accuracy is exact).
#[test]
fn real_shift_of_all_rewards_changes_probabilities_and_loss_by_less_than_1e_minus_12() {
    check_property((any_list(), -100.0..100.0f64, normalization()), |runtime, app, (list, c, normalization)| {
        let shifted = list.shifted(c);
        // A shift can only merge two rewards less than an ulp apart; none are generated that close.
        let distinct = |l: &List| l.rewards.iter().map(|r| r.to_bits()).collect::<BTreeSet<_>>().len();
        prop_assume!(distinct(&list) == distinct(&shifted));
        let body = request(&[&list, &shifted], 1.0, normalization, true);
        let answer = evaluate(runtime, app, &body)?;
        assert_same_list(&answer["lists"][1], &answer["lists"][0], |a, b| rel_close(a, b, 1e-12), "shifted vs original")
    });
}

/// [a, b] and [b, a] (array order = ranking): Pr(a ≻ b) + Pr(b ≻ a) = 1, and the log
/// probabilities differ by exactly the logit β·(a − b).
#[test]
fn reversing_a_pair_gives_complementary_probabilities() {
    check_property((any_reward(), any_reward(), beta()), |runtime, app, (a, b, beta)| {
        let forward = List { rewards: vec![a, b], ranks: None };
        let backward = List { rewards: vec![b, a], ranks: None };
        let answer = evaluate(runtime, app, &request(&[&forward, &backward], beta, "ordered_pairs", true))?;
        let (p_ab, lp_ab) = pairs_of(&answer["lists"][0])[&(0, 1)];
        let (p_ba, lp_ba) = pairs_of(&answer["lists"][1])[&(0, 1)];
        prop_assert!((p_ab + p_ba - 1.0).abs() <= 1e-15, "Pr(a≻b) + Pr(b≻a) = {:e} + {:e} ≠ 1", p_ab, p_ba);
        prop_assert!(lp_ab <= 0.0 && lp_ba <= 0.0, "log probabilities {} and {} must be ≤ 0", lp_ab, lp_ba);
        // log σ(z) − log σ(−z) = z; each log is within an ulp or two of a number of size ≤ |z| + 1.
        let z = beta * (a - b);
        prop_assert!(
            ((lp_ab - lp_ba) - z).abs() <= 1e-12 * z.abs().max(1.0),
            "log Pr(a≻b) − log Pr(b≻a) = {:e}, expected the logit {:e}",
            lp_ab - lp_ba,
            z
        );
        // exp(log p) = p: exp turns an absolute error ε·|log p| ≤ 400ε into a relative one.
        prop_assert!(rel_close(lp_ab.exp(), p_ab, 1e-12), "exp({:e}) ≠ {:e}", lp_ab, p_ab);
        prop_assert!(rel_close(lp_ba.exp(), p_ba, 1e-12), "exp({:e}) ≠ {:e}", lp_ba, p_ba);
        // Two items: the ordered_pairs loss is −log p / 2, and exactly one of the lists agrees
        // with the rewards (or both score a half on a tie).
        prop_assert!(close(num(&answer["lists"][0]["loss"]), -lp_ab / 2.0));
        prop_assert!(close(num(&answer["lists"][1]["loss"]), -lp_ba / 2.0));
        let accuracies = num(&answer["lists"][0]["accuracy"]) + num(&answer["lists"][1]["accuracy"]);
        prop_assert_eq!(accuracies, 1.0);
        Ok(())
    });
}

/// Equal rewards give exactly 0.5; a higher reward for the preferred item gives more than 0.5
/// (lower, less); every probability matches σ(β·(r_a − r_b)); the pairs are exactly the implied ones.
#[test]
fn probabilities_follow_the_sign_of_the_reward_difference() {
    check_property((any_list(), beta()), |runtime, app, (list, beta)| {
        let answer = evaluate(runtime, app, &request(&[&list], beta, "ordered_pairs", true))?;
        let pairs = pairs_of(&answer["lists"][0]);
        prop_assert_eq!(pairs.keys().copied().collect::<BTreeSet<_>>(), list.implied_pairs());
        for (&(a, b), &(p, lp)) in &pairs {
            let (ra, rb) = (list.rewards[a as usize], list.rewards[b as usize]);
            let z = beta * (ra - rb);
            if ra == rb {
                prop_assert_eq!(p, 0.5, "equal rewards {} at {:?}", ra, (a, b));
                prop_assert!(close(lp, -LN_2), "log probability {:e} for equal rewards", lp);
            } else if z > 1e-12 {
                prop_assert!(p > 0.5, "σ({:e}) = {} should exceed 0.5", z, p);
            } else if z < -1e-12 {
                prop_assert!(p < 0.5, "σ({:e}) = {} should be below 0.5", z, p);
            }
            prop_assert!(close(p, oracle_sigmoid(z)), "σ({:e}): got {:e}, expected {:e}", z, p, oracle_sigmoid(z));
            prop_assert!(close(lp, oracle_log_sigmoid(z)), "log σ({:e}): got {:e}", z, lp);
        }
        Ok(())
    });
}

/// With explicit ranks the array order does not matter: permuting the items together with their
/// ranks gives the same loss and accuracy, and the same pairs once indices are mapped back.
#[test]
fn permuting_ranked_items_changes_nothing_but_indices() {
    let strategy = ranked_list().prop_flat_map(|list| {
        let order: Vec<usize> = (0..list.len()).collect();
        (Just(list), Just(order).prop_shuffle(), beta(), normalization())
    });
    check_property(strategy, |runtime, app, (list, order, beta, normalization)| {
        let ranks = list.ranks.as_ref().expect("ranked");
        // Item j of the permuted list is item order[j] of the original.
        let permuted = List {
            rewards: order.iter().map(|&i| list.rewards[i]).collect(),
            ranks: Some(order.iter().map(|&i| ranks[i]).collect()),
        };
        let answer = evaluate(runtime, app, &request(&[&list, &permuted], beta, normalization, true))?;
        let (original, moved) = (&answer["lists"][0], &answer["lists"][1]);
        prop_assert_eq!(&moved["pairs_count"], &original["pairs_count"]);
        prop_assert!(
            close(num(&moved["loss"]), num(&original["loss"])),
            "loss {} vs {}",
            moved["loss"],
            original["loss"]
        );
        prop_assert_eq!(num(&moved["accuracy"]), num(&original["accuracy"]));
        let mapped: BTreeMap<(u64, u64), (f64, f64)> = pairs_of(moved)
            .into_iter()
            .map(|((a, b), v)| ((order[a as usize] as u64, order[b as usize] as u64), v))
            .collect();
        let original_pairs = pairs_of(original);
        prop_assert_eq!(mapped.keys().collect::<Vec<_>>(), original_pairs.keys().collect::<Vec<_>>());
        for (key, &(p, lp)) in &mapped {
            let (ep, elp) = original_pairs[key];
            prop_assert!(close(p, ep) && close(lp, elp), "pair {:?}: ({}, {}) vs ({}, {})", key, p, lp, ep, elp);
        }
        Ok(())
    });
}

/// The loss of a strictly ranked list of `n` items whose pairs all have probability 1/2:
/// (n(n−1)/2 · ln 2) / Z, i.e. ln(2)/2 for Z = n(n−1), ln 2 for Z = n(n−1)/2.
fn uniform_loss(normalization: &str, n: u64) -> f64 {
    let pairs = (n * (n - 1) / 2) as f64;
    match normalization {
        "ordered_pairs" => LN_2 / 2.0,
        "comparisons" => LN_2,
        "sum" => pairs * LN_2,
        other => panic!("unknown normalization {other}"),
    }
}

/// All rewards equal in a strictly ranked list of N items: every pair has probability 1/2, so the
/// loss is ln(2)/2 under ordered_pairs, ln 2 under comparisons, N(N−1)/2 · ln 2 under sum;
/// accuracy is 1/2 (every pair is a reward tie).
#[test]
fn equal_rewards_in_a_strict_ranking_give_the_uniform_loss() {
    let strategy = (2usize..=12).prop_flat_map(|n| {
        let strict: Vec<u64> = (1..=n as u64).collect();
        (Just(n), any_reward(), prop::option::of(Just(strict).prop_shuffle()), beta(), normalization())
    });
    check_property(strategy, |runtime, app, (n, reward, ranks, beta, normalization)| {
        let list = List { rewards: vec![reward; n], ranks };
        let answer = evaluate(runtime, app, &request(&[&list], beta, normalization, false))?;
        let expected = uniform_loss(normalization, n as u64);
        let got = &answer["lists"][0];
        prop_assert!(close(num(&got["loss"]), expected), "{}: loss {} ≠ {:e}", normalization, got["loss"], expected);
        prop_assert!(close(num(&answer["loss"]), expected));
        prop_assert_eq!(num(&got["accuracy"]), 0.5);
        prop_assert_eq!(count(&got["pairs_count"]), (n * (n - 1) / 2) as u64);
        Ok(())
    });
}

/// Loss is finite and ≥ 0 under every normalization; accuracies lie in [0, 1]; probabilities in
/// [0, 1] and their logs ≤ 0.
#[test]
fn losses_are_non_negative_and_accuracies_lie_in_the_unit_interval() {
    let strategy = (prop::collection::vec(any_list(), 1..4), beta(), normalization());
    check_property(strategy, |runtime, app, (lists, beta, normalization)| {
        let refs: Vec<&List> = lists.iter().collect();
        let answer = evaluate(runtime, app, &request(&refs, beta, normalization, true))?;
        prop_assert_eq!(answer["normalization"].as_str(), Some(normalization));
        let loss = num(&answer["loss"]);
        prop_assert!(loss.is_finite() && loss >= 0.0, "batch loss {}", loss);
        let accuracy = num(&answer["summary"]["accuracy"]);
        prop_assert!((0.0..=1.0).contains(&accuracy), "batch accuracy {}", accuracy);
        for list in answer["lists"].as_array().unwrap() {
            let (loss, accuracy) = (num(&list["loss"]), num(&list["accuracy"]));
            prop_assert!(loss.is_finite() && loss >= 0.0, "list loss {}", loss);
            prop_assert!((0.0..=1.0).contains(&accuracy), "list accuracy {}", accuracy);
            for (key, (p, lp)) in pairs_of(list) {
                prop_assert!((0.0..=1.0).contains(&p), "pair {:?}: probability {}", key, p);
                prop_assert!(lp <= 0.0, "pair {:?}: log probability {}", key, lp);
            }
        }
        Ok(())
    });
}

/// For one list: loss_sum = loss_comparisons · pairs_count = loss_ordered_pairs · N(N−1); the
/// pair count is the number of implied preferences (fewer than N(N−1)/2 with rank ties);
/// accuracy does not depend on the normalization.
#[test]
fn normalizations_differ_only_by_their_divisor() {
    check_property((any_list(), beta()), |runtime, app, (list, beta)| {
        let mut by_normalization = BTreeMap::new();
        for normalization in NORMALIZATIONS {
            let answer = evaluate(runtime, app, &request(&[&list], beta, normalization, false))?;
            prop_assert!(answer["lists"][0].get("pairs").is_none(), "pairs returned though include_pairs is false");
            by_normalization.insert(normalization, answer["lists"][0].clone());
        }
        let (op, comp, sum) =
            (&by_normalization["ordered_pairs"], &by_normalization["comparisons"], &by_normalization["sum"]);
        let n = list.len() as u64;
        let pairs = count(&sum["pairs_count"]);
        prop_assert_eq!(pairs, list.implied_pairs().len() as u64);
        if list.has_rank_ties() {
            prop_assert!(pairs < n * (n - 1) / 2, "{} pairs despite rank ties", pairs);
        } else {
            prop_assert_eq!(pairs, n * (n - 1) / 2);
        }
        let loss_sum = num(&sum["loss"]);
        let from_comparisons = num(&comp["loss"]) * pairs as f64;
        let from_ordered_pairs = num(&op["loss"]) * (n * (n - 1)) as f64;
        prop_assert!(rel_close(from_comparisons, loss_sum, 1e-12), "{:e} vs sum {:e}", from_comparisons, loss_sum);
        prop_assert!(rel_close(from_ordered_pairs, loss_sum, 1e-12), "{:e} vs sum {:e}", from_ordered_pairs, loss_sum);
        prop_assert_eq!(&op["accuracy"], &sum["accuracy"]);
        prop_assert_eq!(&comp["accuracy"], &sum["accuracy"]);
        for list in [op, comp] {
            prop_assert_eq!(&list["pairs_count"], &sum["pairs_count"]);
        }
        Ok(())
    });
}

/// The batch loss is the arithmetic mean of the list losses; summary.pairs is the sum of the
/// pair counts; summary.accuracy is micro-averaged over pairs; lists answer lists in order.
#[test]
fn batch_figures_aggregate_the_list_figures() {
    let strategy = (prop::collection::vec(any_list(), 1..6), beta(), normalization());
    check_property(strategy, |runtime, app, (lists, beta, normalization)| {
        let refs: Vec<&List> = lists.iter().collect();
        let answer = evaluate(runtime, app, &request(&refs, beta, normalization, false))?;
        let results = answer["lists"].as_array().unwrap();
        prop_assert_eq!(results.len(), lists.len());
        prop_assert_eq!(count(&answer["summary"]["lists"]), lists.len() as u64);
        for (list, result) in lists.iter().zip(results) {
            prop_assert_eq!(count(&result["n"]), list.len() as u64);
            prop_assert_eq!(count(&result["pairs_count"]), list.implied_pairs().len() as u64);
        }
        let mean = results.iter().map(|l| num(&l["loss"])).sum::<f64>() / results.len() as f64;
        prop_assert!(close(num(&answer["loss"]), mean), "batch loss {} vs mean {:e}", answer["loss"], mean);
        let pairs: u64 = results.iter().map(|l| count(&l["pairs_count"])).sum();
        prop_assert_eq!(count(&answer["summary"]["pairs"]), pairs);
        let agreeing: f64 = results.iter().map(|l| num(&l["accuracy"]) * count(&l["pairs_count"]) as f64).sum();
        let micro = agreeing / pairs as f64;
        prop_assert!(
            close(num(&answer["summary"]["accuracy"]), micro),
            "accuracy {} vs {:e}",
            answer["summary"]["accuracy"],
            micro
        );
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// Fixed cases

#[tokio::test]
async fn all_equal_rewards_give_half_ln2_per_list() {
    let app = TestApp::spawn().await;
    // Lists of several lengths, each with its own constant reward; one ranked by explicit ranks.
    let lists = json!([
        {"items": [{"reward": 0.0}, {"reward": 0.0}]},
        {"items": [{"reward": -3.25}, {"reward": -3.25}, {"reward": -3.25}]},
        {"items": (0..17).map(|_| json!({"reward": 1e6})).collect::<Vec<_>>()},
        {"items": (0..100).map(|i| json!({"reward": 0.1, "rank": (i * 37) % 100 + 1})).collect::<Vec<_>>()},
    ]);
    let sizes = [2u64, 3, 17, 100];
    for normalization in NORMALIZATIONS {
        let per_list = |n| uniform_loss(normalization, n);
        let body = json!({"options": {"normalization": normalization, "include_pairs": false}, "lists": lists});
        let answer = ok_json(&app.evaluate(&body).await);
        assert_eq!(answer["normalization"], normalization);
        let mut expected_mean = 0.0;
        for (i, &n) in sizes.iter().enumerate() {
            let list = &answer["lists"][i];
            assert_eq!(count(&list["n"]), n);
            assert_eq!(count(&list["pairs_count"]), n * (n - 1) / 2);
            assert!(close(num(&list["loss"]), per_list(n)), "{normalization}: list {i} loss {}", list["loss"]);
            assert_eq!(num(&list["accuracy"]), 0.5, "{normalization}: list {i}");
            expected_mean += per_list(n) / sizes.len() as f64;
        }
        assert!(close(num(&answer["loss"]), expected_mean), "{normalization}: batch loss {}", answer["loss"]);
        assert_eq!(num(&answer["summary"]["accuracy"]), 0.5);
    }
}

/// For N = 2 under `comparisons` the listwise loss is the usual pairwise reward-model loss
/// −log σ(r_chosen − r_rejected) (TRL's RewardTrainer without margin).
#[tokio::test]
async fn two_item_list_under_comparisons_is_the_pairwise_reward_model_loss() {
    let cases: [(f64, f64); 10] = [
        (1.0, 0.0),
        (0.3, 0.1),
        (-2.5, 1.5),
        (40.0, 0.0),
        (0.0, 40.0),
        (1e-9, 0.0),
        (700.0, -100.0),
        (-500.0, 300.0),
        (2.0, 2.0),
        (123.456, 123.455),
    ];
    let lists: Vec<Value> = cases
        .iter()
        .map(|&(chosen, rejected)| json!({"items": [{"id": "chosen", "reward": chosen}, {"id": "rejected", "reward": rejected}]}))
        .collect();
    let body = json!({"options": {"normalization": "comparisons"}, "lists": lists});
    let answer = ok_json(&TestApp::spawn().await.evaluate(&body).await);
    let mut mean = 0.0;
    for (i, &(chosen, rejected)) in cases.iter().enumerate() {
        let d = chosen - rejected;
        // −log σ(d) = softplus(−d) = ln(1 + e^(−d)) for d > 0, −d + ln(1 + e^d) otherwise.
        let expected = if d > 0.0 { (-d).exp().ln_1p() } else { -d + d.exp().ln_1p() };
        let got = num(&answer["lists"][i]["loss"]);
        assert!(close(got, expected), "chosen {chosen}, rejected {rejected}: loss {got:e}, expected {expected:e}");
        let pair = &answer["lists"][i]["pairs"][0];
        assert_eq!((count(&pair["preferred"]), count(&pair["other"])), (0, 1));
        assert!(close(-num(&pair["log_probability"]), expected));
        mean += expected / cases.len() as f64;
    }
    assert!(close(num(&answer["loss"]), mean), "batch loss {} vs {mean:e}", answer["loss"]);
}

/// Rewards are parsed to the nearest f64 (ties to even), however they are written. With
/// β = 2^54, one ulp of 0.3 (2^−54) becomes z = 1, so a reward parsed one ulp off shows as
/// σ(1) ≈ 0.731 or σ(2) instead of 0.5, or 0.5 instead of σ(1).
#[tokio::test]
async fn json_numbers_are_parsed_correctly_rounded() {
    let ulp_above = f64::from_bits(0.3f64.to_bits() + 1);
    assert_eq!(ulp_above - 0.3, 2f64.powi(-54));
    // (text of the first reward, ulps between its nearest f64 and 0.3)
    let cases: [(&str, f64); 11] = [
        ("0.3", 0.0),
        ("3e-1", 0.0),
        ("0.29999999999999998", 0.0),
        ("0.299999999999999988897769753748434595763683319091796875", 0.0),
        ("0.30000000000000004", 1.0),
        ("30000000000000004e-17", 1.0),
        // Exactly halfway between 0.3 and the next float: ties to even (…334, not …333) rounds up.
        ("0.3000000000000000166533453693773481063544750213623046875", 1.0),
        ("0.3000000000000000166533453693773481063544750213623046874", 0.0),
        ("0.30000000000000001665334536937734810635447502136230468750000000000000000001", 1.0),
        // Halfway between 1 and 2 ulps above: ties to even (…334) rounds down to 1 ulp.
        ("0.3000000000000000721644966006351751275360584259033203125", 1.0),
        ("0.3000000000000001", 2.0),
    ];
    let lists: Vec<String> =
        cases.iter().map(|(text, _)| format!(r#"{{"items": [{{"reward": {text}}}, {{"reward": 0.3}}]}}"#)).collect();
    let body = format!(r#"{{"options": {{"beta": 18014398509481984}}, "lists": [{}]}}"#, lists.join(", "));
    let answer = ok_json(&TestApp::spawn().await.evaluate(body).await);
    for (i, &(text, ulps)) in cases.iter().enumerate() {
        let pair = &answer["lists"][i]["pairs"][0];
        let (p, lp) = (num(&pair["probability"]), num(&pair["log_probability"]));
        let expected = oracle_sigmoid(ulps);
        assert!(close(p, expected), "reward {text}: probability {p}, expected σ({ulps}) = {expected}");
        assert!(close(lp, oracle_log_sigmoid(ulps)), "reward {text}: log probability {lp}");
    }
}

/// Accuracy counts a pair the rewards order the ranking's way as 1, the other way as 0, and a
/// reward tie as 1/2; the batch figure is micro-averaged over pairs.
#[tokio::test]
async fn ties_in_reward_count_one_half_in_accuracy() {
    let body = json!({"lists": [
        // (0,1) tie: ½; (0,2) agrees: 1; (1,2) agrees: 1 → 2.5 / 3.
        {"items": [{"reward": 1.0}, {"reward": 1.0}, {"reward": 0.0}]},
        // (0,1) disagrees: 0; (0,2) disagrees: 0; (1,2) tie: ½ → 0.5 / 3.
        {"items": [{"reward": 0.0}, {"reward": 1.0}, {"reward": 1.0}]},
        // A single tied pair: ½.
        {"items": [{"reward": -7.5}, {"reward": -7.5}]},
    ]});
    let answer = ok_json(&TestApp::spawn().await.evaluate(&body).await);
    assert!(close(num(&answer["lists"][0]["accuracy"]), 2.5 / 3.0), "{}", answer["lists"][0]["accuracy"]);
    assert!(close(num(&answer["lists"][1]["accuracy"]), 0.5 / 3.0), "{}", answer["lists"][1]["accuracy"]);
    assert_eq!(num(&answer["lists"][2]["accuracy"]), 0.5);
    assert_eq!(count(&answer["summary"]["pairs"]), 7);
    assert!(close(num(&answer["summary"]["accuracy"]), 3.5 / 7.0), "{}", answer["summary"]["accuracy"]);
}

/// Competition ranks 1, 2, 2, 4: the two items ranked 2 imply nothing between them, so 5 of the
/// 6 pairs remain, whatever the array order; the ordered_pairs divisor stays N(N−1) = 12.
#[tokio::test]
async fn competition_ranks_1_2_2_4_imply_five_pairs() {
    let rewards = [0.5, -1.0, 2.0, 0.25];
    let body = json!({"lists": [
        {"items": [
            {"reward": rewards[0], "rank": 1}, {"reward": rewards[1], "rank": 2},
            {"reward": rewards[2], "rank": 2}, {"reward": rewards[3], "rank": 4},
        ]},
        // The same items in the order 3, 2, 0, 1 of the first list.
        {"items": [
            {"reward": rewards[3], "rank": 4}, {"reward": rewards[2], "rank": 2},
            {"reward": rewards[0], "rank": 1}, {"reward": rewards[1], "rank": 2},
        ]},
    ]});
    let answer = ok_json(&TestApp::spawn().await.evaluate(&body).await);
    let first = &answer["lists"][0];
    assert_eq!(count(&first["pairs_count"]), 5);
    let pairs = pairs_of(first);
    assert_eq!(pairs.keys().copied().collect::<Vec<_>>(), vec![(0, 1), (0, 2), (0, 3), (1, 3), (2, 3)]);
    let mut log_sum = CompensatedSum::default();
    for (&(a, b), &(p, lp)) in &pairs {
        let z = rewards[a as usize] - rewards[b as usize];
        assert!(close(p, oracle_sigmoid(z)) && close(lp, oracle_log_sigmoid(z)), "pair {:?}", (a, b));
        log_sum.add(oracle_log_sigmoid(z));
    }
    assert!(close(num(&first["loss"]), -log_sum.value() / 12.0), "loss {}", first["loss"]);
    // (0,1) agrees, (0,2) disagrees, (0,3) agrees, (1,3) disagrees, (2,3) agrees → 3/5.
    assert!(close(num(&first["accuracy"]), 0.6));

    let second = &answer["lists"][1];
    assert_eq!(count(&second["pairs_count"]), 5);
    let to_first = [3u64, 2, 0, 1];
    let mapped: BTreeSet<_> =
        pairs_of(second).keys().map(|&(a, b)| (to_first[a as usize], to_first[b as usize])).collect();
    assert_eq!(mapped, pairs.keys().copied().collect::<BTreeSet<_>>());
    assert!(close(num(&second["loss"]), num(&first["loss"])));
}

/// docs/design/math.md rejects only inputs whose results would not be finite. Here the three log
/// probabilities sum to −(3.2e308 + ln 2), beyond f64, yet the losses the normalizations ask for,
/// 3.2e308/6 ≈ 5.3e307 (ordered_pairs) and 3.2e308/3 ≈ 1.07e308 (comparisons), are finite and
/// must be returned (only `sum` overflows; see tests/api/errors.rs).
#[tokio::test]
async fn finite_loss_is_returned_even_when_the_raw_log_probability_sum_overflows() {
    let app = TestApp::spawn().await;
    for (normalization, divisor) in [("ordered_pairs", 6.0), ("comparisons", 3.0)] {
        let body = json!({
            "options": {"normalization": normalization},
            "lists": [{"items": [{"reward": -8e307}, {"reward": 8e307}, {"reward": 8e307}]}],
        });
        let answer = ok_json(&app.evaluate(&body).await);
        // Each of the two disagreeing pairs has log σ(−1.6e308) = −1.6e308 exactly; the tie, −ln 2.
        let expected = 2.0 * (1.6e308 / divisor) + LN_2 / divisor;
        let got = num(&answer["lists"][0]["loss"]);
        assert!(close(got, expected), "{normalization}: loss {got:e}, expected {expected:e}");
        assert!(close(num(&answer["loss"]), expected));
    }
}

/// Deterministic pseudo-random rewards, multiples of 1/64 in [−10, 10): many reward ties.
fn pseudo_random_rewards(n: usize, mut state: u64) -> Vec<f64> {
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state % 1280) as f64 - 640.0) / 64.0
        })
        .collect()
}

#[derive(Deserialize)]
struct LargeResponse {
    loss: f64,
    summary: LargeSummary,
    lists: Vec<LargeList>,
}

#[derive(Deserialize)]
struct LargeSummary {
    lists: u64,
    pairs: u64,
    accuracy: f64,
}

#[derive(Deserialize)]
struct LargeList {
    n: u64,
    pairs_count: u64,
    loss: f64,
    accuracy: f64,
    pairs: Option<Vec<LargePair>>,
}

#[derive(Deserialize)]
struct LargePair {
    preferred: usize,
    other: usize,
    probability: f64,
    log_probability: f64,
}

/// The default limits take a 10,000-item list (4.9995·10^7 pairs) when pairs are not returned,
/// and its loss matches a compensated f64 sum computed here, column by column (the opposite
/// order to the server's rows).
#[tokio::test]
async fn ten_thousand_item_list_without_pairs_is_accepted_by_default_limits() {
    const N: usize = 10_000;
    let rewards = pseudo_random_rewards(N, 0x9E37_79B9_7F4A_7C15);
    let items: Vec<Value> = rewards.iter().map(|&r| json!({"reward": r})).collect();
    let body = json!({"options": {"include_pairs": false}, "lists": [{"items": items}]});
    let answer = TestApp::spawn().await.evaluate(&body).await;
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    let response: LargeResponse = serde_json::from_slice(&answer.body).expect("response parses");
    let list = &response.lists[0];
    assert_eq!(list.n, N as u64);
    assert_eq!(list.pairs_count, 49_995_000);
    assert!(list.pairs.is_none(), "pairs returned though include_pairs is false");
    assert_eq!((response.summary.lists, response.summary.pairs), (1, 49_995_000));

    let mut log_sum = CompensatedSum::default();
    let mut agreeing_halves = 0u64;
    for b in 1..N {
        for a in 0..b {
            let d = rewards[a] - rewards[b];
            log_sum.add(oracle_log_sigmoid(d));
            agreeing_halves += if d > 0.0 { 2 } else { u64::from(d == 0.0) };
        }
    }
    let expected_loss = -log_sum.value() / (N as f64 * (N as f64 - 1.0));
    let expected_accuracy = agreeing_halves as f64 / (2.0 * 49_995_000.0);
    assert!(rel_close(list.loss, expected_loss, 1e-12), "loss {:e}, expected {expected_loss:e}", list.loss);
    assert!(rel_close(response.loss, expected_loss, 1e-12), "batch loss {:e}", response.loss);
    assert!(close(list.accuracy, expected_accuracy), "accuracy {}, expected {expected_accuracy}", list.accuracy);
    assert!(close(response.summary.accuracy, expected_accuracy));
}

/// A 1,000-item list returns all 499,500 implied pairs, each once, each matching σ(r_a − r_b),
/// with ranks given in shuffled array order; the loss matches an independent compensated sum.
#[tokio::test]
async fn thousand_item_list_returns_all_499500_pairs() {
    const N: usize = 1_000;
    let rewards = pseudo_random_rewards(N, 0xD1B5_4A32_D192_ED03);
    // Rank of item i: a permutation of 1..=N (7 is coprime to 1000).
    let ranks: Vec<usize> = (0..N).map(|i| (i * 7 + 3) % N + 1).collect();
    let items: Vec<Value> = rewards.iter().zip(&ranks).map(|(&r, &rank)| json!({"reward": r, "rank": rank})).collect();
    let answer = TestApp::spawn().await.evaluate(&json!({"lists": [{"items": items}]})).await;
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    let response: LargeResponse = serde_json::from_slice(&answer.body).expect("response parses");
    let list = &response.lists[0];
    assert_eq!((list.n, list.pairs_count), (N as u64, 499_500));
    let pairs = list.pairs.as_ref().expect("pairs are returned by default");
    assert_eq!(pairs.len(), 499_500);

    let mut seen = vec![false; N * N];
    for pair in pairs {
        let (a, b) = (pair.preferred, pair.other);
        assert!(a < N && b < N && ranks[a] < ranks[b], "({a}, {b}) is not an implied preference");
        assert!(!std::mem::replace(&mut seen[a * N + b], true), "({a}, {b}) appears twice");
        let z = rewards[a] - rewards[b];
        assert!(close(pair.probability, oracle_sigmoid(z)), "({a}, {b}): probability {}", pair.probability);
        assert!(close(pair.log_probability, oracle_log_sigmoid(z)), "({a}, {b}): log {}", pair.log_probability);
    }

    let mut log_sum = CompensatedSum::default();
    for b in 0..N {
        for a in 0..N {
            if ranks[a] < ranks[b] {
                log_sum.add(oracle_log_sigmoid(rewards[a] - rewards[b]));
            }
        }
    }
    let expected = -log_sum.value() / (N * (N - 1)) as f64;
    assert!(rel_close(list.loss, expected, 1e-12), "loss {:e}, expected {expected:e}", list.loss);
    assert!(rel_close(response.loss, expected, 1e-12));
}
