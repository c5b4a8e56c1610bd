//! Rendering: the default edge passes `haproxy -c` on every installed HAProxy (2.6, 3.0, 3.2),
//! a golden file pins it, the shape fingerprint ignores what the runtime owns, the templates
//! refuse injected values even past validation, and the planner explains real renders.
//!
//! `VEZASOCK_BLESS=1 cargo test --test render` rewrites the golden files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use vezasock::cli::check::haproxy_check;
use vezasock::plan::{plan, LiveView, Plan, RuntimeStep};
use vezasock::render::{self, shape, write, Rendered, ShapeSummary};
use vezasock::topology::{Address, Color, Failover, Servers, Tls, Topology};

/// The HAProxy binaries of common.md, overridable by environment variables.
fn versions() -> Vec<(&'static str, PathBuf)> {
    [
        ("2.6", "VEZASOCK_HAPROXY_2_6", "/usr/sbin/haproxy"),
        (
            "3.0",
            "VEZASOCK_HAPROXY_3_0",
            "/root/.cache/vezasock/haproxy/3.0/usr/sbin/haproxy",
        ),
        (
            "3.2",
            "VEZASOCK_HAPROXY_3_2",
            "/root/.cache/vezasock/haproxy/3.2/usr/sbin/haproxy",
        ),
    ]
    .into_iter()
    .map(|(label, var, default)| {
        (
            label,
            PathBuf::from(std::env::var(var).unwrap_or_else(|_| default.to_string())),
        )
    })
    .collect()
}

fn default_topology() -> Topology {
    Topology::embedded_default().unwrap_or_else(|e| panic!("{e}"))
}

fn no_colors() -> BTreeMap<String, Color> {
    BTreeMap::new()
}

fn render_ok(t: &Topology, colors: &BTreeMap<String, Color>) -> Rendered {
    render::render(t, colors).unwrap_or_else(|e| panic!("{e}"))
}

/// A self-signed certificate in `<dir>/certs`, made by openssl.
fn make_certs(dir: &Path) -> PathBuf {
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).unwrap_or_else(|e| panic!("{e}"));
    let key = dir.join("key.pem");
    let cert = dir.join("cert.pem");
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=veza.fr",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("openssl: {e}"));
    assert!(status.success(), "openssl failed");
    let pem = [std::fs::read(&cert), std::fs::read(&key)]
        .map(|r| r.unwrap_or_else(|e| panic!("{e}")))
        .concat();
    std::fs::write(certs.join("veza.fr.pem"), pem).unwrap_or_else(|e| panic!("{e}"));
    certs
}

/// Runs `haproxy -c` on `topo` (paths moved under a temp dir, TLS on a self-signed cert when
/// the topology has TLS) with every installed version; returns the versions that ran.
fn check_everywhere(topo: &Topology, what: &str) -> Vec<&'static str> {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut t = topo.clone();
    t.paths = t.paths.under(dir.path());
    if let Some(tls) = &mut t.tls {
        *tls = Tls {
            certs_dir: make_certs(dir.path()),
            redirect: tls.redirect,
        };
    }
    let rendered = render_ok(&t, &no_colors());
    write::write_rendered(&rendered, &t.paths.maps_dir).unwrap_or_else(|e| panic!("{e}"));
    let config = t.paths.maps_dir.join("haproxy.cfg");
    let mut ran = Vec::new();
    for (label, bin) in versions() {
        if !bin.exists() {
            eprintln!(
                "{what}: HAProxy {label} not found at {}, skipped",
                bin.display()
            );
            continue;
        }
        let outcome = haproxy_check(&bin, &config).unwrap_or_else(|e| panic!("{label}: {e}"));
        assert!(
            outcome.valid,
            "{what}: HAProxy {label} refused the config:\n{}\n{}",
            outcome.output, rendered.config
        );
        assert!(
            !outcome.output.contains("[ALERT]"),
            "{what} on {label}:\n{}",
            outcome.output
        );
        ran.push(label);
    }
    eprintln!("{what}: haproxy -c passed on {ran:?}");
    assert!(
        !ran.is_empty(),
        "no HAProxy binary found: nothing was checked"
    );
    ran
}

