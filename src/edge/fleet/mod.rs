//! Several edges, one transaction (issue 14): a flip lands on every edge of the fleet or on
//! none. The coordinator runs the flip engine's *prepare* half ([`crate::edge::transaction`])
//! on every edge in parallel, then the *commit* half on every edge back to back, then verifies
//! and records on every edge.
//!
//! | step | every edge | a failure |
//! |---|---|---|
//! | prepare (parallel) | lock, read, gate, intent, stage (new map version, pending file) | abort everywhere: nothing changed (the failing edge's exit code) |
//! | commit-disk (parallel) | pending file over the map file | every edge's disk put back: nothing changed (exit 3) |
//! | commit-runtime (first edge, then the rest at once) | `commit map @ver` | the committed edges put back (exit 3 when every put-back is confirmed, else 5) |
//! | verify (parallel) | read back | every edge put back (exit 3 when every put-back is confirmed, else 5) |
//! | record (parallel) | history, state file, journal | exit 5 naming the edge (live and verified on every edge, not recorded there) |
//!
//! The fleet journal (`<fleet state_dir>/journal.jsonl`) has one operation per fleet
//! transaction: `intent` (prepare), `disk-written` (committing), `runtime-applied` (every edge
//! committed), `done`; or `rolled-back` / `failed`. `apply` on the fleet reads it to decide the
//! color of an env whose edges disagree after a crash ([`apply`]).

pub mod agent;
pub mod member;
pub mod protocol;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::future::join_all;
use serde::Serialize;

use self::member::{Hold, Member};
use self::protocol::EdgeSummary;
use super::flip::{ms, LockWait, SwitchRequest};
use super::EdgeError;
use crate::state::{AdminDecision, Operation, Phase, StateDir};
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

/// What a fleet switch did.
#[derive(Debug, Clone, Serialize)]
pub struct FleetReport {
    pub env: String,
    pub to: Color,
    pub transaction: String,
    pub edges: Vec<EdgeOutcome>,
    /// `--dry-run`: every edge read and gated, nothing changed (no transaction, no commit).
    pub dry_run: bool,
    /// `--drain-old`: the old color drained on every edge after the flip (absent without it,
    /// or when no edge switched).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drain_old: Option<FleetChange>,
    /// From the first to the last edge's `commit map` answer, in milliseconds.
    pub commit_skew_ms: f64,
    pub total_ms: f64,
}

