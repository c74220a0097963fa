//! How sure a batch figure is (docs/design/math.md, "Uncertainty: how sure is a figure"). Lists are the
//! independent units, so every standard error here is clustered by list; and every one is
//! computed from sums over the lists, so that it can come from totals merged across chunks and
//! shards. A paired comparison of two models is the same computation on per-list differences.

use super::normal::{inverse_normal_cdf, two_sided_p_value};

/// Standard error of the mean of m values from their sum and sum of squares: s/√m, with s the
/// sample standard deviation (denominator m − 1). For the batch loss the values are the list
/// losses; for a paired loss difference, the per-list differences L_i^A − L_i^B.
///
/// `None` for m < 2 (one value shows no spread) or when a sum is not finite.
pub fn mean_standard_error(sum: f64, sum_squares: f64, m: u64) -> Option<f64> {
    if m < 2 || !sum.is_finite() || !sum_squares.is_finite() {
        return None;
    }
    let count = m as f64;
    // Σx² − (Σx)²/m, the one-pass form the merged totals allow. Rounding can leave it a few ulps
    // below zero when every value is equal; that is no spread at all.
    let variance = ((sum_squares - sum * (sum / count)) / (count - 1.0)).max(0.0);
    Some((variance / count).sqrt())
}

/// Sums over the m lists of a ratio estimator Σa_i / Σp_i. Accuracy: a_i the agreeing pairs of
/// list i (a reward tie counting ½), p_i its implied preferences. A paired accuracy difference:
/// a_i = a_i^A − a_i^B, the same p_i.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RatioSums {
    /// m
    pub lists: u64,
    /// A = Σ a_i
    pub numerator: f64,
    /// P = Σ p_i
    pub denominator: f64,
    /// Σ a_i²
    pub numerator_squares: f64,
    /// Σ a_i·p_i
    pub products: f64,
    /// Σ p_i²
    pub denominator_squares: f64,
}

impl RatioSums {
    /// Adds list i with its a_i and p_i.
    pub fn add(&mut self, numerator: f64, denominator: f64) {
        self.lists += 1;
        self.numerator += numerator;
        self.denominator += denominator;
        self.numerator_squares += numerator * numerator;
        self.products += numerator * denominator;
        self.denominator_squares += denominator * denominator;
    }

    /// The estimate A/P; `None` when P = 0.
    pub fn ratio(&self) -> Option<f64> {
        (self.denominator != 0.0).then(|| self.numerator / self.denominator)
    }
}

/// Standard error of A/P, clustered by list (the delta method):
/// SE² = m/(m−1) · Σ_i (a_i − r·p_i)² / P², r = A/P, with the sum of squares expanded into
/// Σa² − 2r·Σap + r²·Σp² so that it needs only totals. For one pair per list it is the usual s/√m.
///
/// `None` for m < 2, P = 0, or sums that are not finite.
pub fn ratio_standard_error(sums: &RatioSums) -> Option<f64> {
    let ratio = sums.ratio()?;
    let finite = [sums.numerator_squares, sums.products, sums.denominator_squares, ratio].iter().all(|s| s.is_finite());
    if sums.lists < 2 || !finite {
        return None;
    }
    let m = sums.lists as f64;
    // As in `mean_standard_error`, a residual rounded below zero is no spread at all.
    let residual_squares =
        (sums.numerator_squares - 2.0 * ratio * sums.products + ratio * ratio * sums.denominator_squares).max(0.0);
    let variance = m / (m - 1.0) * residual_squares / (sums.denominator * sums.denominator);
    Some(variance.sqrt())
}

/// z = Φ⁻¹(1 − (1 − c)/2) of a two-sided interval at confidence c ∈ (0, 1): 1.959963984540054 at
/// 0.95. Computed as −Φ⁻¹((1 − c)/2), which is the same number but keeps its digits for c near 1,
/// where 1 − (1 − c)/2 would round.
pub fn critical_value(confidence: f64) -> f64 {
    -inverse_normal_cdf((1.0 - confidence) / 2.0)
}

