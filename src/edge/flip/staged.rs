//! The flip split for a transaction (issue 14): the *prepare* half stages the new color instead
//! of applying it, the *commit* half applies what was staged. Used by
//! [`crate::edge::flip::transaction`] (per-edge primitives) and the fleet coordinator.
//!
//! | phase | reads / writes | a failure here |
//! |---|---|---|
//! | stage | `prepare map` + `add map @ver` + `show map @ver`; `active-color.map.pending`; `transaction.json` | staged version cleared, pending file removed: nothing changed |
//! | commit-disk | pending file renamed over the map file (+ `server-admin.json`) | disk put back: nothing changed |
//! | commit-runtime | READY for drained target servers, then `commit map @ver` | as the runtime phase: put back and re-read, or exit 5 |
//! | abort | `clear map @ver`, pending file, journal, `transaction.json` | a prepared transaction changed nothing live |
//! | undo | `set map` back, map file back (a committed edge of a fleet whose commit failed elsewhere) | exit 5 when not confirmed |
//!
//! The staged version holds every entry of the runtime map as read, with the env's entry set to
//! the target: committing it changes that one env and nothing else.

use std::time::{Duration, SystemTime};

use super::{Flip, FlipPhase, Read};
use crate::edge::{crash_point, EdgeError};
use crate::runtime::command::maps::{AddMap, CommitMap, SetMap, ShowMap};
use crate::runtime::command::{MapKey, MapRef, MapValue};
use crate::runtime::session::Batch;
use crate::state::atomic::{read_optional, sync_dir, write_atomic_whole};
use crate::state::{Phase, Transaction, TxnState};

impl<'e> Flip<'e> {
    /// The pending map file of a transaction: the map file as it will be after the commit.
    pub fn pending_map_file(&self) -> std::path::PathBuf {
        let map = self.edge.topology.paths.active_color_map();
        let mut name = map.into_os_string();
        name.push(".pending");
        name.into()
    }

    /// Stage phase (after intent): the new map version staged in HAProxy and read back, the
    /// pending map file, then `transaction.json`. Nothing live changes; a failure removes what
    /// was staged and closes the journal operation.
    pub async fn stage(
        &mut self,
        read: &Read,
        id: &str,
        ttl: Duration,
        noop: bool,
    ) -> Result<Transaction, EdgeError> {
        crate::state::transaction::check_id(id)?;
        let pending = self.pending_map_file();
        let mut version = None;
        let staged = self.stage_steps(read, &pending, &mut version).await;
        let version = match (staged, version) {
            (Ok(()), Some(v)) => v,
            (result, version) => {
                let why = match result {
                    Err(e) => e,
                    Ok(()) => EdgeError::NotVerified("no map version was staged".to_string()),
                };
                let cleared = self.clear_staged(version).await;
                let _ = std::fs::remove_file(&pending);
                self.journal(
                    Phase::Failed,
                    &format!("transaction {id} not prepared: {why}; {cleared}"),
                );
                return Err(why);
            }
        };
        let now = SystemTime::now();
        let op = self.op.as_ref().ok_or_else(|| {
            EdgeError::NotVerified("the intent phase did not run before the stage".to_string())
        })?;
        let txn = Transaction {
            id: id.to_string(),
            env: self.env.name.clone(),
            from: read.from.as_str().to_string(),
            to: self.target.as_str().to_string(),
            map: self.map.clone(),
            version,
            pending: pending.clone(),
            drained: self
                .drained
                .iter()
                .map(|(b, s)| format!("{b}/{s}"))
                .collect(),
            op_id: op.op_id.clone(),
            action: op.action,
            who: self.req.who.clone(),
            sha: self.req.sha.clone(),
            noop,
            state: TxnState::Prepared,
            prepared_at: Transaction::stamp(now),
            expires_at: Transaction::expiry(now, ttl),
        };
        if let Err(e) = self.edge.state.write_transaction(&txn) {
            let cleared = self.clear_staged(Some(version)).await;
            let _ = std::fs::remove_file(&pending);
            self.journal(
                Phase::Failed,
                &format!("transaction {id} not prepared: {e}; {cleared}"),
            );
            return Err(e.into());
        }
        self.journal(
            Phase::DiskWritten,
            &format!(
                "transaction {id} prepared: map version {version} staged, pending file written"
            ),
        );
        crash_point("after-prepare");
        Ok(txn)
    }

    async fn stage_steps(
        &mut self,
        read: &Read,
        pending: &std::path::Path,
        version: &mut Option<u32>,
    ) -> Result<(), EdgeError> {
        let mut colors = read.file_colors.clone();
        colors.insert(self.env.name.clone(), self.target);
        let text = crate::render::render_active_color_map(&self.edge.topology, &colors)
            .map_err(|e| EdgeError::BadInput(format!("cannot render active-color.map: {e}")))?;
        // Whole, not durable: only this transaction reads it, and a power cut ends that.
        write_atomic_whole(pending, text.as_bytes())?;
        self.stage_version(read, version).await
    }

