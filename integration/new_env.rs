//! A new env without a reload on HAProxy 3.4 (issue 25 bullet 4, docs/pools.md): an env
//! `demo` (one host, the three components, blue and green with one server each) added to the
//! topology while a bounded load runs on the other envs. On 3.4 `plan` says runtime and
//! `apply` adds the six backends (`add backend … from vz_<component>`), their servers, the
//! host and the color: zero failed requests, zero reloads, the new host answered by its
//! color at once, `switch` works on it, and all of it is kept across a reload and a restart.
//! 2.6, 3.0 and 3.2 have no `add backend`: `plan` says so and `apply` reloads, as before.

use std::path::Path;
use std::time::Duration;

use vezasock::demo::backend::Backend;
use vezasock::demo::http::get;
use vezasock::demo::LocalEdge;
use vezasock::topology::{Address, Color, Env, EnvComponent, Server, Servers, Topology};

use crate::edge::wait_answer;
use crate::moved_server::{
    ok, show_proc, vezasock_config_env, worker_pids, write_topology, Immutable,
};
use crate::pools::{assert_nothing, plan_json, reload, start_load, stop_load, WHO};
use crate::support::haproxy::raw_one_shot;
use crate::support::haproxy::{per_version, Haproxy};
use crate::support::ports::free_port;
use crate::support::run::vezasock_config;
use crate::switch::healthy_edge;

const HOST: &str = "demo.veza.fr";
/// A path of each component, and the component (web takes what the others do not).
const PATHS: [(&str, &str); 3] = [("/api/x", "api"), ("/stream/x", "stream"), ("/", "web")];

/// `topo` with env `demo`: staging's components, one server per color each on a backend
/// answering `demo <component> <color>` (returned: keep them).
fn with_demo(topo: &Topology) -> (Topology, Vec<Backend>) {
    let mut topo = topo.clone();
    let staging = topo
        .envs
        .iter()
        .find(|e| e.name == "staging")
        .cloned()
        .unwrap_or_else(|| panic!("no staging env"));
    let mut backends = Vec::new();
    let mut server = |component: &str, color: Color| {
        let port = free_port();
        let b = Backend::start(&format!("demo {component} {color}"), port)
            .unwrap_or_else(|e| panic!("{port}: {e}"));
        backends.push(b);
        vec![Server {
            name: format!("{color}_1"),
            address: Address {
                host: "127.0.0.1".to_string(),
                port,
            },
        }]
    };
    let components = staging
        .components
        .iter()
        .map(|c| EnvComponent {
            name: c.name.clone(),
            servers: Servers::Colored {
                blue: server(&c.name, Color::Blue),
                green: server(&c.name, Color::Green),
            },
        })
        .collect();
    topo.envs.push(Env {
        name: "demo".to_string(),
        prefix: "veza-demo".to_string(),
        hosts: vec![HOST.to_string()],
        cookie: staging.cookie.replace("_staging", "_demo"),
        colored: true,
        components,
    });
    (topo, backends)
}

/// Every component of demo answers with `color`, on the first request (no retry).
fn answers_at_once(edge: &LocalEdge, color: &str, label: &str) {
    for (path, component) in PATHS {
        let got = get(edge.http, HOST, path, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("{label}: {HOST}{path}: {e}"));
        assert_eq!(
            (got.status, got.body.as_str()),
            (200, format!("demo {component} {color}").as_str()),
            "{label}: {HOST}{path}"
        );
    }
}

/// Polls until every component of demo answers with `color`.
fn answers(edge: &LocalEdge, color: &str, label: &str) {
    for (path, component) in PATHS {
        wait_answer(
            edge,
            HOST,
            path,
            &format!("demo {component} {color}"),
            label,
        );
    }
}

