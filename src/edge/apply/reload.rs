//! The reload path (docs/architecture.md §2), taken by `apply` only when the shape changed:
//!
//! 1. read what is live: `show servers state`, the active colors (`show map`), `show backend`;
//!    save the dump into HAProxy's server-state file and drop the rows of servers whose
//!    address changes (saved addresses win over the new config: HAProxy #1412, #2103);
//! 2. write the candidate beside the live config and run `haproxy -c` on it: nothing live is
//!    touched unless it passes (the check runs before the server-state file of step 1 is
//!    written, so a refused candidate changes no file at all);
//! 3. back up the live config, summary and maps (`<file>.vezasock-backup`), then rename the
//!    candidate files into place (temp, fsync, rename, fsync dir);
//! 4. reload: master CLI `reload` (≥ 2.7 `Success=1`; 2.6 confirmed through `show proc`), or
//!    SIGUSR2 to the master's pid (`reload_method = signal`), confirmed the same way;
//! 5. verify on a NEW admin connection (an old one would talk to the old worker): the answering
//!    worker is a new one, `show backend` is exactly the candidate's backends, the maps hold
//!    the candidate's colors and hosts, and every server kept its operator state (drain, maint);
//! 6. on any failure after step 3: restore the backups and the full server-state dump, reload
//!    back, verify against what was live before, and fail with HAProxy's own messages
//!    ([`EdgeError::NotVerified`], exit 5). HAProxy ends serving the old config or the new
//!    one, never a broken one.
//!
//! Every phase is journalled (action `reload`).
//!
//! Keep-alive clients across a reload: on soft-stop the old worker used to close idle
//! keep-alive connections, and a client sending its next request at that instant got a closed
//! connection (seen on 2.6, 3.0 and 3.2 by `integration/reload.rs`). The rendered config sets
//! `option idle-close-on-response` in `defaults`: the old worker answers that request with
//! `Connection: close` instead. The price: an old worker lives until its idle clients send
//! once more or time out (`timeout http-request`/`client`), which is what HAProxy does for
//! busy connections anyway.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::edge::{Edge, EdgeError};
use crate::render::check::{explain, haproxy_check};
use crate::render::shape::{declared_fingerprint, summary_path};
use crate::render::{Rendered, ShapeSummary};
use crate::runtime::command::master::ProcList;
use crate::runtime::command::servers::{AdminFlags, ServersState, ShowServersState};
use crate::runtime::command::AdminState as SetState;
use crate::runtime::master::{self, ReloadReport};
use crate::runtime::session::Session;
use crate::state::atomic::{read_optional, read_optional_string, write_atomic};
use crate::state::server_states::{drop_servers_from_state_file, save_server_state_file};
use crate::state::{Action, Operation, Phase};
use crate::topology::ReloadMethod;

/// How long the new worker has to answer on the admin socket after a reload.
const ANSWER_DEADLINE: Duration = Duration::from_secs(10);
/// Pause between two tries while waiting for the new worker, or polling `show proc`.
const POLL: Duration = Duration::from_millis(20);
/// The suffix of a backup file.
pub const BACKUP_SUFFIX: &str = ".vezasock-backup";

/// What a reload did.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadOutcome {
    /// How HAProxy was asked to reload.
    pub method: String,
    /// The confirmed reload (version, log, reload counter, new and old workers).
    pub report: ReloadReport,
    /// The worker that answered the verification.
    pub worker: u32,
    /// `backend/server` whose address changed: dropped from the server-state file, their
    /// operator state set again over the runtime API after the reload.
    pub moved_servers: Vec<String>,
    /// Backends the new worker has.
    pub backends: usize,
    /// Servers whose drain or maint state was checked after the reload.
    pub servers_checked: usize,
}

/// The live files and runtime state before the swap: what a rescue goes back to.
struct Before {
    /// `(path, bytes)` of each live file; `None` = it did not exist.
    files: Vec<(PathBuf, Option<Vec<u8>>)>,
    /// `show servers state`, as HAProxy printed it (server-state-file format).
    dump: String,
    servers: ServersState,
    colors: BTreeMap<String, String>,
    hosts: BTreeMap<String, String>,
    backends: BTreeSet<String>,
}

