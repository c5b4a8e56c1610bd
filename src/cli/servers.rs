//! `vezasock drain`, `vezasock maint` and `vezasock ready`: the operator's server tools.
//!
//! ```text
//! vezasock drain ENV [COLOR] [--component C] [--server S] [--wait DURATION] [--then maint|kill|leave]
//! vezasock maint ENV [COLOR] [--component C] [--server S] [--kill-sessions]
//! vezasock ready ENV [COLOR] [--component C] [--server S]
//! ... or --backend B [--server S] instead of ENV (e.g. --backend forgejo_backend)
//! ```
//!
//! Every change is written through to disk before the command returns (`edge::servers`).
//! Exit codes (`cli::exit`): 0 done; 1 HAProxy refused, or `drain --wait` ran out of time with
//! servers still busy (they stay in drain); 2 bad selection (nothing changed); 3 HAProxy
//! unreachable; 4 the edge is locked.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};

// Kept at its old path for `cli::demo`, which parses `--duration` with it.
use super::after::after;
pub use super::args::parse_duration;
use super::args::{parse_name, Checked, LockArgs, TopologyArgs};
use super::common::{load_edge, runtime};
use super::exit::Exit;
use super::finish::{self, Failed, Report};
use crate::edge::servers::{self, ChangeReport, DrainReport, Selection, ServerRef, Then};
use crate::edge::Edge;
use crate::state::AdminDecision;
use crate::topology::Color;

// Which servers: an env (narrowed by color, component, server) or a backend by name (a plain
// comment: see `Command` in cli/mod.rs).
#[derive(Debug, Clone, Args)]
pub struct SelectArgs {
    /// The env (staging, prod, …; 1-64 characters of 0-9A-Za-z._-). Not with --backend.
    #[arg(required_unless_present = "backend", conflicts_with = "backend", value_parser = Checked(parse_name))]
    pub env: Option<String>,
    /// Only this color (blue or green); default both.
    #[arg(value_parser = clap::value_parser!(Color))]
    pub color: Option<Color>,
    /// Only this component of the env (api, stream, web, …; 1-64 characters of 0-9A-Za-z._-).
    #[arg(long, conflicts_with = "backend", value_parser = Checked(parse_name))]
    pub component: Option<String>,
    /// Only the server of this name (e.g. blue_1, srv_1; 1-64 characters of 0-9A-Za-z._-).
    #[arg(long, value_parser = Checked(parse_name))]
    pub server: Option<String>,
    /// Any backend by name instead of an env, e.g. forgejo_backend (1-64 characters of
    /// 0-9A-Za-z._-).
    #[arg(long, value_parser = Checked(parse_name))]
    pub backend: Option<String>,
}

/// What `drain --wait` does once drained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ThenArg {
    /// Put the servers in maintenance.
    Maint,
    /// `shutdown sessions server`, and maintenance.
    Kill,
    /// Leave them in drain.
    Leave,
}

// Arguments of `vezasock drain` (a plain comment: a doc comment would replace the subcommand's
// about text, which clap applies from the `Command` variant).
#[derive(Debug, Clone, Args)]
pub struct DrainArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Wait up to DURATION (at most 7d) for the servers' current sessions to reach zero (a
    /// DOWN server counts as drained). Past the deadline: exit 1, the servers stay in drain.
    #[arg(long, value_name = "DURATION", value_parser = Checked(parse_duration))]
    pub wait: Option<Duration>,
    /// Once drained: maint, kill (shutdown sessions + maint) or leave (stay in drain).
    #[arg(long, value_enum, default_value = "leave", requires = "wait")]
    pub then: ThenArg,
    #[command(flatten)]
    pub lock: LockArgs,
    /// Allow taking every server of an env's live color out of rotation (its requests then
    /// get 503); without it such a change is refused.
    #[arg(long)]
    pub force: bool,
    /// Print a JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub fleet: super::fleet::FleetArgs,
    #[command(flatten)]
    pub topology: TopologyArgs,
}

