//! `POST /v1/compare`: the comparison door. Like `/v1/evaluate`, the body is decoded, validated,
//! evaluated (once per model) and encoded on a worker, under the same limits and memory budget.

use axum::extract::State;
use axum::response::Response;

use super::body::JsonBody;
use super::error::ApiError;
use super::evaluate::answer_on_pool;
use crate::limits::Limits;
use crate::memory::{BudgetedBuffer, Reservation, decoded_bound};
use crate::metrics::{EvaluationCounts, Metrics};
use crate::pipeline::Refusal;
use crate::pipeline::compare::compare;
use crate::pool::WorkerScope;
use crate::state::AppState;

pub async fn compare_models(State(state): State<AppState>, body: JsonBody) -> Result<Response, ApiError> {
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
    for (model, totals, losses) in &comparison.evaluated {
        metrics.observe_evaluation(EvaluationCounts {
            model: Some(model),
            totals,
            list_losses: &mut losses.iter().copied(),
        });
    }
    let mut answer = reservation.budget().empty();
    let mut out = BudgetedBuffer::with_capacity(1024 + comparison.comparisons.len() * 512, &mut answer)?;
    if let Err(error) = serde_json::to_writer(&mut out, &comparison) {
        if let Some(refusal) = out.refusal() {
            return Err(refusal.into());
        }
        tracing::error!(%error, "could not encode a comparison");
        return Err(ApiError::internal().into());
    }
    Ok((out.into_bytes(), answer))
}
