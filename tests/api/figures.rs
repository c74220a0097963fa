//! Every figure of `POST /v1/evaluate` and `POST /v1/compare`, pinned through HTTP against an
//! independent computation written here straight from the definitions of docs/design/math.md
//! ("Evaluation figures beside the loss", "Uncertainty"): direct O(N²) loops over the items and
//! pairs of each list, two-pass variances, a brute-force calibration, an erfc of its own. The data
//! are seeded random lists with ties in ranks and in rewards, some with explicit ranks out of
//! array order.
//!
//! Tolerance: relative 1e-12 (absolute 1e-15 near zero), except where the method or the
//! conditioning of the figure needs more, as noted at each use (finite differences; intervals and
//! differences whose terms cancel; a p-value, whose relative error is z² times that of z).

use std::f64::consts::{LN_2, PI, SQRT_2};

use crate::helpers::{Answer, SplitMix64, TestApp};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Seeded data

/// One ranked list as the test knows it: `rewards[model][item]`, explicit `ranks` or array order.
#[derive(Clone, Debug)]
struct TestList {
    id: String,
    group: Option<String>,
    ranks: Option<Vec<u64>>,
    rewards: Vec<Vec<f64>>,
}

impl TestList {
    fn new(ranks: Option<&[u64]>, rewards: &[&[f64]]) -> TestList {
        TestList {
            id: "hand".to_string(),
            group: None,
            ranks: ranks.map(<[u64]>::to_vec),
            rewards: rewards.iter().map(|r| r.to_vec()).collect(),
        }
    }

    fn len(&self) -> usize {
        self.rewards[0].len()
    }

    /// The human rank of every item (1 = best): the explicit ranks, or the array order.
    fn effective_ranks(&self) -> Vec<u64> {
        self.ranks.clone().unwrap_or_else(|| (1..=self.len() as u64).collect())
    }
}

const GROUPS: [&str; 4] = ["math", "code", "chat", "safety"];

