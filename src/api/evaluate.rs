//! `POST /v1/evaluate`: the batch door. Hands the raw body to the worker pool, where the pipeline
//! decodes, validates, evaluates and encodes it; the async side only moves bytes.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::body::{JsonBody, over_budget, reserved_body};
use super::error::{Error, HttpError};
use crate::limits::Limits;
use crate::memory::{BudgetedBuffer, Reservation, decoded_bound};
use crate::pipeline::batch::CrossListFigures;
use crate::pipeline::encode::{answer_size_estimate, write_batch};
use crate::pipeline::ndjson::loss_overflow;
use crate::pipeline::options::OptionSettings;
use crate::pipeline::run::Run;
use crate::pipeline::{self, Options, Parallel, Refusal, evaluation_bytes, validate};
use crate::runtime::metrics::{EvaluationCounts, Metrics, REJECT_QUEUE_FULL};
use crate::runtime::pool::{JobFailure, Timings, WorkerScope};
use crate::server::state::AppState;

pub async fn evaluate(State(state): State<AppState>, body: JsonBody) -> Result<Response, HttpError> {
    answer_on_pool(&state, body, evaluate_body).await
}

/// What a batch door runs on a worker: the body in, the encoded answer out with its reservation.
pub(super) type Work = fn(JsonBody, &Limits, &Metrics, &WorkerScope<'_>) -> Result<(Vec<u8>, Reservation), Refusal>;

/// Runs `work` on the pool and answers with its result, timing headers included: the shared
/// async half of the JSON doors (`/v1/evaluate`, `/v1/compare`).
pub(super) async fn answer_on_pool(state: &AppState, body: JsonBody, work: Work) -> Result<Response, HttpError> {
    let limits = state.limits;
    let metrics = Arc::clone(&state.metrics);
    let job = state.pool.submit(move |scope| work(body, &limits, &metrics, scope)).map_err(|_| {
        state.metrics.reject(REJECT_QUEUE_FULL);
        Error::queue_full(state.pool.retry_after_secs())
    })?;
    let (outcome, timings) = job.wait().await.map_err(|failure| match failure {
        JobFailure::Panicked(message) => {
            tracing::error!(panic = %message, "evaluation panicked");
            Error::internal()
        }
        JobFailure::Dropped => Error::internal(),
    })?;
    state.metrics.observe_timings(&timings);
    let mut response = match outcome {
        Ok((bytes, reservation)) => {
            let content_type = [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))];
            (content_type, reserved_body(bytes, reservation)).into_response()
        }
        Err(Refusal::Invalid(error)) => HttpError(error).into_response(),
        Err(Refusal::OverBudget(refusal)) => HttpError(over_budget(state, refusal)).into_response(),
        // Only when nobody waits for this answer: it goes nowhere.
        Err(Refusal::Cancelled) => HttpError(Error::internal()).into_response(),
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
    let batch = validate::batch(&bytes, limits, &Options::default(), &OptionSettings::default())?;
    // The evaluation and the answer at once, before any of it is computed.
    let answer_bytes = answer_size_estimate(&batch.ranked, &batch.options);
    reservation.grow(evaluation_bytes(&batch.ranked, &batch.options.math).saturating_add(answer_bytes))?;
    let evaluated = pipeline::batch::run(&batch, scope);
    if scope.cancelled() {
        return Err(Refusal::Cancelled);
    }
    let (evaluations, totals) = evaluated.into_complete().map_err(|index| {
        let overflow = loss_overflow();
        Error::at(overflow.code, format!("lists[{index}]"), overflow.message)
    })?;
    metrics.observe_evaluation(EvaluationCounts {
        model: batch.model.as_ref().map(|m| &*m.0),
        totals: &totals,
        list_losses: &mut evaluations.iter().map(|list| list.loss),
    });
    let figures = CrossListFigures::of(&batch, &evaluations);
    let options = &batch.options;
    let extras = figures.extras();
    let run = Run::new(options, batch.model.as_ref().map(|model| &*model.0));
    let answer = encode_answer(&mut reservation, answer_bytes, |out| {
        write_batch(out, options, &batch.inputs, &evaluations, &totals, &extras, &run)
    })?;
    drop((figures, evaluations, batch));
    drop(bytes);
    // From here only the answer's own bytes are held.
    reservation.shrink_to(answer.capacity());
    Ok((answer, reservation))
}

/// Writes an answer into a buffer of `capacity` bytes that `reservation` already holds, and that
/// grows it when the answer outgrows them, beside what the request holds there: a refusal weighs
/// the whole need, so a request that could never fit is told so (413) instead of to retry (503).
pub(super) fn encode_answer(
    reservation: &mut Reservation,
    capacity: usize,
    write: impl FnOnce(&mut BudgetedBuffer<'_>) -> Result<(), serde_json::Error>,
) -> Result<Vec<u8>, Refusal> {
    let mut out = BudgetedBuffer::within(capacity, reservation);
    if let Err(error) = write(&mut out) {
        if let Some(refusal) = out.refusal() {
            return Err(refusal.into());
        }
        tracing::error!(%error, "could not encode an answer");
        return Err(Error::internal().into());
    }
    Ok(out.into_bytes())
}
