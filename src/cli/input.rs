//! What `prefeval eval` reads: a file or stdin, fingerprinted byte by byte as it is read (the
//! summary's `input`, of the bytes as they are, compressed or not), decoded when its first bytes
//! show gzip or zstd (`super::decompressing`), and whether it is a JSON batch file or NDJSON.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde::Deserializer as _;
use serde::de::{IgnoredAny, MapAccess, Visitor};

use super::decompressing::Decompressing;
use super::output::FileId;
use crate::pipeline::decompress::ContentCoding;
use crate::pipeline::fingerprint::{Fingerprint, FingerprintHasher};
use crate::pipeline::ndjson::strip_bom;

/// Bytes read from the input at a time.
pub const READ_BYTES: usize = 1 << 20;

/// A reader that hashes every byte it hands on, into a hasher it shares with `Input` (a compressed
/// input is read on the decompressing thread).
struct Fingerprinted<R> {
    inner: R,
    hasher: Arc<Mutex<FingerprintHasher>>,
}

impl<R: Read> Read for Fingerprinted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.hasher.lock().unwrap_or_else(PoisonError::into_inner).update(&buf[..read]);
        Ok(read)
    }
}

/// A reader that counts the bytes it hands on: the decoded size of a compressed input.
struct Counted<R> {
    inner: R,
    bytes: Arc<AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.bytes.fetch_add(read as u64, Ordering::Relaxed);
        Ok(read)
    }
}

/// The input, buffered, with its size when known (a file) and its identity when it is a regular
/// file (a device such as `/dev/null` may be both input and output).
pub struct Input {
    /// The input's bytes, decoded when it is compressed.
    pub reader: BufReader<Box<dyn Read + Send>>,
    /// The size of a plain file (a compressed one decodes to a size not known ahead).
    pub size: Option<u64>,
    pub file: Option<FileId>,
    received: Arc<Mutex<FingerprintHasher>>,
    decoded: Arc<AtomicU64>,
}

impl Input {
    /// `path`, or stdin for `-`.
    pub fn open(path: &Path) -> Result<Input, String> {
        let (inner, size, file): (Box<dyn Read + Send>, _, _) = if path.as_os_str() == "-" {
            // Stdin redirected from a file is that file: an output onto it is refused too.
            let file = std::fs::metadata("/dev/stdin").ok().filter(|meta| meta.is_file()).map(|meta| FileId::of(&meta));
            (Box::new(std::io::stdin()), None, file)
        } else {
            let file = File::open(path).map_err(|error| format!("cannot open {}: {error}", path.display()))?;
            let metadata = file.metadata().map_err(|error| format!("cannot read {}: {error}", path.display()))?;
            let id = metadata.is_file().then(|| FileId::of(&metadata));
            (Box::new(file), Some(metadata.len()), id)
        };
        let received = Arc::new(Mutex::new(FingerprintHasher::new()));
        let mut hashed = Fingerprinted { inner, hasher: Arc::clone(&received) };
        // The magic bytes tell a compressed input, whatever its name.
        let mut magic = Vec::with_capacity(4);
        (&mut hashed)
            .take(4)
            .read_to_end(&mut magic)
            .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        let coding = ContentCoding::sniff(&magic);
        let raw = std::io::Cursor::new(magic).chain(hashed);
        let (reader, size): (Box<dyn Read + Send>, _) = match coding {
            ContentCoding::Identity => (Box::new(raw), size),
            _ => {
                let name = if path.as_os_str() == "-" { "stdin".to_string() } else { path.display().to_string() };
                (Box::new(Decompressing::spawn(raw, coding, name)?), None)
            }
        };
        let decoded = Arc::new(AtomicU64::new(0));
        let reader: Box<dyn Read + Send> = Box::new(Counted { inner: reader, bytes: Arc::clone(&decoded) });
        Ok(Input { reader: BufReader::with_capacity(READ_BYTES, reader), size, file, received, decoded })
    }

