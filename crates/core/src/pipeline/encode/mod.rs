//! The wire form of answers, written straight from the evaluation and the input (for the echoed
//! ids) without intermediate copies: a batch answer, and the lines of a stream or a CLI run (a
//! list result with its `line`, an error line, the summary line with its `totals`).
//!
//! Everything is written through `OutputBlocks` (`blocks.rs`). Lists and their pairs, which are
//! most of an answer's bytes, are written by hand (literal keys, numbers through serde_json's own
//! formatters; pairs without ids straight into the block, `pairs.rs`) rather than through serde's
//! struct machinery; the bytes are those serde_json would write for the same values. The rest
//! goes through serde.

use std::io::{self, Write};

use serde::ser::{SerializeSeq, SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::ser::{CompactFormatter, Formatter};

mod blocks;
mod pairs;

pub use blocks::OutputBlocks;

use super::Options;
use super::figures::Disagreement;
use super::format::{ItemInput, ListInput};
use crate::error::ApiError;
use crate::eval::{Calibration, ImpliedPair, ListEvaluation, NeumaierSum, Normalization, Totals};
use crate::stats::{accuracy_interval, interval};

/// Bytes one pair takes in JSON, about: sizes the output buffer once.
const PAIR_JSON_BYTES: usize = 112;
/// Bytes one list result takes in JSON besides its pairs, about.
const LIST_JSON_BYTES: usize = 192;

/// About the size of the encoded answer, to size its buffer once in the common case.
pub fn encoded_size_estimate(evaluations: &[ListEvaluation]) -> usize {
    let returned_pairs: usize = evaluations.iter().map(|l| l.pairs.as_ref().map_or(0, Vec::len)).sum();
    // Rather above than below: an answer that outgrows its buffer is copied once more whole.
    1024 + evaluations.len() * LIST_JSON_BYTES + returned_pairs * PAIR_JSON_BYTES
}

/// The answer of `POST /v1/evaluate`.
pub fn write_batch(
    out: &mut impl Write,
    options: &Options,
    inputs: &[ListInput<'_>],
    evaluations: &[ListEvaluation],
    totals: &Totals,
    extras: &BatchExtras<'_>,
) -> Result<(), serde_json::Error> {
    let mut blocks = OutputBlocks::new(out);
    write_batch_fields(&mut blocks, options, inputs, evaluations, totals, extras)
        .and_then(|()| blocks.finish().map(drop))
        .map_err(serde_json::Error::io)
}

/// The fields of a batch answer in the order, and with the omissions, of the contract's
/// `EvaluateResponse`.
fn write_batch_fields<W: Write>(
    w: &mut OutputBlocks<W>,
    options: &Options,
    inputs: &[ListInput<'_>],
    evaluations: &[ListEvaluation],
    totals: &Totals,
    extras: &BatchExtras<'_>,
) -> io::Result<()> {
    let (summary, groups) = summary_and_groups(options, totals, extras);
    w.write_all(b"{")?;
    if let Some(loss) = totals.loss() {
        w.write_all(b"\"loss\":")?;
        write_f64(w, loss)?;
        w.write_all(b",")?;
    }
    w.write_all(b"\"normalization\":")?;
    write_json(w, options.eval.normalization.name())?;
    w.write_all(b",\"summary\":")?;
    write_json(w, &summary)?;
    w.write_all(b",\"lists\":[")?;
    for (index, (input, evaluation)) in inputs.iter().zip(evaluations).enumerate() {
        if index > 0 {
            w.write_all(b",")?;
        }
        write_list(w, &ListJson { line: None, input, evaluation, pair_ids: options.include_pair_ids })?;
    }
    w.write_all(b"]")?;
    if let Some(calibration) = extras.calibration {
        w.write_all(b",\"calibration\":")?;
        write_json(w, &CalibrationJson::from(calibration))?;
    }
    if let Some(found) = extras.disagreements {
        w.write_all(b",\"disagreements\":")?;
        write_json(w, &DisagreementsJson { found, inputs })?;
    }
    if let Some(groups) = &groups {
        w.write_all(b",\"groups\":")?;
        write_json(w, groups)?;
    }
    w.write_all(b"}")
}

/// A batch answer's `summary`, and its `groups` when the lists have groups.
fn summary_and_groups<'r>(
    options: &Options,
    totals: &Totals,
    extras: &BatchExtras<'r>,
) -> (BatchSummary, Option<Vec<GroupJson<'r>>>) {
    let groups = extras.groups.map(|groups| {
        groups.iter().map(|(group, totals)| GroupJson { group, figures: GroupFigures::new(totals) }).collect::<Vec<_>>()
    });
    let macro_accuracy = groups.as_ref().and_then(|groups| {
        let accuracies: Vec<f64> = groups.iter().filter_map(|g| g.figures.accuracy).collect();
        (!accuracies.is_empty()).then(|| accuracies.iter().sum::<f64>() / accuracies.len() as f64)
    });
    let summary = BatchSummary {
        figures: Figures::new(totals, options.confidence),
        macro_accuracy,
        totals: TotalsJson::from(totals),
    };
    (summary, groups)
}

/// What a batch answer carries besides its lists, when asked for.
#[derive(Default)]
pub struct BatchExtras<'r> {
    pub calibration: Option<&'r Calibration>,
    pub disagreements: Option<&'r [Disagreement]>,
    pub groups: Option<&'r [(String, Totals)]>,
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

/// One list result: `lists[i]` of a batch answer, or, with its `line`, one line of a stream.
pub struct ListJson<'r> {
    pub line: Option<u64>,
    pub input: &'r ListInput<'r>,
    pub evaluation: &'r ListEvaluation,
    /// Whether each pair echoes its items' ids (`Options::include_pair_ids`).
    pub pair_ids: bool,
}

/// A result line of a stream: `lists[i]` of a batch answer plus `"line"`.
pub fn write_list_line<W: Write>(out: &mut OutputBlocks<W>, list: &ListJson<'_>) -> io::Result<()> {
    write_list(out, list)?;
    out.write_all(b"\n")
}

/// `{"line"?, "id"?, "n", "pairs_count", "loss", "accuracy", "chance_loss", "kendall_tau"?,
/// "gradients"?, "pairs"?}`: the contract's `ListEvaluation` (with `line`, `StreamResult`).
fn write_list<W: Write>(w: &mut OutputBlocks<W>, list: &ListJson<'_>) -> io::Result<()> {
    let e = list.evaluation;
    w.write_all(b"{")?;
    if let Some(line) = list.line {
        w.write_all(b"\"line\":")?;
        write_u64(w, line)?;
        w.write_all(b",")?;
    }
    if let Some(id) = &list.input.id {
        w.write_all(b"\"id\":")?;
        write_json(w, &*id.0)?;
        w.write_all(b",")?;
    }
    w.write_all(b"\"n\":")?;
    write_u64(w, e.n as u64)?;
    w.write_all(b",\"pairs_count\":")?;
    write_u64(w, e.pairs_count)?;
    w.write_all(b",\"loss\":")?;
    write_f64(w, e.loss)?;
    w.write_all(b",\"accuracy\":")?;
    write_f64(w, e.accuracy)?;
    w.write_all(b",\"chance_loss\":")?;
    write_f64(w, e.chance_loss)?;
    if let Some(tau) = e.kendall_tau {
        w.write_all(b",\"kendall_tau\":")?;
        write_f64(w, tau)?;
    }
    if let Some(gradients) = &e.gradients {
        w.write_all(b",\"gradients\":")?;
        write_json(w, gradients)?;
    }
    if let Some(pairs) = &e.pairs {
        w.write_all(b",\"pairs\":[")?;
        if list.pair_ids {
            for (index, pair) in pairs.iter().enumerate() {
                if index > 0 {
                    w.write_all(b",")?;
                }
                write_pair_with_ids(w, pair, &list.input.items)?;
            }
        } else {
            pairs::write_pairs(w, pairs)?;
        }
        w.write_all(b"]")?;
    }
    w.write_all(b"}")
}

/// `{"preferred", "other", "preferred_id"?, "other_id"?, "probability", "log_probability"}`: the
/// contract's `ImpliedPair` with the ids of the items that have one (`pairs` writes those without).
fn write_pair_with_ids(w: &mut impl Write, pair: &ImpliedPair, items: &[ItemInput<'_>]) -> io::Result<()> {
    w.write_all(b"{\"preferred\":")?;
    CompactFormatter.write_u32(w, pair.preferred)?;
    w.write_all(b",\"other\":")?;
    CompactFormatter.write_u32(w, pair.other)?;
    let id_of = |index: u32| items.get(index as usize).and_then(|item| item.id.as_deref());
    if let Some(id) = id_of(pair.preferred) {
        w.write_all(b",\"preferred_id\":")?;
        write_json(w, id)?;
    }
    if let Some(id) = id_of(pair.other) {
        w.write_all(b",\"other_id\":")?;
        write_json(w, id)?;
    }
    w.write_all(b",\"probability\":")?;
    write_f64(w, pair.probability)?;
    w.write_all(b",\"log_probability\":")?;
    write_f64(w, pair.log_probability)?;
    w.write_all(b"}")
}

fn write_u64(w: &mut impl Write, value: u64) -> io::Result<()> {
    CompactFormatter.write_u64(w, value)
}

/// A float as serde_json writes it: its own formatter for a finite number (the shortest digits
/// that read back as the same f64), `null` otherwise (the pipeline refuses input that would
/// produce one, so answers never hold it).
fn write_f64(w: &mut impl Write, value: f64) -> io::Result<()> {
    if value.is_finite() { CompactFormatter.write_f64(w, value) } else { CompactFormatter.write_null(w) }
}

/// Any other value (strings, with their escapes; small nested objects) through serde_json.
fn write_json(w: &mut impl Write, value: &(impl Serialize + ?Sized)) -> io::Result<()> {
    serde_json::to_writer(w, value).map_err(io::Error::from)
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

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::limits::Limits;
    use crate::pipeline::{Sequential, evaluate, figures, validate};
    use prefeval_testkit::SplitMix64 as Random;

    /// Floats of every kind: chosen edge cases, then random bit patterns (subnormals, huge and
    /// tiny magnitudes, NaN and infinities), probabilities and log-probabilities.
    fn floats(random: &mut Random, count: usize) -> Vec<f64> {
        let mut floats = vec![
            0.0,
            -0.0,
            0.5,
            1.0,
            -1.0,
            0.1,
            1e-300,
            -1e-300,
            5e-324,
            f64::MIN_POSITIVE,
            f64::MIN_POSITIVE / 3.0,
            f64::MAX,
            f64::MIN,
            f64::EPSILON,
            1.0 - f64::EPSILON / 2.0,
            1e-7,
            1e15,
            1e16,
            1e17,
            1e21,
            1e22,
            0.7858349830425586,
            -0.24100845383299224,
            -1e-17,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        for _ in 0..count {
            let bits = random.next_u64();
            floats.push(f64::from_bits(bits));
            // Exponent bits all zero: a subnormal.
            floats.push(f64::from_bits(bits >> 12));
            floats.push(random.unit());
            floats.push(-random.unit() * 40.0);
            floats.push(random.unit().powi(40));
        }
        floats
    }

    #[test]
    fn numbers_are_the_bytes_serde_json_writes() {
        let mut random = Random::new(0x5EED);
        for value in floats(&mut random, 100_000) {
            let mut mine = Vec::new();
            write_f64(&mut mine, value).unwrap();
            let expected = serde_json::to_string(&value).unwrap();
            assert_eq!(String::from_utf8(mine).unwrap(), expected, "{value:e} ({:#018x})", value.to_bits());
        }
        let mut integers = vec![0, 1, 9, 10, 99, 100, u64::from(u32::MAX), u64::MAX];
        integers.extend((0..10_000).map(|_| random.next_u64() >> random.below(64)));
        for value in integers {
            let mut mine = Vec::new();
            write_u64(&mut mine, value).unwrap();
            assert_eq!(String::from_utf8(mine).unwrap(), serde_json::to_string(&value).unwrap());
        }
    }

    /// A pair as serde's derive writes it: what the pair encoders must match byte for byte.
    #[derive(Serialize)]
    struct PairReference<'a> {
        preferred: u32,
        other: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        preferred_id: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        other_id: Option<&'a str>,
        probability: f64,
        log_probability: f64,
    }

    /// Ids that need every kind of escape, and none.
    const IDS: [Option<&str>; 10] = [
        None,
        Some(""),
        Some("C"),
        Some("quote \" and backslash \\"),
        Some("controls \u{0}\u{1}\u{8}\u{9}\u{a}\u{c}\u{d}\u{1f} and \u{7f}"),
        Some("é ☃ 😀"),
        Some("line separators \u{2028}\u{2029}"),
        Some("</script>"),
        Some("slash / and tab\t"),
        Some("resp-12"),
    ];

    #[test]
    fn pairs_are_the_bytes_serde_json_writes_for_them_with_ids_and_without() {
        let mut random = Random::new(0xB1D5);
        let values = floats(&mut random, 20_000);
        let items: Vec<ItemInput<'_>> =
            (0..40).map(|k| ItemInput { id: IDS[k % IDS.len()].map(Cow::Borrowed), reward: 0.0, rank: None }).collect();
        let pairs: Vec<ImpliedPair> = (0..values.len())
            .map(|index| {
                // Indices inside the items, and past them (no id to echo).
                let mut index_of = || match random.below(4) {
                    0 => random.next_u64() as u32,
                    _ => random.below(items.len() as u64) as u32,
                };
                ImpliedPair {
                    preferred: index_of(),
                    other: index_of(),
                    probability: values[index],
                    log_probability: values[(index * 7 + 3) % values.len()],
                }
            })
            .collect();
        let id_of = |index: u32| items.get(index as usize).and_then(|item| item.id.as_deref());
        let reference = |pair: &ImpliedPair, with_ids: bool| {
            serde_json::to_string(&PairReference {
                preferred: pair.preferred,
                other: pair.other,
                preferred_id: if with_ids { id_of(pair.preferred) } else { None },
                other_id: if with_ids { id_of(pair.other) } else { None },
                probability: pair.probability,
                log_probability: pair.log_probability,
            })
            .unwrap()
        };
        for pair in &pairs {
            let mut mine = Vec::new();
            write_pair_with_ids(&mut mine, pair, &items).unwrap();
            assert_eq!(String::from_utf8(mine).unwrap(), reference(pair, true), "{pair:?}");
        }
        // Without ids, all in one run: the pairs cross many block boundaries.
        let mut blocks = OutputBlocks::new(Vec::new());
        pairs::write_pairs(&mut blocks, &pairs).unwrap();
        let mine = String::from_utf8(blocks.finish().unwrap()).unwrap();
        let expected: Vec<String> = pairs.iter().map(|pair| reference(pair, false)).collect();
        assert_eq!(mine, expected.join(","));
    }

    /// A list result as serde's derive writes it.
    #[derive(Serialize)]
    struct ListReference<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        line: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a str>,
        n: usize,
        pairs_count: u64,
        loss: f64,
        accuracy: f64,
        chance_loss: f64,
        #[serde(skip_serializing_if = "Option::is_none")]
        kendall_tau: Option<f64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        gradients: Option<&'a [f64]>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pairs: Option<Vec<PairReference<'a>>>,
    }

    impl<'a> ListReference<'a> {
        fn new(line: Option<u64>, input: &'a ListInput<'a>, e: &'a ListEvaluation, pair_ids: bool) -> Self {
            let id_of = |index: u32| {
                let item = input.items.get(index as usize).filter(|_| pair_ids);
                item.and_then(|item| item.id.as_deref())
            };
            let pairs = e.pairs.as_ref().map(|pairs| {
                pairs
                    .iter()
                    .map(|p| PairReference {
                        preferred: p.preferred,
                        other: p.other,
                        preferred_id: id_of(p.preferred),
                        other_id: id_of(p.other),
                        probability: p.probability,
                        log_probability: p.log_probability,
                    })
                    .collect()
            });
            ListReference {
                line,
                id: input.id.as_ref().map(|id| &*id.0),
                n: e.n,
                pairs_count: e.pairs_count,
                loss: e.loss,
                accuracy: e.accuracy,
                chance_loss: e.chance_loss,
                kendall_tau: e.kendall_tau,
                gradients: e.gradients.as_deref(),
                pairs,
            }
        }
    }

    /// A batch answer as serde's derive writes it.
    #[derive(Serialize)]
    struct BatchReference<'r> {
        #[serde(skip_serializing_if = "Option::is_none")]
        loss: Option<f64>,
        normalization: &'static str,
        summary: BatchSummary,
        lists: Vec<ListReference<'r>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        calibration: Option<CalibrationJson>,
        #[serde(skip_serializing_if = "Option::is_none")]
        disagreements: Option<DisagreementsJson<'r>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        groups: Option<Vec<GroupJson<'r>>>,
    }

    /// A batch body of random lists: ids with escapes or none, ranks with ties or array order,
    /// equal rewards, groups.
    fn random_batch(random: &mut Random, options: serde_json::Value) -> Vec<u8> {
        let lists: Vec<serde_json::Value> = (0..40)
            .map(|index| {
                let n = 2 + random.below(9) as usize;
                let ranked = random.below(2) == 0;
                let items: Vec<serde_json::Value> = (0..n)
                    .map(|k| {
                        let mut item = serde_json::json!({"reward": (random.unit() - 0.5) * 8.0});
                        if random.below(5) == 0 {
                            item["reward"] = serde_json::json!(1.0);
                        }
                        if let Some(id) = IDS[random.below(IDS.len() as u64) as usize] {
                            item["id"] = serde_json::json!(format!("{id}{k}"));
                        }
                        if ranked {
                            item["rank"] = serde_json::json!(1 + random.below(3));
                        }
                        item
                    })
                    .collect();
                let mut list = serde_json::json!({"items": items});
                if ranked {
                    // At least two ranks, so the list implies a preference.
                    list["items"][0]["rank"] = serde_json::json!(1);
                    list["items"][1]["rank"] = serde_json::json!(4);
                }
                if index % 3 != 0 {
                    list["id"] = serde_json::json!(format!("prompt \"{index}\" é"));
                }
                if index % 4 == 1 {
                    list["group"] = serde_json::json!(["a", "b"][index % 2]);
                }
                list
            })
            .collect();
        serde_json::to_vec(&serde_json::json!({"options": options, "lists": lists})).unwrap()
    }

    #[test]
    fn answers_and_stream_lines_are_the_bytes_serde_json_writes_for_them() {
        let limits = Limits {
            max_line_bytes: 1 << 20,
            max_items_per_list: 100,
            max_lists: 100,
            max_pairs: 1 << 20,
            max_evaluated_pairs: 1 << 20,
        };
        let mut random = Random::new(0xA115);
        let option_sets = [
            serde_json::json!({}),
            serde_json::json!({"include_pair_ids": true}),
            serde_json::json!({"include_pairs": false, "include_pair_ids": true}),
            serde_json::json!({"include_pair_ids": true, "include_gradients": true, "calibration_bins": 7,
                               "top_disagreements": 5, "normalization": "sum", "beta": 0.3}),
            serde_json::json!({"include_gradients": true, "calibration_bins": 3, "top_disagreements": 50,
                               "confidence": 0.8}),
        ];
        for options in option_sets.iter().cycle().take(20) {
            let body = random_batch(&mut random, options.clone());
            let batch = validate::batch(&body, &limits).unwrap();
            let options = &batch.options;
            let evaluations: Vec<ListEvaluation> =
                evaluate(&batch.ranked, &options.eval, &Sequential).into_iter().map(Result::unwrap).collect();
            let mut totals = Totals::default();
            evaluations.iter().for_each(|evaluation| totals.add(evaluation));
            let calibration =
                options.calibration_bins.map(|bins| figures::calibration(&batch.ranked, options.eval.beta, bins));
            let disagreements =
                options.top_disagreements.map(|k| figures::disagreements(&batch.ranked, options.eval.beta, k));
            let groups = figures::groups(&batch.inputs, &evaluations);
            let extras = BatchExtras {
                calibration: calibration.as_ref(),
                disagreements: disagreements.as_deref(),
                groups: groups.as_deref(),
            };

            let mut mine = Vec::new();
            write_batch(&mut mine, options, &batch.inputs, &evaluations, &totals, &extras).unwrap();
            let (summary, groups) = summary_and_groups(options, &totals, &extras);
            let reference = BatchReference {
                loss: totals.loss(),
                normalization: options.eval.normalization.name(),
                summary,
                lists: batch
                    .inputs
                    .iter()
                    .zip(&evaluations)
                    .map(|(input, e)| ListReference::new(None, input, e, options.include_pair_ids))
                    .collect(),
                calibration: extras.calibration.map(CalibrationJson::from),
                disagreements: extras.disagreements.map(|found| DisagreementsJson { found, inputs: &batch.inputs }),
                groups,
            };
            // The data exercise the ids: written exactly when pairs and their ids are asked for.
            let ids_written = reference
                .lists
                .iter()
                .flat_map(|list| list.pairs.iter().flatten())
                .any(|pair| pair.preferred_id.is_some_and(|id| id.contains('"')) && pair.other_id.is_some());
            assert_eq!(ids_written, options.eval.include_pairs && options.include_pair_ids);
            assert_eq!(String::from_utf8(mine).unwrap(), serde_json::to_string(&reference).unwrap());

            for (k, (input, evaluation)) in batch.inputs.iter().zip(&evaluations).enumerate() {
                let line = Some(k as u64 + 1);
                let mut blocks = OutputBlocks::new(Vec::new());
                let list = ListJson { line, input, evaluation, pair_ids: options.include_pair_ids };
                write_list_line(&mut blocks, &list).unwrap();
                let mine = blocks.finish().unwrap();
                let mut expected =
                    serde_json::to_vec(&ListReference::new(line, input, evaluation, options.include_pair_ids)).unwrap();
                expected.push(b'\n');
                assert_eq!(String::from_utf8(mine).unwrap(), String::from_utf8(expected).unwrap());
            }
        }
    }
}