/// What the edge must show after a reload.
struct Expect {
    backends: BTreeSet<String>,
    colors: BTreeMap<String, String>,
    hosts: BTreeMap<String, String>,
    /// `(backend, server)` → operator bits (forced drain / maint) before the reload.
    admin: BTreeMap<(String, String), u32>,
    /// Servers whose state must be set again (their state-file rows were dropped).
    reapply: Vec<(String, String)>,
}

/// The operator's own admin bits: what `set server … state drain|maint` sets. Inherited and
/// config bits follow the topology and may change legitimately.
fn operator_bits(state: AdminFlags) -> u32 {
    state.0 & (AdminFlags::FORCED_MAINT | AdminFlags::FORCED_DRAIN)
}

fn state_err(e: crate::state::Error) -> EdgeError {
    EdgeError::State(e)
}

/// Reloads the edge into `candidate` (see the module doc). Must be called under the edge's
/// lock. A `haproxy -c` refusal is [`EdgeError::Refused`] with nothing touched; a failure after
/// the swap is rescued and reported as [`EdgeError::NotVerified`].
pub async fn reload(edge: &Edge, candidate: &Rendered) -> Result<ReloadOutcome, EdgeError> {
    let paths = &edge.topology.paths;
    let live_config = read_optional_string(&paths.config).map_err(state_err)?;
    let live_fingerprint = live_config.as_deref().and_then(declared_fingerprint);
    let op = Operation::new(
        Action::Reload,
        None,
        live_fingerprint.as_deref(),
        Some(&candidate.fingerprint),
        &crate::state::who(),
    );
    edge.state
        .journal_record(
            &op,
            Phase::Intent,
            Some("read live state, check the candidate"),
        )
        .map_err(state_err)?;
    match prepare_and_swap(edge, candidate, live_config.as_deref()).await {
        Ok((before, expect)) => {
            edge.state
                .journal_record(
                    &op,
                    Phase::DiskWritten,
                    Some("candidate config and maps in place"),
                )
                .map_err(state_err)?;
            finish(edge, &op, before, expect).await
        }
        Err(e) => {
            // Nothing live was touched (the swap is the last step and restores itself).
            let _ = edge
                .state
                .journal_record(&op, Phase::Failed, Some(&e.to_string()));
            Err(e)
        }
    }
}

/// Steps 1–3. On error nothing live has changed.
async fn prepare_and_swap(
    edge: &Edge,
    candidate: &Rendered,
    live_config: Option<&str>,
) -> Result<(Before, Expect), EdgeError> {
    let paths = &edge.topology.paths;
    let before = read_before(edge).await?;

    // 2 before 1: haproxy -c on the exact bytes that would be installed, first: a refused candidate
    // leaves every file as it was, the server-state file included.
    check_candidate(edge, candidate)?;

    // 1. The server states survive the reload through the server-state file.
    let live_summary = ShapeSummary::from_config(live_config.unwrap_or(""));
    let moved = candidate.summary.moved_servers(&live_summary);
    save_server_state_file(&paths.server_state_file, &before.dump).map_err(state_err)?;
    let moved_refs: Vec<(&str, &str)> = moved
        .iter()
        .map(|(b, s)| (b.as_str(), s.as_str()))
        .collect();
    drop_servers_from_state_file(&paths.server_state_file, &moved_refs).map_err(state_err)?;

    // 3. Back up, then swap. The config goes last: until it is renamed, the live config is
    // the old one whatever else happened.
    for (path, bytes) in &before.files {
        if let Some(bytes) = bytes {
            write_atomic(&backup_path(path), bytes).map_err(state_err)?;
        }
    }
    let summary_json = serde_json::to_vec_pretty(&candidate.summary)
        .map_err(|e| EdgeError::Refused(format!("cannot serialise the shape summary: {e}")))?;
    let new_files: [(PathBuf, &[u8]); 4] = [
        (paths.hosts_map(), candidate.hosts_map.as_bytes()),
        (
            paths.active_color_map(),
            candidate.active_color_map.as_bytes(),
        ),
        (summary_path(&paths.config), &summary_json),
        (paths.config.clone(), candidate.config.as_bytes()),
    ];
    for (path, bytes) in &new_files {
        if let Err(e) = write_atomic(path, bytes) {
            // Put back what was already swapped; HAProxy has not been reloaded yet.
            restore_files(&before.files);
            let _ = save_server_state_file(&paths.server_state_file, &before.dump);
            return Err(state_err(e));
        }
    }

    let expect = Expect {
        backends: candidate.summary.backends.keys().cloned().collect(),
        colors: candidate
            .colors
            .iter()
            .map(|(env, color)| (env.clone(), color.to_string()))
            .collect(),
        hosts: candidate.hosts.clone(),
        admin: admin_bits(&before.servers),
        reapply: moved,
    };
    Ok((before, expect))
}

