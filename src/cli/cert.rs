//! `vezasock cert update FILE…` and `vezasock cert list`: certificates over the runtime API,
//! without a reload (`edge::cert`).
//!
//! Exit codes (`cli::exit`): 0 done; 1 HAProxy refused the certificate (nothing changed);
//! 2 bad input (unparsable PEM, key not matching, expired or not yet valid, no SAN for the
//! edge's domains: nothing changed); 3 HAProxy unreachable; 4 locked; 5 applied at runtime but
//! not written or not verified. `cert list`: 0, or 1 when a certificate has fewer than
//! `--warn-days` days left, or disk and runtime disagree.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::args::{LockArgs, TopologyArgs};
use super::common::{after, runtime_and_edge};
use super::exit::Exit;
use super::finish::{self, Failed, Report};
use crate::edge::cert::{self, UpdateOptions};

// Arguments of `vezasock cert` (a plain comment: see `Command` in cli/mod.rs).
#[derive(Debug, Clone, Args)]
pub struct CertArgs {
    #[command(subcommand)]
    pub command: CertCommand,
}

// `cert` subcommands (a plain comment: a doc comment would replace `cert`'s about text).
#[derive(Debug, Clone, Subcommand)]
pub enum CertCommand {
    /// Replace or add certificates (PEM: chain + key) over the runtime API, no reload; written
    /// into the certs dir and verified with `show ssl cert`.
    Update(UpdateArgs),
    /// Every certificate: domains, notAfter, days left, runtime vs disk, placeholder.
    List(ListArgs),
}

// Arguments of `vezasock cert update` (a plain comment: see `Command` in cli/mod.rs).
#[derive(Debug, Clone, Args)]
pub struct UpdateArgs {
    /// PEM files, each a certificate chain and its private key; installed under their file
    /// name in the certs dir.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Accept a certificate that names none of the edge's domains.
    #[arg(long)]
    pub allow_other_domains: bool,
    #[command(flatten)]
    pub lock: LockArgs,
    /// Print a JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub topology: TopologyArgs,
}

// Arguments of `vezasock cert list` (a plain comment: see `Command` in cli/mod.rs).
#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// Warn (and exit 1) when a certificate has fewer days left than this.
    #[arg(long, value_name = "N", default_value_t = 14, value_parser = clap::value_parser!(i64).range(0..=3650))]
    pub warn_days: i64,
    /// Print a JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub topology: TopologyArgs,
}

/// Runs `vezasock cert …`.
pub fn run(args: &CertArgs) -> ExitCode {
    match &args.command {
        CertCommand::Update(a) => update(a),
        CertCommand::List(a) => list(a),
    }
}

fn update(args: &UpdateArgs) -> ExitCode {
    let name = "cert update";
    let (rt, edge) = match runtime_and_edge(name, &args.topology) {
        Ok(both) => both,
        Err(exit) => return exit.into(),
    };
    let options = UpdateOptions {
        allow_other_domains: args.allow_other_domains,
        wait: args.lock.wait(),
    };
    let report = rt.block_on(cert::update(&edge, &args.files, options));
    after(&rt, &edge, name);
    finish::finish(name, args.json, report.map_err(Failed::from))
}

impl Report for cert::UpdateReport {
    type Json<'a> = &'a cert::UpdateReport;

    fn json(&self) -> &cert::UpdateReport {
        self
    }

    fn pretty(&self) -> bool {
        true
    }

    fn human(&self) -> String {
        let mut out = String::new();
        for c in &self.certs {
            let _ = writeln!(
                out,
                "{}: {} serial {} (notAfter {}; {}), no reload; written to disk",
                c.file,
                if c.added { "added" } else { "replaced" },
                c.serial,
                c.not_after,
                c.domains.join(", ")
            );
            if let Some(p) = &c.replaced_placeholder {
                let _ = writeln!(out, "{p}: the placeholder now holds this certificate");
            }
        }
        out
    }
}

fn list(args: &ListArgs) -> ExitCode {
    let name = "cert list";
    let (rt, edge) = match runtime_and_edge(name, &args.topology) {
        Ok(both) => both,
        Err(exit) => return exit.into(),
    };
    let report = rt.block_on(cert::report(&edge)).map(|report| Listed {
        report,
        warn_days: args.warn_days,
    });
    finish::finish(name, args.json, report.map_err(Failed::from))
}

/// `cert list`: the report and the expiry warning's threshold.
struct Listed {
    report: cert::CertReport,
    warn_days: i64,
}

/// `cert list --json`: the report, the threshold, the files under it and whether every file's
/// runtime and disk serials agree.
#[derive(serde::Serialize)]
struct ListedJson<'a> {
    #[serde(flatten)]
    report: &'a cert::CertReport,
    warn_days: i64,
    expiring: Vec<&'a str>,
    agree: bool,
}

impl Report for Listed {
    type Json<'a> = ListedJson<'a>;

    fn json(&self) -> ListedJson<'_> {
        ListedJson {
            report: &self.report,
            warn_days: self.warn_days,
            expiring: self
                .report
                .expiring(self.warn_days)
                .iter()
                .map(|c| c.file.as_str())
                .collect(),
            agree: self.report.all_agree(),
        }
    }

    fn pretty(&self) -> bool {
        true
    }

    /// Exit 1 when a certificate expires within the threshold or runtime and disk disagree.
    fn exit(&self) -> Exit {
        if self.report.expiring(self.warn_days).is_empty() && self.report.all_agree() {
            Exit::Ok
        } else {
            Exit::Refused
        }
    }

    fn human(&self) -> String {
        let report = &self.report;
        let mut out = String::new();
        match &report.certs_dir {
            None => out.push_str("no [tls] in the topology: no certificates\n"),
            Some(dir) => {
                let _ = writeln!(out, "certs dir {dir}");
            }
        }
        for c in &report.certs {
            write_cert(&mut out, c);
        }
        for c in &report.expiring(self.warn_days) {
            let _ = writeln!(
                out,
                "WARNING: {} expires in {} days (under {}): renew it",
                c.file,
                c.days_left.unwrap_or(0),
                self.warn_days
            );
        }
        out
    }
}

/// One certificate of `cert list`: file, domains, expiry, runtime against disk.
fn write_cert(out: &mut String, c: &cert::CertEntry) {
    let days = c
        .days_left
        .map(|d| format!("{d} days left"))
        .unwrap_or_else(|| "days left unknown".to_string());
    let state = if c.agree {
        "runtime = disk".to_string()
    } else {
        format!(
            "DRIFT runtime {} / disk {}",
            c.runtime_serial.as_deref().unwrap_or("not loaded"),
            c.disk_serial.as_deref().unwrap_or("missing")
        )
    };
    let _ = writeln!(
        out,
        "{}{}: {} notAfter {} ({days}); {state}{}",
        c.file,
        if c.placeholder { " PLACEHOLDER" } else { "" },
        if c.domains.is_empty() {
            "-".to_string()
        } else {
            c.domains.join(", ")
        },
        c.not_after.as_deref().unwrap_or("?"),
        c.error
            .as_deref()
            .map(|e| format!("; {e}"))
            .unwrap_or_default()
    );
    if c.placeholder {
        let _ = writeln!(
            out,
            "  PLACEHOLDER: {} is self-signed; `vezasock cert update` installs the real one",
            c.file
        );
    }
}