#[test]
fn default_passes_haproxy_check_on_every_version() {
    check_everywhere(&default_topology(), "default (TLS on)");
}

#[test]
fn default_without_tls_passes_haproxy_check() {
    let mut t = default_topology();
    t.tls = None;
    let r = render_ok(&t, &no_colors());
    assert!(
        !r.config.contains("ssl"),
        "no TLS bind or redirect without TLS"
    );
    assert!(!r.config.contains("redirect"));
    check_everywhere(&t, "default (TLS off)");
}

#[test]
fn cross_color_pools_and_local_servers_pass_haproxy_check() {
    let text =
        Topology::embedded_default().map(|_| vezasock::topology::EMBEDDED_DEFAULT.to_string());
    let text = text
        .unwrap_or_else(|e| panic!("{e}"))
        .replace("failover = \"none\"", "failover = \"cross-color\"")
        + r#"
[[env]]
name = "lab"
colors = false
hosts = ["lab.veza.fr"]
components = ["api", "web"]
[env.servers]
api = { pool = ["10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080"] }
"#;
    let t = Topology::from_toml(&text, "cross.toml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.failover, Failover::CrossColor);
    let (local, _) = t
        .with_local_servers(21000)
        .unwrap_or_else(|e| panic!("{e}"));
    let r = render_ok(&local, &no_colors());
    assert!(
        r.config
            .contains("backup track be_staging_api_green/green_1"),
        "{}",
        r.config
    );
    assert!(r
        .config
        .contains("use_backend be_%[var(txn.env)]_api if env_pool path_api"));
    assert!(r.config.contains("server srv_3 127.0.0.1:"));
    check_everywhere(&local, "cross-color + pools + local servers");
}

#[test]
fn golden_default() {
    let r = render_ok(&default_topology(), &no_colors());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let files = [
        ("veza.haproxy.cfg", &r.config),
        ("veza.hosts.map", &r.hosts_map),
        ("veza.active-color.map", &r.active_color_map),
    ];
    let bless = std::env::var("VEZASOCK_BLESS").is_ok_and(|v| v == "1");
    for (name, text) in files {
        let path = dir.join(name);
        if bless {
            std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
            eprintln!("blessed {}", path.display());
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run with VEZASOCK_BLESS=1 to create it)",
                path.display()
            )
        });
        assert!(
            want == *text,
            "{name} differs from the golden file; review the diff and run VEZASOCK_BLESS=1 cargo test --test render\n--- rendered:\n{text}"
        );
    }
}

#[test]
fn fingerprint_is_declared_and_ignores_comments() {
    let r = render_ok(&default_topology(), &no_colors());
    assert_eq!(
        shape::declared_fingerprint(&r.config).as_deref(),
        Some(r.fingerprint.as_str())
    );
    assert_eq!(shape::fingerprint(&r.config), r.fingerprint);
    let commented = r
        .config
        .replace(
            "\nbackend default_503",
            "\n# a note\n\n   backend default_503  ",
        )
        .replace("# Rendered by vezasock", "# Edited by hand");
    assert_ne!(commented, r.config);
    assert_eq!(shape::fingerprint(&commented), r.fingerprint);
}

#[test]
fn fingerprint_ignores_map_contents() {
    let t = default_topology();
    let blue = render_ok(&t, &no_colors());
    let colors = BTreeMap::from([("staging".to_string(), Color::Green)]);
    let green = render_ok(&t, &colors);
    assert_eq!(
        green.config, blue.config,
        "colors live in the map, not the config"
    );
    assert_eq!(green.fingerprint, blue.fingerprint);
    assert_ne!(green.active_color_map, blue.active_color_map);
    assert!(green.active_color_map.contains("staging green\n"));

    let mut more_hosts = t.clone();
    more_hosts.envs[0].hosts.push("preview.veza.fr".to_string());
    let r = render_ok(&more_hosts, &no_colors());
    assert_eq!(
        r.fingerprint, blue.fingerprint,
        "env hosts live in the map, not the config"
    );
    assert!(r.hosts_map.contains("preview.veza.fr staging\n"));
}

