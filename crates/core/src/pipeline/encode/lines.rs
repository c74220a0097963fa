//! The lines of a stream or a CLI run, one JSON object and a newline each: a list result with its
//! `line`, the error line of a line that failed, and the error that stops a stream as a whole.
//! (The summary line that ends a run is `pipeline::summary`'s.)
//!
//! It must not write a list's fields itself (`list.rs` does), nor decide which line fails or
//! when a stream stops.

use std::io::{self, Write};

use serde::Serialize;

use super::OutputBlocks;
use super::list::{ListJson, write_list};
use crate::error::Error;

/// A result line of a stream: `lists[i]` of a batch answer plus `"line"`.
pub fn write_list_line<W: Write>(out: &mut OutputBlocks<W>, list: &ListJson<'_>) -> io::Result<()> {
    write_list(out, list)?;
    out.write_all(b"\n")
}

/// The error line of a stream or a CLI run: `{"line": k, "error": {"code", "message", "path"?}}`.
pub fn write_error_line(out: &mut impl Write, line: u64, error: &Error) -> io::Result<()> {
    write_error(out, Some(line), error)
}

/// The last line of a stream that stops as a whole, with no summary after it: `{"error": {...}}`,
/// an error line without `line`, as it is about no line in particular.
pub fn write_stream_error(out: &mut impl Write, error: &Error) -> io::Result<()> {
    write_error(out, None, error)
}

fn write_error(out: &mut impl Write, line: Option<u64>, error: &Error) -> io::Result<()> {
    #[derive(Serialize)]
    struct ErrorLine<'e> {
        #[serde(skip_serializing_if = "Option::is_none")]
        line: Option<u64>,
        error: &'e Error,
    }
    serde_json::to_writer(&mut *out, &ErrorLine { line, error })?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::super::reference::{ListReference, for_each_random_batch};
    use super::*;
    use crate::error::ErrorCode;

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

    #[test]
    fn error_lines_with_their_line_and_without() {
        let at = Error::at(ErrorCode::InvalidValue, "items[1].reward", "must be a finite number, not \"NaN\"");
        let mut out = Vec::new();
        write_error_line(&mut out, 7, &at).unwrap();
        let expected = concat!(
            r#"{"line":7,"error":{"code":"invalid_value","message":"must be a finite number, not \"NaN\"","#,
            r#""path":"items[1].reward"}}"#,
            "\n"
        );
        assert_eq!(String::from_utf8(out).unwrap(), expected);

        let mut out = Vec::new();
        write_stream_error(&mut out, &at).unwrap();
        let expected = concat!(
            r#"{"error":{"code":"invalid_value","message":"must be a finite number, not \"NaN\"","#,
            r#""path":"items[1].reward"}}"#,
            "\n"
        );
        assert_eq!(String::from_utf8(out).unwrap(), expected);

        // Without a path, and with line 0, which is a line number like any other here.
        let whole = Error::new(ErrorCode::PayloadTooLarge, "send a smaller batch");
        let mut out = Vec::new();
        write_stream_error(&mut out, &whole).unwrap();
        assert_eq!(out, b"{\"error\":{\"code\":\"payload_too_large\",\"message\":\"send a smaller batch\"}}\n");
        let mut out = Vec::new();
        write_error_line(&mut out, 0, &whole).unwrap();
        assert_eq!(
            out,
            b"{\"line\":0,\"error\":{\"code\":\"payload_too_large\",\"message\":\"send a smaller batch\"}}\n"
        );
    }
}
