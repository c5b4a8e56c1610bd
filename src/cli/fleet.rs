//! `--fleet FILE` (or `VEZASOCK_FLEET`): `switch`, `status` and `apply` over every edge of a
//! fleet at once ([`crate::edge::fleet`]). Loading the fleet and reaching its edges is here;
//! what each command does is in the edge layer.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde::Serialize;

use super::args::TopologyArgs;
use super::common::runtime;
use super::exit::Exit;
use super::output;
use crate::edge::fleet::agent;
use crate::edge::fleet::member::{Agent, Link, Member};
use crate::edge::fleet::{self, FleetReport, FleetStatus};
use crate::edge::switch::SwitchRequest;
use crate::edge::{Edge, EdgeError};
use crate::topology::fleet::{Fleet, Reach};
use crate::topology::Topology;

// The fleet flag (plain comment: see `cli::Command`).
#[derive(Debug, Clone, Args, Default)]
pub struct FleetArgs {
    /// A fleet file naming several edges: the command runs on every edge as one transaction
    /// (README "Several edges").
    #[arg(long, env = "VEZASOCK_FLEET", value_name = "FILE")]
    pub fleet: Option<PathBuf>,
}

/// The fleet file, or exit 2.
fn load(command: &str, path: &std::path::Path) -> Result<Fleet, Exit> {
    Fleet::load(path).map_err(|e| {
        eprintln!("vezasock {command}: {e}");
        Exit::BadInput
    })
}

/// Each local edge's [`Edge`] (`None` for an edge over ssh): its own topology file, or the
/// command's topology flags when it names none.
fn local_edges(
    command: &str,
    fleet: &Fleet,
    topology: &TopologyArgs,
) -> Result<Vec<Option<Edge>>, Exit> {
    let mut out = Vec::with_capacity(fleet.edges.len());
    for e in &fleet.edges {
        if e.reach != Reach::Local {
            out.push(None);
            continue;
        }
        let topo = match &e.config {
            Some(path) => Topology::load(path),
            None => topology.load(),
        };
        match topo {
            Ok(t) => out.push(Some(Edge::new(t))),
            Err(err) => {
                eprintln!("vezasock {command}: edge {}: {err}", e.name);
                return Err(Exit::BadInput);
            }
        }
    }
    Ok(out)
}

/// What every fleet command starts with: the fleet file, its local edges, the async runtime.
fn open(
    command: &str,
    path: &std::path::Path,
    topology: &TopologyArgs,
) -> Result<(Fleet, Vec<Option<Edge>>, tokio::runtime::Runtime), Exit> {
    let fleet = load(command, path)?;
    let edges = local_edges(command, &fleet, topology)?;
    Ok((fleet, edges, runtime(command)?))
}

/// One member per edge: each local one served on its own thread of `scope` (so the edges'
/// fsynced writes run side by side), each ssh one by its `edge-agent`.
fn members<'s, 'e: 's>(
    command: &str,
    fleet: &Fleet,
    edges: &'e [Option<Edge>],
    scope: &'s std::thread::Scope<'s, 'e>,
) -> Result<Vec<Member>, Exit> {
    let mut out = Vec::with_capacity(fleet.edges.len());
    for (e, local) in fleet.edges.iter().zip(edges) {
        match local {
            Some(edge) => {
                let (link, server) = agent::channel();
                scope.spawn(move || agent::serve_on_this_thread(edge, server));
                out.push(Member::new(&e.name, Link::Local(link)));
            }
            None => match Agent::start(&e.reach, e.config.as_deref()) {
                Ok(a) => out.push(Member::new(&e.name, Link::Ssh(Box::new(a)))),
                Err(err) => {
                    eprintln!("vezasock {command}: edge {}: {err}", e.name);
                    return Err(Exit::Unreachable);
                }
            },
        }
    }
    Ok(out)
}

/// Ends every edge's conversation.
async fn close(members: Vec<Member>) {
    for m in members {
        m.close().await;
    }
}

