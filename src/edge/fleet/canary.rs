//! `canary --fleet FILE ENV COLOR` (issue 22): the one-edge canary
//! ([`crate::edge::deploy::canary`]: one entry `<env> <color>:<percent>` in `preview.map`,
//! written through, journalled `canary`) on every edge of a fleet as one operation per step.
//!
//! | when | every edge | a failure |
//! |---|---|---|
//! | start | dry-run switch (read, gate), the env's canary lock held for the whole run | refused: nothing changed (that edge's kind) |
//! | each step | staged (edge lock, read, intent), then applied on every edge at once (file, runtime, done) | a stage refused: every staged edge dropped, then the abort |
//! | analysis (every [`POLL`]) | both colors' counters summed over every edge; the entries read | breach / inconclusive / an edge lost: the abort |
//! | abort | one operation to 0 % on every edge | exit 7 once every edge confirms; an edge not confirmed: exit 5 naming it; a lost edge: exit 5 naming it (its kind when it too is back at 0 %) |
//! | 100 % | the step, then a fleet switch ([`super::switch`]), then the entries deleted | the switch's failure: exit 5, `switch --fleet` finishes it |
//!
//! The canary locks are held by each edge's side of the conversation ([`super::canary_agent`]):
//! when the coordinator dies (even `kill -9`) every conversation ends and every lock is
//! released, so each edge's `status` says the canary was interrupted and `apply` (on each
//! edge, or `apply --fleet`) puts it back to 0 %.

use std::time::{Duration, Instant};

use futures::future::join_all;
use serde::Serialize;

use super::bake::{read_all, sum};
use super::member::{Member, STEP_SLACK};
use super::protocol::Request;
use super::switch::{switch, FleetReport};
use crate::edge::analysis::{describe, Counters, Verdict, POLL};
use crate::edge::deploy::canary::{
    check_steps, verdict, CanaryRequest, InProgress, INCONCLUSIVE_INTERVALS,
};
use crate::edge::flip::{ms, LockWait, SwitchRequest};
use crate::edge::{EdgeError, ErrorKind};
use crate::topology::fleet::Fleet;
use crate::topology::Color;

/// One edge's share of a step's window.
#[derive(Debug, Clone, Serialize)]
pub struct EdgeWindow {
    pub edge: String,
    pub canary: Counters,
    pub baseline: Counters,
}

/// One step as analysed over every edge.
#[derive(Debug, Clone, Serialize)]
pub struct FleetCanaryStep {
    pub percent: u8,
    /// The canary color's responses over the step, summed over every edge (judged).
    pub canary: Counters,
    /// The old color's, the baseline.
    pub baseline: Counters,
    pub verdict: Verdict,
    pub ms: f64,
    /// From the first to the last edge's answer to the step's apply, in milliseconds.
    pub skew_ms: f64,
    pub edges: Vec<EdgeWindow>,
}

