//! `vezasock switch ENV COLOR`: flips one env to a color over the runtime API, with no reload,
//! following DESIGN.md §3 step by step:
//!
//! 1. per-edge lock ([`EdgeLock`]);
//! 2. read the runtime (`show map <active-color.map>`, `show servers state <backend>` of the
//!    target color, pipelined in one batch) and the persisted state (map file, state file);
//!    report drift;
//! 3. gate: every server of the target color of every component UP (running, check passed)
//!    and neither in maint nor in drain, waiting up to `--wait-healthy` when asked;
//! 4. journal the intent, then write the whole `active-color.map` atomically;
//! 5. one `set map <file> <env> <color>` (`add map` when the entry is missing): every
//!    component of the env flips at the same instant, since the frontend picks
//!    `be_<env>_<component>_<color>` from that one map entry; on a refusal the map file is
//!    restored and the failure journalled, so disk and runtime stay as they were;
//! 6. read back (`show map` + the target servers still UP) and compare with the intent;
//! 7. record the history line and the state file, journal `done`;
//! 8. optionally drain the old color and wait for its sessions to reach zero.
//!
//! Why this order is crash-safe: the state file is written last, so it only ever names a
//! verified color. A crash anywhere before step 7 leaves an open journal operation and, from
//! step 4 on, a map file and/or runtime ahead of the state file: `status` reports exactly that,
//! and `repair` (called by `apply`) puts runtime and map file back on the recorded color, or a
//! new `switch` runs the flip again.
//!
//! One admin session carries every command; reads are pipelined batches; nothing sleeps unless
//! `--wait-healthy` or `--drain-old` asks for waiting.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use super::servers::{self, Selection, Then};
use super::{crash_point, Edge, EdgeError};
use crate::render::{self, maps};
use crate::runtime::command::Command;
use crate::runtime::parse::map::MapEntry;
use crate::runtime::parse::servers_state::{OpState, ServersState};
use crate::runtime::parse::Parsed;
use crate::runtime::session::{Reply, Session};
use crate::state::atomic::{read_optional, write_atomic};
use crate::state::{Action, EdgeLock, Holder, Operation, Phase, Wait};
use crate::topology::{Color, Env};

/// How often the gate and the drain poll HAProxy while waiting.
const POLL: Duration = Duration::from_millis(100);

/// How often the gate looks again while the only problem is a health check in progress.
const CHECK_POLL: Duration = Duration::from_millis(5);

/// What to switch, and how.
#[derive(Debug, Clone)]
pub struct SwitchRequest {
    pub env: String,
    /// As typed: checked to be `blue` or `green` before anything happens.
    pub color: String,
    pub sha: Option<String>,
    /// Wait up to this long for the target color to become healthy (`None`: refuse at once).
    pub wait_healthy: Option<Duration>,
    /// Drain the old color after the flip, waiting up to `drain_timeout` for its sessions.
    pub drain_old: bool,
    pub drain_timeout: Duration,
    /// Read and gate only; change nothing.
    pub dry_run: bool,
    /// How long to wait for the per-edge lock.
    pub lock_wait: LockWait,
    /// Who switches (history and journal).
    pub who: String,
    /// `switch`, or `rollback` when called by [`super::rollback`].
    pub action: Action,
}

/// The lock policy, resolved to an instant only when the lock is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockWait {
    /// `--no-wait`.
    No,
    /// Wait up to this long.
    UpTo(Duration),
}

impl SwitchRequest {
    /// A plain switch with the defaults: no health wait, no drain, lock wait 60 s.
    pub fn new(env: &str, color: &str) -> SwitchRequest {
        SwitchRequest {
            env: env.to_string(),
            color: color.to_string(),
            sha: None,
            wait_healthy: None,
            drain_old: false,
            drain_timeout: Duration::from_secs(300),
            dry_run: false,
            lock_wait: LockWait::UpTo(Duration::from_secs(60)),
            who: who(),
            action: Action::Switch,
        }
    }
}

