//! vezasock's own state on disk, per edge: the lock that serialises writers, the journal of
//! every change, the active color and history of each env, and the write-through of server
//! admin states (docs/architecture.md §3 and §5).
//!
//! Everything lives in one directory per edge ([`StateDir`]): the topology's `paths.state_dir`
//! itself, so the seed pipeline's files (`active-color-<env>`, `active-color-<env>.history`)
//! stay where its playbooks look. Each edge of a fleet has its own topology, so its own
//! directory (docs/architecture.md §4); [`StateDir::for_edge`] gives `<root>/edges/<edge>` for
//! edges that share one root.
//!
//! | file | written by | format |
//! |---|---|---|
//! | `vezasock.lock` | [`lock`] | empty; `flock(LOCK_EX)` on it is the per-edge lock |
//! | `vezasock.lock.holder` | [`lock`] | JSON [`Holder`]: who holds the lock |
//! | `active-color-<env>` | [`colors`] | one line: `blue` or `green` (missing = blue) |
//! | `active-color-<env>.history` | [`colors`] | newest first, last 5: `<color> <sha> <time> <who>` |
//! | `journal.jsonl` | [`journal`] | append-only JSON lines, one per phase of an operation |
//! | `server-admin.json` | [`server_states`] | `{"backend/server": "ready"\|"drain"\|"maint"}` |
//! | `transaction.json` | [`transaction`] | JSON [`Transaction`]: a flip prepared, not yet committed |
//!
//! Every file except the journal is replaced atomically ([`atomic::write_atomic`]); the journal
//! is appended with `O_APPEND` and fsynced. This module never talks to HAProxy: the caller
//! brings what the runtime said (e.g. the text of `show servers state`).

pub mod atomic;
pub mod colors;
pub mod journal;
pub mod lock;
pub mod server_states;
pub mod time;
pub mod transaction;
pub mod who;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use colors::HistoryEntry;
pub use journal::{Action, JournalEntry, JournalRead, OpenOperation, Operation, Phase};
pub use lock::{EdgeLock, Holder, Wait};
pub use server_states::AdminDecision;
pub use transaction::{Transaction, TxnState};
pub use who::who;

/// The edge name used when there is only one edge (today's case).
pub const DEFAULT_EDGE: &str = "default";

/// The state directory of one edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDir {
    edge: String,
    dir: PathBuf,
}

impl StateDir {
    /// The single edge's state, directly in `dir` (`paths.state_dir`), where the seed's
    /// `active-color-<env>` files live.
    pub fn single(dir: impl Into<PathBuf>) -> StateDir {
        StateDir {
            edge: DEFAULT_EDGE.to_string(),
            dir: dir.into(),
        }
    }

    /// One edge among several: `<root>/edges/<edge>`, so each edge has its own lock, journal
    /// and colors (docs/architecture.md §4).
    pub fn for_edge(root: &Path, edge: &str) -> Result<StateDir, Error> {
        check_name("edge", edge)?;
        Ok(StateDir {
            edge: edge.to_string(),
            dir: root.join("edges").join(edge),
        })
    }

    /// The edge this directory belongs to.
    pub fn edge(&self) -> &str {
        &self.edge
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Creates the directory (and its parents) when it does not exist yet.
    pub fn ensure(&self) -> Result<(), Error> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| Error::io("create the state dir", &self.dir, e))
    }

    /// `<dir>/vezasock.lock`.
    pub fn lock_file(&self) -> PathBuf {
        self.dir.join(lock::LOCK_FILE)
    }

    /// `<dir>/vezasock.lock.holder`.
    pub fn holder_file(&self) -> PathBuf {
        self.dir.join(lock::HOLDER_FILE)
    }

    /// `<dir>/active-color-<env>` (the env name is checked).
    pub fn color_file(&self, env: &str) -> Result<PathBuf, Error> {
        check_name("env", env)?;
        Ok(self.dir.join(format!("active-color-{env}")))
    }

    /// `<dir>/active-color-<env>.history` (the env name is checked).
    pub fn history_file(&self, env: &str) -> Result<PathBuf, Error> {
        check_name("env", env)?;
        Ok(self.dir.join(format!("active-color-{env}.history")))
    }

    /// `<dir>/journal.jsonl`.
    pub fn journal_file(&self) -> PathBuf {
        self.dir.join(journal::JOURNAL_FILE)
    }

    /// `<dir>/server-admin.json`.
    pub fn server_admin_file(&self) -> PathBuf {
        self.dir.join(server_states::SERVER_ADMIN_FILE)
    }
}

