//! `prefeval report INPUT... [-o report.html]`: one self-contained HTML report (`prefeval-report`)
//! of an evaluation's output (`prefeval eval`, the stream, `prefeval merge`), a comparison's
//! (`prefeval compare`, the compare stream, `prefeval diff`, their merges, a `/v1/compare` answer),
//! or several evaluations of the same lists by different models, compared as `prefeval diff`
//! compares them. Also the report `eval` and `compare` write beside their results (`--report`).
//!
//! The file appears whole or not at all (`output::Output`), and is never one of the inputs.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use prefeval_report::{Input, Meta, Report, read_inputs, read_summary, report_date};

use super::interrupt::Interrupt;
use super::merge::{MAX_SUMMARY_BYTES, last_line};
use super::output::{FileId, Output};

#[derive(Clone, Debug, Args)]
pub struct ReportArgs {
    /// Outputs to draw: one output of `prefeval eval`, `compare`, `merge` or `diff` (or of the
    /// stream endpoints, or a `/v1/compare` answer), or several `prefeval eval` outputs of the same
    /// lists by different models. `-` reads stdin.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Write the report here instead of stdout: to a temporary file beside it, renamed onto it once
    /// complete (never one of the inputs).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

pub fn run(args: &ReportArgs) -> ExitCode {
    match Interrupt::watch("report").and_then(|interrupt| draw(args, &interrupt)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("prefeval report: {message}");
            ExitCode::from(2)
        }
    }
}

fn draw(args: &ReportArgs, interrupt: &Interrupt) -> Result<(), String> {
    let mut contents = Vec::with_capacity(args.inputs.len());
    let mut files = Vec::with_capacity(args.inputs.len());
    for path in &args.inputs {
        let (bytes, file) = if args.inputs.len() == 1 { read_one(path)? } else { read_whole(path)? };
        contents.push(bytes);
        files.push(file);
    }
    let inputs: Vec<Input<'_>> =
        args.inputs.iter().zip(&contents).map(|(path, bytes)| Input { name: input_name(path), bytes }).collect();
    let report = read_inputs(&inputs)?;
    let mut output = write_html(&report, args.output.as_deref(), &files, interrupt)?;
    output.flush().map_err(|error| format!("cannot write the report: {error}"))?;
    output.finish(interrupt)
}

/// How an input is named in messages and the report: its path, or `stdin` for `-`.
fn input_name(path: &Path) -> String {
    if path == Path::new("-") { "stdin".to_string() } else { path.display().to_string() }
}

/// The report of a run's summary line, written to `path` but not yet in place: the caller finishes
/// it once its results are (`eval --report`, `compare --report`).
pub fn beside_results(
    summary_line: &[u8],
    path: &Path,
    source: &Path,
    inputs: &[FileId],
    interrupt: &Interrupt,
) -> Result<Output, String> {
    let report = read_summary(summary_line)
        .map_err(|error| format!("cannot draw the report: {}", error.message))?
        .drawn_from(&source.display().to_string());
    write_html(&report, Some(path), inputs, interrupt)
}

fn write_html(
    report: &Report,
    path: Option<&Path>,
    inputs: &[FileId],
    interrupt: &Interrupt,
) -> Result<Output, String> {
    let html = report.to_html(&Meta { date: report_date() });
    let mut output = Output::open(path, inputs, interrupt)?;
    output.write_all(html.as_bytes()).map_err(|error| format!("cannot write the report: {error}"))?;
    Ok(output)
}

/// One input: whole when it may be a `/v1/compare` answer (one JSON document, perhaps over several
/// lines) or is small, else only its last line (a summary), so the report of a run of millions of
/// lists reads a few bytes of it.
fn read_one(path: &Path) -> Result<(Vec<u8>, FileId), String> {
    if path == Path::new("-") {
        return read_whole(path);
    }
    let size = std::fs::metadata(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?.len();
    if size <= MAX_SUMMARY_BYTES { read_whole(path) } else { last_line(path) }
}

/// A file whole, or stdin for `-` (its identity that of the file it is redirected from, if any).
fn read_whole(path: &Path) -> Result<(Vec<u8>, FileId), String> {
    let cannot_read = |error: std::io::Error| format!("cannot read {}: {error}", path.display());
    if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::stdin().lock().read_to_end(&mut bytes).map_err(cannot_read)?;
        let metadata = std::fs::metadata("/dev/stdin").map_err(cannot_read)?;
        return Ok((bytes, FileId::of(&metadata)));
    }
    let mut file = File::open(path).map_err(cannot_read)?;
    let metadata = file.metadata().map_err(cannot_read)?;
    if metadata.is_dir() {
        return Err(format!("cannot read {}: it is a directory", path.display()));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    file.read_to_end(&mut bytes).map_err(cannot_read)?;
    Ok((bytes, FileId::of(&metadata)))
}
