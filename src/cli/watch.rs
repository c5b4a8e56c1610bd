//! `status --watch` and `status --fleet --watch`: a snapshot every interval until interrupted
//! (or `--count`). On a terminal each one redraws the screen; otherwise each is printed after
//! the last, headed by its time (with `--json`: one JSON object per line, nothing else).

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use super::exit::Exit;

/// The most snapshots a watch shows without `--count` (a week at the shortest interval).
pub const MAX_ROUNDS: u64 = 7 * 24 * 3600 * 10;

/// How a watch shows its snapshots.
pub struct Watch<'a> {
    /// The header's words after the interval: `vezasock status` or `vezasock status --fleet`.
    pub what: &'a str,
    pub interval: Duration,
    /// `--count` (else [`MAX_ROUNDS`]).
    pub count: Option<u64>,
    pub json: bool,
}

/// Shows `snapshot(json)` (the text or the JSON line of one round) every interval; exit 0 when
/// the rounds are done or the reader went away (a closed pipe).
pub fn repeat(w: &Watch<'_>, mut snapshot: impl FnMut(bool) -> String) -> ExitCode {
    let tty = std::io::stdout().is_terminal();
    let rounds = w.count.unwrap_or(MAX_ROUNDS);
    for round in 0..rounds {
        let body = snapshot(w.json);
        let header = format!(
            "every {:?}: {}, {}\n",
            w.interval,
            w.what,
            crate::state::time::now_rfc3339()
        );
        let screen = match (tty, w.json) {
            (true, _) => format!("\x1b[H\x1b[2J{header}\n{body}"),
            (false, true) => body,
            (false, false) => format!("{header}\n{body}\n"),
        };
        let mut out = std::io::stdout().lock();
        if out
            .write_all(screen.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            return Exit::Ok.into();
        }
        drop(out);
        if round + 1 < rounds {
            std::thread::sleep(w.interval);
        }
    }
    Exit::Ok.into()
}

/// A round that could not be read: `{"error": …}` with `--json`, else the line.
pub fn failed(json: bool, message: &str) -> String {
    if json {
        serde_json::json!({ "error": message }).to_string() + "\n"
    } else {
        format!("vezasock status: {message}\n")
    }
}
