//! `prefeval merge`: the summaries of result files (shards of one dataset, evaluated on different
//! replicas or runs) into the summary of the whole. Totals are merged, never averages of averages,
//! so the loss, accuracy and counts equal those of evaluating the concatenated input.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use super::options::parse_confidence;
use super::output::FileId;
use crate::pipeline::dataset::Dataset;
use crate::pipeline::fingerprint::Fingerprint;
use crate::pipeline::read_summary::read_summary_line;
use crate::pipeline::run::{MIXED_FORMATS, Run, VERSION};
use crate::pipeline::summary::{Summary, SummaryInput, summary_line};

#[derive(Clone, Debug, Args)]
pub struct MergeArgs {
    /// Result files whose last line is a summary (`{"summary": {...}}`).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Confidence of the merged summary's intervals, strictly between 0 and 1.
    #[arg(long, value_parser = parse_confidence, default_value_t = prefeval_core::pipeline::DEFAULT_CONFIDENCE)]
    pub confidence: f64,
}

/// A summary line is short; this much of a file's end holds it.
const TAIL_BYTES: u64 = 64 * 1024;

pub fn run(args: &MergeArgs) -> ExitCode {
    match merge(&args.files, args.confidence) {
        Ok(summary) => {
            let mut stdout = std::io::stdout().lock();
            match stdout.write_all(&summary_line(&summary)).and_then(|()| stdout.flush()) {
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

/// The summary of the whole: every file's totals checked (`read_summary_line`) and added with
/// checked arithmetic. Refused: a file given twice; summaries whose `run.normalization`, `run.beta`
/// or `run.model` differ from the first file's (their losses and accuracies are of other
/// evaluations); an input summarised twice (the same fingerprint in two `run.input`/`run.inputs`).
/// The merged `run` records what was merged: the common normalization, β and model, the common
/// format or `mixed` (the format changes no figure), this merge's confidence (every interval is
/// recomputed from the totals at it), and `inputs`, every input's fingerprint in file order.
fn merge(files: &[impl AsRef<Path>], confidence: f64) -> Result<Summary, String> {
    let mut dataset: Option<Dataset> = None;
    let mut lines_failed = 0u64;
    let mut first: Option<(Run, &Path)> = None;
    let mut formats_differ = false;
    let mut files_seen: HashMap<FileId, &Path> = HashMap::new();
    let mut inputs_seen: HashMap<Fingerprint, &Path> = HashMap::new();
    let mut inputs = Vec::new();
    for file in files {
        let file = file.as_ref();
        let (summary, id) = last_summary(file)?;
        if let Some(first) = files_seen.insert(id, file) {
            return Err(format!(
                "{} and {} are the same file: its totals would be counted twice",
                first.display(),
                file.display()
            ));
        }
        let run = &summary.run;
        match &first {
            Some((first, first_file)) => {
                check_same_run(first, first_file, run, file)?;
                formats_differ |= first.format != run.format;
            }
            None => first = Some((run.clone(), file)),
        }
        let first_input = inputs.len();
        for &input in run.fingerprints() {
            if let Some(first) = inputs_seen.insert(input, file) {
                return Err(format!(
                    "{} and {} summarise the same input (summary.run.input: {} bytes, xxh3 {:016x}): it would \
                     be counted twice",
                    first.display(),
                    file.display(),
                    input.bytes,
                    input.xxh3
                ));
            }
            inputs.push(input);
        }
        let overflow = |field: &str| {
            format!(
                "{}: adding its {field} overflows the merged total; the summaries cannot be of one dataset",
                file.display()
            )
        };
        let dataset = dataset.get_or_insert_with(|| Dataset::for_merge(run));
        dataset
            .merge_summary(&summary, first_input)
            .map_err(|(field, why)| format!("{}: {field}: {why}", file.display()))?;
        lines_failed =
            lines_failed.checked_add(summary.lines_failed).ok_or_else(|| overflow("summary.lines_failed"))?;
    }
    let (first, _) = first.ok_or("no file to merge")?;
    let dataset = dataset.unwrap_or_default();
    let run = Run {
        prefeval: VERSION.to_string(),
        format: if formats_differ { MIXED_FORMATS.to_string() } else { first.format },
        confidence,
        input: None,
        inputs: Some(inputs),
        ..first
    };
    Ok(dataset.summary(lines_failed, run))
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
    if run.model != first.model {
        let name = |model: &Option<String>| model.as_ref().map_or("(none)".to_string(), |model| format!("`{model}`"));
        let why = "figures of different models do not merge (name the same model, or none, in every run)";
        return differ("model", name(&run.model), name(&first.model), why);
    }
    Ok(())
}

/// The summary on the last non-empty line of `path`, checked, and the file's identity.
fn last_summary(path: &Path) -> Result<(SummaryInput, FileId), String> {
    let mut file = File::open(path).map_err(|error| format!("cannot open {}: {error}", path.display()))?;
    let metadata = file.metadata().map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let size = metadata.len();
    file.seek(SeekFrom::Start(size.saturating_sub(TAIL_BYTES)))
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let last = tail
        .split(|&b| b == b'\n')
        .rev()
        .find(|line| !line.iter().all(u8::is_ascii_whitespace))
        .ok_or_else(|| format!("{} is empty", path.display()))?;
    let summary = read_summary_line(last).map_err(|error| match error.path.as_deref() {
        None | Some("summary") => format!(
            "the last line of {} is not a summary ({}); did its run finish? A stream cut short ends with an \
             error line instead",
            path.display(),
            error.message
        ),
        Some(field) => format!("{}: {field}: {}", path.display(), error.message),
    })?;
    Ok((summary, FileId::of(&metadata)))
}
