//! `prefeval eval`: the offline door. Reads an NDJSON file (or a JSON batch file), evaluates it with
//! the pipeline on every core, and writes exactly what `POST /v1/evaluate/stream` would answer for
//! it: the same chunks of lines, the same result and error lines, the same summary.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::Deserialize;
use serde::de::IgnoredAny;

use clap::Args;

use super::options::OptionFlags;
use crate::config::Config;
use crate::limits::Limits;
use crate::math::Totals;
use crate::memory::MemoryBudget;
use crate::pipeline::encode::{ListJson, OutputBlocks, write_error_line, write_list_line};
use crate::pipeline::ndjson::{
    CHUNK_BYTES, CHUNK_BYTES_WITH_PAIRS, Chunk, ChunkBuilder, evaluate_chunk, loss_overflow,
};
use crate::pipeline::summary::{Summary, summary_line};
use crate::pipeline::validate::{self, check_model};
use crate::pipeline::wire::Text;
use crate::pipeline::{self, Options};

/// Bytes read from the input at a time.
const READ_BYTES: usize = 1 << 20;

#[derive(Clone, Debug, Args)]
pub struct EvalArgs {
    /// NDJSON file, one list per line, or a JSON batch file (`{"lists": [...]}`); `-` reads stdin.
    pub input: PathBuf,
    /// Write the result lines here instead of stdout.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// The evaluation options, as the stream's query parameters (they override a batch file's own).
    #[command(flatten)]
    pub options: OptionFlags,
    /// The model label, as the stream's `model` parameter (checked the same way; offline it labels
    /// no metrics).
    #[arg(long)]
    pub model: Option<String>,
    /// Threads evaluating chunks of lines [default: number of CPUs].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: Option<u16>,
}

pub fn run(args: &EvalArgs) -> ExitCode {
    match evaluate_file(args) {
        Ok(report) if report.lines_failed == 0 => ExitCode::SUCCESS,
        Ok(report) => {
            eprintln!(
                "prefeval eval: {} of {} lines failed; the first is line {}",
                report.lines_failed,
                report.lines,
                report.first_failed_line.unwrap_or(0)
            );
            ExitCode::from(1)
        }
        Err(message) => {
            eprintln!("prefeval eval: {message}");
            ExitCode::from(2)
        }
    }
}

#[derive(Debug, Default)]
struct Report {
    lines: u64,
    lines_failed: u64,
    first_failed_line: Option<u64>,
}

impl Report {
    fn failed(&mut self, line: u64) {
        self.lines_failed += 1;
        self.first_failed_line.get_or_insert(line);
    }
}

fn evaluate_file(args: &EvalArgs) -> Result<Report, String> {
    if let Some(model) = &args.model {
        check_model(&Text(model.as_str().into()), "--model").map_err(|error| error.message)?;
    }
    let limits = Config::default().limits();
    let workers = args.workers.map_or_else(|| std::thread::available_parallelism().map_or(1, usize::from), usize::from);
    let threads = rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .thread_name(|i| format!("prefeval-eval-{i}"))
        .build()
        .map_err(|error| format!("cannot start {workers} threads: {error}"))?;
    let (input, size) = open_input(&args.input)?;
    let mut input = BufReader::with_capacity(READ_BYTES, input);
    let mut output = open_output(args.output.as_deref())?;
    let progress = Progress::new(size);

    let mut first_line = Vec::new();
    (&mut input)
        .take(limits.max_line_bytes as u64 + 1)
        .read_until(b'\n', &mut first_line)
        .map_err(|error| format!("cannot read {}: {error}", args.input.display()))?;
    let read_error = |error: std::io::Error| format!("cannot read {}: {error}", args.input.display());
    let (mut head, batch) = batch_or_lines(first_line, &mut input, limits.max_line_bytes).map_err(read_error)?;
    progress.advance(head.len() as u64, 0);
    let report = if batch {
        // Whatever follows the batch must be whitespace; the parser says so if not.
        let before = head.len();
        input.read_to_end(&mut head).map_err(read_error)?;
        progress.advance((head.len() - before) as u64, 0);
        evaluate_batch(&head, args, &limits, &threads, &mut output)?
    } else {
        let options = args.options.0.resolve(Options::default(), "").map_err(|error| error.message)?;
        evaluate_lines(head, &mut input, &options, &limits, &threads, &mut output, &progress)?
    };
    output.flush().map_err(|error| format!("cannot write the results: {error}"))?;
    progress.finish(report.lines);
    Ok(report)
}

