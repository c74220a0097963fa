//! `POST /v1/evaluate/stream`: the NDJSON door. The body is cut into chunks of whole lines as it
//! arrives; each chunk goes through the same pool, limits and memory budget as a batch (a few in
//! flight, so one stream uses every core and other requests still get in between its chunks);
//! results leave in input order, as they are ready, through a small bounded channel: a slow reader
//! slows the stream instead of growing buffers. The last line is the summary with its totals.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};

use super::body::{over_budget, reserved_bytes};
use super::error::{Error, ErrorCode, HttpError};
use super::request_body::{BodyError, RequestBody, content_coding};
use crate::limits::Limits;
use crate::memory::{OverBudget, Reservation};
use crate::pipeline::Options;
use crate::pipeline::dataset::{Dataset, GroupGate};
use crate::pipeline::decompress::ContentCoding;
use crate::pipeline::encode::write_stream_error;
use crate::pipeline::fingerprint::Fingerprint;
use crate::pipeline::ndjson::{
    CHUNK_BYTES, CHUNK_BYTES_WITH_PAIRS, Chunk, ChunkBuilder, ChunkOutcome, evaluate_chunk, refuse_chunk,
};
use crate::pipeline::options::{Door, OptionDef, OptionSettings, Results};
use crate::pipeline::run::Run;
use crate::pipeline::summary::summary_line;
use crate::pipeline::validate::check_model;
use crate::pipeline::wire::Text;
use crate::runtime::metrics::{EvaluationCounts, Metrics, REJECT_MEMORY_BUDGET, REJECT_QUEUE_FULL};
use crate::runtime::pool::{JobFailure, PendingJob, WorkerScope};
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
    let coding = content_coding(request.headers())?;
    let (kind, target) = EvaluateLines::of_query(&query_pairs(query)?)?;
    start(state, request, coding, kind, target).await
}

/// The query string's parameters in order, or the error that it could not be read.
pub(super) fn query_pairs(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Vec<(String, String)>, Error> {
    query.map(|Query(pairs)| pairs).map_err(|rejection| {
        Error::new(ErrorCode::InvalidValue, format!("the query string could not be read: {rejection}"))
    })
}

/// What a stream evaluates each chunk into and how its summary accumulates. The stream itself
/// (reading, chunking, the pool, the memory budget, re-submission, ordered output, stalls) is the
/// same for every kind: the evaluate stream (`EvaluateLines`) and the compare stream
/// (`compare_stream::CompareLines`).
pub(super) trait StreamKind: Send + Sync + 'static {
    /// One chunk's answer: its output lines and what the summary takes from it.
    type Outcome: Send + 'static;
    /// What the summary accumulates, chunk by chunk, in input order.
    type Summary: Send;
    /// What a chunk may be evaluated behind, decided by the chunks delivered before it (the
    /// evaluate stream's limit of groups); `()` for a kind that needs none.
    type Gate: Clone + Send + Sync + 'static;

    /// The summary of no lines.
    fn start_summary(&self) -> Self::Summary;

    /// Evaluates a chunk on a worker, as `ndjson::evaluate_chunk` does: `held` is what was reserved
    /// for this attempt; the answer comes with the reservation of its bytes.
    fn evaluate(
        &self,
        chunk: &Chunk,
        limits: &Limits,
        gate: Option<&Self::Gate>,
        scope: &WorkerScope<'_>,
        held: Reservation,
    ) -> Result<(Self::Outcome, Reservation), OverBudget>;

    /// The gate a chunk submitted now is evaluated behind, after what `summary` holds.
    fn gate(&self, _summary: &Self::Summary) -> Option<Self::Gate> {
        None
    }

    /// The gate to evaluate a chunk again behind when its outcome cannot be delivered as it is
    /// (known only in input order: its lines bring more groups than the run has room for).
    fn again(&self, _outcome: &Self::Outcome, _summary: &Self::Summary) -> Option<Self::Gate> {
        None
    }

    /// The answer of a chunk given up as a whole: `error` for each of its lines.
    fn refuse(&self, chunk: &Chunk, error: &Error) -> Self::Outcome;

    /// Adds a chunk's outcome (in input order, once) to the summary and the metrics; its output.
    fn deliver(&self, outcome: Self::Outcome, summary: &mut Self::Summary, metrics: &Metrics) -> Vec<u8>;

    /// The last line, of every line delivered and the fingerprint of the body as received.
    fn summary_line(&self, summary: Self::Summary, input: Option<Fingerprint>) -> Vec<u8>;
}

