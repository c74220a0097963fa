//! What `prefeval eval` and `prefeval compare` share besides their options: the flags of a run
//! over a file (where the results go, the line limit, the memory budget of a chunk, the threads,
//! the progress bar), the count of its lines, and the exit status it ends with.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use crate::config::Config;
use crate::limits::Limits;

#[derive(Clone, Debug, Args)]
pub struct FileRunFlags {
    /// Write the result lines here instead of stdout: to a temporary file beside it, renamed onto
    /// it once the run is done (never the input file itself).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Also draw the HTML report of the run's summary here (as `prefeval report` would of the
    /// output), put in place with the results.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Longest line (and, for `eval`, longest JSON batch file), in bytes: the service's body limit.
    #[arg(long, env = "PREFEVAL_MAX_BODY_BYTES", default_value_t = Config::default().max_body_bytes)]
    pub max_body_bytes: usize,
    /// The memory budget, in bytes, of one chunk of lines, as the service's: a line that alone needs
    /// more gets the error line the stream gives it [default: unlimited].
    #[arg(long, env = "PREFEVAL_MEMORY_LIMIT_BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    pub memory_limit_bytes: Option<u64>,
    /// Threads working on chunks of lines [default: number of CPUs].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: Option<u16>,
    /// No progress bar (and, for `eval`, no summary for a person) on stderr; errors are still reported.
    #[arg(long, short)]
    pub quiet: bool,
}

impl FileRunFlags {
    /// Where the report goes, unless that is the results' own file.
    pub fn report_path(&self) -> Result<Option<&Path>, String> {
        let Some(report) = self.report.as_deref() else {
            return Ok(None);
        };
        let absolute = |path: &Path| std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        if self.output.as_deref().is_some_and(|output| absolute(output) == absolute(report)) {
            return Err(format!(
                "--report {} is the results' file (--output): give the report a file of its own",
                report.display()
            ));
        }
        Ok(Some(report))
    }

    pub fn limits(&self) -> Limits {
        Config { max_body_bytes: self.max_body_bytes, ..Config::default() }.limits()
    }

    /// The memory budget of one chunk, in bytes (none given: unlimited).
    pub fn memory_limit(&self) -> usize {
        self.memory_limit_bytes.map_or(usize::MAX, |bytes| usize::try_from(bytes).unwrap_or(usize::MAX))
    }

    /// The run's threads, named `prefeval-<command>-<i>`.
    pub fn threads(&self, command: &'static str) -> Result<rayon::ThreadPool, String> {
        let workers =
            self.workers.map_or_else(|| std::thread::available_parallelism().map_or(1, usize::from), usize::from);
        rayon::ThreadPoolBuilder::new()
            .num_threads(workers)
            .thread_name(move |i| format!("prefeval-{command}-{i}"))
            .build()
            .map_err(|error| format!("cannot start {workers} threads: {error}"))
    }
}

/// The lines a run read, and those that failed.
#[derive(Debug, Default)]
pub struct Report {
    pub lines: u64,
    pub lines_failed: u64,
    pub first_failed_line: Option<u64>,
}

impl Report {
    pub fn failed(&mut self, line: u64) {
        self.lines_failed += 1;
        self.first_failed_line.get_or_insert(line);
    }
}

/// 0 every line done, 1 some line failed (the output is complete), 2 usage or I/O error; the
/// reason on stderr, after `prefeval <command>: `.
pub fn exit_status(command: &str, outcome: Result<&Report, &str>) -> ExitCode {
    match outcome {
        Ok(report) if report.lines_failed == 0 => ExitCode::SUCCESS,
        Ok(report) => {
            eprintln!(
                "prefeval {command}: {} of {} lines failed; the first is line {}",
                report.lines_failed,
                report.lines,
                report.first_failed_line.unwrap_or(0)
            );
            ExitCode::from(1)
        }
        Err(message) => {
            eprintln!("prefeval {command}: {message}");
            ExitCode::from(2)
        }
    }
}
