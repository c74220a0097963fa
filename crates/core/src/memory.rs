//! The memory budget: the most bytes that requests in flight may hold together (bodies being
//! read, bodies waiting for a worker, their decoded form, evaluation results and encoded answers).
//! A request reserves before it allocates; when the budget cannot cover it, it is refused at once
//! instead of growing the process towards an out-of-memory kill that would lose every request.
//!
//! Owns only the accounting and the cost model; the HTTP layer decides what a refusal looks like.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes charged per byte of body while it arrives, before it can be scanned: the body itself plus
/// the decoded form of items averaging 32 bytes of JSON (`{"id":"a","reward":0.25}` is 24). A
/// denser body is charged its exact bound once on a worker (`decoded_bound`).
pub const ADMISSION_BYTES_PER_BODY_BYTE: usize = 1 + DECODED_BYTES_PER_OBJECT / 32;

/// Upper bound of the memory one JSON object of a request (an item or a list) takes once decoded:
/// 48 bytes in its parent's array, up to 3× that while serde doubles the array (old and new buffers
/// live during the copy), and about 40 bytes more while the ranked list is built from it.
pub const DECODED_BYTES_PER_OBJECT: usize = 192;

/// Bytes an evaluated list holds besides its pairs (`ListEvaluation`, row partials).
pub const EVALUATED_LIST_BYTES: usize = 160;

/// Bytes one returned pair holds before encoding: an `ImpliedPair` (two u32, two f64) is 24
/// bytes, up to 3× that while a list's pairs are joined from its units.
pub const EVALUATED_PAIR_BYTES: usize = 72;

/// What is known about the decoded size of a JSON body from one pass over its bytes.
pub fn decoded_bound(body: &[u8]) -> usize {
    // Counted in byte-wide lanes (a run of 255 bytes cannot overflow one): vector instructions
    // take 32 or 64 bytes at a time, where a usize per byte took one.
    let objects: usize = body
        .chunks(u8::MAX as usize)
        .map(|run| usize::from(run.iter().fold(0u8, |count, &byte| count + u8::from(byte == b'{'))))
        .sum();
    let escapes = body.contains(&b'\\');
    // Strings with escapes are unescaped into owned copies, which the body's length bounds.
    let unescaped = if escapes { body.len() } else { 0 };
    objects.saturating_mul(DECODED_BYTES_PER_OBJECT).saturating_add(unescaped)
}

/// A shared byte budget. Cloning shares it.
#[derive(Clone, Debug)]
pub struct MemoryBudget {
    inner: Arc<Accounts>,
}

#[derive(Debug)]
struct Accounts {
    limit: usize,
    reserved: AtomicUsize,
}

/// Why a reservation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverBudget {
    /// More than the whole budget: this request can never be served at this setting.
    NeverFits { needed: usize, limit: usize },
    /// The budget is taken by other requests for now; retrying once `needed` bytes are free
    /// can succeed.
    Exhausted { needed: usize },
}

impl MemoryBudget {
    pub fn new(limit: usize) -> MemoryBudget {
        MemoryBudget { inner: Arc::new(Accounts { limit, reserved: AtomicUsize::new(0) }) }
    }

    pub fn limit(&self) -> usize {
        self.inner.limit
    }

    /// Bytes reserved by requests in flight.
    pub fn reserved(&self) -> usize {
        self.inner.reserved.load(Ordering::Relaxed)
    }

    /// Bytes not reserved now.
    pub fn available(&self) -> usize {
        self.inner.limit.saturating_sub(self.reserved())
    }

    /// An empty reservation, to grow as bytes are needed.
    pub fn empty(&self) -> Reservation {
        Reservation { budget: Arc::clone(&self.inner), bytes: 0 }
    }

    /// Reserves `bytes` or refuses at once; never waits.
    pub fn reserve(&self, bytes: usize) -> Result<Reservation, OverBudget> {
        let mut reservation = self.empty();
        reservation.grow(bytes)?;
        Ok(reservation)
    }
}

/// Bytes held against the budget; released when dropped, however the request ends.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<Accounts>,
    bytes: usize,
}

impl Reservation {
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The budget this reservation draws on.
    pub fn budget(&self) -> MemoryBudget {
        MemoryBudget { inner: Arc::clone(&self.budget) }
    }

