//! A color's pool grows and shrinks without a reload (issue 25): the servers a runtime plan
//! adds or removes ([`crate::plan::pool`]), applied over the runtime API, read back, then
//! written through (server-state file, shape summary, config) so a reload or a restart keeps
//! them. The model is the moved-server path in `apply/mod.rs`.
//!
//! - added: `add server <b>/<s> <ip>:<port> <the config's words> <default-server words>`
//!   (HAProxy ignores `default-server` for it; it starts in maintenance), `enable health`,
//!   then `set server … state ready` only once its checks passed (`rise` times) — at most
//!   [`UP_WAIT`];
//! - removed: `set server … state drain`, a wait of at most [`DRAIN_WAIT`] for its sessions to
//!   end, `state maint`, `shutdown sessions server` (what is still open is cut), `wait <ms>
//!   srv-removable` on 3.0+, `del server` (2.6: tried again while it still has connections).
//!
//! - a new env's or component's backend (3.4+, [`crate::plan::pool::backend_source`]): `add
//!   backend <b> from vz_<component>` (unpublished), its servers added as above, then
//!   `publish backend`; the maps are written after this, by `apply`.
//!
//! Runtime first, disk second (as for moves): killed in between, the old config still
//! describes the old pool, and the next `apply` plans the same change again and finishes it (a
//! server or backend already added is not added twice, one already gone is not removed
//! twice). Any failure puts every server back (added ones deleted, removed ones readied or
//! added again — on 2.6 without their `cookie`, which it refuses: exit 5) and new backends
//! (unpublished, deleted), and restores the files: exit 1 when that is read back, exit 5
//! when not.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::edge::apply::moves::RuntimeDone;
use crate::edge::servers::{busy_servers, ServerRef};
use crate::edge::{Edge, EdgeError};
use crate::plan::LiveView;
use crate::plan::RuntimeStep;
use crate::render::shape::PoolChange;
use crate::render::Rendered;
use crate::runtime::command::pools::{
    AddBackend, AddServer, DelBackend, DelServer, EnableHealth, PublishBackend, WaitSrvRemovable,
};
use crate::runtime::command::servers::ServersState;
use crate::runtime::command::servers::{SetServerState, ShutdownSessionsServer};
use crate::runtime::command::{validate, AdminState, Name};
use crate::runtime::session::Session;
use crate::state::atomic::write_atomic;
use crate::state::{Operation, Phase};

/// How long an added server may take to pass its health checks before the change is put back.
pub const UP_WAIT: Duration = Duration::from_secs(30);
/// How long a removed server's sessions may take to end before they are shut down.
pub const DRAIN_WAIT: Duration = Duration::from_secs(10);
/// `wait <ms> srv-removable` after `shutdown sessions` (3.0+).
const REMOVABLE_WAIT_MS: u32 = 5_000;
const POLL: Duration = Duration::from_millis(100);

/// One pool change, checked: the server and, for an added one, its `add server`.
#[derive(Debug, Clone)]
pub struct PoolCommand {
    pub change: PoolChange,
    backend: Name,
    server: Name,
    /// The `add server` that adds it (for a removed one: that adds it back on failure).
    add: AddServer,
    /// Health-checked: `enable health` and a wait for its checks before it takes traffic.
    check: bool,
    /// Checks in a row that make it UP (`rise`, 2 by default).
    rise: u32,
}

impl PoolCommand {
    fn target(&self) -> String {
        format!("{}/{}", self.change.backend, self.change.server)
    }
}

/// The words `default-server` gives the config's servers, which `add server` ignores:
/// `init-addr` (start-up resolution) left out.
fn default_server_words(rendered: &Rendered) -> Vec<String> {
    let line = rendered
        .summary
        .defaults
        .iter()
        .find_map(|l| l.strip_prefix("default-server "));
    let mut out = Vec::new();
    let mut words = line.unwrap_or("").split_whitespace();
    while let Some(w) = words.next() {
        if w == "init-addr" {
            words.next();
            continue;
        }
        out.push(w.to_string());
    }
    out
}

