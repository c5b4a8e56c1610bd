//! `cert update`: every file checked first, then per file the runtime steps, the default
//! certificate slot, the file written through, and the serial read back (see the module doc of
//! `cert/mod.rs`).

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{
    cert_ref, check_file_name, check_for_edge, check_not_first, dir_name, disk_certs, domain_set,
    inspect, normal_serial, now, same_names, CertInfo, PLACEHOLDER_FILE,
};
use crate::edge::{Edge, EdgeError};
use crate::runtime::command::ssl::{
    payload_too_big, CertPayload, CertRef, ShowSslCert, ShowSslCerts, SslWrite,
};
use crate::runtime::Error::Refused;
use crate::state::journal::{Action, Operation, Phase};
use crate::state::{EdgeLock, Holder, Wait};

/// `cert update` options.
#[derive(Debug, Clone, Copy)]
pub struct UpdateOptions {
    pub allow_other_domains: bool,
    pub wait: Wait,
}

/// One certificate `cert update` installed.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Updated {
    /// The file in the certs dir (its name at the runtime API).
    pub file: String,
    /// It was new to HAProxy (`new ssl cert` + `add ssl crt-list`).
    pub added: bool,
    pub serial: String,
    pub domains: Vec<String>,
    pub not_after: String,
    /// The default-certificate slot ([`PLACEHOLDER_FILE`]) this certificate also went into:
    /// the placeholder it replaced, or the earlier copy of this certificate.
    pub replaced_placeholder: Option<String>,
}

/// What `cert update` did.
#[derive(Debug, Clone, Serialize)]
pub struct UpdateReport {
    pub certs: Vec<Updated>,
}

pub(super) struct Checked {
    pub(super) name: String,
    pub(super) info: CertInfo,
    pub(super) payload: CertPayload,
}

/// A certificate file as given: how the messages name it, its file name, its bytes (read
/// bounded here, or sent by a fleet coordinator).
pub(super) struct Given {
    pub(super) label: String,
    pub(super) name: Option<String>,
    pub(super) bytes: Vec<u8>,
}

/// `vezasock cert update FILE…`: every file checked first (nothing changes on a bad one),
/// then under the edge lock and journalled, per file: `set ssl cert` + `commit` (or `new ssl
/// cert` + `set` + `commit` + `add ssl crt-list` for a new one), the file written atomically
/// into the certs dir, and `show ssl cert` read back (serial).
pub async fn update(
    edge: &Edge,
    files: &[PathBuf],
    options: UpdateOptions,
) -> Result<UpdateReport, EdgeError> {
    let tls = edge.topology.tls.as_ref().ok_or_else(|| {
        EdgeError::BadInput("the topology has no [tls]: no certs dir".to_string())
    })?;
    if files.is_empty() {
        return Err(EdgeError::BadInput("no certificate file given".to_string()));
    }
    let checked = check_files(edge, &tls.certs_dir, files, options)?;
    let who = crate::state::who();
    let mut begun = begin(edge, checked, options.wait, &who, "cert update").await?;
    for i in 0..begun.checked.len() {
        begun.stage(i).await?;
        begun.commit(i).await?;
        begun.finish(i).await?;
    }
    begun.done()
}

/// A `cert update` begun: its files checked, the edge lock held, the intent journalled.
pub(super) struct Begun<'a> {
    _lock: EdgeLock,
    session: crate::runtime::session::Session,
    /// The certificates HAProxy served when it began.
    live: Vec<String>,
    pub(super) checked: Vec<Checked>,
    pub(super) install: Install<'a>,
}

