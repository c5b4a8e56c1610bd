//! The rendered edge on real HAProxy, one test per version: the default (TLS on and off) and
//! a cross-color + pools topology pass `haproxy -c`; `vezasock check` passes and maps HAProxy's
//! errors back to the topology; and the rendered mechanism routes, flips with one `set map`,
//! and answers per failover policy. Every server is on loopback, so `haproxy -c` resolves no
//! DNS name (the `.lxd` names cost seconds each where they do not resolve).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use vezasock::cli::check::haproxy_check;
use vezasock::render::{self, write, Rendered};
use vezasock::topology::{Color, Failover, Servers, Tls, Topology};

use crate::support::haproxy::{per_version, Haproxy};
use crate::support::run::Vezasock;
use crate::support::topology::to_toml;

#[path = "../tests/support/topologies.rs"]
mod topologies;
use topologies::{cross_color_pools_on_loopback, default_topology};

fn no_colors() -> BTreeMap<String, Color> {
    BTreeMap::new()
}

fn render_ok(t: &Topology, colors: &BTreeMap<String, Color>) -> Rendered {
    render::render(t, colors).unwrap_or_else(|e| panic!("{e}"))
}

/// `topo` with every server on loopback (the addresses only need to parse: `haproxy -c`
/// starts no check).
fn on_loopback_addresses(topo: &Topology) -> Topology {
    topo.with_local_servers(21000)
        .unwrap_or_else(|e| panic!("{e}"))
        .0
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

/// Runs `haproxy -c` of version `v` on `topo` (paths moved under a temp dir, TLS on a
/// self-signed cert when the topology has TLS): valid, and no alert.
fn check_on(v: &Haproxy, topo: &Topology, what: &str) {
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
    let label = v.label;
    let outcome = haproxy_check(&v.bin, &config).unwrap_or_else(|e| panic!("{label}: {e}"));
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
}

per_version!(default_passes_haproxy_check, |v: &Haproxy| {
    check_on(
        v,
        &on_loopback_addresses(&default_topology()),
        "default (TLS on)",
    );
});

per_version!(default_without_tls_passes_haproxy_check, |v: &Haproxy| {
    let mut t = on_loopback_addresses(&default_topology());
    t.tls = None;
    check_on(v, &t, "default (TLS off)");
});

per_version!(
    cross_color_pools_and_local_servers_pass_haproxy_check,
    |v: &Haproxy| {
        check_on(
            v,
            &cross_color_pools_on_loopback(),
            "cross-color + pools + local servers",
        );
    }
);

// ---- `vezasock check`, black-box ----

struct Cli {
    dir: tempfile::TempDir,
    topology: PathBuf,
    haproxy: PathBuf,
    certs: Option<PathBuf>,
}

impl Cli {
    /// A topology file (the default, servers on loopback, TLS on a temp cert) and a live dir
    /// under a temp dir.
    fn new(v: &Haproxy) -> Cli {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut t = on_loopback_addresses(&default_topology());
        let mut certs = None;
        if let Some(tls) = &mut t.tls {
            tls.certs_dir = make_certs(dir.path());
            certs = Some(tls.certs_dir.clone());
        }
        let topology = dir.path().join("veza.toml");
        std::fs::write(&topology, to_toml(&t)).unwrap_or_else(|e| panic!("{e}"));
        Cli {
            dir,
            topology,
            haproxy: v.bin.clone(),
            certs,
        }
    }

    fn live(&self) -> PathBuf {
        self.dir.path().join("live")
    }

    /// Runs vezasock with the topology, the live paths and this version's HAProxy.
    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let run = Vezasock::new(args)
            .env("VEZASOCK_CONFIG", &self.topology)
            .env("VEZASOCK_HAPROXY_CONFIG", self.live().join("haproxy.cfg"))
            .env("VEZASOCK_MAPS_DIR", self.live())
            .env("VEZASOCK_HAPROXY", &self.haproxy)
            .run();
        (run.code == Some(0), run.out, run.err)
    }
}

per_version!(
    cli_check_passes_and_maps_haproxy_errors_to_the_topology,
    |v: &Haproxy| {
        let cli = Cli::new(v);
        let (ok, out, err) = cli.run(&["check"]);
        assert!(ok, "{out}\n{err}");
        assert!(out.contains("the candidate config is valid"), "{out}");
        // A certs dir holding a broken link passes validation but not haproxy -c (one that
        // does not exist passes: check reads a placeholder).
        let certs = cli.certs.clone().unwrap_or_else(|| panic!("no [tls]"));
        std::os::unix::fs::symlink("/nonexistent/cert.pem", certs.join("zz-broken.pem"))
            .unwrap_or_else(|e| panic!("{e}"));
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
);

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
    let port = crate::support::ports::free_port();
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

per_version!(routing_flip_and_failover_none, |v: &Haproxy| {
    run_edge(
        &v.bin,
        &format!("{} failover=none", v.label),
        Failover::None,
    );
});

per_version!(routing_flip_and_failover_cross_color, |v: &Haproxy| {
    run_edge(
        &v.bin,
        &format!("{} failover=cross-color", v.label),
        Failover::CrossColor,
    );
});
