//! The operator's server tools: `drain`, `maint` and `ready` on a selection of servers (a
//! whole env, one color, one component, one server, or any backend by name), every change
//! written through to disk so that a reload or a full restart keeps it (docs/architecture.md §3, "Write-through").
//!
//! A selection resolves, from the topology alone, to a list of `backend/server` pairs
//! ([`resolve`]); an unknown env, color, component, server or backend is
//! [`EdgeError::BadInput`] listing the valid names, before anything is touched.
//!
//! **Order of one change** (under the per-edge lock, on one admin session):
//! 1. `show servers state`: every selected server must exist in the running HAProxy (a
//!    topology ahead of the running config is refused, nothing changed), and its admin state
//!    is the journal's "before";
//! 2. journal `intent`;
//! 3. one pipelined batch: `set server B/S state X` for each server (for `maint
//!    --kill-sessions`, followed by `shutdown sessions server B/S`: maint first, so that no new
//!    session can land between the two), every reply checked;
//! 4. journal `runtime-applied`;
//! 5. write-through: the decisions of the servers HAProxy accepted go to
//!    `server-admin.json` ([`StateDir::set_server_admin`]), then `show servers state` is dumped
//!    into HAProxy's server-state file, the one the rendered config loads at start and reload
//!    (`server-state-file` + `load-server-state-from-file global`);
//! 6. journal `disk-written`, then `done` (or `failed`, naming the servers HAProxy refused).
//!
//! The decisions file is written before the dump because it is vezasock's own record of what
//! the operator asked for: if the process dies between the two, `status`/`apply` still know the
//! intended state, and the open journal operation says the dump is missing. A partial refusal
//! (some servers accepted, some not) still writes through what *was* applied, so disk never
//! lags behind the runtime, and exits 5 naming the servers now changed: 1–4 promise that
//! nothing changed. So does any failure after HAProxy accepted a change (a journal or
//! write-through on a full disk). A batch cut in the middle is read again on a fresh session:
//! every server as before keeps the error's own exit (3), anything else (or no answer) is 5.
//!
//! **The live-color guard.** `drain` and `maint` refuse (exit 1, nothing changed) when they
//! would leave a component of an env with no server in rotation on the color that env's
//! traffic goes to now (the runtime `active-color.map`): every new request there would get a
//! 503. The operator flips the env first, or passes `force` (`--force`) when that is really
//! what the emergency needs. Externals (Forgejo, …) are not guarded: taking their one server
//! out is the ordinary way to put them in maintenance.
//!
//! **Drain and wait.** [`drain`] with a deadline polls `show stat` (one pipelined batch per
//! poll, one `show stat <backend> 4 -1` per backend) until every selected server has no current
//! session (`scur` = 0) or is DOWN (a dead server's sessions are not coming back), then runs
//! the `then` action. When the deadline passes first, the servers stay in drain and the report
//! names the busy ones. `scur` counts streams, i.e. requests in flight: an idle keep-alive
//! client connection between two requests counts 0 (checked on 2.6 and 3.2), which is right
//! for a drain, since its next request is balanced away from a draining server (unless a
//! sticky cookie pins it there, which drain allows by design). The lock is held for the whole command, wait included: a switch
//! started meanwhile waits for it (bounded by its own lock timeout) rather than flipping
//! under a half-finished drain.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::{Edge, EdgeError};
use crate::runtime::command::servers::{
    AdminFlags, ServersState, SetServerState, ShowServersState, ShutdownSessionsServer,
};
use crate::runtime::command::stat::ShowStat;
use crate::runtime::command::{AdminState, StatFilter};
use crate::runtime::session::{Batch, Session};
use crate::state::journal::{Action, Operation, Phase};
use crate::state::server_states::save_server_state_file;
use crate::state::{AdminDecision, EdgeLock, Holder, Wait};
use crate::topology::Color;

pub use selection::{resolve, Selection, ServerRef};

mod selection;

/// Pause between two `show stat` polls while waiting for a drain.
const POLL: Duration = Duration::from_millis(200);

/// How to drain: wait up to `deadline` (none: return at once), then do `then`; `force` skips
/// the live-color guard.
#[derive(Debug, Clone, Copy)]
pub struct DrainHow {
    pub deadline: Option<Duration>,
    pub then: Then,
    pub force: bool,
}

