//! A prepared transaction of one edge (issue 14's per-edge primitives): `transaction.json` in the
//! state dir says that a flip is staged on this edge (a new map version in HAProxy, a pending map
//! file on disk) and waits for its commit or abort.
//!
//! While the file names an open, unexpired transaction, it acts as the edge's lock for everyone
//! else: [`super::EdgeLock`] treats it as held (wait, then exit 4), except for a holder that
//! carries the same transaction id (its own commit or abort). A transaction that outlives its
//! `expires_at` (its coordinator died) is aborted by the next lock taker: its pending file is
//! removed, the journal says why, and the file goes. The map version it staged in HAProxy is
//! invisible (never committed) and HAProxy drops it at the next `commit map` of that map.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::atomic::{read_optional, write_atomic_volatile};
use super::journal::{Action, Operation, Phase};
use super::{time, Error, StateDir};

/// The transaction file, in the state dir.
pub const TRANSACTION_FILE: &str = "transaction.json";

/// How far a transaction got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TxnState {
    /// Staged: nothing live changed yet; abort changes nothing.
    Prepared,
    /// The commit was started: the map file and maybe the runtime hold the new color.
    Committing,
}

impl TxnState {
    pub fn as_str(self) -> &'static str {
        match self {
            TxnState::Prepared => "prepared",
            TxnState::Committing => "committing",
        }
    }
}

/// One prepared flip, as written in `transaction.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    /// The caller's id (`[A-Za-z0-9_.-]{1,64}`).
    pub id: String,
    pub env: String,
    /// The live color when it was prepared, and the color it flips to.
    pub from: String,
    pub to: String,
    /// The runtime map (as addressed in commands) and the version staged in it.
    pub map: String,
    pub version: u32,
    /// The map file as it will be after the commit, written beside the map file.
    pub pending: PathBuf,
    /// Target servers in DRAIN that the commit puts back to READY first (`backend/server`).
    #[serde(default)]
    pub drained: Vec<String>,
    /// The journal operation this transaction continues.
    pub op_id: String,
    pub action: Action,
    pub who: String,
    #[serde(default)]
    pub sha: Option<String>,
    /// The env was already on `to` everywhere: the commit changes nothing live.
    #[serde(default)]
    pub noop: bool,
    pub state: TxnState,
    /// RFC 3339 UTC.
    pub prepared_at: String,
    /// Seconds since the epoch after which the transaction is aborted by the next change.
    pub expires_at: u64,
}

impl Transaction {
    /// The journal operation it continues.
    pub fn operation(&self) -> Operation {
        Operation {
            op_id: self.op_id.clone(),
            who: self.who.clone(),
            env: Some(self.env.clone()),
            action: self.action,
            before: Some(self.from.clone()),
            after: Some(self.to.clone()),
        }
    }

    /// Seconds left before it expires (0: expired).
    pub fn seconds_left(&self, now: SystemTime) -> u64 {
        self.expires_at.saturating_sub(unix_seconds(now))
    }

    /// True once `expires_at` has passed.
    pub fn is_expired(&self, now: SystemTime) -> bool {
        unix_seconds(now) >= self.expires_at
    }

    /// `expires_at` for a transaction prepared `now` that lives `ttl`.
    pub fn expiry(now: SystemTime, ttl: Duration) -> u64 {
        unix_seconds(now).saturating_add(ttl.as_secs().max(1))
    }

    /// The stamp for `prepared_at`.
    pub fn stamp(now: SystemTime) -> String {
        time::rfc3339_utc(now)
    }
}

impl std::fmt::Display for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let left = self.seconds_left(SystemTime::now());
        let when = if left == 0 {
            "expired (the next change on this edge aborts it)".to_string()
        } else {
            format!("expires in {left} s")
        };
        write!(
            f,
            "transaction {} {}: {} {} → {} (map version {}), by {} at {}, {when}",
            self.id,
            self.state.as_str(),
            self.env,
            self.from,
            self.to,
            self.version,
            self.who,
            self.prepared_at
        )
    }
}

fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Checks a transaction id: it goes into file contents, journal lines and command lines.
pub fn check_id(id: &str) -> Result<(), Error> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::BadValue {
            what: "transaction id",
            value: id.chars().take(80).collect(),
            why: "use 1 to 64 of A-Z a-z 0-9 _ . -",
        })
    }
}

