//! `--fleet FILE` (or `VEZASOCK_FLEET`): `switch`, `status` and `apply` over every edge of a
//! fleet at once ([`crate::edge::fleet`]). Loading the fleet and reaching its edges is here;
//! what each command does is in the edge layer.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde::Serialize;

use super::after::{after_edges, Served};
use super::args::TopologyArgs;
use super::common::runtime;
use super::exit::Exit;
use super::finish::{finish, said, Failed, Report, WithOk};
use super::watch::{failed, repeat, Watch};
use crate::edge::deploy::switch::{LockWait, SwitchRequest};
use crate::edge::fleet::agent;
use crate::edge::fleet::member::{Agent, Link, Member};
use crate::edge::fleet::protocol::EdgeSummary;
use crate::edge::fleet::{self, FleetApply, FleetChange, FleetReport, FleetStatus};
use crate::edge::servers::Selection;
use crate::edge::{Edge, EdgeError};
use crate::state::AdminDecision;
use crate::topology::fleet::{Fleet, Reach};
use crate::topology::{Color, Topology};

// The fleet flag (plain comment: see `cli::Command`).
#[derive(Debug, Clone, Args, Default)]
pub struct FleetArgs {
    /// A fleet file naming several edges: the command runs on every edge as one transaction
    /// (docs/fleet.md).
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
            // One webhook hears every local edge; the path flags are not applied (each
            // edge's topology file names its own sockets and files).
            Some(path) => Topology::load(path).map(|mut t| {
                topology.override_notify(&mut t);
                t
            }),
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
                scope.spawn(move || {
                    crate::edge::progress::quiet_on_this_thread();
                    agent::serve_on_this_thread(edge, server);
                });
                out.push(Member::new(&e.name, Link::Local(link)));
            }
            None => match Agent::start(&e.name, &e.reach, e.config.as_deref()) {
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

/// Runs `run` over every edge of the fleet at `path` (the conversations opened, then closed);
/// `Err`: the fleet could not be opened (said on stderr).
pub(super) fn on_fleet<T>(
    command: &str,
    path: &Path,
    topology: &TopologyArgs,
    run: impl AsyncFnOnce(&Fleet, &mut [Member]) -> T,
) -> Result<T, Exit> {
    let (fleet, edges, rt) = open(command, path, topology)?;
    std::thread::scope(|scope| {
        rt.block_on(async {
            let mut members = members(command, &fleet, &edges, scope)?;
            let out = run(&fleet, &mut members).await;
            close(members).await;
            Ok(out)
        })
    })
}

/// What a fleet flip's failure JSON carries: every edge's line, when the fleet got that far.
#[derive(Serialize)]
struct FlipBeside {
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<FleetReport>,
}

impl FlipBeside {
    fn of(error: &EdgeError) -> FlipBeside {
        let report = match error {
            EdgeError::Fleet(f) => match &f.outcome {
                fleet::Outcome::Switch(r) => Some(r.clone()),
                fleet::Outcome::Change(_) => None,
            },
            _ => None,
        };
        FlipBeside { report }
    }
}

impl Report for FleetReport {
    type Json<'a> = WithOk<'a, FleetReport>;

    fn json(&self) -> WithOk<'_, FleetReport> {
        WithOk::of(self)
    }

    fn human(&self) -> String {
        let mut text = String::new();
        for e in &self.edges {
            text.push_str(&format!(
                "{:<16} {:<9} {:>9.3} ms  {}\n",
                e.edge, e.result, e.ms, e.detail
            ));
        }
        text.push_str(&flip_outcome(self));
        if let Some(b) = &self.bake {
            text.push_str(&format!(
                "bake of {} on {} edge(s) for {:.1} s: {}: {:?}\n",
                b.color,
                b.edges.len(),
                b.watched_ms / 1e3,
                crate::edge::analysis::describe(b.window, b.limits),
                b.verdict
            ));
        }
        for note in &self.notes {
            text.push_str(&format!("{note}\n"));
        }
        if let Some(drain) = &self.drain_old {
            for e in &drain.edges {
                text.push_str(&format!(
                    "drain-old {:<16} {}: {}\n",
                    e.edge, e.result, e.detail
                ));
            }
        }
        text
    }
}