/// What `drain --wait` does once the servers are drained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Then {
    /// Put them in maintenance.
    Maint,
    /// `shutdown sessions server` and maintenance.
    Kill,
    /// Stay in drain.
    Leave,
}

/// One server's change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerChange {
    pub backend: String,
    pub server: String,
    /// Admin state before, as HAProxy showed it: `ready`, `drain` or `maint`.
    pub before: String,
    /// The state asked for.
    pub after: AdminDecision,
    /// `shutdown sessions server` was sent too.
    pub sessions_killed: bool,
}

/// What one `drain` / `maint` / `ready` change did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeReport {
    pub action: AdminDecision,
    pub servers: Vec<ServerChange>,
    /// Where the decisions were recorded.
    pub admin_file: PathBuf,
    /// Where `show servers state` was dumped.
    pub server_state_file: PathBuf,
    /// The journal operation id.
    pub op_id: String,
}

/// A server that still had sessions when the wait ended (or at the last poll).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Busy {
    pub backend: String,
    pub server: String,
    /// Current sessions (`scur`).
    pub sessions: u64,
    /// `show stat` status (`DRAIN`, `UP`, …).
    pub status: String,
}

/// `be/s (2 sessions, DRAIN), …`: the servers a drain still waits for, one line.
pub fn busy_line(busy: &[Busy]) -> String {
    busy.iter()
        .map(|b| {
            format!(
                "{}/{} ({} sessions, {})",
                b.backend, b.server, b.sessions, b.status
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// How a drain wait ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WaitReport {
    /// True when every server reached zero sessions (or was DOWN) before the deadline.
    pub drained: bool,
    pub waited_ms: u64,
    /// The servers still busy at the end (empty when drained).
    pub busy: Vec<Busy>,
}

/// What `drain` did: the drain itself, the wait, and the `then` action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DrainReport {
    pub drain: ChangeReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait: Option<WaitReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub then: Option<ChangeReport>,
}

/// `ready`, `drain` or `maint` from the `srv_admin_state` bits (maint wins over drain).
fn admin_word(bits: AdminFlags) -> &'static str {
    if bits.is_maint() {
        "maint"
    } else if bits.is_drain() {
        "drain"
    } else {
        "ready"
    }
}

fn runtime_state(decision: AdminDecision) -> AdminState {
    match decision {
        AdminDecision::Ready => AdminState::Ready,
        AdminDecision::Drain => AdminState::Drain,
        AdminDecision::Maint => AdminState::Maint,
    }
}

fn journal_action(decision: AdminDecision) -> Action {
    match decision {
        AdminDecision::Ready => Action::Ready,
        AdminDecision::Drain => Action::Drain,
        AdminDecision::Maint => Action::Maint,
    }
}

/// Takes the per-edge lock (blocking: this runs before any HAProxy traffic).
async fn lock(edge: &Edge, wait: Wait) -> Result<EdgeLock, EdgeError> {
    Ok(EdgeLock::acquire_async(&edge.state, wait, Holder::current()).await?)
}

/// `maint` or `ready` (or a plain `drain` with no wait) on `servers`, under the lock, written
/// through to disk. `kill_sessions` adds `shutdown sessions server` after the state change.
pub async fn set_state(
    edge: &Edge,
    selection: &Selection,
    servers: &[ServerRef],
    decision: AdminDecision,
    kill_sessions: bool,
    force: bool,
    wait: Wait,
) -> Result<ChangeReport, EdgeError> {
    let _lock = lock(edge, wait).await?;
    let mut session = edge.admin_session().await?;
    if !force && decision != AdminDecision::Ready {
        guard_live(edge, &mut session, servers).await?;
    }
    apply_locked(
        edge,
        &mut session,
        selection.env(),
        servers,
        decision,
        kill_sessions,
    )
    .await
}

/// A server change made ready on one edge: lock held, servers resolved, the live-color guard
/// passed. The fleet coordinator prepares it on every edge (in name order) before applying it
/// on any, and puts back the edges it applied on when another fails.
pub struct PreparedChange<'e> {
    edge: &'e Edge,
    _lock: EdgeLock,
    session: Session,
    env: Option<String>,
    servers: Vec<ServerRef>,
    /// What [`PreparedChange::apply`] did, for [`PreparedChange::restore`].
    pub applied: Option<ChangeReport>,
    /// `server-admin.json` before [`PreparedChange::apply`] (`None`: not read yet; `Some(None)`:
    /// there was no file), so that a put-back leaves it byte for byte as it was.
    admin_before: Option<Option<Vec<u8>>>,
}

