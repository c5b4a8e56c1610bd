//! A color's pool grows and shrinks without a reload (issue 25, docs/pools.md), on real
//! HAProxy 2.6, 3.0, 3.2 and 3.4. prod web blue first gets a second server (its backend gains
//! a sticky cookie: a reload); then a third server is added, or the second removed, under a
//! bounded load. 3.0+ add it over the runtime (same worker, no reload, zero failed requests,
//! the new server answers once UP, kept across a reload and a restart); 2.6 refuses `cookie`
//! on an added server, so `apply` refuses and `apply --reload` reloads. Removal is runtime on
//! every version (zero failed requests, gone after a reload).

use std::path::Path;
use std::time::{Duration, Instant};

use vezasock::demo::backend::Backend;
use vezasock::demo::http::get;
use vezasock::demo::load::{Load, LoadReport, LoadSpec};
use vezasock::demo::LocalEdge;
use vezasock::edge::Edge;
use vezasock::runtime::master;
use vezasock::topology::{Address, Server, Servers, Topology};

use crate::edge::wait_answer;
use crate::moved_server::{ok, show_proc, worker_pids, write_topology};
use crate::support::haproxy::{per_version, raw_one_shot, Haproxy};
use crate::support::ports::free_port;
use crate::support::run::{vezasock_config, Run};
use crate::switch::{healthy_edge, rt};

pub(crate) const WHO: &str = "it-pools";
pub(crate) const BACKEND: &str = "be_prod_web_blue";

/// prod web blue's servers in `topo`.
pub(crate) fn prod_web_blue(topo: &mut Topology) -> &mut Vec<Server> {
    let web = topo
        .envs
        .iter_mut()
        .find(|e| e.name == "prod")
        .and_then(|e| e.components.iter_mut().find(|c| c.name == "web"))
        .unwrap_or_else(|| panic!("no prod web"));
    match &mut web.servers {
        Servers::Colored { blue, .. } => blue,
        Servers::Pool(_) => panic!("prod web is colored"),
    }
}

/// A backend answering `prod web blue <n>` on a free port, and its server for the topology.
pub(crate) fn server(n: u32) -> (Backend, Server) {
    let port = free_port();
    let body = format!("prod web blue {n}");
    let backend = Backend::start(&body, port).unwrap_or_else(|e| panic!("{port}: {e}"));
    let server = Server {
        name: format!("blue_{n}"),
        address: Address {
            host: "127.0.0.1".to_string(),
            port,
        },
    };
    (backend, server)
}

/// The edge with prod web blue grown to `extra` more servers by one `apply` (the backend gains
/// its sticky cookie: a reload), the topology file written. Returns the backends (keep them).
pub(crate) fn grown_edge(
    v: &Haproxy,
    dir: &Path,
    extra: u32,
) -> (LocalEdge, Topology, Vec<Backend>) {
    let edge = healthy_edge(v, dir);
    let file = dir.join("topology.toml");
    let mut topo = edge.topology.clone();
    let mut backends = Vec::new();
    for n in 2..2 + extra {
        let (b, s) = server(n);
        prod_web_blue(&mut topo).push(s);
        backends.push(b);
    }
    write_topology(&file, &topo);
    ok(
        &vezasock_config(&file, WHO, &["apply"]),
        "apply (grow)",
        v.label,
    );
    for n in 2..2 + extra {
        wait_server(&edge, n, v.label);
    }
    (edge, topo, backends)
}

