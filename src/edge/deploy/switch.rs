//! `vezasock switch ENV COLOR`: flips one env to a color over the runtime API, with no reload.
//! [`switch`] runs the phases of [`crate::edge::flip`] in this order: lock → read → gate → intent →
//! disk → runtime → verify → record → drain-old; the table of what each phase touches and what
//! a failure in it means is in that module and in docs/architecture.md §3.
//!
//! Why this order is crash-safe: the state file is written last, so it only ever names a
//! verified color. A crash anywhere before it leaves an open journal operation and, from the
//! disk phase on, a map file and/or runtime ahead of the state file: `status` reports exactly
//! that, and `repair` (called by `apply`) puts runtime and map file back on the recorded color
//! (removing the history line of a flip it undid), or a new `switch` runs the flip again.
//!
//! One admin session carries every command; reads are pipelined batches; nothing sleeps unless
//! the gate waits for a check or `--drain-old` waits for sessions.

use serde::Serialize;

use crate::edge::flip::gate::GateServer;
use crate::edge::flip::{check_sha, ms, Flip, Read, Steps};
use crate::edge::servers::{self, Selection, Then};
use crate::edge::{Edge, EdgeError};
use crate::topology::Color;

pub use crate::edge::flip::{LockWait, Step, SwitchRequest, BAKE_BREACH};

/// What a switch did.
#[derive(Debug, Clone, Serialize)]
pub struct SwitchReport {
    pub env: String,
    /// The color live before (as the runtime saw it).
    pub from: Color,
    pub to: Color,
    pub sha: Option<String>,
    /// The color was already live everywhere: nothing changed.
    pub noop: bool,
    pub dry_run: bool,
    /// Disagreements found at the start (runtime, map file, state file, open operations).
    pub drift: Vec<String>,
    pub steps: Vec<Step>,
    /// Milliseconds, from the start to the end.
    pub total_ms: f64,
    /// What `--bake` saw (absent without it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bake: Option<crate::edge::deploy::bake::BakeReport>,
    /// Sessions still open on the old color when `--drain-old` gave up waiting.
    pub drain_left: Option<u64>,
    pub notes: Vec<String>,
}

/// Runs a switch. `on_step` is called as each step completes (the CLI prints it live).
pub async fn switch(
    edge: &Edge,
    req: &SwitchRequest,
    on_step: &mut dyn FnMut(&Step),
) -> Result<SwitchReport, EdgeError> {
    // Bad input is refused before anything is touched, lock included.
    let env = edge.colored_env(&req.env)?;
    check_sha(req.sha.as_deref())?;
    let mut steps = Steps::new(on_step);
    let mut flip = Flip::lock(edge, env, req).await?;
    if !req.dry_run {
        steps.done("lock", edge.state.lock_file().display().to_string());
    }
    let read = flip.read().await?;
    steps.done("read", read_detail(&read));
    let mut report = SwitchReport::start(req, &read);
    if flip.is_noop(&read) {
        report.noop = true;
        steps.done(
            "done",
            format!("{} is already {}: nothing to do", env.name, req.color),
        );
        return Ok(report.finish(steps));
    }
    if !req.preview_check.is_empty() && req.dry_run {
        // A dry run sends nothing: say so, where the check's answers would be.
        steps.done(
            "preview-check",
            format!(
                "NOT RUN (a dry run sends no request): {} not checked through the edge",
                req.preview_check.join(", ")
            ),
        );
    } else if !req.preview_check.is_empty() {
        let line = preview_check(&mut flip)
            .await
            .map_err(|e| flip.journal_refusal(&read, e))?;
        steps.done("preview-check", line);
    }
    let (judged, polls) = flip
        .gate(&read)
        .await
        .map_err(|e| flip.journal_refusal(&read, e))?;
    steps.done("gate", gate_detail(&flip, &judged, polls));
    if req.dry_run {
        for line in dry_run_plan(&flip, &read)? {
            steps.done("would", line);
        }
        return Ok(report.finish(steps));
    }
    flip.intent(&read)?;
    flip.disk(&read)?;
    let map_path = edge.topology.paths.active_color_map();
    steps.done(
        "journal+disk",
        format!("{} {} {}", map_path.display(), env.name, req.color),
    );
    let line = flip.runtime().await?;
    steps.done("runtime", line);
    flip.verify().await?;
    steps.done(
        "read-back",
        format!("{} is {}; its servers are UP", env.name, req.color),
    );
    flip.record(&read).await?;
    let color_file = edge.state.color_file(&env.name)?;
    steps.done(
        "record",
        format!("{} = {}, history +1", color_file.display(), req.color),
    );
    revoke_preview(&mut flip, &mut report.notes).await;
    if let (Some(duration), true) = (req.bake, read.from != req.color) {
        let baked = bake_phase(&mut flip, &read, duration, &mut steps).await?;
        report.bake = Some(baked);
    }
    // The flip is complete and recorded: the drain takes the edge lock itself.
    flip.unlock();
    if req.drain_old && read.from != req.color {
        report.drain_left = drain_old(&flip, read.from, &mut steps, &mut report.notes).await?;
    }
    Ok(report.finish(steps))
}

