//! A dataset run's figures beyond its `Totals` (docs/design/math.md, "Dataset-scale figures"):
//! per-group totals in order of first appearance, the calibration bins, the k least probable
//! pairs and the length counts. One accumulator, `Dataset`, for every door that ends with a
//! summary line: the stream and `prefeval eval` add their chunks to it in input order, and
//! `prefeval merge` adds summaries read back. Each list is added on its own (its totals, its
//! calibration partial), so a run's sums are the same to the last bit however its lines were
//! chunked; merged shards re-add the sums their summaries carry.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::Options;
use super::figures::{least_probable, macro_accuracy};
use super::format::ListInput;
use super::length_json::{LengthJson, LengthTotalsJson};
use super::run::Run;
use super::summary::{
    CalibrationBinTotalsJson, CalibrationJson, DisagreementJson, GroupSummaryJson, OwnedId, Summary, SummaryInput,
};
use crate::error::{Error, ErrorCode};
use crate::math::{
    BinTotals, Calibration, LengthCounts, ListCalibration, ListEvaluation, ListLossOverflow, RankedList, Totals,
};

/// Distinct groups one run (or one merge) keeps figures for; a line that would add one more is
/// an error line (`too_many_groups`). Bounds what a run holds: 10,000 names of at most 256 bytes.
pub const MAX_GROUPS: usize = 10_000;

/// What one chunk gives besides its lists' evaluations.
#[derive(Debug, Default)]
pub struct ChunkFigures {
    /// Each evaluated list's group, in the order of the evaluations; empty when no list has one.
    pub groups: Vec<Option<Box<str>>>,
    /// Each evaluated list's calibration partial, in order; empty unless calibration is asked for.
    pub calibration: Vec<ListCalibration>,
    /// The chunk's k least probable pairs (when asked for), least probable first.
    pub disagreements: Vec<DisagreementJson>,
    /// The length counts of the chunk's evaluated lists.
    pub length: LengthCounts,
}