#[test]
fn fingerprint_changes_on_server_move() {
    let t = default_topology();
    let before = render_ok(&t, &no_colors());
    let mut moved = t.clone();
    if let Servers::Colored { blue, .. } = &mut moved.envs[0].components[0].servers {
        blue[0].address = Address {
            host: "10.1.2.3".into(),
            port: 8080,
        };
    }
    let after = render_ok(&moved, &no_colors());
    assert_ne!(after.fingerprint, before.fingerprint);
    let diff = after.summary.diff(&before.summary);
    assert_eq!(
        diff,
        ["server be_staging_api_blue/blue_1 moved from veza-staging-api-blue.lxd:8080 to 10.1.2.3:8080"]
    );
}

/// Puts an unsafe value somewhere in a topology.
type Breaker = Box<dyn Fn(&mut Topology)>;

#[test]
fn templates_refuse_injection_past_validation() {
    // The model's fields are public: a bug or a careless caller could put anything there.
    // The template formatter must still refuse to write it.
    let t = default_topology();
    let cases: Vec<(&str, Breaker)> = vec![
        (
            "env host",
            Box::new(|t| t.envs[0].hosts.push("a.fr\nlisten evil".into())),
        ),
        (
            "cookie",
            Box::new(|t| t.envs[0].cookie = "sid insert\n    server x 1.2.3.4:1".into()),
        ),
        (
            "path rule",
            Box::new(|t| t.components[0].paths.push("/api #".into())),
        ),
        (
            "external host",
            Box::new(|t| t.externals[0].hosts.push("x.fr if TRUE".into())),
        ),
        (
            "server address",
            Box::new(|t| {
                t.externals[0].servers[0].address.host = "10.0.0.1:80 backup\nbackend x".into();
            }),
        ),
        (
            "component name",
            Box::new(|t| t.components[0].name = "api\"".into()),
        ),
        (
            "maps dir",
            Box::new(|t| t.paths.maps_dir = "/etc/haproxy/maps\\x".into()),
        ),
    ];
    for (what, break_it) in cases {
        let mut bad = t.clone();
        break_it(&mut bad);
        // Keep env components in step with a renamed component kind.
        if what == "component name" {
            for e in &mut bad.envs {
                e.components[0].name = bad.components[0].name.clone();
            }
        }
        match render::render(&bad, &no_colors()) {
            Ok(r) => panic!("{what}: the template wrote an unsafe value:\n{}", r.config),
            Err(e) => assert!(e.to_string().contains("refusing to write"), "{what}: {e}"),
        }
    }
}

#[test]
fn summary_round_trips_through_json() {
    let r = render_ok(&default_topology(), &no_colors());
    let json = serde_json::to_string(&r.summary).unwrap_or_else(|e| panic!("{e}"));
    let back: ShapeSummary = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back, r.summary);
    assert!(back.tls);
    assert_eq!(back.backends.len(), 12 + 2 + 2);
    assert_eq!(
        back.backends["be_prod_web_green"].servers["green_1"].address,
        "veza-web-green.lxd:3000"
    );
}

