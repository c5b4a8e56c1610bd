//! Scale benchmark (not a test): how `status` and `switch` grow with the size of the edge.
//!
//! Synthetic edges of 10, 100 and 500 envs × 3 components (api / stream / web, blue + green:
//! 60, 600 and 3,000 servers), written as topology TOML. Every server points at ONE shared
//! loopback backend (`demo::backend::Backend`), so HAProxy really health-checks 3,000 servers
//! without 3,000 listeners. HAProxy is started from the rendered files (master-worker, its own
//! process group); once every check has passed, this times, per size:
//!
//! - `edge::status::status` (the library call) and `vezasock status` (the binary);
//! - one `switch` of one env: `edge::deploy::switch::switch` and `vezasock switch`.
//!
//! Prints a markdown table with the cost per size and the growth factor between sizes (the
//! goal: linear, `status` under 100 ms at 500 envs). Run: `cargo bench --bench scale`.
//! Knobs: `VEZASOCK_BENCH_VERSIONS=3.2` (comma list; default every version found),
//! `VEZASOCK_BENCH_SCALE_SIZES=10,100,500`, `VEZASOCK_BENCH_SCALE_REPS=5`.
//!
//! The health-check interval is the template's (`inter 2s`, not a topology option), so 3,000
//! servers mean about 1,500 checks a second on this machine while the timings run: that load
//! is part of what a real edge of that size carries.

#[path = "../integration/support/mod.rs"]
#[allow(dead_code, unused_imports, unused_macros)]
mod support;

use support::haproxy;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant};

use vezasock::demo::backend::Backend;
use vezasock::edge::deploy::switch::{switch, SwitchRequest};
use vezasock::edge::status::status;
use vezasock::edge::Edge;
use vezasock::render::render;
use vezasock::render::write::write_rendered;
use vezasock::runtime::command::servers::OpState;
use vezasock::topology::{Color, Topology};

const COMPONENTS: [&str; 3] = ["api", "stream", "web"];

/// The topology text of `envs` envs, every server on `backend`, files under `dir`.
fn synthetic(envs: usize, backend: u16, http: u16, dir: &Path, haproxy: &Path) -> String {
    let d = dir.display();
    let mut s = String::new();
    let _ = writeln!(s, "name = \"scale{envs}\"\ncontainer_domain = \"lxd\"\ncookie = \"srv\"\nfailover = \"none\"\n");
    let _ = writeln!(s, "[listen]\nhttp = \"127.0.0.1:{http}\"\n");
    let _ = writeln!(s, "[timeouts]\nconnect = \"5s\"\nclient = \"60s\"\nserver = \"60s\"\ntunnel = \"1h\"\nhttp_request = \"10s\"\ncheck = \"3s\"\n");
    let _ = writeln!(
        s,
        "[paths]\nconfig = \"{d}/haproxy.cfg\"\nmaps_dir = \"{d}\"\nadmin_socket = \"{d}/admin.sock\"\noperator_socket = \"{d}/operator.sock\"\nmaster_socket = \"{d}/master.sock\"\nserver_state_file = \"{d}/server-state\"\nstate_dir = \"{d}/state\"\nhaproxy = \"{}\"\npid_file = \"{d}/haproxy.pid\"\nreload_method = \"master-cli\"\n",
        haproxy.display()
    );
    let _ = writeln!(
        s,
        "[[component]]\nname = \"api\"\npaths = [\"/api\"]\nport = 8080\ncheck = \"/api/health\"\n"
    );
    let _ = writeln!(s, "[[component]]\nname = \"stream\"\npaths = [\"/stream\"]\nport = 8081\ncheck = \"/stream/health\"\nhttp_no_delay = true\n");
    let _ = writeln!(
        s,
        "[[component]]\nname = \"web\"\nport = 3000\ncheck = \"/\"\n"
    );
    let addr = format!("\"127.0.0.1:{backend}\"");
    for i in 0..envs {
        let _ = writeln!(
            s,
            "[[env]]\nname = \"e{i:04}\"\nhosts = [\"e{i:04}.bench.test\"]\ncomponents = [\"api\", \"stream\", \"web\"]\n[env.servers]"
        );
        for c in COMPONENTS {
            let _ = writeln!(s, "{c} = {{ blue = [{addr}], green = [{addr}] }}");
        }
        s.push('\n');
    }
    s
}

/// A master-worker HAProxy in its own process group, killed (group and all) on drop.
struct Running {
    child: Child,
}