/// Whether the input is a JSON batch (`{"lists": [...]}`) rather than NDJSON, and the bytes read
/// to tell. A batch's first line is an object with `lists`, or, written over several lines, no
/// complete JSON value; then the input must end within `max_bytes` and parse as a batch. Anything
/// else is NDJSON, starting with the bytes read (a cut-short first line is then that line's error).
fn batch_or_lines(first_line: Vec<u8>, input: &mut impl Read, max_bytes: usize) -> std::io::Result<(Vec<u8>, bool)> {
    #[derive(Deserialize)]
    struct Probe {
        lists: Option<IgnoredAny>,
    }
    let starts_object = first_line.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    match serde_json::from_slice::<Probe>(&first_line) {
        Ok(probe) => Ok((first_line, probe.lists.is_some())),
        Err(error) if error.is_eof() && starts_object => {
            let mut head = first_line;
            let limit = max_bytes.saturating_sub(head.len()) as u64 + 1;
            input.take(limit).read_to_end(&mut head)?;
            let whole = head.len() <= max_bytes;
            let batch = whole && serde_json::from_slice::<Probe>(&head).is_ok_and(|probe| probe.lists.is_some());
            Ok((head, batch))
        }
        Err(_) => Ok((first_line, false)),
    }
}

fn open_input(path: &Path) -> Result<(Box<dyn Read + Send>, Option<u64>), String> {
    if path.as_os_str() == "-" {
        return Ok((Box::new(std::io::stdin()), None));
    }
    let file = File::open(path).map_err(|error| format!("cannot open {}: {error}", path.display()))?;
    let size = file.metadata().ok().map(|meta| meta.len());
    Ok((Box::new(file), size))
}

