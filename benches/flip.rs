//! Side-by-side flip benchmark (not a test): three ways to flip the staging env of a real local
//! edge (the embedded veza topology on loopback backends, `demo::LocalEdge`), measured in one
//! run on the same machine and the same HAProxy version:
//!
//! - **vezasock**: the `vezasock switch staging <color>` binary, with the edge's paths in the
//!   environment (the same way CI calls it); also the in-process `edge::deploy::switch::switch` call;
//! - **reload flip** (what the seed pipeline did on every deploy): re-render config and maps with
//!   the new color, `haproxy -c -f candidate`, atomic rename into place, reload through the
//!   master CLI. Run twice: with the config as rendered (it has `option idle-close-on-response`)
//!   and with that line removed (the seed's config did not have it);
//! - **socat**: one `socat` process doing `set map <active-color.map> staging <color>` on the
//!   admin socket, with no check and no disk write.
//!
//! Measured, per HAProxy version:
//! 1. flip latency: command start → first response of the new color seen by a poller on a
//!    keep-alive connection (and the command's own wall time);
//! 2. failed requests during 50 flips under a load of keep-alive and new-connection clients;
//! 3. HAProxy processes and the sum of their RSS after 100 flips while 10 long streaming
//!    responses (`?stream=600`) stay open;
//! 4. what the rendered edge costs: keep-alive requests per second through the rendered config
//!    vs a minimal hand-written one (one frontend, one backend, the same server) on the same
//!    HAProxy and backends, and through the rendered config with its log lines, its cookie
//!    lines or its health checks taken out, and the minimal one plus the rendered frontend's
//!    rules, so each feature's cost is measured apart; with HAProxy's own CPU time per request
//!    in the same rounds (`flip/cpu.rs`).
//!
//! 5. a canary step (`VEZASOCK_BENCH_PARTS=canary`): the cost of one step in process (the map
//!    change written through and journalled, plus the analysis read of both colors' counters),
//!    and the time from the canary color starting to answer 500 to the canary back at 0 %.
//!
//! 6. a fleet flip (`VEZASOCK_BENCH_PARTS=fleet`, issue 14, `flip/fleet.rs`): `vezasock switch
//!    --fleet F` on 1, 3 and 10 local edges (one small HAProxy each, with its own topology file):
//!    the command's time, the coordinator's `commit_skew_ms` (`--json`), the skew seen from
//!    outside (first to last edge answering the new color, one keep-alive poller per edge), and
//!    the ratio to a single-edge `vezasock switch` measured in the same run; with a baseline
//!    binary, this build ÷ it per fleet size, pair by pair.
//!
//! 7. vezasock switch vs socat, paired (`VEZASOCK_BENCH_PARTS=paired`, `flip/paired.rs`): both
//!    flip the same edge back to back, `VEZASOCK_BENCH_FLIPS` pairs, the ratio taken per pair;
//!    seen on a keep-alive connection and on a new connection per request.
//!
//! 8. a fleet canary step (`VEZASOCK_BENCH_PARTS=fleet-canary`, issue 22,
//!    `flip/fleet_canary.rs`): `vezasock canary --fleet F` on part 6's fleet of 1, 3 and 10
//!    edges and `vezasock canary` on one edge, one step each per round: command start → the last
//!    edge's runtime map serving the step's percent, and the first-to-last edge skew.
//!
//! Prints a markdown report (stdout; progress on stderr) and writes `flip-latency.svg` into
//! `$VEZASOCK_BENCH_OUT` (default `docs/bench/`). Run: `cargo bench --bench flip`.
//! Knobs: `VEZASOCK_BENCH_VERSIONS=3.2` (comma list; default every version found),
//! `VEZASOCK_BENCH_FLIPS` (latency flips, default 30), `VEZASOCK_BENCH_LOAD_FLIPS` (50),
//! `VEZASOCK_BENCH_PROC_FLIPS` (100), `VEZASOCK_BENCH_PARTS=throughput` (comma list of
//! `latency`, `load`, `procs`, `throughput`, `canary`, `fleet`, `paired`, `fleet-canary`;
//! default all),
//! `VEZASOCK_BENCH_RPS_SECS` (seconds per throughput round, default 3),
//! `VEZASOCK_BENCH_BASELINE=PATH` (parts 6 and 7 also flip with that `vezasock` binary, e.g.
//! an older commit's, and give this build ÷ it pair by pair; `flip/baseline.rs`),
//! `VEZASOCK_BENCH_RPS_ROUNDS` (5), `VEZASOCK_BENCH_RPS_VARIANTS=rendered,minimal` (the
//! throughput configs, by key: `rendered`, `seed-log`, `no-log`, `no-cookie`,
//! `no-log-no-cookie`, `no-check`, `minimal-rules`, `minimal`; default all; with two, each round
//! is one back-to-back pair), `VEZASOCK_BENCH_FLEET_FLIPS` (flips per fleet size, 10) and
//! `VEZASOCK_BENCH_FLEET_CANARY_STEPS` (part 8's rounds, 5).

#[path = "../integration/support/mod.rs"]
#[allow(dead_code, unused_imports, unused_macros)]
mod support;

#[path = "flip/baseline.rs"]
mod baseline;
#[path = "flip/cpu.rs"]
mod cpu;
#[path = "flip/fleet.rs"]
mod fleet;
#[path = "flip/fleet_canary.rs"]
mod fleet_canary;
#[path = "flip/paired.rs"]
mod paired;

use baseline::Build;
use support::haproxy;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vezasock::demo::http::Conn;
use vezasock::demo::load::{Load, LoadReport, LoadSpec};
use vezasock::demo::LocalEdge;
use vezasock::edge::deploy::switch::{switch, SwitchRequest};
use vezasock::edge::Edge;
use vezasock::render::check::haproxy_check;
use vezasock::render::write::write_atomic;
use vezasock::render::{self};
use vezasock::runtime::command::servers::OpState;
use vezasock::runtime::master;
use vezasock::topology::{Color, Topology};

const HOST: &str = "staging.veza.fr";
/// The line the seed's config did not have (see the template's comment on it).
const IDLE_CLOSE: &str = "option idle-close-on-response";
/// Bound on waiting for the new color after one flip.
const SEE_LIMIT: Duration = Duration::from_secs(15);

/// One way to flip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    /// `vezasock switch` (the binary).
    Vezasock,
    /// `edge::deploy::switch::switch`, in process.
    Library,
    /// Re-render, `haproxy -c`, rename, master-CLI reload; config as rendered.
    Reload,
    /// The same, with `option idle-close-on-response` removed (the seed's config).
    ReloadSeed,
    /// One `socat` call doing `set map`, no checks.
    Socat,
    /// `vezasock switch` from another build (`VEZASOCK_BENCH_BASELINE`, e.g. an older commit's
    /// binary): part 7 flips with it beside this build, pair by pair.
    Baseline,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Vezasock => "vezasock switch (binary)",
            Method::Library => "vezasock library call",
            Method::Reload => "reload flip (config as rendered)",
            Method::ReloadSeed => "reload flip (seed config: no idle-close-on-response)",
            Method::Socat => "socat set map (no checks)",
            Method::Baseline => "vezasock switch (baseline binary)",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Method::Vezasock => "vezasock",
            Method::Library => "library",
            Method::Reload => "reload",
            Method::ReloadSeed => "reload (seed cfg)",
            Method::Socat => "socat",
            Method::Baseline => "baseline",
        }
    }
}

const ALL: [Method; 5] = [
    Method::Vezasock,
    Method::Library,
    Method::Reload,
    Method::ReloadSeed,
    Method::Socat,
];
/// Process counts: the library call is the same runtime path as the binary, and the seed-config
/// reload leaves the same processes as the rendered-config one (both reload).
const PROC_METHODS: [Method; 3] = [Method::Vezasock, Method::Reload, Method::Socat];
const ARRIVALS: [Arrival; 2] = [Arrival::Before, Arrival::EveryFlip];

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

// ------------------------------------------------------------------------------------------
// The edge under test.

/// A fresh local edge and everything needed to flip it each way.
struct Bench {
    local: LocalEdge,
    edge: Edge,
    rt: tokio::runtime::Runtime,
    /// The live staging color, as the last flip left it.
    color: Color,
    /// Where the last flip's time went (library steps, reload phases), milliseconds.
    phases: Vec<(String, f64)>,
    _dir: tempfile::TempDir,
}

impl Bench {
    fn start(h: &haproxy::Haproxy) -> Result<Bench, String> {
        let topology = Topology::embedded_default().map_err(|e| e.to_string())?;
        let dir = tempfile::Builder::new()
            .prefix("vezasock-bench-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let local = LocalEdge::start(&topology, &h.bin, dir.path(), &BTreeMap::new())
            .map_err(|e| format!("local edge: {e}"))?;
        let edge = Edge::new(local.topology.clone());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("tokio: {e}"))?;
        let bench = Bench {
            local,
            edge,
            rt,
            color: Color::Blue,
            phases: Vec::new(),
            _dir: dir,
        };
        bench.wait_healthy(Duration::from_secs(30))?;
        Ok(bench)
    }

