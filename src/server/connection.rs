//! One client connection below HTTP: when it was last active (for the idle timeout, which HTTP/2
//! lacks), how many requests it has in flight, whether answer bytes wait for a client that takes
//! none (the write timeout), and the lingering close.
//!
//! Lingering close (what nginx does): when an answer went out before the request body was read
//! (413, 401, 503, ...), closing at once would make the kernel reset the connection, and a client
//! that writes its whole body before reading (Python's `http.client`, many others) would see a
//! broken pipe instead of the answer. So the write side is shut first (the client sees the whole
//! answer and end of stream), then the rest of the body is read and discarded, for at most
//! `LINGER_TOTAL` and until `LINGER_IDLE` of silence, before the socket closes. Discarded bytes go
//! through one small buffer per connection and never count against the memory budget.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

/// Longest a lingering close reads and discards (nginx's `lingering_time`).
pub const LINGER_TOTAL: Duration = Duration::from_secs(30);
/// Silence after which a lingering close gives up (nginx's `lingering_timeout`).
pub const LINGER_IDLE: Duration = Duration::from_secs(5);

/// Bytes read per call while discarding.
const DISCARD_CHUNK: usize = 8 * 1024;

/// What a connection's socket and its requests report about it.
#[derive(Debug)]
pub struct Activity {
    opened: Instant,
    /// Milliseconds after `opened` of the last byte read or written.
    last_active_ms: AtomicU64,
    in_flight: AtomicUsize,
    linger: AtomicBool,
    /// Answer frames handed to the connection and not yet written to the socket (or dropped).
    output_pending: AtomicUsize,
    /// Milliseconds after `opened` of the last answer byte written, or of the moment answer
    /// frames began to wait while none were waiting.
    output_progress_ms: AtomicU64,
    /// A request has reached the service (see `crate::server::parse_errors`).
    dispatched: AtomicBool,
    /// The write clocks of this connection's HTTP/2 answers: one stream that gets no window
    /// stalls even while others (or PINGs) keep bytes moving on the connection.
    streams: Mutex<Vec<Weak<StreamClock>>>,
}

impl Activity {
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            opened: Instant::now(),
            last_active_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            linger: AtomicBool::new(false),
            output_pending: AtomicUsize::new(0),
            output_progress_ms: AtomicU64::new(0),
            dispatched: AtomicBool::new(false),
            streams: Mutex::new(Vec::new()),
        })
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn touch(&self) {
        self.last_active_ms.store(self.elapsed_ms(), Ordering::Relaxed);
    }

    /// Bytes reached the socket: the connection is active and its client takes answers.
    fn wrote(&self) {
        let ms = self.elapsed_ms();
        self.last_active_ms.store(ms, Ordering::Relaxed);
        self.output_progress_ms.store(ms, Ordering::Relaxed);
    }

    /// Counts one answer frame as waiting to be written until the guard drops.
    pub fn output_waiting(self: &Arc<Self>) -> OutputWaiting {
        if self.output_pending.fetch_add(1, Ordering::AcqRel) == 0 {
            // The write clock starts when bytes begin to wait, not at the last write before.
            self.output_progress_ms.store(self.elapsed_ms(), Ordering::Relaxed);
        }
        OutputWaiting(Arc::clone(self))
    }

    /// A write clock for one HTTP/2 answer of this connection.
    pub fn stream_clock(&self) -> Arc<StreamClock> {
        let clock =
            Arc::new(StreamClock { opened: self.opened, pending: AtomicUsize::new(0), progress_ms: AtomicU64::new(0) });
        let mut streams = self.streams.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        streams.retain(|stream| stream.strong_count() > 0);
        streams.push(Arc::downgrade(&clock));
        clock
    }

    /// When the connection counts as stalled if no answer byte is written before: `timeout`
    /// after the last progress while frames wait (of the connection, or of any one HTTP/2
    /// answer), or `timeout` from now while none do.
    pub fn write_deadline(&self, timeout: Duration) -> Instant {
        let connection = (self.output_pending.load(Ordering::Acquire) > 0)
            .then(|| self.opened + Duration::from_millis(self.output_progress_ms.load(Ordering::Relaxed)) + timeout);
        let streams = self.streams.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let stream = streams.iter().filter_map(Weak::upgrade).filter_map(|stream| stream.deadline(timeout)).min();
        connection.into_iter().chain(stream).min().unwrap_or_else(|| Instant::now() + timeout)
    }

    /// Answer frames have waited for `timeout` without the client taking a byte of them.
    pub fn is_write_stalled(&self, timeout: Duration) -> bool {
        self.write_deadline(timeout) <= Instant::now()
    }

    /// When the connection counts as idle if nothing happens before: `idle` after the last byte,
    /// or, while a request is in flight, `idle` from now.
    pub fn idle_deadline(&self, idle: Duration) -> Instant {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Instant::now() + idle;
        }
        self.opened + Duration::from_millis(self.last_active_ms.load(Ordering::Relaxed)) + idle
    }

    /// No request in flight and no byte moved for `idle`.
    pub fn is_idle(&self, idle: Duration) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0 && self.idle_deadline(idle) <= Instant::now()
    }

    /// Counts a request in flight until the guard drops.
    pub fn request_started(self: &Arc<Self>) -> InFlight {
        self.dispatched.store(true, Ordering::Release);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.touch();
        InFlight(Arc::clone(self))
    }
}

