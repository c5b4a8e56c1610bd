//! Server states written through to disk, so that a reload or a restart keeps them
//! (docs/architecture.md §3, "Write-through").
//!
//! Two files:
//! - `<state_dir>/server-admin.json`: the operator's decisions, `{"backend/server": "drain"}`
//!   with `ready`, `drain` or `maint`. `apply` and `status` read it back: it is what the edge
//!   *should* have, whatever HAProxy currently shows. Replaced atomically.
//! - HAProxy's own server-state file (`server-state-file` in the config, path from the
//!   topology): the caller's `show servers state` text, saved right before a reload so the new
//!   workers start with the same admin and health states ([`save_server_state_file`]).
//!
//! One trap: addresses and ports in the server-state file win over the new config (HAProxy
//! issues #1412, #2103). Before a reload that moves a server, its lines are dropped from the
//! file ([`drop_servers_from_state_file`]) so the new address takes effect.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::atomic::{read_optional, read_optional_string, write_atomic};
use super::{check_name, Error, StateDir};

/// The decisions file, in the state dir.
pub const SERVER_ADMIN_FILE: &str = "server-admin.json";

/// The admin state an operator asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdminDecision {
    Ready,
    Drain,
    Maint,
}

impl AdminDecision {
    /// `ready`, `drain` or `maint` (also the word of `set server … state`).
    pub fn as_str(self) -> &'static str {
        match self {
            AdminDecision::Ready => "ready",
            AdminDecision::Drain => "drain",
            AdminDecision::Maint => "maint",
        }
    }
}

impl std::fmt::Display for AdminDecision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The key of a server in `server-admin.json`: `backend/server`. HAProxy names cannot contain
/// `/`, which is why it is the separator; both names are checked.
pub fn server_key(backend: &str, server: &str) -> Result<String, Error> {
    check_name("backend", backend)?;
    check_name("server", server)?;
    Ok(format!("{backend}/{server}"))
}

impl StateDir {
    /// Every recorded decision, keyed `backend/server` (empty when the file does not exist).
    pub fn server_admin(&self) -> Result<BTreeMap<String, AdminDecision>, Error> {
        let path = self.server_admin_file();
        match read_optional(&path)? {
            None => Ok(BTreeMap::new()),
            Some(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| Error::BadJson { path, source: e })
            }
        }
    }

    /// The decision recorded for one server, if any.
    pub fn server_admin_of(
        &self,
        backend: &str,
        server: &str,
    ) -> Result<Option<AdminDecision>, Error> {
        let key = server_key(backend, server)?;
        Ok(self.server_admin()?.get(&key).copied())
    }

    /// Records decisions for several servers in one atomic write (a drain of a whole color is
    /// one change on disk). `ready` is recorded too: it says the operator put it back.
    pub fn set_server_admin(&self, changes: &[(&str, &str, AdminDecision)]) -> Result<(), Error> {
        let mut all = self.server_admin()?;
        for (backend, server, decision) in changes {
            all.insert(server_key(backend, server)?, *decision);
        }
        self.write_server_admin(&all)
    }

    /// Forgets servers (removed from the topology).
    pub fn forget_server_admin(&self, servers: &[(&str, &str)]) -> Result<(), Error> {
        let mut all = self.server_admin()?;
        for (backend, server) in servers {
            all.remove(&server_key(backend, server)?);
        }
        self.write_server_admin(&all)
    }

    fn write_server_admin(&self, all: &BTreeMap<String, AdminDecision>) -> Result<(), Error> {
        let path = self.server_admin_file();
        let mut json = serde_json::to_vec_pretty(all).map_err(|e| Error::BadJson {
            path: path.clone(),
            source: e,
        })?;
        json.push(b'\n');
        self.ensure()?;
        write_atomic(&path, &json)
    }
}

/// Writes the text of `show servers state` (as the caller received it) to HAProxy's
/// server-state file, atomically. Refuses text that is not a format-1 dump (an error reply, an
/// empty string), leaving the file as it was.
pub fn save_server_state_file(path: &Path, dump: &str) -> Result<(), Error> {
    let not = |why: &str| Error::NotServerState {
        path: path.to_path_buf(),
        why: why.to_string(),
    };
    let mut lines = dump.lines();
    match lines.next().map(str::trim) {
        Some("1") => {}
        Some(other) => {
            return Err(not(&format!(
                "the first line is {other:?}, expected the format version `1`"
            )))
        }
        None => return Err(not("it is empty")),
    }
    if !lines.next().is_some_and(|l| l.starts_with("# ")) {
        return Err(not("the second line is not the `# be_id …` header"));
    }
    let mut text = dump.to_string();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    write_atomic(path, text.as_bytes())
}

/// Drops the rows of the named `(backend, server)` pairs from a server-state text. The
/// version line, the header and every other line stay as they were. Returns the new text and
/// how many rows were dropped.
pub fn drop_server_lines(text: &str, servers: &[(&str, &str)]) -> (String, usize) {
    let mut out = String::with_capacity(text.len());
    let mut dropped = 0;
    for line in text.split_inclusive('\n') {
        if is_row_of(line, servers) {
            dropped += 1;
        } else {
            out.push_str(line);
        }
    }
    (out, dropped)
}

/// True when `line` is a server row (`be_id be_name srv_id srv_name …`) of one of `servers`.
fn is_row_of(line: &str, servers: &[(&str, &str)]) -> bool {
    if line.starts_with('#') {
        return false;
    }
    let mut fields = line.split_ascii_whitespace();
    let (Some(be_id), Some(be_name), Some(_srv_id), Some(srv_name)) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return false;
    };
    be_id.bytes().all(|b| b.is_ascii_digit())
        && servers
            .iter()
            .any(|(backend, server)| *backend == be_name && *server == srv_name)
}

/// Drops the named servers' rows from the server-state file at `path`, atomically; returns how
/// many were dropped. A missing file drops nothing; an unchanged file is not rewritten.
pub fn drop_servers_from_state_file(path: &Path, servers: &[(&str, &str)]) -> Result<usize, Error> {
    let Some(text) = read_optional_string(path)? else {
        return Ok(0);
    };
    let (new_text, dropped) = drop_server_lines(&text, servers);
    if dropped > 0 {
        write_atomic(path, new_text.as_bytes())?;
    }
    Ok(dropped)
}
