//! The one evaluation pipeline behind every front door (`POST /v1/evaluate`,
//! `POST /v1/evaluate/stream`, `POST /v1/compare`, `prefeval eval`): decode one list in its input
//! format (errors name the field under the list's path), validate it into a ranked list, evaluate
//! it with the math of `crate::math`, encode its result, and accumulate the batch's sufficient
//! statistics. No HTTP here: the doors differ only in how lists arrive, how results leave and
//! where work runs (`Parallel`).

pub mod batch;
pub mod compare;
pub mod compare_lines;
pub mod compare_totals;
pub mod dataset;
pub mod decode;
pub mod decompress;
pub mod diff;
pub mod encode;
pub mod fast_decode;
pub mod fields;
pub mod figures;
pub mod fingerprint;
pub mod format;
pub mod json;
pub mod length_json;
pub mod named;
pub mod ndjson;
pub mod options;
pub mod read_summary;
pub mod run;
pub mod summary;
pub mod totals_check;
pub mod validate;
pub mod wire;

use crate::error::Error;
use crate::math::{
    ListEvaluation, ListLossOverflow, MathOptions, RankedList, UNIT_PAIRS, WorkUnit, assemble, plan, run_unit,
};
use crate::memory::{EVALUATED_LIST_BYTES, EVALUATED_PAIR_BYTES, OverBudget};
pub use format::Format;
pub use options::{DEFAULT_CONFIDENCE, Options};

/// Why the pipeline produced no answer for a request.
#[derive(Debug)]
pub enum Refusal {
    /// The request is invalid; the error names the field.
    Invalid(Error),
    /// The memory budget could not cover the request's decoded form, evaluation or answer.
    OverBudget(OverBudget),
    /// Nobody waits for the answer any more (the client left, or its time ran out): the work
    /// stopped between units.
    Cancelled,
}

impl From<Error> for Refusal {
    fn from(error: Error) -> Self {
        Refusal::Invalid(error)
    }
}

impl From<OverBudget> for Refusal {
    fn from(refusal: OverBudget) -> Self {
        Refusal::OverBudget(refusal)
    }
}

/// Runs independent units of work, results in unit order: a worker's scope on the server, a
/// thread pool in the CLI, or one thread.
pub trait Parallel: Sync {
    fn map<U: Sync, R: Send>(&self, units: &[U], f: impl Fn(&U) -> R + Sync + Send) -> Vec<R>;

    /// Whether nobody waits for the result any more; work checks it between units and stops.
    fn cancelled(&self) -> bool {
        false
    }
}

/// Every unit on the calling thread.
pub struct Sequential;

impl Parallel for Sequential {
    fn map<U: Sync, R: Send>(&self, units: &[U], f: impl Fn(&U) -> R + Sync + Send) -> Vec<R> {
        units.iter().map(f).collect()
    }
}

impl Parallel for rayon::ThreadPool {
    fn map<U: Sync, R: Send>(&self, units: &[U], f: impl Fn(&U) -> R + Sync + Send) -> Vec<R> {
        use rayon::prelude::*;
        self.install(|| units.par_iter().map(f).collect())
    }
}

/// Below this many pairs (about a millisecond of one core) a batch runs on its own thread.
pub const MIN_PAIRS_TO_SPREAD: u64 = 4 * UNIT_PAIRS;

/// Evaluates ranked lists, split into units that `parallel` spreads; one result per list, in
/// order. The split depends only on the lists, so every bit of the result is the same however
/// the units run. Once `parallel` is cancelled the units left are skipped, and the result is
/// meaningless (the caller checks `cancelled` and drops it).
pub fn evaluate(
    ranked: &[RankedList],
    options: &MathOptions,
    parallel: &impl Parallel,
) -> Vec<Result<ListEvaluation, ListLossOverflow>> {
    let units = plan(ranked);
    let run = |unit: &WorkUnit| {
        if parallel.cancelled() { Default::default() } else { run_unit(ranked, unit, options) }
    };
    // Handing units to other threads costs tens of microseconds; below a few units' worth of
    // pairs the calling thread is done sooner alone. The units are the same either way.
    let pairs: u64 = ranked.iter().map(RankedList::pairs).sum();
    let results = if pairs < MIN_PAIRS_TO_SPREAD { Sequential.map(&units, run) } else { parallel.map(&units, run) };
    assemble(ranked, &units, results, options)
}

/// The memory `evaluate` allocates for these lists (results and returned pairs), to reserve first.
pub fn evaluation_bytes(ranked: &[RankedList], options: &MathOptions) -> usize {
    let returned_pairs: u64 = if options.include_pairs { ranked.iter().map(RankedList::pairs).sum() } else { 0 };
    let returned_pairs = usize::try_from(returned_pairs).unwrap_or(usize::MAX);
    ranked
        .len()
        .saturating_mul(EVALUATED_LIST_BYTES)
        .saturating_add(returned_pairs.saturating_mul(EVALUATED_PAIR_BYTES))
}
