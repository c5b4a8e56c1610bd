//! The `vezasock demo` scenario: a real local edge (the embedded veza topology on loopback
//! backends and a real HAProxy), a bounded load of keep-alive and new-connection clients, a
//! series of flips of staging and prod through the same `edge::switch` code CI calls, a drain,
//! and a summary proving the point: no failed request, no reload, the same worker throughout.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::edge::LocalEdge;
use super::find::{find_haproxy, Found};
use super::install;
use super::load::{Load, LoadReport, LoadSpec};
use crate::edge::deploy::switch::{switch, SwitchRequest};
use crate::edge::servers::{drain, resolve, DrainHow, Selection, Then};
use crate::edge::{Edge, EdgeError};
use crate::runtime::command::servers::OpState;
use crate::runtime::master::show_proc;
use crate::state::Wait;
use crate::topology::{Color, Topology};

/// What to run.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Number of flips (alternating staging and prod).
    pub flips: usize,
    /// Upper bound on the whole run's load.
    pub duration: Duration,
    /// Keep-alive and new-connection load clients (each).
    pub clients: usize,
    /// Keep the edge's files here instead of a temp dir that is removed at the end.
    pub dir: Option<PathBuf>,
    /// Print progress lines (human mode).
    pub verbose: bool,
    /// Run the install script when no HAProxy is found (`--no-install` turns it off).
    pub install: bool,
}

/// Per-flip latency, milliseconds (the whole `switch`: lock, gate, write-through, flip,
/// read-back, record).
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// The demo's result.
#[derive(Debug, Clone, Serialize)]
pub struct DemoSummary {
    pub haproxy: String,
    pub requests_sent: u64,
    pub failed_requests: u64,
    pub keepalive: super::load::Counts,
    pub new_connection: super::load::Counts,
    pub failures: Vec<String>,
    pub flips: usize,
    pub reloads: u32,
    pub flip_latency: Latency,
    pub worker_pid_before: u32,
    pub worker_pid_after: u32,
    pub final_colors: BTreeMap<String, String>,
    pub drained: Vec<String>,
}

impl DemoSummary {
    /// The demo proved its point.
    pub fn ok(&self) -> bool {
        self.failed_requests == 0
            && self.reloads == 0
            && self.worker_pid_before == self.worker_pid_after
    }
}

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{0}")]
    NoHaproxy(String),
    #[error("cannot start the local edge: {0}")]
    Start(#[from] super::edge::LocalEdgeError),
    #[error(transparent)]
    Edge(#[from] EdgeError),
    #[error("{0}")]
    Other(String),
}

/// Runs the whole scenario. Every process it started is gone when it returns (or when the
/// future is dropped, e.g. on Ctrl-C): the edge and the load stop on drop.
pub async fn run(opts: &DemoOptions, say: &mut dyn FnMut(&str)) -> Result<DemoSummary, DemoError> {
    let haproxy = haproxy(opts).await?;
    say(&format!(
        "HAProxy: {} ({})",
        haproxy.version,
        haproxy.path.display()
    ));
    let topology = Topology::embedded_default().map_err(|e| DemoError::Other(e.to_string()))?;
    let tmp;
    let dir = match &opts.dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::Builder::new()
                .prefix("vezasock-demo-")
                .tempdir()
                .map_err(|e| DemoError::Other(format!("temp dir: {e}")))?;
            tmp.path().to_path_buf()
        }
    };
    let local = LocalEdge::start(&topology, &haproxy.path, &dir, &BTreeMap::new())?;
    say(&format!(
        "edge up: http://{} · {} backends on loopback · files in {}",
        local.http,
        local.servers.len(),
        dir.display()
    ));
    let edge = Edge::new(local.topology.clone());
    wait_all_up(&edge, Duration::from_secs(20)).await?;
    say("every server UP, health checks passed");

    let worker_pid_before = worker_pid(&edge).await?;
    let reloads_before = master_reloads(&edge).await?;
    let load = Load::start(&load_spec(&edge, local.http, opts));
    say(&format!(
        "load: {} keep-alive + {} new-connection clients",
        opts.clients, opts.clients
    ));
    let (colors, mut latencies) = flips(&edge, opts, say).await?;
    let drained = drain_old_colors(&edge, &colors, say).await;

    let load_report: LoadReport = load.stop();
    let worker_pid_after = worker_pid(&edge).await?;
    let reloads = master_reloads(&edge).await?.saturating_sub(reloads_before);
    drop(local);
    Ok(DemoSummary {
        haproxy: haproxy.version,
        requests_sent: load_report.sent(),
        failed_requests: load_report.failed(),
        keepalive: load_report.keepalive.clone(),
        new_connection: load_report.new_connection.clone(),
        failures: load_report.failures.clone(),
        flips: latencies.len(),
        reloads,
        flip_latency: latency(&mut latencies),
        worker_pid_before,
        worker_pid_after,
        final_colors: colors
            .iter()
            .map(|(e, c)| (e.clone(), c.as_str().to_string()))
            .collect(),
        drained,
    })
}

