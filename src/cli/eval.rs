//! `prefeval eval`: the offline door. Reads an NDJSON file (or a JSON batch file), evaluates it with
//! the pipeline on every core, and writes exactly what `POST /v1/evaluate/stream` would answer for
//! it: the same chunks of lines, the same result and error lines, the same summary.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use rayon::prelude::*;

use clap::Args;

use super::file_run::{FileRunFlags, Report, exit_status};
use super::human::human_summary;
use super::input::{HeadError, Input, READ_BYTES, read_head};
use super::interrupt::Interrupt;
use super::options::OptionFlags;
use super::output::Output;
use super::progress::Progress;
use super::report::beside_results;
use crate::limits::Limits;
use std::collections::HashSet;
use std::sync::Arc;

use crate::error::Error;
use crate::math::ListEvaluation;
use crate::memory::{MemoryBudget, OverBudget};
use crate::pipeline::dataset::{ChunkFigures, Dataset, GroupGate, MAX_GROUPS, too_many_groups};
use crate::pipeline::encode::{ListJson, OutputBlocks, write_error_line, write_list_line};
use crate::pipeline::ndjson::{
    CHUNK_BYTES, CHUNK_BYTES_WITH_PAIRS, Chunk, ChunkBuilder, evaluate_chunk, loss_overflow, strip_bom,
};
use crate::pipeline::options::Results;
use crate::pipeline::run::Run;
use crate::pipeline::summary::{Summary, summary_line};
use crate::pipeline::validate::{self, check_model};
use crate::pipeline::wire::Text;
use crate::pipeline::{self, Options};

#[derive(Clone, Debug, Args)]
pub struct EvalArgs {
    /// NDJSON file, one list per line, or a JSON batch file (`{"lists": [...]}`); `-` reads stdin.
    pub input: PathBuf,
    /// Where the results go, the limits, the threads, the progress bar.
    #[command(flatten)]
    pub run: FileRunFlags,
    /// The evaluation options, as the stream's query parameters (they override a batch file's own).
    #[command(flatten)]
    pub options: OptionFlags,
    /// The model label, as the stream's `model` parameter (checked the same way; offline it labels
    /// no metrics).
    #[arg(long)]
    pub model: Option<String>,
}

pub fn run(args: &EvalArgs) -> ExitCode {
    let started = Instant::now();
    let outcome = Interrupt::watch("eval").and_then(|interrupt| evaluate_file(args, &interrupt));
    if let (Ok(done), false) = (&outcome, args.run.quiet) {
        eprint!("{}", human_summary(&done.summary, done.bytes, started.elapsed()));
    }
    exit_status("eval", outcome.as_ref().map(|done| &done.report).map_err(String::as_str))
}

/// A run done: how it went, the summary it ended with, the bytes it read.
struct Done {
    report: Report,
    summary: Summary,
    /// The input's bytes once decoded.
    bytes: u64,
}

fn evaluate_file(args: &EvalArgs, interrupt: &Interrupt) -> Result<Done, String> {
    if let Some(model) = &args.model {
        check_model(&Text(model.as_str().into()), "--model").map_err(|error| error.message)?;
    }
    let limits = args.run.limits();
    let threads = args.run.threads("eval")?;
    let mut input = Input::open(&args.input)?;
    let report_path = args.run.report_path()?;
    let mut output = Output::open(args.run.output.as_deref(), input.file.as_slice(), interrupt)?;
    let progress = Progress::new(input.size, !args.run.quiet);

    let read_error = |error: std::io::Error| format!("cannot read {}: {error}", args.input.display());
    let head = read_head(&mut input.reader, limits.max_line_bytes).map_err(|error| match error {
        HeadError::Read(error) => read_error(error),
        HeadError::BatchTooLarge { limit } => format!(
            "{} is a JSON batch larger than the limit of {limit} bytes; raise it with --max-body-bytes \
             (or PREFEVAL_MAX_BODY_BYTES), or write one list per line (NDJSON)",
            args.input.display()
        ),
    })?;
    progress.advance(head.bytes.len() as u64, 0);
    let (report, dataset, run) = if head.batch {
        evaluate_batch(strip_bom(&head.bytes), args, &limits, &threads, &mut output)?
    } else {
        let options = args.options.0.resolve(Options::for_datasets(), "").map_err(|error| error.message)?;
        let memory_limit = args.run.memory_limit();
        let (report, dataset) = evaluate_lines(
            head.bytes,
            &mut input.reader,
            &options,
            &limits,
            memory_limit,
            &threads,
            &mut output,
            &progress,
        )?;
        (report, dataset, Run::new(&options, args.model.as_deref()))
    };
    // Every byte of the input has been read: the fingerprint is the whole input's.
    let fingerprint = input.fingerprint();
    let summary = dataset.summary(report.lines_failed, run.with_input(fingerprint));
    let summary_line = summary_line(&summary);
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
    // The rate a person reads is of the data, decoded: that of a compressed file would vary with its ratio.
    Ok(Done { report, summary, bytes: input.decoded_bytes() })
}