/// `count` lists of 2–9 items scored by `models` models. Ranks: array order, explicit with ties,
/// or an explicit strict order, shuffled. Rewards lean with the ranking, half the lists on a grid
/// of ½ (ties within and across models) and any item may copy an earlier one's reward (a tie);
/// each further model perturbs the first, and now and then repeats it exactly (a tied list).
fn random_lists(seed: u64, count: usize, models: usize) -> Vec<TestList> {
    let mut rng = SplitMix64::new(seed);
    (0..count)
        .map(|i| {
            let n = 2 + rng.below(8) as usize;
            let ranks = match rng.below(3) {
                0 => None,
                1 => {
                    let levels = 2 + rng.below(n as u64 - 1);
                    let mut ranks: Vec<u64> = (0..n).map(|_| 1 + rng.below(levels)).collect();
                    if ranks.iter().all(|&r| r == ranks[0]) {
                        ranks[0] = if ranks[0] == 1 { 2 } else { 1 };
                    }
                    Some(ranks)
                }
                _ => {
                    let mut ranks: Vec<u64> = (1..=n as u64).collect();
                    for k in (1..n).rev() {
                        ranks.swap(k, rng.below(k as u64 + 1) as usize);
                    }
                    Some(ranks)
                }
            };
            let effective = ranks.clone().unwrap_or_else(|| (1..=n as u64).collect());
            let grid = rng.below(2) == 0;
            let snap = |x: f64| if grid { (x * 2.0).round() / 2.0 + 0.0 } else { x };
            let mut base: Vec<f64> = Vec::with_capacity(n);
            for (k, &rank) in effective.iter().enumerate() {
                let reward = if k > 0 && rng.below(5) == 0 {
                    base[rng.below(k as u64) as usize]
                } else {
                    snap(-0.6 * rank as f64 + rng.between(-1.5, 1.5))
                };
                base.push(reward);
            }
            let mut rewards = vec![base.clone()];
            for j in 1..models {
                if rng.below(6) == 0 {
                    rewards.push(base.clone());
                } else {
                    let spread = 0.4 * (j * j) as f64;
                    rewards.push(base.iter().map(|&r| snap(r + rng.between(-spread, spread))).collect());
                }
            }
            let group = Some(GROUPS[rng.below(GROUPS.len() as u64) as usize].to_string());
            TestList { id: format!("L{i}"), group, ranks, rewards }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The definitions, computed directly

#[derive(Clone, Copy, Debug, PartialEq)]
enum Norm {
    OrderedPairs,
    Comparisons,
    Sum,
}

const NORMS: [Norm; 3] = [Norm::OrderedPairs, Norm::Comparisons, Norm::Sum];

impl Norm {
    fn name(self) -> &'static str {
        match self {
            Norm::OrderedPairs => "ordered_pairs",
            Norm::Comparisons => "comparisons",
            Norm::Sum => "sum",
        }
    }

    /// Z(Y) of a list of n items with p implied preferences.
    fn z(self, n: usize, p: usize) -> f64 {
        match self {
            Norm::OrderedPairs => (n * (n - 1)) as f64,
            Norm::Comparisons => p as f64,
            Norm::Sum => 1.0,
        }
    }
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// log σ(z) = −softplus(−z), through ln_1p (docs/design/math.md, "Numerics").
fn log_sigmoid(z: f64) -> f64 {
    if z >= 0.0 { -(-z).exp().ln_1p() } else { z - z.exp().ln_1p() }
}

/// Every implied preference (a ranked strictly better than b), in (a, b) order.
fn implied_pairs(ranks: &[u64]) -> Vec<(usize, usize)> {
    let n = ranks.len();
    let mut pairs = Vec::new();
    for a in 0..n {
        for b in 0..n {
            if ranks[a] < ranks[b] {
                pairs.push((a, b));
            }
        }
    }
    pairs
}

/// L = −(1/Z)·Σ log σ(β(r_a − r_b)) over the implied pairs.
fn list_loss(ranks: &[u64], rewards: &[f64], beta: f64, norm: Norm) -> f64 {
    let pairs = implied_pairs(ranks);
    let sum: f64 = pairs.iter().map(|&(a, b)| log_sigmoid(beta * (rewards[a] - rewards[b]))).sum();
    -sum / norm.z(ranks.len(), pairs.len())
}

/// τ-b over all item pairs: concordant when the better-ranked item has the higher reward; n₁
/// pairs tied in rank, n₂ tied in reward; `None` when either factor of the denominator is 0.
fn kendall_tau_b(ranks: &[u64], rewards: &[f64]) -> Option<f64> {
    let n = ranks.len();
    let (mut concordant, mut discordant, mut tied_rank, mut tied_reward) = (0i64, 0i64, 0i64, 0i64);
    for i in 0..n {
        for j in i + 1..n {
            if ranks[i] == ranks[j] {
                tied_rank += 1;
            }
            if rewards[i] == rewards[j] {
                tied_reward += 1;
            }
            if ranks[i] == ranks[j] || rewards[i] == rewards[j] {
                continue;
            }
            let (better, worse) = if ranks[i] < ranks[j] { (i, j) } else { (j, i) };
            if rewards[better] > rewards[worse] {
                concordant += 1;
            } else {
                discordant += 1;
            }
        }
    }
    let all = (n * (n - 1) / 2) as i64;
    let (untied_rank, untied_reward) = (all - tied_rank, all - tied_reward);
    if untied_rank == 0 || untied_reward == 0 {
        return None;
    }
    Some((concordant - discordant) as f64 / ((untied_rank as f64) * (untied_reward as f64)).sqrt())
}

/// One list's figures under one model.
#[derive(Clone, Debug)]
struct ListFigures {
    pairs: f64,
    /// a_i: agreeing preferences, a reward tie counting ½.
    agreeing: f64,
    loss: f64,
    chance_loss: f64,
    tau: Option<f64>,
}

fn list_figures(list: &TestList, model: usize, beta: f64, norm: Norm) -> ListFigures {
    let ranks = list.effective_ranks();
    let rewards = &list.rewards[model];
    let pairs = implied_pairs(&ranks);
    let agreeing: f64 = pairs
        .iter()
        .map(|&(a, b)| match rewards[a].partial_cmp(&rewards[b]).unwrap() {
            std::cmp::Ordering::Greater => 1.0,
            std::cmp::Ordering::Equal => 0.5,
            std::cmp::Ordering::Less => 0.0,
        })
        .sum();
    let z = norm.z(list.len(), pairs.len());
    ListFigures {
        pairs: pairs.len() as f64,
        agreeing,
        loss: list_loss(&ranks, rewards, beta, norm),
        chance_loss: pairs.len() as f64 * LN_2 / z,
        tau: kendall_tau_b(&ranks, rewards),
    }
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// s/√m, s the two-pass sample standard deviation (denominator m − 1).
fn standard_error_of_mean(values: &[f64]) -> f64 {
    let m = values.len() as f64;
    let centre = mean(values);
    let squares: f64 = values.iter().map(|v| (v - centre) * (v - centre)).sum();
    (squares / (m - 1.0) / m).sqrt()
}

/// SE of the ratio Σa/Σp, clustered by list: SE² = m/(m−1)·Σ(a_i − r·p_i)²/P².
fn ratio_standard_error(a: &[f64], p: &[f64]) -> f64 {
    let m = a.len() as f64;
    let total_p: f64 = p.iter().sum();
    let ratio = a.iter().sum::<f64>() / total_p;
    let residuals: f64 = a.iter().zip(p).map(|(a, p)| (a - ratio * p) * (a - ratio * p)).sum();
    (m / (m - 1.0) * residuals / (total_p * total_p)).sqrt()
}

/// z = Φ⁻¹(1 − (1 − c)/2) at the confidences the tests use.
fn critical_value(confidence: f64) -> f64 {
    match confidence {
        0.95 => 1.959963984540054,
        0.9 => 1.6448536269514722,
        _ => panic!("no critical value for confidence {confidence} in this test"),
    }
}

/// erfc(x) for x ≥ 0. Below 2: 1 − erf(x) with erf(x) = (2/√π)·e^(−x²)·Σ 2ⁿx^(2n+1)/(1·3···(2n+1)),
/// a series of positive terms (1 − erf keeps 14 digits or more there, as erfc(2) ≈ 0.0047). From
/// 2 on: the continued fraction erfc(x) = e^(−x²)/√π · 1/(x + ½/(x + 1/(x + (3/2)/(x + …)))),
/// evaluated backwards from 2000 terms.
fn erfc(x: f64) -> f64 {
    assert!(x >= 0.0);
    if x < 2.0 {
        let (mut term, mut sum, mut n) = (x, x, 0u32);
        while term > 1e-18 * sum {
            n += 1;
            term *= 2.0 * x * x / f64::from(2 * n + 1);
            sum += term;
        }
        1.0 - 2.0 / PI.sqrt() * (-x * x).exp() * sum
    } else {
        let mut fraction = x;
        for k in (1..=2000).rev() {
            fraction = x + f64::from(k) / 2.0 / fraction;
        }
        (-x * x).exp() / (PI.sqrt() * fraction)
    }
}

/// Two-sided p-value of an estimate with its SE: erfc(|z|/√2).
fn p_value(estimate: f64, se: f64) -> f64 {
    assert!(se > 0.0, "the random data never give SE = 0");
    erfc((estimate / se).abs() / SQRT_2)
}

/// Holm-adjusted p-values by definition: the largest (m − j)·p_k over the p_k ≤ p_i, j counting
/// the p-values strictly below p_k, capped at 1.
fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    p.iter()
        .map(|&pi| {
            p.iter()
                .filter(|&&pk| pk <= pi)
                .map(|&pk| (m - p.iter().filter(|&&pl| pl < pk).count()) as f64 * pk)
                .fold(0.0f64, f64::max)
                .min(1.0)
        })
        .collect()
}

/// A batch under one model: per-list figures and the summary's.
struct BatchFigures {
    lists: Vec<ListFigures>,
    pairs: f64,
    loss: f64,
    loss_se: f64,
    accuracy: f64,
    accuracy_se: f64,
    chance_loss: f64,
    tau: Option<f64>,
}

fn batch_figures(lists: &[TestList], model: usize, beta: f64, norm: Norm) -> BatchFigures {
    let per_list: Vec<ListFigures> = lists.iter().map(|l| list_figures(l, model, beta, norm)).collect();
    let losses: Vec<f64> = per_list.iter().map(|f| f.loss).collect();
    let agreeing: Vec<f64> = per_list.iter().map(|f| f.agreeing).collect();
    let pairs: Vec<f64> = per_list.iter().map(|f| f.pairs).collect();
    let taus: Vec<f64> = per_list.iter().filter_map(|f| f.tau).collect();
    let total_pairs: f64 = pairs.iter().sum();
    BatchFigures {
        pairs: total_pairs,
        loss: mean(&losses),
        loss_se: standard_error_of_mean(&losses),
        accuracy: agreeing.iter().sum::<f64>() / total_pairs,
        accuracy_se: ratio_standard_error(&agreeing, &pairs),
        chance_loss: mean(&per_list.iter().map(|f| f.chance_loss).collect::<Vec<_>>()),
        tau: (!taus.is_empty()).then(|| mean(&taus)),
        lists: per_list,
    }
}

// ---------------------------------------------------------------------------------------------
// Requests and comparisons of answers

fn evaluate_body(lists: &[TestList], model: usize, options: Value) -> Value {
    let lists: Vec<Value> = lists
        .iter()
        .map(|list| {
            let items: Vec<Value> = (0..list.len())
                .map(|k| {
                    let mut item = json!({"id": format!("i{k}"), "reward": list.rewards[model][k]});
                    if let Some(ranks) = &list.ranks {
                        item["rank"] = json!(ranks[k]);
                    }
                    item
                })
                .collect();
            let mut wire = json!({"id": list.id, "items": items});
            if let Some(group) = &list.group {
                wire["group"] = json!(group);
            }
            wire
        })
        .collect();
    json!({"model": "figures", "options": options, "lists": lists})
}

fn compare_body(models: &[&str], lists: &[TestList], options: Value) -> Value {
    let lists: Vec<Value> = lists
        .iter()
        .map(|list| {
            let items: Vec<Value> = (0..list.len())
                .map(|k| {
                    let rewards: Vec<f64> = list.rewards.iter().map(|r| r[k]).collect();
                    let mut item = json!({"id": format!("i{k}"), "rewards": rewards});
                    if let Some(ranks) = &list.ranks {
                        item["rank"] = json!(ranks[k]);
                    }
                    item
                })
                .collect();
            json!({"id": list.id, "items": items})
        })
        .collect();
    json!({"models": models, "options": options, "lists": lists})
}

async fn evaluate(app: &TestApp, body: &Value) -> Value {
    let answer = app.evaluate(body).await;
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    answer.json()
}

async fn post_compare(app: &TestApp, body: &Value) -> Answer {
    app.compare(body).await
}

async fn compare(app: &TestApp, body: &Value) -> Value {
    let answer = post_compare(app, body).await;
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    answer.json()
}

fn number(value: &Value, what: &str) -> f64 {
    value.as_f64().unwrap_or_else(|| panic!("{what}: expected a number, got {value}"))
}

/// |got − expected| ≤ max(tolerance·scale, 1e-15), the scale being |expected| unless the figure
/// is a difference of larger terms (then the terms' size).
#[track_caller]
fn assert_near(got: &Value, expected: f64, tolerance: f64, scale: f64, what: &str) {
    let g = number(got, what);
    let error = (g - expected).abs();
    assert!(
        error <= (tolerance * scale).max(1e-15),
        "{what}: got {g:e}, expected {expected:e} (error {error:e}, tolerance {tolerance:e} of {scale:e})"
    );
}

/// Relative 1e-12, absolute 1e-15 near zero.
#[track_caller]
fn assert_close(got: &Value, expected: f64, what: &str) {
    assert_near(got, expected, 1e-12, expected.abs(), what);
}

/// An interval estimate ± z·SE, as `[lower, upper]`, optionally clipped to [0, 1]. Its bounds are
/// differences of terms of size |estimate| + z·SE, whence the scale of the tolerance.
#[track_caller]
fn assert_interval(got: &Value, estimate: f64, se: f64, confidence: f64, clip: bool, what: &str) {
    let half = critical_value(confidence) * se;
    let (mut lower, mut upper) = (estimate - half, estimate + half);
    if clip {
        (lower, upper) = (lower.clamp(0.0, 1.0), upper.clamp(0.0, 1.0));
    }
    let bounds = got.as_array().unwrap_or_else(|| panic!("{what}: expected [lower, upper], got {got}"));
    assert_eq!(bounds.len(), 2, "{what}: {got}");
    let scale = estimate.abs() + half;
    assert_near(&bounds[0], lower, 1e-12, scale, &format!("{what}[0]"));
    assert_near(&bounds[1], upper, 1e-12, scale, &format!("{what}[1]"));
}

/// A p-value: its relative error is about z² times the relative error of z = estimate/SE.
#[track_caller]
fn assert_p_value(got: &Value, expected: f64, z: f64, what: &str) {
    assert_near(got, expected, 1e-12 * z.mul_add(z, 1.0), expected.abs(), what);
}

fn assert_no_null(value: &Value, at: &str) {
    match value {
        Value::Null => panic!("null (a NaN or infinity?) at {at}"),
        Value::Array(values) => values.iter().enumerate().for_each(|(i, v)| assert_no_null(v, &format!("{at}[{i}]"))),
        Value::Object(fields) => fields.iter().for_each(|(k, v)| assert_no_null(v, &format!("{at}.{k}"))),
        _ => {}
    }
}

/// The value of the sample `series` (name plus its exact label set) in a Prometheus exposition.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

#[test]
fn the_tests_erfc_matches_reference_values() {
    // Reference values of erfc, rounded to the nearest f64.
    let reference = [
        (0.0, 1.0),
        (0.5, 0.479_500_122_186_953_5),
        (1.0, 0.157_299_207_050_285_13),
        (2.0, 0.004_677_734_981_047_266),
        (3.0, 2.209_049_699_858_544e-5),
        (5.0, 1.537_459_794_428_035e-12),
    ];
    for (x, expected) in reference {
        let got = erfc(x);
        assert!((got - expected).abs() <= 1e-13 * expected, "erfc({x}) = {got:e}, expected {expected:e}");
    }
    // The two-sided p-values of the critical values are 1 − c.
    assert!((p_value(1.959963984540054, 1.0) - 0.05).abs() <= 1e-14);
    assert!((p_value(1.6448536269514722, 1.0) - 0.1).abs() <= 1e-14);
}

// ---------------------------------------------------------------------------------------------
// /v1/evaluate

#[tokio::test]
async fn kendall_tau_is_tau_b_per_list_and_its_mean_over_the_lists_where_defined() {
    let app = TestApp::spawn().await;
    let mut lists = random_lists(0x7A0, 30, 1);
    // All rewards equal: τ-b undefined (an all-equal ranking implies no preference: a 422).
    lists.push(TestList::new(Some(&[2, 1, 3, 1]), &[&[0.7, 0.7, 0.7, 0.7]]));
    lists.push(TestList::new(None, &[&[-1.5, -1.5, -1.5]]));
    let expected = batch_figures(&lists, 0, 1.0, Norm::OrderedPairs);
    assert!(expected.lists.iter().filter(|f| f.tau.is_none()).count() >= 2);
    assert!(lists.iter().any(|l| l.rewards[0].windows(2).any(|w| w[0] == w[1])), "the data have reward ties");

    let answer = evaluate(&app, &evaluate_body(&lists, 0, json!({"include_pairs": false}))).await;
    for (i, figures) in expected.lists.iter().enumerate() {
        let got = &answer["lists"][i];
        match figures.tau {
            Some(tau) => assert_close(&got["kendall_tau"], tau, &format!("lists[{i}].kendall_tau ({:?})", lists[i])),
            None => assert!(got.get("kendall_tau").is_none(), "lists[{i}]: τ-b is undefined, got {got}"),
        }
    }
    assert_close(&answer["summary"]["kendall_tau"], expected.tau.unwrap(), "summary.kendall_tau");
}

#[tokio::test]
async fn a_perfectly_ordered_list_has_kendall_tau_exactly_one() {
    let app = TestApp::spawn().await;
    let lists = [
        // Strict, array order.
        TestList::new(None, &[&[3.0, 2.5, 0.1, -4.0]]),
        // Explicit ranks out of array order, with a rank tie matched by a reward tie.
        TestList::new(Some(&[3, 1, 2, 3, 4]), &[&[0.5, 2.0, 1.0, 0.5, -1.0]]),
    ];
    let answer = evaluate(&app, &evaluate_body(&lists, 0, json!({}))).await;
    assert_eq!(answer["lists"][0]["kendall_tau"], json!(1.0));
    assert_eq!(answer["lists"][1]["kendall_tau"], json!(1.0));
    assert_eq!(answer["summary"]["kendall_tau"], json!(1.0));
}

#[tokio::test]
async fn gradients_are_the_derivatives_of_the_list_loss_for_every_normalization_and_beta() {
    let app = TestApp::spawn().await;
    let lists = random_lists(0x6AD, 30, 1);
    for norm in NORMS {
        for beta in [1.0, 0.35, 2.5] {
            let options = json!({"normalization": norm.name(), "beta": beta, "include_gradients": true});
            let answer = evaluate(&app, &evaluate_body(&lists, 0, options)).await;
            for (i, list) in lists.iter().enumerate() {
                let at = format!("{} β={beta} lists[{i}]", norm.name());
                let ranks = list.effective_ranks();
                let rewards = &list.rewards[0];
                // The loss being differentiated is the server's.
                assert_close(
                    &answer["lists"][i]["loss"],
                    list_loss(&ranks, rewards, beta, norm),
                    &format!("{at}.loss"),
                );
                let gradients = answer["lists"][i]["gradients"].as_array().unwrap_or_else(|| panic!("{at}: gradients"));
                assert_eq!(gradients.len(), list.len(), "{at}: one gradient per item");
                let mut total = 0.0;
                let mut magnitude = 0.0;
                for (k, got) in gradients.iter().enumerate() {
                    // Central differences: truncation O(h²), rounding O(ε·L/h), both far below 1e-6.
                    let h = 1e-5 * rewards[k].abs().max(1.0);
                    let shifted = |by: f64| {
                        let mut moved = rewards.clone();
                        moved[k] += by;
                        list_loss(&ranks, &moved, beta, norm)
                    };
                    let derivative = (shifted(h) - shifted(-h)) / (2.0 * h);
                    let g = number(got, &at);
                    assert!(
                        (g - derivative).abs() <= 1e-6 * derivative.abs().max(1.0),
                        "{at}.gradients[{k}]: got {g:e}, finite differences give {derivative:e}"
                    );
                    total += g;
                    magnitude += g.abs();
                }
                assert!(total.abs() <= 1e-12 * magnitude.max(1e-3), "{at}: gradients sum to {total:e}");
            }
        }
    }
}

/// One calibration bin: [lower, upper), its count, and the means of q and y when not empty.
struct ExpectedBin {
    lower: f64,
    upper: f64,
    count: u64,
    means: Option<(f64, f64)>,
}

/// Calibration by brute force: every implied pair oriented to the predicted winner, then binned.
struct ExpectedCalibration {
    bins: Vec<ExpectedBin>,
    ece: f64,
    brier: f64,
}

fn calibration(lists: &[TestList], beta: f64, k: usize) -> ExpectedCalibration {
    let mut scored: Vec<(f64, f64)> = Vec::new();
    for list in lists {
        let rewards = &list.rewards[0];
        for (a, b) in implied_pairs(&list.effective_ranks()) {
            let d = beta * (rewards[a] - rewards[b]);
            let s = sigmoid(d);
            let y = if d > 0.0 {
                1.0
            } else if d < 0.0 {
                0.0
            } else {
                0.5
            };
            scored.push((s.max(1.0 - s), y));
        }
    }
    let total = scored.len() as f64;
    let brier = scored.iter().map(|(q, y)| (q - y) * (q - y)).sum::<f64>() / total;
    let (mut bins, mut ece) = (Vec::new(), 0.0);
    for j in 0..k {
        let lower = 0.5 + j as f64 / (2 * k) as f64;
        let upper = 0.5 + (j + 1) as f64 / (2 * k) as f64;
        let last = j == k - 1;
        let members: Vec<&(f64, f64)> =
            scored.iter().filter(|(q, _)| *q >= lower && (*q < upper || (last && *q <= upper))).collect();
        if members.is_empty() {
            bins.push(ExpectedBin { lower, upper, count: 0, means: None });
            continue;
        }
        let count = members.len() as f64;
        let mean_q = members.iter().map(|(q, _)| q).sum::<f64>() / count;
        let mean_y = members.iter().map(|(_, y)| y).sum::<f64>() / count;
        ece += count / total * (mean_q - mean_y).abs();
        bins.push(ExpectedBin { lower, upper, count: members.len() as u64, means: Some((mean_q, mean_y)) });
    }
    ExpectedCalibration { bins, ece, brier }
}

#[tokio::test]
async fn calibration_bins_ece_and_brier_follow_their_definitions() {
    let app = TestApp::spawn().await;
    let lists = random_lists(0xCA1, 30, 1);
    let mut saw_empty_bin = false;
    for (k, beta) in [(1, 1.0), (4, 1.0), (10, 1.0), (10, 1.7), (100, 0.6)] {
        let options = json!({"calibration_bins": k, "beta": beta, "include_pairs": false});
        let answer = evaluate(&app, &evaluate_body(&lists, 0, options)).await;
        let got = &answer["calibration"];
        let expected = calibration(&lists, beta, k);
        let at = format!("K={k} β={beta}");
        assert_close(&got["ece"], expected.ece, &format!("{at}: ece"));
        assert_close(&got["brier"], expected.brier, &format!("{at}: brier"));
        let bins = got["bins"].as_array().unwrap_or_else(|| panic!("{at}: bins in {got}"));
        assert_eq!(bins.len(), k, "{at}: number of bins");
        for (j, (bin, expected)) in bins.iter().zip(&expected.bins).enumerate() {
            let at = format!("{at}: bins[{j}]");
            assert_close(&bin["lower"], expected.lower, &format!("{at}.lower"));
            assert_close(&bin["upper"], expected.upper, &format!("{at}.upper"));
            assert_eq!(bin["count"], json!(expected.count), "{at}.count");
            match expected.means {
                Some((q, y)) => {
                    assert_close(&bin["mean_predicted"], q, &format!("{at}.mean_predicted"));
                    assert_close(&bin["observed"], y, &format!("{at}.observed"));
                }
                None => {
                    saw_empty_bin = true;
                    assert!(bin.get("mean_predicted").is_none() && bin.get("observed").is_none(), "{at}: {bin}");
                }
            }
        }
    }
    assert!(saw_empty_bin, "the data leave some bin empty");
}

/// Every implied pair of the batch as (probability, list, preferred, other), in the contract's order.
fn pairs_by_probability(lists: &[TestList], beta: f64) -> Vec<(f64, usize, usize, usize)> {
    let mut all = Vec::new();
    for (i, list) in lists.iter().enumerate() {
        let rewards = &list.rewards[0];
        for (a, b) in implied_pairs(&list.effective_ranks()) {
            all.push((sigmoid(beta * (rewards[a] - rewards[b])), i, a, b));
        }
    }
    all.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)).then((x.2, x.3).cmp(&(y.2, y.3))));
    all
}

