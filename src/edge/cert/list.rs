//! `cert list` and the certificates part of `status`: what disk and runtime hold, per file.

use serde::Serialize;

use super::{cert_ref, dir_name, disk_certs, normal_serial, now};
use crate::edge::{Edge, EdgeError};
use crate::runtime::command::ssl::{ShowSslCert, ShowSslCerts};

/// One certificate in [`CertReport`].
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct CertEntry {
    /// The file name in the certs dir.
    pub file: String,
    pub domains: Vec<String>,
    /// RFC 3339; `None` when the file does not parse.
    pub not_after: Option<String>,
    pub days_left: Option<i64>,
    pub placeholder: bool,
    /// The serial on disk, and the one HAProxy serves (`None`: not loaded).
    pub disk_serial: Option<String>,
    pub runtime_serial: Option<String>,
    /// Disk and runtime hold the same certificate.
    pub agree: bool,
    /// Why the file is unusable, if it is.
    pub error: Option<String>,
}

/// Every certificate of the edge, disk and runtime side by side.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct CertReport {
    pub certs_dir: Option<String>,
    pub certs: Vec<CertEntry>,
}

impl CertReport {
    /// Certificates with fewer than `days` days left (placeholders aside).
    pub fn expiring(&self, days: i64) -> Vec<&CertEntry> {
        self.certs
            .iter()
            .filter(|c| !c.placeholder && c.days_left.is_some_and(|d| d < days))
            .collect()
    }

    /// True when every certificate is on disk and served as it is on disk.
    pub fn all_agree(&self) -> bool {
        self.certs.iter().all(|c| c.agree)
    }
}

fn rfc3339(unix: i64) -> String {
    x509_parser::time::ASN1Time::from_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.to_datetime()
                .format(&::time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// The edge's certificates: the certs dir read, each file's serial compared with what
/// `show ssl cert` says HAProxy serves (operator socket, read-only).
pub async fn report(edge: &Edge) -> Result<CertReport, EdgeError> {
    let Some(tls) = &edge.topology.tls else {
        return Ok(CertReport {
            certs_dir: None,
            certs: Vec::new(),
        });
    };
    let dir = dir_name(&tls.certs_dir);
    let mut session = edge.operator_session().await?;
    let live = session.run(&ShowSslCerts).await?;
    let now = now();
    let mut certs = Vec::new();
    let disk = disk_certs(&tls.certs_dir);
    for (file, info) in &disk {
        let name = format!("{dir}/{file}");
        let runtime_serial = if live.certs.contains(&name) {
            let shown = session
                .run(&ShowSslCert {
                    cert: cert_ref(&name)?,
                })
                .await?;
            shown.get("Serial").map(normal_serial)
        } else {
            None
        };
        let entry = match info {
            Ok(i) => CertEntry {
                file: file.clone(),
                domains: i.domains.clone(),
                not_after: Some(rfc3339(i.not_after)),
                days_left: Some(i.days_left(now)),
                placeholder: i.placeholder,
                agree: runtime_serial.as_deref() == Some(i.serial.as_str()),
                disk_serial: Some(i.serial.clone()),
                runtime_serial,
                error: None,
            },
            Err(e) => CertEntry {
                file: file.clone(),
                domains: Vec::new(),
                not_after: None,
                days_left: None,
                placeholder: false,
                disk_serial: None,
                runtime_serial,
                agree: false,
                error: Some(e.clone()),
            },
        };
        certs.push(entry);
    }
    // Loaded at runtime from the certs dir but gone from disk.
    let prefix = format!("{dir}/");
    for name in &live.certs {
        if let Some(file) = name.strip_prefix(&prefix) {
            if !disk.iter().any(|(f, _)| f == file) {
                let shown = session
                    .run(&ShowSslCert {
                        cert: cert_ref(name)?,
                    })
                    .await?;
                certs.push(CertEntry {
                    file: file.to_string(),
                    domains: Vec::new(),
                    not_after: shown.not_after().map(str::to_string),
                    days_left: None,
                    placeholder: false,
                    disk_serial: None,
                    runtime_serial: shown.get("Serial").map(normal_serial),
                    agree: false,
                    error: Some("served by HAProxy but not in the certs dir".to_string()),
                });
            }
        }
    }
    Ok(CertReport {
        certs_dir: Some(dir),
        certs,
    })
}