#[test]
fn plan_on_real_renders() {
    let t = default_topology();
    let live_r = render_ok(&t, &BTreeMap::from([("prod".to_string(), Color::Green)]));
    let live = LiveView {
        fingerprint: shape::declared_fingerprint(&live_r.config),
        summary: Some(live_r.summary.clone()),
        hosts: live_r.hosts.clone(),
        colors: live_r.colors.clone(),
    };
    // Re-rendering with the live colors is a no-op.
    assert_eq!(plan(&render_ok(&t, &live_r.colors), &live), Plan::Nothing);

    // A new public host for an env: a runtime edit.
    let mut more = t.clone();
    more.envs[1].hosts.push("app.veza.fr".into());
    assert_eq!(
        plan(&render_ok(&more, &live_r.colors), &live),
        Plan::Runtime {
            steps: vec![RuntimeStep::AddHost {
                host: "app.veza.fr".into(),
                env: "prod".into()
            }]
        }
    );

    // A new component in an env: a reload, and the reasons name the new backends.
    let mut fewer = t.clone();
    fewer.envs[0].components.retain(|c| c.name != "stream");
    let fewer_r = render_ok(&fewer, &live_r.colors);
    let fewer_live = LiveView {
        fingerprint: Some(fewer_r.fingerprint.clone()),
        summary: Some(fewer_r.summary.clone()),
        ..live.clone()
    };
    let Plan::Reload { reasons } = plan(&render_ok(&t, &live_r.colors), &fewer_live) else {
        panic!("adding a component must reload");
    };
    assert!(
        reasons.contains(&"backend be_staging_stream_blue added".to_string()),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&"backend be_staging_stream_green added".to_string()),
        "{reasons:?}"
    );
}

// ---- the commands, black-box ----

struct Cli {
    dir: tempfile::TempDir,
    topology: PathBuf,
}

impl Cli {
    /// A topology file (the default with TLS on a temp cert) and a live dir under a temp dir.
    fn new() -> Cli {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let certs = make_certs(dir.path());
        let text = vezasock::topology::EMBEDDED_DEFAULT
            .replace("/etc/haproxy/certs", &certs.display().to_string());
        let topology = dir.path().join("veza.toml");
        std::fs::write(&topology, text).unwrap_or_else(|e| panic!("{e}"));
        Cli { dir, topology }
    }

    fn live(&self) -> PathBuf {
        self.dir.path().join("live")
    }

    fn edit(&self, from: &str, to: &str) {
        let text = std::fs::read_to_string(&self.topology).unwrap_or_else(|e| panic!("{e}"));
        assert!(text.contains(from), "no {from:?} in the topology");
        std::fs::write(&self.topology, text.replacen(from, to, 1))
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Runs vezasock with the topology and the live paths in the environment.
    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_vezasock"))
            .args(args)
            .env("VEZASOCK_CONFIG", &self.topology)
            .env("VEZASOCK_HAPROXY_CONFIG", self.live().join("haproxy.cfg"))
            .env("VEZASOCK_MAPS_DIR", self.live())
            .env("VEZASOCK_HAPROXY", &versions()[0].1)
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
        (out.status.success(), text(out.stdout), text(out.stderr))
    }
}

