//! The command line: `prefeval [serve]` (the service), `eval`, `compare`, `diff`, `merge`, `report` and `healthcheck`, one file
//! per subcommand with its arguments beside it; the service's settings are `crate::config`.

pub mod compare;
pub mod decompressing;
pub mod diff;
pub mod eval;
pub mod file_run;
pub mod healthcheck;
mod human;
pub mod input;
pub mod interrupt;
pub mod merge;
pub mod options;
pub mod output;
mod progress;
pub mod report;

use clap::{Parser, Subcommand};

use crate::config::Config;
use compare::CompareArgs;
use diff::DiffArgs;
use eval::EvalArgs;
use healthcheck::HealthcheckArgs;
use merge::MergeArgs;
use report::ReportArgs;

#[derive(Debug, Parser)]
#[command(name = "prefeval", version, about = "Scores reward models against human rankings over HTTP.")]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Settings for serving when no subcommand is given.
    #[command(flatten)]
    pub serve: Config,
}

// Built once at start-up: the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (the default when no subcommand is given).
    Serve(Config),
    /// Probe a running prefeval over HTTP and exit 0 when it answers 200 (for container health
    /// checks in images without curl).
    Healthcheck(HealthcheckArgs),
    /// Evaluate an NDJSON file (or a JSON batch file) offline, with the server's code and numbers:
    /// prints what `POST /v1/evaluate/stream` would answer for it. Exit status: 0 when every line
    /// was evaluated, 1 when any line failed, 2 for usage or I/O errors, 130 or 143 after SIGINT
    /// or SIGTERM (an output file is then not written).
    Eval(EvalArgs),
    /// Compare reward models over an NDJSON file of lists in `/v1/compare`'s shape, offline:
    /// prints what `POST /v1/compare/stream` would answer for it. Exit status as `eval`'s.
    Compare(CompareArgs),
    /// Compare two `prefeval eval` outputs of the same lists (each model's rewards evaluated on
    /// its own), paired by list `id`: prints the compare summary of the two models. Outputs that
    /// are not of the same lists are refused (exit status 2).
    Diff(DiffArgs),
    /// Print the summary of several result files (of `prefeval eval` or the stream endpoint, or
    /// all of `prefeval compare` or the compare stream) as the summary of the whole: their totals
    /// merge exactly (shards over replicas). Summaries that no evaluation could write, the two
    /// kinds mixed, and the same input twice, are refused (exit status 2).
    Merge(MergeArgs),
    /// Draw one self-contained HTML report (inline SVG charts, no request of any kind) of an
    /// output of `eval`, `compare`, `merge` or `diff`, or of several `eval` outputs of the same
    /// lists by different models. Exit status 2 for an input that is none of those.
    Report(ReportArgs),
}

/// What the command line asks for.
#[allow(clippy::large_enum_variant)]
pub enum Action {
    Serve(Config),
    Healthcheck(HealthcheckArgs),
    Eval(EvalArgs),
    Compare(CompareArgs),
    Diff(DiffArgs),
    Merge(MergeArgs),
    Report(ReportArgs),
}

impl Cli {
    pub fn into_action(self) -> Action {
        match self.command {
            Some(Command::Serve(config)) => Action::Serve(config),
            Some(Command::Healthcheck(args)) => Action::Healthcheck(args),
            Some(Command::Eval(args)) => Action::Eval(args),
            Some(Command::Compare(args)) => Action::Compare(args),
            Some(Command::Diff(args)) => Action::Diff(args),
            Some(Command::Merge(args)) => Action::Merge(args),
            Some(Command::Report(args)) => Action::Report(args),
            None => Action::Serve(self.serve),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Action, Cli};

    #[test]
    fn serve_subcommand_takes_the_same_flags() {
        let args = ["prefeval", "serve", "--listen", "0.0.0.0:9000", "--workers", "3"];
        let Action::Serve(config) = Cli::try_parse_from(args).expect("valid flags").into_action() else {
            panic!("serve parses as serve")
        };
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.worker_count(), 3);
    }
}
