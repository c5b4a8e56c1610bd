//! The one error of every edge operation ([`EdgeError`]): what kind of failure it is
//! ([`ErrorKind`], which picks the exit code in [`crate::exit`]) and, once traffic may have
//! moved, where it stopped ([`Stop`]: the phase reached, what is live, what is recorded,
//! whether it was put back, the one command that finishes or undoes it). docs/errors.md is the
//! reader's version.

use serde::{Deserialize, Serialize};

use super::flip::{FlipPhase, Unfinished};
use crate::exit::Exit;
use crate::topology::Color;

/// Why an edge operation stopped. [`EdgeError::kind`] says what kind of failure it is,
/// [`EdgeError::stop`] where it stopped, [`EdgeError::exit`] the exit code.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    /// The request itself is wrong: unknown env, component, server, bad color, bad duration.
    #[error("{0}")]
    BadInput(String),
    /// A safety rule said no (target color not healthy, rollback impossible, color in maint).
    #[error("{0}")]
    Refused(String),
    /// Talking to HAProxy failed, or HAProxy refused a command.
    #[error(transparent)]
    Runtime(#[from] crate::runtime::Error),
    /// vezasock's files: lock held, unreadable state, disk errors.
    #[error(transparent)]
    State(#[from] crate::state::Error),
    /// The connection dropped in the middle of a change; `detail` says what vezasock found
    /// and did afterwards (e.g. "map file restored; the runtime was put back to blue").
    #[error("{source}; {detail}")]
    Interrupted {
        source: crate::runtime::Error,
        detail: String,
    },
    /// The change was applied but the read-back disagrees, or a reload failed and was rescued.
    #[error("{0}")]
    NotVerified(String),
    /// A flip stopped after traffic may have moved: what is live, what is recorded, and the
    /// command that finishes it.
    #[error("{0}")]
    Unfinished(Box<Unfinished>),
    /// A bake (or canary analysis) saw a breach, or could not watch, after traffic moved.
    #[error("{message}")]
    AnalysisFailed {
        message: String,
        /// The edge is back on the old color, live and recorded (exit 7); else exit 5.
        rolled_back: bool,
    },
    /// An edge reached through the fleet protocol reported a failure: its kind and, once
    /// traffic may have moved there, where it stopped (as the edge said).
    #[error("edge {edge}: {message}")]
    Remote {
        edge: String,
        message: String,
        kind: ErrorKind,
        stop: Option<Box<Stop>>,
    },
    /// A fleet operation stopped: what each edge holds now.
    #[error("{0}")]
    Fleet(Box<super::fleet::FleetFailure>),
    /// `--drain-old` failed after a flip that is complete and recorded: the drain's own error
    /// (and exit code), with what the flip did and the command that finishes the drain.
    #[error("{done}; but draining the old color failed: {source}; `{finish}` finishes it")]
    DrainOld {
        done: String,
        finish: String,
        source: Box<EdgeError>,
    },
}

/// What kind of failure an [`EdgeError`] is; each kind has one exit code ([`ErrorKind::exit`]).
/// On the fleet protocol it is the word below (`"locked"`, `"unfinished"`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// The request is wrong (arguments, topology, unknown env or color): exit 2.
    BadInput,
    /// A safety rule said no; nothing changed: exit 1.
    Refused,
    /// HAProxy answered a command with an error; nothing left changed: exit 1.
    HaproxySaidNo,
    /// HAProxy (or an edge) could not be reached, or the connection dropped: exit 3.
    Unreachable,
    /// The edge is locked by another vezasock, or held by a prepared transaction: exit 4.
    Locked,
    /// A fleet commit failed and every edge was put back on its color before, confirmed:
    /// exit 3.
    PutBack,
    /// Traffic may have moved and the change is not verified, recorded or put back: exit 5.
    Unfinished,
    /// An edge's status found drift (only from another vezasock's exit code): exit 6.
    Drift,
    /// The analysis after the flip failed and the edge was put back on the old color: exit 7.
    AnalysisFailed,
}

/// Where an operation stopped once traffic may have moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stop {
    /// The phase that failed (a fleet commit: the phase every edge had reached).
    pub phase: FlipPhase,
    /// What the runtime serves, as far as vezasock knows (`None`: unknown, or several edges).
    #[serde(default)]
    pub live: Option<Color>,
    /// What the state file records (`None`: unknown, or several edges).
    #[serde(default)]
    pub recorded: Option<Color>,
    /// The change was undone and the undo confirmed.
    pub put_back: bool,
    /// The one command that finishes (or undoes) it, when there is one.
    #[serde(default)]
    pub finish: Option<String>,
}

impl ErrorKind {
    /// The kind of a runtime client error.
    pub fn of_runtime(error: &crate::runtime::Error) -> ErrorKind {
        match error {
            crate::runtime::Error::Refused { .. } => ErrorKind::HaproxySaidNo,
            crate::runtime::Error::InvalidArgument { .. } => ErrorKind::BadInput,
            _ => ErrorKind::Unreachable,
        }
    }

    /// The kind an exit code stands for, for an older edge-agent that sends only the code. An
    /// unknown code (or 0 on a failure) is [`ErrorKind::Unfinished`]: nothing says that
    /// nothing changed.
    pub fn of_code(code: u8) -> ErrorKind {
        match code {
            1 => ErrorKind::Refused,
            2 => ErrorKind::BadInput,
            3 => ErrorKind::Unreachable,
            4 => ErrorKind::Locked,
            6 => ErrorKind::Drift,
            7 => ErrorKind::AnalysisFailed,
            _ => ErrorKind::Unfinished,
        }
    }