fn assert_disagreements(got: &Value, expected: &[(f64, usize, usize, usize)], lists: &[TestList], at: &str) {
    let got = got.as_array().unwrap_or_else(|| panic!("{at}: disagreements, got {got}"));
    assert_eq!(got.len(), expected.len(), "{at}: number of disagreements");
    for (r, (found, &(probability, list, preferred, other))) in got.iter().zip(expected).enumerate() {
        let at = format!("{at}: disagreements[{r}]");
        assert_eq!(
            (&found["list"], &found["preferred"], &found["other"]),
            (&json!(list), &json!(preferred), &json!(other)),
            "{at}: {found}"
        );
        assert_eq!(found["list_id"], json!(lists[list].id), "{at}.list_id");
        assert_eq!(found["preferred_id"], json!(format!("i{preferred}")), "{at}.preferred_id");
        assert_eq!(found["other_id"], json!(format!("i{other}")), "{at}.other_id");
        assert_close(&found["probability"], probability, &format!("{at}.probability"));
    }
}

#[tokio::test]
async fn top_disagreements_are_the_least_probable_implied_pairs_lowest_first_ties_by_list_then_pair() {
    let app = TestApp::spawn().await;
    let lists = random_lists(0xD15, 30, 1);
    for (k, beta) in [(1, 1.0), (7, 1.0), (60, 1.0), (60, 2.5)] {
        let all = pairs_by_probability(&lists, beta);
        let expected = &all[..k];
        if k == 60 {
            let ties = expected.windows(2).filter(|w| w[0].0 == w[1].0).count();
            assert!(ties > 0, "the data put equal probabilities among the first {k}");
        }
        let options = json!({"top_disagreements": k, "beta": beta, "include_pairs": false});
        let answer = evaluate(&app, &evaluate_body(&lists, 0, options)).await;
        assert_disagreements(&answer["disagreements"], expected, &lists, &format!("k={k} β={beta}"));
    }
    // More than the batch has: every pair, in order.
    let few = &lists[..5];
    let all = pairs_by_probability(few, 1.0);
    assert!(all.len() < 1000);
    let answer = evaluate(&app, &evaluate_body(few, 0, json!({"top_disagreements": 1000}))).await;
    assert_disagreements(&answer["disagreements"], &all, few, "k=1000");
}