impl ChunkFigures {
    /// The figures beyond totals of a chunk's evaluated lists, in line order (`slots`: each line's
    /// number and the index of its list in `inputs` and `ranked`, or its error); nothing is computed
    /// that is neither asked for (calibration, disagreements) nor in the data (groups, lengths).
    pub fn of(
        slots: &[(u64, Result<usize, Error>)],
        inputs: &[ListInput<'_>],
        ranked: &[RankedList],
        evaluations: &[Result<ListEvaluation, ListLossOverflow>],
        options: &Options,
    ) -> ChunkFigures {
        let mut figures = ChunkFigures::default();
        // The common case, nothing asked for and no group or length in the data, costs one look.
        let asked = options.calibration_bins.is_some() || options.top_disagreements.is_some();
        let in_data =
            |input: &ListInput<'_>| input.group.is_some() || input.items.iter().any(|item| item.length.is_some());
        if !asked && !inputs.iter().any(in_data) {
            return figures;
        }
        let beta = options.math.beta;
        // The lists evaluated, with their lines, in order.
        let evaluated: Vec<(u64, usize)> = slots
            .iter()
            .filter_map(|(line, slot)| slot.as_ref().ok().map(|&index| (*line, index)))
            .filter(|&(_, index)| evaluations[index].is_ok())
            .collect();
        if evaluated.iter().any(|&(_, index)| inputs[index].group.is_some()) {
            figures.groups = evaluated
                .iter()
                .map(|&(_, index)| inputs[index].group.as_ref().map(|group| group.0.as_ref().into()))
                .collect();
        }
        if let Some(bins) = options.calibration_bins {
            figures.calibration =
                evaluated.iter().map(|&(_, index)| Calibration::of_list(&ranked[index], beta, bins)).collect();
        }
        for &(_, index) in &evaluated {
            if let Some(lengths) = inputs[index].lengths() {
                figures.length.add_list(&ranked[index], &lengths, beta);
            }
        }
        if let Some(k) = options.top_disagreements {
            let lists = evaluated.iter().enumerate().map(|(position, &(_, index))| (position, &ranked[index]));
            figures.disagreements = least_probable(lists, beta, k)
                .into_iter()
                .map(|found| {
                    let (line, index) = evaluated[found.list];
                    let input = &inputs[index];
                    let id_of =
                        |item: u32| input.items.get(item as usize).and_then(|item| item.id.as_ref()).map(OwnedId::of);
                    DisagreementJson {
                        input: None,
                        line,
                        list_id: input.id.as_ref().map(OwnedId::of),
                        preferred: found.preferred,
                        other: found.other,
                        preferred_id: id_of(found.preferred),
                        other_id: id_of(found.other),
                        probability: found.probability,
                    }
                })
                .collect();
        }
        figures
    }
}

/// The groups a chunk may use once a run is near its limit: those the run knows, and room for
/// `room` new ones (in line order).
#[derive(Clone, Debug, Default)]
pub struct GroupGate {
    known: HashSet<String>,
    room: usize,
}

impl GroupGate {
    /// Whether a line of `group` is admitted, given the groups this chunk already added (`added`,
    /// which a new group admitted joins).
    pub fn admits(&self, group: &str, added: &mut HashSet<String>) -> bool {
        if self.known.contains(group) || added.contains(group) {
            return true;
        }
        if added.len() < self.room {
            added.insert(group.to_string());
            return true;
        }
        false
    }
}

/// The error line of a list whose group would be one too many; `field` is the group's name in the
/// data.
pub fn too_many_groups(field: &str) -> Error {
    Error::at(
        ErrorCode::TooManyGroups,
        field,
        format!(
            "this `{field}` would be group {} of the run; a run keeps figures for at most {MAX_GROUPS} distinct \
             groups. Split the dataset into runs of fewer groups and merge their results (`prefeval merge`) \
             only if together they have at most {MAX_GROUPS}",
            MAX_GROUPS + 1
        ),
    )
}

/// Least probable first; ties by input, then line, then pair (preferred, other).
pub fn disagreement_order(a: &DisagreementJson, b: &DisagreementJson) -> Ordering {
    a.probability
        .total_cmp(&b.probability)
        .then(a.input.unwrap_or(0).cmp(&b.input.unwrap_or(0)))
        .then(a.line.cmp(&b.line))
        .then((a.preferred, a.other).cmp(&(b.preferred, b.other)))
}

/// A run's (or a merge's) figures, added in input order.
#[derive(Debug, Default)]
pub struct Dataset {
    pub totals: Totals,
    groups: Vec<(String, Totals)>,
    group_index: HashMap<String, usize>,
    calibration: Option<Calibration>,
    top_disagreements: Option<usize>,
    disagreements: Vec<DisagreementJson>,
    length: LengthCounts,
    /// A merge's disagreements name the input they came from.
    merged: bool,
}

impl Dataset {
    /// The figures `options` asks for (groups and lengths whenever the data has them).
    pub fn new(options: &Options) -> Dataset {
        Dataset {
            calibration: options.calibration_bins.map(Calibration::new),
            top_disagreements: options.top_disagreements,
            ..Dataset::default()
        }
    }

    /// The figures a merge of summaries of `run` carries.
    pub fn for_merge(run: &Run) -> Dataset {
        Dataset {
            calibration: run.calibration_bins.map(Calibration::new),
            top_disagreements: run.top_disagreements,
            merged: true,
            ..Dataset::default()
        }
    }

    /// Adds a chunk's lists, one by one, in order, and keeps the k least probable pairs.
    pub fn add_chunk(&mut self, evaluations: &[ListEvaluation], figures: &ChunkFigures) {
        for (index, evaluation) in evaluations.iter().enumerate() {
            self.totals.add(evaluation);
            if let Some(Some(group)) = figures.groups.get(index) {
                let slot = self.group_slot(group);
                self.groups[slot].1.add(evaluation);
            }
            if let (Some(calibration), Some(list)) = (&mut self.calibration, figures.calibration.get(index)) {
                calibration.merge_list(list);
            }
        }
        self.length.merge(&figures.length);
        self.keep_least_probable(figures.disagreements.iter().cloned());
    }

