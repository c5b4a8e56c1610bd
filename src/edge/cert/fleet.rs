//! One edge's part of `cert update --fleet` (issue 22): the same steps as `cert update`
//! ([`super::update`]), split so that a coordinator can stage a file on every edge before it
//! commits it on any. [`FleetPart::begin`] checks every file for this edge, takes its lock,
//! checks that the certs dir takes a write and journals the intent; then, per file in order,
//! [`FleetPart::stage`] (`new ssl cert` for a new one, `set ssl cert`: nothing served yet),
//! [`FleetPart::commit`] (`commit ssl cert`, `add ssl crt-list` for a new one) and
//! [`FleetPart::finish`] (the default slot and the file written, `show ssl cert` read back);
//! [`FleetPart::abort`] or [`FleetPart::done`] end it. A failed step cleans up after itself
//! (the staged transaction aborted), journals the failure and releases the lock.

use super::update::{begin, check_given, cleanup, Begun, Given, UpdateReport, Updated};
use crate::edge::{Edge, EdgeError};
use crate::state::journal::Phase;
use crate::state::Wait;

/// A certificate file as the coordinator sends it: its name in the certs dir and its PEM.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SentFile {
    pub name: String,
    pub pem: String,
}

/// Never the PEM (it holds the private key): an error message may print a request.
impl std::fmt::Debug for SentFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SentFile({}, {} bytes)", self.name, self.pem.len())
    }
}

/// One edge's `cert update --fleet`, begun: locked and journalled, nothing changed yet.
pub struct FleetPart<'a> {
    begun: Begun<'a>,
}

impl<'a> FleetPart<'a> {
    /// Every file checked for this edge (as `cert update` checks them: exit 2 naming the file),
    /// the lock taken (up to `wait`), each payload against the running version's limit, a
    /// write into the certs dir tried, and the intent journalled under `txn`. Returns the
    /// part and one line (each file: added or replaced).
    pub async fn begin(
        edge: &'a Edge,
        files: Vec<SentFile>,
        allow_other_domains: bool,
        wait: Wait,
        (who, txn): (&str, &str),
    ) -> Result<(FleetPart<'a>, String), EdgeError> {
        let tls = edge.topology.tls.as_ref().ok_or_else(|| {
            EdgeError::BadInput("the topology has no [tls]: no certs dir".to_string())
        })?;
        if files.is_empty() {
            return Err(EdgeError::BadInput("no certificate file given".to_string()));
        }
        // Both go into the journal: checked as a fleet switch checks them.
        crate::state::who::check_who(who).map_err(|e| EdgeError::BadInput(e.to_string()))?;
        crate::state::transaction::check_id(txn).map_err(|e| EdgeError::BadInput(e.to_string()))?;
        let given = files
            .into_iter()
            .map(|f| Given {
                label: f.name.clone(),
                name: Some(f.name),
                bytes: f.pem.into_bytes(),
            })
            .collect();
        let checked = check_given(edge, &tls.certs_dir, given, allow_other_domains)?;
        probe_write(&tls.certs_dir)?;
        let what = format!("cert update --fleet, fleet transaction {txn}");
        let begun = begin(edge, checked, wait, who, &what).await?;
        let mut each = Vec::new();
        for (i, c) in begun.checked.iter().enumerate() {
            let (_, added) = begun.target(i)?;
            let how = if added { "to add" } else { "to replace" };
            each.push(format!("{} serial {} {how}", c.name, c.info.serial));
        }
        Ok((FleetPart { begun }, each.join(", ")))
    }

    /// How many files this update installs.
    pub fn files(&self) -> usize {
        self.begun.checked.len()
    }

    /// File `i` staged (nothing served yet).
    pub async fn stage(&self, i: usize) -> Result<String, EdgeError> {
        self.begun.stage(i).await?;
        let (name, _) = self.begun.target(i)?;
        Ok(format!("{name} staged"))
    }

    /// File `i` committed: HAProxy serves it (not written yet).
    pub async fn commit(&self, i: usize) -> Result<String, EdgeError> {
        self.begun.commit(i).await?;
        let (name, _) = self.begun.target(i)?;
        Ok(format!("{name} committed"))
    }

    /// File `i` written into the certs dir and read back.
    pub async fn finish(&mut self, i: usize) -> Result<Updated, EdgeError> {
        self.begun.finish(i).await
    }

    /// Ends the update, `staged` (the file staged, if one is) aborted at runtime. Journalled
    /// rolled back when nothing was installed here, else failed naming what was. Says what it
    /// did.
    pub async fn abort(self, staged: Option<usize>, why: &str) -> String {
        let b = &self.begun;
        let mut words = String::from("nothing was staged");
        if let Some((name, added)) = staged.and_then(|i| b.target(i).ok()) {
            let edge = b.install.edge;
            match super::cert_ref(&name) {
                Ok(cert) => {
                    words = cleanup(&edge.admin(), edge.timeouts, &cert, added, false).await;
                    words = format!("{name} aborted: {words}");
                }
                Err(e) => words = e.to_string(),
            }
        }
        let done: Vec<&str> = b
            .install
            .report
            .certs
            .iter()
            .map(|u| u.file.as_str())
            .collect();
        let (phase, detail) = if done.is_empty() {
            (Phase::RolledBack, format!("aborted: {why}; {words}"))
        } else {
            (
                Phase::Failed,
                format!("stopped: {why}; {words}; installed: {}", done.join(", ")),
            )
        };
        let _ = b
            .install
            .edge
            .state
            .journal_record(&b.install.op, phase, Some(&detail));
        detail
    }

    /// Every file finished: journalled done, the lock released.
    pub fn done(self) -> Result<UpdateReport, EdgeError> {
        self.begun.done()
    }
}

/// The certs dir takes a write (a read-only mount would only say so after the commits): an
/// empty file created and removed, named as HAProxy's `crt <dir>` skips.
fn probe_write(dir: &std::path::Path) -> Result<(), EdgeError> {
    let probe = dir.join(format!(".vezasock-probe.{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| {
        EdgeError::Refused(format!(
            "the certs dir {} does not take a write ({e}): nothing was changed",
            dir.display()
        ))
    })?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}