/// What a runtime plan changes in the pools: new backends (3.4+, from the plan's
/// `add-backend` steps) and the servers added or removed.
#[derive(Debug, Clone, Default)]
pub struct PoolWork {
    pub backends: Vec<AddBackend>,
    pub servers: Vec<PoolCommand>,
}

impl PoolWork {
    pub fn is_empty(&self) -> bool {
        self.backends.is_empty() && self.servers.is_empty()
    }
}

/// The pool changes of `rendered` against the live summary, checked: names, addresses and
/// every `add server` / `add backend` line. Nothing is sent.
pub fn prepare_pool(
    rendered: &Rendered,
    live: &LiveView,
    steps: &[RuntimeStep],
) -> Result<PoolWork, EdgeError> {
    let Some(summary) = live.summary.as_ref() else {
        return Ok(PoolWork::default());
    };
    let changes = rendered.summary.pool_changes(summary).unwrap_or_default();
    let defaults = default_server_words(rendered);
    let servers = changes
        .into_iter()
        .map(|c| command(c, &defaults))
        .collect::<Result<_, _>>()?;
    let backends = steps
        .iter()
        .filter_map(|s| match s {
            RuntimeStep::AddBackend { backend, from } => Some((backend, from)),
            _ => None,
        })
        .map(|(backend, from)| {
            let add = AddBackend {
                backend: Name::new("backend", backend)?,
                from: Name::new("defaults", from)?,
            };
            validate(&add)?;
            Ok(add)
        })
        .collect::<Result<_, crate::runtime::Error>>()
        .map_err(|e| EdgeError::BadInput(format!("a new backend cannot be added: {e}")))?;
    Ok(PoolWork { backends, servers })
}

fn command(change: PoolChange, defaults: &[String]) -> Result<PoolCommand, EdgeError> {
    let bad = |why: String| {
        EdgeError::BadInput(format!(
            "server {}/{} cannot be changed at runtime: {why}; nothing was changed",
            change.backend, change.server
        ))
    };
    let (addr, port): (IpAddr, u16) = change
        .ip_port()
        .ok_or_else(|| bad(format!("{} is not an IP and a port", change.address)))?;
    let backend = Name::new("backend", &change.backend).map_err(|e| bad(e.to_string()))?;
    let server = Name::new("server", &change.server).map_err(|e| bad(e.to_string()))?;
    let mut keywords: Vec<String> = change
        .options
        .split_whitespace()
        .map(String::from)
        .collect();
    // The server's own words win over default-server's: HAProxy reads the last one.
    keywords.splice(0..0, defaults.iter().cloned());
    let rise = keywords
        .windows(2)
        .filter(|w| w[0] == "rise")
        .filter_map(|w| w[1].parse().ok())
        .next_back()
        .unwrap_or(2);
    let add = AddServer {
        backend: backend.clone(),
        server: server.clone(),
        addr,
        port,
        keywords,
    };
    validate(&add).map_err(|e| bad(e.to_string()))?;
    let check = change.options.split_whitespace().any(|w| w == "check");
    Ok(PoolCommand {
        change,
        backend,
        server,
        add,
        check,
        rise,
    })
}

/// `major.minor` of the HAProxy on the admin socket, `None` when it does not answer.
pub async fn running_version(edge: &Edge) -> Option<(u32, u32)> {
    let session = edge.admin_session().await.ok()?;
    let v = session.version();
    Some((v.major, v.minor))
}

/// What this run changed so far, for the put-back.
#[derive(Debug, Default)]
struct Progress {
    /// Added by this run (deleted again on failure).
    added: Vec<usize>,
    /// Removed servers taken out of rotation (readied again on failure).
    drained: Vec<usize>,
    /// Removed servers deleted (added back on failure).
    deleted: Vec<usize>,
    /// New backends added by this run (unpublished and deleted on failure).
    backends: Vec<usize>,
}

fn present(rows: &ServersState, c: &PoolCommand) -> bool {
    rows.find(&c.change.backend, &c.change.server).is_some()
}

