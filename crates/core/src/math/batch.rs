//! A batch of ranked lists: splitting the O(N²) work into units that any number of workers can
//! run in any order, and joining their results in a fixed order into the figures of
//! docs/design/math.md.

use std::ops::Range;

use super::list::{ImpliedPair, RankedList, RowsPartial};
use super::margins::MarginCounts;
use super::sum::NeumaierSum;

/// Pairs per work unit: ~1 ms of work, large enough that scheduling overhead is noise, small
/// enough that one 10,000-item list (5·10^7 pairs) spreads over every core.
pub const UNIT_PAIRS: u64 = 1 << 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Normalization {
    /// Z = N(N−1), the reference text's formula.
    #[default]
    OrderedPairs,
    /// Z = number of implied preferences (InstructGPT's 1/C(K,2) without ties).
    Comparisons,
    /// Z = 1.
    Sum,
}

impl Normalization {
    pub const ALL: [Normalization; 3] = [Self::OrderedPairs, Self::Comparisons, Self::Sum];

    /// What a name must be, for error messages.
    pub const EXPECTED: &'static str = "one of `ordered_pairs`, `comparisons`, `sum`";

    pub fn from_name(name: &str) -> Option<Normalization> {
        Self::ALL.into_iter().find(|n| n.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::OrderedPairs => "ordered_pairs",
            Self::Comparisons => "comparisons",
            Self::Sum => "sum",
        }
    }

    fn divisor(self, n: usize, pairs: u64) -> f64 {
        match self {
            Self::OrderedPairs => n as f64 * (n as f64 - 1.0),
            Self::Comparisons => pairs as f64,
            Self::Sum => 1.0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MathOptions {
    pub beta: f64,
    pub normalization: Normalization,
    pub include_pairs: bool,
    pub include_gradients: bool,
}

impl Default for MathOptions {
    fn default() -> Self {
        MathOptions {
            beta: 1.0,
            normalization: Normalization::OrderedPairs,
            include_pairs: true,
            include_gradients: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ListEvaluation {
    pub n: usize,
    pub pairs_count: u64,
    pub agreeing_halves: u64,
    pub loss: f64,
    pub accuracy: f64,
    /// The loss of a model that gives ½ to every pair: pairs·ln 2 / Z.
    pub chance_loss: f64,
    /// Kendall's τ-b of the rewards against the ranking; `None` where undefined.
    pub kendall_tau: Option<f64>,
    /// ∂L/∂r per item in submitted order; `None` unless asked for.
    pub gradients: Option<Vec<f64>>,
    /// The margins of its implied pairs, bucketed (for metrics).
    pub margins: MarginCounts,
    /// Ascending by (preferred, other); `None` unless pairs were asked for.
    pub pairs: Option<Vec<ImpliedPair>>,
}

/// A list whose loss overflows f64 although each of its pairs is finite (rewards near ±1e308
/// with `sum` normalization): it has no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListLossOverflow;

/// A range of rows (sorted positions) of one list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkUnit {
    pub list: usize,
    pub rows: Range<usize>,
}

#[derive(Debug, Default)]
pub struct UnitResult {
    partial: RowsPartial,
    pairs: Vec<ImpliedPair>,
}

/// The units of a batch, list by list and row range by row range.
pub fn plan(lists: &[RankedList]) -> Vec<WorkUnit> {
    lists
        .iter()
        .enumerate()
        .flat_map(|(list, ranked)| ranked.row_chunks(UNIT_PAIRS).into_iter().map(move |rows| WorkUnit { list, rows }))
        .collect()
}

/// Runs one unit. Pure: safe to call from any thread, in any order.
pub fn run_unit(lists: &[RankedList], unit: &WorkUnit, options: &MathOptions) -> UnitResult {
    let Some(list) = lists.get(unit.list) else { return UnitResult::default() };
    let mut pairs = Vec::new();
    let partial = if options.include_pairs {
        pairs.reserve(list.pairs().min(UNIT_PAIRS * 2) as usize);
        list.accumulate_rows_with_pairs(unit.rows.clone(), options.beta, |pair| pairs.push(pair))
    } else {
        list.accumulate_rows(unit.rows.clone(), options.beta)
    };
    UnitResult { partial, pairs }
}

/// Joins unit results (in `plan` order) into one evaluation per list, in list order. Batch
/// figures are the job of `Totals`, which merges exactly across chunks and shards.
pub fn assemble(
    lists: &[RankedList],
    units: &[WorkUnit],
    results: Vec<UnitResult>,
    options: &MathOptions,
) -> Vec<Result<ListEvaluation, ListLossOverflow>> {
    let mut per_list: Vec<(RowsPartial, Vec<ImpliedPair>)> = (0..lists.len()).map(|_| Default::default()).collect();
    for (unit, result) in units.iter().zip(results) {
        let Some((partial, pairs)) = per_list.get_mut(unit.list) else { continue };
        partial.merge(&result.partial);
        if pairs.is_empty() {
            *pairs = result.pairs;
        } else {
            pairs.extend(result.pairs);
        }
    }
    lists
        .iter()
        .zip(per_list)
        .map(|(list, (partial, mut pairs))| {
            let divisor = options.normalization.divisor(list.len(), partial.pairs);
            let mut loss = -partial.log_probability_sum.value() / divisor + 0.0;
            if !loss.is_finite() {
                loss = rescaled_loss(list, options.beta, divisor);
            }
            if !loss.is_finite() {
                return Err(ListLossOverflow);
            }
            if options.include_pairs && list.reorders_pairs() {
                pairs.sort_unstable_by_key(|p| (p.preferred, p.other));
            }
            Ok(ListEvaluation {
                n: list.len(),
                pairs_count: partial.pairs,
                agreeing_halves: partial.agreeing_halves,
                loss,
                accuracy: accuracy(partial.agreeing_halves, partial.pairs),
                chance_loss: partial.pairs as f64 * std::f64::consts::LN_2 / divisor,
                kendall_tau: list.kendall_tau_from(&partial).unwrap_or_else(|| list.kendall_tau()),
                gradients: options.include_gradients.then(|| list.gradients(options.beta, divisor)),
                margins: partial.margins,
                pairs: options.include_pairs.then_some(pairs),
            })
        })
        .collect()
}

/// Power-of-two scale for sums that overflow f64: exact, so −(S·2⁻⁶⁴ / Z)·2⁶⁴ rounds like −S/Z.
const OVERFLOW_SCALE: f64 = 1.0 / 18_446_744_073_709_551_616.0;

/// The loss of a list whose log-probability sum overflows although the loss itself (S/Z) may
/// not: sums again with every term scaled down. Rare (rewards near ±1e308), so it may be slow.
fn rescaled_loss(list: &RankedList, beta: f64, divisor: f64) -> f64 {
    let mut scaled = NeumaierSum::default();
    list.accumulate_rows_with_pairs(0..list.len(), beta, |pair| scaled.add(pair.log_probability * OVERFLOW_SCALE));
    -(scaled.value() / divisor) / OVERFLOW_SCALE + 0.0
}

/// Share of agreeing pairs; every list here has at least one pair (see `ListError::NoPreferences`).
pub(super) fn accuracy(agreeing_halves: u64, pairs: u64) -> f64 {
    if pairs == 0 { 0.0 } else { agreeing_halves as f64 / (2.0 * pairs as f64) }
}