    fn group_slot(&mut self, group: &str) -> usize {
        if let Some(&slot) = self.group_index.get(group) {
            return slot;
        }
        self.groups.push((group.to_string(), Totals::default()));
        self.group_index.insert(group.to_string(), self.groups.len() - 1);
        self.groups.len() - 1
    }

    fn keep_least_probable(&mut self, found: impl Iterator<Item = DisagreementJson>) {
        let Some(k) = self.top_disagreements else { return };
        let before = self.disagreements.len();
        self.disagreements.extend(found);
        if self.disagreements.len() == before {
            return;
        }
        self.disagreements.sort_by(disagreement_order);
        self.disagreements.truncate(k);
    }

    /// Whether the chunk's lists bring more new groups than the run has room for: then it must be
    /// evaluated again behind `gate()`, so the lines over the limit become error lines.
    pub fn overflows(&self, figures: &ChunkFigures) -> bool {
        if figures.groups.is_empty() {
            return false;
        }
        let room = MAX_GROUPS.saturating_sub(self.groups.len());
        let mut new: HashSet<&str> = HashSet::new();
        for group in figures.groups.iter().flatten() {
            if !self.group_index.contains_key(&**group) && new.insert(group) && new.len() > room {
                return true;
            }
        }
        false
    }

    /// Whether the run holds as many groups as it may.
    pub fn is_full(&self) -> bool {
        self.groups.len() >= MAX_GROUPS
    }

    /// The groups known now, and the room left for new ones.
    pub fn gate(&self) -> Arc<GroupGate> {
        Arc::new(GroupGate {
            known: self.groups.iter().map(|(group, _)| group.clone()).collect(),
            room: MAX_GROUPS.saturating_sub(self.groups.len()),
        })
    }

    /// Adds the summary of a shard whose inputs start at `first_input` of the merge's inputs. The
    /// error names the field of the summary at fault (`summary.groups`, …) and why.
    pub fn merge_summary(&mut self, summary: &SummaryInput, first_input: usize) -> Result<(), (String, String)> {
        let overflow = |field: &str| {
            (
                field.to_string(),
                "adding it overflows the merged total; the summaries cannot be of one dataset".to_string(),
            )
        };
        self.totals.checked_merge(&Totals::from(&summary.totals)).map_err(|field| {
            // The one count kept in other units than its JSON field.
            let field = if field == "agreeing_halves" { "agreeing" } else { field };
            overflow(&format!("summary.totals.{field}"))
        })?;
        for (index, group) in summary.groups.iter().flatten().enumerate() {
            if !self.group_index.contains_key(&group.group) && self.is_full() {
                return Err((
                    format!("summary.groups[{index}]"),
                    format!("the merged summaries have more than {MAX_GROUPS} distinct groups together"),
                ));
            }
            let slot = self.group_slot(&group.group);
            let field = |name: &str| format!("summary.groups[{index}].totals.{name}");
            self.groups[slot].1.checked_merge(&Totals::from(&group.totals)).map_err(|name| overflow(&field(name)))?;
        }
        if let (Some(calibration), Some(bins)) = (&mut self.calibration, &summary.totals.calibration) {
            let bins: Vec<BinTotals> = bins
                .iter()
                .map(|bin| BinTotals {
                    count: bin.count,
                    sum_predicted: bin.sum_predicted,
                    observed_halves: (bin.sum_observed * 2.0).round() as u64,
                    sum_squared_error: bin.sum_squared_error,
                })
                .collect();
            if !bins.is_empty() {
                calibration.checked_merge(&Calibration::from_totals(&bins)).map_err(|name| match name {
                    "bins" => ("summary.totals.calibration".to_string(), "has another number of bins".to_string()),
                    _ => overflow("summary.totals.calibration"),
                })?;
            }
        }
        if let Some(length) = &summary.totals.length {
            let counts = length
                .counts()
                .map_err(|name| (format!("summary.totals.length.{name}"), "is no count of pairs".to_string()))?;
            self.length.checked_merge(&counts).map_err(|name| overflow(&format!("summary.totals.length.{name}")))?;
        }
        let shifted = summary
            .disagreements
            .iter()
            .flatten()
            .map(|found| DisagreementJson { input: Some(first_input + found.input.unwrap_or(0)), ..found.clone() });
        self.keep_least_probable(shifted);
        Ok(())
    }

