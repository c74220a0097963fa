//! The answer of `POST /v1/evaluate`: its fields in the contract's order (`loss`, `normalization`,
//! `summary`, `lists`, then `calibration`, `disagreements` and `groups` when asked for), the
//! batch's own objects (summary with its macro accuracy and length bias, groups, calibration bins,
//! disagreements),
//! and the estimate that sizes its buffer.
//!
//! It must not write a list or its pairs itself (`list.rs` does, for the batch and the stream
//! alike) nor define the summary's figures or totals (`pipeline::summary` does, which the summary
//! line shares).

use std::io::{self, Write};

use serde::ser::{SerializeSeq, SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};

use super::list::{ListJson, write_list};
use super::{OutputBlocks, write_f64, write_json};
use crate::math::{Calibration, LengthCounts, ListEvaluation, RankedList, Totals};
use crate::pipeline::Options;
use crate::pipeline::figures::{Disagreement, macro_accuracy};
use crate::pipeline::format::ListInput;
use crate::pipeline::length_json::{LengthJson, LengthTotalsJson};
use crate::pipeline::options::Results;
use crate::pipeline::run::Run;
use crate::pipeline::summary::{Figures, TotalsJson};
use crate::pipeline::wire::Id;

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

/// What the answer for these lists will take, known before they are evaluated, so that its memory
/// is reserved with the evaluation's, at once, and a refusal wastes no evaluation.
pub fn answer_size_estimate(ranked: &[RankedList], options: &Options) -> usize {
    // Only the lines a stream writes: with `results=errors`, no list result (nor its pairs).
    let written = options.math.include_pairs && options.results == Results::All;
    let returned_pairs: u64 = if written { ranked.iter().map(RankedList::pairs).sum() } else { 0 };
    let per_pair = PAIR_JSON_BYTES + if options.include_pair_ids { PAIR_IDS_JSON_BYTES } else { 0 };
    usize::try_from(returned_pairs)
        .unwrap_or(usize::MAX)
        .saturating_mul(per_pair)
        .saturating_add(ranked.len().saturating_mul(LIST_JSON_BYTES))
        .saturating_add(1024)
}

/// Bytes the two ids add to a returned pair, for short ids (longer ones grow the buffer).
const PAIR_IDS_JSON_BYTES: usize = 64;

