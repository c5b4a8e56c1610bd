//! `apply` and the reload path against real HAProxy (2.6, 3.0, 3.2) on the local edge:
//! a shape change reloads exactly once and keeps colors, drains and maints; a candidate that
//! `haproxy -c` refuses never reaches the live files; a candidate that fails at start is
//! rescued; an unchanged edge is not touched; no request fails during a reload under load.

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use vezasock::cli::exit::Exit;
use vezasock::demo::backend::Backend;
use vezasock::demo::load::{Load, LoadSpec};
use vezasock::demo::LocalEdge;
use vezasock::edge::apply::reload::backup_path;
use vezasock::edge::apply::{apply, ApplyOptions, ApplyReport};
use vezasock::edge::{Edge, EdgeError};
use vezasock::plan::Plan;
use vezasock::render::render;
use vezasock::render::shape::summary_path;
use vezasock::runtime::command::master::ProcList;
use vezasock::runtime::master;
use vezasock::runtime::session::Session;
use vezasock::state::Wait;
use vezasock::topology::{Address, Color, External, ReloadMethod, Server, Servers, Topology};

use crate::edge::{self, wait_answer};
use crate::support::haproxy::{self, per_version, raw_one_shot, Haproxy};
use crate::support::ports::free_port;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio: {e}"))
}

fn start(v: &haproxy::Haproxy, dir: &Path) -> LocalEdge {
    let edge = edge::start(v, dir);
    wait_answer(&edge, "staging.veza.fr", "/", "staging web blue", v.label);
    wait_answer(&edge, "veza.fr", "/api/x", "prod api blue", v.label);
    edge
}

fn options() -> ApplyOptions {
    ApplyOptions {
        dry_run: false,
        wait: Wait::up_to(Duration::from_secs(10)),
        allow_reload: false,
    }
}

fn run_apply(topology: &Topology) -> Result<ApplyReport, EdgeError> {
    rt().block_on(apply(&Edge::new(topology.clone()), options()))
}

fn show_proc(edge: &LocalEdge) -> ProcList {
    let e = Edge::new(edge.topology.clone());
    rt().block_on(master::show_proc(&e.master(), e.timeouts))
        .unwrap_or_else(|err| panic!("show proc: {err}\n{}", edge.log()))
}

fn admin(edge: &LocalEdge, line: &str) -> String {
    raw_one_shot(&edge.topology.paths.admin_socket, &format!("{line}\n"))
        .unwrap_or_else(|e| panic!("{line}: {e}"))
}

/// Runtime facts compared before and after: active colors, hosts, backends, operator states.
#[derive(Debug, PartialEq, Eq)]
struct Runtime {
    colors: BTreeMap<String, String>,
    backends: BTreeSet<String>,
    /// `backend/server` → `drain` / `maint` (servers in neither are left out).
    states: BTreeMap<String, &'static str>,
}

fn runtime_of(edge: &LocalEdge) -> Runtime {
    let e = Edge::new(edge.topology.clone());
    rt().block_on(async {
        let mut s: Session = e
            .admin_session()
            .await
            .unwrap_or_else(|err| panic!("{err}"));
        let map = e
            .topology
            .paths
            .active_color_map()
            .to_string_lossy()
            .into_owned();
        let colors = s
            .show_map(&map, None)
            .await
            .unwrap_or_else(|err| panic!("{err}"))
            .into_iter()
            .map(|m| (m.key, m.value))
            .collect();
        let backends = s
            .show_backends()
            .await
            .unwrap_or_else(|err| panic!("{err}"))
            .into_iter()
            .collect();
        let servers = s
            .show_servers_state(None)
            .await
            .unwrap_or_else(|err| panic!("{err}"));
        let mut states = BTreeMap::new();
        for r in servers.rows {
            let state = if r.admin.0 & 0x01 != 0 {
                "maint"
            } else if r.admin.0 & 0x08 != 0 {
                "drain"
            } else {
                continue;
            };
            states.insert(format!("{}/{}", r.be_name, r.srv_name), state);
        }
        Runtime {
            colors,
            backends,
            states,
        }
    })
}

/// The bytes of the live config, summary and maps.
fn live_files(edge: &LocalEdge) -> Vec<(PathBuf, Option<Vec<u8>>)> {
    let p = &edge.topology.paths;
    [
        p.config.clone(),
        summary_path(&p.config),
        p.hosts_map(),
        p.active_color_map(),
    ]
    .into_iter()
    .map(|f| {
        let bytes = std::fs::read(&f).ok();
        (f, bytes)
    })
    .collect()
}