/// Applies the pool changes (module doc). Under the edge lock, after [`prepare_pool`].
pub async fn change_pools(
    edge: &Edge,
    rendered: &Rendered,
    work: &PoolWork,
    op: &Operation,
) -> Result<RuntimeDone, EdgeError> {
    let commands = &work.servers;
    let paths = &edge.topology.paths;
    let read = async {
        let mut session = edge.admin_session().await?;
        let rows = session.show_servers_state(None).await?;
        let old_files = crate::edge::apply::moves::shape_files(paths)?;
        Ok::<_, EdgeError>((session, rows, old_files))
    }
    .await;
    let (mut session, rows, old_files) = match read {
        Ok(r) => r,
        Err(e) => {
            let _ = edge
                .state
                .journal_record(op, Phase::Failed, Some(&e.to_string()));
            return Err(e);
        }
    };
    let mut progress = Progress::default();
    let result = async {
        let mut changes = add_backends(&mut session, &work.backends, &mut progress).await?;
        let fresh: Vec<&str> = work.backends.iter().map(|b| b.backend.as_str()).collect();
        changes.extend(add_servers(&mut session, commands, &rows, &fresh, &mut progress).await?);
        publish(&mut session, &work.backends).await?;
        changes.extend(remove_servers(&mut session, commands, &rows, &mut progress).await?);
        read_back(&mut session, commands).await?;
        crate::edge::apply::moves::write_through(
            edge,
            op,
            &mut session,
            rendered,
            &changes,
            ["after-pool-runtime", "after-pool-config"],
        )
        .await?;
        Ok::<_, EdgeError>(changes)
    }
    .await;
    match result {
        Ok(changes) => Ok(RuntimeDone::new(changes, &old_files)),
        Err(e) => Err(put_back(edge, op, work, &progress, &old_files, e).await),
    }
}

/// Adds the new backends, unpublished (skipping one a killed apply already added).
async fn add_backends(
    session: &mut Session,
    backends: &[AddBackend],
    progress: &mut Progress,
) -> Result<Vec<String>, EdgeError> {
    if backends.is_empty() {
        return Ok(Vec::new());
    }
    let live = session.show_backends().await?;
    let mut lines = Vec::new();
    for (i, b) in backends.iter().enumerate() {
        let name = b.backend.as_str();
        let how = if live.iter().any(|l| l == name) {
            "found added by an earlier apply"
        } else {
            session.run(b).await?;
            progress.backends.push(i);
            "`add backend`"
        };
        lines.push(format!(
            "{name}: added from {} ({how}), no reload",
            b.from.as_str()
        ));
    }
    Ok(lines)
}

/// Lets the `use_backend` rules pick the new backends, once their servers are in rotation.
async fn publish(session: &mut Session, backends: &[AddBackend]) -> Result<(), EdgeError> {
    for b in backends {
        session
            .run(&PublishBackend {
                backend: b.backend.clone(),
                publish: true,
            })
            .await?;
    }
    Ok(())
}

/// Adds the new servers (skipping one a killed apply already added), starts their checks,
/// waits until each passed them, then puts them in rotation. A server of a new backend
/// (`fresh`) takes no traffic before the maps name its env, so, as after a reload, it does
/// not have to be UP: it is waited for until its first check verdict only, and one found
/// DOWN is readied all the same (its checks put it in rotation once they pass).
async fn add_servers(
    session: &mut Session,
    commands: &[PoolCommand],
    rows: &ServersState,
    fresh: &[&str],
    progress: &mut Progress,
) -> Result<Vec<String>, EdgeError> {
    let mut lines = Vec::new();
    for (i, c) in commands.iter().enumerate().filter(|(_, c)| c.change.added) {
        let again = present(rows, c);
        if !again {
            session.run(&c.add).await?;
            progress.added.push(i);
        }
        if c.check {
            session
                .run(&EnableHealth {
                    backend: c.backend.clone(),
                    server: c.server.clone(),
                })
                .await?;
        }
        let how = if again {
            "found added by an earlier apply"
        } else {
            "`add server`"
        };
        lines.push(format!(
            "{}: added at {} ({how}), no reload",
            c.target(),
            c.change.address
        ));
    }
    let (new, pool): (Vec<&PoolCommand>, Vec<&PoolCommand>) = commands
        .iter()
        .filter(|c| c.change.added)
        .partition(|c| fresh.contains(&c.change.backend.as_str()));
    wait_up(session, &pool).await?;
    lines.extend(wait_verdict(session, &new).await?);
    for c in pool.iter().chain(&new) {
        session.run(&ready(c, AdminState::Ready)).await?;
    }
    Ok(lines)
}

