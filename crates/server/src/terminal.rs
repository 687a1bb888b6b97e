//! Progress on stderr for the batch commands (`prewarm`, `export`, `import`, `verify`): on a
//! terminal, one progress bar per phase (lines printed above it); otherwise plain lines, each
//! starting with the command's name. The commands' progress sinks decide what a phase and a step
//! show; this holds the bar.

use std::io::IsTerminal;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// The progress output of one command run.
pub(crate) struct Terminal {
    command: &'static str,
    bar: Mutex<Option<ProgressBar>>,
    is_terminal: bool,
}

impl Terminal {
    /// Progress of `command` on stderr.
    pub(crate) fn new(command: &'static str) -> Terminal {
        Terminal {
            command,
            bar: Mutex::new(None),
            is_terminal: std::io::stderr().is_terminal(),
        }
    }

    /// Whether stderr is a terminal (a bar) rather than a log (lines).
    pub(crate) fn is_terminal(&self) -> bool {
        self.is_terminal
    }

    fn slot(&self) -> MutexGuard<'_, Option<ProgressBar>> {
        self.bar.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new phase: the previous bar ends; on a terminal, `bar` shows `name` (as `{prefix}`)
    /// with `template`; otherwise `line` is printed.
    pub(crate) fn phase(&self, name: &str, line: &str, bar: ProgressBar, template: &str) {
        let mut slot = self.slot();
        if let Some(bar) = slot.take() {
            bar.finish_and_clear();
        }
        if !self.is_terminal {
            eprintln!("{}: {line}", self.command);
            return;
        }
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(name.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        *slot = Some(bar);
    }

    /// Runs `f` on the current phase's bar, if there is one.
    pub(crate) fn with_bar(&self, f: impl FnOnce(&ProgressBar)) {
        if let Some(bar) = self.slot().as_ref() {
            f(bar);
        }
    }

    /// A line: above the bar on a terminal, `<command>: line` otherwise.
    pub(crate) fn println(&self, line: &str) {
        match self.slot().as_ref() {
            Some(bar) => bar.println(line),
            None => eprintln!("{}: {line}", self.command),
        }
    }

    /// Clears the bar (the run is over).
    pub(crate) fn finish(&self) {
        if let Some(bar) = self.slot().take() {
            bar.finish_and_clear();
        }
    }
}