/// The line after the edges of a fleet flip.
fn flip_outcome(r: &FleetReport) -> String {
    let (env, to, n) = (&r.env, r.to, r.edges.len());
    if r.dry_run && r.edges.iter().all(|e| e.result == "already") {
        format!("dry run: {env} is already {to} on every edge: nothing would change\n")
    } else if r.dry_run {
        format!(
            "dry run: {env} would switch to {to} on {n} edge(s): prepared on every edge \
             (map version staged, pending file, transaction.json), then committed on every \
             edge back to back, read back and recorded; nothing changed\n"
        )
    } else {
        format!(
            "{env} switched to {to} on {n} edge(s) (no reload); commit skew {:.3} ms; total \
             {:.3} ms\n",
            r.commit_skew_ms, r.total_ms
        )
    }
}

/// `vezasock switch --fleet F ENV COLOR`: `req` from the flags, `ttl` how long each edge's
/// prepared transaction holds it if this process dies.
pub fn run_switch(
    path: &Path,
    topology: &TopologyArgs,
    json: bool,
    req: SwitchRequest,
    ttl: Duration,
) -> ExitCode {
    if req.preview_via.is_some() {
        // One address cannot be every edge's listener: each edge checks through its own.
        eprintln!(
            "vezasock switch: --preview-via (or VEZASOCK_PREVIEW_VIA) names one edge's \
             listener; with --fleet each edge checks through its own listen.http"
        );
        return Exit::BadInput.into();
    }
    run_flip("switch", path, topology, json, req, ttl, None)
}

/// `vezasock rollback --fleet F ENV [--to SHA]`: every edge's history must name the same deploy
/// to go back to; then a fleet switch to it, recorded as a rollback.
pub fn run_rollback(
    path: &Path,
    topology: &TopologyArgs,
    json: bool,
    req: SwitchRequest,
    to: Option<String>,
) -> ExitCode {
    let ttl = crate::edge::flip::transaction::DEFAULT_TTL;
    run_flip("rollback", path, topology, json, req, ttl, Some(to))
}

/// A fleet switch (`rollback`: `Some(to)`, the color and sha come from the edges' histories).
fn run_flip(
    command: &str,
    path: &Path,
    topology: &TopologyArgs,
    json: bool,
    mut req: SwitchRequest,
    ttl: Duration,
    rollback: Option<Option<String>>,
) -> ExitCode {
    let result = on_fleet(command, path, topology, async |fleet, members| {
        if let Some(to) = &rollback {
            let (color, sha) = fleet::rollback_target(members, &req.env, to.as_deref()).await?;
            req.color = color;
            req.sha = sha;
            req.action = crate::state::Action::Rollback;
        }
        fleet::switch(fleet, members, &req, ttl).await
    });
    if let Ok(flipped) = &result {
        after_flip(command, path, topology, flipped.as_ref().ok());
    }
    match result {
        Ok(result) => finish(
            command,
            json,
            result.map_err(|error| Failed {
                beside: FlipBeside::of(&error),
                error,
            }),
        ),
        Err(exit) => exit.into(),
    }
}

/// The end of a fleet flip: the flip's commit skew recorded in each local edge's state dir
/// when it switched something, then [`after_fleet`].
fn after_flip(command: &str, path: &Path, topology: &TopologyArgs, report: Option<&FleetReport>) {
    let switched = report.filter(|r| !r.dry_run && r.edges.iter().any(|e| e.result == "switched"));
    if let Some(r) = switched {
        record_skew(command, path, topology, r);
    }
    after_fleet(command, path, topology);
}

