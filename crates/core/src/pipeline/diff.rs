//! `prefeval diff`: two `prefeval eval` outputs of the same lists (each model's rewards evaluated
//! on its own) paired by list `id` into the comparison of the two models. A result line carries
//! what the comparison sums need: its loss, chance loss, τ-b and pairs count exactly, and its
//! accuracy, from which the agreeing pairs (in halves, an integer) come back exactly. The lists are
//! added in the order of the first output, so the figures are those `POST /v1/compare` gives for
//! the lists in that order, to the last bit.
//!
//! Each model's length bias comes from its output's `totals.length`: an output whose result lines
//! are exactly the lists compared, none failed, has in its summary the length counts of exactly
//! those lists under that model's rewards, which are what `/v1/compare` counts for it. Which pairs
//! have two lengths, and which item is the longer, do not depend on the model: two outputs whose
//! counts of such pairs differ are not of the same lists and are refused.
//!
//! Refused, naming the first offender: an error line (diff compares lists both models evaluated:
//! skipping one side's failures would silently compare fewer lists than asked), a list without an
//! `id`, an id given twice, an id in one output and not the other, one id with different pairs
//! counts (not the same list), a different normalization or β, and an output whose result lines
//! are not its summary's lists (written with `--results errors`, or cut).

use std::collections::HashMap;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

use super::compare_totals::{CompareSummary, CompareTotals};
use super::fingerprint::Fingerprint;
use super::read_summary::read_summary_line;
use super::run::{MIXED_FORMATS, Run, VERSION};
use super::summary::SummaryInput;
use crate::math::{LengthCounts, ListEvaluation};

/// One `prefeval eval` output: its name (for messages and, without `run.model`, the model's
/// label) and its lines.
pub struct DiffInput<'a> {
    pub name: String,
    pub lines: Vec<&'a [u8]>,
}

/// A result line, or an error line, as far as diff reads it.
#[derive(Deserialize)]
struct ResultLine {
    line: Option<u64>,
    id: Option<Value>,
    n: Option<u64>,
    pairs_count: Option<u64>,
    loss: Option<f64>,
    accuracy: Option<f64>,
    chance_loss: Option<f64>,
    kendall_tau: Option<f64>,
    error: Option<IgnoredAny>,
}

/// One output read: its lists by id in file order, and its summary.
struct Side {
    name: String,
    model: String,
    lists: Vec<(Value, ListEvaluation)>,
    index: HashMap<String, usize>,
    summary: SummaryInput,
}

/// The comparison of the models of `a` and `b` (in that order), as a compare summary whose
/// intervals are at `confidence`.
pub fn diff(a: &DiffInput<'_>, b: &DiffInput<'_>, confidence: f64) -> Result<CompareSummary, String> {
    diff_all(&[a, b], confidence)
}