    /// The summary line's contents: the totals' figures and every figure this run carries.
    pub fn summary(&self, lines_failed: u64, run: Run) -> Summary {
        let mut summary = Summary::new(&self.totals, lines_failed, run);
        if !self.groups.is_empty() {
            summary.macro_accuracy = macro_accuracy(self.groups.iter().map(|(_, totals)| totals));
            summary.groups =
                Some(self.groups.iter().map(|(group, totals)| GroupSummaryJson::new(group, totals)).collect());
        }
        if let Some(calibration) = &self.calibration {
            summary.calibration = Some(CalibrationJson::from(calibration));
            summary.totals.calibration = Some(
                calibration
                    .totals()
                    .iter()
                    .map(|bin| CalibrationBinTotalsJson {
                        count: bin.count,
                        sum_predicted: bin.sum_predicted,
                        sum_observed: bin.observed_halves as f64 / 2.0,
                        sum_squared_error: bin.sum_squared_error,
                    })
                    .collect(),
            );
        }
        if self.top_disagreements.is_some() {
            let merged = self.merged;
            summary.disagreements = Some(
                self.disagreements
                    .iter()
                    .map(|found| DisagreementJson { input: merged.then(|| found.input.unwrap_or(0)), ..found.clone() })
                    .collect(),
            );
        }
        if let Some(length) = LengthJson::of(&self.length) {
            summary.length = Some(length);
            summary.totals.length = Some(LengthTotalsJson::from(&self.length));
        }
        summary
    }
}

#[cfg(test)]
mod tests {
    use prefeval_testkit::SplitMix64;

    use super::*;
    use crate::limits::Limits;
    use crate::memory::MemoryBudget;
    use crate::pipeline::ndjson::{Chunk, evaluate_chunk};
    use crate::pipeline::read_summary::read_summary_line;
    use crate::pipeline::summary::summary_line;
    use crate::pipeline::{Sequential, evaluate};

    const LIMITS: Limits = Limits {
        max_line_bytes: 1 << 20,
        max_items_per_list: 1000,
        max_lists: 100_000,
        max_pairs: 1 << 30,
        max_evaluated_pairs: 1 << 30,
    };

