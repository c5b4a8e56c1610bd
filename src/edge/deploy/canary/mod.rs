//! `vezasock canary ENV COLOR --steps 5,25,50,100 --interval 30s`: sends a growing share of the
//! env's users to COLOR (every component at once), analyses each step, aborts by itself, and
//! ends as a recorded switch.
//!
//! Mechanism: one entry `<env> <color>:<percent>` in `preview.map` (the preview tokens' map;
//! their keys are `<env>:<token>`, so they never meet). The frontend sends a request to
//! `<color>` when its bucket is below the percent; the bucket is the `vezasock_bucket` cookie
//! (0-99), else drawn at random and given back in a `Set-Cookie`, so a user keeps one bucket and
//! a higher percent only moves users from the old color to the new one. Each step is one map
//! change (`add map` / `set map`), written through to the file first and journalled (action
//! `canary`); a reload or restart keeps the percent. Abort deletes the entry: one map change,
//! every request back on the active color. At 100 % every user is already on COLOR; the canary
//! then runs a normal [`crate::edge::deploy::switch::switch`] (recorded exactly like one) and deletes the entry.
//!
//! Analysis per step, from `show stat` of both colors' backends over the step ([`crate::edge::deploy::bake`]):
//! a breach is a 5xx share on COLOR above `max_error_rate` plus the old color's own share over
//! the same window (the baseline). Fewer than `min_requests` responses on COLOR is inconclusive:
//! the step waits, up to three intervals, then aborts as inconclusive.
//!
//! A running canary holds `<state_dir>/canary-<env>.lock` (`flock`) for its whole run; the
//! kernel drops it when the process dies, even by `kill -9`. An entry whose lock is free was left
//! by a canary that is gone: `status` reports it as interrupted and `apply` ([`repair_crashed`])
//! puts it back to 0 %. Each poll and each step opens a fresh admin session, so a reload in the
//! middle of a canary never leaves it talking to (and counting on) the old worker.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rustix::fs::{flock, FlockOperation};
use rustix::io::Errno;
use serde::Serialize;

use crate::edge::analysis::{counters, describe, judge, Counters, Limits, Verdict, POLL};
use crate::edge::deploy::preview::{map_ref, parse_file, put_back, render_file};
use crate::edge::deploy::switch::{switch, SwitchReport, SwitchRequest};
use crate::edge::flip::LockWait;
use crate::edge::{Edge, EdgeError};
use crate::runtime::command::maps::{AddMap, DelMap, SetMap, ShowMap};
use crate::runtime::session::Batch;
use crate::runtime::session::Session;
use crate::state::atomic::{read_optional, write_atomic};
use crate::state::{Action, EdgeLock, Holder, OpenOperation, Operation, Phase};
use crate::topology::{Color, Env};

use percent::set_percent_locked;
pub use percent::{
    apply_staged, drop_staged, set_percent, stage_percent, write_staged, StagedPercent,
};

mod percent;

/// How many intervals an inconclusive step waits before it aborts.
pub const INCONCLUSIVE_INTERVALS: u32 = 3;

/// What to run.
#[derive(Debug, Clone)]
pub struct CanaryRequest {
    pub env: String,
    pub color: Color,
    /// Percents, rising, each 1 to 100; the last is 100.
    pub steps: Vec<u8>,
    pub interval: Duration,
    pub limits: Limits,
    pub sha: Option<String>,
    pub lock_wait: LockWait,
    pub who: String,
}

/// One step as analysed.
#[derive(Debug, Clone, Serialize)]
pub struct CanaryStep {
    pub percent: u8,
    /// The canary color's responses over the step.
    pub canary: Counters,
    /// The old color's, the baseline.
    pub baseline: Counters,
    pub verdict: Verdict,
    pub ms: f64,
}

/// What a canary did.
#[derive(Debug, Clone, Serialize)]
pub struct CanaryReport {
    pub env: String,
    pub from: Color,
    pub to: Color,
    pub steps: Vec<CanaryStep>,
    /// The switch that ended it at 100 %.
    pub switch: Option<SwitchReport>,
}

/// How long a new canary waits for its env's canary lock (a `status` may hold it for a moment).
const HOLD_WAIT: Duration = Duration::from_secs(1);

/// A canary in progress, as the preview map holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct InProgress {
    pub env: String,
    pub color: Color,
    pub percent: u8,
    /// A canary process still runs it (it holds the env's canary lock); `false` after a crash.
    pub running: bool,
}

