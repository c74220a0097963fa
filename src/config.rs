//! Every setting of the service: one flag each, each also read from a `PREFEVAL_*` environment
//! variable. `prefeval --help` is generated from these doc comments. The subcommands' own
//! arguments live beside them in `crate::cli`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, FromArgMatches, ValueEnum};
use prefeval_core::limits::Limits;

use crate::server::tokens::ApiTokens;

#[derive(Clone, Debug, Args)]
pub struct Config {
    /// Address and port to listen on.
    #[arg(long, env = "PREFEVAL_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Blocking worker threads that compute evaluations [default: number of CPUs].
    #[arg(long, env = "PREFEVAL_WORKERS", value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: Option<u16>,

    /// Requests that may wait for a worker; one more is answered 503 with Retry-After.
    #[arg(long, env = "PREFEVAL_QUEUE_DEPTH", default_value_t = 64)]
    pub queue_depth: usize,

    /// Largest request body accepted, in bytes (413 above it).
    #[arg(long, env = "PREFEVAL_MAX_BODY_BYTES", default_value_t = 32 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Most memory, in bytes, that requests in flight may hold together: bodies being read or
    /// waiting for a worker, their decoded form, results and answers not yet sent. A request the
    /// budget cannot cover now is answered 503 with Retry-After; one that exceeds it alone, 413
    /// [default: half the cgroup memory limit when there is one, else 1 GiB].
    #[arg(long, env = "PREFEVAL_MEMORY_LIMIT_BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    pub memory_limit_bytes: Option<u64>,

    /// Most client connections open at once on the main listener; further ones wait in the
    /// kernel's accept queue until one closes.
    #[arg(long, env = "PREFEVAL_MAX_CONNECTIONS", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// Seconds answer bytes may wait for a client that takes none (a reader that stopped, or an
    /// HTTP/2 peer that grants no flow-control window) before its connection is closed and
    /// everything it held is released.
    #[arg(long, env = "PREFEVAL_WRITE_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub write_timeout_secs: u64,

    /// Most streams one HTTP/2 connection may have open at once.
    #[arg(long, env = "PREFEVAL_MAX_CONCURRENT_STREAMS", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_streams: u32,

    /// Most items one list may hold (422 above it).
    #[arg(long, env = "PREFEVAL_MAX_ITEMS_PER_LIST", default_value_t = 10_000)]
    pub max_items_per_list: usize,

    /// Most lists one request may hold (422 above it).
    #[arg(long, env = "PREFEVAL_MAX_LISTS", default_value_t = 100_000)]
    pub max_lists: usize,

    /// Most pairs one response may return with include_pairs (422 above it).
    #[arg(long, env = "PREFEVAL_MAX_PAIRS", default_value_t = 1_000_000)]
    pub max_pairs: u64,

    /// Most implied pairs one request may evaluate, returned or not: bounds the CPU one request takes.
    #[arg(long, env = "PREFEVAL_MAX_EVALUATED_PAIRS", default_value_t = 200_000_000)]
    pub max_evaluated_pairs: u64,

    /// Distinct `model` labels kept in metrics; further models count under `other`.
    #[arg(long, env = "PREFEVAL_MAX_MODEL_LABELS", default_value_t = 100)]
    pub max_model_labels: usize,

    /// Serve `/metrics` on this separate address instead of the main listener (keeps it private).
    #[arg(long, env = "PREFEVAL_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Whole-request timeout in seconds, reading the body included; past it the answer is 408.
    #[arg(long, env = "PREFEVAL_REQUEST_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_secs: u64,

    /// Seconds a client has to send a request's headers; also how long an idle keep-alive
    /// connection stays open.
    #[arg(long, env = "PREFEVAL_HEADER_READ_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub header_read_timeout_secs: u64,

    /// API tokens, comma-separated. When set (here or in the file), `/v1/*` requires
    /// `Authorization: Bearer <token>`. Never logged.
    #[arg(long, env = "PREFEVAL_API_TOKENS", hide_env_values = true, value_parser = parse_tokens)]
    pub api_tokens: Option<ApiTokens>,

