//! A moved server without a reload (issue 12), on real HAProxy 2.6, 3.0 and 3.2: the
//! topology gives a live server a new port; `vezasock plan` says it goes over the runtime,
//! `vezasock apply` moves it with `set server … addr … port …` under load (same worker, no
//! reload, zero failed requests, answers from the new backend), writes the config and the
//! server-state file, and a later reload keeps the new address.

use std::path::Path;
use std::time::{Duration, Instant};

use vezasock::demo::backend::Backend;
use vezasock::demo::http::get;
use vezasock::demo::load::Load;
use vezasock::demo::LocalEdge;
use vezasock::edge::Edge;
use vezasock::runtime::command::master::ProcList;
use vezasock::runtime::master;
use vezasock::topology::{Servers, Topology};

use crate::edge::wait_answer;
use crate::support::haproxy::{per_version, raw_one_shot, Haproxy};
use crate::support::run::{vezasock_config, Run, Vezasock};
use crate::support::topology::to_toml;
use crate::switch::{healthy_edge, rt};

const WHO: &str = "it-moved";

use crate::support::load::spec;
use crate::support::ports::free_port;

pub(crate) fn show_proc(edge: &LocalEdge) -> ProcList {
    let e = Edge::new(edge.topology.clone());
    rt().block_on(master::show_proc(&e.master(), e.timeouts))
        .unwrap_or_else(|err| panic!("show proc: {err}\n{}", edge.log()))
}

pub(crate) fn worker_pids(p: &ProcList) -> Vec<u32> {
    let mut pids: Vec<u32> = p.workers.iter().map(|w| w.pid).collect();
    pids.sort_unstable();
    pids
}

/// The topology file for `topo`, checked to load back as the same topology.
pub(crate) fn write_topology(file: &Path, topo: &Topology) {
    std::fs::write(file, to_toml(topo)).unwrap_or_else(|e| panic!("{e}"));
    let loaded = Topology::load(file).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(&loaded, topo, "{}", to_toml(topo));
}

/// `srv_addr:srv_port` of `backend/server` in `show servers state`.
fn runtime_address(edge: &LocalEdge, backend: &str, server: &str) -> String {
    let dump = raw_one_shot(
        &edge.topology.paths.admin_socket,
        &format!("show servers state {backend}\n"),
    )
    .unwrap_or_else(|e| panic!("show servers state: {e}"));
    address_in_dump(&dump, backend, server)
        .unwrap_or_else(|| panic!("{backend}/{server} not in {dump}"))
}

/// `srv_addr:srv_port` of a row of a server-state dump (columns 5 and 19 of format 1).
pub(crate) fn address_in_dump(dump: &str, backend: &str, server: &str) -> Option<String> {
    dump.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(1) == Some(&backend) && f.get(3) == Some(&server))
            .then(|| format!("{}:{}", f.get(4).unwrap_or(&"?"), f.get(18).unwrap_or(&"?")))
    })
}

pub(crate) fn ok(run: &Run, what: &str, label: &str) {
    assert_eq!(run.code, Some(0), "{label}: {what}: {run:?}");
}