/// The evaluate stream's chunks: lists of one model, summed into a `Dataset`.
pub(super) struct EvaluateLines {
    options: Options,
    model: Option<String>,
}

impl EvaluateLines {
    /// The evaluate stream a query string asks for, and the size of its chunks.
    pub(super) fn of_query(query: &[(String, String)]) -> Result<(EvaluateLines, usize), Error> {
        let (options, model) = stream_options(query)?;
        let target = if options.math.include_pairs { CHUNK_BYTES_WITH_PAIRS } else { CHUNK_BYTES };
        Ok((EvaluateLines { options, model }, target))
    }

    /// Writes only the lines that fail (`results=errors`), whatever the query asked: for a door
    /// that reads no result line. The summary does not depend on it.
    pub(super) fn errors_only(mut self) -> EvaluateLines {
        self.options.results = Results::Errors;
        self
    }
}

/// The evaluate stream's summary so far.
pub(super) struct EvaluateSummary {
    dataset: Dataset,
    /// Once the run holds as many groups as it may: the gate every later chunk is evaluated behind.
    full_gate: Option<Arc<GroupGate>>,
    lines_failed: u64,
}

impl StreamKind for EvaluateLines {
    type Outcome = ChunkOutcome;
    type Summary = EvaluateSummary;
    type Gate = Arc<GroupGate>;

    fn start_summary(&self) -> EvaluateSummary {
        EvaluateSummary { dataset: Dataset::new(&self.options), full_gate: None, lines_failed: 0 }
    }

    fn evaluate(
        &self,
        chunk: &Chunk,
        limits: &Limits,
        gate: Option<&Arc<GroupGate>>,
        scope: &WorkerScope<'_>,
        held: Reservation,
    ) -> Result<(ChunkOutcome, Reservation), OverBudget> {
        evaluate_chunk(chunk, &self.options, limits, gate.map(|gate| &**gate), scope, held)
    }

    fn gate(&self, summary: &EvaluateSummary) -> Option<Arc<GroupGate>> {
        summary.full_gate.clone()
    }

    fn again(&self, outcome: &ChunkOutcome, summary: &EvaluateSummary) -> Option<Arc<GroupGate>> {
        summary.dataset.overflows(&outcome.figures).then(|| summary.dataset.gate())
    }

    fn refuse(&self, chunk: &Chunk, error: &Error) -> ChunkOutcome {
        refuse_chunk(chunk, error)
    }

    fn deliver(&self, outcome: ChunkOutcome, summary: &mut EvaluateSummary, metrics: &Metrics) -> Vec<u8> {
        metrics.observe_evaluation(EvaluationCounts {
            model: self.model.as_deref(),
            totals: &outcome.totals,
            list_losses: &mut outcome.list_losses.iter().copied(),
        });
        summary.dataset.add_chunk(&outcome.evaluations, &outcome.figures);
        if summary.full_gate.is_none() && summary.dataset.is_full() {
            summary.full_gate = Some(summary.dataset.gate());
        }
        summary.lines_failed += outcome.lines_failed;
        outcome.output
    }

    fn summary_line(&self, summary: EvaluateSummary, input: Option<Fingerprint>) -> Vec<u8> {
        let mut run = Run::new(&self.options, self.model.as_deref());
        if let Some(input) = input {
            run = run.with_input(input);
        }
        summary_line(&summary.dataset.summary(summary.lines_failed, run))
    }
}

