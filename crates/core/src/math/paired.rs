//! Two models scored on the same lists (docs/design/math.md, "Uncertainty" and "Dataset-scale
//! figures"): the sums a paired comparison's figures come from. Per list, d = L^A − L^B (loss) and
//! e = a^A − a^B (agreeing pairs) with p the list's implied pairs; the sums Σd, Σd², Σe, Σe², Σe·p,
//! Σp² and who won each list add up across chunks and shards, so the figures of merged sums are
//! those of the whole, and p-values are computed from them, never combined.

use std::cmp::Ordering;

use super::batch::ListEvaluation;
use super::sum::NeumaierSum;
use crate::stats::{RatioSums, mean_standard_error, ratio_standard_error};

/// 2⁻⁶⁴: the loss differences are also summed scaled by it, exactly (a power of two), for when Σd
/// overflows although every difference is finite.
const OVERFLOW_SCALE: f64 = 1.0 / 18_446_744_073_709_551_616.0;

/// The sums of one pair of models, a and b, over the lists both scored.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PairedSums {
    /// Σd and Σd² of the per-list loss differences d = L^a − L^b.
    pub loss_difference_sum: NeumaierSum,
    pub loss_difference_squares: NeumaierSum,
    /// Σd·2⁻⁶⁴, for when `loss_difference_sum` overflows.
    pub loss_difference_sum_scaled: NeumaierSum,
    /// e = a^a − a^b over p: m, Σe, P = Σp, Σe², Σe·p, Σp² (half-integers and integers: exact).
    pub accuracy: RatioSums,
    /// Lists where a's loss is lower, higher, equal.
    pub a_better: u64,
    pub b_better: u64,
    pub tied: u64,
}

impl PairedSums {
    /// Adds one list, evaluated by model a and by model b.
    pub fn add(&mut self, a: &ListEvaluation, b: &ListEvaluation) {
        let difference = a.loss - b.loss;
        self.loss_difference_sum.add(difference);
        self.loss_difference_squares.add(difference * difference);
        self.loss_difference_sum_scaled.add(difference * OVERFLOW_SCALE);
        let agreeing = (a.agreeing_halves as f64 - b.agreeing_halves as f64) / 2.0;
        self.accuracy.add(agreeing, a.pairs_count as f64);
        match a.loss.total_cmp(&b.loss) {
            Ordering::Less => self.a_better += 1,
            Ordering::Greater => self.b_better += 1,
            Ordering::Equal => self.tied += 1,
        }
    }

    /// m, the lists compared.
    pub fn lists(&self) -> u64 {
        self.accuracy.lists
    }

    /// Folds in the sums of a later chunk or shard.
    pub fn merge(&mut self, other: &PairedSums) {
        self.loss_difference_sum.merge(&other.loss_difference_sum);
        self.loss_difference_squares.merge(&other.loss_difference_squares);
        self.loss_difference_sum_scaled.merge(&other.loss_difference_sum_scaled);
        let (mine, theirs) = (&mut self.accuracy, &other.accuracy);
        mine.lists += theirs.lists;
        mine.numerator += theirs.numerator;
        mine.denominator += theirs.denominator;
        mine.numerator_squares += theirs.numerator_squares;
        mine.products += theirs.products;
        mine.denominator_squares += theirs.denominator_squares;
        self.a_better += other.a_better;
        self.b_better += other.b_better;
        self.tied += other.tied;
    }

