//! `POST /v1/evaluate`: hands the raw body to the worker pool, where it is decoded, validated,
//! evaluated and encoded; the async side only moves bytes.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::body::JsonBytes;
use super::error::{ApiError, ErrorCode};
use super::request::decode;
use super::response::encode;
use super::validate::{empty_batch, validate};
use crate::config::Limits;
use crate::eval::{BatchError, assemble, plan, run_unit};
use crate::metrics::{EvaluationCounts, Metrics, REJECT_QUEUE_FULL};
use crate::pool::{JobFailure, Timings, WorkerScope};
use crate::state::AppState;

pub async fn evaluate(State(state): State<AppState>, JsonBytes(body): JsonBytes) -> Result<Response, ApiError> {
    let limits = state.limits;
    let metrics = Arc::clone(&state.metrics);
    let job = state.pool.submit(move |scope| evaluate_body(&body, &limits, &metrics, scope)).map_err(|_| {
        state.metrics.reject(REJECT_QUEUE_FULL);
        ApiError::queue_full()
    })?;
    let (outcome, timings) = job.wait().await.map_err(|failure| match failure {
        JobFailure::Panicked(message) => {
            tracing::error!(panic = %message, "evaluation panicked");
            ApiError::internal()
        }
        JobFailure::Dropped => ApiError::internal(),
    })?;
    state.metrics.observe_timings(&timings);
    let mut response = match outcome {
        Ok(bytes) => ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], bytes).into_response(),
        Err(error) => error.into_response(),
    };
    add_timing_headers(&mut response, &timings);
    Ok(response)
}

/// `x-queue-time-ms` and `x-compute-time-ms`: where the client's time went, in milliseconds.
fn add_timing_headers(response: &mut Response, timings: &Timings) {
    for (name, duration) in [(QUEUE_TIME, timings.queue), (COMPUTE_TIME, timings.compute)] {
        if let Ok(value) = HeaderValue::from_str(&format!("{:.3}", duration.as_secs_f64() * 1e3)) {
            response.headers_mut().insert(name, value);
        }
    }
}

const QUEUE_TIME: HeaderName = HeaderName::from_static("x-queue-time-ms");
const COMPUTE_TIME: HeaderName = HeaderName::from_static("x-compute-time-ms");

/// Everything CPU-bound about one request; runs on a pool worker.
fn evaluate_body(
    body: &[u8],
    limits: &Limits,
    metrics: &Metrics,
    scope: &WorkerScope<'_>,
) -> Result<Vec<u8>, ApiError> {
    let request = decode(body)?;
    let (options, lists) = validate(&request, limits)?;
    let units = plan(&lists);
    let results = scope.map(&units, |unit| run_unit(&lists, unit, &options));
    let batch = assemble(&lists, &units, results, &options).map_err(|error| match error {
        BatchError::Empty => empty_batch(),
        BatchError::ListLossOverflow { list } => ApiError::at(
            ErrorCode::NonFiniteResult,
            format!("lists[{list}]"),
            "the loss of this list overflows a 64-bit float; rescale the rewards or lower beta",
        ),
    })?;
    metrics.observe_evaluation(EvaluationCounts {
        model: request.model.as_ref().map(|m| &*m.0),
        lists: batch.lists.len() as u64,
        pairs: batch.pairs,
        agreeing_halves: batch.agreeing_halves,
        list_losses: &mut batch.lists.iter().map(|list| list.loss),
    });
    encode(&request, options.normalization, &batch).map_err(|error| {
        tracing::error!(%error, "could not encode a response");
        ApiError::internal()
    })
}