#[test]
fn cli_render_then_plan() {
    let cli = Cli::new();
    let (ok, out, err) = cli.run(&["render"]);
    assert!(ok, "{err}");
    assert!(out.starts_with(shape::FINGERPRINT_PREFIX), "{out}");

    // No live config yet: a reload.
    let (ok, out, err) = cli.run(&["plan"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("Reload needed"), "{out}");

    let live = cli.live();
    let (ok, _, err) = cli.run(&[
        "render",
        "--out",
        &live.display().to_string(),
        "--color",
        "staging=green",
    ]);
    assert!(ok, "{err}");
    let colors = std::fs::read_to_string(live.join("active-color.map")).unwrap_or_default();
    assert!(
        colors.contains("staging green\n") && colors.contains("prod blue\n"),
        "{colors}"
    );
    assert!(live.join("haproxy.cfg.shape.json").exists());

    // Live matches; the live colors are kept, never reset to blue.
    let (ok, out, err) = cli.run(&["plan"]);
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        "Nothing to do: the live edge matches the topology."
    );
    let (_, json, _) = cli.run(&["plan", "--json"]);
    let v: serde_json::Value =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert_eq!(v["plan"], "nothing", "{json}");

    // A new env host is a runtime edit.
    cli.edit(
        "hosts = [\"veza.fr\", \"www.veza.fr\"]",
        "hosts = [\"veza.fr\", \"www.veza.fr\", \"app.veza.fr\"]",
    );
    let (_, out, _) = cli.run(&["plan"]);
    assert!(
        out.contains("Runtime changes, no reload (1 map edit(s)):"),
        "{out}"
    );
    assert!(out.contains("add host app.veza.fr to env prod"), "{out}");

    // A moved server is a reload, explained.
    cli.edit("10.0.20.105:3000", "10.0.20.106:3000");
    let (_, out, _) = cli.run(&["plan"]);
    assert!(out.starts_with("Reload needed"), "{out}");
    assert!(
        out.contains(
            "server forgejo_backend/srv_1 moved from 10.0.20.105:3000 to 10.0.20.106:3000"
        ),
        "{out}"
    );
    let (_, json, _) = cli.run(&["plan", "--json"]);
    let v: serde_json::Value =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert_eq!(v["plan"], "reload", "{json}");
    assert!(
        v["reasons"].as_array().is_some_and(|r| r.len() >= 2),
        "{json}"
    );
    assert_ne!(v["desired_fingerprint"], v["live_fingerprint"]);
}

#[test]
fn cli_reports_bad_topology_with_file_line_and_field() {
    let cli = Cli::new();
    cli.edit("\"staging.veza.fr\"", "\"staging.veza.fr\\nlisten x\"");
    let (ok, out, err) = cli.run(&["render"]);
    assert!(!ok);
    assert!(out.is_empty(), "nothing rendered: {out}");
    let file = cli.topology.display().to_string();
    assert!(err.contains(&format!("{file}:")), "{err}");
    assert!(
        err.contains("env.staging.hosts[0]: contains a newline"),
        "{err}"
    );
}

#[test]
fn cli_check_passes_and_maps_haproxy_errors_to_the_topology() {
    let cli = Cli::new();
    let (ok, out, err) = cli.run(&["check"]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("the candidate config is valid"), "{out}");
    // A certs dir that does not exist passes validation but not haproxy -c.
    cli.edit("certs_dir = \"", "certs_dir = \"/nonexistent");
    let (ok, out, _) = cli.run(&["check"]);
    assert!(!ok, "{out}");
    assert!(out.contains("[ALERT]"), "{out}");
    assert!(out.contains("at rendered line"), "{out}");
    assert!(out.contains("in frontend fe_edge"), "{out}");
    assert!(
        out.contains("HAProxy refused the candidate config"),
        "{out}"
    );
}

// ---- the mechanism on a real HAProxy: routing, flip, missing backend, failover ----

mod live {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::unix::net::UnixStream;
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// Small HTTP servers on loopback answering `<backend>/<server>` to every request.
    pub struct Backends {
        stop: Arc<AtomicBool>,
        threads: Vec<std::thread::JoinHandle<()>>,
    }

    impl Backends {
        pub fn start(named: Vec<(String, TcpListener)>) -> Backends {
            let stop = Arc::new(AtomicBool::new(false));
            let threads = named
                .into_iter()
                .map(|(name, listener)| {
                    let stop = stop.clone();
                    std::thread::spawn(move || serve(&name, &listener, &stop))
                })
                .collect();
            Backends { stop, threads }
        }
    }