fn mtimes(edge: &LocalEdge) -> Vec<(PathBuf, Option<SystemTime>)> {
    live_files(edge)
        .into_iter()
        .map(|(f, _)| {
            let t = std::fs::metadata(&f).and_then(|m| m.modified()).ok();
            (f, t)
        })
        .collect()
}

/// Flips staging to green the way a completed switch leaves it: runtime map, map file and
/// state file.
fn flip_staging_green(edge: &LocalEdge) {
    let paths = &edge.topology.paths;
    let map = paths.active_color_map();
    admin(edge, &format!("set map {} staging green", map.display()));
    let colors = BTreeMap::from([("staging".to_string(), Color::Green)]);
    let rendered = render(&edge.topology, &colors).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&map, rendered.active_color_map).unwrap_or_else(|e| panic!("{e}"));
    Edge::new(edge.topology.clone())
        .state
        .write_active_color("staging", Color::Green)
        .unwrap_or_else(|e| panic!("{e}"));
}

/// The edge's topology with a new external site (`docs.veza.fr`, one server) and a second
/// green api server in staging: a new backend, new ACLs and a new server, so a reload. The
/// backends for both are started and returned (keep them alive).
fn grown(edge: &LocalEdge) -> (Topology, Vec<Backend>) {
    let mut topo = edge.topology.clone();
    // The backends bind first, on ports the kernel picks: a port looked up and bound later can
    // be taken in between (seen once on a busy machine: "Address already in use").
    let backends = vec![
        Backend::start("docs", 0).unwrap_or_else(|e| panic!("{e}")),
        Backend::start("staging api green", 0).unwrap_or_else(|e| panic!("{e}")),
    ];
    let (docs_port, api_port) = (backends[0].addr.port(), backends[1].addr.port());
    topo.externals.push(External {
        name: "docs".to_string(),
        hosts: vec!["docs.veza.fr".to_string()],
        servers: vec![Server {
            name: "srv_1".to_string(),
            address: Address {
                host: "127.0.0.1".to_string(),
                port: docs_port,
            },
        }],
        check: None,
    });
    let staging = topo
        .envs
        .iter_mut()
        .find(|e| e.name == "staging")
        .unwrap_or_else(|| panic!("no staging"));
    let api = staging
        .components
        .iter_mut()
        .find(|c| c.name == "api")
        .unwrap_or_else(|| panic!("no api"));
    match &mut api.servers {
        Servers::Colored { green, .. } => green.push(Server {
            name: "green_2".to_string(),
            address: Address {
                host: "127.0.0.1".to_string(),
                port: api_port,
            },
        }),
        Servers::Pool(_) => panic!("staging api is colored"),
    }
    (topo, backends)
}

per_version!(
    a_shape_change_reloads_once_and_keeps_colors_drains_and_maints,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let edge = start(v, dir.path());
        flip_staging_green(&edge);
        wait_answer(&edge, "staging.veza.fr", "/", "staging web green", v.label);
        admin(&edge, "set server be_prod_api_blue/blue_1 state drain");
        admin(&edge, "set server be_staging_web_blue/blue_1 state maint");
        let before = runtime_of(&edge);
        assert_eq!(before.states.len(), 2, "{}: {before:?}", v.label);
        let proc_before = show_proc(&edge);

        let (topo, _backends) = grown(&edge);
        let report =
            run_apply(&topo).unwrap_or_else(|e| panic!("{}: apply: {e}\n{}", v.label, edge.log()));
        assert!(
            matches!(report.plan, Plan::Reload { .. }),
            "{}: {:?}",
            v.label,
            report.plan
        );
        let reload = report
            .reload
            .as_ref()
            .unwrap_or_else(|| panic!("{}: no reload", v.label));
        let proc_after = show_proc(&edge);
        assert_eq!(
            proc_after.master.reloads,
            proc_before.master.reloads + 1,
            "{}: exactly one reload",
            v.label
        );
        assert_eq!(
            proc_after.master.pid, proc_before.master.pid,
            "{}: same master",
            v.label
        );
        assert!(
            proc_after.workers.iter().any(|w| w.pid == reload.worker),
            "{}: {proc_after:?}",
            v.label
        );

        let after = runtime_of(&edge);
        assert_eq!(after.colors, before.colors, "{}: colors", v.label);
        assert_eq!(
            after.states, before.states,
            "{}: drains and maints",
            v.label
        );
        let added: BTreeSet<String> = after
            .backends
            .difference(&before.backends)
            .cloned()
            .collect();
        assert_eq!(
            added,
            BTreeSet::from(["docs_backend".to_string()]),
            "{}",
            v.label
        );
        assert!(before.backends.is_subset(&after.backends), "{}", v.label);

        // The new shape serves, the old colors still route.
        wait_answer(&edge, "docs.veza.fr", "/", "docs", v.label);
        wait_answer(&edge, "staging.veza.fr", "/", "staging web green", v.label);
        wait_answer(&edge, "veza.fr", "/", "prod web blue", v.label);
        let live = std::fs::read_to_string(&edge.topology.paths.config).unwrap_or_default();
        assert!(
            live.contains(&report.desired_fingerprint),
            "{}: the live config is the candidate",
            v.label
        );
        assert!(
            backup_path(&edge.topology.paths.config).exists(),
            "{}: backup kept",
            v.label
        );

        // Applying the same topology again does nothing.
        let again = run_apply(&topo).unwrap_or_else(|e| panic!("{}: {e}", v.label));
        assert_eq!(again.plan, Plan::Nothing, "{}", v.label);
        assert!(again.untouched(), "{}: {again:?}", v.label);
        assert_eq!(
            show_proc(&edge).master.reloads,
            proc_after.master.reloads,
            "{}",
            v.label
        );
        eprintln!(
            "{}: shape change reloaded once ({} backends), colors and states kept",
            v.label, reload.backends
        );
    }
);