/// Polls `show servers state` until each checked server of a new backend is UP or failed a
/// check, at most [`UP_WAIT`]. Returns a line for each that is not UP.
async fn wait_verdict(
    session: &mut Session,
    adds: &[&PoolCommand],
) -> Result<Vec<String>, EdgeError> {
    let deadline = tokio::time::Instant::now() + UP_WAIT;
    loop {
        let rows = session.show_servers_state(None).await?;
        let mut waiting = false;
        let mut down = Vec::new();
        for c in adds.iter().filter(|c| c.check) {
            let row = rows.find(&c.change.backend, &c.change.server);
            let up = row.is_some_and(|r| r.check_result == 3 && r.check_health >= c.rise);
            let failed = row.is_some_and(|r| r.check_result == 2);
            waiting |= !up && !failed;
            if !up {
                down.push(format!(
                    "{}: DOWN by its health checks so far: in rotation once they pass",
                    c.target()
                ));
            }
        }
        if !waiting || tokio::time::Instant::now() >= deadline {
            return Ok(down);
        }
        tokio::time::sleep(POLL).await;
    }
}

fn ready(c: &PoolCommand, state: AdminState) -> SetServerState {
    SetServerState {
        backend: c.backend.clone(),
        server: c.server.clone(),
        state,
    }
}