#[tokio::test]
async fn groups_and_macro_accuracy_follow_their_definitions() {
    let app = TestApp::spawn().await;
    let lists = random_lists(0x6E0, 30, 1);
    for norm in NORMS {
        let options = json!({"normalization": norm.name(), "beta": 1.3, "include_pairs": false});
        let answer = evaluate(&app, &evaluate_body(&lists, 0, options)).await;
        let figures: Vec<ListFigures> = lists.iter().map(|l| list_figures(l, 0, 1.3, norm)).collect();
        let mut order: Vec<&str> = Vec::new();
        for list in &lists {
            let group = list.group.as_deref().unwrap();
            if !order.contains(&group) {
                order.push(group);
            }
        }
        let groups = answer["groups"].as_array().unwrap_or_else(|| panic!("groups in {answer}"));
        assert_eq!(groups.len(), order.len(), "{}: groups", norm.name());
        let mut accuracies = Vec::new();
        for (got, name) in groups.iter().zip(&order) {
            let at = format!("{}: group {name}", norm.name());
            let members: Vec<&ListFigures> =
                lists.iter().zip(&figures).filter(|(l, _)| l.group.as_deref() == Some(name)).map(|(_, f)| f).collect();
            let pairs: f64 = members.iter().map(|f| f.pairs).sum();
            let accuracy = members.iter().map(|f| f.agreeing).sum::<f64>() / pairs;
            accuracies.push(accuracy);
            assert_eq!(got["group"], json!(name), "{at}: order of first appearance");
            assert_eq!(got["lists"], json!(members.len()), "{at}.lists");
            assert_eq!(got["pairs"], json!(pairs as u64), "{at}.pairs");
            assert_close(
                &got["loss"],
                mean(&members.iter().map(|f| f.loss).collect::<Vec<_>>()),
                &format!("{at}.loss"),
            );
            assert_close(&got["accuracy"], accuracy, &format!("{at}.accuracy"));
            let chance = mean(&members.iter().map(|f| f.chance_loss).collect::<Vec<_>>());
            assert_close(&got["chance_loss"], chance, &format!("{at}.chance_loss"));
        }
        assert_close(&answer["summary"]["macro_accuracy"], mean(&accuracies), &format!("{}: macro", norm.name()));
    }
}

