//! The batch figures that look across lists (opt-in on `POST /v1/evaluate`): calibration of the
//! pair probabilities, the pairs the model contests most (a reviewer's queue), per-group figures,
//! and length bias (whenever items carry lengths).

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use super::format::ListInput;
use crate::math::{Calibration, LengthCounts, ListEvaluation, RankedList, Totals, sigmoid};

/// Every implied pair of the batch into `bins` calibration bins, list by list as every door adds
/// them (so the batch's sums are the stream's to the last bit).
pub fn calibration(ranked: &[RankedList], beta: f64, bins: usize) -> Calibration {
    let mut calibration = Calibration::new(bins);
    for list in ranked {
        calibration.merge_list(&Calibration::of_list(list, beta, bins));
    }
    calibration
}

/// The length-bias counts of the lists whose items carry lengths (the others cost one look at
/// their items): every implied pair whose two items both have one.
pub fn length(inputs: &[ListInput<'_>], ranked: &[RankedList], beta: f64) -> LengthCounts {
    let mut counts = LengthCounts::default();
    for (input, list) in inputs.iter().zip(ranked) {
        if let Some(lengths) = input.lengths() {
            counts.add_list(list, &lengths, beta);
        }
    }
    counts
}

/// An implied pair the model finds unlikely: indices into the batch's lists and their items.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Disagreement {
    pub list: usize,
    pub preferred: u32,
    pub other: u32,
    pub probability: f64,
}

impl Disagreement {
    /// Lowest probability first; ties by list, then by pair order (preferred, other).
    fn order(&self, other: &Self) -> Ordering {
        self.probability
            .total_cmp(&other.probability)
            .then(self.list.cmp(&other.list))
            .then((self.preferred, self.other).cmp(&(other.preferred, other.other)))
    }
}

/// Heap entry ordered by `Disagreement::order`, so the max-heap's top is the one to drop first.
struct Ranked(Disagreement);

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.0.order(&other.0) == Ordering::Equal
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.order(&other.0)
    }
}

/// The `k` implied pairs of the batch with the lowest probability, lowest first: O(P log k).
pub fn disagreements(ranked: &[RankedList], beta: f64, k: usize) -> Vec<Disagreement> {
    least_probable(ranked.iter().enumerate(), beta, k)
}

/// The `k` least probable implied pairs of `lists`, each named by its key (a batch's list index, a
/// chunk's line), keys in increasing order: lowest probability first, ties by key then pair.
pub fn least_probable<'r>(
    lists: impl Iterator<Item = (usize, &'r RankedList)>,
    beta: f64,
    k: usize,
) -> Vec<Disagreement> {
    let mut kept: BinaryHeap<Ranked> = BinaryHeap::with_capacity(k + 1);
    for (list, ranked_list) in lists {
        ranked_list.for_each_margin(beta, |preferred, other, margin| {
            let candidate = Disagreement { list, preferred, other, probability: sigmoid(margin) };
            let fits = kept.len() < k || kept.peek().is_some_and(|worst| candidate.order(&worst.0) == Ordering::Less);
            if fits {
                kept.push(Ranked(candidate));
                if kept.len() > k {
                    kept.pop();
                }
            }
        });
    }
    let mut found: Vec<Disagreement> = kept.into_iter().map(|entry| entry.0).collect();
    found.sort_by(Disagreement::order);
    found
}

/// The mean over groups of their accuracy (groups without pairs have none and are left out);
/// `None` when no group has one.
pub fn macro_accuracy<'t>(groups: impl Iterator<Item = &'t Totals>) -> Option<f64> {
    let accuracies: Vec<f64> = groups.filter_map(Totals::accuracy).collect();
    (!accuracies.is_empty()).then(|| accuracies.iter().sum::<f64>() / accuracies.len() as f64)
}

/// Totals per `group`, in order of first appearance; `None` when no list has a group.
pub fn groups(inputs: &[ListInput<'_>], evaluations: &[ListEvaluation]) -> Option<Vec<(String, Totals)>> {
    let mut order: Vec<(String, Totals)> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (input, evaluation) in inputs.iter().zip(evaluations) {
        let Some(group) = &input.group else { continue };
        let slot = *index.entry(&group.0).or_insert_with(|| {
            order.push((group.0.to_string(), Totals::default()));
            order.len() - 1
        });
        order[slot].1.add(evaluation);
    }
    (!order.is_empty()).then_some(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every pair of every list, the direct way, sorted by the contract's order.
    fn all_pairs(ranked: &[RankedList], beta: f64) -> Vec<Disagreement> {
        let mut all = Vec::new();
        for (list, l) in ranked.iter().enumerate() {
            l.for_each_margin(beta, |preferred, other, margin| {
                all.push(Disagreement { list, preferred, other, probability: sigmoid(margin) })
            });
        }
        all.sort_by(Disagreement::order);
        all
    }

    #[test]
    fn disagreements_are_the_k_least_probable_pairs_lowest_first_ties_by_list_then_pair() {
        let ranked = vec![
            RankedList::new(vec![0.0, 1.0, 1.0, -2.0], None).unwrap(),
            RankedList::new(vec![1.0, 2.0, 0.5], Some(&[2, 1, 2])).unwrap(),
            RankedList::new(vec![0.0, 1.0], None).unwrap(),
        ];
        let all = all_pairs(&ranked, 1.5);
        for k in [1, 2, 5, all.len(), all.len() + 3] {
            assert_eq!(disagreements(&ranked, 1.5, k), all[..k.min(all.len())].to_vec(), "k = {k}");
        }
        // Equal probabilities: list 0's pair (0, 1) and list 2's pair (0, 1) tie; list 0 comes first.
        let top = disagreements(&ranked, 1.5, 2);
        assert_eq!((top[0].list, top[1].list), (0, 0));
    }
}
