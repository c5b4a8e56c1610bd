//! The fleet lab (issue 14): N local edges, each a real master-worker HAProxy with its own
//! ports, sockets, maps dir and state dir ([`LocalEdge`]), each with its own topology file, and
//! a fleet file naming them (`config = …` on this host, or `ssh = …` through the [`Sshd`]
//! fixture with `vezasock = <this build>`). Helpers run the coordinator and the per-edge
//! primitives, read every edge's runtime color (`show map` on its admin socket), map file and
//! state files, and run a bounded load through all edges. The tests are in `fleet_*.rs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vezasock::demo::http::get;
use vezasock::demo::load::{Load, LoadSpec};
use vezasock::demo::LocalEdge;
use vezasock::render::maps::parse_colors;
use vezasock::topology::{Color, Topology};

use crate::sshd::Sshd;
use crate::support::haproxy::{per_version, Haproxy};
use crate::support::run::{vezasock_config, Run, Running, Vezasock, BOUND};
use crate::support::topology::to_toml;
use crate::switch::{runtime_color, wait_healthy, worker_pid};

/// The env every fleet test flips (prod stays blue throughout unless a test says otherwise).
pub const ENV: &str = "staging";

/// How the coordinator reaches an edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    Local,
    Ssh,
}

/// One edge of the lab.
pub struct Member {
    /// `edge-a`, `edge-b`, … in fleet-file order.
    pub name: String,
    pub edge: LocalEdge,
    /// The edge's topology file (the fleet file's `config =`).
    pub config: PathBuf,
    pub reach: Reach,
}

impl Member {
    /// The HTTPS port of an edge started by [`Fleet::start_tls`].
    pub fn https(&self) -> u16 {
        self.edge
            .topology
            .listen
            .https
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{}: no HTTPS bind", self.name))
    }

    /// The certs dir of an edge started by [`Fleet::start_tls`].
    pub fn certs(&self) -> PathBuf {
        self.edge
            .topology
            .tls
            .as_ref()
            .map(|t| t.certs_dir.clone())
            .unwrap_or_else(|| panic!("{}: no [tls]", self.name))
    }

    /// Every file of the certs dir and its bytes (what a refused update must leave as it was).
    pub fn certs_files(&self) -> BTreeMap<String, Vec<u8>> {
        std::fs::read_dir(self.certs())
            .unwrap_or_else(|e| panic!("{}: certs dir: {e}", self.name))
            .flatten()
            .map(|f| {
                let bytes = std::fs::read(f.path()).unwrap_or_default();
                (f.file_name().to_string_lossy().to_string(), bytes)
            })
            .collect()
    }
}

/// A running fleet: the edges, the fleet file, the coordinator's state dir.
pub struct Fleet {
    pub label: &'static str,
    pub members: Vec<Member>,
    /// The fleet file (`--fleet`), edges in `members` order.
    pub file: PathBuf,
    /// The coordinator's own state dir (the fleet file's `state_dir`).
    pub state_dir: PathBuf,
    pub sshd: Option<Sshd>,
    /// Declared last: dropped after the edges are killed.
    pub dir: tempfile::TempDir,
}

/// `edge-a` … `edge-z`.
pub fn edge_name(i: usize) -> String {
    let letter = (b'a' + u8::try_from(i % 26).unwrap_or(0)) as char;
    format!("edge-{letter}")
}

impl Fleet {
    /// `n` edges on this host, every server healthy.
    pub fn local(v: &Haproxy, n: usize) -> Fleet {
        let reaches = vec![Reach::Local; n];
        Fleet::start(v, &reaches).unwrap_or_else(|| unreachable!("no ssh edge asked for"))
    }

    /// One edge per entry of `reaches`, in that order, every server healthy; `None` (after a
    /// SKIP line) when an ssh edge is asked for and no sshd is installed.
    pub fn start(v: &Haproxy, reaches: &[Reach]) -> Option<Fleet> {
        Fleet::start_with(v, reaches, false)
    }

