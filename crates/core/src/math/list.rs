//! One ranked list prepared for evaluation: rewards reordered best rank first, so that the
//! preferences implied by row `p` are exactly the items from `tier_end(p)` to the end. The O(N²)
//! kernel then walks contiguous memory and needs no per-pair rank comparison.

use std::ops::Range;

use super::gradient::loss_gradients;
use super::kendall::{kendall_tau_b, tau_b_from_counts};
use super::kernel::{self, BLOCK, LaneTotals};
use super::margins::MarginCounts;
use super::sum::NeumaierSum;

/// A preference implied by the ranking, with the model's Bradley–Terry probability for it.
/// Indices refer to the items as submitted.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ImpliedPair {
    pub preferred: u32,
    pub other: u32,
    pub probability: f64,
    pub log_probability: f64,
}

/// Why a list cannot be evaluated; `item` indices refer to the items as submitted.
#[derive(Clone, Debug, PartialEq)]
pub enum ListError {
    TooFewItems {
        n: usize,
    },
    TooManyItems {
        n: usize,
    },
    RanksMissing {
        item: usize,
    },
    NonFiniteReward {
        item: usize,
    },
    /// Every item shares one rank: the list implies no preference, so loss and accuracy are 0/0.
    NoPreferences,
    /// β·(r_max − r_min) overflows f64; `item` is the item with the reward of largest magnitude.
    RewardSpreadOverflow {
        item: usize,
    },
}

#[derive(Clone, Debug)]
pub struct RankedList {
    sorted_rewards: Vec<f64>,
    /// Sorted position → submitted index; `None` when the submitted order is already rank order.
    submitted_index: Option<Vec<u32>>,
    /// Sorted position → first position ranked strictly worse; `None` when no two items tie.
    tier_end: Option<Vec<u32>>,
    pairs: u64,
}

/// Sums over a range of rows of one list; partials of one list merge in row order.
#[derive(Clone, Copy, Debug, Default)]
pub struct RowsPartial {
    pub log_probability_sum: NeumaierSum,
    /// Pairs the rewards order the same way as the ranking, counted in halves (a reward tie is one half).
    pub agreeing_halves: u64,
    /// Pairs whose rewards are equal.
    pub reward_ties: u64,
    pub pairs: u64,
    pub margins: MarginCounts,
}

impl RowsPartial {
    pub fn merge(&mut self, other: &RowsPartial) {
        self.log_probability_sum.merge(&other.log_probability_sum);
        self.agreeing_halves += other.agreeing_halves;
        self.reward_ties += other.reward_ties;
        self.pairs += other.pairs;
        self.margins.merge(&other.margins);
    }
}

impl RankedList {
    /// `ranks`: `None` means the items are ranked best first in submitted order; otherwise one
    /// rank per item (1 = best; ties and gaps allowed; only their order matters).
    pub fn new(rewards: Vec<f64>, ranks: Option<&[u64]>) -> Result<Self, ListError> {
        let n = rewards.len();
        if n < 2 {
            return Err(ListError::TooFewItems { n });
        }
        if u32::try_from(n).is_err() {
            return Err(ListError::TooManyItems { n });
        }
        if let Some(item) = rewards.iter().position(|r| !r.is_finite()) {
            return Err(ListError::NonFiniteReward { item });
        }
        let Some(ranks) = ranks else {
            let pairs = n as u64 * (n as u64 - 1) / 2;
            return Ok(RankedList { sorted_rewards: rewards, submitted_index: None, tier_end: None, pairs });
        };
        if ranks.len() != n {
            return Err(ListError::RanksMissing { item: ranks.len().min(n) });
        }
        // n ≤ u32::MAX was checked above, so these casts are lossless.
        let mut order: Vec<u32> = (0..n as u32).collect();
        // Stable sort: items of one rank keep their submitted order.
        order.sort_by_key(|&i| ranks[i as usize]);
        let sorted_ranks: Vec<u64> = order.iter().map(|&i| ranks[i as usize]).collect();
        let in_submitted_order = order.iter().enumerate().all(|(p, &i)| p == i as usize);
        let has_ties = sorted_ranks.windows(2).any(|w| w[0] == w[1]);

        let tier_end = has_ties.then(|| {
            let mut ends = vec![n as u32; n];
            let mut end = n as u32;
            for p in (0..n).rev() {
                if p + 1 < n && sorted_ranks[p] != sorted_ranks[p + 1] {
                    end = p as u32 + 1;
                }
                ends[p] = end;
            }
            ends
        });
        let pairs = match &tier_end {
            Some(ends) => ends.iter().map(|&e| n as u64 - u64::from(e)).sum(),
            None => n as u64 * (n as u64 - 1) / 2,
        };
        if pairs == 0 {
            return Err(ListError::NoPreferences);
        }
        let sorted_rewards = order.iter().map(|&i| rewards[i as usize]).collect();
        Ok(RankedList { sorted_rewards, submitted_index: (!in_submitted_order).then_some(order), tier_end, pairs })
    }