/// Locks the edge, resolves the selection and runs the guard (unless `force` or READY).
pub async fn prepare_change<'e>(
    edge: &'e Edge,
    selection: &Selection,
    decision: AdminDecision,
    force: bool,
    wait: Wait,
) -> Result<PreparedChange<'e>, EdgeError> {
    let servers = resolve(edge, selection)?;
    let lock = lock(edge, wait).await?;
    let mut session = edge.admin_session().await?;
    if !force && decision != AdminDecision::Ready {
        guard_live(edge, &mut session, &servers).await?;
    }
    Ok(PreparedChange {
        edge,
        _lock: lock,
        session,
        env: selection.env().map(str::to_string),
        servers,
        applied: None,
        admin_before: None,
    })
}

impl PreparedChange<'_> {
    /// The change itself, written through and journalled (as `maint` / `ready` / `drain`).
    pub async fn apply(
        &mut self,
        decision: AdminDecision,
        kill_sessions: bool,
    ) -> Result<ChangeReport, EdgeError> {
        self.admin_before = Some(crate::state::atomic::read_optional(
            &self.edge.state.server_admin_file(),
        )?);
        let report = apply_locked(
            self.edge,
            &mut self.session,
            self.env.as_deref(),
            &self.servers,
            decision,
            kill_sessions,
        )
        .await?;
        self.applied = Some(report.clone());
        Ok(report)
    }

    /// Waits up to `limit` for the servers to have no session left (a drain's `--wait`).
    pub async fn wait_drained(&mut self, limit: Duration) -> Result<WaitReport, EdgeError> {
        wait_drained(&mut self.session, &self.servers, limit).await
    }

    /// Puts every server [`PreparedChange::apply`] changed back to its state before.
    pub async fn restore(&mut self) -> Result<String, EdgeError> {
        let Some(report) = self.applied.take() else {
            return Ok("nothing was applied".to_string());
        };
        let mut done = Vec::new();
        for decision in [
            AdminDecision::Ready,
            AdminDecision::Drain,
            AdminDecision::Maint,
        ] {
            let back: Vec<ServerRef> = report
                .servers
                .iter()
                .filter(|c| c.before == decision.as_str() && c.after != decision)
                .map(|c| ServerRef {
                    backend: c.backend.clone(),
                    server: c.server.clone(),
                })
                .collect();
            if back.is_empty() {
                continue;
            }
            apply_locked(
                self.edge,
                &mut self.session,
                self.env.as_deref(),
                &back,
                decision,
                false,
            )
            .await?;
            done.push(format!(
                "{} server(s) back to {}",
                back.len(),
                decision.as_str()
            ));
        }
        // The runtime is back: the decisions file too, as it was (a put-back is no decision;
        // writing `ready` entries would record one nobody made).
        if let Some(before) = self.admin_before.take() {
            let path = self.edge.state.server_admin_file();
            crate::state::atomic::put_file_back(&path, before.as_deref()).map_err(|e| {
                EdgeError::NotVerified(format!("servers put back, but not {}: {e}", path.display()))
            })?;
        }
        Ok(if done.is_empty() {
            "nothing to put back".to_string()
        } else {
            done.join(", ")
        })
    }
}

/// `drain`, then with `deadline` the wait for sessions to reach zero and the `then` action.
/// The wait shows its countdown through [`crate::edge::progress`].
pub async fn drain(
    edge: &Edge,
    selection: &Selection,
    servers: &[ServerRef],
    how: DrainHow,
    wait: Wait,
) -> Result<DrainReport, EdgeError> {
    let DrainHow {
        deadline,
        then,
        force,
    } = how;
    let _lock = lock(edge, wait).await?;
    let mut session = edge.admin_session().await?;
    if !force {
        guard_live(edge, &mut session, servers).await?;
    }
    let env = selection.env();
    let drain = apply_locked(
        edge,
        &mut session,
        env,
        servers,
        AdminDecision::Drain,
        false,
    )
    .await?;
    let Some(limit) = deadline else {
        return Ok(DrainReport {
            drain,
            wait: None,
            then: None,
        });
    };
    let waited = wait_drained(&mut session, servers, limit).await?;
    let then = match (waited.drained, then) {
        (false, _) | (true, Then::Leave) => None,
        (true, Then::Maint) => Some(
            apply_locked(
                edge,
                &mut session,
                env,
                servers,
                AdminDecision::Maint,
                false,
            )
            .await?,
        ),
        (true, Then::Kill) => {
            Some(apply_locked(edge, &mut session, env, servers, AdminDecision::Maint, true).await?)
        }
    };
    Ok(DrainReport {
        drain,
        wait: Some(waited),
        then,
    })
}

