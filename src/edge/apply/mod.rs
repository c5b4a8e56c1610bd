//! `apply`: bring the edge to the desired state — the topology with the recorded active
//! colors — by the cheapest safe path (docs/architecture.md §2):
//!
//! - nothing differs (files and runtime maps) → nothing is written, nothing reloaded;
//! - same shape, other map entries (a host, a color) → the map files are rewritten atomically,
//!   then each changed runtime map is replaced in one transaction (`prepare map`, `add map
//!   @<ver>` per entry, `commit map`) and read back: no reload;
//! - only server addresses changed → each moved server gets `set server <b>/<s> addr <ip>
//!   port <port>`, is read back, and then the server-state file and the config are rewritten
//!   (no reload) so a later reload keeps the new address ([`move_servers`]);
//! - the shape changed → the reload path ([`crate::edge::apply::reload`]).
//!
//! Desired colors: the state file of each env (`active-color-<env>`, written last by a
//! completed switch; missing = blue). Before planning, `repair` (under the same lock) closes
//! interrupted switches and brings the color map file and runtime back to those colors.
//!
//! Under the per-edge lock; every phase is journalled (action `apply`).
//!
//! **Takeover**: when HAProxy runs a config vezasock did not render (no shape line on its
//! first line), `apply` takes it over: each env's color is decided as
//! [`crate::plan::takeover`] says (flag, state file, runtime; else refused, nothing changed),
//! the seed's state files are imported when their dir is named, and the edge goes through the
//! reload path ([`crate::edge::apply::reload`]: `haproxy -c`, backup, swap, one confirmed reload, verify,
//! rescue). A foreign config has no vezasock maps and other backends: those reads are planning
//! facts, not failures. The crash repair is skipped (there is nothing of vezasock's to repair).

pub mod install;
pub mod moves;
pub mod pool;
pub mod reload;
pub mod repair;
pub mod takeover;

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use serde::Serialize;

use self::moves::{after_moves, close_reached, move_servers, prepare_moves};
use self::reload::ReloadOutcome;
use self::takeover::take_over;
pub use self::takeover::takeover_plan;
use crate::edge::apply::repair::{repair_locked, RepairReport};
use crate::edge::{Edge, EdgeError};
use crate::plan::{plan, LiveView, Plan};
use crate::render::{maps, render, shape, Rendered, ShapeSummary};
use crate::runtime::command::maps::AddMap;
use crate::runtime::session::Session;
use crate::state::atomic::{read_optional, write_atomic};
use crate::state::{Action, EdgeLock, Holder, Operation, Phase, Wait};
use crate::topology::{Color, Paths};

/// How to apply.
#[derive(Debug, Clone, Copy)]
pub struct ApplyOptions {
    /// Only say what would be done (no lock, nothing written).
    pub dry_run: bool,
    /// What to do when another vezasock holds the edge's lock.
    pub wait: Wait,
    /// `--reload`: take the reload path for pool changes the running HAProxy refuses over the
    /// runtime API (without it, `apply` refuses them and changes nothing).
    pub allow_reload: bool,
}

/// What a takeover may use to decide each env's color.
#[derive(Debug, Clone, Default)]
pub struct TakeoverOptions {
    /// `--color ENV=COLOR`: wins over every other source.
    pub colors: BTreeMap<String, Color>,
    /// `--seed-state DIR`: the seed's `active-color-<env>` and `.history` files, imported into
    /// the state dir (without it, the state dir's own files are read).
    pub seed_state: Option<PathBuf>,
}

/// What a takeover did besides the reload.
#[derive(Debug, Clone, Serialize)]
pub struct TakeoverReport {
    /// Each env's color and where it came from.
    pub colors: Vec<crate::plan::takeover::ColorDecision>,
    /// State and history files written (imported or recorded), one line each.
    pub recorded: Vec<String>,
}

/// What `apply` did.
#[derive(Debug, Clone, Serialize)]
pub struct ApplyReport {
    pub desired_fingerprint: String,
    pub live_fingerprint: Option<String>,
    /// What the files on disk called for.
    pub plan: Plan,
    pub dry_run: bool,
    /// Files rewritten (runtime path; the reload path reports its own swap).
    pub files_written: Vec<PathBuf>,
    /// Runtime map replacements, one line each (also when only the runtime disagreed).
    pub runtime_changes: Vec<String>,
    /// The reload, when the shape changed.
    pub reload: Option<ReloadOutcome>,
    /// What the crash repair fixed first (interrupted switches, color drift).
    pub repair: Option<RepairReport>,
    /// A takeover of a config vezasock did not render: the colors and the state written.
    pub takeover: Option<TakeoverReport>,
}