    /// Every server running with its health check passed (the switch gate's rule).
    fn wait_healthy(&self, limit: Duration) -> Result<(), String> {
        wait_edge_healthy(&self.rt, &self.edge, limit)
    }

    /// Flips staging to `to` with `method`; returns when the method's command has returned.
    fn flip(&mut self, method: Method, to: Color) -> Result<(), String> {
        self.phases.clear();
        match method {
            Method::Vezasock => self.flip_binary(to),
            Method::Library => self.flip_library(to),
            Method::Reload => self.flip_reload(to, false),
            Method::ReloadSeed => self.flip_reload(to, true),
            Method::Socat => self.flip_socat(to),
            Method::Baseline => self.flip_baseline(to),
        }?;
        self.color = to;
        Ok(())
    }

    fn flip_binary(&self, to: Color) -> Result<(), String> {
        self.flip_build(Build::This, to)
    }

    fn flip_baseline(&self, to: Color) -> Result<(), String> {
        let program = baseline::program().ok_or("VEZASOCK_BENCH_BASELINE is not set")?;
        self.flip_build(Build::Baseline(&program), to)
    }

    /// `vezasock switch staging <to>` of `build`, the edge's paths in the environment.
    fn flip_build(&self, build: Build, to: Color) -> Result<(), String> {
        let out = build
            .command(&["switch", "staging", to.as_str()])
            .edge_paths(&self.local)
            .who("bench")
            .run();
        if out.code == Some(0) {
            Ok(())
        } else {
            Err(format!(
                "{} switch staging {to} exited {:?}: {}",
                build.name(),
                out.code,
                out.err.trim()
            ))
        }
    }

    fn flip_library(&mut self, to: Color) -> Result<(), String> {
        let mut req = SwitchRequest::new("staging", to);
        req.who = "bench".to_string();
        let report = self
            .rt
            .block_on(switch(&self.edge, &req, &mut |_| {}))
            .map_err(|e| format!("library switch: {e}"))?;
        self.phases = report
            .steps
            .iter()
            .map(|s| (s.name.to_string(), s.ms))
            .collect();
        Ok(())
    }

    /// What the seed pipeline did: render everything, check the candidate, rename, reload.
    fn flip_reload(&mut self, to: Color, seed_config: bool) -> Result<(), String> {
        let mut phase = Instant::now();
        let mut phases = Vec::new();
        let mut done = |name: &str| {
            phases.push((name.to_string(), ms(phase.elapsed())));
            phase = Instant::now();
        };
        let colors = BTreeMap::from([
            ("staging".to_string(), to),
            ("prod".to_string(), Color::Blue),
        ]);
        let rendered =
            render::render(&self.edge.topology, &colors).map_err(|e| format!("render: {e}"))?;
        let config = if seed_config {
            without_idle_close(&rendered.config)?
        } else {
            rendered.config.clone()
        };
        done("render");
        let p = &self.edge.topology.paths;
        write_atomic(&p.hosts_map(), rendered.hosts_map.as_bytes())
            .map_err(|e| format!("write hosts.map: {e}"))?;
        write_atomic(&p.active_color_map(), rendered.active_color_map.as_bytes())
            .map_err(|e| format!("write active-color.map: {e}"))?;
        let candidate = p.config.with_extension("cfg.candidate");
        write_atomic(&candidate, config.as_bytes())
            .map_err(|e| format!("write the candidate: {e}"))?;
        done("write maps + candidate");
        let check = haproxy_check(&p.haproxy, &candidate)?;
        if !check.valid {
            return Err(format!(
                "haproxy -c refused the candidate: {}",
                check.output
            ));
        }
        done("haproxy -c");
        std::fs::rename(&candidate, &p.config).map_err(|e| format!("rename: {e}"))?;
        done("rename");
        self.rt
            .block_on(master::reload(&self.edge.master(), self.edge.timeouts))
            .map_err(|e| format!("reload: {e}"))?;
        done("master CLI reload, confirmed");
        self.phases = phases;
        Ok(())
    }