/// What a fleet canary did.
#[derive(Debug, Clone, Serialize)]
pub struct FleetCanaryReport {
    pub env: String,
    pub from: Color,
    pub to: Color,
    pub edges: Vec<String>,
    pub steps: Vec<FleetCanaryStep>,
    /// The fleet switch that ended it at 100 %.
    pub switch: Option<FleetReport>,
    /// What did not stop it: an entry left after the switch, on the edge named.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

fn lock_ms(wait: LockWait) -> Option<u64> {
    match wait {
        LockWait::No => None,
        LockWait::UpTo(d) => Some(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
    }
}

impl Member {
    /// The env's canary lock on this edge, held until the conversation ends.
    async fn canary_hold(&mut self, env: &str) -> Result<(), EdgeError> {
        let request = Request::CanaryHold {
            env: env.to_string(),
        };
        self.ask(&request, STEP_SLACK).await.map(drop)
    }

    /// The env's canary on this edge (`None`: none, 0 %).
    async fn canary_read(&mut self, env: &str) -> Result<Option<InProgress>, EdgeError> {
        let request = Request::CanaryRead {
            env: env.to_string(),
        };
        Ok(self.ask(&request, STEP_SLACK).await?.canary)
    }

    /// Stages `to` (`None`: 0 %) on this edge, its edge lock held until the apply or drop.
    async fn canary_stage(
        &mut self,
        env: &str,
        to: Option<(Color, u8)>,
        how: &How<'_>,
    ) -> Result<String, EdgeError> {
        let request = Request::CanaryStage {
            env: env.to_string(),
            color: to.map(|(c, _)| c),
            percent: to.map_or(0, |(_, p)| p),
            if_running: how.if_running,
            lock_wait_ms: lock_ms(how.wait),
            who: how.who.to_string(),
        };
        let limit = lock_ms(how.wait).map_or(Duration::ZERO, Duration::from_millis) + STEP_SLACK;
        self.ask(&request, limit).await.map(|r| r.detail)
    }

    async fn canary_apply(&mut self) -> Result<String, EdgeError> {
        self.ask(&Request::CanaryApply, STEP_SLACK)
            .await
            .map(|r| r.detail)
    }

    async fn canary_drop(&mut self, why: &str) {
        let request = Request::CanaryDrop {
            why: why.to_string(),
        };
        let _ = self.ask(&request, STEP_SLACK).await;
    }
}

/// How a fleet canary step is set.
struct How<'a> {
    wait: LockWait,
    who: &'a str,
    /// Refused on an edge without a running canary of the env (`--promote`).
    if_running: bool,
    /// A stage refused anywhere drops every staged edge (nothing changes anywhere); else (the
    /// abort to 0 %) the edges that staged apply anyway.
    all_or_none: bool,
}

/// Why a fleet step did not land on every edge: the edges not at the new percent, each with
/// its error (never empty).
struct NotEverywhere {
    failed: Vec<(String, EdgeError)>,
}

impl NotEverywhere {
    /// `edge-b: …; edge-c: …`.
    fn lines(&self) -> String {
        let each: Vec<String> = self
            .failed
            .iter()
            .map(|(edge, e)| format!("edge {edge}: {}", bare(e)))
            .collect();
        each.join("; ")
    }

    /// The first edge's kind (a refusal when none: never, by construction).
    fn kind(&self) -> ErrorKind {
        self.failed
            .first()
            .map_or(ErrorKind::Refused, |(_, e)| e.kind())
    }

    fn first_edge(&self) -> String {
        self.failed
            .first()
            .map(|(e, _)| e.clone())
            .unwrap_or_default()
    }

