//! Rendering, hermetic: a golden file pins the default edge, TLS and cross-color options
//! render what they say, the shape fingerprint ignores what the runtime owns, the templates
//! refuse injected values even past validation, and the planner explains real renders. No
//! HAProxy runs here: `haproxy -c` on these renders and the rendered edge on a real HAProxy
//! are in integration/render.rs.
//!
//! `VEZASOCK_BLESS=1 cargo test --test render` rewrites the golden files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use vezasock::plan::{plan, Change, LiveView, Plan, RuntimeStep, Via};
use vezasock::render::{self, shape, Rendered, ShapeSummary};
use vezasock::topology::{Address, Color, Failover, Servers, Topology};

#[path = "support/topologies.rs"]
mod topologies;
use topologies::{cross_color_pools_on_loopback, default_topology};

fn no_colors() -> BTreeMap<String, Color> {
    BTreeMap::new()
}

fn render_ok(t: &Topology, colors: &BTreeMap<String, Color>) -> Rendered {
    render::render(t, colors).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn default_without_tls_has_no_tls_bind_or_redirect() {
    let mut t = default_topology();
    t.tls = None;
    let r = render_ok(&t, &no_colors());
    assert!(
        !r.config.contains("ssl"),
        "no TLS bind or redirect without TLS"
    );
    assert!(!r.config.contains("redirect"));
}

#[test]
fn cross_color_pools_and_local_servers_render_backups_and_pools() {
    let local = cross_color_pools_on_loopback();
    assert_eq!(local.failover, Failover::CrossColor);
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
    // The pool has servers to stick to; its backend alone carries the env's cookie.
    assert!(
        r.config
            .contains("cookie veza_srv_lab insert indirect nocache httponly"),
        "{}",
        r.config
    );
    assert!(r.config.contains(" check cookie srv_3"), "{}", r.config);
    assert_eq!(r.config.matches("\n    cookie ").count(), 1, "{}", r.config);
}

#[test]
fn a_cookie_only_where_a_backend_has_servers_to_stick_to() {
    let r = render_ok(&default_topology(), &no_colors());
    // One server per color: a cookie would only add a Set-Cookie to every response.
    assert!(!r.config.contains("cookie"), "{}", r.config);
    let mut two = default_topology();
    if let Servers::Colored { green, .. } = &mut two.envs[1].components[2].servers {
        let mut second = green[0].clone();
        second.name = "green_2".into();
        second.address.port += 1;
        green.push(second);
    }
    let r = render_ok(&two, &no_colors());
    let backend = |name: &str| -> String {
        let start = r
            .config
            .find(&format!("backend {name}\n"))
            .unwrap_or_else(|| panic!("no {name}:\n{}", r.config));
        let rest = &r.config[start..];
        rest[..rest.find("\n\n").unwrap_or(rest.len())].to_string()
    };
    let green = backend("be_prod_web_green");
    assert!(
        green.contains("cookie veza_srv_prod insert indirect nocache httponly"),
        "{green}"
    );
    assert!(green.contains("check cookie green_1"), "{green}");
    assert!(green.contains("check cookie green_2"), "{green}");
    assert!(!backend("be_prod_web_blue").contains("cookie"));
}

#[test]
fn log_lines_only_with_a_log_target() {
    let mut t = default_topology();
    assert_eq!(t.log.as_deref(), Some("/dev/log"), "the example's target");
    let r = render_ok(&t, &no_colors());
    assert!(
        r.config.contains("\n    log /dev/log local0\n"),
        "{}",
        r.config
    );
    assert!(r.config.contains("\n    log global\n    option httplog\n"));
    t.log = None;
    let r = render_ok(&t, &no_colors());
    for word in ["log ", "httplog", "dontlognull"] {
        assert!(!r.config.contains(word), "{word}: {}", r.config);
    }
    let udp = vezasock::topology::EMBEDDED_DEFAULT
        .replace("log = \"/dev/log\"", "log = \"127.0.0.1:514\"");
    let t = Topology::from_toml(&udp, "udp.toml").unwrap_or_else(|e| panic!("{e}"));
    let r = render_ok(&t, &no_colors());
    assert!(
        r.config.contains("\n    log 127.0.0.1:514 local0\n"),
        "{}",
        r.config
    );
    for bad in ["dev/log", "/dev/log local0", "syslog"] {
        let text = vezasock::topology::EMBEDDED_DEFAULT
            .replace("log = \"/dev/log\"", &format!("log = {bad:?}"));
        let err = Topology::from_toml(&text, "bad.toml")
            .err()
            .unwrap_or_else(|| panic!("{bad:?} accepted"));
        assert!(err.to_string().contains("log"), "{bad:?}: {err}");
    }
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
            Box::new(|t| {
                t.envs[0].cookie = "sid insert\n    server x 1.2.3.4:1".into();
                // The cookie is written only where it has a choice: two blue servers.
                if let Servers::Colored { blue, .. } = &mut t.envs[0].components[0].servers {
                    let mut second = blue[0].clone();
                    second.name = "blue_2".into();
                    blue.push(second);
                }
            }),
        ),
        (
            "log target",
            Box::new(|t| t.log = Some("/dev/log local0\nlisten evil".into())),
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
        haproxy_version: None,
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
            }],
            changes: vec![Change {
                change: "add host app.veza.fr to env prod".into(),
                via: Via::Runtime,
                reason: "a map entry: the map file is rewritten, the runtime map replaced in \
                         one transaction (prepare/commit map)"
                    .into()
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
    let Plan::Reload { reasons, .. } = plan(&render_ok(&t, &live_r.colors), &fewer_live) else {
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
    /// A topology file (the default) and a live dir under a temp dir. `render` and `plan` run
    /// no HAProxy, so the certs dir need not exist.
    fn new() -> Cli {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let text = vezasock::topology::EMBEDDED_DEFAULT;
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

    // A server moved to another IP and port is a runtime step (issue 12), explained.
    cli.edit("10.0.20.105:3000", "10.0.20.106:3001");
    let (_, out, _) = cli.run(&["plan"]);
    assert!(
        out.starts_with("Runtime changes, no reload (1 map edit(s), 1 server move(s)):"),
        "{out}"
    );
    assert!(
        out.contains("move server forgejo_backend/srv_1 from 10.0.20.105:3000 to 10.0.20.106:3001"),
        "{out}"
    );
    assert!(
        out.contains("via runtime: only its address changed"),
        "{out}"
    );
    let (_, json, _) = cli.run(&["plan", "--json"]);
    let v: serde_json::Value =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert_eq!(v["plan"], "runtime", "{json}");
    assert_eq!(v["steps"][1]["step"], "move-server", "{json}");
    assert_eq!(v["changes"][1]["via"], "runtime", "{json}");

    // A server moved to a host name is a reload, explained (`set server … addr` takes an IP).
    cli.edit("10.0.20.106:3001", "forgejo.lxd:3000");
    let (_, out, _) = cli.run(&["plan"]);
    assert!(out.starts_with("Reload needed"), "{out}");
    assert!(
        out.contains(
            "server forgejo_backend/srv_1 moved from 10.0.20.105:3000 to forgejo.lxd:3000"
        ),
        "{out}"
    );
    assert!(
        out.contains("via reload: its new address is a host name"),
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