/// Starts a stream of `kind` once its options are read: refused at once when no chunk could start
/// now or the budget has no room for one chunk of `target` bytes; else the answer is the stream.
pub(super) async fn start<K: StreamKind>(
    state: AppState,
    request: Request,
    coding: ContentCoding,
    kind: K,
    target: usize,
) -> Result<Response, HttpError> {
    let (sender, receiver) = mpsc::channel(OUTPUT_BUFFERED);
    open(state, request, coding, kind, target, Output::Lines(sender)).await?;
    let content_type = [(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"))];
    Ok((content_type, Body::new(OutputBody { receiver })).into_response())
}

/// How a stream whose result lines nobody reads ended (`run_to_end`).
pub(super) struct Ended {
    /// The summary line, as the stream's answer ends with it.
    pub summary: Vec<u8>,
    /// The first result line the kind wrote, when it is no longer than `FIRST_LINE_MAX` (with
    /// `results=errors`: the first line that failed).
    pub first_line: Option<Vec<u8>>,
}

/// The longest first line `run_to_end` keeps: an error line is far shorter.
const FIRST_LINE_MAX: usize = 64 * 1024;

/// Runs a stream of `kind` exactly as `start` does (the same refusals, pool, budget and limits),
/// but its result lines are dropped as they are delivered instead of sent: the answer is how it
/// ended, its summary line or the error that stopped it (the last line `start`'s answer would
/// carry), once the whole body is read. For a door that answers only then (`POST /v1/report`).
pub(super) async fn run_to_end<K: StreamKind>(
    state: AppState,
    request: Request,
    coding: ContentCoding,
    kind: K,
    target: usize,
) -> Result<Ended, Error> {
    let (sender, receiver) = oneshot::channel();
    open(state, request, coding, kind, target, Output::Last { first_line: OnceLock::new(), sender })
        .await
        .map_err(|e| e.0)?;
    // The task always answers, unless it panicked.
    receiver.await.unwrap_or_else(|_| Err(Error::internal()))
}

/// What `start` and `run_to_end` share: the refusals before a byte is read, the reading
/// reservation, the first body frame; then the stream runs on a task of its own into `output`.
async fn open<K: StreamKind>(
    state: AppState,
    request: Request,
    coding: ContentCoding,
    kind: K,
    target: usize,
    output: Output,
) -> Result<(), HttpError> {
    // Refuse at once, before reading a byte, when no chunk could start now.
    if !state.pool.has_room() {
        state.metrics.reject(REJECT_QUEUE_FULL);
        return Err(Error::queue_full(state.pool.retry_after_secs()).into());
    }
    let reading = state.memory.reserve(target).map_err(|refusal| over_budget(&state, refusal))?;
    // Wait for the first bytes before answering: a client that sent `Expect: 100-continue` (curl,
    // for bodies over 1 MiB) gets its `100 Continue` only while no answer has started.
    let mut body = RequestBody::fingerprinted(request.into_body(), coding)?;
    let read_timeout = Duration::from_secs(state.request_timeout_secs);
    let first = tokio::time::timeout(read_timeout, std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)))
        .await
        .map_err(|_| Error::new(ErrorCode::RequestTimeout, "no body bytes within the request timeout"))?;
    let first = match first {
        Some(Ok(frame)) => frame.into_data().ok(),
        Some(Err(BodyError::Incomplete(error))) => {
            return Err(Error::new(
                ErrorCode::BodyIncomplete,
                format!("the request body broke off before it was complete: {error}"),
            )
            .into());
        }
        Some(Err(BodyError::Malformed(error))) => return Err(error.into()),
        None => None,
    };
    let stream = Stream { state, coding, kind: Arc::new(kind), target, output };
    tokio::spawn(stream.run(first, body, reading));
    Ok(())
}

/// Where a stream's output goes.
enum Output {
    /// The NDJSON answer: each chunk's lines, in order, as they are ready; then the last line.
    Lines(mpsc::Sender<Bytes>),
    /// Only how the stream ends (`run_to_end`): result lines are dropped, with their reservation,
    /// as they are delivered (the first one kept).
    Last { first_line: OnceLock<Option<Vec<u8>>>, sender: oneshot::Sender<Result<Ended, Error>> },
}

impl Output {
    /// Nobody waits for the output any more: the client went away (or its request timed out).
    fn is_closed(&self) -> bool {
        match self {
            Output::Lines(sender) => sender.is_closed(),
            Output::Last { sender, .. } => sender.is_closed(),
        }
    }

    /// One chunk's output, in input order.
    async fn send(&self, piece: Bytes) -> Result<(), Stopped> {
        match self {
            Output::Lines(sender) => sender.send(piece).await.map_err(|_| Stopped::ClientGone),
            Output::Last { first_line, sender } => {
                if sender.is_closed() {
                    return Err(Stopped::ClientGone);
                }
                if !piece.is_empty() {
                    first_line.get_or_init(|| {
                        let line = piece.split(|&b| b == b'\n').next().unwrap_or_default();
                        (line.len() <= FIRST_LINE_MAX).then(|| line.to_vec())
                    });
                }
                Ok(())
            }
        }
    }