/// Steps 4–6: reload, verify, and rescue on any failure.
async fn finish(
    edge: &Edge,
    op: &Operation,
    before: Before,
    expect: Expect,
) -> Result<ReloadOutcome, EdgeError> {
    let reloaded = reload_haproxy(edge).await;
    let failure = match reloaded {
        Ok(report) => {
            let _ = edge.state.journal_record(
                op,
                Phase::RuntimeApplied,
                Some(&format!(
                    "reloaded: reload counter {}, new workers {:?}",
                    report.reloads, report.new_workers
                )),
            );
            match verify(edge, &expect, &report.new_workers).await {
                Ok((worker, servers_checked)) => {
                    let outcome = ReloadOutcome {
                        method: edge.topology.paths.reload_method.to_string(),
                        worker,
                        moved_servers: expect
                            .reapply
                            .iter()
                            .map(|(b, s)| format!("{b}/{s}"))
                            .collect(),
                        backends: expect.backends.len(),
                        servers_checked,
                        report,
                    };
                    let detail = format!(
                        "worker {worker} answers with {} backends, colors and server states kept",
                        outcome.backends
                    );
                    edge.state
                        .journal_record(op, Phase::Verified, Some(&detail))
                        .map_err(state_err)?;
                    edge.state
                        .journal_record(op, Phase::Done, None)
                        .map_err(state_err)?;
                    return Ok(outcome);
                }
                Err(why) => format!("the reloaded edge failed verification: {why}"),
            }
        }
        Err(e) => format!("HAProxy did not reload into the new config: {e}"),
    };
    Err(rescue(edge, op, &before, failure).await)
}

/// Step 6: back to the old config. Returns the error to report (always `NotVerified`).
async fn rescue(edge: &Edge, op: &Operation, before: &Before, failure: String) -> EdgeError {
    let paths = &edge.topology.paths;
    let mut message = failure;
    restore_files(&before.files);
    // The full dump: the old config knows every server at its old address.
    if let Err(e) = save_server_state_file(&paths.server_state_file, &before.dump) {
        message.push_str(&format!("\nrestoring the server-state file failed: {e}"));
    }
    message.push_str("\nrescue: the previous config and maps were restored from their backups");
    let expect = Expect {
        backends: before.backends.clone(),
        colors: before.colors.clone(),
        hosts: before.hosts.clone(),
        admin: admin_bits(&before.servers),
        reapply: Vec::new(),
    };
    let rescued = match reload_haproxy(edge).await {
        Ok(report) => match verify(edge, &expect, &report.new_workers).await {
            Ok((worker, _)) => {
                message.push_str(&format!(
                    "; HAProxy was reloaded back and worker {worker} serves the previous config \
                     (same backends, colors and server states as before)"
                ));
                true
            }
            Err(why) => {
                message.push_str(&format!(
                    "; HAProxy was reloaded back but the result is not verified: {why}"
                ));
                false
            }
        },
        Err(e) => {
            message.push_str(&format!("; reloading back failed too: {e}"));
            false
        }
    };
    if let Ok(list) = master::show_proc(&edge.master(), edge.timeouts).await {
        message.push_str("\nshow proc after the rescue:\n");
        message.push_str(&describe_procs(&list));
    }
    let phase = if rescued {
        Phase::RolledBack
    } else {
        Phase::Failed
    };
    let _ = edge.state.journal_record(op, phase, Some(&message));
    EdgeError::NotVerified(message)
}

