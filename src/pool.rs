//! Admission control and the blocking worker pool. Owns every CPU-heavy step of a request
//! (decoding, validation, evaluation, encoding) so that none of it runs on the async runtime.
//!
//! A job is admitted only while fewer than `workers + queue_depth` jobs are in the pool (running
//! or waiting), so at most `queue_depth` wait for a worker; otherwise the caller is told at once
//! (the HTTP layer answers 503). Inside a job, `WorkerScope::map` spreads
//! independent units over every worker, so one large request can use all cores.

use std::any::Any;
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use tokio::sync::oneshot;

/// Below this many units a job runs them inline: spreading costs more than it saves.
const MIN_UNITS_TO_SPREAD: usize = 2;

pub struct Pool {
    threads: rayon::ThreadPool,
    counters: Arc<Counters>,
    queue_depth: usize,
    workers: usize,
    on_skip: Option<SkipHook>,
}

/// Called when a job is dropped unrun because its caller went away.
pub type SkipHook = Arc<dyn Fn() + Send + Sync>;

#[derive(Debug, Default)]
struct Counters {
    /// Jobs admitted and not finished (running or waiting).
    admitted: AtomicUsize,
    /// Jobs admitted and not started.
    queued: AtomicUsize,
    busy: AtomicUsize,
}

/// Where a job's time went.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Timings {
    pub queue: Duration,
    pub compute: Duration,
}

#[derive(Debug, PartialEq, Eq)]
pub struct QueueFull;

#[derive(Debug, PartialEq, Eq)]
pub enum JobFailure {
    /// The job panicked; the message is for logs only.
    Panicked(String),
    /// The pool went away before running the job (shutdown).
    Dropped,
}

/// Handed to a running job: runs independent units on every worker.
pub struct WorkerScope<'a> {
    counters: &'a Counters,
}

thread_local! {
    /// Nesting depth of busy sections on this thread, so a worker is counted busy once.
    static BUSY_DEPTH: Cell<usize> = const { Cell::new(0) };
}

struct BusyGuard<'a>(&'a Counters);

impl<'a> BusyGuard<'a> {
    fn enter(counters: &'a Counters) -> Self {
        BUSY_DEPTH.with(|depth| {
            if depth.get() == 0 {
                counters.busy.fetch_add(1, Ordering::Relaxed);
            }
            depth.set(depth.get() + 1);
        });
        BusyGuard(counters)
    }
}

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        BUSY_DEPTH.with(|depth| {
            depth.set(depth.get() - 1);
            if depth.get() == 0 {
                self.0.busy.fetch_sub(1, Ordering::Relaxed);
            }
        });
    }
}

impl WorkerScope<'_> {
    /// `f` over every unit, results in unit order. The order of results never depends on how
    /// many workers ran them.
    pub fn map<U: Sync, R: Send>(&self, units: &[U], f: impl Fn(&U) -> R + Sync + Send) -> Vec<R> {
        if units.len() < MIN_UNITS_TO_SPREAD {
            return units.iter().map(f).collect();
        }
        units
            .par_iter()
            .map(|unit| {
                let _busy = BusyGuard::enter(self.counters);
                f(unit)
            })
            .collect()
    }
}

impl Pool {
    pub fn new(workers: usize, queue_depth: usize) -> std::io::Result<Pool> {
        let threads = rayon::ThreadPoolBuilder::new()
            .num_threads(workers.max(1))
            .thread_name(|i| format!("prefeval-worker-{i}"))
            .build()
            .map_err(std::io::Error::other)?;
        Ok(Pool { threads, counters: Arc::default(), queue_depth, workers: workers.max(1), on_skip: None })
    }

    /// Sets the hook called for every job skipped because its caller went away (metrics).
    pub fn on_skip(mut self, hook: SkipHook) -> Pool {
        self.on_skip = Some(hook);
        self
    }

    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Jobs admitted and not yet started.
    pub fn queued(&self) -> usize {
        self.counters.queued.load(Ordering::Relaxed)
    }

    /// Workers currently running a job.
    pub fn busy(&self) -> usize {
        self.counters.busy.load(Ordering::Relaxed)
    }

