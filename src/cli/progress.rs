//! The one progress line of a long wait (`--wait-healthy`, `drain --wait`, a canary step, a
//! fleet's prepares) on a terminal: redrawn in place on stderr at most every 200 ms, erased when
//! the wait ends. Nothing when stderr is not a terminal (a CI log, a pipe) or under `--json`.
//! The waits say what they wait for through [`crate::edge::progress`].

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::edge::progress::Sink;

/// The shortest time between two redraws.
const REDRAW: Duration = Duration::from_millis(200);

/// The width used when the terminal's is not known.
const DEFAULT_WIDTH: usize = 80;

/// Installs the terminal line for this command, unless `json` or stderr is not a terminal.
pub fn install(json: bool) {
    if json || !std::io::stderr().is_terminal() {
        return;
    }
    crate::edge::progress::install(Box::new(TerminalLine::default()));
}

/// The line on stderr: whether one is drawn, and when it last was.
#[derive(Default)]
struct TerminalLine {
    state: Mutex<(bool, Option<Instant>)>,
}

impl Sink for TerminalLine {
    fn show(&self, line: &str) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if state.1.is_some_and(|t| t.elapsed() < REDRAW) {
            return;
        }
        *state = (true, Some(Instant::now()));
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{}", fit(line, width()));
        let _ = err.flush();
    }

    fn clear(&self) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if state.0 {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
        *state = (false, None);
    }
}

/// The terminal's width (a line longer than it would wrap, and only its last row be redrawn).
fn width() -> usize {
    rustix::termios::tcgetwinsize(std::io::stderr())
        .ok()
        .map(|w| usize::from(w.ws_col))
        .filter(|w| *w > 0)
        .unwrap_or(DEFAULT_WIDTH)
}

/// `line` cut to one character less than `width` (the cursor stays on the row).
fn fit(line: &str, width: usize) -> &str {
    let keep = width.saturating_sub(1);
    match line.char_indices().nth(keep) {
        Some((i, _)) => &line[..i],
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::fit;

    #[test]
    fn a_line_is_cut_to_the_terminal_width() {
        assert_eq!(fit("waiting", 80), "waiting");
        assert_eq!(fit("waiting", 5), "wait");
        assert_eq!(fit("→→→→", 3), "→→");
        assert_eq!(fit("x", 0), "");
    }
}
