//! `switch --fleet` and `rollback --fleet`: the flip on every edge or on none. The prepare on
//! every edge, then the commit phases ([`Commit`]) in order, each on every edge before the
//! next, with one failure handler ([`FleetFlip::put_back`]); then the record on every edge and
//! `--drain-old`. The phase table is in the module above ([`super`]).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::future::join_all;
use serde::Serialize;

use super::locking::hold_all;
use super::member::{Hold, Member, PrepareInfo};
use super::servers::{servers_change, DrainWait, FleetChange};
use super::{pause_point, EdgeOutcome, FleetFailure, Outcome};
use crate::edge::flip::{ms, FlipPhase, SwitchRequest};
use crate::edge::{EdgeError, ErrorKind, Stop};
use crate::state::{AdminDecision, Operation, Phase, StateDir};
use crate::topology::fleet::Fleet;
use crate::topology::Color;

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
    /// `--bake`: the sum over every edge and each edge's part (absent without it, or when no
    /// edge switched).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bake: Option<Box<super::bake::FleetBake>>,
    /// `--preview-check` answers per edge, preview tokens revoked by the switch.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl FleetReport {
    /// Every edge `not reached` yet.
    fn new(members: &[Member], req: &SwitchRequest, id: String) -> FleetReport {
        FleetReport {
            env: req.env.clone(),
            to: req.color,
            transaction: id,
            edges: members
                .iter()
                .map(|m| EdgeOutcome {
                    edge: m.name().to_string(),
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
            bake: None,
            notes: Vec::new(),
        }
    }
}

/// A fresh fleet transaction id.
fn new_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("fleet-{nanos:x}-{}", std::process::id())
}

/// Flips `req.env` to `req.color` on every member, or on none.
pub async fn switch(
    fleet: &Fleet,
    members: &mut [Member],
    req: &SwitchRequest,
    ttl: Duration,
) -> Result<FleetReport, EdgeError> {
    let started = Instant::now();
    let mut report = FleetReport::new(members, req, new_id());
    if req.dry_run {
        report.transaction.clear();
        if !req.preview_check.is_empty() {
            report.notes.push(format!(
                "preview-check NOT RUN (a dry run sends no request): {} not checked through \
                 any edge",
                req.preview_check.join(", ")
            ));
        }
        return dry_run(members, req, report, started).await;
    }
    if !req.preview_check.is_empty() {
        report = preview_check(members, req, report, started).await?;
    }
    let report = prepare(members, req, ttl, report, started).await?;
    let mut flip = FleetFlip::begin(fleet, members, req, report, started)?;
    pause_point("fleet-after-prepare").await;
    flip.journal(Phase::DiskWritten, "committing")?;
    for phase in Commit::ALL {
        let results = flip.run(phase).await;
        if results.iter().any(Result::is_err) {
            return Err(flip.put_back(phase, &results).await);
        }
    }
    flip.journal(
        Phase::RuntimeApplied,
        ": every edge committed and read back",
    )?;
    flip.record().await?;
    let revoked = super::preview::revoke_after_switch(flip.members, req).await;
    flip.report.notes.extend(revoked);
    if let (Some(duration), true) = (req.bake, flip.switched()) {
        match bake(fleet, flip.members, req, ttl, duration).await {
            Ok(baked) => flip.report.bake = Some(Box::new(baked)),
            Err(f) => {
                if f.stop.put_back {
                    let back = format!(
                        "{} is {} (live and recorded, a rollback)",
                        req.env,
                        req.color.other()
                    );
                    for e in &mut flip.report.edges {
                        e.result = "flipped back".to_string();
                        e.detail = back.clone();
                    }
                }
                flip.report.bake = f.bake.map(Box::new);
                flip.report.total_ms = ms(started.elapsed());
                return Err(flip.fail(f.message, f.kind, Some(f.stop)));
            }
        }
        flip.report.total_ms = ms(started.elapsed());
    }
    flip.drain_old().await
}

