//! Every Prometheus metric of the service, owned by one struct with its own registry. Names and
//! labels are those of `docs/design/api.md`; dashboards and alerts rely on them.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use axum::http::StatusCode;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::math::{MARGIN_BOUNDS, MarginCounts, Totals};
use crate::runtime::pool::Timings;

/// Why a request was turned away before evaluation; each is exported at 0 from start-up so
/// `rate()` and alerts see the series before the first event.
pub const REJECT_REASONS: [&str; 3] = [REJECT_QUEUE_FULL, REJECT_MEMORY_BUDGET, REJECT_CLIENT_DISCONNECTED];
/// The worker queue was full (answered 503).
pub const REJECT_QUEUE_FULL: &str = "queue_full";
/// The memory budget could not cover the request (answered 503, or 413 when it never could).
pub const REJECT_MEMORY_BUDGET: &str = "memory_budget";
/// The client went away while its request waited for a worker: the work was skipped.
pub const REJECT_CLIENT_DISCONNECTED: &str = "client_disconnected";

/// `model` labels for requests that name none, and for models past the label bound; the
/// validation that refuses them as client models lives with them in the core.
pub use prefeval_core::pipeline::validate::{MODEL_OTHER, MODEL_UNSPECIFIED};

/// Latency buckets (seconds) for whole requests and compute: a 4-item list answers in tens of
/// microseconds, a 10,000-item list (5·10^7 pairs) in about a second per core, and the request
/// timeout is 30 s; roughly ×2.5 steps keep p50/p99 estimates within one step across that range.
const LATENCY_BUCKETS: [f64; 16] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0];

/// Queue-wait buckets (seconds): zero when workers are free, so finer at the low end; a wait past a
/// few seconds means the queue depth is set too deep for the traffic.
const QUEUE_WAIT_BUCKETS: [f64; 13] =
    [0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0];

/// Per-list loss buckets: dense around chance level, ln(2)/2 ≈ 0.347 under `ordered_pairs` and
/// ln 2 ≈ 0.693 under `comparisons`, where a reward model's quality is read; coarse in the tail
/// (`sum` normalization and badly wrong models reach several units).
const LOSS_BUCKETS: [f64; 18] =
    [0.01, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0, 1.5, 2.0, 5.0, 10.0];

pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    lists_evaluated: IntCounterVec,
    pairs_evaluated: IntCounterVec,
    pairs_agreeing: prometheus::CounterVec,
    list_loss: HistogramVec,
    queue_depth: IntGauge,
    workers_busy: IntGauge,
    rejected: IntCounterVec,
    memory_reserved: IntGauge,
    memory_limit: IntGauge,
    connections_open: IntGauge,
    write_timeouts: prometheus::IntCounter,
    queue_wait: Histogram,
    compute: Histogram,
    pair_margins: PairMargins,
    models: ModelLabels,
}

/// What one evaluated request (or stream chunk, or compared model) adds to the domain counters.
pub struct EvaluationCounts<'a> {
    pub model: Option<&'a str>,
    pub totals: &'a Totals,
    pub list_losses: &'a mut dyn Iterator<Item = f64>,
}