impl InProgress {
    /// The line `status` prints for it; `apply` repairs the ones that are not running.
    pub fn status_line(&self) -> String {
        let (env, color, percent) = (&self.env, self.color, self.percent);
        if self.running {
            format!(
                "CANARY IN PROGRESS {env}: {percent} % of its users on {color}; `vezasock canary \
                 {env} --promote` ends it as a switch, `--abort` puts it back to 0 %"
            )
        } else {
            format!(
                "CANARY IN PROGRESS {env}: {percent} % of its users on {color}, INTERRUPTED (its \
                 process is gone); `vezasock apply` puts it back to 0 %"
            )
        }
    }
}

/// The canaries in progress (for `status`): the written-through entries of the preview map,
/// each with whether its process still runs.
pub fn in_progress(edge: &Edge) -> Result<Vec<InProgress>, EdgeError> {
    Ok(file_entries(edge)?
        .into_iter()
        .map(|(env, color, percent)| InProgress {
            running: is_running(edge, &env),
            env,
            color,
            percent,
        })
        .collect())
}

/// The canary entries of the preview map file: (env, color, percent).
fn file_entries(edge: &Edge) -> Result<Vec<(String, Color, u8)>, EdgeError> {
    let path = edge.topology.paths.preview_map();
    let file = parse_file(edge, read_optional(&path)?.as_deref())?;
    Ok(file
        .iter()
        .filter(|(k, _)| !k.contains(':'))
        .filter_map(|(k, v)| {
            let (color, percent) = parse_value(v)?;
            Some((k.clone(), color, percent))
        })
        .collect())
}

/// `<state_dir>/canary-<env>.lock`: held (`flock`) by the env's running canary.
pub fn lock_file(edge: &Edge, env: &str) -> PathBuf {
    edge.state.path().join(format!("canary-{env}.lock"))
}

/// The env's canary lock, held while this value lives.
#[derive(Debug)]
pub struct Running {
    _file: File,
}

/// Takes the env's canary lock without waiting: `None` when a canary process holds it.
fn try_hold(edge: &Edge, env: &str) -> Result<Option<Running>, EdgeError> {
    let path = lock_file(edge, env);
    let io = |e: std::io::Error| crate::state::Error::io("open the canary lock", &path, e);
    edge.state.ensure()?;
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    loop {
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => break,
            Err(Errno::INTR) => continue,
            Err(Errno::WOULDBLOCK) => return Ok(None),
            Err(e) => return Err(io(e.into()).into()),
        }
    }
    // Who holds it, for the message of a second canary; the flock is the lock, so no fsync.
    let _ = file
        .set_len(0)
        .and_then(|()| writeln!(file, "{}", std::process::id()));
    Ok(Some(Running { _file: file }))
}

