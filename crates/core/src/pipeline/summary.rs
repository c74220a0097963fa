//! The summary of a batch in both directions: the batch figures computed from totals (`Figures`),
//! the sufficient statistics in JSON (`TotalsJson`, to and from `Totals`), and the summary line
//! that ends a stream or a CLI run and that `prefeval merge` reads back (`Summary`, `SummaryLine`,
//! `summary_line`), with what it was computed from (`run`). The totals are written
//! by one run and read back by another (`prefeval merge` over shards), so both directions live here,
//! side by side; `read_summary` checks what is read back.
//!
//! It must not know the lists or how they are written (`encode` does), nor any HTTP.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

pub use super::encode::CalibrationJson;
use super::json::Id;
use super::length_json::{LengthJson, LengthTotalsJson};
use super::run::Run;
use crate::math::{NeumaierSum, Totals};
use crate::stats::{accuracy_interval, interval};

/// The batch figures of a summary, from totals: counts, accuracy, chance loss, τ-b, and with two
/// lists or more the standard errors and intervals at `confidence`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Figures {
    pub lists: u64,
    pub pairs: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chance_loss: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kendall_tau: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss_se: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss_ci: Option<(f64, f64)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy_se: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy_ci: Option<(f64, f64)>,
}

impl Figures {
    pub fn new(totals: &Totals, confidence: f64) -> Figures {
        let loss_se = totals.loss_standard_error();
        let accuracy_se = totals.accuracy_standard_error();
        Figures {
            lists: totals.lists,
            pairs: totals.pairs,
            accuracy: totals.accuracy(),
            chance_loss: totals.chance_loss(),
            kendall_tau: totals.kendall_tau(),
            loss_se,
            loss_ci: totals.loss().zip(loss_se).map(|(loss, se)| interval(loss, se, confidence)),
            accuracy_se,
            accuracy_ci: totals.accuracy().zip(accuracy_se).map(|(acc, se)| accuracy_interval(acc, se, confidence)),
        }
    }
}

/// The sufficient statistics in JSON: shards' totals merge into the totals of the whole.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TotalsJson {
    pub lists: u64,
    pub pairs: u64,
    /// Agreeing pairs, a reward tie counting one half.
    pub agreeing: f64,
    /// Σ list loss; absent only when it overflows f64 (then `loss_sum_scaled` holds it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_sum: Option<f64>,
    /// Σ list loss × 2⁻⁶⁴, present when `loss_sum` overflows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_sum_scaled: Option<f64>,
    /// Σ list loss²; absent when it overflows f64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_sum_squares: Option<f64>,
    pub chance_loss_sum: f64,
    /// Σ τ-b over the lists where it is defined, and how many those are.
    pub kendall_tau_sum: f64,
    pub kendall_tau_lists: u64,
    /// Σ a_i², Σ a_i·p_i, Σ p_i² over lists (a_i agreeing, p_i implied pairs): the accuracy's
    /// standard error needs them.
    pub agreeing_squares: f64,
    pub agreeing_pairs: f64,
    pub pairs_squares: f64,
    /// Per calibration bin, the sums its figures are ratios of (when calibration was asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<Vec<CalibrationBinTotalsJson>>,
    /// The pair counts of the length figures (when a pair had both lengths).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<LengthTotalsJson>,
}

/// One calibration bin of `totals.calibration`: its count, Σq, Σy and Σ(q − y)².
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalibrationBinTotalsJson {
    pub count: u64,
    pub sum_predicted: f64,
    /// Σ y: pairs the human decided the model's way, a reward tie counting one half.
    pub sum_observed: f64,
    pub sum_squared_error: f64,
}

const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;

impl From<&Totals> for TotalsJson {
    fn from(totals: &Totals) -> Self {
        let finite = |sum: &NeumaierSum| Some(sum.value()).filter(|v| v.is_finite());
        let loss_sum = finite(&totals.loss_sum);
        TotalsJson {
            lists: totals.lists,
            pairs: totals.pairs,
            agreeing: totals.agreeing_halves as f64 / 2.0,
            loss_sum,
            loss_sum_scaled: loss_sum.is_none().then(|| totals.loss_sum_scaled.value()),
            loss_sum_squares: finite(&totals.loss_sum_squares),
            chance_loss_sum: totals.chance_loss_sum.value(),
            kendall_tau_sum: totals.kendall_tau_sum.value(),
            kendall_tau_lists: totals.kendall_tau_lists,
            agreeing_squares: totals.agreeing_squares.value(),
            agreeing_pairs: totals.agreeing_pairs.value(),
            pairs_squares: totals.pairs_squares.value(),
            calibration: None,
            length: None,
        }
    }
}