impl StateDir {
    /// `<dir>/transaction.json`.
    pub fn transaction_file(&self) -> PathBuf {
        self.path().join(TRANSACTION_FILE)
    }

    /// The open transaction, if any (expired ones included). Its state is the file's, or
    /// [`TxnState::Committing`] once its pending map file is gone: the commit's disk step
    /// renamed it over the map file, so the file itself is written once, at the prepare.
    ///
    /// A file cut short by a power cut (empty, or zeros: its data never reached the disk) is no
    /// transaction: HAProxy restarted without the version it staged.
    /// [`Self::open_transaction_clearing_cut`] removes it.
    pub fn open_transaction(&self) -> Result<Option<Transaction>, Error> {
        Ok(match self.read_transaction()? {
            TxnFile::Open(txn) => Some(*txn),
            TxnFile::Missing | TxnFile::Cut => None,
        })
    }

    /// [`Self::open_transaction`] for a lock taker (the caller holds the edge lock): a file a
    /// power cut left empty or zeroed is removed, saying so on stderr.
    pub fn open_transaction_clearing_cut(&self) -> Result<Option<Transaction>, Error> {
        match self.read_transaction()? {
            TxnFile::Open(txn) => Ok(Some(*txn)),
            TxnFile::Missing => Ok(None),
            TxnFile::Cut => {
                let path = self.transaction_file();
                remove_if_there(&path)?;
                eprintln!(
                    "vezasock: removed {}: cut short by a crash of the machine (empty); \
                     its transaction ended with it (`vezasock status` shows any drift)",
                    path.display()
                );
                Ok(None)
            }
        }
    }

    fn read_transaction(&self) -> Result<TxnFile, Error> {
        let path = self.transaction_file();
        let Some(bytes) = read_optional(&path)? else {
            return Ok(TxnFile::Missing);
        };
        if cut_by_power_loss(&bytes) {
            return Ok(TxnFile::Cut);
        }
        let mut txn: Transaction =
            serde_json::from_slice(&bytes).map_err(|source| Error::BadJson { path, source })?;
        let pending_there = std::fs::symlink_metadata(&txn.pending).is_ok();
        if !pending_there {
            txn.state = TxnState::Committing;
        }
        Ok(TxnFile::Open(Box::new(txn)))
    }

    /// Writes the open transaction, atomically for every reader while the machine runs, without
    /// fsyncs: a power cut makes a prepared transaction moot (HAProxy restarts without the
    /// version it staged), and what it may leave of the file is read as none
    /// ([`Self::open_transaction`]). One fsync less per edge in every fleet flip.
    pub fn write_transaction(&self, txn: &Transaction) -> Result<(), Error> {
        let path = self.transaction_file();
        let json = serde_json::to_vec_pretty(txn).map_err(|source| Error::BadJson {
            path: path.clone(),
            source,
        })?;
        self.ensure()?;
        write_atomic_volatile(&path, &json)
    }

    /// Removes the transaction file (done or aborted). A missing file is fine.
    pub fn remove_transaction(&self) -> Result<(), Error> {
        self.unlink_transaction()?;
        super::atomic::sync_dir(self.path())
    }

    /// Removes the transaction file without the directory fsync: for a commit's record phase,
    /// whose state file write fsyncs the same directory right after.
    pub fn unlink_transaction(&self) -> Result<(), Error> {
        remove_if_there(&self.transaction_file())
    }

    /// Aborts `txn` on disk only (its pending map file, the journal line, the transaction
    /// file), saying `why` in the journal. Used for an expired transaction and by `txn abort`
    /// after the runtime's staged version was dropped. A transaction whose commit had started
    /// is journalled as interrupted, not as a clean abort: the runtime may hold its color.
    pub fn drop_transaction(&self, txn: &Transaction, why: &str) -> Result<(), Error> {
        // Only ever a pending map file: the path comes from a file on disk.
        if txn.pending.extension().is_some_and(|e| e == "pending") {
            remove_if_there(&txn.pending)?;
        }
        let detail = match txn.state {
            TxnState::Prepared => format!(
                "transaction {} aborted: {why}; nothing live changed",
                txn.id
            ),
            TxnState::Committing => format!(
                "transaction {} interrupted during its commit: {why}; the runtime may hold {}: \
                 `vezasock status` shows it, `vezasock apply` repairs it",
                txn.id, txn.to
            ),
        };
        let phase = match txn.state {
            TxnState::Prepared => Phase::RolledBack,
            TxnState::Committing => Phase::Failed,
        };
        self.journal_record(&txn.operation(), phase, Some(&detail))?;
        self.remove_transaction()
    }
}