/// Takes the edge lock for `checked` (waiting up to `wait`), checks each payload against the
/// running version's limit, reads what HAProxy serves and journals the intent (`what` is its
/// detail). Nothing has changed yet.
pub(super) async fn begin<'a>(
    edge: &'a Edge,
    checked: Vec<Checked>,
    wait: Wait,
    who: &str,
    what: &str,
) -> Result<Begun<'a>, EdgeError> {
    let tls = edge.topology.tls.as_ref().ok_or_else(|| {
        EdgeError::BadInput("the topology has no [tls]: no certs dir".to_string())
    })?;
    let dir = dir_name(&tls.certs_dir);
    let lock = EdgeLock::acquire_async(&edge.state, wait, Holder::current()).await?;
    let mut session = edge.admin_session().await?;
    // The payload limit is the running version's (16 KiB with the line before 3.4, 128 KiB
    // from 3.4): checked for every file before anything is sent.
    for c in &checked {
        if let Some(why) = payload_too_big(&c.payload, session.version()) {
            return Err(EdgeError::BadInput(format!("{}: {why}", c.name)));
        }
    }
    let live = session.run(&ShowSslCerts).await?;
    refuse_open_transaction(&live.transaction, &checked, &dir)?;
    // The default-certificate slot: a placeholder, or a copy of the certificate that
    // replaced it (which it then follows on every renewal).
    let slot_name = format!("{dir}/{PLACEHOLDER_FILE}");
    let slot = crate::files::read_bounded(
        &tls.certs_dir.join(PLACEHOLDER_FILE),
        crate::files::limit::PEM,
    )
    .ok()
    .and_then(|b| inspect(&b).ok())
    .filter(|_| live.certs.contains(&slot_name));
    let summary: Vec<String> = checked
        .iter()
        .map(|c| format!("{} serial {}", c.name, c.info.serial))
        .collect();
    let op = Operation::new(Action::Cert, None, None, Some(&summary.join(", ")), who);
    edge.state.journal_record(&op, Phase::Intent, Some(what))?;
    crate::edge::crash_point("cert-after-intent");
    let install = Install {
        edge,
        op,
        certs_dir: tls.certs_dir.clone(),
        list_ref: cert_ref(&dir)?,
        dir,
        slot,
        slot_name,
        report: UpdateReport { certs: Vec::new() },
    };
    Ok(Begun {
        _lock: lock,
        session,
        live: live.certs,
        checked,
        install,
    })
}

/// HAProxy holds one certificate transaction at a time: another certificate's, left open (an
/// operator's `set ssl cert` not committed), would refuse this update's (3.x) or take its
/// payload (2.6). One for a file of this update is updated by its `set ssl cert`.
fn refuse_open_transaction(
    open: &[String],
    checked: &[Checked],
    dir: &str,
) -> Result<(), EdgeError> {
    let foreign = open
        .iter()
        .find(|t| !checked.iter().any(|c| **t == format!("{dir}/{}", c.name)));
    match foreign {
        None => Ok(()),
        Some(t) => Err(EdgeError::Refused(format!(
            "HAProxy has an uncommitted certificate transaction for {t} (a `set ssl cert` \
             not committed) and holds one at a time: nothing was changed; commit or abort it \
             first (`vezasock exec -- abort ssl cert {t}`)"
        ))),
    }
}

impl Begun<'_> {
    /// File `i`'s name at the runtime API, and whether it is new to HAProxy.
    pub(super) fn target(&self, i: usize) -> Result<(String, bool), EdgeError> {
        let c = self
            .checked
            .get(i)
            .ok_or_else(|| EdgeError::BadInput(format!("this update has no file #{i}")))?;
        let name = format!("{}/{}", self.install.dir, c.name);
        let added = !self.live.contains(&name);
        Ok((name, added))
    }

    /// File `i` staged: [`Install::stage`].
    pub(super) async fn stage(&self, i: usize) -> Result<(), EdgeError> {
        let (name, added) = self.target(i)?;
        self.install.stage(&self.checked[i], i, &name, added).await
    }

    /// File `i` committed: [`Install::commit`].
    pub(super) async fn commit(&self, i: usize) -> Result<(), EdgeError> {
        let (name, added) = self.target(i)?;
        self.install.commit(&self.checked[i], i, &name, added).await
    }

    /// File `i`, committed, written into the certs dir (the default slot first when it
    /// follows it) and read back.
    pub(super) async fn finish(&mut self, i: usize) -> Result<Updated, EdgeError> {
        let (name, added) = self.target(i)?;
        let c = &self.checked[i];
        let replaced = self.install.file(c, &name).await?;
        let updated = self
            .install
            .verify(&mut self.session, c, name, added, replaced)
            .await?;
        self.install.report.certs.push(updated.clone());
        Ok(updated)
    }

    /// Every file finished: journalled verified and done; the lock released.
    pub(super) fn done(self) -> Result<UpdateReport, EdgeError> {
        let (edge, op) = (self.install.edge, &self.install.op);
        // Every certificate is served, written and verified: a journal line lost now (a full
        // disk) is not "nothing changed".
        let closed = edge
            .state
            .journal_record(op, Phase::Verified, Some("show ssl cert: serials match"))
            .and_then(|_| edge.state.journal_record(op, Phase::Done, None));
        if let Err(e) = closed {
            return Err(EdgeError::NotVerified(format!(
                "every certificate is served, written and verified, but the journal was not closed: {e}"
            )));
        }
        Ok(self.install.report)
    }
}

