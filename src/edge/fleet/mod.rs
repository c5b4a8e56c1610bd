//! Several edges, one transaction (issue 14): a flip lands on every edge of the fleet or on
//! none. The coordinator runs the flip engine's *prepare* half ([`crate::edge::flip::transaction`])
//! on every edge in parallel, then the commit phases in order on every edge, each phase on
//! every edge before the next, then records on every edge ([`switch`]).
//!
//! | phase | every edge | a failure |
//! |---|---|---|
//! | prepare (parallel) | lock, read, gate, intent, stage (new map version, pending file) | abort everywhere: nothing changed (the failing edge's kind and exit code) |
//! | disk (parallel) | pending file over the map file | every edge's disk put back: nothing changed (exit 3) |
//! | runtime (first edge, then the rest at once) | `commit map @ver` | the committed edges put back (exit 3 when every put-back is confirmed, else 5) |
//! | verify (parallel) | read back | every edge put back (exit 3 when every put-back is confirmed, else 5) |
//! | record (parallel) | history, state file, journal | exit 5 naming the edge (live and verified on every edge, not recorded there) |
//!
//! The fleet journal (`<fleet state_dir>/journal.jsonl`) has one operation per fleet
//! transaction: `intent` (prepare), `disk-written` (committing), `runtime-applied` (every edge
//! committed), `done`; or `rolled-back` / `failed`. `apply` on the fleet reads it to decide the
//! color of an env whose edges disagree after a crash ([`apply`]).
//!
//! The files, by operation: [`switch`] (the flip and rollback, with [`bake`] after it and
//! [`preview`]'s check before it), [`preview`] (one token on every edge), [`canary`] (each
//! step's percent on every edge, served by [`canary_agent`]), [`servers`] (`drain` / `maint`
//! / `ready`), [`cert`] (`cert update --fleet`: HAProxy's certificate transaction staged on
//! every edge, then committed on every edge; `cert list --fleet`), [`status`], [`apply`],
//! [`locking`] (every edge's lock in one order); the edges
//! are driven through [`member`] and served by [`agent`] (with [`rollout_agent`],
//! [`canary_agent`] and [`cert_agent`]) over
//! [`protocol`].

pub mod agent;
pub mod apply;
pub mod bake;
pub mod canary;
pub mod canary_agent;
pub mod cert;
pub mod cert_agent;
pub mod locking;
pub mod member;
pub mod preview;
pub mod protocol;
pub mod rollout_agent;
pub mod servers;
pub mod status;
pub mod switch;

use std::time::{Duration, Instant};

use serde::Serialize;

pub use self::apply::{apply, close_open, resolve_color, FleetApply};
pub use self::servers::{servers_change, ChangeOutcome, DrainWait, FleetChange};
pub use self::status::{status, EdgeStatusEntry, FleetStatus};
pub use self::switch::{rollback_target, switch, FleetReport};
use super::{EdgeError, ErrorKind, Stop};
use crate::state::StateDir;
use crate::topology::fleet::Fleet;
use crate::topology::Color;

/// One edge's part of a fleet operation, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct EdgeOutcome {
    pub edge: String,
    pub from: Option<Color>,
    pub to: Color,
    /// `switched`, `already`, `aborted`, `refused`, `put-back`, `NOT PUT BACK`, `unfinished`,
    /// `not reached`.
    pub result: String,
    /// Milliseconds this edge took, prepare to finish.
    pub ms: f64,
    pub detail: String,
}

/// Why a fleet operation stopped, with every edge's final state.
#[derive(Debug)]
pub struct FleetFailure {
    pub message: String,
    /// What kind of failure: an edge's refusal (its kind: refused, locked, unreachable, …), a
    /// commit put back on every edge ([`ErrorKind::PutBack`]), or some edge not where the
    /// fleet should be ([`ErrorKind::Unfinished`]).
    pub kind: ErrorKind,
    /// Where it stopped once traffic may have moved (a commit phase, the record, the drain).
    pub stop: Option<Stop>,
    pub outcome: Outcome,
}

/// Each edge's final state after a fleet operation stopped.
#[derive(Debug)]
pub enum Outcome {
    /// A switch (or rollback).
    Switch(FleetReport),
    /// A server change (`drain` / `maint` / `ready`).
    Change(FleetChange),
}

impl FleetFailure {
    /// The kind of this failure (its exit code is the kind's).
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// A failure before anything changed anywhere: `refusal` is the edge's error that decided.
    pub fn refused(message: String, refusal: &EdgeError, outcome: Outcome) -> EdgeError {
        EdgeError::Fleet(Box::new(FleetFailure {
            message,
            kind: refusal.kind(),
            stop: None,
            outcome,
        }))
    }
}

impl std::fmt::Display for FleetFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.message)?;
        let lines: Vec<(&str, &str, &str)> = match &self.outcome {
            Outcome::Switch(r) => r
                .edges
                .iter()
                .map(|e| (e.edge.as_str(), e.result.as_str(), e.detail.as_str()))
                .collect(),
            Outcome::Change(c) => c
                .edges
                .iter()
                .map(|e| (e.edge.as_str(), e.result.as_str(), e.detail.as_str()))
                .collect(),
        };
        for (edge, result, detail) in lines {
            write!(f, "\n  {edge}: {result}: {detail}")?;
        }
        Ok(())
    }
}

/// Test hook, as [`super::crash_point`]: `VEZASOCK_PAUSE_AT=<step>` with
/// `VEZASOCK_PAUSE_FILE=<path>` creates the file and waits (at most 60 s) until it is removed.
async fn pause_point(step: &str) {
    super::crash_point(step);
    if !std::env::var("VEZASOCK_PAUSE_AT").is_ok_and(|at| at == step) {
        return;
    }
    let Ok(file) = std::env::var("VEZASOCK_PAUSE_FILE") else {
        return;
    };
    if std::fs::write(&file, step.as_bytes()).is_err() {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::path::Path::new(&file).exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The fleet journal.
pub fn journal(fleet: &Fleet) -> StateDir {
    StateDir::single(fleet.state_dir.clone())
}