impl ApplyReport {
    /// True when the edge was not touched at all.
    pub fn untouched(&self) -> bool {
        self.files_written.is_empty()
            && self.runtime_changes.is_empty()
            && self.reload.is_none()
            && self.takeover.is_none()
            && self.repair.as_ref().is_none_or(RepairReport::is_clean)
    }
}

/// Reads a file that may not exist yet.
pub(super) fn read_text(path: &Path) -> Result<Option<String>, String> {
    match crate::files::read_bounded_text(path, crate::files::limit::STATE) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// What is live on disk: the config's declared fingerprint, its shape summary and the maps.
/// Missing files read as empty; unreadable or malformed ones are errors.
pub fn read_live(paths: &Paths) -> Result<LiveView, String> {
    let fingerprint = read_text(&paths.config)?.and_then(|c| shape::declared_fingerprint(&c));
    let summary_path = shape::summary_path(&paths.config);
    let summary = match read_text(&summary_path)? {
        Some(text) => Some(
            serde_json::from_str::<ShapeSummary>(&text)
                .map_err(|e| format!("{}: not a shape summary: {e}", summary_path.display()))?,
        ),
        None => None,
    };
    let hosts = match read_text(&paths.hosts_map())? {
        Some(t) => {
            maps::parse_map(&t).map_err(|e| format!("{}: {e}", paths.hosts_map().display()))?
        }
        None => Default::default(),
    };
    let colors = match read_text(&paths.active_color_map())? {
        Some(t) => maps::parse_colors(&t)
            .map_err(|e| format!("{}: {e}", paths.active_color_map().display()))?,
        None => Default::default(),
    };
    Ok(LiveView {
        fingerprint,
        summary,
        hosts,
        colors,
        haproxy_version: None,
    })
}

/// The desired active colors: the recorded color of each colored env (missing state file =
/// blue), the same rule `repair` uses, so the two never pull in different directions.
pub fn desired_colors(edge: &Edge) -> Result<BTreeMap<String, Color>, EdgeError> {
    let mut colors = BTreeMap::new();
    for env in edge.topology.envs.iter().filter(|e| e.colored) {
        colors.insert(env.name.clone(), edge.state.active_color(&env.name)?);
    }
    Ok(colors)
}

/// Renders the desired edge and plans against the live files.
/// When servers were added to or removed from a pool, the running HAProxy's version is asked
/// (what `add server` takes depends on it).
pub async fn desired_plan(edge: &Edge) -> Result<(Rendered, LiveView, Plan), EdgeError> {
    let mut live = read_live(&edge.topology.paths).map_err(EdgeError::Refused)?;
    let colors = desired_colors(edge)?;
    let rendered =
        render(&edge.topology, &colors).map_err(|e| EdgeError::BadInput(e.to_string()))?;
    if has_pool_changes(&rendered, &live) {
        live.haproxy_version = crate::edge::apply::pool::running_version(edge).await;
    }
    let p = plan(&rendered, &live);
    Ok((rendered, live, p))
}

/// True when servers were added to or removed from a pool between the live config and
/// `rendered`.
pub fn has_pool_changes(rendered: &Rendered, live: &LiveView) -> bool {
    live.summary.as_ref().is_some_and(|s| {
        rendered
            .summary
            .pool_changes(s)
            .is_some_and(|c| !c.is_empty() || !rendered.summary.new_backends(s).is_empty())
    })
}

/// Applies the topology to the edge (see the module doc); a takeover uses no flag.
pub async fn apply(edge: &Edge, options: ApplyOptions) -> Result<ApplyReport, EdgeError> {
    apply_with(edge, options, &TakeoverOptions::default()).await
}

/// True when HAProxy runs a config vezasock did not render: the live config declares no shape
/// fingerprint and the admin socket answers (no config and no HAProxy is a first install).
pub async fn is_takeover(edge: &Edge, live: &LiveView) -> bool {
    live.fingerprint.is_none()
        && crate::edge::apply::install::not_running(edge)
            .await
            .is_none()
}

/// The lock policy of `wait`, for the transaction's own lock.
fn lock_wait(wait: Wait) -> crate::edge::flip::LockWait {
    match wait {
        Wait::No => crate::edge::flip::LockWait::No,
        Wait::Until(deadline) => crate::edge::flip::LockWait::UpTo(
            deadline.saturating_duration_since(std::time::Instant::now()),
        ),
    }
}

/// Removes `active-color.map.pending` when no open transaction owns it (a transaction ended
/// by hand, or an older vezasock's leftover): HAProxy never reads it, but it reads as a
/// transaction's. Under the edge lock.
fn remove_stale_pending(edge: &Edge) -> Result<Option<String>, EdgeError> {
    let mut pending = edge.topology.paths.active_color_map().into_os_string();
    pending.push(".pending");
    let pending = PathBuf::from(pending);
    if edge.state.open_transaction()?.is_some() || std::fs::symlink_metadata(&pending).is_err() {
        return Ok(None);
    }
    std::fs::remove_file(&pending).map_err(|e| crate::state::Error::io("remove", &pending, e))?;
    Ok(Some(format!(
        "removed {}: no open transaction owns it",
        pending.display()
    )))
}

/// [`apply`] with the takeover's color sources.
pub async fn apply_with(
    edge: &Edge,
    options: ApplyOptions,
    takeover: &TakeoverOptions,
) -> Result<ApplyReport, EdgeError> {
    let live = read_live(&edge.topology.paths).map_err(EdgeError::Refused)?;
    if is_takeover(edge, &live).await {
        return take_over(edge, options, takeover, &live).await;
    }
    if options.dry_run {
        let (rendered, live, p) = desired_plan(edge).await?;
        return Ok(ApplyReport {
            desired_fingerprint: rendered.fingerprint,
            live_fingerprint: live.fingerprint,
            plan: p,
            dry_run: true,
            files_written: Vec::new(),
            runtime_changes: Vec::new(),
            reload: None,
            repair: None,
            takeover: None,
        });
    }
    let (lock, repaired) = lock_and_repair(edge, options.wait).await?;
    // Read under the lock and after the repair: a switch that just finished is seen.
    let (rendered, live, p) = desired_plan(edge).await?;
    let mut report = ApplyReport {
        desired_fingerprint: rendered.fingerprint.clone(),
        live_fingerprint: live.fingerprint.clone(),
        plan: p.clone(),
        dry_run: false,
        files_written: Vec::new(),
        runtime_changes: Vec::new(),
        reload: None,
        repair: Some(repaired),
        takeover: None,
    };
    let target = Target {
        edge,
        rendered: &rendered,
        live: &live,
    };
    match &p {
        Plan::Nothing => apply_nothing(&target, &mut report).await?,
        Plan::Runtime { steps, .. } => apply_runtime(&target, &p, steps, &mut report).await?,
        // Only built by `take_over`; `plan()` never answers it.
        Plan::Takeover { .. } => {}
        Plan::Reload {
            reasons,
            refused_at_runtime,
            ..
        } => {
            let why = Reload {
                reasons,
                refused_at_runtime,
                allowed: options.allow_reload,
            };
            apply_reload(&target, &why, &mut report).await?
        }
    }
    drop(lock);
    Ok(report)
}

/// What one apply works towards: the edge, the rendered config and what is live.
struct Target<'a> {
    edge: &'a Edge,
    rendered: &'a Rendered,
    live: &'a LiveView,
}