/// Every file read (bounded), inspected and checked for this edge before anything changes
/// ([`check_given`]).
fn check_files(
    edge: &Edge,
    certs_dir: &Path,
    files: &[PathBuf],
    options: UpdateOptions,
) -> Result<Vec<Checked>, EdgeError> {
    let mut given = Vec::with_capacity(files.len());
    for file in files {
        let bytes = crate::files::read_bounded(file, crate::files::limit::PEM)
            .map_err(|e| EdgeError::BadInput(format!("{}: cannot read: {e}", file.display())))?;
        given.push(Given {
            label: file.display().to_string(),
            name: file.file_name().map(|n| n.to_string_lossy().to_string()),
            bytes,
        });
    }
    check_given(edge, certs_dir, given, options.allow_other_domains)
}

/// Every file inspected and checked for this edge before anything changes: a PEM with its
/// key, for the edge's domains (unless allowed), a plain file name that is not the
/// placeholder's, each name once.
pub(super) fn check_given(
    edge: &Edge,
    certs_dir: &Path,
    given: Vec<Given>,
    allow_other_domains: bool,
) -> Result<Vec<Checked>, EdgeError> {
    let domains = domain_set(&edge.topology);
    let now = now();
    let mut checked = Vec::new();
    let on_disk: Vec<String> = disk_certs(certs_dir)
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    for file in given {
        let bad = |why: String| EdgeError::BadInput(format!("{}: {why}", file.label));
        let info = inspect(&file.bytes).map_err(bad)?;
        check_for_edge(&info, &domains, allow_other_domains, now).map_err(bad)?;
        let text =
            String::from_utf8(file.bytes).map_err(|_| bad("is not UTF-8 text".to_string()))?;
        let payload = CertPayload::new(&text).map_err(|e| bad(e.to_string()))?;
        let name = file
            .name
            .ok_or_else(|| bad("has no file name".to_string()))?;
        check_file_name(&name).map_err(bad)?;
        check_not_first(&name, &on_disk).map_err(bad)?;
        if checked.iter().any(|c: &Checked| c.name == name) {
            return Err(bad("is given twice (same file name)".to_string()));
        }
        checked.push(Checked {
            name,
            info,
            payload,
        });
    }
    Ok(checked)
}

/// One `cert update` in progress, under the lock, its intent journalled.
pub(super) struct Install<'a> {
    pub(super) edge: &'a Edge,
    pub(super) op: Operation,
    pub(super) certs_dir: PathBuf,
    /// The certs dir as the bind names it, and as a crt-list.
    pub(super) dir: String,
    pub(super) list_ref: CertRef,
    /// The default-certificate slot while it still has to follow a certificate.
    pub(super) slot: Option<CertInfo>,
    pub(super) slot_name: String,
    pub(super) report: UpdateReport,
}

