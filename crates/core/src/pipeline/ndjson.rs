//! NDJSON datasets, one list per line: cutting a byte stream into chunks of whole lines, and
//! evaluating one chunk into its output lines (a result or an error per line, in order) and its
//! totals. The stream endpoint and `prefeval eval` both run every chunk through `evaluate_chunk`,
//! so their answers are the same bytes for the same input.

use super::encode::{ListJson, OutputBlocks, answer_size_estimate, write_error_line, write_list_line};
use super::format::ListInput;
use super::options::Results;
use super::{Options, Parallel, evaluate, evaluation_bytes, validate};
use crate::error::{Error, ErrorCode};
use crate::limits::Limits;
use std::collections::HashSet;

use super::dataset::{ChunkFigures, GroupGate, too_many_groups};
use crate::math::{ListEvaluation, RankedList, Totals};
use crate::memory::{BudgetedBuffer, DECODED_BYTES_PER_OBJECT, MemoryBudget, OverBudget, Reservation, decoded_bound};

/// Input bytes per chunk without pairs: large enough that per-chunk costs vanish, small enough
/// that a stream keeps every worker busy and lets other requests in between its chunks.
pub const CHUNK_BYTES: usize = 256 * 1024;
/// Input bytes per chunk with pairs: a chunk's answer grows with the square of its lists' sizes.
pub const CHUNK_BYTES_WITH_PAIRS: usize = 16 * 1024;

/// The UTF-8 byte-order mark some editors and exporters put at the start of a text file. It is no
/// part of the first line's JSON, so it is skipped there (and only there).
pub const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// `bytes` without a byte-order mark at its start.
pub fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes)
}

/// Whole lines of input, numbered from `first_line` (1-based); always ends with a newline.
#[derive(Debug, Default)]
pub struct Chunk {
    pub first_line: u64,
    pub bytes: Vec<u8>,
    /// Lines not kept (longer than the line limit, or given up for the memory budget): empty
    /// lines in `bytes` so numbering holds, each with the error it answers.
    pub skipped: Vec<(u64, Error)>,
}

impl Chunk {
    pub fn lines(&self) -> u64 {
        self.bytes.iter().filter(|&&b| b == b'\n').count() as u64
    }

    /// Each line of this chunk as a chunk of its own, numbered as here.
    pub fn single_lines(&self) -> Vec<Chunk> {
        let body = self.bytes.strip_suffix(b"\n").unwrap_or(&self.bytes);
        body.split(|&b| b == b'\n')
            .enumerate()
            .map(|(offset, raw)| {
                let first_line = self.first_line + offset as u64;
                let mut bytes = Vec::with_capacity(raw.len() + 1);
                bytes.extend_from_slice(raw);
                bytes.push(b'\n');
                let skipped = self.skipped.iter().filter(|(line, _)| *line == first_line).cloned().collect();
                Chunk { first_line, bytes, skipped }
            })
            .collect()
    }
}

/// Cuts bytes, as they arrive, into chunks of whole lines. A line longer than `max_line` is not
/// buffered: it is skipped to its end and reported (`Chunk::skipped`), as is a line its reader
/// gives up (`abandon_line`). A byte-order mark at the very start of the input is skipped, even
/// when it arrives split over several pushes.
pub struct ChunkBuilder {
    /// How many bytes of a leading byte-order mark the input began with so far; `None` once the
    /// start of the input is settled either way.
    bom_seen: Option<usize>,
    max_line: usize,
    target: usize,
    buf: Vec<u8>,
    first_line: u64,
    complete_lines: u64,
    /// Index in `buf` just past its last newline: where the incomplete line starts.
    line_start: usize,
    skipped: Vec<(u64, Error)>,
    skipping: bool,
    /// JSON objects in the line not yet complete, and whether it has escapes: what its decoded
    /// form needs is known as it arrives (`partial_need`).
    partial_objects: usize,
    partial_escapes: bool,
}

impl ChunkBuilder {
    pub fn new(target: usize, max_line: usize) -> ChunkBuilder {
        ChunkBuilder {
            bom_seen: Some(0),
            max_line,
            target: target.max(1),
            buf: Vec::new(),
            first_line: 1,
            complete_lines: 0,
            line_start: 0,
            skipped: Vec::new(),
            skipping: false,
            partial_objects: 0,
            partial_escapes: false,
        }
    }

