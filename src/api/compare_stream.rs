//! `POST /v1/compare/stream`: the comparison's NDJSON door. The same stream as
//! `/v1/evaluate/stream` (`stream::start`: chunks, pool, memory budget, ordered output), with a
//! kind of its own: each chunk is compared (`compare_lines::compare_chunk`), the summary adds every
//! model's evaluations line by line into `CompareTotals`, and the last line is the compare
//! summary: `/v1/compare`'s answer with `lines_failed`, `totals` and `run`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::response::Response;

use super::error::{Error, ErrorCode, HttpError};
use super::request_body::content_coding;
use super::stream::{StreamKind, check_content_type, query_options, query_pairs, start};
use crate::limits::Limits;
use crate::math::Totals;
use crate::memory::{OverBudget, Reservation};
use crate::pipeline::Options;
use crate::pipeline::compare::parse_models;
use crate::pipeline::compare_lines::{CompareOutcome, compare_chunk, refuse_compare_chunk};
use crate::pipeline::compare_totals::{CompareSummary, CompareTotals, compare_summary_line};
use crate::pipeline::fingerprint::Fingerprint;
use crate::pipeline::ndjson::{CHUNK_BYTES, Chunk};
use crate::pipeline::options::{Door, Results};
use crate::pipeline::run::Run;
use crate::runtime::metrics::{EvaluationCounts, Metrics};
use crate::runtime::pool::WorkerScope;
use crate::server::state::AppState;

pub async fn compare_stream(
    State(state): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    request: Request,
) -> Result<Response, HttpError> {
    check_content_type(&request)?;
    let coding = content_coding(request.headers())?;
    let (kind, target) = CompareLines::of_query(&query_pairs(query)?)?;
    start(state, request, coding, kind, target).await
}

/// The options of a compare stream from its query parameters (each at most once): `models`, a
/// comma-separated list of 2 to 16 distinct labels, and the options of the table's
/// `Door::CompareStream`, over the defaults of a comparison.
pub fn compare_stream_options(query: &[(String, String)]) -> Result<(Options, Vec<String>), Error> {
    let (settings, models) = query_options(query, Door::CompareStream, "models")?;
    let models = models.ok_or_else(|| {
        Error::at(ErrorCode::MissingField, "models", "missing query parameter `models` (e.g. `models=rm-a,rm-b`)")
    })?;
    let models = parse_models(models, "models")?;
    Ok((settings.resolve(Options::for_comparison(), "")?, models))
}

/// The compare stream's chunks: every line compared across `models`.
pub(super) struct CompareLines {
    options: Options,
    models: Vec<String>,
}

impl CompareLines {
    /// The compare stream a query string asks for, and the size of its chunks.
    pub(super) fn of_query(query: &[(String, String)]) -> Result<(CompareLines, usize), Error> {
        let (options, models) = compare_stream_options(query)?;
        // Each line is held once per model while it is compared: smaller chunks keep a chunk's
        // work near an evaluate chunk's.
        let target = (CHUNK_BYTES / models.len()).max(16 * 1024);
        Ok((CompareLines { options, models }, target))
    }

    /// Writes only the lines that fail (`results=errors`), whatever the query asked: for a door
    /// that reads no result line. The summary does not depend on it.
    pub(super) fn errors_only(mut self) -> CompareLines {
        self.options.results = Results::Errors;
        self
    }
}

pub(super) struct CompareProgress {
    totals: CompareTotals,
    lines_failed: u64,
}

impl StreamKind for CompareLines {
    type Outcome = CompareOutcome;
    type Summary = CompareProgress;
    type Gate = ();

    fn start_summary(&self) -> CompareProgress {
        CompareProgress { totals: CompareTotals::new(self.models.len()), lines_failed: 0 }
    }

    fn evaluate(
        &self,
        chunk: &Chunk,
        limits: &Limits,
        _gate: Option<&()>,
        scope: &WorkerScope<'_>,
        held: Reservation,
    ) -> Result<(CompareOutcome, Reservation), OverBudget> {
        compare_chunk(chunk, self.models.len(), &self.options, limits, scope, held)
    }

    fn refuse(&self, chunk: &Chunk, error: &Error) -> CompareOutcome {
        refuse_compare_chunk(chunk, error)
    }

    fn deliver(&self, outcome: CompareOutcome, summary: &mut CompareProgress, metrics: &Metrics) -> Vec<u8> {
        // Each model's evaluations move its per-model metrics, as /v1/compare's do.
        for (j, model) in self.models.iter().enumerate() {
            let mut totals = Totals::default();
            outcome.evaluations.iter().for_each(|per_model| totals.add(&per_model[j]));
            metrics.observe_evaluation(EvaluationCounts {
                model: Some(model),
                totals: &totals,
                list_losses: &mut outcome.evaluations.iter().map(|per_model| per_model[j].loss),
            });
        }
        outcome.evaluations.iter().for_each(|per_model| summary.totals.add_list(per_model));
        summary.totals.add_lengths(&outcome.lengths);
        summary.lines_failed += outcome.lines_failed;
        outcome.output
    }

    fn summary_line(&self, summary: CompareProgress, input: Option<Fingerprint>) -> Vec<u8> {
        let mut run = Run::compared(&self.options, &self.models);
        if let Some(input) = input {
            run = run.with_input(input);
        }
        compare_summary_line(&CompareSummary::new(&summary.totals, summary.lines_failed, run))
    }
}
