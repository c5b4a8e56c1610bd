//! Certificates an interrupted `cert update` left with runtime and disk apart: put back by
//! `apply` (the journal says which files the update had reached).

use std::path::Path;

use super::{cert_ref, dir_name, disk_certs, normal_serial, same_names, PLACEHOLDER_FILE};
use crate::edge::{Edge, EdgeError};
use crate::runtime::command::ssl::{CertPayload, ShowSslCert, ShowSslCerts, SslWrite};
use crate::state::journal::{Action, Operation, Phase};

/// What [`repair_interrupted`] did.
#[derive(Debug, Clone, Default)]
pub struct CertRepair {
    /// One line per certificate put back.
    pub fixed: Vec<String>,
    /// The interrupted `cert update` operations closed (their ids).
    pub closed: Vec<String>,
}

/// One change that puts HAProxy back in agreement with the certs dir.
enum CertFix {
    /// Serve the file's certificate (`set ssl cert` + `commit`); `write` also writes it to
    /// `file` on disk (the default-certificate slot catching up with its certificate).
    Serve {
        file: String,
        from: String,
        to: String,
        payload: CertPayload,
        write: bool,
    },
    /// A certificate HAProxy serves from the dir with no file behind it: an add that was
    /// never written. `del ssl crt-list` + `del ssl cert`.
    Drop { file: String, serial: String },
}

impl std::fmt::Display for CertFix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CertFix::Serve {
                file,
                from,
                to,
                write: false,
                ..
            } => write!(
                f,
                "certificate {file}: served serial {from} → {to}, the file's"
            ),
            CertFix::Serve { file, from, to, .. } => write!(
                f,
                "certificate {file} (the no-SNI default): serial {from} → {to}, the copy of \
                 the file with the same names"
            ),
            CertFix::Drop { file, serial } => write!(
                f,
                "certificate {file}: serial {serial} no longer served (added at runtime, never \
                 written to the certs dir)"
            ),
        }
    }
}

/// `apply`'s repair of an interrupted `cert update` (a `kill -9`, a crash): the certs dir is
/// the truth, as the recorded colors are for a flip. `cert update` writes a file only after
/// HAProxy serves it and vezasock never leaves a torn file, so a file that reads as a
/// certificate is complete; HAProxy is put back to it (`set ssl cert` + `commit`), a
/// certificate added at runtime whose file was never written is removed (`del ssl crt-list` +
/// `del ssl cert`), and the default-certificate slot takes the certificate it follows (the
/// file with the same names) again. A file that does not read as a certificate is left as it
/// is (HAProxy keeps serving what it serves; `cert list` shows it). Then the interrupted
/// operations are closed (`rolled-back` when something was put back, else `done`), the
/// whole journalled. Nothing is done without an open `cert` operation. Run `cert update`
/// again to install the certificate it was installing.
pub async fn repair_interrupted(edge: &Edge, who: &str) -> Result<CertRepair, EdgeError> {
    let mut out = CertRepair::default();
    let Some(tls) = &edge.topology.tls else {
        return Ok(out);
    };
    let open: Vec<_> = edge
        .state
        .open_operations()?
        .into_iter()
        .filter(|o| o.action == Action::Cert)
        .collect();
    if open.is_empty() {
        return Ok(out);
    }
    let op = Operation::new(Action::Cert, None, None, None, who);
    edge.state.journal_record(
        &op,
        Phase::Intent,
        Some("repair: HAProxy back to the files of the certs dir"),
    )?;
    let fixes = cert_fixes(edge, &tls.certs_dir).await?;
    for fix in &fixes {
        if let Err(e) = apply_fix(edge, &tls.certs_dir, fix).await {
            let detail = format!("{fix}: {e}");
            let _ = edge.state.journal_record(&op, Phase::Failed, Some(&detail));
            return Err(EdgeError::NotVerified(format!(
                "certificate repair: {detail}"
            )));
        }
        out.fixed.push(fix.to_string());
    }
    if !fixes.is_empty() {
        edge.state
            .journal_record(&op, Phase::RuntimeApplied, Some(&out.fixed.join("; ")))?;
        let left = cert_fixes(edge, &tls.certs_dir).await?;
        if let Some(fix) = left.first() {
            let detail = format!("read-back: still to do: {fix}");
            let _ = edge.state.journal_record(&op, Phase::Failed, Some(&detail));
            return Err(EdgeError::NotVerified(format!(
                "certificate repair: {detail}"
            )));
        }
    }
    let phase = if fixes.is_empty() {
        Phase::Done
    } else {
        Phase::RolledBack
    };
    for old in &open {
        let closing = old.continued_by(who);
        edge.state.journal_record(
            &closing,
            phase,
            Some(&format!(
                "interrupted after {}; closed by op {}: HAProxy serves the files of the certs dir",
                old.last_phase.as_str(),
                op.op_id
            )),
        )?;
        out.closed.push(old.op_id.clone());
        out.fixed.push(format!("closed the interrupted {old}"));
    }
    edge.state
        .journal_record(&op, Phase::Done, Some(&out.fixed.join("; ")))?;
    Ok(out)
}