/// Who is acting: `VEZASOCK_WHO` (e.g. set by CI to the job name), else the user name.
pub fn who() -> String {
    for var in ["VEZASOCK_WHO", "USER", "LOGNAME"] {
        if let Ok(v) = std::env::var(var) {
            let v = v.trim();
            if !v.is_empty() && !v.chars().any(char::is_control) {
                return v.to_string();
            }
        }
    }
    format!("uid {}", rustix::process::getuid().as_raw())
}

/// One step of the flip, as printed.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// `lock`, `read`, `gate`, `journal+disk`, `runtime`, `read-back`, `record`, `drain-old`.
    pub name: &'static str,
    /// Milliseconds.
    pub ms: f64,
    pub detail: String,
}

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
    /// Sessions still open on the old color when `--drain-old` gave up waiting.
    pub drain_left: Option<u64>,
    pub notes: Vec<String>,
}

/// The env's active color as each side sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Sides {
    /// `show map`: `None` when the entry is missing (HAProxy then uses the default, blue).
    pub runtime: Option<Color>,
    /// The map file on disk: `None` when the file or the entry is missing.
    pub map_file: Option<Color>,
    /// The state file: `None` when missing (the seed reads that as blue).
    pub state_file: Option<Color>,
}

impl Sides {
    /// Each side's effective color (missing = blue everywhere, as HAProxy and the seed do).
    pub fn effective(&self) -> (Color, Color, Color) {
        let c = |o: Option<Color>| o.unwrap_or(Color::Blue);
        (c(self.runtime), c(self.map_file), c(self.state_file))
    }

    /// True when the three sides do not name the same color.
    pub fn drift(&self) -> bool {
        let (r, m, s) = self.effective();
        r != m || r != s
    }

    /// `runtime green, map file green, state file blue`.
    pub fn describe(&self) -> String {
        let w = |o: Option<Color>, missing: &str| match o {
            Some(c) => c.to_string(),
            None => format!("blue ({missing})"),
        };
        format!(
            "runtime {}, map file {}, state file {}",
            w(self.runtime, "no entry"),
            w(self.map_file, "no entry"),
            w(self.state_file, "no file")
        )
    }
}

/// The color of `env` in `show map` entries (the first entry wins, as in HAProxy's lookup).
pub(crate) fn runtime_color(entries: &[MapEntry], env: &str) -> Result<Option<Color>, EdgeError> {
    entry_color(env, entries.iter().find(|e| e.key == env))
}

/// The color of `env`'s runtime map entry (the first one with its key, as HAProxy matches).
pub(crate) fn entry_color(env: &str, entry: Option<&MapEntry>) -> Result<Option<Color>, EdgeError> {
    match entry {
        None => Ok(None),
        Some(e) => Color::parse(&e.value).map(Some).ok_or_else(|| {
            EdgeError::NotVerified(format!(
                "the runtime active-color map gives env {env:?} the color {:?}, not blue or green",
                e.value
            ))
        }),
    }
}

/// The map file's colors (`None`: no file). A file that does not parse is an error naming it.
pub(crate) fn map_file_colors(edge: &Edge) -> Result<Option<BTreeMap<String, Color>>, EdgeError> {
    let path = edge.topology.paths.active_color_map();
    let Some(bytes) = read_optional(&path)? else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(&bytes);
    maps::parse_colors(&text).map(Some).map_err(|e| {
        EdgeError::BadInput(format!(
            "{}: {e}; fix the file (or re-render it with `vezasock render`)",
            path.display()
        ))
    })
}

/// The map reference HAProxy knows the active color map by: its path as written in the config.
pub(crate) fn map_ref(edge: &Edge) -> String {
    edge.topology
        .paths
        .active_color_map()
        .to_string_lossy()
        .into_owned()
}

/// Writes `active-color.map` with `colors` (envs not listed: blue), rendered exactly as
/// `vezasock render` writes it, atomically.
pub(crate) fn write_map_file(
    edge: &Edge,
    colors: &BTreeMap<String, Color>,
) -> Result<(), EdgeError> {
    let text = render::render_active_color_map(&edge.topology, colors)
        .map_err(|e| EdgeError::BadInput(format!("cannot render active-color.map: {e}")))?;
    write_atomic(&edge.topology.paths.active_color_map(), text.as_bytes())?;
    Ok(())
}

