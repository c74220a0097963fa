//! Length bias (docs/design/math.md, "Length bias"): over the implied pairs (w ≻ v) whose two items
//! both carry a length, how often "the longer one is preferred" is right, how often the model's
//! reward follows length, and the model's accuracy split by whether the preferred item is the
//! longer or the shorter one. Only pair counts are kept (agreements in halves, a tie counting one
//! half), so chunks, shards and merges of merges add exactly.

use super::list::RankedList;

/// The pair counts the length figures are ratios of.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LengthCounts {
    /// Implied pairs where both items have a length (n_ℓ).
    pub pairs: u64,
    /// Of those, the pairs whose preferred item is the longer (ℓ_w > ℓ_v) …
    pub preferred_longer: u64,
    /// … and how many of them the model orders the human's way, in halves (reward tie: one half).
    pub agreeing_preferred_longer_halves: u64,
    /// The pairs whose preferred item is the shorter (ℓ_w < ℓ_v), and the model's agreement there.
    pub preferred_shorter: u64,
    pub agreeing_preferred_shorter_halves: u64,
}

/// The figures of `LengthCounts`; each ratio is absent when it has no pair to count.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LengthFigures {
    pub pairs: u64,
    pub baseline_accuracy: f64,
    pub reward_follows_length: Option<f64>,
    pub accuracy_preferred_longer: Option<f64>,
    pub pairs_preferred_longer: u64,
    pub accuracy_preferred_shorter: Option<f64>,
    pub pairs_preferred_shorter: u64,
}

impl LengthCounts {
    /// Adds every implied pair of `list` whose two items have a length. `lengths[k]` is item k's
    /// length in submitted order (the order `RankedList::for_each_margin` names items by), `None`
    /// when the item has none. `beta` > 0 only scales margins: their sign is the rewards' order.
    pub fn add_list(&mut self, list: &RankedList, lengths: &[Option<f64>], beta: f64) {
        list.for_each_margin(beta, |preferred, other, margin| {
            let length = |item: u32| lengths.get(item as usize).copied().flatten();
            if let (Some(winner), Some(loser)) = (length(preferred), length(other)) {
                self.add_pair(winner, loser, margin);
            }
        });
    }

    /// One implied pair: the preferred item's length, the other's, and the margin
    /// β·(r_preferred − r_other).
    pub fn add_pair(&mut self, preferred_length: f64, other_length: f64, margin: f64) {
        let agreeing_halves = if margin > 0.0 {
            2
        } else if margin < 0.0 {
            0
        } else {
            1
        };
        self.pairs += 1;
        if preferred_length > other_length {
            self.preferred_longer += 1;
            self.agreeing_preferred_longer_halves += agreeing_halves;
        } else if preferred_length < other_length {
            self.preferred_shorter += 1;
            self.agreeing_preferred_shorter_halves += agreeing_halves;
        }
    }

    /// Folds in the counts of a later chunk, shard or model-independent part.
    pub fn merge(&mut self, other: &LengthCounts) {
        self.pairs += other.pairs;
        self.preferred_longer += other.preferred_longer;
        self.agreeing_preferred_longer_halves += other.agreeing_preferred_longer_halves;
        self.preferred_shorter += other.preferred_shorter;
        self.agreeing_preferred_shorter_halves += other.agreeing_preferred_shorter_halves;
    }

