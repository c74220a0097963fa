//! `POST /v1/compare`: two to sixteen reward models scored on the same ranked lists. The pipeline
//! runs once per model over the same lists; then every pair of models is compared with paired,
//! list-clustered statistics (docs/design/math.md, "Uncertainty"): the loss difference as a mean of per-list
//! differences, the accuracy difference as a ratio of summed per-list differences, each with its
//! standard error, interval, two-sided p-value and Holm-adjusted p-value over the family.

use serde::Serialize;

use super::decode::{NamedRead, parse_named, parse_seed};
use super::format::{ItemInput, ListInput};
use super::named::CompareSeed;
use super::options::CompareOptions;
use super::validate::{check_model, empty_batch, rank, too_many_evaluated_pairs, too_many_lists};
use super::wire::{CompareRequest, Object, Text};
use super::{Options, Parallel, Refusal, evaluate};
use crate::error::{Error, ErrorCode};
use crate::limits::Limits;
use crate::math::{ListEvaluation, NeumaierSum, Totals};
use crate::memory::{EVALUATED_LIST_BYTES, Reservation};
use crate::stats::{
    RatioSums, accuracy_interval, holm_adjust, interval, mean_standard_error, p_value, ratio_standard_error,
};

/// Fewest and most models one comparison takes (api.md).
pub const MIN_MODELS: usize = 2;
pub const MAX_MODELS: usize = 16;

/// A comparison, evaluated: per model its figures, per pair of models the paired statistics.
#[derive(Debug, Serialize)]
pub struct Comparison {
    pub normalization: &'static str,
    pub confidence: f64,
    pub lists: u64,
    pub pairs: u64,
    pub models: Vec<ModelFigures>,
    pub comparisons: Vec<PairedComparison>,
    /// Per model, what its evaluation adds to the metrics (model, totals, list losses).
    #[serde(skip)]
    pub evaluated: Vec<(String, Totals, Vec<f64>)>,
}