    /// Bytes held for lines not yet handed out.
    pub fn buffered(&self) -> usize {
        self.buf.capacity()
    }

    /// Takes `data`; appends every chunk it completes to `out`.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<Chunk>) {
        let data = self.skip_bom(data, out);
        self.push_lines(data, out);
    }

    /// `data` past the part of a leading byte-order mark it holds. Bytes held back as the start of
    /// a mark that turns out to be something else are pushed as input after all.
    fn skip_bom<'d>(&mut self, data: &'d [u8], out: &mut Vec<Chunk>) -> &'d [u8] {
        let Some(seen) = self.bom_seen else { return data };
        let missing = &UTF8_BOM[seen..];
        let common = missing.len().min(data.len());
        if data[..common] == missing[..common] {
            self.bom_seen = (common < missing.len()).then_some(seen + common);
            return &data[common..];
        }
        self.bom_seen = None;
        self.push_lines(&UTF8_BOM[..seen], out);
        data
    }

    fn push_lines(&mut self, mut data: &[u8], out: &mut Vec<Chunk>) {
        while !data.is_empty() {
            let newline = data.iter().position(|&b| b == b'\n');
            if self.skipping {
                let Some(end) = newline else { return };
                data = &data[end + 1..];
                self.skipping = false;
                self.end_line();
                continue;
            }
            let piece = &data[..newline.map_or(data.len(), |end| end + 1)];
            data = &data[piece.len()..];
            let line_length = self.buf.len() - self.line_start + piece.len() - usize::from(newline.is_some());
            if line_length > self.max_line {
                self.skipped.push((self.first_line + self.complete_lines, line_too_long(self.max_line)));
                self.buf.truncate(self.line_start);
                self.partial_objects = 0;
                self.partial_escapes = false;
                if newline.is_some() {
                    self.end_line();
                } else {
                    self.skipping = true;
                }
                continue;
            }
            self.buf.extend_from_slice(piece);
            if newline.is_none() {
                self.partial_objects += piece.iter().filter(|&&b| b == b'{').count();
                self.partial_escapes |= piece.contains(&b'\\');
            } else {
                self.partial_objects = 0;
                self.partial_escapes = false;
                self.complete_lines += 1;
                self.line_start = self.buf.len();
                if self.line_start >= self.target {
                    out.push(self.cut());
                }
            }
        }
    }

    /// The bytes of the line not yet complete (empty while one is skipped).
    pub fn partial_line(&self) -> &[u8] {
        &self.buf[self.line_start..]
    }

    /// At least what the line not yet complete will need in memory: its bytes and the decoded
    /// form of what has arrived of it (as `memory::decoded_bound` counts).
    pub fn partial_need(&self) -> usize {
        let bytes = self.partial_line().len();
        let unescaped = if self.partial_escapes { bytes } else { 0 };
        bytes.saturating_add(self.partial_objects.saturating_mul(DECODED_BYTES_PER_OBJECT)).saturating_add(unescaped)
    }

    /// Gives up the line not yet complete: its bytes are freed, the rest of it is skipped, and it
    /// answers `error` in its place.
    pub fn abandon_line(&mut self, error: Error) {
        if self.skipping || self.buf.len() == self.line_start {
            return;
        }
        self.skipped.push((self.first_line + self.complete_lines, error));
        self.buf.truncate(self.line_start);
        self.buf.shrink_to(self.line_start.max(self.target));
        self.skipping = true;
        self.partial_objects = 0;
        self.partial_escapes = false;
    }

    /// The complete lines held so far, as a chunk of their own (the partial line stays): for a
    /// producer that pauses, so its results need not wait for a full chunk.
    pub fn flush(&mut self) -> Option<Chunk> {
        (self.line_start > 0).then(|| self.cut())
    }

    /// The whole lines held, once the input broke off: the line it broke off in is dropped.
    pub fn into_complete(mut self) -> Option<Chunk> {
        self.flush()
    }

    /// The last chunk, once the input has ended (a final line without a newline counts).
    pub fn finish(mut self) -> Option<Chunk> {
        // An input that is only the start of a byte-order mark: those bytes are its one line.
        if let Some(seen) = self.bom_seen.take() {
            let mut ignored = Vec::new();
            self.push_lines(&UTF8_BOM[..seen], &mut ignored);
        }
        if self.skipping {
            self.end_line();
        } else if self.buf.len() > self.line_start {
            self.buf.push(b'\n');
            self.complete_lines += 1;
            self.line_start = self.buf.len();
        }
        (self.line_start > 0).then(|| self.cut())
    }

    fn end_line(&mut self) {
        self.buf.push(b'\n');
        self.complete_lines += 1;
        self.line_start = self.buf.len();
    }

    fn cut(&mut self) -> Chunk {
        let rest = self.buf.split_off(self.line_start);
        let bytes = std::mem::replace(&mut self.buf, rest);
        let chunk = Chunk { first_line: self.first_line, bytes, skipped: std::mem::take(&mut self.skipped) };
        self.first_line += self.complete_lines;
        self.complete_lines = 0;
        self.line_start = 0;
        chunk
    }
}