    /// `merge`, unless a count would overflow u64: then the name of that count, `self` unchanged.
    pub fn checked_merge(&mut self, other: &LengthCounts) -> Result<(), &'static str> {
        let add = |mine: u64, theirs: u64, name| mine.checked_add(theirs).ok_or(name);
        *self = LengthCounts {
            pairs: add(self.pairs, other.pairs, "pairs")?,
            preferred_longer: add(self.preferred_longer, other.preferred_longer, "pairs_preferred_longer")?,
            agreeing_preferred_longer_halves: add(
                self.agreeing_preferred_longer_halves,
                other.agreeing_preferred_longer_halves,
                "agreeing_preferred_longer",
            )?,
            preferred_shorter: add(self.preferred_shorter, other.preferred_shorter, "pairs_preferred_shorter")?,
            agreeing_preferred_shorter_halves: add(
                self.agreeing_preferred_shorter_halves,
                other.agreeing_preferred_shorter_halves,
                "agreeing_preferred_shorter",
            )?,
        };
        Ok(())
    }

    /// The first count that contradicts another (a share larger than its whole), if any: for
    /// counts read back from JSON.
    pub fn inconsistency(&self) -> Option<&'static str> {
        if self.preferred_longer.checked_add(self.preferred_shorter).is_none_or(|split| split > self.pairs) {
            return Some("pairs_preferred_longer");
        }
        if self.agreeing_preferred_longer_halves > self.preferred_longer.saturating_mul(2) {
            return Some("agreeing_preferred_longer");
        }
        if self.agreeing_preferred_shorter_halves > self.preferred_shorter.saturating_mul(2) {
            return Some("agreeing_preferred_shorter");
        }
        None
    }

    /// The figures, or `None` when no pair had both lengths.
    pub fn figures(&self) -> Option<LengthFigures> {
        if self.pairs == 0 {
            return None;
        }
        let (longer, shorter) = (self.preferred_longer, self.preferred_shorter);
        let ratio = |halves: u64, pairs: u64| (pairs > 0).then(|| halves as f64 / (2 * pairs) as f64);
        // Equal lengths score one half for the baseline; the preferred-longer pairs score one.
        let equal = self.pairs - longer - shorter;
        let baseline_halves = 2 * longer + equal;
        // Where w is longer, the longer item has the higher reward when the model agrees; where w
        // is shorter, when it disagrees (a reward tie is one half either way).
        let follows_halves =
            self.agreeing_preferred_longer_halves + (2 * shorter - self.agreeing_preferred_shorter_halves);
        Some(LengthFigures {
            pairs: self.pairs,
            baseline_accuracy: baseline_halves as f64 / (2 * self.pairs) as f64,
            reward_follows_length: ratio(follows_halves, longer + shorter),
            accuracy_preferred_longer: ratio(self.agreeing_preferred_longer_halves, longer),
            pairs_preferred_longer: longer,
            accuracy_preferred_shorter: ratio(self.agreeing_preferred_shorter_halves, shorter),
            pairs_preferred_shorter: shorter,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The figures straight from their definitions, one pair at a time: (ℓ_w, ℓ_v, r_w, r_v).
    fn by_definition(pairs: &[(f64, f64, f64, f64)]) -> LengthFigures {
        let mean = |values: Vec<f64>| (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64);
        let score = |x: f64, y: f64| {
            if x > y {
                1.0
            } else if x == y {
                0.5
            } else {
                0.0
            }
        };
        let baseline = mean(pairs.iter().map(|&(lw, lv, _, _)| score(lw, lv)).collect()).unwrap();
        let follows = mean(
            pairs
                .iter()
                .filter(|(lw, lv, _, _)| lw != lv)
                .map(|&(lw, lv, rw, rv)| if lw > lv { score(rw, rv) } else { score(rv, rw) })
                .collect(),
        );
        let longer: Vec<f64> = pairs.iter().filter(|p| p.0 > p.1).map(|&(_, _, rw, rv)| score(rw, rv)).collect();
        let shorter: Vec<f64> = pairs.iter().filter(|p| p.0 < p.1).map(|&(_, _, rw, rv)| score(rw, rv)).collect();
        LengthFigures {
            pairs: pairs.len() as u64,
            baseline_accuracy: baseline,
            reward_follows_length: follows,
            pairs_preferred_longer: longer.len() as u64,
            accuracy_preferred_longer: mean(longer),
            pairs_preferred_shorter: shorter.len() as u64,
            accuracy_preferred_shorter: mean(shorter),
        }
    }

    #[test]
    fn each_figure_is_its_definition_over_the_pairs() {
        let pairs = [
            (10.0, 3.0, 1.0, 0.5),
            (10.0, 3.0, 0.5, 1.0),
            (2.0, 7.0, 1.0, 1.0),
            (2.0, 7.0, 3.0, 1.0),
            (4.0, 4.0, 0.0, 1.0),
            (0.0, 1.5, -1.0, 2.0),
        ];
        let mut counts = LengthCounts::default();
        for &(lw, lv, rw, rv) in &pairs {
            counts.add_pair(lw, lv, 2.0 * (rw - rv));
        }
        assert_eq!(counts.figures(), Some(by_definition(&pairs)));
        assert_eq!(counts.inconsistency(), None);
    }

    #[test]
    fn a_list_adds_only_the_pairs_whose_items_both_have_a_length() {
        // Submitted order a, b, c with ranks 1, 2, 3: pairs (a, b), (a, c), (b, c); c has no length.
        let list = RankedList::new(vec![0.2, 0.9, 0.1], Some(&[1, 2, 3])).unwrap();
        let mut counts = LengthCounts::default();
        counts.add_list(&list, &[Some(5.0), Some(9.0), None], 1.0);
        // (a, b): a is preferred and shorter, and the model prefers b.
        assert_eq!(counts.figures(), Some(by_definition(&[(5.0, 9.0, 0.2, 0.9)])));
    }

    #[test]
    fn figures_are_absent_without_pairs_and_ratios_without_their_pairs() {
        assert_eq!(LengthCounts::default().figures(), None);
        let mut equal = LengthCounts::default();
        equal.add_pair(3.0, 3.0, 1.0);
        let figures = equal.figures().unwrap();
        assert_eq!(figures.baseline_accuracy, 0.5);
        assert_eq!(
            (figures.reward_follows_length, figures.accuracy_preferred_longer, figures.accuracy_preferred_shorter),
            (None, None, None)
        );
    }

    #[test]
    fn merged_parts_give_the_counts_of_the_whole_and_overflow_is_named() {
        let (mut left, mut right, mut whole) =
            (LengthCounts::default(), LengthCounts::default(), LengthCounts::default());
        for (k, (lw, lv, m)) in [(1.0, 2.0, 0.5), (3.0, 1.0, -1.0), (2.0, 2.0, 0.0), (9.0, 1.0, 0.0)].iter().enumerate()
        {
            let part: &mut LengthCounts = if k % 2 == 0 { &mut left } else { &mut right };
            part.add_pair(*lw, *lv, *m);
            whole.add_pair(*lw, *lv, *m);
        }
        left.merge(&right);
        assert_eq!(left, whole);
        let full = LengthCounts { pairs: u64::MAX, ..LengthCounts::default() };
        assert_eq!(left.checked_merge(&full), Err("pairs"));
        assert_eq!(left, whole, "unchanged on overflow");
        let broken = LengthCounts { pairs: 1, preferred_longer: 1, preferred_shorter: 1, ..LengthCounts::default() };
        assert_eq!(broken.inconsistency(), Some("pairs_preferred_longer"));
    }
}
