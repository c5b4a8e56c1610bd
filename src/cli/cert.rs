//! `vezasock cert update FILE…` and `vezasock cert list`: certificates over the runtime API,
//! without a reload (`edge::cert`).
//!
//! Exit codes (`cli::exit`): 0 done; 1 HAProxy refused the certificate (nothing changed);
//! 2 bad input (unparsable PEM, key not matching, expired or not yet valid, no SAN for the
//! edge's domains: nothing changed); 3 HAProxy unreachable; 4 locked; 5 applied at runtime but
//! not written or not verified. `cert list`: 0, or 1 when a certificate has fewer than
//! `--warn-days` days left, or disk and runtime disagree. With `--fleet` (`edge::fleet::cert`):
//! the refusing edge's code before any commit, 5 after one; `cert list --fleet` 6 when edges
//! serve different certificates for one file, 3 when an edge is not reached.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::after::after;
use super::args::{LockArgs, TopologyArgs};
use super::common::runtime_and_edge;
use super::exit::Exit;
use super::finish::{self, Failed, Report, WithOk};
use crate::edge::cert::{self, UpdateOptions};
use crate::edge::fleet::cert as fleet_cert;

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
    pub fleet: super::fleet::FleetArgs,
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
    pub fleet: super::fleet::FleetArgs,
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
    if let Some(path) = &args.fleet.fleet {
        return fleet_update(path, args);
    }
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
    if let Some(path) = &args.fleet.fleet {
        return fleet_list(path, args);
    }
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

/// `vezasock cert update --fleet F FILE…`: every file on every edge, or on none.
fn fleet_update(path: &std::path::Path, args: &UpdateArgs) -> ExitCode {
    let name = "cert update";
    let options = fleet_cert::FleetCertOptions {
        allow_other_domains: args.allow_other_domains,
        lock_wait: args.lock.lock_wait(),
        who: crate::state::who(),
    };
    let result = super::fleet::on_fleet(name, path, &args.topology, async |_, members| {
        fleet_cert::update(members, &args.files, &options).await
    });
    super::fleet::after_fleet(name, path, &args.topology);
    match result {
        Ok(result) => finish::finish(
            name,
            args.json,
            result.map_err(|failure| {
                let (error, report) = *failure;
                Failed {
                    error,
                    beside: CertBeside { report },
                }
            }),
        ),
        Err(exit) => exit.into(),
    }
}

/// What a fleet certificate update's failure JSON carries: every edge's line.
#[derive(serde::Serialize)]
struct CertBeside {
    report: fleet_cert::FleetCertReport,
}

impl Report for fleet_cert::FleetCertReport {
    type Json<'a> = WithOk<'a, fleet_cert::FleetCertReport>;

    fn json(&self) -> WithOk<'_, fleet_cert::FleetCertReport> {
        WithOk::of(self)
    }

    fn human(&self) -> String {
        let mut out = String::new();
        for e in &self.edges {
            let _ = writeln!(out, "edge {:<16} {}: {}", e.edge, e.result, e.detail);
        }
        let _ = writeln!(
            out,
            "{} installed on {} edge(s) (no reload; staged on every edge, then committed on every edge back to back); commit skew {:.3} ms; total {:.3} ms",
            self.files.join(", "),
            self.edges.len(),
            self.commit_skew_ms,
            self.total_ms
        );
        out
    }
}

/// `vezasock cert list --fleet F`: every edge's certificates, and a loud DRIFT for a file the
/// edges serve differently.
fn fleet_list(path: &std::path::Path, args: &ListArgs) -> ExitCode {
    let name = "cert list";
    let result = super::fleet::on_fleet(name, path, &args.topology, async |_, members| {
        fleet_cert::list(members).await
    });
    match result {
        Ok(list) => {
            let listed = FleetListed {
                list,
                warn_days: args.warn_days,
            };
            finish::finish(name, args.json, Ok::<_, Failed<()>>(listed))
        }
        Err(exit) => exit.into(),
    }
}

/// `cert list --fleet`: the fleet's list and the expiry warning's threshold.
struct FleetListed {
    list: fleet_cert::FleetCertList,
    warn_days: i64,
}

/// `cert list --fleet --json`: the list and the threshold.
#[derive(serde::Serialize)]
struct FleetListedJson<'a> {
    #[serde(flatten)]
    list: &'a fleet_cert::FleetCertList,
    warn_days: i64,
}

impl FleetListed {
    /// The reached edges' reports.
    fn reports(&self) -> impl Iterator<Item = &cert::CertReport> {
        self.list.edges.iter().filter_map(|e| e.report.as_ref())
    }
}

impl Report for FleetListed {
    type Json<'a> = FleetListedJson<'a>;

    fn json(&self) -> FleetListedJson<'_> {
        FleetListedJson {
            list: &self.list,
            warn_days: self.warn_days,
        }
    }

    fn pretty(&self) -> bool {
        true
    }

    /// 6 when edges serve different certificates for one file (as `status --fleet`'s drift);
    /// else 3 when an edge was not reached; else 1 when a certificate expires within the
    /// threshold or an edge's runtime and disk disagree; else 0.
    fn exit(&self) -> Exit {
        if !self.list.drift.is_empty() {
            Exit::Drift
        } else if self.list.edges.iter().any(|e| e.error.is_some()) {
            Exit::Unreachable
        } else if self
            .reports()
            .any(|r| !r.expiring(self.warn_days).is_empty() || !r.all_agree())
        {
            Exit::Refused
        } else {
            Exit::Ok
        }
    }

    fn human(&self) -> String {
        let mut out = String::new();
        for line in &self.list.drift {
            let _ = writeln!(out, "{line}");
        }
        for e in &self.list.edges {
            match (&e.report, &e.error) {
                (Some(report), _) => {
                    let dir = report.certs_dir.as_deref().unwrap_or("none (no [tls])");
                    let _ = writeln!(out, "edge {}: certs dir {dir}", e.edge);
                    for c in &report.certs {
                        let mut line = String::new();
                        write_cert(&mut line, c);
                        for l in line.lines() {
                            let _ = writeln!(out, "  {l}");
                        }
                    }
                    for c in report.expiring(self.warn_days) {
                        let _ = writeln!(
                            out,
                            "  WARNING: {} expires in {} days (under {}): renew it",
                            c.file,
                            c.days_left.unwrap_or(0),
                            self.warn_days
                        );
                    }
                }
                (None, error) => {
                    let _ = writeln!(
                        out,
                        "edge {}: NOT REACHED: {}",
                        e.edge,
                        error.as_deref().unwrap_or("?")
                    );
                }
            }
        }
        if self.list.drift.is_empty() {
            out.push_str("every edge serves the same certificate for every file\n");
        }
        out
    }
}