    /// The last line: the summary, or the error that stopped the stream.
    async fn finish(self, last: Result<Vec<u8>, Error>) {
        match self {
            Output::Lines(sender) => {
                let last = last.unwrap_or_else(|error| stream_error_line(&error));
                let _ = sender.send(Bytes::from(last)).await;
            }
            Output::Last { first_line, sender } => {
                let first_line = first_line.into_inner().flatten();
                let _ = sender.send(last.map(|summary| Ended { summary, first_line }));
            }
        }
    }
}

/// NDJSON media types: `application/x-ndjson` and its common aliases.
pub(super) fn check_content_type(request: &Request) -> Result<(), Error> {
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

/// The options of a stream, from its query parameters; `model` is the one parameter that is no
/// evaluation option.
fn stream_options(query: &[(String, String)]) -> Result<(Options, Option<String>), Error> {
    let (settings, model) = query_options(query, Door::Stream, "model")?;
    if let Some(model) = model {
        check_model(&Text(model.into()), "model")?;
    }
    Ok((settings.resolve(Options::for_datasets(), "")?, model.map(str::to_string)))
}

/// A stream's query parameters, each at most once: the options `door` takes, read by the option
/// table, and the value of `other`, the one parameter that is no option (`model`, `models`).
pub(super) fn query_options<'q>(
    query: &'q [(String, String)],
    door: Door,
    other: &str,
) -> Result<(OptionSettings, Option<&'q str>), Error> {
    let mut settings = OptionSettings::default();
    let mut value_of_other = None;
    for (index, (key, value)) in query.iter().enumerate() {
        if query[..index].iter().any(|(earlier, _)| earlier == key) {
            return Err(Error::at(ErrorCode::InvalidValue, key.as_str(), format!("`{key}` is given twice")));
        }
        if key == other {
            value_of_other = Some(value.as_str());
        } else if let Some(def) = OptionDef::find(door, key) {
            settings.push(def, def.parse_text(value, key)?);
        } else {
            let names: Vec<String> = OptionDef::of(door).map(|def| format!("`{}`", def.name)).collect();
            return Err(Error::at(
                ErrorCode::UnknownField,
                key.as_str(),
                format!("unknown query parameter `{key}`; expected `{other}` or one of {}", names.join(", ")),
            ));
        }
    }
    Ok((settings, value_of_other))
}

/// One stream in progress: what its chunks need, and where its output goes.
struct Stream<K: StreamKind> {
    state: AppState,
    coding: ContentCoding,
    kind: Arc<K>,
    target: usize,
    output: Output,
}

/// A chunk's evaluation on the pool: its outcome and the reservation of its answer, or the
/// refusal of the budget.
type ChunkJob<O> = PendingJob<Result<(O, Reservation), OverBudget>>;

/// A chunk submitted to the pool, with the input bytes it holds and, for the chunk that ends a
/// long line, the long-line turn (given back once its answer is out).
struct InFlight<O> {
    chunk: Arc<Chunk>,
    /// None once its result was given back for the chunk ahead of it (see `deliver`): it is
    /// submitted again when its turn comes.
    job: Option<ChunkJob<O>>,
    input: Reservation,
    _turn: Option<(OwnedSemaphorePermit, tokio::time::Instant)>,
}

/// What a stream holds while it runs.
struct Progress<K: StreamKind> {
    builder: ChunkBuilder,
    /// What the builder holds (whole lines not yet cut into a chunk, and the line not complete).
    reading: Reservation,
    in_flight: VecDeque<InFlight<K::Outcome>>,
    /// Held while the builder holds a line longer than a chunk, and since when.
    turn: Option<(OwnedSemaphorePermit, tokio::time::Instant)>,
    /// The summary so far, of the chunks delivered.
    summary: K::Summary,
    /// Set once the budget refused one of its chunks: the stream then runs its chunks one at a
    /// time, so they never take memory from each other (nor from other streams) out of turn.
    one_at_a_time: bool,
}

/// Why a stream ends before its summary.
enum Stopped {
    /// The client went away: nobody is left to answer.
    ClientGone,
    /// Told to the client in a last line.
    Failed(Error),
}

/// How the body ended.
enum BodyEnd {
    Complete,
    /// No byte, or too few, for too long: the results so far, then this error.
    Stalled(Error),
    /// The connection broke off mid-body (a short `Content-Length`, broken chunked framing).
    Incomplete(String),
    /// The body is not the gzip or zstd it was sent as, or a line of a compressed body decoded
    /// past the line limit.
    Refused(Error),
}

