//! The lists of a comparison: one list (a `POST /v1/compare` list or a line of the compare stream)
//! validated into one ranked list per model (`model_lists`), and a chunk of compare-stream lines
//! evaluated into its result lines and what its summary adds (`compare_chunk`, the comparison's
//! `ndjson::evaluate_chunk`). The stream and `prefeval compare` run every chunk through it, so
//! their answers are the same bytes for the same input.

use serde::Serialize;

use super::decode::{parse, parse_seed};
use super::encode::OutputBlocks;
use super::format::{ItemInput, ListInput, Schema, join};
use super::named::CompareListSeed;
use super::ndjson::{Chunk, ChunkOutcome, write_failed_line, written_answer};
use super::options::Results;
use super::validate::{rank, too_many_evaluated_pairs};
use super::wire::{CompareList, Id, Number, Object};
use super::{Options, Parallel, evaluate, evaluation_bytes};
use crate::error::{Error, ErrorCode};
use crate::limits::Limits;
use crate::math::{LengthCounts, ListEvaluation, RankedList};
use crate::memory::{BudgetedBuffer, MemoryBudget, OverBudget, Reservation, decoded_bound};

/// One list of a comparison, validated: its id, one ranked list per model (in `models` order) and
/// its items' lengths in submitted order, when any item has one.
pub struct ModelLists<'a> {
    pub id: Option<Id<'a>>,
    pub ranked: Vec<RankedList>,
    pub lengths: Option<Vec<Option<f64>>>,
}

impl ModelLists<'_> {
    /// The implied pairs every model evaluates, together.
    pub fn evaluated_pairs(&self) -> u64 {
        self.ranked.iter().map(RankedList::pairs).sum()
    }
}

/// Each model's length counts of one list (`ranked`: its model lists), none without lengths.
pub fn length_counts(ranked: &[RankedList], lengths: Option<&[Option<f64>]>, beta: f64) -> Option<Vec<LengthCounts>> {
    let lengths = lengths?;
    let counts = ranked.iter().map(|list| {
        let mut counts = LengthCounts::default();
        counts.add_list(list, lengths, beta);
        counts
    });
    Some(counts.collect())
}

