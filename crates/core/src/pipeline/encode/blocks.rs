//! The writer answers are formatted through: bytes gather into blocks before they reach the
//! underlying writer (a budgeted buffer checks the budget on every write, a file or stdout makes a
//! system call), as with `BufWriter`, and a caller can also format straight into the block's free
//! room, which is how pairs avoid a writer call per token.

use std::io::{self, Write};

/// The size of a block: one write to the underlying writer per this many bytes.
const OUTPUT_BLOCK_BYTES: usize = 8 * 1024;

thread_local! {
    /// The block of the last answer this thread finished: a small answer would otherwise spend
    /// more on allocating and zeroing its 8 KiB than on its bytes.
    static SPARE_BLOCK: std::cell::Cell<Option<Box<[u8]>>> = const { std::cell::Cell::new(None) };
}

pub struct OutputBlocks<W: Write> {
    inner: W,
    block: Box<[u8]>,
    len: usize,
}

impl<W: Write> OutputBlocks<W> {
    pub fn new(inner: W) -> Self {
        let block = SPARE_BLOCK.take().unwrap_or_else(|| vec![0; OUTPUT_BLOCK_BYTES].into_boxed_slice());
        OutputBlocks { inner, block, len: 0 }
    }

    /// Calls `format` with at least `room` free bytes of the block (`room` ≤ `OUTPUT_BLOCK_BYTES`);
    /// `format` returns how many of them it wrote.
    #[inline]
    pub fn format_into(&mut self, room: usize, format: impl FnOnce(&mut [u8]) -> usize) -> io::Result<()> {
        if self.block.len() - self.len < room {
            self.write_block()?;
        }
        let free = &mut self.block[self.len..];
        let written = format(free);
        self.len += written.min(free.len());
        Ok(())
    }

    /// Writes what the block holds, and returns the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.write_block()?;
        SPARE_BLOCK.set(Some(std::mem::take(&mut self.block)));
        Ok(self.inner)
    }

    fn write_block(&mut self) -> io::Result<()> {
        let len = std::mem::take(&mut self.len);
        self.inner.write_all(&self.block[..len])
    }
}

impl<W: Write> Write for OutputBlocks<W> {
    #[inline]
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.write_all(data).map(|()| data.len())
    }

    /// Whole, without `Write::write_all`'s loop: `write` takes every byte unless `inner` fails.
    #[inline]
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        if let Some(free) = self.block.get_mut(self.len..self.len + data.len()) {
            free.copy_from_slice(data);
            self.len += data.len();
            return Ok(());
        }
        self.write_block()?;
        if data.len() >= self.block.len() {
            return self.inner.write_all(data);
        }
        self.block[..data.len()].copy_from_slice(data);
        self.len = data.len();
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_block()?;
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_arrive_in_order_whatever_the_write_sizes() {
        let mut expected = Vec::new();
        let mut blocks = OutputBlocks::new(Vec::new());
        for size in [0, 1, 7, OUTPUT_BLOCK_BYTES - 3, 5, OUTPUT_BLOCK_BYTES, 2 * OUTPUT_BLOCK_BYTES + 1, 9] {
            let data: Vec<u8> = (0..size).map(|k| (k * 31 + size) as u8).collect();
            blocks.write_all(&data).unwrap();
            expected.extend_from_slice(&data);
            blocks
                .format_into(100, |free| {
                    free[..3].copy_from_slice(b"abc");
                    3
                })
                .unwrap();
            expected.extend_from_slice(b"abc");
        }
        assert_eq!(blocks.finish().unwrap(), expected);
    }

    #[test]
    fn room_asked_for_is_always_free() {
        let mut blocks = OutputBlocks::new(Vec::new());
        for k in 0..1000 {
            blocks
                .format_into(128, |free| {
                    assert!(free.len() >= 128);
                    k % 129
                })
                .unwrap();
        }
        let written: usize = (0..1000).map(|k| k % 129).sum();
        assert_eq!(blocks.finish().unwrap().len(), written);
    }
}
