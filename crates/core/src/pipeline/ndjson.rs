//! NDJSON datasets, one list per line: cutting a byte stream into chunks of whole lines, and
//! evaluating one chunk into its output lines (a result or an error per line, in order) and its
//! totals. The stream endpoint and `prefeval eval` both run every chunk through `evaluate_chunk`,
//! so their answers are the same bytes for the same input.

use super::encode::{ListJson, OutputBlocks, write_error_line, write_list_line};
use super::format::ListInput;
use super::{Options, Parallel, evaluate, evaluation_bytes, validate};
use crate::error::{Error, ErrorCode};
use crate::limits::Limits;
use crate::math::{ListEvaluation, RankedList, Totals};
use crate::memory::{BudgetedBuffer, MemoryBudget, OverBudget, Reservation, decoded_bound};

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
    /// Lines longer than the limit: kept as empty lines in `bytes` so numbering holds.
    pub too_long: Vec<u64>,
}

impl Chunk {
    pub fn lines(&self) -> u64 {
        self.bytes.iter().filter(|&&b| b == b'\n').count() as u64
    }
}

/// Cuts bytes, as they arrive, into chunks of whole lines. A line longer than `max_line` is not
/// buffered: it is skipped to its end and reported (`Chunk::too_long`). A byte-order mark at the
/// very start of the input is skipped, even when it arrives split over several pushes.
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
    too_long: Vec<u64>,
    skipping: bool,
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
            too_long: Vec::new(),
            skipping: false,
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
                self.too_long.push(self.first_line + self.complete_lines);
                self.buf.truncate(self.line_start);
                if newline.is_some() {
                    self.end_line();
                } else {
                    self.skipping = true;
                }
                continue;
            }
            self.buf.extend_from_slice(piece);
            if newline.is_some() {
                self.complete_lines += 1;
                self.line_start = self.buf.len();
                if self.line_start >= self.target {
                    out.push(self.cut());
                }
            }
        }
    }

    /// The complete lines held so far, as a chunk of their own (the partial line stays): for a
    /// producer that pauses, so its results need not wait for a full chunk.
    pub fn flush(&mut self) -> Option<Chunk> {
        (self.line_start > 0).then(|| self.cut())
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
        let chunk = Chunk { first_line: self.first_line, bytes, too_long: std::mem::take(&mut self.too_long) };
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
}

/// Evaluates every line of `chunk`: one output line per non-blank input line, in order. Memory for
/// the decoded lines, their evaluation and the output is reserved from `budget` first (the chunk's
/// own bytes are the caller's to reserve); when the budget refuses, nothing is kept and the caller
/// may try again later. The answer comes with the reservation of its bytes.
pub fn evaluate_chunk(
    chunk: &Chunk,
    options: &Options,
    limits: &Limits,
    parallel: &impl Parallel,
    budget: &MemoryBudget,
) -> Result<(ChunkOutcome, Reservation), OverBudget> {
    let mut work = budget.reserve(decoded_bound(&chunk.bytes))?;
    let mut inputs: Vec<ListInput<'_>> = Vec::new();
    let mut ranked: Vec<RankedList> = Vec::new();
    // Per line: its number, and the index of its list in `ranked` or its error.
    let mut slots: Vec<(u64, Result<usize, Error>)> = Vec::new();
    let mut too_long = chunk.too_long.iter().peekable();
    let body = chunk.bytes.strip_suffix(b"\n").unwrap_or(&chunk.bytes);
    for (offset, raw) in body.split(|&b| b == b'\n').enumerate() {
        let line = chunk.first_line + offset as u64;
        if too_long.peek() == Some(&&line) {
            too_long.next();
            slots.push((line, Err(line_too_long(limits))));
            continue;
        }
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match validate::line(raw, options, limits) {
            Ok((input, list)) => {
                slots.push((line, Ok(ranked.len())));
                inputs.push(input);
                ranked.push(list);
            }
            Err(error) => slots.push((line, Err(error))),
        }
    }
    work.grow(evaluation_bytes(&ranked, &options.math))?;
    let evaluations = evaluate(&ranked, &options.math, parallel);
    let pair_ids = options.include_pair_ids;

    let mut outcome = ChunkOutcome::default();
    let mut answer = budget.empty();
    let mut out = BudgetedBuffer::with_capacity(chunk.bytes.len() / 2, &mut answer)?;
    // Lines are formatted in blocks: one write to the budgeted buffer per block, not per token.
    let mut blocks = OutputBlocks::new(&mut out);
    let mut written = Ok(());
    for (line, slot) in &slots {
        written = match slot.as_ref().map(|&index| (index, &evaluations[index])) {
            Ok((index, Ok(evaluation))) => {
                outcome.totals.add(evaluation);
                outcome.list_losses.push(evaluation.loss);
                outcome.evaluations.push(ListEvaluation { pairs: None, gradients: None, ..evaluation.clone() });
                let input = &inputs[index];
                write_list_line(&mut blocks, &ListJson { line: Some(*line), input, evaluation, pair_ids })
            }
            failed => {
                outcome.lines_failed += 1;
                outcome.first_failed_line.get_or_insert(*line);
                let overflow;
                let error = match failed {
                    Err(error) => error,
                    _ => {
                        overflow = loss_overflow();
                        &overflow
                    }
                };
                write_error_line(&mut blocks, *line, error)
            }
        };
        if written.is_err() {
            break;
        }
    }
    let written = written.and_then(|()| blocks.finish().map(drop));
    if written.is_err() {
        return Err(out.refusal().unwrap_or(OverBudget::Exhausted));
    }
    outcome.output = out.into_bytes();
    Ok((outcome, answer))
}

fn line_too_long(limits: &Limits) -> Error {
    Error::new(
        ErrorCode::PayloadTooLarge,
        format!(
            "this line is longer than the limit of {} bytes (PREFEVAL_MAX_BODY_BYTES / --max-body-bytes)",
            limits.max_line_bytes
        ),
    )
}

pub fn loss_overflow() -> Error {
    Error::new(
        ErrorCode::NonFiniteResult,
        "the loss of this list overflows a 64-bit float; rescale the rewards or lower beta",
    )
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