    fn names(&self) -> String {
        let each: Vec<&str> = self.failed.iter().map(|(edge, _)| edge.as_str()).collect();
        each.join(", ")
    }
}

/// One canary percent on every edge as one fleet operation: staged on every edge (in
/// parallel), then applied on every edge at once. `Ok`: the skew between the first and the
/// last edge's apply answer, in milliseconds.
async fn set_everywhere(
    members: &mut [Member],
    env: &str,
    to: Option<(Color, u8)>,
    how: &How<'_>,
) -> Result<f64, NotEverywhere> {
    let staged = join_all(
        members
            .iter_mut()
            .map(|m| async move { m.canary_stage(env, to, how).await }),
    )
    .await;
    let mut failed: Vec<(String, EdgeError)> = Vec::new();
    for (m, r) in members.iter().zip(&staged) {
        if let Err(e) = r {
            failed.push((m.name().to_string(), e.copy()));
        }
    }
    let ok: Vec<bool> = staged.iter().map(Result::is_ok).collect();
    if how.all_or_none && !failed.is_empty() {
        let names: Vec<&str> = failed.iter().map(|(e, _)| e.as_str()).collect();
        let why = format!("not applied: edge {} refused its stage", names.join(", "));
        join_all(
            members
                .iter_mut()
                .zip(&ok)
                .filter(|(_, ok)| **ok)
                .map(|(m, _)| m.canary_drop(&why)),
        )
        .await;
        return Err(NotEverywhere { failed });
    }
    let started = Instant::now();
    let applied = join_all(members.iter_mut().zip(&ok).filter(|(_, ok)| **ok).map(
        |(m, _)| async move {
            let r = m.canary_apply().await;
            (m.name().to_string(), r, started.elapsed())
        },
    ))
    .await;
    let (mut first, mut last) = (None::<Duration>, Duration::ZERO);
    for (name, r, at) in applied {
        match r {
            Ok(_) => {
                first = Some(first.map_or(at, |f| f.min(at)));
                last = last.max(at);
            }
            Err(e) => failed.push((name, e)),
        }
    }
    if failed.is_empty() {
        Ok(ms(last.saturating_sub(first.unwrap_or(last))))
    } else {
        Err(NotEverywhere { failed })
    }
}

/// Every edge's canary entry of `env`, in member order; `Err`: the first edge not read.
async fn read_entries(
    members: &mut [Member],
    env: &str,
) -> Result<Vec<Option<InProgress>>, (String, EdgeError)> {
    super::member::on_every(members, async |m| m.canary_read(env).await).await
}

/// What one poll of a step decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Keep watching.
    Wait,
    /// The step is over with this verdict.
    Done(Verdict),
    /// Some edge has no entry any more: `canary --fleet … --abort` from another shell.
    AbortedOutside,
}

/// The decision of one poll: `entries` is every edge's entry of the env now (color, percent),
/// `judged` the verdict of the window so far, `elapsed` the step's time against its
/// `interval`. A missing entry anywhere is an abort from outside; every edge at 100 % on the
/// canary's color is a promote from outside; a breach ends the step at once; a pass waits for
/// the interval; an inconclusive window waits up to [`INCONCLUSIVE_INTERVALS`].
pub fn decide(
    entries: &[Option<(Color, u8)>],
    color: Color,
    judged: Verdict,
    elapsed: Duration,
    interval: Duration,
) -> Decision {
    if entries.is_empty() || entries.iter().any(Option::is_none) {
        return Decision::AbortedOutside;
    }
    if entries.iter().all(|e| *e == Some((color, 100))) {
        return Decision::Done(Verdict::Promoted);
    }
    let over = match judged {
        Verdict::Breach | Verdict::Promoted => true,
        Verdict::Pass => elapsed >= interval,
        Verdict::Inconclusive => elapsed >= interval * INCONCLUSIVE_INTERVALS,
    };
    if over {
        Decision::Done(judged)
    } else {
        Decision::Wait
    }
}

/// Why a step's analysis stopped before its verdict.
enum Cut {
    Outside,
    /// An edge could not be read (its HAProxy gone, its conversation lost).
    Lost(String, EdgeError),
}

impl From<(String, EdgeError)> for Cut {
    fn from((edge, e): (String, EdgeError)) -> Cut {
        Cut::Lost(edge, e)
    }
}

/// Both colors' windows over every edge since `base`: (canary, baseline) per edge.
async fn windows(
    members: &mut [Member],
    req: &CanaryRequest,
    from: Color,
    base: &(Vec<Counters>, Vec<Counters>),
) -> Result<Vec<(Counters, Counters)>, Cut> {
    let new = read_all(members, &req.env, req.color).await?;
    let old = read_all(members, &req.env, from).await?;
    Ok(new
        .iter()
        .zip(&base.0)
        .zip(old.iter().zip(&base.1))
        .map(|((n, bn), (o, bo))| (n.since(*bn), o.since(*bo)))
        .collect())
}

