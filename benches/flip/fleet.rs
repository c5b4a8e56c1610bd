//! Part 6 (`VEZASOCK_BENCH_PARTS=fleet`, issue 14): `vezasock switch --fleet F` on 1, 3 and 10
//! local edges ([`LocalFleet`]: one small HAProxy each, with its own topology file), the
//! command's time, the coordinator's `commit_skew_ms` (`--json`), the skew seen from outside
//! (first to last edge answering the new color, one keep-alive poller per edge), and the
//! ratio to a single-edge `vezasock switch` in the same run. With `VEZASOCK_BENCH_BASELINE`
//! (issue 21) the baseline binary flips the same fleet in the same rounds, pair by pair
//! ([`super::baseline`]). Part 8, the fleet canary step (`fleet_canary.rs`), starts its own
//! [`LocalFleet`].

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use vezasock::demo::LocalEdge;
use vezasock::edge::Edge;
use vezasock::topology::{Color, Topology};

use super::baseline::{self, Build};
use super::support::haproxy;
use super::{
    cell_ms, ms, p50, p50_ratio, pass, pct, ratio, sorted, wait_edge_healthy, Poller, HOST,
    SEE_LIMIT,
};

/// The fleet sizes measured.
pub const FLEET_SIZES: [usize; 3] = [1, 3, 10];

/// One fleet size's samples, milliseconds.
#[derive(Debug, Clone, Default)]
struct FleetSize {
    edges: usize,
    /// Command start → exit, from outside (flips without pollers).
    command_ms: Vec<f64>,
    /// The coordinator's own `total_ms` and `commit_skew_ms` (`--json`).
    total_ms: Vec<f64>,
    commit_skew_ms: Vec<f64>,
    /// First → last edge answering the new color on a keep-alive poller (flips with pollers).
    seen_skew_ms: Vec<f64>,
    /// Flips after which an edge's keep-alive poller did not see the new color within
    /// `SEE_LIMIT` though the command succeeded: what it saw, and what the edge said then.
    stale: Vec<String>,
    /// The baseline binary's flips in the same rounds (`VEZASOCK_BENCH_BASELINE`), pair `i`
    /// beside `command_ms[i]`: its command time and its own `commit_skew_ms`.
    baseline_command_ms: Vec<f64>,
    baseline_commit_skew_ms: Vec<f64>,
}

/// What an edge serves when its keep-alive poller missed a flip: 20 new connections and the
/// runtime map (`show map` through socat on the admin socket).
fn stale_report(edge: &LocalEdge, i: usize, flip: usize, color: Color, why: &str) -> String {
    let mut tally = BTreeMap::new();
    for _ in 0..20 {
        let a = vezasock::demo::http::get(edge.http, HOST, "/", Duration::from_secs(2))
            .map(|a| a.body)
            .unwrap_or_else(|e| e.to_string());
        *tally.entry(a).or_insert(0) += 1;
    }
    let map = edge.topology.paths.active_color_map();
    let live = Process::new("socat")
        .arg("-")
        .arg(format!(
            "UNIX-CONNECT:{}",
            edge.topology.paths.admin_socket.display()
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            if let Some(mut input) = c.stdin.take() {
                let _ = writeln!(input, "show map {}", map.display());
            }
            c.wait_with_output()
        })
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|e| e.to_string());
    let report = format!(
        "flip {flip} to {color}, {}: keep-alive poller: {why}; 20 new connections: {tally:?}; \
         show map: {live}",
        fleet_edge_name(i)
    );
    eprintln!("fleet: STALE {report}");
    report
}

/// Part 6's samples.
#[derive(Debug, Clone, Default)]
pub struct FleetBench {
    /// The baseline binary that flipped beside this build, if any.
    baseline: Option<PathBuf>,
    /// A single-edge `vezasock switch` (binary) on the first edge, same run, command time.
    single_ms: Vec<f64>,
    sizes: Vec<FleetSize>,
}

