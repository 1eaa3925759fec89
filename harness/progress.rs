//! Progress on stderr while a long run works; hidden when stderr is not a
//! terminal, so piped output stays clean.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

/// A progress bar, or nothing.
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar of `total` steps on stderr when it is a terminal and `enabled`,
    /// with an ETA from the rate of steps so far (phases have time budgets,
    /// so steps take comparable times).
    pub fn new(total: u64, enabled: bool) -> Self {
        let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} about {eta} left; {msg}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            bar
        });
        Progress { bar }
    }

    /// A bar that runs from 0 to `seconds` of a time budget, with an ETA.
    pub fn timed(seconds: f64, enabled: bool) -> Self {
        let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new((seconds * 10.0).max(1.0) as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} at most {eta} more; {msg}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            bar
        });
        Progress { bar }
    }

    /// Sets a [`Progress::timed`] bar to `seconds` elapsed, with a message.
    pub fn set_seconds(&self, seconds: f64, msg: &str) {
        if let Some(b) = &self.bar {
            b.set_position((seconds * 10.0) as u64);
            b.set_message(msg.to_owned());
        }
    }

    /// A progress that shows nothing.
    pub fn hidden() -> Self {
        Progress { bar: None }
    }

    /// Names the phase now running.
    pub fn phase(&self, name: &str) {
        if let Some(b) = &self.bar {
            b.set_message(name.to_owned());
        }
    }

    /// Advances one step.
    pub fn tick(&self) {
        if let Some(b) = &self.bar {
            b.inc(1);
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
