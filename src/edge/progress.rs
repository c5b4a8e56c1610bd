//! The progress of a long wait (a gate waiting for `--wait-healthy`, a `drain --wait`, a canary
//! step, a fleet's prepares), for whoever shows it. The edge code only says what it waits for;
//! the CLI installs a [`Sink`] that draws one line on a terminal (`cli::progress`). Without one
//! (a library caller, an `edge-agent`, the unit tests) nothing is shown and no line is built.

use std::cell::Cell;
use std::future::Future;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Where progress lines go.
pub trait Sink: Send + Sync {
    /// The wait's state now, one line (it replaces the last one).
    fn show(&self, line: &str);
    /// The wait ended: its line goes away.
    fn clear(&self);
}

/// The process's sink, installed once by the CLI.
static SINK: OnceLock<Box<dyn Sink>> = OnceLock::new();

thread_local! {
    /// This thread serves an edge for a fleet coordinator in the same process: the
    /// coordinator shows the fleet's progress, not each edge's.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// The waits on this thread show nothing (an edge served for a fleet coordinator).
pub fn quiet_on_this_thread() {
    QUIET.with(|q| q.set(true));
}

/// The sink, unless there is none or this thread is quiet.
fn sink() -> Option<&'static dyn Sink> {
    if QUIET.with(Cell::get) {
        return None;
    }
    SINK.get().map(|s| s.as_ref())
}

/// Installs the sink for this process (the first call wins: false when one was already set).
pub fn install(sink: Box<dyn Sink>) -> bool {
    SINK.set(sink).is_ok()
}

/// One wait in progress: [`Wait::show`] while it waits; its line is cleared when it is dropped,
/// also when the wait ends with an error.
pub struct Wait {
    shown: bool,
}

impl Wait {
    pub fn start() -> Wait {
        Wait { shown: false }
    }

    /// Shows the line `line` builds (built only when a sink is installed).
    pub fn show(&mut self, line: impl FnOnce() -> String) {
        if let Some(sink) = sink() {
            sink.show(&line());
            self.shown = true;
        }
    }
}

impl Drop for Wait {
    fn drop(&mut self) {
        if let (true, Some(sink)) = (self.shown, sink()) {
            sink.clear();
        }
    }
}

/// Runs `work`, showing `line(elapsed)` every `every` until it ends (the work itself is not
/// touched: this only watches the clock beside it).
pub async fn around<F: Future>(
    work: F,
    every: Duration,
    mut line: impl FnMut(Duration) -> String,
) -> F::Output {
    if sink().is_none() {
        return work.await;
    }
    let started = Instant::now();
    let mut wait = Wait::start();
    let mut work = std::pin::pin!(work);
    loop {
        tokio::select! {
            out = &mut work => return out,
            () = tokio::time::sleep(every) => wait.show(|| line(started.elapsed())),
        }
    }
}

/// `4s` or `1m05s`: a wait's time for a progress line.
pub fn seconds(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_read_as_an_operator_says_them() {
        assert_eq!(seconds(Duration::from_millis(4_900)), "4s");
        assert_eq!(seconds(Duration::from_secs(65)), "1m05s");
        assert_eq!(seconds(Duration::ZERO), "0s");
    }

    /// Without a sink the work runs as it is and no line is built.
    #[tokio::test]
    async fn without_a_sink_around_only_runs_the_work() {
        let out = around(async { 7 }, Duration::from_millis(1), |_| {
            unreachable!("no sink: no line")
        })
        .await;
        assert_eq!(out, 7);
    }
}