    fn flip_socat(&self, to: Color) -> Result<(), String> {
        let p = &self.edge.topology.paths;
        let line = format!(
            "set map {} staging {}\n",
            p.active_color_map().display(),
            to.as_str()
        );
        let mut child = Process::new("socat")
            .arg("stdio")
            .arg(format!("unix-connect:{}", p.admin_socket.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("run socat: {e}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(line.as_bytes())
                .map_err(|e| format!("socat stdin: {e}"))?;
        }
        let status = child.wait().map_err(|e| format!("socat: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("socat exited {status}"))
        }
    }

    /// The seed-config variant starts from the seed's config: one reload onto it, unmeasured.
    fn prepare(&mut self, method: Method) -> Result<(), String> {
        if method == Method::ReloadSeed {
            self.flip_reload(self.color, true)?;
            self.wait_healthy(Duration::from_secs(30))?;
        }
        Ok(())
    }
}

/// Every server of `edge` running with its health check passed (the switch gate's rule).
fn wait_edge_healthy(
    rt: &tokio::runtime::Runtime,
    edge: &Edge,
    limit: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    rt.block_on(async {
        loop {
            let mut down = Vec::new();
            match edge.admin_session().await {
                Ok(mut s) => match s.show_servers_state(None).await {
                    Ok(state) => {
                        for r in &state.rows {
                            if r.op != OpState::Running
                                || (r.check_state & 0x02 != 0 && !matches!(r.check_result, 3 | 4))
                            {
                                down.push(format!("{}/{}", r.be_name, r.srv_name));
                            }
                        }
                    }
                    Err(e) => down.push(e.to_string()),
                },
                Err(e) => down.push(e.to_string()),
            }
            if down.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("not healthy after {limit:?}: {}", down.join(", ")));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

fn without_idle_close(config: &str) -> Result<String, String> {
    if !config.lines().any(|l| l.trim() == IDLE_CLOSE) {
        return Err(format!(
            "the rendered config has no `{IDLE_CLOSE}` line to remove"
        ));
    }
    let mut out = String::with_capacity(config.len());
    for line in config.lines().filter(|l| l.trim() != IDLE_CLOSE) {
        out.push_str(line);
        out.push('\n');
    }
    Ok(out)
}

// ------------------------------------------------------------------------------------------
// 1. Flip latency.

/// A thread that, when asked, hammers `staging.veza.fr/` until the answer names the wanted
/// color, and reports when it first did: on one keep-alive connection, or (`fresh`) on a new
/// connection per request, as a user arriving after the flip.
struct Poller {
    ask: mpsc::Sender<(Color, Instant)>,
    seen: mpsc::Receiver<Result<Duration, String>>,
    handle: JoinHandle<()>,
}

impl Poller {
    fn start(addr: SocketAddr) -> Poller {
        Poller::spawn(addr, false)
    }

    fn spawn(addr: SocketAddr, fresh: bool) -> Poller {
        let (ask, asks) = mpsc::channel::<(Color, Instant)>();
        let (tell, seen) = mpsc::channel();
        let handle = std::thread::spawn(move || {
            let timeout = Duration::from_secs(2);
            let mut conn = Conn::new(addr, timeout);
            let mut get = || match fresh {
                true => vezasock::demo::http::get(addr, HOST, "/", timeout),
                false => conn.get(HOST, "/"),
            };
            while let Ok((color, start)) = asks.recv() {
                let want = format!("staging web {}", color.as_str());
                let deadline = start + SEE_LIMIT;
                let mut last = String::from("no answer");
                let result = loop {
                    if Instant::now() > deadline {
                        break Err(format!(
                            "{color} never answered within {SEE_LIMIT:?} (last: {last})"
                        ));
                    }
                    match get() {
                        Ok(a) if a.status == 200 && a.body == want => break Ok(start.elapsed()),
                        Ok(a) => last = format!("{} {:?}", a.status, a.body),
                        // A reload may close the connection; reconnect without spinning.
                        Err(e) => {
                            last = e.to_string();
                            std::thread::sleep(Duration::from_micros(200));
                        }
                    }
                };
                if tell.send(result).is_err() {
                    return;
                }
            }
        });
        Poller { ask, seen, handle }
    }

    fn stop(self) {
        drop(self.ask);
        let _ = self.handle.join();
    }
}

/// Latency samples of one method, milliseconds.
#[derive(Debug, Clone, Default)]
struct Latency {
    /// Start → first answer of the new color.
    seen: Vec<f64>,
    /// Start → the command returned.
    command: Vec<f64>,
    /// Named parts of the time (phases of each flip, fixed costs), milliseconds per sample.
    parts: Vec<(String, Vec<f64>)>,
}

impl Latency {
    fn add_part(&mut self, name: &str, value: f64) {
        match self.parts.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => v.push(value),
            None => self.parts.push((name.to_string(), vec![value])),
        }
    }
}

fn measure_latency(b: &mut Bench, method: Method, flips: usize) -> Result<Latency, String> {
    b.prepare(method)?;
    let poller = Poller::start(b.local.http);
    let mut out = Latency::default();
    let result = (|| {
        for _ in 0..flips {
            let to = b.color.other();
            let start = Instant::now();
            poller
                .ask
                .send((to, start))
                .map_err(|_| "the poller stopped".to_string())?;
            b.flip(method, to)?;
            let command = start.elapsed();
            let seen = poller
                .seen
                .recv_timeout(SEE_LIMIT + Duration::from_secs(5))
                .map_err(|_| "the poller did not answer".to_string())??;
            out.seen.push(ms(seen));
            out.command.push(ms(command));
            for (name, v) in &b.phases {
                out.add_part(name, *v);
            }
        }
        if method == Method::Vezasock {
            // The binary's fixed costs: a process that only starts and exits, and a switch
            // to the color already live (topology, lock, connect, read; no disk write).
            for _ in 0..flips {
                let start = Instant::now();
                let status = Process::new(env!("CARGO_BIN_EXE_vezasock"))
                    .arg("--version")
                    .stdout(Stdio::null())
                    .status()
                    .map_err(|e| format!("vezasock --version: {e}"))?;
                if !status.success() {
                    return Err(format!("vezasock --version exited {status}"));
                }
                out.add_part(
                    "`vezasock --version` (process start and exit)",
                    ms(start.elapsed()),
                );
                let start = Instant::now();
                b.flip_binary(b.color)?;
                out.add_part(
                    "`vezasock switch` to the live color (no-op: topology, lock, connect, read)",
                    ms(start.elapsed()),
                );
            }
        }
        Ok::<(), String>(())
    })();
    poller.stop();
    result.map(|()| out)
}

// ------------------------------------------------------------------------------------------
// 2. Failed requests under load.

fn measure_load(b: &mut Bench, method: Method, flips: usize) -> Result<LoadReport, String> {
    b.prepare(method)?;
    let spec = LoadSpec {
        edge: b.local.http,
        targets: vec![
            (HOST.to_string(), "/api/bench".to_string()),
            (HOST.to_string(), "/stream/bench".to_string()),
            (HOST.to_string(), "/".to_string()),
        ],
        keepalive_clients: 4,
        new_connection_clients: 4,
        max_duration: Duration::from_secs(120),
        max_requests_per_client: 2_000_000,
        pause: Duration::from_millis(1),
        timeout: Duration::from_secs(5),
    };
    let load = Load::start(&spec);
    std::thread::sleep(Duration::from_millis(300));
    let mut result = Ok(());
    for _ in 0..flips {
        let to = b.color.other();
        if let Err(e) = b.flip(method, to) {
            result = Err(e);
            break;
        }
        // Give the load time to cross each flip.
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    let report = load.stop();
    result.map(|()| report)
}

// ------------------------------------------------------------------------------------------
// 4. What the rendered edge costs: keep-alive requests/s, rendered vs minimal config.

/// One config the throughput part loads, and how it was made from the rendered one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// The config as vezasock renders it.
    Rendered,
    /// Rendered, plus the log lines the template always had before (`log /dev/log local0`,
    /// `log global`, `option httplog`, `option dontlognull`), whether `/dev/log` exists or not.
    SeedLog,
    /// Rendered, its `log` / `option httplog` / `option dontlognull` lines taken out.
    NoLog,
    /// Rendered, its `cookie` lines and server `cookie` keywords taken out.
    NoCookie,
    /// Rendered, both taken out.
    NoLogNoCookie,
    /// Rendered, the servers' `check` keyword taken out (no health checks).
    NoCheck,
    /// The minimal config plus the rendered frontend's `http-request` / `http-response` rules
    /// (Host → env → color through the maps, canary, preview), still to the minimal backend:
    /// what the flip mechanism's per-request rules cost apart from the many backends.
    MinimalRules,
    /// Hand-written: one frontend, one backend, the same server; the global section (sockets,
    /// server-state file) kept so the master reload and the edge's files work the same.
    Minimal,
}

const VARIANTS: [Variant; 8] = [
    Variant::Rendered,
    Variant::SeedLog,
    Variant::NoLog,
    Variant::NoCookie,
    Variant::NoLogNoCookie,
    Variant::NoCheck,
    Variant::MinimalRules,
    Variant::Minimal,
];

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Rendered => "rendered config",
            Variant::SeedLog => "rendered, plus the former `log /dev/log` lines",
            Variant::NoLog => "rendered, without its log lines",
            Variant::NoCookie => "rendered, without its cookie lines",
            Variant::NoLogNoCookie => "rendered, without log nor cookie lines",
            Variant::NoCheck => "rendered, without health checks",
            Variant::MinimalRules => "minimal, plus the rendered frontend's http-request rules",
            Variant::Minimal => "minimal hand-written config",
        }
    }

    /// Its key in `VEZASOCK_BENCH_RPS_VARIANTS`.
    fn key(self) -> &'static str {
        match self {
            Variant::Rendered => "rendered",
            Variant::SeedLog => "seed-log",
            Variant::NoLog => "no-log",
            Variant::NoCookie => "no-cookie",
            Variant::NoLogNoCookie => "no-log-no-cookie",
            Variant::NoCheck => "no-check",
            Variant::MinimalRules => "minimal-rules",
            Variant::Minimal => "minimal",
        }
    }
}

/// The variants `VEZASOCK_BENCH_RPS_VARIANTS` asks for (every one when unset); the minimal
/// config always, since every ratio is against it.
fn chosen_variants() -> Vec<Variant> {
    let Ok(list) = std::env::var("VEZASOCK_BENCH_RPS_VARIANTS") else {
        return VARIANTS.to_vec();
    };
    let keys: Vec<&str> = list.split(',').map(str::trim).collect();
    VARIANTS
        .iter()
        .copied()
        .filter(|v| *v == Variant::Minimal || keys.contains(&v.key()))
        .collect()
}

/// Keep-alive requests per second, one list of rounds per variant.
struct Throughput {
    rps: BTreeMap<&'static str, Vec<f64>>,
    /// HAProxy's CPU microseconds per request, one list of rounds per variant.
    cpu_us: BTreeMap<&'static str, Vec<f64>>,
    /// What the rendered config logs to, and whether that target exists here.
    log_lines: Vec<String>,
    cookie_lines: usize,
    seconds: u64,
    clients: usize,
}

fn is_log_line(line: &str) -> bool {
    let t = line.trim();
    t.starts_with("log ") || t == "option httplog" || t == "option dontlognull"
}

fn without_log(config: &str) -> String {
    config
        .lines()
        .filter(|l| !is_log_line(l))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// `config` with the log lines the template had before it logged only to a configured target.
fn with_seed_log(config: &str) -> Result<String, String> {
    let config = without_log(config);
    let global = "global\n    master-worker\n";
    let defaults = "defaults\n    mode http\n";
    if !config.contains(global) || !config.contains(defaults) {
        return Err("the rendered config has no `global` / `defaults` head to add logs to".into());
    }
    Ok(config
        .replacen(global, &format!("{global}    log /dev/log local0\n"), 1)
        .replacen(
            defaults,
            &format!("{defaults}    log global\n    option httplog\n    option dontlognull\n"),
            1,
        ))
}

fn without_cookies(config: &str) -> String {
    config
        .lines()
        .filter(|l| !l.trim().starts_with("cookie "))
        .map(|l| {
            let t = l.trim_start();
            if !t.starts_with("server ") {
                return format!("{l}\n");
            }
            // `server NAME ADDR ... cookie VALUE ...`: drop the keyword and its value.
            let words: Vec<&str> = l.split(' ').collect();
            let mut out = Vec::new();
            let mut skip = false;
            for w in words {
                if skip {
                    skip = false;
                } else if w == "cookie" {
                    skip = true;
                } else {
                    out.push(w);
                }
            }
            format!("{}\n", out.join(" "))
        })
        .collect()
}

/// `config` with the `check` keyword taken out of every `server` line.
fn without_checks(config: &str) -> String {
    config
        .lines()
        .map(|l| match l.trim_start().starts_with("server ") {
            true => format!("{}\n", l.replace(" check", "")),
            false => format!("{l}\n"),
        })
        .collect()
}

/// `minimal` with the rendered config's `http-request` / `http-response` rules (all in its
/// frontend) added after the minimal frontend's `bind` line.
fn with_rules(minimal: &str, rendered: &str) -> Result<String, String> {
    let rules: String = rendered
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            t.starts_with("http-request set-var") || t.starts_with("http-response ")
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let bind = minimal
        .lines()
        .find(|l| l.trim_start().starts_with("bind "))
        .ok_or("the minimal config has no bind line")?;
    Ok(minimal.replacen(&format!("{bind}\n"), &format!("{bind}\n{rules}"), 1))
}

/// The minimal config: the rendered global section, then one frontend and one backend.
fn minimal(rendered: &str, bind: SocketAddr, server: &str) -> String {
    let global: String = rendered
        .lines()
        .skip_while(|l| l.trim() != "global")
        .take_while(|l| l.trim() != "defaults")
        .filter(|l| !is_log_line(l))
        .map(|l| format!("{l}\n"))
        .collect();
    format!(
        "{global}\ndefaults\n    mode http\n    timeout connect 5s\n    timeout client 60s\n    timeout server 60s\n\nfrontend fe\n    bind {bind}\n    default_backend be\n\nbackend be\n    server s1 {server}\n"
    )
}

impl Bench {
    /// Puts `config` live (check, rename, master reload) and waits until the new worker
    /// answers `HOST/` with 200.
    fn load_config(&mut self, config: &str) -> Result<(), String> {
        let p = self.edge.topology.paths.clone();
        let candidate = p.config.with_extension("cfg.candidate");
        write_atomic(&candidate, config.as_bytes()).map_err(|e| format!("write: {e}"))?;
        let check = haproxy_check(&p.haproxy, &candidate)?;
        if !check.valid {
            return Err(format!("haproxy -c refused:\n{}\n{config}", check.output));
        }
        std::fs::rename(&candidate, &p.config).map_err(|e| format!("rename: {e}"))?;
        self.rt
            .block_on(master::reload(&self.edge.master(), self.edge.timeouts))
            .map_err(|e| format!("reload: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut conn = Conn::new(self.local.http, Duration::from_secs(2));
        loop {
            match conn.get(HOST, "/") {
                Ok(a) if a.status == 200 => return Ok(()),
                other if Instant::now() > deadline => {
                    return Err(format!("no 200 after the reload: {other:?}"))
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

/// One throughput round: keep-alive requests per second, and HAProxy's CPU per request.
struct Round {
    rps: f64,
    /// CPU microseconds HAProxy (every process of its group) spent per request.
    cpu_us: f64,
}

/// Requests per second of `clients` keep-alive clients on `HOST/` for `secs` seconds, after
/// a warm-up, and the CPU the processes of group `pgrp` (HAProxy) spent per request meanwhile;
/// an error when any request failed.
fn keepalive_rps(addr: SocketAddr, pgrp: u32, clients: usize, secs: u64) -> Result<Round, String> {
    let load = Load::start(&LoadSpec {
        edge: addr,
        targets: vec![(HOST.to_string(), "/".to_string())],
        keepalive_clients: clients,
        new_connection_clients: 0,
        max_duration: Duration::from_secs(secs + 30),
        max_requests_per_client: u64::MAX,
        pause: Duration::ZERO,
        timeout: Duration::from_secs(5),
    });
    if !load.wait_for_requests(500, Duration::from_secs(10)) {
        let report = load.stop();
        return Err(format!("no traffic after 10 s: {:?}", report.failures));
    }
    let (start, t0, cpu0) = (load.sent(), Instant::now(), cpu::ticks(pgrp));
    std::thread::sleep(Duration::from_secs(secs));
    let (end, t1, cpu1) = (load.sent(), Instant::now(), cpu::ticks(pgrp));
    let report = load.stop();
    if report.failed() > 0 {
        return Err(format!(
            "{} failed requests: {:?}",
            report.failed(),
            report.failures
        ));
    }
    let requests = end.saturating_sub(start).max(1) as f64;
    Ok(Round {
        rps: requests / (t1 - t0).as_secs_f64(),
        cpu_us: cpu::spent(&cpu0, &cpu1) * 1e6 / requests,
    })
}

fn measure_throughput(b: &mut Bench) -> Result<Throughput, String> {
    let secs = env_usize("VEZASOCK_BENCH_RPS_SECS", 3) as u64;
    let rounds = env_usize("VEZASOCK_BENCH_RPS_ROUNDS", 5);
    let clients = 2;
    let rendered = std::fs::read_to_string(&b.edge.topology.paths.config)
        .map_err(|e| format!("read the rendered config: {e}"))?;
    let staging = b
        .edge
        .topology
        .envs
        .iter()
        .find(|e| e.name == "staging")
        .ok_or("no staging env")?;
    let web = staging
        .components
        .iter()
        .find(|c| c.name == "web")
        .ok_or("no staging web")?;
    let server = web
        .servers
        .of(b.color)
        .first()
        .ok_or("no staging web server")?
        .address
        .to_string();
    let configs: Vec<(Variant, String)> = chosen_variants()
        .into_iter()
        .map(|v| {
            let text = match v {
                Variant::Rendered => rendered.clone(),
                Variant::SeedLog => with_seed_log(&rendered)?,
                Variant::NoLog => without_log(&rendered),
                Variant::NoCookie => without_cookies(&rendered),
                Variant::NoLogNoCookie => without_cookies(&without_log(&rendered)),
                Variant::NoCheck => without_checks(&rendered),
                Variant::MinimalRules => {
                    with_rules(&minimal(&rendered, b.local.http, &server), &rendered)?
                }
                Variant::Minimal => minimal(&rendered, b.local.http, &server),
            };
            Ok((v, text))
        })
        .collect::<Result<_, String>>()?;
    let pgrp = b
        .local
        .master_pid()
        .ok_or("HAProxy's master is not running")?;
    let mut rps: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
    let mut cpu_us: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
    // Rounds interleave the variants (in a rotating order), so a noisy spell on this shared
    // machine lands on all of them instead of one.
    for round in 0..rounds {
        for i in 0..configs.len() {
            let (v, text) = &configs[(i + round) % configs.len()];
            b.load_config(text)?;
            let r = keepalive_rps(b.local.http, pgrp, clients, secs)
                .map_err(|e| format!("{}: {e}", v.name()))?;
            eprintln!(
                "  round {round}: {} {:.0} req/s, HAProxy {:.1} µs CPU/request",
                v.name(),
                r.rps,
                r.cpu_us
            );
            rps.entry(v.name()).or_default().push(r.rps);
            cpu_us.entry(v.name()).or_default().push(r.cpu_us);
        }
    }
    let log_lines = rendered
        .lines()
        .filter(|l| l.trim().starts_with("log "))
        .map(|l| {
            let target = l.split_whitespace().nth(1).unwrap_or("");
            let exists = match target.starts_with('/') {
                true if Path::new(target).exists() => " (exists here)",
                true => " (does not exist here)",
                false => "",
            };
            format!("`{}`{exists}", l.trim())
        })
        .collect();
    let cookie_lines = rendered
        .lines()
        .filter(|l| l.trim().starts_with("cookie "))
        .count();
    Ok(Throughput {
        rps,
        cpu_us,
        log_lines,
        cookie_lines,
        seconds: secs,
        clients,
    })
}

fn report_throughput(s: &mut String, t: &Throughput) {
    let rounds = t.rps.values().map(Vec::len).max().unwrap_or(0);
    let _ = writeln!(s, "**4. What the rendered edge costs**: keep-alive requests per second on `staging.veza.fr/`, {} clients, {rounds} rounds of {} s per config, interleaved; median (min–max); and the CPU HAProxy itself spent per request in the same rounds (utime + stime of its processes, /proc), which the clients, backends and other jobs on this machine move far less than req/s. Same HAProxy process (configs swapped by a master reload), same backend server.\n", t.clients, t.seconds);
    let _ = writeln!(
        s,
        "| config | req/s | ÷ minimal | HAProxy CPU µs/request | minimal ÷ this (CPU) |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|");
    let median = |m: &BTreeMap<&'static str, Vec<f64>>, v: Variant| {
        m.get(v.name()).map(|xs| p50(xs)).unwrap_or(f64::NAN)
    };
    let (minimal_rps, minimal_cpu) = (
        median(&t.rps, Variant::Minimal),
        median(&t.cpu_us, Variant::Minimal),
    );
    for v in VARIANTS {
        let Some(xs) = t.rps.get(v.name()) else {
            continue;
        };
        let xs = sorted(xs);
        let med = pct(&xs, 0.5);
        let cpu = sorted(t.cpu_us.get(v.name()).map(Vec::as_slice).unwrap_or(&[]));
        let cpu_med = pct(&cpu, 0.5);
        let _ = writeln!(
            s,
            "| {} | {:.0} ({:.0}–{:.0}) | {} | {:.1} ({:.1}–{:.1}) | {} |",
            v.name(),
            med,
            xs.first().copied().unwrap_or(f64::NAN),
            xs.last().copied().unwrap_or(f64::NAN),
            times(med, minimal_rps),
            cpu_med,
            cpu.first().copied().unwrap_or(f64::NAN),
            cpu.last().copied().unwrap_or(f64::NAN),
            times(minimal_cpu, cpu_med),
        );
    }
    report_paired_rounds(s, t);
    let _ = writeln!(
        s,
        "\nThe rendered config's log lines: {}; its `cookie` lines: {}; `/dev/log` {}.\n",
        if t.log_lines.is_empty() {
            "none".to_string()
        } else {
            t.log_lines.join(", ")
        },
        t.cookie_lines,
        if Path::new("/dev/log").exists() {
            "exists here"
        } else {
            "does not exist here"
        }
    );
}

/// The rendered config against the minimal one round by round (the two ran within seconds of
/// each other in each round), so a noisy minute moves both sides of a ratio: p50 and range of
/// the per-round ratios, and in how many rounds the rendered config was at least as fast.
fn report_paired_rounds(s: &mut String, t: &Throughput) {
    let pick = |m: &BTreeMap<&'static str, Vec<f64>>, v: Variant| m.get(v.name()).cloned();
    let (Some(r_rps), Some(m_rps), Some(r_cpu), Some(m_cpu)) = (
        pick(&t.rps, Variant::Rendered),
        pick(&t.rps, Variant::Minimal),
        pick(&t.cpu_us, Variant::Rendered),
        pick(&t.cpu_us, Variant::Minimal),
    ) else {
        return;
    };
    let rps: Vec<f64> = r_rps.iter().zip(&m_rps).map(|(r, m)| r / m).collect();
    let cpu: Vec<f64> = m_cpu.iter().zip(&r_cpu).map(|(m, r)| m / r).collect();
    let line = |xs: &[f64]| {
        let sorted = sorted(xs);
        format!(
            "{:.2}× ({:.2}–{:.2}; at least 1.0 in {} of {})",
            pct(&sorted, 0.5),
            sorted.first().copied().unwrap_or(f64::NAN),
            sorted.last().copied().unwrap_or(f64::NAN),
            xs.iter().filter(|x| **x >= 1.0).count(),
            xs.len()
        )
    };
    let _ = writeln!(
        s,
        "\nPer round, rendered ÷ minimal: req/s {}; by HAProxy CPU per request (minimal ÷ rendered) {}.",
        line(&rps),
        line(&cpu)
    );
}

// ------------------------------------------------------------------------------------------
// 3. Processes and memory after many flips with long requests in flight.

/// Long streaming responses held open during the flips.
struct Streams {
    stop: Arc<AtomicBool>,
    readers: Vec<JoinHandle<bool>>,
}

impl Streams {
    /// Opens `n` `?stream=600` requests (60 s of chunks) and waits for each response head.
    fn open(addr: SocketAddr, n: usize) -> Result<Streams, String> {
        let mut streams = Streams {
            stop: Arc::new(AtomicBool::new(false)),
            readers: Vec::new(),
        };
        for _ in 0..n {
            if let Err(e) = streams.add(addr) {
                streams.close();
                return Err(e);
            }
        }
        Ok(streams)
    }

    /// Opens one more stream.
    fn add(&mut self, addr: SocketAddr) -> Result<(), String> {
        let i = self.readers.len();
        {
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
                .map_err(|e| format!("stream {i}: {e}"))?;
            s.set_read_timeout(Some(Duration::from_millis(500)))
                .map_err(|e| e.to_string())?;
            let req = format!("GET /stream/bench{i}?stream=600 HTTP/1.1\r\nhost: {HOST}\r\n\r\n");
            s.write_all(req.as_bytes())
                .map_err(|e| format!("stream {i}: {e}"))?;
            let mut head = [0u8; 12];
            let deadline = Instant::now() + Duration::from_secs(5);
            let mut got = 0;
            while got < head.len() {
                match s.read(&mut head[got..]) {
                    Ok(0) => return Err(format!("stream {i} closed before answering")),
                    Ok(k) => got += k,
                    Err(_) if Instant::now() < deadline => {}
                    Err(e) => return Err(format!("stream {i}: {e}")),
                }
            }
            if &head[..] != b"HTTP/1.1 200" {
                return Err(format!(
                    "stream {i} answered {:?}",
                    String::from_utf8_lossy(&head)
                ));
            }
            let stop = self.stop.clone();
            // Reads until told to stop; true when the stream was still open then.
            self.readers.push(std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let deadline = Instant::now() + Duration::from_secs(120);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    match s.read(&mut buf) {
                        Ok(0) => return false,
                        Ok(_) => {}
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            ) => {}
                        Err(_) => return false,
                    }
                }
                true
            }));
        }
        Ok(())
    }

    /// Stops reading; returns how many streams were still open.
    fn close(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.readers
            .into_iter()
            .map(|h| h.join().unwrap_or(false))
            .filter(|alive| *alive)
            .count()
    }
}

/// HAProxy processes of one edge (its process group) and their summed RSS.
#[derive(Debug, Clone, Default)]
struct Procs {
    count: usize,
    rss_kb: u64,
}

/// Every process whose process group is `pgrp`, and the sum of their RSS.
fn procs_in_group(pgrp: u32) -> Procs {
    let mut out = Procs::default();
    for p in cpu::group(pgrp) {
        out.count += 1;
        let status = std::fs::read_to_string(format!("/proc/{}/status", p.pid)).unwrap_or_default();
        let rss = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        out.rss_kb += rss;
    }
    out
}

#[derive(Debug, Clone, Default)]
struct ProcResult {
    before: Procs,
    after: Procs,
    streams_open: usize,
    streams_alive: usize,
    flips: usize,
}

/// How the long requests arrive while flipping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Arrival {
    /// 10 streams opened before the first flip.
    Before,
    /// One new stream after every flip (as users keep arriving during deploys).
    EveryFlip,
}

impl Arrival {
    fn describe(self) -> &'static str {
        match self {
            Arrival::Before => "10 streams opened before the flips",
            Arrival::EveryFlip => "one new stream after every flip",
        }
    }
}

fn measure_procs(
    b: &mut Bench,
    method: Method,
    flips: usize,
    arrival: Arrival,
) -> Result<ProcResult, String> {
    b.prepare(method)?;
    let pgrp = b
        .local
        .master_pid()
        .ok_or_else(|| "HAProxy is not running".to_string())?;
    let n_streams = if arrival == Arrival::Before { 10 } else { 0 };
    let mut streams = Streams::open(b.local.http, n_streams)?;
    let before = procs_in_group(pgrp);
    let mut result = Ok(());
    let deadline = Instant::now() + Duration::from_secs(50);
    let mut done = 0;
    for _ in 0..flips {
        // The streams last 60 s: every flip must happen while they are open.
        if Instant::now() > deadline {
            result = Err(format!("only {done} flips within 50 s"));
            break;
        }
        let to = b.color.other();
        if let Err(e) = b.flip(method, to) {
            result = Err(e);
            break;
        }
        done += 1;
        if arrival == Arrival::EveryFlip {
            if let Err(e) = streams.add(b.local.http) {
                result = Err(e);
                break;
            }
        }
    }
    // Let old workers without connections finish their soft stop.
    std::thread::sleep(Duration::from_millis(1000));
    let after = procs_in_group(pgrp);
    let opened = streams.readers.len();
    let alive = streams.close();
    result.map(|()| ProcResult {
        before,
        after,
        streams_open: opened,
        streams_alive: alive,
        flips: done,
    })
}

// ------------------------------------------------------------------------------------------
// Report.

/// Nearest-rank percentile of sorted samples.
fn pct(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn sorted(xs: &[f64]) -> Vec<f64> {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

fn p50(xs: &[f64]) -> f64 {
    pct(&sorted(xs), 0.5)
}

/// The p50 of the per-pair ratios `a[i] ÷ b[i]` (pairs with `b[i]` of 0 left out): samples
/// taken back to back, so a busy second on this shared machine lands on both of a pair.
fn p50_ratio(a: &[f64], b: &[f64]) -> f64 {
    let ratios: Vec<f64> = a
        .iter()
        .zip(b)
        .filter(|(_, b)| **b > 0.0)
        .map(|(a, b)| a / b)
        .collect();
    p50(&ratios)
}

#[derive(Default)]
struct VersionResult {
    label: String,
    version_line: String,
    latency: BTreeMap<&'static str, Result<Latency, String>>,
    load: BTreeMap<&'static str, Result<LoadReport, String>>,
    procs: BTreeMap<(Arrival, &'static str), Result<ProcResult, String>>,
    throughput: Option<Result<Throughput, String>>,
    canary: Option<Result<CanaryBench, String>>,
    fleet: Option<Result<fleet::FleetBench, String>>,
    fleet_canary: Option<Result<fleet_canary::FleetCanaryBench, String>>,
    paired: Option<Result<paired::Paired, String>>,
}

/// Part 5: one canary step's cost, and breach → 0 %.
#[derive(Debug, Clone)]
struct CanaryBench {
    step_ms: Vec<f64>,
    breach_to_zero_ms: f64,
}

/// Answers 500 to everything but `ok_path` on `port`, until `run` is cleared.
fn failing_server(port: u16, ok_path: &'static str, run: Arc<AtomicBool>) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let listener = loop {
        match std::net::TcpListener::bind(("127.0.0.1", port)) {
            Ok(l) => break l,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("bind {port}: {e}")),
        }
    };
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    std::thread::spawn(move || {
        while run.load(Ordering::Relaxed) {
            let Ok((mut stream, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(2));
                continue;
            };
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 2048];
            let n = stream.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]);
            let ok = head.split_whitespace().nth(1) == Some(ok_path);
            let status = if ok {
                "200 OK"
            } else {
                "500 Internal Server Error"
            };
            let _ = stream.write_all(
                format!("HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nno")
                    .as_bytes(),
            );
        }
    });
    Ok(())
}

