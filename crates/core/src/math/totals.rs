//! The sufficient statistics of a set of evaluated lists: what the batch figures are computed
//! from, and what merges exactly when a dataset is split into chunks (a stream) or shards (replicas):
//! merging totals, never averaging averages, gives the figures of the whole.

use super::batch::{ListEvaluation, accuracy};
use super::margins::MarginCounts;
use super::sum::NeumaierSum;
use crate::stats::{RatioSums, mean_standard_error, ratio_standard_error};

/// 2⁻⁶⁴: sums of list losses near f64::MAX are also kept scaled by it, exactly (a power of two).
const OVERFLOW_SCALE: f64 = 1.0 / 18_446_744_073_709_551_616.0;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Totals {
    pub lists: u64,
    pub pairs: u64,
    /// Agreeing pairs in halves (a reward tie counts one half), so the count stays an integer.
    pub agreeing_halves: u64,
    pub loss_sum: NeumaierSum,
    /// Σ loss·2⁻⁶⁴, for when `loss_sum` overflows although every list loss is finite.
    pub loss_sum_scaled: NeumaierSum,
    pub loss_sum_squares: NeumaierSum,
    pub chance_loss_sum: NeumaierSum,
    /// Σ τ-b over the lists where it is defined, and how many those are.
    pub kendall_tau_sum: NeumaierSum,
    pub kendall_tau_lists: u64,
    /// Σ a_i², Σ a_i·p_i and Σ p_i² (a_i agreeing pairs, p_i implied pairs of list i): with the
    /// counts above, what the list-clustered standard error of the accuracy needs.
    pub agreeing_squares: NeumaierSum,
    pub agreeing_pairs: NeumaierSum,
    pub pairs_squares: NeumaierSum,
    /// The margins of every implied pair, bucketed (for metrics; not part of merged totals).
    pub margins: MarginCounts,
}

impl Totals {
    pub fn add(&mut self, list: &ListEvaluation) {
        self.lists += 1;
        self.pairs += list.pairs_count;
        self.agreeing_halves += list.agreeing_halves;
        self.loss_sum.add(list.loss);
        self.loss_sum_scaled.add(list.loss * OVERFLOW_SCALE);
        self.loss_sum_squares.add(list.loss * list.loss);
        self.chance_loss_sum.add(list.chance_loss);
        if let Some(tau) = list.kendall_tau {
            self.kendall_tau_sum.add(tau);
            self.kendall_tau_lists += 1;
        }
        let (agreeing, pairs) = (list.agreeing_halves as f64 / 2.0, list.pairs_count as f64);
        self.agreeing_squares.add(agreeing * agreeing);
        self.agreeing_pairs.add(agreeing * pairs);
        self.pairs_squares.add(pairs * pairs);
        self.margins.merge(&list.margins);
    }

    /// Folds in the totals of a later chunk or shard.
    pub fn merge(&mut self, other: &Totals) {
        self.lists += other.lists;
        self.pairs += other.pairs;
        self.agreeing_halves += other.agreeing_halves;
        self.loss_sum.merge(&other.loss_sum);
        self.loss_sum_scaled.merge(&other.loss_sum_scaled);
        self.loss_sum_squares.merge(&other.loss_sum_squares);
        self.chance_loss_sum.merge(&other.chance_loss_sum);
        self.kendall_tau_sum.merge(&other.kendall_tau_sum);
        self.kendall_tau_lists += other.kendall_tau_lists;
        self.agreeing_squares.merge(&other.agreeing_squares);
        self.agreeing_pairs.merge(&other.agreeing_pairs);
        self.pairs_squares.merge(&other.pairs_squares);
        self.margins.merge(&other.margins);
    }

