//! The HTTP surface of `/v1`: one file per endpoint (`evaluate`, `stream`, `compare`, `compare_stream`, `report`), bodies
//! decoded from gzip or zstd (`request_body`) under the memory budget (`body`), and how errors answer (`error`). Handlers stay thin doors onto
//! `prefeval_core::pipeline`, their CPU-bound work run on `crate::runtime::pool`; the math lives in
//! `prefeval_core::math`. Routes and layers are `crate::server`'s.

pub mod body;
pub mod compare;
pub mod compare_stream;
pub mod error;
pub mod evaluate;
pub mod report;
pub mod request_body;
pub mod stream;

pub use error::{Error, ErrorCode, ErrorStatus, HttpError};
