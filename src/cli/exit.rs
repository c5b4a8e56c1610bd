//! The exit codes of every `vezasock` command, in one place (documented in docs/reference.md, summed up in the README).
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

use crate::runtime::Error;

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

impl Exit {
    /// Which exit a runtime client error maps to.
    pub fn of_runtime(error: &Error) -> Exit {
        match error {
            Error::Refused { .. } => Exit::Refused,
            Error::InvalidArgument { .. } => Exit::BadInput,
            _ => Exit::Unreachable,
        }
    }

    /// Which exit an edge operation error maps to (a state file error other than the lock is
    /// a refusal: nothing was done that the operator did not see).
    pub fn of_edge(error: &crate::edge::EdgeError) -> Exit {
        use crate::edge::EdgeError;
        match error {
            EdgeError::BadInput(_) => Exit::BadInput,
            EdgeError::Refused(_) => Exit::Refused,
            EdgeError::Runtime(e) | EdgeError::Interrupted { source: e, .. } => Exit::of_runtime(e),
            EdgeError::State(e) if e.is_locked() => Exit::Locked,
            EdgeError::State(crate::state::Error::NotReadable { .. }) => Exit::BadInput,
            EdgeError::State(_) => Exit::Refused,
            EdgeError::NotVerified(_) | EdgeError::Unfinished(_) => Exit::NotVerified,
            EdgeError::DrainOld { source, .. } => Exit::of_edge(source),
            EdgeError::Remote { exit, .. } => Exit::of_code(*exit),
            EdgeError::Fleet(f) => match &f.kind {
                crate::edge::fleet::FailureKind::Refused(e) => Exit::of_edge(e),
                crate::edge::fleet::FailureKind::PutBack => Exit::Unreachable,
                crate::edge::fleet::FailureKind::NotPutBack => Exit::NotVerified,
            },
            EdgeError::AnalysisFailed { rolled_back, .. } => {
                if *rolled_back {
                    Exit::AnalysisFailed
                } else {
                    Exit::NotVerified
                }
            }
        }
    }
}

impl Exit {
    /// The exit for a code another vezasock gave (an edge-agent over ssh); an unknown code
    /// is 5: nothing says that nothing changed.
    pub fn of_code(code: u8) -> Exit {
        match code {
            0 => Exit::Ok,
            1 => Exit::Refused,
            2 => Exit::BadInput,
            3 => Exit::Unreachable,
            4 => Exit::Locked,
            6 => Exit::Drift,
            7 => Exit::AnalysisFailed,
            _ => Exit::NotVerified,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}