#[tokio::test]
async fn summary_standard_errors_and_intervals_are_clustered_by_list() {
    let app = TestApp::spawn().await;
    let lists = random_lists(0x5E5, 30, 1);
    for norm in [Norm::OrderedPairs, Norm::Sum] {
        for confidence in [0.95, 0.9] {
            let options = json!({"normalization": norm.name(), "confidence": confidence, "include_pairs": false});
            let answer = evaluate(&app, &evaluate_body(&lists, 0, options)).await;
            let summary = &answer["summary"];
            let expected = batch_figures(&lists, 0, 1.0, norm);
            let at = format!("{} c={confidence}", norm.name());
            assert_close(&answer["loss"], expected.loss, &format!("{at}: loss"));
            assert_close(&summary["accuracy"], expected.accuracy, &format!("{at}: accuracy"));
            assert_close(&summary["loss_se"], expected.loss_se, &format!("{at}: loss_se"));
            assert_close(&summary["accuracy_se"], expected.accuracy_se, &format!("{at}: accuracy_se"));
            assert_interval(&summary["loss_ci"], expected.loss, expected.loss_se, confidence, false, &at);
            assert_interval(&summary["accuracy_ci"], expected.accuracy, expected.accuracy_se, confidence, true, &at);
        }
    }

    // Accuracies 1, 1 and ½ over one pair each: the upper bound 0.83 + 1.96·0.17 is clipped to 1.
    let clipped = [
        TestList::new(None, &[&[1.0, 0.0]]),
        TestList::new(None, &[&[2.0, -1.0]]),
        TestList::new(None, &[&[0.5, 0.5]]),
    ];
    let answer = evaluate(&app, &evaluate_body(&clipped, 0, json!({}))).await;
    let expected = batch_figures(&clipped, 0, 1.0, Norm::OrderedPairs);
    assert!(expected.accuracy + 1.96 * expected.accuracy_se > 1.0);
    assert_close(&answer["summary"]["accuracy_se"], expected.accuracy_se, "clipped: accuracy_se");
    assert_interval(&answer["summary"]["accuracy_ci"], expected.accuracy, expected.accuracy_se, 0.95, true, "clipped");
    assert_eq!(answer["summary"]["accuracy_ci"][1], json!(1.0));

    // One list: no spread to measure, so no standard error and no interval at all.
    let answer = evaluate(&app, &evaluate_body(&lists[..1], 0, json!({}))).await;
    for field in ["loss_se", "loss_ci", "accuracy_se", "accuracy_ci"] {
        assert!(answer["summary"].get(field).is_none(), "one list: {field} in {}", answer["summary"]);
    }
}