/// Polls until `prod web blue <n>` answers veza.fr, at most 20 s.
pub(crate) fn wait_server(edge: &LocalEdge, n: u32, label: &str) {
    let want = format!("prod web blue {n}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = get(edge.http, "veza.fr", "/", Duration::from_secs(5));
        if got
            .as_ref()
            .is_ok_and(|a| a.status == 200 && a.body == want)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{label}: no {want}: {got:?}\n{}",
            edge.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(crate) fn in_runtime(edge: &LocalEdge, server: &str) -> bool {
    let dump = raw_one_shot(
        &edge.topology.paths.admin_socket,
        &format!("show servers state {BACKEND}\n"),
    )
    .unwrap_or_else(|e| panic!("show servers state: {e}"));
    dump.lines()
        .any(|l| l.split_whitespace().nth(3) == Some(server))
}

pub(crate) fn start_load(edge: &LocalEdge, label: &str) -> Load {
    let load = Load::start(&LoadSpec {
        edge: edge.http,
        targets: vec![("veza.fr".to_string(), "/".to_string())],
        keepalive_clients: 2,
        new_connection_clients: 2,
        max_duration: Duration::from_secs(90),
        max_requests_per_client: 40_000,
        pause: Duration::from_millis(2),
        timeout: Duration::from_secs(5),
    });
    assert!(
        load.wait_for_requests(100, Duration::from_secs(20)),
        "{label}: no load"
    );
    load
}

pub(crate) fn stop_load(load: Load, label: &str) -> LoadReport {
    assert!(
        load.wait_for_requests(200, Duration::from_secs(20)),
        "{label}: load stalled"
    );
    let report = load.stop();
    assert_eq!(report.failed(), 0, "{label}: {report:?}");
    report
}

/// A master-CLI reload, waited for until only new workers run.
pub(crate) fn reload(edge: &LocalEdge, label: &str) {
    let before = show_proc(edge).master.reloads;
    let e = Edge::new(edge.topology.clone());
    let r = rt()
        .block_on(master::reload(&e.master(), e.timeouts))
        .unwrap_or_else(|err| panic!("{label}: reload: {err}\n{}", edge.log()));
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let p = show_proc(edge);
        if p.master.reloads > before && p.workers.iter().all(|w| r.new_workers.contains(&w.pid)) {
            return;
        }
        assert!(Instant::now() < deadline, "{label}: {p:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub(crate) fn plan_json(file: &Path, label: &str) -> serde_json::Value {
    let json = vezasock_config(file, WHO, &["plan", "--json"]);
    ok(&json, "plan --json", label);
    serde_json::from_str(&json.out).unwrap_or_else(|e| panic!("{label}: {e}: {}", json.out))
}

pub(crate) fn assert_nothing(file: &Path, label: &str) {
    let again: Run = vezasock_config(file, WHO, &["plan"]);
    ok(&again, "plan after apply", label);
    assert_eq!(
        again.out.trim(),
        "Nothing to do: the live edge matches the topology.",
        "{label}"
    );
}

per_version!(
    a_server_added_to_a_color_takes_traffic_without_a_reload,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let label = v.label;
        let (mut edge, mut topo, _grown) = grown_edge(v, dir.path(), 1);
        let file = dir.path().join("topology.toml");
        let (_b3, s3) = server(3);
        prod_web_blue(&mut topo).push(s3);
        write_topology(&file, &topo);
        let before = show_proc(&edge);
        let p = plan_json(&file, label);
        let load = start_load(&edge, label);
        if label == "2.6" {
            // 2.6 refuses `cookie` on a server added at runtime: named, refused, then reloaded.
            assert_eq!(p["plan"], "reload", "{label}: {p}");
            let why = p["refused_at_runtime"][0].as_str().unwrap_or_default();
            assert!(why.contains("HAProxy 2.6 refuses `cookie`"), "{label}: {p}");
            let refused = vezasock_config(&file, WHO, &["apply"]);
            assert_eq!(refused.code, Some(1), "{label}: {refused:?}");
            assert!(
                refused.err.contains("apply --reload"),
                "{label}: {}",
                refused.err
            );
            assert!(!in_runtime(&edge, "blue_3"), "{label}: nothing changed");
            ok(
                &vezasock_config(&file, WHO, &["apply", "--reload"]),
                "apply --reload",
                label,
            );
            wait_server(&edge, 3, label);
            stop_load(load, label);
            assert_eq!(
                show_proc(&edge).master.reloads,
                before.master.reloads + 1,
                "{label}"
            );
            assert_nothing(&file, label);
            return;
        }
        assert_eq!(p["plan"], "runtime", "{label}: {p}");
        assert_eq!(p["steps"][0]["step"], "add-server", "{label}: {p}");
        assert_eq!(p["changes"][0]["via"], "runtime", "{label}: {p}");
        let applied = vezasock_config(&file, WHO, &["apply"]);
        ok(&applied, "apply", label);
        assert!(
            applied.out.contains(&format!("{BACKEND}/blue_3: added at")),
            "{label}: {}",
            applied.out
        );
        wait_server(&edge, 3, label);
        let report = stop_load(load, label);
        let after = show_proc(&edge);
        assert_eq!(
            worker_pids(&after),
            worker_pids(&before),
            "{label}: same worker"
        );
        assert_eq!(
            after.master.reloads, before.master.reloads,
            "{label}: no reload"
        );
        let config = std::fs::read_to_string(&edge.topology.paths.config).unwrap_or_default();
        assert!(
            config.contains("server blue_3 127.0.0.1:"),
            "{label}: written through"
        );
        assert_nothing(&file, label);
        // Kept by a reload and by a restart (from the config and the server-state file on disk).
        reload(&edge, label);
        assert!(in_runtime(&edge, "blue_3"), "{label}: after a reload");
        wait_server(&edge, 3, label);
        edge.restart_haproxy()
            .unwrap_or_else(|e| panic!("{label}: restart: {e}"));
        assert!(in_runtime(&edge, "blue_3"), "{label}: after a restart");
        wait_answer(&edge, "staging.veza.fr", "/", "staging web blue", label);
        wait_server(&edge, 3, label);
        assert_nothing(&file, label);
        eprintln!(
            "{label}: blue_3 added with no reload, {} requests, 0 failed",
            report.sent()
        );
    }
);

per_version!(
    a_server_removed_from_a_color_is_gone_without_a_reload,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let label = v.label;
        let (edge, mut topo, _grown) = grown_edge(v, dir.path(), 2);
        let file = dir.path().join("topology.toml");
        prod_web_blue(&mut topo).retain(|s| s.name != "blue_3");
        write_topology(&file, &topo);
        let before = show_proc(&edge);
        let p = plan_json(&file, label);
        assert_eq!(p["plan"], "runtime", "{label}: {p}");
        assert_eq!(p["steps"][0]["step"], "remove-server", "{label}: {p}");
        assert_eq!(p["changes"][0]["via"], "runtime", "{label}: {p}");
        let load = start_load(&edge, label);
        let applied = vezasock_config(&file, WHO, &["apply"]);
        ok(&applied, "apply", label);
        assert!(
            applied
                .out
                .contains(&format!("{BACKEND}/blue_3: removed with `del server`")),
            "{label}: {}",
            applied.out
        );
        assert!(!in_runtime(&edge, "blue_3"), "{label}: gone");
        let report = stop_load(load, label);
        let after = show_proc(&edge);
        assert_eq!(
            worker_pids(&after),
            worker_pids(&before),
            "{label}: same worker"
        );
        assert_eq!(
            after.master.reloads, before.master.reloads,
            "{label}: no reload"
        );
        for _ in 0..20 {
            let a = get(edge.http, "veza.fr", "/", Duration::from_secs(5))
                .unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_ne!(a.body, "prod web blue 3", "{label}");
        }
        assert_nothing(&file, label);
        reload(&edge, label);
        assert!(
            !in_runtime(&edge, "blue_3"),
            "{label}: still gone after a reload"
        );
        assert_nothing(&file, label);
        eprintln!(
            "{label}: blue_3 removed with no reload, {} requests, 0 failed",
            report.sent()
        );
    }
);