per_version!(
    a_candidate_haproxy_refuses_never_reaches_the_live_path,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let edge = start(v, dir.path());
        let files = live_files(&edge);
        let state_file = std::fs::read(&edge.topology.paths.server_state_file).ok();
        let reloads = show_proc(&edge).master.reloads;

        let (mut topo, _backends) = grown(&edge);
        // Renders fine (no unsafe character), but is not an HAProxy time.
        topo.timeouts.connect = "5zz".to_string();
        let err = run_apply(&topo)
            .err()
            .unwrap_or_else(|| panic!("{}: a bad candidate was applied", v.label));
        assert_eq!(err.exit(), Exit::Refused, "{}: {err}", v.label);
        let msg = err.to_string();
        assert!(
            msg.contains("HAProxy refused the candidate") && msg.contains("timeout"),
            "{}: {msg}",
            v.label
        );
        assert!(
            msg.contains("at rendered line"),
            "{}: explained: {msg}",
            v.label
        );

        assert_eq!(
            live_files(&edge),
            files,
            "{}: live files byte-identical",
            v.label
        );
        assert_eq!(
            std::fs::read(&edge.topology.paths.server_state_file).ok(),
            state_file,
            "{}",
            v.label
        );
        assert_eq!(
            show_proc(&edge).master.reloads,
            reloads,
            "{}: not reloaded",
            v.label
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            !leftovers
                .iter()
                .any(|n| n.contains("vezasock-candidate") || n.contains("vezasock-check")),
            "{}: {leftovers:?}",
            v.label
        );
        wait_answer(&edge, "staging.veza.fr", "/", "staging web blue", v.label);
        eprintln!(
            "{}: refused candidate: {}",
            v.label,
            msg.lines().nth(1).unwrap_or("")
        );
    }
);

per_version!(a_candidate_that_fails_at_start_is_rescued, |v: &Haproxy| {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let edge = start(v, dir.path());
    admin(&edge, "set server be_prod_web_blue/blue_1 state drain");
    let files = live_files(&edge);
    let before = runtime_of(&edge);
    let proc_before = show_proc(&edge);

    // `haproxy -c` does not bind, so it passes; the new worker cannot bind and fails.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = taken
        .local_addr()
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut topo = edge.topology.clone();
    topo.listen.http = format!("127.0.0.1:{port}");
    let err = run_apply(&topo).err().unwrap_or_else(|| {
        panic!(
            "{}: applied a config that cannot bind\n{}",
            v.label,
            edge.log()
        )
    });
    assert_eq!(err.exit(), Exit::NotVerified, "{}: {err}", v.label);
    let msg = err.to_string();
    assert!(
        msg.contains("rescue") && msg.contains("serves the previous config"),
        "{}: {msg}",
        v.label
    );
    assert!(msg.contains("show proc"), "{}: {msg}", v.label);

    // Old config serving, old files, same backends, states and colors.
    assert_eq!(
        live_files(&edge),
        files,
        "{}: live files are the old ones",
        v.label
    );
    assert_eq!(runtime_of(&edge), before, "{}: runtime as before", v.label);
    wait_answer(&edge, "staging.veza.fr", "/", "staging web blue", v.label);
    let proc_after = show_proc(&edge);
    assert_eq!(proc_after.master.pid, proc_before.master.pid, "{}", v.label);
    assert_eq!(
        proc_after.master.failed_reloads.unwrap_or(0),
        0,
        "{}: reloaded back cleanly: {proc_after:?}",
        v.label
    );
    drop(taken);
    eprintln!("{}: rescued; reported:\n{msg}", v.label);
});