/// What differs between the certs dir and what HAProxy serves from it.
async fn cert_fixes(edge: &Edge, certs_dir: &Path) -> Result<Vec<CertFix>, EdgeError> {
    let dir = dir_name(certs_dir);
    let mut session = edge.admin_session().await?;
    let live = session.run(&ShowSslCerts).await?;
    let disk = disk_certs(certs_dir);
    let mut fixes = Vec::new();
    let mut serials = Vec::new();
    for (file, _) in &disk {
        let name = format!("{dir}/{file}");
        if live.certs.contains(&name) {
            let shown = session
                .run(&ShowSslCert {
                    cert: cert_ref(&name)?,
                })
                .await?;
            serials.push((file.clone(), shown.get("Serial").map(normal_serial)));
        }
    }
    let payload_of = |file: &str| -> Option<CertPayload> {
        let bytes =
            crate::files::read_bounded(&certs_dir.join(file), crate::files::limit::PEM).ok()?;
        CertPayload::new(&String::from_utf8(bytes).ok()?).ok()
    };
    // The slot follows the one other file with its names, when they differ.
    let slot = disk
        .iter()
        .find(|(f, _)| f == PLACEHOLDER_FILE)
        .and_then(|(_, i)| i.as_ref().ok())
        .filter(|i| !i.placeholder);
    let followed = slot.and_then(|s| {
        let same: Vec<_> = disk
            .iter()
            .filter(|(f, _)| f != PLACEHOLDER_FILE)
            .filter_map(|(f, i)| i.as_ref().ok().map(|i| (f, i)))
            .filter(|(_, i)| same_names(s, i))
            .collect();
        match same.as_slice() {
            [(f, i)] if i.serial != s.serial => Some(((*f).clone(), i.serial.clone())),
            _ => None,
        }
    });
    for (file, info) in &disk {
        let Ok(info) = info else { continue };
        let Some((_, Some(serving))) = serials.iter().find(|(f, _)| f == file) else {
            continue;
        };
        let (want, source, write) = match &followed {
            Some((from, serial)) if file == PLACEHOLDER_FILE => (serial, from.as_str(), true),
            _ => (&info.serial, file.as_str(), false),
        };
        if serving != want || write {
            if let Some(payload) = payload_of(source) {
                fixes.push(CertFix::Serve {
                    file: file.clone(),
                    from: serving.clone(),
                    to: want.clone(),
                    payload,
                    write,
                });
            }
        }
    }
    let prefix = format!("{dir}/");
    for name in &live.certs {
        let Some(file) = name.strip_prefix(&prefix) else {
            continue;
        };
        if !disk.iter().any(|(f, _)| f == file) && file != PLACEHOLDER_FILE {
            let shown = session
                .run(&ShowSslCert {
                    cert: cert_ref(name)?,
                })
                .await?;
            fixes.push(CertFix::Drop {
                file: file.to_string(),
                serial: shown.get("Serial").map(normal_serial).unwrap_or_default(),
            });
        }
    }
    Ok(fixes)
}

/// Sends one fix (and writes the slot's file when it says so).
async fn apply_fix(edge: &Edge, certs_dir: &Path, fix: &CertFix) -> Result<(), EdgeError> {
    let dir = dir_name(certs_dir);
    let endpoint = edge.admin();
    let steps = match fix {
        CertFix::Serve { file, payload, .. } => {
            let cert = cert_ref(&format!("{dir}/{file}"))?;
            vec![
                SslWrite::Set(cert.clone(), payload.clone()),
                SslWrite::Commit(cert),
            ]
        }
        CertFix::Drop { file, .. } => {
            let cert = cert_ref(&format!("{dir}/{file}"))?;
            vec![
                SslWrite::DelCrtList {
                    list: cert_ref(&dir)?,
                    cert: cert.clone(),
                },
                SslWrite::DelCert(cert),
            ]
        }
    };
    for step in &steps {
        if let Err(e) = step.send(&endpoint, edge.timeouts).await {
            if let SslWrite::Commit(cert) = step {
                let _ = SslWrite::Abort(cert.clone())
                    .send(&endpoint, edge.timeouts)
                    .await;
            }
            return Err(e.into());
        }
    }
    if let CertFix::Serve {
        file,
        payload,
        write: true,
        ..
    } = fix
    {
        let path = certs_dir.join(file);
        crate::files::write_atomic(&path, payload.as_str().as_bytes())
            .map_err(|e| EdgeError::NotVerified(format!("writing {}: {e}", path.display())))?;
    }
    Ok(())
}