/// The fleet commit skew of flip `r` in each local edge's state dir (a failure is a warning).
fn record_skew(command: &str, path: &Path, topology: &TopologyArgs, r: &FleetReport) {
    let Ok(edges) = load(command, path).and_then(|f| local_edges(command, &f, topology)) else {
        return;
    };
    let name = path
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    for edge in edges.iter().flatten() {
        let skew = crate::edge::metrics::fleet::FleetSkew {
            fleet: name.clone(),
            env: r.env.clone(),
            commit_skew_seconds: r.commit_skew_ms / 1e3,
            at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64),
        };
        if let Err(e) = crate::edge::metrics::fleet::record(&edge.state, skew) {
            eprintln!(
                "vezasock {command}: warning: edge {}: the fleet commit skew was not recorded: {e}",
                edge.topology.name
            );
        }
    }
}

/// The end of every fleet command that changes edges, and of `status --fleet`, as
/// `cli::after::after` is an edge command's: each local edge's events posted and its metrics
/// textfile rewritten (when it has a webhook, a textfile). An edge over ssh does both itself
/// when its `edge-agent` ends (`cli::agent`). A failure is a warning, never the exit code.
pub(super) fn after_fleet(command: &str, path: &Path, topology: &TopologyArgs) {
    let (Ok(fleet), Ok(rt)) = (load(command, path), runtime(command)) else {
        return;
    };
    let Ok(edges) = local_edges(command, &fleet, topology) else {
        return;
    };
    let served: Vec<Served> = fleet
        .edges
        .iter()
        .zip(&edges)
        .filter_map(|(e, edge)| {
            edge.as_ref().map(|edge| Served {
                edge,
                fleet_name: Some(e.name.as_str()),
            })
        })
        .collect();
    after_edges(&rt, command, &served);
}

impl Report for FleetStatus {
    type Json<'a> = &'a FleetStatus;

    fn json(&self) -> &FleetStatus {
        self
    }

    fn human(&self) -> String {
        human_status(self)
    }

    fn exit(&self) -> Exit {
        FleetStatus::exit(self)
    }
}

/// `vezasock status --fleet F`.
pub fn run_status(path: &Path, topology: &TopologyArgs, json: bool) -> ExitCode {
    let result = on_fleet("status", path, topology, async |fleet, members| {
        fleet::status(fleet, members).await
    });
    if result.is_ok() {
        after_fleet("status", path, topology);
    }
    match result {
        // A status that could not be read prints no JSON (as before): the error on stderr.
        Ok(Err(e)) => said("status", &e).into(),
        Ok(result) => finish("status", json, result.map_err(Failed::from)),
        Err(exit) => exit.into(),
    }
}

/// `vezasock status --fleet F --watch`: the fleet's status every interval ([`super::watch`]),
/// the fleet opened afresh each time (an edge not reached is shown so and the watch goes on;
/// one back is reached again). The fleet file and the edges' topology files are checked once
/// first: a bad one is exit 2.
pub fn watch_status(path: &Path, topology: &TopologyArgs, how: &Watch<'_>) -> ExitCode {
    if let Err(exit) = load("status", path).and_then(|f| local_edges("status", &f, topology)) {
        return exit.into();
    }
    repeat(how, |json| {
        let round = on_fleet("status", path, topology, async |fleet, members| {
            fleet::status(fleet, members).await
        });
        match (round, json) {
            (Ok(Ok(s)), true) => serde_json::to_string(&s).unwrap_or_default() + "\n",
            (Ok(Ok(s)), false) => watched_status(&s),
            (Ok(Err(e)), json) => failed(json, &e.to_string()),
            (Err(exit), json) => failed(
                json,
                &format!("the fleet was not read (exit {})", exit as u8),
            ),
        }
    })
}

/// One round of the fleet watch: how many edges answered, a loud line when they disagree,
/// then the fleet status as `status --fleet` prints it.
fn watched_status(s: &FleetStatus) -> String {
    let reached = s.edges.iter().filter(|e| e.summary.is_some()).count();
    let mut out = format!("{reached} of {} edge(s) reached\n", s.edges.len());
    if !s.drift.is_empty() {
        out.push_str(&format!(
            "!!! EDGES DISAGREE on {} env(s) !!!\n",
            s.drift.len()
        ));
    }
    out.push_str(&human_status(s));
    out
}