/// What one chunk gave: its output lines, its totals, and its failures.
#[derive(Debug, Default)]
pub struct ChunkOutcome {
    pub output: Vec<u8>,
    pub totals: Totals,
    pub lines_failed: u64,
    pub first_failed_line: Option<u64>,
    /// Each evaluated list's loss, in order (for metrics).
    pub list_losses: Vec<f64>,
    /// Each evaluated list's figures (without pairs or gradients), in order: a stream's summary
    /// adds them one by one, so it is the same to the last bit however its lines were chunked.
    pub evaluations: Vec<ListEvaluation>,
    /// What the run's figures beyond its totals take from the chunk (groups, calibration,
    /// disagreements, length), for `dataset::Dataset::add_chunk`.
    pub figures: ChunkFigures,
}

/// Evaluates every line of `chunk`: one output line per non-blank input line, in order. Memory for
/// the decoded lines, their evaluation and the output is reserved first, in one reservation that
/// starts from `held` (the bytes a caller reserved for this attempt, so nobody takes them in
/// between; else an empty reservation of the budget), so that "can never fit" is decided against
/// the whole need. The chunk's own bytes are the caller's to reserve. When the budget is taken by
/// others for now, nothing is kept (`Exhausted`: try again once `needed` bytes are free). A
/// one-line chunk that can never fit answers its error line; a longer one is refused
/// (`NeverFits`) for the caller to evaluate line by line (`Chunk::single_lines`), each line its
/// own answer. The answer comes with the reservation of its bytes. With a `gate` (a run near its
/// limit of groups), a line whose group the gate does not admit answers `too_many_groups`.
pub fn evaluate_chunk(
    chunk: &Chunk,
    options: &Options,
    limits: &Limits,
    gate: Option<&GroupGate>,
    parallel: &impl Parallel,
    held: Reservation,
) -> Result<(ChunkOutcome, Reservation), OverBudget> {
    let budget = held.budget();
    match evaluate_lines(chunk, options, limits, gate, parallel, held) {
        Err(OverBudget::NeverFits { limit, .. }) if chunk.lines() <= 1 => Ok(never_fits(chunk, limit, &budget)),
        evaluated => evaluated,
    }
}

/// The answer of a chunk given up as a whole (the memory budget stayed taken): `error` for each
/// of its lines that is not blank, in order.
pub fn refuse_chunk(chunk: &Chunk, error: &Error) -> ChunkOutcome {
    let mut outcome = ChunkOutcome::default();
    for line in chunk.single_lines() {
        let skipped = line.skipped.first().map(|(_, error)| error);
        let raw = line.bytes.strip_suffix(b"\n").unwrap_or(&line.bytes);
        if skipped.is_none() && raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        // Writing into a Vec cannot fail.
        let _ = write_error_line(&mut outcome.output, line.first_line, skipped.unwrap_or(error));
        outcome.lines_failed += 1;
        outcome.first_failed_line.get_or_insert(line.first_line);
    }
    outcome
}