    /// `prepare map`, then every `add map @ver` and the read-back `show map @ver` in one
    /// pipelined batch; the version read back must hold exactly what was staged.
    async fn stage_version(
        &mut self,
        read: &Read,
        version: &mut Option<u32>,
    ) -> Result<(), EdgeError> {
        let v = self.session.prepare_map(&self.map).await?;
        *version = Some(v);
        let want = self.staged_entries(read);
        let map = MapRef::new(&self.map)?;
        let mut batch = Batch::new();
        for (k, val) in &want {
            batch.push(AddMap {
                map: map.clone(),
                version: Some(v),
                key: MapKey::new(k)?,
                value: MapValue::new(val)?,
            })?;
        }
        let show = batch.push(ShowMap {
            map,
            version: Some(v),
        })?;
        let back = self.session.run_batch(batch).await?.take(&show)?;
        let got: Vec<(String, String)> = back.into_iter().map(|e| (e.key, e.value)).collect();
        if got != want {
            return Err(EdgeError::NotVerified(format!(
                "map version {v} reads back {got:?}, staged {want:?}"
            )));
        }
        Ok(())
    }

    /// Every runtime entry as read (the first of each key, as HAProxy matches), the env's set
    /// to the target (added when missing).
    fn staged_entries(&self, read: &Read) -> Vec<(String, String)> {
        let env = &self.env.name;
        let mut out: Vec<(String, String)> = Vec::with_capacity(read.entries.len() + 1);
        for e in &read.entries {
            if out.iter().any(|(k, _)| *k == e.key) {
                continue;
            }
            let value = if e.key == *env {
                self.target.as_str().to_string()
            } else {
                e.value.clone()
            };
            out.push((e.key.clone(), value));
        }
        if !out.iter().any(|(k, _)| k == env) {
            out.push((env.clone(), self.target.as_str().to_string()));
        }
        out
    }

    /// `clear map @ver`, best effort: a staged version is invisible anyway and HAProxy frees
    /// it at the next commit of the map.
    async fn clear_staged(&mut self, version: Option<u32>) -> String {
        let Some(v) = version else {
            return "no map version was staged".to_string();
        };
        match self.session.clear_map(&self.map, Some(v)).await {
            Ok(()) => format!("map version {v} cleared"),
            Err(e) => format!("map version {v} not cleared ({e}); it is never committed"),
        }
    }

    /// Continues a transaction prepared by another process: its journal operation and the
    /// target servers it readies first.
    pub fn resume(&mut self, txn: &Transaction) {
        self.op = Some(txn.operation());
        self.drained = txn
            .drained
            .iter()
            .filter_map(|bs| bs.split_once('/'))
            .map(|(b, s)| (b.to_string(), s.to_string()))
            .collect();
    }

    /// Commit, disk half: the pending file renamed over the map file (and readied servers
    /// written through). That rename is the commit's start for anyone reading
    /// `transaction.json` (its pending file is gone: [`crate::state::StateDir::open_transaction`]).
    /// A failure puts the disk back: nothing changed.
    pub fn commit_disk(&mut self, txn: &mut Transaction) -> Result<(), EdgeError> {
        txn.state = TxnState::Committing;
        let map_path = self.edge.topology.paths.active_color_map();
        self.old_map = read_optional(&map_path)?;
        if !self.drained.is_empty() {
            self.old_admin = Some(read_optional(&self.edge.state.server_admin_file())?);
        }
        let written = self.move_pending(txn, &map_path);
        if let Err(e) = written {
            let restored = self.restore_disk();
            txn.state = TxnState::Prepared;
            self.journal(
                Phase::Failed,
                &format!(
                    "transaction {} commit: disk not written: {e}; {restored}",
                    txn.id
                ),
            );
            return Err(e);
        }
        // The map file is the new color now: a journal that cannot say so (a full disk) must
        // not leave it ahead of the runtime behind an exit that says nothing changed.
        if let Err(e) = self.journal_strict(
            Phase::DiskWritten,
            Some(&format!("transaction {} committing", txn.id)),
        ) {
            let restored = self.restore_disk();
            txn.state = TxnState::Prepared;
            self.journal(
                Phase::Failed,
                &format!(
                    "transaction {} commit: disk not journalled: {e}; {restored}",
                    txn.id
                ),
            );
            return Err(e);
        }
        Ok(())
    }