/// The busy servers among `servers`, from one pipelined `show stat` batch.
pub async fn busy_servers(
    session: &mut Session,
    servers: &[ServerRef],
) -> Result<Vec<Busy>, EdgeError> {
    let backends: BTreeSet<&str> = servers.iter().map(|s| s.backend.as_str()).collect();
    let mut commands = Vec::with_capacity(backends.len());
    for backend in &backends {
        commands.push(ShowStat {
            filter: Some(StatFilter::servers_of(backend)?),
        });
    }
    let replies = session.run_each(&commands).await?;
    let mut busy = Vec::new();
    for table in &replies {
        for row in table.iter() {
            let (Some(px), Some(sv)) = (row.pxname(), row.svname()) else {
                continue;
            };
            if !servers.iter().any(|s| s.backend == px && s.server == sv) {
                continue;
            }
            let status = row.status().unwrap_or_default();
            let sessions = row.scur().unwrap_or(0);
            // A DOWN server's sessions die with it: waiting for them would only burn the deadline.
            if sessions > 0 && !status.starts_with("DOWN") {
                busy.push(Busy {
                    backend: px.to_string(),
                    server: sv.to_string(),
                    sessions,
                    status: status.to_string(),
                });
            }
        }
    }
    Ok(busy)
}

/// Polls until no selected server is busy or `limit` has passed (bounded in time; the number
/// of polls is at most `limit / POLL + 1`), its countdown shown as progress: `draining: 3
/// session(s) on 2 server(s), 41s left`.
async fn wait_drained(
    session: &mut Session,
    servers: &[ServerRef],
    limit: Duration,
) -> Result<WaitReport, EdgeError> {
    let start = Instant::now();
    let deadline = start + limit;
    let mut progress = crate::edge::progress::Wait::start();
    loop {
        let busy = busy_servers(session, servers).await?;
        let now = Instant::now();
        progress.show(|| {
            format!(
                "draining: {} session(s) on {} server(s), {}s left",
                busy.iter().map(|b| b.sessions).sum::<u64>(),
                busy.len(),
                deadline.saturating_duration_since(now).as_secs()
            )
        });
        let done = busy.is_empty();
        if done || now >= deadline {
            return Ok(WaitReport {
                drained: done,
                waited_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
                busy,
            });
        }
        tokio::time::sleep(POLL.min(deadline.saturating_duration_since(now))).await;
    }
}

/// The change itself (steps 1–6 of the module doc); the caller holds the lock.
/// The live-color guard (module doc): refuses when taking `servers` out of rotation would leave
/// a component of an env with no server in rotation on its live color.
async fn guard_live(
    edge: &Edge,
    session: &mut Session,
    servers: &[ServerRef],
) -> Result<(), EdgeError> {
    let selected: BTreeSet<(&str, &str)> = servers
        .iter()
        .map(|s| (s.backend.as_str(), s.server.as_str()))
        .collect();
    let colors = session
        .show_map(&crate::edge::active_color::map_ref(edge), None)
        .await?;
    let state = session.show_servers_state(None).await?;
    let mut emptied = Vec::new();
    for env in &edge.topology.envs {
        // An env missing from the map is routed to blue (the map lookup's default).
        let live = if env.colored {
            crate::edge::active_color::runtime_color(&colors, &env.name)?.unwrap_or(Color::Blue)
        } else {
            Color::Blue
        };
        for comp in &env.components {
            let backend = env.backend_name(&comp.name, live);
            let rows: Vec<_> = state.rows.iter().filter(|r| r.be_name == backend).collect();
            let touched = rows
                .iter()
                .any(|r| selected.contains(&(r.be_name.as_str(), r.srv_name.as_str())));
            // Backups (cross-color failover) count: they do serve when the others are out.
            let in_rotation = rows
                .iter()
                .filter(|r| !selected.contains(&(r.be_name.as_str(), r.srv_name.as_str())))
                .filter(|r| !r.admin.is_maint() && !r.admin.is_drain())
                .count();
            if touched && in_rotation == 0 {
                emptied.push(format!(
                    "{} {} ({backend}, live {live})",
                    env.name, comp.name
                ));
            }
        }
    }
    if emptied.is_empty() {
        return Ok(());
    }
    Err(EdgeError::Refused(format!(
        "refusing: this takes every server of the live color out of rotation for {}; new requests \
         there would get 503. Flip the env to its other color first (`vezasock switch ENV COLOR`), \
         or pass --force if that is what you want; nothing was changed",
        emptied.join(", ")
    )))
}

