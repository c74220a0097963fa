//! The wire form of answers, written straight from the evaluation and the input (for the echoed
//! ids) without intermediate copies, split by what is written: the batch answer (`batch.rs`), one
//! list result and its pairs (`list.rs`, `pairs.rs`), and the lines of a stream or a CLI run
//! (`lines.rs`). The summary's figures and totals, which a batch answer and the summary line
//! share, are `pipeline::summary`'s.
//!
//! Everything is written through `OutputBlocks` (`blocks.rs`). Lists and their pairs, which are
//! most of an answer's bytes, are written by hand (literal keys, numbers through serde_json's own
//! formatters; pairs without ids straight into the block, `pairs.rs`) rather than through serde's
//! struct machinery; the bytes are those serde_json would write for the same values. The rest
//! goes through serde.
//!
//! This module owns the number and value writers the others share; it must not write answers
//! itself, and nothing here decodes, validates or evaluates.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter};

use crate::pipeline::wire::Id;

mod batch;
mod blocks;
mod lines;
mod list;
mod pairs;
#[cfg(test)]
mod reference;

pub use batch::{
    BatchExtras, CalibrationBinJson, CalibrationJson, answer_size_estimate, encoded_size_estimate, write_batch,
};
pub use blocks::OutputBlocks;
pub use lines::{write_error_line, write_list_line, write_stream_error};
pub use list::ListJson;

fn write_u64(w: &mut impl Write, value: u64) -> io::Result<()> {
    CompactFormatter.write_u64(w, value)
}

/// A float as serde_json writes it: its own formatter for a finite number (the shortest digits
/// that read back as the same f64), `null` otherwise (the pipeline refuses input that would
/// produce one, so answers never hold it).
fn write_f64(w: &mut impl Write, value: f64) -> io::Result<()> {
    if value.is_finite() { CompactFormatter.write_f64(w, value) } else { CompactFormatter.write_null(w) }
}

/// Any other value (strings, with their escapes; small nested objects) through serde_json.
/// An id as the client wrote it: an integer's digits bare, a string as JSON.
fn write_id(w: &mut impl Write, id: &Id<'_>) -> io::Result<()> {
    if id.integer { w.write_all(id.text.as_bytes()) } else { write_json(w, &*id.text) }
}

fn write_json(w: &mut impl Write, value: &(impl Serialize + ?Sized)) -> io::Result<()> {
    serde_json::to_writer(w, value).map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::reference::floats;
    use super::*;
    use prefeval_testkit::SplitMix64 as Random;

    #[test]
    fn numbers_are_the_bytes_serde_json_writes() {
        let mut random = Random::new(0x5EED);
        for value in floats(&mut random, 100_000) {
            let mut mine = Vec::new();
            write_f64(&mut mine, value).unwrap();
            let expected = serde_json::to_string(&value).unwrap();
            assert_eq!(String::from_utf8(mine).unwrap(), expected, "{value:e} ({:#018x})", value.to_bits());
        }
        let mut integers = vec![0, 1, 9, 10, 99, 100, u64::from(u32::MAX), u64::MAX];
        integers.extend((0..10_000).map(|_| random.next_u64() >> random.below(64)));
        for value in integers {
            let mut mine = Vec::new();
            write_u64(&mut mine, value).unwrap();
            assert_eq!(String::from_utf8(mine).unwrap(), serde_json::to_string(&value).unwrap());
        }
    }
}
