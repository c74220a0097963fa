//! The wire form of answers, written straight from the evaluation and the input (for the echoed
//! ids) without intermediate copies: a batch answer, and the lines of a stream or a CLI run (a
//! list result with its `line`, an error line, the summary line with its `totals`).

use serde::ser::{SerializeSeq, SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};

use super::Options;
use super::figures::Disagreement;
use super::format::ListInput;
use crate::error::ApiError;
use crate::eval::{Calibration, ImpliedPair, ListEvaluation, NeumaierSum, Normalization, Totals};
use crate::stats::{accuracy_interval, interval};

/// Bytes one pair takes in JSON, about: sizes the output buffer once.
const PAIR_JSON_BYTES: usize = 96;
/// Bytes one list result takes in JSON besides its pairs, about.
const LIST_JSON_BYTES: usize = 160;

/// About the size of the encoded answer, to size its buffer once in the common case.
pub fn encoded_size_estimate(evaluations: &[ListEvaluation]) -> usize {
    let returned_pairs: usize = evaluations.iter().map(|l| l.pairs.as_ref().map_or(0, Vec::len)).sum();
    512 + evaluations.len() * LIST_JSON_BYTES + returned_pairs * PAIR_JSON_BYTES
}

/// The answer of `POST /v1/evaluate`.
pub fn write_batch(
    out: &mut impl std::io::Write,
    options: &Options,
    inputs: &[ListInput<'_>],
    evaluations: &[ListEvaluation],
    totals: &Totals,
    extras: &BatchExtras<'_>,
) -> Result<(), serde_json::Error> {
    let groups = extras.groups.map(|groups| {
        groups.iter().map(|(group, totals)| GroupJson { group, figures: GroupFigures::new(totals) }).collect::<Vec<_>>()
    });
    let macro_accuracy = groups.as_ref().and_then(|groups| {
        let accuracies: Vec<f64> = groups.iter().filter_map(|g| g.figures.accuracy).collect();
        (!accuracies.is_empty()).then(|| accuracies.iter().sum::<f64>() / accuracies.len() as f64)
    });
    let body = BatchAnswer {
        loss: totals.loss(),
        normalization: options.eval.normalization.name(),
        summary: BatchSummary {
            figures: Figures::new(totals, options.confidence),
            macro_accuracy,
            totals: TotalsJson::from(totals),
        },
        lists: Lists { inputs, evaluations },
        calibration: extras.calibration.map(CalibrationJson::from),
        disagreements: extras.disagreements.map(|found| DisagreementsJson { found, inputs }),
        groups,
    };
    serde_json::to_writer(out, &body)
}

/// What a batch answer carries besides its lists, when asked for.
#[derive(Default)]
pub struct BatchExtras<'r> {
    pub calibration: Option<&'r Calibration>,
    pub disagreements: Option<&'r [Disagreement]>,
    pub groups: Option<&'r [(String, Totals)]>,
}

#[derive(Serialize)]
struct BatchAnswer<'r> {
    #[serde(skip_serializing_if = "Option::is_none")]
    loss: Option<f64>,
    normalization: &'static str,
    summary: BatchSummary,
    lists: Lists<'r>,
    #[serde(skip_serializing_if = "Option::is_none")]
    calibration: Option<CalibrationJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disagreements: Option<DisagreementsJson<'r>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    groups: Option<Vec<GroupJson<'r>>>,
}

#[derive(Serialize)]
struct BatchSummary {
    #[serde(flatten)]
    figures: Figures,
    #[serde(skip_serializing_if = "Option::is_none")]
    macro_accuracy: Option<f64>,
    totals: TotalsJson,
}

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

struct GroupJson<'r> {
    group: &'r str,
    figures: GroupFigures,
}

/// One group's figures: `{"group", "lists", "pairs", "loss", "accuracy", "chance_loss"}`.
struct GroupFigures {
    lists: u64,
    pairs: u64,
    loss: Option<f64>,
    accuracy: Option<f64>,
    chance_loss: Option<f64>,
}

impl GroupFigures {
    fn new(totals: &Totals) -> GroupFigures {
        GroupFigures {
            lists: totals.lists,
            pairs: totals.pairs,
            loss: totals.loss(),
            accuracy: totals.accuracy(),
            chance_loss: totals.chance_loss(),
        }
    }
}

impl Serialize for GroupJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let f = &self.figures;
        let mut s = serializer.serialize_struct("Group", 6)?;
        s.serialize_field("group", self.group)?;
        s.serialize_field("lists", &f.lists)?;
        s.serialize_field("pairs", &f.pairs)?;
        if let Some(loss) = f.loss {
            s.serialize_field("loss", &loss)?;
        }
        if let Some(accuracy) = f.accuracy {
            s.serialize_field("accuracy", &accuracy)?;
        }
        if let Some(chance_loss) = f.chance_loss {
            s.serialize_field("chance_loss", &chance_loss)?;
        }
        s.end()
    }
}

#[derive(Serialize)]
struct CalibrationJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    ece: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    brier: Option<f64>,
    bins: Vec<CalibrationBinJson>,
}

#[derive(Serialize)]
struct CalibrationBinJson {
    lower: f64,
    upper: f64,
    count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    mean_predicted: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    observed: Option<f64>,
}