/// Why a plan reloads, and whether `--reload` allows the pool changes HAProxy refuses at runtime.
struct Reload<'a> {
    reasons: &'a [String],
    refused_at_runtime: &'a [String],
    allowed: bool,
}

/// Ends an open transaction, takes the lock, removes dead writers' temp files and a pending map
/// no transaction owns, then repairs an interrupted switch (rolled back to the recorded color in
/// the map file and the runtime, its journal operation closed).
async fn lock_and_repair(edge: &Edge, wait: Wait) -> Result<(EdgeLock, RepairReport), EdgeError> {
    // A transaction open on the edge is ended at once, expired or not (its owner, when alive,
    // holds the lock: then this waits like for the lock and says who holds it).
    let ended = crate::edge::flip::transaction::abort_open(edge, lock_wait(wait)).await?;
    let lock = EdgeLock::acquire_async(&edge.state, wait, Holder::current()).await?;
    // Temp files of writers that were killed (their pid is gone) are clutter: remove them.
    let certs_dir = edge.topology.tls.as_ref().map(|t| &t.certs_dir);
    for dir in [
        Some(&edge.topology.paths.maps_dir),
        Some(&edge.topology.paths.state_dir),
        certs_dir,
    ]
    .into_iter()
    .flatten()
    {
        crate::files::remove_dead_leftovers(dir);
    }
    let stale = remove_stale_pending(edge)?;
    let mut repaired = repair_locked(edge, &lock).await?;
    repaired.fixed.splice(0..0, ended.into_iter().chain(stale));
    Ok((lock, repaired))
}