#[derive(Debug, Serialize)]
pub struct ModelFigures {
    pub model: String,
    pub loss: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss_se: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss_ci: Option<(f64, f64)>,
    pub accuracy: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy_se: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy_ci: Option<(f64, f64)>,
    pub chance_loss: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kendall_tau: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct PairedComparison {
    pub a: String,
    pub b: String,
    pub loss_difference: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss_difference_se: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss_difference_ci: Option<(f64, f64)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss_p_value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss_p_value_holm: Option<f64>,
    pub accuracy_difference: f64,
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
    let n = |field: &'static str| options.naming.data_name(field);
    let models = check_models(&request.models)?;
    if request.lists.is_empty() {
        return Err(empty_batch().into());
    }
    if request.lists.len() > limits.max_lists {
        return Err(too_many_lists(request.lists.len(), limits).into());
    }
    let items: usize = request.lists.iter().map(|list| list.items.len()).sum();
    let per_model =
        items.saturating_mul(PER_MODEL_ITEM_BYTES).saturating_add(request.lists.len() * EVALUATED_LIST_BYTES);
    reservation.grow(per_model.saturating_mul(models.len()))?;

    // One ranked list per model per list, each validated with that model's rewards.
    let mut ranked: Vec<Vec<_>> = (0..models.len()).map(|_| Vec::with_capacity(request.lists.len())).collect();
    let mut evaluated_pairs = 0u64;
    for (index, Object(list)) in request.lists.iter().enumerate() {
        let prefix = format!("lists[{index}]");
        for (k, Object(item)) in list.items.iter().enumerate() {
            if item.rewards.len() != models.len() {
                return Err(Refusal::Invalid(Error::at(
                    ErrorCode::InvalidValue,
                    format!("{prefix}.{}[{k}].{}", n("items"), n("rewards")),
                    format!(
                        "{} rewards for {} models: give one reward per model, in the order of `models`",
                        item.rewards.len(),
                        models.len()
                    ),
                )));
            }
            if item.rank.is_some_and(|r| r.0 == 0) {
                return Err(Refusal::Invalid(Error::at(
                    ErrorCode::InvalidValue,
                    format!("{prefix}.{}[{k}].{}", n("items"), n("rank")),
                    "invalid value: integer `0`, expected an integer rank ≥ 1 (1 = best)",
                )));
            }
        }
        for (model, lists) in ranked.iter_mut().enumerate() {
            let items = list
                .items
                .iter()
                .map(|Object(item)| ItemInput {
                    id: item.id.clone(),
                    reward: item.rewards[model].0,
                    rank: item.rank.map(|r| r.0),
                    length: None,
                })
                .collect();
            let input = ListInput::compared(list.id.clone(), items, model);
            let list = rank(&input, &prefix, &options, limits)?;
            evaluated_pairs += list.pairs();
            lists.push(list);
        }
        if evaluated_pairs > limits.max_evaluated_pairs {
            return Err(too_many_evaluated_pairs("lists", limits, "compare fewer models or send fewer lists").into());
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
    Ok(figures(models, &per_model, &options))
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

fn check_models(models: &[Text<'_>]) -> Result<Vec<String>, Error> {
    if !(MIN_MODELS..=MAX_MODELS).contains(&models.len()) {
        return Err(Error::at(
            ErrorCode::InvalidValue,
            "models",
            format!("{} models; compare from {MIN_MODELS} to {MAX_MODELS}", models.len()),
        ));
    }
    for (j, model) in models.iter().enumerate() {
        check_model(model, &format!("models[{j}]"))?;
        if models[..j].iter().any(|earlier| earlier.0 == model.0) {
            return Err(Error::at(
                ErrorCode::InvalidValue,
                format!("models[{j}]"),
                format!("model {:?} is named twice; models must be distinct", model.0),
            ));
        }
    }
    Ok(models.iter().map(|model| model.0.to_string()).collect())
}

fn figures(models: Vec<String>, per_model: &[Vec<ListEvaluation>], options: &Options) -> Comparison {
    let confidence = options.confidence;
    let totals: Vec<Totals> = per_model
        .iter()
        .map(|evaluations| {
            let mut totals = Totals::default();
            evaluations.iter().for_each(|e| totals.add(e));
            totals
        })
        .collect();
    let first = &totals[0];
    let model_figures = models
        .iter()
        .zip(&totals)
        .map(|(model, t)| {
            let (loss, accuracy) = (t.loss().unwrap_or(0.0), t.accuracy().unwrap_or(0.0));
            let (loss_se, accuracy_se) = (t.loss_standard_error(), t.accuracy_standard_error());
            ModelFigures {
                model: model.clone(),
                loss,
                loss_se,
                loss_ci: loss_se.map(|se| interval(loss, se, confidence)),
                accuracy,
                accuracy_se,
                accuracy_ci: accuracy_se.map(|se| accuracy_interval(accuracy, se, confidence)),
                chance_loss: t.chance_loss().unwrap_or(0.0),
                kendall_tau: t.kendall_tau(),
            }
        })
        .collect();

    let mut comparisons = Vec::new();
    for a in 0..models.len() {
        for b in a + 1..models.len() {
            comparisons.push(paired(&models, a, b, per_model, confidence));
        }
    }
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
    let evaluated = models
        .iter()
        .zip(&totals)
        .zip(per_model)
        .map(|((model, t), evaluations)| (model.clone(), *t, evaluations.iter().map(|e| e.loss).collect()))
        .collect();
    Comparison {
        normalization: options.math.normalization.name(),
        confidence,
        lists: first.lists,
        pairs: first.pairs,
        models: model_figures,
        comparisons,
        evaluated,
    }
}

/// Models `a` and `b` on the same lists: differences are a − b.
fn paired(
    models: &[String],
    a: usize,
    b: usize,
    per_model: &[Vec<ListEvaluation>],
    confidence: f64,
) -> PairedComparison {
    let (mut loss_sum, mut loss_squares) = (NeumaierSum::default(), NeumaierSum::default());
    let mut accuracy = RatioSums::default();
    let (mut a_better, mut b_better, mut tied) = (0u64, 0u64, 0u64);
    for (list_a, list_b) in per_model[a].iter().zip(&per_model[b]) {
        let difference = list_a.loss - list_b.loss;
        loss_sum.add(difference);
        loss_squares.add(difference * difference);
        let agreeing = (list_a.agreeing_halves as f64 - list_b.agreeing_halves as f64) / 2.0;
        accuracy.add(agreeing, list_a.pairs_count as f64);
        match list_a.loss.total_cmp(&list_b.loss) {
            std::cmp::Ordering::Less => a_better += 1,
            std::cmp::Ordering::Greater => b_better += 1,
            std::cmp::Ordering::Equal => tied += 1,
        }
    }
    let m = per_model[a].len() as u64;
    let mut loss_difference = loss_sum.value() / m as f64;
    if !loss_difference.is_finite() {
        // Each difference is finite (losses are ≥ 0 and finite), so their mean is too; only the
        // sum overflowed: average the differences scaled down instead.
        let mut scaled = NeumaierSum::default();
        per_model[a].iter().zip(&per_model[b]).for_each(|(x, y)| scaled.add((x.loss - y.loss) / m as f64));
        loss_difference = scaled.value().clamp(-f64::MAX, f64::MAX);
    }
    let loss_se = mean_standard_error(loss_sum.value(), loss_squares.value(), m);
    let accuracy_difference = accuracy.ratio().unwrap_or(0.0);
    let accuracy_se = ratio_standard_error(&accuracy);
    PairedComparison {
        a: models[a].clone(),
        b: models[b].clone(),
        loss_difference,
        loss_difference_se: loss_se,
        loss_difference_ci: loss_se.map(|se| interval(loss_difference, se, confidence)),
        loss_p_value: loss_se.map(|se| p_value(loss_difference, se)),
        loss_p_value_holm: None,
        accuracy_difference,
        accuracy_difference_se: accuracy_se,
        accuracy_difference_ci: accuracy_se.map(|se| interval(accuracy_difference, se, confidence)),
        accuracy_p_value: accuracy_se.map(|se| p_value(accuracy_difference, se)),
        accuracy_p_value_holm: None,
        lists_a_better: a_better,
        lists_b_better: b_better,
        lists_tied: tied,
    }
}