#[derive(Serialize)]
struct SwitchJson<'a> {
    ok: bool,
    #[serde(flatten)]
    report: &'a FleetReport,
}

#[derive(Serialize)]
struct FailureJson<'a> {
    ok: bool,
    error: String,
    exit: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<&'a FleetReport>,
}

/// `vezasock switch --fleet F ENV COLOR`.
pub fn run_switch(
    path: &std::path::Path,
    args: &super::switch::SwitchArgs,
    mut req: SwitchRequest,
    ttl: Duration,
) -> ExitCode {
    let unsupported = [
        (!args.preview_check.is_empty(), "--preview-check"),
        (args.bake.is_some(), "--bake"),
    ];
    if let Some((_, flag)) = unsupported.iter().find(|(set, _)| *set) {
        eprintln!("vezasock switch: {flag} is not available with --fleet (yet); run it per edge");
        return Exit::BadInput.into();
    }
    req.dry_run = args.dry_run;
    req.drain_old = args.drain_old;
    req.drain_timeout = args.drain_timeout;
    run_flip("switch", path, &args.topology, args.json, req, ttl, None)
}

/// `vezasock rollback --fleet F ENV [--to SHA]`: every edge's history must name the same deploy
/// to go back to; then a fleet switch to it, recorded as a rollback.
pub fn run_rollback(
    path: &std::path::Path,
    args: &super::rollback::RollbackArgs,
    mut req: SwitchRequest,
) -> ExitCode {
    req.dry_run = args.dry_run;
    run_flip(
        "rollback",
        path,
        &args.topology,
        args.json,
        req,
        crate::edge::transaction::DEFAULT_TTL,
        Some(args.to.clone()),
    )
}

/// A fleet switch (`rollback`: `Some(to)`, the color and sha come from the edges' histories).
fn run_flip(
    command: &str,
    path: &std::path::Path,
    topology: &TopologyArgs,
    json: bool,
    mut req: SwitchRequest,
    ttl: Duration,
    rollback: Option<Option<String>>,
) -> ExitCode {
    let (fleet, edges, rt) = match open(command, path, topology) {
        Ok(opened) => opened,
        Err(exit) => return exit.into(),
    };
    std::thread::scope(|scope| {
        rt.block_on(async {
        let mut members = match members(command, &fleet, &edges, scope) {
            Ok(m) => m,
            Err(exit) => return exit.into(),
        };
        if let Some(to) = &rollback {
            match fleet::rollback_target(&mut members, &req.env, to.as_deref()).await {
                Ok((color, sha)) => {
                    req.color = color;
                    req.sha = sha;
                    req.action = crate::state::Action::Rollback;
                }
                Err(e) => {
                    close(members).await;
                    return super::common::fail(command, &e).into();
                }
            }
        }
        let result = fleet::switch(&fleet, &mut members, &req, ttl).await;
        close(members).await;
        match result {
            Ok(report) => {
                if json {
                    output::json(&SwitchJson { ok: true, report: &report });
                } else {
                    let mut text = String::new();
                    for e in &report.edges {
                        text.push_str(&format!("{:<16} {:<9} {:>9.3} ms  {}\n", e.edge, e.result, e.ms, e.detail));
                    }
                    if report.dry_run && report.edges.iter().all(|e| e.result == "already") {
                        text.push_str(&format!(
                            "dry run: {} is already {} on every edge: nothing would change\n",
                            report.env, report.to
                        ));
                    } else if report.dry_run {
                        text.push_str(&format!(
                            "dry run: {} would switch to {} on {} edge(s): prepared on every edge \
                             (map version staged, pending file, transaction.json), then committed \
                             on every edge back to back, read back and recorded; nothing changed\n",
                            report.env,
                            report.to,
                            report.edges.len()
                        ));
                    } else {
                        text.push_str(&format!(
                            "{} switched to {} on {} edge(s) (no reload); commit skew {:.3} ms; total {:.3} ms\n",
                            report.env,
                            report.to,
                            report.edges.len(),
                            report.commit_skew_ms,
                            report.total_ms
                        ));
                    }
                    if let Some(drain) = &report.drain_old {
                        for e in &drain.edges {
                            text.push_str(&format!(
                                "drain-old {:<16} {}: {}\n",
                                e.edge, e.result, e.detail
                            ));
                        }
                    }
                    output::text(&text);
                }
                Exit::Ok.into()
            }
            Err(error) => {
                let exit = Exit::of_edge(&error);
                if json {
                    let report = match &error {
                        EdgeError::Fleet(f) => match &f.outcome {
                            fleet::Outcome::Switch(r) => Some(r),
                            fleet::Outcome::Change(_) => None,
                        },
                        _ => None,
                    };
                    output::json(&FailureJson {
                        ok: false,
                        error: error.to_string(),
                        exit: exit as u8,
                        report,
                    });
                }
                eprintln!("vezasock {command}: {error}");
                exit.into()
            }
        }
    })
    })
}