fn human_status(s: &FleetStatus) -> String {
    let mut out = String::new();
    for line in s.drift.iter().chain(&s.canary_drift) {
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
                out.push_str(&edge_status(&e.edge, sum));
                out.push_str(&canaries(e.status.as_ref()));
            }
            (None, Some(err)) => out.push_str(&format!("edge {:<16} NOT REACHED: {err}\n", e.edge)),
            (None, None) => {}
        }
    }
    if s.drift.is_empty() && s.canary_drift.is_empty() && s.open_transactions.is_empty() {
        out.push_str("every edge agrees on every env's color\n");
    }
    out
}

/// An edge's canaries in progress, from its status report: `  canary staging: 10 % on green`
/// (`, INTERRUPTED` when its process is gone).
fn canaries(status: Option<&serde_json::Value>) -> String {
    let list = status
        .and_then(|s| s.get("canaries"))
        .and_then(serde_json::Value::as_array);
    let mut out = String::new();
    for c in list.into_iter().flatten() {
        let word = |k: &str| c.get(k).and_then(serde_json::Value::as_str).unwrap_or("?");
        let percent = c
            .get("percent")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        let running = c.get("running").and_then(serde_json::Value::as_bool) == Some(true);
        out.push_str(&format!(
            "  canary {}: {percent} % on {}{}\n",
            word("env"),
            word("color"),
            if running { "" } else { ", INTERRUPTED" }
        ));
    }
    out
}

/// One reached edge in `status --fleet`: its colors, servers and problems.
fn edge_status(edge: &str, sum: &EdgeSummary) -> String {
    let w = |c: Option<Color>| c.map_or("?", |c| c.as_str());
    let colors: Vec<String> = sum
        .envs
        .iter()
        .map(|c| {
            if c.live == c.recorded {
                format!("{}={}", c.env, w(c.live))
            } else {
                format!("{}={} (recorded {})", c.env, w(c.live), w(c.recorded))
            }
        })
        .collect();
    let mut out = format!("edge {edge:<16} {}\n", colors.join("  "));
    for c in &sum.envs {
        out.push_str(&format!("  {:<12} {}\n", c.env, c.servers.join(" · ")));
    }
    for c in &sum.canaries {
        let state = if c.running { "running" } else { "INTERRUPTED" };
        out.push_str(&format!(
            "  canary {}: {} % on {} ({state})\n",
            c.env, c.percent, c.color
        ));
    }
    for p in &sum.problems {
        out.push_str(&format!("  {p}\n"));
    }
    out
}

impl Report for FleetApply {
    type Json<'a> = &'a FleetApply;

    fn json(&self) -> &FleetApply {
        self
    }

    fn human(&self) -> String {
        let mut text = String::new();
        for r in &self.repaired {
            text.push_str(&format!("edge {:<16} {}: {}\n", r.edge, r.result, r.detail));
        }
        for r in &self.resolved {
            text.push_str(&format!("resolved: {r}\n"));
        }
        for r in &self.unresolved {
            text.push_str(&format!("UNRESOLVED: {r}\n"));
        }
        text
    }

    /// 6 when an env's edges still disagree; else 3 when an edge could not be repaired.
    fn exit(&self) -> Exit {
        if !self.unresolved.is_empty() {
            Exit::Drift
        } else if self.repaired.iter().any(|r| r.result != "repaired") {
            Exit::Unreachable
        } else {
            Exit::Ok
        }
    }
}

/// `vezasock apply --fleet F`: every edge repaired to its recorded colors (open transactions
/// aborted), then each env whose edges still disagree flipped to the color the fleet journal
/// names.
pub fn run_apply(path: &Path, topology: &TopologyArgs, json: bool) -> ExitCode {
    let result = on_fleet("apply", path, topology, async |fleet, members| {
        fleet::apply(fleet, members).await
    });
    if result.is_ok() {
        after_fleet("apply", path, topology);
    }
    match result {
        // The failure of a fleet apply prints no JSON (as before): the error on stderr.
        Ok(Err(e)) => said("apply", &e).into(),
        Ok(result) => finish("apply", json, result.map_err(Failed::from)),
        Err(exit) => exit.into(),
    }
}

