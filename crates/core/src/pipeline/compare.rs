//! `POST /v1/compare`: two to sixteen reward models scored on the same ranked lists. The pipeline
//! runs once per model over the same lists; then every pair of models is compared with paired,
//! list-clustered statistics (docs/design/math.md, "Uncertainty"): the loss difference as a mean of per-list
//! differences, the accuracy difference as a ratio of summed per-list differences, each with its
//! standard error, interval, two-sided p-value and Holm-adjusted p-value over the family.

use serde::{Deserialize, Serialize};

use super::compare_lines::{length_counts, model_lists};
use super::compare_totals::{CompareTotals, model_pairs};
use super::decode::{NamedRead, parse_named, parse_seed};
use super::length_json::LengthJson;
use super::named::CompareSeed;
use super::options::CompareOptions;
use super::validate::{check_model, empty_batch, too_many_evaluated_pairs, too_many_lists};
use super::wire::{CompareRequest, Text};
use super::{Options, Parallel, Refusal, evaluate};
use crate::error::{Error, ErrorCode};
use crate::limits::Limits;
use crate::math::{ListEvaluation, Totals};
use crate::memory::{EVALUATED_LIST_BYTES, Reservation};
use crate::stats::{accuracy_interval, holm_adjust, interval, p_value};

/// Fewest and most models one comparison takes (api.md).
pub const MIN_MODELS: usize = 2;
pub const MAX_MODELS: usize = 16;

/// A comparison, evaluated: per model its figures, per pair of models the paired statistics.
#[derive(Debug, Serialize)]
pub struct Comparison {
    pub normalization: String,
    pub confidence: f64,
    pub lists: u64,
    pub pairs: u64,
    pub models: Vec<ModelFigures>,
    pub comparisons: Vec<PairedComparison>,
    /// Per model, what its evaluation adds to the metrics (model, totals, list losses).
    #[serde(skip)]
    pub evaluated: Vec<(String, Totals, Vec<f64>)>,
}

/// One model's figures in a comparison (read back by the report).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelFigures {
    pub model: String,
    /// Absent only without lists (a stream whose every line failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss_se: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss_ci: Option<(f64, f64)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy_se: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy_ci: Option<(f64, f64)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chance_loss: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kendall_tau: Option<f64>,
    /// Length bias under this model, when any pair has two lengths.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub length: Option<LengthJson>,
}

/// One pair of models compared (read back by the report).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PairedComparison {
    pub a: String,
    pub b: String,
    /// Absent only without lists, as are `accuracy_difference` and the counts' meaning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss_difference: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss_difference_se: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss_difference_ci: Option<(f64, f64)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss_p_value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss_p_value_holm: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy_difference: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy_difference_se: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy_difference_ci: Option<(f64, f64)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy_p_value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy_p_value_holm: Option<f64>,
    pub lists_a_better: u64,
    pub lists_b_better: u64,
    pub lists_tied: u64,
}

/// Bytes each model's view of one item takes (its input and its ranked form).
const PER_MODEL_ITEM_BYTES: usize = 96;

