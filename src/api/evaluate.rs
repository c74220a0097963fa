//! `POST /v1/evaluate`: hands the raw body to the worker pool, where it is decoded, validated,
//! evaluated and encoded; the async side only moves bytes.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::body::{JsonBody, over_budget, reserved_body};
use super::error::{ApiError, ErrorCode};
use super::request::decode;
use super::response::{encode, encoded_size_estimate};
use super::validate::{empty_batch, validate};
use crate::eval::{BatchError, assemble, plan, run_unit};
use crate::limits::Limits;
use crate::memory::{
    BudgetedBuffer, EVALUATED_LIST_BYTES, EVALUATED_PAIR_BYTES, OverBudget, Reservation, decoded_bound,
};
use crate::metrics::{EvaluationCounts, Metrics, REJECT_QUEUE_FULL};
use crate::pool::{JobFailure, Timings, WorkerScope};
use crate::state::AppState;

pub async fn evaluate(State(state): State<AppState>, body: JsonBody) -> Result<Response, ApiError> {
    let limits = state.limits;
    let metrics = Arc::clone(&state.metrics);
    let job = state.pool.submit(move |scope| evaluate_body(body, &limits, &metrics, scope)).map_err(|_| {
        state.metrics.reject(REJECT_QUEUE_FULL);
        ApiError::queue_full(state.pool.retry_after_secs())
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
        Ok((bytes, reservation)) => {
            let content_type = [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))];
            (content_type, reserved_body(bytes, reservation)).into_response()
        }
        Err(Refusal::Invalid(error)) => error.into_response(),
        Err(Refusal::OverBudget(refusal)) => over_budget(&state, refusal).into_response(),
    };
    add_timing_headers(&mut response, &timings);
    Ok(response)
}

/// Why a worker did not produce an answer.
enum Refusal {
    Invalid(ApiError),
    /// The memory budget could not cover the decoded request, its evaluation or its answer.
    OverBudget(OverBudget),
}

impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Self {
        Refusal::Invalid(error)
    }
}

impl From<OverBudget> for Refusal {
    fn from(refusal: OverBudget) -> Self {
        Refusal::OverBudget(refusal)
    }
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

/// Everything CPU-bound about one request; runs on a pool worker. Each stage reserves its memory
/// before it allocates; the answer keeps only its own bytes reserved.
fn evaluate_body(
    body: JsonBody,
    limits: &Limits,
    metrics: &Metrics,
    scope: &WorkerScope<'_>,
) -> Result<(Vec<u8>, Reservation), Refusal> {
    let JsonBody { bytes, mut reservation } = body;
    reservation.resize(bytes.capacity().saturating_add(decoded_bound(&bytes)))?;
    let request = decode(&bytes)?;
    let (options, lists) = validate(&request, limits)?;
    let units = plan(&lists);
    let returned_pairs: u64 = if options.include_pairs { lists.iter().map(|list| list.pairs()).sum() } else { 0 };
    let returned_pairs = usize::try_from(returned_pairs).unwrap_or(usize::MAX);
    reservation.grow(
        lists
            .len()
            .saturating_mul(EVALUATED_LIST_BYTES)
            .saturating_add(returned_pairs.saturating_mul(EVALUATED_PAIR_BYTES)),
    )?;
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
    let mut answer = reservation.budget().empty();
    let mut out = BudgetedBuffer::with_capacity(encoded_size_estimate(&batch), &mut answer)?;
    if let Err(error) = encode(&mut out, &request, options.normalization, &batch) {
        if let Some(refusal) = out.refusal() {
            return Err(refusal.into());
        }
        tracing::error!(%error, "could not encode a response");
        return Err(ApiError::internal().into());
    }
    Ok((out.into_bytes(), answer))
}