#[tokio::test]
async fn invalid_figure_options_are_refused_naming_the_option() {
    let app = TestApp::spawn().await;
    let lists = random_lists(0xBAD, 2, 1);
    let cases = [
        (json!({"confidence": 0}), "options.confidence"),
        (json!({"confidence": 1}), "options.confidence"),
        (json!({"calibration_bins": 0}), "options.calibration_bins"),
        (json!({"calibration_bins": 101}), "options.calibration_bins"),
        (json!({"top_disagreements": 0}), "options.top_disagreements"),
        (json!({"top_disagreements": 1001}), "options.top_disagreements"),
    ];
    for (options, path) in cases {
        let answer = app.evaluate(&evaluate_body(&lists, 0, options.clone())).await;
        assert_eq!(answer.status, 422, "{options}: {}", String::from_utf8_lossy(&answer.body));
        assert_eq!(answer.error_code(), "invalid_value", "{options}");
        assert_eq!(answer.error_path().as_deref(), Some(path), "{options}");
    }
}

// ---------------------------------------------------------------------------------------------
// /v1/compare

/// Checks a comparison of `models` on `lists` against the definitions, and each model's figures
/// against `/v1/evaluate` of the same lists with that model's rewards.
async fn check_comparison(app: &TestApp, lists: &[TestList], models: &[&str], norm: Norm, beta: f64, c: f64) {
    let options = json!({"normalization": norm.name(), "beta": beta, "confidence": c});
    let answer = compare(app, &compare_body(models, lists, options)).await;
    let at = format!("{} models, {} β={beta} c={c}", models.len(), norm.name());
    let expected: Vec<BatchFigures> = (0..models.len()).map(|j| batch_figures(lists, j, beta, norm)).collect();
    assert_eq!(answer["normalization"], json!(norm.name()), "{at}");
    assert_eq!(answer["confidence"], json!(c), "{at}");
    assert_eq!(answer["lists"], json!(lists.len()), "{at}");
    assert_eq!(answer["pairs"], json!(expected[0].pairs as u64), "{at}");

    let got_models = answer["models"].as_array().unwrap();
    assert_eq!(got_models.len(), models.len(), "{at}: models");
    for (j, (got, e)) in got_models.iter().zip(&expected).enumerate() {
        let at = format!("{at}: models[{j}]");
        assert_eq!(got["model"], json!(models[j]), "{at}.model");
        assert_close(&got["loss"], e.loss, &format!("{at}.loss"));
        assert_close(&got["loss_se"], e.loss_se, &format!("{at}.loss_se"));
        assert_interval(&got["loss_ci"], e.loss, e.loss_se, c, false, &format!("{at}.loss_ci"));
        assert_close(&got["accuracy"], e.accuracy, &format!("{at}.accuracy"));
        assert_close(&got["accuracy_se"], e.accuracy_se, &format!("{at}.accuracy_se"));
        assert_interval(&got["accuracy_ci"], e.accuracy, e.accuracy_se, c, true, &format!("{at}.accuracy_ci"));
        assert_close(&got["chance_loss"], e.chance_loss, &format!("{at}.chance_loss"));

        // The same figures as /v1/evaluate of that model's rewards.
        let options = json!({"normalization": norm.name(), "beta": beta, "confidence": c, "include_pairs": false});
        let single = evaluate(app, &evaluate_body(lists, j, options)).await;
        let summary = &single["summary"];
        assert_eq!(got["loss"], single["loss"], "{at}.loss vs /v1/evaluate");
        for field in ["loss_se", "loss_ci", "accuracy", "accuracy_se", "accuracy_ci", "chance_loss", "kendall_tau"] {
            assert_eq!(got[field], summary[field], "{at}.{field} vs /v1/evaluate");
        }
    }

    // Every pair of models in order (0, 1), (0, 2), …, (1, 2), …; differences a − b.
    let order: Vec<(usize, usize)> =
        (0..models.len()).flat_map(|a| (a + 1..models.len()).map(move |b| (a, b))).collect();
    let comparisons = answer["comparisons"].as_array().unwrap();
    assert_eq!(comparisons.len(), order.len(), "{at}: comparisons");
    let (mut loss_p, mut accuracy_p) = (Vec::new(), Vec::new());
    for (got, &(a, b)) in comparisons.iter().zip(&order) {
        let at = format!("{at}: {} − {}", models[a], models[b]);
        assert_eq!((&got["a"], &got["b"]), (&json!(models[a]), &json!(models[b])), "{at}");
        let (fa, fb) = (&expected[a].lists, &expected[b].lists);

        let differences: Vec<f64> = fa.iter().zip(fb).map(|(x, y)| x.loss - y.loss).collect();
        let difference = mean(&differences);
        let se = standard_error_of_mean(&differences);
        // A difference of losses: its rounding is that of the losses, not of the difference.
        let scale = difference.abs().max(expected[a].loss.max(expected[b].loss));
        assert_near(&got["loss_difference"], difference, 1e-12, scale, &format!("{at}: loss_difference"));
        assert_close(&got["loss_difference_se"], se, &format!("{at}: loss_difference_se"));
        assert_interval(&got["loss_difference_ci"], difference, se, c, false, &format!("{at}: loss_difference_ci"));
        let p = p_value(difference, se);
        assert_p_value(&got["loss_p_value"], p, difference / se, &format!("{at}: loss_p_value"));
        loss_p.push((p, difference / se));

        let e: Vec<f64> = fa.iter().zip(fb).map(|(x, y)| x.agreeing - y.agreeing).collect();
        let pairs: Vec<f64> = fa.iter().map(|f| f.pairs).collect();
        let delta = e.iter().sum::<f64>() / expected[a].pairs;
        let se = ratio_standard_error(&e, &pairs);
        assert_close(&got["accuracy_difference"], delta, &format!("{at}: accuracy_difference"));
        assert_close(&got["accuracy_difference_se"], se, &format!("{at}: accuracy_difference_se"));
        assert_interval(&got["accuracy_difference_ci"], delta, se, c, false, &format!("{at}: accuracy_difference_ci"));
        let p = p_value(delta, se);
        assert_p_value(&got["accuracy_p_value"], p, delta / se, &format!("{at}: accuracy_p_value"));
        accuracy_p.push((p, delta / se));

        // Who wins each list: the data hold no list whose two losses are equal only up to rounding.
        let (mut a_better, mut b_better, mut tied) = (0, 0, 0);
        for (x, y) in fa.iter().zip(fb) {
            assert!(x.loss == y.loss || (x.loss - y.loss).abs() > 1e-9 * x.loss, "{at}: near tie {x:?} {y:?}");
            if x.loss < y.loss {
                a_better += 1;
            } else if x.loss > y.loss {
                b_better += 1;
            } else {
                tied += 1;
            }
        }
        assert_eq!(got["lists_a_better"], json!(a_better), "{at}: lists_a_better");
        assert_eq!(got["lists_b_better"], json!(b_better), "{at}: lists_b_better");
        assert_eq!(got["lists_tied"], json!(tied), "{at}: lists_tied");
    }

    // Holm over the family of comparisons of each figure.
    for (family, raw) in [("loss_p_value", &loss_p), ("accuracy_p_value", &accuracy_p)] {
        let p: Vec<f64> = raw.iter().map(|r| r.0).collect();
        let worst_z = raw.iter().map(|r| r.1.abs()).fold(0.0, f64::max);
        for (r, (got, adjusted)) in comparisons.iter().zip(holm(&p)).enumerate() {
            let what = format!("{at}: comparisons[{r}].{family}_holm");
            assert_p_value(&got[format!("{family}_holm")], adjusted, worst_z, &what);
        }
    }
}