/// After the record phase, the env's preview token goes (a switch ends every preview). The
/// flip is complete and recorded: a failed revoke is a note, not an error (traffic is where
/// the operator asked).
async fn revoke_preview(flip: &mut Flip<'_>, notes: &mut Vec<String>) {
    let env = flip.env.name.clone();
    match revoke_token(flip).await {
        Ok(0) => {}
        Ok(_) => notes.push(format!("the preview token of {env} was revoked")),
        Err(e) => notes.push(format!(
            "the preview token of {env} was not revoked: {e}; `vezasock preview {env} --revoke` does it"
        )),
    }
}

impl SwitchReport {
    fn start(req: &SwitchRequest, read: &Read) -> SwitchReport {
        SwitchReport {
            env: req.env.clone(),
            from: read.from,
            to: req.color,
            sha: req.sha.clone(),
            noop: false,
            dry_run: req.dry_run,
            drift: read.drift.clone(),
            steps: Vec::new(),
            total_ms: 0.0,
            drain_left: None,
            bake: None,
            notes: Vec::new(),
        }
    }

    fn finish(mut self, steps: Steps<'_>) -> SwitchReport {
        self.total_ms = ms(steps.started.elapsed());
        self.steps = steps.steps;
        self
    }
}

fn read_detail(read: &Read) -> String {
    let mut detail = read.sides.describe();
    if !read.drift.is_empty() {
        detail.push_str("; ");
        detail.push_str(&read.drift.join("; "));
    }
    detail
}

fn gate_detail(flip: &Flip<'_>, judged: &[GateServer], polls: u32) -> String {
    let mut detail = format!("{} server(s) of {} UP and ready", judged.len(), flip.target);
    if polls > 0 {
        detail.push_str(&format!(" (after {polls} polls)"));
    }
    if !flip.drained().is_empty() {
        detail.push_str(&format!(
            "; {} in DRAIN, put back to READY before the flip",
            flip.drained().len()
        ));
    }
    detail
}

fn dry_run_plan(flip: &Flip<'_>, read: &Read) -> Result<Vec<String>, EdgeError> {
    let edge = flip.edge;
    let (env, target) = (&flip.env.name, flip.target);
    let map = edge.topology.paths.active_color_map();
    let mut plan = vec![format!(
        "journal the intent, write {} with {env} {target}",
        map.display()
    )];
    if !flip.drained().is_empty() {
        plan.push(format!(
            "set {} server(s) of {target} READY",
            flip.drained().len()
        ));
    }
    let verb = if read.sides.runtime.is_some() {
        "set"
    } else {
        "add"
    };
    plan.push(format!("{verb} map {} {env} {target}", map.display()));
    plan.push(format!(
        "read back, then record {target} in {}",
        edge.state.color_file(env)?.display()
    ));
    if !flip.req().preview_check.is_empty() {
        plan.insert(
            0,
            format!(
                "request {} through the edge with a preview token for {target}",
                flip.req().preview_check.join(", ")
            ),
        );
    }
    if flip.req().drain_old && read.from != target {
        plan.push(format!(
            "drain {} and wait up to {:?}",
            read.from,
            flip.req().drain_timeout
        ));
    }
    Ok(plan)
}

/// Preview-check phase (before the gate, lock held): the target answers 2xx/3xx through the
/// edge to requests carrying a preview token ([`crate::edge::deploy::preview::check`]).
async fn preview_check(flip: &mut Flip<'_>) -> Result<String, EdgeError> {
    let (edge, env, target) = (flip.edge, flip.env, flip.target);
    let req = flip.req().clone();
    crate::edge::deploy::preview::check(
        edge,
        flip.session(),
        env,
        target,
        &req.preview_check,
        req.preview_via,
        &req.who,
    )
    .await
}

