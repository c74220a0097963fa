//! Compressed input: which content codings prefeval reads (gzip and zstd), how a `Content-Encoding`
//! header or the first bytes of a file name one, and a decoder fed compressed bytes as they arrive
//! that hands out the decoded bytes a bounded step at a time. Bounded steps are what keep a
//! decompression bomb harmless: a caller counts what comes out against its limits after each step
//! and stops, never holding more than a step beyond a plain body of the same limit.

use std::io::Write;

use flate2::write::MultiGzDecoder;
use zstd::stream::raw::Operation;

use crate::error::{Error, ErrorCode};

/// Largest decoded output one `Decoder::decode` call appends: a zstd step fills at most its
/// 64 KiB output buffer; a gzip step writes at most two of flate2's 32 KiB buffers and the few
/// bytes a flush with no new input can still produce (a partial match and the bits held).
pub const STEP_BYTES: usize = 96 * 1024;

/// The largest zstd window the server decodes, as a power of two: 8 MiB, what `zstd -19` uses.
/// A frame declares its window and the decoder allocates it whole, outside the memory budget; a
/// frame that asks more (`--long`, `--ultra`) is `malformed_encoding`, and says so.
pub const SERVER_WINDOW_LOG_MAX: u32 = 23;

/// The largest zstd window `prefeval eval` decodes, as `zstd -d` does by default: 128 MiB.
pub const FILE_WINDOW_LOG_MAX: u32 = 27;

/// The zstd decoder's output buffer.
const ZSTD_OUTPUT_BYTES: usize = 64 * 1024;

/// How a body's bytes are encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentCoding {
    Identity,
    Gzip,
    Zstd,
}

impl ContentCoding {
    /// The coding a request's `Content-Encoding` values name (every header line, each a
    /// comma-separated list, matched without regard to case). `identity` and no header are the
    /// bytes as they are; one `gzip` (or its alias `x-gzip`) or `zstd` is that coding; anything
    /// else, or two codings stacked, is `unsupported_encoding`.
    pub fn from_header_values<'a>(values: impl IntoIterator<Item = Option<&'a str>>) -> Result<ContentCoding, Error> {
        let mut codings = Vec::new();
        for value in values {
            let Some(value) = value else {
                return Err(unsupported("a Content-Encoding that is not text"));
            };
            for token in value.split(',').map(str::trim).filter(|token| !token.is_empty()) {
                match token.to_ascii_lowercase().as_str() {
                    "identity" => {}
                    "gzip" | "x-gzip" => codings.push(ContentCoding::Gzip),
                    "zstd" => codings.push(ContentCoding::Zstd),
                    _ => return Err(unsupported(&format!("Content-Encoding `{token}`"))),
                }
            }
        }
        match codings.as_slice() {
            [] => Ok(ContentCoding::Identity),
            [one] => Ok(*one),
            _ => Err(unsupported("stacked Content-Encodings")),
        }
    }

    /// The coding a file's first bytes show: gzip's magic `1f 8b`, zstd's `28 b5 2f fd`. Plain
    /// NDJSON or JSON starts with neither (both are text).
    pub fn sniff(head: &[u8]) -> ContentCoding {
        if head.starts_with(&[0x1f, 0x8b]) {
            ContentCoding::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            ContentCoding::Zstd
        } else {
            ContentCoding::Identity
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ContentCoding::Identity => "identity",
            ContentCoding::Gzip => "gzip",
            ContentCoding::Zstd => "zstd",
        }
    }
}

fn unsupported(what: &str) -> Error {
    Error::new(
        ErrorCode::UnsupportedEncoding,
        format!(
            "{what} is not supported; send the body as it is (identity), or with `Content-Encoding: gzip` or `zstd`"
        ),
    )
}

/// Input that is not the coding it claims to be, or that ends before its compressed stream does.
/// The message, `not valid gzip: <cause>`, reads after what the input is (`the body is …`, `data.gz
/// is …`).
pub fn malformed(coding: ContentCoding, cause: impl std::fmt::Display) -> Error {
    let name = coding.name();
    Error::new(ErrorCode::MalformedEncoding, format!("not valid {name}: {cause}"))
}

