//! Calibration of the Bradley–Terry probabilities (docs/design/math.md, "Evaluation figures beside the loss"):
//! does a pair the model calls at 80 % go the human's way 80 % of the time? Every implied pair is
//! oriented so that the model's predicted winner comes first (q = σ(|d|) ≥ ½) and scored against
//! the human (y = 1 agrees, 0 disagrees, ½ on a reward tie). The accumulator keeps only counts and
//! compensated sums per bin, so chunks and shards merge into the figures of the whole. Every door
//! adds a dataset list by list (`Calibration::of_list`, then `merge_list` in input order), as
//! `Totals` are added, so the sums are the same to the last bit however the lists were chunked.

use super::logistic::sigmoid;
use super::sum::NeumaierSum;

/// Implied pairs binned by the predicted probability q into K equal-width bins on [½, 1].
#[derive(Clone, Debug, PartialEq)]
pub struct Calibration {
    bins: Vec<BinSums>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct BinSums {
    count: u64,
    predicted: NeumaierSum,
    /// Σ y in halves (a reward tie scores one half), so the count stays an exact integer.
    observed_halves: u64,
    /// Σ (q − y)² of the bin's pairs: the Brier score's numerator, per bin so that it merges.
    squared_error: NeumaierSum,
}

impl BinSums {
    fn merge(&mut self, other: &BinSums) {
        self.count += other.count;
        self.predicted.merge(&other.predicted);
        self.observed_halves += other.observed_halves;
        self.squared_error.merge(&other.squared_error);
    }
}

/// One list's pairs, binned: only the bins they fall in, in bin order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListCalibration {
    bins: Vec<(usize, BinSums)>,
}

/// One bin's sums as a summary carries them (`totals.calibration`), to merge shards.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BinTotals {
    pub count: u64,
    pub sum_predicted: f64,
    /// Σ y in halves.
    pub observed_halves: u64,
    pub sum_squared_error: f64,
}

/// One bin as reported: [lower, upper), the last one closed at 1. The means are `None` for an
/// empty bin, which docs/design/math.md reports with count 0 and no means.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CalibrationBin {
    pub lower: f64,
    pub upper: f64,
    pub count: u64,
    /// Mean q of the pairs in the bin.
    pub mean_predicted: Option<f64>,
    /// Mean y: the share of the bin's pairs the human decided the model's way.
    pub observed: Option<f64>,
}

impl Calibration {
    /// # Panics
    /// When `bins` is 0.
    pub fn new(bins: usize) -> Self {
        assert!(bins > 0, "calibration needs at least one bin");
        Calibration { bins: vec![BinSums::default(); bins] }
    }

    /// The number of bins (K).
    pub fn bin_count(&self) -> usize {
        self.bins.len()
    }

    /// The pairs of one list, binned into `bins` bins, for `merge_list`.
    ///
    /// # Panics
    /// When `bins` is 0.
    pub fn of_list(list: &super::RankedList, beta: f64, bins: usize) -> ListCalibration {
        let mut dense = Calibration::new(bins);
        list.for_each_margin(beta, |_, _, margin| dense.add(margin));
        ListCalibration { bins: dense.bins.into_iter().enumerate().filter(|(_, bin)| bin.count > 0).collect() }
    }

    /// Folds in one list's pairs (`of_list` with the same number of bins).
    pub fn merge_list(&mut self, list: &ListCalibration) {
        for (index, sums) in &list.bins {
            if let Some(bin) = self.bins.get_mut(*index) {
                bin.merge(sums);
            }
        }
    }

    /// Every bin's sums, in bin order.
    pub fn totals(&self) -> Vec<BinTotals> {
        self.bins
            .iter()
            .map(|bin| BinTotals {
                count: bin.count,
                sum_predicted: bin.predicted.value(),
                observed_halves: bin.observed_halves,
                sum_squared_error: bin.squared_error.value(),
            })
            .collect()
    }