    /// The fingerprint of every byte read so far, as read (compressed or not): of the whole input
    /// once it has been read to its end.
    pub fn fingerprint(&self) -> Fingerprint {
        self.received.lock().unwrap_or_else(PoisonError::into_inner).finish()
    }

    /// The bytes read so far once decoded: the input's own size when it is not compressed.
    pub fn decoded_bytes(&self) -> u64 {
        self.decoded.load(Ordering::Relaxed)
    }
}

/// The start of the input, and whether the input is a JSON batch rather than NDJSON.
pub struct Head {
    /// The bytes read to tell (a byte-order mark included): for a batch, the whole input.
    pub bytes: Vec<u8>,
    pub batch: bool,
}

/// Why the input cannot be read as either.
pub enum HeadError {
    Read(std::io::Error),
    /// A JSON batch longer than the body limit: said once, rather than as an error per line.
    BatchTooLarge {
        limit: usize,
    },
}

impl From<std::io::Error> for HeadError {
    fn from(error: std::io::Error) -> Self {
        HeadError::Read(error)
    }
}

/// Reads the start of `input` to tell a batch (`{"lists": [...]}`) from NDJSON. A batch's first
/// line is an object with `lists`, or, written over several lines, no complete JSON value; then the
/// input must end within `max_bytes` and parse as a batch. A batch longer than that (a JSON object
/// with `lists` that is still open at `max_bytes`) is `BatchTooLarge`. Anything else is NDJSON,
/// starting with the bytes read (a cut-short first line is then that line's error). A byte-order
/// mark at the start is skipped for telling.
pub fn read_head(input: &mut impl BufRead, max_bytes: usize) -> Result<Head, HeadError> {
    let mut head = Vec::new();
    input.take(max_bytes as u64 + 1).read_until(b'\n', &mut head)?;
    let first_line = shape(strip_bom(&head));
    let starts_object = strip_bom(&head).iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    match first_line.outcome {
        Ok(()) if first_line.lists => {
            // The rest of a one-line batch must be whitespace (the parser says so if not), and
            // the whole file is under the limit.
            let limit = max_bytes.saturating_sub(head.len()) as u64 + 1;
            input.take(limit).read_to_end(&mut head)?;
            if strip_bom(&head).len() > max_bytes {
                return Err(HeadError::BatchTooLarge { limit: max_bytes });
            }
            Ok(Head { bytes: head, batch: true })
        }
        Err(error) if error.is_eof() && starts_object => {
            let limit = max_bytes.saturating_sub(head.len()) as u64 + 1;
            input.take(limit).read_to_end(&mut head)?;
            let whole = shape(strip_bom(&head));
            if strip_bom(&head).len() > max_bytes {
                return match whole.outcome {
                    Err(error) if error.is_eof() && whole.lists => Err(HeadError::BatchTooLarge { limit: max_bytes }),
                    _ => Ok(Head { bytes: head, batch: false }),
                };
            }
            let batch = whole.outcome.is_ok() && whole.lists;
            Ok(Head { bytes: head, batch })
        }
        _ => Ok(Head { bytes: head, batch: false }),
    }
}

/// What a JSON object at the start of some bytes looks like: whether it has a top-level `lists`
/// key (seen even when the bytes end inside its value), and how parsing all of them ended.
struct Shape {
    lists: bool,
    outcome: Result<(), serde_json::Error>,
}

fn shape(bytes: &[u8]) -> Shape {
    struct TopLevelKeys<'a> {
        lists: &'a mut bool,
    }
    impl<'de> Visitor<'de> for TopLevelKeys<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<String>()? {
                *self.lists |= key == "lists";
                map.next_value::<IgnoredAny>()?;
            }
            Ok(())
        }
    }
    let mut lists = false;
    let mut parser = serde_json::Deserializer::from_slice(bytes);
    let outcome = parser.deserialize_map(TopLevelKeys { lists: &mut lists }).and_then(|()| parser.end());
    Shape { lists, outcome }
}