/// Reads the live files and the runtime state the reload must keep.
async fn read_before(edge: &Edge) -> Result<Before, EdgeError> {
    let paths = &edge.topology.paths;
    let mut files = Vec::new();
    for path in [
        paths.hosts_map(),
        paths.active_color_map(),
        summary_path(&paths.config),
        paths.config.clone(),
    ] {
        let bytes = read_optional(&path).map_err(state_err)?;
        files.push((path, bytes));
    }
    let mut admin = edge.admin_session().await?;
    let read = ShowServersState::default();
    let reply = admin.send(&read).await?;
    let servers = reply.parse_with(&read)?;
    let mut dump = reply.text();
    dump.push('\n');
    let colors = map_entries(&mut admin, &paths.active_color_map()).await?;
    let hosts = map_entries(&mut admin, &paths.hosts_map()).await?;
    let backends = admin.show_backends().await?.into_iter().collect();
    // Dropped here: a session kept across the reload would pin the old worker.
    drop(admin);
    Ok(Before {
        files,
        dump,
        servers,
        colors,
        hosts,
        backends,
    })
}

/// `show map <file>` as key → value (the first entry of a key wins, as in a lookup). A config
/// vezasock did not render has no such map (`Unknown map identifier`): that reads as empty, a
/// fact of the edge before a takeover (and what its rescue expects back), not a failure.
async fn map_entries(
    session: &mut Session,
    map: &Path,
) -> Result<BTreeMap<String, String>, EdgeError> {
    let entries = match session.show_map(&map.to_string_lossy(), None).await {
        Err(crate::runtime::Error::Refused { message, .. })
            if message.contains("Unknown map identifier") =>
        {
            Vec::new()
        }
        other => other?,
    };
    let mut out = BTreeMap::new();
    for e in entries {
        out.entry(e.key).or_insert(e.value);
    }
    Ok(out)
}

fn admin_bits(servers: &ServersState) -> BTreeMap<(String, String), u32> {
    servers
        .rows
        .iter()
        .map(|r| {
            (
                (r.be_name.clone(), r.srv_name.clone()),
                operator_bits(r.admin),
            )
        })
        .collect()
}

/// Step 2: `haproxy -c` on the candidate, written beside the live config (same directory, so
/// relative paths resolve the same way). Removed afterwards.
pub(super) fn check_candidate(edge: &Edge, candidate: &Rendered) -> Result<(), EdgeError> {
    let paths = &edge.topology.paths;
    let dir = match paths.config.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = paths
        .config
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "haproxy.cfg".to_string());
    let path = dir.join(format!(".{name}.vezasock-candidate"));
    write_atomic(&path, candidate.config.as_bytes()).map_err(state_err)?;
    // The config names the preview map: HAProxy 2.6 cannot start without the file (kept when present).
    let created = crate::render::write::ensure_preview_map(&paths.preview_map()).map_err(|e| {
        EdgeError::Refused(format!(
            "cannot create {}: {e}",
            paths.preview_map().display()
        ))
    })?;
    let outcome = haproxy_check(&paths.haproxy, &path);
    let _ = std::fs::remove_file(&path);
    // A refused candidate changes nothing: an empty preview map made for it goes again.
    if created && !outcome.as_ref().is_ok_and(|o| o.valid) {
        let _ = std::fs::remove_file(paths.preview_map());
    }
    let outcome =
        outcome.map_err(|e| EdgeError::Refused(format!("cannot check the candidate: {e}")))?;
    if outcome.valid {
        return Ok(());
    }
    let lines = explain(&outcome.output, &path, &candidate.config);
    Err(EdgeError::Refused(format!(
        "HAProxy refused the candidate config (`{} -c`); nothing was changed:\n{}",
        paths.haproxy.display(),
        lines.join("\n")
    )))
}

/// `<file>.vezasock-backup`.
pub fn backup_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(BACKUP_SUFFIX);
    PathBuf::from(name)
}

/// Puts every file back as it was (atomically); a file that did not exist is removed. Best
/// effort on each file, so one failure does not stop the others.
fn restore_files(files: &[(PathBuf, Option<Vec<u8>>)]) {
    for (path, bytes) in files {
        let result = match bytes {
            Some(bytes) => write_atomic(path, bytes).map_err(|e| e.to_string()),
            None => match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.to_string()),
                _ => Ok(()),
            },
        };
        if let Err(e) = result {
            tracing::error!(file = %path.display(), error = %e, "cannot restore a file after a failed reload");
        }
    }
}

/// Step 4: reload with the configured method and confirm it.
async fn reload_haproxy(edge: &Edge) -> Result<ReloadReport, EdgeError> {
    match edge.topology.paths.reload_method {
        ReloadMethod::MasterCli => Ok(master::reload(&edge.master(), edge.timeouts).await?),
        ReloadMethod::Signal => reload_by_signal(edge).await,
    }
}