impl From<&TotalsJson> for Totals {
    fn from(json: &TotalsJson) -> Self {
        let sum_of = |value: f64| {
            let mut sum = NeumaierSum::default();
            sum.add(value);
            sum
        };
        let loss_sum = json.loss_sum.unwrap_or_else(|| json.loss_sum_scaled.unwrap_or(0.0) * TWO_POW_64);
        let loss_sum_scaled = json.loss_sum_scaled.unwrap_or(loss_sum / TWO_POW_64);
        Totals {
            lists: json.lists,
            pairs: json.pairs,
            // Halves are integers well inside f64's exact range.
            agreeing_halves: (json.agreeing * 2.0).round() as u64,
            loss_sum: sum_of(loss_sum),
            loss_sum_scaled: sum_of(loss_sum_scaled),
            loss_sum_squares: sum_of(json.loss_sum_squares.unwrap_or(f64::INFINITY)),
            chance_loss_sum: sum_of(json.chance_loss_sum),
            kendall_tau_sum: sum_of(json.kendall_tau_sum),
            kendall_tau_lists: json.kendall_tau_lists,
            agreeing_squares: sum_of(json.agreeing_squares),
            agreeing_pairs: sum_of(json.agreeing_pairs),
            pairs_squares: sum_of(json.pairs_squares),
            margins: Default::default(),
        }
    }
}

/// The last line of a stream or a CLI run, and what `prefeval merge` prints.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    pub normalization: String,
    #[serde(flatten)]
    pub figures: Figures,
    /// The mean of the groups' accuracies, when lists have groups.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub macro_accuracy: Option<f64>,
    pub lines_failed: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<GroupSummaryJson>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calibration: Option<CalibrationJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disagreements: Option<Vec<DisagreementJson>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub length: Option<LengthJson>,
    pub totals: TotalsJson,
    /// What the figures were computed from; its normalization and confidence are the figures'.
    pub run: Run,
}

impl Summary {
    /// The summary of `totals` alone (no groups, calibration, disagreements or length; a
    /// `dataset::Dataset` adds those).
    pub fn new(totals: &Totals, lines_failed: u64, run: Run) -> Summary {
        Summary {
            loss: totals.loss(),
            normalization: run.normalization.clone(),
            figures: Figures::new(totals, run.confidence),
            macro_accuracy: None,
            lines_failed,
            groups: None,
            calibration: None,
            disagreements: None,
            length: None,
            totals: TotalsJson::from(totals),
            run,
        }
    }
}

/// One group of a summary: the batch's group figures, and the group's totals so shards merge
/// per group.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupSummaryJson {
    pub group: String,
    pub lists: u64,
    pub pairs: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chance_loss: Option<f64>,
    pub totals: TotalsJson,
}

impl GroupSummaryJson {
    pub fn new(group: &str, totals: &Totals) -> GroupSummaryJson {
        GroupSummaryJson {
            group: group.to_string(),
            lists: totals.lists,
            pairs: totals.pairs,
            loss: totals.loss(),
            accuracy: totals.accuracy(),
            chance_loss: totals.chance_loss(),
            totals: TotalsJson::from(totals),
        }
    }
}

/// One of a summary's least probable pairs: the batch's disagreement with the `line` of its list
/// instead of the list's index, and in a merged summary the `input` it came from (an index into
/// `run.inputs`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisagreementJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<usize>,
    pub line: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_id: Option<OwnedId>,
    pub preferred: u32,
    pub other: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_id: Option<OwnedId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_id: Option<OwnedId>,
    pub probability: f64,
}

/// An id kept past the body it was read from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct OwnedId(pub Id<'static>);

impl OwnedId {
    pub fn of(id: &Id<'_>) -> OwnedId {
        OwnedId(Id { text: Cow::Owned(id.text.to_string()), integer: id.integer })
    }
}

impl<'de> Deserialize<'de> for OwnedId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let id = Id::deserialize(deserializer)?;
        Ok(OwnedId::of(&id))
    }
}

/// What `prefeval merge` reads of a summary line (the figures it recomputes from the totals).
#[derive(Deserialize)]
pub struct SummaryLine {
    pub summary: SummaryInput,
}

#[derive(Deserialize)]
pub struct SummaryInput {
    pub normalization: String,
    pub lines_failed: u64,
    #[serde(default)]
    pub groups: Option<Vec<GroupInput>>,
    #[serde(default)]
    pub disagreements: Option<Vec<DisagreementJson>>,
    pub totals: TotalsJson,
    pub run: Run,
}

/// What `prefeval merge` reads of a group: its name and totals.
#[derive(Deserialize)]
pub struct GroupInput {
    pub group: String,
    pub totals: TotalsJson,
}

pub fn summary_line(summary: &Summary) -> Vec<u8> {
    #[derive(Serialize)]
    struct Line<'s> {
        summary: &'s Summary,
    }
    // Finite numbers, strings and integers only: serializing cannot fail.
    let mut out = serde_json::to_vec(&Line { summary }).unwrap_or_default();
    out.push(b'\n');
    out
}
