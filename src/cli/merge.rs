//! `prefeval merge`: the summaries of result files (shards of one dataset, evaluated on different
//! replicas or runs) into the summary of the whole. Totals are merged, never averages of averages,
//! so the loss, accuracy and counts equal those of evaluating the concatenated input.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use super::options::parse_confidence;
use crate::math::{Normalization, Totals};
use crate::pipeline::summary::{Summary, SummaryInput, SummaryLine, summary_line};

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

fn merge(files: &[impl AsRef<Path>], confidence: f64) -> Result<Summary, String> {
    let mut totals = Totals::default();
    let mut lines_failed = 0u64;
    let mut normalization: Option<(String, &Path)> = None;
    for file in files {
        let file = file.as_ref();
        let summary = last_summary(file)?;
        match &normalization {
            Some((first, first_file)) if *first != summary.normalization => {
                return Err(format!(
                    "{} uses normalization `{}` but {} uses `{first}`: losses of different normalizations do not merge",
                    file.display(),
                    summary.normalization,
                    first_file.display()
                ));
            }
            Some(_) => {}
            None => normalization = Some((summary.normalization.clone(), file)),
        }
        totals.merge(&Totals::from(&summary.totals));
        lines_failed += summary.lines_failed;
    }
    let name = normalization.map(|(name, _)| name).unwrap_or_default();
    let normalization = Normalization::ALL
        .into_iter()
        .find(|n| n.name() == name)
        .ok_or_else(|| format!("unknown normalization `{name}`"))?;
    Ok(Summary::new(normalization, &totals, lines_failed, confidence))
}

/// The summary on the last non-empty line of `path`.
fn last_summary(path: &Path) -> Result<SummaryInput, String> {
    let mut file = File::open(path).map_err(|error| format!("cannot open {}: {error}", path.display()))?;
    let size = file.metadata().map_err(|error| format!("cannot read {}: {error}", path.display()))?.len();
    file.seek(SeekFrom::Start(size.saturating_sub(TAIL_BYTES)))
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let last = tail
        .split(|&b| b == b'\n')
        .rev()
        .find(|line| !line.iter().all(u8::is_ascii_whitespace))
        .ok_or_else(|| format!("{} is empty", path.display()))?;
    serde_json::from_slice::<SummaryLine>(last).map(|line| line.summary).map_err(|error| {
        format!(
            "the last line of {} is not a summary ({error}); did its run finish? A stream cut short ends \
             with an error line instead",
            path.display()
        )
    })
}
