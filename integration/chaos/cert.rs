//! The `cert update` step of the chaos run, on the lab's one TLS edge (the fleet's edges serve
//! plain HTTP; a TLS edge redirects it, so it stands beside them, started at its first cert
//! step as `integration/preview.rs` starts one). Each step renews the default certificate
//! (`00-default.pem`, every domain of the topology) or installs/renews `chaos.pem` for a name
//! no other file serves, with a new serial, sometimes SIGKILLed 0–80 ms after its start.
//!
//! Invariants: exit 0 serves the new serial and its file holds it; an exit of 1–4 serves what
//! was served and leaves the file; after a kill (or an exit 5), `status` exits 6 whenever what
//! is served is not its file's certificate, and `apply` puts them back in agreement (exit 0);
//! the worker never changes (no reload).

use std::path::PathBuf;
use std::time::Duration;

use vezasock::demo::LocalEdge;

use super::{Chaos, Outcome};
use crate::cert::{make_cert, pem_serial, served_serial_for};
use crate::support::run::Run;

/// The name `chaos.pem` serves: in no other file of the edge.
const CHAOS_NAME: &str = "chaos.veza.test";

/// The TLS edge and its files.
pub(super) struct TlsLab {
    edge: LocalEdge,
    /// Its topology file.
    file: PathBuf,
    https: u16,
}

/// Which file a cert step writes.
#[derive(Debug, Clone, Copy)]
pub(super) enum CertFile {
    /// `00-default.pem`: every domain of the topology, served without SNI.
    Default,
    /// `chaos.pem`: [`CHAOS_NAME`] only (new the first time, then renewed).
    Chaos,
}

impl CertFile {
    fn name(self) -> &'static str {
        match self {
            CertFile::Default => "00-default.pem",
            CertFile::Chaos => "chaos.pem",
        }
    }

    fn sni(self) -> Option<&'static str> {
        match self {
            CertFile::Default => None,
            CertFile::Chaos => Some(CHAOS_NAME),
        }
    }
}

impl Chaos {
    /// `cert update` of `which` with a new serial on the TLS edge, SIGKILLed `kill_ms` after
    /// its start when given.
    pub(super) fn cert(&mut self, which: CertFile, kill_ms: Option<u64>, out: &mut Outcome) {
        if self.tls.is_none() {
            let dir = self.fleet.dir.path().join("tls-edge");
            let (edge, file) = crate::preview::tls_edge(&self.haproxy, &dir);
            let https = edge
                .topology
                .listen
                .https
                .rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or_else(|| panic!("no HTTPS port: {}", edge.topology.listen.https));
            self.tls = Some(TlsLab { edge, file, https });
        }
        self.cert_serial += 1;
        let serial = self.cert_serial;
        let Some(tls) = &self.tls else { return };
        let certs = tls
            .edge
            .topology
            .tls
            .as_ref()
            .map(|t| t.certs_dir.clone())
            .unwrap_or_else(|| panic!("the TLS edge has no certs dir"));
        let names = match which {
            CertFile::Default => vezasock::edge::cert::domain_set(&tls.edge.topology),
            CertFile::Chaos => vec![CHAOS_NAME.to_string()],
        };
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let new = self.fleet.dir.path().join(which.name());
        std::fs::write(&new, make_cert(&names, serial, -1, 90, false))
            .unwrap_or_else(|e| panic!("{e}"));
        let target = certs.join(which.name());
        let before_file = std::fs::read_to_string(&target).unwrap_or_default();
        let before_served = served_serial_for(tls.https, which.sni());
        let pid = crate::switch::worker_pid(&tls.edge);
        let new_text = new.display().to_string();
        let run = self.tls_run(
            &["cert", "update", &new_text, "--allow-other-domains"],
            kill_ms,
        );
        let what = format!(
            "cert update {} (serial {serial:X}, kill {kill_ms:?})",
            which.name()
        );
        out.runs
            .push((what.clone(), run.code, format!("{}{}", run.out, run.err)));
        if crate::switch::worker_pid(&tls.edge) != pid {
            self.fail_now(&format!("`{what}`: the TLS edge reloaded"));
        }
        let served = served_serial_for(tls.https, which.sni());
        let file = std::fs::read_to_string(&target).unwrap_or_default();
        let want = format!("{serial:X}");
        match run.code {
            Some(0) if served != want || pem_serial(&file) != want => self.fail_now(&format!(
                "`{what}` exited 0 but serves {served:?} and its file holds {:?}:\n{}",
                pem_serial(&file),
                run.err
            )),
            Some(1..=4) if served != before_served || file != before_file => {
                self.fail_now(&format!(
                    "`{what}` exited {:?} (nothing changed) but serves {served:?} (was \
                     {before_served:?}), file changed: {}:\n{}",
                    run.code,
                    file != before_file,
                    run.err
                ))
            }
            Some(0..=4) => {}
            _ => self.cert_repair(which, &what, out),
        }
    }

    /// After a kill or an exit 5: `status` says drift when served and file differ, then
    /// `apply` makes them agree.
    fn cert_repair(&self, which: CertFile, what: &str, out: &mut Outcome) {
        let tls = self.tls_lab();
        let target = tls
            .edge
            .topology
            .tls
            .as_ref()
            .map(|t| t.certs_dir.join(which.name()))
            .unwrap_or_default();
        let file_serial = || pem_serial(&std::fs::read_to_string(&target).unwrap_or_default());
        let served = served_serial_for(tls.https, which.sni());
        let status = self.tls_run(&["status"], None);
        let disagree = !file_serial().is_empty() && served != file_serial();
        if disagree && status.code != Some(6) {
            self.fail_now(&format!(
                "after `{what}`: serves {served:?}, the file holds {:?}, but status exited {:?}",
                file_serial(),
                status.code
            ));
        }
        let apply = self.tls_run(&["apply"], None);
        out.runs.push((
            "apply (TLS edge)".into(),
            apply.code,
            format!("{}{}", apply.out, apply.err),
        ));
        let served = served_serial_for(tls.https, which.sni());
        if apply.code == Some(0) && !file_serial().is_empty() && served != file_serial() {
            self.fail_now(&format!(
                "after `{what}`, apply exited 0 but serves {served:?}, the file holds {:?}:\n{}",
                file_serial(),
                apply.out
            ));
        }
    }

    /// `vezasock ARGS --config <the TLS edge's topology>`, bounded, killed after `kill_ms`.
    fn tls_run(&self, args: &[&str], kill_ms: Option<u64>) -> Run {
        let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        v.push("--config".into());
        v.push(self.tls_lab().file.display().to_string());
        self.run(&v, kill_ms.map(Duration::from_millis))
    }

    fn tls_lab(&self) -> &TlsLab {
        self.tls
            .as_ref()
            .unwrap_or_else(|| panic!("no TLS edge started"))
    }
}
