//! What vezasock does to a live edge: flips, rollbacks, server drains, status, apply and the
//! reload path. Each operation combines the layers below it (topology → render → plan →
//! runtime → state) and is called by the `cli` commands; some operations are also steps of
//! others ([`deploy::switch::switch`] is run by `switch`, `rollback`, a bake that flips back, `canary`,
//! the fleet agent's dry run and `demo`). The map of this folder: docs/architecture.md §1.
//!
//! [`Edge`] is the context they share: the topology (with its runtime paths), the edge's
//! state dir, and the runtime client settings.

//! | folder / file | what it holds |
//! |---|---|
//! | `flip/` | the flip engine: its phases (lock → read → gate → intent → disk → runtime → verify → record), the staged (two-half) flip, the transaction state machine, the server gate |
//! | `deploy/` | what an operator runs to move traffic, on the engine: `switch`, `rollback`, `preview`, `bake`, `canary` |
//! | `apply/` | making the edge match its topology: `apply`, `install`, takeover, pool changes, reload, repair |
//! | `fleet/` | the same operations on several edges at once: coordinator, edge-agent, wire protocol |
//! | `servers.rs`, `status.rs`, `cert.rs` | drain/maint/ready, the status report, certificates |
//! | `active_color.rs` | the active-color map, its runtime and file sides |
//! | `analysis.rs` | the traffic counters and limits a bake and a canary judge by |
//! | `metrics/`, `notify.rs` | what vezasock tells outside: the metrics textfile and webhook events |
//! | `progress.rs` | a long wait's progress line, for the CLI to draw on a terminal |
//! | `error.rs` | the one error of every operation ([`EdgeError`]) |

pub mod active_color;
pub mod analysis;
pub mod apply;
pub mod cert;
pub mod deploy;
pub mod error;
pub mod fleet;
pub mod flip;
pub mod metrics;
pub mod notify;
pub mod progress;
pub mod servers;
pub mod status;

use std::time::Duration;

use crate::runtime::endpoint::{Endpoint, Socket};
use crate::runtime::session::{ReadSession, Session, Timeouts};
use crate::state::StateDir;
use crate::topology::{Env, Topology};

pub use self::error::{EdgeError, ErrorKind, Stop};

/// One edge: its topology, its state dir and how to reach its HAProxy.
#[derive(Debug, Clone)]
pub struct Edge {
    pub topology: Topology,
    pub state: StateDir,
    pub timeouts: Timeouts,
}

impl Edge {
    /// An edge whose state lives in the topology's `state_dir`.
    pub fn new(topology: Topology) -> Edge {
        let state = StateDir::single(topology.paths.state_dir.clone());
        Edge {
            topology,
            state,
            timeouts: Timeouts {
                connect: Duration::from_secs(2),
                reply: Duration::from_secs(10),
            },
        }
    }

    /// The env, checked to have colors.
    pub(crate) fn colored_env(&self, name: &str) -> Result<&Env, EdgeError> {
        let env = self.env(name)?;
        if !env.colored {
            return Err(EdgeError::BadInput(format!(
                "env {name:?} has no colors (its components are plain pools): there is nothing to switch"
            )));
        }
        Ok(env)
    }

    /// The admin stats socket: flips and server state changes.
    pub fn admin(&self) -> Endpoint {
        Endpoint::Unix(self.topology.paths.admin_socket.clone())
    }

    /// The operator stats socket (level operator): `cert list` reads there. HAProxy refuses
    /// server changes on it and, from 3.4, every map command (reads included).
    pub fn operator(&self) -> Endpoint {
        Endpoint::Unix(self.topology.paths.operator_socket.clone())
    }

    /// The master CLI (current worker targeted by default).
    pub fn master(&self) -> Endpoint {
        Endpoint::Master {
            socket: Socket::Unix(self.topology.paths.master_socket.clone()),
            target: None,
        }
    }

    /// A session on the admin socket.
    pub async fn admin_session(&self) -> Result<Session, EdgeError> {
        Ok(Session::connect(&self.admin(), self.timeouts).await?)
    }

    /// A session on the operator socket.
    pub async fn operator_session(&self) -> Result<Session, EdgeError> {
        Ok(Session::connect(&self.operator(), self.timeouts).await?)
    }

    /// A session on the admin socket that sends reads only: where `status` reads, maps
    /// included (HAProxy 3.4 answers map reads at level admin only).
    pub async fn read_session(&self) -> Result<ReadSession, EdgeError> {
        Ok(ReadSession::connect(&self.admin(), self.timeouts).await?)
    }

    /// The env named `name`, or a clear error listing the envs there are.
    pub fn env(&self, name: &str) -> Result<&Env, EdgeError> {
        self.topology.env(name).ok_or_else(|| {
            let known: Vec<&str> = self.topology.envs.iter().map(|e| e.name.as_str()).collect();
            EdgeError::BadInput(format!(
                "no env {name:?} on edge {}; envs: {}",
                self.topology.name,
                known.join(", ")
            ))
        })
    }
}

/// Crash-test hook: when `VEZASOCK_CRASH_AT` names this step, the process kills itself with
/// SIGKILL on the spot (no destructor, no flush), exactly like `kill -9` at that instant. The
/// integration tests use it to prove that every step of a flip is crash-safe. Unset in normal
/// use; the variable is read only at the named steps.
pub fn crash_point(step: &str) {
    if std::env::var("VEZASOCK_CRASH_AT").is_ok_and(|at| at == step) {
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
    }
}