/// `vezasock status --fleet F`.
pub fn run_status(path: &std::path::Path, topology: &TopologyArgs, json: bool) -> ExitCode {
    let (fleet, edges, rt) = match open("status", path, topology) {
        Ok(opened) => opened,
        Err(exit) => return exit.into(),
    };
    std::thread::scope(|scope| {
        rt.block_on(async {
            let mut members = match members("status", &fleet, &edges, scope) {
                Ok(m) => m,
                Err(exit) => return exit.into(),
            };
            let result = fleet::status(&fleet, &mut members).await;
            close(members).await;
            match result {
                Ok(status) => {
                    if json {
                        output::json(&status);
                    } else {
                        output::text(&human_status(&status));
                    }
                    status.exit().into()
                }
                Err(e) => super::common::fail("status", &e).into(),
            }
        })
    })
}

fn human_status(s: &FleetStatus) -> String {
    let mut out = String::new();
    for line in &s.drift {
        out.push_str(&format!("{line}\n"));
    }
    for t in &s.open_transactions {
        out.push_str(&format!(
            "OPEN TRANSACTION {t}; `vezasock apply --fleet …` repairs it\n"
        ));
    }
    for e in &s.edges {
        match (&e.summary, &e.error) {
            (Some(sum), _) => {
                let colors: Vec<String> = sum
                    .envs
                    .iter()
                    .map(|c| {
                        let w = |c: Option<crate::topology::Color>| c.map_or("?", |c| c.as_str());
                        if c.live == c.recorded {
                            format!("{}={}", c.env, w(c.live))
                        } else {
                            format!("{}={} (recorded {})", c.env, w(c.live), w(c.recorded))
                        }
                    })
                    .collect();
                out.push_str(&format!("edge {:<16} {}\n", e.edge, colors.join("  ")));
                for c in &sum.envs {
                    out.push_str(&format!("  {:<12} {}\n", c.env, c.servers.join(" · ")));
                }
                for p in &sum.problems {
                    out.push_str(&format!("  {p}\n"));
                }
            }
            (None, Some(err)) => out.push_str(&format!("edge {:<16} NOT REACHED: {err}\n", e.edge)),
            (None, None) => {}
        }
    }
    if s.drift.is_empty() && s.open_transactions.is_empty() {
        out.push_str("every edge agrees on every env's color\n");
    }
    out
}