fn measure_canary(b: &mut Bench) -> Result<CanaryBench, String> {
    use vezasock::edge::analysis::{counters, Limits};
    use vezasock::edge::deploy::canary::{canary, set_percent, CanaryRequest};
    use vezasock::edge::flip::LockWait;
    let req = CanaryRequest {
        env: "staging".into(),
        color: Color::Green,
        steps: vec![50, 100],
        interval: Duration::from_secs(60),
        limits: Limits {
            max_error_rate: 0.01,
            min_requests: 10,
        },
        sha: None,
        lock_wait: LockWait::UpTo(Duration::from_secs(10)),
        who: "bench".into(),
    };
    // 1. One step: map change (file, journal, runtime) + the analysis read of both colors.
    let edge = &b.edge;
    let step_ms = b.rt.block_on(async {
        let env = edge.env("staging").map_err(|e| e.to_string())?;
        let mut session = edge.admin_session().await.map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for i in 0..40u8 {
            let t = Instant::now();
            set_percent(
                edge,
                &mut session,
                env,
                &req,
                Some((Color::Green, 1 + i % 99)),
            )
            .await
            .map_err(|e| e.to_string())?;
            counters(&mut session, env, Color::Green)
                .await
                .map_err(|e| e.to_string())?;
            counters(&mut session, env, Color::Blue)
                .await
                .map_err(|e| e.to_string())?;
            out.push(ms(t.elapsed()));
        }
        set_percent(edge, &mut session, env, &req, None)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<Vec<f64>, String>(out)
    })?;
    // 2. Breach → 0 %: a canary at 50 % under load, then green's api starts answering 500.
    let stop = Arc::new(AtomicBool::new(false));
    let addr = b.local.http;
    // The first failed answer a user saw: when the bad color started to fail.
    let first_failure = Arc::new(std::sync::Mutex::new(None::<Instant>));
    let loader = {
        let stop = stop.clone();
        let first_failure = first_failure.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let a = vezasock::demo::http::get(addr, HOST, "/api/x", Duration::from_secs(5));
                if !matches!(a, Ok(ref a) if a.status == 200) {
                    if let Ok(mut f) = first_failure.lock() {
                        f.get_or_insert_with(Instant::now);
                    }
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let topology = b.local.topology.clone();
    let canary_req = req.clone();
    let runner = std::thread::spawn(move || {
        let edge = Edge::new(topology);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        Ok::<String, String>(match rt.block_on(canary(&edge, &canary_req, &mut |_| {})) {
            Ok(_) => "promoted (no breach seen)".into(),
            Err(e) => e.to_string(),
        })
    });
    let map = b.local.topology.paths.preview_map();
    let has_entry = || {
        std::fs::read_to_string(&map)
            .unwrap_or_default()
            .contains("staging green:")
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !has_entry() {
        if Instant::now() > deadline {
            stop.store(true, Ordering::Relaxed);
            return Err("the canary never reached its first step".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_secs(1));
    let server = b
        .local
        .servers
        .iter()
        .find(|s| s.backend == "be_staging_api_green")
        .cloned()
        .ok_or("no be_staging_api_green server")?;
    b.local
        .set_backend_running(&server.backend, &server.server, false);
    let fail = Arc::new(AtomicBool::new(true));
    failing_server(server.port, "/api/health", fail.clone())?;
    let failing_since = Instant::now();
    let deadline = failing_since + Duration::from_secs(30);
    while has_entry() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    let zero_at = Instant::now();
    let started_failing = first_failure
        .lock()
        .ok()
        .and_then(|f| *f)
        .unwrap_or(failing_since);
    let breach_to_zero_ms = ms(zero_at.saturating_duration_since(started_failing));
    stop.store(true, Ordering::Relaxed);
    let _ = loader.join();
    let outcome = runner
        .join()
        .map_err(|_| "canary thread panicked".to_string())??;
    fail.store(false, Ordering::Relaxed);
    eprintln!("canary outcome: {outcome}");
    if !outcome.contains("aborted") {
        return Err(format!("the canary did not abort: {outcome}"));
    }
    Ok(CanaryBench {
        step_ms,
        breach_to_zero_ms,
    })
}

/// Whether `part` (`latency`, `load`, `procs`, `throughput`, `canary`, `fleet`, `paired`,
/// `fleet-canary`) is in
/// `VEZASOCK_BENCH_PARTS` (every part when it is unset).
fn part(part: &str) -> bool {
    std::env::var("VEZASOCK_BENCH_PARTS")
        .map(|s| s.split(',').any(|p| p.trim() == part))
        .unwrap_or(true)
}

fn run_version(
    h: &haproxy::Haproxy,
    flips: usize,
    load_flips: usize,
    proc_flips: usize,
) -> VersionResult {
    let mut r = VersionResult {
        label: h.label.to_string(),
        version_line: h.version_line.clone(),
        ..VersionResult::default()
    };
    for m in ALL {
        if part("latency") {
            eprintln!("[{}] {}: latency ({flips} flips)", h.label, m.name());
            let lat = Bench::start(h).and_then(|mut b| measure_latency(&mut b, m, flips));
            r.latency.insert(m.short(), lat);
        }
        if part("load") {
            // A fresh edge for the load, so the latency phase leaves nothing behind.
            eprintln!("[{}] {}: load ({load_flips} flips)", h.label, m.name());
            let load = Bench::start(h).and_then(|mut b| measure_load(&mut b, m, load_flips));
            r.load.insert(m.short(), load);
        }
    }
    if part("canary") {
        eprintln!("[{}] canary: one step, breach → 0 %", h.label);
        r.canary = Some(Bench::start(h).and_then(|mut b| measure_canary(&mut b)));
    }
    if part("fleet") {
        let fleet_flips = env_usize("VEZASOCK_BENCH_FLEET_FLIPS", 10);
        eprintln!("[{}] fleet: 1, 3 and 10 edges", h.label);
        r.fleet = Some(fleet::measure(h, fleet_flips));
    }
    if part("fleet-canary") {
        let rounds = env_usize("VEZASOCK_BENCH_FLEET_CANARY_STEPS", 5);
        eprintln!("[{}] fleet canary: one step on 1, 3 and 10 edges", h.label);
        r.fleet_canary = Some(fleet_canary::measure(h, rounds));
    }
    if part("paired") {
        eprintln!(
            "[{}] paired: vezasock switch vs socat, {flips} pairs",
            h.label
        );
        r.paired = Some(Bench::start(h).and_then(|mut b| paired::measure(&mut b, flips)));
    }
    if part("throughput") {
        eprintln!("[{}] throughput: rendered vs minimal config", h.label);
        r.throughput = Some(Bench::start(h).and_then(|mut b| measure_throughput(&mut b)));
    }
    if !part("procs") {
        return r;
    }
    for a in ARRIVALS {
        for m in PROC_METHODS {
            eprintln!(
                "[{}] {}: processes after {proc_flips} flips, {}",
                h.label,
                m.name(),
                a.describe()
            );
            let res = Bench::start(h).and_then(|mut b| measure_procs(&mut b, m, proc_flips, a));
            r.procs.insert((a, m.short()), res);
        }
    }
    r
}

fn cell_ms(x: f64) -> String {
    if x.is_nan() {
        "–".to_string()
    } else if x < 10.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.1}")
    }
}

fn ratio(a: f64, b: f64) -> String {
    if a.is_nan() || b.is_nan() || b <= 0.0 {
        "–".to_string()
    } else {
        format!("{:.1}×", a / b)
    }
}

/// `a ÷ b` with two decimals, or `–` when either is missing.
fn times(a: f64, b: f64) -> String {
    if a.is_nan() || b.is_nan() || b <= 0.0 {
        "–".to_string()
    } else {
        format!("{:.2}×", a / b)
    }
}

fn pass(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "MISS"
    }
}

fn report_version(r: &VersionResult, flips: usize, load_flips: usize, proc_flips: usize) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "### HAProxy {} (`{}`)\n", r.label, r.version_line);
    match &r.canary {
        Some(Ok(c)) => {
            let xs = sorted(&c.step_ms);
            let _ = writeln!(
                s,
                "**5. Canary**: one step (map change written through and journalled + analysis \
                 read of both colors), {} steps: p50 {:.3} ms, p95 {:.3} ms, max {:.3} ms; \
                 breach (the first 500 a user saw from green's api) → 0 %: {:.0} ms (goal ≤ one analysis \
                 period, 500 ms, + 1 s: {})\n",
                xs.len(),
                pct(&xs, 0.5),
                pct(&xs, 0.95),
                xs.last().copied().unwrap_or(0.0),
                c.breach_to_zero_ms,
                pass(c.breach_to_zero_ms <= 1500.0)
            );
        }
        Some(Err(e)) => {
            let _ = writeln!(s, "**5. Canary**: failed: {}\n", one_line(e));
        }
        None => {}
    }
    match &r.fleet {
        Some(Ok(f)) => fleet::report(&mut s, f, env_usize("VEZASOCK_BENCH_FLEET_FLIPS", 10)),
        Some(Err(e)) => {
            let _ = writeln!(s, "**6. Fleet flip**: failed: {}\n", one_line(e));
        }
        None => {}
    }
    match &r.fleet_canary {
        Some(Ok(f)) => fleet_canary::report(&mut s, f),
        Some(Err(e)) => {
            let _ = writeln!(s, "**8. Fleet canary step**: failed: {}\n", one_line(e));
        }
        None => {}
    }
    match &r.paired {
        Some(Ok(p)) => paired::report(&mut s, p),
        Some(Err(e)) => {
            let _ = writeln!(
                s,
                "**7. Paired switch vs socat**: failed: {}\n",
                one_line(e)
            );
        }
        None => {}
    }
    if r.latency.is_empty() && r.load.is_empty() && r.procs.is_empty() {
        // Only the throughput part ran (VEZASOCK_BENCH_PARTS=throughput).
        match &r.throughput {
            Some(Ok(t)) => report_throughput(&mut s, t),
            Some(Err(e)) => {
                let _ = writeln!(
                    s,
                    "**4. What the rendered edge costs**: failed: {}\n",
                    one_line(e)
                );
            }
            None => {}
        }
        return s;
    }

    let _ = writeln!(s, "**1. Flip latency**, ms, {flips} flips per method alternating blue/green. *Seen*: command start → first answer of the new color on a keep-alive connection polling `staging.veza.fr/`. *Command*: command start → the command returned.\n");
    let _ = writeln!(
        s,
        "| method | seen p50 | p90 | p99 | max | command p50 | command p99 |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for m in ALL {
        match r.latency.get(m.short()) {
            Some(Ok(l)) => {
                let seen = sorted(&l.seen);
                let cmd = sorted(&l.command);
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} | {} |",
                    m.name(),
                    cell_ms(pct(&seen, 0.5)),
                    cell_ms(pct(&seen, 0.9)),
                    cell_ms(pct(&seen, 0.99)),
                    cell_ms(seen.last().copied().unwrap_or(f64::NAN)),
                    cell_ms(pct(&cmd, 0.5)),
                    cell_ms(pct(&cmd, 0.99)),
                );
            }
            Some(Err(e)) => {
                let _ = writeln!(s, "| {} | error: {} | | | | | |", m.name(), one_line(e));
            }
            None => {}
        }
    }

    let _ = writeln!(s, "\n**2. Failed requests during {load_flips} flips under load** (4 keep-alive + 4 new-connection clients, 1 ms pause, 100 ms between flips).\n");
    let _ = writeln!(s, "| method | keep-alive sent | keep-alive failed | new-conn sent | new-conn failed | first failure |");
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for m in ALL {
        match r.load.get(m.short()) {
            Some(Ok(l)) => {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} |",
                    m.name(),
                    l.keepalive.sent,
                    l.keepalive.failed,
                    l.new_connection.sent,
                    l.new_connection.failed,
                    l.failures.first().map(|f| one_line(f)).unwrap_or_default()
                );
            }
            Some(Err(e)) => {
                let _ = writeln!(s, "| {} | error: {} | | | | |", m.name(), one_line(e));
            }
            None => {}
        }
    }

    let _ = writeln!(s, "\n**3. HAProxy processes after {proc_flips} flips** with long `?stream=600` responses (60 s each) in flight: processes in the edge's process group 1 s after the last flip, RSS summed over them (shared pages counted in each). Two arrivals: 10 streams opened before the flips (they all sit on the first worker), and one new stream after every flip (each reload's worker then keeps one). The seed-config reload is left out: it reloads the same way.\n");
    let _ = writeln!(s, "| long requests | method | flips | processes before | processes after | RSS before MB | RSS after MB | streams still open |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    for (a, m) in ARRIVALS
        .iter()
        .flat_map(|a| PROC_METHODS.iter().map(move |m| (*a, *m)))
    {
        match r.procs.get(&(a, m.short())) {
            Some(Ok(p)) => {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {:.1} | {:.1} | {}/{} |",
                    a.describe(),
                    m.name(),
                    p.flips,
                    p.before.count,
                    p.after.count,
                    p.before.rss_kb as f64 / 1024.0,
                    p.after.rss_kb as f64 / 1024.0,
                    p.streams_alive,
                    p.streams_open
                );
            }
            Some(Err(e)) => {
                let _ = writeln!(
                    s,
                    "| {} | {} | error: {} | | | | | |",
                    a.describe(),
                    m.name(),
                    one_line(e)
                );
            }
            None => {}
        }
    }

    // Where the time goes.
    let _ = writeln!(s, "\n**Where the time goes** (p50 per flip of the latency runs, ms): the library's own step timings, the reload flip's phases, and the binary's fixed costs.\n");
    let _ = writeln!(s, "| method | part | p50 | p90 |");
    let _ = writeln!(s, "|---|---|---|---|");
    for m in ALL {
        if let Some(Ok(l)) = r.latency.get(m.short()) {
            for (name, values) in &l.parts {
                let v = sorted(values);
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} |",
                    m.short(),
                    name,
                    cell_ms(pct(&v, 0.5)),
                    cell_ms(pct(&v, 0.9))
                );
            }
        }
    }

    // Ratios and goals.
    let lat = |m: Method| match r.latency.get(m.short()) {
        Some(Ok(l)) => (p50(&l.seen), p50(&l.command)),
        _ => (f64::NAN, f64::NAN),
    };
    let (v_seen, v_cmd) = lat(Method::Vezasock);
    let _ = writeln!(s, "\n**vezasock switch (binary) vs each alternative** (p50 of the alternative ÷ p50 of vezasock; higher = vezasock faster).\n");
    let _ = writeln!(s, "| alternative | seen-latency ratio | command-time ratio | failed requests (alt / vezasock) | processes after, streams before (alt / vezasock) | processes after, a stream per flip (alt / vezasock) | RSS after, a stream per flip (alt / vezasock) |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    let v_load = r
        .load
        .get(Method::Vezasock.short())
        .and_then(|l| l.as_ref().ok());
    let proc_of =
        |a: Arrival, m: Method| r.procs.get(&(a, m.short())).and_then(|p| p.as_ref().ok());
    let v_before = proc_of(Arrival::Before, Method::Vezasock);
    let v_every = proc_of(Arrival::EveryFlip, Method::Vezasock);
    for m in [
        Method::Library,
        Method::Reload,
        Method::ReloadSeed,
        Method::Socat,
    ] {
        let (a_seen, a_cmd) = lat(m);
        let fails = match (r.load.get(m.short()).and_then(|l| l.as_ref().ok()), v_load) {
            (Some(a), Some(v)) => format!("{} / {}", a.failed(), v.failed()),
            _ => "–".to_string(),
        };
        let procs_before = match (proc_of(Arrival::Before, m), v_before) {
            (Some(a), Some(v)) => format!("{} / {}", a.after.count, v.after.count),
            _ => "–".to_string(),
        };
        let (procs_every, rss) = match (proc_of(Arrival::EveryFlip, m), v_every) {
            (Some(a), Some(v)) => (
                format!("{} / {}", a.after.count, v.after.count),
                ratio(a.after.rss_kb as f64, v.after.rss_kb as f64),
            ),
            _ => ("–".to_string(), "–".to_string()),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} |",
            m.name(),
            ratio(a_seen, v_seen),
            ratio(a_cmd, v_cmd),
            fails,
            procs_before,
            procs_every,
            rss
        );
    }

    let (r_seen, _) = lat(Method::Reload);
    let (_, s_cmd) = lat(Method::Socat);
    let speedup = r_seen / v_cmd;
    let _ = writeln!(s, "\n**Goals** (HAProxy {}):\n", r.label);
    let _ = writeln!(
        s,
        "- {} vezasock's whole switch (command p50 {} ms: lock, read, gate, write-through, flip, read-back, record) ≥ 30× faster than the reload flip (new color seen at p50 {} ms): {}",
        pass(speedup >= 30.0),
        cell_ms(v_cmd),
        cell_ms(r_seen),
        ratio(r_seen, v_cmd)
    );
    // Flip latency as the issue defines it: command start → first answer of the new color,
    // for both (the binary's record step then runs after traffic has already flipped).
    let seen_speedup = r_seen / v_seen;
    let _ = writeln!(
        s,
        "- {} flip latency (command start → new color seen) of the binary ≥ 30× shorter than the reload flip's: {} ms vs {} ms, {}",
        pass(seen_speedup >= 30.0),
        cell_ms(v_seen),
        cell_ms(r_seen),
        ratio(r_seen, v_seen)
    );
    let (s_seen, _) = lat(Method::Socat);
    let _ = writeln!(
        s,
        "- {} flip latency of the binary no longer than one bare socat call's: {} ms vs {} ms",
        pass(v_seen <= s_seen),
        cell_ms(v_seen),
        cell_ms(s_seen)
    );
    // The switch itself (gate, write-through, flip, read-back), without the process start
    // that the binary and socat both pay.
    let (_, l_cmd) = lat(Method::Library);
    let lib_speedup = r_seen / l_cmd;
    let _ = writeln!(
        s,
        "- {} the same whole switch as a library call (command p50 {} ms, no process start) ≥ 30× faster than the reload flip: {}",
        pass(lib_speedup >= 30.0),
        cell_ms(l_cmd),
        ratio(r_seen, l_cmd)
    );
    let _ = writeln!(
        s,
        "- {} vezasock's whole switch no slower than one bare socat call (command p50 {} ms vs {} ms)",
        pass(v_cmd <= s_cmd),
        cell_ms(v_cmd),
        cell_ms(s_cmd)
    );
    let reload_fails: u64 = [Method::Reload, Method::ReloadSeed]
        .iter()
        .filter_map(|m| r.load.get(m.short()).and_then(|l| l.as_ref().ok()))
        .map(LoadReport::failed)
        .sum();
    match v_load {
        Some(v) => {
            let _ = writeln!(
                s,
                "- {} zero failed requests for vezasock ({} of {}) where the reload flips had {} (both variants together){}",
                pass(v.failed() == 0),
                v.failed(),
                v.sent(),
                reload_fails,
                if reload_fails == 0 { "; note: the reload flips failed none in this run" } else { "" }
            );
        }
        None => {
            let _ = writeln!(
                s,
                "- MISS zero failed requests: the vezasock load run did not complete"
            );
        }
    }
    match (v_before, v_every) {
        (Some(b), Some(e)) => {
            // Master + one worker, in both arrivals.
            let reload = proc_of(Arrival::EveryFlip, Method::Reload)
                .map(|p| {
                    format!(
                        "; the reload flip left {} processes, {:.0} MB",
                        p.after.count,
                        p.after.rss_kb as f64 / 1024.0
                    )
                })
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "- {} still one HAProxy worker after {} vezasock flips with long requests in flight ({} processes with the streams opened before, {} with a new stream per flip: master + worker){reload}",
                pass(b.after.count == 2 && e.after.count == 2),
                e.flips.min(b.flips),
                b.after.count,
                e.after.count,
            );
        }
        _ => {
            let _ = writeln!(
                s,
                "- MISS one worker after the flips: a vezasock run did not complete"
            );
        }
    }
    match &r.throughput {
        Some(Ok(t)) => {
            s.push('\n');
            report_throughput(&mut s, t);
        }
        Some(Err(e)) => {
            let _ = writeln!(
                s,
                "\n**4. What the rendered edge costs**: failed: {}\n",
                one_line(e)
            );
        }
        None => {}
    }
    s
}

