//! Moved servers over the runtime API (issue 12): `set server … addr … port …`, read back, then
//! written through (server-state file, config and shape summary) for the next reload.
//!
//! Order: runtime first, disk second. A crash in between leaves the old config and state file,
//! which still describe the old address: a reload then goes back to it, and the next `apply`
//! plans the same move again. The other order would leave a config whose fingerprint says
//! "done" while the runtime still has the old address, and no plan would ever notice.

use std::net::IpAddr;
use std::path::PathBuf;

use super::reload::{self};
use crate::edge::{Edge, EdgeError};
use crate::render::{shape, Rendered};
use crate::runtime::command::servers::AddrChange;
use crate::runtime::command::{Name, RuntimeCommand, SetServerAddr};
use crate::runtime::session::Session;
use crate::state::atomic::{read_optional, write_atomic};
use crate::state::{Action, Operation, Phase};
use crate::topology::Paths;

/// One server to move, checked: its command and its address as the config writes it.
#[derive(Debug, Clone)]
pub struct ServerMoveCommand {
    pub backend: String,
    pub server: String,
    pub from: String,
    pub to: String,
    command: SetServerAddr,
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
pub(super) fn runtime_addresses(
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
) -> Result<RuntimeDone, EdgeError> {
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
        Ok(changes) => Ok(RuntimeDone::new(changes, &old_files)),
        Err(e) => Err(put_back_moves(edge, op, moves, &before, &old_files, e).await),
    }
}

/// What a runtime change of the shape did (servers moved, or pools changed): one line per
/// server, and the files rewritten.
#[derive(Debug, Clone)]
pub struct RuntimeDone {
    pub changes: Vec<String>,
    pub files: Vec<PathBuf>,
}

impl RuntimeDone {
    /// The `changes` made live and written through; `old` names the files rewritten.
    pub(super) fn new(changes: Vec<String>, old: &OldFiles) -> RuntimeDone {
        RuntimeDone {
            changes,
            files: old.iter().map(|(p, _)| p.clone()).collect(),
        }
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
pub(super) const READ_BACK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Each server's address in `show servers state`, read until it is `want` or
/// [`READ_BACK_WAIT`] ran out (then the last read).
pub(super) async fn read_back(
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
pub(super) fn describe(change: &AddrChange) -> String {
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
pub(super) async fn put_back_moves(
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
pub(super) fn close_reached(
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
pub(super) fn after_moves(moved: Option<&RuntimeDone>, error: EdgeError) -> EdgeError {
    match moved {
        None => error,
        Some(m) => EdgeError::NotVerified(format!(
            "{error}; but the server moves before it are live and written through: {}",
            m.changes.join("; ")
        )),
    }
}
