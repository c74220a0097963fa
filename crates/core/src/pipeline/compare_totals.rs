//! What a comparison's figures are computed from, and what its summary carries so that shards
//! merge exactly (docs/design/math.md, "Dataset-scale figures"): per model the evaluate totals
//! and the length counts, per pair of models the paired sums. `/v1/compare`, the compare stream,
//! `prefeval compare`, `prefeval diff` and `prefeval merge` all compute their figures from a
//! `CompareTotals`, so they are one code path; the JSON form (`CompareTotalsJson`) goes both ways
//! here, with the summary line (`CompareSummary`) and its reading back (`read_compare_summary`).

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use super::compare::Comparison;
use super::length_json::LengthTotalsJson;
use super::run::Run;
use super::summary::TotalsJson;
use super::{decode, totals_check};
use crate::error::{Error, ErrorCode};
use crate::math::{LengthCounts, ListEvaluation, NeumaierSum, PairedSums, Totals};
use crate::stats::RatioSums;

/// The pairs of models a comparison compares, in its order: (0,1), (0,2), …, (1,2), …
pub fn model_pairs(models: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..models).flat_map(move |a| (a + 1..models).map(move |b| (a, b)))
}

/// The sums of a comparison of some models over the lists seen so far.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CompareTotals {
    /// Per model, its evaluate totals.
    pub models: Vec<Totals>,
    /// Per pair of models, in `model_pairs` order.
    pub paired: Vec<PairedSums>,
    /// Per model, its length counts (all zero when no pair had two lengths).
    pub lengths: Vec<LengthCounts>,
}

impl CompareTotals {
    pub fn new(models: usize) -> CompareTotals {
        CompareTotals {
            models: vec![Totals::default(); models],
            paired: vec![PairedSums::default(); model_pairs(models).count()],
            lengths: vec![LengthCounts::default(); models],
        }
    }

    /// Adds one list: `per_model[j]` is its evaluation under model j.
    pub fn add_list(&mut self, per_model: &[ListEvaluation]) {
        self.models.iter_mut().zip(per_model).for_each(|(totals, evaluation)| totals.add(evaluation));
        for (sums, (a, b)) in self.paired.iter_mut().zip(model_pairs(per_model.len())) {
            sums.add(&per_model[a], &per_model[b]);
        }
    }

    /// Adds each model's length counts (of a list, or of a chunk of lists).
    pub fn add_lengths(&mut self, counts: &[LengthCounts]) {
        self.lengths.iter_mut().zip(counts).for_each(|(total, counts)| total.merge(counts));
    }

    /// Folds in the totals of another shard of the same models, unless a count would overflow or
    /// a sum leave the finite numbers: then the path of that field below `totals`, `self`
    /// unchanged.
    pub fn checked_merge(&mut self, other: &CompareTotals) -> Result<(), String> {
        let mut merged = self.clone();
        for (j, (mine, theirs)) in merged.models.iter_mut().zip(&other.models).enumerate() {
            mine.checked_merge(theirs).map_err(|field| {
                // The one count kept in other units than its JSON field.
                let field = if field == "agreeing_halves" { "agreeing" } else { field };
                format!("models[{j}].{field}")
            })?;
        }
        for (j, (mine, theirs)) in merged.lengths.iter_mut().zip(&other.lengths).enumerate() {
            mine.checked_merge(theirs).map_err(|field| format!("models[{j}].length.{field}"))?;
        }
        for (r, (mine, theirs)) in merged.paired.iter_mut().zip(&other.paired).enumerate() {
            mine.checked_merge(theirs).map_err(|field| format!("comparisons[{r}].{field}"))?;
        }
        *self = merged;
        Ok(())
    }
}

/// `totals` of a compare summary: `models[j]` the evaluate totals of model j (with `length`, its
/// length counts, when any pair had two lengths), `comparisons[r]` the paired sums of the r-th
/// pair of models.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompareTotalsJson {
    pub models: Vec<TotalsJson>,
    pub comparisons: Vec<ComparisonTotalsJson>,
}

/// The sums of one pair of models (differences a − b): Σd, Σd² of the per-list loss differences,
/// Σe, Σe², Σe·p of the per-list differences of agreeing pairs with Σp, Σp² of the implied pairs,
/// and who won each list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComparisonTotalsJson {
    pub a: String,
    pub b: String,
    pub lists: u64,
    /// Σd; absent only when it overflows f64 (then `loss_difference_sum_scaled` holds it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_difference_sum: Option<f64>,
    /// Σd × 2⁻⁶⁴, present when `loss_difference_sum` overflows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_difference_sum_scaled: Option<f64>,
    /// Σd²; absent when it overflows f64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_difference_squares: Option<f64>,
    pub accuracy_difference_sum: f64,
    pub accuracy_difference_squares: f64,
    pub accuracy_difference_pairs: f64,
    pub pairs: u64,
    pub pairs_squares: f64,
    pub lists_a_better: u64,
    pub lists_b_better: u64,
    pub lists_tied: u64,
}

