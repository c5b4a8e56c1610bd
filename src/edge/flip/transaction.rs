//! Per-edge transactions (issue 14): one flip split into *prepare* (lock, read, gate, intent,
//! stage: [`crate::edge::flip`]'s phases with the map change staged as a new map version) and
//! *commit* (disk, runtime `commit map @ver`, verify, record), or *abort*. The fleet
//! coordinator ([`crate::edge::fleet`]) runs prepare on every edge before committing on any; an
//! Ansible play or a script can do the same with `vezasock txn prepare|commit|abort`.
//!
//! Between prepare and commit, `transaction.json` holds the edge for everyone else
//! ([`crate::state::transaction`]); a process that keeps the [`Prepared`] value also keeps the
//! edge lock. A transaction whose owner died expires (default [`DEFAULT_TTL`]) and is aborted by
//! the next change on the edge.

use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::edge::flip::txn_machine::{self, Args, Done, Phase as TxnPhase, Staged, Step};
use crate::edge::flip::{check_sha, Flip, LockWait, Read, SwitchRequest};
use crate::edge::{Edge, EdgeError};
use crate::state::{Transaction, TxnState};

/// How long a prepared transaction lives without its commit.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);

/// The longest a prepared transaction may hold an edge.
pub const MAX_TTL: Duration = Duration::from_secs(3600);

/// A transaction prepared by this process: the edge lock and the admin session are held.
pub struct Prepared<'e> {
    flip: Flip<'e>,
    read: Read,
    pub txn: Transaction,
}

/// What one step of a transaction did, as printed (`--json`).
#[derive(Debug, Clone, Serialize)]
pub struct TxnReport {
    pub id: String,
    pub env: String,
    pub from: String,
    pub to: String,
    pub version: u32,
    pub noop: bool,
    /// `prepared`, `committed`, `aborted`, `undone`.
    pub result: &'static str,
    pub detail: String,
}

impl TxnReport {
    pub fn of(txn: &Transaction, result: &'static str, detail: String) -> TxnReport {
        TxnReport {
            id: txn.id.clone(),
            env: txn.env.clone(),
            from: txn.from.clone(),
            to: txn.to.clone(),
            version: txn.version,
            noop: txn.noop,
            result,
            detail,
        }
    }
}

/// Prepare: lock, read, gate, intent, stage. `req.transaction` must be `None` (a new
/// transaction); `id` names it.
pub async fn prepare<'e>(
    edge: &'e Edge,
    req: &SwitchRequest,
    id: &str,
    ttl: Duration,
) -> Result<Prepared<'e>, EdgeError> {
    lock(edge, req).await?.prepare(id, ttl).await
}

/// An edge locked for a transaction, not prepared yet: the coordinator locks every edge in
/// one order (by name) before preparing them in parallel, so two coordinators never hold one
/// edge each while waiting for the other's.
pub struct Locked<'e> {
    flip: Flip<'e>,
}

/// The lock phase of a prepare (bad input refused first, as `switch` does).
pub async fn lock<'e>(edge: &'e Edge, req: &SwitchRequest) -> Result<Locked<'e>, EdgeError> {
    let env = edge.colored_env(&req.env)?;
    check_sha(req.sha.as_deref())?;
    // Checked now, not at the record phase: after the commit it would be too late to refuse.
    crate::state::who::check_who(&req.who).map_err(|e| EdgeError::BadInput(e.to_string()))?;
    Ok(Locked {
        flip: Flip::lock(edge, env, req).await?,
    })
}

impl<'e> Locked<'e> {
    /// The rest of the prepare: read, gate, intent, stage.
    pub async fn prepare(self, id: &str, ttl: Duration) -> Result<Prepared<'e>, EdgeError> {
        crate::state::transaction::check_id(id)?;
        let mut flip = self.flip;
        let read = flip.read().await?;
        let noop = flip.is_noop(&read);
        if !noop {
            // Refused here, the edge counts it as one-edge switches do; the fleet aborts.
            flip.gate(&read)
                .await
                .map_err(|e| flip.journal_refusal(&read, e))?;
        }
        flip.intent(&read)?;
        let txn = flip.stage(&read, id, ttl, noop).await?;
        Ok(Prepared { flip, read, txn })
    }
}

/// The open transaction `id` of this edge, or a clear error.
pub fn open(edge: &Edge, id: &str) -> Result<Transaction, EdgeError> {
    crate::state::transaction::check_id(id)?;
    match edge.state.open_transaction()? {
        Some(txn) if txn.id == id => Ok(txn),
        Some(other) => Err(EdgeError::Refused(format!(
            "no open transaction {id} on this edge; the open one is {other}"
        ))),
        None => Err(EdgeError::Refused(format!(
            "no open transaction {id} on this edge (committed, aborted or expired already: \
             `vezasock status` and `vezasock history` say which)"
        ))),
    }
}

