//! The figures a report reads, as the JSON of a summary line names them. The lines were checked by
//! the core's readers first (`read`); these structs only pick out what is drawn. Parts the core
//! writes with types of their own (calibration, length, a comparison's models and pairs) are read
//! back with those types.

pub use prefeval_core::pipeline::compare::{ModelFigures, PairedComparison as Paired};
pub use prefeval_core::pipeline::encode::{CalibrationBinJson as CalibrationBin, CalibrationJson as Calibration};
pub use prefeval_core::pipeline::length_json::LengthJson as Length;
use prefeval_core::pipeline::run::Run;
use prefeval_core::pipeline::summary::{DisagreementJson, TotalsJson};
use serde::Deserialize;

/// An evaluation's summary (`prefeval eval`, the stream, `prefeval merge`).
#[derive(Clone, Debug, Deserialize)]
pub struct Evaluation {
    pub loss: Option<f64>,
    pub lists: u64,
    pub pairs: u64,
    pub accuracy: Option<f64>,
    pub chance_loss: Option<f64>,
    pub kendall_tau: Option<f64>,
    pub loss_ci: Option<(f64, f64)>,
    pub accuracy_ci: Option<(f64, f64)>,
    pub macro_accuracy: Option<f64>,
    pub lines_failed: u64,
    pub groups: Option<Vec<Group>>,
    pub calibration: Option<Calibration>,
    pub disagreements: Option<Vec<DisagreementJson>>,
    pub length: Option<Length>,
    pub totals: TotalsJson,
    pub run: Run,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Group {
    pub group: String,
    pub lists: u64,
    pub pairs: u64,
    pub loss: Option<f64>,
    pub accuracy: Option<f64>,
    pub chance_loss: Option<f64>,
    pub totals: TotalsJson,
}

/// A comparison: `/v1/compare`'s answer, or the summary of `prefeval compare`, the compare
/// stream, `prefeval diff` and their merges (which add `lines_failed` and `run`).
#[derive(Clone, Debug, Deserialize)]
pub struct Comparison {
    pub normalization: String,
    pub confidence: f64,
    pub lists: u64,
    pub pairs: u64,
    pub models: Vec<ModelFigures>,
    pub comparisons: Vec<Paired>,
    pub lines_failed: Option<u64>,
    pub run: Option<Run>,
}

/// One row of the headline table: a model's batch figures, from an evaluation or a comparison.
#[derive(Clone, Debug)]
pub struct Headline {
    pub model: String,
    pub lists: u64,
    pub pairs: u64,
    pub loss: Option<f64>,
    pub loss_ci: Option<(f64, f64)>,
    pub chance_loss: Option<f64>,
    pub accuracy: Option<f64>,
    pub accuracy_ci: Option<(f64, f64)>,
    pub kendall_tau: Option<f64>,
    pub macro_accuracy: Option<f64>,
}

impl Headline {
    pub fn of_evaluation(model: &str, evaluation: &Evaluation) -> Headline {
        Headline {
            model: model.to_string(),
            lists: evaluation.lists,
            pairs: evaluation.pairs,
            loss: evaluation.loss,
            loss_ci: evaluation.loss_ci,
            chance_loss: evaluation.chance_loss,
            accuracy: evaluation.accuracy,
            accuracy_ci: evaluation.accuracy_ci,
            kendall_tau: evaluation.kendall_tau,
            macro_accuracy: evaluation.macro_accuracy,
        }
    }

    pub fn of_model(figures: &ModelFigures, comparison: &Comparison) -> Headline {
        Headline {
            model: figures.model.clone(),
            lists: comparison.lists,
            pairs: comparison.pairs,
            loss: figures.loss,
            loss_ci: figures.loss_ci,
            chance_loss: figures.chance_loss,
            accuracy: figures.accuracy,
            accuracy_ci: figures.accuracy_ci,
            kendall_tau: figures.kendall_tau,
            macro_accuracy: None,
        }
    }
}