impl Metrics {
    pub fn new(max_model_labels: usize) -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new("prefeval_http_requests_total", "HTTP requests answered, by method, route template and status."),
            &["method", "route", "status"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new("prefeval_http_request_duration_seconds", "Time from request to response head.")
                .buckets(LATENCY_BUCKETS.to_vec()),
            &["method", "route"],
        )?;
        let lists_evaluated = IntCounterVec::new(
            Opts::new("prefeval_lists_evaluated_total", "Ranked lists evaluated, by model label."),
            &["model"],
        )?;
        let pairs_evaluated = IntCounterVec::new(
            Opts::new("prefeval_pairs_evaluated_total", "Implied preferences evaluated, by model label."),
            &["model"],
        )?;
        let pairs_agreeing = prometheus::CounterVec::new(
            Opts::new(
                "prefeval_pairs_agreeing_total",
                "Implied preferences the rewards order the same way (a reward tie counts 0.5); \
                 accuracy = agreeing / evaluated.",
            ),
            &["model"],
        )?;
        let list_loss = HistogramVec::new(
            HistogramOpts::new(
                "prefeval_list_loss",
                "Listwise loss of each evaluated list, in the normalization requested.",
            )
            .buckets(LOSS_BUCKETS.to_vec()),
            &["model"],
        )?;
        let queue_depth = IntGauge::new("prefeval_worker_queue_depth", "Requests admitted and waiting for a worker.")?;
        let workers_busy = IntGauge::new("prefeval_worker_busy", "Workers computing right now.")?;
        let rejected = IntCounterVec::new(
            Opts::new("prefeval_requests_rejected_total", "Requests turned away before evaluation, by reason."),
            &["reason"],
        )?;
        let memory_reserved = IntGauge::new(
            "prefeval_memory_reserved_bytes",
            "Bytes of the memory budget reserved by requests in flight (bodies, decoded forms, answers).",
        )?;
        let memory_limit =
            IntGauge::new("prefeval_memory_limit_bytes", "The memory budget (PREFEVAL_MEMORY_LIMIT_BYTES).")?;
        let connections_open =
            IntGauge::new("prefeval_connections_open", "Client connections open on the main listener.")?;
        let write_timeouts = prometheus::IntCounter::new(
            "prefeval_write_timeouts_total",
            "Connections closed because their client took no answer bytes for PREFEVAL_WRITE_TIMEOUT_SECS.",
        )?;
        let queue_wait = Histogram::with_opts(
            HistogramOpts::new("prefeval_queue_wait_seconds", "Time an admitted request waited for a worker.")
                .buckets(QUEUE_WAIT_BUCKETS.to_vec()),
        )?;
        let compute = Histogram::with_opts(
            HistogramOpts::new(
                "prefeval_compute_seconds",
                "Worker time of one request: decoding, validation, evaluation and encoding.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )?;
        let build_info = IntGaugeVec::new(
            Opts::new("prefeval_build_info", "Always 1; the version label says which build runs."),
            &["version"],
        )?;
        build_info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        for reason in REJECT_REASONS {
            rejected.with_label_values(&[reason]);
        }

        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(lists_evaluated.clone()))?;
        registry.register(Box::new(pairs_evaluated.clone()))?;
        registry.register(Box::new(pairs_agreeing.clone()))?;
        registry.register(Box::new(list_loss.clone()))?;
        registry.register(Box::new(queue_depth.clone()))?;
        registry.register(Box::new(workers_busy.clone()))?;
        registry.register(Box::new(rejected.clone()))?;
        registry.register(Box::new(memory_reserved.clone()))?;
        registry.register(Box::new(memory_limit.clone()))?;
        registry.register(Box::new(connections_open.clone()))?;
        registry.register(Box::new(write_timeouts.clone()))?;
        registry.register(Box::new(queue_wait.clone()))?;
        registry.register(Box::new(compute.clone()))?;
        registry.register(Box::new(build_info))?;

        Ok(Metrics {
            registry,
            http_requests,
            http_duration,
            lists_evaluated,
            pairs_evaluated,
            pairs_agreeing,
            list_loss,
            queue_depth,
            workers_busy,
            rejected,
            memory_reserved,
            memory_limit,
            connections_open,
            write_timeouts,
            queue_wait,
            compute,
            pair_margins: PairMargins::default(),
            models: ModelLabels::new(max_model_labels),
        })
    }

    pub fn observe_http(&self, method: &str, route: &str, status: StatusCode, elapsed: Duration) {
        self.http_requests.with_label_values(&[method, route, status.as_str()]).inc();
        self.http_duration.with_label_values(&[method, route]).observe(elapsed.as_secs_f64());
    }

    pub fn observe_timings(&self, timings: &Timings) {
        self.queue_wait.observe(timings.queue.as_secs_f64());
        self.compute.observe(timings.compute.as_secs_f64());
    }

    pub fn observe_evaluation(&self, counts: EvaluationCounts<'_>) {
        let model = self.models.label(counts.model);
        let labels = [model.as_str()];
        let totals = counts.totals;
        self.lists_evaluated.with_label_values(&labels).inc_by(totals.lists);
        self.pairs_evaluated.with_label_values(&labels).inc_by(totals.pairs);
        // Halves are exact in f64 up to 2^53, far past any counter's life.
        self.pairs_agreeing.with_label_values(&labels).inc_by(totals.agreeing_halves as f64 / 2.0);
        let histogram = self.list_loss.with_label_values(&labels);
        counts.list_losses.for_each(|loss| histogram.observe(loss));
        self.pair_margins.observe(&model, &totals.margins);
    }

    /// A connection was closed by the write timeout.
    pub fn write_timed_out(&self) {
        self.write_timeouts.inc();
    }

    pub fn reject(&self, reason: &str) {
        self.rejected.with_label_values(&[reason]).inc();
    }