    fn move_pending(&self, txn: &Transaction, map_path: &std::path::Path) -> Result<(), EdgeError> {
        std::fs::rename(&txn.pending, map_path).map_err(|e| crate::state::Error::Io {
            action: "rename the pending map file over",
            path: map_path.to_path_buf(),
            source: e,
        })?;
        if let Some(dir) = map_path.parent() {
            sync_dir(dir)?;
        }
        let ready: Vec<(&str, &str, crate::state::AdminDecision)> = self
            .drained
            .iter()
            .map(|(b, s)| (b.as_str(), s.as_str(), crate::state::AdminDecision::Ready))
            .collect();
        if !ready.is_empty() {
            self.edge.state.set_server_admin(&ready)?;
        }
        Ok(())
    }

    /// Commit, runtime half: READY for the drained target servers, then `commit map @ver`, one
    /// batch. A failure is handled as in the runtime phase (put back, re-read).
    pub async fn commit_runtime(&mut self, txn: &Transaction) -> Result<String, EdgeError> {
        // The `set map` after the commit, same value, in the same batch: it rewrites every
        // entry of the env's key, so no entry of an older version that HAProxy has not purged
        // yet can keep answering. A bench saw keep-alive clients on 3.0/3.2 keep the old color
        // for seconds after a commit under heavy load (not reproduced in a test since).
        let mut change = Batch::new();
        change.push(CommitMap::new(&self.map, txn.version)?)?;
        change.push(SetMap::new(&self.map, &txn.env, &txn.to)?)?;
        self.send_change(change).await
    }

    /// Aborts a prepared transaction: the staged version cleared, then the pending file, the
    /// journal line and `transaction.json`. A transaction whose commit started is not
    /// aborted: the runtime may hold its color (`vezasock apply` repairs it).
    pub async fn abort_staged(
        &mut self,
        txn: &Transaction,
        why: &str,
    ) -> Result<String, EdgeError> {
        if txn.state == TxnState::Committing {
            return Err(self.unfinished(
                FlipPhase::Runtime,
                None,
                EdgeError::NotVerified(format!(
                    "transaction {} had started its commit; it cannot be aborted",
                    txn.id
                )),
            ));
        }
        let cleared = self.clear_staged(Some(txn.version)).await;
        self.edge
            .state
            .drop_transaction(txn, &format!("{why}; {cleared}"))?;
        Ok(cleared)
    }

    /// The map file as before the transaction: what commit-disk saved, or — taken back by
    /// another process, which has nothing saved — the map file with the env on the color
    /// before. Never removed: HAProxy cannot start without it. A pending file left goes.
    fn restore_map_file(&self, txn: &Transaction) -> String {
        if txn.pending.extension().is_some_and(|e| e == "pending") {
            let _ = std::fs::remove_file(&txn.pending);
        }
        if self.old_map.is_some() {
            return self.restore_disk();
        }
        let from = crate::topology::Color::parse(&txn.from).unwrap_or(crate::topology::Color::Blue);
        let written = crate::edge::active_color::map_file_colors(self.edge).and_then(|colors| {
            let mut colors = colors.unwrap_or_default();
            colors.insert(txn.env.clone(), from);
            crate::edge::active_color::write_map_file(self.edge, &colors)
        });
        match written {
            Ok(()) => format!("disk put back (map file: {} {from})", txn.env),
            Err(e) => format!("the disk was NOT put back: {e}"),
        }
    }

    /// The record phase of a transaction that changed nothing live: the journal's `done`.
    pub fn finish_noop(&self, txn: &Transaction) -> Result<(), EdgeError> {
        self.journal_strict(
            Phase::Done,
            Some(&format!(
                "transaction {}: {} was already {}",
                txn.id, txn.env, txn.to
            )),
        )
    }

    /// Undoes a committed transaction (before its record phase): the map file and the runtime
    /// put back on the color before, re-read on a new connection. `runtime` false: the runtime
    /// was not committed, and the staged version is dropped too (a committed one never is: it
    /// is the live one). `Ok`: confirmed.
    pub async fn undo(
        &mut self,
        txn: &Transaction,
        why: &str,
        runtime: bool,
    ) -> Result<String, String> {
        let disk = self.restore_map_file(txn);
        let put_back = self.put_back_runtime().await;
        let confirmed = put_back.is_ok() && disk.starts_with("disk put back");
        let mut words = match &put_back {
            Ok(w) | Err(w) => w.clone(),
        };
        if !runtime {
            words = format!("{words}; {}", self.clear_staged(Some(txn.version)).await);
        }
        let detail = format!("transaction {} undone: {why}; {disk}; {words}", txn.id);
        if confirmed {
            self.journal(Phase::RolledBack, &detail);
            let _ = self.edge.state.remove_transaction();
            Ok(format!("{disk}; {words}"))
        } else {
            self.journal(Phase::Failed, &detail);
            Err(format!("{disk}; {words}"))
        }
    }
}
