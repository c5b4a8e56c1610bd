//! The fleet coordinator (`switch --fleet`, `status --fleet`) over three real local edges, on
//! every HAProxy version: one flip lands on every edge or on none.

use std::path::{Path, PathBuf};
use std::process::Command as Process;

use vezasock::demo::LocalEdge;
use vezasock::topology::Color;

use crate::haproxy::{per_version, Haproxy};
use crate::install::to_toml;
use crate::switch::{
    file_color, healthy_edge, runtime_color, state_dir, wait_running, Run, EDGE_ENV_VARS,
};

/// Three local edges and a fleet file naming them (`edge-0`, `edge-1`, `edge-2`).
pub struct Trio {
    pub edges: Vec<LocalEdge>,
    pub fleet: PathBuf,
    _dirs: Vec<tempfile::TempDir>,
}

pub fn trio(v: &Haproxy, root: &Path) -> Trio {
    let mut edges = Vec::new();
    let mut dirs = Vec::new();
    let mut fleet = format!("state_dir = {:?}\n", root.join("fleet-state"));
    for i in 0..3 {
        let dir = tempfile::tempdir_in(root).unwrap_or_else(|e| panic!("{e}"));
        let edge = healthy_edge(v, dir.path());
        let file = dir.path().join("topology.toml");
        std::fs::write(&file, to_toml(&edge.topology)).unwrap_or_else(|e| panic!("{e}"));
        fleet.push_str(&format!(
            "[[edge]]\nname = \"edge-{i}\"\nconfig = {file:?}\n"
        ));
        edges.push(edge);
        dirs.push(dir);
    }
    let path = root.join("fleet.toml");
    std::fs::write(&path, fleet).unwrap_or_else(|e| panic!("{e}"));
    Trio {
        edges,
        fleet: path,
        _dirs: dirs,
    }
}