/// `edge-a` … `edge-j`.
pub fn fleet_edge_name(i: usize) -> String {
    let letter = char::from(b'a' + u8::try_from(i % 26).unwrap_or(0));
    format!("edge-{letter}")
}

/// Edge `local`'s topology file: the veza example (the embedded topology) with its `[paths]`
/// table replaced by the edge's own paths: what the single-edge switch below sees through the
/// environment. Checked by loading it back.
fn topology_file(local: &LocalEdge, file: &Path) -> Result<(), String> {
    let example = include_str!("../../examples/veza.toml");
    let start = example
        .find("\n[paths]\n")
        .map(|i| i + 1)
        .ok_or("examples/veza.toml has no [paths] table")?;
    let body = start + "[paths]\n".len();
    let end = example[body..]
        .find("\n[")
        .map(|i| body + i + 1)
        .ok_or("examples/veza.toml ends in its [paths] table")?;
    let p = &local.topology.paths;
    let mut table = String::from("[paths]\n");
    for (key, path) in [
        ("config", &p.config),
        ("maps_dir", &p.maps_dir),
        ("admin_socket", &p.admin_socket),
        ("operator_socket", &p.operator_socket),
        ("master_socket", &p.master_socket),
        ("server_state_file", &p.server_state_file),
        ("state_dir", &p.state_dir),
        ("haproxy", &p.haproxy),
        ("pid_file", &p.pid_file),
    ] {
        let _ = writeln!(table, "{key} = {:?}", path.display().to_string());
    }
    let _ = writeln!(table, "reload_method = \"{}\"\n", p.reload_method);
    let text = format!("{}{table}{}", &example[..start], &example[end..]);
    std::fs::write(file, text).map_err(|e| format!("write {}: {e}", file.display()))?;
    let loaded = Topology::load(file).map_err(|e| format!("{}: {e}", file.display()))?;
    if loaded.paths != *p {
        return Err(format!(
            "{}: loads other paths: {:?} vs {p:?}",
            file.display(),
            loaded.paths
        ));
    }
    Ok(())
}

/// A fleet file naming `edges` (`edge-a` …), each with its topology file.
fn fleet_file(configs: &[PathBuf], state_dir: &Path) -> String {
    let q = |p: &Path| format!("{:?}", p.display().to_string());
    let mut text = format!("state_dir = {}\n", q(state_dir));
    for (i, config) in configs.iter().enumerate() {
        let _ = write!(
            text,
            "\n[[edge]]\nname = \"{}\"\nconfig = {}\n",
            fleet_edge_name(i),
            q(config)
        );
    }
    text
}

/// `edges` local edges (`edge-a` …), each with its topology file, healthy, and the fleet files
/// that name the first few of them: what parts 6 and 8 flip.
pub struct LocalFleet {
    pub edges: Vec<LocalEdge>,
    configs: Vec<PathBuf>,
    /// The fleet's own state (its `state_dir`), shared by every fleet file.
    state_dir: PathBuf,
    // Last: the edges (their HAProxy) stop before their directory goes.
    dir: tempfile::TempDir,
}

