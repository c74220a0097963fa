//! The offline doors: `prefeval eval` (a dataset file through the pipeline, no HTTP) and
//! `prefeval merge` (the summaries of shards into the summary of the whole).

pub mod eval;
pub mod healthcheck;
pub mod merge;