/// One server of a color, as the gate sees it.
#[derive(Debug, Clone, Serialize)]
pub struct GateServer {
    pub backend: String,
    pub server: String,
    /// Why it is not eligible (`None`: UP and ready).
    pub problem: Option<String>,
    /// Set when the problem is maintenance (never waited for).
    pub maint: bool,
    /// Set when the only problem is a health check running right now: HAProxy resets the
    /// result to "unknown" at the start of every check, so an UP server shows no result for
    /// the duration of each check. The gate waits briefly for it (see [`CHECK_GRACE`]).
    pub in_progress: bool,
}

/// How long the gate waits for checks that are running right now, even without
/// `--wait-healthy` (seen on 2.6 under load: an UP server with result "unknown" mid-check).
pub const CHECK_GRACE: Duration = Duration::from_secs(3);

/// `CHK_ST_INPROGRESS` in `srv_check_state`: a check is running.
const CHECK_IN_PROGRESS: u32 = 0x1;

/// The `(backend, server)` pairs of `color` in `env`, per component.
pub(crate) fn color_servers(env: &Env, color: Color) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for comp in &env.components {
        let backend = env.backend_name(&comp.name, color);
        for s in comp.servers.of(color) {
            out.push((backend.clone(), s.name.clone()));
        }
    }
    out
}

/// The backends of `color` in `env`, one per component.
pub(crate) fn color_backends(env: &Env, color: Color) -> Vec<String> {
    env.components
        .iter()
        .map(|c| env.backend_name(&c.name, color))
        .collect()
}

/// Judges every server of `color` from `show servers state` rows: eligible when running, its
/// last check passed, and neither in maint nor in drain.
pub(crate) fn judge(env: &Env, color: Color, states: &ServersState) -> Vec<GateServer> {
    color_servers(env, color)
        .into_iter()
        .map(|(backend, server)| {
            let mut in_progress = false;
            let (problem, maint) = match states.find(&backend, &server) {
                None => (
                    Some("not in `show servers state` (a config without this server?)".to_string()),
                    false,
                ),
                Some(row) if row.admin.is_maint() => (Some("in MAINT".to_string()), true),
                Some(row) if row.admin.is_drain() => (Some("in DRAIN".to_string()), false),
                Some(row) if row.op != OpState::Running => {
                    let check = row.check_status_name().unwrap_or("?");
                    (
                        Some(format!(
                            "not UP (operational state {:?}, last check {check})",
                            row.op
                        )),
                        false,
                    )
                }
                // CHK_RES_PASSED (3) or CHK_RES_CONDPASS (4): a server that has not been
                // checked yet is not known to be healthy.
                Some(row) if !matches!(row.check_result, 3 | 4) => {
                    in_progress = row.check_result == 0 && row.check_state & CHECK_IN_PROGRESS != 0;
                    (
                        Some(format!(
                            "its health check has not passed yet (result {})",
                            row.check_result_name().unwrap_or("?")
                        )),
                        false,
                    )
                }
                Some(_) => (None, false),
            };
            GateServer {
                backend,
                server,
                problem,
                maint,
                in_progress,
            }
        })
        .collect()
}

/// What one pipelined read returned.
struct Observed {
    entries: Vec<MapEntry>,
    states: ServersState,
}

/// `show map <file>` plus `show servers state <backend>` for each given backend, one batch.
async fn observe(
    session: &mut Session,
    map: &str,
    backends: &[String],
) -> Result<Observed, EdgeError> {
    let mut commands = vec![Command::show_map(map, None)?];
    for b in backends {
        commands.push(Command::show_servers_state(Some(b))?);
    }
    let replies = session.batch(&commands).await?;
    let mut entries = Vec::new();
    let mut states = ServersState { rows: Vec::new() };
    for reply in &replies {
        match reply.parse()? {
            Parsed::MapEntries(e) => entries = e,
            Parsed::ServersState(s) => states.rows.extend(s.rows),
            _ => return Err(unexpected(reply)),
        }
    }
    Ok(Observed { entries, states })
}