/// `vezasock apply --fleet F`: every edge repaired to its recorded colors (open transactions
/// aborted), then each env whose edges still disagree flipped to the color the fleet journal
/// names.
pub fn run_apply(path: &std::path::Path, topology: &TopologyArgs, json: bool) -> ExitCode {
    let (fleet, edges, rt) = match open("apply", path, topology) {
        Ok(opened) => opened,
        Err(exit) => return exit.into(),
    };
    std::thread::scope(|scope| {
        rt.block_on(async {
            let mut members = match members("apply", &fleet, &edges, scope) {
                Ok(m) => m,
                Err(exit) => return exit.into(),
            };
            let result = fleet::apply(&fleet, &mut members).await;
            close(members).await;
            match result {
                Ok(report) => {
                    if json {
                        output::json(&report);
                    } else {
                        let mut text = String::new();
                        for r in &report.repaired {
                            text.push_str(&format!(
                                "edge {:<16} {}: {}\n",
                                r.edge, r.result, r.detail
                            ));
                        }
                        for r in &report.resolved {
                            text.push_str(&format!("resolved: {r}\n"));
                        }
                        for r in &report.unresolved {
                            text.push_str(&format!("UNRESOLVED: {r}\n"));
                        }
                        output::text(&text);
                    }
                    if !report.unresolved.is_empty() {
                        Exit::Drift.into()
                    } else if report.repaired.iter().any(|r| r.result != "repaired") {
                        Exit::Unreachable.into()
                    } else {
                        Exit::Ok.into()
                    }
                }
                Err(e) => super::common::fail("apply", &e).into(),
            }
        })
    })
}

#[derive(Serialize)]
struct ChangeJson<'a> {
    ok: bool,
    #[serde(flatten)]
    change: &'a fleet::FleetChange,
}

#[derive(Serialize)]
struct ChangeFailureJson<'a> {
    ok: bool,
    error: String,
    exit: u8,
    edges: &'a [fleet::ChangeOutcome],
}

/// `vezasock drain|maint|ready --fleet F …`: the server change on every edge or on none.
pub fn run_servers(
    command: &str,
    path: &std::path::Path,
    (select, lock, topology, json): (
        &super::servers::SelectArgs,
        &super::args::LockArgs,
        &TopologyArgs,
        bool,
    ),
    decision: crate::state::AdminDecision,
    flags: (bool, bool),
    wait: Option<fleet::DrainWait>,
) -> ExitCode {
    if select.backend.is_some() && select.color.is_some() {
        eprintln!("vezasock {command}: a color goes with an env, not with --backend");
        return Exit::BadInput.into();
    }
    let selection = select.selection();
    let (fleet, edges, rt) = match open(command, path, topology) {
        Ok(opened) => opened,
        Err(exit) => return exit.into(),
    };
    std::thread::scope(|scope| {
        rt.block_on(async {
            let mut members = match members(command, &fleet, &edges, scope) {
                Ok(m) => m,
                Err(exit) => return exit.into(),
            };
            let result = fleet::servers_change(
                &mut members,
                &selection,
                decision,
                flags,
                lock.lock_wait(),
                wait,
            )
            .await;
            close(members).await;
            match result {
                Ok(change) => {
                    if json {
                        output::json(&ChangeJson {
                            ok: true,
                            change: &change,
                        });
                    } else {
                        let mut text = String::new();
                        for e in &change.edges {
                            text.push_str(&format!(
                                "edge {:<16} {}: {}\n",
                                e.edge, e.result, e.detail
                            ));
                        }
                        text.push_str(&format!(
                            "{} on {} edge(s), written through on each\n",
                            decision.as_str(),
                            change.edges.len()
                        ));
                        output::text(&text);
                    }
                    Exit::Ok.into()
                }
                Err(error) => {
                    let exit = Exit::of_edge(&error);
                    if json {
                        let edges = match &error {
                            EdgeError::Fleet(f) => match &f.outcome {
                                fleet::Outcome::Change(c) => c.edges.as_slice(),
                                fleet::Outcome::Switch(_) => &[],
                            },
                            _ => &[],
                        };
                        output::json(&ChangeFailureJson {
                            ok: false,
                            error: error.to_string(),
                            exit: exit as u8,
                            edges,
                        });
                    }
                    eprintln!("vezasock {command}: {error}");
                    exit.into()
                }
            }
        })
    })
}