    /// [`Fleet::start`] with TLS on every edge, as the embedded edge has it: an HTTPS bind on a
    /// loopback port of its own ([`Member::https`]) loading the edge's own certs dir
    /// ([`Member::certs`]), which holds the self-signed placeholder `00-default.pem` for every
    /// host (as `apply` writes it on a fresh edge).
    pub fn start_tls(v: &Haproxy, reaches: &[Reach]) -> Option<Fleet> {
        Fleet::start_with(v, reaches, true)
    }

    fn start_with(v: &Haproxy, reaches: &[Reach], tls: bool) -> Option<Fleet> {
        let sshd = if reaches.contains(&Reach::Ssh) {
            Some(Sshd::start()?)
        } else {
            None
        };
        let dir = tempfile::Builder::new()
            .prefix("vezasock-fleet-")
            .tempdir()
            .unwrap_or_else(|e| panic!("temp dir: {e}"));
        let mut topo = Topology::embedded_default().unwrap_or_else(|e| panic!("embedded: {e}"));
        if tls {
            // A TLS connection opened before a fleet certificate update must still carry a
            // request after it: the default 10 s for a first request is shorter than an
            // update over three edges on a busy 2-core machine (seen: "old connection:
            // Broken pipe").
            topo.timeouts.http_request = "60s".to_string();
        }
        let mut members = Vec::new();
        for (i, reach) in reaches.iter().enumerate() {
            let name = edge_name(i);
            let edge_dir = dir.path().join(&name);
            let edge = if tls {
                let certs = edge_dir.join("certs");
                std::fs::create_dir_all(&certs).unwrap_or_else(|e| panic!("{e}"));
                let domains = vezasock::edge::cert::domain_set(&topo);
                let pem = vezasock::edge::cert::placeholder_pem(&domains)
                    .unwrap_or_else(|e| panic!("placeholder: {e}"));
                let placeholder = certs.join(vezasock::edge::cert::PLACEHOLDER_FILE);
                std::fs::write(placeholder, pem).unwrap_or_else(|e| panic!("{e}"));
                LocalEdge::start_tls(&topo, &v.bin, &edge_dir, &BTreeMap::new(), &certs)
            } else {
                LocalEdge::start(&topo, &v.bin, &edge_dir, &BTreeMap::new())
            }
            .unwrap_or_else(|e| panic!("{} {name}: {e}", v.label));
            let config = edge_dir.join("topology.toml");
            std::fs::write(&config, to_toml(&edge.topology)).unwrap_or_else(|e| panic!("{e}"));
            // The file must say exactly this edge, or the coordinator would drive another one.
            let loaded = Topology::load(&config).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(loaded, edge.topology, "{name}: {}", to_toml(&edge.topology));
            members.push(Member {
                name,
                edge,
                config,
                reach: *reach,
            });
        }
        for m in &members {
            wait_healthy(&m.edge, &format!("{} {}", v.label, m.name));
        }
        let state_dir = dir.path().join("fleet-state");
        let file = dir.path().join("fleet.toml");
        let fleet = Fleet {
            label: v.label,
            members,
            file,
            state_dir,
            sshd,
            dir,
        };
        let order: Vec<usize> = (0..fleet.members.len()).collect();
        fleet.write_fleet_file(&fleet.file, &order);
        Some(fleet)
    }