    pub fn len(&self) -> usize {
        self.sorted_rewards.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sorted_rewards.is_empty()
    }

    /// Number of implied preferences (N(N−1)/2 without ties).
    pub fn pairs(&self) -> u64 {
        self.pairs
    }

    /// True when pairs come out of the kernel in a different order than ascending submitted indices.
    pub fn reorders_pairs(&self) -> bool {
        self.submitted_index.is_some()
    }

    /// Rejects a β for which some β·(r_a − r_b) would overflow: the loss would not be finite.
    pub fn check_reward_spread(&self, beta: f64) -> Result<(), ListError> {
        let (min_p, max_p) = self.sorted_rewards.iter().enumerate().fold((0, 0), |(lo, hi), (p, &r)| {
            (if r < self.sorted_rewards[lo] { p } else { lo }, if r > self.sorted_rewards[hi] { p } else { hi })
        });
        let (min, max) = (self.sorted_rewards[min_p], self.sorted_rewards[max_p]);
        if (beta * (max - min)).is_finite() {
            return Ok(());
        }
        let culprit = if max.abs() >= min.abs() { max_p } else { min_p };
        Err(ListError::RewardSpreadOverflow { item: self.submitted(culprit) as usize })
    }

    fn submitted(&self, position: usize) -> u32 {
        match &self.submitted_index {
            Some(order) => order[position],
            None => position as u32,
        }
    }

    fn first_worse(&self, position: usize) -> usize {
        match &self.tier_end {
            Some(ends) => ends[position] as usize,
            None => position + 1,
        }
    }

    /// The human ranking as tiers, per sorted position: 0 for the best tier, 1 for the next, ...
    fn tiers(&self) -> Vec<u64> {
        let mut tiers = Vec::with_capacity(self.len());
        let mut tier = 0u64;
        let mut position = 0;
        while position < self.len() {
            let end = self.first_worse(position);
            tiers.extend(std::iter::repeat_n(tier, end - position));
            tier += 1;
            position = end;
        }
        tiers
    }

    /// Kendall's τ-b between the human ranking and the rewards; `None` when every rank or every
    /// reward is equal.
    pub fn kendall_tau(&self) -> Option<f64> {
        kendall_tau_b(&self.tiers(), &self.sorted_rewards)
    }

    /// τ-b from the kernel's sums over all the list's rows, when no two items share a rank: then
    /// every item pair is an implied pair, n_c − n_d = agreeing halves − pairs, and the pairs tied
    /// in reward are the kernel's reward ties: the same integers into the same formula as
    /// `kendall_tau_b`, so the same bits, without its sort. `None` when ranks tie (use
    /// `kendall_tau`).
    pub fn kendall_tau_from(&self, whole: &RowsPartial) -> Option<Option<f64>> {
        if self.tier_end.is_some() {
            return None;
        }
        let pairs = u128::from(whole.pairs);
        let untied_in_reward = pairs - u128::from(whole.reward_ties);
        Some(tau_b_from_counts(pairs, untied_in_reward, i128::from(whole.agreeing_halves) - pairs as i128))
    }

    /// ∂L/∂r_k for every item, in submitted order, for a loss normalised by `divisor`.
    pub fn gradients(&self, beta: f64, divisor: f64) -> Vec<f64> {
        let sorted = loss_gradients(&self.tiers(), &self.sorted_rewards, beta, divisor);
        match &self.submitted_index {
            None => sorted,
            Some(order) => {
                let mut submitted = vec![0.0; sorted.len()];
                for (position, &index) in order.iter().enumerate() {
                    submitted[index as usize] = sorted[position];
                }
                submitted
            }
        }
    }

    /// Every implied pair as (preferred, other, margin β·(r_preferred − r_other)), indices as
    /// submitted, in no particular order.
    pub fn for_each_margin(&self, beta: f64, mut visit: impl FnMut(u32, u32, f64)) {
        let rewards = &self.sorted_rewards;
        for (p, &r_p) in rewards.iter().enumerate() {
            let preferred = self.submitted(p);
            for (q, &r_q) in rewards.iter().enumerate().skip(self.first_worse(p)) {
                visit(preferred, self.submitted(q), beta * (r_p - r_q));
            }
        }
    }

    /// Splits the rows into consecutive ranges of about `target_pairs` pairs each. Depends only on
    /// the list, never on the number of workers, so the summation order (and every bit of the
    /// result) is the same on any machine.
    pub fn row_chunks(&self, target_pairs: u64) -> Vec<Range<usize>> {
        let n = self.len();
        let mut chunks = Vec::new();
        let (mut start, mut acc) = (0, 0u64);
        for p in 0..n {
            acc += (n - self.first_worse(p)) as u64;
            if acc >= target_pairs {
                chunks.push(start..p + 1);
                (start, acc) = (p + 1, 0);
            }
        }
        if acc > 0 || chunks.is_empty() {
            chunks.push(start..n);
        }
        chunks
    }