/// A gzip or zstd decoder fed compressed bytes piece by piece.
pub struct Decoder {
    kind: Kind,
    /// Whether any compressed byte came in: an empty body is no compressed stream.
    started: bool,
}

enum Kind {
    /// Every member of a multi-member file (what `cat a.gz b.gz` makes), as `gzip -d` reads it.
    Gzip(Box<MultiGzDecoder<Vec<u8>>>),
    Zstd {
        decoder: Box<zstd::stream::raw::Decoder<'static>>,
        output: Box<[u8]>,
        /// Whether the input so far ends on a frame boundary (zstd decodes concatenated frames).
        frame_complete: bool,
        /// Whether the last step filled `output`: the decoder may hold more.
        output_full: bool,
    },
}

impl Decoder {
    /// A decoder for `coding` that refuses zstd windows over 2^`window_log_max` bytes; `None` for
    /// identity, which needs none.
    pub fn new(coding: ContentCoding, window_log_max: u32) -> Result<Option<Decoder>, Error> {
        let kind = match coding {
            ContentCoding::Identity => return Ok(None),
            ContentCoding::Gzip => Kind::Gzip(Box::new(MultiGzDecoder::new(Vec::with_capacity(ZSTD_OUTPUT_BYTES)))),
            ContentCoding::Zstd => Kind::Zstd {
                decoder: Box::new(zstd_decoder(window_log_max).map_err(|error| {
                    Error::new(ErrorCode::InternalError, format!("cannot start a zstd decoder: {error}"))
                })?),
                output: vec![0; ZSTD_OUTPUT_BYTES].into_boxed_slice(),
                frame_complete: true,
                output_full: false,
            },
        };
        Ok(Some(Decoder { kind, started: false }))
    }

    /// The coding this decoder reads.
    pub fn coding(&self) -> ContentCoding {
        match self.kind {
            Kind::Gzip(_) => ContentCoding::Gzip,
            Kind::Zstd { .. } => ContentCoding::Zstd,
        }
    }

    /// Decodes a prefix of `input`, appending at most `STEP_BYTES` to `out`; returns how many
    /// input bytes it consumed. Call again with the rest: each call makes progress while input
    /// remains (or fails). With no input it hands on output the decoder still holds (see
    /// `holds_output`).
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, Error> {
        self.started |= !input.is_empty();
        let coding = self.coding();
        let consumed = match &mut self.kind {
            Kind::Gzip(decoder) => {
                let consumed = if input.is_empty() {
                    0
                } else {
                    decoder.write(input).map_err(|error| malformed(coding, error))?
                };
                // Hands on what the step decoded (flate2 keeps it until the next write otherwise),
                // so a producer that pauses still has its last lines answered.
                decoder.flush().map_err(|error| malformed(coding, error))?;
                out.extend_from_slice(decoder.get_ref());
                decoder.get_mut().clear();
                consumed
            }
            Kind::Zstd { decoder, output, frame_complete, output_full } => {
                let status = decoder.run_on_buffers(input, output).map_err(|error| malformed(coding, error))?;
                out.extend_from_slice(&output[..status.bytes_written]);
                // `remaining` is 0 once a frame is decoded and flushed whole. A call that moves
                // nothing says nothing: after a frame, zstd already hints at the next one's header.
                if status.bytes_read > 0 || status.bytes_written > 0 {
                    *frame_complete = status.remaining == 0;
                }
                *output_full = status.bytes_written == output.len();
                status.bytes_read
            }
        };
        Ok(consumed)
    }

    /// Whether the decoder may hold decoded output that a `decode` with no input hands on: zstd
    /// stops a step when its output buffer is full, with the rest of a block kept inside.
    pub fn holds_output(&self) -> bool {
        match self.kind {
            Kind::Gzip(_) => false,
            Kind::Zstd { output_full, .. } => output_full,
        }
    }

