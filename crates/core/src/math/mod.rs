//! The math of `docs/design/math.md`: implied preferences, the stable Bradley–Terry link, listwise
//! loss and pairwise accuracy. Pure computation on plain slices: no I/O, no serde, no async, no
//! threads (callers decide where `run_unit` runs).

mod batch;
mod calibration;
mod gradient;
mod kendall;
mod kernel;
mod length;
mod list;
mod logistic;
mod margins;
mod paired;
mod sum;
mod totals;

pub use batch::{
    ListEvaluation, ListLossOverflow, MathOptions, Normalization, UNIT_PAIRS, UnitResult, WorkUnit, assemble, plan,
    run_unit,
};
pub use calibration::{BinTotals, Calibration, CalibrationBin, ListCalibration};
pub use gradient::loss_gradients;
pub use kendall::kendall_tau_b;
pub use length::{LengthCounts, LengthFigures};
pub use list::{ImpliedPair, ListError, RankedList};
pub use logistic::{log_sigmoid, sigmoid};
pub use margins::{MARGIN_BOUNDS, MarginCounts};
pub use paired::PairedSums;
pub use sum::NeumaierSum;
pub use totals::Totals;
#[cfg(test)]
pub(crate) use totals::evaluation_for_totals;