/// The plan is nothing: the files match, but the runtime may still lag.
async fn apply_nothing(t: &Target<'_>, report: &mut ApplyReport) -> Result<(), EdgeError> {
    let (edge, rendered, live) = (t.edge, t.rendered, t.live);
    // The files match; the runtime may still lag (a switch killed before its runtime
    // step). Replace only the maps that differ; nothing is written when none does.
    let mut session = edge.admin_session().await?;
    let changes = sync_runtime_maps(&mut session, edge, rendered).await?;
    if !changes.is_empty() {
        let op = operation(live, rendered);
        edge.state.journal_record(
            &op,
            Phase::Intent,
            Some("runtime maps differ from the map files"),
        )?;
        edge.state
            .journal_record(&op, Phase::RuntimeApplied, Some(&changes.join("; ")))?;
        edge.state.journal_record(&op, Phase::Done, None)?;
    }
    report.runtime_changes = changes;
    // A runtime apply killed after its runtime step and its writes: the files and the
    // runtime now hold what it wanted, so it is finished, not interrupted.
    let closed = close_reached(
        edge,
        &rendered.fingerprint,
        true,
        "this apply found its files written and its runtime step done",
    )?;
    if let Some(r) = report.repair.as_mut() {
        r.closed.extend(closed);
    }
    Ok(())
}

/// The runtime plan: servers moved or pools changed at runtime, then the maps written and
/// synced; a refused runtime edit puts the map files back.
async fn apply_runtime(
    t: &Target<'_>,
    p: &Plan,
    steps: &[crate::plan::RuntimeStep],
    report: &mut ApplyReport,
) -> Result<(), EdgeError> {
    let (edge, rendered, live) = (t.edge, t.rendered, t.live);
    let op = operation(live, rendered);
    let detail: Vec<String> = steps.iter().map(ToString::to_string).collect();
    // Bad input and a candidate `haproxy -c` refuses are refused before the intent.
    let moves = prepare_moves(edge, rendered, &p.server_moves())?;
    let pools = crate::edge::apply::pool::prepare_pool(rendered, live, steps)?;
    if moves.is_empty() && !pools.is_empty() {
        reload::check_candidate(edge, rendered)?;
    }
    edge.state
        .journal_record(&op, Phase::Intent, Some(&detail.join("; ")))?;
    let moved = if moves.is_empty() && pools.is_empty() {
        None
    } else if pools.is_empty() {
        Some(move_servers(edge, rendered, &moves, &op).await?)
    } else {
        // A plan never holds both (a move with a pool change is one reload).
        Some(crate::edge::apply::pool::change_pools(edge, rendered, &pools, &op).await?)
    };
    if let Some(m) = &moved {
        report.runtime_changes.extend(m.changes.iter().cloned());
        report.files_written.extend(m.files.iter().cloned());
    }
    let (written, old) = match write_maps(edge, rendered) {
        Ok(w) => w,
        Err(e) => {
            let _ = edge
                .state
                .journal_record(&op, Phase::Failed, Some(&e.to_string()));
            return Err(after_moves(moved.as_ref(), e));
        }
    };
    edge.state.journal_record(&op, Phase::DiskWritten, None)?;
    let applied = match edge.admin_session().await {
        Ok(mut session) => sync_runtime_maps(&mut session, edge, rendered).await,
        Err(e) => Err(e),
    };
    match applied {
        Ok(changes) => {
            edge.state
                .journal_record(&op, Phase::Verified, Some(&changes.join("; ")))?;
            edge.state.journal_record(&op, Phase::Done, None)?;
            report.runtime_changes.extend(changes);
            report.files_written.extend(written);
            // An earlier apply killed mid-move or mid-pool-change wanted this same
            // config: done now. With maps alone, only one that reached its runtime
            // step (a new env killed before its maps were written).
            let by = if moved.is_some() {
                format!("op {} changed the servers again", op.op_id)
            } else {
                format!("op {} wrote the maps", op.op_id)
            };
            let closed = close_reached(edge, &rendered.fingerprint, moved.is_none(), &by)?;
            if let Some(r) = report.repair.as_mut() {
                r.closed.extend(closed);
            }
        }
        Err(e) => {
            // A refused runtime edit leaves the runtime as it was (the transaction
            // was not committed): put the files back so disk and runtime agree.
            for (path, bytes) in &old {
                let _ = match bytes {
                    Some(b) => write_atomic(path, b).map_err(|e| e.to_string()),
                    None => std::fs::remove_file(path).map_err(|e| e.to_string()),
                };
            }
            let _ = edge.state.journal_record(
                &op,
                Phase::RolledBack,
                Some(&format!("map files restored: {e}")),
            );
            return Err(after_moves(moved.as_ref(), e));
        }
    }
    Ok(())
}