    /// Sums log σ(β·(r_a − r_b)) and counts agreement over the pairs whose preferred item sits in
    /// `rows` (sorted positions).
    pub fn accumulate_rows(&self, rows: Range<usize>, beta: f64) -> RowsPartial {
        if self.pairs <= SMALL_BLOCK as u64 {
            self.accumulate::<SMALL_BLOCK>(rows, beta)
        } else {
            self.accumulate::<BLOCK>(rows, beta)
        }
    }

    /// `accumulate_rows`, and `sink` sees every pair in order with its probabilities.
    pub fn accumulate_rows_with_pairs(
        &self,
        rows: Range<usize>,
        beta: f64,
        sink: impl FnMut(ImpliedPair),
    ) -> RowsPartial {
        if self.pairs <= SMALL_BLOCK as u64 {
            self.accumulate_with_pairs::<SMALL_BLOCK>(rows, beta, sink)
        } else {
            self.accumulate_with_pairs::<BLOCK>(rows, beta, sink)
        }
    }

    // A list of few pairs fits one block of either size, so the choice changes no bit of the
    // result; the small buffers spare short lists the clearing of 16 KiB of stack.
    fn accumulate<const B: usize>(&self, rows: Range<usize>, beta: f64) -> RowsPartial {
        let mut totals = LaneTotals::default();
        self.for_each_block::<false, B>(rows, |diffs, _| kernel::accumulate(diffs, beta, &mut totals, None));
        RowsPartial::from(&totals)
    }

    fn accumulate_with_pairs<const B: usize>(
        &self,
        rows: Range<usize>,
        beta: f64,
        mut sink: impl FnMut(ImpliedPair),
    ) -> RowsPartial {
        let mut totals = LaneTotals::default();
        let mut log_probabilities = [0.0; B];
        let mut probabilities = [0.0; B];
        self.for_each_block::<true, B>(rows, |diffs, positions| {
            let outputs = (&mut log_probabilities[..diffs.len()], &mut probabilities[..diffs.len()]);
            kernel::accumulate(diffs, beta, &mut totals, Some(outputs));
            for ((&(p, q), &log_probability), &probability) in
                positions.iter().zip(&log_probabilities).zip(&probabilities)
            {
                sink(ImpliedPair {
                    preferred: self.submitted(p as usize),
                    other: self.submitted(q as usize),
                    probability,
                    log_probability,
                });
            }
        });
        RowsPartial::from(&totals)
    }

    /// Hands the differences r_p − r_q of the pairs of `rows`, in row order, to `visit` in blocks
    /// of `B` (the last one shorter), with their sorted positions (p, q) when `POSITIONS`.
    /// Block boundaries depend only on the list and the rows, so sums are reproducible.
    #[inline(always)]
    fn for_each_block<const POSITIONS: bool, const B: usize>(
        &self,
        rows: Range<usize>,
        mut visit: impl FnMut(&[f64], &[(u32, u32)]),
    ) {
        let rewards = &self.sorted_rewards;
        let n = rewards.len();
        let mut diffs = [0.0; B];
        let mut positions = [(0u32, 0u32); B];
        let mut len = 0;
        for p in rows.start..rows.end.min(n) {
            let r_p = rewards[p];
            let mut q = self.first_worse(p);
            while q < n {
                let take = (n - q).min(B - len);
                for (slot, &r_q) in diffs[len..len + take].iter_mut().zip(&rewards[q..q + take]) {
                    *slot = r_p - r_q;
                }
                if POSITIONS {
                    // Positions are < n ≤ u32::MAX (checked in `new`).
                    for (k, slot) in positions[len..len + take].iter_mut().enumerate() {
                        *slot = (p as u32, (q + k) as u32);
                    }
                }
                len += take;
                q += take;
                if len == B {
                    visit(&diffs, &positions);
                    len = 0;
                }
            }
        }
        if len > 0 {
            visit(&diffs[..len], &positions[..if POSITIONS { len } else { 0 }]);
        }
    }
}

/// The block of lists with few pairs (a multiple of the kernel's lanes).
const SMALL_BLOCK: usize = 64;

