//! One batch, evaluated: the step every batch door shares (`POST /v1/evaluate` and a batch file
//! given to `prefeval eval`), beside `compare::compare` for comparisons. A validated `Batch` in; each
//! list's evaluation, the totals of those evaluated, and the cross-list figures asked for out. How
//! the result is written (one answer, or stream lines) and what a failed list costs is the door's.

use super::Parallel;
use super::encode::BatchExtras;
use super::figures::{self, Disagreement};
use super::validate::Batch;
use crate::math::{Calibration, LengthCounts, ListEvaluation, ListLossOverflow, Totals};

/// Every list of a batch evaluated, in order, with the totals of those that were.
pub struct Evaluated {
    pub lists: Vec<Result<ListEvaluation, ListLossOverflow>>,
    pub totals: Totals,
}

impl Evaluated {
    /// Every list's evaluation, or the index of the first whose loss overflowed.
    pub fn into_complete(self) -> Result<(Vec<ListEvaluation>, Totals), usize> {
        let Evaluated { lists, totals } = self;
        let mut evaluations = Vec::with_capacity(lists.len());
        for (index, list) in lists.into_iter().enumerate() {
            evaluations.push(list.map_err(|_| index)?);
        }
        Ok((evaluations, totals))
    }
}

/// Evaluates the batch's lists on `parallel`; the totals count the lists evaluated.
pub fn run(batch: &Batch<'_>, parallel: &impl Parallel) -> Evaluated {
    let lists = super::evaluate(&batch.ranked, &batch.options.math, parallel);
    let mut totals = Totals::default();
    for evaluation in lists.iter().flatten() {
        totals.add(evaluation);
    }
    Evaluated { lists, totals }
}

/// The figures across lists that a batch answer carries when asked for.
#[derive(Default)]
pub struct CrossListFigures {
    pub calibration: Option<Calibration>,
    pub disagreements: Option<Vec<Disagreement>>,
    pub groups: Option<Vec<(String, Totals)>>,
    /// Length bias over the lists' implied pairs; no pairs when no item has a length.
    pub length: LengthCounts,
}

impl CrossListFigures {
    /// The figures `batch.options` asks for (groups whenever a list has one, length bias whenever
    /// items have lengths).
    pub fn of(batch: &Batch<'_>, evaluations: &[ListEvaluation]) -> Self {
        let options = &batch.options;
        CrossListFigures {
            calibration: options
                .calibration_bins
                .map(|bins| figures::calibration(&batch.ranked, options.math.beta, bins)),
            disagreements: options
                .top_disagreements
                .map(|k| figures::disagreements(&batch.ranked, options.math.beta, k)),
            groups: figures::groups(&batch.inputs, evaluations),
            // Every list here was evaluated (a batch with an overflowed loss has no answer), so
            // the pairs counted are those of the totals.
            length: figures::length(&batch.inputs, &batch.ranked, options.math.beta),
        }
    }

    /// Borrowed, for the batch encoder.
    pub fn extras(&self) -> BatchExtras<'_> {
        BatchExtras {
            calibration: self.calibration.as_ref(),
            disagreements: self.disagreements.as_deref(),
            groups: self.groups.as_deref(),
            length: Some(&self.length),
        }
    }
}
