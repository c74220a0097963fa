//! Where `prefeval eval` writes its results: stdout, or a file that appears whole or not at all.
//!
//! A file is written to a temporary beside it (`.<name>.prefeval-tmp-<pid>`, same directory, so
//! the rename stays on one filesystem) and renamed onto the target only when the run succeeded;
//! on any error or signal the temporary is removed and an existing target is left as it was. An
//! output that is the input file itself (the same device and inode, through a symlink or a hard
//! link too) is refused before anything is written: replacing it would lose the input.
//! A target that exists and is no regular file (`/dev/null`, a pipe) is written directly.

use std::fs::File;
use std::io::{BufWriter, StdoutLock, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::interrupt::Interrupt;

/// A file's identity: its device and inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileId {
    device: u64,
    inode: u64,
}

impl FileId {
    pub fn of(metadata: &std::fs::Metadata) -> FileId {
        FileId { device: metadata.dev(), inode: metadata.ino() }
    }
}

pub enum Output {
    Stdout(BufWriter<StdoutLock<'static>>),
    /// A device or pipe, written as it goes.
    Direct(BufWriter<File>),
    File(PendingFile),
}

/// The temporary a file target is written to until the run succeeds.
pub struct PendingFile {
    writer: BufWriter<File>,
    temp: PathBuf,
    target: PathBuf,
    interrupt: Interrupt,
    renamed: bool,
}

impl Output {
    /// The output for `path` (`None`: stdout). `inputs` are the identities of the input files; an
    /// output that is one of them is refused.
    pub fn open(path: Option<&Path>, inputs: &[FileId], interrupt: &Interrupt) -> Result<Output, String> {
        let Some(path) = path else {
            interrupt.writing_to_stdout();
            return Ok(Output::Stdout(BufWriter::new(std::io::stdout().lock())));
        };
        // Follows symlinks: the target is the file the path names in the end.
        let existing = std::fs::metadata(path).ok();
        if let Some(existing) = &existing {
            if inputs.contains(&FileId::of(existing)) {
                return Err(format!(
                    "the output {} is the input file: writing it would destroy the input; choose another output",
                    path.display()
                ));
            }
        }
        let cannot_create = |error: std::io::Error| format!("cannot create {}: {error}", path.display());
        match existing {
            Some(metadata) if metadata.is_dir() => Err(format!("cannot create {}: it is a directory", path.display())),
            Some(metadata) if !metadata.is_file() => {
                interrupt.writing_to(path);
                Ok(Output::Direct(BufWriter::new(File::create(path).map_err(cannot_create)?)))
            }
            Some(_) => {
                // Written beside the file the symlinks lead to, and renamed onto it, not onto a link.
                let target = std::fs::canonicalize(path).map_err(cannot_create)?;
                PendingFile::create(target, interrupt).map(Output::File).map_err(cannot_create)
            }
            None => PendingFile::create(path.to_path_buf(), interrupt).map(Output::File).map_err(cannot_create),
        }
    }

    /// Flushes everything, then puts a file in place; nothing is in place on an error.
    pub fn finish(self, interrupt: &Interrupt) -> Result<(), String> {
        let write_error = |error: std::io::Error| format!("cannot write the results: {error}");
        match self {
            Output::Stdout(mut out) => {
                out.flush().map_err(write_error)?;
                interrupt.finish(None, || Ok(())).map_err(write_error)
            }
            Output::Direct(mut out) => {
                out.flush().map_err(write_error)?;
                interrupt.finish(None, || Ok(())).map_err(write_error)
            }
            Output::File(pending) => pending.commit(),
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Output::Stdout(out) => out.write(buf),
            Output::Direct(out) => out.write(buf),
            Output::File(pending) => pending.writer.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Output::Stdout(out) => out.write_all(buf),
            Output::Direct(out) => out.write_all(buf),
            Output::File(pending) => pending.writer.write_all(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Output::Stdout(out) => out.flush(),
            Output::Direct(out) => out.flush(),
            Output::File(pending) => pending.writer.flush(),
        }
    }
}

impl PendingFile {
    fn create(target: PathBuf, interrupt: &Interrupt) -> std::io::Result<PendingFile> {
        let temp = temp_path(&target)?;
        let file = interrupt.create_temp(&temp, &target)?;
        Ok(PendingFile { writer: BufWriter::new(file), temp, target, interrupt: interrupt.clone(), renamed: false })
    }

    /// Flushes and syncs the temporary, then renames it onto the target under the signal lock.
    fn commit(mut self) -> Result<(), String> {
        let temp = self.temp.display().to_string();
        let write_error = |error: std::io::Error| format!("cannot write {temp}: {error}");
        self.writer.flush().map_err(write_error)?;
        // On disk before the rename, so a crash cannot leave an empty file under the target's name.
        self.writer.get_ref().sync_all().map_err(write_error)?;
        let (temp, target) = (&self.temp, &self.target);
        self.interrupt
            .finish(Some(temp), || std::fs::rename(temp, target))
            .map_err(|error| format!("cannot move {} onto {}: {error}", temp.display(), target.display()))?;
        self.renamed = true;
        Ok(())
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if !self.renamed {
            self.interrupt.remove_temp(&self.temp);
        }
    }
}

/// `.<name>.prefeval-tmp-<pid>` in the target's directory.
fn temp_path(target: &Path) -> std::io::Result<PathBuf> {
    let name = target.file_name().ok_or_else(|| std::io::Error::other("the output path names no file"))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".prefeval-tmp-{}", std::process::id()));
    Ok(target.with_file_name(temp_name))
}