/// `--bake` after a fleet switch recorded on every edge ([`super::bake`]): a breach flips every
/// edge back to the other color in one fleet switch, journalled as a rollback (with the sha of
/// the previous deploy when every edge's history names the same one).
async fn bake(
    fleet: &Fleet,
    members: &mut [Member],
    req: &SwitchRequest,
    ttl: Duration,
    duration: Duration,
) -> Result<super::bake::FleetBake, super::bake::BakeFailure> {
    let baked = super::bake::watch_fleet(members, req, duration).await?;
    if baked.verdict != crate::edge::analysis::Verdict::Breach {
        return Ok(baked);
    }
    let old = req.color.other();
    let sha = rollback_target(members, &req.env, None)
        .await
        .ok()
        .filter(|(c, _)| *c == old)
        .and_then(|(_, sha)| sha);
    let mut back = SwitchRequest::new(&req.env, old);
    back.action = crate::state::Action::Rollback;
    back.who = req.who.clone();
    back.lock_wait = req.lock_wait;
    back.sha = sha;
    let flipped = Box::pin(switch(fleet, members, &back, ttl)).await;
    Err(super::bake::after_breach(
        req,
        baked,
        flipped.as_ref().map(drop),
    ))
}

/// `--preview-check` on every edge before any is prepared ([`super::preview::check`]): an
/// edge that answers badly (or cannot be asked) refuses the switch, nothing changed anywhere,
/// with that edge's kind.
async fn preview_check(
    members: &mut [Member],
    req: &SwitchRequest,
    mut report: FleetReport,
    started: Instant,
) -> Result<FleetReport, EdgeError> {
    match super::preview::check(members, req).await {
        Ok(lines) => {
            report
                .notes
                .extend(lines.into_iter().map(|l| format!("preview-check {l}")));
            Ok(report)
        }
        Err((i, error, lines)) => {
            for (e, line) in report.edges.iter_mut().zip(&lines) {
                e.result = "not prepared".to_string();
                e.detail = line.clone();
            }
            report.edges[i].result = "refused".to_string();
            report.total_ms = ms(started.elapsed());
            let message = format!(
                "fleet switch of {} to {} refused: the preview check failed on edge {}; \
                 nothing changed on any edge",
                req.env, req.color, report.edges[i].edge
            );
            Err(FleetFailure::refused(
                message,
                &error,
                Outcome::Switch(report),
            ))
        }
    }
}

/// The commit phases of a fleet flip, in order: each runs on every edge before the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Commit {
    /// The pending file over the map file (parallel).
    Disk,
    /// `commit map @ver`: the first edge, then every other at once.
    Runtime,
    /// The read-back (parallel): an edge lost after its commit (or reading back something
    /// else) puts every edge back before anything is recorded.
    Verify,
}

impl Commit {
    const ALL: [Commit; 3] = [Commit::Disk, Commit::Runtime, Commit::Verify];

    /// The flip phase this is on each edge.
    fn phase(self) -> FlipPhase {
        match self {
            Commit::Disk => FlipPhase::Disk,
            Commit::Runtime => FlipPhase::Runtime,
            Commit::Verify => FlipPhase::Verify,
        }
    }

    /// One edge's failure in this phase, as the message names it.
    fn line(self, edge: &str, error: &EdgeError) -> String {
        match self {
            Commit::Disk => format!("edge {edge}: the commit's disk step failed: {error}"),
            Commit::Runtime | Commit::Verify => format!("edge {edge}: {error}"),
        }
    }

    /// Why the other edges are put back.
    fn undo_reason(self, why: &str) -> String {
        match self {
            Commit::Disk => why.to_string(),
            Commit::Runtime => format!("commit failed elsewhere: {why}"),
            Commit::Verify => format!("read-back failed: {why}"),
        }
    }
}