    /// The input has ended: appends what the decoder still holds (at most a zstd block, 128 KiB,
    /// or a gzip window), and fails when the compressed stream was cut short or there was none.
    /// Call once, after every input byte was decoded.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        let coding = self.coding();
        if !self.started {
            return Err(malformed(coding, "there is no compressed data"));
        }
        match &mut self.kind {
            Kind::Gzip(decoder) => {
                decoder.try_finish().map_err(|error| malformed(coding, error))?;
                out.extend_from_slice(decoder.get_ref());
                decoder.get_mut().clear();
            }
            Kind::Zstd { .. } => {
                while self.holds_output() {
                    self.decode(&[], out)?;
                }
                if let Kind::Zstd { frame_complete: false, .. } = self.kind {
                    return Err(malformed(coding, "the compressed stream ends in the middle of a frame"));
                }
            }
        }
        Ok(())
    }
}

fn zstd_decoder(window_log_max: u32) -> std::io::Result<zstd::stream::raw::Decoder<'static>> {
    let mut decoder = zstd::stream::raw::Decoder::new()?;
    decoder.set_parameter(zstd::stream::raw::DParameter::WindowLogMax(window_log_max))?;
    Ok(decoder)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn zstd(data: &[u8]) -> Vec<u8> {
        zstd::bulk::compress(data, 1).unwrap()
    }

    /// Feeds `input` in pieces of `piece` bytes; every step's output is checked against the bound.
    fn decode_all(coding: ContentCoding, input: &[u8], piece: usize) -> Result<Vec<u8>, Error> {
        let mut decoder = Decoder::new(coding, SERVER_WINDOW_LOG_MAX)?.unwrap();
        let mut decoded = Vec::new();
        for mut piece in input.chunks(piece) {
            while !piece.is_empty() {
                let mut out = Vec::new();
                let consumed = decoder.decode(piece, &mut out)?;
                assert!(out.len() <= STEP_BYTES, "a step gave {} bytes", out.len());
                assert!(consumed > 0 || !out.is_empty(), "no progress");
                piece = &piece[consumed..];
                decoded.extend_from_slice(&out);
            }
            while decoder.holds_output() {
                let mut out = Vec::new();
                decoder.decode(&[], &mut out)?;
                assert!(out.len() <= STEP_BYTES, "a step gave {} bytes", out.len());
                decoded.extend_from_slice(&out);
            }
        }
        let mut out = Vec::new();
        decoder.finish(&mut out)?;
        assert!(out.is_empty(), "every step was drained before");
        decoded.extend_from_slice(&out);
        Ok(decoded)
    }

    fn sample() -> Vec<u8> {
        (0..20_000)
            .flat_map(|i| format!("{{\"items\": [{{\"reward\": {i}}}, {{\"reward\": 0.5}}]}}\n").into_bytes())
            .collect()
    }

    #[test]
    fn round_trips_in_any_pieces() {
        let data = sample();
        for (coding, encoded) in [(ContentCoding::Gzip, gzip(&data)), (ContentCoding::Zstd, zstd(&data))] {
            for piece in [1, 7, 4096, encoded.len()] {
                assert_eq!(decode_all(coding, &encoded, piece).unwrap(), data, "{coding:?} in pieces of {piece}");
            }
        }
    }

    #[test]
    fn concatenated_members_and_frames_decode_whole() {
        let (a, b) = (b"first\n".as_slice(), b"second\n".as_slice());
        let gz = [gzip(a), gzip(b)].concat();
        assert_eq!(decode_all(ContentCoding::Gzip, &gz, 3).unwrap(), b"first\nsecond\n");
        let zst = [zstd(a), zstd(b)].concat();
        assert_eq!(decode_all(ContentCoding::Zstd, &zst, 3).unwrap(), b"first\nsecond\n");
    }

    #[test]
    fn a_bomb_comes_out_a_bounded_step_at_a_time() {
        let zeros = vec![0u8; 8 << 20];
        for (coding, encoded) in [(ContentCoding::Gzip, gzip(&zeros)), (ContentCoding::Zstd, zstd(&zeros))] {
            assert!(encoded.len() < zeros.len() / 100);
            assert_eq!(decode_all(coding, &encoded, encoded.len()).unwrap().len(), zeros.len());
        }
    }

    #[test]
    fn corrupt_truncated_and_empty_input_fail_as_malformed() {
        let data = sample();
        for (coding, encoded) in [(ContentCoding::Gzip, gzip(&data)), (ContentCoding::Zstd, zstd(&data))] {
            let truncated = &encoded[..encoded.len() / 2];
            let mut corrupt = encoded.clone();
            let middle = corrupt.len() / 2;
            corrupt[middle..middle + 16].fill(0xff);
            let with_garbage = [encoded.as_slice(), b"garbage"].concat();
            for (what, input) in [
                ("truncated", truncated),
                ("corrupt", &corrupt[..]),
                ("trailing garbage", &with_garbage[..]),
                ("empty", &[]),
            ] {
                let error = decode_all(coding, input, 1000).expect_err(what);
                assert_eq!(error.code, ErrorCode::MalformedEncoding, "{coding:?} {what}");
                assert!(error.message.contains(coding.name()), "{}", error.message);
            }
        }
        let error = decode_all(ContentCoding::Gzip, b"plain text, not gzip", 100).unwrap_err();
        assert_eq!(error.code, ErrorCode::MalformedEncoding);
    }

    #[test]
    fn a_zstd_window_over_the_limit_is_refused_naming_the_cause() {
        let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
        encoder.set_parameter(zstd::stream::raw::CParameter::WindowLog(SERVER_WINDOW_LOG_MAX + 2)).unwrap();
        encoder.include_contentsize(false).unwrap();
        encoder.write_all(&sample()).unwrap();
        let wide = encoder.finish().unwrap();
        let error = decode_all(ContentCoding::Zstd, &wide, 4096).unwrap_err();
        assert_eq!(error.code, ErrorCode::MalformedEncoding);
        assert!(error.message.contains("memory"), "{}", error.message);
        let mut decoder = Decoder::new(ContentCoding::Zstd, FILE_WINDOW_LOG_MAX).unwrap().unwrap();
        let mut out = Vec::new();
        let mut rest = &wide[..];
        while !rest.is_empty() || decoder.holds_output() {
            let consumed = decoder.decode(rest, &mut out).unwrap();
            rest = &rest[consumed..];
        }
        decoder.finish(&mut out).unwrap();
        assert_eq!(out, sample());
    }

    #[test]
    fn headers_name_one_coding_or_are_refused() {
        let of = |values: &[&str]| ContentCoding::from_header_values(values.iter().map(|v| Some(*v)));
        assert_eq!(of(&[]).unwrap(), ContentCoding::Identity);
        assert_eq!(of(&["identity"]).unwrap(), ContentCoding::Identity);
        assert_eq!(of(&["GZip"]).unwrap(), ContentCoding::Gzip);
        assert_eq!(of(&["x-gzip"]).unwrap(), ContentCoding::Gzip);
        assert_eq!(of(&[" ZSTD "]).unwrap(), ContentCoding::Zstd);
        assert_eq!(of(&["identity, gzip"]).unwrap(), ContentCoding::Gzip);
        for refused in [&["br"][..], &["deflate"], &["compress"], &["gzip, zstd"], &["gzip", "gzip"], &["bogus"]] {
            let error = of(refused).unwrap_err();
            assert_eq!(error.code, ErrorCode::UnsupportedEncoding, "{refused:?}");
        }
        assert!(of(&["br"]).unwrap_err().message.contains("`br`"));
        let not_text = ContentCoding::from_header_values([None]).unwrap_err();
        assert_eq!(not_text.code, ErrorCode::UnsupportedEncoding);
    }

    #[test]
    fn sniffs_magic_bytes() {
        assert_eq!(ContentCoding::sniff(&gzip(b"x")), ContentCoding::Gzip);
        assert_eq!(ContentCoding::sniff(&zstd(b"x")), ContentCoding::Zstd);
        assert_eq!(ContentCoding::sniff(b"{\"items\": []}"), ContentCoding::Identity);
        assert_eq!(ContentCoding::sniff(b"\x1f"), ContentCoding::Identity);
        assert_eq!(ContentCoding::sniff(b""), ContentCoding::Identity);
    }
}
