//! The HTTP surface of `/v1`: bodies under the memory budget, the handlers, and how errors answer.
//! Handlers stay thin doors onto `crate::pipeline`; the math lives in `crate::math`.

pub mod body;
pub mod compare;
pub mod error;
pub mod evaluate;
pub mod stream;

pub use error::{Error, ErrorCode, ErrorStatus, HttpError};