#[tokio::test]
async fn compare_scores_two_models_with_paired_list_clustered_statistics() {
    let app = TestApp::spawn().await;
    let lists = random_lists(0xC02, 30, 2);
    assert!(lists.iter().any(|l| l.rewards[0] == l.rewards[1]), "the data hold lists both models score alike");
    for (norm, beta, confidence) in [(Norm::OrderedPairs, 1.0, 0.95), (Norm::Comparisons, 0.7, 0.9)] {
        check_comparison(&app, &lists, &["cmp2-a", "cmp2-b"], norm, beta, confidence).await;
    }
}

#[tokio::test]
async fn compare_scores_three_models_pairwise_with_holm_adjusted_p_values() {
    let app = TestApp::spawn().await;
    let lists = random_lists(0xC03, 30, 3);
    for (norm, beta, confidence) in [(Norm::Comparisons, 1.0, 0.95), (Norm::Sum, 2.0, 0.9)] {
        check_comparison(&app, &lists, &["cmp3-a", "cmp3-b", "cmp3-c"], norm, beta, confidence).await;
    }
}

#[tokio::test]
async fn identical_models_differ_by_zero_with_p_value_one() {
    let app = TestApp::spawn().await;
    let mut lists = random_lists(0x1D3, 30, 1);
    for list in &mut lists {
        list.rewards = vec![list.rewards[0].clone(); 3];
    }
    let answer = post_compare(&app, &compare_body(&["same-a", "same-b", "same-c"], &lists, json!({}))).await;
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    let body = answer.json();
    assert_no_null(&body, "answer");
    let comparisons = body["comparisons"].as_array().unwrap();
    assert_eq!(comparisons.len(), 3);
    for got in comparisons {
        for field in ["loss_difference", "loss_difference_se", "accuracy_difference", "accuracy_difference_se"] {
            assert_eq!(got[field], json!(0.0), "{field} in {got}");
        }
        for field in ["loss_difference_ci", "accuracy_difference_ci"] {
            assert_eq!(got[field], json!([0.0, 0.0]), "{field} in {got}");
        }
        for field in ["loss_p_value", "loss_p_value_holm", "accuracy_p_value", "accuracy_p_value_holm"] {
            assert_eq!(got[field], json!(1.0), "{field} in {got}");
        }
        assert_eq!((&got["lists_a_better"], &got["lists_b_better"]), (&json!(0), &json!(0)), "{got}");
        assert_eq!(got["lists_tied"], json!(lists.len()), "{got}");
    }
    let models = body["models"].as_array().unwrap();
    assert!(models.iter().all(|m| m["loss"] == models[0]["loss"] && m["accuracy"] == models[0]["accuracy"]));
}

