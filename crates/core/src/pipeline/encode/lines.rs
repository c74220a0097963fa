//! The lines of a stream or a CLI run, one JSON object and a newline each: a list result with its
//! `line` and the error line of a line that failed.
//! (The summary line that ends a run is `pipeline::summary`'s.)
//!
//! It must not write a list's fields itself (`list.rs` does), nor decide which line fails or
//! when a stream stops.

use std::io::{self, Write};

use serde::Serialize;

use super::OutputBlocks;
use super::list::{ListJson, write_list};
use crate::error::ApiError;

/// A result line of a stream: `lists[i]` of a batch answer plus `"line"`.
pub fn write_list_line<W: Write>(out: &mut OutputBlocks<W>, list: &ListJson<'_>) -> io::Result<()> {
    write_list(out, list)?;
    out.write_all(b"\n")
}

/// The error line of a stream: `{"line": k, "error": {"code", "message", "path"?}}`.
pub fn write_error_line(out: &mut impl std::io::Write, line: u64, error: &ApiError) -> std::io::Result<()> {
    #[derive(Serialize)]
    struct ErrorLine<'e> {
        line: u64,
        error: &'e ApiError,
    }
    serde_json::to_writer(&mut *out, &ErrorLine { line, error })?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::super::reference::{ListReference, for_each_random_batch};
    use super::*;

    #[test]
    fn list_lines_are_the_bytes_serde_json_writes_for_them() {
        for_each_random_batch(|batch, evaluations| {
            let options = &batch.options;
            for (k, (input, evaluation)) in batch.inputs.iter().zip(evaluations).enumerate() {
                let line = Some(k as u64 + 1);
                let mut blocks = OutputBlocks::new(Vec::new());
                let list = ListJson { line, input, evaluation, pair_ids: options.include_pair_ids };
                write_list_line(&mut blocks, &list).unwrap();
                let mine = blocks.finish().unwrap();
                let mut expected =
                    serde_json::to_vec(&ListReference::new(line, input, evaluation, options.include_pair_ids)).unwrap();
                expected.push(b'\n');
                assert_eq!(String::from_utf8(mine).unwrap(), String::from_utf8(expected).unwrap());
            }
        });
    }
}
