//! The built binary (`CARGO_BIN_EXE_prefeval`) as a user runs it: `serve` on a real socket,
//! `healthcheck`, `eval` and `merge`, and reliability under floods measured on the child process
//! (peak RSS, healthz latency).
//!
//! A test binary of its own, apart from `tests/api`: these tests start processes, flood them with
//! large batches and assert on timing (healthz under 1 s during a flood, a connection left
//! unanswered for 0.7 s); run beside the CPU-heavy api tests (fuzzing, figures) on a small machine
//! those timings would measure the test load instead of the server. It shares the api harness.

#[path = "../api/compare_data.rs"]
mod compare_data;
#[path = "../api/helpers.rs"]
mod helpers;
#[path = "../api/length_data.rs"]
mod length_data;

mod compare_dataset;
mod compare_runs;
mod compressed_input;
mod dataset_figures;
mod datasets;
mod eval_output;
mod eval_runs;
mod exports;
mod layout;
mod length_doors;
mod merge_checks;
mod real_exports;
mod reliability;
mod report;
mod serve;
mod stalls;