/// After the connection dropped during the flip: on a new connection, find out whether
/// HAProxy applied it and, if so, set the env back to the color it had. Returns what happened,
/// in words, for the error and the journal.
async fn put_back_runtime(
    edge: &Edge,
    map: &str,
    env: &str,
    before: Option<Color>,
    target: Color,
) -> String {
    let attempt = async {
        let mut session = edge.admin_session().await?;
        let reply = session.send(&Command::show_map(map, None)?).await?;
        let entries = match reply.parse()? {
            Parsed::MapEntries(e) => e,
            _ => return Err(unexpected(&reply)),
        };
        let now = runtime_color(&entries, env)?;
        if now != Some(target) || now == before {
            return Ok(format!(
                "HAProxy did not apply it (the runtime still says {})",
                color_word(now)
            ));
        }
        let undo = match before {
            Some(color) => Command::set_map(map, env, color.as_str())?,
            None => Command::del_map(map, env)?,
        };
        session.send(&undo).await?.check()?;
        Ok(format!(
            "HAProxy had applied it; the runtime was put back to {}",
            color_word(before)
        ))
    };
    match attempt.await {
        Ok(words) => words,
        Err(why) => format!(
            "the runtime may or may not have applied it (checking again failed: {why}): run `vezasock status`"
        ),
    }
}

fn color_word(color: Option<Color>) -> &'static str {
    color.map_or("no entry", Color::as_str)
}

fn unexpected(reply: &Reply) -> EdgeError {
    EdgeError::NotVerified(format!(
        "`{}` answered something unexpected: {:?}",
        reply.command,
        reply.text()
    ))
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Step timing and reporting.
struct Steps<'a> {
    started: Instant,
    last: Instant,
    steps: Vec<Step>,
    on_step: &'a mut dyn FnMut(&Step),
}

impl Steps<'_> {
    fn done(&mut self, name: &'static str, detail: String) {
        let now = Instant::now();
        let step = Step {
            name,
            ms: ms(now - self.last),
            detail,
        };
        self.last = now;
        (self.on_step)(&step);
        self.steps.push(step);
    }
}

/// Parses the color argument, refusing anything but `blue` / `green`.
pub fn parse_color(word: &str) -> Result<Color, EdgeError> {
    Color::parse(word)
        .ok_or_else(|| EdgeError::BadInput(format!("{word:?} is not a color: use blue or green")))
}

/// The env, checked to have colors.
pub(crate) fn colored_env<'a>(edge: &'a Edge, name: &str) -> Result<&'a Env, EdgeError> {
    let env = edge.env(name)?;
    if !env.colored {
        return Err(EdgeError::BadInput(format!(
            "env {name:?} has no colors (its components are plain pools): there is nothing to switch"
        )));
    }
    Ok(env)
}