impl Install<'_> {
    /// The staging half of one certificate's runtime steps (`new ssl cert` for an added one,
    /// `set ssl cert`): nothing is served yet. A refused step is cleaned up (`abort ssl
    /// cert`, and `del ssl cert` of a new store).
    pub(super) async fn stage(
        &self,
        c: &Checked,
        index: usize,
        name: &str,
        added: bool,
    ) -> Result<(), EdgeError> {
        let cert = cert_ref(name)?;
        let mut steps = Vec::new();
        if added {
            steps.push(SslWrite::New(cert.clone()));
        }
        steps.push(SslWrite::Set(cert, c.payload.clone()));
        self.send_steps(c, index, name, added, &steps).await
    }

    /// The commit half: `commit ssl cert` (and `add ssl crt-list` for an added one), then
    /// journalled. The error says what is served: nothing changed only for the first file
    /// with no commit that may have landed.
    pub(super) async fn commit(
        &self,
        c: &Checked,
        index: usize,
        name: &str,
        added: bool,
    ) -> Result<(), EdgeError> {
        let cert = cert_ref(name)?;
        let mut steps = vec![SslWrite::Commit(cert.clone())];
        if added {
            steps.push(SslWrite::AddCrtList {
                list: self.list_ref.clone(),
                cert,
            });
        }
        self.send_steps(c, index, name, added, &steps).await?;
        self.edge
            .state
            .journal_record(&self.op, Phase::RuntimeApplied, Some(name))
            .map_err(|e| self.not_verified(c, name, format!("journal after the commit: {e}")))?;
        crate::edge::crash_point("cert-after-runtime");
        Ok(())
    }

    /// Sends `steps` in order; a failure is cleaned up and journalled ([`Install::failed`]).
    async fn send_steps(
        &self,
        c: &Checked,
        index: usize,
        name: &str,
        added: bool,
        steps: &[SslWrite],
    ) -> Result<(), EdgeError> {
        let (endpoint, timeouts) = (self.edge.admin(), self.edge.timeouts);
        let cert = cert_ref(name)?;
        let mut committed = false;
        for step in steps {
            if let Err(e) = step.send(&endpoint, timeouts).await {
                // A commit that got no answer may have been applied.
                let maybe = committed
                    || (matches!(step, SslWrite::Commit(_)) && !matches!(e, Refused { .. }));
                let undo = cleanup(&endpoint, timeouts, &cert, added, maybe).await;
                return Err(self.failed(c, index, e, undo, maybe));
            }
            if matches!(step, SslWrite::Commit(_)) {
                committed = true;
            }
        }
        Ok(())
    }

    /// The error of a refused or lost runtime step, journalled.
    fn failed(
        &self,
        c: &Checked,
        index: usize,
        e: crate::runtime::Error,
        undo: String,
        maybe: bool,
    ) -> EdgeError {
        let done: Vec<&str> = self.report.certs.iter().map(|u| u.file.as_str()).collect();
        let detail = format!("{}: {e}; {undo}", c.name);
        let _ = self
            .edge
            .state
            .journal_record(&self.op, Phase::Failed, Some(&detail));
        if index == 0 && !maybe {
            return match e {
                Refused { .. } => {
                    EdgeError::Refused(format!("HAProxy refused {}: {e}; {undo}", c.name))
                }
                other => EdgeError::Interrupted {
                    source: other,
                    detail: undo,
                },
            };
        }
        EdgeError::NotVerified(format!(
            "{detail}; already installed: {}",
            if done.is_empty() {
                "none".to_string()
            } else {
                done.join(", ")
            }
        ))
    }

    /// After its runtime commit, a failure is "served but not verified" (exit 5), journalled.
    fn not_verified(&self, c: &Checked, name: &str, what: String) -> EdgeError {
        let _ = self
            .edge
            .state
            .journal_record(&self.op, Phase::Failed, Some(&what));
        EdgeError::NotVerified(format!(
            "{what}: HAProxy serves {name} serial {} already",
            c.info.serial
        ))
    }

    /// The disk side: the default-certificate slot takes the certificate when it follows it
    /// (it cannot be deleted), then the file is written atomically into the certs dir. Returns
    /// the slot it replaced.
    pub(super) async fn file(
        &mut self,
        c: &Checked,
        name: &str,
    ) -> Result<Option<String>, EdgeError> {
        let replaced = self.follow_slot(c, name).await?;
        let path = self.certs_dir.join(&c.name);
        std::fs::create_dir_all(&self.certs_dir).map_err(|e| {
            self.not_verified(
                c,
                name,
                format!("creating {}: {e}", self.certs_dir.display()),
            )
        })?;
        crate::files::write_atomic(&path, c.payload.as_str().as_bytes())
            .map_err(|e| self.not_verified(c, name, format!("writing {}: {e}", path.display())))?;
        // Served and written: a journal that cannot say so (a full disk) is not "nothing
        // changed".
        self.edge
            .state
            .journal_record(
                &self.op,
                Phase::DiskWritten,
                Some(&path.display().to_string()),
            )
            .map_err(|e| {
                self.not_verified(
                    c,
                    name,
                    format!("journal after writing {}: {e}", path.display()),
                )
            })?;
        crate::edge::crash_point("cert-after-disk");
        Ok(replaced)
    }

    /// The slot follows this certificate: a placeholder, the copy of its file, or a copy of an
    /// earlier version of it (same names) that an interrupted update left behind.
    async fn follow_slot(&mut self, c: &Checked, name: &str) -> Result<Option<String>, EdgeError> {
        let old_serial =
            crate::files::read_bounded(&self.certs_dir.join(&c.name), crate::files::limit::PEM)
                .ok()
                .and_then(|b| inspect(&b).ok())
                .map(|i| i.serial);
        let follows = |s: &CertInfo| {
            s.placeholder
                || old_serial.as_deref() == Some(s.serial.as_str())
                || same_names(s, &c.info)
        };
        if c.name == PLACEHOLDER_FILE || !self.slot.as_ref().is_some_and(follows) {
            return Ok(None);
        }
        self.slot = None;
        let (endpoint, timeouts) = (self.edge.admin(), self.edge.timeouts);
        let ph = self.slot_name.clone();
        let ph_ref = cert_ref(&ph)?;
        for step in [
            SslWrite::Set(ph_ref.clone(), c.payload.clone()),
            SslWrite::Commit(ph_ref.clone()),
        ] {
            if let Err(e) = step.send(&endpoint, timeouts).await {
                let _ = SslWrite::Abort(ph_ref.clone())
                    .send(&endpoint, timeouts)
                    .await;
                let what = format!("replacing the placeholder {ph}: {e}");
                return Err(self.not_verified(c, name, what));
            }
        }
        let path = self.certs_dir.join(PLACEHOLDER_FILE);
        crate::files::write_atomic(&path, c.payload.as_str().as_bytes())
            .map_err(|e| self.not_verified(c, name, format!("writing {}: {e}", path.display())))?;
        crate::edge::crash_point("cert-after-slot");
        Ok(Some(ph))
    }

    /// `show ssl cert` read back: the serial HAProxy serves is the file's.
    pub(super) async fn verify(
        &self,
        session: &mut crate::runtime::session::Session,
        c: &Checked,
        name: String,
        added: bool,
        replaced: Option<String>,
    ) -> Result<Updated, EdgeError> {
        let cert = cert_ref(&name)?;
        let shown = session
            .run(&ShowSslCert { cert })
            .await
            .map_err(|e| self.not_verified(c, &name, format!("show ssl cert {name}: {e}")))?;
        let serial = shown.get("Serial").map(normal_serial).unwrap_or_default();
        if serial != c.info.serial {
            let what = format!(
                "show ssl cert {name} says serial {serial}, the file {}",
                c.info.serial
            );
            return Err(self.not_verified(c, &name, what));
        }
        Ok(Updated {
            file: name,
            added,
            serial,
            domains: c.info.domains.clone(),
            not_after: shown.not_after().unwrap_or_default().to_string(),
            replaced_placeholder: replaced,
        })
    }
}

/// After a refused step: drop the transaction, and a store `new ssl cert` made. Says what
/// it did.
pub(super) async fn cleanup(
    endpoint: &crate::runtime::endpoint::Endpoint,
    timeouts: crate::runtime::session::Timeouts,
    cert: &CertRef,
    added: bool,
    committed: bool,
) -> String {
    if committed {
        return format!(
            "{} may be committed at runtime (not verified); nothing written to disk: run \
             `vezasock cert update` again",
            cert.as_str()
        );
    }
    let _ = SslWrite::Abort(cert.clone()).send(endpoint, timeouts).await;
    if added {
        let _ = SslWrite::DelCert(cert.clone())
            .send(endpoint, timeouts)
            .await;
    }
    "the old certificate is still served; nothing written".to_string()
}