/// estimate ± z·SE at confidence c ∈ (0, 1), as (lower, upper).
pub fn interval(estimate: f64, standard_error: f64, confidence: f64) -> (f64, f64) {
    let half_width = critical_value(confidence) * standard_error;
    (estimate - half_width, estimate + half_width)
}

/// `interval` for an accuracy, clipped to [0, 1], the range an accuracy can take.
pub fn accuracy_interval(estimate: f64, standard_error: f64, confidence: f64) -> (f64, f64) {
    let (lower, upper) = interval(estimate, standard_error, confidence);
    (lower.clamp(0.0, 1.0), upper.clamp(0.0, 1.0))
}

/// Two-sided p-value of H₀: the true value is 0, from z = estimate/SE. With SE = 0 the estimate is
/// certain: p = 1 if it is 0, else 0 (never the NaN of 0/0).
pub fn p_value(estimate: f64, standard_error: f64) -> f64 {
    if standard_error == 0.0 {
        return if estimate == 0.0 { 1.0 } else { 0.0 };
    }
    two_sided_p_value(estimate / standard_error)
}

/// Holm's step-down adjustment over one family of comparisons, in the input order: the i-th
/// smallest of m p-values is multiplied by m − i + 1, then made non-decreasing in that order and
/// capped at 1. Tied p-values get equal adjusted values whatever order they come in.
pub fn holm_adjust(p_values: &[f64]) -> Vec<f64> {
    let m = p_values.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]));
    let mut adjusted = vec![0.0; m];
    let mut running_max = 0.0f64;
    for (step, &i) in order.iter().enumerate() {
        running_max = running_max.max(((m - step) as f64 * p_values[i]).min(1.0));
        adjusted[i] = running_max;
    }
    adjusted
}

#[cfg(test)]
mod tests {
    use super::*;
    use prefeval_testkit::SplitMix64;

    fn assert_relative(actual: f64, expected: f64, tolerance: f64) {
        assert!((actual - expected).abs() <= tolerance * expected.abs(), "{actual:e} vs {expected:e}");
    }

    /// s/√m with s from the two-pass sample variance.
    fn two_pass_standard_error(values: &[f64]) -> f64 {
        let m = values.len() as f64;
        let mean = values.iter().sum::<f64>() / m;
        let variance = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (m - 1.0);
        (variance / m).sqrt()
    }

    /// Losses on a grid (so that some repeat) or spread continuously.
    fn random_values(rng: &mut SplitMix64) -> Vec<f64> {
        let m = 2 + rng.below(60) as usize;
        let grid = rng.below(2) == 0;
        (0..m).map(|_| if grid { rng.below(4) as f64 * 0.125 } else { rng.between(0.0, 2.0) }).collect()
    }

    #[test]
    fn mean_standard_error_matches_the_two_pass_definition() {
        let mut rng = SplitMix64::new(0x5E);
        for _ in 0..1000 {
            let values = random_values(&mut rng);
            let sum = values.iter().sum();
            let sum_squares = values.iter().map(|v| v * v).sum();
            let actual = mean_standard_error(sum, sum_squares, values.len() as u64).unwrap();
            let expected = two_pass_standard_error(&values);
            if expected == 0.0 {
                // The one-pass form may keep a rounding residue where every value is equal.
                assert!(actual <= 1e-7 * values[0], "{actual:e}");
            } else {
                // The one-pass form loses digits in proportion to mean²/variance.
                assert_relative(actual, expected, 1e-11);
            }
        }
    }