per_version!(
    an_unchanged_edge_is_not_touched_and_a_host_is_a_runtime_change,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let edge = start(v, dir.path());
        let times = mtimes(&edge);
        let reloads = show_proc(&edge).master.reloads;
        // Not a wait for an event: a rewrite in the same clock tick would keep its mtime.
        std::thread::sleep(Duration::from_millis(20));

        let report = run_apply(&edge.topology).unwrap_or_else(|e| panic!("{}: {e}", v.label));
        assert_eq!(report.plan, Plan::Nothing, "{}", v.label);
        assert!(report.untouched(), "{}: {report:?}", v.label);
        assert_eq!(mtimes(&edge), times, "{}: no file rewritten", v.label);
        assert_eq!(show_proc(&edge).master.reloads, reloads, "{}", v.label);

        // A new host of an env is a map entry: runtime path, no reload.
        let mut topo = edge.topology.clone();
        let staging = topo
            .envs
            .iter_mut()
            .find(|e| e.name == "staging")
            .unwrap_or_else(|| panic!("no staging"));
        staging.hosts.push("beta.veza.fr".to_string());
        let report = run_apply(&topo).unwrap_or_else(|e| panic!("{}: {e}", v.label));
        assert!(
            matches!(report.plan, Plan::Runtime { .. }),
            "{}: {:?}",
            v.label,
            report.plan
        );
        assert_eq!(
            report.files_written,
            vec![edge.topology.paths.hosts_map()],
            "{}",
            v.label
        );
        assert_eq!(report.runtime_changes.len(), 1, "{}: {report:?}", v.label);
        wait_answer(&edge, "beta.veza.fr", "/api/x", "staging api blue", v.label);
        assert_eq!(
            show_proc(&edge).master.reloads,
            reloads,
            "{}: no reload",
            v.label
        );
        let again = run_apply(&topo).unwrap_or_else(|e| panic!("{}: {e}", v.label));
        assert!(again.untouched(), "{}: {again:?}", v.label);
    }
);

per_version!(no_request_fails_during_reloads_under_load, |v: &Haproxy| {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let edge = start(v, dir.path());
    let (topo, _backends) = grown(&edge);
    let mut smaller = topo.clone();
    smaller.externals.retain(|x| x.name != "docs");
    let load = Load::start(&LoadSpec {
        max_duration: Duration::from_secs(30),
        ..crate::support::load::spec(
            edge.http,
            &[
                ("staging.veza.fr", "/"),
                ("veza.fr", "/api/x"),
                ("www.veza.fr", "/stream/a"),
            ],
        )
    });
    // Traffic flowing before the first reload, and across each new worker after it.
    let flowing = |what: &str| {
        assert!(
            load.wait_for_requests(40, Duration::from_secs(10)),
            "{}: fewer than 40 requests in 10 s {what}",
            v.label
        );
    };
    flowing("before the reloads");
    let reloads = show_proc(&edge).master.reloads;
    // Two shape changes back and forth: two reloads under load.
    for t in [&topo, &smaller] {
        let report = run_apply(t).unwrap_or_else(|e| panic!("{}: {e}\n{}", v.label, edge.log()));
        assert!(report.reload.is_some(), "{}: {report:?}", v.label);
        flowing("after a reload");
    }
    let result = load.stop();
    assert_eq!(show_proc(&edge).master.reloads, reloads + 2, "{}", v.label);
    assert!(
        result.keepalive.sent > 20 && result.new_connection.sent > 20,
        "{}: {result:?}",
        v.label
    );
    assert_eq!(
        result.failed(),
        0,
        "{}: failures during reloads: {:?}",
        v.label,
        result.failures
    );
    eprintln!(
        "{}: {} requests across 2 reloads, none failed ({:?})",
        v.label,
        result.sent(),
        result
    );
});