#[tokio::test]
async fn compare_of_one_list_has_no_standard_errors_intervals_or_p_values() {
    let app = TestApp::spawn().await;
    let lists = random_lists(0x011, 1, 2);
    let body = compare(&app, &compare_body(&["one-a", "one-b"], &lists, json!({}))).await;
    assert_no_null(&body, "answer");
    let expected: Vec<BatchFigures> = (0..2).map(|j| batch_figures(&lists, j, 1.0, Norm::OrderedPairs)).collect();
    for (got, e) in body["models"].as_array().unwrap().iter().zip(&expected) {
        assert_close(&got["loss"], e.loss, "loss");
        assert_close(&got["accuracy"], e.accuracy, "accuracy");
        let present: Vec<&String> =
            got.as_object().unwrap().keys().filter(|k| k.ends_with("_se") || k.ends_with("_ci")).collect();
        assert!(present.is_empty(), "one list: {present:?} in {got}");
    }
    let got = &body["comparisons"][0];
    assert_close(&got["loss_difference"], expected[0].loss - expected[1].loss, "loss_difference");
    let delta = (expected[0].lists[0].agreeing - expected[1].lists[0].agreeing) / expected[0].pairs;
    assert_close(&got["accuracy_difference"], delta, "accuracy_difference");
    let present: Vec<&String> = got
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.ends_with("_se") || k.ends_with("_ci") || k.contains("_p_value"))
        .collect();
    assert!(present.is_empty(), "one list: {present:?} in {got}");
}

#[tokio::test]
async fn invalid_comparisons_are_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    let lists = random_lists(0xBAD2, 3, 2);
    let models = |count: usize| -> Vec<String> { (0..count).map(|j| format!("m{j}")).collect() };
    let with_models = |count: usize| {
        let mut lists = lists.clone();
        for list in &mut lists {
            list.rewards = vec![list.rewards[0].clone(); count];
        }
        let names = models(count);
        compare_body(&names.iter().map(String::as_str).collect::<Vec<_>>(), &lists, json!({}))
    };

    let mut short = compare_body(&["ra", "rb"], &lists, json!({}));
    short["lists"][0]["items"][1]["rewards"] = json!([0.5]);
    let mut long = compare_body(&["ra", "rb"], &lists, json!({}));
    long["lists"][0]["items"][1]["rewards"] = json!([0.5, 0.25, 1.0]);
    let cases = [
        (short, "lists[0].items[1].rewards"),
        (long, "lists[0].items[1].rewards"),
        (compare_body(&["dup", "dup"], &lists, json!({})), "models[1]"),
        (with_models(1), "models"),
        (with_models(17), "models"),
        (compare_body(&["ra", "rb"], &lists, json!({"confidence": 0})), "options.confidence"),
        (compare_body(&["ra", "rb"], &lists, json!({"confidence": 1})), "options.confidence"),
    ];
    for (body, path) in cases {
        let answer = post_compare(&app, &body).await;
        assert_eq!(answer.status, 422, "{path}: {}", String::from_utf8_lossy(&answer.body));
        assert_eq!(answer.error_code(), "invalid_value", "{path}");
        assert_eq!(answer.error_path().as_deref(), Some(path), "{}", String::from_utf8_lossy(&answer.body));
    }
    // Sixteen models are accepted.
    assert_eq!(post_compare(&app, &with_models(16)).await.status, 200);
}

#[tokio::test]
async fn compare_moves_the_per_model_metrics_of_every_model() {
    let app = TestApp::spawn().await;
    let lists = random_lists(0x3E7, 30, 3);
    let names = ["metrics-a", "metrics-b", "metrics-c"];
    compare(&app, &compare_body(&names, &lists, json!({}))).await;
    let answer = app.get("/metrics").await;
    assert_eq!(answer.status, 200);
    let text = String::from_utf8(answer.body).unwrap();
    let pairs = batch_figures(&lists, 0, 1.0, Norm::OrderedPairs).pairs;
    for name in names {
        let lists_series = format!("prefeval_lists_evaluated_total{{model=\"{name}\"}}");
        assert_eq!(sample(&text, &lists_series), Some(lists.len() as f64), "{lists_series}");
        let pairs_series = format!("prefeval_pairs_evaluated_total{{model=\"{name}\"}}");
        assert_eq!(sample(&text, &pairs_series), Some(pairs), "{pairs_series}");
    }
}

#[tokio::test]
async fn a_loss_difference_whose_sum_overflows_is_still_a_number() {
    let body = json!({"models": ["a", "b"], "options": {"normalization": "sum"}, "lists": [
        {"items": [{"rewards": [-1e308, 1.0]}, {"rewards": [0.0, 0.0]}]},
        {"items": [{"rewards": [-1e308, 1.0]}, {"rewards": [0.0, 0.0]}]}]});
    let answer = post_compare(&TestApp::spawn().await, &body).await;
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    let difference = answer.json()["comparisons"][0]["loss_difference"].as_f64();
    assert_eq!(difference, Some(1e308 - (1.0f64 + (-1.0f64).exp()).ln()));
}

/// Margins where e^(−|z|) is subnormal or rounds to 0 take the kernel's exact scalar path: the
/// answer's probabilities and log-probabilities are libm's values there, to the last subnormal.
#[tokio::test]
async fn margins_in_the_subnormal_range_are_exact() {
    let app = TestApp::spawn().await;
    let margins: [f64; 9] = [700.0, 708.0, 708.5, 709.0, 720.0, 745.0, 745.2, 746.0, 800.0];
    // Each margin twice: the preferred item below the other (z = −d), then above it (z = +d).
    let lists: Vec<Value> = margins
        .iter()
        .flat_map(|&d| {
            [json!({"items": [{"reward": 0.0}, {"reward": d}]}), json!({"items": [{"reward": d}, {"reward": 0.0}]})]
        })
        .collect();
    let answer = app.evaluate(&json!({"options": {"normalization": "sum"}, "lists": lists})).await;
    assert_eq!(answer.status, 200, "{}", answer.json());
    let body = answer.json();
    for (k, &d) in margins.iter().enumerate() {
        for (side, z) in [(0, -d), (1, d)] {
            let pair = &body["lists"][2 * k + side]["pairs"][0];
            let (probability, log_probability) =
                (pair["probability"].as_f64().unwrap(), pair["log_probability"].as_f64().unwrap());
            let want_probability: f64 = if z >= 0.0 { 1.0 / (1.0 + (-z).exp()) } else { z.exp() / (1.0 + z.exp()) };
            let want_log: f64 = z.min(0.0) - (-z.abs()).exp().ln_1p();
            assert!(
                (probability - want_probability).abs() <= 5e-324,
                "σ({z}) = {probability}, libm {want_probability}"
            );
            assert!(
                (log_probability - want_log).abs() <= 5e-324f64.max(4.0 * f64::EPSILON * want_log.abs()),
                "log σ({z}) = {log_probability}, libm {want_log}"
            );
        }
    }
}