impl LocalFleet {
    /// Starts `edges` local edges on `h` and waits until every server of each is healthy.
    pub fn start(h: &haproxy::Haproxy, edges: usize) -> Result<LocalFleet, String> {
        let topology = Topology::embedded_default().map_err(|e| e.to_string())?;
        let dir = tempfile::Builder::new()
            .prefix("vezasock-bench-fleet-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("tokio: {e}"))?;
        let mut fleet = LocalFleet {
            edges: Vec::with_capacity(edges),
            configs: Vec::with_capacity(edges),
            state_dir: dir.path().join("fleet-state"),
            dir,
        };
        for i in 0..edges {
            let name = fleet_edge_name(i);
            let edge_dir = fleet.dir.path().join(&name);
            let local = LocalEdge::start(&topology, &h.bin, &edge_dir, &BTreeMap::new())
                .map_err(|e| format!("{name}: {e}"))?;
            let config = edge_dir.join("topology.toml");
            topology_file(&local, &config)?;
            fleet.edges.push(local);
            fleet.configs.push(config);
        }
        for (i, e) in fleet.edges.iter().enumerate() {
            wait_edge_healthy(&rt, &Edge::new(e.topology.clone()), Duration::from_secs(30))
                .map_err(|err| format!("{}: {err}", fleet_edge_name(i)))?;
        }
        Ok(fleet)
    }

    /// Writes the fleet file naming the first `size` edges; returns its path.
    pub fn file(&self, size: usize) -> Result<String, String> {
        let file = self.dir.path().join(format!("fleet-{size}.toml"));
        let text = fleet_file(
            &self.configs[..size.min(self.configs.len())],
            &self.state_dir,
        );
        std::fs::write(&file, text).map_err(|e| format!("write {}: {e}", file.display()))?;
        Ok(file.display().to_string())
    }

    /// The first edge's paths as environment variables: how a single-edge command reaches it.
    pub fn first_edge_env(&self) -> Vec<(&'static str, OsString)> {
        self.edges
            .first()
            .map(LocalEdge::cli_env)
            .unwrap_or_default()
    }
}

/// `vezasock ARGS` of `build` with nothing from the caller's environment pointing at an edge
/// but `env`; returns its stdout, or the error with its stderr.
pub fn run_scrubbed(
    build: Build,
    args: &[&str],
    env: &[(&'static str, OsString)],
) -> Result<String, String> {
    let mut run = build.command(args).who("bench");
    for (key, value) in env {
        run = run.env(key, value);
    }
    let out = run.run();
    if out.code == Some(0) {
        Ok(out.out)
    } else {
        Err(format!(
            "{} {} exited {:?}: {}",
            build.name(),
            args.join(" "),
            out.code,
            out.err.trim()
        ))
    }
}

/// One fleet switch's times, milliseconds: from outside, and the coordinator's `--json`.
struct FleetSwitch {
    command: f64,
    total: f64,
    commit_skew: f64,
}

/// `vezasock switch --fleet FILE staging <color> --json` of `build`, timed.
fn fleet_switch(build: Build, file: &str, color: Color) -> Result<FleetSwitch, String> {
    let args = [
        "switch",
        "--fleet",
        file,
        "staging",
        color.as_str(),
        "--json",
    ];
    let t0 = Instant::now();
    let out = run_scrubbed(build, &args, &[])?;
    let command = ms(t0.elapsed());
    let j: serde_json::Value = serde_json::from_str(out.trim())
        .map_err(|e| format!("{} fleet switch --json: {e}: {out}", build.name()))?;
    let number = |key: &str| {
        j[key].as_f64().ok_or_else(|| {
            format!(
                "{} fleet switch --json has no number {key}: {j}",
                build.name()
            )
        })
    };
    Ok(FleetSwitch {
        command,
        total: number("total_ms")?,
        commit_skew: number("commit_skew_ms")?,
    })
}

/// Part 6 on a fresh fleet of the largest size: `flips` flips per size (rounded up to even,
/// so every edge ends each series on the color it started it on).
pub fn measure(h: &haproxy::Haproxy, flips: usize) -> Result<FleetBench, String> {
    let flips = flips.div_ceil(2) * 2;
    let most = FLEET_SIZES.iter().copied().max().unwrap_or(1);
    let fleet = LocalFleet::start(h, most)?;
    let base = baseline::program();
    let mut result = FleetBench {
        baseline: base.clone(),
        ..FleetBench::default()
    };
    // The reference: one edge, the plain switch, its paths in the environment.
    let env = fleet.first_edge_env();
    let mut color = Color::Blue;
    for _ in 0..flips {
        color = color.other();
        let t0 = Instant::now();
        run_scrubbed(Build::This, &["switch", "staging", color.as_str()], &env)?;
        result.single_ms.push(ms(t0.elapsed()));
    }
    for size in FLEET_SIZES {
        eprintln!(
            "[{}] fleet: {size} edge(s), {flips} + {flips} flips{}",
            h.label,
            if base.is_some() {
                ", the baseline binary's beside the first"
            } else {
                ""
            }
        );
        let file = fleet.file(size)?;
        let mut r = FleetSize {
            edges: size,
            ..FleetSize::default()
        };
        // Without pollers: the command's own time and the coordinator's numbers; the baseline
        // binary's flips in the same rounds.
        for round in 0..flips {
            for build in baseline::round(round, base.as_deref()) {
                color = color.other();
                let s = fleet_switch(build, &file, color)?;
                if let Build::Baseline(_) = build {
                    r.baseline_command_ms.push(s.command);
                    r.baseline_commit_skew_ms.push(s.commit_skew);
                } else {
                    r.command_ms.push(s.command);
                    r.total_ms.push(s.total);
                    r.commit_skew_ms.push(s.commit_skew);
                }
            }
        }
        color = seen_skews(&fleet, &file, &mut r, flips, color)?;
        result.sizes.push(r);
    }
    Ok(result)
}

/// `flips` fleet switches with one keep-alive poller per edge: when each edge first answers
/// the new color (`seen_skew_ms`, or a `stale` report). Returns the color left live.
fn seen_skews(
    fleet: &LocalFleet,
    file: &str,
    r: &mut FleetSize,
    flips: usize,
    mut color: Color,
) -> Result<Color, String> {
    let edges = &fleet.edges[..r.edges];
    let pollers: Vec<Poller> = edges.iter().map(|e| Poller::start(e.http)).collect();
    let result = (|| {
        for flip in 0..flips {
            color = color.other();
            let start = Instant::now();
            for p in &pollers {
                p.ask
                    .send((color, start))
                    .map_err(|_| "a poller stopped".to_string())?;
            }
            let args = ["switch", "--fleet", file, "staging", color.as_str()];
            run_scrubbed(Build::This, &args, &[])?;
            let mut seen = Vec::with_capacity(edges.len());
            for (i, p) in pollers.iter().enumerate() {
                match p.seen.recv() {
                    Ok(Ok(d)) => seen.push(ms(d)),
                    Ok(Err(why)) => r.stale.push(stale_report(&edges[i], i, flip, color, &why)),
                    Err(_) => return Err("a poller stopped".to_string()),
                }
            }
            if seen.len() < edges.len() {
                // A skew needs every edge's first answer.
                continue;
            }
            r.seen_skew_ms.push(spread(&seen));
        }
        Ok(color)
    })();
    for p in pollers {
        p.stop();
    }
    result
}

/// The last minus the first of `times`: the skew between edges.
pub fn spread(times: &[f64]) -> f64 {
    let first = times.iter().copied().fold(f64::INFINITY, f64::min);
    let last = times.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    last - first
}

/// Part 6's report: a row per fleet size, the goal lines, and the baseline's table.
pub fn report(s: &mut String, f: &FleetBench, flips: usize) {
    let single = p50(&f.single_ms);
    let _ = writeln!(
        s,
        "**6. Fleet flip** (issue 14): `vezasock switch --fleet F staging <color>` on 1, 3 and 10 \
         local edges (one HAProxy each, its own topology file), {flips} flips per size without \
         pollers (command time from outside; `total_ms` and `commit_skew_ms` from its `--json`) \
         and {flips} with one keep-alive poller per edge (*seen skew*: first to last edge \
         answering the new color). Single-edge `vezasock switch` in the same run: p50 {} ms.\n",
        cell_ms(single)
    );
    let _ = writeln!(
        s,
        "| edges | command p50 | command p95 | ÷ single switch | total_ms p50 | commit skew p50 / max | seen skew p50 / max |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for r in &f.sizes {
        let cmd = sorted(&r.command_ms);
        let skew = sorted(&r.commit_skew_ms);
        let seen = sorted(&r.seen_skew_ms);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} / {} | {} / {} |",
            r.edges,
            cell_ms(pct(&cmd, 0.5)),
            cell_ms(pct(&cmd, 0.95)),
            ratio(pct(&cmd, 0.5), single),
            cell_ms(p50(&r.total_ms)),
            cell_ms(pct(&skew, 0.5)),
            cell_ms(skew.last().copied().unwrap_or(f64::NAN)),
            cell_ms(pct(&seen, 0.5)),
            cell_ms(seen.last().copied().unwrap_or(f64::NAN)),
        );
    }
    let size = |n: usize| f.sizes.iter().find(|r| r.edges == n);
    s.push('\n');
    for r in &f.sizes {
        if let Some(first) = r.stale.first() {
            let _ = writeln!(
                s,
                "- STALE on {} edge(s): {} times (edge, flip) over {flips} flips a keep-alive \
                 connection stayed on the old color for {SEE_LIMIT:?} after the command succeeded; \
                 first: {}",
                r.edges,
                r.stale.len(),
                first.replace('|', "\\|")
            );
        }
    }
    if let Some(three) = size(3) {
        let seen = p50(&three.seen_skew_ms);
        let coord = p50(&three.commit_skew_ms);
        let _ = writeln!(
            s,
            "- {} commit skew ≤ 1 ms on 3 local edges: seen from outside p50 {} ms, by the coordinator p50 {} ms",
            pass(seen <= 1.0),
            cell_ms(seen),
            cell_ms(coord)
        );
        let cmd = p50(&three.command_ms);
        let _ = writeln!(
            s,
            "- {} 3 edges ≤ 2× a single-edge switch: {} ms vs {} ms ({})",
            pass(cmd <= 2.0 * single),
            cell_ms(cmd),
            cell_ms(single),
            ratio(cmd, single)
        );
    }
    if let Some(ten) = size(10) {
        let seen = p50(&ten.seen_skew_ms);
        let coord = p50(&ten.commit_skew_ms);
        let _ = writeln!(
            s,
            "- {} commit skew ≤ 1 ms on 10 local edges: seen from outside p50 {} ms, by the coordinator p50 {} ms",
            pass(seen <= 1.0),
            cell_ms(seen),
            cell_ms(coord)
        );
    }
    if let (Some(one), Some(ten)) = (size(1), size(10)) {
        let (a, b) = (p50(&one.command_ms), p50(&ten.command_ms));
        let _ = writeln!(
            s,
            "- {} cost sub-linear in the number of edges: 10 edges {} ms vs 1 edge {} ms ({} for 10× the edges)",
            pass(b < 10.0 * a),
            cell_ms(b),
            cell_ms(a),
            ratio(b, a)
        );
    }
    s.push('\n');
    report_baseline(s, f);
}

/// This build ÷ the baseline binary, per fleet size, pair by pair (with a baseline only).
fn report_baseline(s: &mut String, f: &FleetBench) {
    let Some(program) = &f.baseline else {
        return;
    };
    let _ = writeln!(
        s,
        "Against the baseline binary (`VEZASOCK_BENCH_BASELINE={}`), flipping the same fleet in \
         the same rounds (one flip each per round, the order alternating): command time from \
         outside and the coordinator's `commit_skew_ms`, p50; ratio: p50 of the per-pair ratios.\n",
        program.display()
    );
    let _ = writeln!(
        s,
        "| edges | pairs | this build | baseline | this ÷ baseline | commit skew this / baseline |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for r in &f.sizes {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.2}× | {} / {} |",
            r.edges,
            r.baseline_command_ms.len().min(r.command_ms.len()),
            cell_ms(p50(&r.command_ms)),
            cell_ms(p50(&r.baseline_command_ms)),
            p50_ratio(&r.command_ms, &r.baseline_command_ms),
            cell_ms(p50(&r.commit_skew_ms)),
            cell_ms(p50(&r.baseline_commit_skew_ms)),
        );
    }
    s.push('\n');
}