    /// `merge`, unless a count would overflow u64 or a sum that must stay finite would not: then
    /// the name of that sum (as `ComparisonTotalsJson` names it), `self` unchanged.
    pub fn checked_merge(&mut self, other: &PairedSums) -> Result<(), &'static str> {
        let count = |mine: u64, theirs: u64, name| mine.checked_add(theirs).map(drop).ok_or(name);
        count(self.accuracy.lists, other.accuracy.lists, "lists")?;
        count(self.a_better, other.a_better, "lists_a_better")?;
        count(self.b_better, other.b_better, "lists_b_better")?;
        count(self.tied, other.tied, "lists_tied")?;
        let mut merged = *self;
        merged.merge(other);
        let sums = &merged.accuracy;
        let finite = [
            (merged.loss_difference_sum_scaled.value(), "loss_difference_sum_scaled"),
            (sums.numerator, "accuracy_difference_sum"),
            (sums.denominator, "pairs"),
            (sums.numerator_squares, "accuracy_difference_squares"),
            (sums.products, "accuracy_difference_pairs"),
            (sums.denominator_squares, "pairs_squares"),
        ];
        if let Some((_, name)) = finite.iter().find(|(sum, _)| !sum.is_finite()) {
            return Err(name);
        }
        *self = merged;
        Ok(())
    }

    /// D = mean of d; `None` without lists. Each d is finite, so D is too: when Σd overflows, D
    /// comes from the scaled sum.
    pub fn loss_difference(&self) -> Option<f64> {
        let m = self.lists();
        if m == 0 {
            return None;
        }
        let mean = self.loss_difference_sum.value() / m as f64;
        if mean.is_finite() {
            return Some(mean);
        }
        Some((self.loss_difference_sum_scaled.value() / m as f64 / OVERFLOW_SCALE).clamp(-f64::MAX, f64::MAX))
    }

    /// s_D/√m; `None` with fewer than 2 lists or sums that overflowed.
    pub fn loss_difference_standard_error(&self) -> Option<f64> {
        mean_standard_error(self.loss_difference_sum.value(), self.loss_difference_squares.value(), self.lists())
    }

    /// Δ = Σe/P; `None` without pairs.
    pub fn accuracy_difference(&self) -> Option<f64> {
        self.accuracy.ratio()
    }

    /// The list-clustered SE of Δ (`ratio_standard_error`); `None` with fewer than 2 lists.
    pub fn accuracy_difference_standard_error(&self) -> Option<f64> {
        ratio_standard_error(&self.accuracy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::evaluation_for_totals;
    use prefeval_testkit::SplitMix64;

    #[test]
    fn merged_chunks_give_the_sums_of_the_whole_and_two_pass_figures() {
        let mut rng = SplitMix64::new(0xD1FF);
        let lists: Vec<(ListEvaluation, ListEvaluation)> = (0..40)
            .map(|_| {
                let pairs = 1 + rng.below(10);
                let a = evaluation_for_totals(rng.between(0.0, 2.0), pairs, rng.below(2 * pairs + 1), None);
                let b = evaluation_for_totals(rng.between(0.0, 2.0), pairs, rng.below(2 * pairs + 1), None);
                (a, b)
            })
            .collect();
        let mut whole = PairedSums::default();
        lists.iter().for_each(|(a, b)| whole.add(a, b));
        let (mut left, mut right) = (PairedSums::default(), PairedSums::default());
        lists[..13].iter().for_each(|(a, b)| left.add(a, b));
        lists[13..].iter().for_each(|(a, b)| right.add(a, b));
        assert_eq!(left.checked_merge(&right), Ok(()));
        assert_eq!(left.accuracy, whole.accuracy, "half-integer sums are exact in any order");
        assert_eq!((left.a_better, left.b_better, left.tied), (whole.a_better, whole.b_better, whole.tied));

        // Two-pass definitions.
        let m = lists.len() as f64;
        let d: Vec<f64> = lists.iter().map(|(a, b)| a.loss - b.loss).collect();
        let mean = d.iter().sum::<f64>() / m;
        let se = (d.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (m - 1.0) / m).sqrt();
        let close = |got: Option<f64>, want: f64| {
            let got = got.unwrap_or(f64::NAN);
            assert!((got - want).abs() <= 1e-12 * want.abs().max(1e-3), "{got} vs {want}");
        };
        close(left.loss_difference(), mean);
        close(left.loss_difference_standard_error(), se);
        let e: Vec<f64> =
            lists.iter().map(|(a, b)| (a.agreeing_halves as f64 - b.agreeing_halves as f64) / 2.0).collect();
        let p: Vec<f64> = lists.iter().map(|(a, _)| a.pairs_count as f64).collect();
        let delta = e.iter().sum::<f64>() / p.iter().sum::<f64>();
        let residuals = e.iter().zip(&p).map(|(e, p)| (e - delta * p).powi(2)).sum::<f64>();
        let se = (m / (m - 1.0) * residuals).sqrt() / p.iter().sum::<f64>();
        close(left.accuracy_difference(), delta);
        close(left.accuracy_difference_standard_error(), se);
    }

    #[test]
    fn a_checked_merge_names_the_count_that_would_overflow() {
        let mut sums = PairedSums::default();
        let full = PairedSums { a_better: u64::MAX, ..PairedSums::default() };
        sums.a_better = 1;
        assert_eq!(sums.checked_merge(&full), Err("lists_a_better"));
        assert_eq!(sums.a_better, 1);
        assert_eq!(PairedSums::default().loss_difference(), None);
    }
}