/// Runs a switch. `on_step` is called as each step completes (the CLI prints it live).
pub async fn switch(
    edge: &Edge,
    req: &SwitchRequest,
    on_step: &mut dyn FnMut(&Step),
) -> Result<SwitchReport, EdgeError> {
    // Bad input is refused before anything is touched, lock included.
    let env = colored_env(edge, &req.env)?;
    let target = parse_color(&req.color)?;
    if let Some(sha) = &req.sha {
        if sha.is_empty() || sha.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(EdgeError::BadInput(format!(
                "--sha {sha:?}: a sha is one word without spaces"
            )));
        }
    }
    let now = Instant::now();
    let mut steps = Steps {
        started: now,
        last: now,
        steps: Vec::new(),
        on_step,
    };

    // 1. Lock (not for a dry run: it changes nothing).
    let lock = if req.dry_run {
        None
    } else {
        let wait = match req.lock_wait {
            LockWait::No => Wait::No,
            LockWait::UpTo(d) => Wait::up_to(d),
        };
        let lock = EdgeLock::acquire(&edge.state, wait, Holder::current())?;
        steps.done("lock", format!("{}", edge.state.lock_file().display()));
        crash_point("after-lock");
        Some(lock)
    };

    // 2. Read runtime and persisted state.
    let map = map_ref(edge);
    let mut session = edge.admin_session().await?;
    let backends = color_backends(env, target);
    let observed = observe(&mut session, &map, &backends).await?;
    let file_colors = map_file_colors(edge)?;
    let sides = Sides {
        runtime: runtime_color(&observed.entries, &env.name)?,
        map_file: file_colors.as_ref().and_then(|c| c.get(&env.name).copied()),
        state_file: edge.state.recorded_color(&env.name)?,
    };
    let from = sides.effective().0;
    let mut drift = Vec::new();
    if sides.drift() {
        drift.push(format!("DRIFT on {}: {}", env.name, sides.describe()));
    }
    let open: Vec<_> = edge
        .state
        .open_operations()?
        .into_iter()
        .filter(|op| op.env.as_deref() == Some(env.name.as_str()))
        .collect();
    for op in &open {
        drift.push(format!("{op}"));
    }
    steps.done(
        "read",
        format!(
            "{}{}",
            sides.describe(),
            if drift.is_empty() {
                String::new()
            } else {
                format!("; {}", drift.join("; "))
            }
        ),
    );

    let (r, m, s) = sides.effective();
    if r == target && m == target && s == target && open.is_empty() {
        steps.done(
            "done",
            format!("{} is already {target}: nothing to do", env.name),
        );
        return Ok(report(
            req,
            env,
            from,
            target,
            true,
            drift,
            steps,
            None,
            Vec::new(),
        ));
    }

    // 3. Gate.
    let mut judged = judge(env, target, &observed.states);
    let gate_start = Instant::now();
    let deadline = req.wait_healthy.map(|d| gate_start + d);
    let mut polls = 0u32;
    loop {
        let bad: Vec<&GateServer> = judged.iter().filter(|g| g.problem.is_some()).collect();
        if bad.is_empty() {
            break;
        }
        let maint = bad.iter().any(|g| g.maint);
        let checking = bad.iter().all(|g| g.in_progress)
            && Instant::now() + CHECK_POLL < gate_start + CHECK_GRACE;
        let waiting = !maint
            && (checking || (!req.dry_run && deadline.is_some_and(|d| Instant::now() + POLL < d)));
        if !waiting {
            let list: Vec<String> = bad
                .iter()
                .map(|g| {
                    format!(
                        "{}/{} {}",
                        g.backend,
                        g.server,
                        g.problem.as_deref().unwrap_or("")
                    )
                })
                .collect();
            let waited = match (req.wait_healthy, maint) {
                (Some(d), false) => format!(" after waiting {:.1}s", d.as_secs_f64()),
                _ => String::new(),
            };
            let hint = if maint {
                format!(
                    "; put it back with `vezasock ready {} {target}` first",
                    env.name
                )
            } else if req.wait_healthy.is_none() {
                " (--wait-healthy DURATION waits for it)".to_string()
            } else {
                String::new()
            };
            return Err(EdgeError::Refused(format!(
                "refusing to switch {} to {target}{waited}: {}{hint}; nothing was changed",
                env.name,
                list.join(", ")
            )));
        }
        // A check in progress ends within its own timeout, usually milliseconds: look again
        // soon rather than adding a whole poll period to the flip.
        tokio::time::sleep(if checking { CHECK_POLL } else { POLL }).await;
        polls += 1;
        let again = observe(&mut session, &map, &backends).await?;
        judged = judge(env, target, &again.states);
    }
    steps.done(
        "gate",
        format!(
            "{} server(s) of {target} UP and ready{}",
            judged.len(),
            if polls > 0 {
                format!(" (after {polls} polls)")
            } else {
                String::new()
            }
        ),
    );

    if req.dry_run {
        let plan = [
            format!(
                "journal the intent, write {} with {} {target}",
                map, env.name
            ),
            format!(
                "{} map {map} {} {target}",
                if sides.runtime.is_some() {
                    "set"
                } else {
                    "add"
                },
                env.name
            ),
            format!(
                "read back, then record {target} in {}",
                edge.state.color_file(&env.name)?.display()
            ),
        ];
        for line in plan {
            steps.done("would", line);
        }
        if req.drain_old && from != target {
            steps.done(
                "would",
                format!("drain {from} and wait up to {:?}", req.drain_timeout),
            );
        }
        return Ok(report(
            req,
            env,
            from,
            target,
            false,
            drift,
            steps,
            None,
            Vec::new(),
        ));
    }

    // 4. Journal, then the map file.
    let op = Operation::new(
        req.action,
        Some(&env.name),
        Some(from.as_str()),
        Some(target.as_str()),
        &req.who,
    );
    edge.state
        .journal_record(&op, Phase::Intent, req.sha.as_deref())?;
    crash_point("after-journal");
    let map_path = edge.topology.paths.active_color_map();
    let old_bytes = read_optional(&map_path)?;
    let mut colors = file_colors.unwrap_or_default();
    colors.insert(env.name.clone(), target);
    if let Err(e) = write_map_file(edge, &colors) {
        let _ = edge.state.journal_record(
            &op,
            Phase::Failed,
            Some(&format!("map file not written: {e}")),
        );
        return Err(e);
    }
    edge.state.journal_record(&op, Phase::DiskWritten, None)?;
    steps.done(
        "journal+disk",
        format!("{} {} {target}", map_path.display(), env.name),
    );
    crash_point("after-disk");

    // 5. One runtime change for every component of the env.
    let change = if sides.runtime.is_some() {
        Command::set_map(&map, &env.name, target.as_str())?
    } else {
        Command::add_map(&map, None, &env.name, target.as_str())?
    };
    if let Err(e) = session.send(&change).await {
        // Put the file back so disk and runtime stay as they were.
        let restored = match &old_bytes {
            Some(bytes) => write_atomic(&map_path, bytes).map_err(|e| e.to_string()),
            None => std::fs::remove_file(&map_path).map_err(|e| e.to_string()),
        };
        // A refusal changed nothing. A dropped connection may or may not have applied the
        // change: look on a new connection and put the runtime back, so the edge is as it was.
        let runtime = if e.is_refused() {
            String::new()
        } else {
            format!(
                "; {}",
                put_back_runtime(edge, &map, &env.name, sides.runtime, target).await
            )
        };
        let detail = format!(
            "{e}; map file {}{runtime}",
            match &restored {
                Ok(()) => "restored".to_string(),
                Err(why) => format!("NOT restored ({why})"),
            },
        );
        let _ = edge.state.journal_record(&op, Phase::Failed, Some(&detail));
        if let Err(why) = restored {
            return Err(EdgeError::NotVerified(format!(
                "{e}; and restoring {} failed: {why}; run `vezasock status`",
                map_path.display()
            )));
        }
        if e.is_refused() {
            return Err(e.into());
        }
        return Err(EdgeError::Interrupted {
            source: e,
            detail: format!("map file restored{runtime}"),
        });
    }
    edge.state
        .journal_record(&op, Phase::RuntimeApplied, None)?;
    steps.done(
        "runtime",
        format!(
            "{} map {map} {} {target}",
            if sides.runtime.is_some() {
                "set"
            } else {
                "add"
            },
            env.name
        ),
    );
    crash_point("after-runtime");

    // 6. Read back.
    let back = observe(&mut session, &map, &backends).await?;
    let live = runtime_color(&back.entries, &env.name)?;
    let mut problems = Vec::new();
    if live != Some(target) {
        problems.push(format!(
            "the runtime map says {:?} for {}",
            live.map(Color::as_str),
            env.name
        ));
    }
    // A check running right now is no sign of trouble: the server is still UP.
    for g in judge(env, target, &back.states)
        .into_iter()
        .filter(|g| !g.in_progress)
    {
        if let Some(p) = g.problem {
            problems.push(format!("{}/{} {p}", g.backend, g.server));
        }
    }
    if !problems.is_empty() {
        let detail = format!("read-back disagrees: {}", problems.join(", "));
        let _ = edge.state.journal_record(&op, Phase::Failed, Some(&detail));
        return Err(EdgeError::NotVerified(format!(
            "{} was switched to {target} on disk and in the runtime, but {detail}; the state file still says {}: \
             `vezasock apply` puts it back, or switch again",
            env.name,
            sides.effective().2
        )));
    }
    edge.state.journal_record(&op, Phase::Verified, None)?;
    steps.done(
        "read-back",
        format!("{} is {target}; its servers are UP", env.name),
    );
    crash_point("after-readback");

    // 7. Record: the state file last, so it only ever names a verified color.
    edge.state.record_switch(
        &env.name,
        target,
        req.sha.as_deref(),
        &req.who,
        SystemTime::now(),
    )?;
    for old in &open {
        let superseded = Operation {
            op_id: old.op_id.clone(),
            who: req.who.clone(),
            env: old.env.clone(),
            action: old.action,
            before: old.before.clone(),
            after: old.after.clone(),
        };
        edge.state.journal_record(
            &superseded,
            Phase::Failed,
            Some(&format!(
                "interrupted; superseded by op {} which left {} on {target}",
                op.op_id, env.name
            )),
        )?;
    }
    edge.state
        .journal_record(&op, Phase::Done, req.sha.as_deref())?;
    steps.done(
        "record",
        format!(
            "{} = {target}, history +1",
            edge.state.color_file(&env.name)?.display()
        ),
    );

    // 8. Drain the old color, through the servers module (written through to disk like an
    // operator's `vezasock drain`). It takes the edge lock itself, so ours is released first:
    // the switch is complete and recorded, nothing is left half-done in between.
    let mut notes = Vec::new();
    let mut drain_left = None;
    drop(lock);
    if req.drain_old && from != target {
        let selection = Selection::Env {
            env: env.name.clone(),
            color: Some(from),
            component: None,
            server: None,
        };
        let servers = servers::resolve(edge, &selection)?;
        let wait = match req.lock_wait {
            LockWait::No => Wait::No,
            LockWait::UpTo(d) => Wait::up_to(d),
        };
        let drained = servers::drain(
            edge,
            &selection,
            &servers,
            servers::DrainHow {
                deadline: Some(req.drain_timeout),
                then: Then::Leave,
                // The old color is no longer live: the live-color guard has nothing to say.
                force: false,
            },
            wait,
            &mut |_, _| {},
        )
        .await?;
        let left: u64 = drained
            .wait
            .as_ref()
            .map_or(0, |w| w.busy.iter().map(|b| b.sessions).sum());
        notes.push(format!(
            "{from} servers set to DRAIN (recorded in {})",
            drained.drain.admin_file.display()
        ));
        steps.done(
            "drain-old",
            match left {
                0 => format!("{from} drained: no session left"),
                n => format!(
                    "{from} in DRAIN; {n} session(s) still open after {:?}",
                    req.drain_timeout
                ),
            },
        );
        drain_left = Some(left);
    }
    Ok(report(
        req, env, from, target, false, drift, steps, drain_left, notes,
    ))
}

#[allow(clippy::too_many_arguments)]
fn report(
    req: &SwitchRequest,
    env: &Env,
    from: Color,
    to: Color,
    noop: bool,
    drift: Vec<String>,
    steps: Steps<'_>,
    drain_left: Option<u64>,
    notes: Vec<String>,
) -> SwitchReport {
    SwitchReport {
        env: env.name.clone(),
        from,
        to,
        sha: req.sha.clone(),
        noop,
        dry_run: req.dry_run,
        drift,
        total_ms: ms(steps.started.elapsed()),
        steps: steps.steps,
        drain_left: drain_left.filter(|n| *n > 0),
        notes,
    }
}

/// The recorded color of every colored env (state files; missing = blue), for `repair` and
/// `status`.
pub(crate) fn recorded_colors(edge: &Edge) -> Result<BTreeMap<String, Color>, EdgeError> {
    let mut out = BTreeMap::new();
    for env in edge.topology.envs.iter().filter(|e| e.colored) {
        out.insert(env.name.clone(), edge.state.active_color(&env.name)?);
    }
    Ok(out)
}