    impl Drop for Backends {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            for t in self.threads.drain(..) {
                let _ = t.join();
            }
        }
    }

    fn serve(name: &str, listener: &TcpListener, stop: &AtomicBool) {
        let _ = listener.set_nonblocking(true);
        // Bounded: a test never runs this long.
        let deadline = Instant::now() + Duration::from_secs(120);
        while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
            match listener.accept() {
                Ok((mut s, _)) => {
                    let _ = s.set_nonblocking(false);
                    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                    let mut buf = [0u8; 4096];
                    let mut got = Vec::new();
                    while !got.windows(4).any(|w| w == b"\r\n\r\n") && got.len() < 65536 {
                        match s.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{name}",
                        name.len()
                    );
                    let _ = s.write_all(reply.as_bytes());
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }

    /// An HAProxy process (foreground, no master) killed on drop.
    pub struct Haproxy {
        child: Child,
        pub admin: PathBuf,
    }

    impl Haproxy {
        pub fn start(bin: &Path, config: &Path, admin: PathBuf) -> Haproxy {
            let child = Command::new(bin)
                .arg("-db")
                .arg("-f")
                .arg(config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
            let h = Haproxy { child, admin };
            let deadline = Instant::now() + Duration::from_secs(10);
            while !h.admin.exists() {
                assert!(
                    Instant::now() < deadline,
                    "HAProxy did not create its admin socket"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            h
        }

        /// One command on the admin socket; returns the reply.
        pub fn cli(&self, command: &str) -> String {
            let mut s = UnixStream::connect(&self.admin).unwrap_or_else(|e| panic!("{e}"));
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            s.write_all(format!("{command}\n").as_bytes())
                .unwrap_or_else(|e| panic!("{e}"));
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            out
        }
    }

    impl Drop for Haproxy {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// GET `path` with `Host: host`; returns (status, body).
    pub fn get(port: u16, host: &str, path: &str) -> (u16, String) {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
            return (0, String::new());
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        if s.write_all(req.as_bytes()).is_err() {
            return (0, String::new());
        }
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        let status = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
        let body = out
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }

    /// Retries `get` until the body is `want` (health checks settle after a start or a state
    /// change), for at most 10 s; returns the last answer.
    pub fn get_until(port: u16, host: &str, path: &str, want: &str) -> (u16, String) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = get(port, host, path);
            if got.1 == want || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A free loopback port (bound then released).
    pub fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

/// Every server of `topo` on a fresh loopback listener that answers `<backend>/<server>`.
fn on_loopback(topo: &Topology) -> (Topology, live::Backends) {
    let (mut t, moved) = topo.with_local_servers(1).unwrap_or_else(|e| panic!("{e}"));
    let mut listeners = Vec::new();
    let mut ports = std::collections::HashMap::new();
    for m in &moved {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let port = l
            .local_addr()
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("{e}"));
        ports.insert(m.port, port);
        listeners.push((format!("{}/{}", m.backend, m.server), l));
    }
    // with_local_servers numbered the servers from 1; swap in the real listener ports.
    let fix = |s: &mut vezasock::topology::Server| {
        if let Some(p) = ports.get(&s.address.port) {
            s.address.port = *p;
        }
    };
    for env in &mut t.envs {
        for c in &mut env.components {
            match &mut c.servers {
                Servers::Colored { blue, green } => {
                    blue.iter_mut().chain(green.iter_mut()).for_each(fix)
                }
                Servers::Pool(p) => p.iter_mut().for_each(fix),
            }
        }
    }
    for x in &mut t.externals {
        x.servers.iter_mut().for_each(fix);
    }
    if let Some(a) = &mut t.acme {
        fix(&mut a.server);
    }
    (t, live::Backends::start(listeners))
}

fn run_edge(bin: &Path, label: &str, failover: Failover) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut t = default_topology();
    t.tls = None;
    t.failover = failover;
    // prod without its stream component: a dynamic use_backend that names no backend.
    t.envs[1].components.retain(|c| c.name != "stream");
    let (mut t, _backends) = on_loopback(&t);
    let port = live::free_port();
    t.listen.http = format!("127.0.0.1:{port}");
    t.paths = t.paths.under(dir.path());
    let r = render_ok(&t, &no_colors());
    write::write_rendered(&r, &t.paths.maps_dir).unwrap_or_else(|e| panic!("{e}"));
    let h = live::Haproxy::start(
        bin,
        &t.paths.maps_dir.join("haproxy.cfg"),
        t.paths.admin_socket.clone(),
    );
    let get = |host: &str, path: &str| live::get(port, host, path);
    let ok = |body: &str| (200u16, body.to_string());

    let first = live::get_until(
        port,
        "staging.veza.fr",
        "/api/x",
        "be_staging_api_blue/blue_1",
    );
    assert_eq!(first, ok("be_staging_api_blue/blue_1"), "{label}");
    assert_eq!(
        get("STAGING.veza.fr:80", "/api"),
        ok("be_staging_api_blue/blue_1"),
        "{label}: host lowercased, port dropped"
    );
    assert_eq!(
        get("staging.veza.fr", "/apiary"),
        ok("be_staging_web_blue/blue_1"),
        "{label}: /api is a segment prefix"
    );
    assert_eq!(
        get("staging.veza.fr", "/hls/a.m3u8"),
        ok("be_staging_stream_blue/blue_1"),
        "{label}"
    );
    assert_eq!(
        get("www.veza.fr", "/"),
        ok("be_prod_web_blue/blue_1"),
        "{label}"
    );
    assert_eq!(
        get("veza.fr", "/stream/x").0,
        503,
        "{label}: no such backend -> default_503"
    );
    assert_eq!(
        get("forgejo.talas.group", "/"),
        ok("forgejo_backend/srv_1"),
        "{label}"
    );
    assert_eq!(get("talas.fr", "/").0, 503, "{label}: vitrine placeholder");
    assert_eq!(get("unknown.example", "/").0, 503, "{label}");
    assert_eq!(
        get("veza.fr", "/.well-known/acme-challenge/t"),
        ok("acme_backend/srv_1"),
        "{label}"
    );

    // One map edit flips every component of staging, and only staging.
    let map = t.paths.active_color_map();
    let reply = h.cli(&format!("set map {} staging green", map.display()));
    assert!(reply.trim().is_empty(), "{label}: set map said {reply:?}");
    assert_eq!(
        get("staging.veza.fr", "/api/x"),
        ok("be_staging_api_green/green_1"),
        "{label}"
    );
    assert_eq!(
        get("staging.veza.fr", "/"),
        ok("be_staging_web_green/green_1"),
        "{label}"
    );
    assert_eq!(
        get("staging.veza.fr", "/stream/s"),
        ok("be_staging_stream_green/green_1"),
        "{label}"
    );
    assert_eq!(
        get("veza.fr", "/"),
        ok("be_prod_web_blue/blue_1"),
        "{label}: prod untouched"
    );

    // The live color goes down.
    let reply = h.cli("disable server be_staging_api_green/green_1");
    assert!(
        reply.trim().is_empty(),
        "{label}: disable server said {reply:?}"
    );
    match failover {
        Failover::None => {
            let got = get("staging.veza.fr", "/api/x");
            assert_eq!(
                got.0, 503,
                "{label}: failover none must answer 503, got {got:?}"
            );
        }
        Failover::CrossColor => {
            // The backup is the blue container itself: it answers with its own name.
            let got = live::get_until(
                port,
                "staging.veza.fr",
                "/api/x",
                "be_staging_api_blue/blue_1",
            );
            assert_eq!(
                got,
                ok("be_staging_api_blue/blue_1"),
                "{label}: the blue backup serves"
            );
        }
    }
}

#[test]
fn routing_flip_and_failover_on_real_haproxy() {
    let mut ran = Vec::new();
    for (label, bin) in versions() {
        if !bin.exists() {
            eprintln!("HAProxy {label} not found at {}, skipped", bin.display());
            continue;
        }
        run_edge(&bin, &format!("{label} failover=none"), Failover::None);
        run_edge(
            &bin,
            &format!("{label} failover=cross-color"),
            Failover::CrossColor,
        );
        ran.push(label);
    }
    eprintln!("routing, flip and failover checked on {ran:?}");
    assert!(
        !ran.is_empty(),
        "no HAProxy binary found: nothing was checked"
    );
}
