//! The fingerprint of an input: its length in bytes and its xxh3-64 hash (seed 0), computed as the
//! bytes go by. A summary carries the fingerprint of the input it summarises, so `prefeval merge`
//! can tell the same input given twice; in JSON it is `{"bytes": N, "xxh3": "<16 hex digits>"}`.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use xxhash_rust::xxh3::Xxh3;

/// What identifies an input's bytes: two inputs with the same fingerprint are taken to be the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Fingerprint {
    pub bytes: u64,
    #[serde(serialize_with = "write_hex", deserialize_with = "read_hex")]
    pub xxh3: u64,
}

/// Hashes an input piece by piece, in the order it is read.
#[derive(Clone, Default)]
pub struct FingerprintHasher {
    bytes: u64,
    hasher: Xxh3,
}

impl FingerprintHasher {
    pub fn new() -> FingerprintHasher {
        FingerprintHasher::default()
    }

    pub fn update(&mut self, data: &[u8]) {
        // A usize always fits a u64 on the platforms Rust supports.
        self.bytes = self.bytes.saturating_add(data.len() as u64);
        self.hasher.update(data);
    }

    pub fn finish(&self) -> Fingerprint {
        Fingerprint { bytes: self.bytes, xxh3: self.hasher.digest() }
    }
}

/// Lowercase, zero-padded to 16 digits: the same text for the same hash, whatever writes it.
fn write_hex<S: Serializer>(hash: &u64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format!("{hash:016x}"))
}

fn read_hex<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let text = String::deserialize(deserializer)?;
    let digits = text.len() == 16 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let hash = digits.then(|| u64::from_str_radix(&text, 16).ok()).flatten();
    hash.ok_or_else(|| D::Error::custom(format!("expected 16 lowercase hex digits, got {text:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_hash_as_the_whole_and_the_known_vector_holds() {
        let mut whole = FingerprintHasher::new();
        whole.update(b"hello world");
        let mut pieces = FingerprintHasher::new();
        for piece in [&b"hel"[..], b"", b"lo wor", b"ld"] {
            pieces.update(piece);
        }
        assert_eq!(whole.finish(), pieces.finish());
        assert_eq!(whole.finish().bytes, 11);
        // The reference implementation's XXH3_64bits of the empty input, seed 0.
        assert_eq!(FingerprintHasher::new().finish(), Fingerprint { bytes: 0, xxh3: 0x2d06_8005_38d3_94c2 });
    }

    #[test]
    fn json_has_the_hash_as_16_lowercase_hex_digits_and_reads_back() {
        let fingerprint = Fingerprint { bytes: 12, xxh3: 0xab };
        let json = serde_json::to_string(&fingerprint).unwrap_or_default();
        assert_eq!(json, r#"{"bytes":12,"xxh3":"00000000000000ab"}"#);
        assert_eq!(serde_json::from_str::<Fingerprint>(&json).ok(), Some(fingerprint));
        for bad in [r#"{"bytes":1,"xxh3":"AB"}"#, r#"{"bytes":1,"xxh3":"00000000000000AB"}"#, r#"{"bytes":1}"#] {
            assert!(serde_json::from_str::<Fingerprint>(bad).is_err(), "{bad}");
        }
    }
}
