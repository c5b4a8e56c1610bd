//! `vezasock status [ENV]`: the edge as the runtime, the map file and the state files see it,
//! read through the operator (read-only) socket. Exit 0 when all is consistent, 6 on drift or
//! an interrupted operation, 3 when HAProxy is unreachable.

use std::process::ExitCode;

use std::fmt::Write as _;

use clap::Args;

use super::after::after;
use super::args::{parse_name, Checked, TopologyArgs};
use super::common::runtime_and_edge;
use super::exit::Exit;
use super::finish::{self, Failed, Report};
use super::watch::{failed, repeat, Watch};
use crate::edge::cert::CertEntry;
use crate::edge::status::{status, BackendStatus, EnvStatus, StatusReport};

// Arguments of `vezasock status` (a plain comment: a doc comment would replace the subcommand's
// about text, which clap applies from the `Command` variant).
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// Only this env (1-64 characters of 0-9A-Za-z._-); externals and edge-wide operations
    /// are then left out.
    #[arg(value_parser = Checked(parse_name))]
    pub env: Option<String>,
    /// Print a JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Show the status (every edge's with --fleet) again every INTERVAL (default 2s; 100ms to
    /// 1h) until interrupted: redrawn on a terminal, plain snapshots otherwise (one JSON line
    /// each with --json).
    #[arg(long, value_name = "INTERVAL", num_args = 0..=1, default_missing_value = "2s", value_parser = Checked(parse_interval))]
    pub watch: Option<std::time::Duration>,
    /// With --watch: stop after N snapshots (1 to 10^6).
    #[arg(long, value_name = "N", requires = "watch", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub count: Option<u64>,
    #[command(flatten)]
    pub fleet: super::fleet::FleetArgs,
    #[command(flatten)]
    pub topology: TopologyArgs,
}

/// `--watch`'s interval: a duration from 100ms to 1h.
fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    let d = super::args::parse_duration(s)?;
    if d < std::time::Duration::from_millis(100) || d > std::time::Duration::from_secs(3600) {
        return Err("an interval from 100ms to 1h".to_string());
    }
    Ok(d)
}

/// Runs `vezasock status`.
pub fn run(args: &StatusArgs) -> ExitCode {
    if let (Some(interval), None) = (args.watch, &args.fleet.fleet) {
        return watch(args, interval);
    }
    if let Some(fleet) = &args.fleet.fleet {
        if args.env.is_some() {
            eprintln!("vezasock status: ENV is not available with --fleet: it shows every env of every edge");
            return Exit::BadInput.into();
        }
        if let Some(interval) = args.watch {
            let how = Watch {
                what: "vezasock status --fleet",
                interval,
                count: args.count,
                json: args.json,
            };
            return super::fleet::watch_status(fleet, &args.topology, &how);
        }
        return super::fleet::run_status(fleet, &args.topology, args.json);
    }
    let (rt, edge) = match runtime_and_edge("status", &args.topology) {
        Ok(both) => both,
        Err(exit) => return exit.into(),
    };
    let report = rt.block_on(status(&edge, args.env.as_deref()));
    after(&rt, &edge, "status");
    finish::finish("status", args.json, report.map_err(Failed::from))
}

impl Report for StatusReport {
    type Json<'a> = &'a StatusReport;

    fn json(&self) -> &StatusReport {
        self
    }

    fn human(&self) -> String {
        human(self)
    }

    /// Exit 6 on drift, an interrupted operation or an edge vezasock did not render.
    fn exit(&self) -> Exit {
        if self.has_problems() {
            Exit::Drift
        } else {
            Exit::Ok
        }
    }
}

/// `status --watch` on one edge ([`super::watch`]). Read-only: the metrics textfile is not
/// rewritten.
fn watch(args: &StatusArgs, interval: std::time::Duration) -> ExitCode {
    let (rt, edge) = match runtime_and_edge("status", &args.topology) {
        Ok(both) => both,
        Err(exit) => return exit.into(),
    };
    let how = Watch {
        what: "vezasock status",
        interval,
        count: args.count,
        json: args.json,
    };
    repeat(&how, |json| {
        match (rt.block_on(status(&edge, args.env.as_deref())), json) {
            (Ok(r), true) => serde_json::to_string(&r).unwrap_or_default() + "\n",
            (Ok(r), false) => human(&r),
            (Err(e), json) => failed(json, &e.to_string()),
        }
    })
}