/// Validates one list of a comparison of `models` models in the options' format (`native`:
/// `items[].rewards`; `pairs`: `chosen_rewards`, `rejected_rewards`); `prefix` is the list's path
/// (`lists[3]`, or empty for a stream line). Every error names its field as the data does.
pub fn model_lists<'a>(
    list: CompareList<'a>,
    models: usize,
    options: &Options,
    limits: &Limits,
    prefix: &str,
) -> Result<ModelLists<'a>, Error> {
    let naming = &options.naming;
    let n = |field: &'static str| naming.data_name(field);
    let at = |field: &str| join(prefix, field);
    let schema = options.schema();
    let unknown = |field: &str| {
        Error::at(
            ErrorCode::UnknownField,
            at(field),
            format!("unknown field `{field}` for {}; it reads {}", schema.description(), fields_of(schema, options)),
        )
    };
    let missing = |field: &str| Error::at(ErrorCode::MissingField, at(field), format!("missing field `{field}`"));
    let rewards_count = |given: usize, path: String| {
        Error::at(
            ErrorCode::InvalidValue,
            at(&path),
            format!("{given} rewards for {models} models: give one reward per model, in the order of `models`"),
        )
    };
    let CompareList { id, items, chosen_rewards, rejected_rewards, chosen_length, rejected_length } = list;
    let mut inputs: Vec<ListInput<'a>> = Vec::with_capacity(models);
    if schema == Schema::ComparePairs {
        if items.is_some() && !naming.ignores_unknown() {
            return Err(unknown(n("items")));
        }
        let chosen = chosen_rewards.ok_or_else(|| missing(n("chosen_rewards")))?;
        let rejected = rejected_rewards.ok_or_else(|| missing(n("rejected_rewards")))?;
        for (rewards, field) in [(&chosen, "chosen_rewards"), (&rejected, "rejected_rewards")] {
            if rewards.len() != models {
                return Err(rewards_count(rewards.len(), n(field).to_string()));
            }
        }
        let chosen_length = checked_length(chosen_length, || at(n("chosen_length")))?;
        let rejected_length = checked_length(rejected_length, || at(n("rejected_length")))?;
        for model in 0..models {
            let item = |name: &'static str, reward: &Number, length| ItemInput {
                id: Some(Id::text(name)),
                reward: reward.0,
                rank: None,
                length,
            };
            let items = vec![
                item("chosen", &chosen[model], chosen_length),
                item("rejected", &rejected[model], rejected_length),
            ];
            inputs.push(ListInput::compared_pair(id.clone(), items, model));
        }
    } else {
        let pairs_fields = [
            ("chosen_rewards", chosen_rewards.is_some()),
            ("rejected_rewards", rejected_rewards.is_some()),
            ("chosen_length", chosen_length.is_some()),
            ("rejected_length", rejected_length.is_some()),
        ];
        if let Some((field, _)) = pairs_fields.iter().find(|(_, present)| *present)
            && !naming.ignores_unknown()
        {
            return Err(unknown(n(field)));
        }
        let items = items.ok_or_else(|| missing(n("items")))?;
        let mut lengths = Vec::with_capacity(items.len());
        for (k, Object(item)) in items.iter().enumerate() {
            if item.rewards.len() != models {
                return Err(rewards_count(item.rewards.len(), format!("{}[{k}].{}", n("items"), n("rewards"))));
            }
            if item.rank.is_some_and(|r| r.0 == 0) {
                return Err(Error::at(
                    ErrorCode::InvalidValue,
                    at(&format!("{}[{k}].{}", n("items"), n("rank"))),
                    "invalid value: integer `0`, expected an integer rank ≥ 1 (1 = best)",
                ));
            }
            lengths.push(checked_length(item.length, || at(&format!("{}[{k}].{}", n("items"), n("length"))))?);
        }
        for model in 0..models {
            let items = (items.iter().zip(&lengths))
                .map(|(Object(item), &length)| ItemInput {
                    id: item.id.clone(),
                    reward: item.rewards[model].0,
                    rank: item.rank.map(|r| r.0),
                    length,
                })
                .collect();
            inputs.push(ListInput::compared(id.clone(), items, model));
        }
    }
    let lengths = inputs.first().and_then(ListInput::lengths);
    let ranked = inputs.iter().map(|input| rank(input, prefix, options, limits)).collect::<Result<Vec<_>, _>>()?;
    Ok(ModelLists { id, ranked, lengths })
}

/// The fields a comparison's format reads, as the data names them, for messages.
fn fields_of(schema: Schema, options: &Options) -> String {
    let names: Vec<String> =
        schema.fields().iter().map(|field| format!("`{}`", options.naming.data_name(field))).collect();
    names.join(", ")
}

/// An item's length: a finite number ≥ 0 (characters, tokens: the user's own measure).
fn checked_length(length: Option<Number>, path: impl FnOnce() -> String) -> Result<Option<f64>, Error> {
    match length {
        Some(Number(value)) if !(value.is_finite() && value >= 0.0) => Err(Error::at(
            ErrorCode::InvalidValue,
            path(),
            format!("a length must be a finite number ≥ 0, got {value}"),
        )),
        length => Ok(length.map(|Number(value)| value)),
    }
}

/// One line of the compare stream, decoded in the options' naming and validated.
pub fn compare_line<'a>(
    json: &'a [u8],
    models: usize,
    options: &Options,
    limits: &Limits,
) -> Result<ModelLists<'a>, Error> {
    let list = if options.naming.renames() { parse_seed(json, CompareListSeed(options))? } else { parse(json)? };
    let lists = model_lists(list, models, options, limits, "")?;
    if lists.evaluated_pairs() > limits.max_evaluated_pairs {
        let field = match options.schema() {
            Schema::ComparePairs => "",
            _ => options.naming.data_name("items"),
        };
        return Err(too_many_evaluated_pairs(field, limits, "send a shorter list or compare fewer models"));
    }
    Ok(lists)
}