per_version!(
    a_moved_server_takes_its_new_address_without_a_reload_and_a_reload_keeps_it,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let edge = healthy_edge(v, dir.path());
        let label = v.label;
        wait_answer(&edge, "veza.fr", "/", "prod web blue", label);
        let file = dir.path().join("topology.toml");
        write_topology(&file, &edge.topology);
        // A server-state file saved before the move, as every write-through leaves one: its
        // old address would win over the new config at the next reload (HAProxy #1412).
        ok(
            &vezasock_config(&file, WHO, &["ready", "prod", "green"]),
            "ready prod green",
            label,
        );
        let before = show_proc(&edge);

        // The live server prod web blue moves to a new backend on a new loopback port.
        let new_port = free_port();
        let _moved = Backend::start("prod web blue moved", new_port)
            .unwrap_or_else(|e| panic!("backend on {new_port}: {e}"));
        let mut topo = edge.topology.clone();
        let web = topo
            .envs
            .iter_mut()
            .find(|e| e.name == "prod")
            .and_then(|e| e.components.iter_mut().find(|c| c.name == "web"))
            .unwrap_or_else(|| panic!("no prod web"));
        let old = match &mut web.servers {
            Servers::Colored { blue, .. } => {
                let old = blue[0].address.to_string();
                blue[0].address.port = new_port;
                old
            }
            Servers::Pool(_) => panic!("prod web is colored"),
        };
        let new = format!("127.0.0.1:{new_port}");
        // An idle server in DRAIN moves too, in the same apply, and stays drained.
        ok(
            &vezasock_config(
                &file,
                WHO,
                &["drain", "prod", "green", "--component", "api"],
            ),
            "drain prod green api",
            label,
        );
        let api_port = free_port();
        let api = topo
            .envs
            .iter_mut()
            .find(|e| e.name == "prod")
            .and_then(|e| e.components.iter_mut().find(|c| c.name == "api"))
            .unwrap_or_else(|| panic!("no prod api"));
        match &mut api.servers {
            Servers::Colored { green, .. } => green[0].address.port = api_port,
            Servers::Pool(_) => panic!("prod api is colored"),
        }
        let saved =
            std::fs::read_to_string(&edge.topology.paths.server_state_file).unwrap_or_default();
        assert_eq!(
            address_in_dump(&saved, "be_prod_web_blue", "blue_1"),
            Some(old.clone()),
            "{label}: {saved}"
        );
        write_topology(&file, &topo);
        assert_eq!(
            runtime_address(&edge, "be_prod_web_blue", "blue_1"),
            old,
            "{label}"
        );

        // plan: one runtime change, no reload, said in words and in JSON.
        let plan = vezasock_config(&file, WHO, &["plan"]);
        ok(&plan, "plan", label);
        assert!(
            plan.out
                .contains("Runtime changes, no reload (0 map edit(s), 2 server move(s)):"),
            "{label}: {}",
            plan.out
        );
        assert!(
            plan.out.contains(&format!(
                "move server be_prod_web_blue/blue_1 from {old} to {new}"
            )),
            "{label}: {}",
            plan.out
        );
        assert!(plan.out.contains("via runtime: "), "{label}: {}", plan.out);
        let json = vezasock_config(&file, WHO, &["plan", "--json"]);
        ok(&json, "plan --json", label);
        let p: serde_json::Value =
            serde_json::from_str(&json.out).unwrap_or_else(|e| panic!("{e}: {}", json.out));
        assert_eq!(p["plan"], "runtime", "{label}: {p}");
        assert_eq!(p["steps"][1]["step"], "move-server", "{label}: {p}");
        assert_eq!(p["steps"][1]["backend"], "be_prod_web_blue", "{label}: {p}");
        assert_eq!(p["steps"][1]["to"], new.as_str(), "{label}: {p}");
        assert_eq!(p["changes"][1]["via"], "runtime", "{label}: {p}");
        assert_eq!(
            p["changes"].as_array().map(Vec::len),
            Some(2),
            "{label}: {p}"
        );

        // apply under a bounded load on the env whose server moves (and the other one).
        let load = Load::start(&spec(
            edge.http,
            &[("veza.fr", "/"), ("staging.veza.fr", "/")],
        ));
        assert!(
            load.wait_for_requests(100, Duration::from_secs(20)),
            "{label}: no load"
        );
        let applied = vezasock_config(&file, WHO, &["apply"]);
        ok(&applied, "apply", label);
        assert!(
            applied.out.contains(&format!(
                "be_prod_web_blue/blue_1: moved from {old} to {new}"
            )),
            "{label}: {}",
            applied.out
        );
        assert!(
            !applied.out.contains("reloaded"),
            "{label}: {}",
            applied.out
        );
        wait_answer(&edge, "veza.fr", "/", "prod web blue moved", label);
        assert!(
            load.wait_for_requests(200, Duration::from_secs(20)),
            "{label}: the load stalled after the move"
        );
        let report = load.stop();
        assert!(report.sent() >= 300, "{label}: {report:?}");
        assert_eq!(report.failed(), 0, "{label}: {report:?}");

        // No reload: the same worker(s), the same reload count.
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
        assert_eq!(
            runtime_address(&edge, "be_prod_web_blue", "blue_1"),
            new,
            "{label}"
        );
        assert_eq!(
            runtime_address(&edge, "be_prod_api_green", "green_1"),
            format!("127.0.0.1:{api_port}"),
            "{label}"
        );
        let green = raw_one_shot(
            &edge.topology.paths.admin_socket,
            "show servers state be_prod_api_green\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let admin = green
            .lines()
            .find(|l| l.split_whitespace().nth(3) == Some("green_1"))
            .and_then(|l| l.split_whitespace().nth(6).map(str::to_string));
        assert_eq!(
            admin.as_deref(),
            Some("8"),
            "{label}: still in DRAIN: {green}"
        );
        // New connections all reach the new backend now.
        for _ in 0..20 {
            let a = get(edge.http, "veza.fr", "/", Duration::from_secs(5))
                .unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(
                (a.status, a.body.as_str()),
                (200, "prod web blue moved"),
                "{label}"
            );
        }
        // Written through: the config, its summary and the server-state file say the new
        // address, so the plan is now empty.
        let paths = &edge.topology.paths;
        let config = std::fs::read_to_string(&paths.config).unwrap_or_default();
        assert!(
            config.contains(&format!("server blue_1 {new}")),
            "{label}: {config}"
        );
        let state = std::fs::read_to_string(&paths.server_state_file).unwrap_or_default();
        assert_eq!(
            address_in_dump(&state, "be_prod_web_blue", "blue_1"),
            Some(new.clone()),
            "{label}: {state}"
        );
        let again = vezasock_config(&file, WHO, &["plan"]);
        ok(&again, "plan after apply", label);
        assert_eq!(
            again.out.trim(),
            "Nothing to do: the live edge matches the topology.",
            "{label}"
        );
        let journal =
            std::fs::read_to_string(paths.state_dir.join("journal.jsonl")).unwrap_or_default();
        assert!(
            journal.contains("set server") && journal.contains("\"apply\""),
            "{label}: {journal}"
        );

        // A later reload (master CLI) keeps the new address.
        let e = Edge::new(edge.topology.clone());
        let reloaded = rt()
            .block_on(master::reload(&e.master(), e.timeouts))
            .unwrap_or_else(|err| panic!("{label}: reload: {err}\n{}", edge.log()));
        assert!(!reloaded.new_workers.is_empty(), "{label}: {reloaded:?}");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let p = show_proc(&edge);
            if p.master.reloads > after.master.reloads
                && p.workers
                    .iter()
                    .all(|w| reloaded.new_workers.contains(&w.pid))
            {
                break;
            }
            assert!(Instant::now() < deadline, "{label}: {p:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
        wait_answer(&edge, "veza.fr", "/", "prod web blue moved", label);
        assert_eq!(
            runtime_address(&edge, "be_prod_web_blue", "blue_1"),
            new,
            "{label}: the reloaded worker keeps the new address"
        );
        eprintln!(
            "{label}: moved {old} → {new} with no reload, {} requests, 0 failed; kept across a reload",
            report.sent()
        );
    }
);

/// `chattr +i` on a file for as long as it lives: even root cannot rename over it, so the
/// config write after the runtime move fails.
pub(crate) struct Immutable<'a>(&'a Path);