impl Activity {
    /// Whether any request of this connection has reached the service: until one has, nothing
    /// the connection writes can be the answer to a request.
    pub fn any_request_dispatched(&self) -> bool {
        self.dispatched.load(Ordering::Acquire)
    }

    #[cfg(test)]
    pub(crate) fn linger_requested(&self) -> bool {
        self.linger.load(Ordering::Acquire)
    }
}

pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The write clock of one HTTP/2 answer: its frames waiting, and when one was last written (or
/// when they began to wait).
#[derive(Debug)]
pub struct StreamClock {
    opened: Instant,
    pending: AtomicUsize,
    progress_ms: AtomicU64,
}

impl StreamClock {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Counts one frame of this answer as waiting until the guard drops (it was written).
    pub fn frame_waiting(self: &Arc<Self>) -> StreamFrame {
        if self.pending.fetch_add(1, Ordering::AcqRel) == 0 {
            self.progress_ms.store(self.now_ms(), Ordering::Relaxed);
        }
        StreamFrame(Arc::clone(self))
    }

    fn deadline(&self, timeout: Duration) -> Option<Instant> {
        (self.pending.load(Ordering::Acquire) > 0)
            .then(|| self.opened + Duration::from_millis(self.progress_ms.load(Ordering::Relaxed)) + timeout)
    }
}

/// One frame of an HTTP/2 answer not yet written; see `StreamClock::frame_waiting`.
pub struct StreamFrame(Arc<StreamClock>);

impl Drop for StreamFrame {
    fn drop(&mut self) {
        self.0.progress_ms.store(self.0.now_ms(), Ordering::Relaxed);
        self.0.pending.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One answer frame not yet written; see `Activity::output_waiting`.
pub struct OutputWaiting(Arc<Activity>);

impl Drop for OutputWaiting {
    fn drop(&mut self) {
        self.0.output_pending.fetch_sub(1, Ordering::AcqRel);
    }
}

/// In a request's extensions when it came over a real connection: asks that connection to close
/// lingering, because its answer leaves the request body unread.
#[derive(Clone, Debug)]
pub struct LingerOnClose(pub Arc<Activity>);

impl LingerOnClose {
    pub fn request(&self) {
        self.0.linger.store(true, Ordering::Release);
    }
}

/// A TCP stream that records its activity and closes lingering when asked to.
pub struct ClientStream {
    stream: TcpStream,
    activity: Arc<Activity>,
    lingering: Option<Lingering>,
}

struct Lingering {
    write_closed: bool,
    until: Pin<Box<Sleep>>,
    silence: Pin<Box<Sleep>>,
}

impl ClientStream {
    pub fn new(stream: TcpStream, activity: Arc<Activity>) -> ClientStream {
        ClientStream { stream, activity, lingering: None }
    }

    /// Shuts the write side, then discards input until end of stream, an error, `LINGER_IDLE` of
    /// silence or `LINGER_TOTAL` in all.
    fn poll_linger(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let now = tokio::time::Instant::now();
        let lingering = self.lingering.get_or_insert_with(|| Lingering {
            write_closed: false,
            until: Box::pin(tokio::time::sleep_until(now + LINGER_TOTAL)),
            silence: Box::pin(tokio::time::sleep_until(now + LINGER_IDLE)),
        });
        if !lingering.write_closed {
            ready!(Pin::new(&mut self.stream).poll_shutdown(cx))?;
            lingering.write_closed = true;
        }
        let mut scratch = [0u8; DISCARD_CHUNK];
        loop {
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.stream).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => {
                    lingering.silence.as_mut().reset(tokio::time::Instant::now() + LINGER_IDLE);
                }
                // The client reset or the socket failed: nothing left to be polite to.
                Poll::Ready(Err(_)) => return Poll::Ready(Ok(())),
                Poll::Pending => {
                    let out_of_time = lingering.until.as_mut().poll(cx).is_ready();
                    let silent = lingering.silence.as_mut().poll(cx).is_ready();
                    return if out_of_time || silent { Poll::Ready(Ok(())) } else { Poll::Pending };
                }
            }
        }
    }
}

impl AsyncRead for ClientStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.activity.linger.load(Ordering::Acquire) {
            return self.poll_linger(cx);
        }
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