/// What one chunk of compare-stream lines gave: its output lines, per evaluated line every
/// model's evaluation (without pairs), the chunk's length counts per model, and its failures.
#[derive(Debug, Default)]
pub struct CompareOutcome {
    pub output: Vec<u8>,
    /// Per evaluated line, in order: one evaluation per model. A summary adds them one by one, so
    /// it is the same to the last bit however the lines were chunked.
    pub evaluations: Vec<Vec<ListEvaluation>>,
    /// Per model; empty when no line of the chunk had lengths.
    pub lengths: Vec<LengthCounts>,
    pub lines_failed: u64,
    pub first_failed_line: Option<u64>,
}

/// One result line: `{"line", "id"?, "models": [{"loss", "accuracy", "kendall_tau"?}]}`.
#[derive(Serialize)]
struct CompareLineJson<'r> {
    line: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'r Id<'r>>,
    models: Vec<ModelLineJson>,
}

#[derive(Serialize)]
struct ModelLineJson {
    loss: f64,
    accuracy: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    kendall_tau: Option<f64>,
}

/// Bytes of one result line beside its id: the line number and three numbers per model.
const LINE_BYTES: usize = 48;
const MODEL_LINE_BYTES: usize = 96;

/// Evaluates every line of `chunk` for `models` models, as `ndjson::evaluate_chunk` does for one:
/// one output line per non-blank input line, in order; memory for the decoded lines, their
/// evaluations and the output reserved first, in one reservation that starts from `held`. A
/// one-line chunk that can never fit answers its error line; a longer one is refused
/// (`NeverFits`) for the caller to evaluate line by line.
pub fn compare_chunk(
    chunk: &Chunk,
    models: usize,
    options: &Options,
    limits: &Limits,
    parallel: &impl Parallel,
    held: Reservation,
) -> Result<(CompareOutcome, Reservation), OverBudget> {
    let budget = held.budget();
    match compare_lines(chunk, models, options, limits, parallel, held) {
        Err(OverBudget::NeverFits { limit, .. }) if chunk.lines() <= 1 => Ok(never_fits(chunk, limit, &budget)),
        evaluated => evaluated,
    }
}

/// The answer of a chunk given up as a whole: `error` for each of its lines that is not blank.
pub fn refuse_compare_chunk(chunk: &Chunk, error: &Error) -> CompareOutcome {
    CompareOutcome::failures_of(super::ndjson::refuse_chunk(chunk, error))
}

/// The answer to a one-line chunk whose line needs more than the whole budget: its error line.
fn never_fits(chunk: &Chunk, limit: usize, budget: &MemoryBudget) -> (CompareOutcome, Reservation) {
    let (failed, reservation) = super::ndjson::never_fits(chunk, limit, budget);
    (CompareOutcome::failures_of(failed), reservation)
}

impl CompareOutcome {
    /// A chunk whose every line failed, as the evaluate chunk writes it: its error lines alone.
    fn failures_of(failed: ChunkOutcome) -> CompareOutcome {
        CompareOutcome {
            output: failed.output,
            lines_failed: failed.lines_failed,
            first_failed_line: failed.first_failed_line,
            ..CompareOutcome::default()
        }
    }
}