    /// Writes a fleet file naming the edges in `order` (indexes into `members`), with the lab's
    /// coordinator state dir.
    pub fn write_fleet_file(&self, path: &Path, order: &[usize]) {
        let mut text = format!(
            "# the fleet lab ({} edges)\nstate_dir = {:?}\n",
            order.len(),
            self.state_dir.display().to_string()
        );
        for &i in order {
            let m = &self.members[i];
            text.push_str(&format!("\n[[edge]]\nname = {:?}\n", m.name));
            text.push_str(&format!("config = {:?}\n", m.config.display().to_string()));
            if m.reach == Reach::Ssh {
                let sshd = self
                    .sshd
                    .as_ref()
                    .unwrap_or_else(|| panic!("an ssh edge without the sshd fixture"));
                let options: Vec<String> =
                    sshd.options().iter().map(|o| format!("{o:?}")).collect();
                text.push_str(&format!(
                    "ssh = {:?}\nssh_options = [{}]\nvezasock = {:?}\n",
                    sshd.destination,
                    options.join(", "),
                    env!("CARGO_BIN_EXE_vezasock")
                ));
            }
        }
        std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// `vezasock COMMAND --fleet <file> REST`, nothing from the caller's environment pointing at
    /// an edge.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    /// [`Fleet::run`] with extra environment variables (the test hooks), bounded at 120 s.
    pub fn run_env(&self, args: &[&str], extra: &[(&str, &str)]) -> Run {
        self.run_file(&self.file, args, extra)
    }

    /// [`Fleet::run_env`] with another fleet file.
    pub fn run_file(&self, file: &Path, args: &[&str], extra: &[(&str, &str)]) -> Run {
        self.spawn_file(file, args, extra).finish(BOUND)
    }

    /// Starts `vezasock COMMAND --fleet <file> REST` (ARGS = COMMAND REST) in the background.
    pub fn spawn(&self, args: &[&str], extra: &[(&str, &str)]) -> Running {
        self.spawn_file(&self.file, args, extra)
    }

    /// [`Fleet::spawn`] with another fleet file. After the command: where the implementation
    /// takes it (the spec's `vezasock --fleet F switch` form has its own test).
    pub fn spawn_file(&self, file: &Path, args: &[&str], extra: &[(&str, &str)]) -> Running {
        self.scrubbed(Vezasock::fleet(file, args), extra).spawn()
    }

    /// `vezasock ARGS` exactly as given (no `--fleet` added), scrubbed and bounded like
    /// [`Fleet::run`], with `extra` in the environment.
    pub fn run_raw(&self, args: &[&str], extra: &[(&str, &str)]) -> Run {
        self.scrubbed(Vezasock::new(args), extra).run()
    }

    /// `vezasock ARGS` exactly as given, started in the background like [`Fleet::spawn`].
    pub fn spawn_raw(&self, args: &[&str], extra: &[(&str, &str)]) -> Running {
        self.scrubbed(Vezasock::new(args), extra).spawn()
    }

    /// A run as `it-fleet` with `extra` in the environment, its output kept in the lab's dir.
    fn scrubbed(&self, run: Vezasock, extra: &[(&str, &str)]) -> Vezasock {
        run.who("it-fleet").envs(extra).out_dir(self.dir.path())
    }

    /// `vezasock ARGS --config <edge i's topology file>` on that edge alone (no fleet).
    pub fn edge_run(&self, i: usize, args: &[&str]) -> Run {
        vezasock_config(&self.members[i].config, "it-fleet", args)
    }

    /// Every edge's color for `env` in its running HAProxy's map (`None`: HAProxy down or no
    /// entry).
    pub fn runtime_colors(&self, env: &str) -> Vec<Option<Color>> {
        self.members
            .iter()
            .map(|m| {
                m.edge
                    .master_pid()
                    .and_then(|_| runtime_color(&m.edge, env))
            })
            .collect()
    }

    /// Asserts that every edge serves, maps on disk and records `color` for `env`, and answers
    /// a new request for that env with it.
    pub fn assert_all_on(&self, env: &str, color: Color, context: &str) {
        for i in 0..self.members.len() {
            self.assert_edge_on(i, env, color, context);
        }
    }

    /// [`Fleet::assert_all_on`] for edge `i` only.
    pub fn assert_edge_on(&self, i: usize, env: &str, color: Color, context: &str) {
        let m = &self.members[i];
        let what = format!("{} {context}: {}", self.label, m.name);
        assert_eq!(
            runtime_color(&m.edge, env),
            Some(color),
            "{what}: runtime {env}"
        );
        assert_eq!(
            map_file_color(&m.edge, env),
            Some(color),
            "{what}: map file {env}"
        );
        assert_eq!(
            recorded_color(&m.edge, env),
            color,
            "{what}: state file active-color-{env}"
        );
        let host = if env == "prod" {
            "veza.fr"
        } else {
            "staging.veza.fr"
        };
        let answer = get(m.edge.http, host, "/api/x", Duration::from_secs(5));
        let want = format!("{env} api {}", color.as_str());
        assert!(
            answer
                .as_ref()
                .is_ok_and(|a| a.status == 200 && a.body == want),
            "{what}: a new request for {env} gave {answer:?}, want {want:?}"
        );
    }

    /// Every edge's files and runtime colors, to compare before and after a refused change.
    pub fn snapshot(&self) -> Vec<EdgeSnapshot> {
        self.members
            .iter()
            .map(|m| EdgeSnapshot::of(&m.edge))
            .collect()
    }

    /// The worker PID of every edge (`show info`).
    pub fn worker_pids(&self) -> Vec<u32> {
        self.members.iter().map(|m| worker_pid(&m.edge)).collect()
    }

    /// Stops each edge's load (from [`Fleet::load`]) and fails on any failed request, naming
    /// the edge.
    pub fn stop_loads(&self, loads: Vec<Load>, label: &str) {
        for (m, load) in self.members.iter().zip(loads) {
            let report = load.stop();
            assert_eq!(
                report.failed(),
                0,
                "{label} {}: {:?}",
                m.name,
                report.failures
            );
        }
    }

    /// A bounded load through every edge: 2 keep-alive and 1 new-connection client per edge
    /// over staging's components and prod's api, at most 300 s (a slow playbook on a busy
    /// machine must not outlive it).
    pub fn load(&self) -> Vec<Load> {
        self.members
            .iter()
            .map(|m| {
                Load::start(&LoadSpec {
                    new_connection_clients: 1,
                    max_duration: Duration::from_secs(300),
                    max_requests_per_client: 200_000,
                    ..crate::support::load::spec(
                        m.edge.http,
                        &[
                            ("staging.veza.fr", "/api/x"),
                            ("staging.veza.fr", "/stream/x"),
                            ("staging.veza.fr", "/"),
                            ("veza.fr", "/api/x"),
                        ],
                    )
                })
            })
            .collect()
    }

    /// Where the coordinator's pause hook waits (`VEZASOCK_PAUSE_FILE`).
    pub fn pause_file(&self) -> PathBuf {
        self.dir.path().join("pause")
    }

    /// Kills edge `i`'s HAProxy (master and workers, SIGKILL).
    pub fn kill_edge(&mut self, i: usize) {
        self.members[i].edge.kill_haproxy();
    }

    /// Starts edge `i`'s HAProxy again from its files on disk and waits for its health checks.
    pub fn restart_edge(&mut self, i: usize) {
        let label = format!("{} {}", self.label, self.members[i].name);
        self.members[i]
            .edge
            .start_haproxy()
            .unwrap_or_else(|e| panic!("{label}: restart: {e}"));
        wait_healthy(&self.members[i].edge, &label);
    }
}

/// Waits (at most 60 s) until the coordinator has created the pause file, failing if it exits
/// first.
pub fn wait_paused(running: &mut Running, pause: &Path, label: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !pause.exists() {
        if running.exited() {
            let (out, err) = running.output_so_far();
            panic!(
                "{label}: the coordinator exited before pausing\nstdout:\n{out}\nstderr:\n{err}"
            );
        }
        assert!(
            Instant::now() < deadline,
            "{label}: no pause file {} after 60 s",
            pause.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The env's color in the edge's map file (`None`: no entry).
pub fn map_file_color(edge: &LocalEdge, env: &str) -> Option<Color> {
    let text = std::fs::read_to_string(edge.topology.paths.active_color_map())
        .unwrap_or_else(|e| panic!("map file: {e}"));
    parse_colors(&text)
        .unwrap_or_else(|e| panic!("map file does not parse: {e}\n{text}"))
        .get(env)
        .copied()
}

/// The env's recorded color (`active-color-<env>`; missing means blue, as docs/operating.md says).
pub fn recorded_color(edge: &LocalEdge, env: &str) -> Color {
    let path = edge
        .topology
        .paths
        .state_dir
        .join(format!("active-color-{env}"));
    match std::fs::read_to_string(&path) {
        Ok(text) => Color::parse(text.trim())
            .unwrap_or_else(|| panic!("{}: not a color: {text:?}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Color::Blue,
        Err(e) => panic!("{}: {e}", path.display()),
    }
}

/// The env's history lines, newest first.
pub fn history_lines(edge: &LocalEdge, env: &str) -> Vec<String> {
    let path = edge
        .topology
        .paths
        .state_dir
        .join(format!("active-color-{env}.history"));
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The staged map file of an open transaction (spec: `maps/active-color.map.pending`).
pub fn pending_map(edge: &LocalEdge) -> PathBuf {
    let mut name = edge.topology.paths.active_color_map().into_os_string();
    name.push(".pending");
    PathBuf::from(name)
}

/// The open transaction's file (spec: `state/transaction.json`).
pub fn transaction_file(edge: &LocalEdge) -> PathBuf {
    edge.topology.paths.state_dir.join("transaction.json")
}

/// What a refused change must leave untouched on one edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeSnapshot {
    /// staging's and prod's colors in the running HAProxy.
    pub runtime: Vec<Option<Color>>,
    /// The active-color map file's bytes.
    pub map_file: String,
    /// `active-color-<env>` and `active-color-<env>.history` for staging and prod (`None`:
    /// missing).
    pub state_files: BTreeMap<String, Option<String>>,
    pub pending_map: bool,
    pub transaction_file: bool,
}

impl EdgeSnapshot {
    pub fn of(edge: &LocalEdge) -> EdgeSnapshot {
        let p = &edge.topology.paths;
        let mut state_files = BTreeMap::new();
        for env in ["staging", "prod"] {
            for name in [
                format!("active-color-{env}"),
                format!("active-color-{env}.history"),
            ] {
                let text = std::fs::read_to_string(p.state_dir.join(&name)).ok();
                state_files.insert(name, text);
            }
        }
        EdgeSnapshot {
            runtime: ["staging", "prod"]
                .iter()
                .map(|env| runtime_color(edge, env))
                .collect(),
            map_file: std::fs::read_to_string(p.active_color_map())
                .unwrap_or_else(|e| panic!("map file: {e}")),
            state_files,
            pending_map: pending_map(edge).exists(),
            transaction_file: transaction_file(edge).exists(),
        }
    }
}

/// `Some(color)` when every entry is that color.
pub fn one_color(colors: &[Option<Color>]) -> Option<Color> {
    let first = (*colors.first()?)?;
    colors.iter().all(|c| *c == Some(first)).then_some(first)
}

per_version!(the_fleet_lab_starts_independent_edges, |v: &Haproxy| {
    let fleet = Fleet::local(v, 3);
    // Each edge has its own everything: a flip on one alone changes that one only.
    let dirs: std::collections::BTreeSet<_> = fleet
        .members
        .iter()
        .flat_map(|m| {
            let p = &m.edge.topology.paths;
            [
                p.admin_socket.clone(),
                p.maps_dir.clone(),
                p.state_dir.clone(),
            ]
        })
        .collect();
    assert_eq!(dirs.len(), 9, "{}: shared paths: {dirs:?}", v.label);
    let run = fleet.edge_run(1, &["switch", ENV, "green"]);
    assert_eq!(run.code, Some(0), "{}: {run:?}", v.label);
    assert_eq!(
        fleet.runtime_colors(ENV),
        vec![Some(Color::Blue), Some(Color::Green), Some(Color::Blue)],
        "{}",
        v.label
    );
    fleet.assert_edge_on(1, ENV, Color::Green, "after a single-edge switch");
    fleet.assert_edge_on(0, ENV, Color::Blue, "after edge-b's switch");
});
