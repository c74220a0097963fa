//! prefeval-core: everything prefeval computes, with no HTTP and no async runtime.
//!
//! - `math`: the math of docs/design/math.md on plain slices (implied pairs, the Bradley–Terry
//!   link, listwise loss, accuracy, τ-b, calibration, gradients, totals).
//! - `stats`: standard errors clustered by list, intervals, p-values, Holm.
//! - `pipeline`: input formats, decoding, validation, evaluation in units, encoding of answers,
//!   stream lines and summaries.
//! - `memory`: the memory budget requests reserve from; `limits`: the configured request limits.
//! - `error`: the one error type, `{"error": {"code", "message", "path"}}`.
//!
//! The service and the CLI (the `prefeval` package) are doors onto this crate; nothing here may
//! know which door a value came through.

pub mod error;
pub mod limits;
pub mod math;
pub mod memory;
pub mod pipeline;
pub mod stats;
