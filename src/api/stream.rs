//! `POST /v1/evaluate/stream`: the NDJSON door. The body is cut into chunks of whole lines as it
//! arrives; each chunk goes through the same pool, limits and memory budget as a batch (a few in
//! flight, so one stream uses every core and other requests still get in between its chunks);
//! results leave in input order, as they are ready, through a small bounded channel: a slow reader
//! slows the stream instead of growing buffers. The last line is the summary with its totals.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;

use super::body::over_budget;
use super::error::{Error, ErrorCode, HttpError};
use crate::math::Totals;
use crate::memory::{OverBudget, Reservation};
use crate::pipeline::Options;
use crate::pipeline::encode::write_stream_error;
use crate::pipeline::ndjson::{CHUNK_BYTES, CHUNK_BYTES_WITH_PAIRS, Chunk, ChunkBuilder, ChunkOutcome, evaluate_chunk};
use crate::pipeline::options::{Door, OptionDef, OptionSettings};
use crate::pipeline::summary::{Summary, summary_line};
use crate::pipeline::validate::check_model;
use crate::pipeline::wire::Text;
use crate::runtime::metrics::{EvaluationCounts, REJECT_QUEUE_FULL};
use crate::runtime::pool::{JobFailure, PendingJob};
use crate::server::state::AppState;

/// Output pieces (one per chunk) waiting for the client: with the chunks in flight, all the
/// answer a stream ever holds.
const OUTPUT_BUFFERED: usize = 2;

/// How long the body may pause before the whole lines held are evaluated without waiting for a
/// full chunk: short enough that a slow producer (a training loop) sees its results promptly.
const FLUSH_AFTER: Duration = Duration::from_millis(20);

/// Pause before trying again when the pool's queue or the memory budget is full mid-stream.
const RETRY_PAUSE: Duration = Duration::from_millis(20);