    /// The exit code of this kind.
    pub fn exit(self) -> Exit {
        match self {
            ErrorKind::Refused | ErrorKind::HaproxySaidNo => Exit::Refused,
            ErrorKind::BadInput => Exit::BadInput,
            // A fleet commit that failed and was put back everywhere says 3 too: an edge
            // could not be reached (or answered wrong) in the middle of the commit.
            ErrorKind::Unreachable | ErrorKind::PutBack => Exit::Unreachable,
            ErrorKind::Locked => Exit::Locked,
            ErrorKind::Unfinished => Exit::NotVerified,
            ErrorKind::Drift => Exit::Drift,
            ErrorKind::AnalysisFailed => Exit::AnalysisFailed,
        }
    }
}

impl EdgeError {
    /// What kind of failure this is (a state file error other than the lock is a refusal:
    /// nothing was done that the operator did not see).
    pub fn kind(&self) -> ErrorKind {
        match self {
            EdgeError::BadInput(_) => ErrorKind::BadInput,
            EdgeError::Refused(_) => ErrorKind::Refused,
            EdgeError::Runtime(e) | EdgeError::Interrupted { source: e, .. } => {
                ErrorKind::of_runtime(e)
            }
            EdgeError::State(e) if e.is_locked() => ErrorKind::Locked,
            EdgeError::State(crate::state::Error::NotReadable { .. }) => ErrorKind::BadInput,
            EdgeError::State(_) => ErrorKind::Refused,
            EdgeError::NotVerified(_) | EdgeError::Unfinished(_) => ErrorKind::Unfinished,
            EdgeError::DrainOld { source, .. } => source.kind(),
            EdgeError::Remote { kind, .. } => *kind,
            EdgeError::Fleet(f) => f.kind(),
            EdgeError::AnalysisFailed { rolled_back, .. } => {
                if *rolled_back {
                    ErrorKind::AnalysisFailed
                } else {
                    ErrorKind::Unfinished
                }
            }
        }
    }

    /// The exit code this error gives (`vezasock` exits with it; an edge-agent sends it).
    pub fn exit(&self) -> Exit {
        self.kind().exit()
    }

    /// Where the operation stopped, once traffic may have moved (`None`: before that, or
    /// not known).
    pub fn stop(&self) -> Option<Stop> {
        match self {
            EdgeError::Unfinished(u) => Some(Stop {
                phase: u.phase,
                live: u.live,
                recorded: Some(u.recorded),
                put_back: false,
                finish: Some(u.finish.clone()),
            }),
            EdgeError::AnalysisFailed { rolled_back, .. } => Some(Stop {
                phase: FlipPhase::Analysis,
                live: None,
                recorded: None,
                put_back: *rolled_back,
                finish: None,
            }),
            EdgeError::DrainOld { finish, .. } => Some(Stop {
                phase: FlipPhase::DrainOld,
                live: None,
                recorded: None,
                put_back: false,
                finish: Some(finish.clone()),
            }),
            EdgeError::Remote { stop, .. } => stop.as_deref().cloned(),
            EdgeError::Fleet(f) => f.stop.clone(),
            _ => None,
        }
    }

    /// A copy that keeps the message, the kind and where it stopped (the originals stay with
    /// their edges; a fleet report names every edge's).
    pub fn copy(&self) -> EdgeError {
        match self {
            EdgeError::BadInput(m) => EdgeError::BadInput(m.clone()),
            EdgeError::Refused(m) => EdgeError::Refused(m.clone()),
            EdgeError::Remote {
                edge,
                message,
                kind,
                stop,
            } => EdgeError::Remote {
                edge: edge.clone(),
                message: message.clone(),
                kind: *kind,
                stop: stop.clone(),
            },
            other => EdgeError::Remote {
                edge: String::new(),
                message: other.to_string(),
                kind: other.kind(),
                stop: other.stop().map(Box::new),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every exit code an older agent sends stands for a kind that gives that code back.
    #[test]
    fn a_code_read_as_a_kind_gives_the_same_exit() {
        for code in 1..=7u8 {
            assert_eq!(ErrorKind::of_code(code).exit() as u8, code);
        }
        assert_eq!(ErrorKind::of_code(0).exit(), Exit::NotVerified);
        assert_eq!(ErrorKind::of_code(200).exit(), Exit::NotVerified);
    }

    #[test]
    fn each_kind_has_its_documented_exit() {
        let table = [
            (ErrorKind::BadInput, 2),
            (ErrorKind::Refused, 1),
            (ErrorKind::HaproxySaidNo, 1),
            (ErrorKind::Unreachable, 3),
            (ErrorKind::Locked, 4),
            (ErrorKind::PutBack, 3),
            (ErrorKind::Unfinished, 5),
            (ErrorKind::Drift, 6),
            (ErrorKind::AnalysisFailed, 7),
        ];
        for (kind, code) in table {
            assert_eq!(kind.exit() as u8, code, "{kind:?}");
        }
    }

    #[test]
    fn a_drain_old_failure_keeps_the_drains_kind_and_says_where_it_stopped() {
        let e = EdgeError::DrainOld {
            done: "staging switched blue → green".into(),
            finish: "vezasock drain staging blue".into(),
            source: Box::new(EdgeError::State(crate::state::Error::Locked {
                lock: "/x/lock".into(),
                holder: None,
                waited: None,
            })),
        };
        assert_eq!(e.kind(), ErrorKind::Locked);
        let stop = e.stop();
        assert_eq!(stop.as_ref().map(|s| s.phase), Some(FlipPhase::DrainOld));
        assert_eq!(e.copy().kind(), ErrorKind::Locked);
        assert_eq!(e.copy().stop(), stop);
    }
}