/// The reload path before 3.4: `plan` says why, `apply` reloads once.
fn older_version_reloads(edge: &LocalEdge, file: &Path, label: &str) {
    let p = plan_json(file, label);
    assert_eq!(p["plan"], "reload", "{label}: {p}");
    assert!(
        p["refused_at_runtime"].is_null(),
        "{label}: no --reload needed: {p}"
    );
    let why = p["changes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["change"] == "backend be_demo_web_blue added")
        .map(|c| c["reason"].as_str().unwrap_or_default().to_string())
        .unwrap_or_else(|| panic!("{label}: {p}"));
    assert!(
        why.contains(&format!("HAProxy {label} has no `add backend`")),
        "{label}: {why}"
    );
    let before = show_proc(edge).master.reloads;
    let load = start_load(edge, label);
    ok(&vezasock_config(file, WHO, &["apply"]), "apply", label);
    answers(edge, "blue", label);
    stop_load(load, label);
    assert_eq!(show_proc(edge).master.reloads, before + 1, "{label}");
    assert_nothing(file, label);
}

per_version!(
    a_new_env_is_added_without_a_reload_on_3_4_and_by_a_reload_before,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let label = v.label;
        let mut edge = healthy_edge(v, dir.path());
        let file = dir.path().join("topology.toml");
        let (topo, _backends) = with_demo(&edge.topology);
        write_topology(&file, &topo);
        if label != "3.4" {
            older_version_reloads(&edge, &file, label);
            return;
        }
        let p = plan_json(&file, label);
        assert_eq!(p["plan"], "runtime", "{label}: {p}");
        let steps = p["steps"].as_array().cloned().unwrap_or_default();
        for (_, component) in PATHS {
            for color in ["blue", "green"] {
                let backend = format!("be_demo_{component}_{color}");
                assert!(
                    steps.iter().any(|s| s["step"] == "add-backend"
                        && s["backend"] == backend.as_str()
                        && s["from"] == format!("vz_{component}").as_str()),
                    "{label}: {backend}: {p}"
                );
            }
        }
        let human = vezasock_config(&file, WHO, &["plan"]);
        assert!(
            human
                .out
                .contains("2 map edit(s), 6 backend(s) added, 6 server(s) added, 0 removed"),
            "{label}: {}",
            human.out
        );
        eprintln!("{}", human.out);
        let before = show_proc(&edge);
        let load = start_load(&edge, label);
        let applied = vezasock_config(&file, WHO, &["apply"]);
        ok(&applied, "apply", label);
        eprintln!("{}", applied.out);
        answers_at_once(&edge, "blue", label);
        let report = stop_load(load, label);
        let after = show_proc(&edge);
        assert_eq!(worker_pids(&after), worker_pids(&before), "{label}");
        assert_eq!(after.master.reloads, before.master.reloads, "{label}");
        assert!(
            applied
                .out
                .contains("be_demo_api_green: added from vz_api (`add backend`), no reload"),
            "{label}: {}",
            applied.out
        );
        let config = std::fs::read_to_string(&edge.topology.paths.config).unwrap_or_default();
        assert!(config.contains("backend be_demo_stream_green"), "{label}");
        assert_nothing(&file, label);
        let status = vezasock_config(&file, WHO, &["status"]);
        assert_eq!(status.code, Some(0), "{label}: {status:?}");

        // The new env flips like any other.
        ok(
            &vezasock_config(&file, WHO, &["switch", "demo", "green"]),
            "switch demo green",
            label,
        );
        answers_at_once(&edge, "green", label);
        assert_nothing(&file, label);
        assert_eq!(
            show_proc(&edge).master.reloads,
            before.master.reloads,
            "{label}: no reload"
        );

        // Kept by a reload and by a restart (the config and the maps on disk hold it).
        reload(&edge, label);
        answers(&edge, "green", label);
        edge.restart_haproxy()
            .unwrap_or_else(|e| panic!("{label}: restart: {e}"));
        answers(&edge, "green", label);
        wait_answer(&edge, "staging.veza.fr", "/", "staging web blue", label);
        assert_nothing(&file, label);
        eprintln!(
            "{label}: env demo added with no reload, {} requests, 0 failed",
            report.sent()
        );
    }
);

/// The backends the running HAProxy has whose name starts with `be_demo_`.
fn demo_backends(edge: &LocalEdge) -> Vec<String> {
    raw_one_shot(&edge.topology.paths.admin_socket, "show backend\n")
        .unwrap_or_else(|e| panic!("show backend: {e}"))
        .lines()
        .filter(|l| l.starts_with("be_demo_"))
        .map(String::from)
        .collect()
}

// The config write fails (`chattr +i`): on 3.4 the new backends, their servers and nothing
// else are put back (exit 1); before 3.4 the reload path refuses before any reload. Either way
// the host is not served, the files are as they were, and the next apply adds the env.
per_version!(
    a_new_env_whose_config_write_fails_changes_nothing,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let label = v.label;
        let edge = healthy_edge(v, dir.path());
        let file = dir.path().join("topology.toml");
        let (topo, _backends) = with_demo(&edge.topology);
        write_topology(&file, &topo);
        let paths = &edge.topology.paths;
        let read = || {
            [&paths.config, &paths.hosts_map(), &paths.active_color_map()]
                .map(|p| std::fs::read(p).ok())
        };
        let old = read();
        let reloads = show_proc(&edge).master.reloads;
        let failed = {
            let _frozen = Immutable::set(&paths.config);
            vezasock_config(&file, WHO, &["apply"])
        };
        assert!(failed.code.is_some_and(|c| c != 0), "{label}: {failed:?}");
        if label == "3.4" {
            assert_eq!(failed.code, Some(1), "{label}: {failed:?}");
            assert!(
                failed.err.contains("every server was put back"),
                "{label}: {}",
                failed.err
            );
        }
        assert_eq!(demo_backends(&edge), Vec::<String>::new(), "{label}");
        assert!(
            read() == old,
            "{label}: the config and the maps as they were"
        );
        assert_eq!(show_proc(&edge).master.reloads, reloads, "{label}");
        let got = get(edge.http, HOST, "/", Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(got.status, 503, "{label}: not served: {got:?}");

        ok(&vezasock_config(&file, WHO, &["apply"]), "apply", label);
        answers(&edge, "blue", label);
        assert_nothing(&file, label);
    }
);

