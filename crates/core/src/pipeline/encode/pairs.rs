//! A list's pairs without their ids, which are most of an answer's bytes when pairs are asked
//! for: each pair is formatted straight into the output block with fixed-size copies, rather than
//! through a writer call per key and number. The bytes are serde_json's: the same shortest float
//! formatter (zmij) and integer formatter (itoa) that serde_json calls.

use std::io::{self, Write};

use super::blocks::OutputBlocks;
use crate::math::ImpliedPair;

/// The longest pair: its keys and punctuation, two u32 of 10 digits, two floats of at most 24
/// bytes (zmij's buffer), and the comma before it.
const MAX_PAIR_BYTES: usize =
    1 + PREFERRED.len() + 10 + OTHER.len() + 10 + PROBABILITY.len() + 24 + LOG_PROBABILITY.len() + 24 + 1;

const PREFERRED: &[u8; 13] = b"{\"preferred\":";
const OTHER: &[u8; 9] = b",\"other\":";
const PROBABILITY: &[u8; 15] = b",\"probability\":";
const LOG_PROBABILITY: &[u8; 19] = b",\"log_probability\":";

/// The pairs' objects, comma-separated (the caller writes the brackets).
pub fn write_pairs<W: Write>(blocks: &mut OutputBlocks<W>, pairs: &[ImpliedPair]) -> io::Result<()> {
    for (index, pair) in pairs.iter().enumerate() {
        blocks.format_into(MAX_PAIR_BYTES, |free| format_pair(free, pair, index > 0))?;
    }
    Ok(())
}

/// Writes one pair at the start of `out` (at least `MAX_PAIR_BYTES` long) and returns its length.
#[inline]
fn format_pair(out: &mut [u8], pair: &ImpliedPair, comma: bool) -> usize {
    // The comma always goes to byte 0; without one, the object's `{` overwrites it.
    let mut at = usize::from(comma);
    out[0] = b',';
    put(out, &mut at, PREFERRED);
    put_short(out, &mut at, itoa::Buffer::new().format(pair.preferred).as_bytes());
    put(out, &mut at, OTHER);
    put_short(out, &mut at, itoa::Buffer::new().format(pair.other).as_bytes());
    put(out, &mut at, PROBABILITY);
    put_f64(out, &mut at, pair.probability);
    put(out, &mut at, LOG_PROBABILITY);
    put_f64(out, &mut at, pair.log_probability);
    out[at] = b'}';
    at + 1
}

#[inline(always)]
fn put<const N: usize>(out: &mut [u8], at: &mut usize, bytes: &[u8; N]) {
    out[*at..*at + N].copy_from_slice(bytes);
    *at += N;
}

/// As serde_json writes an f64: shortest round-trip digits when finite, else `null` (answers never
/// hold one: the pipeline refuses input that would produce it).
#[inline(always)]
fn put_f64(out: &mut [u8], at: &mut usize, value: f64) {
    if value.is_finite() {
        put_short(out, at, zmij::Buffer::new().format_finite(value).as_bytes());
    } else {
        put(out, at, b"null");
    }
}

/// Copies up to 32 bytes as two overlapping fixed-size copies, where a copy of variable length
/// would be a call to `memcpy`.
#[inline(always)]
fn put_short(out: &mut [u8], at: &mut usize, bytes: &[u8]) {
    let n = bytes.len();
    let to = &mut out[*at..*at + n];
    if n >= 16 {
        to[..16].copy_from_slice(&bytes[..16]);
        to[n - 16..].copy_from_slice(&bytes[n - 16..]);
    } else if n >= 8 {
        to[..8].copy_from_slice(&bytes[..8]);
        to[n - 8..].copy_from_slice(&bytes[n - 8..]);
    } else if n >= 4 {
        to[..4].copy_from_slice(&bytes[..4]);
        to[n - 4..].copy_from_slice(&bytes[n - 4..]);
    } else if n > 0 {
        // One to three bytes (most item indices): byte by byte, which a slice copy would not be.
        to[0] = bytes[0];
        if n > 1 {
            to[1] = bytes[1];
        }
        if n > 2 {
            to[2] = bytes[2];
        }
    }
    *at += n;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// serde_json's bytes for the same pair.
    fn reference(pair: &ImpliedPair) -> String {
        format!(
            "{{\"preferred\":{},\"other\":{},\"probability\":{},\"log_probability\":{}}}",
            pair.preferred,
            pair.other,
            serde_json::to_string(&pair.probability).unwrap(),
            serde_json::to_string(&pair.log_probability).unwrap()
        )
    }

    #[test]
    fn the_longest_pair_fits_its_room() {
        let pair = ImpliedPair {
            preferred: u32::MAX,
            other: u32::MAX,
            probability: -2.2250738585072014e-308,
            log_probability: -1.7976931348623157e308,
        };
        let mut out = [0u8; MAX_PAIR_BYTES];
        let len = format_pair(&mut out, &pair, true);
        assert_eq!(&out[..len], format!(",{}", reference(&pair)).as_bytes());
    }
}
