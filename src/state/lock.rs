//! The per-edge lock: two CI jobs (or a CI job and an operator) never change the same edge at
//! the same time (the flip's lock phase, docs/architecture.md §3).
//!
//! It is `flock(LOCK_EX)` on `<state_dir>/vezasock.lock`. The kernel releases a `flock` when the
//! file is closed, so the lock goes away when [`EdgeLock`] is dropped and when the process dies
//! in any way, `kill -9` included: there is no stale lock to clean up by hand. The lock file
//! itself is never deleted (deleting it would let two processes lock two different inodes).
//!
//! After taking the lock, the holder writes who it is to `<state_dir>/vezasock.lock.holder`
//! (JSON, atomically), so that a caller that cannot get the lock can say who has it. That file is
//! only information: a dead holder's file may remain after a crash, and it is ignored when its
//! pid no longer runs on this host.

use std::fs::{File, OpenOptions};
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use rustix::fs::{flock, FlockOperation};
use rustix::io::Errno;
use serde::{Deserialize, Serialize};

use super::atomic::{process_alive, read_optional, write_atomic_volatile};
use super::{time, Error, StateDir};

/// The lock file, in the state dir.
pub const LOCK_FILE: &str = "vezasock.lock";
/// Who holds the lock, in the state dir.
pub const HOLDER_FILE: &str = "vezasock.lock.holder";

/// How often a waiting caller tries the lock again.
const POLL: Duration = Duration::from_millis(50);

/// What to do when the lock is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Fail at once with [`Error::Locked`] (`--no-wait`).
    No,
    /// Try again until this instant, then fail with [`Error::Locked`].
    Until(Instant),
}

impl Wait {
    /// Waits at most `limit` from now.
    pub fn up_to(limit: Duration) -> Wait {
        Wait::Until(Instant::now() + limit)
    }
}

/// Who holds the lock: enough for a person to find the process (or the CI job) and ask.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub user: String,
    pub host: String,
    /// The holder's command line.
    pub command: String,
    /// When it took the lock (RFC 3339 UTC).
    pub since: String,
    /// The transaction this holder continues (its commit or abort): an open transaction with
    /// this id does not hold the edge against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction: Option<String>,
}

impl Holder {
    /// This process, now.
    pub fn current() -> Holder {
        Holder {
            pid: std::process::id(),
            user: super::who(),
            host: current_host(),
            command: current_command(),
            since: time::now_rfc3339(),
            transaction: None,
        }
    }

    /// This holder, continuing transaction `id`.
    pub fn in_transaction(mut self, id: &str) -> Holder {
        self.transaction = Some(id.to_string());
        self
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} ({}@{}, `{}`, since {})",
            self.pid, self.user, self.host, self.command, self.since
        )
    }
}

/// The held per-edge lock. Dropping it releases the lock.
#[derive(Debug)]
pub struct EdgeLock {
    // Kept open for as long as the lock is held: closing it releases the flock.
    _file: File,
    holder_file: PathBuf,
    holder: Holder,
}

impl EdgeLock {
    /// Takes the lock of `state`'s edge, waiting as `wait` says (the thread sleeps between
    /// tries). On success the holder file names `holder`. Creates the state dir when needed.
    pub fn acquire(state: &StateDir, wait: Wait, holder: Holder) -> Result<EdgeLock, Error> {
        let (file, started) = (open_lock_file(state)?, Instant::now());
        loop {
            while !try_lock(state, &file, wait, started)? {
                thread::sleep(poll_for(wait));
            }
            if transaction_lets(state, &file, &holder, wait)? {
                return EdgeLock::held(state, file, holder);
            }
            thread::sleep(poll_for(wait));
        }
    }

    /// [`EdgeLock::acquire`] for async callers: waiting sleeps on the async runtime's timer, so
    /// the other tasks of the runtime (a drain's countdown, another edge's transaction) go on.
    pub async fn acquire_async(
        state: &StateDir,
        wait: Wait,
        holder: Holder,
    ) -> Result<EdgeLock, Error> {
        let (file, started) = (open_lock_file(state)?, Instant::now());
        loop {
            while !try_lock(state, &file, wait, started)? {
                tokio::time::sleep(poll_for(wait)).await;
            }
            if transaction_lets(state, &file, &holder, wait)? {
                return EdgeLock::held(state, file, holder);
            }
            tokio::time::sleep(poll_for(wait)).await;
        }
    }