fn compare_lines(
    chunk: &Chunk,
    models: usize,
    options: &Options,
    limits: &Limits,
    parallel: &impl Parallel,
    mut work: Reservation,
) -> Result<(CompareOutcome, Reservation), OverBudget> {
    let decoded = decoded_bound(&chunk.bytes);
    let limit = work.budget().limit();
    // Each model holds its own ranked copy of every list: the decoded form once per model.
    let per_models = decoded.saturating_mul(models.max(1));
    let needed = chunk.bytes.len().saturating_add(per_models);
    if needed > limit {
        return Err(OverBudget::NeverFits { needed, limit });
    }
    work.at_least(per_models)?;
    let mut lists: Vec<ModelLists<'_>> = Vec::new();
    // Per line: its number, and the index of its lists in `lists` or its error.
    let mut slots: Vec<(u64, Result<usize, Error>)> = Vec::new();
    let mut skipped = chunk.skipped.iter().peekable();
    let body = chunk.bytes.strip_suffix(b"\n").unwrap_or(&chunk.bytes);
    for (offset, raw) in body.split(|&b| b == b'\n').enumerate() {
        let line = chunk.first_line + offset as u64;
        if let Some((_, error)) = skipped.next_if(|(skipped, _)| *skipped == line) {
            slots.push((line, Err(error.clone())));
            continue;
        }
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match compare_line(raw, models, options, limits) {
            Ok(list) => {
                slots.push((line, Ok(lists.len())));
                lists.push(list);
            }
            Err(error) => slots.push((line, Err(error))),
        }
    }
    // Every model's lists, line-major (line i, model j at i·models + j), evaluated at once.
    let ranked: Vec<RankedList> = lists.iter_mut().flat_map(|list| std::mem::take(&mut list.ranked)).collect();
    let answer_bytes = slots.len().saturating_mul(LINE_BYTES + models * MODEL_LINE_BYTES);
    let evaluation = evaluation_bytes(&ranked, &options.math);
    work.at_least(per_models.saturating_add(evaluation).saturating_add(answer_bytes))?;
    let evaluations = evaluate(&ranked, &options.math, parallel);

    let mut outcome = CompareOutcome::default();
    let mut out = BudgetedBuffer::within(answer_bytes, &mut work);
    let mut blocks = OutputBlocks::new(&mut out);
    let mut written = Ok(());
    for (line, slot) in &slots {
        let evaluated = slot.as_ref().map(|&index| (index, &evaluations[index * models..(index + 1) * models]));
        written = match evaluated {
            Ok((index, per_model)) if per_model.iter().all(Result::is_ok) => {
                let per_model: Vec<ListEvaluation> = (per_model.iter().flatten())
                    .map(|evaluation| ListEvaluation { pairs: None, gradients: None, ..evaluation.clone() })
                    .collect();
                let list = &lists[index];
                let model_lists = &ranked[index * models..(index + 1) * models];
                if let Some(counts) = length_counts(model_lists, list.lengths.as_deref(), options.math.beta) {
                    if outcome.lengths.is_empty() {
                        outcome.lengths = vec![LengthCounts::default(); models];
                    }
                    outcome.lengths.iter_mut().zip(&counts).for_each(|(total, list)| total.merge(list));
                }
                let json = CompareLineJson {
                    line: *line,
                    id: list.id.as_ref(),
                    models: (per_model.iter())
                        .map(|e| ModelLineJson { loss: e.loss, accuracy: e.accuracy, kendall_tau: e.kendall_tau })
                        .collect(),
                };
                outcome.evaluations.push(per_model);
                match options.results {
                    Results::All => serde_json::to_writer(&mut blocks, &json)
                        .map_err(std::io::Error::other)
                        .and_then(|()| std::io::Write::write_all(&mut blocks, b"\n")),
                    Results::Errors => Ok(()),
                }
            }
            failed => {
                let failures = (&mut outcome.lines_failed, &mut outcome.first_failed_line);
                write_failed_line(&mut blocks, *line, failed.err(), failures)
            }
        };
        if written.is_err() {
            break;
        }
    }
    let written = written.and_then(|()| blocks.finish().map(drop));
    outcome.output = written_answer(written, out)?;
    drop((evaluations, ranked, slots, lists));
    // From here only the answer's own bytes are held.
    work.shrink_to(outcome.output.capacity());
    Ok((outcome, work))
}
