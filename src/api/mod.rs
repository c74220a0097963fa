//! The HTTP surface of `/v1`: wire types, their validation into `eval` types, the handlers and
//! the error type. Handlers stay thin; the math lives in `crate::eval`.

pub mod body;
pub mod error;
pub mod evaluate;
pub mod request;
pub mod response;
pub mod validate;

pub use error::{ApiError, ErrorCode};
