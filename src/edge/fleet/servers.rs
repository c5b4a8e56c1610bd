//! `drain` / `maint` / `ready` on a fleet: the server change prepared on every edge (lock,
//! resolve, guard), then applied on every edge; a drain's wait and its `--then` follow on every
//! edge once every edge drained.

use std::time::Duration;

use futures::future::join_all;
use serde::Serialize;

use super::locking::hold_all;
use super::member::{Hold, Member};
use super::{FleetFailure, Outcome};
use crate::edge::{EdgeError, ErrorKind};
use crate::state::AdminDecision;

/// What a fleet `drain` / `maint` / `ready` did.
#[derive(Debug, Clone, Serialize)]
pub struct FleetChange {
    pub action: AdminDecision,
    pub edges: Vec<ChangeOutcome>,
}

/// One edge's part of a fleet server change.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeOutcome {
    pub edge: String,
    /// `changed`, `refused`, `put-back`, `NOT PUT BACK`, `not reached`.
    pub result: String,
    pub detail: String,
}

/// A drain's `--wait` on a fleet: how long every edge waits for its drained servers to have no
/// session left, and what follows once every edge drained (`--then maint`: `Maint`, false;
/// `--then kill`: `Maint`, true).
#[derive(Debug, Clone, Copy)]
pub struct DrainWait {
    pub limit: Duration,
    pub then: Option<(AdminDecision, bool)>,
    /// Still busy at `limit` is exit 1 (`drain --wait`), or only reported, the servers left in
    /// drain (`switch --drain-old`, as on one edge).
    pub busy_fails: bool,
}

/// A server change on every edge or on none: prepared (lock, resolve, guard) on every edge
/// (see [`hold_all`]), then applied on every edge in parallel; when one fails, the edges it was
/// applied on are put back. The servers are named as on one edge (the topology is shared).
/// With `wait` (a drain), every edge then waits for its servers, and the `then` change follows
/// on every edge only when every edge drained in time.
pub async fn servers_change(
    members: &mut [Member],
    selection: &crate::edge::servers::Selection,
    decision: AdminDecision,
    (kill_sessions, force): (bool, bool),
    lock_wait: crate::edge::flip::LockWait,
    wait: Option<DrainWait>,
) -> Result<FleetChange, EdgeError> {
    let mut report = FleetChange {
        action: decision,
        edges: members
            .iter()
            .map(|m| ChangeOutcome {
                edge: m.name().to_string(),
                result: "not reached".to_string(),
                detail: String::new(),
            })
            .collect(),
    };
    let hold = Hold::Servers {
        selection,
        decision,
        force,
    };
    if let Err((i, error)) = hold_all(members, &hold, lock_wait).await {
        for (j, e) in report.edges.iter_mut().enumerate() {
            if j == i {
                e.result = "refused".to_string();
                e.detail = error.to_string();
            } else {
                e.result = "unchanged".to_string();
            }
        }
        let name = report.edges[i].edge.clone();
        let message = format!(
            "fleet {} refused on edge {name}: nothing changed on any edge",
            decision.as_str()
        );
        return Err(FleetFailure::refused(
            message,
            &error,
            Outcome::Change(report),
        ));
    }
    let applied = join_all(members.iter_mut().map(|m| m.servers_apply(kill_sessions))).await;
    for (i, r) in applied.iter().enumerate() {
        let e = &mut report.edges[i];
        match r {
            Ok(line) => {
                e.result = "changed".to_string();
                e.detail = line.clone();
            }
            Err(err) => {
                e.result = "failed".to_string();
                e.detail = err.to_string();
            }
        }
    }
    if applied.iter().all(Result::is_ok) {
        let waited = match wait {
            Some(w) => drain_wait(members, w, &mut report).await,
            None => Ok(()),
        };
        for m in members.iter_mut() {
            m.servers_release().await;
        }
        return waited.map(|()| report);
    }
    let ok: Vec<bool> = applied.iter().map(Result::is_ok).collect();
    // An edge whose HAProxy took part of the change before it failed (exit 5 on its own) is
    // not "nothing changed" for the fleet either.
    let live = applied
        .iter()
        .any(|r| matches!(r, Err(e) if e.kind() == ErrorKind::Unfinished));
    Err(put_back(members, &ok, live, decision, report).await)
}