    /// Adds `more` bytes, all or nothing.
    pub fn grow(&mut self, more: usize) -> Result<(), OverBudget> {
        let limit = self.budget.limit;
        let needed = self.bytes.saturating_add(more);
        if needed > limit {
            return Err(OverBudget::NeverFits { needed, limit });
        }
        self.budget
            .reserved
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |reserved| {
                reserved.checked_add(more).filter(|&total| total <= limit)
            })
            .map_err(|_| OverBudget::Exhausted { needed })?;
        self.bytes = needed;
        Ok(())
    }

    /// Gives back `fewer` bytes (at most what is held).
    pub fn shrink(&mut self, fewer: usize) {
        let fewer = fewer.min(self.bytes);
        self.budget.reserved.fetch_sub(fewer, Ordering::AcqRel);
        self.bytes -= fewer;
    }

    /// Holds exactly `bytes` from now on, over the limit if need be: for bytes already in memory
    /// that must be kept, which the caller bounds.
    pub fn hold(&mut self, bytes: usize) {
        if bytes > self.bytes {
            self.budget.reserved.fetch_add(bytes - self.bytes, Ordering::AcqRel);
            self.bytes = bytes;
        } else {
            self.shrink(self.bytes - bytes);
        }
    }

    /// Holds at least `bytes` from now on: grows by the shortfall (all or nothing), never shrinks.
    pub fn at_least(&mut self, bytes: usize) -> Result<(), OverBudget> {
        if bytes > self.bytes { self.grow(bytes - self.bytes) } else { Ok(()) }
    }

    /// Holds at most `bytes` from now on (never grows).
    pub fn shrink_to(&mut self, bytes: usize) {
        self.shrink(self.bytes.saturating_sub(bytes));
    }

    /// Moves `bytes` of this reservation (at most what is held) into a new one, without touching
    /// the budget: what one holder hands on to another.
    pub fn split(&mut self, bytes: usize) -> Reservation {
        let bytes = bytes.min(self.bytes);
        self.bytes -= bytes;
        Reservation { budget: Arc::clone(&self.budget), bytes }
    }

    /// Takes over what `other` holds, without touching the budget.
    pub fn absorb(&mut self, mut other: Reservation) {
        self.bytes += std::mem::take(&mut other.bytes);
    }

    /// Holds exactly `bytes` from now on: grows (all or nothing) or shrinks.
    pub fn resize(&mut self, bytes: usize) -> Result<(), OverBudget> {
        if bytes >= self.bytes {
            return self.grow(bytes - self.bytes);
        }
        self.shrink(self.bytes - bytes);
        Ok(())
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.reserved.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// An output buffer that reserves from the budget before it grows, old and new buffers both
/// while the bytes are copied. A refused growth fails the write; `refusal` says why.
pub struct BudgetedBuffer<'r> {
    bytes: Vec<u8>,
    reservation: &'r mut Reservation,
    refusal: Option<OverBudget>,
}

impl<'r> BudgetedBuffer<'r> {
    /// A buffer of `capacity` bytes, reserved first.
    pub fn with_capacity(capacity: usize, reservation: &'r mut Reservation) -> Result<Self, OverBudget> {
        reservation.grow(capacity)?;
        Ok(BudgetedBuffer { bytes: Vec::with_capacity(capacity), reservation, refusal: None })
    }

    /// A buffer of `capacity` bytes that `reservation` already holds.
    pub fn within(capacity: usize, reservation: &'r mut Reservation) -> Self {
        BudgetedBuffer { bytes: Vec::with_capacity(capacity.min(reservation.bytes())), reservation, refusal: None }
    }