/// The answer to a one-line chunk whose line needs more than the whole budget: its error line.
pub(super) fn never_fits(chunk: &Chunk, limit: usize, budget: &MemoryBudget) -> (ChunkOutcome, Reservation) {
    let mut output = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = write_error_line(&mut output, chunk.first_line, &Error::line_never_fits_budget(limit));
    // A few hundred bytes: held unreserved rather than refused, so the stream always goes on.
    let outcome =
        ChunkOutcome { output, lines_failed: 1, first_failed_line: Some(chunk.first_line), ..ChunkOutcome::default() };
    (outcome, budget.empty())
}

fn evaluate_lines(
    chunk: &Chunk,
    options: &Options,
    limits: &Limits,
    gate: Option<&GroupGate>,
    parallel: &impl Parallel,
    mut work: Reservation,
) -> Result<(ChunkOutcome, Reservation), OverBudget> {
    let decoded = decoded_bound(&chunk.bytes);
    // The chunk's bytes are the caller's to hold, but they count in what it can never fit: the
    // same sum a stream weighs a line by as it arrives (`ChunkBuilder::partial_need`).
    let limit = work.budget().limit();
    let needed = chunk.bytes.len().saturating_add(decoded);
    if needed > limit {
        return Err(OverBudget::NeverFits { needed, limit });
    }
    work.at_least(decoded)?;
    let mut inputs: Vec<ListInput<'_>> = Vec::new();
    let mut ranked: Vec<RankedList> = Vec::new();
    // Per line: its number, and the index of its list in `ranked` or its error.
    let mut slots: Vec<(u64, Result<usize, Error>)> = Vec::new();
    let mut skipped = chunk.skipped.iter().peekable();
    let mut gate_added = HashSet::new();
    let body = chunk.bytes.strip_suffix(b"\n").unwrap_or(&chunk.bytes);
    for (offset, raw) in body.split(|&b| b == b'\n').enumerate() {
        let line = chunk.first_line + offset as u64;
        if let Some((_, error)) = skipped.next_if(|(skipped, _)| *skipped == line) {
            slots.push((line, Err(error.clone())));
            continue;
        }
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match validate::line(raw, options, limits) {
            Ok((input, _)) if gate.is_some_and(|gate| !admitted(gate, &input, &mut gate_added)) => {
                slots.push((line, Err(too_many_groups(options.naming.data_name("group")))));
            }
            Ok((input, list)) => {
                slots.push((line, Ok(ranked.len())));
                inputs.push(input);
                ranked.push(list);
            }
            Err(error) => slots.push((line, Err(error))),
        }
    }
    // The evaluation and the answer at once, before any of it is computed: a refusal then costs
    // only the decoding, and the chunk never holds part of its need while another takes the rest.
    let answer_bytes = answer_size_estimate(&ranked, options);
    work.at_least(decoded.saturating_add(evaluation_bytes(&ranked, &options.math)).saturating_add(answer_bytes))?;
    let evaluations = evaluate(&ranked, &options.math, parallel);
    let pair_ids = options.include_pair_ids;

    let mut outcome = ChunkOutcome::default();
    // The answer grows in the same reservation as the work, so a refusal weighs the whole need.
    let mut out = BudgetedBuffer::within(answer_bytes, &mut work);
    // Lines are formatted in blocks: one write to the budgeted buffer per block, not per token.
    let mut blocks = OutputBlocks::new(&mut out);
    let mut written = Ok(());
    for (line, slot) in &slots {
        written = match slot.as_ref().map(|&index| (index, &evaluations[index])) {
            Ok((index, Ok(evaluation))) => {
                outcome.totals.add(evaluation);
                outcome.list_losses.push(evaluation.loss);
                outcome.evaluations.push(ListEvaluation { pairs: None, gradients: None, ..evaluation.clone() });
                match options.results {
                    Results::All => {
                        let input = &inputs[index];
                        write_list_line(&mut blocks, &ListJson { line: Some(*line), input, evaluation, pair_ids })
                    }
                    Results::Errors => Ok(()),
                }
            }
            failed => {
                let failures = (&mut outcome.lines_failed, &mut outcome.first_failed_line);
                write_failed_line(&mut blocks, *line, failed.err(), failures)
            }
        };
        if written.is_err() {
            break;
        }
    }
    let written = written.and_then(|()| blocks.finish().map(drop));
    outcome.output = written_answer(written, out)?;
    outcome.figures = ChunkFigures::of(&slots, &inputs, &ranked, &evaluations, options);
    drop((evaluations, ranked, slots));
    drop(inputs);
    // From here only the answer's own bytes are held.
    work.shrink_to(outcome.output.capacity());
    Ok((outcome, work))
}