/// The answer of `POST /v1/evaluate`; `run` ends its summary.
pub fn write_batch(
    out: &mut impl Write,
    options: &Options,
    inputs: &[ListInput<'_>],
    evaluations: &[ListEvaluation],
    totals: &Totals,
    extras: &BatchExtras<'_>,
    run: &Run,
) -> Result<(), serde_json::Error> {
    let mut blocks = OutputBlocks::new(out);
    write_batch_fields(&mut blocks, options, inputs, evaluations, totals, extras, run)
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
    run: &Run,
) -> io::Result<()> {
    let (summary, groups) = summary_and_groups(options, totals, extras, run);
    w.write_all(b"{")?;
    if let Some(loss) = totals.loss() {
        w.write_all(b"\"loss\":")?;
        write_f64(w, loss)?;
        w.write_all(b",")?;
    }
    w.write_all(b"\"normalization\":")?;
    write_json(w, options.math.normalization.name())?;
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
fn summary_and_groups<'r, 'a>(
    options: &Options,
    totals: &Totals,
    extras: &BatchExtras<'r>,
    run: &'a Run,
) -> (BatchSummary<'a>, Option<Vec<GroupJson<'r>>>) {
    let groups = extras.groups.map(|groups| {
        groups.iter().map(|(group, totals)| GroupJson { group, figures: GroupFigures::new(totals) }).collect::<Vec<_>>()
    });
    let macro_accuracy = extras.groups.and_then(|groups| macro_accuracy(groups.iter().map(|(_, totals)| totals)));
    let length = extras.length.and_then(LengthJson::of);
    let summary = BatchSummary {
        figures: Figures::new(totals, options.confidence),
        macro_accuracy,
        totals: TotalsJson {
            // The counts beside the figures they give, so that the figures can be recomputed.
            length: extras.length.filter(|counts| counts.pairs > 0).map(LengthTotalsJson::from),
            ..TotalsJson::from(totals)
        },
        length,
        run,
    };
    (summary, groups)
}

/// What a batch answer carries besides its lists, when asked for.
#[derive(Default)]
pub struct BatchExtras<'r> {
    pub calibration: Option<&'r Calibration>,
    pub disagreements: Option<&'r [Disagreement]>,
    pub groups: Option<&'r [(String, Totals)]>,
    /// Length bias: written when one of its pairs had both lengths.
    pub length: Option<&'r LengthCounts>,
}

#[derive(Serialize)]
struct BatchSummary<'a> {
    #[serde(flatten)]
    figures: Figures,
    #[serde(skip_serializing_if = "Option::is_none")]
    macro_accuracy: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    length: Option<LengthJson>,
    totals: TotalsJson,
    run: &'a Run,
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

/// `calibration` of a batch answer and of a summary: ECE, Brier and every bin (read back by the
/// report).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CalibrationJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ece: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brier: Option<f64>,
    pub bins: Vec<CalibrationBinJson>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBinJson {
    pub lower: f64,
    pub upper: f64,
    pub count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean_predicted: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed: Option<f64>,
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
            let id_of = |index: u32| input.and_then(|i| i.items.get(index as usize)).and_then(|item| item.id.as_ref());
            seq.serialize_element(&DisagreementJson {
                list: found.list,
                list_id: input.and_then(|i| i.id.as_ref()),
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
    list_id: Option<&'r Id<'r>>,
    preferred: u32,
    other: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    preferred_id: Option<&'r Id<'r>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    other_id: Option<&'r Id<'r>>,
    probability: f64,
}

#[cfg(test)]
mod tests {
    use super::super::reference::{ListReference, for_each_random_batch};
    use super::*;
    use crate::pipeline::figures;

    /// A batch answer as serde's derive writes it.
    #[derive(Serialize)]
    struct BatchReference<'r> {
        #[serde(skip_serializing_if = "Option::is_none")]
        loss: Option<f64>,
        normalization: &'static str,
        summary: BatchSummary<'r>,
        lists: Vec<ListReference<'r>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        calibration: Option<CalibrationJson>,
        #[serde(skip_serializing_if = "Option::is_none")]
        disagreements: Option<DisagreementsJson<'r>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        groups: Option<Vec<GroupJson<'r>>>,
    }

    #[test]
    fn answers_are_the_bytes_serde_json_writes_for_them() {
        for_each_random_batch(|batch, evaluations| {
            let options = &batch.options;
            let mut totals = Totals::default();
            evaluations.iter().for_each(|evaluation| totals.add(evaluation));
            let calibration =
                options.calibration_bins.map(|bins| figures::calibration(&batch.ranked, options.math.beta, bins));
            let disagreements =
                options.top_disagreements.map(|k| figures::disagreements(&batch.ranked, options.math.beta, k));
            let groups = figures::groups(&batch.inputs, evaluations);
            let length = figures::length(&batch.inputs, &batch.ranked, options.math.beta);
            assert!(length.pairs > 0, "the data exercise length bias");
            let extras = BatchExtras {
                calibration: calibration.as_ref(),
                disagreements: disagreements.as_deref(),
                groups: groups.as_deref(),
                length: Some(&length),
            };

            let run = Run::new(options, Some("rm \"q\""));
            let mut mine = Vec::new();
            write_batch(&mut mine, options, &batch.inputs, evaluations, &totals, &extras, &run).unwrap();
            let (summary, groups) = summary_and_groups(options, &totals, &extras, &run);
            let reference = BatchReference {
                loss: totals.loss(),
                normalization: options.math.normalization.name(),
                summary,
                lists: batch
                    .inputs
                    .iter()
                    .zip(evaluations)
                    .map(|(input, e)| ListReference::new(None, input, e, options.include_pair_ids))
                    .collect(),
                calibration: extras.calibration.map(CalibrationJson::from),
                disagreements: extras.disagreements.map(|found| DisagreementsJson { found, inputs: &batch.inputs }),
                groups,
            };
            // The data exercise the ids: written exactly when pairs and their ids are asked for.
            let ids_written =
                reference.lists.iter().flat_map(|list| list.pairs.iter().flatten()).any(|pair| {
                    pair.preferred_id.is_some_and(|id| id.as_str().contains('"')) && pair.other_id.is_some()
                });
            assert_eq!(ids_written, options.math.include_pairs && options.include_pair_ids);
            assert_eq!(String::from_utf8(mine).unwrap(), serde_json::to_string(&reference).unwrap());
        });
    }
}