    /// Why the last write failed, when the budget refused it.
    pub fn refusal(&self) -> Option<OverBudget> {
        self.refusal
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

impl std::io::Write for BudgetedBuffer<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let needed = self.bytes.len().saturating_add(data.len());
        let old = self.bytes.capacity();
        if needed > old {
            let new = needed.max(old.saturating_mul(2));
            if let Err(refusal) = self.reservation.grow(new) {
                self.refusal = Some(refusal);
                return Err(std::io::Error::other("the memory budget refused the output buffer"));
            }
            self.bytes.reserve_exact(new - self.bytes.len());
            self.reservation.shrink(old);
        }
        self.bytes.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The default budget: half the cgroup's memory limit when the process runs under one (a
/// container), so that the other half covers the runtime, connection buffers and allocator slack;
/// else 1 GiB.
pub fn default_limit() -> u64 {
    cgroup_memory_limit().map_or(DEFAULT_WITHOUT_CGROUP, |limit| limit / 2)
}

const DEFAULT_WITHOUT_CGROUP: u64 = 1 << 30;

/// The memory limit of this process's cgroup (v2 `memory.max`, else v1 `memory.limit_in_bytes`);
/// `None` when unlimited or unknown.
fn cgroup_memory_limit() -> Option<u64> {
    let v2 = cgroup_v2_dir().map(|dir| format!("/sys/fs/cgroup{dir}/memory.max"));
    let candidates = v2
        .into_iter()
        .chain(["/sys/fs/cgroup/memory.max".to_string(), "/sys/fs/cgroup/memory/memory.limit_in_bytes".to_string()]);
    candidates.filter_map(|path| std::fs::read_to_string(path).ok()).find_map(|text| parse_limit(&text))
}

/// This process's cgroup v2 path (`0::/kubepods/...` in /proc/self/cgroup).
fn cgroup_v2_dir() -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines().find_map(|line| line.strip_prefix("0::")).map(|dir| dir.trim_end_matches('/').to_string())
}

/// A limit file's value: `max`, and v1's "no limit" (a page-rounded i64::MAX), mean unlimited.
fn parse_limit(text: &str) -> Option<u64> {
    let value: u64 = text.trim().parse().ok()?;
    (value < 1 << 60).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_are_all_or_nothing_and_released_on_drop() {
        let budget = MemoryBudget::new(100);
        let mut first = budget.reserve(60).unwrap();
        assert_eq!(budget.reserve(50).unwrap_err(), OverBudget::Exhausted { needed: 50 });
        assert_eq!(budget.reserve(101).unwrap_err(), OverBudget::NeverFits { needed: 101, limit: 100 });
        first.shrink(20);
        let second = budget.reserve(50).unwrap();
        assert_eq!(budget.reserved(), 90);
        assert_eq!(first.grow(20), Err(OverBudget::Exhausted { needed: 60 }));
        assert_eq!(first.bytes(), 40, "a refused grow changes nothing");
        first.resize(10).unwrap();
        drop(second);
        assert_eq!(budget.reserved(), 10);
        let mut moved = first.split(4);
        assert_eq!((first.bytes(), moved.bytes(), budget.reserved()), (6, 4, 10));
        moved.absorb(budget.reserve(5).unwrap());
        assert_eq!((moved.bytes(), budget.available()), (9, 85));
        moved.shrink_to(2);
        drop(moved);
        drop(first);
        assert_eq!(budget.reserved(), 0);
    }

    #[test]
    fn decoded_bound_counts_objects_and_escapes() {
        assert_eq!(decoded_bound(br#"{"lists":[{"items":[{"reward":1},{"reward":0}]}]}"#), 4 * 192);
        let escaped = br#"{"model":"a\"b"}"#;
        assert_eq!(decoded_bound(escaped), 192 + escaped.len());
        // Runs longer than a byte counter holds.
        assert_eq!(decoded_bound(&[b'{'; 1000]), 1000 * 192);
    }

    #[test]
    fn budgeted_buffer_reserves_before_growing_and_stops_at_the_budget() {
        use std::io::Write;
        let budget = MemoryBudget::new(1000);
        let mut reservation = budget.empty();
        let mut out = BudgetedBuffer::with_capacity(100, &mut reservation).unwrap();
        out.write_all(&[7; 300]).unwrap();
        assert_eq!(out.write_all(&[7; 700]).unwrap_err().kind(), std::io::ErrorKind::Other);
        assert_eq!(out.refusal(), Some(OverBudget::NeverFits { needed: 1300, limit: 1000 }));
        let bytes = out.into_bytes();
        assert_eq!(bytes.len(), 300);
        assert_eq!(reservation.bytes(), bytes.capacity());
    }

    #[test]
    fn cgroup_limit_files_parse() {
        assert_eq!(parse_limit("max\n"), None);
        assert_eq!(parse_limit("1073741824\n"), Some(1 << 30));
        assert_eq!(parse_limit("9223372036854771712\n"), None);
    }
}