/// The request a commit or abort of `txn` runs with (its lock holder carries the id).
pub fn request(txn: &Transaction, lock_wait: LockWait) -> Result<SwitchRequest, EdgeError> {
    let color = txn
        .to
        .parse()
        .map_err(|e| EdgeError::BadInput(format!("{}: {e}", txn.id)))?;
    let mut req = SwitchRequest::new(&txn.env, color);
    req.sha = txn.sha.clone();
    req.who = crate::state::who();
    req.lock_wait = lock_wait;
    req.action = txn.action;
    req.transaction = Some(txn.id.clone());
    Ok(req)
}

/// Takes back a transaction prepared by another process (for its commit or abort): the lock
/// (as that transaction), the read phase, and the transaction as now on disk.
pub async fn resume<'e>(edge: &'e Edge, req: &SwitchRequest) -> Result<Prepared<'e>, EdgeError> {
    let id = req
        .transaction
        .as_deref()
        .ok_or_else(|| EdgeError::BadInput("no transaction id".to_string()))?;
    let env = edge.colored_env(&req.env)?;
    let mut flip = Flip::lock(edge, env, req).await?;
    // Read again under the lock: it may have been aborted or expired meanwhile.
    let txn = open(edge, id)?;
    let read = flip.read().await?;
    flip.resume(&txn);
    Ok(Prepared { flip, read, txn })
}

impl Prepared<'_> {
    /// The edge this transaction is on.
    pub fn edge(&self) -> &Edge {
        self.flip.edge
    }

    /// Commit, disk half (see [`Flip::commit_disk`]).
    pub fn commit_disk(&mut self) -> Result<(), EdgeError> {
        self.flip.commit_disk(&mut self.txn)
    }

    /// Commit, runtime half: `commit map @ver` (see [`Flip::commit_runtime`]). On a failure
    /// the flip put back what it could; a confirmed put-back also ends the transaction.
    pub async fn commit_runtime(&mut self) -> Result<String, EdgeError> {
        let result = self.flip.commit_runtime(&self.txn).await;
        if let Err(e) = &result {
            if !matches!(e, EdgeError::Unfinished(_)) {
                // Put back and confirmed: nothing of it is left.
                let _ = self.edge().state.remove_transaction();
            }
        }
        result
    }

    /// After the commit: the read-back (see [`Flip::verify`]).
    pub async fn verify(&mut self) -> Result<(), EdgeError> {
        self.flip.verify().await
    }

    /// After the commit: verify and record (a no-op transaction records nothing), then the
    /// transaction file goes.
    pub async fn finish(&mut self) -> Result<(), EdgeError> {
        self.verify().await?;
        self.record().await
    }

    /// The record phase (a no-op transaction records nothing). The transaction file goes
    /// first: the commit is live and read back, so nothing is left to abort, and the state
    /// file's write makes its removal durable with the same directory fsync. A record cut
    /// short from here on is the flip's (the journal's open operation; `apply` repairs it).
    pub async fn record(&mut self) -> Result<(), EdgeError> {
        if self.txn.noop {
            self.flip.finish_noop(&self.txn)?;
            self.remove_file(self.edge().state.remove_transaction());
            return Ok(());
        }
        self.remove_file(self.edge().state.unlink_transaction());
        self.flip.record(&self.read).await
    }

    /// A transaction file that could not be removed is only a warning: the next lock taker
    /// drops it (its pending file is gone: it reads as committing, then expires).
    fn remove_file(&self, removed: Result<(), crate::state::Error>) {
        if let Err(e) = removed {
            eprintln!(
                "vezasock: warning: transaction {} is committed, but its file was not removed: {e}",
                self.txn.id
            );
        }
    }

    /// The whole commit: disk, runtime, verify, record.
    pub async fn commit(&mut self) -> Result<TxnReport, EdgeError> {
        self.commit_disk()?;
        let line = self.commit_runtime().await?;
        self.finish().await?;
        Ok(TxnReport::of(&self.txn, "committed", line))
    }

    /// Aborts a prepared (not committed) transaction.
    pub async fn abort(&mut self, why: &str) -> Result<TxnReport, EdgeError> {
        let detail = self.flip.abort_staged(&self.txn, why).await?;
        Ok(TxnReport::of(&self.txn, "aborted", detail))
    }

    /// Undoes a committed, not yet recorded transaction (the fleet put-back). `runtime`:
    /// the runtime may hold its color (else its staged version is dropped too).
    pub async fn undo(&mut self, why: &str, runtime: bool) -> Result<String, String> {
        self.flip.undo(&self.txn, why, runtime).await
    }

    /// The env's live color before the transaction.
    pub fn from(&self) -> crate::topology::Color {
        self.read.from
    }

    /// True once the transaction is in its commit.
    pub fn committing(&self) -> bool {
        self.txn.state == TxnState::Committing
    }

    /// Its phase, as its file says (taken back by another process).
    pub fn phase(&self) -> TxnPhase {
        TxnPhase::of_file(self.txn.state)
    }
}