/// Decodes, validates and evaluates a `POST /v1/compare` body. The body and its decoded form are
/// the caller's to reserve; the per-model lists and evaluations are reserved here.
pub fn compare(
    body: &[u8],
    limits: &Limits,
    parallel: &impl Parallel,
    reservation: &mut Reservation,
) -> Result<Comparison, Refusal> {
    let (request, options) = decode(body)?;
    let models = check_models(&request.models)?;
    if request.lists.is_empty() {
        return Err(empty_batch().into());
    }
    if request.lists.len() > limits.max_lists {
        return Err(too_many_lists(request.lists.len(), limits).into());
    }
    let items: usize = (request.lists.iter()).map(|list| list.items.as_ref().map_or(2, Vec::len)).sum();
    let per_model =
        items.saturating_mul(PER_MODEL_ITEM_BYTES).saturating_add(request.lists.len() * EVALUATED_LIST_BYTES);
    reservation.grow(per_model.saturating_mul(models.len()))?;

    // One ranked list per model per list, each validated with that model's rewards.
    let mut ranked: Vec<Vec<_>> = (0..models.len()).map(|_| Vec::with_capacity(request.lists.len())).collect();
    let mut lengths = CompareTotals::new(models.len());
    let mut evaluated_pairs = 0u64;
    for (index, list) in request.lists.into_iter().enumerate() {
        let prefix = format!("lists[{index}]");
        let lists = model_lists(list.0, models.len(), &options, limits, &prefix)?;
        evaluated_pairs = evaluated_pairs.saturating_add(lists.evaluated_pairs());
        if evaluated_pairs > limits.max_evaluated_pairs {
            return Err(too_many_evaluated_pairs("lists", limits, "compare fewer models or send fewer lists").into());
        }
        if let Some(counts) = length_counts(&lists.ranked, lists.lengths.as_deref(), options.math.beta) {
            lengths.add_lengths(&counts);
        }
        for (model, list) in lists.ranked.into_iter().enumerate() {
            ranked[model].push(list);
        }
    }

    // Every model's evaluation, list by list.
    let mut per_model: Vec<Vec<ListEvaluation>> = Vec::with_capacity(models.len());
    for (model, lists) in ranked.iter().enumerate() {
        let evaluations = evaluate(lists, &options.math, parallel)
            .into_iter()
            .enumerate()
            .map(|(index, evaluation)| {
                evaluation.map_err(|_| {
                    Error::at(
                        ErrorCode::NonFiniteResult,
                        format!("lists[{index}]"),
                        format!(
                            "the loss of this list under model `{}` overflows a 64-bit float; rescale the rewards or \
                             lower beta",
                            models[model]
                        ),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        per_model.push(evaluations);
    }
    // The sums, list by list in order: the same as a stream of these lists adds.
    let mut totals = CompareTotals { lengths: lengths.lengths, ..CompareTotals::new(models.len()) };
    let lists = per_model.first().map_or(0, Vec::len);
    let mut row = Vec::with_capacity(models.len());
    for index in 0..lists {
        row.clear();
        row.extend(per_model.iter().map(|evaluations| evaluations[index].clone()));
        totals.add_list(&row);
    }
    let mut comparison = Comparison::of(&models, &totals, options.math.normalization.name(), options.confidence);
    comparison.evaluated = (models.iter().zip(&totals.models).zip(&per_model))
        .map(|((model, t), evaluations)| (model.clone(), *t, evaluations.iter().map(|e| e.loss).collect()))
        .collect();
    Ok(comparison)
}

/// A comparison body with its options (see `parse_named`).
fn decode(body: &[u8]) -> Result<(CompareRequest<'_>, Options), Error> {
    match parse_named(body, |request: &CompareRequest<'_>| request.options.as_ref().map(|o| &o.0), options_of)? {
        NamedRead::Read(request, options) => Ok((request, options)),
        NamedRead::ReadAgain(options) => Ok((parse_seed(body, CompareSeed(&options))?, options)),
    }
}

fn options_of(wire: Option<&CompareOptions>) -> Result<Options, Error> {
    match wire {
        Some(CompareOptions(settings)) => settings.resolve(Options::for_comparison(), "options."),
        None => Ok(Options::for_comparison()),
    }
}

/// The models of a comparison: from 2 to 16, each a valid label, no name twice; `path` names the
/// list (`models`), its entries `path[j]`.
pub fn check_models(models: &[Text<'_>]) -> Result<Vec<String>, Error> {
    check_model_names(models, "models")
}

/// `rm-a,rm-b` (the compare stream's `models`, `prefeval compare --models`) → the checked names,
/// errors at `path[j]`.
pub fn parse_models(text: &str, path: &str) -> Result<Vec<String>, Error> {
    let names: Vec<Text<'_>> = text.split(',').map(|name| Text(name.into())).collect();
    check_model_names(&names, path)
}

pub fn check_model_names(models: &[Text<'_>], path: &str) -> Result<Vec<String>, Error> {
    if !(MIN_MODELS..=MAX_MODELS).contains(&models.len()) {
        return Err(Error::at(
            ErrorCode::InvalidValue,
            path,
            format!("{} models; compare from {MIN_MODELS} to {MAX_MODELS}", models.len()),
        ));
    }
    for (j, model) in models.iter().enumerate() {
        check_model(model, &format!("{path}[{j}]"))?;
        if models[..j].iter().any(|earlier| earlier.0 == model.0) {
            return Err(Error::at(
                ErrorCode::InvalidValue,
                format!("{path}[{j}]"),
                format!("model {:?} is named twice; models must be distinct", model.0),
            ));
        }
    }
    Ok(models.iter().map(|model| model.0.to_string()).collect())
}

impl Comparison {
    /// The figures of `totals`: per model its own, per pair of models the paired statistics with
    /// p-values, and Holm's adjustment over each family, all from the sums.
    pub fn of(models: &[String], totals: &CompareTotals, normalization: &str, confidence: f64) -> Comparison {
        let model_figures = (models.iter().zip(&totals.models).zip(&totals.lengths))
            .map(|((model, t), lengths)| model_figures(model, t, lengths, confidence))
            .collect();
        let mut comparisons: Vec<PairedComparison> = (totals.paired.iter().zip(model_pairs(models.len())))
            .map(|(sums, (a, b))| paired(&models[a], &models[b], sums, confidence))
            .collect();
        let holm = |p_values: Vec<Option<f64>>| -> Vec<Option<f64>> {
            let known: Vec<f64> = p_values.iter().flatten().copied().collect();
            if known.len() != p_values.len() {
                return vec![None; p_values.len()];
            }
            holm_adjust(&known).into_iter().map(Some).collect()
        };
        let loss_holm = holm(comparisons.iter().map(|c| c.loss_p_value).collect());
        let accuracy_holm = holm(comparisons.iter().map(|c| c.accuracy_p_value).collect());
        for ((comparison, loss), accuracy) in comparisons.iter_mut().zip(loss_holm).zip(accuracy_holm) {
            comparison.loss_p_value_holm = loss;
            comparison.accuracy_p_value_holm = accuracy;
        }
        let first = totals.models.first().copied().unwrap_or_default();
        Comparison {
            normalization: normalization.to_string(),
            confidence,
            lists: first.lists,
            pairs: first.pairs,
            models: model_figures,
            comparisons,
            evaluated: Vec::new(),
        }
    }
}

fn model_figures(model: &str, t: &Totals, lengths: &crate::math::LengthCounts, confidence: f64) -> ModelFigures {
    let listed = t.lists > 0;
    let (loss, accuracy) = (t.loss(), listed.then(|| t.accuracy().unwrap_or(0.0)));
    let (loss_se, accuracy_se) = (t.loss_standard_error(), t.accuracy_standard_error());
    ModelFigures {
        model: model.to_string(),
        loss,
        loss_se,
        loss_ci: loss.zip(loss_se).map(|(loss, se)| interval(loss, se, confidence)),
        accuracy,
        accuracy_se,
        accuracy_ci: accuracy.zip(accuracy_se).map(|(accuracy, se)| accuracy_interval(accuracy, se, confidence)),
        chance_loss: listed.then(|| t.chance_loss().unwrap_or(0.0)),
        kendall_tau: t.kendall_tau(),
        length: LengthJson::of(lengths),
    }
}

/// Models `a` and `b` on the same lists: differences are a − b.
fn paired(a: &str, b: &str, sums: &crate::math::PairedSums, confidence: f64) -> PairedComparison {
    let loss_difference = sums.loss_difference();
    let loss_se = sums.loss_difference_standard_error();
    let accuracy_difference = (sums.lists() > 0).then(|| sums.accuracy_difference().unwrap_or(0.0));
    let accuracy_se = sums.accuracy_difference_standard_error();
    let with_se = |estimate: Option<f64>, se: Option<f64>| estimate.zip(se);
    PairedComparison {
        a: a.to_string(),
        b: b.to_string(),
        loss_difference,
        loss_difference_se: loss_se,
        loss_difference_ci: with_se(loss_difference, loss_se).map(|(d, se)| interval(d, se, confidence)),
        loss_p_value: with_se(loss_difference, loss_se).map(|(d, se)| p_value(d, se)),
        loss_p_value_holm: None,
        accuracy_difference,
        accuracy_difference_se: accuracy_se,
        accuracy_difference_ci: with_se(accuracy_difference, accuracy_se).map(|(d, se)| interval(d, se, confidence)),
        accuracy_p_value: with_se(accuracy_difference, accuracy_se).map(|(d, se)| p_value(d, se)),
        accuracy_p_value_holm: None,
        lists_a_better: sums.a_better,
        lists_b_better: sums.b_better,
        lists_tied: sums.tied,
    }
}