per_version!(
    the_signal_method_reloads_and_confirms_through_show_proc,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let edge = start(v, dir.path());
        admin(&edge, "set server be_staging_api_green/green_1 state maint");
        let before = runtime_of(&edge);
        let reloads = show_proc(&edge).master.reloads;
        let (mut topo, _backends) = grown(&edge);
        topo.paths.reload_method = ReloadMethod::Signal;
        let report =
            run_apply(&topo).unwrap_or_else(|e| panic!("{}: {e}\n{}", v.label, edge.log()));
        let reload = report
            .reload
            .unwrap_or_else(|| panic!("{}: no reload", v.label));
        assert_eq!(reload.method, "signal", "{}", v.label);
        assert!(
            !reload.report.reported,
            "{}: confirmed through show proc",
            v.label
        );
        assert_eq!(show_proc(&edge).master.reloads, reloads + 1, "{}", v.label);
        assert_eq!(runtime_of(&edge).states, before.states, "{}", v.label);
        wait_answer(&edge, "docs.veza.fr", "/", "docs", v.label);
    }
);

/// The `vezasock apply` binary: flags reach the library, `--dry-run --json` says what `plan`
/// says, and a held lock with `--no-wait` is exit 4 before anything is read.
#[test]
fn the_apply_command_plans_and_respects_the_lock() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path();
    let run = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_vezasock"))
            .arg("apply")
            .args([
                "--haproxy-config",
                &d.join("haproxy.cfg").display().to_string(),
            ])
            .args(["--maps-dir", &d.join("maps").display().to_string()])
            .args(["--state-dir", &d.join("state").display().to_string()])
            .args([
                "--admin-socket",
                &d.join("admin.sock").display().to_string(),
            ])
            .args([
                "--master-socket",
                &d.join("master.sock").display().to_string(),
            ])
            .args(extra)
            .output()
            .unwrap_or_else(|e| panic!("run vezasock: {e}"))
    };
    let out = run(&["--dry-run", "--json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(json["plan"]["plan"], "reload", "{json}");
    assert_eq!(json["dry_run"], true, "{json}");
    assert!(!d.join("haproxy.cfg").exists(), "a dry run writes nothing");

    let state = vezasock::state::StateDir::single(d.join("state"));
    let _held =
        vezasock::state::EdgeLock::acquire(&state, Wait::No, vezasock::state::Holder::current())
            .unwrap_or_else(|e| panic!("{e}"));
    let out = run(&["--no-wait"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(Exit::Locked as i32), "{stderr}");
    assert!(stderr.contains("locked"), "{stderr}");
}

// HAProxy #1412 / #2103: a server's saved address in the server-state file wins over the new
// config. The reload path drops the moved server's row, so the new address takes effect, and
// sets its drain again over the runtime API. A move alone goes over the runtime API
// (`integration/moved_server.rs`); here another shape change (a server timeout) comes with
// it, so the move takes the reload path.
per_version!(
    a_moved_server_takes_its_new_address_and_keeps_its_drain,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let edge = start(v, dir.path());
        admin(&edge, "set server be_prod_web_blue/blue_1 state drain");
        let new_port = free_port();
        let _moved =
            Backend::start("prod web blue moved", new_port).unwrap_or_else(|e| panic!("{e}"));
        let mut topo = edge.topology.clone();
        let prod = topo
            .envs
            .iter_mut()
            .find(|e| e.name == "prod")
            .unwrap_or_else(|| panic!("no prod"));
        let web = prod
            .components
            .iter_mut()
            .find(|c| c.name == "web")
            .unwrap_or_else(|| panic!("no web"));
        match &mut web.servers {
            Servers::Colored { blue, .. } => blue[0].address.port = new_port,
            Servers::Pool(_) => panic!("prod web is colored"),
        }
        topo.timeouts.server = "31s".to_string();
        let report =
            run_apply(&topo).unwrap_or_else(|e| panic!("{}: {e}\n{}", v.label, edge.log()));
        let reload = report
            .reload
            .unwrap_or_else(|| panic!("{}: no reload", v.label));
        assert_eq!(
            reload.moved_servers,
            vec!["be_prod_web_blue/blue_1".to_string()],
            "{}",
            v.label
        );
        let state = admin(&edge, "show servers state be_prod_web_blue");
        let row = state
            .lines()
            .find(|l| l.split_whitespace().nth(3) == Some("blue_1"))
            .unwrap_or_else(|| panic!("{}: {state}", v.label));
        let fields: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            fields.get(18).copied(),
            Some(new_port.to_string().as_str()),
            "{}: new port: {row}",
            v.label
        );
        assert_eq!(
            runtime_of(&edge)
                .states
                .get("be_prod_web_blue/blue_1")
                .copied(),
            Some("drain"),
            "{}",
            v.label
        );
    }
);