/// The comparison of the models of two outputs or more (in that order), as `diff` pairs two:
/// every list of the first output in every other, and no other.
pub fn diff_all(inputs: &[&DiffInput<'_>], confidence: f64) -> Result<CompareSummary, String> {
    let sides = inputs.iter().map(|input| read_side(input)).collect::<Result<Vec<Side>, String>>()?;
    let [first, rest @ ..] = sides.as_slice() else {
        return Err("diff compares two outputs or more; none was given".to_string());
    };
    if rest.is_empty() {
        return Err(format!("{} alone: diff compares two outputs or more", first.name));
    }
    let run_a = &first.summary.run;
    for side in rest {
        let run_b = &side.summary.run;
        if run_a.normalization != run_b.normalization {
            return Err(format!(
                "{}: summary.run.normalization `{}` differs from {}'s `{}`: losses of different normalizations \
                 do not compare",
                side.name, run_b.normalization, first.name, run_a.normalization
            ));
        }
        if run_a.beta != run_b.beta {
            return Err(format!(
                "{}: summary.run.beta {} differs from {}'s {}: evaluate every model at the same β",
                side.name, run_b.beta, first.name, run_a.beta
            ));
        }
    }
    let models = labels(&sides)?;
    for side in rest {
        for (id, _) in &side.lists {
            if !first.index.contains_key(&id.to_string()) {
                return Err(format!(
                    "{}: list id {id} is not in {}: diff compares the same lists",
                    side.name, first.name
                ));
            }
        }
    }
    let mut totals = CompareTotals::new(sides.len());
    let mut per_model = Vec::with_capacity(sides.len());
    for (id, evaluation_a) in &first.lists {
        per_model.clear();
        per_model.push(evaluation_a.clone());
        for side in rest {
            let Some(&at) = side.index.get(&id.to_string()) else {
                return Err(format!(
                    "{}: list id {id} is not in {}: diff compares the same lists",
                    first.name, side.name
                ));
            };
            let evaluation = &side.lists[at].1;
            if evaluation_a.pairs_count != evaluation.pairs_count {
                return Err(format!(
                    "list id {id} has {} pairs in {} and {} in {}: not the same list",
                    evaluation_a.pairs_count, first.name, evaluation.pairs_count, side.name
                ));
            }
            per_model.push(evaluation.clone());
        }
        totals.add_list(&per_model);
    }
    totals.lengths = same_length_pairs(&sides)?;
    // Each input once: several models' scores often sit in one export, evaluated once each; a
    // merge of diffs refuses an input met twice.
    let mut inputs: Vec<Fingerprint> = Vec::new();
    for side in &sides {
        for &input in side.summary.run.fingerprints() {
            if !inputs.contains(&input) {
                inputs.push(input);
            }
        }
    }
    let same_format = sides.iter().all(|side| side.summary.run.format == run_a.format);
    let run = Run {
        prefeval: VERSION.to_string(),
        model: None,
        models: Some(models),
        normalization: run_a.normalization.clone(),
        beta: run_a.beta,
        format: if same_format { run_a.format.clone() } else { MIXED_FORMATS.to_string() },
        confidence,
        input: None,
        inputs: Some(inputs),
        calibration_bins: None,
        top_disagreements: None,
    };
    Ok(CompareSummary::new(&totals, 0, run))
}

/// Every output's length counts (zero without `totals.length`), unless their pairs with two
/// lengths differ: the lists' lengths are the same under every model.
fn same_length_pairs(sides: &[Side]) -> Result<Vec<LengthCounts>, String> {
    let counts = |side: &Side| match &side.summary.totals.length {
        None => Ok(LengthCounts::default()),
        Some(length) => length
            .counts()
            .map_err(|field| format!("{}: summary.totals.length.{field} is no count of pairs", side.name)),
    };
    let all = sides.iter().map(counts).collect::<Result<Vec<LengthCounts>, String>>()?;
    let pairs = |counts: &LengthCounts| (counts.pairs, counts.preferred_longer, counts.preferred_shorter);
    let shown = |counts: &LengthCounts| {
        format!(
            "{} pairs with two lengths ({} preferred longer, {} preferred shorter)",
            counts.pairs, counts.preferred_longer, counts.preferred_shorter
        )
    };
    for (side, length) in sides.iter().zip(&all).skip(1) {
        if pairs(length) != pairs(&all[0]) {
            return Err(format!(
                "{}: summary.totals.length has {} and {} has {}: the lists do not carry the same lengths",
                side.name,
                shown(length),
                sides[0].name,
                shown(&all[0])
            ));
        }
    }
    Ok(all)
}

/// The models' labels: each output's `run.model`, else its name (every output's name when two
/// models share a label); they must differ.
fn labels(sides: &[Side]) -> Result<Vec<String>, String> {
    let distinct = |labels: &[String]| labels.iter().enumerate().all(|(i, label)| !labels[..i].contains(label));
    let models: Vec<String> = sides.iter().map(|side| side.model.clone()).collect();
    if distinct(&models) {
        return Ok(models);
    }
    let names: Vec<String> = sides.iter().map(|side| side.name.clone()).collect();
    if distinct(&names) {
        return Ok(names);
    }
    let (i, j) = (0..names.len())
        .flat_map(|j| (0..j).map(move |i| (i, j)))
        .find(|&(i, j)| names[i] == names[j])
        .unwrap_or((0, 1));
    Err(format!("{} and {} are one output: diff compares two", names[i], names[j]))
}

fn read_side(input: &DiffInput<'_>) -> Result<Side, String> {
    let name = &input.name;
    let mut lines = input.lines.iter().filter(|line| !line.iter().all(u8::is_ascii_whitespace));
    let Some(last) = lines.next_back() else {
        return Err(format!("{name} is empty"));
    };
    let summary = read_summary_line(last).map_err(|error| match error.path.as_deref() {
        None | Some("summary") => format!(
            "the last line of {name} is not the summary of `prefeval eval` ({}); did its run finish?",
            error.message
        ),
        Some(field) => format!("{name}: {field}: {}", error.message),
    })?;
    let model = summary.run.model.clone().unwrap_or_else(|| name.clone());
    let mut side = Side { name: name.clone(), model, lists: Vec::new(), index: HashMap::new(), summary };
    for (position, raw) in lines.enumerate() {
        let parsed: ResultLine = serde_json::from_slice(raw).map_err(|error| {
            format!("{name}: line {} is not a result line of `prefeval eval`: {error}", position + 1)
        })?;
        let line = parsed.line.unwrap_or(position as u64 + 1);
        if parsed.error.is_some() {
            return Err(format!(
                "{name}: line {line} is an error line: diff compares lists both models evaluated; fix that list \
                 (or leave it out of both inputs) and evaluate again"
            ));
        }
        let Some(id) = parsed.id else {
            return Err(format!("{name}: the list of line {line} has no `id`: diff pairs lists by id"));
        };
        let fields = (parsed.n, parsed.pairs_count, parsed.loss, parsed.accuracy, parsed.chance_loss);
        let (Some(n), Some(pairs), Some(loss), Some(accuracy), Some(chance_loss)) = fields else {
            return Err(format!(
                "{name}: line {line} lacks one of `n`, `pairs_count`, `loss`, `accuracy`, `chance_loss`: not a result \
                 line of `prefeval eval`"
            ));
        };
        // accuracy = halves / (2·pairs) exactly rounded: the halves come back exactly.
        let halves = (accuracy * 2.0 * pairs as f64).round();
        if !(loss.is_finite() && loss >= 0.0 && (0.0..=2.0 * pairs as f64).contains(&halves)) {
            return Err(format!("{name}: line {line} holds figures no evaluation writes"));
        }
        let key = id.to_string();
        if side.index.insert(key, side.lists.len()).is_some() {
            return Err(format!("{name}: list id {id} is given twice (again at line {line}): diff pairs lists by id"));
        }
        let evaluation = ListEvaluation {
            n: n as usize,
            pairs_count: pairs,
            agreeing_halves: halves as u64,
            loss,
            accuracy,
            chance_loss,
            kendall_tau: parsed.kendall_tau,
            gradients: None,
            margins: Default::default(),
            pairs: None,
        };
        side.lists.push((id, evaluation));
    }
    if side.lists.len() as u64 != side.summary.totals.lists {
        return Err(format!(
            "{name} has {} result lines for the {} lists of its summary: diff needs every list's line (evaluate \
             with `--results all`)",
            side.lists.len(),
            side.summary.totals.lists
        ));
    }
    Ok(side)
}