// Arguments of `vezasock maint` (a plain comment: a doc comment would replace the subcommand's
// about text, which clap applies from the `Command` variant).
#[derive(Debug, Clone, Args)]
pub struct MaintArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Also end the servers' current sessions (`shutdown sessions server`).
    #[arg(long)]
    pub kill_sessions: bool,
    #[command(flatten)]
    pub lock: LockArgs,
    /// Allow taking every server of an env's live color out of rotation (its requests then
    /// get 503); without it such a change is refused.
    #[arg(long)]
    pub force: bool,
    /// Print a JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub fleet: super::fleet::FleetArgs,
    #[command(flatten)]
    pub topology: TopologyArgs,
}

// Arguments of `vezasock ready` (a plain comment: a doc comment would replace the subcommand's
// about text, which clap applies from the `Command` variant).
#[derive(Debug, Clone, Args)]
pub struct ReadyArgs {
    #[command(flatten)]
    pub select: SelectArgs,
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

impl SelectArgs {
    pub(crate) fn selection(&self) -> Selection {
        match (&self.backend, &self.env) {
            (Some(backend), _) => Selection::Backend {
                backend: backend.clone(),
                server: self.server.clone(),
            },
            (None, env) => Selection::Env {
                env: env.clone().unwrap_or_default(),
                color: self.color,
                component: self.component.clone(),
                server: self.server.clone(),
            },
        }
    }
}

/// Loads the edge and resolves the selection; errors are printed and become the exit code (a
/// selection the edge does not have is the command's failure: with `json`, the failure JSON).
fn prepare(
    name: &str,
    topology: &TopologyArgs,
    select: &SelectArgs,
    json: bool,
) -> Result<(Edge, Selection, Vec<ServerRef>), Exit> {
    let edge = load_edge(name, topology)?;
    if select.backend.is_some() && select.color.is_some() {
        eprintln!("vezasock {name}: a color goes with an env, not with --backend");
        return Err(Exit::BadInput);
    }
    let selection = select.selection();
    let servers = servers::resolve(&edge, &selection)
        .map_err(|e| finish::fail(name, json, &Failed::from(e)))?;
    Ok((edge, selection, servers))
}

impl Report for ChangeReport {
    type Json<'a> = &'a ChangeReport;

    fn json(&self) -> &ChangeReport {
        self
    }

    fn human(&self) -> String {
        let mut out = String::new();
        change_lines(self, &mut out);
        out
    }

    fn pretty(&self) -> bool {
        true
    }
}

impl Report for DrainReport {
    type Json<'a> = &'a DrainReport;

    fn json(&self) -> &DrainReport {
        self
    }

    fn human(&self) -> String {
        let mut out = String::new();
        change_lines(&self.drain, &mut out);
        if let Some(wait) = self.wait.as_ref().filter(|w| w.drained) {
            let _ = writeln!(out, "drained after {:.1}s", wait.waited_ms as f64 / 1000.0);
        }
        if let Some(then) = &self.then {
            change_lines(then, &mut out);
        }
        out
    }

    fn pretty(&self) -> bool {
        true
    }

    /// Exit 1 when `--wait` ran out with servers still busy (they stay in drain).
    fn exit(&self) -> Exit {
        if self.wait.as_ref().is_none_or(|w| w.drained) {
            Exit::Ok
        } else {
            Exit::Refused
        }
    }