impl<'a> Immutable<'a> {
    pub(crate) fn set(path: &'a Path) -> Immutable<'a> {
        let status = std::process::Command::new("chattr")
            .arg("+i")
            .arg(path)
            .status()
            .unwrap_or_else(|e| panic!("chattr: {e}"));
        assert!(status.success(), "chattr +i {}", path.display());
        Immutable(path)
    }
}

impl Drop for Immutable<'_> {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(self.0)
            .status();
    }
}

per_version!(
    a_move_whose_config_write_fails_is_put_back_and_says_nothing_changed,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let edge = healthy_edge(v, dir.path());
        let label = v.label;
        let file = dir.path().join("topology.toml");
        write_topology(&file, &edge.topology);
        ok(
            &vezasock_config(&file, WHO, &["ready", "prod", "green"]),
            "ready prod green",
            label,
        );
        let new_port = free_port();
        let _moved = Backend::start("prod web blue moved", new_port)
            .unwrap_or_else(|e| panic!("backend on {new_port}: {e}"));
        let mut topo = edge.topology.clone();
        let old = match topo
            .envs
            .iter_mut()
            .find(|e| e.name == "prod")
            .and_then(|e| e.components.iter_mut().find(|c| c.name == "web"))
            .map(|c| &mut c.servers)
        {
            Some(Servers::Colored { blue, .. }) => {
                let old = blue[0].address.to_string();
                blue[0].address.port = new_port;
                old
            }
            other => panic!("prod web: {other:?}"),
        };
        write_topology(&file, &topo);
        let paths = &edge.topology.paths;
        let config = std::fs::read(&paths.config).unwrap_or_else(|e| panic!("{e}"));
        let state = std::fs::read(&paths.server_state_file).unwrap_or_else(|e| panic!("{e}"));
        let before = show_proc(&edge);

        let failed = {
            let _frozen = Immutable::set(&paths.config);
            vezasock_config(&file, WHO, &["apply"])
        };
        assert_eq!(failed.code, Some(1), "{label}: {failed:?}");
        assert!(
            failed.err.contains("put back at its old address")
                && failed.err.contains("nothing changed"),
            "{label}: {}",
            failed.err
        );
        // Put back: the runtime, the server-state file and the config are as before.
        assert_eq!(
            runtime_address(&edge, "be_prod_web_blue", "blue_1"),
            old,
            "{label}"
        );
        wait_answer(&edge, "veza.fr", "/", "prod web blue", label);
        assert_eq!(
            std::fs::read(&paths.config).ok(),
            Some(config),
            "{label}: config"
        );
        let state_now = std::fs::read_to_string(&paths.server_state_file).unwrap_or_default();
        assert_eq!(
            address_in_dump(&state_now, "be_prod_web_blue", "blue_1"),
            address_in_dump(
                &String::from_utf8_lossy(&state),
                "be_prod_web_blue",
                "blue_1"
            ),
            "{label}: server-state file"
        );
        let journal =
            std::fs::read_to_string(paths.state_dir.join("journal.jsonl")).unwrap_or_default();
        assert!(journal.contains("rolled-back"), "{label}: {journal}");
        assert_eq!(
            show_proc(&edge).master.reloads,
            before.master.reloads,
            "{label}: no reload"
        );
        // Nothing is left open: the same apply now succeeds.
        let applied = vezasock_config(&file, WHO, &["apply"]);
        ok(&applied, "apply", label);
        wait_answer(&edge, "veza.fr", "/", "prod web blue moved", label);
        let status = vezasock_config(&file, WHO, &["status"]);
        assert_eq!(status.code, Some(0), "{label}: {status:?}");
    }
);