/// A fleet flip prepared on every edge: the edges, the report of each, the fleet journal's
/// operation (where `apply` puts the edges back if this process dies).
struct FleetFlip<'a> {
    members: &'a mut [Member],
    req: &'a SwitchRequest,
    report: FleetReport,
    journal: StateDir,
    op: Operation,
    /// The color every edge had before (`None`: they differed).
    before: Option<Color>,
    started: Instant,
}

impl<'a> FleetFlip<'a> {
    /// Every edge prepared: the fleet journal's operation starts here, with the color the
    /// edges had (when they agreed).
    fn begin(
        fleet: &Fleet,
        members: &'a mut [Member],
        req: &'a SwitchRequest,
        report: FleetReport,
        started: Instant,
    ) -> Result<FleetFlip<'a>, EdgeError> {
        let froms: Vec<Color> = report.edges.iter().filter_map(|e| e.from).collect();
        let before = froms
            .first()
            .copied()
            .filter(|f| froms.iter().all(|x| x == f));
        let op = Operation::new(
            req.action,
            Some(&req.env),
            before.map(Color::as_str),
            Some(req.color.as_str()),
            &req.who,
        );
        let names: Vec<&str> = members.iter().map(Member::name).collect();
        let prepared = format!(" prepared on {}", names.join(", "));
        let flip = FleetFlip {
            members,
            req,
            report,
            journal: super::journal(fleet),
            op,
            before,
            started,
        };
        flip.journal(Phase::Intent, &prepared)?;
        Ok(flip)
    }

    /// A line of the fleet journal: `fleet transaction ID` and `what`.
    fn journal(&self, phase: Phase, what: &str) -> Result<(), EdgeError> {
        let detail = format!("fleet transaction {}{what}", self.report.transaction);
        self.journal
            .journal_record(&self.op, phase, Some(&detail))?;
        Ok(())
    }

    /// One commit phase on every edge: each edge's result.
    async fn run(&mut self, phase: Commit) -> Vec<Result<(), EdgeError>> {
        match phase {
            Commit::Disk => join_all(self.members.iter_mut().map(|m| m.commit_disk())).await,
            Commit::Runtime => self.commit_runtime().await,
            Commit::Verify => join_all(self.members.iter_mut().map(|m| m.verify())).await,
        }
    }

    /// `commit map` on the first edge, then on every other at once; the skew between the
    /// first and the last answer goes in the report.
    async fn commit_runtime(&mut self) -> Vec<Result<(), EdgeError>> {
        let Some((first, rest)) = self.members.split_first_mut() else {
            return Vec::new();
        };
        let mut results = vec![first.commit_runtime().await.map(drop)];
        let mut answered = vec![Instant::now()];
        pause_point("fleet-after-first-commit").await;
        let rest = join_all(rest.iter_mut().map(|m| async move {
            let r = m.commit_runtime().await.map(drop);
            (r, Instant::now())
        }))
        .await;
        for (r, at) in rest {
            results.push(r);
            answered.push(at);
        }
        if let (Some(a), Some(b)) = (answered.iter().min(), answered.iter().max()) {
            self.report.commit_skew_ms = ms(*b - *a);
        }
        results
    }

    /// The one failure handler of the commit phases: the edges that failed `phase` are
    /// reported (a failed disk step or commit puts its own edge back, unless the edge says it
    /// could not), the others put back (after a failed read-back, every edge), and the failure
    /// says whether every edge is back.
    async fn put_back(&mut self, phase: Commit, results: &[Result<(), EdgeError>]) -> EdgeError {
        let failed: Vec<(usize, &EdgeError)> = results
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.as_ref().err().map(|e| (i, e)))
            .collect();
        let lines: Vec<String> = failed
            .iter()
            .map(|(i, e)| phase.line(&self.report.edges[*i].edge, e))
            .collect();
        let why = lines.join("; ");
        let mut all_back = true;
        if phase != Commit::Verify {
            for ((i, e), line) in failed.iter().zip(&lines) {
                let back = phase == Commit::Disk || e.kind() != ErrorKind::Unfinished;
                let edge = &mut self.report.edges[*i];
                edge.result = if back { "put-back" } else { "NOT PUT BACK" }.to_string();
                edge.detail = if phase == Commit::Disk {
                    line.clone()
                } else {
                    e.to_string()
                };
                all_back &= back;
            }
        }
        let undo: Vec<usize> = (0..results.len())
            .filter(|j| phase == Commit::Verify || results[*j].is_ok())
            .collect();
        let reason = phase.undo_reason(&why);
        all_back &= undo_all(self.members, &undo, &reason, &mut self.report).await;
        self.failed_commit(phase, why, all_back)
    }

    /// The error of a commit that failed: every edge back on its color before (exit 3), or not
    /// confirmed (exit 5); the fleet journal closes or fails the operation.
    fn failed_commit(&mut self, phase: Commit, why: String, all_back: bool) -> EdgeError {
        self.report.total_ms = ms(self.started.elapsed());
        let (env, to) = (&self.req.env, self.req.color);
        let (journal_phase, message, kind) = if all_back {
            (
                Phase::RolledBack,
                format!(
                    "fleet switch of {env} to {to} failed in its commit and every edge was put \
                     back on its color before: {why}"
                ),
                ErrorKind::PutBack,
            )
        } else {
            (
                Phase::Failed,
                format!(
                    "fleet switch of {env} to {to} failed in its commit and NOT every edge is \
                     confirmed back: {why}; `vezasock status --fleet …` shows each edge, \
                     `vezasock apply --fleet …` repairs them"
                ),
                ErrorKind::Unfinished,
            )
        };
        let _ = self
            .journal
            .journal_record(&self.op, journal_phase, Some(&why));
        let stop = Stop {
            phase: phase.phase(),
            live: self.before.filter(|_| all_back),
            recorded: self.before,
            put_back: all_back,
            finish: (!all_back).then(|| "vezasock apply --fleet …".to_string()),
        };
        self.fail(message, kind, Some(stop))
    }

    /// The failure with every edge's line; the report moves into it.
    fn fail(&mut self, message: String, kind: ErrorKind, stop: Option<Stop>) -> EdgeError {
        let report = self.report.clone();
        EdgeError::Fleet(Box::new(FleetFailure {
            message,
            kind,
            stop,
            outcome: Outcome::Switch(report),
        }))
    }

    /// The record phase on every edge, in parallel; an edge that did not record is exit 5
    /// naming it (live and verified on every edge).
    async fn record(&mut self) -> Result<(), EdgeError> {
        let finished = join_all(self.members.iter_mut().map(|m| m.record())).await;
        let (env, to) = (self.req.env.clone(), self.req.color);
        let mut unfinished = Vec::new();
        for (e, r) in self.report.edges.iter_mut().zip(finished) {
            e.ms = ms(self.started.elapsed());
            match r {
                Ok(()) => {
                    let already = e.from == Some(to);
                    e.result = if already { "already" } else { "switched" }.to_string();
                    e.detail = format!("{env} is {to}");
                }
                Err(err) => {
                    e.result = "unfinished".to_string();
                    e.detail = err.to_string();
                    unfinished.push(e.edge.clone());
                }
            }
        }
        self.report.total_ms = ms(self.started.elapsed());
        if unfinished.is_empty() {
            // Not fsynced: every edge's record is; a lost line only shows the transaction open
            // until `apply --fleet` closes it (`StateDir::journal_record_unsynced`).
            let detail = format!("fleet transaction {}", self.report.transaction);
            self.journal
                .journal_record_unsynced(&self.op, Phase::Done, Some(&detail))?;
            return Ok(());
        }
        let why = format!(
            "every edge committed and read back {env} on {to}, but {} did not record it",
            unfinished.join(", ")
        );
        let _ = self
            .journal
            .journal_record(&self.op, Phase::Failed, Some(&why));
        let finish = format!("vezasock switch --fleet … {env} {to}");
        let stop = Stop {
            phase: FlipPhase::Record,
            live: Some(to),
            recorded: None,
            put_back: false,
            finish: Some(finish.clone()),
        };
        let message = format!("{why}; `{finish}` finishes it");
        Err(self.fail(message, ErrorKind::Unfinished, Some(stop)))
    }

    /// Some edge switched (was not on the target already).
    fn switched(&self) -> bool {
        self.report.edges.iter().any(|e| e.result == "switched")
    }

    /// `--drain-old` once the flip is recorded on every edge (when some edge switched).
    async fn drain_old(mut self) -> Result<FleetReport, EdgeError> {
        if self.req.drain_old && self.switched() {
            self.report.drain_old = Some(drain_old(self.members, self.req).await?);
            self.report.total_ms = ms(self.started.elapsed());
        }
        Ok(self.report)
    }
}