/// Watches one step: every [`POLL`], the entries and both colors' counters of every edge,
/// summed and judged ([`decide`]).
async fn analyse(
    members: &mut [Member],
    req: &CanaryRequest,
    from: Color,
    percent: u8,
    skew_ms: f64,
) -> Result<FleetCanaryStep, Cut> {
    let started = Instant::now();
    let base = (
        read_all(members, &req.env, req.color).await?,
        read_all(members, &req.env, from).await?,
    );
    let names: Vec<String> = members.iter().map(|m| m.name().to_string()).collect();
    let longest = req.interval * INCONCLUSIVE_INTERVALS;
    // Bounded: every turn sleeps, and past `longest` every verdict ends the step.
    loop {
        let elapsed = started.elapsed();
        let wait = if elapsed < req.interval {
            (req.interval - elapsed).min(POLL)
        } else {
            POLL.min(longest.saturating_sub(elapsed))
        };
        tokio::time::sleep(wait).await;
        let entries: Vec<Option<(Color, u8)>> = read_entries(members, &req.env)
            .await?
            .into_iter()
            .map(|e| e.map(|e| (e.color, e.percent)))
            .collect();
        let each = windows(members, req, from, &base).await?;
        let canary = sum(&each.iter().map(|w| w.0).collect::<Vec<_>>());
        let baseline = sum(&each.iter().map(|w| w.1).collect::<Vec<_>>());
        for (name, (c, b)) in names.iter().zip(&each) {
            tracing::info!(edge = %name, percent, canary_requests = c.requests, canary_errors = c.errors,
                baseline_requests = b.requests, baseline_errors = b.errors, "fleet canary window");
        }
        let judged = verdict(canary, baseline, req.limits);
        let decision = decide(&entries, req.color, judged, started.elapsed(), req.interval);
        let verdict = match decision {
            Decision::Wait => continue,
            Decision::AbortedOutside => return Err(Cut::Outside),
            Decision::Done(v) => v,
        };
        let edges = names
            .iter()
            .zip(each)
            .map(|(edge, (canary, baseline))| EdgeWindow {
                edge: edge.clone(),
                canary,
                baseline,
            })
            .collect();
        return Ok(FleetCanaryStep {
            percent,
            canary,
            baseline,
            verdict,
            ms: ms(started.elapsed()),
            skew_ms,
            edges,
        });
    }
}