impl<K: StreamKind> Stream<K> {
    async fn run(self, first: Option<Bytes>, mut body: RequestBody, reading: Reservation) {
        let mut progress = Progress::<K> {
            builder: ChunkBuilder::new(self.target, self.state.limits.max_line_bytes),
            reading,
            in_flight: VecDeque::new(),
            turn: None,
            summary: self.kind.start_summary(),
            one_at_a_time: false,
        };
        let last = match self.pump(first, &mut body, &mut progress).await {
            Ok(()) => Ok(self.kind.summary_line(progress.summary, body.fingerprint())),
            Err(Stopped::ClientGone) => return,
            Err(Stopped::Failed(error)) => Err(error),
        };
        self.output.finish(last).await;
    }

    /// Reads the body, keeps up to `workers + 1` chunks in flight, and sends their output in order.
    async fn pump(
        &self,
        first: Option<Bytes>,
        body: &mut RequestBody,
        progress: &mut Progress<K>,
    ) -> Result<(), Stopped> {
        let max_in_flight = self.state.pool.workers() + 1;
        let mut ready = Vec::new();
        let mut next_data = first;
        let mut upload = UploadPace::new(Duration::from_secs(self.state.request_timeout_secs));
        let mut received = body.received_bytes();
        let mut line = LineLength::new(self.coding, self.state.limits.max_line_bytes);
        let end = loop {
            if let Some(data) = next_data.take() {
                if let Err(refused) = line.after(&data) {
                    break BodyEnd::Refused(refused);
                }
                progress.builder.push(&data, &mut ready);
                self.hold_read(progress, &ready).await?;
            }
            self.submit_ready(progress, &mut ready, max_in_flight).await?;
            // Results leave as they are ready, not only when the pipeline is full.
            while progress.in_flight.front().is_some_and(|chunk| chunk.job.as_ref().is_some_and(PendingJob::is_ready)) {
                self.deliver(progress).await?;
            }
            let waited = tokio::time::Instant::now();
            let next = std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx));
            let polled = tokio::time::timeout(FLUSH_AFTER, next).await;
            upload.waited(waited.elapsed());
            match polled {
                Ok(None) => break BodyEnd::Complete,
                Ok(Some(Err(BodyError::Incomplete(error)))) => break BodyEnd::Incomplete(error.to_string()),
                Ok(Some(Err(BodyError::Malformed(error)))) => break BodyEnd::Refused(error),
                Ok(Some(Ok(frame))) => next_data = frame.into_data().ok(),
                Err(_) => {
                    // The producer paused: hand out the whole lines held so far.
                    if self.output.is_closed() {
                        return Err(Stopped::ClientGone);
                    }
                    ready.extend(progress.builder.flush());
                }
            }
            // The pace counts bytes as received: a compressed body may take many before it
            // decodes to a line.
            let now_received = body.received_bytes();
            if now_received > received {
                upload.received(now_received - received);
                received = now_received;
            }
            if let Some(stalled) = upload.check() {
                break BodyEnd::Stalled(stalled);
            }
        };
        // A client whose body stopped short still gets the results of every whole line it sent;
        // the line it was in the middle of is not one.
        let builder = std::mem::replace(&mut progress.builder, ChunkBuilder::new(self.target, 0));
        ready.extend(if matches!(end, BodyEnd::Complete) { builder.finish() } else { builder.into_complete() });
        self.hold_read(progress, &ready).await?;
        self.submit_ready(progress, &mut ready, max_in_flight).await?;
        while !progress.in_flight.is_empty() {
            self.deliver(progress).await?;
        }
        match end {
            BodyEnd::Complete => Ok(()),
            BodyEnd::Stalled(error) | BodyEnd::Refused(error) => Err(Stopped::Failed(error)),
            BodyEnd::Incomplete(cause) => Err(Stopped::Failed(Error::new(
                ErrorCode::BodyIncomplete,
                format!(
                    "the request body ended before it was complete ({cause}); every whole line before \
                     the break is answered above, and the stream stops here"
                ),
            ))),
        }
    }

    /// Reserves what the builder holds and the chunks it just cut. Never waits holding more than
    /// a chunk's worth: a line that can never fit is given up at once with its error line; a line
    /// longer than a chunk first takes the long-line turn; and a line still refused when the wait
    /// is over is given up with a `memory_budget` error line. The whole lines already held are
    /// bounded by the chunk size and always kept.
    async fn hold_read(&self, progress: &mut Progress<K>, ready: &[Chunk]) -> Result<(), Stopped> {
        let limit = self.state.memory.limit();
        let wait = Duration::from_secs(self.state.request_timeout_secs);
        let deadline = tokio::time::Instant::now() + wait;
        let cut: usize = ready.iter().map(|chunk| chunk.bytes.capacity()).sum();
        loop {
            let builder = &mut progress.builder;
            let line_need = builder.partial_need();
            if line_need > limit {
                builder.abandon_line(Error::line_never_fits_budget(limit));
            }
            if builder.partial_line().len() > self.target && progress.turn.is_none() {
                let turn = Arc::clone(&self.state.long_line_turn);
                let waiting = &self.state.long_line_waiting;
                waiting.fetch_add(1, Ordering::AcqRel);
                let taken = tokio::time::timeout_at(deadline, turn.acquire_owned()).await;
                waiting.fetch_sub(1, Ordering::AcqRel);
                match taken {
                    Ok(Ok(turn)) => progress.turn = Some((turn, tokio::time::Instant::now())),
                    _ => progress.builder.abandon_line(Error::line_budget_busy(wait.as_secs())),
                }
            } else if progress.turn.as_ref().is_some_and(|(_, since)| since.elapsed() > wait)
                && self.state.long_line_waiting.load(Ordering::Acquire) > 0
            {
                // A long line that takes longer than the wait to arrive yields the turn to others.
                builder.abandon_line(Error::line_turn_expired(wait.as_secs()));
            }
            let builder = &mut progress.builder;
            if builder.partial_line().len() <= self.target {
                // The long line ended or was given up: the turn goes with its chunk, or back now.
                progress.turn = progress.turn.take().filter(|_| !ready.is_empty());
            }
            let want = builder.buffered().saturating_add(cut);
            let refusal = match progress.reading.resize(want) {
                Ok(()) => return Ok(()),
                Err(refusal) => refusal,
            };
            if builder.partial_line().is_empty() {
                // Only whole lines, at most a chunk and a frame: already in memory, and cut next.
                progress.reading.hold(want);
                return Ok(());
            }
            match refusal {
                OverBudget::NeverFits { limit, .. } => builder.abandon_line(Error::line_never_fits_budget(limit)),
                OverBudget::Exhausted { .. } if tokio::time::Instant::now() >= deadline => {
                    builder.abandon_line(Error::line_budget_busy(wait.as_secs()));
                }
                // Our own chunks in flight free memory as they finish; else others' must.
                OverBudget::Exhausted { .. } if !progress.in_flight.is_empty() => self.deliver(progress).await?,
                OverBudget::Exhausted { .. } => self.pause().await?,
            }
        }
    }

    /// Submits the chunks cut so far, each with its input bytes taken from the read reservation.
    async fn submit_ready(
        &self,
        progress: &mut Progress<K>,
        ready: &mut Vec<Chunk>,
        max_in_flight: usize,
    ) -> Result<(), Stopped> {
        let count = ready.len();
        for (index, chunk) in ready.drain(..).enumerate() {
            let input = progress.reading.split(chunk.bytes.capacity());
            let turn = if index + 1 == count { progress.turn.take() } else { None };
            let chunk = Arc::new(chunk);
            let job = if progress.one_at_a_time {
                None
            } else {
                Some(self.submit(&chunk, self.state.memory.empty(), self.kind.gate(&progress.summary)).await?)
            };
            progress.in_flight.push_back(InFlight { chunk, job, input, _turn: turn });
            while progress.in_flight.len() >= max_in_flight {
                self.deliver(progress).await?;
            }
        }
        // Keep the turn only while the builder still holds the long line.
        if progress.builder.partial_line().len() <= self.target {
            progress.turn = None;
        }
        Ok(())
    }

    /// Waits `RETRY_PAUSE`, unless the client is gone.
    async fn pause(&self) -> Result<(), Stopped> {
        if self.output.is_closed() {
            return Err(Stopped::ClientGone);
        }
        tokio::time::sleep(RETRY_PAUSE).await;
        Ok(())
    }

    /// Reserves `needed` bytes as soon as they are free, for the chunk's next attempt (so that
    /// nobody takes them between the check and the work); `None` once `deadline` has passed.
    async fn reserve_when_free(
        &self,
        needed: usize,
        deadline: tokio::time::Instant,
    ) -> Result<Option<Reservation>, Stopped> {
        loop {
            if self.output.is_closed() {
                return Err(Stopped::ClientGone);
            }
            match self.state.memory.reserve(needed) {
                Ok(held) => return Ok(Some(held)),
                // The chunk itself answers what can never fit; this cannot be that.
                Err(OverBudget::NeverFits { .. }) => return Ok(None),
                Err(OverBudget::Exhausted { .. }) if tokio::time::Instant::now() >= deadline => return Ok(None),
                Err(OverBudget::Exhausted { .. }) => self.pause().await?,
            }
        }
    }

    /// Submits a chunk to the pool with what is `held` for it, behind `gate` when there is one,
    /// waiting while the queue is full.
    async fn submit(
        &self,
        chunk: &Arc<Chunk>,
        held: Reservation,
        gate: Option<K::Gate>,
    ) -> Result<ChunkJob<K::Outcome>, Stopped> {
        let (chunk, kind, limits) = (Arc::clone(chunk), Arc::clone(&self.kind), self.state.limits);
        let mut job = move |scope: &WorkerScope<'_>| kind.evaluate(&chunk, &limits, gate.as_ref(), scope, held);
        loop {
            // A refused job comes back with its reservation, for the next attempt.
            match self.state.pool.submit_or_return(job) {
                Ok(pending) => return Ok(pending),
                Err(refused) => job = refused,
            }
            self.pause().await?;
        }
    }

    /// Waits for the oldest chunk in flight and sends its output. A chunk the budget refused for
    /// now is submitted again once the memory it asked for is free (never sooner, so nothing is
    /// evaluated twice in a loop); after the wait its lines answer `memory_budget` errors. The
    /// chunks behind it give their results back first: their answers could not leave before its
    /// own, and the memory they hold may be what it waits for.
    async fn deliver(&self, progress: &mut Progress<K>) -> Result<(), Stopped> {
        let Some(InFlight { chunk, job, input, _turn: turn }) = progress.in_flight.pop_front() else {
            return Ok(());
        };
        let mut gate = self.kind.gate(&progress.summary);
        let mut job = match job {
            Some(job) => job,
            None => self.submit(&chunk, self.state.memory.empty(), gate.clone()).await?,
        };
        let wait = Duration::from_secs(self.state.request_timeout_secs);
        let deadline = tokio::time::Instant::now() + wait;
        let (outcome, answer) = loop {
            let (evaluated, timings) = job.wait().await.map_err(|failure| {
                if let JobFailure::Panicked(message) = failure {
                    tracing::error!(panic = %message, "a stream chunk panicked");
                }
                Stopped::Failed(Error::internal())
            })?;
            self.state.metrics.observe_timings(&timings);
            // Its lines bring more new groups than the run has room for (known only now, in input
            // order): it is evaluated again behind a gate, and the lines past the limit answer
            // `too_many_groups`.
            let again = evaluated.as_ref().ok().and_then(|(outcome, _)| self.kind.again(outcome, &progress.summary));
            if again.is_some() {
                gate = again;
                job = self.submit(&chunk, self.state.memory.empty(), gate.clone()).await?;
                continue;
            }
            let needed = match evaluated {
                Ok(done) => break done,
                Err(OverBudget::Exhausted { needed }) => needed,
                // Its lines together can never fit: each goes on as a chunk of its own, in its
                // place, with its own answer (a line that alone never fits answers its error).
                Err(OverBudget::NeverFits { .. }) => {
                    let (mut input, mut turn) = (Some(input), turn);
                    let mut split: VecDeque<InFlight<K::Outcome>> = (chunk.single_lines().into_iter())
                        .map(|line| InFlight {
                            chunk: Arc::new(line),
                            job: None,
                            input: input.take().unwrap_or_else(|| self.state.memory.empty()),
                            _turn: turn.take(),
                        })
                        .collect();
                    split.extend(progress.in_flight.drain(..));
                    progress.in_flight = split;
                    return Ok(());
                }
            };
            // From now on this stream's chunks run one at a time, each when its turn comes.
            progress.one_at_a_time = true;
            for behind in &mut progress.in_flight {
                if let Some(job) = behind.job.take() {
                    // Its result, if any, is dropped here with its reservation.
                    let _ = job.wait().await;
                }
            }
            let Some(held) = self.reserve_when_free(needed, deadline).await? else {
                self.state.metrics.reject(REJECT_MEMORY_BUDGET);
                let refused = self.kind.refuse(&chunk, &Error::line_budget_busy(wait.as_secs()));
                break (refused, self.state.memory.empty());
            };
            job = self.submit(&chunk, held, gate.clone()).await?;
        };
        // The input and the long-line turn are free once the answer is made.
        drop((input, turn));
        // Counted once, when its answer is sent: a result given back and made again counts once.
        let output = self.kind.deliver(outcome, &mut progress.summary, &self.state.metrics);
        self.output.send(reserved_bytes(output, answer)).await
    }
}

