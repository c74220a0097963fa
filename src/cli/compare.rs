//! `prefeval compare`: the compare stream offline. Reads an NDJSON file of lists in the compare
//! shape, compares the models on every core with the pipeline's `compare_chunk`, and writes exactly
//! what `POST /v1/compare/stream` would answer for it: the same result and error lines, the same
//! summary.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use rayon::prelude::*;

use super::file_run::{FileRunFlags, Report, exit_status};
use super::input::{Input, READ_BYTES};
use super::interrupt::Interrupt;
use super::options::CompareFlags;
use super::output::Output;
use super::progress::Progress;
use super::report::beside_results;
use crate::limits::Limits;
use crate::memory::{MemoryBudget, OverBudget};
use crate::pipeline::Options;
use crate::pipeline::compare::parse_models;
use crate::pipeline::compare_lines::compare_chunk;
use crate::pipeline::compare_totals::{CompareSummary, CompareTotals, compare_summary_line};
use crate::pipeline::ndjson::{CHUNK_BYTES, Chunk, ChunkBuilder};
use crate::pipeline::run::Run;

#[derive(Clone, Debug, Args)]
pub struct CompareArgs {
    /// NDJSON file, one list per line in `/v1/compare`'s list shape; `-` reads stdin.
    pub input: PathBuf,
    /// The models compared, in the order of each item's `rewards`: 2 to 16 distinct labels,
    /// separated by commas (`rm-a,rm-b`).
    #[arg(long, required = true)]
    pub models: String,
    /// Where the results go, the limits, the threads, the progress bar.
    #[command(flatten)]
    pub run: FileRunFlags,
    /// The comparison's options, as the compare stream's query parameters.
    #[command(flatten)]
    pub options: CompareFlags,
}

/// Exit status as `prefeval eval`'s: 0 every line compared, 1 some line failed, 2 usage or I/O.
pub fn run(args: &CompareArgs) -> ExitCode {
    let outcome = Interrupt::watch("compare").and_then(|interrupt| compare_file(args, &interrupt));
    exit_status("compare", outcome.as_ref().map_err(String::as_str))
}

/// How a run compares its chunks.
struct Work<'w> {
    models: usize,
    options: &'w Options,
    limits: &'w Limits,
    threads: &'w rayon::ThreadPool,
    memory_limit: usize,
}

fn compare_file(args: &CompareArgs, interrupt: &Interrupt) -> Result<Report, String> {
    let models = parse_models(&args.models, "--models").map_err(|error| error.message)?;
    let options = args.options.0.resolve(Options::for_comparison(), "").map_err(|error| error.message)?;
    let limits = args.run.limits();
    let threads = args.run.threads("compare")?;
    let memory_limit = args.run.memory_limit();
    let mut input = Input::open(&args.input)?;
    let report_path = args.run.report_path()?;
    let mut output = Output::open(args.run.output.as_deref(), input.file.as_slice(), interrupt)?;
    let progress = Progress::new(input.size, !args.run.quiet);
    let work = Work { models: models.len(), options: &options, limits: &limits, threads: &threads, memory_limit };

    // The chunks the stream cuts (the output does not depend on them: lines are answered one by
    // one and the sums added in line order).
    let mut builder = ChunkBuilder::new((CHUNK_BYTES / models.len()).max(16 * 1024), limits.max_line_bytes);
    let mut chunks = Vec::new();
    let batch_size = 2 * threads.current_num_threads();
    let mut totals = CompareTotals::new(models.len());
    let mut report = Report::default();
    let mut block = vec![0u8; READ_BYTES];
    loop {
        let read = match input.reader.read(&mut block) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(format!("cannot read {}: {error}", args.input.display())),
        };
        builder.push(&block[..read], &mut chunks);
        if chunks.len() >= batch_size {
            let lines = write_chunks(&mut chunks, &work, &mut output, &mut totals, &mut report)?;
            progress.advance(0, lines);
        }
        progress.advance(read as u64, 0);
    }
    chunks.extend(builder.finish());
    let lines = write_chunks(&mut chunks, &work, &mut output, &mut totals, &mut report)?;
    progress.advance(0, lines);
    // Every byte of the input has been read: the fingerprint is the whole input's.
    let run = Run::compared(&options, &models).with_input(input.fingerprint());
    let summary = CompareSummary::new(&totals, report.lines_failed, run);
    let summary_line = compare_summary_line(&summary);
    output.write_all(&summary_line).map_err(|error| format!("cannot write the results: {error}"))?;
    let report_file = match report_path {
        Some(path) => Some(beside_results(&summary_line, path, &args.input, input.file.as_slice(), interrupt)?),
        None => None,
    };
    output.finish(interrupt)?;
    if let Some(report_file) = report_file {
        report_file.finish(interrupt)?;
    }
    progress.finish();
    Ok(report)
}

/// Compares `chunks` in parallel and writes their output in order; returns the lines done.
fn write_chunks(
    chunks: &mut Vec<Chunk>,
    work: &Work<'_>,
    output: &mut dyn Write,
    totals: &mut CompareTotals,
    report: &mut Report,
) -> Result<u64, String> {
    // Each chunk has the whole budget to itself, as in `prefeval eval`.
    let compare = |chunk: &Chunk| {
        let held = MemoryBudget::new(work.memory_limit).empty();
        compare_chunk(chunk, work.models, work.options, work.limits, work.threads, held)
    };
    let outcomes: Vec<_> = work.threads.install(|| {
        chunks
            .par_iter()
            .map(|chunk| match compare(chunk) {
                // Lines that together can never fit: each on its own, as the stream does.
                Err(OverBudget::NeverFits { .. }) => chunk.single_lines().iter().map(compare).collect(),
                compared => vec![compared],
            })
            .collect()
    });
    let lines: u64 = chunks.iter().map(Chunk::lines).sum();
    chunks.clear();
    for outcome in outcomes.into_iter().flatten() {
        let (outcome, _) = outcome.map_err(|_| {
            format!(
                "a chunk of lines needs more than the memory budget of {} bytes together; raise --memory-limit-bytes",
                work.memory_limit
            )
        })?;
        output.write_all(&outcome.output).map_err(|error| format!("cannot write the results: {error}"))?;
        outcome.evaluations.iter().for_each(|per_model| totals.add_list(per_model));
        totals.add_lengths(&outcome.lengths);
        report.lines_failed += outcome.lines_failed;
        if let Some(line) = outcome.first_failed_line {
            report.first_failed_line.get_or_insert(line);
        }
    }
    report.lines += lines;
    Ok(lines)
}