/// After the record phase: the env's preview token, if any, revoked (it names a color that is
/// now live or old). Returns how many were removed.
async fn revoke_token(flip: &mut Flip<'_>) -> Result<usize, EdgeError> {
    let (edge, env, who) = (flip.edge, flip.env, flip.req().who.clone());
    crate::edge::deploy::preview::revoke_after_switch(edge, flip.session(), env, &who).await
}

/// Bake phase: watches the new color; on a breach flips back to the old one through a whole
/// switch (the same phases, journalled as a rollback) and fails with the numbers (exit 7).
async fn bake_phase(
    flip: &mut Flip<'_>,
    read: &Read,
    duration: std::time::Duration,
    steps: &mut Steps<'_>,
) -> Result<crate::edge::deploy::bake::BakeReport, EdgeError> {
    use crate::edge::analysis::{describe, Verdict};
    let (env, new, old) = (flip.env.name.clone(), flip.target, read.from);
    let (env_ref, limits) = (flip.env, flip.req().bake_limits);
    let baked = crate::edge::deploy::bake::watch(flip.session(), env_ref, new, duration, limits)
        .await
        .map_err(|e| EdgeError::AnalysisFailed {
            message: format!(
                "{env} switched {old} → {new} (verified and recorded), but the bake could \
                 not read the counters: {e}; `vezasock rollback {env}` flips back"
            ),
            rolled_back: false,
        })?;
    let numbers = describe(baked.window, baked.limits);
    steps.done(
        "bake",
        format!(
            "{new} for {:.1} s: {numbers}: {:?}",
            baked.watched_ms / 1e3,
            baked.verdict
        ),
    );
    if baked.verdict != Verdict::Breach {
        return Ok(baked);
    }
    // The rollback takes the edge lock itself.
    flip.unlock();
    let req = flip.req();
    let mut back = SwitchRequest::new(&env, old);
    back.action = crate::state::Action::Rollback;
    back.who = req.who.clone();
    back.lock_wait = req.lock_wait;
    back.sha = read.history.first().and_then(|h| h.sha.clone());
    back.why = Some(format!("{BAKE_BREACH}: {numbers}"));
    let mut inner = Vec::new();
    let flipped = Box::pin(switch(flip.edge, &back, &mut |s| inner.push(s.clone()))).await;
    for s in &inner {
        steps.done("flip-back", format!("{}: {}", s.name, s.detail));
    }
    let why = format!("bake of {env} {new} failed: {numbers}");
    Err(match flipped {
        Ok(_) => EdgeError::AnalysisFailed {
            message: format!("{why}; flipped back to {old} (live and recorded)"),
            rolled_back: true,
        },
        Err(e) => EdgeError::AnalysisFailed {
            message: format!(
                "{why}; flipping back to {old} failed: {e}; `vezasock rollback {env}` retries"
            ),
            rolled_back: false,
        },
    })
}

/// Drain-old phase: the old color in DRAIN through the servers module (written through to
/// disk like an operator's `vezasock drain`), waiting for its sessions. Returns the sessions
/// left when the wait ran out.
async fn drain_old(
    flip: &Flip<'_>,
    old: Color,
    steps: &mut Steps<'_>,
    notes: &mut Vec<String>,
) -> Result<Option<u64>, EdgeError> {
    let req = flip.req();
    let selection = Selection::Env {
        env: flip.env.name.clone(),
        color: Some(old),
        component: None,
        server: None,
    };
    let how = servers::DrainHow {
        deadline: Some(req.drain_timeout),
        then: Then::Leave,
        // The old color is no longer live: the live-color guard has nothing to say.
        force: false,
    };
    let drained = async {
        let servers = servers::resolve(flip.edge, &selection)?;
        servers::drain(flip.edge, &selection, &servers, how, req.lock_wait.wait()).await
    }
    .await
    .map_err(|e| EdgeError::DrainOld {
        done: format!(
            "{} switched {old} → {} (verified and recorded)",
            flip.env.name, flip.target
        ),
        finish: format!("vezasock drain {} {old}", flip.env.name),
        source: Box::new(e),
    })?;
    let left: u64 = drained
        .wait
        .as_ref()
        .map_or(0, |w| w.busy.iter().map(|b| b.sessions).sum());
    notes.push(format!(
        "{old} servers set to DRAIN (recorded in {})",
        drained.drain.admin_file.display()
    ));
    steps.done(
        "drain-old",
        match left {
            0 => format!("{old} drained: no session left"),
            n => format!(
                "{old} in DRAIN; {n} session(s) still open after {:?}",
                req.drain_timeout
            ),
        },
    );
    Ok((left > 0).then_some(left))
}