/// The human report as one string: printed with one write, not one per line (3,000
/// servers would be 3,000 writes to a pipe).
fn human(r: &StatusReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", haproxy_line(r));
    let _ = writeln!(
        out,
        "FAILOVER {}: {}",
        r.failover.to_uppercase(),
        r.failover_meaning
    );
    for p in &r.problems {
        let _ = writeln!(out, "!!! {p}");
    }
    for w in &r.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    for env in &r.envs {
        write_env(&mut out, env);
    }
    if !r.externals.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "externals:");
        for b in &r.externals {
            write_backend(&mut out, "", b);
        }
    }
    if !r.certificates.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "certificates:");
        for c in &r.certificates {
            write_certificate(&mut out, c);
        }
    }
    out
}

/// `edge veza: HAProxy 3.2.…, worker pid …, up …, master pid … (…)`.
fn haproxy_line(r: &StatusReport) -> String {
    let h = &r.haproxy;
    let mut line = format!("edge {}: HAProxy {}", r.edge, h.version);
    if let Some(pid) = h.worker_pid {
        line.push_str(&format!(", worker pid {pid}"));
    }
    if let Some(up) = h.uptime_s {
        line.push_str(&format!(
            ", up {}h{:02}m{:02}s",
            up / 3600,
            up / 60 % 60,
            up % 60
        ));
    }
    match (&h.master, &h.master_error) {
        (Some(m), _) => line.push_str(&format!(
            ", master pid {} ({} reload(s){}, up {})",
            m.pid,
            m.reloads,
            m.failed_reloads
                .filter(|n| *n > 0)
                .map(|n| format!(", {n} FAILED"))
                .unwrap_or_default(),
            m.uptime
        )),
        (None, Some(e)) => line.push_str(&format!(", master not reachable ({e})")),
        (None, None) => {}
    }
    line
}

/// One env: its live color and sides, last switch, interrupted operations, backends.
fn write_env(out: &mut String, env: &EnvStatus) {
    let _ = writeln!(out);
    match (&env.sides, env.live) {
        (Some(s), Some(live)) => {
            let mark = if env.drift { "   <<< DRIFT" } else { "" };
            let _ = writeln!(out, "{}: live {live}  [{}]{mark}", env.name, s.describe());
        }
        _ => {
            let _ = writeln!(out, "{}: no colors (plain pools)", env.name);
        }
    }
    if let Some(last) = &env.last_switch {
        let _ = writeln!(
            out,
            "  last switch: {} {} at {} by {}",
            last.color,
            last.sha.as_deref().unwrap_or("-"),
            last.when.as_deref().unwrap_or("-"),
            last.who.as_deref().unwrap_or("-")
        );
    }
    for op in &env.interrupted {
        let _ = writeln!(
            out,
            "  INTERRUPTED: {op}; run `vezasock apply` or switch again"
        );
    }
    for comp in &env.components {
        for b in &comp.backends {
            write_backend(out, &comp.name, b);
        }
    }
}

/// One certificate: file, domains, expiry, and what is wrong with it.
fn write_certificate(out: &mut String, c: &CertEntry) {
    let days = c
        .days_left
        .map_or("?".to_string(), |d| format!("{d}d left"));
    let mut marks = Vec::new();
    if c.placeholder {
        marks.push("PLACEHOLDER");
    }
    if !c.agree {
        marks.push("runtime != disk");
    }
    let _ = writeln!(
        out,
        "  {}  {}  notAfter {} ({days}){}",
        c.file,
        c.domains.join(","),
        c.not_after.as_deref().unwrap_or("?"),
        if marks.is_empty() {
            String::new()
        } else {
            format!("  [{}]", marks.join(", "))
        }
    );
}

fn write_backend(out: &mut String, component: &str, b: &BackendStatus) {
    let color = b.color.map(|c| c.as_str()).unwrap_or("");
    let live = if b.live && b.color.is_some() {
        "*"
    } else {
        " "
    };
    if b.servers.is_empty() {
        let _ = writeln!(
            out,
            "  {component:<8} {color:<5}{live} {:<28} (no server: placeholder)",
            b.backend
        );
    }
    for s in &b.servers {
        let recorded = match (s.recorded, s.admin_drift) {
            (Some(rec), true) => format!(" (recorded {rec}: DRIFT)"),
            _ => String::new(),
        };
        let _ = writeln!(out,
            "  {component:<8} {color:<5}{live} {:<28} {:<10} {:<6}{recorded} op {:<8} {:<10} check {:<8} sessions {:<4} weight {}{}",
            b.backend,
            s.server,
            s.admin,
            s.op,
            s.status,
            if s.check.is_empty() { "-" } else { &s.check },
            s.sessions,
            s.weight,
            if s.backup { " (backup)" } else { "" }
        );
    }
}