/// The length of the line a compressed body is in, as it decodes. A line past the line limit ends
/// a compressed stream (a plain one skips the line and goes on): a decompression bomb is a few
/// megabytes that decode to gigabytes without a newline, and is stopped after the limit.
struct LineLength {
    /// `None` for a plain body, which the line limit alone covers.
    max: Option<usize>,
    current: usize,
}

impl LineLength {
    fn new(coding: ContentCoding, max_line_bytes: usize) -> LineLength {
        LineLength { max: (coding != ContentCoding::Identity).then_some(max_line_bytes), current: 0 }
    }

    fn after(&mut self, data: &[u8]) -> Result<(), Error> {
        let Some(max) = self.max else { return Ok(()) };
        self.current = match data.iter().rposition(|&b| b == b'\n') {
            Some(newline) => data.len() - newline - 1,
            None => self.current.saturating_add(data.len()),
        };
        if self.current <= max {
            return Ok(());
        }
        Err(Error::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "the decoded body has a line longer than the limit of {max} bytes (PREFEVAL_MAX_BODY_BYTES / \
                 --max-body-bytes); a compressed stream stops here"
            ),
        ))
    }
}

/// The slowest body a stream accepts, averaged over each window of the request timeout spent
/// waiting for it: a producer that sends a line now and then passes; one byte every few seconds,
/// which only holds a connection, does not.
pub const MIN_UPLOAD_BYTES_PER_SEC: u64 = 16;

