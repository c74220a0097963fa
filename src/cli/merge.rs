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
use crate::math::{Normalization, Totals};
use crate::pipeline::fingerprint::Fingerprint;
use crate::pipeline::read_summary::read_summary_line;
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
/// checked arithmetic. Refused: a file given twice, two summaries of the same input (the same
/// fingerprint), different normalizations. A summary without a fingerprint (an older prefeval) is
/// merged with a warning, since a repeat of it cannot be seen. The merged summary has no `input`:
/// it summarises several.
fn merge(files: &[impl AsRef<Path>], confidence: f64) -> Result<Summary, String> {
    let mut totals = Totals::default();
    let mut lines_failed = 0u64;
    let mut normalization: Option<(Normalization, &Path)> = None;
    let mut files_seen: HashMap<FileId, &Path> = HashMap::new();
    let mut inputs_seen: HashMap<Fingerprint, &Path> = HashMap::new();
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
        let shard_normalization = Normalization::ALL
            .into_iter()
            .find(|n| n.name() == summary.normalization)
            .ok_or_else(|| format!("{}: summary.normalization: unknown `{}`", file.display(), summary.normalization))?;
        match normalization {
            Some((first, first_file)) if first != shard_normalization => {
                return Err(format!(
                    "{} uses normalization `{}` but {} uses `{}`: losses of different normalizations do not merge",
                    file.display(),
                    shard_normalization.name(),
                    first_file.display(),
                    first.name()
                ));
            }
            Some(_) => {}
            None => normalization = Some((shard_normalization, file)),
        }
        match summary.input {
            Some(input) => {
                if let Some(first) = inputs_seen.insert(input, file) {
                    return Err(format!(
                        "{} and {} summarise the same input (summary.input: {} bytes, xxh3 {:016x}): it would be \
                         counted twice",
                        first.display(),
                        file.display(),
                        input.bytes,
                        input.xxh3
                    ));
                }
            }
            None => eprintln!(
                "prefeval merge: warning: {} has no summary.input (written before summaries carried their \
                 input's fingerprint, or itself a merge): an input given twice cannot be detected",
                file.display()
            ),
        }
        let overflow = |field: &str| {
            format!(
                "{}: adding its {field} overflows the merged total; the summaries cannot be of one dataset",
                file.display()
            )
        };
        totals.checked_merge(&Totals::from(&summary.totals)).map_err(|field| {
            // The one count kept in other units than its JSON field.
            let field = if field == "agreeing_halves" { "agreeing" } else { field };
            overflow(&format!("summary.totals.{field}"))
        })?;
        lines_failed =
            lines_failed.checked_add(summary.lines_failed).ok_or_else(|| overflow("summary.lines_failed"))?;
    }
    let (normalization, _) = normalization.ok_or("no file to merge")?;
    Ok(Summary::new(normalization, &totals, lines_failed, confidence))
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
