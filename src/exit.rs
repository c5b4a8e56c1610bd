//! The exit codes of every `vezasock` command, in one place (documented in docs/reference.md and
//! docs/errors.md). An edge operation's error has a kind ([`crate::edge::ErrorKind`]); the
//! kind picks its code once (`ErrorKind::exit`, src/edge/error.rs).
//!
//! CI scripts branch on these, so they never change meaning:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done (or nothing to do) |
//! | 1 | refused: HAProxy answered with an error, or a safety gate said no (target color not healthy, rollback impossible) |
//! | 2 | bad input: arguments, topology file, unknown env or color (clap's own usage errors are 2 too) |
//! | 3 | HAProxy unreachable: connect failure, timeout, dropped connection, unreadable reply |
//! | 4 | the edge is locked by another vezasock, or held by a prepared transaction (with `--no-wait`, or the wait ran out) |
//! | 5 | applied but not verified or not recorded: a flip stopped after traffic may have moved (what is live, what is recorded, the command that finishes it), or a reload failed and was rescued |
//! | 6 | `status`: drift (runtime, map file, state file; a served certificate not its file's), an interrupted operation, or an edge vezasock did not render |
//! | 7 | analysis failed after traffic moved (`switch --bake`, `canary`): the edge was put back on the old color (bake: flipped back and recorded; canary: 0 %); the message has the numbers |

use std::process::ExitCode;

/// A command's outcome as the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    Refused = 1,
    BadInput = 2,
    Unreachable = 3,
    Locked = 4,
    NotVerified = 5,
    Drift = 6,
    AnalysisFailed = 7,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}