/// Aborts the edge's open transaction at once, expired or not, when its owner is gone (the
/// lock is free; a live owner holds the lock: exit 4 after `lock_wait`): `apply`'s first
/// step. A prepared one is aborted; one whose commit started is undone (the runtime read and
/// put back, the map file restored). Returns what it did, if anything.
pub async fn abort_open(edge: &Edge, lock_wait: LockWait) -> Result<Option<String>, EdgeError> {
    let Some(txn) = edge.state.open_transaction()? else {
        return Ok(None);
    };
    let req = request(&txn, lock_wait)?;
    let prepared = resume(edge, &req).await?;
    let phase = prepared.phase();
    let mut held = Held::Prepared(Box::new(prepared));
    let why = "aborted by `vezasock apply`";
    let (_, done) = txn_machine::run(
        &mut held,
        phase,
        Step::Abort,
        Args {
            why,
            ..Args::default()
        },
    )
    .await;
    let done = done?;
    Ok(Some(format!(
        "{} the open transaction {} ({} {} → {}): {}",
        if phase.committing() {
            "undid"
        } else {
            "aborted"
        },
        txn.id,
        txn.env,
        txn.from,
        txn.to,
        done.detail
    )))
}

/// One session's hold on a transaction: the lock before the prepare, then the prepared
/// transaction; nothing once it is over (the lock released with it). What
/// [`txn_machine`] drives for the edge-agent and `vezasock txn`.
pub enum Held<'e> {
    Locked(Box<Locked<'e>>),
    Prepared(Box<Prepared<'e>>),
    Gone,
}

impl<'e> Held<'e> {
    fn prepared(&mut self) -> Result<&mut Prepared<'e>, EdgeError> {
        match self {
            Held::Prepared(p) => Ok(p),
            _ => Err(EdgeError::Refused("no transaction is prepared".to_string())),
        }
    }
}

impl<'e> txn_machine::TxnEdge for Held<'e> {
    async fn prepare(&mut self, id: &str, ttl: Duration) -> Result<Done, EdgeError> {
        let Held::Locked(locked) = std::mem::replace(self, Held::Gone) else {
            return Err(EdgeError::Refused("the edge is not locked".to_string()));
        };
        let prepared = (*locked).prepare(id, ttl.min(MAX_TTL)).await?;
        let done = Done {
            detail: format!("map version {} staged", prepared.txn.version),
            staged: Some(Staged {
                from: prepared.from(),
                version: prepared.txn.version,
                noop: prepared.txn.noop,
            }),
        };
        *self = Held::Prepared(Box::new(prepared));
        Ok(done)
    }

    async fn commit_disk(&mut self) -> Result<Done, EdgeError> {
        self.prepared()?.commit_disk()?;
        Ok(Done::said("disk committed"))
    }

    async fn commit_runtime(&mut self) -> Result<Done, EdgeError> {
        self.prepared()?.commit_runtime().await.map(Done::said)
    }

    async fn verify(&mut self) -> Result<Done, EdgeError> {
        self.prepared()?.verify().await?;
        Ok(Done::said("read back"))
    }

    async fn record(&mut self) -> Result<Done, EdgeError> {
        self.prepared()?.record().await?;
        Ok(Done::said("recorded"))
    }

    async fn drop_staged(&mut self, why: &str) -> Result<Done, EdgeError> {
        let report = self.prepared()?.abort(why).await?;
        Ok(Done::said(report.detail))
    }

    async fn undo(&mut self, why: &str, runtime: bool) -> Result<Done, EdgeError> {
        match self.prepared()?.undo(why, runtime).await {
            Ok(d) => Ok(Done::said(d)),
            Err(d) => Err(EdgeError::NotVerified(d)),
        }
    }

    fn close(&mut self) {
        *self = Held::Gone;
    }
}

/// True when `txn` is past its expiry now.
pub fn expired(txn: &Transaction) -> bool {
    txn.is_expired(SystemTime::now())
}