/// After the change failed on some edge: every edge it was applied on (`applied[i]`) put back,
/// every edge released; the failure says whether every one is back. `live`: a failed edge
/// kept part of the change (its line says what), so the fleet did not end as before (exit 5).
async fn put_back(
    members: &mut [Member],
    applied: &[bool],
    live: bool,
    decision: AdminDecision,
    mut report: FleetChange,
) -> EdgeError {
    let mut all_back = true;
    for (i, m) in members.iter_mut().enumerate() {
        if applied[i] {
            let e = &mut report.edges[i];
            match m.servers_restore().await {
                Ok(words) => {
                    e.result = "put-back".to_string();
                    e.detail = words;
                }
                Err(err) => {
                    all_back = false;
                    e.result = "NOT PUT BACK".to_string();
                    e.detail = err.to_string();
                }
            }
        }
        m.servers_release().await;
    }
    let names: Vec<&str> = (0..applied.len())
        .filter(|i| !applied[*i])
        .map(|i| report.edges[i].edge.as_str())
        .collect();
    let message = format!(
        "fleet {} failed on {}; {}{}",
        decision.as_str(),
        names.join(", "),
        if all_back {
            "every other edge was put back"
        } else {
            "NOT every other edge could be put back: `vezasock status --fleet …` shows each"
        },
        if live {
            "; part of the change is live on the failed edge (its line says what): run the \
             same command again to finish it"
        } else {
            ""
        }
    );
    EdgeError::Fleet(Box::new(FleetFailure {
        message,
        kind: if all_back && !live {
            ErrorKind::PutBack
        } else {
            ErrorKind::Unfinished
        },
        stop: None,
        outcome: Outcome::Change(report),
    }))
}

/// After a fleet drain: every edge waits for its servers at once; when every edge drained, the
/// `then` change on every edge. Still busy anywhere is exit 1 (every edge left in drain, as
/// one edge's `drain --wait`) unless `busy_fails` is off; a `then` that fails on an edge is
/// that edge's error and exit code, with each edge's state (drained and in maintenance are both
/// out of rotation).
async fn drain_wait(
    members: &mut [Member],
    wait: DrainWait,
    report: &mut FleetChange,
) -> Result<(), EdgeError> {
    let n = members.len();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let done = &done;
    let all = join_all(members.iter_mut().map(|m| async move {
        let r = m.servers_wait(wait.limit).await;
        done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        r
    }));
    let every = std::time::Duration::from_millis(500);
    let waited = crate::edge::progress::around(all, every, |took| {
        format!(
            "draining on {n} edge(s): {} of {n} done, {} of {}",
            done.load(std::sync::atomic::Ordering::Relaxed),
            crate::edge::progress::seconds(took),
            crate::edge::progress::seconds(wait.limit)
        )
    })
    .await;
    let mut busy = None;
    for (i, r) in waited.into_iter().enumerate() {
        let e = &mut report.edges[i];
        match r {
            Ok(line) => {
                e.result = "drained".to_string();
                e.detail = format!("{}; {line}", e.detail);
            }
            Err(err) => {
                e.result = "busy".to_string();
                e.detail = err.to_string();
                busy.get_or_insert((i, err));
            }
        }
    }
    if !wait.busy_fails && busy.is_some() {
        return Ok(());
    }
    if let Some((i, error)) = busy {
        let message = format!(
            "fleet drain: edge {} still busy after {:.1}s: every edge left in drain",
            report.edges[i].edge,
            wait.limit.as_secs_f64()
        );
        return Err(FleetFailure::refused(
            message,
            &error,
            Outcome::Change(report.clone()),
        ));
    }
    let Some((decision, kill_sessions)) = wait.then else {
        return Ok(());
    };
    let then = join_all(
        members
            .iter_mut()
            .map(|m| m.servers_then(decision, kill_sessions)),
    )
    .await;
    let mut failed = Vec::new();
    let mut first = None;
    for (i, r) in then.into_iter().enumerate() {
        let e = &mut report.edges[i];
        match r {
            Ok(line) => {
                e.result = format!("drained, then {}", decision.as_str());
                e.detail = format!("{}; {line}", e.detail);
            }
            Err(err) => {
                e.result = format!("drained, {} failed", decision.as_str());
                e.detail = format!("{}; {err}", e.detail);
                failed.push(e.edge.clone());
                first.get_or_insert(err);
            }
        }
    }
    let Some(error) = first else {
        return Ok(());
    };
    let message = format!(
        "fleet drain: every edge drained, but {} failed on {} (left in drain there)",
        decision.as_str(),
        failed.join(", ")
    );
    Err(FleetFailure::refused(
        message,
        &error,
        Outcome::Change(report.clone()),
    ))
}