async fn apply_locked(
    edge: &Edge,
    session: &mut Session,
    env: Option<&str>,
    servers: &[ServerRef],
    decision: AdminDecision,
    kill_sessions: bool,
) -> Result<ChangeReport, EdgeError> {
    let state = session.show_servers_state(None).await?;
    let before = before_states(&state, servers)?;
    let who = crate::state::who();
    let listed: Vec<String> = servers.iter().map(ToString::to_string).collect();
    let before_text: Vec<String> = servers
        .iter()
        .zip(&before)
        .map(|(s, b)| format!("{s}={b}"))
        .collect();
    let op = Operation::new(
        journal_action(decision),
        env,
        Some(&before_text.join(",")),
        Some(decision.as_str()),
        &who,
    );
    let detail = format!(
        "{}{}",
        listed.join(","),
        if kill_sessions {
            " (+ shutdown sessions)"
        } else {
            ""
        }
    );
    edge.state
        .journal_record(&op, Phase::Intent, Some(&detail))?;

    let mut commands = Batch::new();
    for s in servers {
        commands.push(SetServerState::new(
            &s.backend,
            &s.server,
            runtime_state(decision),
        )?)?;
        if kill_sessions {
            commands.push(ShutdownSessionsServer::new(&s.backend, &s.server)?)?;
        }
    }
    let replies = match session.run_batch_all(commands).await {
        Ok(replies) => replies.into_replies(),
        Err(e) => {
            // The batch may have been partly applied: what HAProxy shows now decides whether
            // "nothing changed" (the error's own exit) is true.
            let moved = moved_since(edge, servers, &before).await;
            let why = format!("runtime batch failed: {e}; {}", moved.describe());
            let _ = edge.state.journal_record(&op, Phase::Failed, Some(&why));
            return Err(match moved {
                Moved::Nothing => e.into(),
                _ => EdgeError::NotVerified(format!(
                    "{why}; disk not written through: run the same command again to finish it, or `vezasock apply` to see what is live"
                )),
            });
        }
    };
    let per_server = if kill_sessions { 2 } else { 1 };
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    let mut changes = Vec::new();
    for (i, (s, before)) in servers.iter().zip(&before).enumerate() {
        let state_reply = replies.get(i * per_server);
        match state_reply.and_then(|r| r.refusal(Some(i * per_server + 1))) {
            None if state_reply.is_some() => accepted.push(s),
            Some(e) => refused.push(e.to_string()),
            None => refused.push(format!("{s}: no reply")),
        }
        if kill_sessions {
            if let Some(e) = replies
                .get(i * per_server + 1)
                .and_then(|r| r.refusal(None))
            {
                refused.push(e.to_string());
            }
        }
        changes.push(ServerChange {
            backend: s.backend.clone(),
            server: s.server.clone(),
            before: before.to_string(),
            after: decision,
            sessions_killed: kill_sessions,
        });
    }
    // From here the accepted changes are live: a failure must not exit as "nothing changed".
    let live = |e: EdgeError| -> EdgeError {
        if accepted.is_empty() {
            return e;
        }
        let names: Vec<String> = accepted.iter().map(ToString::to_string).collect();
        EdgeError::NotVerified(format!(
            "{e}; live in HAProxy: {} {}; run the same command again to finish it",
            names.join(", "),
            decision.as_str()
        ))
    };
    edge.state
        .journal_record(
            &op,
            Phase::RuntimeApplied,
            Some(&format!("{} of {} accepted", accepted.len(), servers.len())),
        )
        .map_err(|e| live(e.into()))?;

    // Write-through, even after a partial refusal: disk follows what the runtime now holds.
    let decided: Vec<(&str, &str, AdminDecision)> = accepted
        .iter()
        .map(|s| (s.backend.as_str(), s.server.as_str(), decision))
        .collect();
    let written = write_through(edge, session, &decided).await;
    if let Err(e) = written {
        let _ = edge.state.journal_record(
            &op,
            Phase::Failed,
            Some(&format!("write-through failed: {e}")),
        );
        return Err(live(e));
    }
    edge.state
        .journal_record(&op, Phase::DiskWritten, None)
        .map_err(|e| live(e.into()))?;
    if !refused.is_empty() {
        let why = refused.join("; ");
        let _ = edge.state.journal_record(&op, Phase::Failed, Some(&why));
        return Err(live(EdgeError::Runtime(crate::runtime::Error::Refused {
            command: format!("set server … state {}", decision.as_str()),
            index: None,
            message: format!(
                "{why} (the {} accepted change(s) were written through)",
                accepted.len()
            ),
        })));
    }
    edge.state
        .journal_record(&op, Phase::Done, None)
        .map_err(|e| live(e.into()))?;
    Ok(ChangeReport {
        action: decision,
        servers: changes,
        admin_file: edge.state.server_admin_file(),
        server_state_file: edge.topology.paths.server_state_file.clone(),
        op_id: op.op_id,
    })
}