pub async fn evaluate_stream(
    State(state): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    request: Request,
) -> Result<Response, HttpError> {
    check_content_type(&request)?;
    let query = query.map_err(|rejection| {
        Error::new(ErrorCode::InvalidValue, format!("the query string could not be read: {rejection}"))
    })?;
    let (options, model) = stream_options(&query.0)?;
    // Refuse at once, before reading a byte, when no chunk could start now.
    if !state.pool.has_room() {
        state.metrics.reject(REJECT_QUEUE_FULL);
        return Err(Error::queue_full(state.pool.retry_after_secs()).into());
    }
    let target = if options.math.include_pairs { CHUNK_BYTES_WITH_PAIRS } else { CHUNK_BYTES };
    let reading = state.memory.reserve(target).map_err(|refusal| over_budget(&state, refusal))?;
    // Wait for the first bytes before answering: a client that sent `Expect: 100-continue` (curl,
    // for bodies over 1 MiB) gets its `100 Continue` only while no answer has started.
    let mut body = request.into_body();
    let read_timeout = Duration::from_secs(state.request_timeout_secs);
    let first = tokio::time::timeout(read_timeout, std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)))
        .await
        .map_err(|_| Error::new(ErrorCode::RequestTimeout, "no body bytes within the request timeout"))?;
    let first = match first {
        Some(Ok(frame)) => frame.into_data().ok(),
        Some(Err(error)) => {
            return Err(Error::new(ErrorCode::MalformedJson, format!("could not read the body: {error}")).into());
        }
        None => None,
    };
    let (sender, receiver) = mpsc::channel(OUTPUT_BUFFERED);
    let stream = Stream { state, options, model, target, sender };
    tokio::spawn(stream.run(first, body, reading));
    let content_type = [(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"))];
    Ok((content_type, Body::new(OutputBody { receiver, held: None })).into_response())
}

/// NDJSON media types: `application/x-ndjson` and its common aliases.
fn check_content_type(request: &Request) -> Result<(), Error> {
    let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let essence = content_type.map(|ct| ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    match essence.as_deref() {
        Some("application/x-ndjson" | "application/ndjson" | "application/jsonl" | "application/x-jsonlines") => Ok(()),
        _ => Err(Error::new(
            ErrorCode::UnsupportedMediaType,
            match content_type {
                Some(ct) => format!("Content-Type `{ct}` is not supported; send `application/x-ndjson`"),
                None => "missing Content-Type; send `application/x-ndjson`".to_string(),
            },
        )),
    }
}

/// The options of a stream, from its query parameters (each at most once), read by the option
/// table; `model` is the one parameter that is no evaluation option.
fn stream_options(query: &[(String, String)]) -> Result<(Options, Option<String>), Error> {
    let mut settings = OptionSettings::default();
    let mut model = None;
    for (index, (key, value)) in query.iter().enumerate() {
        if query[..index].iter().any(|(earlier, _)| earlier == key) {
            return Err(Error::at(ErrorCode::InvalidValue, key.as_str(), format!("`{key}` is given twice")));
        }
        if key == "model" {
            check_model(&Text(value.as_str().into()), "model")?;
            model = Some(value.clone());
        } else if let Some(def) = OptionDef::find(Door::Stream, key) {
            settings.push(def, def.parse_text(value, key)?);
        } else {
            let names: Vec<String> = OptionDef::of(Door::Stream).map(|def| format!("`{}`", def.name)).collect();
            return Err(Error::at(
                ErrorCode::UnknownField,
                key.as_str(),
                format!("unknown query parameter `{key}`; expected `model` or one of {}", names.join(", ")),
            ));
        }
    }
    Ok((settings.resolve(Options::default(), "")?, model))
}

/// One stream in progress: what its chunks need, and where its output goes.
struct Stream {
    state: AppState,
    options: Options,
    model: Option<String>,
    target: usize,
    sender: mpsc::Sender<(Bytes, Option<Reservation>)>,
}

/// A chunk submitted to the pool.
struct InFlight {
    chunk: Arc<Chunk>,
    job: PendingJob<Result<(ChunkOutcome, Reservation), OverBudget>>,
    _input: Reservation,
}

/// Why a stream ends before its summary.
enum Stopped {
    /// The client went away (or broke its body): nobody is left to answer.
    ClientGone,
    /// Told to the client in a last line.
    Failed(Error),
}

impl Stream {
    async fn run(self, first: Option<Bytes>, mut body: Body, mut reading: Reservation) {
        let mut totals = Totals::default();
        let mut lines_failed = 0u64;
        let outcome = self.pump(first, &mut body, &mut reading, &mut totals, &mut lines_failed).await;
        let last = match outcome {
            Ok(()) => summary_line(&Summary::new(
                self.options.math.normalization,
                &totals,
                lines_failed,
                self.options.confidence,
            )),
            Err(Stopped::ClientGone) => return,
            Err(Stopped::Failed(error)) => stream_error_line(&error),
        };
        let _ = self.sender.send((Bytes::from(last), None)).await;
    }

    /// Reads the body, keeps up to `workers + 1` chunks in flight, and sends their output in order.
    async fn pump(
        &self,
        first: Option<Bytes>,
        body: &mut Body,
        reading: &mut Reservation,
        totals: &mut Totals,
        lines_failed: &mut u64,
    ) -> Result<(), Stopped> {
        let limits = self.state.limits;
        let read_timeout = Duration::from_secs(self.state.request_timeout_secs);
        let max_in_flight = self.state.pool.workers() + 1;
        let mut builder = ChunkBuilder::new(self.target, limits.max_line_bytes);
        let mut in_flight: VecDeque<InFlight> = VecDeque::new();
        let mut ready = Vec::new();
        let mut next_data = first;
        let mut idle = Duration::ZERO;
        let timed_out = loop {
            if let Some(data) = next_data.take() {
                builder.push(&data, &mut ready);
                // The partial line the builder holds (up to the line limit) counts against the budget.
                self.wait_for_budget(reading, builder.buffered()).await?;
            }
            for chunk in ready.drain(..) {
                in_flight.push_back(self.submit(Arc::new(chunk)).await?);
                while in_flight.len() >= max_in_flight {
                    self.deliver(&mut in_flight, totals, lines_failed).await?;
                }
            }
            // Results leave as they are ready, not only when the pipeline is full.
            while in_flight.front().is_some_and(|chunk| chunk.job.is_ready()) {
                self.deliver(&mut in_flight, totals, lines_failed).await?;
            }
            let next = std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx));
            match tokio::time::timeout(FLUSH_AFTER, next).await {
                Ok(None) => break false,
                Ok(Some(Err(_))) => return Err(Stopped::ClientGone),
                Ok(Some(Ok(frame))) => {
                    next_data = frame.into_data().ok();
                    idle = Duration::ZERO;
                }
                Err(_) => {
                    // The producer paused: hand out the whole lines held so far.
                    if self.sender.is_closed() {
                        return Err(Stopped::ClientGone);
                    }
                    ready.extend(builder.flush());
                    idle += FLUSH_AFTER;
                    if idle >= read_timeout {
                        break true;
                    }
                }
            }
        };
        // A stalled client still gets the results of every whole line it sent.
        let last = if timed_out { builder.flush() } else { builder.finish() };
        ready.extend(last);
        for chunk in ready.drain(..) {
            in_flight.push_back(self.submit(Arc::new(chunk)).await?);
        }
        while !in_flight.is_empty() {
            self.deliver(&mut in_flight, totals, lines_failed).await?;
        }
        if timed_out {
            return Err(Stopped::Failed(Error::new(
                ErrorCode::RequestTimeout,
                format!(
                    "no body bytes for {} s (PREFEVAL_REQUEST_TIMEOUT_SECS); the stream stops here",
                    read_timeout.as_secs()
                ),
            )));
        }
        Ok(())
    }

    /// Resizes `reservation` to `bytes`, waiting while the budget is taken by others.
    async fn wait_for_budget(&self, reservation: &mut Reservation, bytes: usize) -> Result<(), Stopped> {
        loop {
            match reservation.resize(bytes) {
                Ok(()) => return Ok(()),
                Err(OverBudget::Exhausted) => self.pause().await?,
                Err(OverBudget::NeverFits { needed, limit }) => {
                    return Err(Stopped::Failed(Error::never_fits_budget(needed, limit)));
                }
            }
        }
    }

    /// Waits `RETRY_PAUSE`, unless the client is gone.
    async fn pause(&self) -> Result<(), Stopped> {
        if self.sender.is_closed() {
            return Err(Stopped::ClientGone);
        }
        tokio::time::sleep(RETRY_PAUSE).await;
        Ok(())
    }

    /// Submits a chunk to the pool, waiting while its queue is full.
    async fn submit(&self, chunk: Arc<Chunk>) -> Result<InFlight, Stopped> {
        // The chunk's own bytes; its decoded form, evaluation and answer are reserved by the job.
        let mut input = self.state.memory.empty();
        self.wait_for_budget(&mut input, chunk.bytes.capacity()).await?;
        loop {
            let job = {
                let (chunk, options, limits) = (Arc::clone(&chunk), self.options, self.state.limits);
                let (budget, metrics, model) =
                    (self.state.memory.clone(), Arc::clone(&self.state.metrics), self.model.clone());
                self.state.pool.submit(move |scope| {
                    let evaluated = evaluate_chunk(&chunk, &options, &limits, scope, &budget);
                    if let Ok((outcome, _)) = &evaluated {
                        metrics.observe_evaluation(EvaluationCounts {
                            model: model.as_deref(),
                            totals: &outcome.totals,
                            list_losses: &mut outcome.list_losses.iter().copied(),
                        });
                    }
                    evaluated
                })
            };
            match job {
                Ok(job) => return Ok(InFlight { chunk, job, _input: input }),
                Err(_) => self.pause().await?,
            }
        }
    }

    /// Waits for the oldest chunk in flight and sends its output; a chunk the budget refused is
    /// submitted again.
    async fn deliver(
        &self,
        in_flight: &mut VecDeque<InFlight>,
        totals: &mut Totals,
        lines_failed: &mut u64,
    ) -> Result<(), Stopped> {
        let Some(front) = in_flight.pop_front() else { return Ok(()) };
        let (evaluated, timings) = front.job.wait().await.map_err(|failure| {
            if let JobFailure::Panicked(message) = failure {
                tracing::error!(panic = %message, "a stream chunk panicked");
            }
            Stopped::Failed(Error::internal())
        })?;
        self.state.metrics.observe_timings(&timings);
        let (outcome, answer) = match evaluated {
            Ok(done) => done,
            Err(OverBudget::Exhausted) => {
                self.pause().await?;
                let again = self.submit(front.chunk).await?;
                in_flight.push_front(again);
                return Ok(());
            }
            Err(OverBudget::NeverFits { needed, limit }) => {
                return Err(Stopped::Failed(Error::never_fits_budget(needed, limit)));
            }
        };
        outcome.evaluations.iter().for_each(|evaluation| totals.add(evaluation));
        *lines_failed += outcome.lines_failed;
        self.sender.send((Bytes::from(outcome.output), Some(answer))).await.map_err(|_| Stopped::ClientGone)
    }
}

/// `{"error": {...}}` without a line number: the stream as a whole stops here, with no summary.
fn stream_error_line(error: &Error) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing the error into a Vec cannot fail.
    let _ = write_stream_error(&mut out, error);
    out
}

/// The response body: output pieces as the stream task sends them. Each piece's reservation is
/// held until the next is asked for, i.e. until the connection has taken the piece.
struct OutputBody {
    receiver: mpsc::Receiver<(Bytes, Option<Reservation>)>,
    held: Option<Reservation>,
}

impl HttpBody for OutputBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        match self.receiver.poll_recv(cx) {
            Poll::Ready(Some((bytes, reservation))) => {
                self.held = reservation;
                Poll::Ready(Some(Ok(http_body::Frame::data(bytes))))
            }
            Poll::Ready(None) => {
                self.held = None;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