/// The canary lock for a new canary: waits up to [`HOLD_WAIT`], then refuses (another canary
/// of the env runs).
pub async fn hold(edge: &Edge, env: &str) -> Result<Running, EdgeError> {
    let started = Instant::now();
    loop {
        if let Some(held) = try_hold(edge, env)? {
            return Ok(held);
        }
        if started.elapsed() >= HOLD_WAIT {
            let pid =
                crate::files::read_bounded_text(&lock_file(edge, env), 64).unwrap_or_default();
            return Err(EdgeError::Refused(format!(
                "a canary of {env} is already running (pid {}); `vezasock canary {env} --abort` \
                 stops it",
                pid.trim()
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// True when a canary process holds the env's lock. Read-only: never creates the file; a lock
/// that cannot be tested counts as held, so a crash is never claimed that was not seen.
pub fn is_running(edge: &Edge, env: &str) -> bool {
    let file = match File::open(lock_file(edge, env)) {
        Ok(f) => f,
        Err(e) => return e.kind() != std::io::ErrorKind::NotFound,
    };
    loop {
        match flock(&file, FlockOperation::NonBlockingLockShared) {
            Ok(()) => {
                let _ = flock(&file, FlockOperation::Unlock);
                return false;
            }
            Err(Errno::INTR) => continue,
            Err(_) => return true,
        }
    }
}

/// `apply`'s canary repair, the edge lock held by the caller: every canary entry (map file or
/// runtime) whose process is gone goes back to 0 % (one map change each, journalled, written
/// through), and the canary operations a kill left open are closed. A running canary is left
/// alone. Returns one line per fix.
pub async fn repair_crashed(
    edge: &Edge,
    _lock: &EdgeLock,
    who: &str,
) -> Result<Vec<String>, EdgeError> {
    let path = edge.topology.paths.preview_map();
    let file = parse_file(edge, read_optional(&path)?.as_deref())?;
    let mut envs: Vec<String> = file.keys().filter(|k| !k.contains(':')).cloned().collect();
    let open: Vec<OpenOperation> = edge
        .state
        .open_operations()?
        .into_iter()
        .filter(|o| o.action == Action::Canary)
        .collect();
    envs.extend(open.iter().filter_map(|o| o.env.clone()));
    if envs.is_empty() {
        return Ok(Vec::new());
    }
    let mut session = edge.admin_session().await?;
    // An entry only the runtime holds (a kill between the file and the runtime of an abort).
    if let Ok(entries) = session.show_map(&map_ref(edge), None).await {
        envs.extend(
            entries
                .into_iter()
                .map(|e| e.key)
                .filter(|k| !k.contains(':')),
        );
    }
    envs.sort();
    envs.dedup();
    let mut fixed = Vec::new();
    for name in envs {
        let Some(env) = edge
            .topology
            .envs
            .iter()
            .find(|e| e.name == name && e.colored)
        else {
            continue;
        };
        let Some(_held) = try_hold(edge, &env.name)? else {
            continue;
        };
        let before = file.get(&env.name).cloned();
        if set_percent_locked(edge, &mut session, env, who, None).await? {
            fixed.push(format!(
                "canary {}: {} → 0 % (its process was gone; every request on the active color)",
                env.name,
                before.as_deref().unwrap_or("runtime entry")
            ));
        }
        for old in open
            .iter()
            .filter(|o| o.env.as_deref() == Some(env.name.as_str()))
        {
            let closing = old.continued_by(who);
            edge.state.journal_record(
                &closing,
                Phase::RolledBack,
                Some(&format!(
                    "interrupted after {}; the canary was put back to 0 % by apply",
                    old.last_phase.as_str()
                )),
            )?;
            fixed.push(format!("closed the interrupted {old}"));
        }
    }
    Ok(fixed)
}

fn parse_value(v: &str) -> Option<(Color, u8)> {
    let (c, p) = v.split_once(':')?;
    let percent: u8 = p.parse().ok()?;
    (percent <= 100).then_some(())?;
    Some((Color::parse(c)?, percent))
}

/// `--steps`: rising percents from 1 to 100, ending at 100, at most 20.
pub fn check_steps(steps: &[u8]) -> Result<(), EdgeError> {
    let rising = steps.windows(2).all(|w| w[0] < w[1]);
    let ok = !steps.is_empty()
        && steps.len() <= 20
        && rising
        && steps.first().is_some_and(|p| *p >= 1)
        && steps.last() == Some(&100);
    if ok {
        return Ok(());
    }
    Err(EdgeError::BadInput(format!(
        "--steps {steps:?}: rising percents from 1 to 100 that end at 100 (at most 20), e.g. 5,25,50,100"
    )))
}

/// Runs a canary. `on_line` gets one human line per event.
pub async fn canary(
    edge: &Edge,
    req: &CanaryRequest,
    on_line: &mut dyn FnMut(&str),
) -> Result<CanaryReport, EdgeError> {
    let env = edge.colored_env(&req.env)?;
    check_steps(&req.steps)?;
    // The gate and every file the switch will need, checked now: a dry-run switch.
    let mut dry = SwitchRequest::new(&env.name, req.color);
    dry.dry_run = true;
    dry.who = req.who.clone();
    let probe = switch(edge, &dry, &mut |_| {}).await?;
    if probe.noop {
        return Err(EdgeError::Refused(format!(
            "{} is already {}: nothing to canary",
            env.name, req.color
        )));
    }
    let from = probe.from;
    let _running = hold(edge, &env.name).await?;
    let mut report = CanaryReport {
        env: env.name.clone(),
        from,
        to: req.color,
        steps: Vec::new(),
        switch: None,
    };
    let mut session = edge.admin_session().await?;
    for &percent in &req.steps {
        if percent == 100 {
            break;
        }
        session.reconnect().await?;
        set_percent(edge, &mut session, env, req, Some((req.color, percent))).await?;
        on_line(&format!(
            "step {percent} %: {} of {} users on {}",
            percent, env.name, req.color
        ));
        let step = analyse(edge, &mut session, env, req, from, percent).await;
        let step = match step {
            Ok(s) => s,
            Err(e @ EdgeError::AnalysisFailed { .. }) => return Err(e),
            Err(e) => {
                return Err(abort(
                    edge,
                    &mut session,
                    env,
                    req,
                    &format!("analysis failed: {e}"),
                )
                .await)
            }
        };
        let line = format!(
            "step {percent} %: {}; baseline {from}: {}",
            describe(step.canary, req.limits),
            describe(step.baseline, req.limits)
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
                return Err(abort(edge, &mut session, env, req, &format!("breach at {line}")).await)
            }
            Verdict::Inconclusive => {
                return Err(abort(
                    edge,
                    &mut session,
                    env,
                    req,
                    &format!("inconclusive after {INCONCLUSIVE_INTERVALS} intervals: {line}"),
                )
                .await)
            }
        }
    }
    session.reconnect().await?;
    set_percent(edge, &mut session, env, req, Some((req.color, 100))).await?;
    on_line(&format!(
        "step 100 %: every {} user on {}",
        env.name, req.color
    ));
    let mut sw = SwitchRequest::new(&env.name, req.color);
    sw.sha = req.sha.clone();
    sw.who = req.who.clone();
    sw.lock_wait = req.lock_wait;
    let switched = switch(edge, &sw, &mut |s| {
        on_line(&format!("switch {}: {}", s.name, s.detail))
    })
    .await;
    let switched = match switched {
        Ok(r) => r,
        Err(e) => {
            return Err(EdgeError::AnalysisFailed {
                message: format!(
                    "{} canary reached 100 % (every user on {}) but the switch failed: {e}; \
                     `vezasock switch {} {}` finishes it, `vezasock canary {} --abort` undoes it",
                    env.name, req.color, env.name, req.color, env.name
                ),
                rolled_back: false,
            })
        }
    };
    session.reconnect().await?;
    set_percent(edge, &mut session, env, req, None).await?;
    report.switch = Some(switched);
    Ok(report)
}

/// `vezasock canary ENV --abort`: the env's canary entry removed (every request back on the
/// active color); a running canary sees it at its next poll and stops.
pub async fn abort_from_outside(
    edge: &Edge,
    env: &str,
    req_who: &str,
    lock_wait: LockWait,
) -> Result<bool, EdgeError> {
    let env = edge.colored_env(env)?;
    let req = CanaryRequest {
        env: env.name.clone(),
        color: Color::Green,
        steps: vec![100],
        interval: Duration::ZERO,
        limits: Limits::default(),
        sha: None,
        lock_wait,
        who: req_who.to_string(),
    };
    let mut session = edge.admin_session().await?;
    let had = in_progress(edge)?.iter().any(|c| c.env == env.name);
    set_percent(edge, &mut session, env, &req, None).await?;
    Ok(had)
}

/// `vezasock canary ENV --promote`: the env's running canary set to 100 % (every user on its
/// color); the running canary sees it within one poll and ends as a switch. Returns the color,
/// `None` when the env has no canary; refused when its process is gone.
pub async fn promote_from_outside(
    edge: &Edge,
    env: &str,
    who: &str,
    lock_wait: LockWait,
) -> Result<Option<Color>, EdgeError> {
    let env = edge.colored_env(env)?;
    let Some(running) = in_progress(edge)?.into_iter().find(|c| c.env == env.name) else {
        return Ok(None);
    };
    if !running.running {
        // Nobody would run the final switch: a 100 % entry would stay until an abort.
        return Err(EdgeError::Refused(format!(
            "the canary of {} at {} % has no process any more (killed?): `vezasock switch {} {}` \
             promotes it by hand, `vezasock apply` puts it back to 0 %",
            env.name, running.percent, env.name, running.color
        )));
    }
    let mut session = edge.admin_session().await?;
    let _lock = EdgeLock::acquire_async(&edge.state, lock_wait.wait(), Holder::current()).await?;
    // Read again under the lock: the canary may have ended while this waited for it (its last
    // step is a switch that deletes its entry); a 100 % entry written then would stay with
    // nobody to end it (found by the chaos run, docs/chaos.md).
    let Some(running) = in_progress(edge)?
        .into_iter()
        .find(|c| c.env == env.name && c.running)
    else {
        return Ok(None);
    };
    set_percent_locked(edge, &mut session, env, who, Some((running.color, 100))).await?;
    Ok(Some(running.color))
}

/// Both colors' counters over a step, across reloads: each read is on a fresh session, and when
/// the worker changed (a reload or restart: its counters start from 0) the window so far is
/// carried and the new worker counts from zero. What the old worker answered between the last
/// read and the reload (at most one poll) is not counted.
struct Window {
    worker: Option<u32>,
    base: (Counters, Counters),
    carried: (Counters, Counters),
    last: (Counters, Counters),
}

impl Window {
    async fn start(
        session: &mut Session,
        env: &Env,
        colors: (Color, Color),
    ) -> Result<Window, EdgeError> {
        let (worker, now) = read_both(session, env, colors).await?;
        Ok(Window {
            worker,
            base: now,
            carried: Default::default(),
            last: Default::default(),
        })
    }

    /// The window so far (canary, baseline).
    async fn read(
        &mut self,
        session: &mut Session,
        env: &Env,
        colors: (Color, Color),
    ) -> Result<(Counters, Counters), EdgeError> {
        session.reconnect().await?;
        let (worker, now) = read_both(session, env, colors).await?;
        if worker != self.worker {
            self.carried = self.last;
            self.base = Default::default();
            self.worker = worker;
        }
        self.last = (
            add(self.carried.0, now.0.since(self.base.0)),
            add(self.carried.1, now.1.since(self.base.1)),
        );
        Ok(self.last)
    }
}

/// The answering worker's pid and both colors' counters.
async fn read_both(
    session: &mut Session,
    env: &Env,
    (new, old): (Color, Color),
) -> Result<(Option<u32>, (Counters, Counters)), EdgeError> {
    let worker = session.show_info().await?.pid();
    let n = counters(session, env, new).await?;
    let o = counters(session, env, old).await?;
    Ok((worker, (n, o)))
}

fn add(a: Counters, b: Counters) -> Counters {
    Counters {
        requests: a.requests + b.requests,
        errors: a.errors + b.errors,
        econ: a.econ + b.econ,
        eresp: a.eresp + b.eresp,
    }
}

/// Waits one interval (longer while inconclusive, bounded), polling for a breach and for an
/// abort or a promote from another shell.
async fn analyse(
    edge: &Edge,
    session: &mut Session,
    env: &Env,
    req: &CanaryRequest,
    from: Color,
    percent: u8,
) -> Result<CanaryStep, EdgeError> {
    let started = Instant::now();
    let colors = (req.color, from);
    let mut window = Window::start(session, env, colors).await?;
    let longest = req.interval * INCONCLUSIVE_INTERVALS;
    let mut progress = crate::edge::progress::Wait::start();
    loop {
        let elapsed = started.elapsed();
        let wait = if elapsed < req.interval {
            (req.interval - elapsed).min(POLL)
        } else {
            POLL.min(longest.saturating_sub(elapsed))
        };
        tokio::time::sleep(wait).await;
        let entry = file_entries(edge)?
            .into_iter()
            .find(|(name, _, _)| *name == env.name);
        let Some((_, color, now)) = entry else {
            return Err(EdgeError::AnalysisFailed {
                message: format!(
                    "canary of {} {} aborted from outside (`vezasock canary {} --abort`) at \
                     {percent} %: every request is on the active color",
                    env.name, req.color, env.name
                ),
                rolled_back: true,
            });
        };
        let (canary, baseline) = window.read(session, env, colors).await?;
        if now == 100 && color == req.color {
            return Ok(CanaryStep {
                percent,
                canary,
                baseline,
                verdict: Verdict::Promoted,
                ms: crate::edge::flip::ms(started.elapsed()),
            });
        }
        let verdict = verdict(canary, baseline, req.limits);
        let elapsed = started.elapsed();
        progress.show(|| step_line(&env.name, req, percent, canary, elapsed));
        let done = match verdict {
            Verdict::Breach | Verdict::Promoted => true,
            Verdict::Pass => elapsed >= req.interval,
            Verdict::Inconclusive => elapsed >= longest,
        };
        if done {
            return Ok(CanaryStep {
                percent,
                canary,
                baseline,
                verdict,
                ms: crate::edge::flip::ms(elapsed),
            });
        }
    }
}

/// A step's progress line: `canary staging at 10 % on green: 412 request(s), 0 error(s), 4s of
/// 30s`.
fn step_line(
    env: &str,
    req: &CanaryRequest,
    percent: u8,
    canary: Counters,
    took: Duration,
) -> String {
    use crate::edge::progress::seconds;
    format!(
        "canary {env} at {percent} % on {}: {} request(s), {} error(s), {} of {}",
        req.color,
        canary.requests,
        canary.errors,
        seconds(took),
        seconds(req.interval)
    )
}

/// The canary's verdict against its baseline: the allowed share is the limit plus the old
/// color's own 5xx share over the same window.
pub fn verdict(canary: Counters, baseline: Counters, limits: Limits) -> Verdict {
    let allowed = Limits {
        max_error_rate: limits.max_error_rate + baseline.rate(),
        ..limits
    };
    judge(canary, allowed)
}

/// Abort: the entry deleted (one map change), then the error with the numbers (exit 7), or
/// exit 5 when the delete failed.
async fn abort(
    edge: &Edge,
    session: &mut Session,
    env: &Env,
    req: &CanaryRequest,
    why: &str,
) -> EdgeError {
    let put_back = match session.reconnect().await {
        Ok(()) => set_percent(edge, session, env, req, None).await,
        Err(e) => Err(e.into()),
    };
    match put_back {
        Ok(()) => EdgeError::AnalysisFailed {
            message: format!(
                "canary of {} {} aborted: {why}; back to 0 % (every request on the active color)",
                env.name, req.color
            ),
            rolled_back: true,
        },
        Err(e) => EdgeError::AnalysisFailed {
            message: format!(
                "canary of {} {} failed: {why}; setting it back to 0 % failed too: {e}; \
                 `vezasock canary {} --abort` retries",
                env.name, req.color, env.name
            ),
            rolled_back: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Topology;

    #[test]
    fn steps_values_and_verdicts() {
        assert!(check_steps(&[5, 25, 50, 100]).is_ok());
        assert!(check_steps(&[100]).is_ok());
        for bad in [&[][..], &[0, 100], &[5, 5, 100], &[50, 25, 100], &[5, 50]] {
            assert!(check_steps(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_value("green:25"), Some((Color::Green, 25)));
        assert_eq!(parse_value("green:101"), None);
        assert_eq!(parse_value("red:5"), None);
        let c = |requests, errors| Counters {
            requests,
            errors,
            econ: 0,
            eresp: 0,
        };
        let l = Limits::default();
        assert_eq!(verdict(c(100, 5), c(100, 0), l), Verdict::Breach);
        // The old color failing as much is no sign against the new one.
        assert_eq!(verdict(c(100, 5), c(100, 5), l), Verdict::Pass);
        assert_eq!(verdict(c(5, 5), c(100, 0), l), Verdict::Inconclusive);
        assert_eq!(add(c(1, 2), c(10, 20)), c(11, 22));
    }

    #[test]
    fn the_canary_lock_tells_a_running_canary_from_a_gone_one() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut topology = Topology::embedded_default().unwrap_or_else(|e| panic!("{e}"));
        topology.paths.state_dir = dir.path().join("state");
        let edge = Edge::new(topology);
        // No lock file: no canary process (never started, or from before the lock existed).
        assert!(!is_running(&edge, "staging"));
        let held = try_hold(&edge, "staging").unwrap_or_else(|e| panic!("{e}"));
        assert!(held.is_some());
        // A flock is per open file: a second holder in this process is refused too.
        assert!(is_running(&edge, "staging"));
        assert!(matches!(try_hold(&edge, "staging"), Ok(None)));
        assert!(!is_running(&edge, "prod"));
        let pid = std::fs::read_to_string(lock_file(&edge, "staging")).unwrap_or_default();
        assert_eq!(pid.trim(), std::process::id().to_string());
        drop(held);
        assert!(!is_running(&edge, "staging"));
        let line = |running| {
            InProgress {
                env: "staging".into(),
                color: Color::Green,
                percent: 40,
                running,
            }
            .status_line()
        };
        assert!(line(false).contains("INTERRUPTED") && line(false).contains("`vezasock apply`"));
        assert!(!line(true).contains("INTERRUPTED") && line(true).contains("--abort"));
    }
}