    /// The accumulator whose bins hold these sums (read back from a summary).
    ///
    /// # Panics
    /// When `bins` is empty.
    pub fn from_totals(bins: &[BinTotals]) -> Calibration {
        assert!(!bins.is_empty(), "calibration needs at least one bin");
        let sum_of = |value: f64| {
            let mut sum = NeumaierSum::default();
            sum.add(value);
            sum
        };
        Calibration {
            bins: bins
                .iter()
                .map(|bin| BinSums {
                    count: bin.count,
                    predicted: sum_of(bin.sum_predicted),
                    observed_halves: bin.observed_halves,
                    squared_error: sum_of(bin.sum_squared_error),
                })
                .collect(),
        }
    }

    /// `merge`, unless the bins differ in number (`"bins"`) or a count would overflow u64
    /// (`"count"`): then `self` is unchanged.
    pub fn checked_merge(&mut self, other: &Calibration) -> Result<(), &'static str> {
        if self.bins.len() != other.bins.len() {
            return Err("bins");
        }
        let fits = self.bins.iter().zip(&other.bins).all(|(mine, theirs)| {
            mine.count.checked_add(theirs.count).is_some()
                && mine.observed_halves.checked_add(theirs.observed_halves).is_some()
        });
        if !fits || self.pairs().checked_add(other.pairs()).is_none() {
            return Err("count");
        }
        self.merge(other);
        Ok(())
    }

    /// Adds one implied pair by its margin d = β·(r_preferred − r_other); d must not be NaN.
    pub fn add(&mut self, margin: f64) {
        debug_assert!(!margin.is_nan(), "a calibration margin is never NaN");
        // σ(|d|) = max(σ(d), 1 − σ(d)) without the cancellation of 1 − σ(d); exactly ½ at d = 0.
        let predicted = sigmoid(margin.abs());
        let observed_halves: u8 = if margin > 0.0 {
            2
        } else if margin < 0.0 {
            0
        } else {
            1
        };
        let index = bin_index(predicted, self.bins.len());
        let bin = &mut self.bins[index];
        bin.count += 1;
        bin.predicted.add(predicted);
        bin.observed_halves += u64::from(observed_halves);
        let error = predicted - f64::from(observed_halves) / 2.0;
        bin.squared_error.add(error * error);
    }

    /// Folds in the pairs of another accumulator with the same number of bins.
    ///
    /// # Panics
    /// When the two have different numbers of bins.
    pub fn merge(&mut self, other: &Calibration) {
        assert_eq!(self.bins.len(), other.bins.len(), "calibrations with different bins do not merge");
        for (mine, theirs) in self.bins.iter_mut().zip(&other.bins) {
            mine.merge(theirs);
        }
    }

    /// The number of pairs added (P).
    pub fn pairs(&self) -> u64 {
        self.bins.iter().map(|bin| bin.count).sum()
    }

    /// The Brier score: mean (q − y)² over the pairs; `None` without pairs.
    pub fn brier(&self) -> Option<f64> {
        let pairs = self.pairs();
        if pairs == 0 {
            return None;
        }
        let mut squared_error = NeumaierSum::default();
        self.bins.iter().for_each(|bin| squared_error.merge(&bin.squared_error));
        Some(squared_error.value() / pairs as f64)
    }

    /// The expected calibration error Σ_bins (count/P)·|mean q − mean y|; `None` without pairs.
    pub fn ece(&self) -> Option<f64> {
        let pairs = self.pairs();
        if pairs == 0 {
            return None;
        }
        let mut ece = NeumaierSum::default();
        for bin in self.bins() {
            if let (Some(predicted), Some(observed)) = (bin.mean_predicted, bin.observed) {
                ece.add(bin.count as f64 / pairs as f64 * (predicted - observed).abs());
            }
        }
        Some(ece.value())
    }

    /// Every bin in order from [½, ½ + 1/(2K)) to [1 − 1/(2K), 1], empty ones included.
    pub fn bins(&self) -> Vec<CalibrationBin> {
        let k = self.bins.len();
        let edge = |j: usize| 0.5 + j as f64 / (2 * k) as f64;
        self.bins
            .iter()
            .enumerate()
            .map(|(j, bin)| {
                let count = bin.count as f64;
                CalibrationBin {
                    lower: edge(j),
                    upper: edge(j + 1),
                    count: bin.count,
                    mean_predicted: (bin.count > 0).then(|| bin.predicted.value() / count),
                    observed: (bin.count > 0).then(|| bin.observed_halves as f64 / (2.0 * count)),
                }
            })
            .collect()
    }
}