impl From<&Calibration> for CalibrationJson {
    fn from(calibration: &Calibration) -> Self {
        CalibrationJson {
            ece: calibration.ece(),
            brier: calibration.brier(),
            bins: calibration
                .bins()
                .into_iter()
                .map(|bin| CalibrationBinJson {
                    lower: bin.lower,
                    upper: bin.upper,
                    count: bin.count,
                    mean_predicted: bin.mean_predicted,
                    observed: bin.observed,
                })
                .collect(),
        }
    }
}

struct DisagreementsJson<'r> {
    found: &'r [Disagreement],
    inputs: &'r [ListInput<'r>],
}

impl Serialize for DisagreementsJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.found.len()))?;
        for found in self.found {
            let input = self.inputs.get(found.list);
            let id_of =
                |index: u32| input.and_then(|i| i.items.get(index as usize)).and_then(|item| item.id.as_deref());
            seq.serialize_element(&DisagreementJson {
                list: found.list,
                list_id: input.and_then(|i| i.id.as_ref()).map(|id| &*id.0),
                preferred: found.preferred,
                other: found.other,
                preferred_id: id_of(found.preferred),
                other_id: id_of(found.other),
                probability: found.probability,
            })?;
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct DisagreementJson<'r> {
    list: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    list_id: Option<&'r str>,
    preferred: u32,
    other: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    preferred_id: Option<&'r str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    other_id: Option<&'r str>,
    probability: f64,
}

struct Lists<'r> {
    inputs: &'r [ListInput<'r>],
    evaluations: &'r [ListEvaluation],
}

impl Serialize for Lists<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.evaluations.len()))?;
        for (input, evaluation) in self.inputs.iter().zip(self.evaluations) {
            seq.serialize_element(&ListJson { line: None, input, evaluation })?;
        }
        seq.end()
    }
}

/// One list result: `lists[i]` of a batch answer, or, with its `line`, one line of a stream.
pub struct ListJson<'r> {
    pub line: Option<u64>,
    pub input: &'r ListInput<'r>,
    pub evaluation: &'r ListEvaluation,
}

impl Serialize for ListJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let e = self.evaluation;
        let mut s = serializer.serialize_struct("ListEvaluation", 10)?;
        if let Some(line) = self.line {
            s.serialize_field("line", &line)?;
        }
        if let Some(id) = &self.input.id {
            s.serialize_field("id", &*id.0)?;
        }
        s.serialize_field("n", &e.n)?;
        s.serialize_field("pairs_count", &e.pairs_count)?;
        s.serialize_field("loss", &e.loss)?;
        s.serialize_field("accuracy", &e.accuracy)?;
        s.serialize_field("chance_loss", &e.chance_loss)?;
        if let Some(tau) = e.kendall_tau {
            s.serialize_field("kendall_tau", &tau)?;
        }
        if let Some(gradients) = &e.gradients {
            s.serialize_field("gradients", gradients)?;
        }
        if let Some(pairs) = &e.pairs {
            s.serialize_field("pairs", &Pairs { input: self.input, pairs })?;
        }
        s.end()
    }
}

struct Pairs<'r> {
    input: &'r ListInput<'r>,
    pairs: &'r [ImpliedPair],
}

impl Serialize for Pairs<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.pairs.len()))?;
        for pair in self.pairs {
            seq.serialize_element(&PairJson { input: self.input, pair })?;
        }
        seq.end()
    }
}

struct PairJson<'r> {
    input: &'r ListInput<'r>,
    pair: &'r ImpliedPair,
}

impl Serialize for PairJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let p = self.pair;
        let id_of = |index: u32| self.input.items.get(index as usize).and_then(|item| item.id.as_deref());
        let (preferred_id, other_id) = (id_of(p.preferred), id_of(p.other));
        let mut s = serializer.serialize_struct("ImpliedPair", 6)?;
        s.serialize_field("preferred", &p.preferred)?;
        s.serialize_field("other", &p.other)?;
        if let Some(id) = preferred_id {
            s.serialize_field("preferred_id", id)?;
        }
        if let Some(id) = other_id {
            s.serialize_field("other_id", id)?;
        }
        s.serialize_field("probability", &p.probability)?;
        s.serialize_field("log_probability", &p.log_probability)?;
        s.end()
    }
}

/// A result line of a stream: `lists[i]` of a batch answer plus `"line"`.
pub fn write_list_line(out: &mut impl std::io::Write, list: &ListJson<'_>) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, list)?;
    out.write_all(b"\n")
}

/// The error line of a stream: `{"line": k, "error": {"code", "message", "path"?}}`.
pub fn write_error_line(out: &mut impl std::io::Write, line: u64, error: &ApiError) -> std::io::Result<()> {
    #[derive(Serialize)]
    struct ErrorLine<'e> {
        line: u64,
        error: &'e ApiError,
    }
    serde_json::to_writer(&mut *out, &ErrorLine { line, error })?;
    out.write_all(b"\n")
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
    pub normalization: &'static str,
    #[serde(flatten)]
    pub figures: Figures,
    pub lines_failed: u64,
    pub totals: TotalsJson,
}

impl Summary {
    pub fn new(normalization: Normalization, totals: &Totals, lines_failed: u64, confidence: f64) -> Summary {
        Summary {
            loss: totals.loss(),
            normalization: normalization.name(),
            figures: Figures::new(totals, confidence),
            lines_failed,
            totals: TotalsJson::from(totals),
        }
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