/// The reload path (refused when HAProxy would refuse a pool change at runtime and `--reload`
/// was not given).
async fn apply_reload(
    t: &Target<'_>,
    why: &Reload<'_>,
    report: &mut ApplyReport,
) -> Result<(), EdgeError> {
    let (edge, rendered, live) = (t.edge, t.rendered, t.live);
    if !why.refused_at_runtime.is_empty() && !why.allowed {
        return Err(EdgeError::Refused(format!(
            "HAProxy refuses these pool changes over the runtime API: {}; nothing was \
             changed. `vezasock apply --reload` takes the reload path for them",
            why.refused_at_runtime.join("; ")
        )));
    }
    let op = operation(live, rendered);
    edge.state
        .journal_record(&op, Phase::Intent, Some(&why.reasons.join("; ")))?;
    match reload::reload(edge, rendered).await {
        Ok(outcome) => {
            edge.state.journal_record(&op, Phase::Done, None)?;
            report.reload = Some(outcome);
        }
        Err(e) => {
            let phase = match &e {
                EdgeError::NotVerified(_) => Phase::RolledBack,
                _ => Phase::Failed,
            };
            let _ = edge.state.journal_record(&op, phase, Some(&e.to_string()));
            return Err(e);
        }
    }
    Ok(())
}

/// The journal operation of one apply: shape fingerprints before and after.
pub(super) fn operation(live: &LiveView, rendered: &Rendered) -> Operation {
    Operation::new(
        Action::Apply,
        None,
        live.fingerprint.as_deref(),
        Some(&rendered.fingerprint),
        &crate::state::who(),
    )
}

/// Rewrites the map files whose content differs. Returns the paths written and every map
/// file's previous bytes (to restore on failure).
#[allow(clippy::type_complexity)]
fn write_maps(
    edge: &Edge,
    rendered: &Rendered,
) -> Result<(Vec<PathBuf>, Vec<(PathBuf, Option<Vec<u8>>)>), EdgeError> {
    let paths = &edge.topology.paths;
    let mut written = Vec::new();
    let mut old = Vec::new();
    for (path, text) in [
        (paths.hosts_map(), &rendered.hosts_map),
        (paths.active_color_map(), &rendered.active_color_map),
    ] {
        let bytes = read_optional(&path)?;
        if bytes.as_deref() != Some(text.as_bytes()) {
            write_atomic(&path, text.as_bytes())?;
            written.push(path.clone());
        }
        old.push((path, bytes));
    }
    Ok((written, old))
}

/// Makes both runtime maps hold exactly the rendered entries: a map that differs is replaced
/// in one transaction and read back. Returns one line per replaced map.
async fn sync_runtime_maps(
    session: &mut Session,
    edge: &Edge,
    rendered: &Rendered,
) -> Result<Vec<String>, EdgeError> {
    let paths = &edge.topology.paths;
    let colors: BTreeMap<String, String> = rendered
        .colors
        .iter()
        .map(|(e, c)| (e.clone(), c.to_string()))
        .collect();
    let mut changes = Vec::new();
    for (path, desired) in [
        (paths.hosts_map(), &rendered.hosts),
        (paths.active_color_map(), &colors),
    ] {
        let map = path.to_string_lossy().into_owned();
        let live = session.show_map(&map, None).await?;
        let mut live_pairs: Vec<(String, String)> =
            live.into_iter().map(|e| (e.key, e.value)).collect();
        live_pairs.sort();
        let desired_pairs: Vec<(String, String)> = desired
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if live_pairs == desired_pairs {
            continue;
        }
        // prepare / add @ver / commit: the map switches to the new entries at one instant.
        let version = session.prepare_map(&map).await?;
        let mut adds = Vec::with_capacity(desired.len());
        for (k, v) in desired {
            adds.push(AddMap::new(&map, Some(version), k, v)?);
        }
        session.run_each(&adds).await?;
        session.commit_map(&map, version).await?;
        let mut after: Vec<(String, String)> = session
            .show_map(&map, None)
            .await?
            .into_iter()
            .map(|e| (e.key, e.value))
            .collect();
        after.sort();
        if after != desired_pairs {
            return Err(EdgeError::NotVerified(format!(
                "{map}: after commit map @{version} the runtime holds {after:?}, expected {desired_pairs:?}"
            )));
        }
        changes.push(format!(
            "{map}: runtime entries replaced ({} → {}) with prepare/commit map @{version}",
            live_pairs.len(),
            desired_pairs.len()
        ));
    }
    Ok(changes)
}
