//! `prefeval diff A.out B.out`: two `prefeval eval` outputs of the same lists into the compare
//! summary of their two models (`pipeline::diff`), printed as one line.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use super::options::parse_confidence;
use crate::pipeline::compare_totals::compare_summary_line;
use crate::pipeline::diff::{DiffInput, diff};

#[derive(Clone, Debug, Args)]
pub struct DiffArgs {
    /// The output of `prefeval eval` (or of the evaluate stream) with the first model's rewards.
    pub a: PathBuf,
    /// The output for the same lists with the second model's rewards.
    pub b: PathBuf,
    /// Confidence of the intervals, strictly between 0 and 1.
    #[arg(long, value_parser = parse_confidence, default_value_t = prefeval_core::pipeline::DEFAULT_CONFIDENCE)]
    pub confidence: f64,
}

pub fn run(args: &DiffArgs) -> ExitCode {
    match compare_outputs(args) {
        Ok(line) => {
            let mut stdout = std::io::stdout().lock();
            match stdout.write_all(&line).and_then(|()| stdout.flush()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("prefeval diff: cannot write the summary: {error}");
                    ExitCode::from(2)
                }
            }
        }
        Err(message) => {
            eprintln!("prefeval diff: {message}");
            ExitCode::from(2)
        }
    }
}

fn compare_outputs(args: &DiffArgs) -> Result<Vec<u8>, String> {
    let read = |path: &PathBuf| std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()));
    let (bytes_a, bytes_b) = (read(&args.a)?, read(&args.b)?);
    let summary = diff(&input(&args.a, &bytes_a), &input(&args.b, &bytes_b), args.confidence)?;
    Ok(compare_summary_line(&summary))
}

fn input<'b>(path: &Path, bytes: &'b [u8]) -> DiffInput<'b> {
    DiffInput { name: path.display().to_string(), lines: bytes.split(|&b| b == b'\n').collect() }
}