// kill -9 while adding the env on 3.4: after the runtime step (backends and servers live and
// published, nothing written; the host not yet in the maps), then after the config write (the
// maps not yet written). `status` says INTERRUPTED and the next `apply` finishes: it finds
// the backends and servers added, writes what is missing, and closes the operation. Before
// 3.4 neither point is on the reload path: the same apply runs to its end.
per_version!(
    an_apply_killed_while_adding_a_new_env_is_finished_by_the_next_apply,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let label = v.label;
        let edge = healthy_edge(v, dir.path());
        let file = dir.path().join("topology.toml");
        let (topo, _backends) = with_demo(&edge.topology);
        write_topology(&file, &topo);
        let reloads = show_proc(&edge).master.reloads;
        let crash = [("VEZASOCK_CRASH_AT", "after-pool-runtime")];
        let run = vezasock_config_env(&file, &["apply"], &crash);
        if label != "3.4" {
            ok(&run, "apply (reload path)", label);
            answers(&edge, "blue", label);
            assert_eq!(show_proc(&edge).master.reloads, reloads + 1, "{label}");
            return;
        }
        assert_eq!(run.code, None, "{label}: killed: {run:?}");
        assert_eq!(demo_backends(&edge).len(), 6, "{label}: added");
        let config = std::fs::read_to_string(&edge.topology.paths.config).unwrap_or_default();
        assert!(!config.contains("be_demo_"), "{label}: the old config");
        interrupted_then_finished(&edge, &file, label);
        assert!(
            std::fs::read_to_string(&edge.topology.paths.config)
                .unwrap_or_default()
                .contains("backend be_demo_web_green"),
            "{label}: written"
        );

        // Killed after the config write: the maps are what is left.
        let mut without = topo.clone();
        without.envs.retain(|e| e.name != "demo");
        write_topology(&file, &without);
        ok(
            &vezasock_config(&file, WHO, &["apply"]),
            "apply (remove demo)",
            label,
        );
        let reloads = show_proc(&edge).master.reloads;
        write_topology(&file, &topo);
        let crash = [("VEZASOCK_CRASH_AT", "after-pool-config")];
        let run = vezasock_config_env(&file, &["apply"], &crash);
        assert_eq!(run.code, None, "{label}: killed: {run:?}");
        interrupted_then_finished(&edge, &file, label);
        assert_eq!(show_proc(&edge).master.reloads, reloads, "{label}");
    }
);

/// `status` says INTERRUPTED (exit 6); the next `apply` closes it and demo answers blue.
fn interrupted_then_finished(edge: &LocalEdge, file: &Path, label: &str) {
    let status = vezasock_config(file, WHO, &["status"]);
    assert_eq!(status.code, Some(6), "{label}: {status:?}");
    assert!(
        status.out.contains("INTERRUPTED"),
        "{label}: {}",
        status.out
    );
    let done = vezasock_config(file, WHO, &["apply"]);
    ok(&done, "apply after the kill", label);
    assert!(
        done.out.contains("closed interrupted operation"),
        "{label}: {}",
        done.out
    );
    answers_at_once(edge, "blue", label);
    let status = vezasock_config(file, WHO, &["status"]);
    assert_eq!(status.code, Some(0), "{label}: {status:?}");
    assert_nothing(file, label);
}

// demo's green is not running yet (its ports closed): the env is added all the same, blue
// serves it at once, and green's servers wait, DOWN, for their checks (as after a reload).
per_version!(
    a_new_env_whose_other_color_is_not_running_yet_is_added,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let label = v.label;
        let edge = healthy_edge(v, dir.path());
        let file = dir.path().join("topology.toml");
        let (topo, mut backends) = with_demo(&edge.topology);
        let green: Vec<u16> = topo
            .envs
            .iter()
            .filter(|e| e.name == "demo")
            .flat_map(|e| &e.components)
            .flat_map(|c| c.servers.of(Color::Green))
            .map(|s| s.address.port)
            .collect();
        backends.retain(|b| !green.contains(&b.addr.port()));
        assert_eq!(backends.len(), 3, "{label}");
        write_topology(&file, &topo);
        let reloads = show_proc(&edge).master.reloads;
        let applied = vezasock_config(&file, WHO, &["apply"]);
        ok(&applied, "apply", label);
        if label == "3.4" {
            answers_at_once(&edge, "blue", label);
            assert_eq!(show_proc(&edge).master.reloads, reloads, "{label}");
            assert!(
                applied.out.contains(
                    "be_demo_web_green/green_1: DOWN by its health checks so far: in rotation \
                     once they pass"
                ),
                "{label}: {}",
                applied.out
            );
        } else {
            answers(&edge, "blue", label);
            assert_eq!(show_proc(&edge).master.reloads, reloads + 1, "{label}");
        }
        assert_nothing(&file, label);
        let refused = vezasock_config(&file, WHO, &["switch", "demo", "green"]);
        assert_eq!(refused.code, Some(1), "{label}: green is DOWN: {refused:?}");
    }
);