/// Why a fleet operation stopped, with every edge's final state.
#[derive(Debug)]
pub struct FleetFailure {
    pub message: String,
    pub kind: FailureKind,
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

/// Which exit a fleet failure gets.
#[derive(Debug)]
pub enum FailureKind {
    /// An edge refused (a prepare: every edge was aborted; a drain still busy at its
    /// deadline: every edge left in drain): that edge's error, and its exit code.
    Refused(Box<EdgeError>),
    /// A commit failed and every committed edge was put back, confirmed (exit 3).
    PutBack,
    /// Some edge is not where the fleet should be, or could not be confirmed (exit 5).
    NotPutBack,
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

/// A fresh fleet transaction id.
fn new_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("fleet-{nanos:x}-{}", std::process::id())
}

/// The fleet journal.
pub fn journal(fleet: &Fleet) -> StateDir {
    StateDir::single(fleet.state_dir.clone())
}

/// Flips `req.env` to `req.color` on every member, or on none.
pub async fn switch(
    fleet: &Fleet,
    members: &mut [Member],
    req: &SwitchRequest,
    ttl: Duration,
) -> Result<FleetReport, EdgeError> {
    let started = Instant::now();
    let id = new_id();
    let names: Vec<String> = members.iter().map(|m| m.name().to_string()).collect();
    let mut report = FleetReport {
        env: req.env.clone(),
        to: req.color,
        transaction: id.clone(),
        edges: names
            .iter()
            .map(|n| EdgeOutcome {
                edge: n.clone(),
                from: None,
                to: req.color,
                result: "not reached".to_string(),
                ms: 0.0,
                detail: String::new(),
            })
            .collect(),
        dry_run: req.dry_run,
        drain_old: None,
        commit_skew_ms: 0.0,
        total_ms: 0.0,
    };
    if req.dry_run {
        report.transaction.clear();
        return dry_run(members, req, report, started).await;
    }
    let fj = journal(fleet);
    // Prepare: every edge locked ([`hold_all`]: at once, or in name order when one is busy),
    // then the rest of the prepare on every edge in parallel.
    let wait = req.wait_healthy.unwrap_or(Duration::ZERO);
    let (prepared, unlocked) = prepare_all(members, req, &id, ttl, wait).await;
    for (i, (result, took)) in prepared.iter().enumerate() {
        let e = &mut report.edges[i];
        e.ms = ms(*took);
        match result {
            Ok(info) => {
                e.from = Some(info.from);
                e.result = "prepared".to_string();
                e.detail = format!("map version {} staged", info.version);
            }
            Err(err) => {
                e.result = "refused".to_string();
                e.detail = err.to_string();
            }
        }
    }
    // The edge that decided: the one that could not be locked (the others were only released
    // because of it), else the first that refused its prepare.
    let decided = unlocked.or_else(|| prepared.iter().position(|(r, _)| r.is_err()));
    if let Some((i, Err(refusal))) = decided.map(|i| (i, &prepared[i].0)) {
        let error = clone_error(refusal);
        let ok: Vec<usize> = (0..members.len())
            .filter(|j| prepared[*j].0.is_ok())
            .collect();
        let why = format!("edge {} refused the prepare: {error}", names[i]);
        abort_all(members, &ok, &why, &mut report).await;
        report.total_ms = ms(started.elapsed());
        return Err(EdgeError::Fleet(Box::new(FleetFailure {
            message: format!(
                "fleet switch of {} to {} refused at prepare on edge {}: nothing changed on any edge",
                req.env, req.color, names[i]
            ),
            kind: FailureKind::Refused(Box::new(error)),
            outcome: Outcome::Switch(report),
        })));
    }
    // Every edge prepared: the fleet journal's operation starts here, with the color the edges
    // had (when they agreed), which is where `apply` puts them back if this process dies.
    let froms: Vec<Color> = report.edges.iter().filter_map(|e| e.from).collect();
    let before = froms
        .first()
        .filter(|f| froms.iter().all(|x| x == *f))
        .map(|c| c.as_str());
    let op = Operation::new(
        req.action,
        Some(&req.env),
        before,
        Some(req.color.as_str()),
        &req.who,
    );
    fj.journal_record(
        &op,
        Phase::Intent,
        Some(&format!(
            "fleet transaction {id} prepared on {}",
            names.join(", ")
        )),
    )?;
    pause_point("fleet-after-prepare").await;

    // Commit, disk half, in parallel.
    fj.journal_record(
        &op,
        Phase::DiskWritten,
        Some(&format!("fleet transaction {id} committing")),
    )?;
    let disks = join_all(members.iter_mut().map(|m| m.commit_disk())).await;
    if let Some(i) = disks.iter().position(Result::is_err) {
        let why = format!(
            "edge {}: the commit's disk step failed: {}",
            names[i],
            disks[i]
                .as_ref()
                .err()
                .map(ToString::to_string)
                .unwrap_or_default()
        );
        let others: Vec<usize> = (0..members.len()).filter(|j| disks[*j].is_ok()).collect();
        let all_back = undo_all(members, &others, &why, &mut report).await;
        report.edges[i].result = "put-back".to_string();
        report.edges[i].detail = why.clone();
        return Err(fail_after_commit(&fj, &op, why, all_back, report, started));
    }

    // Commit, runtime half: the first edge, then every other at once.
    let mut answered: Vec<Option<Instant>> = vec![None; members.len()];
    let mut commits: Vec<Result<String, EdgeError>> = Vec::with_capacity(members.len());
    if let Some((first, rest)) = members.split_first_mut() {
        let r = first.commit_runtime().await;
        answered[0] = Some(Instant::now());
        commits.push(r);
        pause_point("fleet-after-first-commit").await;
        let rest = join_all(rest.iter_mut().map(|m| async move {
            let r = m.commit_runtime().await;
            (r, Instant::now())
        }))
        .await;
        for (j, (r, at)) in rest.into_iter().enumerate() {
            answered[j + 1] = Some(at);
            commits.push(r);
        }
    }
    let times: Vec<Instant> = answered.iter().flatten().copied().collect();
    if let (Some(a), Some(b)) = (times.iter().min(), times.iter().max()) {
        report.commit_skew_ms = ms(*b - *a);
    }
    if commits.iter().any(Result::is_err) {
        let failed: Vec<usize> = (0..members.len())
            .filter(|j| commits[*j].is_err())
            .collect();
        let why = failed
            .iter()
            .map(|j| {
                format!(
                    "edge {}: {}",
                    names[*j],
                    commits[*j]
                        .as_ref()
                        .err()
                        .map(ToString::to_string)
                        .unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        let mut all_back = true;
        for j in &failed {
            let e = &mut report.edges[*j];
            // Exit 5 on the edge: traffic may have moved there, not confirmed back.
            let unfinished = matches!(&commits[*j], Err(EdgeError::Remote { exit: 5, .. }));
            e.result = if unfinished {
                "NOT PUT BACK"
            } else {
                "put-back"
            }
            .to_string();
            e.detail = commits[*j]
                .as_ref()
                .err()
                .map(ToString::to_string)
                .unwrap_or_default();
            all_back &= !unfinished;
        }
        let ok: Vec<usize> = (0..members.len()).filter(|j| commits[*j].is_ok()).collect();
        all_back &= undo_all(
            members,
            &ok,
            &format!("commit failed elsewhere: {why}"),
            &mut report,
        )
        .await;
        return Err(fail_after_commit(&fj, &op, why, all_back, report, started));
    }
    // Read back on every edge, in parallel: an edge lost after its commit (or reading back
    // something else) puts every edge back before anything is recorded.
    let verified = join_all(members.iter_mut().map(|m| m.verify())).await;
    if verified.iter().any(Result::is_err) {
        let bad: Vec<usize> = (0..members.len())
            .filter(|j| verified[*j].is_err())
            .collect();
        let why = bad
            .iter()
            .map(|j| {
                format!(
                    "edge {}: {}",
                    names[*j],
                    verified[*j]
                        .as_ref()
                        .err()
                        .map(ToString::to_string)
                        .unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        let every: Vec<usize> = (0..members.len()).collect();
        let all_back = undo_all(
            members,
            &every,
            &format!("read-back failed: {why}"),
            &mut report,
        )
        .await;
        return Err(fail_after_commit(&fj, &op, why, all_back, report, started));
    }
    fj.journal_record(
        &op,
        Phase::RuntimeApplied,
        Some(&format!(
            "fleet transaction {id}: every edge committed and read back"
        )),
    )?;

    // Record, in parallel.
    let finished = join_all(members.iter_mut().map(|m| m.record())).await;
    let mut unfinished = Vec::new();
    for (i, r) in finished.iter().enumerate() {
        let e = &mut report.edges[i];
        e.ms = ms(started.elapsed());
        match r {
            Ok(()) => {
                e.result = if e.from == Some(req.color) {
                    "already"
                } else {
                    "switched"
                }
                .to_string();
                e.detail = format!("{} is {}", req.env, req.color);
            }
            Err(err) => {
                e.result = "unfinished".to_string();
                e.detail = err.to_string();
                unfinished.push(names[i].clone());
            }
        }
    }
    report.total_ms = ms(started.elapsed());
    if !unfinished.is_empty() {
        let why = format!(
            "every edge committed and read back {} on {}, but {} did not record it",
            req.env,
            req.color,
            unfinished.join(", ")
        );
        let _ = fj.journal_record(&op, Phase::Failed, Some(&why));
        return Err(EdgeError::Fleet(Box::new(FleetFailure {
            message: format!(
                "{why}; `vezasock switch --fleet … {} {}` finishes it",
                req.env, req.color
            ),
            kind: FailureKind::NotPutBack,
            outcome: Outcome::Switch(report),
        })));
    }
    // Not fsynced: every edge's record is; a lost line only shows the transaction open until
    // `apply --fleet` closes it (`StateDir::journal_record_unsynced`).
    fj.journal_record_unsynced(&op, Phase::Done, Some(&format!("fleet transaction {id}")))?;
    if req.drain_old && report.edges.iter().any(|e| e.result == "switched") {
        report.drain_old = Some(drain_old(members, req).await?);
        report.total_ms = ms(started.elapsed());
    }
    Ok(report)
}

/// `--drain-old` after a fleet flip that is verified and recorded on every edge: the old color
/// drained on every edge, each waiting up to `drain_timeout` for its sessions (still busy then
/// is reported, the servers left in drain, as on one edge). A drain that fails keeps its own
/// exit code and says the flip is done.
async fn drain_old(members: &mut [Member], req: &SwitchRequest) -> Result<FleetChange, EdgeError> {
    let old = req.color.other();
    let selection = crate::edge::servers::Selection::Env {
        env: req.env.clone(),
        color: Some(old),
        component: None,
        server: None,
    };
    let wait = DrainWait {
        limit: req.drain_timeout,
        then: None,
        busy_fails: false,
    };
    // The old color is no longer live on any edge: the live-color guard has nothing to say.
    servers_change(
        members,
        &selection,
        AdminDecision::Drain,
        (false, false),
        req.lock_wait,
        Some(wait),
    )
    .await
    .map_err(|e| EdgeError::DrainOld {
        done: format!(
            "{} switched to {} on every edge (verified and recorded)",
            req.env, req.color
        ),
        finish: format!("vezasock drain --fleet … {} {old}", req.env),
        source: Box::new(e),
    })
}

/// `--dry-run` on a fleet: every edge reads and gates the flip at once (no lock, nothing
/// written); a refusal anywhere is that edge's error, with every edge's answer.
async fn dry_run(
    members: &mut [Member],
    req: &SwitchRequest,
    mut report: FleetReport,
    started: Instant,
) -> Result<FleetReport, EdgeError> {
    let answers = join_all(members.iter_mut().map(|m| async move {
        let t = Instant::now();
        (m.dry_run(req).await, t.elapsed())
    }))
    .await;
    let mut refused = None;
    for (i, (answer, took)) in answers.into_iter().enumerate() {
        let e = &mut report.edges[i];
        e.ms = ms(took);
        match answer {
            Ok((from, noop, detail)) => {
                e.from = Some(from);
                e.result = if noop { "already" } else { "would switch" }.to_string();
                e.detail = detail;
            }
            Err(err) => {
                e.result = "refused".to_string();
                e.detail = err.to_string();
                refused.get_or_insert((i, err));
            }
        }
    }
    report.total_ms = ms(started.elapsed());
    match refused {
        None => Ok(report),
        Some((i, error)) => Err(EdgeError::Fleet(Box::new(FleetFailure {
            message: format!(
                "fleet dry run of {} to {}: edge {} would refuse; nothing was changed on any edge",
                req.env, req.color, report.edges[i].edge
            ),
            kind: FailureKind::Refused(Box::new(error)),
            outcome: Outcome::Switch(report),
        }))),
    }
}

/// Takes every edge's lock for `what`. First every edge at once, none waiting: the usual case
/// (nothing else runs on the fleet) costs one lock's time, not one per edge. When an edge is
/// busy, the locks taken are released and every edge is locked again one after the other in
/// the order of their names, each waiting up to `wait`: two coordinators never each hold an
/// edge the other waits for (nobody waits in the first round, everybody waits in one order in
/// the second). `Err` names the edge that could not be locked; no lock is held then.
async fn hold_all(
    members: &mut [Member],
    what: &Hold<'_>,
    wait: LockWait,
) -> Result<(), (usize, EdgeError)> {
    let first = join_all(members.iter_mut().map(|m| m.hold(what, LockWait::No))).await;
    if first.iter().all(Result::is_ok) {
        return Ok(());
    }
    for (m, r) in members.iter_mut().zip(&first) {
        if r.is_ok() {
            m.release(what).await;
        }
    }
    let busy = |r: &Result<(), EdgeError>| matches!(r, Err(EdgeError::Remote { exit: 4, .. }));
    let order = name_order(members);
    // An edge that refused for another reason than a busy lock would refuse again: report it;
    // so is a busy edge when the caller does not wait.
    let refused = order
        .iter()
        .copied()
        .find(|i| first[*i].is_err() && (!busy(&first[*i]) || matches!(wait, LockWait::No)));
    if let Some(i) = refused {
        let error = first
            .into_iter()
            .nth(i)
            .and_then(Result::err)
            .unwrap_or_else(|| EdgeError::Refused("not locked".to_string()));
        return Err((i, error));
    }
    for (n, &i) in order.iter().enumerate() {
        if let Err(e) = members[i].hold(what, wait).await {
            for &j in &order[..n] {
                members[j].release(what).await;
            }
            return Err((i, e));
        }
    }
    Ok(())
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
    let waited = join_all(members.iter_mut().map(|m| m.servers_wait(wait.limit))).await;
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
        return Err(EdgeError::Fleet(Box::new(FleetFailure {
            message: format!(
                "fleet drain: edge {} still busy after {:.1}s: every edge left in drain",
                report.edges[i].edge,
                wait.limit.as_secs_f64()
            ),
            kind: FailureKind::Refused(Box::new(error)),
            outcome: Outcome::Change(report.clone()),
        })));
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
    Err(EdgeError::Fleet(Box::new(FleetFailure {
        message: format!(
            "fleet drain: every edge drained, but {} failed on {} (left in drain there)",
            decision.as_str(),
            failed.join(", ")
        ),
        kind: FailureKind::Refused(Box::new(error)),
        outcome: Outcome::Change(report.clone()),
    })))
}

/// The members' indices in the order of their names: the one order every fleet operation
/// locks edges in, so two coordinators never each hold an edge the other waits for.
fn name_order(members: &[Member]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..members.len()).collect();
    order.sort_by(|a, b| members[*a].name().cmp(members[*b].name()));
    order
}

/// Each member's prepare result and how long it took.
type Prepared = Vec<(Result<member::PrepareInfo, EdgeError>, Duration)>;

/// The prepare of every member: every lock ([`hold_all`]), then read/gate/intent/stage in
/// parallel. Each member's result and how long it took, and the edge that could not be locked
/// (`None`: every edge was); after a lock failure no edge is locked and every other edge's
/// result says which edge stopped it.
async fn prepare_all(
    members: &mut [Member],
    req: &SwitchRequest,
    id: &str,
    ttl: Duration,
    wait: Duration,
) -> (Prepared, Option<usize>) {
    let started = Instant::now();
    if let Err((failed, error)) = hold_all(members, &Hold::Flip(req), req.lock_wait).await {
        let name = members[failed].name().to_string();
        let results = (0..members.len())
            .map(|i| {
                let why = if i == failed {
                    clone_error(&error)
                } else {
                    EdgeError::Refused(format!("not prepared: edge {name} could not be locked"))
                };
                (Err(why), started.elapsed())
            })
            .collect();
        return (results, Some(failed));
    }
    let results = join_all(members.iter_mut().map(|m| async move {
        let t = Instant::now();
        (m.prepare(id, ttl, wait).await, t.elapsed())
    }))
    .await;
    (results, None)
}

/// A copy of an edge error for the report (the originals stay with their edges).
fn clone_error(e: &EdgeError) -> EdgeError {
    match e {
        EdgeError::BadInput(m) => EdgeError::BadInput(m.clone()),
        EdgeError::Refused(m) => EdgeError::Refused(m.clone()),
        EdgeError::Remote {
            edge,
            message,
            exit,
        } => EdgeError::Remote {
            edge: edge.clone(),
            message: message.clone(),
            exit: *exit,
        },
        EdgeError::State(s) if s.is_locked() => EdgeError::Remote {
            edge: String::new(),
            message: s.to_string(),
            exit: 4,
        },
        EdgeError::Runtime(r) if !r.is_refused() => EdgeError::Remote {
            edge: String::new(),
            message: r.to_string(),
            exit: 3,
        },
        other => EdgeError::Refused(other.to_string()),
    }
}

async fn abort_all(members: &mut [Member], which: &[usize], why: &str, report: &mut FleetReport) {
    let results = join_all(
        members
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| which.contains(i))
            .map(|(i, m)| async move { (i, m.abort(why).await) }),
    )
    .await;
    for (i, r) in results {
        let e = &mut report.edges[i];
        match r {
            Ok(_) => {
                e.result = "aborted".to_string();
                e.detail = "nothing changed".to_string();
            }
            Err(err) => {
                e.result = "abort failed".to_string();
                e.detail =
                    format!("{err}; it expires by itself, `vezasock apply --fleet …` aborts it");
            }
        }
    }
}

/// Undoes the commit on `which`; true when every put-back was confirmed.
async fn undo_all(
    members: &mut [Member],
    which: &[usize],
    why: &str,
    report: &mut FleetReport,
) -> bool {
    let results = join_all(
        members
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| which.contains(i))
            .map(|(i, m)| async move { (i, m.undo(why).await) }),
    )
    .await;
    let mut all = true;
    for (i, r) in results {
        let e = &mut report.edges[i];
        match r {
            Ok(words) => {
                e.result = "put-back".to_string();
                e.detail = words;
            }
            Err(words) => {
                all = false;
                e.result = "NOT PUT BACK".to_string();
                e.detail = words;
            }
        }
    }
    all
}

fn fail_after_commit(
    fj: &StateDir,
    op: &Operation,
    why: String,
    all_back: bool,
    mut report: FleetReport,
    started: Instant,
) -> EdgeError {
    report.total_ms = ms(started.elapsed());
    let (phase, message, kind) = if all_back {
        (
            Phase::RolledBack,
            format!("fleet switch of {} to {} failed in its commit and every edge was put back on its color before: {why}", report.env, report.to),
            FailureKind::PutBack,
        )
    } else {
        (
            Phase::Failed,
            format!(
                "fleet switch of {} to {} failed in its commit and NOT every edge is confirmed back: {why}; \
                 `vezasock status --fleet …` shows each edge, `vezasock apply --fleet …` repairs them",
                report.env, report.to
            ),
            FailureKind::NotPutBack,
        )
    };
    let _ = fj.journal_record(op, phase, Some(&why));
    EdgeError::Fleet(Box::new(FleetFailure {
        message,
        kind,
        outcome: Outcome::Switch(report),
    }))
}

/// One edge in a fleet status.
#[derive(Debug, Clone, Serialize)]
pub struct EdgeStatusEntry {
    pub edge: String,
    pub summary: Option<EdgeSummary>,
    pub status: Option<serde_json::Value>,
    pub error: Option<String>,
    /// The exit code the error gives (3: unreachable).
    #[serde(skip)]
    pub exit: u8,
}

/// The fleet side by side.
#[derive(Debug, Clone, Serialize)]
pub struct FleetStatus {
    pub edges: Vec<EdgeStatusEntry>,
    /// `DRIFT across edges on ENV: a=green b=blue`, one line per env.
    pub drift: Vec<String>,
    /// Fleet transactions the journal has not closed (a coordinator that died), then each
    /// edge's open transaction (`on edge NAME: transaction ID …`, also one staged there with
    /// `txn prepare`).
    pub open_transactions: Vec<String>,
}

impl FleetStatus {
    /// Exit 6 on drift across or within edges and on open transactions; else 3 when an edge
    /// was not reached; else 0.
    pub fn exit_code(&self) -> u8 {
        let edge_problems = self
            .edges
            .iter()
            .any(|e| e.summary.as_ref().is_some_and(|s| !s.problems.is_empty()));
        if !self.drift.is_empty() || !self.open_transactions.is_empty() || edge_problems {
            6
        } else if self.edges.iter().any(|e| e.error.is_some()) {
            3
        } else {
            0
        }
    }
}

/// Reads every edge's status in parallel and compares their colors.
pub async fn status(fleet: &Fleet, members: &mut [Member]) -> Result<FleetStatus, EdgeError> {
    let results = join_all(members.iter_mut().map(|m| async move {
        let name = m.name().to_string();
        (name, m.status().await)
    }))
    .await;
    let edges: Vec<EdgeStatusEntry> = results
        .into_iter()
        .map(|(edge, r)| match r {
            Ok((summary, status)) => EdgeStatusEntry {
                edge,
                summary: Some(summary),
                status: Some(status),
                error: None,
                exit: 0,
            },
            Err(e) => EdgeStatusEntry {
                edge,
                summary: None,
                status: None,
                exit: match &e {
                    EdgeError::Remote { exit, .. } => *exit,
                    _ => 3,
                },
                error: Some(e.to_string()),
            },
        })
        .collect();
    let drift = cross_edge_drift(&edges);
    let mut open_transactions: Vec<String> = journal(fleet)
        .open_operations()?
        .into_iter()
        .map(|o| o.to_string())
        .collect();
    // Each edge's own open transaction too: one staged by `txn prepare` there has no line in
    // the fleet journal.
    open_transactions.extend(edges.iter().filter_map(|e| {
        let t = e.summary.as_ref()?.transaction.as_ref()?;
        Some(format!("on edge {}: {t}", e.edge))
    }));
    Ok(FleetStatus {
        edges,
        drift,
        open_transactions,
    })
}

/// One edge's live and recorded color of an env.
type Side = (String, Option<Color>, Option<Color>);

/// One line per env whose live or recorded color differs between edges.
fn cross_edge_drift(edges: &[EdgeStatusEntry]) -> Vec<String> {
    let mut envs: Vec<String> = Vec::new();
    for s in edges.iter().filter_map(|e| e.summary.as_ref()) {
        for c in &s.envs {
            if !envs.contains(&c.env) {
                envs.push(c.env.clone());
            }
        }
    }
    let mut out = Vec::new();
    for env in envs {
        let sides: Vec<Side> = edges
            .iter()
            .filter_map(|e| {
                let s = e.summary.as_ref()?;
                let c = s.envs.iter().find(|c| c.env == env)?;
                Some((e.edge.clone(), c.live, c.recorded))
            })
            .collect();
        let differ = |f: fn(&Side) -> Option<Color>| sides.windows(2).any(|w| f(&w[0]) != f(&w[1]));
        if differ(|s| s.1) || differ(|s| s.2) {
            let word = |c: Option<Color>| c.map_or("?", Color::as_str);
            let each: Vec<String> = sides
                .iter()
                .map(|(e, live, rec)| {
                    if live == rec {
                        format!("{e}={}", word(*live))
                    } else {
                        format!("{e}={} (recorded {})", word(*live), word(*rec))
                    }
                })
                .collect();
            out.push(format!("DRIFT across edges on {env}: {}", each.join(" ")));
        }
    }
    out
}

/// What a fleet apply did.
#[derive(Debug, Clone, Serialize)]
pub struct FleetApply {
    /// Each edge's repair, one line.
    pub repaired: Vec<EdgeOutcome>,
    /// Envs flipped to one color across the fleet, with the reason.
    pub resolved: Vec<String>,
    /// Envs left disagreeing, with the command to run.
    pub unresolved: Vec<String>,
}

/// The color every edge of `env` goes to after a coordinator died: the last unfinished fleet
/// transaction of that env says it (its color when every edge had committed, else the color
/// the edges had before it). `None`: no such transaction, or the edges had differed before it.
pub fn resolve_color(fleet: &Fleet, env: &str) -> Result<Option<Color>, EdgeError> {
    let open = journal(fleet).open_operations()?;
    let Some(op) = open.iter().rev().find(|o| o.env.as_deref() == Some(env)) else {
        return Ok(None);
    };
    let color = if op.last_phase == Phase::RuntimeApplied {
        &op.after
    } else {
        &op.before
    };
    Ok(color.as_deref().and_then(Color::parse))
}

/// Closes the fleet journal's open operations of `env` (resolved by apply).
pub fn close_open(fleet: &Fleet, env: &str, why: &str) -> Result<(), EdgeError> {
    let fj = journal(fleet);
    for o in fj
        .open_operations()?
        .into_iter()
        .filter(|o| o.env.as_deref() == Some(env))
    {
        let op = Operation {
            op_id: o.op_id.clone(),
            who: crate::state::who(),
            env: o.env.clone(),
            action: o.action,
            before: o.before.clone(),
            after: o.after.clone(),
        };
        fj.journal_record(&op, Phase::RolledBack, Some(why))?;
    }
    Ok(())
}

/// The deploy a fleet rollback of `env` goes back to: every edge's history must name the
/// same one (color and sha), else the rollback is refused naming the edges that differ.
pub async fn rollback_target(
    members: &mut [Member],
    env: &str,
    to: Option<&str>,
) -> Result<(Color, Option<String>), EdgeError> {
    let mut targets = Vec::with_capacity(members.len());
    for m in members.iter_mut() {
        let name = m.name().to_string();
        let target = m.rollback_target(env, to).await.map_err(|e| {
            EdgeError::Refused(format!("rollback of {env} refused on edge {name}: {e}"))
        })?;
        targets.push((name, target));
    }
    let Some((_, first)) = targets.first().cloned() else {
        return Err(EdgeError::BadInput("the fleet has no edge".to_string()));
    };
    if targets.iter().any(|(_, t)| *t != first) {
        let each: Vec<String> = targets
            .iter()
            .map(|(n, (c, sha))| format!("{n}={c} ({})", sha.as_deref().unwrap_or("no sha")))
            .collect();
        return Err(EdgeError::Refused(format!(
            "the edges' histories name different deploys to roll {env} back to: {}; \
             `vezasock switch --fleet … {env} COLOR` puts every edge on one color",
            each.join(", ")
        )));
    }
    Ok(first)
}

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
    lock_wait: super::flip::LockWait,
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
        return Err(EdgeError::Fleet(Box::new(FleetFailure {
            message: format!(
                "fleet {} refused on edge {name}: nothing changed on any edge",
                decision.as_str()
            ),
            kind: FailureKind::Refused(Box::new(clone_error(&error))),
            outcome: Outcome::Change(report),
        })));
    }
    let applied = join_all(members.iter_mut().map(|m| m.servers_apply(kill_sessions))).await;
    let failed: Vec<usize> = (0..applied.len())
        .filter(|i| applied[*i].is_err())
        .collect();
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
    if failed.is_empty() {
        let waited = match wait {
            Some(w) => drain_wait(members, w, &mut report).await,
            None => Ok(()),
        };
        for m in members.iter_mut() {
            m.servers_release().await;
        }
        return waited.map(|()| report);
    }
    let mut all_back = true;
    for (i, m) in members.iter_mut().enumerate() {
        if applied[i].is_ok() {
            match m.servers_restore().await {
                Ok(words) => {
                    report.edges[i].result = "put-back".to_string();
                    report.edges[i].detail = words;
                }
                Err(e) => {
                    all_back = false;
                    report.edges[i].result = "NOT PUT BACK".to_string();
                    report.edges[i].detail = e.to_string();
                }
            }
        }
        m.servers_release().await;
    }
    let names: Vec<&str> = failed
        .iter()
        .map(|i| report.edges[*i].edge.as_str())
        .collect();
    let message = format!(
        "fleet {} failed on {}; {}",
        decision.as_str(),
        names.join(", "),
        if all_back {
            "every other edge was put back"
        } else {
            "NOT every other edge could be put back: `vezasock status --fleet …` shows each"
        }
    );
    Err(EdgeError::Fleet(Box::new(FleetFailure {
        message,
        kind: if all_back {
            FailureKind::PutBack
        } else {
            FailureKind::NotPutBack
        },
        outcome: Outcome::Change(report),
    })))
}

#[cfg(test)]
mod tests {
    //! [`hold_all`] against scripted edges (channel conversations answered by a test task):
    //! the order and the waits of the lock requests, not HAProxy (the fleet tests in
    //! `integration/fleet_*.rs` run the real thing).

    use std::sync::{Arc, Mutex};

    use super::agent::{channel, Conversation};
    use super::member::{Link, Member};
    use super::protocol::{Request, Response};
    use super::*;

    /// What the scripted edges were asked, in the order asked: (edge, step, waits).
    type Log = Arc<Mutex<Vec<(String, &'static str, bool)>>>;

    /// An edge answering every request; its `n`-th lock (from 0) is refused with `exit` when
    /// `refuse(n)` says so.
    fn scripted(name: &str, log: &Log, refuse: fn(usize) -> Option<u8>) -> Member {
        let (link, mut server) = channel(|_| 0);
        let (name_owned, log) = (name.to_string(), Arc::clone(log));
        tokio::spawn(async move {
            let mut locks = 0;
            while let Some(request) = server.next().await {
                let waits = matches!(
                    &request,
                    Request::Lock {
                        lock_wait_ms: Some(_),
                        ..
                    }
                );
                if let Ok(mut l) = log.lock() {
                    l.push((name_owned.clone(), request.step(), waits));
                }
                let exit = match request {
                    Request::Lock { .. } => {
                        locks += 1;
                        refuse(locks - 1)
                    }
                    _ => None,
                };
                let response = Response {
                    ok: exit.is_none(),
                    exit: exit.unwrap_or(0),
                    detail: exit.map_or("done", |_| "refused").to_string(),
                    ..Response::default()
                };
                server.send(&response).await;
            }
        });
        Member::new(name, Link::Local(link))
    }

    fn asked(log: &Log) -> Vec<(String, &'static str, bool)> {
        log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    fn never(_: usize) -> Option<u8> {
        None
    }

    fn busy_once(n: usize) -> Option<u8> {
        (n == 0).then_some(4)
    }

    fn unreachable(_: usize) -> Option<u8> {
        Some(3)
    }

    /// The locks of a flip of staging to green, waiting `wait`.
    async fn hold(members: &mut [Member], wait: LockWait) -> Result<(), (usize, EdgeError)> {
        let req = SwitchRequest::new("staging", Color::Green);
        hold_all(members, &Hold::Flip(&req), wait).await
    }

    fn run<T>(test: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("{e}"))
            .block_on(test)
    }

    #[test]
    fn every_edge_is_locked_at_once_without_waiting_when_none_is_busy() {
        run(async {
            let log = Log::default();
            let mut members: Vec<Member> = ["edge-c", "edge-a", "edge-b"]
                .iter()
                .map(|n| scripted(n, &log, never))
                .collect();
            let held = hold(&mut members, LockWait::UpTo(Duration::from_secs(5))).await;
            assert!(held.is_ok());
            let asked = asked(&log);
            assert_eq!(asked.len(), 3, "{asked:?}");
            assert!(
                asked
                    .iter()
                    .all(|(_, step, waits)| *step == "lock" && !waits),
                "{asked:?}"
            );
        });
    }

    #[test]
    fn a_busy_edge_releases_the_others_then_every_edge_is_locked_in_name_order_waiting() {
        run(async {
            let log = Log::default();
            let mut members = vec![
                scripted("edge-c", &log, never),
                scripted("edge-b", &log, busy_once),
                scripted("edge-a", &log, never),
            ];
            let held = hold(&mut members, LockWait::UpTo(Duration::from_secs(5))).await;
            assert!(held.is_ok());
            let asked = asked(&log);
            let first: Vec<_> = asked[..3].iter().map(|(_, s, w)| (*s, *w)).collect();
            assert_eq!(first, [("lock", false); 3], "{asked:?}");
            let released: Vec<&str> = asked
                .iter()
                .filter(|(_, s, _)| *s == "abort")
                .map(|(n, _, _)| n.as_str())
                .collect();
            assert_eq!(
                released.len(),
                2,
                "the two edges locked are released: {asked:?}"
            );
            assert!(!released.contains(&"edge-b"), "{asked:?}");
            let second: Vec<(&str, bool)> = asked
                .iter()
                .skip(3)
                .filter(|(_, s, _)| *s == "lock")
                .map(|(n, _, w)| (n.as_str(), *w))
                .collect();
            assert_eq!(
                second,
                [("edge-a", true), ("edge-b", true), ("edge-c", true)],
                "{asked:?}"
            );
        });
    }

    #[test]
    fn a_busy_edge_without_waiting_is_the_error_and_no_lock_is_left() {
        run(async {
            let log = Log::default();
            let mut members = vec![
                scripted("edge-a", &log, never),
                scripted("edge-b", &log, busy_once),
            ];
            let held = hold(&mut members, LockWait::No).await;
            assert!(
                matches!(held, Err((1, EdgeError::Remote { exit: 4, .. }))),
                "{held:?}"
            );
            let asked = asked(&log);
            assert_eq!(
                asked.iter().filter(|(_, s, _)| *s == "lock").count(),
                2,
                "no second round: {asked:?}"
            );
            assert!(
                asked.contains(&("edge-a".to_string(), "abort", false)),
                "{asked:?}"
            );
        });
    }

    #[test]
    fn an_edge_that_refuses_for_another_reason_is_not_tried_again() {
        run(async {
            let log = Log::default();
            let mut members = vec![
                scripted("edge-a", &log, busy_once),
                scripted("edge-b", &log, unreachable),
            ];
            let held = hold(&mut members, LockWait::UpTo(Duration::from_secs(5))).await;
            assert!(
                matches!(held, Err((1, EdgeError::Remote { exit: 3, .. }))),
                "{held:?}"
            );
            let locks = asked(&log).iter().filter(|(_, s, _)| *s == "lock").count();
            assert_eq!(locks, 2, "no second round");
        });
    }
}