const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;

impl CompareTotalsJson {
    pub fn of(totals: &CompareTotals, models: &[String]) -> CompareTotalsJson {
        let any_length = totals.lengths.iter().any(|counts| counts.pairs > 0);
        let model_totals = (totals.models.iter().zip(&totals.lengths))
            .map(|(model, lengths)| TotalsJson {
                length: any_length.then(|| LengthTotalsJson::from(lengths)),
                ..TotalsJson::from(model)
            })
            .collect();
        let finite = |sum: &NeumaierSum| Some(sum.value()).filter(|v| v.is_finite());
        let comparisons = (totals.paired.iter().zip(model_pairs(models.len())))
            .map(|(sums, (a, b))| {
                let loss_difference_sum = finite(&sums.loss_difference_sum);
                ComparisonTotalsJson {
                    a: models[a].clone(),
                    b: models[b].clone(),
                    lists: sums.lists(),
                    loss_difference_sum,
                    loss_difference_sum_scaled: loss_difference_sum
                        .is_none()
                        .then(|| sums.loss_difference_sum_scaled.value()),
                    loss_difference_squares: finite(&sums.loss_difference_squares),
                    accuracy_difference_sum: sums.accuracy.numerator,
                    accuracy_difference_squares: sums.accuracy.numerator_squares,
                    accuracy_difference_pairs: sums.accuracy.products,
                    // Σp is a sum of counts, exact in f64 far past any dataset.
                    pairs: sums.accuracy.denominator as u64,
                    pairs_squares: sums.accuracy.denominator_squares,
                    lists_a_better: sums.a_better,
                    lists_b_better: sums.b_better,
                    lists_tied: sums.tied,
                }
            })
            .collect();
        CompareTotalsJson { models: model_totals, comparisons }
    }

    /// The totals, checked: every model's evaluate totals (`totals_check`), its length counts, and
    /// each comparison's sums against the models' (the error's path below `prefix`).
    pub fn totals(&self, models: &[String], prefix: &str) -> Result<CompareTotals, Error> {
        let invalid =
            |field: String, message: String| Error::at(ErrorCode::InvalidValue, format!("{prefix}.{field}"), message);
        if self.models.len() != models.len() {
            return Err(invalid(
                "models".into(),
                format!("{} model totals for {} models in run.models", self.models.len(), models.len()),
            ));
        }
        let expected_pairs: Vec<(usize, usize)> = model_pairs(models.len()).collect();
        if self.comparisons.len() != expected_pairs.len() {
            return Err(invalid(
                "comparisons".into(),
                format!(
                    "{} comparisons for {} models: expected {}",
                    self.comparisons.len(),
                    models.len(),
                    expected_pairs.len()
                ),
            ));
        }
        let mut totals = CompareTotals::new(models.len());
        for (j, model) in self.models.iter().enumerate() {
            totals_check::check(model).map_err(|violation| {
                let field = violation.field.strip_prefix("totals.").unwrap_or(&violation.field);
                invalid(format!("models[{j}].{field}"), violation.message)
            })?;
            totals.models[j] = Totals::from(model);
            if let Some(length) = &model.length {
                totals.lengths[j] = length
                    .counts()
                    .map_err(|field| invalid(format!("models[{j}].length.{field}"), "no count of pairs".into()))?;
            }
        }
        let first = &totals.models[0];
        for (r, (json, &(a, b))) in self.comparisons.iter().zip(&expected_pairs).enumerate() {
            let at = |field: &str| format!("comparisons[{r}].{field}");
            if json.a != models[a] || json.b != models[b] {
                return Err(invalid(
                    at("a"),
                    format!(
                        "compares `{}` with `{}`; expected `{}` with `{}` (run.models order)",
                        json.a, json.b, models[a], models[b]
                    ),
                ));
            }
            if json.lists != first.lists || json.pairs != first.pairs {
                return Err(invalid(at("lists"), "its lists and pairs are not those of the models' totals".into()));
            }
            let won = json.lists_a_better.checked_add(json.lists_b_better).and_then(|n| n.checked_add(json.lists_tied));
            if won != Some(json.lists) {
                return Err(invalid(at("lists_tied"), "lists_a_better + lists_b_better + lists_tied ≠ lists".into()));
            }
            let sums = [
                ("accuracy_difference_sum", json.accuracy_difference_sum),
                ("accuracy_difference_squares", json.accuracy_difference_squares),
                ("accuracy_difference_pairs", json.accuracy_difference_pairs),
                ("pairs_squares", json.pairs_squares),
            ];
            if let Some((field, _)) = sums.iter().find(|(_, sum)| !sum.is_finite()) {
                return Err(invalid(at(field), "must be a finite number".into()));
            }
            if json.accuracy_difference_squares < 0.0 || json.pairs_squares < 0.0 {
                return Err(invalid(at("pairs_squares"), "a sum of squares is never negative".into()));
            }
            let loss_sum = match (json.loss_difference_sum, json.loss_difference_sum_scaled) {
                (Some(sum), None) if sum.is_finite() => sum,
                (None, Some(scaled)) if scaled.is_finite() => scaled * TWO_POW_64,
                _ => {
                    return Err(invalid(
                        at("loss_difference_sum"),
                        "give the finite loss_difference_sum, or loss_difference_sum_scaled when it overflows".into(),
                    ));
                }
            };
            let sum_of = |value: f64| {
                let mut sum = NeumaierSum::default();
                sum.add(value);
                sum
            };
            totals.paired[r] = PairedSums {
                loss_difference_sum: sum_of(loss_sum),
                loss_difference_squares: sum_of(json.loss_difference_squares.unwrap_or(f64::INFINITY)),
                loss_difference_sum_scaled: sum_of(json.loss_difference_sum_scaled.unwrap_or(loss_sum / TWO_POW_64)),
                accuracy: RatioSums {
                    lists: json.lists,
                    numerator: json.accuracy_difference_sum,
                    denominator: json.pairs as f64,
                    numerator_squares: json.accuracy_difference_squares,
                    products: json.accuracy_difference_pairs,
                    denominator_squares: json.pairs_squares,
                },
                a_better: json.lists_a_better,
                b_better: json.lists_b_better,
                tied: json.lists_tied,
            };
        }
        Ok(totals)
    }
}