/// How fast a stream's body arrives, counted only while the stream waits for it (not while the
/// stream itself holds back, waiting for workers, memory or its reader).
struct UploadPace {
    window: Duration,
    waited: Duration,
    received: u64,
    silent: Duration,
}

impl UploadPace {
    fn new(window: Duration) -> UploadPace {
        UploadPace { window, waited: Duration::ZERO, received: 0, silent: Duration::ZERO }
    }

    fn waited(&mut self, waited: Duration) {
        self.waited += waited;
        self.silent += waited;
    }

    fn received(&mut self, bytes: u64) {
        self.received = self.received.saturating_add(bytes);
        self.silent = Duration::ZERO;
    }

    /// The error that ends the body, once it has been silent, or too slow, for a whole window.
    fn check(&mut self) -> Option<Error> {
        let secs = self.window.as_secs();
        if self.silent >= self.window {
            return Some(Error::new(
                ErrorCode::RequestTimeout,
                format!("no body bytes for {secs} s (PREFEVAL_REQUEST_TIMEOUT_SECS); the stream stops here"),
            ));
        }
        if self.waited < self.window {
            return None;
        }
        let slow = self.received < MIN_UPLOAD_BYTES_PER_SEC.saturating_mul(secs);
        let received = std::mem::take(&mut self.received);
        self.waited = Duration::ZERO;
        slow.then(|| {
            Error::new(
                ErrorCode::RequestTimeout,
                format!(
                    "the body sent {received} bytes in {secs} s, slower than {MIN_UPLOAD_BYTES_PER_SEC} bytes/s; \
                     the stream stops here"
                ),
            )
        })
    }
}

/// `{"error": {...}}` without a line number: the stream as a whole stops here, with no summary.
fn stream_error_line(error: &Error) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing the error into a Vec cannot fail.
    let _ = write_stream_error(&mut out, error);
    out
}

/// The response body: output pieces as the stream task sends them, each still reserved until the
/// connection has written it (`reserved_bytes`).
struct OutputBody {
    receiver: mpsc::Receiver<Bytes>,
}

impl HttpBody for OutputBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        self.receiver.poll_recv(cx).map(|piece| piece.map(|bytes| Ok(http_body::Frame::data(bytes))))
    }
}