    #[test]
    fn mean_standard_error_by_hand() {
        // Values 1, 2, 3, 4: s² = 5/3, SE = √(5/12).
        assert_relative(mean_standard_error(10.0, 30.0, 4).unwrap(), (5.0f64 / 12.0).sqrt(), 1e-15);
        assert_eq!(mean_standard_error(0.0, 0.0, 5), Some(0.0));
        assert_eq!(mean_standard_error(1.0, 1.0, 1), None);
        assert_eq!(mean_standard_error(f64::INFINITY, f64::INFINITY, 3), None);
    }

    /// (a_i, p_i) per list: p_i pairs, a_i agreeing ones in halves.
    fn random_lists(rng: &mut SplitMix64) -> Vec<(f64, f64)> {
        let m = 2 + rng.below(50) as usize;
        (0..m)
            .map(|_| {
                let p = 1 + rng.below(20);
                let a = rng.below(2 * p + 1) as f64 / 2.0;
                (a, p as f64)
            })
            .collect()
    }

    fn sums_of(lists: &[(f64, f64)]) -> RatioSums {
        let mut sums = RatioSums::default();
        lists.iter().for_each(|&(a, p)| sums.add(a, p));
        sums
    }

    #[test]
    fn ratio_standard_error_matches_its_definition_over_the_lists() {
        let mut rng = SplitMix64::new(0xACC);
        for _ in 0..1000 {
            let lists = random_lists(&mut rng);
            let m = lists.len() as f64;
            let a_total: f64 = lists.iter().map(|l| l.0).sum();
            let p_total: f64 = lists.iter().map(|l| l.1).sum();
            let accuracy = a_total / p_total;
            let residuals: f64 = lists.iter().map(|(a, p)| (a - accuracy * p) * (a - accuracy * p)).sum();
            let expected = (m / (m - 1.0) * residuals / (p_total * p_total)).sqrt();
            let actual = ratio_standard_error(&sums_of(&lists)).unwrap();
            if expected == 0.0 {
                assert!(actual <= 1e-7, "{actual:e}");
            } else {
                assert_relative(actual, expected, 1e-10);
            }
        }
    }

    #[test]
    fn one_pair_per_list_gives_the_standard_error_of_the_mean() {
        let mut rng = SplitMix64::new(1);
        for _ in 0..100 {
            let outcomes: Vec<f64> = (0..2 + rng.below(40)).map(|_| rng.below(3) as f64 / 2.0).collect();
            let lists: Vec<(f64, f64)> = outcomes.iter().map(|&a| (a, 1.0)).collect();
            let expected = two_pass_standard_error(&outcomes);
            let actual = ratio_standard_error(&sums_of(&lists)).unwrap();
            assert!((actual - expected).abs() <= 1e-12 * expected.max(1e-3), "{actual:e} vs {expected:e}");
        }
    }

    #[test]
    fn ratio_standard_error_needs_two_lists_and_some_pairs() {
        assert_eq!(ratio_standard_error(&sums_of(&[(1.0, 2.0)])), None);
        assert_eq!(ratio_standard_error(&sums_of(&[(0.0, 0.0), (0.0, 0.0)])), None);
        // Lists (1 of 2) and (3 of 4): accuracy 2/3, residuals −1/3 and 1/3, SE² = 2·(2/9)/36.
        let expected = (2.0f64 * 2.0 / 9.0 / 36.0).sqrt();
        assert_relative(ratio_standard_error(&sums_of(&[(1.0, 2.0), (3.0, 4.0)])).unwrap(), expected, 1e-14);
    }

    #[test]
    fn identical_models_differ_by_zero_with_p_one() {
        // Paired differences of a model with itself: every e_i and every L_i^A − L_i^B is 0.
        let mut rng = SplitMix64::new(2);
        let lists = random_lists(&mut rng);
        let differences: Vec<(f64, f64)> = lists.iter().map(|&(a, p)| (a - a, p)).collect();
        let sums = sums_of(&differences);
        let (estimate, se) = (sums.ratio().unwrap(), ratio_standard_error(&sums).unwrap());
        assert_eq!((estimate, se, p_value(estimate, se)), (0.0, 0.0, 1.0));
        let loss_se = mean_standard_error(0.0, 0.0, lists.len() as u64).unwrap();
        assert_eq!((loss_se, p_value(0.0, loss_se)), (0.0, 1.0));
        assert_eq!(interval(0.0, loss_se, 0.95), (0.0, 0.0));
    }