/// Whether `gate` admits the list's group (a list without one always is).
fn admitted(gate: &GroupGate, input: &ListInput<'_>, added: &mut HashSet<String>) -> bool {
    input.group.as_ref().is_none_or(|group| gate.admits(&group.0, added))
}

fn line_too_long(max_line: usize) -> Error {
    Error::new(
        ErrorCode::PayloadTooLarge,
        format!("this line is longer than the limit of {max_line} bytes (PREFEVAL_MAX_BODY_BYTES / --max-body-bytes)"),
    )
}

pub fn loss_overflow() -> Error {
    Error::new(
        ErrorCode::NonFiniteResult,
        "the loss of this list overflows a 64-bit float; rescale the rewards or lower beta",
    )
}

/// Writes the error line of a line that failed, with its own error or, when it has none, the
/// overflow of its loss, and counts it in `failures` (lines failed, and the first of them).
pub(super) fn write_failed_line(
    out: &mut impl std::io::Write,
    line: u64,
    error: Option<&Error>,
    failures: (&mut u64, &mut Option<u64>),
) -> std::io::Result<()> {
    *failures.0 += 1;
    failures.1.get_or_insert(line);
    match error {
        Some(error) => write_error_line(out, line, error),
        None => write_error_line(out, line, &loss_overflow()),
    }
}

/// A chunk's answer once its lines are `written` into the budgeted `out`: its bytes, or the
/// budget's refusal when the answer outgrew its reservation.
pub(super) fn written_answer(written: std::io::Result<()>, out: BudgetedBuffer<'_>) -> Result<Vec<u8>, OverBudget> {
    match written {
        Ok(()) => Ok(out.into_bytes()),
        Err(_) => Err(out.refusal().unwrap_or(OverBudget::Exhausted { needed: 0 })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes of every chunk `pieces` give, pushed one after the other, then finished.
    fn chunked(pieces: &[&[u8]]) -> Vec<u8> {
        let mut builder = ChunkBuilder::new(1 << 20, 1 << 20);
        let mut chunks = Vec::new();
        for piece in pieces {
            builder.push(piece, &mut chunks);
        }
        chunks.extend(builder.finish());
        chunks.iter().flat_map(|chunk| chunk.bytes.iter().copied()).collect()
    }

    #[test]
    fn a_leading_byte_order_mark_is_skipped_however_the_input_is_split() {
        let whole: &[u8] = b"\xEF\xBB\xBF{\"a\":1}\n{\"b\":2}\n";
        for cut in 0..=whole.len() {
            for second in cut..=whole.len() {
                let pieces = [&whole[..cut], &whole[cut..second], &whole[second..]];
                assert_eq!(chunked(&pieces), b"{\"a\":1}\n{\"b\":2}\n", "cut at {cut} and {second}");
            }
        }
    }

    #[test]
    fn only_the_first_bytes_ever_pushed_can_be_a_byte_order_mark() {
        assert_eq!(chunked(&[b"{}\n", b"\xEF\xBB\xBF{}\n"]), b"{}\n\xEF\xBB\xBF{}\n");
        assert_eq!(chunked(&[b"\xEF\xBB\xBF\xEF\xBB\xBF{}"]), b"\xEF\xBB\xBF{}\n", "one mark is skipped");
    }

    #[test]
    fn the_start_of_a_mark_that_is_not_one_stays_input() {
        assert_eq!(chunked(&[b"\xEF", b"\xBBx\n"]), b"\xEF\xBBx\n");
        assert_eq!(chunked(&[b"\xEF\xBB"]), b"\xEF\xBB\n", "an input that ends inside the mark");
        assert_eq!(chunked(&[b"\xEF", b"\n"]), b"\xEF\n");
        assert_eq!(chunked(&[b"", b"\xEF\xBB\xBF"]), b"", "a mark alone is an empty input");
    }
}