    /// The lock is ours: write the holder file.
    fn held(state: &StateDir, file: File, holder: Holder) -> Result<EdgeLock, Error> {
        let holder_file = state.holder_file();
        let json = serde_json::to_vec(&holder).map_err(|e| Error::BadJson {
            path: holder_file.clone(),
            source: e,
        })?;
        // On failure `file` is dropped here, which releases the lock. The holder file only
        // names who holds the lock (the flock is the lock), so it is not worth two fsyncs.
        write_atomic_volatile(&holder_file, &json)?;
        Ok(EdgeLock {
            _file: file,
            holder_file,
            holder,
        })
    }

    /// Who holds this lock (this process).
    pub fn holder(&self) -> &Holder {
        &self.holder
    }
}

impl Drop for EdgeLock {
    fn drop(&mut self) {
        // Removed while the lock is still held, so it never names a holder that has left.
        // Best effort: a leftover file is ignored once this pid is gone.
        let _ = std::fs::remove_file(&self.holder_file);
    }
}

/// Opens (creating it and the state dir when needed) the lock file.
fn open_lock_file(state: &StateDir) -> Result<File, Error> {
    state.ensure()?;
    let lock_path = state.lock_file();
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|e| Error::io("open the lock file", &lock_path, e))
}

/// One try: `Ok(true)` when the lock is now held, `Ok(false)` when it is busy and `wait` allows
/// another try, [`Error::Locked`] when it does not.
fn try_lock(state: &StateDir, file: &File, wait: Wait, started: Instant) -> Result<bool, Error> {
    loop {
        match flock(file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(true),
            Err(Errno::INTR) => continue,
            Err(Errno::WOULDBLOCK) => {
                return match wait {
                    Wait::Until(deadline) if Instant::now() < deadline => Ok(false),
                    _ => Err(Error::Locked {
                        lock: state.lock_file(),
                        holder: read_holder(state).map(Box::new),
                        waited: match wait {
                            Wait::No => None,
                            Wait::Until(_) => Some(started.elapsed()),
                        },
                    }),
                }
            }
            Err(e) => return Err(Error::io("lock", &state.lock_file(), e.into())),
        }
    }
}

/// With the flock held: true when no other open transaction holds the edge. An expired one is
/// aborted here (said on stderr). A live one of another id releases the flock again and
/// returns false while `wait` allows another try, else [`Error::TransactionOpen`].
fn transaction_lets(
    state: &StateDir,
    file: &File,
    holder: &Holder,
    wait: Wait,
) -> Result<bool, Error> {
    let Some(txn) = state.open_transaction_clearing_cut()? else {
        return Ok(true);
    };
    if holder.transaction.as_deref() == Some(txn.id.as_str()) {
        return Ok(true);
    }
    if txn.is_expired(std::time::SystemTime::now()) {
        state.drop_transaction(&txn, "expired before its commit (its coordinator is gone)")?;
        eprintln!("vezasock: aborted the expired {txn}");
        return Ok(true);
    }
    let _ = flock(file, FlockOperation::Unlock);
    match wait {
        Wait::Until(deadline) if Instant::now() < deadline => Ok(false),
        _ => Err(Error::TransactionOpen(Box::new(txn))),
    }
}

/// How long to sleep before the next try: [`POLL`], or less when the deadline is nearer.
fn poll_for(wait: Wait) -> Duration {
    match wait {
        Wait::Until(deadline) => POLL.min(deadline.saturating_duration_since(Instant::now())),
        Wait::No => Duration::ZERO,
    }
}

/// The holder written in the state dir, when it is readable and its process may still be alive.
pub fn read_holder(state: &StateDir) -> Option<Holder> {
    let bytes = read_optional(&state.holder_file()).ok()??;
    let holder: Holder = serde_json::from_slice(&bytes).ok()?;
    // A holder on this host whose pid is gone is a leftover from a killed process; the lock is
    // now held by someone who has not written its name yet.
    if holder.host == current_host() && !process_alive(holder.pid as i32) {
        return None;
    }
    Some(holder)
}

fn current_host() -> String {
    for path in ["/proc/sys/kernel/hostname", "/etc/hostname"] {
        if let Ok(name) = crate::files::read_bounded_text(std::path::Path::new(path), 4096) {
            let name = name.trim();
            if !name.is_empty() {
                return name.to_string();
            }
        }
    }
    "unknown-host".to_string()
}

fn current_command() -> String {
    std::env::args()
        .map(|a| {
            if a.is_empty() || a.contains(char::is_whitespace) {
                format!("{a:?}")
            } else {
                a
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
