//! Compressed input for `prefeval eval`: a gzip or zstd file (or stdin) decoded on a thread of its
//! own, pipelined with parsing, through the same bounded-step decoder the server uses
//! (`pipeline::decompress`), so the same bytes decode the same way through every door.

use std::io::Read;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use crate::pipeline::decompress::{ContentCoding, Decoder, FILE_WINDOW_LOG_MAX};

/// Decoded bytes handed to the parser at a time, about.
const BLOCK_BYTES: usize = 1 << 20;

/// Blocks decoded ahead of the parser: enough to keep both threads busy, and the memory bounded.
const BLOCKS_AHEAD: usize = 2;

enum Piece {
    Data(Vec<u8>),
    /// The compressed stream ended where it should: nothing follows.
    End,
    Failed(std::io::Error),
}

/// The decoded input, as the decoding thread hands it on.
pub struct Decompressing {
    pieces: Receiver<Piece>,
    current: Vec<u8>,
    position: usize,
    ended: bool,
}

impl Decompressing {
    /// Decodes `raw` (compressed with `coding`) on a new thread; `name` names the input in errors.
    pub fn spawn(
        raw: impl Read + Send + 'static,
        coding: ContentCoding,
        name: String,
    ) -> Result<Decompressing, String> {
        let decoder = Decoder::new(coding, FILE_WINDOW_LOG_MAX)
            .map_err(|error| error.message)?
            .ok_or_else(|| format!("{name} is not compressed"))?;
        let (sender, pieces) = sync_channel(BLOCKS_AHEAD);
        std::thread::Builder::new()
            .name("prefeval-decompress".to_string())
            .spawn(move || decode(raw, decoder, &name, &sender))
            .map_err(|error| format!("cannot start the decompressing thread: {error}"))?;
        Ok(Decompressing { pieces, current: Vec::new(), position: 0, ended: false })
    }
}

/// Reads `raw` to its end through `decoder`, sending blocks of decoded bytes, then `End`, or the
/// first error. Stops early when the reader is gone (the run ended or was interrupted).
fn decode(mut raw: impl Read, mut decoder: Decoder, name: &str, sender: &SyncSender<Piece>) {
    let invalid = |error: prefeval_core::error::Error| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{name} is {}", error.message))
    };
    let mut input = vec![0u8; BLOCK_BYTES];
    let mut block = Vec::with_capacity(BLOCK_BYTES);
    let outcome = loop {
        let read = match raw.read(&mut input) {
            Ok(0) => break decoder.finish(&mut block).map_err(invalid),
            Ok(read) => read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => break Err(error),
        };
        let mut rest = &input[..read];
        while !rest.is_empty() || decoder.holds_output() {
            match decoder.decode(rest, &mut block) {
                Ok(consumed) => rest = &rest[consumed..],
                Err(error) => return drop(sender.send(Piece::Failed(invalid(error)))),
            }
            if block.len() >= BLOCK_BYTES
                && sender.send(Piece::Data(std::mem::replace(&mut block, Vec::with_capacity(BLOCK_BYTES)))).is_err()
            {
                return;
            }
        }
    };
    let last = match outcome {
        Ok(()) => {
            if !block.is_empty() && sender.send(Piece::Data(block)).is_err() {
                return;
            }
            Piece::End
        }
        Err(error) => Piece::Failed(error),
    };
    let _ = sender.send(last);
}

impl Read for Decompressing {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.position == self.current.len() {
            if self.ended {
                return Ok(0);
            }
            match self.pieces.recv() {
                Ok(Piece::Data(data)) => (self.current, self.position) = (data, 0),
                Ok(Piece::End) => self.ended = true,
                Ok(Piece::Failed(error)) => return Err(error),
                // The thread stopped without a word: a bug, never a silent end of the input.
                Err(_) => return Err(std::io::Error::other("the decompressing thread stopped")),
            }
        }
        let count = buf.len().min(self.current.len() - self.position);
        buf[..count].copy_from_slice(&self.current[self.position..self.position + count]);
        self.position += count;
        Ok(count)
    }
}
