//! `prefeval merge`: the summaries of result files (shards of one dataset, evaluated on different
//! replicas or runs) into the summary of the whole. Totals are merged, never averages of averages,
//! so the loss, accuracy and counts equal those of evaluating the concatenated input. Summaries of
//! comparisons (`prefeval compare`, the compare stream, `prefeval diff`) merge the same way: their
//! per-model totals and paired sums add up, and the p-values and Holm's adjustment are computed
//! from the merged sums. The two kinds do not mix.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use super::options::parse_confidence;
use super::output::FileId;
use crate::pipeline::compare_totals::{
    CompareSummary, CompareTotals, compare_summary_line, is_compare_summary, read_compare_summary,
};
use crate::pipeline::dataset::Dataset;
use crate::pipeline::fingerprint::Fingerprint;
use crate::pipeline::read_summary::read_summary_line;
use crate::pipeline::run::{MIXED_FORMATS, Run, VERSION};
use crate::pipeline::summary::{Summary, summary_line};

#[derive(Clone, Debug, Args)]
pub struct MergeArgs {
    /// Result files whose last line is a summary (`{"summary": {...}}`): all of evaluations, or
    /// all of comparisons of the same models.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Confidence of the merged summary's intervals, strictly between 0 and 1.
    #[arg(long, value_parser = parse_confidence, default_value_t = prefeval_core::pipeline::DEFAULT_CONFIDENCE)]
    pub confidence: f64,
}

/// How much of a file's end is read at first for its summary line, and the longest summary line
/// read (10,000 groups with their totals and 1,000 disagreements with long ids fit well inside).
const TAIL_BYTES: u64 = 1024 * 1024;
pub(super) const MAX_SUMMARY_BYTES: u64 = 64 * 1024 * 1024;

pub fn run(args: &MergeArgs) -> ExitCode {
    match merge(&args.files, args.confidence) {
        Ok(line) => {
            let mut stdout = std::io::stdout().lock();
            match stdout.write_all(&line).and_then(|()| stdout.flush()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("prefeval merge: cannot write the summary: {error}");
                    ExitCode::from(2)
                }
            }
        }
        Err(message) => {
            eprintln!("prefeval merge: {message}");
            ExitCode::from(2)
        }
    }
}

/// The summary line of the whole, of evaluations or of comparisons as the files are: a file
/// given twice, and files of both kinds, are refused.
fn merge(files: &[impl AsRef<Path>], confidence: f64) -> Result<Vec<u8>, String> {
    let mut files_seen: HashMap<FileId, &Path> = HashMap::new();
    let mut lines = Vec::with_capacity(files.len());
    let mut first_kind: Option<(bool, &Path)> = None;
    for file in files {
        let file = file.as_ref();
        let (line, id) = last_line(file)?;
        if let Some(first) = files_seen.insert(id, file) {
            return Err(format!(
                "{} and {} are the same file: its totals would be counted twice",
                first.display(),
                file.display()
            ));
        }
        // A line that is no summary at all is named by the reading below.
        let compared = is_compare_summary(&line).unwrap_or(false);
        match first_kind {
            Some((kind, first)) if kind != compared => {
                let name = |compared: bool| if compared { "a comparison" } else { "an evaluation" };
                return Err(format!(
                    "{} holds the summary of {} and {} that of {}: the two kinds do not merge",
                    file.display(),
                    name(compared),
                    first.display(),
                    name(kind)
                ));
            }
            Some(_) => {}
            None => first_kind = Some((compared, file)),
        }
        lines.push((file, line));
    }
    match first_kind {
        Some((true, _)) => merge_comparisons(&lines, confidence).map(|summary| compare_summary_line(&summary)),
        _ => merge_evaluations(&lines, confidence).map(|summary| summary_line(&summary)),
    }
}

/// The inputs of the files merged so far, each once.
#[derive(Default)]
struct Inputs<'p> {
    seen: HashMap<Fingerprint, &'p Path>,
    all: Vec<Fingerprint>,
}

impl<'p> Inputs<'p> {
    /// Adds `run`'s inputs (of `file`), refusing one met before.
    fn add(&mut self, run: &Run, file: &'p Path) -> Result<(), String> {
        for &input in run.fingerprints() {
            if let Some(first) = self.seen.insert(input, file) {
                return Err(format!(
                    "{} and {} summarise the same input (summary.run.input: {} bytes, xxh3 {:016x}): it would \
                     be counted twice",
                    first.display(),
                    file.display(),
                    input.bytes,
                    input.xxh3
                ));
            }
            self.all.push(input);
        }
        Ok(())
    }
}

