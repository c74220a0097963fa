//! `POST /v1/report`: the HTML report of a stream. The body and query are the evaluate stream's
//! (with `models=`, the compare stream's), run by the same stream machinery (`stream::run_to_end`:
//! the same pool, limits and memory budget), but nobody reads its result lines: only its summary
//! line is kept, and drawn (`prefeval_report`) on a worker once the whole body is read. So every
//! error, a body cut short or a limit hit mid-body included, is a JSON error with its status,
//! never half a page.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use prefeval_report::{Meta, read_summary, report_date};
use serde::Deserialize;

use super::body::{over_budget, reserved_body};
use super::compare_stream::CompareLines;
use super::error::{Error, ErrorCode, HttpError};
use super::request_body::content_coding;
use super::stream::{Ended, EvaluateLines, check_content_type, query_pairs, run_to_end};
use crate::memory::Reservation;
use crate::runtime::metrics::REJECT_QUEUE_FULL;
use crate::runtime::pool::JobFailure;
use crate::server::state::AppState;

/// What drawing a report holds beside its summary line, at most: the page (a few hundred KB; the
/// tables are capped at 1,000 groups and the k ≤ 1,000 disagreements) with room to spare.
const PAGE_BYTES: usize = 4 * 1024 * 1024;

/// The summary line read back (`read_summary_line`, then the report's own reading) holds about
/// this many times its bytes at once.
const READ_FACTOR: usize = 3;

/// The report's own policy, as its `<meta>` states it: it may run its inline script (table
/// sorting) and styles, and request nothing.
const REPORT_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:";

pub async fn report(
    State(state): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    request: Request,
) -> Result<Response, HttpError> {
    check_content_type(&request)?;
    let coding = content_coding(request.headers())?;
    let query = query_pairs(query)?;
    // `models` is what makes a compare stream; anything else is read as the evaluate stream reads it.
    let ended = if query.iter().any(|(key, _)| key == "models") {
        let (kind, target) = CompareLines::of_query(&query)?;
        run_to_end(state.clone(), request, coding, kind.errors_only(), target).await?
    } else {
        let (kind, target) = EvaluateLines::of_query(&query)?;
        run_to_end(state.clone(), request, coding, kind.errors_only(), target).await?
    };
    let (page, reservation) = draw_on_pool(&state, ended).await?;
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
        (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(REPORT_CSP)),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (HeaderName::from_static("referrer-policy"), HeaderValue::from_static("no-referrer")),
    ];
    Ok((headers, reserved_body(page, reservation)).into_response())
}

/// Draws the report on a worker, its memory reserved first: the summary line (already in memory,
/// so held whatever the budget says) and what reading and drawing it takes.
async fn draw_on_pool(state: &AppState, ended: Ended) -> Result<(Vec<u8>, Reservation), Error> {
    let mut reservation = state.memory.empty();
    reservation.hold(ended.summary.capacity());
    let need = ended.summary.len().saturating_mul(READ_FACTOR).saturating_add(PAGE_BYTES);
    reservation.grow(need).map_err(|refusal| over_budget(state, refusal))?;
    let retry_after = state.pool.retry_after_secs();
    let job = state.pool.submit(move |_scope| draw(ended, retry_after)).map_err(|_| {
        state.metrics.reject(REJECT_QUEUE_FULL);
        Error::queue_full(state.pool.retry_after_secs())
    })?;
    let (drawn, timings) = job.wait().await.map_err(|failure| {
        if let JobFailure::Panicked(message) = failure {
            tracing::error!(panic = %message, "drawing a report panicked");
        }
        Error::internal()
    })?;
    state.metrics.observe_timings(&timings);
    let page = drawn?;
    // From here only the page is held (it is in memory: held even past the estimate).
    reservation.hold(page.capacity());
    Ok((page, reservation))
}

/// The page of a summary line, or why there is none.
fn draw(ended: Ended, retry_after: u64) -> Result<Vec<u8>, Error> {
    let report = read_summary(&ended.summary).map_err(|error| {
        // The line is the stream's own: one that does not read back is a bug, not the client's.
        tracing::error!(?error, "a stream's summary line did not read back");
        Error::internal()
    })?;
    if report.headline.iter().all(|row| row.lists == 0) {
        return Err(nothing_to_report(report.lines_failed.unwrap_or(0), ended.first_line.as_deref(), retry_after));
    }
    drop(ended);
    Ok(report.to_html(&Meta { date: report_date() }).into_bytes())
}

/// A body with no list evaluated has nothing to draw. With no line at all: `empty_batch`. When
/// every line failed, the first one's error, as the stream wrote it, is the answer (its code and
/// so its status, its path), so a person sees why.
fn nothing_to_report(lines_failed: u64, first_line: Option<&[u8]>, retry_after: u64) -> Error {
    #[derive(Deserialize)]
    struct ErrorLine {
        line: u64,
        error: LineError,
    }
    #[derive(Deserialize)]
    struct LineError {
        code: String,
        message: String,
        path: Option<String>,
    }
    if lines_failed == 0 {
        return Error::new(
            ErrorCode::EmptyBatch,
            "the body holds no list: a report needs at least one list (one JSON object per line)",
        );
    }
    let failed = first_line.and_then(|line| serde_json::from_slice::<ErrorLine>(line).ok()).and_then(|line| {
        let code = ErrorCode::ALL
            .into_iter()
            .find(|code| serde_json::to_value(code).ok() == Some(line.error.code.clone().into()))?;
        Some((line.line, code, line.error))
    });
    let summary =
        format!("no list of the body could be evaluated ({lines_failed} line(s) failed), so there is no report");
    match failed {
        Some((line, code, error)) => {
            let mut answer = Error::new(code, format!("{summary}; the first, line {line}: {}", error.message));
            answer.path = error.path;
            if matches!(code, ErrorCode::MemoryBudget | ErrorCode::QueueFull) {
                answer.retry_after_secs = Some(retry_after);
            }
            answer
        }
        None => Error::new(
            ErrorCode::InvalidValue,
            format!("{summary}; POST it to /v1/evaluate/stream to see each line's error"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_whose_lines_all_failed_answers_the_first_lines_error() {
        let line = br#"{"line":2,"error":{"code":"too_few_items","message":"a list needs two items","path":"items"}}"#;
        let error = nothing_to_report(3, Some(line), 1);
        assert_eq!(error.code, ErrorCode::TooFewItems);
        assert_eq!(error.path.as_deref(), Some("items"));
        assert!(error.message.contains("3 line(s) failed") && error.message.contains("line 2: a list needs two items"));
        assert_eq!(nothing_to_report(0, None, 1).code, ErrorCode::EmptyBatch);
        assert_eq!(nothing_to_report(1, Some(b"not json"), 1).code, ErrorCode::InvalidValue);
    }
}