fn one_line(s: &str) -> String {
    let line: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let line = line.replace('|', "\\|");
    if line.chars().count() > 160 {
        let cut: String = line.chars().take(160).collect();
        format!("{cut}…")
    } else {
        line
    }
}

// ------------------------------------------------------------------------------------------
// The chart.

/// A strip plot per version × method of the "seen" latency, log scale, with the p50 marked.
fn svg(results: &[VersionResult]) -> String {
    let mut rows: Vec<(String, Vec<f64>)> = Vec::new();
    for r in results {
        for m in ALL {
            if let Some(Ok(l)) = r.latency.get(m.short()) {
                rows.push((format!("{} · {}", r.label, m.short()), l.seen.clone()));
            }
        }
    }
    let all: Vec<f64> = rows
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .filter(|x| *x > 0.0)
        .collect();
    let lo = all.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = all.iter().copied().fold(0.0, f64::max);
    let (lo_dec, hi_dec) = if all.is_empty() {
        (-1, 3)
    } else {
        (lo.log10().floor() as i32, hi.log10().ceil() as i32)
    };
    let hi_dec = hi_dec.max(lo_dec + 1);
    let (left, right, top, row_h) = (230.0, 30.0, 50.0, 26.0);
    let plot_w = 620.0;
    let width = left + plot_w + right;
    let height = top + row_h * rows.len() as f64 + 50.0;
    let x = |v: f64| {
        let t = (v.max(1e-6).log10() - lo_dec as f64) / (hi_dec - lo_dec) as f64;
        left + t.clamp(0.0, 1.0) * plot_w
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r##"<rect width="100%" height="100%" fill="white"/>"##);
    let _ = writeln!(
        s,
        r#"<text x="{left}" y="22" font-size="14" font-weight="bold">Flip latency: command start → first answer of the new color (ms, log scale)</text>"#
    );
    let _ = writeln!(
        s,
        r##"<text x="{left}" y="38" fill="#555">each dot one flip; the bar is the median</text>"##
    );
    let bottom = top + row_h * rows.len() as f64;
    for d in lo_dec..=hi_dec {
        for k in 1..10 {
            let v = 10f64.powi(d) * k as f64;
            if v > 10f64.powi(hi_dec) {
                break;
            }
            let xx = x(v);
            let (stroke, w) = if k == 1 { ("#bbb", 1.0) } else { ("#eee", 0.5) };
            let _ = writeln!(
                s,
                r#"<line x1="{xx:.1}" y1="{top}" x2="{xx:.1}" y2="{bottom}" stroke="{stroke}" stroke-width="{w}"/>"#
            );
            if k == 1 {
                let label = if d < 0 {
                    format!("{v}")
                } else {
                    format!("{v:.0}")
                };
                let _ = writeln!(
                    s,
                    r##"<text x="{xx:.1}" y="{:.1}" text-anchor="middle" fill="#333">{label}</text>"##,
                    bottom + 16.0
                );
            }
        }
    }
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#333">milliseconds</text>"##,
        left + plot_w / 2.0,
        bottom + 34.0
    );
    for (i, (label, values)) in rows.iter().enumerate() {
        let cy = top + row_h * i as f64 + row_h / 2.0;
        let color = if label.contains("vezasock") || label.contains("library") {
            "#1f77b4"
        } else if label.contains("socat") {
            "#7f7f7f"
        } else {
            "#d62728"
        };
        if i % 2 == 0 {
            let _ = writeln!(
                s,
                r##"<rect x="{left}" y="{:.1}" width="{plot_w}" height="{row_h}" fill="#f7f7f7" fill-opacity="0.6"/>"##,
                cy - row_h / 2.0
            );
        }
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            left - 8.0,
            cy + 4.0,
            xml(label)
        );
        for (j, v) in values.iter().enumerate() {
            // A small vertical jitter so equal values stay visible.
            let dy = ((j * 7) % 11) as f64 - 5.0;
            let _ = writeln!(
                s,
                r##"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{color}" fill-opacity="0.55"/>"##,
                x(*v),
                cy + dy
            );
        }
        let med = p50(values);
        if !med.is_nan() {
            let xx = x(med);
            let _ = writeln!(
                s,
                r##"<line x1="{xx:.1}" y1="{:.1}" x2="{xx:.1}" y2="{:.1}" stroke="black" stroke-width="2"/>"##,
                cy - 10.0,
                cy + 10.0
            );
        }
    }
    let _ = writeln!(s, "</svg>");
    s
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