    /// Admits `job` or refuses at once. The job is skipped if the returned future is dropped
    /// before a worker picks it up (the client went away).
    pub fn submit<T, F>(&self, job: F) -> Result<PendingJob<T>, QueueFull>
    where
        T: Send + 'static,
        F: FnOnce(&WorkerScope<'_>) -> T + Send + 'static,
    {
        let capacity = self.workers + self.queue_depth;
        let admitted = self.counters.admitted.fetch_update(Ordering::AcqRel, Ordering::Acquire, |admitted| {
            (admitted < capacity).then_some(admitted + 1)
        });
        if admitted.is_err() {
            return Err(QueueFull);
        }
        self.counters.queued.fetch_add(1, Ordering::AcqRel);
        let (sender, receiver) = oneshot::channel();
        let counters = Arc::clone(&self.counters);
        let submitted = Instant::now();
        let on_skip = self.on_skip.clone();
        self.threads.spawn(move || {
            counters.queued.fetch_sub(1, Ordering::AcqRel);
            let admission = Admission(&counters);
            if sender.is_closed() {
                if let Some(hook) = on_skip {
                    hook();
                }
                return;
            }
            let started = Instant::now();
            let outcome = {
                let _busy = BusyGuard::enter(&counters);
                let scope = WorkerScope { counters: &counters };
                catch_unwind(AssertUnwindSafe(|| job(&scope)))
            };
            let timings = Timings { queue: started - submitted, compute: started.elapsed() };
            // Free the slot before answering, so a caller that submits again right after its
            // answer never finds its own finished job still counted.
            drop(admission);
            let _ = sender.send(outcome.map(|value| (value, timings)).map_err(panic_message));
        });
        Ok(PendingJob { receiver })
    }
}

/// Releases a job's admission slot when it finishes, however it finishes.
struct Admission<'a>(&'a Counters);

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        self.0.admitted.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A job admitted to the pool; await it for its value and timings.
pub struct PendingJob<T> {
    receiver: oneshot::Receiver<Result<(T, Timings), String>>,
}

impl<T> PendingJob<T> {
    pub async fn wait(self) -> Result<(T, Timings), JobFailure> {
        match self.receiver.await {
            Ok(Ok(done)) => Ok(done),
            Ok(Err(message)) => Err(JobFailure::Panicked(message)),
            Err(_) => Err(JobFailure::Dropped),
        }
    }
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(message) => *message,
        Err(payload) => payload.downcast_ref::<&str>().map_or_else(|| "panic".to_string(), |s| (*s).to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[tokio::test]
    async fn full_queue_refuses_at_once_and_recovers() {
        let pool = Pool::new(1, 1).unwrap();
        let (release, hold) = mpsc::channel::<()>();
        let (started_tx, started_rx) = mpsc::channel::<()>();
        let running = pool
            .submit(move |_| {
                started_tx.send(()).unwrap();
                hold.recv().unwrap();
            })
            .unwrap();
        started_rx.recv().unwrap();
        let queued = pool.submit(|_| 7).unwrap();
        assert_eq!(pool.queued(), 1);
        assert_eq!(pool.busy(), 1);
        assert!(matches!(pool.submit(|_| 8), Err(QueueFull)));
        release.send(()).unwrap();
        running.wait().await.unwrap();
        assert_eq!(queued.wait().await.unwrap().0, 7);
        assert_eq!(pool.submit(|_| 9).unwrap().wait().await.unwrap().0, 9);
    }

    #[tokio::test]
    async fn one_job_spreads_its_units_over_every_worker() {
        let pool = Pool::new(2, 1).unwrap();
        // Each unit waits for the other: this finishes only if two workers run them at once.
        let (a_tx, a_rx) = mpsc::channel::<()>();
        let (b_tx, b_rx) = mpsc::channel::<()>();
        let channels = [std::sync::Mutex::new((a_tx, b_rx)), std::sync::Mutex::new((b_tx, a_rx))];
        let met = pool
            .submit(move |scope| {
                scope.map(&channels, |pair| {
                    let pair = pair.lock().unwrap();
                    pair.0.send(()).unwrap();
                    pair.1.recv_timeout(Duration::from_secs(20)).is_ok()
                })
            })
            .unwrap()
            .wait()
            .await
            .unwrap()
            .0;
        assert_eq!(met, vec![true, true], "both units ran at the same time");
    }

    #[tokio::test]
    async fn a_panicking_job_is_reported_and_the_pool_goes_on() {
        let pool = Pool::new(2, 4).unwrap();
        let failed = pool.submit(|_| -> u8 { panic!("boom") }).unwrap().wait().await;
        assert_eq!(failed.unwrap_err(), JobFailure::Panicked("boom".into()));
        let squares = pool.submit(|scope| scope.map(&[1u64, 2, 3, 4], |x| x * x)).unwrap().wait().await.unwrap().0;
        assert_eq!(squares, vec![1, 4, 9, 16]);
    }
}