/// The HAProxy to run: found on this machine, or installed when `--install` allows it.
async fn haproxy(opts: &DemoOptions) -> Result<Found, DemoError> {
    let why = match find_haproxy() {
        Ok(found) => return Ok(found),
        Err(why) => why,
    };
    if !opts.install {
        return Err(DemoError::NoHaproxy(format!(
            "{why} (not installing: --no-install or VEZASOCK_NO_INSTALL is set)"
        )));
    }
    eprintln!("vezasock demo: {why}");
    eprintln!("vezasock demo: {}", install::plan_in_words());
    let installed = tokio::task::spawn_blocking(install::install)
        .await
        .map_err(|e| format!("the install task failed: {e}"))
        .and_then(|r| r)
        .map_err(|e| DemoError::NoHaproxy(format!("{why}; installing failed: {e}")))?;
    eprintln!(
        "vezasock demo: installed {} at {}",
        installed.version,
        installed.path.display()
    );
    Ok(installed)
}

/// The bounded load over every env and component, for the demo's duration (plus 5 s).
fn load_spec(edge: &Edge, http: std::net::SocketAddr, opts: &DemoOptions) -> LoadSpec {
    LoadSpec {
        edge: http,
        targets: targets(&edge.topology),
        keepalive_clients: opts.clients,
        new_connection_clients: opts.clients,
        max_duration: opts.duration + Duration::from_secs(5),
        max_requests_per_client: 1_000_000,
        pause: Duration::from_millis(2),
        timeout: Duration::from_secs(5),
    }
}