/// `vezasock ARGS --config FILE` with `extra` variables (the crash hook), otherwise as
/// [`vezasock_config`].
pub(crate) fn vezasock_config_env(file: &Path, args: &[&str], extra: &[(&str, &str)]) -> Run {
    Vezasock::config(file, args).who(WHO).envs(extra).run()
}

/// Sets prod web blue's port in the topology file; returns the topology.
fn move_prod_web_blue(file: &Path, base: &Topology, port: u16) -> Topology {
    let mut topo = base.clone();
    match topo
        .envs
        .iter_mut()
        .find(|e| e.name == "prod")
        .and_then(|e| e.components.iter_mut().find(|c| c.name == "web"))
        .map(|c| &mut c.servers)
    {
        Some(Servers::Colored { blue, .. }) => blue[0].address.port = port,
        other => panic!("prod web: {other:?}"),
    }
    write_topology(file, &topo);
    topo
}

// kill -9 between the runtime move and the writes, then between the config write and the end:
// `status` says INTERRUPTED (exit 6), and the next `apply` finishes (moving again, or finding
// the move done) and closes the interrupted operation.
per_version!(
    an_apply_killed_mid_move_is_finished_by_the_next_apply,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let edge = healthy_edge(v, dir.path());
        let label = v.label;
        let file = dir.path().join("topology.toml");
        write_topology(&file, &edge.topology);
        ok(
            &vezasock_config(&file, WHO, &["ready", "prod", "green"]),
            "ready prod green",
            label,
        );
        let paths = &edge.topology.paths;
        let old = runtime_address(&edge, "be_prod_web_blue", "blue_1");
        let (port1, port2) = (free_port(), free_port());
        let _b1 = Backend::start("prod web blue moved", port1)
            .unwrap_or_else(|e| panic!("backend on {port1}: {e}"));
        let _b2 = Backend::start("prod web blue moved again", port2)
            .unwrap_or_else(|e| panic!("backend on {port2}: {e}"));
        let reloads = show_proc(&edge).master.reloads;

        // 1. Killed after `set server … addr`, before any write.
        let topo = move_prod_web_blue(&file, &edge.topology, port1);
        let killed = vezasock_config_env(
            &file,
            &["apply"],
            &[("VEZASOCK_CRASH_AT", "after-move-runtime")],
        );
        assert_eq!(killed.code, None, "{label}: killed: {killed:?}");
        let new1 = format!("127.0.0.1:{port1}");
        assert_eq!(
            runtime_address(&edge, "be_prod_web_blue", "blue_1"),
            new1,
            "{label}"
        );
        let config = std::fs::read_to_string(&paths.config).unwrap_or_default();
        assert!(
            config.contains(&format!("server blue_1 {old}")),
            "{label}: the old config is still on disk"
        );
        let state = std::fs::read_to_string(&paths.server_state_file).unwrap_or_default();
        assert_eq!(
            address_in_dump(&state, "be_prod_web_blue", "blue_1"),
            Some(old.clone()),
            "{label}: the old server-state file"
        );
        let status = vezasock_config(&file, WHO, &["status"]);
        assert_eq!(status.code, Some(6), "{label}: {status:?}");
        assert!(
            status.out.contains("INTERRUPTED"),
            "{label}: {}",
            status.out
        );
        let plan = vezasock_config(&file, WHO, &["plan"]);
        assert!(
            plan.out.contains(&format!(
                "move server be_prod_web_blue/blue_1 from {old} to {new1}"
            )),
            "{label}: the move is planned again: {}",
            plan.out
        );
        let finished = vezasock_config(&file, WHO, &["apply"]);
        ok(&finished, "apply after the kill", label);
        assert!(
            finished.out.contains("closed interrupted operation"),
            "{label}: {}",
            finished.out
        );
        let status = vezasock_config(&file, WHO, &["status"]);
        assert_eq!(status.code, Some(0), "{label}: {status:?}");
        wait_answer(&edge, "veza.fr", "/", "prod web blue moved", label);

        // 2. Killed after the config write, before the end: the next apply finds it done.
        move_prod_web_blue(&file, &topo, port2);
        let killed = vezasock_config_env(
            &file,
            &["apply"],
            &[("VEZASOCK_CRASH_AT", "after-move-config")],
        );
        assert_eq!(killed.code, None, "{label}: killed: {killed:?}");
        let new2 = format!("127.0.0.1:{port2}");
        let config = std::fs::read_to_string(&paths.config).unwrap_or_default();
        assert!(
            config.contains(&format!("server blue_1 {new2}")),
            "{label}: config written"
        );
        let status = vezasock_config(&file, WHO, &["status"]);
        assert_eq!(status.code, Some(6), "{label}: {status:?}");
        let finished = vezasock_config(&file, WHO, &["apply"]);
        ok(&finished, "apply after the second kill", label);
        assert!(
            finished.out.contains("Nothing to do")
                && finished.out.contains("closed interrupted operation"),
            "{label}: {}",
            finished.out
        );
        let status = vezasock_config(&file, WHO, &["status"]);
        assert_eq!(status.code, Some(0), "{label}: {status:?}");
        assert_eq!(
            runtime_address(&edge, "be_prod_web_blue", "blue_1"),
            new2,
            "{label}"
        );
        wait_answer(&edge, "veza.fr", "/", "prod web blue moved again", label);
        assert_eq!(
            show_proc(&edge).master.reloads,
            reloads,
            "{label}: no reload"
        );
    }
);