/// NDJSON: chunks of lines as the stream endpoint cuts them, a few per core at a time.
#[allow(clippy::too_many_arguments)]
fn evaluate_lines(
    first_line: Vec<u8>,
    input: &mut impl Read,
    options: &Options,
    limits: &Limits,
    memory_limit: usize,
    threads: &rayon::ThreadPool,
    output: &mut dyn Write,
    progress: &Progress,
) -> Result<(Report, Dataset), String> {
    let target = if options.math.include_pairs { CHUNK_BYTES_WITH_PAIRS } else { CHUNK_BYTES };
    let mut builder = ChunkBuilder::new(target, limits.max_line_bytes);
    let mut chunks = Vec::new();
    builder.push(&first_line, &mut chunks);
    let batch_size = 2 * threads.current_num_threads();
    let mut run = RunFigures { dataset: Dataset::new(options), full_gate: None };
    let mut report = Report::default();
    let mut block = vec![0u8; READ_BYTES];
    loop {
        let read = match input.read(&mut block) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(format!("cannot read the input: {error}")),
        };
        builder.push(&block[..read], &mut chunks);
        if chunks.len() >= batch_size {
            let lines =
                write_chunks(&mut chunks, options, limits, threads, memory_limit, output, &mut run, &mut report)?;
            progress.advance(0, lines);
        }
        progress.advance(read as u64, 0);
    }
    chunks.extend(builder.finish());
    let lines = write_chunks(&mut chunks, options, limits, threads, memory_limit, output, &mut run, &mut report)?;
    progress.advance(0, lines);
    Ok((report, run.dataset))
}

/// What a run adds its chunks to: its figures, and once it holds as many groups as it may, the
/// gate every later chunk is evaluated behind.
struct RunFigures {
    dataset: Dataset,
    full_gate: Option<Arc<GroupGate>>,
}

/// Evaluates `chunks` in parallel and writes their output in order; returns the lines done.
#[allow(clippy::too_many_arguments)]
fn write_chunks(
    chunks: &mut Vec<Chunk>,
    options: &Options,
    limits: &Limits,
    threads: &rayon::ThreadPool,
    memory_limit: usize,
    output: &mut dyn Write,
    run: &mut RunFigures,
    report: &mut Report,
) -> Result<u64, String> {
    // Each chunk has the whole budget to itself: what it decides is whether a line can ever fit,
    // never whether others hold the memory now.
    let evaluate = |chunk: &Chunk, gate: Option<&GroupGate>| {
        evaluate_chunk(chunk, options, limits, gate, threads, MemoryBudget::new(memory_limit).empty())
    };
    // Each piece with the lines it answers: the chunk itself (`None`), or one of its lines when
    // its lines together can never fit and are evaluated each on its own, as the stream does.
    let pieces = |chunk: &Chunk, gate: Option<&GroupGate>| match evaluate(chunk, gate) {
        Err(OverBudget::NeverFits { .. }) => {
            chunk.single_lines().into_iter().map(|line| (evaluate(&line, gate), Some(line))).collect()
        }
        evaluated => vec![(evaluated, None)],
    };
    let gate = run.full_gate.clone();
    let outcomes: Vec<Vec<_>> =
        threads.install(|| chunks.par_iter().map(|chunk| pieces(chunk, gate.as_deref())).collect());
    let lines: u64 = chunks.iter().map(Chunk::lines).sum();
    for (chunk, chunk_pieces) in chunks.iter().zip(outcomes) {
        for (outcome, line) in chunk_pieces {
            // Lines that never fit are error lines; a chunk whose fitting lines together outgrow the
            // budget (their answers all held at once) is the one refusal left.
            let refused = |_| {
                format!(
                    "a chunk of lines needs more than the memory budget of {memory_limit} bytes together; raise --memory-limit-bytes"
                )
            };
            let (mut outcome, _) = outcome.map_err(refused)?;
            if run.dataset.overflows(&outcome.figures) {
                // More new groups than the run has room for: evaluated again behind a gate, so the
                // lines past the limit answer `too_many_groups`.
                let gate = run.dataset.gate();
                let piece = line.as_ref().unwrap_or(chunk);
                (outcome, _) = threads.install(|| evaluate(piece, Some(&gate))).map_err(refused)?;
            }
            output.write_all(&outcome.output).map_err(|error| format!("cannot write the results: {error}"))?;
            run.dataset.add_chunk(&outcome.evaluations, &outcome.figures);
            if run.full_gate.is_none() && run.dataset.is_full() {
                run.full_gate = Some(run.dataset.gate());
            }
            report.lines_failed += outcome.lines_failed;
            if let Some(line) = outcome.first_failed_line {
                report.first_failed_line.get_or_insert(line);
            }
        }
    }
    chunks.clear();
    report.lines += lines;
    Ok(lines)
}