/// floor((q − ½)·2K), with q = 1 (and anything the rounding pushes past the top) in the last bin.
fn bin_index(predicted: f64, bins: usize) -> usize {
    // `as usize` floors a non-negative value; q ≥ ½ always, as σ(|d|) ≥ σ(0) = ½.
    (((predicted - 0.5) * (2 * bins) as f64) as usize).min(bins - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prefeval_testkit::SplitMix64;

    /// The figures straight from the definitions over a list of (q, y).
    struct Direct {
        counts: Vec<u64>,
        mean_predicted: Vec<Option<f64>>,
        observed: Vec<Option<f64>>,
        brier: f64,
        ece: f64,
    }

    fn direct(margins: &[f64], k: usize) -> Direct {
        let scored: Vec<(f64, f64)> = margins
            .iter()
            .map(|&d| {
                let q = 1.0 / (1.0 + (-d.abs()).exp());
                let y = if d > 0.0 {
                    1.0
                } else if d < 0.0 {
                    0.0
                } else {
                    0.5
                };
                (q, y)
            })
            .collect();
        let p = scored.len() as f64;
        let brier = scored.iter().map(|(q, y)| (q - y) * (q - y)).sum::<f64>() / p;
        let (mut counts, mut mean_predicted, mut observed, mut ece) = (vec![], vec![], vec![], 0.0);
        for j in 0..k {
            let lower = 0.5 + j as f64 / (2 * k) as f64;
            let upper = 0.5 + (j + 1) as f64 / (2 * k) as f64;
            let members: Vec<&(f64, f64)> =
                scored.iter().filter(|(q, _)| *q >= lower && (*q < upper || (j == k - 1 && *q <= 1.0))).collect();
            let count = members.len() as f64;
            counts.push(members.len() as u64);
            if members.is_empty() {
                mean_predicted.push(None);
                observed.push(None);
                continue;
            }
            let mean_q = members.iter().map(|(q, _)| q).sum::<f64>() / count;
            let mean_y = members.iter().map(|(_, y)| y).sum::<f64>() / count;
            mean_predicted.push(Some(mean_q));
            observed.push(Some(mean_y));
            ece += count / p * (mean_q - mean_y).abs();
        }
        Direct { counts, mean_predicted, observed, brier, ece }
    }

    fn close(actual: f64, expected: f64) -> bool {
        (actual - expected).abs() <= 1e-12 * expected.abs() + 1e-15
    }

    fn close_option(actual: Option<f64>, expected: Option<f64>) -> bool {
        match (actual, expected) {
            (Some(a), Some(e)) => close(a, e),
            (a, e) => a == e,
        }
    }

    fn random_margins(rng: &mut SplitMix64) -> Vec<f64> {
        let n = 1 + rng.below(300) as usize;
        let beta = rng.between(0.2, 3.0);
        // Rewards on a coarse grid tie often, which gives margins of exactly 0 and repeats.
        let grid = rng.below(2) == 0;
        (0..n)
            .map(|_| {
                let (a, b) = if grid {
                    (rng.below(6) as f64 * 0.75, rng.below(6) as f64 * 0.75)
                } else {
                    (rng.between(-4.0, 4.0), rng.between(-4.0, 4.0))
                };
                beta * (a - b)
            })
            .collect()
    }

    #[test]
    fn matches_the_definitions_on_random_pairs() {
        let mut rng = SplitMix64::new(0xCA1B);
        for _ in 0..500 {
            let margins = random_margins(&mut rng);
            let k = 1 + rng.below(12) as usize;
            let mut calibration = Calibration::new(k);
            margins.iter().for_each(|&d| calibration.add(d));
            let expected = direct(&margins, k);
            let bins = calibration.bins();
            assert_eq!(bins.iter().map(|b| b.count).collect::<Vec<_>>(), expected.counts);
            for (j, bin) in bins.iter().enumerate() {
                assert!(close_option(bin.mean_predicted, expected.mean_predicted[j]), "bin {j}");
                assert!(close_option(bin.observed, expected.observed[j]), "bin {j}");
            }
            assert_eq!(calibration.pairs(), margins.len() as u64);
            assert!(close(calibration.brier().unwrap(), expected.brier));
            assert!(close(calibration.ece().unwrap(), expected.ece));
        }
    }

    #[test]
    fn merging_two_halves_gives_the_whole() {
        let mut rng = SplitMix64::new(77);
        for _ in 0..100 {
            let margins = random_margins(&mut rng);
            let split = rng.below(margins.len() as u64 + 1) as usize;
            let (mut whole, mut left, mut right) = (Calibration::new(5), Calibration::new(5), Calibration::new(5));
            margins.iter().for_each(|&d| whole.add(d));
            margins[..split].iter().for_each(|&d| left.add(d));
            margins[split..].iter().for_each(|&d| right.add(d));
            left.merge(&right);
            assert_eq!(left.pairs(), whole.pairs());
            for (merged, single) in left.bins().iter().zip(whole.bins()) {
                assert_eq!(merged.count, single.count);
                assert_eq!(merged.observed, single.observed);
                assert!(close_option(merged.mean_predicted, single.mean_predicted));
            }
            assert!(close(left.brier().unwrap(), whole.brier().unwrap()));
            assert!(close(left.ece().unwrap(), whole.ece().unwrap()));
        }
    }

    #[test]
    fn four_pairs_by_hand() {
        // Margins 0, ln 4, −ln 4, ln 1.5 give q = ½, 0.8, 0.8, 0.6 and y = ½, 1, 0, 1.
        // Bin [½, ¾): q ½ and 0.6, y ½ and 1. Bin [¾, 1]: q 0.8 twice, y 1 and 0.
        let mut calibration = Calibration::new(2);
        for d in [0.0, 4f64.ln(), -(4f64.ln()), 1.5f64.ln()] {
            calibration.add(d);
        }
        let bins = calibration.bins();
        assert_eq!((bins[0].lower, bins[0].upper, bins[1].lower, bins[1].upper), (0.5, 0.75, 0.75, 1.0));
        assert_eq!((bins[0].count, bins[1].count), (2, 2));
        assert!(close(bins[0].mean_predicted.unwrap(), 0.55) && close(bins[1].mean_predicted.unwrap(), 0.8));
        assert_eq!((bins[0].observed, bins[1].observed), (Some(0.75), Some(0.5)));
        // Brier (0 + 0.04 + 0.64 + 0.16)/4; ECE ½·|0.55 − 0.75| + ½·|0.8 − 0.5|.
        assert!(close(calibration.brier().unwrap(), 0.21));
        assert!(close(calibration.ece().unwrap(), 0.25));
    }

    #[test]
    fn empty_bins_have_no_means_and_extremes_land_in_the_end_bins() {
        let mut calibration = Calibration::new(3);
        assert_eq!((calibration.pairs(), calibration.brier(), calibration.ece()), (0, None, None));
        calibration.add(1e300);
        calibration.add(-0.0);
        let bins = calibration.bins();
        assert_eq!(bins.iter().map(|b| b.count).collect::<Vec<_>>(), vec![1, 0, 1]);
        assert_eq!((bins[1].mean_predicted, bins[1].observed), (None, None));
        assert_eq!((bins[0].mean_predicted, bins[0].observed), (Some(0.5), Some(0.5)));
        assert_eq!((bins[2].mean_predicted, bins[2].observed), (Some(1.0), Some(1.0)));
        // Both pairs are perfectly calibrated.
        assert_eq!((calibration.brier(), calibration.ece()), (Some(0.0), Some(0.0)));
    }
}