/// A server change on a fleet, as the flags asked it.
pub struct ServersChange {
    pub selection: Selection,
    pub decision: AdminDecision,
    /// `--kill-sessions`, `--force`.
    pub flags: (bool, bool),
    pub lock_wait: LockWait,
    pub wait: Option<fleet::DrainWait>,
}

/// What a fleet server change's failure JSON carries: every edge's line.
#[derive(Serialize)]
struct ChangeBeside {
    edges: Vec<fleet::ChangeOutcome>,
}

impl ChangeBeside {
    fn of(error: &EdgeError) -> ChangeBeside {
        let edges = match error {
            EdgeError::Fleet(f) => match &f.outcome {
                fleet::Outcome::Change(c) => c.edges.clone(),
                fleet::Outcome::Switch(_) => Vec::new(),
            },
            _ => Vec::new(),
        };
        ChangeBeside { edges }
    }
}

impl Report for FleetChange {
    type Json<'a> = WithOk<'a, FleetChange>;

    fn json(&self) -> WithOk<'_, FleetChange> {
        WithOk::of(self)
    }

    fn human(&self) -> String {
        let mut text = String::new();
        for e in &self.edges {
            text.push_str(&format!("edge {:<16} {}: {}\n", e.edge, e.result, e.detail));
        }
        text.push_str(&format!(
            "{} on {} edge(s), written through on each\n",
            self.action.as_str(),
            self.edges.len()
        ));
        text
    }
}

/// `vezasock drain|maint|ready --fleet F …`: the server change on every edge or on none.
pub fn run_servers(
    command: &str,
    path: &Path,
    (topology, json): (&TopologyArgs, bool),
    change: ServersChange,
) -> ExitCode {
    let result = on_fleet(command, path, topology, async |_, members| {
        fleet::servers_change(
            members,
            &change.selection,
            change.decision,
            change.flags,
            change.lock_wait,
            change.wait,
        )
        .await
    });
    if result.is_ok() {
        after_fleet(command, path, topology);
    }
    match result {
        Ok(result) => finish(
            command,
            json,
            result.map_err(|error| Failed {
                beside: ChangeBeside::of(&error),
                error,
            }),
        ),
        Err(exit) => exit.into(),
    }
}

impl Report for fleet::preview::FleetPreview {
    type Json<'a> = WithOk<'a, fleet::preview::FleetPreview>;

    fn json(&self) -> WithOk<'_, fleet::preview::FleetPreview> {
        WithOk::of(self)
    }

    /// As `preview` on one edge: the token alone on the first line (for scripts).
    fn human(&self) -> String {
        let n = self.edges.len();
        let mut text = match (&self.token, self.color) {
            (Some(token), Some(color)) => format!(
                "{token}\nrequests to {} with `{}: {token}` (or the cookie {}={token}) reach \
                 {color} through every edge ({n})\n",
                self.env, self.header, self.cookie
            ),
            _ if self.revoked > 0 => {
                format!(
                    "the preview token of {} was revoked on every edge ({n})\n",
                    self.env
                )
            }
            _ => format!(
                "{} has no preview token on any edge: nothing to revoke\n",
                self.env
            ),
        };
        for e in &self.edges {
            text.push_str(&format!("edge {:<16} {}: {}\n", e.edge, e.result, e.detail));
        }
        text
    }
}

/// `vezasock preview --fleet F ENV COLOR` (or `--revoke`): one token on every edge.
pub fn run_preview(
    path: &Path,
    (topology, json): (&TopologyArgs, bool),
    env: &str,
    color: Option<Color>,
    lock_wait: LockWait,
) -> ExitCode {
    let who = crate::state::who();
    let result = on_fleet("preview", path, topology, async |_, members| {
        fleet::preview::preview(members, env, color, lock_wait, &who).await
    });
    if result.is_ok() {
        after_fleet("preview", path, topology);
    }
    match result {
        Ok(result) => finish("preview", json, result.map_err(Failed::from)),
        Err(exit) => exit.into(),
    }
}