    /// NDJSON lines with groups, ids, tied ranks and random rewards (one line invalid).
    fn lines(seed: u64, count: usize) -> Vec<String> {
        let mut rng = SplitMix64::new(seed);
        (0..count)
            .map(|index| {
                if index == 7 {
                    return r#"{"items":[{"reward":1.0}]}"#.to_string();
                }
                let n = 2 + rng.below(6);
                let items: Vec<String> = (0..n)
                    .map(|k| {
                        format!(
                            r#"{{"id":"i{k}","reward":{},"rank":{}}}"#,
                            (rng.unit() * 2.0 - 1.0) * [0.01, 1.0, 40.0][rng.below(3) as usize],
                            1 + k / 2
                        )
                    })
                    .collect();
                format!(r#"{{"id":"p{index}","group":"g{}","items":[{}]}}"#, rng.below(9), items.join(","))
            })
            .collect()
    }

    fn options() -> Options {
        let mut options = Options::for_datasets();
        options.calibration_bins = Some(6);
        options.top_disagreements = Some(9);
        options
    }

    /// The summary line of `lines` cut into chunks of `size` lines.
    fn summary_in_chunks(lines: &[String], size: usize) -> Vec<u8> {
        let options = options();
        let mut dataset = Dataset::new(&options);
        for (index, part) in lines.chunks(size).enumerate() {
            let bytes = part.iter().flat_map(|line| format!("{line}\n").into_bytes()).collect();
            let chunk = Chunk { first_line: (index * size) as u64 + 1, bytes, skipped: Vec::new() };
            let budget = MemoryBudget::new(usize::MAX);
            let (outcome, _) = evaluate_chunk(&chunk, &options, &LIMITS, None, &Sequential, budget.empty()).unwrap();
            dataset.add_chunk(&outcome.evaluations, &outcome.figures);
        }
        summary_line(&dataset.summary(1, Run::new(&options, None)))
    }

    #[test]
    fn a_summary_is_the_same_to_the_last_bit_however_its_lines_were_chunked() {
        let lines = lines(3, 600);
        let whole = summary_in_chunks(&lines, lines.len());
        for size in [1, 2, 7, 50] {
            assert_eq!(summary_in_chunks(&lines, size), whole, "chunks of {size} lines");
        }
        let text = String::from_utf8(whole).unwrap();
        for key in ["\"groups\"", "\"macro_accuracy\"", "\"calibration\"", "\"disagreements\"", "\"sum_squared_error\""]
        {
            assert!(text.contains(key), "{key} in {text}");
        }
    }

    /// A dataset of lists whose items carry lengths (as a format that reads them would give).
    fn with_lengths(seed: u64, count: usize) -> (Dataset, LengthCounts) {
        let mut rng = SplitMix64::new(seed);
        let options = Options::for_datasets();
        let mut ranked = Vec::new();
        let mut figures = ChunkFigures::default();
        for _ in 0..count {
            let n = 2 + rng.below(5) as usize;
            let rewards: Vec<f64> = (0..n).map(|_| (rng.below(5) as f64) / 2.0).collect();
            let list = RankedList::new(rewards, None).unwrap();
            let lengths: Vec<Option<f64>> =
                (0..n).map(|_| (rng.below(4) > 0).then(|| rng.below(6) as f64 * 10.0)).collect();
            figures.length.add_list(&list, &lengths, options.math.beta);
            ranked.push(list);
        }
        let evaluations: Vec<ListEvaluation> =
            evaluate(&ranked, &options.math, &Sequential).into_iter().map(Result::unwrap).collect();
        let mut dataset = Dataset::new(&options);
        dataset.add_chunk(&evaluations, &figures);
        (dataset, figures.length)
    }

    #[test]
    fn length_counts_merge_exactly_through_summaries_read_back() {
        let options = Options::for_datasets();
        let (whole, counts) = with_lengths(11, 40);
        assert!(counts.pairs > 0);
        let run = |bytes: u64| {
            Run::new(&options, None).with_input(crate::pipeline::fingerprint::Fingerprint { bytes, xxh3: bytes })
        };
        let whole_summary = whole.summary(0, run(1));
        assert_eq!(whole_summary.length, LengthJson::of(&counts));
        assert_eq!(whole_summary.totals.length, Some(LengthTotalsJson::from(&counts)));
        // Two shards read back from their summary lines, merged: the counts of both.
        let (a, a_counts) = with_lengths(11, 17);
        let (b, b_counts) = with_lengths(12, 23);
        let mut merged = Dataset::for_merge(&run(1));
        for (index, shard) in [a, b].iter().enumerate() {
            let line = summary_line(&shard.summary(0, run(index as u64 + 1)));
            let read = read_summary_line(line.strip_suffix(b"\n").unwrap()).unwrap();
            merged.merge_summary(&read, index).unwrap();
        }
        let mut expected = a_counts;
        expected.merge(&b_counts);
        assert_eq!(merged.summary(0, run(9)).totals.length, Some(LengthTotalsJson::from(&expected)));
        // Without a pair of two lengths, no length at all.
        let plain = Dataset::new(&options).summary(0, run(1));
        assert_eq!((plain.length, plain.totals.length), (None, None));
    }

    #[test]
    fn a_gate_admits_known_groups_and_as_many_new_ones_as_it_has_room_for() {
        let mut dataset = Dataset::default();
        dataset.group_slot("a");
        let gate = GroupGate { room: 1, ..(*dataset.gate()).clone() };
        let mut added = HashSet::new();
        assert!(gate.admits("a", &mut added));
        assert!(gate.admits("b", &mut added));
        assert!(gate.admits("b", &mut added), "a group the chunk added is known from then on");
        assert!(!gate.admits("c", &mut added));
        assert!(gate.admits("a", &mut added));
    }
}
