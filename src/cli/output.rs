//! Everything the CLI prints on stdout goes through here, because the reader may go away:
//! `vezasock history staging | head -1` closes the pipe after one line. `println!` panics on
//! that (exit 101); these functions stop writing instead and let the command finish what it
//! was doing (a flip half-printed is still a whole flip), so its exit code says what it did,
//! as `grep` and `socat` behave.
//!
//! A closed pipe is silent. Any other write error (a full disk behind `>`) is said once on
//! stderr; the command's exit code still reports the command's own outcome.

use std::io::{ErrorKind, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

/// Set once stdout cannot take more: nothing more is written.
static GONE: AtomicBool = AtomicBool::new(false);

/// Writes `text` as it is (no newline added) and flushes it.
pub fn text(text: &str) {
    write(text.as_bytes());
}

/// Writes `line` and a newline.
pub fn line(line: &str) {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    write(&bytes);
}

/// Writes raw bytes (a reply as HAProxy sent it).
pub fn bytes(bytes: &[u8]) {
    write(bytes);
}

/// Prints a value as one JSON line.
pub fn json(value: &impl Serialize) {
    match serde_json::to_string(value) {
        Ok(text) => line(&text),
        Err(e) => eprintln!("vezasock: cannot print JSON: {e}"),
    }
}

/// Prints a value as indented JSON (the commands whose JSON people read as often as scripts).
pub fn json_pretty(value: &impl Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => line(&text),
        Err(e) => eprintln!("vezasock: cannot print JSON: {e}"),
    }
}

/// True once stdout was found closed (or failing): a long listing can stop early.
pub fn closed() -> bool {
    GONE.load(Ordering::Relaxed)
}

fn write(bytes: &[u8]) {
    if closed() {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        GONE.store(true, Ordering::Relaxed);
        if e.kind() != ErrorKind::BrokenPipe {
            eprintln!("vezasock: cannot write to stdout: {e}");
        }
    }
}