/// `--drain-old` after a fleet flip that is verified and recorded on every edge: the old color
/// drained on every edge, each waiting up to `drain_timeout` for its sessions (still busy then
/// is reported, the servers left in drain, as on one edge). A drain that fails keeps its own
/// kind and exit code and says the flip is done.
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
    let Some((i, error)) = refused else {
        return Ok(report);
    };
    let message = format!(
        "fleet dry run of {} to {}: edge {} would refuse; nothing was changed on any edge",
        req.env, req.color, report.edges[i].edge
    );
    Err(FleetFailure::refused(
        message,
        &error,
        Outcome::Switch(report),
    ))
}

/// How often the prepares' progress line is redrawn.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// Each member's prepare result and how long it took.
type Prepared = Vec<(Result<PrepareInfo, EdgeError>, Duration)>;

/// The prepare phase: every edge locked ([`hold_all`]: at once, or in name order when one is
/// busy), then the rest of the prepare on every edge in parallel. A refusal anywhere aborts
/// every prepared edge: nothing changed, the deciding edge's error.
async fn prepare(
    members: &mut [Member],
    req: &SwitchRequest,
    ttl: Duration,
    mut report: FleetReport,
    started: Instant,
) -> Result<FleetReport, EdgeError> {
    let wait = req.wait_healthy.unwrap_or(Duration::ZERO);
    let (prepared, unlocked) = prepare_all(members, req, &report.transaction, ttl, wait).await;
    for ((result, took), e) in prepared.iter().zip(report.edges.iter_mut()) {
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
    let Some((i, Err(refusal))) = decided.map(|i| (i, &prepared[i].0)) else {
        return Ok(report);
    };
    let name = report.edges[i].edge.clone();
    let ok: Vec<usize> = (0..members.len())
        .filter(|j| prepared[*j].0.is_ok())
        .collect();
    let why = format!("edge {name} refused the prepare: {refusal}");
    abort_all(members, &ok, &why, &mut report).await;
    report.total_ms = ms(started.elapsed());
    let message = format!(
        "fleet switch of {} to {} refused at prepare on edge {name}: nothing changed on any edge",
        req.env, req.color
    );
    Err(FleetFailure::refused(
        message,
        refusal,
        Outcome::Switch(report),
    ))
}

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
                    error.copy()
                } else {
                    EdgeError::Refused(format!("not prepared: edge {name} could not be locked"))
                };
                (Err(why), started.elapsed())
            })
            .collect();
        return (results, Some(failed));
    }
    let n = members.len();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let done = &done;
    let all = join_all(members.iter_mut().map(|m| async move {
        let t = Instant::now();
        let r = m.prepare(id, ttl, wait).await;
        done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        (r, t.elapsed())
    }));
    // Each edge's gate may wait (`--wait-healthy`): the prepares' count as progress.
    let results = crate::edge::progress::around(all, PROGRESS_EVERY, |took| {
        format!(
            "preparing {} → {} on {n} edge(s): {} of {n} prepared, {}",
            req.env,
            req.color,
            done.load(std::sync::atomic::Ordering::Relaxed),
            crate::edge::progress::seconds(took)
        )
    })
    .await;
    (results, None)
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