    /// The text exposition, with the gauges read at scrape time.
    pub fn render(&self, gauges: &GaugeReadings) -> Result<Vec<u8>, prometheus::Error> {
        let set = |gauge: &IntGauge, value: usize| gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
        set(&self.queue_depth, gauges.queued);
        set(&self.workers_busy, gauges.busy);
        set(&self.memory_reserved, gauges.memory_reserved);
        set(&self.memory_limit, gauges.memory_limit);
        set(&self.connections_open, gauges.connections_open);
        let mut out = Vec::with_capacity(16 * 1024);
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        self.pair_margins.render(&mut out);
        Ok(out)
    }
}

/// `prefeval_pair_margin{model}`: a histogram of β·(r_preferred − r_other) over every implied
/// pair. Requests add whole bucket counts at once (counted in the kernel), which the client
/// library's histogram cannot take, so this one is kept here and written in the text format
/// beside the registry's families.
#[derive(Default)]
struct PairMargins {
    by_model: Mutex<Vec<(String, MarginCounts)>>,
}

impl PairMargins {
    fn observe(&self, model: &str, margins: &MarginCounts) {
        if margins.count() == 0 {
            return;
        }
        let mut by_model = self.by_model.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match by_model.iter_mut().find(|(label, _)| label == model) {
            Some((_, counts)) => counts.merge(margins),
            None => by_model.push((model.to_string(), *margins)),
        }
    }

    fn render(&self, out: &mut Vec<u8>) {
        use std::io::Write;
        let by_model = self.by_model.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        let _ = writeln!(
            out,
            "# HELP prefeval_pair_margin Margin beta*(r_preferred - r_other) of every implied pair evaluated, by model label.\n\
             # TYPE prefeval_pair_margin histogram"
        );
        for (model, counts) in &by_model {
            let label = escape_label(model);
            let mut cumulative = 0u64;
            for (bound, count) in MARGIN_BOUNDS.iter().zip(&counts.buckets) {
                cumulative += count;
                let _ = writeln!(out, "prefeval_pair_margin_bucket{{model=\"{label}\",le=\"{bound}\"}} {cumulative}");
            }
            let total = counts.count();
            let _ = writeln!(out, "prefeval_pair_margin_bucket{{model=\"{label}\",le=\"+Inf\"}} {total}");
            let _ = writeln!(out, "prefeval_pair_margin_sum{{model=\"{label}\"}} {}", float_text(counts.sum));
            let _ = writeln!(out, "prefeval_pair_margin_count{{model=\"{label}\"}} {total}");
        }
    }
}

/// A label value in the text format: backslash, double quote and newline escaped.
fn escape_label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// A sample value in the text format (`+Inf`, `-Inf`, `NaN` spelled as Prometheus reads them).
fn float_text(value: f64) -> String {
    match value {
        v if v.is_nan() => "NaN".to_string(),
        v if v == f64::INFINITY => "+Inf".to_string(),
        v if v == f64::NEG_INFINITY => "-Inf".to_string(),
        v => v.to_string(),
    }
}

/// Values of the gauges that are read from their owners when scraped, not kept up to date.
pub struct GaugeReadings {
    pub queued: usize,
    pub busy: usize,
    pub memory_reserved: usize,
    pub memory_limit: usize,
    pub connections_open: usize,
}

/// Bounds the `model` label: the first `max` distinct names keep their own series, later ones
/// count under `other`, so a client cannot blow up the time-series database.
struct ModelLabels {
    seen: Mutex<HashSet<String>>,
    max: usize,
}

impl ModelLabels {
    fn new(max: usize) -> Self {
        ModelLabels { seen: Mutex::new(HashSet::new()), max }
    }

    fn label(&self, model: Option<&str>) -> String {
        let Some(model) = model else { return MODEL_UNSPECIFIED.to_string() };
        let mut seen = match self.seen.lock() {
            Ok(seen) => seen,
            Err(poisoned) => poisoned.into_inner(),
        };
        if seen.contains(model) {
            return model.to_string();
        }
        if seen.len() < self.max {
            seen.insert(model.to_string());
            return model.to_string();
        }
        MODEL_OTHER.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_labels_past_the_bound_count_as_other() {
        let labels = ModelLabels::new(2);
        assert_eq!(labels.label(Some("a")), "a");
        assert_eq!(labels.label(Some("b")), "b");
        assert_eq!(labels.label(Some("c")), MODEL_OTHER);
        assert_eq!(labels.label(Some("a")), "a");
        assert_eq!(labels.label(None), MODEL_UNSPECIFIED);
    }
}
