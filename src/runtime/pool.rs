//! Admission control and the blocking worker pool. Owns every CPU-heavy step of a request
//! (decoding, validation, evaluation, encoding) so that none of it runs on the async runtime.
//!
//! A job is admitted only while fewer than `workers + queue_depth` jobs are in the pool (running
//! or waiting), so at most `queue_depth` wait for a worker; otherwise the caller is told at once
//! (the HTTP layer answers 503). Each job runs alone on one of `workers` dedicated threads, fed in
//! order from one queue. Inside a job, `WorkerScope::map` spreads independent units over a
//! separate set of unit threads, so one large request uses every core; unit threads run units
//! only, so a request never runs inside another one's wait (as it would if whole requests were
//! tasks of the same work-stealing pool as their units).

use std::any::Any;
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use tokio::sync::oneshot;

/// Below this many units a job runs them inline: spreading costs more than it saves.
const MIN_UNITS_TO_SPREAD: usize = 2;

/// Weight of the newest job in the running mean of compute times: about the last ten jobs count.
const COMPUTE_MEAN_WEIGHT: f64 = 0.2;

/// Longest `Retry-After` advised: past a minute the estimate says little, and a client should
/// come back and see.
pub const MAX_RETRY_AFTER_SECS: u64 = 60;

pub struct Pool {
    shared: Arc<Shared>,
    units: Arc<rayon::ThreadPool>,
    queue_depth: usize,
    workers: usize,
    on_skip: Option<SkipHook>,
}

/// Called when a job is dropped unrun because its caller went away.
pub type SkipHook = Arc<dyn Fn() + Send + Sync>;

type Job = Box<dyn FnOnce() + Send>;

struct Shared {
    queue: Mutex<Queue>,
    job_ready: Condvar,
    /// Workers waiting on `job_ready`: a submit wakes one only if some sleep.
    sleeping: AtomicUsize,
    counters: Counters,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    closed: bool,
}

#[derive(Debug, Default)]
struct Counters {
    /// Jobs admitted and not finished (running or waiting).
    admitted: AtomicUsize,
    /// Jobs admitted and not started.
    queued: AtomicUsize,
    busy: AtomicUsize,
    /// Running mean of recent compute times, seconds as f64 bits; 0 before the first job.
    mean_compute_bits: AtomicU64,
}

impl Counters {
    fn record_compute(&self, compute: Duration) {
        let sample = compute.as_secs_f64();
        let _ = self.mean_compute_bits.fetch_update(Ordering::AcqRel, Ordering::Acquire, |bits| {
            let mean = f64::from_bits(bits);
            let next = if bits == 0 { sample } else { mean + COMPUTE_MEAN_WEIGHT * (sample - mean) };
            Some(next.to_bits())
        });
    }

    fn mean_compute_secs(&self) -> f64 {
        f64::from_bits(self.mean_compute_bits.load(Ordering::Acquire))
    }
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

/// Handed to a running job: runs independent units on every unit thread, and says whether the
/// job's caller still waits for it.
pub struct WorkerScope<'a> {
    units: &'a rayon::ThreadPool,
    cancelled: &'a (dyn Fn() -> bool + Sync),
}

impl crate::pipeline::Parallel for WorkerScope<'_> {
    /// `f` over every unit, results in unit order. The order of results never depends on how
    /// many threads ran them.
    fn map<U: Sync, R: Send>(&self, units: &[U], f: impl Fn(&U) -> R + Sync + Send) -> Vec<R> {
        if units.len() < MIN_UNITS_TO_SPREAD {
            return units.iter().map(f).collect();
        }
        // The calling worker blocks until the units are done; being no thread of `self.units`,
        // it takes no other work meanwhile.
        self.units.install(|| units.par_iter().map(f).collect())
    }

    /// The caller dropped its `PendingJob`: its request timed out, or its client went away.
    fn cancelled(&self) -> bool {
        (self.cancelled)()
    }
}

impl Pool {
    pub fn new(workers: usize, queue_depth: usize) -> std::io::Result<Pool> {
        let workers = workers.max(1);
        let units = rayon::ThreadPoolBuilder::new()
            .num_threads(workers)
            .thread_name(|i| format!("prefeval-unit-{i}"))
            .build()
            .map_err(std::io::Error::other)?;
        let shared = Arc::new(Shared {
            queue: Mutex::default(),
            job_ready: Condvar::new(),
            sleeping: AtomicUsize::new(0),
            counters: Counters::default(),
        });
        for i in 0..workers {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new().name(format!("prefeval-worker-{i}")).spawn(move || run_jobs(&shared))?;
        }
        Ok(Pool { shared, units: Arc::new(units), queue_depth, workers, on_skip: None })
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
        self.shared.counters.queued.load(Ordering::Relaxed)
    }

