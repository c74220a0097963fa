//! `POST /v1/compare`: the comparison door. Like `/v1/evaluate`, the body is decoded, validated,
//! evaluated (once per model) and encoded on a worker, under the same limits and memory budget.

use axum::extract::State;
use axum::response::Response;

use super::body::JsonBody;
use super::error::HttpError;
use super::evaluate::{answer_on_pool, encode_answer};
use crate::limits::Limits;
use crate::memory::{Reservation, decoded_bound};
use crate::pipeline::compare::compare;
use crate::pipeline::{Parallel, Refusal};
use crate::runtime::metrics::{EvaluationCounts, Metrics};
use crate::runtime::pool::WorkerScope;
use crate::server::state::AppState;

pub async fn compare_models(State(state): State<AppState>, body: JsonBody) -> Result<Response, HttpError> {
    answer_on_pool(&state, body, compare_body).await
}

fn compare_body(
    body: JsonBody,
    limits: &Limits,
    metrics: &Metrics,
    scope: &WorkerScope<'_>,
) -> Result<(Vec<u8>, Reservation), Refusal> {
    let JsonBody { bytes, mut reservation } = body;
    reservation.resize(bytes.capacity().saturating_add(decoded_bound(&bytes)))?;
    let comparison = compare(&bytes, limits, scope, &mut reservation)?;
    if scope.cancelled() {
        return Err(Refusal::Cancelled);
    }
    for (model, totals, losses) in &comparison.evaluated {
        metrics.observe_evaluation(EvaluationCounts {
            model: Some(model),
            totals,
            list_losses: &mut losses.iter().copied(),
        });
    }
    let capacity = 1024 + comparison.comparisons.len() * 512;
    reservation.grow(capacity)?;
    let answer = encode_answer(&mut reservation, capacity, |out| serde_json::to_writer(out, &comparison))?;
    drop(comparison);
    drop(bytes);
    reservation.shrink_to(answer.capacity());
    Ok((answer, reservation))
}