/// Polls `show servers state` until every checked server passed `rise` checks in a row, at
/// most [`UP_WAIT`]; a server without checks is UP at once.
async fn wait_up(session: &mut Session, adds: &[&PoolCommand]) -> Result<(), EdgeError> {
    let deadline = tokio::time::Instant::now() + UP_WAIT;
    loop {
        let rows = session.show_servers_state(None).await?;
        let down: Vec<String> = adds
            .iter()
            .filter(|c| c.check)
            .filter(|c| {
                rows.find(&c.change.backend, &c.change.server)
                    .is_none_or(|r| r.check_result != 3 || r.check_health < c.rise)
            })
            .map(|c| c.target())
            .collect();
        if down.is_empty() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(EdgeError::Refused(format!(
                "{} did not pass its health checks within {} s",
                down.join(", "),
                UP_WAIT.as_secs()
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Drains, then removes, each removed server (skipping one already gone).
async fn remove_servers(
    session: &mut Session,
    commands: &[PoolCommand],
    rows: &ServersState,
    progress: &mut Progress,
) -> Result<Vec<String>, EdgeError> {
    let gone: Vec<(usize, &PoolCommand)> = commands
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.change.added && present(rows, c))
        .collect();
    for (i, c) in &gone {
        session.run(&ready(c, AdminState::Drain)).await?;
        progress.drained.push(*i);
    }
    let refs: Vec<ServerRef> = gone
        .iter()
        .map(|(_, c)| ServerRef {
            backend: c.change.backend.clone(),
            server: c.change.server.clone(),
        })
        .collect();
    let deadline = tokio::time::Instant::now() + DRAIN_WAIT;
    let mut busy = busy_servers(session, &refs).await?;
    while !busy.is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(POLL).await;
        busy = busy_servers(session, &refs).await?;
    }
    let wait = session.version().at_least(3, 0);
    let mut lines = Vec::new();
    for (i, c) in &gone {
        session.run(&ready(c, AdminState::Maint)).await?;
        let shut = ShutdownSessionsServer {
            backend: c.backend.clone(),
            server: c.server.clone(),
        };
        session.run(&shut).await?;
        if wait {
            session
                .run(&WaitSrvRemovable {
                    backend: c.backend.clone(),
                    server: c.server.clone(),
                    ms: REMOVABLE_WAIT_MS,
                })
                .await?;
        }
        delete(session, c).await?;
        progress.deleted.push(*i);
        let cut = busy
            .iter()
            .find(|b| b.backend == c.change.backend && b.server == c.change.server);
        let sessions = match cut {
            Some(b) => format!(
                "{} session(s) still open after {} s were shut down",
                b.sessions,
                DRAIN_WAIT.as_secs()
            ),
            None => "its sessions had ended".to_string(),
        };
        lines.push(format!(
            "{}: removed with `del server` ({sessions}), no reload",
            c.target()
        ));
    }
    Ok(lines)
}

/// `del server`; on 2.6 (no `wait srv-removable`) tried again for up to 5 s while HAProxy
/// says the server still has connections.
async fn delete(session: &mut Session, c: &PoolCommand) -> Result<(), EdgeError> {
    let del = DelServer {
        backend: c.backend.clone(),
        server: c.server.clone(),
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match session.run(&del).await {
            Ok(()) => return Ok(()),
            Err(crate::runtime::Error::Refused { message, .. })
                if message.contains("connections") && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(POLL).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// After the changes: each added server in the runtime and out of maintenance, each removed
/// one gone.
async fn read_back(session: &mut Session, commands: &[PoolCommand]) -> Result<(), EdgeError> {
    let rows = session.show_servers_state(None).await?;
    for c in commands {
        let row = rows.find(&c.change.backend, &c.change.server);
        let ok = match row {
            Some(r) => c.change.added && !r.admin.is_maint(),
            None => !c.change.added,
        };
        if !ok {
            let what = if c.change.added {
                "in rotation"
            } else {
                "gone"
            };
            return Err(EdgeError::NotVerified(format!(
                "after the pool change {} is not {what} in the running HAProxy",
                c.target()
            )));
        }
    }
    Ok(())
}

/// After a failure: added servers deleted again, removed ones readied (or added back and
/// readied), the files restored, and all of it read back on a new connection.
async fn put_back(
    edge: &Edge,
    op: &Operation,
    work: &PoolWork,
    progress: &Progress,
    old_files: &[(PathBuf, Option<Vec<u8>>)],
    error: EdgeError,
) -> EdgeError {
    for (path, bytes) in old_files {
        let _ = match bytes {
            Some(b) => write_atomic(path, b).map_err(|e| e.to_string()),
            None => std::fs::remove_file(path).map_err(|e| e.to_string()),
        };
    }
    let commands = &work.servers;
    let undo = async {
        let mut session = edge.admin_session().await?;
        let mut refused = Vec::new();
        for &i in &progress.added {
            let c = &commands[i];
            let maint = session.run(&ready(c, AdminState::Maint)).await;
            let del = match maint {
                Ok(()) => delete(&mut session, c).await,
                Err(e) => Err(e.into()),
            };
            if let Err(e) = del {
                refused.push(format!("{}: {e}", c.target()));
            }
        }
        for &i in &progress.drained {
            let c = &commands[i];
            let back = if progress.deleted.contains(&i) {
                add_back(&mut session, c).await
            } else {
                session
                    .run(&ready(c, AdminState::Ready))
                    .await
                    .map(|()| false)
                    .map_err(Into::into)
            };
            match back {
                Ok(false) => {}
                Ok(true) => refused.push(format!(
                    "{} is back in rotation but without its sticky cookie (HAProxy {} refuses \
                     `cookie` on a server added at runtime): clients it held go to the other \
                     servers until the next reload",
                    c.target(),
                    format_args!("{}.{}", session.version().major, session.version().minor)
                )),
                Err(e) => refused.push(format!("{}: {e}", c.target())),
            }
        }
        for &i in &progress.backends {
            if let Err(e) = remove_backend(&mut session, &work.backends[i]).await {
                refused.push(format!("{}: {e}", work.backends[i].backend.as_str()));
            }
        }
        let rows = session.show_servers_state(None).await?;
        let wrong: Vec<String> = progress
            .added
            .iter()
            .chain(&progress.drained)
            .map(|&i| &commands[i])
            .filter(|c| present(&rows, c) == c.change.added)
            .map(PoolCommand::target)
            .collect();
        if wrong.is_empty() && refused.is_empty() {
            Ok(())
        } else {
            Err(EdgeError::NotVerified(format!(
                "not all put back: {}",
                wrong
                    .iter()
                    .map(|w| format!("{w} is not as it was"))
                    .chain(refused)
                    .collect::<Vec<_>>()
                    .join("; ")
            )))
        }
    }
    .await;
    match undo {
        Ok(()) => {
            let _ = edge.state.journal_record(
                op,
                Phase::RolledBack,
                Some(&format!("pool put back, files restored: {error}")),
            );
            EdgeError::Refused(format!(
                "changing the pools failed: {error}; every server was put back (read back) and \
                 the files restored: nothing changed"
            ))
        }
        Err(why) => {
            let message = format!(
                "changing the pools failed: {error}; putting them back failed too: {why}. The \
                 config and server-state file are the old ones; `vezasock status` shows the \
                 runtime, `vezasock apply` makes the change again"
            );
            let _ = edge.state.journal_record(op, Phase::Failed, Some(&message));
            EdgeError::NotVerified(message)
        }
    }
}

/// A backend this run added, without servers again: unpublished, then deleted.
async fn remove_backend(session: &mut Session, b: &AddBackend) -> Result<(), EdgeError> {
    let backend = b.backend.clone();
    session
        .run(&PublishBackend {
            backend: backend.clone(),
            publish: false,
        })
        .await?;
    session.run(&DelBackend { backend }).await?;
    Ok(())
}

/// A removed server added back as the config declared it, checks on, in rotation. Before 3.0
/// HAProxy refuses `cookie` on an added server, so it comes back without its sticky cookie:
/// returns whether it did.
async fn add_back(session: &mut Session, c: &PoolCommand) -> Result<bool, EdgeError> {
    let old = !session.version().at_least(3, 0);
    let mut add = c.add.clone();
    let cookie = add.keywords.iter().position(|w| w == "cookie");
    let dropped = old && cookie.is_some();
    if let Some(at) = cookie.filter(|_| old) {
        add.keywords.drain(at..(at + 2).min(add.keywords.len()));
    }
    session.run(&add).await?;
    if c.check {
        session
            .run(&EnableHealth {
                backend: c.backend.clone(),
                server: c.server.clone(),
            })
            .await?;
    }
    session.run(&ready(c, AdminState::Ready)).await?;
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(options: &str, address: &str) -> PoolChange {
        PoolChange {
            backend: "be_prod_web_blue".into(),
            server: "blue_3".into(),
            address: address.into(),
            options: options.into(),
            added: true,
        }
    }

    #[test]
    fn an_added_server_carries_default_server_words_then_its_own() {
        let defaults: Vec<String> = ["inter", "2s", "fall", "3", "rise", "2"]
            .map(String::from)
            .to_vec();
        let c = command(
            change("check cookie blue_3 rise 5", "127.0.0.1:18004"),
            &defaults,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            crate::runtime::command::RuntimeCommand::line(&c.add),
            "add server be_prod_web_blue/blue_3 127.0.0.1:18004 inter 2s fall 3 rise 2 check cookie blue_3 rise 5"
        );
        assert!(c.check);
        assert_eq!(c.rise, 5);
        let plain = command(change("", "127.0.0.1:18004"), &[]).unwrap_or_else(|e| panic!("{e}"));
        assert!(!plain.check);
        assert_eq!(plain.rise, 2);
        for address in ["api.lxd:80", "127.0.0.1:0", "127.0.0.1"] {
            assert!(
                matches!(
                    command(change("check", address), &[]),
                    Err(EdgeError::BadInput(_))
                ),
                "{address}"
            );
        }
        assert!(command(change("check a;b", "127.0.0.1:1"), &[]).is_err());
    }
}