/// What a failed batch left: read on a fresh session, since the failed one may be cut.
enum Moved {
    Nothing,
    Some(Vec<String>),
    Unknown(String),
}

impl Moved {
    fn describe(&self) -> String {
        match self {
            Moved::Nothing => "HAProxy shows every server as before: nothing changed".into(),
            Moved::Some(changed) => format!("changed in HAProxy: {}", changed.join(", ")),
            Moved::Unknown(e) => {
                format!("HAProxy could not be read again ({e}): servers may have changed")
            }
        }
    }
}

/// Which selected servers no longer have their `before` admin state.
async fn moved_since(edge: &Edge, servers: &[ServerRef], before: &[&'static str]) -> Moved {
    let read = async {
        let mut session = edge.admin_session().await?;
        let state = session.show_servers_state(None).await?;
        before_states(&state, servers)
    };
    match read.await {
        Err(e) => Moved::Unknown(e.to_string()),
        Ok(now) => {
            let changed: Vec<String> = servers
                .iter()
                .zip(before.iter().zip(&now))
                .filter(|(_, (b, n))| b != n)
                .map(|(s, (b, n))| format!("{s} {b} → {n}"))
                .collect();
            if changed.is_empty() {
                Moved::Nothing
            } else {
                Moved::Some(changed)
            }
        }
    }
}

/// Each selected server's admin state; a server the running HAProxy does not have is refused
/// before anything changes.
fn before_states(
    state: &ServersState,
    servers: &[ServerRef],
) -> Result<Vec<&'static str>, EdgeError> {
    let mut missing = Vec::new();
    let mut before = Vec::with_capacity(servers.len());
    for s in servers {
        match state.find(&s.backend, &s.server) {
            Some(row) => before.push(admin_word(row.admin)),
            None => missing.push(s.to_string()),
        }
    }
    if !missing.is_empty() {
        return Err(EdgeError::Refused(format!(
            "not in the running HAProxy: {} (its config is older than the topology; run `vezasock apply` first). Nothing was changed",
            missing.join(", ")
        )));
    }
    Ok(before)
}

/// Records the decisions, then dumps `show servers state` into the server-state file.
/// Dumps `show servers state` into the server-state file the config loads, so that a reload
/// keeps the runtime's server states (the flip calls it after readying drained servers).
pub(crate) async fn save_server_state(edge: &Edge, session: &mut Session) -> Result<(), EdgeError> {
    write_through(edge, session, &[]).await
}

async fn write_through(
    edge: &Edge,
    session: &mut Session,
    decided: &[(&str, &str, AdminDecision)],
) -> Result<(), EdgeError> {
    if !decided.is_empty() {
        edge.state.set_server_admin(decided)?;
    }
    let reply = session.send(&ShowServersState::default()).await?;
    let text = String::from_utf8_lossy(&reply.body);
    save_server_state_file(&edge.topology.paths.server_state_file, &text)?;
    Ok(())
}