/// SIGUSR2 to the master (pid from `pid_file`), confirmed through `show proc` like a 2.6
/// master-CLI reload.
async fn reload_by_signal(edge: &Edge) -> Result<ReloadReport, EdgeError> {
    let pid_file = &edge.topology.paths.pid_file;
    let before = master::show_proc(&edge.master(), edge.timeouts).await?;
    let text = crate::files::read_bounded_text(pid_file, 4096).map_err(|e| {
        EdgeError::Refused(format!(
            "cannot read the pid file {}: {e}",
            pid_file.display()
        ))
    })?;
    let pid: u32 = text
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .parse()
        .map_err(|_| {
            EdgeError::Refused(format!(
                "{} does not start with a pid: {:?}",
                pid_file.display(),
                text
            ))
        })?;
    // Never signal a process that is not this edge's master.
    if pid != before.master.pid {
        return Err(EdgeError::Refused(format!(
            "{} names pid {pid}, but the master CLI says the master is {}",
            pid_file.display(),
            before.master.pid
        )));
    }
    let target = rustix::process::Pid::from_raw(pid as i32)
        .ok_or_else(|| EdgeError::Refused(format!("{pid} is not a valid pid")))?;
    rustix::process::kill_process(target, rustix::process::Signal::USR2)
        .map_err(|e| EdgeError::Refused(format!("cannot send SIGUSR2 to {pid}: {e}")))?;

    let old: Vec<u32> = before
        .workers
        .iter()
        .chain(&before.old_workers)
        .map(|p| p.pid)
        .collect();
    let deadline = Instant::now() + edge.timeouts.reply;
    loop {
        // The master re-executes: refused connections are expected for a moment.
        if let Ok(after) = master::show_proc(&edge.master(), edge.timeouts).await {
            if after.master.reloads > before.master.reloads {
                if after.master.failed_reloads.unwrap_or(0)
                    > before.master.failed_reloads.unwrap_or(0)
                {
                    return Err(EdgeError::Refused(format!(
                        "reload failed ([failed: {}] in show proc); the previous worker keeps \
                         serving. The signal method cannot read HAProxy's messages: run \
                         `haproxy -c -f <config>` or read the master's log",
                        after.master.failed_reloads.unwrap_or(0)
                    )));
                }
                let new: Vec<u32> = after
                    .workers
                    .iter()
                    .filter(|p| p.reloads == 0 && !old.contains(&p.pid))
                    .map(|p| p.pid)
                    .collect();
                if !new.is_empty() {
                    return Ok(ReloadReport {
                        version: after.master.version.clone(),
                        reported: false,
                        log: Vec::new(),
                        reloads: after.master.reloads,
                        old_workers: after
                            .workers
                            .iter()
                            .chain(&after.old_workers)
                            .map(|p| p.pid)
                            .filter(|p| old.contains(p))
                            .collect(),
                        new_workers: new,
                    });
                }
            }
        }
        if Instant::now() >= deadline {
            return Err(EdgeError::NotVerified(format!(
                "no new worker within {:?} after SIGUSR2 to {pid}",
                edge.timeouts.reply
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Step 5: a fresh admin session reaches a new worker, which has exactly the expected
/// backends, maps and operator server states. Returns the worker's pid and how many servers
/// were compared.
async fn verify(edge: &Edge, expect: &Expect, new_workers: &[u32]) -> Result<(u32, usize), String> {
    let (mut session, worker) = new_worker_session(edge, new_workers).await?;
    let e = |what: &str, err: crate::runtime::Error| format!("{what}: {err}");

    // Servers whose rows were dropped from the state file start fresh: set their state again.
    for (backend, server) in &expect.reapply {
        let bits = expect
            .admin
            .get(&(backend.clone(), server.clone()))
            .copied()
            .unwrap_or(0);
        let state = if bits & AdminFlags::FORCED_MAINT != 0 {
            Some(SetState::Maint)
        } else if bits & AdminFlags::FORCED_DRAIN != 0 {
            Some(SetState::Drain)
        } else {
            None
        };
        if let Some(state) = state {
            session
                .set_server_state(backend, server, state)
                .await
                .map_err(|err| e(&format!("set server {backend}/{server} state"), err))?;
        }
    }

    let backends: BTreeSet<String> = session
        .show_backends()
        .await
        .map_err(|err| e("show backend", err))?
        .into_iter()
        .collect();
    if backends != expect.backends {
        let missing: Vec<_> = expect.backends.difference(&backends).collect();
        let extra: Vec<_> = backends.difference(&expect.backends).collect();
        return Err(format!(
            "worker {worker} has other backends than expected (missing {missing:?}, unexpected {extra:?})"
        ));
    }
    let paths = &edge.topology.paths;
    let colors = map_entries(&mut session, &paths.active_color_map())
        .await
        .map_err(|err| format!("show map {}: {err}", paths.active_color_map().display()))?;
    if colors != expect.colors {
        return Err(format!(
            "worker {worker} has active colors {colors:?}, expected {:?}",
            expect.colors
        ));
    }
    let hosts = map_entries(&mut session, &paths.hosts_map())
        .await
        .map_err(|err| format!("show map {}: {err}", paths.hosts_map().display()))?;
    if hosts != expect.hosts {
        return Err(format!(
            "worker {worker} has hosts {hosts:?}, expected {:?}",
            expect.hosts
        ));
    }
    let servers = session
        .show_servers_state(None)
        .await
        .map_err(|err| e("show servers state", err))?;
    let mut checked = 0;
    let mut changed = Vec::new();
    for row in &servers.rows {
        let key = (row.be_name.clone(), row.srv_name.clone());
        if let Some(bits) = expect.admin.get(&key) {
            checked += 1;
            if *bits != operator_bits(row.admin) {
                changed.push(format!(
                    "{}/{}: {} before, {} after",
                    row.be_name,
                    row.srv_name,
                    describe_bits(*bits),
                    describe_bits(operator_bits(row.admin))
                ));
            }
        }
    }
    if !changed.is_empty() {
        return Err(format!(
            "server states changed across the reload: {}",
            changed.join("; ")
        ));
    }
    Ok((worker, checked))
}

/// Connects to the admin socket until a new worker answers (an old one may still hold the
/// socket for a moment), bounded by [`ANSWER_DEADLINE`].
async fn new_worker_session(edge: &Edge, new_workers: &[u32]) -> Result<(Session, u32), String> {
    let deadline = Instant::now() + ANSWER_DEADLINE;
    loop {
        let last = match edge.admin_session().await {
            Ok(mut session) => match session.show_info().await {
                Ok(info) => match info.pid() {
                    Some(pid) if new_workers.is_empty() || new_workers.contains(&pid) => {
                        return Ok((session, pid))
                    }
                    Some(pid) => format!("worker {pid} (not a new one) answered"),
                    None => "show info has no Pid".to_string(),
                },
                Err(e) => e.to_string(),
            },
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "no new worker {new_workers:?} answered on the admin socket within {ANSWER_DEADLINE:?}: {last}"
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

fn describe_bits(bits: u32) -> &'static str {
    if bits & AdminFlags::FORCED_MAINT != 0 {
        "maint"
    } else if bits & AdminFlags::FORCED_DRAIN != 0 {
        "drain"
    } else {
        "ready"
    }
}

/// `show proc` in a few readable lines.
pub fn describe_procs(list: &ProcList) -> String {
    let mut out = format!(
        "  master {} ({}): {} reloads, {} failed since the last good one\n",
        list.master.pid,
        list.master.version,
        list.master.reloads,
        list.master.failed_reloads.unwrap_or(0)
    );
    for (title, procs) in [("worker", &list.workers), ("old worker", &list.old_workers)] {
        for p in procs {
            out.push_str(&format!(
                "  {title} {} (up {}, survived {} reloads)\n",
                p.pid, p.uptime, p.reloads
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_is_beside_the_file() {
        assert_eq!(
            backup_path(Path::new("/etc/haproxy/haproxy.cfg")),
            PathBuf::from("/etc/haproxy/haproxy.cfg.vezasock-backup")
        );
    }

    #[test]
    fn only_operator_bits_count() {
        let all = AdminFlags(0x7f);
        assert_eq!(
            operator_bits(all),
            AdminFlags::FORCED_MAINT | AdminFlags::FORCED_DRAIN
        );
        assert_eq!(describe_bits(operator_bits(AdminFlags(0x08))), "drain");
        assert_eq!(describe_bits(operator_bits(AdminFlags(0x04))), "ready");
    }
}
