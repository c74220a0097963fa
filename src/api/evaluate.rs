//! `POST /v1/evaluate`: hands the raw body to the worker pool, where it is decoded, validated,
//! evaluated and encoded; the async side only moves bytes.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::body::JsonBytes;
use super::error::{ApiError, ErrorCode};
use super::request::decode;
use super::response::encode;
use super::validate::validate;
use crate::config::Limits;
use crate::eval::{BatchError, assemble, plan, run_unit};
use crate::pool::{JobFailure, WorkerScope};
use crate::state::AppState;

pub async fn evaluate(State(state): State<AppState>, JsonBytes(body): JsonBytes) -> Result<Response, ApiError> {
    let limits = state.limits;
    let job =
        state.pool.submit(move |scope| evaluate_body(&body, &limits, scope)).map_err(|_| ApiError::queue_full())?;
    let (outcome, _timings) = job.wait().await.map_err(|failure| match failure {
        JobFailure::Panicked(message) => {
            tracing::error!(panic = %message, "evaluation panicked");
            ApiError::internal()
        }
        JobFailure::Dropped => ApiError::internal(),
    })?;
    let bytes = outcome?;
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], bytes).into_response())
}

/// Everything CPU-bound about one request; runs on a pool worker.
fn evaluate_body(body: &[u8], limits: &Limits, scope: &WorkerScope<'_>) -> Result<Vec<u8>, ApiError> {
    let request = decode(body)?;
    let (options, lists) = validate(&request, limits)?;
    let units = plan(&lists);
    let results = scope.map(&units, |unit| run_unit(&lists, unit, &options));
    let batch = assemble(&lists, &units, results, &options).map_err(|error| match error {
        BatchError::Empty => ApiError::at(ErrorCode::EmptyBatch, "lists", "`lists` must hold at least one list"),
        BatchError::ListLossOverflow { list } => ApiError::at(
            ErrorCode::NonFiniteResult,
            format!("lists[{list}]"),
            "the loss of this list overflows a 64-bit float; rescale the rewards or lower beta",
        ),
    })?;
    encode(&request, options.normalization, &batch).map_err(|error| {
        tracing::error!(%error, "could not encode a response");
        ApiError::internal()
    })
}