/// What a merge checks and records of every file's run, whatever the kind of its summary: the
/// first run (the others must match it: `check_same_run`), whether formats differ, every input
/// once, and the failed lines.
#[derive(Default)]
struct Runs<'p> {
    first: Option<(Run, &'p Path)>,
    formats_differ: bool,
    inputs: Inputs<'p>,
    lines_failed: u64,
}

impl<'p> Runs<'p> {
    /// Admits the run of `file` and its failed lines; where its inputs start among the merged ones.
    fn admit(&mut self, run: &Run, lines_failed: u64, file: &'p Path) -> Result<usize, String> {
        match &self.first {
            Some((first, first_file)) => {
                check_same_run(first, first_file, run, file)?;
                self.formats_differ |= first.format != run.format;
            }
            None => self.first = Some((run.clone(), file)),
        }
        let first_input = self.inputs.all.len();
        self.inputs.add(run, file)?;
        self.lines_failed =
            self.lines_failed.checked_add(lines_failed).ok_or_else(|| overflow(file, "summary.lines_failed"))?;
        Ok(first_input)
    }

    /// The merged run: the first's normalization, β and model(s), the common format or `mixed`,
    /// this merge's confidence and every input; and the failed lines of all.
    fn merged(self, confidence: f64) -> Result<(Run, u64), String> {
        let (first, _) = self.first.ok_or("no file to merge")?;
        let run = Run {
            prefeval: VERSION.to_string(),
            format: if self.formats_differ { MIXED_FORMATS.to_string() } else { first.format.clone() },
            confidence,
            input: None,
            inputs: Some(self.inputs.all),
            ..first
        };
        Ok((run, self.lines_failed))
    }
}

/// Why adding `file`'s `field` is refused.
fn overflow(file: &Path, field: &str) -> String {
    format!("{}: adding its {field} overflows the merged total; the summaries cannot be of one dataset", file.display())
}

/// The summary of the whole: every file's totals checked (`read_summary_line`) and added with
/// checked arithmetic. Refused: summaries whose `run.normalization`, `run.beta`
/// or `run.model` differ from the first file's (their losses and accuracies are of other
/// evaluations); an input summarised twice (the same fingerprint in two `run.input`/`run.inputs`).
/// The merged `run` records what was merged: the common normalization, β and model, the common
/// format or `mixed` (the format changes no figure), this merge's confidence (every interval is
/// recomputed from the totals at it), and `inputs`, every input's fingerprint in file order.
fn merge_evaluations(lines: &[(&Path, Vec<u8>)], confidence: f64) -> Result<Summary, String> {
    let mut dataset: Option<Dataset> = None;
    let mut runs = Runs::default();
    for (file, line) in lines {
        let summary = read_summary_line(line).map_err(|error| not_a_summary(file, &error))?;
        // Where this file's inputs start among the merged ones: its disagreements' `input` moves by it.
        let first_input = runs.admit(&summary.run, summary.lines_failed, file)?;
        let dataset = dataset.get_or_insert_with(|| Dataset::for_merge(&summary.run));
        dataset
            .merge_summary(&summary, first_input)
            .map_err(|(field, why)| format!("{}: {field}: {why}", file.display()))?;
    }
    let (run, lines_failed) = runs.merged(confidence)?;
    Ok(dataset.unwrap_or_default().summary(lines_failed, run))
}

/// As `merge_evaluations`, for summaries of comparisons: the same models in the same order
/// (`run.models`), normalization and β; per-model totals and paired sums added with checked
/// arithmetic; the figures, p-values and Holm's adjustment computed from the merged sums.
fn merge_comparisons(lines: &[(&Path, Vec<u8>)], confidence: f64) -> Result<CompareSummary, String> {
    let mut totals: Option<CompareTotals> = None;
    let mut runs = Runs::default();
    for (file, line) in lines {
        let (summary, shard) = read_compare_summary(line).map_err(|error| not_a_summary(file, &error))?;
        runs.admit(&summary.run, summary.lines_failed, file)?;
        match &mut totals {
            Some(totals) => {
                totals.checked_merge(&shard).map_err(|field| overflow(file, &format!("summary.totals.{field}")))?
            }
            None => totals = Some(shard),
        }
    }
    let (run, lines_failed) = runs.merged(confidence)?;
    let totals = totals.ok_or("no file to merge")?;
    Ok(CompareSummary::new(&totals, lines_failed, run))
}