/// `vezasock ARGS` with only the fleet file pointing anywhere.
pub fn run_fleet(args: &[&str]) -> Run {
    let mut cmd = Process::new(env!("CARGO_BIN_EXE_vezasock"));
    cmd.args(args);
    for var in EDGE_ENV_VARS {
        cmd.env_remove(var);
    }
    let output = cmd
        .env_remove("VEZASOCK_FLEET")
        .env("VEZASOCK_WHO", "fleet-test")
        .output()
        .unwrap_or_else(|e| panic!("run vezasock: {e}"));
    Run {
        code: output.status.code(),
        out: String::from_utf8_lossy(&output.stdout).into_owned(),
        err: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn fleet_arg(t: &Trio) -> String {
    t.fleet.display().to_string()
}

per_version!(a_fleet_switch_lands_on_every_edge, |v: &Haproxy| {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let t = trio(v, root.path());
    let f = fleet_arg(&t);
    for color in [Color::Green, Color::Blue, Color::Green] {
        let run = run_fleet(&["switch", "--fleet", &f, "staging", color.as_str(), "--json"]);
        assert_eq!(run.code, Some(0), "{}: {run:?}", v.label);
        assert!(
            run.out.contains("\"commit_skew_ms\""),
            "{}: {}",
            v.label,
            run.out
        );
        for (i, e) in t.edges.iter().enumerate() {
            assert_eq!(
                runtime_color(e, "staging"),
                Some(color),
                "{}: edge {i}",
                v.label
            );
            assert_eq!(
                file_color(e, "staging"),
                Some(color),
                "{}: edge {i}",
                v.label
            );
            let state = state_dir(e);
            assert_eq!(state.recorded_color("staging").ok().flatten(), Some(color));
            assert!(state.open_transaction().ok().flatten().is_none());
        }
    }
    let status = run_fleet(&["status", "--fleet", &f]);
    assert_eq!(status.code, Some(0), "{}: {status:?}", v.label);
    assert!(
        status.out.contains("every edge agrees"),
        "{}: {}",
        v.label,
        status.out
    );
    // Shown with --nocapture: what an operator reads.
    eprintln!("{}", status.out);
});

per_version!(
    a_target_down_on_one_edge_refuses_the_fleet_switch_everywhere,
    |v: &Haproxy| {
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut t = trio(v, root.path());
        let f = fleet_arg(&t);
        // The green api of staging down on edge-1 only.
        let down = &mut t.edges[1];
        let server = down
            .servers
            .iter()
            .find(|s| s.backend == "be_staging_api_green")
            .cloned()
            .unwrap_or_else(|| panic!("no staging api green server"));
        assert!(down.set_backend_running(&server.backend, &server.server, false));
        wait_running(&t.edges[1], &server.backend, &server.server, false, v.label);
        let history_before: Vec<usize> = t
            .edges
            .iter()
            .map(|e| {
                state_dir(e)
                    .history("staging")
                    .map(|h| h.len())
                    .unwrap_or(0)
            })
            .collect();
        let run = run_fleet(&["switch", "--fleet", &f, "staging", "green"]);
        assert_eq!(run.code, Some(1), "{}: {run:?}", v.label);
        assert!(run.err.contains("edge-1"), "{}: {}", v.label, run.err);
        for (i, e) in t.edges.iter().enumerate() {
            assert_eq!(
                runtime_color(e, "staging"),
                Some(Color::Blue),
                "{}: edge {i}",
                v.label
            );
            assert_eq!(
                file_color(e, "staging"),
                Some(Color::Blue),
                "{}: edge {i}",
                v.label
            );
            let state = state_dir(e);
            assert_eq!(
                state
                    .recorded_color("staging")
                    .ok()
                    .flatten()
                    .unwrap_or(Color::Blue),
                Color::Blue
            );
            assert_eq!(
                state.history("staging").map(|h| h.len()).unwrap_or(0),
                history_before[i]
            );
            assert!(
                state.open_transaction().ok().flatten().is_none(),
                "{}: edge {i}",
                v.label
            );
            let pending = e.topology.paths.maps_dir.join("active-color.map.pending");
            assert!(!pending.exists(), "{}: edge {i} pending file", v.label);
        }
    }
);

/// The admin state (`maint`, `drain`, `ready`) of every server of `backend` on `edge`.
fn admin_states(edge: &LocalEdge, backend: &str) -> Vec<&'static str> {
    crate::switch::rt().block_on(async {
        let mut s = crate::switch::admin_session(edge, "admin socket").await;
        let state = s
            .show_servers_state(Some(backend))
            .await
            .unwrap_or_else(|e| panic!("show servers state: {e}"));
        state
            .rows
            .iter()
            .map(|r| {
                if r.admin.is_maint() {
                    "maint"
                } else if r.admin.is_drain() {
                    "drain"
                } else {
                    "ready"
                }
            })
            .collect()
    })
}

per_version!(
    a_fleet_maint_then_ready_changes_every_edge,
    |v: &Haproxy| {
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let t = trio(v, root.path());
        let f = fleet_arg(&t);
        let run = run_fleet(&["maint", "--fleet", &f, "staging", "green", "--json"]);
        assert_eq!(run.code, Some(0), "{}: {run:?}", v.label);
        assert!(run.out.contains("\"ok\":true"), "{}: {}", v.label, run.out);
        for (i, e) in t.edges.iter().enumerate() {
            assert_eq!(
                admin_states(e, "be_staging_api_green"),
                ["maint"],
                "{}: edge {i}",
                v.label
            );
            assert_eq!(
                admin_states(e, "be_staging_api_blue"),
                ["ready"],
                "{}: edge {i}",
                v.label
            );
        }
        let run = run_fleet(&["ready", "--fleet", &f, "staging", "green"]);
        assert_eq!(run.code, Some(0), "{}: {run:?}", v.label);
        for (i, e) in t.edges.iter().enumerate() {
            assert_eq!(
                admin_states(e, "be_staging_api_green"),
                ["ready"],
                "{}: edge {i}",
                v.label
            );
        }
    }
);

per_version!(
    a_fleet_maint_of_the_live_color_is_refused_on_every_edge,
    |v: &Haproxy| {
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let t = trio(v, root.path());
        let f = fleet_arg(&t);
        let run = run_fleet(&["maint", "--fleet", &f, "staging", "blue"]);
        assert_eq!(run.code, Some(1), "{}: {run:?}", v.label);
        assert!(
            run.err.contains("nothing changed on any edge"),
            "{}: {}",
            v.label,
            run.err
        );
        for (i, e) in t.edges.iter().enumerate() {
            assert_eq!(
                admin_states(e, "be_staging_api_blue"),
                ["ready"],
                "{}: edge {i}",
                v.label
            );
        }
    }
);