    /// `merge`, unless a count would overflow u64 or a sum (other than those allowed to overflow,
    /// `loss_sum` beside `loss_sum_scaled`, and `loss_sum_squares`) would leave the finite numbers:
    /// then the name of that field of `Totals`, and `self` unchanged.
    pub fn checked_merge(&mut self, other: &Totals) -> Result<(), &'static str> {
        let count = |mine: u64, theirs: u64, name| mine.checked_add(theirs).ok_or(name);
        let lists = count(self.lists, other.lists, "lists")?;
        let pairs = count(self.pairs, other.pairs, "pairs")?;
        let agreeing_halves = count(self.agreeing_halves, other.agreeing_halves, "agreeing_halves")?;
        let kendall_tau_lists = count(self.kendall_tau_lists, other.kendall_tau_lists, "kendall_tau_lists")?;
        let mut merged = *self;
        merged.merge(other);
        let finite = [
            (merged.loss_sum_scaled, "loss_sum_scaled"),
            (merged.chance_loss_sum, "chance_loss_sum"),
            (merged.kendall_tau_sum, "kendall_tau_sum"),
            (merged.agreeing_squares, "agreeing_squares"),
            (merged.agreeing_pairs, "agreeing_pairs"),
            (merged.pairs_squares, "pairs_squares"),
        ];
        if let Some((_, name)) = finite.iter().find(|(sum, _)| !sum.value().is_finite()) {
            return Err(name);
        }
        *self = Totals { lists, pairs, agreeing_halves, kendall_tau_lists, ..merged };
        Ok(())
    }

    /// The batch loss: the mean of the list losses; `None` without lists.
    pub fn loss(&self) -> Option<f64> {
        let count = self.lists as f64;
        if self.lists == 0 {
            return None;
        }
        let mean = self.loss_sum.value() / count;
        if mean.is_finite() {
            return Some(mean);
        }
        // Each list loss is finite, so their mean is too; only the intermediate sum overflowed.
        Some((self.loss_sum_scaled.value() / count / OVERFLOW_SCALE).min(f64::MAX))
    }

    /// Micro-averaged accuracy over every pair; `None` without pairs.
    pub fn accuracy(&self) -> Option<f64> {
        (self.pairs > 0).then(|| accuracy(self.agreeing_halves, self.pairs))
    }

    /// The mean chance loss of the lists; `None` without lists.
    pub fn chance_loss(&self) -> Option<f64> {
        (self.lists > 0).then(|| self.chance_loss_sum.value() / self.lists as f64)
    }

    /// The mean τ-b over the lists where it is defined; `None` if it is defined for none.
    pub fn kendall_tau(&self) -> Option<f64> {
        (self.kendall_tau_lists > 0).then(|| self.kendall_tau_sum.value() / self.kendall_tau_lists as f64)
    }

    /// Standard error of the batch loss (a mean of list losses); `None` with fewer than 2 lists.
    pub fn loss_standard_error(&self) -> Option<f64> {
        mean_standard_error(self.loss_sum.value(), self.loss_sum_squares.value(), self.lists)
    }

    /// List-clustered standard error of the batch accuracy; `None` with fewer than 2 lists.
    pub fn accuracy_standard_error(&self) -> Option<f64> {
        ratio_standard_error(&RatioSums {
            lists: self.lists,
            numerator: self.agreeing_halves as f64 / 2.0,
            denominator: self.pairs as f64,
            numerator_squares: self.agreeing_squares.value(),
            products: self.agreeing_pairs.value(),
            denominator_squares: self.pairs_squares.value(),
        })
    }
}

/// A list's evaluation with only what the totals read, for the tests of totals and their checks.
#[cfg(test)]
pub(crate) fn evaluation_for_totals(loss: f64, pairs: u64, agreeing_halves: u64, tau: Option<f64>) -> ListEvaluation {
    ListEvaluation {
        n: 3,
        pairs_count: pairs,
        agreeing_halves,
        loss,
        accuracy: 0.0,
        chance_loss: 0.5,
        kendall_tau: tau,
        gradients: None,
        margins: Default::default(),
        pairs: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(loss: f64, pairs: u64, agreeing_halves: u64) -> ListEvaluation {
        evaluation_for_totals(loss, pairs, agreeing_halves, None)
    }

    #[test]
    fn merged_shards_give_the_figures_of_the_whole() {
        let lists = [list(0.25, 3, 6), list(0.5, 1, 1), list(1.0, 2, 0), list(0.125, 3, 5)];
        let mut whole = Totals::default();
        lists.iter().for_each(|l| whole.add(l));
        let (mut left, mut right) = (Totals::default(), Totals::default());
        lists[..1].iter().for_each(|l| left.add(l));
        lists[1..].iter().for_each(|l| right.add(l));
        left.merge(&right);
        assert_eq!(left.loss(), whole.loss());
        assert_eq!(whole.loss(), Some(0.46875));
        assert_eq!(whole.accuracy(), Some(12.0 / 18.0));
        assert_eq!(left.pairs, 9);
        assert_eq!(Totals::default().loss(), None);
    }

    #[test]
    fn a_checked_merge_names_the_count_that_would_overflow_and_changes_nothing() {
        let mut totals = Totals::default();
        totals.add(&list(0.5, 3, 4));
        let before = totals;
        let full = Totals { lists: u64::MAX, ..Totals::default() };
        assert_eq!(totals.checked_merge(&full), Err("lists"));
        assert_eq!(totals, before);
        let full = Totals { agreeing_halves: u64::MAX, ..Totals::default() };
        assert_eq!(totals.checked_merge(&full), Err("agreeing_halves"));
        let mut huge = Totals::default();
        huge.chance_loss_sum.add(f64::MAX);
        let mut twice = huge;
        assert_eq!(twice.checked_merge(&huge), Err("chance_loss_sum"));
        assert_eq!(totals.checked_merge(&before), Ok(()));
        assert_eq!((totals.lists, totals.pairs, totals.agreeing_halves), (2, 6, 8));
    }

    #[test]
    fn an_overflowing_sum_of_finite_losses_still_has_a_mean() {
        let mut totals = Totals::default();
        totals.add(&list(1.5e308, 1, 2));
        totals.add(&list(1.5e308, 1, 2));
        assert_eq!(totals.loss(), Some(1.5e308));
    }
}