    fn note(&self) -> Option<String> {
        let wait = self.wait.as_ref().filter(|w| !w.drained)?;
        Some(format!(
            "still busy after {:.1}s (left in drain): {}",
            wait.waited_ms as f64 / 1000.0,
            servers::busy_line(&wait.busy)
        ))
    }
}

/// One line per server changed, then where the change was written through.
fn change_lines(report: &ChangeReport, out: &mut String) {
    for s in &report.servers {
        let killed = if s.sessions_killed {
            " (sessions shut down)"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "{}/{}: {} -> {}{killed}",
            s.backend, s.server, s.before, s.after
        );
    }
    let _ = writeln!(
        out,
        "written through: {} and {}",
        report.admin_file.display(),
        report.server_state_file.display()
    );
}

/// A server change on every edge of the fleet at `path`, or on none.
fn on_fleet(
    command: &str,
    path: &std::path::Path,
    (select, lock, topology, json): (&SelectArgs, &LockArgs, &TopologyArgs, bool),
    decision: AdminDecision,
    flags: (bool, bool),
    wait: Option<crate::edge::fleet::DrainWait>,
) -> ExitCode {
    if select.backend.is_some() && select.color.is_some() {
        eprintln!("vezasock {command}: a color goes with an env, not with --backend");
        return Exit::BadInput.into();
    }
    let change = super::fleet::ServersChange {
        selection: select.selection(),
        decision,
        flags,
        lock_wait: lock.lock_wait(),
        wait,
    };
    super::fleet::run_servers(command, path, (topology, json), change)
}

/// Runs `vezasock maint`.
pub fn run_maint(args: &MaintArgs) -> ExitCode {
    if let Some(fleet) = &args.fleet.fleet {
        let flags = (args.kill_sessions, args.force);
        let how = (&args.select, &args.lock, &args.topology, args.json);
        return on_fleet("maint", fleet, how, AdminDecision::Maint, flags, None);
    }
    set_state(
        "maint",
        &args.select,
        &args.lock,
        &args.topology,
        AdminDecision::Maint,
        (args.kill_sessions, args.force),
        args.json,
    )
}

/// Runs `vezasock ready`.
pub fn run_ready(args: &ReadyArgs) -> ExitCode {
    if let Some(fleet) = &args.fleet.fleet {
        let how = (&args.select, &args.lock, &args.topology, args.json);
        return on_fleet(
            "ready",
            fleet,
            how,
            AdminDecision::Ready,
            (false, false),
            None,
        );
    }
    set_state(
        "ready",
        &args.select,
        &args.lock,
        &args.topology,
        AdminDecision::Ready,
        (false, false),
        args.json,
    )
}

fn set_state(
    name: &str,
    select: &SelectArgs,
    lock: &LockArgs,
    topology: &TopologyArgs,
    decision: AdminDecision,
    (kill_sessions, force): (bool, bool),
    json: bool,
) -> ExitCode {
    let (edge, selection, list) = match prepare(name, topology, select, json) {
        Ok(p) => p,
        Err(exit) => return exit.into(),
    };
    let rt = match runtime(name) {
        Ok(rt) => rt,
        Err(exit) => return exit.into(),
    };
    let result = rt.block_on(servers::set_state(
        &edge,
        &selection,
        &list,
        decision,
        kill_sessions,
        force,
        lock.wait(),
    ));
    after(&rt, &edge, name);
    finish::finish(name, json, result.map_err(Failed::from))
}

/// Runs `vezasock drain`.
pub fn run_drain(args: &DrainArgs) -> ExitCode {
    if let Some(fleet) = &args.fleet.fleet {
        let wait = args.wait.map(|limit| crate::edge::fleet::DrainWait {
            limit,
            then: match args.then {
                ThenArg::Maint => Some((AdminDecision::Maint, false)),
                ThenArg::Kill => Some((AdminDecision::Maint, true)),
                ThenArg::Leave => None,
            },
            busy_fails: true,
        });
        let how = (&args.select, &args.lock, &args.topology, args.json);
        return on_fleet(
            "drain",
            fleet,
            how,
            AdminDecision::Drain,
            (false, args.force),
            wait,
        );
    }
    drain(args)
}

fn drain(args: &DrainArgs) -> ExitCode {
    let (edge, selection, list) = match prepare("drain", &args.topology, &args.select, args.json) {
        Ok(p) => p,
        Err(exit) => return exit.into(),
    };
    let rt = match runtime("drain") {
        Ok(rt) => rt,
        Err(exit) => return exit.into(),
    };
    let then = match args.then {
        ThenArg::Maint => Then::Maint,
        ThenArg::Kill => Then::Kill,
        ThenArg::Leave => Then::Leave,
    };
    let result = rt.block_on(servers::drain(
        &edge,
        &selection,
        &list,
        servers::DrainHow {
            deadline: args.wait,
            then,
            force: args.force,
        },
        args.lock.wait(),
    ));
    after(&rt, &edge, "drain");
    finish::finish("drain", args.json, result.map_err(Failed::from))
}