/// A JSON batch file: validated and evaluated as `POST /v1/evaluate` would, written as stream
/// lines (`line` is the list's position in `lists`, from 1); the summary is the caller's to write.
/// The file's options apply over the defaults of `prefeval eval` (no pairs), the flags over both;
/// `--model` over the file's `model`.
fn evaluate_batch(
    body: &[u8],
    args: &EvalArgs,
    limits: &Limits,
    threads: &rayon::ThreadPool,
    output: &mut dyn Write,
) -> Result<(Report, Dataset, Run), String> {
    let batch = validate::batch(body, limits, &Options::for_datasets(), &args.options.0).map_err(|error| {
        let path = error.path.as_deref().map(|path| format!(" at {path}")).unwrap_or_default();
        format!(
            "the batch is invalid ({}{path}): {}",
            serde_json::to_string(&error.code).unwrap_or_default(),
            error.message
        )
    })?;
    let evaluated = pipeline::batch::run(&batch, threads);
    let mut report = Report { lines: evaluated.lists.len() as u64, ..Report::default() };
    // Each list as a stream line: its number is its position from 1; a list whose group would be
    // one more than a run keeps answers `too_many_groups`, as on the stream.
    let group_field = batch.options.naming.data_name("group");
    let mut groups: HashSet<&str> = HashSet::new();
    let slots: Vec<(u64, Result<usize, Error>)> = (batch.inputs.iter().enumerate())
        .map(|(index, input)| {
            let line = index as u64 + 1;
            match &input.group {
                Some(group) if !groups.contains(&*group.0) && groups.len() >= MAX_GROUPS => {
                    (line, Err(too_many_groups(group_field)))
                }
                Some(group) => {
                    groups.insert(&group.0);
                    (line, Ok(index))
                }
                None => (line, Ok(index)),
            }
        })
        .collect();
    let mut out = OutputBlocks::new(Vec::new());
    let mut added = Vec::new();
    for (line, slot) in &slots {
        let written = match slot.as_ref().map(|&index| (index, &evaluated.lists[index])) {
            Ok((index, Ok(evaluation))) => {
                added.push(ListEvaluation { pairs: None, gradients: None, ..evaluation.clone() });
                match batch.options.results {
                    Results::Errors => Ok(()),
                    Results::All => {
                        let (input, pair_ids) = (&batch.inputs[index], batch.options.include_pair_ids);
                        write_list_line(&mut out, &ListJson { line: Some(*line), input, evaluation, pair_ids })
                    }
                }
            }
            Ok((_, Err(_))) => {
                report.failed(*line);
                write_error_line(&mut out, *line, &loss_overflow())
            }
            Err(error) => {
                report.failed(*line);
                write_error_line(&mut out, *line, error)
            }
        };
        written.map_err(|error| format!("cannot encode the results: {error}"))?;
    }
    let mut dataset = Dataset::new(&batch.options);
    let figures = ChunkFigures::of(&slots, &batch.inputs, &batch.ranked, &evaluated.lists, &batch.options);
    dataset.add_chunk(&added, &figures);
    let model = args.model.as_deref().or(batch.model.as_ref().map(|model| &*model.0));
    let run = Run::new(&batch.options, model);
    let out = out.finish().map_err(|error| format!("cannot encode the results: {error}"))?;
    output.write_all(&out).map_err(|error| format!("cannot write the results: {error}"))?;
    Ok((report, dataset, run))
}