    /// Workers currently running a job.
    pub fn busy(&self) -> usize {
        self.shared.counters.busy.load(Ordering::Relaxed)
    }

    /// Seconds after which a refused client may expect room: the jobs in the pool times the
    /// recent mean compute time, shared among the workers; rounded up, at least 1 and at most
    /// `MAX_RETRY_AFTER_SECS`.
    pub fn retry_after_secs(&self) -> u64 {
        let counters = &self.shared.counters;
        let in_pool = counters.admitted.load(Ordering::Relaxed) as f64;
        let drain_secs = in_pool * counters.mean_compute_secs() / self.workers as f64;
        // `as` saturates; NaN (never expected) becomes 0 and so 1.
        (drain_secs.ceil() as u64).clamp(1, MAX_RETRY_AFTER_SECS)
    }

    /// Whether a job submitted now would be admitted (it may not be by the time it is).
    pub fn has_room(&self) -> bool {
        self.shared.counters.admitted.load(Ordering::Acquire) < self.workers + self.queue_depth
    }

    /// Admits `job` or refuses at once. The job is skipped if the returned future is dropped
    /// before a worker picks it up (the client went away).
    pub fn submit<T, F>(&self, job: F) -> Result<PendingJob<T>, QueueFull>
    where
        T: Send + 'static,
        F: FnOnce(&WorkerScope<'_>) -> T + Send + 'static,
    {
        self.submit_or_return(job).map_err(|_| QueueFull)
    }

    /// As `submit`, but a refused job comes back, with whatever it owns (a memory reservation,
    /// say), for the caller to submit again later.
    pub fn submit_or_return<T, F>(&self, job: F) -> Result<PendingJob<T>, F>
    where
        T: Send + 'static,
        F: FnOnce(&WorkerScope<'_>) -> T + Send + 'static,
    {
        let counters = &self.shared.counters;
        let capacity = self.workers + self.queue_depth;
        let admitted = counters.admitted.fetch_update(Ordering::AcqRel, Ordering::Acquire, |admitted| {
            (admitted < capacity).then_some(admitted + 1)
        });
        if admitted.is_err() {
            return Err(job);
        }
        counters.queued.fetch_add(1, Ordering::AcqRel);
        let (sender, receiver) = oneshot::channel();
        let shared = Arc::clone(&self.shared);
        let units = Arc::clone(&self.units);
        let submitted = Instant::now();
        let on_skip = self.on_skip.clone();
        let run: Job = Box::new(move || {
            let counters = &shared.counters;
            counters.queued.fetch_sub(1, Ordering::AcqRel);
            let admission = Admission(counters);
            if sender.is_closed() {
                if let Some(hook) = on_skip {
                    hook();
                }
                return;
            }
            let started = Instant::now();
            counters.busy.fetch_add(1, Ordering::AcqRel);
            let caller_gone = || sender.is_closed();
            let scope = WorkerScope { units: &units, cancelled: &caller_gone };
            let outcome = catch_unwind(AssertUnwindSafe(|| job(&scope)));
            counters.busy.fetch_sub(1, Ordering::AcqRel);
            let timings = Timings { queue: started - submitted, compute: started.elapsed() };
            counters.record_compute(timings.compute);
            // Free the slot before answering, so a caller that submits again right after its
            // answer never finds its own finished job still counted.
            drop(admission);
            let _ = sender.send(outcome.map(|value| (value, timings)).map_err(panic_message));
        });
        let mut queue = lock(&self.shared.queue);
        queue.jobs.push_back(run);
        // Read under the lock that a sleeper takes before it waits: none can be missed.
        let sleeping = self.shared.sleeping.load(Ordering::Acquire);
        drop(queue);
        if sleeping > 0 {
            self.shared.job_ready.notify_one();
        }
        Ok(PendingJob { receiver })
    }
}

impl Drop for Pool {
    /// Workers finish the job they run and exit; queued jobs are dropped, so their callers see
    /// `JobFailure::Dropped`.
    fn drop(&mut self) {
        let mut queue = lock(&self.shared.queue);
        queue.closed = true;
        queue.jobs.clear();
        drop(queue);
        self.shared.job_ready.notify_all();
    }
}

/// One worker thread: runs queued jobs one at a time until the pool closes.
fn run_jobs(shared: &Shared) {
    loop {
        let job = {
            let mut queue = lock(&shared.queue);
            loop {
                if queue.closed {
                    return;
                }
                if let Some(job) = queue.jobs.pop_front() {
                    break job;
                }
                // Under load the next job is usually microseconds away: look again for a short
                // while before sleeping, which spares a futex wake and two context switches.
                drop(queue);
                let spin_until = Instant::now() + SPIN_BEFORE_SLEEP;
                while shared.counters.queued.load(Ordering::Acquire) == 0 && Instant::now() < spin_until {
                    std::thread::yield_now();
                }
                queue = lock(&shared.queue);
                if queue.jobs.is_empty() && !queue.closed {
                    shared.sleeping.fetch_add(1, Ordering::AcqRel);
                    queue = shared.job_ready.wait(queue).unwrap_or_else(|poisoned| poisoned.into_inner());
                    shared.sleeping.fetch_sub(1, Ordering::AcqRel);
                }
            }
        };
        job();
    }
}

const SPIN_BEFORE_SLEEP: Duration = Duration::from_micros(50);

/// Jobs catch their own panics, so the lock is never poisoned in practice; if it were, the queue
/// itself is still consistent (push and pop are single calls).
fn lock(queue: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
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
    /// Whether the job has finished, so that `wait` returns at once.
    pub fn is_ready(&self) -> bool {
        !self.receiver.is_empty()
    }

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
    use crate::pipeline::Parallel;
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
        let channels = [Mutex::new((a_tx, b_rx)), Mutex::new((b_tx, a_rx))];
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

    #[tokio::test]
    async fn a_request_never_runs_inside_another_ones_wait() {
        let pool = Pool::new(2, 4).unwrap();
        let job_a_thread = Arc::new(Mutex::new(None));
        let b_finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let b_finished_in_a = Arc::clone(&b_finished);
        // A's two units meet (so they run at once), then the unit on A's own thread, if any,
        // returns, leaving that thread waiting for the other unit, which waits for B. A pool that
        // lets a waiting thread take whole jobs runs B right there, inside A.
        let (a_tx, a_rx) = mpsc::channel::<()>();
        let (b_tx, b_rx) = mpsc::channel::<()>();
        let meet = [Mutex::new((a_tx, b_rx)), Mutex::new((b_tx, a_rx))];
        let recorded = Arc::clone(&job_a_thread);
        let a = pool
            .submit(move |scope| {
                *recorded.lock().unwrap() = Some(std::thread::current().id());
                let own = std::thread::current().id();
                scope.map(&meet, |pair| {
                    let pair = pair.lock().unwrap();
                    pair.0.send(()).unwrap();
                    pair.1.recv_timeout(Duration::from_secs(20)).unwrap();
                    let waiting = Instant::now();
                    while std::thread::current().id() != own
                        && !b_finished_in_a.load(Ordering::Acquire)
                        && waiting.elapsed() < Duration::from_secs(20)
                    {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                })
            })
            .unwrap();
        while job_a_thread.lock().unwrap().is_none() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let a_thread = job_a_thread.lock().unwrap().unwrap();
        let a_still_running = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let running = Arc::clone(&a_still_running);
        let b = pool
            .submit(move |_| {
                let nested = std::thread::current().id() == a_thread && running.load(Ordering::Acquire);
                b_finished.store(true, Ordering::Release);
                nested
            })
            .unwrap();
        let nested = b.wait().await.unwrap().0;
        a.wait().await.unwrap();
        a_still_running.store(false, Ordering::Release);
        assert!(!nested, "request B ran on request A's thread while A waited for its units");
    }

    #[tokio::test]
    async fn retry_after_grows_with_the_queue_and_recent_compute_times() {
        let pool = Pool::new(1, 12).unwrap();
        assert_eq!(pool.retry_after_secs(), 1, "no history: the floor");
        pool.submit(|_| std::thread::sleep(Duration::from_millis(1000))).unwrap().wait().await.unwrap();
        let (release, hold) = mpsc::channel::<()>();
        let running = pool.submit(move |_| hold.recv().unwrap()).unwrap();
        let queued: Vec<_> = (0..12).map(|_| pool.submit(|_| ()).unwrap()).collect();
        // 13 jobs of about 1 s each behind one worker.
        let advised = pool.retry_after_secs();
        assert!((13..=MAX_RETRY_AFTER_SECS).contains(&advised), "advised {advised} s");
        release.send(()).unwrap();
        running.wait().await.unwrap();
        for job in queued {
            job.wait().await.unwrap();
        }
    }
}