impl From<&LaneTotals> for RowsPartial {
    fn from(totals: &LaneTotals) -> Self {
        let folded = totals.fold();
        RowsPartial {
            log_probability_sum: folded.log_probability_sum,
            agreeing_halves: folded.agreeing_halves,
            reward_ties: folded.reward_ties,
            pairs: folded.pairs,
            margins: folded.margins,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(list: &RankedList) -> Vec<(u32, u32)> {
        let mut pairs = Vec::new();
        list.accumulate_rows_with_pairs(0..list.len(), 1.0, |p| pairs.push((p.preferred, p.other)));
        pairs
    }

    #[test]
    fn strict_ranking_implies_every_ordered_pair_once() {
        // C > A > D > B given by ranks, submitted as A, B, C, D.
        let list = RankedList::new(vec![0.4, -0.3, 1.7, 0.9], Some(&[2, 4, 1, 3])).unwrap();
        let mut pairs = collect(&list);
        pairs.sort();
        assert_eq!(pairs, vec![(0, 1), (0, 3), (2, 0), (2, 1), (2, 3), (3, 1)]);
        assert_eq!(list.pairs(), 6);
    }

    #[test]
    fn ties_imply_no_preference_between_them() {
        let list = RankedList::new(vec![0.0; 4], Some(&[1, 2, 2, 4])).unwrap();
        assert_eq!(collect(&list), vec![(0, 1), (0, 2), (0, 3), (1, 3), (2, 3)]);
        assert_eq!(list.pairs(), 5);
    }

    #[test]
    fn all_tied_list_is_rejected() {
        assert_eq!(RankedList::new(vec![1.0, 2.0], Some(&[3, 3])).unwrap_err(), ListError::NoPreferences);
    }

    #[test]
    fn row_chunks_cover_every_row_once() {
        let list = RankedList::new(vec![0.0; 100], None).unwrap();
        let chunks = list.row_chunks(300);
        assert_eq!(chunks.first().unwrap().start, 0);
        assert_eq!(chunks.last().unwrap().end, 100);
        assert!(chunks.windows(2).all(|w| w[0].end == w[1].start));
        let total: u64 = chunks.iter().map(|c| list.accumulate_rows(c.clone(), 1.0).pairs).sum();
        assert_eq!(total, 4950);
    }

    #[test]
    fn tiers_kendall_and_gradients_follow_the_submitted_items() {
        // Submitted A, B, C, D with ranks 2, 4, 1, 2: tiers C | A D | B.
        let list = RankedList::new(vec![0.4, -0.3, 1.7, 0.9], Some(&[2, 4, 1, 2])).unwrap();
        assert_eq!(list.tiers(), vec![0, 1, 1, 2]);
        // Every pair the ranking orders is concordant; one pair is tied in rank only: 5/√(5·6).
        assert_eq!(list.kendall_tau(), Some(5.0 / 30f64.sqrt()));
        let gradients = list.gradients(1.0, 12.0);
        let sorted = loss_gradients(&[0, 1, 1, 2], &[1.7, 0.4, 0.9, -0.3], 1.0, 12.0);
        assert_eq!(gradients, vec![sorted[1], sorted[3], sorted[0], sorted[2]]);
        let mut margins = Vec::new();
        list.for_each_margin(2.0, |a, b, d| margins.push((a, b, d)));
        margins.sort_by_key(|&(a, b, _)| (a, b));
        assert_eq!(margins.len(), 5);
        assert_eq!(margins[0], (0, 1, 2.0 * (0.4 - -0.3)));
    }

    #[test]
    fn tau_from_the_kernel_sums_is_the_sorted_count_bit_for_bit() {
        let mut rng = prefeval_testkit::SplitMix64::new(21);
        for n in [2, 3, 5, 8, 40, 300] {
            for _ in 0..20 {
                // Rewards from a few values, so that ties in reward are common.
                let rewards: Vec<f64> = (0..n).map(|_| rng.below(6) as f64 - 2.5).collect();
                let list = RankedList::new(rewards, None).unwrap();
                let whole = list.accumulate_rows(0..list.len(), 1.0);
                assert_eq!(list.kendall_tau_from(&whole), Some(list.kendall_tau()));
            }
        }
        let tied = RankedList::new(vec![1.0, 2.0, 3.0], Some(&[1, 1, 2])).unwrap();
        assert_eq!(tied.kendall_tau_from(&tied.accumulate_rows(0..3, 1.0)), None);
        let flat = RankedList::new(vec![1.0; 4], None).unwrap();
        assert_eq!(flat.kendall_tau_from(&flat.accumulate_rows(0..4, 1.0)), Some(None));
    }

    #[test]
    fn overflowing_spread_names_the_extreme_item() {
        let list = RankedList::new(vec![1.0, -1.7e308, 1.7e308], None).unwrap();
        assert_eq!(list.check_reward_spread(1.0), Err(ListError::RewardSpreadOverflow { item: 2 }));
        let wide = RankedList::new(vec![1e300, -1e300], None).unwrap();
        assert!(wide.check_reward_spread(1.0).is_ok());
        assert_eq!(wide.check_reward_spread(1e10), Err(ListError::RewardSpreadOverflow { item: 0 }));
    }
}
