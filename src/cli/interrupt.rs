//! SIGINT and SIGTERM during `prefeval eval`: the run ends at once with 130 or 143 (128 + the
//! signal, as a shell reports a process the signal killed) and one line on stderr, and the
//! unfinished output file is removed, so an interrupted run never leaves half a result that looks
//! like one.
//!
//! A thread of its own waits for the signals and ends the process itself, so a run blocked reading
//! stdin or busy in the pool ends as promptly as one between chunks. It and the writer share one
//! lock: the temporary file is created, renamed into place or removed only under it, so a signal
//! sees either no output yet, a temporary to remove, or a finished run, which it leaves alone.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// What the outputs of the run are, as far as a signal needs to know: the results, and with
/// `--report` the report beside them.
#[derive(Debug, Default)]
struct State {
    /// Where the outputs go, for the message (none: stdout).
    targets: Vec<PathBuf>,
    /// The temporary files being written and their targets, removed if the run is interrupted.
    temps: Vec<(PathBuf, PathBuf)>,
    /// Output has gone to stdout.
    stdout: bool,
    /// The command, for the message.
    command: &'static str,
    /// Every output is complete and in place: a signal now changes nothing.
    finished: bool,
}

/// The watch over the signals of one run; clones share it.
#[derive(Clone)]
pub struct Interrupt {
    state: Arc<Mutex<State>>,
}

impl Interrupt {
    /// Takes over SIGINT and SIGTERM for the rest of the process.
    pub fn watch(command: &'static str) -> Result<Interrupt, String> {
        let mut signals =
            Signals::new([SIGINT, SIGTERM]).map_err(|error| format!("cannot watch for SIGINT and SIGTERM: {error}"))?;
        let interrupt = Interrupt { state: Arc::new(Mutex::new(State { command, ..State::default() })) };
        let watcher = interrupt.clone();
        std::thread::Builder::new()
            .name("prefeval-signals".into())
            .spawn(move || {
                for signal in signals.forever() {
                    watcher.interrupted(signal);
                }
            })
            .map_err(|error| format!("cannot start the signal thread: {error}"))?;
        Ok(interrupt)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent whatever panicked while holding it: each field is one store.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Ends the process for `signal`, unless the run has finished. The lock is held to the end, so
    /// the writer cannot create, rename or remove the temporary in between.
    fn interrupted(&self, signal: i32) {
        let state = self.lock();
        if state.finished {
            return;
        }
        let name = if signal == SIGINT { "SIGINT" } else { "SIGTERM" };
        for (temp, _) in &state.temps {
            let _ = std::fs::remove_file(temp);
        }
        let outcome = if state.stdout {
            "the results on stdout are incomplete".to_string()
        } else if state.targets.is_empty() {
            "nothing written".to_string()
        } else {
            let told = |target: &PathBuf| {
                if state.temps.iter().any(|(_, pending)| pending == target) || !target.exists() {
                    format!("nothing written to {}", target.display())
                } else {
                    format!("{} is complete", target.display())
                }
            };
            state.targets.iter().map(told).collect::<Vec<_>>().join("; ")
        };
        eprintln!("prefeval {}: interrupted by {name}; {outcome}", state.command);
        std::process::exit(128 + signal);
    }

    /// Records that the output goes to stdout.
    pub fn writing_to_stdout(&self) {
        self.lock().stdout = true;
    }

    /// Records that the results go to `target` (written directly, as to a pipe or a device).
    pub fn writing_to(&self, target: &Path) {
        self.lock().targets.push(target.to_path_buf());
    }

    /// Creates `temp` (never an existing file) for the output bound for `target`, recorded so that
    /// a signal removes it.
    pub fn create_temp(&self, temp: &Path, target: &Path) -> std::io::Result<File> {
        let mut state = self.lock();
        let file = OpenOptions::new().write(true).create_new(true).open(temp)?;
        state.targets.push(target.to_path_buf());
        state.temps.push((temp.to_path_buf(), target.to_path_buf()));
        Ok(file)
    }

    /// Removes the temporary of an output that failed.
    pub fn remove_temp(&self, temp: &Path) {
        let mut state = self.lock();
        if let Some(at) = state.temps.iter().position(|(pending, _)| pending == temp) {
            let _ = std::fs::remove_file(state.temps.remove(at).0);
        }
    }

    /// Runs the last step of an output (the rename of `temp` into place, or a flush) under the
    /// lock; once it succeeds and no other output is pending, the run is finished and a signal no
    /// longer ends it.
    pub fn finish(&self, temp: Option<&Path>, last_step: impl FnOnce() -> std::io::Result<()>) -> std::io::Result<()> {
        let mut state = self.lock();
        last_step()?;
        if let Some(temp) = temp {
            state.temps.retain(|(pending, _)| pending != temp);
        }
        state.finished = state.temps.is_empty();
        Ok(())
    }
}
