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
pub mod pool;
pub mod reload;
pub mod repair;

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Serialize;

use self::reload::ReloadOutcome;
use crate::edge::apply::repair::{repair_locked, RepairReport};
use crate::edge::{Edge, EdgeError};
use crate::plan::takeover::{EnvFacts, KnownServer, LiveServer, RuntimeSeen};
use crate::plan::{plan, LiveView, Plan};
use crate::render::{maps, render, shape, Rendered, ShapeSummary};
use crate::runtime::command::maps::AddMap;
use crate::runtime::command::servers::AddrChange;
use crate::runtime::command::{Name, RuntimeCommand, SetServerAddr};
use crate::runtime::session::Session;
use crate::state::atomic::{read_optional, write_atomic};
use crate::state::{Action, EdgeLock, Holder, Operation, Phase, Wait};
use crate::topology::{Color, Paths, Servers};

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
fn read_text(path: &Path) -> Result<Option<String>, String> {
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
    // A transaction open on the edge is ended at once, expired or not (its owner, when alive,
    // holds the lock: then this waits like for the lock and says who holds it).
    let ended = crate::edge::flip::transaction::abort_open(edge, lock_wait(options.wait)).await?;
    let lock = EdgeLock::acquire_async(&edge.state, options.wait, Holder::current()).await?;
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
    // First the crash repair: an interrupted switch is rolled back to the recorded color in
    // the map file and the runtime (and the history), and its journal operation closed.
    let mut repaired = repair_locked(edge, &lock).await?;
    repaired.fixed.splice(0..0, ended.into_iter().chain(stale));
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
    match &p {
        Plan::Nothing => {
            // The files match; the runtime may still lag (a switch killed before its runtime
            // step). Replace only the maps that differ; nothing is written when none does.
            let mut session = edge.admin_session().await?;
            let changes = sync_runtime_maps(&mut session, edge, &rendered).await?;
            if !changes.is_empty() {
                let op = operation(&live, &rendered);
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
        }
        Plan::Runtime { steps, .. } => {
            let op = operation(&live, &rendered);
            let detail: Vec<String> = steps.iter().map(ToString::to_string).collect();
            // Bad input and a candidate `haproxy -c` refuses are refused before the intent.
            let moves = prepare_moves(edge, &rendered, &p.server_moves())?;
            let pools = crate::edge::apply::pool::prepare_pool(&rendered, &live, steps)?;
            if moves.is_empty() && !pools.is_empty() {
                reload::check_candidate(edge, &rendered)?;
            }
            edge.state
                .journal_record(&op, Phase::Intent, Some(&detail.join("; ")))?;
            let moved = if moves.is_empty() && pools.is_empty() {
                None
            } else if pools.is_empty() {
                let m = move_servers(edge, &rendered, &moves, &op).await?;
                report.runtime_changes.extend(m.changes.iter().cloned());
                report.files_written.extend(m.files.iter().cloned());
                Some(m)
            } else {
                // A plan never holds both (a move with a pool change is one reload).
                let m =
                    crate::edge::apply::pool::change_pools(edge, &rendered, &pools, &op).await?;
                report.runtime_changes.extend(m.changes.iter().cloned());
                report.files_written.extend(m.files.iter().cloned());
                Some(MovesDone {
                    changes: m.changes,
                    files: m.files,
                })
            };
            let (written, old) = match write_maps(edge, &rendered) {
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
                Ok(mut session) => sync_runtime_maps(&mut session, edge, &rendered).await,
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
        }
        // Only built by `take_over`; `plan()` never answers it.
        Plan::Takeover { .. } => {}
        Plan::Reload {
            reasons,
            refused_at_runtime,
            ..
        } => {
            if !refused_at_runtime.is_empty() && !options.allow_reload {
                return Err(EdgeError::Refused(format!(
                    "HAProxy refuses these pool changes over the runtime API: {}; nothing was \
                     changed. `vezasock apply --reload` takes the reload path for them",
                    refused_at_runtime.join("; ")
                )));
            }
            let op = operation(&live, &rendered);
            edge.state
                .journal_record(&op, Phase::Intent, Some(&reasons.join("; ")))?;
            match reload::reload(edge, &rendered).await {
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
        }
    }
    drop(lock);
    Ok(report)
}

/// The journal operation of one apply: shape fingerprints before and after.
fn operation(live: &LiveView, rendered: &Rendered) -> Operation {
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

/// The takeover plan (see the module doc): why, each env's color and its source, what cannot
/// be decided, and the steps apply runs. Reads the state files and `show servers state`.
pub async fn takeover_plan(edge: &Edge, takeover: &TakeoverOptions) -> Result<Plan, EdgeError> {
    let facts = takeover_facts(edge, takeover).await?;
    let (colors, undecided) = crate::plan::takeover::decide(&facts);
    let paths = &edge.topology.paths;
    let why = match read_text(&paths.config) {
        Ok(Some(_)) => format!(
            "{} has no `{}` first line",
            paths.config.display(),
            shape::FINGERPRINT_PREFIX.trim_end()
        ),
        _ => format!(
            "there is no config at {}, but HAProxy answers on {}",
            paths.config.display(),
            paths.admin_socket.display()
        ),
    };
    let reasons = vec![
        format!("takeover of a config vezasock did not render: {why}"),
        "its maps and backends are not vezasock's: the runtime answers `Unknown map \
         identifier` / `Can't find backend` for them (planning facts, not failures)"
            .to_string(),
    ];
    let mut steps = Vec::new();
    if let Some(dir) = &takeover.seed_state {
        steps.push(format!(
            "import the seed's state files from {} (active-color-<env>, .history) into {}",
            dir.display(),
            edge.state.path().display()
        ));
    }
    steps.extend([
        format!(
            "record each env's color in {}/active-color-<env> (a history line when the history's newest line names another color)",
            edge.state.path().display()
        ),
        format!(
            "render vezasock's config with those colors, write its maps into {}, `haproxy -c` on the exact bytes",
            paths.maps_dir.display()
        ),
        format!(
            "back up {} (.vezasock-backup) and swap in the rendered config",
            paths.config.display()
        ),
        format!(
            "one confirmed reload ({}), verified on the new worker (backends, maps, server states); on failure the backups are restored and HAProxy reloaded back",
            paths.reload_method
        ),
    ]);
    Ok(Plan::Takeover {
        reasons,
        colors,
        undecided,
        steps,
    })
}

/// The facts of every colored env: flag, state file (the seed's dir when named), and which
/// of its servers the foreign runtime has in rotation.
async fn takeover_facts(
    edge: &Edge,
    takeover: &TakeoverOptions,
) -> Result<Vec<EnvFacts>, EdgeError> {
    for name in takeover.colors.keys() {
        if !edge.env(name)?.colored {
            return Err(EdgeError::BadInput(format!(
                "--color {name}=…: env {name} has no colors"
            )));
        }
    }
    let seed = match &takeover.seed_state {
        Some(dir) => crate::state::StateDir::single(dir.clone()),
        None => edge.state.clone(),
    };
    let mut session = edge.admin_session().await?;
    let rows = session.show_servers_state(None).await?;
    drop(session);
    let live: Vec<LiveServer> = rows
        .rows
        .iter()
        .map(|r| LiveServer {
            backend: r.be_name.clone(),
            server: r.srv_name.clone(),
            addr: r.srv_addr.clone(),
            fqdn: r.fqdn.clone(),
            port: r.port,
            in_rotation: !r.admin.is_maint() && !r.admin.is_drain(),
        })
        .collect();
    let mut facts = Vec::new();
    for env in edge.topology.envs.iter().filter(|e| e.colored) {
        let mut known = Vec::new();
        for c in &env.components {
            if let Servers::Colored { blue, green } = &c.servers {
                for (color, servers) in [(Color::Blue, blue), (Color::Green, green)] {
                    known.extend(servers.iter().map(|s| KnownServer {
                        color,
                        host: s.address.host.clone(),
                        port: s.address.port,
                    }));
                }
            }
        }
        let state_file = match seed.recorded_color(&env.name)? {
            Some(color) => Some((color, seed.color_file(&env.name)?.display().to_string())),
            None => None,
        };
        facts.push(EnvFacts {
            env: env.name.clone(),
            flag: takeover.colors.get(&env.name).copied(),
            state_file,
            runtime: RuntimeSeen::of(&known, &live),
        });
    }
    Ok(facts)
}

/// Takes the foreign edge over (see the module doc). Refused with nothing changed when a color
/// cannot be decided or `haproxy -c` refuses the candidate; a failed reload is rescued (exit 5)
/// and the state files are put back too.
async fn take_over(
    edge: &Edge,
    options: ApplyOptions,
    takeover: &TakeoverOptions,
    live: &LiveView,
) -> Result<ApplyReport, EdgeError> {
    let lock = if options.dry_run {
        None
    } else {
        Some(EdgeLock::acquire_async(&edge.state, options.wait, Holder::current()).await?)
    };
    let p = takeover_plan(edge, takeover).await?;
    let Plan::Takeover {
        colors, undecided, ..
    } = &p
    else {
        return Err(EdgeError::Refused("takeover: no takeover plan".to_string()));
    };
    let chosen: BTreeMap<String, Color> = colors.iter().map(|d| (d.env.clone(), d.color)).collect();
    let rendered =
        render(&edge.topology, &chosen).map_err(|e| EdgeError::BadInput(e.to_string()))?;
    let mut report = ApplyReport {
        desired_fingerprint: rendered.fingerprint.clone(),
        live_fingerprint: live.fingerprint.clone(),
        plan: p.clone(),
        dry_run: options.dry_run,
        files_written: Vec::new(),
        runtime_changes: Vec::new(),
        reload: None,
        repair: None,
        takeover: None,
    };
    if options.dry_run {
        return Ok(report);
    }
    if !undecided.is_empty() {
        return Err(EdgeError::Refused(format!(
            "takeover refused, nothing changed: the active color of {} cannot be decided:\n  {}",
            undecided.len(),
            undecided.join("\n  ")
        )));
    }
    for dir in [
        &edge.topology.paths.maps_dir,
        &edge.topology.paths.state_dir,
    ] {
        crate::files::remove_dead_leftovers(dir);
    }
    let op = operation(live, &rendered);
    let words: Vec<String> = colors
        .iter()
        .map(|d| format!("{} {} ({})", d.env, d.color, d.source))
        .collect();
    edge.state.journal_record(
        &op,
        Phase::Intent,
        Some(&format!("takeover: {}", words.join(", "))),
    )?;
    let mut created = Vec::new();
    let mut old = Vec::new();
    let result = async {
        let (files, recorded) =
            prepare_takeover(edge, takeover, &rendered, &mut old, &mut created)?;
        let outcome = reload::reload(edge, &rendered).await?;
        Ok::<_, EdgeError>((files, recorded, outcome))
    }
    .await;
    match result {
        Ok((files, recorded, outcome)) => {
            edge.state.journal_record(&op, Phase::Done, None)?;
            report.files_written = files;
            report.reload = Some(outcome);
            report.takeover = Some(TakeoverReport {
                colors: colors.clone(),
                recorded,
            });
            drop(lock);
            Ok(report)
        }
        Err(e) => {
            // Back to the files as they were (the reload path restored its own).
            crate::edge::apply::install::restore(&old);
            for dir in created.iter().rev() {
                let _ = std::fs::remove_dir(dir);
            }
            let phase = match &e {
                EdgeError::NotVerified(_) => Phase::RolledBack,
                _ => Phase::Failed,
            };
            let _ = edge.state.journal_record(&op, phase, Some(&e.to_string()));
            Err(e)
        }
    }
}

/// Before the reload: the maps in `maps_dir` (`haproxy -c` opens them), the imported
/// history and each env's color, every file's old bytes in `old` and new dirs in `created`.
/// The foreign config reads none of these files, so nothing live changes here.
fn prepare_takeover(
    edge: &Edge,
    takeover: &TakeoverOptions,
    rendered: &Rendered,
    old: &mut Vec<(PathBuf, Option<Vec<u8>>)>,
    created: &mut Vec<PathBuf>,
) -> Result<(Vec<PathBuf>, Vec<String>), EdgeError> {
    let paths = &edge.topology.paths;
    crate::edge::apply::install::create_dirs(&paths.maps_dir, created)?;
    if let Some(dir) = paths.server_state_file.parent() {
        crate::edge::apply::install::create_dirs(dir, created)?;
    }
    let mut written = Vec::new();
    for (path, text) in [
        (paths.hosts_map(), &rendered.hosts_map),
        (paths.active_color_map(), &rendered.active_color_map),
    ] {
        old.push((path.clone(), read_optional(&path)?));
        write_atomic(&path, text.as_bytes())?;
        written.push(path);
    }
    // The config names the preview map too (HAProxy 2.6 cannot start without the file): made
    // here, with the others, so that a refused takeover removes it again.
    let preview = paths.preview_map();
    if read_optional(&preview)?.is_none() {
        old.push((preview.clone(), None));
        write_atomic(&preview, crate::render::PREVIEW_MAP_HEADER.as_bytes())?;
        written.push(preview);
    }
    let seed = takeover
        .seed_state
        .as_ref()
        .map(|d| crate::state::StateDir::single(d.clone()))
        .filter(|s| s.path() != edge.state.path());
    let mut recorded = Vec::new();
    for (env, color) in &rendered.colors {
        let color_file = edge.state.color_file(env)?;
        let history_file = edge.state.history_file(env)?;
        old.push((color_file.clone(), read_optional(&color_file)?));
        old.push((history_file.clone(), read_optional(&history_file)?));
        let mut history = edge.state.history(env)?;
        if let Some(seed) = &seed {
            let imported = seed.history(env)?;
            if !imported.is_empty() {
                edge.state.write_history_entries(env, &imported)?;
                recorded.push(format!(
                    "{env}: imported {} history line(s) from {}",
                    imported.len(),
                    seed.history_file(env)?.display()
                ));
                history = imported;
            }
        }
        if history.first().map(|h| h.color) == Some(*color) {
            edge.state.write_active_color(env, *color)?;
            recorded.push(format!("{env}: {} says {color}", color_file.display()));
        } else {
            let entry = crate::state::HistoryEntry::now(
                *color,
                None,
                &crate::state::who(),
                std::time::SystemTime::now(),
            )?;
            edge.state.record_entry(env, &history, entry, || {})?;
            recorded.push(format!(
                "{env}: {} says {color}, history line added (the color at takeover)",
                color_file.display()
            ));
        }
        written.push(color_file);
    }
    Ok((written, recorded))
}

// ---------------------------------------------------------------------------------------------
// Moved servers over the runtime API (issue 12): `set server … addr … port …`, read back, then
// written through (server-state file, config and shape summary) for the next reload.
//
// Order: runtime first, disk second. A crash in between leaves the old config and state file,
// which still describe the old address: a reload then goes back to it, and the next `apply`
// plans the same move again. The other order would leave a config whose fingerprint says
// "done" while the runtime still has the old address, and no plan would ever notice.

/// One server to move, checked: its command and its address as the config writes it.
#[derive(Debug, Clone)]
pub struct ServerMoveCommand {
    pub backend: String,
    pub server: String,
    pub from: String,
    pub to: String,
    command: SetServerAddr,
}

/// What the moves did: one line per server, and the files rewritten.
#[derive(Debug, Clone)]
pub struct MovesDone {
    pub changes: Vec<String>,
    pub files: Vec<PathBuf>,
}

/// Checks every move and the candidate config before anything changes: names and addresses
/// (an IP and a port 1-65535), and `haproxy -c` on the exact bytes that will be written.
pub fn prepare_moves(
    edge: &Edge,
    rendered: &Rendered,
    moves: &[shape::ServerMove],
) -> Result<Vec<ServerMoveCommand>, EdgeError> {
    let mut out = Vec::with_capacity(moves.len());
    for m in moves {
        let bad = |why: String| {
            EdgeError::BadInput(format!(
                "server {}/{} cannot move to {} at runtime: {why}; nothing was changed",
                m.backend, m.server, m.to
            ))
        };
        let (addr, port) = m
            .to_ip_port()
            .ok_or_else(|| bad("not an IP address and a port 1-65535".to_string()))?;
        let command = SetServerAddr {
            backend: Name::new("backend", &m.backend).map_err(|e| bad(e.to_string()))?,
            server: Name::new("server", &m.server).map_err(|e| bad(e.to_string()))?,
            addr,
            port,
        };
        crate::runtime::command::validate(&command).map_err(|e| bad(e.to_string()))?;
        out.push(ServerMoveCommand {
            backend: m.backend.clone(),
            server: m.server.clone(),
            from: m.from.clone(),
            to: m.to.clone(),
            command,
        });
    }
    if !out.is_empty() {
        reload::check_candidate(edge, rendered)?;
    }
    Ok(out)
}

/// Where a server is in the running HAProxy: its address and port from `show servers state`.
fn runtime_addresses(
    rows: &crate::runtime::command::servers::ServersState,
    moves: &[ServerMoveCommand],
) -> Result<Vec<(IpAddr, u16)>, String> {
    let mut out = Vec::with_capacity(moves.len());
    for m in moves {
        let row = rows
            .rows
            .iter()
            .find(|r| r.be_name == m.backend && r.srv_name == m.server)
            .ok_or_else(|| format!("{}/{} is not in the running HAProxy", m.backend, m.server))?;
        let addr = row
            .srv_addr
            .as_deref()
            .and_then(|a| a.parse::<IpAddr>().ok())
            .ok_or_else(|| {
                format!(
                    "{}/{} has no IP address in the running HAProxy ({:?})",
                    m.backend, m.server, row.srv_addr
                )
            })?;
        let port = u16::try_from(row.port)
            .map_err(|_| format!("{}/{}: port {} out of range", m.backend, m.server, row.port))?;
        out.push((addr, port));
    }
    Ok(out)
}

/// Moves the servers (see the comment above these functions). Must run under the edge lock,
/// after [`prepare_moves`]. On failure every server is put back where it was and the files
/// restored; the error says what is live when that put-back itself failed (exit 5).
pub async fn move_servers(
    edge: &Edge,
    rendered: &Rendered,
    moves: &[ServerMoveCommand],
    op: &Operation,
) -> Result<MovesDone, EdgeError> {
    let paths = &edge.topology.paths;
    // Read before anything changes: a failure here (a server the runtime lacks included)
    // changed nothing.
    let read = async {
        let mut session = edge.admin_session().await?;
        let rows = session.show_servers_state(None).await?;
        let before = runtime_addresses(&rows, moves).map_err(|why| {
            EdgeError::Refused(format!(
                "{why} (the running config is not the live file?); nothing was changed"
            ))
        })?;
        let old_files = shape_files(paths)?;
        Ok::<_, EdgeError>((session, before, old_files))
    }
    .await;
    let (mut session, before, old_files) = match read {
        Ok(r) => r,
        Err(e) => {
            let _ = edge
                .state
                .journal_record(op, Phase::Failed, Some(&e.to_string()));
            return Err(e);
        }
    };

    let commands: Vec<SetServerAddr> = moves.iter().map(|m| m.command.clone()).collect();
    let result = async {
        let replies = session.run_each(&commands).await?;
        let want: Vec<(IpAddr, u16)> = moves
            .iter()
            .map(|m| (m.command.addr, m.command.port))
            .collect();
        let now = read_back(&mut session, moves, &want).await?;
        for (m, at) in moves.iter().zip(&now) {
            if *at != (m.command.addr, m.command.port) {
                return Err(EdgeError::NotVerified(format!(
                    "after `{}` the runtime has {}/{} at {}:{}",
                    m.command.line(),
                    m.backend,
                    m.server,
                    at.0,
                    at.1
                )));
            }
        }
        let changes: Vec<String> = moves
            .iter()
            .zip(&replies)
            .map(|(m, r)| {
                format!(
                    "{}/{}: moved from {} to {} with `set server … addr` ({}), no reload",
                    m.backend,
                    m.server,
                    m.from,
                    m.to,
                    describe(r)
                )
            })
            .collect();
        write_through(
            edge,
            op,
            &mut session,
            rendered,
            &changes,
            ["after-move-runtime", "after-move-config"],
        )
        .await?;
        Ok::<_, EdgeError>(changes)
    }
    .await;
    match result {
        Ok(changes) => Ok(MovesDone {
            changes,
            files: old_files.iter().map(|(p, _)| p.clone()).collect(),
        }),
        Err(e) => Err(put_back_moves(edge, op, moves, &before, &old_files, e).await),
    }
}

/// Files as they were before a change (`None`: missing), to put back.
pub(super) type OldFiles = Vec<(PathBuf, Option<Vec<u8>>)>;

/// The files a runtime change of the shape (moved servers, a pool change) rewrites, as they
/// are before it: the server-state file, the shape summary, the config.
pub(super) fn shape_files(paths: &Paths) -> Result<OldFiles, EdgeError> {
    Ok([
        paths.server_state_file.clone(),
        shape::summary_path(&paths.config),
        paths.config.clone(),
    ]
    .into_iter()
    .map(|p| read_optional(&p).map(|b| (p, b)))
    .collect::<Result<_, _>>()?)
}

/// The write-through after a runtime change of the shape is live: the journal's runtime line
/// (`changes`), the server-state file saved from the runtime, then the shape summary and the
/// config, and the journal's disk line. `crash` names the crash points after the runtime line
/// and after the config.
pub(super) async fn write_through(
    edge: &Edge,
    op: &Operation,
    session: &mut Session,
    rendered: &Rendered,
    changes: &[String],
    crash: [&str; 2],
) -> Result<(), EdgeError> {
    let paths = &edge.topology.paths;
    edge.state
        .journal_record(op, Phase::RuntimeApplied, Some(&changes.join("; ")))?;
    crate::edge::crash_point(crash[0]);
    // The server-state file now saves what changed: a reload keeps it (its rows win over the
    // config: HAProxy #1412, #2103), and the config below says the same.
    crate::edge::servers::save_server_state(edge, session).await?;
    let summary = serde_json::to_vec_pretty(&rendered.summary)
        .map_err(|e| EdgeError::Refused(format!("cannot serialise the shape summary: {e}")))?;
    // The summary first, the config last: until the config is renamed, the live config (with
    // its fingerprint) is the old one.
    write_atomic(&shape::summary_path(&paths.config), &summary)?;
    write_atomic(&paths.config, rendered.config.as_bytes())?;
    crate::edge::crash_point(crash[1]);
    edge.state.journal_record(
        op,
        Phase::DiskWritten,
        Some("server-state file, shape summary and config rewritten (no reload)"),
    )?;
    Ok(())
}

/// How long the read-back waits for `show servers state` to show what `set server … addr`
/// answered: 3.2 has shown the old address for a moment after its reply (a busy machine,
/// `integration/moved_server.rs`), then the new one.
const READ_BACK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Each server's address in `show servers state`, read until it is `want` or
/// [`READ_BACK_WAIT`] ran out (then the last read).
async fn read_back(
    session: &mut Session,
    moves: &[ServerMoveCommand],
    want: &[(IpAddr, u16)],
) -> Result<Vec<(IpAddr, u16)>, EdgeError> {
    let deadline = tokio::time::Instant::now() + READ_BACK_WAIT;
    loop {
        let rows = session.show_servers_state(None).await?;
        let now = runtime_addresses(&rows, moves).map_err(EdgeError::NotVerified)?;
        if now == want || tokio::time::Instant::now() >= deadline {
            return Ok(now);
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// HAProxy's own words for one move.
fn describe(change: &AddrChange) -> String {
    let mut parts = Vec::new();
    if let Some((from, to)) = &change.ip {
        parts.push(format!("IP {from} → {to}"));
    }
    if let Some((from, to)) = &change.port {
        parts.push(format!("port {from} → {to}"));
    }
    if parts.is_empty() {
        "HAProxy: already there".to_string()
    } else {
        format!("HAProxy: {}", parts.join(", "))
    }
}

/// After a failed move: every server back to its address before, read back on a new
/// connection, and the files restored. Returns the error to report: the original one when
/// the put-back is confirmed (nothing changed in the end), else [`EdgeError::NotVerified`]
/// naming what is live.
async fn put_back_moves(
    edge: &Edge,
    op: &Operation,
    moves: &[ServerMoveCommand],
    before: &[(IpAddr, u16)],
    old_files: &[(PathBuf, Option<Vec<u8>>)],
    error: EdgeError,
) -> EdgeError {
    for (path, bytes) in old_files {
        let _ = match bytes {
            Some(b) => write_atomic(path, b).map_err(|e| e.to_string()),
            None => std::fs::remove_file(path).map_err(|e| e.to_string()),
        };
    }
    let undo: Vec<SetServerAddr> = moves
        .iter()
        .zip(before)
        .map(|(m, (addr, port))| SetServerAddr {
            addr: *addr,
            port: *port,
            ..m.command.clone()
        })
        .collect();
    let put_back = async {
        // A new connection: the failure may have been the old one dropping.
        let mut session = edge.admin_session().await?;
        // One by one: a refusal of one must not keep the others where they are.
        let mut refused = Vec::new();
        let mut said = Vec::new();
        for c in &undo {
            match session.run(c).await {
                Ok(r) => said.push(format!("`{}`: {}", c.line(), describe(&r))),
                Err(e) => refused.push(format!("`{}`: {e}", c.line())),
            }
        }
        let now = read_back(&mut session, moves, before).await?;
        let wrong: Vec<String> = moves
            .iter()
            .zip(now.iter().zip(before))
            .filter(|(_, (now, was))| now != was)
            .map(|(m, (now, _))| format!("{}/{} is at {}:{}", m.backend, m.server, now.0, now.1))
            .collect();
        if !wrong.is_empty() || !refused.is_empty() {
            return Err(EdgeError::NotVerified(format!(
                "{} {} (after {})",
                wrong.join(", "),
                refused.join("; "),
                said.join("; ")
            )));
        }
        Ok::<_, EdgeError>(())
    }
    .await;
    match put_back {
        Ok(()) => {
            let _ = edge.state.journal_record(
                op,
                Phase::RolledBack,
                Some(&format!(
                    "servers put back at their old addresses, files restored: {error}"
                )),
            );
            match error {
                // The read-back disagreed, but the put-back is confirmed: nothing changed.
                EdgeError::NotVerified(why) => EdgeError::Refused(format!(
                    "{why}; every server was put back at its old address (read back) and the \
                     files restored: nothing changed"
                )),
                other => EdgeError::Refused(format!(
                    "moving servers failed: {other}; every server was put back at its old \
                     address (read back) and the files restored: nothing changed"
                )),
            }
        }
        Err(why) => {
            let live: Vec<String> = moves
                .iter()
                .map(|m| format!("{}/{} → {} (was {})", m.backend, m.server, m.to, m.from))
                .collect();
            let message = format!(
                "moving servers failed: {error}; putting them back failed too: {why}. The \
                 config and server-state file are the old ones (a reload goes back to the old \
                 addresses); the runtime may have moved: {}. `vezasock status` shows it, \
                 `vezasock apply` moves them again",
                live.join(", ")
            );
            let _ = edge.state.journal_record(op, Phase::Failed, Some(&message));
            EdgeError::NotVerified(message)
        }
    }
}

/// Closes (as `done`) the open `apply` operations whose goal, the config `fingerprint`, is now
/// live and verified; returns their ids. With `stepped`, only those that reached their runtime
/// or disk step (a reload-path apply journals only its intent: its own `reload` operation
/// says how far the reload got, and stays open). Must run under the edge lock.
fn close_reached(
    edge: &Edge,
    fingerprint: &str,
    stepped: bool,
    by: &str,
) -> Result<Vec<String>, EdgeError> {
    let mut closed = Vec::new();
    for old in edge.state.open_operations()? {
        let reached = matches!(
            old.last_phase,
            Phase::RuntimeApplied | Phase::DiskWritten | Phase::Verified
        );
        if old.action != Action::Apply
            || old.env.is_some()
            || old.after.as_deref() != Some(fingerprint)
            || (stepped && !reached)
        {
            continue;
        }
        let closing = Operation {
            op_id: old.op_id.clone(),
            who: crate::state::who(),
            env: None,
            action: Action::Apply,
            before: old.before.clone(),
            after: old.after.clone(),
        };
        edge.state.journal_record(
            &closing,
            Phase::Done,
            Some(&format!(
                "interrupted after {}; finished: {by}",
                old.last_phase.as_str()
            )),
        )?;
        closed.push(old.op_id);
    }
    Ok(closed)
}

/// A map edit that failed after the servers moved: the moves are live and written through,
/// so the error may not read as "nothing changed" (exit 5).
fn after_moves(moved: Option<&MovesDone>, error: EdgeError) -> EdgeError {
    match moved {
        None => error,
        Some(m) => EdgeError::NotVerified(format!(
            "{error}; but the server moves before it are live and written through: {}",
            m.changes.join("; ")
        )),
    }
}