/// The last line of a compare stream or `prefeval compare`, and what `prefeval merge` and
/// `prefeval diff` print: `/v1/compare`'s answer, then `lines_failed`, `totals` and `run` (whose
/// `models` names the models, in order).
#[derive(Debug, Serialize)]
pub struct CompareSummary {
    #[serde(flatten)]
    pub comparison: Comparison,
    pub lines_failed: u64,
    pub totals: CompareTotalsJson,
    pub run: Run,
}

impl CompareSummary {
    /// The summary of `totals` for the models of `run.models`, with figures at `run.confidence`.
    pub fn new(totals: &CompareTotals, lines_failed: u64, run: Run) -> CompareSummary {
        let models = run.models.clone().unwrap_or_default();
        CompareSummary {
            comparison: Comparison::of(&models, totals, &run.normalization, run.confidence),
            lines_failed,
            totals: CompareTotalsJson::of(totals, &models),
            run,
        }
    }
}

pub fn compare_summary_line(summary: &CompareSummary) -> Vec<u8> {
    #[derive(Serialize)]
    struct Line<'s> {
        summary: &'s CompareSummary,
    }
    // Finite numbers, strings and integers only: serializing cannot fail.
    let mut out = serde_json::to_vec(&Line { summary }).unwrap_or_default();
    out.push(b'\n');
    out
}

/// What `prefeval merge` reads of a compare summary line (the figures it recomputes).
#[derive(Deserialize)]
struct CompareSummaryLine {
    summary: CompareSummaryInput,
}

#[derive(Deserialize)]
pub struct CompareSummaryInput {
    pub normalization: String,
    pub lines_failed: u64,
    pub totals: CompareTotalsJson,
    pub run: Run,
}

/// A compare summary read back, its run and totals checked: the totals of the models of
/// `run.models` (named on error by their path, e.g. `summary.totals.comparisons[0].lists`).
pub fn read_compare_summary(line: &[u8]) -> Result<(CompareSummaryInput, CompareTotals), Error> {
    let summary = decode::parse::<CompareSummaryLine>(line)?.summary;
    summary.run.check("summary.run")?;
    let Some(models) = &summary.run.models else {
        return Err(Error::at(ErrorCode::MissingField, "summary.run.models", "missing field `models`"));
    };
    if summary.normalization != summary.run.normalization {
        return Err(Error::at(
            ErrorCode::InvalidValue,
            "summary.normalization",
            format!(
                "`{}` differs from summary.run.normalization `{}`: the summary was edited",
                summary.normalization, summary.run.normalization
            ),
        ));
    }
    let totals = summary.totals.totals(models, "summary.totals")?;
    Ok((summary, totals))
}

/// Whether a summary line is a comparison's (its `summary` has `comparisons`) rather than an
/// evaluation's; `None` when it is no summary line at all.
pub fn is_compare_summary(line: &[u8]) -> Option<bool> {
    #[derive(Deserialize)]
    struct Line {
        summary: Kind,
    }
    #[derive(Deserialize)]
    struct Kind {
        #[serde(default)]
        comparisons: Option<IgnoredAny>,
    }
    serde_json::from_slice::<Line>(line).ok().map(|line| line.summary.comparisons.is_some())
}