fn open_output(path: Option<&Path>) -> Result<Box<dyn Write>, String> {
    Ok(match path {
        Some(path) => Box::new(BufWriter::new(
            File::create(path).map_err(|error| format!("cannot create {}: {error}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    })
}

/// NDJSON: chunks of lines as the stream endpoint cuts them, a few per core at a time.
fn evaluate_lines(
    first_line: Vec<u8>,
    input: &mut impl Read,
    options: &Options,
    limits: &Limits,
    threads: &rayon::ThreadPool,
    output: &mut dyn Write,
    progress: &Progress,
) -> Result<Report, String> {
    let target = if options.math.include_pairs { CHUNK_BYTES_WITH_PAIRS } else { CHUNK_BYTES };
    let mut builder = ChunkBuilder::new(target, limits.max_line_bytes);
    let mut chunks = Vec::new();
    builder.push(&first_line, &mut chunks);
    let budget = MemoryBudget::new(usize::MAX);
    let batch_size = 2 * threads.current_num_threads();
    let mut totals = Totals::default();
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
            let lines = write_chunks(&mut chunks, options, limits, threads, &budget, output, &mut totals, &mut report)?;
            progress.advance(0, lines);
        }
        progress.advance(read as u64, 0);
    }
    chunks.extend(builder.finish());
    let lines = write_chunks(&mut chunks, options, limits, threads, &budget, output, &mut totals, &mut report)?;
    progress.advance(0, lines);
    let summary = Summary::new(options.math.normalization, &totals, report.lines_failed, options.confidence);
    output.write_all(&summary_line(&summary)).map_err(|error| format!("cannot write the results: {error}"))?;
    Ok(report)
}

/// Evaluates `chunks` in parallel and writes their output in order; returns the lines done.
#[allow(clippy::too_many_arguments)]
fn write_chunks(
    chunks: &mut Vec<Chunk>,
    options: &Options,
    limits: &Limits,
    threads: &rayon::ThreadPool,
    budget: &MemoryBudget,
    output: &mut dyn Write,
    totals: &mut Totals,
    report: &mut Report,
) -> Result<u64, String> {
    let outcomes: Vec<_> = threads
        .install(|| chunks.par_iter().map(|chunk| evaluate_chunk(chunk, options, limits, threads, budget)).collect());
    let lines: u64 = chunks.iter().map(Chunk::lines).sum();
    chunks.clear();
    for outcome in outcomes {
        // The budget here is unlimited: a refusal cannot happen.
        let (outcome, _) = outcome.map_err(|refusal| format!("out of memory budget: {refusal:?}"))?;
        output.write_all(&outcome.output).map_err(|error| format!("cannot write the results: {error}"))?;
        outcome.evaluations.iter().for_each(|evaluation| totals.add(evaluation));
        report.lines_failed += outcome.lines_failed;
        if let Some(line) = outcome.first_failed_line {
            report.first_failed_line.get_or_insert(line);
        }
    }
    report.lines += lines;
    Ok(lines)
}

/// A JSON batch file: validated and evaluated as `POST /v1/evaluate` would, written as stream
/// lines (`line` is the list's position in `lists`, from 1).
fn evaluate_batch(
    body: &[u8],
    args: &EvalArgs,
    limits: &Limits,
    threads: &rayon::ThreadPool,
    output: &mut dyn Write,
) -> Result<Report, String> {
    let batch = validate::batch(body, limits, &args.options.0).map_err(|error| {
        let path = error.path.as_deref().map(|path| format!(" at {path}")).unwrap_or_default();
        format!(
            "the batch is invalid ({}{path}): {}",
            serde_json::to_string(&error.code).unwrap_or_default(),
            error.message
        )
    })?;
    // Figures across lists belong to POST /v1/evaluate's answer, which this command does not
    // write: refuse rather than ignore what the file asks for.
    let options = &batch.options;
    let asked = [
        ("options.calibration_bins", options.calibration_bins.is_some()),
        ("options.top_disagreements", options.top_disagreements.is_some()),
        ("lists[].group", batch.inputs.iter().any(|input| input.group.is_some())),
    ];
    if let Some((field, _)) = asked.iter().find(|(_, asked)| *asked) {
        return Err(format!(
            "{field} asks for figures of POST /v1/evaluate's answer, which `prefeval eval` does not write; \
             send the batch to the service, or leave it out"
        ));
    }
    let evaluated = pipeline::batch::run(&batch, threads);
    let mut report = Report { lines: evaluated.lists.len() as u64, ..Report::default() };
    let mut out = OutputBlocks::new(Vec::new());
    for (index, (input, evaluation)) in batch.inputs.iter().zip(&evaluated.lists).enumerate() {
        let line = index as u64 + 1;
        let written = match evaluation {
            Ok(evaluation) => {
                let pair_ids = batch.options.include_pair_ids;
                write_list_line(&mut out, &ListJson { line: Some(line), input, evaluation, pair_ids })
            }
            Err(_) => {
                report.failed(line);
                write_error_line(&mut out, line, &loss_overflow())
            }
        };
        written.map_err(|error| format!("cannot encode the results: {error}"))?;
    }
    let totals = evaluated.totals;
    let summary =
        Summary::new(batch.options.math.normalization, &totals, report.lines_failed, batch.options.confidence);
    let mut out = out.finish().map_err(|error| format!("cannot encode the results: {error}"))?;
    out.extend(summary_line(&summary));
    output.write_all(&out).map_err(|error| format!("cannot write the results: {error}"))?;
    Ok(report)
}

/// A progress bar on stderr when it is a terminal: lines, megabytes, rate and, from the file's
/// size, the time left. Nothing otherwise.
struct Progress {
    bar: Option<ProgressBar>,
    lines: std::cell::Cell<u64>,
}

impl Progress {
    fn new(size: Option<u64>) -> Progress {
        let lines = std::cell::Cell::new(0);
        if !std::io::stderr().is_terminal() {
            return Progress { bar: None, lines };
        }
        let (bar, template) = match size {
            Some(size) => (
                ProgressBar::new(size),
                "{bar:30} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
            ),
            None => (ProgressBar::new_spinner(), "{spinner} {binary_bytes} {binary_bytes_per_sec} {msg}"),
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        Progress { bar: Some(bar), lines }
    }

    fn advance(&self, bytes: u64, lines: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
            if lines > 0 {
                self.lines.set(self.lines.get() + lines);
                bar.set_message(format!("{} lines", self.lines.get()));
            }
        }
    }

    fn finish(&self, lines: u64) {
        if let Some(bar) = &self.bar {
            bar.finish_with_message(format!("{lines} lines"));
        }
    }
}