/// What `transaction.json` holds.
enum TxnFile {
    Missing,
    /// What a power cut left of it ([`cut_by_power_loss`]).
    Cut,
    Open(Box<Transaction>),
}

/// What a power cut leaves of a file written without fsync: nothing, or zeros where its data
/// never reached the disk. A file vezasock wrote is never that (JSON is never empty).
fn cut_by_power_loss(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| *b == 0)
}

fn remove_if_there(path: &std::path::Path) -> Result<(), Error> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        assert!(check_id("deploy-42.a_b").is_ok());
        for bad in ["", "a b", "x;y", "a\nb", &"x".repeat(65)] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn expiry_counts_whole_seconds_from_now() {
        let now = UNIX_EPOCH + Duration::from_secs(1000);
        let at = Transaction::expiry(now, Duration::from_millis(10));
        assert_eq!(at, 1001, "at least one second");
        let txn = sample(at);
        assert!(!txn.is_expired(now));
        assert!(txn.is_expired(UNIX_EPOCH + Duration::from_secs(1001)));
        assert_eq!(txn.seconds_left(now), 1);
    }

    fn sample(expires_at: u64) -> Transaction {
        Transaction {
            id: "t1".into(),
            env: "staging".into(),
            from: "blue".into(),
            to: "green".into(),
            map: "/m/active-color.map".into(),
            version: 3,
            pending: "/m/active-color.map.pending".into(),
            drained: Vec::new(),
            op_id: "op".into(),
            action: Action::Switch,
            who: "ci".into(),
            sha: None,
            noop: false,
            state: TxnState::Prepared,
            prepared_at: "2026-12-01T00:00:00Z".into(),
            expires_at,
        }
    }

    #[test]
    fn a_transaction_whose_pending_file_is_gone_reads_back_as_committing() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let state = StateDir::single(dir.path());
        let mut txn = sample(u64::MAX);
        txn.pending = dir.path().join("active-color.map.pending");
        std::fs::write(&txn.pending, b"x").unwrap_or_else(|e| panic!("{e}"));
        state
            .write_transaction(&txn)
            .unwrap_or_else(|e| panic!("{e}"));
        let read = |state: &StateDir| state.open_transaction().ok().flatten().map(|t| t.state);
        assert_eq!(read(&state), Some(TxnState::Prepared));
        // The commit's disk step renames the pending file over the map file.
        std::fs::rename(&txn.pending, dir.path().join("active-color.map"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read(&state), Some(TxnState::Committing));
    }

    #[test]
    fn a_transaction_file_cut_by_a_power_cut_is_no_transaction_and_is_cleared() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let state = StateDir::single(dir.path());
        for cut in [&b""[..], &[0u8; 300][..]] {
            std::fs::write(state.transaction_file(), cut).unwrap_or_else(|e| panic!("{e}"));
            assert!(matches!(state.open_transaction(), Ok(None)), "{cut:?}");
            assert!(state.transaction_file().exists(), "a reader leaves it");
            assert!(matches!(state.open_transaction_clearing_cut(), Ok(None)));
            assert!(!state.transaction_file().exists());
        }
        // Anything else that does not parse stays an error, and stays.
        std::fs::write(state.transaction_file(), b"{\"id\":").unwrap_or_else(|e| panic!("{e}"));
        assert!(state.open_transaction().is_err());
        assert!(state.open_transaction_clearing_cut().is_err());
        assert!(state.transaction_file().exists());
    }

    #[test]
    fn a_dropped_transaction_leaves_no_file_and_a_journal_line() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let state = StateDir::single(dir.path());
        let mut txn = sample(1);
        txn.pending = dir.path().join("active-color.map.pending");
        std::fs::write(&txn.pending, b"x").unwrap_or_else(|e| panic!("{e}"));
        state
            .write_transaction(&txn)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(state.open_transaction().ok().flatten(), Some(txn.clone()));
        state
            .drop_transaction(&txn, "expired")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(state.open_transaction().ok().flatten().is_none());
        assert!(!txn.pending.exists());
        let journal = state.journal_read().unwrap_or_else(|e| panic!("{e}"));
        let last = journal.entries.last().map(|e| e.phase);
        assert_eq!(last, Some(Phase::RolledBack));
    }
}