/// Everything that can go wrong with the state files. Messages name the file and say what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file system call failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Another process holds the per-edge lock.
    #[error("{}", locked_message(lock, holder.as_deref(), *waited))]
    Locked {
        lock: PathBuf,
        /// Who holds it, as written in the holder file (`None`: not written yet, or unreadable).
        /// Boxed to keep `Error` small.
        holder: Option<Box<Holder>>,
        /// How long this caller waited before giving up (`None`: it did not wait).
        waited: Option<Duration>,
    },

    /// A prepared transaction holds the edge (until its commit, abort or expiry).
    #[error("the edge is held by {0}; `vezasock txn commit --id {id}` or `vezasock txn abort --id {id}` ends it", id = .0.id)]
    TransactionOpen(Box<transaction::Transaction>),

    /// The active color file holds something other than `blue` or `green`.
    #[error("{} contains {content:?}, expected one line `blue` or `green`; fix it (or delete it: a missing file means blue)", path.display())]
    BadColorFile { path: PathBuf, content: String },

    /// A history line that cannot be read.
    #[error("{}:{line}: {text:?} is not a history line (`<color> <sha> <time> <who>`): {why}; fix or remove that line", path.display())]
    BadHistoryLine {
        path: PathBuf,
        line: usize,
        text: String,
        why: String,
    },

    /// A name (env, edge, backend, server) that cannot be used in a file name or key.
    #[error("invalid {what} name {name:?}: {why}")]
    BadName {
        what: &'static str,
        name: String,
        why: &'static str,
    },

    /// A value that cannot be written into a one-line record (a newline in `who`, …).
    #[error("invalid {what} {value:?}: {why}")]
    BadValue {
        what: &'static str,
        value: String,
        why: &'static str,
    },

    /// A file vezasock would read that is not a regular file, or too large to be one of its own
    /// (`/dev/zero` named as a state dir's file, a FIFO): refused without reading it.
    #[error("{} is not read: {why}; vezasock's own files are regular files (move it away)", path.display())]
    NotReadable { path: PathBuf, why: String },

    /// A JSON state file that cannot be read.
    #[error("{} is not valid: {source}; fix it or move it away (vezasock rewrites it on the next change)", path.display())]
    BadJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    /// Text given as a `show servers state` dump that is not one.
    #[error("not a `show servers state` dump for {}: {why}; the server-state file was left as it was", path.display())]
    NotServerState { path: PathBuf, why: String },
}

impl Error {
    /// Shorthand for [`Error::Io`].
    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    /// True when the error is [`Error::Locked`] (a caller may retry later).
    pub fn is_locked(&self) -> bool {
        matches!(self, Error::Locked { .. } | Error::TransactionOpen(_))
    }
}

fn locked_message(lock: &Path, holder: Option<&Holder>, waited: Option<Duration>) -> String {
    let who = match holder {
        Some(h) => h.to_string(),
        None => "another process (it has not written its name yet)".to_string(),
    };
    let waited = match waited {
        Some(d) => format!(" after waiting {:.1}s", d.as_secs_f64()),
        None => String::new(),
    };
    format!(
        "the edge is locked by {who}{waited} ({}); wait for it to finish, or retry with a longer wait",
        lock.display()
    )
}

/// Checks a name that becomes part of a file name or a `backend/server` key: not empty, no
/// `/`, no `..`, no whitespace or control characters, does not start with `.` or `-`.
/// Topology names are validated identifiers already; this guards the file system anyway.
pub(crate) fn check_name(what: &'static str, name: &str) -> Result<(), Error> {
    let bad = |why| {
        Err(Error::BadName {
            what,
            name: name.to_string(),
            why,
        })
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.contains('/') {
        return bad("it contains `/`");
    }
    if name.contains("..") {
        return bad("it contains `..`");
    }
    if name.starts_with('.') || name.starts_with('-') {
        return bad("it starts with `.` or `-`");
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("it contains whitespace or a control character");
    }
    Ok(())
}