/// A summary that did not read back, named by file and field.
fn not_a_summary(path: &Path, error: &prefeval_core::error::Error) -> String {
    match error.path.as_deref() {
        None | Some("summary") => format!(
            "the last line of {} is not a summary ({}); did its run finish? A stream cut short ends with an \
             error line instead",
            path.display(),
            error.message
        ),
        Some(field) => format!("{}: {field}: {}", path.display(), error.message),
    }
}

/// Refuses `run` (of `file`) unless its normalization, β and model are those of `first`.
fn check_same_run(first: &Run, first_file: &Path, run: &Run, file: &Path) -> Result<(), String> {
    let differ = |field: &str, mine: String, theirs: String, why: &str| {
        Err(format!(
            "{}: summary.run.{field} {mine} differs from {}'s {theirs}: {why}",
            file.display(),
            first_file.display()
        ))
    };
    if run.normalization != first.normalization {
        let why = "losses of different normalizations do not merge";
        return differ("normalization", format!("`{}`", run.normalization), format!("`{}`", first.normalization), why);
    }
    if run.beta != first.beta {
        let why = "losses and accuracies at different β are of different models";
        return differ("beta", run.beta.to_string(), first.beta.to_string(), why);
    }
    let option = |value: Option<usize>| value.map_or("(none)".to_string(), |value| value.to_string());
    if run.calibration_bins != first.calibration_bins {
        let why = "calibration bins of different widths do not add (evaluate every shard with the same K)";
        return differ("calibration_bins", option(run.calibration_bins), option(first.calibration_bins), why);
    }
    if run.top_disagreements != first.top_disagreements {
        let why = "the k least probable pairs of the whole are those of the shards only for the same k";
        return differ("top_disagreements", option(run.top_disagreements), option(first.top_disagreements), why);
    }
    if run.models != first.models {
        let names = |run: &Run| run.models.as_deref().unwrap_or_default().join(",");
        let why = "comparisons merge only of the same models in the same order";
        return differ("models", names(run), names(first), why);
    }
    if run.model != first.model {
        let name = |model: &Option<String>| model.as_ref().map_or("(none)".to_string(), |model| format!("`{model}`"));
        let why = "figures of different models do not merge (name the same model, or none, in every run)";
        return differ("model", name(&run.model), name(&first.model), why);
    }
    Ok(())
}

/// The last non-empty line of `path`, and the file's identity.
pub(super) fn last_line(path: &Path) -> Result<(Vec<u8>, FileId), String> {
    let cannot_read = |error: std::io::Error| format!("cannot read {}: {error}", path.display());
    let mut file = File::open(path).map_err(|error| format!("cannot open {}: {error}", path.display()))?;
    let metadata = file.metadata().map_err(cannot_read)?;
    let size = metadata.len();
    // Read a tail; if the last line starts before it, read a tail twice as long, up to the cap.
    let mut window = TAIL_BYTES;
    loop {
        let start = size.saturating_sub(window);
        file.seek(SeekFrom::Start(start)).map_err(cannot_read)?;
        let mut tail = Vec::new();
        file.read_to_end(&mut tail).map_err(cannot_read)?;
        let content = tail.iter().rposition(|b| !b.is_ascii_whitespace());
        let Some(end) = content else {
            if start == 0 {
                return Err(format!("{} is empty", path.display()));
            }
            window = window.saturating_mul(2);
            continue;
        };
        match tail[..end].iter().rposition(|&b| b == b'\n') {
            Some(newline) => return Ok((tail[newline + 1..=end].to_vec(), FileId::of(&metadata))),
            None if start == 0 => return Ok((tail[..=end].to_vec(), FileId::of(&metadata))),
            None if window >= MAX_SUMMARY_BYTES => {
                return Err(format!(
                    "the last line of {} is longer than {} MiB: no summary is that long",
                    path.display(),
                    MAX_SUMMARY_BYTES >> 20
                ));
            }
            None => window = window.saturating_mul(2),
        }
    }
}