/// `opts.flips` switches spread over the duration, the colored envs in turn. Returns each
/// env's color at the end and each flip's milliseconds.
async fn flips(
    edge: &Edge,
    opts: &DemoOptions,
    say: &mut dyn FnMut(&str),
) -> Result<(BTreeMap<String, Color>, Vec<f64>), DemoError> {
    let envs: Vec<String> = edge
        .topology
        .envs
        .iter()
        .filter(|e| e.colored)
        .map(|e| e.name.clone())
        .collect();
    let started = Instant::now();
    let gap = opts
        .duration
        .checked_div(opts.flips.max(1) as u32 + 1)
        .unwrap_or_default();
    let mut latencies = Vec::with_capacity(opts.flips);
    let mut colors: BTreeMap<String, Color> =
        envs.iter().map(|e| (e.clone(), Color::Blue)).collect();
    for i in 0..opts.flips {
        tokio::time::sleep(gap.min(Duration::from_secs(5))).await;
        if started.elapsed() > opts.duration {
            say("duration reached: no more flips");
            break;
        }
        let Some(env) = envs.get(i % envs.len().max(1)) else {
            break;
        };
        let to = colors.get(env).copied().unwrap_or(Color::Blue).other();
        let mut req = SwitchRequest::new(env, to);
        req.sha = Some(format!("demo{i}"));
        req.who = "vezasock-demo".to_string();
        let report = switch(edge, &req, &mut |_| {}).await?;
        latencies.push(report.total_ms);
        colors.insert(env.clone(), to);
        say(&format!(
            "flip {:>2}: {env} {} → {} in {:.2} ms   ({})",
            i + 1,
            report.from.as_str(),
            to.as_str(),
            report.total_ms,
            colors
                .iter()
                .map(|(e, c)| format!("{e}={}", c.as_str()))
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    Ok((colors, latencies))
}

/// Drains the color each env just left: what an operator does before stopping old containers.
/// A failed drain is said and the demo goes on.
async fn drain_old_colors(
    edge: &Edge,
    colors: &BTreeMap<String, Color>,
    say: &mut dyn FnMut(&str),
) -> Vec<String> {
    let mut drained = Vec::new();
    for (env, color) in colors {
        let old = color.other();
        match drain_color(edge, env, old).await {
            Ok(n) => {
                drained.push(format!("{env} {}: {n} servers", old.as_str()));
                say(&format!("drained {env} {} ({n} servers)", old.as_str()));
            }
            Err(e) => say(&format!("drain {env} {}: {e}", old.as_str())),
        }
    }
    drained
}

/// Drains every server of `color` in `env` (waiting up to 30 s); returns how many.
async fn drain_color(edge: &Edge, env: &str, color: Color) -> Result<usize, EdgeError> {
    let selection = Selection::Env {
        env: env.to_string(),
        color: Some(color),
        component: None,
        server: None,
    };
    let servers = resolve(edge, &selection)?;
    drain(
        edge,
        &selection,
        &servers,
        DrainHow {
            deadline: None,
            then: Then::Leave,
            // The color each env just left is not live: the guard has nothing to say.
            force: false,
        },
        Wait::up_to(Duration::from_secs(30)),
    )
    .await?;
    Ok(servers.len())
}

/// One request per env × component, plus the externals, by Host header and path.
fn targets(topology: &Topology) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for env in topology.envs.iter().filter(|e| e.colored) {
        let Some(host) = env.hosts.first() else {
            continue;
        };
        for comp in &env.components {
            let path = topology
                .component(&comp.name)
                .and_then(|c| c.paths.first().cloned())
                .map_or_else(|| "/".to_string(), |p| format!("{p}/demo"));
            out.push((host.clone(), path));
        }
    }
    out
}

async fn wait_all_up(edge: &Edge, limit: Duration) -> Result<(), DemoError> {
    let deadline = Instant::now() + limit;
    loop {
        let mut session = edge.admin_session().await?;
        let state = session
            .show_servers_state(None)
            .await
            .map_err(EdgeError::from)?;
        let down: Vec<String> = state
            .rows
            .iter()
            // Up, and its health check passed (or it has none): what the switch gate asks for.
            .filter(|r| {
                r.op != OpState::Running
                    || (r.check_state & 0x02 != 0 && !matches!(r.check_result, 3 | 4))
            })
            .map(|r| format!("{}/{}", r.be_name, r.srv_name))
            .collect();
        if down.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(DemoError::Other(format!(
                "servers still down after {limit:?}: {}",
                down.join(", ")
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn worker_pid(edge: &Edge) -> Result<u32, DemoError> {
    let mut session = edge.admin_session().await?;
    let info = session.show_info().await.map_err(EdgeError::from)?;
    info.pid()
        .ok_or_else(|| DemoError::Other("show info has no Pid".to_string()))
}

async fn master_reloads(edge: &Edge) -> Result<u32, DemoError> {
    let procs = show_proc(&edge.master(), edge.timeouts)
        .await
        .map_err(EdgeError::from)?;
    Ok(procs.master.reloads)
}

fn latency(ms: &mut [f64]) -> Latency {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| {
        if ms.is_empty() {
            return 0.0;
        }
        let i = ((ms.len() as f64 - 1.0) * q).round() as usize;
        ms[i.min(ms.len() - 1)]
    };
    Latency {
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        max_ms: ms.last().copied().unwrap_or(0.0),
    }
}