/// An edge's error without the `edge NAME: ` its message already names.
fn bare(e: &EdgeError) -> String {
    match e {
        EdgeError::Remote { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// `edge-a 3/40, edge-b 0/38`: each edge's canary 5xx of its requests.
fn per_edge(step: &FleetCanaryStep) -> String {
    let each: Vec<String> = step
        .edges
        .iter()
        .map(|e| format!("{} {}/{}", e.edge, e.canary.errors, e.canary.requests))
        .collect();
    each.join(", ")
}

/// The fleet's color before the canary: every edge read and gated by a dry-run switch; the
/// edges must agree and not be on the canary's color already.
async fn preflight(
    fleet: &Fleet,
    members: &mut [Member],
    req: &CanaryRequest,
) -> Result<Color, EdgeError> {
    let mut dry = SwitchRequest::new(&req.env, req.color);
    dry.dry_run = true;
    dry.who = req.who.clone();
    let probe = switch(fleet, members, &dry, STEP_SLACK).await?;
    let froms: Vec<(String, Option<Color>)> = probe
        .edges
        .iter()
        .map(|e| (e.edge.clone(), e.from))
        .collect();
    let Some(Some(from)) = froms.first().map(|f| f.1) else {
        return Err(EdgeError::BadInput("the fleet has no edge".to_string()));
    };
    if froms.iter().any(|f| f.1 != Some(from)) {
        let each: Vec<String> = froms
            .iter()
            .map(|(e, c)| format!("{e}={}", c.map_or("?", Color::as_str)))
            .collect();
        return Err(EdgeError::Refused(format!(
            "the edges disagree on the color of {} ({}): `vezasock switch --fleet … {} COLOR` \
             puts every edge on one color first",
            req.env,
            each.join(" "),
            req.env
        )));
    }
    if from == req.color {
        return Err(EdgeError::Refused(format!(
            "{} is already {} on every edge: nothing to canary",
            req.env, req.color
        )));
    }
    Ok(from)
}

/// The env's canary lock on every edge (for the whole run); `Err`: the first edge that
/// refused, with its kind (another canary runs there: exit 1).
async fn hold_everywhere(members: &mut [Member], env: &str) -> Result<(), EdgeError> {
    let answers = join_all(members.iter_mut().map(|m| async move {
        let r = m.canary_hold(env).await;
        (m.name().to_string(), r)
    }))
    .await;
    for (name, r) in answers {
        if let Err(e) = r {
            return Err(EdgeError::Remote {
                edge: name,
                kind: e.kind(),
                message: format!(
                    "the fleet canary of {env} was not started: {e}; nothing changed on any edge"
                ),
                stop: None,
            });
        }
    }
    Ok(())
}

/// Runs a canary on every edge of the fleet. `on_line` gets one human line per event.
pub async fn canary(
    fleet: &Fleet,
    members: &mut [Member],
    req: &CanaryRequest,
    on_line: &mut dyn FnMut(&str),
) -> Result<FleetCanaryReport, EdgeError> {
    check_steps(&req.steps)?;
    let from = preflight(fleet, members, req).await?;
    hold_everywhere(members, &req.env).await?;
    let mut report = FleetCanaryReport {
        env: req.env.clone(),
        from,
        to: req.color,
        edges: members.iter().map(|m| m.name().to_string()).collect(),
        steps: Vec::new(),
        switch: None,
        notes: Vec::new(),
    };
    let how = How {
        wait: req.lock_wait,
        who: &req.who,
        if_running: false,
        all_or_none: true,
    };
    let n = members.len();
    for &percent in req.steps.iter().filter(|p| **p < 100) {
        let skew = match set_everywhere(members, &req.env, Some((req.color, percent)), &how).await {
            Ok(skew) => skew,
            Err(not) => {
                let why = format!("step {percent} % not set on every edge: {}", not.lines());
                return Err(abort(members, req, &why, not.failed.into_iter().next()).await);
            }
        };
        on_line(&format!(
            "step {percent} %: {percent} % of {} users on {} on {n} edge(s) (skew {skew:.3} ms)",
            req.env, req.color
        ));
        let step = match analyse(members, req, from, percent, skew).await {
            Ok(step) => step,
            Err(Cut::Outside) => {
                let why = format!(
                    "aborted from outside (`vezasock canary --fleet … {} --abort`) at {percent} %",
                    req.env
                );
                return Err(abort(members, req, &why, None).await);
            }
            Err(Cut::Lost(edge, e)) => {
                let why = format!("edge {edge} was lost at {percent} % ({})", bare(&e));
                return Err(abort(members, req, &why, Some((edge, e))).await);
            }
        };
        let line = format!(
            "step {percent} %: {}; baseline {from}: {} (per edge 5xx/requests on {}: {})",
            describe(step.canary, req.limits),
            describe(step.baseline, req.limits),
            req.color,
            per_edge(&step)
        );
        on_line(&line);
        let verdict = step.verdict;
        report.steps.push(step);
        match verdict {
            Verdict::Pass => {}
            Verdict::Promoted => {
                on_line(&format!("step {percent} %: promoted from outside"));
                break;
            }
            Verdict::Breach => {
                return Err(abort(members, req, &format!("breach at {line}"), None).await)
            }
            Verdict::Inconclusive => {
                let why = format!("inconclusive after {INCONCLUSIVE_INTERVALS} intervals: {line}");
                return Err(abort(members, req, &why, None).await);
            }
        }
    }
    promote(fleet, members, req, &how, report, on_line).await
}

/// The end at 100 %: every edge at 100 %, then the fleet switch (recorded on every edge), then
/// the entries deleted.
async fn promote(
    fleet: &Fleet,
    members: &mut [Member],
    req: &CanaryRequest,
    how: &How<'_>,
    mut report: FleetCanaryReport,
    on_line: &mut dyn FnMut(&str),
) -> Result<FleetCanaryReport, EdgeError> {
    let env = &req.env;
    if let Err(not) = set_everywhere(members, env, Some((req.color, 100)), how).await {
        let why = format!("step 100 % not set on every edge: {}", not.lines());
        return Err(abort(members, req, &why, not.failed.into_iter().next()).await);
    }
    on_line(&format!(
        "step 100 %: every {env} user on {} on every edge",
        req.color
    ));
    let mut sw = SwitchRequest::new(env, req.color);
    sw.sha = req.sha.clone();
    sw.who = req.who.clone();
    sw.lock_wait = req.lock_wait;
    let ttl = crate::edge::flip::transaction::DEFAULT_TTL;
    let switched = match switch(fleet, members, &sw, ttl).await {
        Ok(r) => r,
        Err(e) => {
            return Err(EdgeError::AnalysisFailed {
                message: format!(
                    "the fleet canary of {env} reached 100 % on every edge (every user on {}) but \
                     the fleet switch failed: {e}; `vezasock switch --fleet … {env} {}` finishes \
                     it, `vezasock canary --fleet … {env} --abort` undoes it",
                    req.color, req.color
                ),
                rolled_back: false,
            })
        }
    };
    on_line(&format!(
        "switch: {env} switched to {} on {} edge(s); commit skew {:.3} ms",
        req.color,
        switched.edges.len(),
        switched.commit_skew_ms
    ));
    let cleanup = How {
        all_or_none: false,
        ..*how
    };
    if let Err(not) = set_everywhere(members, env, None, &cleanup).await {
        report.notes.push(format!(
            "the 100 % canary entry of {env} was not removed on {} ({}); every user is on {} \
             anyway; `vezasock canary --fleet … {env} --abort` removes it",
            not.names(),
            not.lines(),
            req.color
        ));
    }
    report.switch = Some(switched);
    Ok(report)
}

/// The abort: one operation to 0 % on every edge (each edge that can be staged is applied).
/// Exit 7 once every edge confirms; an edge not confirmed is exit 5 naming it; an edge `lost`
/// during the canary gives its own kind once every other edge confirmed and it is back at 0 %
/// too, else exit 5 (its map file may still hold the percent).
async fn abort(
    members: &mut [Member],
    req: &CanaryRequest,
    why: &str,
    lost: Option<(String, EdgeError)>,
) -> EdgeError {
    let how = How {
        wait: req.lock_wait,
        who: &req.who,
        if_running: false,
        all_or_none: false,
    };
    let (env, color) = (&req.env, req.color);
    let back = set_everywhere(members, env, None, &how).await;
    let not_back: Vec<(String, EdgeError)> = match back {
        Ok(_) => Vec::new(),
        Err(not) => not.failed,
    };
    let others: Vec<&(String, EdgeError)> = not_back
        .iter()
        .filter(|(e, _)| lost.as_ref().is_none_or(|(l, _)| l != e))
        .collect();
    if !others.is_empty() {
        let lines: Vec<String> = not_back
            .iter()
            .map(|(e, err)| format!("edge {e}: {}", bare(err)))
            .collect();
        return EdgeError::AnalysisFailed {
            message: format!(
                "fleet canary of {env} {color} failed: {why}; setting it back to 0 % FAILED on {}: {}; \
                 `vezasock canary --fleet … {env} --abort` retries, `vezasock status --fleet …` \
                 shows each edge",
                others.iter().map(|(e, _)| e.as_str()).collect::<Vec<_>>().join(", "),
                lines.join("; ")
            ),
            rolled_back: false,
        };
    }
    match lost {
        Some((edge, e)) => {
            let there = if not_back.is_empty() {
                "it is back to 0 % too".to_string()
            } else {
                format!(
                    "its canary entry (in its map file) may still send users to {color}: \
                     `vezasock apply --fleet …` puts it back to 0 % once it answers"
                )
            };
            // Its percent may still be in its map file: not "nothing changed" (exit 5).
            let kind = if not_back.is_empty() {
                e.kind()
            } else {
                ErrorKind::Unfinished
            };
            EdgeError::Remote {
                kind,
                message: format!(
                    "fleet canary of {env} {color} stopped: {why}; every other edge is back to 0 % \
                     (every request on the active color); {there}"
                ),
                edge,
                stop: None,
            }
        }
        None => EdgeError::AnalysisFailed {
            message: format!(
                "fleet canary of {env} {color} aborted: {why}; back to 0 % on every edge (every \
                 request on the active color)"
            ),
            rolled_back: true,
        },
    }
}

/// `canary --fleet … ENV --abort` from another shell: the env's entry deleted on every edge
/// (each running canary sees it at its next poll and stops). True when some edge had one;
/// an edge not confirmed at 0 % is exit 5 naming it.
pub async fn abort_from_outside(
    members: &mut [Member],
    env: &str,
    wait: LockWait,
    who: &str,
) -> Result<bool, EdgeError> {
    let had = read_entries(members, env)
        .await
        .map_or(true, |e| e.iter().any(Option::is_some));
    let how = How {
        wait,
        who,
        if_running: false,
        all_or_none: false,
    };
    match set_everywhere(members, env, None, &how).await {
        Ok(_) => Ok(had),
        Err(not) => Err(EdgeError::AnalysisFailed {
            message: format!(
                "the canary of {env} was NOT set back to 0 % on {}: {}; `vezasock canary --fleet \
                 … {env} --abort` retries",
                not.names(),
                not.lines()
            ),
            rolled_back: false,
        }),
    }
}

/// `canary --fleet … ENV --promote` from another shell: the env's running canary set to 100 %
/// on every edge or on none (each edge refuses without a running canary of the env); the
/// running coordinator then ends it as a fleet switch. `None`: no edge has a canary of the env.
pub async fn promote_from_outside(
    members: &mut [Member],
    env: &str,
    wait: LockWait,
    who: &str,
) -> Result<Option<Color>, EdgeError> {
    let entries = read_entries(members, env)
        .await
        .map_err(|(edge, e)| EdgeError::Remote {
            kind: e.kind(),
            message: format!("the canary of {env} was not read there: {e}; nothing changed"),
            edge,
            stop: None,
        })?;
    let Some(first) = entries.iter().flatten().next().cloned() else {
        return Ok(None);
    };
    if let Some(gone) = entries.iter().flatten().find(|c| !c.running) {
        return Err(EdgeError::Refused(format!(
            "the canary of {env} at {} % has no process any more (killed?): `vezasock switch \
             --fleet … {env} {}` promotes it by hand, `vezasock apply --fleet …` puts it back \
             to 0 %",
            gone.percent, gone.color
        )));
    }
    let how = How {
        wait,
        who,
        if_running: true,
        all_or_none: true,
    };
    match set_everywhere(members, env, Some((first.color, 100)), &how).await {
        Ok(_) => Ok(Some(first.color)),
        Err(not) => Err(EdgeError::Remote {
            kind: not.kind(),
            edge: not.first_edge(),
            message: format!(
                "the canary of {env} was not promoted: {}; nothing changed on any edge",
                not.lines()
            ),
            stop: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn verdict_strategy() -> impl Strategy<Value = Verdict> {
        prop_oneof![
            Just(Verdict::Pass),
            Just(Verdict::Breach),
            Just(Verdict::Inconclusive),
        ]
    }

    fn entry_strategy() -> impl Strategy<Value = Option<(Color, u8)>> {
        prop_oneof![
            Just(None),
            (
                prop_oneof![Just(Color::Blue), Just(Color::Green)],
                prop_oneof![Just(5u8), Just(25), Just(100), 1u8..=100]
            )
                .prop_map(Some),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// One poll's decision: a missing entry anywhere is an abort from outside, every edge
        /// at 100 % on the color a promote, else the verdict and the clock.
        #[test]
        fn a_poll_decides_by_every_edge_then_the_verdict(
            entries in proptest::collection::vec(entry_strategy(), 1..6),
            judged in verdict_strategy(),
            elapsed_ms in 0u64..20_000,
            interval_ms in 1u64..5_000,
        ) {
            let (elapsed, interval) = (Duration::from_millis(elapsed_ms), Duration::from_millis(interval_ms));
            let d = decide(&entries, Color::Green, judged, elapsed, interval);
            if entries.iter().any(Option::is_none) {
                prop_assert_eq!(d, Decision::AbortedOutside);
            } else if entries.iter().all(|e| *e == Some((Color::Green, 100))) {
                prop_assert_eq!(d, Decision::Done(Verdict::Promoted));
            } else {
                let longest = interval * INCONCLUSIVE_INTERVALS;
                let want = match judged {
                    Verdict::Breach => Decision::Done(Verdict::Breach),
                    Verdict::Pass if elapsed >= interval => Decision::Done(Verdict::Pass),
                    Verdict::Inconclusive if elapsed >= longest => Decision::Done(Verdict::Inconclusive),
                    _ => Decision::Wait,
                };
                prop_assert_eq!(d, want);
            }
        }

        /// A step polled every POLL with any verdicts ends by three intervals: the analysis
        /// loop is bounded whatever the traffic says, and a breach ends it at the poll that
        /// sees it.
        #[test]
        fn every_step_ends_within_its_bound(
            verdicts in proptest::collection::vec(verdict_strategy(), 1..200),
            interval_ms in 1u64..3_000,
            edges in 1usize..5,
        ) {
            let interval = Duration::from_millis(interval_ms);
            let entries = vec![Some((Color::Green, 25)); edges];
            let mut elapsed = Duration::ZERO;
            let mut ended = None;
            for (i, v) in verdicts.iter().cycle().take(10_000).enumerate() {
                elapsed += POLL.min(interval);
                match decide(&entries, Color::Green, *v, elapsed, interval) {
                    Decision::Wait => {}
                    Decision::Done(got) => {
                        ended = Some((i, got, elapsed));
                        break;
                    }
                    Decision::AbortedOutside => prop_assert!(false, "no entry was missing"),
                }
            }
            let Some((i, got, at)) = ended else {
                return Err(TestCaseError::fail("the step never ended"));
            };
            prop_assert!(at <= interval * INCONCLUSIVE_INTERVALS + POLL, "{at:?}");
            if let Some(first) = verdicts.iter().cycle().take(i + 1).position(|v| *v == Verdict::Breach) {
                prop_assert_eq!((first, got), (i, Verdict::Breach));
            }
        }
    }

    /// Every edge's window reported beside the sum the step was judged by.
    #[test]
    fn the_step_line_names_each_edge() {
        let c = |requests, errors| Counters {
            requests,
            errors,
            econ: 0,
            eresp: 0,
        };
        let step = FleetCanaryStep {
            percent: 10,
            canary: c(90, 5),
            baseline: c(900, 0),
            verdict: Verdict::Breach,
            ms: 1.0,
            skew_ms: 0.1,
            edges: vec![
                EdgeWindow {
                    edge: "edge-a".into(),
                    canary: c(40, 5),
                    baseline: c(400, 0),
                },
                EdgeWindow {
                    edge: "edge-b".into(),
                    canary: c(50, 0),
                    baseline: c(500, 0),
                },
            ],
        };
        assert_eq!(per_edge(&step), "edge-a 5/40, edge-b 0/50");
        assert_eq!(
            verdict(
                step.canary,
                step.baseline,
                crate::edge::analysis::Limits::default()
            ),
            Verdict::Breach
        );
    }
}
