//! The HTTP tests: one test binary, one harness (`helpers`). Each test starts its own server
//! (`TestApp`: the real serving loop on 127.0.0.1:0, on the test's runtime, two workers) and talks
//! to it over TCP, as a client does.

mod helpers;

mod compare_data;
mod compare_readme;
mod compare_stream;
mod compression;
mod contract;
mod determinism;
mod errors;
mod figures;
mod fuzz_json;
mod golden;
mod hardening;
mod hostile;
mod http_errors;
mod length;
mod length_data;
mod metrics;
mod properties;
mod readme;
mod real_exports;
mod report;
mod runs;
mod saturation;
mod shutdown;
