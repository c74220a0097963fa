//! The wire form of answers, written straight from the evaluation and the input (for the echoed
//! ids) without intermediate copies: a batch answer, and the lines of a stream or a CLI run (a
//! list result with its `line`, an error line, the summary line with its `totals`).

use serde::ser::{SerializeSeq, SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};

use super::format::ListInput;
use crate::error::ApiError;
use crate::eval::{ImpliedPair, ListEvaluation, NeumaierSum, Normalization, Totals};

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
    normalization: Normalization,
    inputs: &[ListInput<'_>],
    evaluations: &[ListEvaluation],
    totals: &Totals,
) -> Result<(), serde_json::Error> {
    let body = BatchAnswer {
        loss: totals.loss(),
        normalization: normalization.name(),
        summary: BatchSummary {
            lists: totals.lists,
            pairs: totals.pairs,
            accuracy: totals.accuracy(),
            chance_loss: totals.chance_loss(),
            totals: TotalsJson::from(totals),
        },
        lists: Lists { inputs, evaluations },
    };
    serde_json::to_writer(out, &body)
}

#[derive(Serialize)]
struct BatchAnswer<'r> {
    #[serde(skip_serializing_if = "Option::is_none")]
    loss: Option<f64>,
    normalization: &'static str,
    summary: BatchSummary,
    lists: Lists<'r>,
}

#[derive(Serialize)]
struct BatchSummary {
    lists: u64,
    pairs: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    accuracy: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    chance_loss: Option<f64>,
    totals: TotalsJson,
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
        let mut s = serializer.serialize_struct("ListEvaluation", 8)?;
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
        }
    }
}

/// The last line of a stream or a CLI run, and what `prefeval merge` reads and prints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    pub normalization: String,
    pub lists: u64,
    pub pairs: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chance_loss: Option<f64>,
    pub lines_failed: u64,
    pub totals: TotalsJson,
}

impl Summary {
    pub fn new(normalization: Normalization, totals: &Totals, lines_failed: u64) -> Summary {
        Summary {
            loss: totals.loss(),
            normalization: normalization.name().to_string(),
            lists: totals.lists,
            pairs: totals.pairs,
            accuracy: totals.accuracy(),
            chance_loss: totals.chance_loss(),
            lines_failed,
            totals: TotalsJson::from(totals),
        }
    }
}

/// `{"summary": {...}}`, the line itself.
#[derive(Serialize, Deserialize)]
pub struct SummaryLine {
    pub summary: Summary,
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
