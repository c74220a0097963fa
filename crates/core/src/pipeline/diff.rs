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
    let a = read_side(a)?;
    let b = read_side(b)?;
    let (run_a, run_b) = (&a.summary.run, &b.summary.run);
    if run_a.normalization != run_b.normalization {
        return Err(format!(
            "{}: summary.run.normalization `{}` differs from {}'s `{}`: losses of different normalizations do \
             not compare",
            b.name, run_b.normalization, a.name, run_a.normalization
        ));
    }
    if run_a.beta != run_b.beta {
        return Err(format!(
            "{}: summary.run.beta {} differs from {}'s {}: evaluate both models at the same β",
            b.name, run_b.beta, a.name, run_a.beta
        ));
    }
    let models = labels(&a, &b)?;
    for (id, _) in &b.lists {
        if !a.index.contains_key(&id.to_string()) {
            return Err(format!("{}: list id {id} is not in {}: diff compares the same lists", b.name, a.name));
        }
    }
    let mut totals = CompareTotals::new(2);
    for (id, evaluation_a) in &a.lists {
        let Some(&at) = b.index.get(&id.to_string()) else {
            return Err(format!("{}: list id {id} is not in {}: diff compares the same lists", a.name, b.name));
        };
        let evaluation_b = &b.lists[at].1;
        if evaluation_a.pairs_count != evaluation_b.pairs_count {
            return Err(format!(
                "list id {id} has {} pairs in {} and {} in {}: not the same list",
                evaluation_a.pairs_count, a.name, evaluation_b.pairs_count, b.name
            ));
        }
        totals.add_list(&[evaluation_a.clone(), evaluation_b.clone()]);
    }
    totals.lengths = same_length_pairs(&a, &b)?.to_vec();
    // Each input once: two models' scores often sit in one export, evaluated twice; a merge of
    // diffs refuses an input met twice.
    let mut inputs: Vec<Fingerprint> = Vec::new();
    for &input in run_a.fingerprints().chain(run_b.fingerprints()) {
        if !inputs.contains(&input) {
            inputs.push(input);
        }
    }
    let run = Run {
        prefeval: VERSION.to_string(),
        model: None,
        models: Some(models),
        normalization: run_a.normalization.clone(),
        beta: run_a.beta,
        format: if run_a.format == run_b.format { run_a.format.clone() } else { MIXED_FORMATS.to_string() },
        confidence,
        input: None,
        inputs: Some(inputs),
        calibration_bins: None,
        top_disagreements: None,
    };
    Ok(CompareSummary::new(&totals, 0, run))
}

/// The length counts of both outputs (zero without `totals.length`), unless their pairs with two
/// lengths differ: the lists' lengths are the same under both models.
fn same_length_pairs(a: &Side, b: &Side) -> Result<[LengthCounts; 2], String> {
    let counts = |side: &Side| match &side.summary.totals.length {
        None => Ok(LengthCounts::default()),
        Some(length) => length
            .counts()
            .map_err(|field| format!("{}: summary.totals.length.{field} is no count of pairs", side.name)),
    };
    let (length_a, length_b) = (counts(a)?, counts(b)?);
    let pairs = |counts: &LengthCounts| (counts.pairs, counts.preferred_longer, counts.preferred_shorter);
    if pairs(&length_a) != pairs(&length_b) {
        let shown = |counts: &LengthCounts| {
            format!(
                "{} pairs with two lengths ({} preferred longer, {} preferred shorter)",
                counts.pairs, counts.preferred_longer, counts.preferred_shorter
            )
        };
        return Err(format!(
            "{}: summary.totals.length has {} and {} has {}: the lists do not carry the same lengths",
            b.name,
            shown(&length_b),
            a.name,
            shown(&length_a)
        ));
    }
    Ok([length_a, length_b])
}

/// The two models' labels: each output's `run.model`, else its name; they must differ.
fn labels(a: &Side, b: &Side) -> Result<Vec<String>, String> {
    let (mut label_a, mut label_b) = (a.model.clone(), b.model.clone());
    if label_a == label_b {
        (label_a, label_b) = (a.name.clone(), b.name.clone());
    }
    if label_a == label_b {
        return Err(format!("{} and {} are one output: diff compares two", a.name, b.name));
    }
    Ok(vec![label_a, label_b])
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