    /// File of API tokens, one per line (`#` comments allowed); combined with PREFEVAL_API_TOKENS.
    #[arg(long, env = "PREFEVAL_API_TOKENS_FILE")]
    pub api_tokens_file: Option<PathBuf>,

    /// Browser origins allowed to call the API (CORS), comma-separated, e.g.
    /// `https://label.example.com`; `*` allows any. None by default.
    #[arg(long, env = "PREFEVAL_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// Log filter: a level (error, warn, info, debug, trace) or tracing directives.
    #[arg(long, env = "PREFEVAL_LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// Log line format.
    #[arg(long, env = "PREFEVAL_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Seconds in-flight requests get to finish after SIGTERM or SIGINT before the process exits.
    #[arg(long, env = "PREFEVAL_SHUTDOWN_GRACE_SECS", default_value_t = 20)]
    pub shutdown_grace_secs: u64,
}

fn parse_tokens(text: &str) -> Result<ApiTokens, String> {
    let tokens = ApiTokens::parse(text);
    if tokens.is_empty() { Err("no token given".into()) } else { Ok(tokens) }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl Config {
    /// Parses flags only, as if no `PREFEVAL_*` variable were set.
    pub fn from_args_without_env<I, T>(args: I) -> Result<Config, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let command = <Config as Args>::augment_args(clap::Command::new("prefeval")).mut_args(|arg| arg.env(None));
        Config::from_arg_matches(&command.try_get_matches_from(args)?)
    }

    pub fn worker_count(&self) -> usize {
        match self.workers {
            Some(n) => usize::from(n),
            None => std::thread::available_parallelism().map_or(1, usize::from),
        }
    }

    /// The memory budget in bytes: the setting, else the default for this machine.
    pub fn memory_limit(&self) -> usize {
        let bytes = self.memory_limit_bytes.unwrap_or_else(prefeval_core::memory::default_limit);
        usize::try_from(bytes).unwrap_or(usize::MAX)
    }

    /// The tokens of `--api-tokens` and `--api-tokens-file` together (empty: no authentication).
    pub fn resolve_api_tokens(&self) -> std::io::Result<ApiTokens> {
        let mut tokens = self.api_tokens.clone().unwrap_or_default();
        if let Some(path) = &self.api_tokens_file {
            let file = std::fs::read_to_string(path).map_err(|error| {
                std::io::Error::new(
                    error.kind(),
                    format!("cannot read PREFEVAL_API_TOKENS_FILE {}: {error}", path.display()),
                )
            })?;
            let from_file = ApiTokens::parse(&file);
            if from_file.is_empty() {
                return Err(std::io::Error::other(format!("{} holds no token", path.display())));
            }
            tokens.extend(from_file);
        }
        Ok(tokens)
    }

    /// The limits a request is validated against.
    pub fn limits(&self) -> Limits {
        Limits {
            max_line_bytes: self.max_body_bytes,
            max_items_per_list: self.max_items_per_list,
            max_lists: self.max_lists,
            max_pairs: self.max_pairs,
            max_evaluated_pairs: self.max_evaluated_pairs,
        }
    }
}

impl Default for Config {
    /// The built-in defaults, ignoring the environment.
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            workers: None,
            queue_depth: 64,
            max_body_bytes: 32 * 1024 * 1024,
            memory_limit_bytes: None,
            max_connections: 1024,
            write_timeout_secs: 30,
            max_concurrent_streams: 32,
            max_items_per_list: 10_000,
            max_lists: 100_000,
            max_pairs: 1_000_000,
            max_evaluated_pairs: 200_000_000,
            max_model_labels: 100,
            metrics_listen: None,
            request_timeout_secs: 30,
            header_read_timeout_secs: 10,
            api_tokens: None,
            api_tokens_file: None,
            cors_origins: Vec::new(),
            log_level: "info".into(),
            log_format: LogFormat::Text,
            shutdown_grace_secs: 20,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_clap_defaults() {
        let parsed = Config::from_args_without_env(["prefeval"]).unwrap();
        let builtin = Config::default();
        assert_eq!(format!("{parsed:?}"), format!("{builtin:?}"));
    }
}