    #[test]
    fn intervals() {
        assert_relative(critical_value(0.95), 1.959963984540054, 1e-15);
        assert_relative(critical_value(0.99), 2.5758293035489004, 1e-15);
        assert_relative(critical_value(0.9), 1.6448536269514722, 1e-15);
        let (lower, upper) = interval(0.5, 0.1, 0.95);
        assert_relative(lower, 0.5 - 0.1959963984540054, 1e-15);
        assert_relative(upper, 0.5 + 0.1959963984540054, 1e-15);
        let (lower, upper) = accuracy_interval(0.98, 0.02, 0.95);
        assert_relative(lower, 0.98 - 0.02 * 1.959963984540054, 1e-15);
        assert_eq!(upper, 1.0);
        assert_eq!(accuracy_interval(0.01, 0.02, 0.95).0, 0.0);
    }

    #[test]
    fn p_values() {
        assert_relative(p_value(0.1959963984540054, 0.1), 0.05, 1e-12);
        assert_eq!(p_value(-0.3, 0.1), p_value(0.3, 0.1));
        assert_eq!(p_value(0.0, 0.0), 1.0);
        assert_eq!(p_value(1e-300, 0.0), 0.0);
        assert_eq!(p_value(-2.0, 0.0), 0.0);
        assert_eq!(p_value(0.0, 0.5), 1.0);
        assert_eq!(p_value(1.0, 1e-300), 0.0);
    }

    /// Holm's adjusted p-value by definition: the largest (m − j)·p over the p-values at or below
    /// this one, j counting the p-values strictly below (ties share the best multiplier), capped at 1.
    fn holm_direct(p: &[f64]) -> Vec<f64> {
        let m = p.len();
        p.iter()
            .map(|&pi| {
                let worst = p
                    .iter()
                    .filter(|&&pk| pk <= pi)
                    .map(|&pk| (m - p.iter().filter(|&&pl| pl < pk).count()) as f64 * pk)
                    .fold(0.0f64, f64::max);
                worst.min(1.0)
            })
            .collect()
    }

    #[test]
    fn holm_by_hand() {
        let adjusted = holm_adjust(&[0.01, 0.04, 0.03, 0.005]);
        for (a, e) in adjusted.iter().zip([0.03, 0.06, 0.06, 0.02]) {
            assert_relative(*a, e, 1e-15);
        }
        assert_eq!(holm_adjust(&[0.5, 0.9]), vec![1.0, 1.0]);
        assert_eq!(holm_adjust(&[0.2]), vec![0.2]);
        assert_eq!(holm_adjust(&[]), Vec::<f64>::new());
        assert_eq!(holm_adjust(&[0.01, 0.01, 0.01]), vec![3.0 * 0.01; 3]);
    }

    #[test]
    fn holm_matches_its_definition_with_ties() {
        let mut rng = SplitMix64::new(0x401);
        for _ in 0..1000 {
            let m = rng.below(12) as usize;
            let grid = rng.below(2) == 0;
            let p: Vec<f64> =
                (0..m).map(|_| if grid { rng.below(8) as f64 / 64.0 } else { rng.unit() * 0.2 }).collect();
            let adjusted = holm_adjust(&p);
            assert_eq!(adjusted, holm_direct(&p), "{p:?}");
            // Adjusting never lowers a p-value and keeps the order of the raw ones.
            for i in 0..m {
                assert!(adjusted[i] >= p[i] && adjusted[i] <= 1.0);
                for j in 0..m {
                    assert!(p[i] > p[j] || adjusted[i] <= adjusted[j]);
                }
            }
        }
    }
}
