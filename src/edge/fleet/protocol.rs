//! The conversation between the coordinator and `vezasock edge-agent` on an edge reached over
//! ssh: one JSON object per line each way, one request → one response, in order. One agent
//! session carries at most one transaction (prepare, then its commit steps or abort); a
//! session whose input ends while its transaction is still prepared aborts it (the coordinator
//! is gone).

use serde::{Deserialize, Serialize};

use crate::state::Transaction;
use crate::topology::Color;

/// A request to the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// `transaction::prepare` of `env` to `color`.
    Prepare {
        env: String,
        color: Color,
        id: String,
        ttl_ms: u64,
        #[serde(default)]
        sha: Option<String>,
        #[serde(default)]
        wait_healthy_ms: Option<u64>,
        /// `None`: do not wait for the edge lock.
        #[serde(default)]
        lock_wait_ms: Option<u64>,
        who: String,
    },
    CommitDisk,
    CommitRuntime,
    Finish,
    Abort {
        why: String,
    },
    Undo {
        why: String,
    },
    /// The edge's colors and status.
    Status,
    /// Abort an open transaction and repair the edge to its recorded state (`apply`'s repair).
    Repair,
}

/// The agent's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Response {
    pub ok: bool,
    /// What was done (or the error message when `ok` is false).
    pub detail: String,
    /// The exit code `vezasock` would give this failure.
    #[serde(default)]
    pub exit: u8,
    /// `prepare`: the env's live color before it, the staged version, no change needed.
    #[serde(default)]
    pub from: Option<Color>,
    #[serde(default)]
    pub version: Option<u32>,
    #[serde(default)]
    pub noop: bool,
    /// `status`: the edge's summary and full status report.
    #[serde(default)]
    pub summary: Option<EdgeSummary>,
    #[serde(default)]
    pub status: Option<serde_json::Value>,
}

/// What fleet status compares across edges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct EdgeSummary {
    /// Per colored env: the live (runtime) and recorded (state file) colors.
    pub envs: Vec<EnvColors>,
    /// The edge's own problems (drift, interrupted operations, an open transaction).
    pub problems: Vec<String>,
    pub transaction: Option<Transaction>,
}

/// One env's colors on one edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvColors {
    pub env: String,
    pub live: Option<Color>,
    pub recorded: Option<Color>,
}