// ------------------------------------------------------------------------------------------

fn machine() -> String {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string());
    format!("{cores} cores ({cpu}), Linux {}", kernel.trim())
}

fn today() -> String {
    Process::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn out_dir() -> PathBuf {
    std::env::var_os("VEZASOCK_BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/bench"))
}

fn main() {
    let flips = env_usize("VEZASOCK_BENCH_FLIPS", 30);
    let load_flips = env_usize("VEZASOCK_BENCH_LOAD_FLIPS", 50);
    let proc_flips = env_usize("VEZASOCK_BENCH_PROC_FLIPS", 100);
    let versions = haproxy::versions_for_bench();
    if Process::new("socat").arg("-V").output().is_err() {
        eprintln!(
            "socat is not installed: the socat rows will show the error (apt-get install socat)"
        );
    }

    let mut results = Vec::new();
    for h in &versions {
        results.push(run_version(h, flips, load_flips, proc_flips));
    }

    println!("## Flip: vezasock switch vs a reload flip vs one socat call\n");
    println!(
        "Run {} on {}; HAProxy {}. Command: `cargo bench --bench flip`.\n",
        today(),
        machine(),
        if versions.is_empty() {
            "none found (run scripts/install-haproxy.sh)".to_string()
        } else {
            versions
                .iter()
                .map(|v| v.label)
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    println!("Every method runs on a fresh local edge (the embedded veza topology, loopback backends, master-worker HAProxy). The reload flip re-renders config and maps, runs `haproxy -c` on the candidate, renames it into place and reloads through the master CLI, waiting for the new worker, as the seed pipeline did on every deploy.\n");
    for r in &results {
        println!("{}", report_version(r, flips, load_flips, proc_flips));
    }

    if !part("latency") {
        // The chart is of the latency part: keep the last full run's.
        return;
    }
    let dir = out_dir();
    let path = dir.join("flip-latency.svg");
    match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, svg(&results))) {
        Ok(()) => println!(
            "Chart: `{}`.",
            path.strip_prefix(env!("CARGO_MANIFEST_DIR"))
                .unwrap_or(&path)
                .display()
        ),
        Err(e) => eprintln!("cannot write {}: {e}", path.display()),
    }
}