impl Running {
    fn start(topology: &Topology, dir: &Path) -> Result<Running, String> {
        let p = &topology.paths;
        let log = std::fs::File::create(dir.join("haproxy.log")).map_err(|e| e.to_string())?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let child = Process::new(&p.haproxy)
            .arg("-W")
            .arg("-S")
            .arg(format!("{},level,admin", p.master_socket.display()))
            .arg("-f")
            .arg(&p.config)
            .arg("-p")
            .arg(&p.pid_file)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("start {}: {e}", p.haproxy.display()))?;
        let mut running = Running { child };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = running.child.try_wait() {
                let log = std::fs::read_to_string(dir.join("haproxy.log")).unwrap_or_default();
                return Err(format!("HAProxy exited with {status}: {log}"));
            }
            if UnixStream::connect(&p.admin_socket).is_ok()
                && UnixStream::connect(&p.operator_socket).is_ok()
                && UnixStream::connect(&p.master_socket).is_ok()
            {
                return Ok(running);
            }
            if Instant::now() > deadline {
                running.kill();
                return Err("no sockets after 30 s".to_string());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        vezasock::demo::edge::kill_group(&mut self.child);
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Every server running with a passed check (the switch gate's rule); returns the wait.
async fn wait_healthy(edge: &Edge, limit: Duration) -> Result<Duration, String> {
    let start = Instant::now();
    loop {
        let mut last = String::new();
        match edge.admin_session().await {
            Ok(mut s) => match s.show_servers_state(None).await {
                Ok(state) => {
                    let down = state
                        .rows
                        .iter()
                        .filter(|r| {
                            r.op != OpState::Running
                                || (r.check_state & 0x02 != 0 && !matches!(r.check_result, 3 | 4))
                        })
                        .count();
                    if down == 0 && !state.rows.is_empty() {
                        return Ok(start.elapsed());
                    }
                    last = format!("{down} of {} servers not yet healthy", state.rows.len());
                }
                Err(e) => last = e.to_string(),
            },
            Err(e) => last.push_str(&e.to_string()),
        }
        if start.elapsed() > limit {
            return Err(format!("after {limit:?}: {last}"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `vezasock ARGS --config <file>`, with no path override from the environment.
fn binary(args: &[&str], config: &Path) -> Result<(Duration, String), String> {
    let start = Instant::now();
    let out = support::run::Vezasock::config(config, args)
        .who("bench")
        .run();
    let took = start.elapsed();
    if out.code == Some(0) {
        Ok((took, out.out))
    } else {
        Err(format!(
            "vezasock {} exited {:?}: {}",
            args.join(" "),
            out.code,
            out.err.trim()
        ))
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The validated topology when the file is within the topology's limits; otherwise the
/// same edge built in code from a one-env file (the binary will refuse the file, and says so).
fn build_topology(
    envs: usize,
    backend: u16,
    http: u16,
    dir: &Path,
    haproxy: &Path,
) -> Result<(Topology, Option<String>), String> {
    let full = synthetic(envs, backend, http, dir, haproxy);
    match Topology::from_toml(&full, "scale.toml") {
        Ok(t) => Ok((t, None)),
        Err(refused) => {
            let one = synthetic(1, backend, http, dir, haproxy);
            let mut t = Topology::from_toml(&one, "scale.toml").map_err(|e| e.to_string())?;
            let first = t
                .envs
                .first()
                .cloned()
                .ok_or("no env in the one-env topology")?;
            t.envs = (0..envs)
                .map(|i| {
                    let name = format!("e{i:04}");
                    let mut e = first.clone();
                    e.prefix = e.prefix.replace(&first.name, &name);
                    e.cookie = e.cookie.replace(&first.name, &name);
                    e.hosts = vec![format!("{name}.bench.test")];
                    e.name = name;
                    e
                })
                .collect();
            Ok((t, Some(one_line(&refused.to_string()))))
        }
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

/// Where the time of one library `status` goes, measured piece by piece from outside.
#[derive(Debug, Clone, Default)]
struct StatusParts {
    /// The operator-socket batch (show info, show stat, show servers state, show map): round
    /// trip and reading, no parsing.
    batch: f64,
    /// Parsing those four replies.
    parse: f64,
    /// Master `show proc`.
    show_proc: f64,
    /// Per-env state files: recorded color + history, for every env.
    files: f64,
    /// `show stat` alone (round trip and read), then parsed.
    stat_alone: f64,
    stat_parse: f64,
    /// `show servers state` alone (round trip and read).
    states_alone: f64,
}

async fn status_parts(edge: &Edge) -> Result<StatusParts, String> {
    use vezasock::runtime::command::info::ShowInfo;
    use vezasock::runtime::command::maps::ShowMap;
    use vezasock::runtime::command::servers::ShowServersState;
    use vezasock::runtime::command::stat::ShowStat;
    use vezasock::runtime::session::Batch;
    let err = |e: vezasock::runtime::Error| e.to_string();
    let map = edge.topology.paths.active_color_map().display().to_string();
    // What `status` asks for: server rows only.
    let stat = ShowStat {
        filter: Some(vezasock::runtime::command::StatFilter::all_servers()),
    };
    let states = ShowServersState::new(None).map_err(err)?;
    let mut commands = Batch::new();
    let info_slot = commands.push(ShowInfo).map_err(err)?;
    let stat_slot = commands.push(stat.clone()).map_err(err)?;
    let states_slot = commands.push(states.clone()).map_err(err)?;
    let map_slot = commands
        .push(ShowMap::new(&map, None).map_err(err)?)
        .map_err(err)?;
    let mut p = StatusParts::default();
    let mut session = edge.operator_session().await.map_err(|e| e.to_string())?;
    let start = Instant::now();
    let replies = session.run_batch(commands).await.map_err(err)?;
    p.batch = ms(start.elapsed());
    let start = Instant::now();
    replies.take(&info_slot).map_err(err)?;
    replies.take(&stat_slot).map_err(err)?;
    replies.take(&states_slot).map_err(err)?;
    replies.take(&map_slot).map_err(err)?;
    p.parse = ms(start.elapsed());
    let start = Instant::now();
    vezasock::runtime::master::show_proc(&edge.master(), edge.timeouts)
        .await
        .map_err(|e| e.to_string())?;
    p.show_proc = ms(start.elapsed());
    let start = Instant::now();
    for env in &edge.topology.envs {
        edge.state
            .recorded_color(&env.name)
            .map_err(|e| e.to_string())?;
        edge.state.history(&env.name).map_err(|e| e.to_string())?;
    }
    p.files = ms(start.elapsed());
    let start = Instant::now();
    let stat_reply = session.send(&stat).await.map_err(err)?;
    p.stat_alone = ms(start.elapsed());
    let start = Instant::now();
    stat_reply.parse_with(&stat).map_err(err)?;
    p.stat_parse = ms(start.elapsed());
    let start = Instant::now();
    session.send(&states).await.map_err(err)?;
    p.states_alone = ms(start.elapsed());
    Ok(p)
}

/// Median milliseconds of each measure at one size.
#[derive(Debug, Clone)]
struct SizeResult {
    envs: usize,
    servers: usize,
    settle_s: f64,
    status_lib: f64,
    status_bin: Result<f64, String>,
    /// `vezasock status e0002 --json`: one env of the edge.
    status_one_bin: Result<f64, String>,
    switch_lib: f64,
    switch_bin: Result<f64, String>,
    /// The library's own step timings of the last switch (name, ms).
    steps: Vec<(String, f64)>,
    parts: StatusParts,
    /// One full `render::render` (what the switch's map-file write costs).
    render: f64,
    config_kb: usize,
}

fn run_size(h: &haproxy::Haproxy, envs: usize, reps: usize) -> Result<SizeResult, String> {
    let dir = tempfile::Builder::new()
        .prefix("vezasock-scale-")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?;
    let backend = Backend::start("scale", 0).map_err(|e| format!("backend: {e}"))?;
    let http = support::ports::free_port();
    let text = synthetic(envs, backend.addr.port(), http, dir.path(), &h.bin);
    let toml_path = dir.path().join("scale.toml");
    std::fs::write(&toml_path, &text).map_err(|e| format!("write topology: {e}"))?;
    let (topology, refused) = build_topology(envs, backend.addr.port(), http, dir.path(), &h.bin)?;
    let start = Instant::now();
    let rendered = render(&topology, &BTreeMap::new()).map_err(|e| e.to_string())?;
    let render_ms = ms(start.elapsed());
    write_rendered(&rendered, dir.path()).map_err(|e| format!("write the edge: {e}"))?;
    std::fs::create_dir_all(&topology.paths.state_dir).map_err(|e| e.to_string())?;
    let servers = envs * COMPONENTS.len() * 2;
    let _running = Running::start(&topology, dir.path())?;
    let edge = Edge::new(topology);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio: {e}"))?;
    let settle = rt.block_on(wait_healthy(&edge, Duration::from_secs(120)))?;

    let refused = || {
        refused
            .as_ref()
            .map(|e| format!("the binary refuses the topology file: {e}"))
    };
    let (mut sl, mut sb, mut wl, mut wb) = (vec![], vec![], vec![], vec![]);
    let mut sob = vec![];
    let (mut batch, mut parse, mut proc_, mut files) = (vec![], vec![], vec![], vec![]);
    let (mut stat_alone, mut stat_parse, mut states_alone) = (vec![], vec![], vec![]);
    let mut bin_error = None;
    let mut steps = Vec::new();
    for i in 0..reps {
        let start = Instant::now();
        let report = rt
            .block_on(status(&edge, None))
            .map_err(|e| format!("status: {e}"))?;
        sl.push(ms(start.elapsed()));
        if report.envs.len() != envs {
            return Err(format!("status saw {} envs, not {envs}", report.envs.len()));
        }
        let parts = rt.block_on(status_parts(&edge))?;
        batch.push(parts.batch);
        parse.push(parts.parse);
        proc_.push(parts.show_proc);
        files.push(parts.files);
        stat_alone.push(parts.stat_alone);
        stat_parse.push(parts.stat_parse);
        states_alone.push(parts.states_alone);

        // Alternate colors so every switch is a real flip (env e0000: library, e0001: binary).
        let to = if i % 2 == 0 {
            Color::Green
        } else {
            Color::Blue
        };
        let mut req = SwitchRequest::new("e0000", to);
        req.who = "bench".to_string();
        let start = Instant::now();
        let done = rt
            .block_on(switch(&edge, &req, &mut |_| {}))
            .map_err(|e| format!("switch: {e}"))?;
        wl.push(ms(start.elapsed()));
        if done.noop {
            return Err("the library switch was a no-op".to_string());
        }
        steps = done
            .steps
            .iter()
            .map(|s| (s.name.to_string(), s.ms))
            .collect();

        if bin_error.is_none() {
            match binary(&["status", "--json"], &toml_path) {
                Ok((took, _)) => sb.push(ms(took)),
                Err(e) => bin_error = Some(refused().unwrap_or(e)),
            }
        }
        if bin_error.is_none() {
            match binary(&["status", "e0002", "--json"], &toml_path) {
                Ok((took, _)) => sob.push(ms(took)),
                Err(e) => bin_error = Some(refused().unwrap_or(e)),
            }
        }
        if bin_error.is_none() {
            match binary(&["switch", "e0001", to.as_str()], &toml_path) {
                Ok((took, _)) => wb.push(ms(took)),
                Err(e) => bin_error = Some(refused().unwrap_or(e)),
            }
        }
    }
    Ok(SizeResult {
        envs,
        servers,
        settle_s: settle.as_secs_f64(),
        status_lib: median(sl),
        status_bin: match &bin_error {
            Some(e) if sb.is_empty() => Err(e.clone()),
            _ => Ok(median(sb)),
        },
        status_one_bin: match &bin_error {
            Some(e) if sob.is_empty() => Err(e.clone()),
            _ => Ok(median(sob)),
        },
        switch_lib: median(wl),
        switch_bin: match &bin_error {
            Some(e) if wb.is_empty() => Err(e.clone()),
            _ => Ok(median(wb)),
        },
        steps,
        parts: StatusParts {
            batch: median(batch),
            parse: median(parse),
            show_proc: median(proc_),
            files: median(files),
            stat_alone: median(stat_alone),
            stat_parse: median(stat_parse),
            states_alone: median(states_alone),
        },
        render: render_ms,
        config_kb: rendered.config.len() / 1024,
    })
}

fn growth(rows: &[SizeResult], f: impl Fn(&SizeResult) -> Option<f64>) -> String {
    let with: Vec<(&SizeResult, f64)> = rows.iter().filter_map(|r| f(r).map(|v| (r, v))).collect();
    match (with.first(), with.last()) {
        (Some((a, fa)), Some((b, fb))) if with.len() > 1 && *fa > 0.0 => format!(
            "{:.1}× for {:.0}× the servers ({} → {} envs)",
            fb / fa,
            b.servers as f64 / a.servers as f64,
            a.envs,
            b.envs
        ),
        _ => "–".to_string(),
    }
}

fn cell(v: &Result<f64, String>) -> String {
    match v {
        Ok(x) => format!("{x:.2}"),
        Err(e) => format!("error: {e}"),
    }
}

/// Each step's cost ratio is at most 1.25 × its size ratio.
fn linear(rows: &[SizeResult], f: impl Fn(&SizeResult) -> f64) -> bool {
    rows.windows(2).all(|w| {
        let size = w[1].servers as f64 / w[0].servers as f64;
        f(&w[1]) / f(&w[0]) <= size * 1.25
    })
}

fn pass(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "MISS"
    }
}

fn main() {
    let sizes: Vec<usize> = std::env::var("VEZASOCK_BENCH_SCALE_SIZES")
        .ok()
        .map(|s| {
            s.split(',')
                .filter_map(|v| v.trim().parse().ok())
                .filter(|n| *n > 0)
                .collect()
        })
        .filter(|v: &Vec<usize>| !v.is_empty())
        .unwrap_or_else(|| vec![10, 100, 250, 500]);
    let reps: usize = std::env::var("VEZASOCK_BENCH_SCALE_REPS")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(5);
    let versions = haproxy::versions_for_bench();

    println!("## Scale: status and switch on synthetic edges\n");
    println!("Envs × 3 components × blue/green, every server on one shared loopback backend, health checks every 2 s (the template's `inter`; about servers/2 checks a second run during the timings). Median of {reps} runs, milliseconds. Command: `cargo bench --bench scale`.\n");
    println!("Every edge is written as a topology file and loaded the way the binary loads it (the file limit is 2,000 envs); should a file be refused, the edge is built in code for the library calls and the table says the binary refused it.\n");
    for h in &versions {
        println!("### HAProxy {} (`{}`)\n", h.label, h.version_line);
        println!("| envs | servers | config KB | checks settled s | status, library | status, binary | status of one env, binary | switch, library | switch, binary |");
        println!("|---|---|---|---|---|---|---|---|---|");
        let mut rows = Vec::new();
        for &n in &sizes {
            eprintln!("[{}] {n} envs", h.label);
            match run_size(h, n, reps) {
                Ok(r) => {
                    println!(
                        "| {} | {} | {} | {:.1} | {:.2} | {} | {} | {:.2} | {} |",
                        r.envs,
                        r.servers,
                        r.config_kb,
                        r.settle_s,
                        r.status_lib,
                        cell(&r.status_bin),
                        cell(&r.status_one_bin),
                        r.switch_lib,
                        cell(&r.switch_bin),
                    );
                    rows.push(r);
                }
                Err(e) => println!("| {n} | {} | | | error: {} | | | | |", n * 6, one_line(&e)),
            }
        }
        println!("\nWhere the time goes (medians, ms): the library `status` split into the operator batch (show info, `show stat -1 4 -1` (server rows), show servers state, show map; round trip and read), parsing its replies, master `show proc`, and reading the per-env state files (color + history); *rest* is the status minus those, i.e. assembling the report. *render* is one full `render::render` of the edge, which the switch's `journal+disk` step runs to write `active-color.map`. Switch steps are the library's own timings of its last run.\n");
        println!("| envs | status | batch | parse | show proc | state files | rest | `show stat` alone / its parse | `show servers state` alone | render | switch steps |");
        println!("|---|---|---|---|---|---|---|---|---|---|---|");
        for r in &rows {
            let p = &r.parts;
            let rest = r.status_lib - p.batch - p.parse - p.show_proc - p.files;
            let steps: Vec<String> = r
                .steps
                .iter()
                .map(|(n, ms)| format!("{n} {ms:.2}"))
                .collect();
            println!(
                "| {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} / {:.2} | {:.2} | {:.2} | {} |",
                r.envs,
                r.status_lib,
                p.batch,
                p.parse,
                p.show_proc,
                p.files,
                rest,
                p.stat_alone,
                p.stat_parse,
                p.states_alone,
                r.render,
                steps.join(", ")
            );
        }
        println!();
        println!(
            "Growth, smallest → largest edge: status (library) {}; status (binary) {}; switch (library) {}; switch (binary) {}.\n",
            growth(&rows, |r| Some(r.status_lib)),
            growth(&rows, |r| r.status_bin.as_ref().ok().copied()),
            growth(&rows, |r| Some(r.switch_lib)),
            growth(&rows, |r| r.switch_bin.as_ref().ok().copied()),
        );
        if let Some(big) = rows.iter().find(|r| r.envs == 500) {
            let bin_ok = big.status_bin.as_ref().is_ok_and(|v| *v < 100.0);
            println!(
                "- {} `status` under 100 ms at 500 envs: library {:.1} ms, binary {}",
                pass(big.status_lib < 100.0 && bin_ok),
                big.status_lib,
                match &big.status_bin {
                    Ok(v) => format!("{v:.1} ms"),
                    Err(_) => "refused (see the table)".to_string(),
                }
            );
        }
        if rows.len() > 1 {
            let (st, sw) = (
                linear(&rows, |r| r.status_lib),
                linear(&rows, |r| r.switch_lib),
            );
            println!(
                "- {} cost grows no worse than linearly (every step's cost ratio ≤ 1.25 × its size ratio): status {}, switch {}\n",
                pass(st && sw),
                if st { "yes" } else { "no" },
                if sw { "yes" } else { "no" },
            );
        }
    }
}
