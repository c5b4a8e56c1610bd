//! `vezasock status` (reads only, on the admin socket), and the switch error paths, on every HAProxy
//! version: a consistent edge (exit 0, every env, component, color and external), drift made
//! behind vezasock's back (exit 6, which side differs), permission denied on the socket, a map
//! HAProxy did not load, and HAProxy unreachable (exit 3), each leaving files and runtime as
//! they were.

use std::time::Duration;

use vezasock::topology::Color;

use crate::support::haproxy::{per_version, Haproxy};
use crate::support::run::vezasock;
use crate::switch::{
    admin_set_map, file_color, healthy_edge, lib_edge, rt, runtime_color, state_dir,
};

per_version!(
    status_shows_every_env_color_and_server_and_flags_drift,
    |v: &Haproxy| {
        let label = v.label;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let local = healthy_edge(v, dir.path());
        let run = vezasock(&local, &["switch", "staging", "green", "--sha", "abc1234"]);
        assert_eq!(run.code, Some(0), "{label}: {run:?}");

        let run = vezasock(&local, &["status", "--json"]);
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        let json: serde_json::Value = serde_json::from_str(run.out.trim())
            .unwrap_or_else(|e| panic!("{label}: {e}: {run:?}"));
        assert!(
            json["haproxy"]["version"]
                .as_str()
                .is_some_and(|s| s.starts_with(label)),
            "{label}: {json}"
        );
        assert!(
            json["haproxy"]["worker_pid"].as_u64().is_some(),
            "{label}: {json}"
        );
        assert_eq!(
            json["haproxy"]["master"]["pid"].as_u64(),
            local.master_pid().map(u64::from),
            "{label}: {json}"
        );
        assert_eq!(json["failover"], "none", "{label}");
        let envs = json["envs"].as_array().cloned().unwrap_or_default();
        assert_eq!(envs.len(), 2, "{label}");
        let staging = &envs[0];
        assert_eq!(staging["name"], "staging", "{label}");
        assert_eq!(staging["live"], "green", "{label}");
        assert_eq!(staging["last_switch"]["sha"], "abc1234", "{label}");
        assert_eq!(envs[1]["live"], "blue", "{label}");
        let comps = staging["components"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(comps.len(), 3, "{label}");
        for comp in &comps {
            let backends = comp["backends"].as_array().cloned().unwrap_or_default();
            assert_eq!(backends.len(), 2, "{label}: {comp}");
            for b in &backends {
                let live = b["color"] == "green";
                assert_eq!(b["live"], live, "{label}: {b}");
                let s = &b["servers"][0];
                assert_eq!(
                    (s["admin"].as_str(), s["op"].as_str()),
                    (Some("ready"), Some("up")),
                    "{label}: {b}"
                );
                assert!(
                    s["check"].as_str().is_some_and(|c| c.starts_with("L7")),
                    "{label}: {b}"
                );
            }
        }
        let externals = json["externals"].as_array().cloned().unwrap_or_default();
        assert_eq!(externals.len(), 2, "{label}: {json}");
        let run = vezasock(&local, &["status"]);
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        assert!(
            run.out.contains("FAILOVER NONE") && run.out.contains("staging: live green"),
            "{label}: {}",
            run.out
        );

        // Drift behind vezasock's back: the runtime says blue, disk and state say green.
        admin_set_map(&local, "staging", Color::Blue);
        let run = vezasock(&local, &["status", "staging"]);
        assert_eq!(run.code, Some(6), "{label}: {run:?}");
        assert!(
            run.out.contains("DRIFT staging") && run.out.contains("only the runtime differs"),
            "{label}: {}",
            run.out
        );
        // The next switch to green repairs it (the runtime is behind the recorded color).
        let run = vezasock(&local, &["switch", "staging", "green"]);
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        assert!(
            run.out.contains("DRIFT"),
            "{label}: the switch reports the drift it found: {}",
            run.out
        );
        let run = vezasock(&local, &["status"]);
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
    }
);

/// Every server of an env's report: backend, server, admin and operational state, check.
fn servers_of(env: &vezasock::edge::status::EnvStatus) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    for comp in &env.components {
        for b in &comp.backends {
            for s in &b.servers {
                out.push((
                    b.backend.clone(),
                    s.server.clone(),
                    s.admin.clone(),
                    s.op.clone(),
                ));
            }
        }
    }
    out
}

per_version!(
    status_of_one_env_matches_the_whole_edge_and_survives_an_env_not_applied_yet,
    |v: &Haproxy| {
        let label = v.label;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let local = healthy_edge(v, dir.path());
        let mut edge = lib_edge(&local);
        let (whole, one) = rt().block_on(async {
            let whole = vezasock::edge::status::status(&edge, None).await;
            let one = vezasock::edge::status::status(&edge, Some("prod")).await;
            (whole, one)
        });
        let whole = whole.unwrap_or_else(|e| panic!("{label}: {e}"));
        let one = one.unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(one.envs.len(), 1, "{label}");
        let prod = whole
            .envs
            .iter()
            .find(|e| e.name == "prod")
            .unwrap_or_else(|| panic!("{label}: no prod"));
        let servers = servers_of(&one.envs[0]);
        assert_eq!(servers.len(), 6, "{label}: {servers:?}");
        assert_eq!(servers, servers_of(prod), "{label}");
        assert!(one.externals.is_empty(), "{label}");

        // An env the running config does not have yet (a shape change not applied): HAProxy
        // refuses its backends by name, and status reads the whole edge instead of failing.
        let mut preview = edge.topology.envs[0].clone();
        preview.name = "preview".to_string();
        edge.topology.envs.push(preview);
        let report = rt()
            .block_on(vezasock::edge::status::status(&edge, Some("preview")))
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(report.envs.len(), 1, "{label}");
        assert!(servers_of(&report.envs[0]).is_empty(), "{label}");
    }
);

per_version!(
    error_paths_exit_non_zero_with_a_clear_message_and_change_nothing,
    |v: &Haproxy| {
        let label = v.label;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut local = healthy_edge(v, dir.path());
        let state = state_dir(&local);
        let paths = local.topology.paths.clone();
        // Permission denied: the admin flag points at the operator socket. Checked on 2.6, 3.0
        // and 3.2: `show map`, `show servers state` AND `set map` are all allowed at level
        // operator, so the flip itself goes through; the admin-only `set server … state drain`
        // of --drain-old is what HAProxy refuses. The flip was verified and recorded before the
        // drain, so the edge is consistent (no open operation, no drift) and the exit is 1.
        // 3.4 refuses every map command below level admin: the flip itself is refused and
        // staging stays blue, still exit 1.
        let refused = v.at_least(3, 4);
        let recorded_before = state.recorded_color("staging").ok().flatten();
        let op_sock = paths.operator_socket.display().to_string();
        let run = vezasock(
            &local,
            &[
                "switch",
                "staging",
                "green",
                "--drain-old",
                "--drain-timeout",
                "1s",
                "--admin-socket",
                &op_sock,
            ],
        );
        assert_eq!(run.code, Some(1), "{label}: {run:?}");
        assert!(
            run.err.contains("Permission denied"),
            "{label}: {}",
            run.err
        );
        let (runtime, recorded) = if refused {
            (Some(Color::Blue), recorded_before)
        } else {
            (Some(Color::Green), Some(Color::Green))
        };
        assert_eq!(runtime_color(&local, "staging"), runtime, "{label}");
        assert_eq!(
            state.recorded_color("staging").ok().flatten(),
            recorded,
            "{label}"
        );
        let status = vezasock(&local, &["status"]);
        assert_eq!(status.code, Some(0), "{label}: {status:?}");
        // Back to blue for the checks below.
        let run = vezasock(&local, &["switch", "staging", "blue"]);
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        let map_before = std::fs::read(paths.active_color_map()).unwrap_or_default();
        let history_len = state.history("staging").unwrap_or_default().len();
        // Blue as recorded (3.4: the refused flip left nothing to put back, so none was).
        let recorded_blue = state.recorded_color("staging").ok().flatten();
        if !refused {
            assert_eq!(recorded_blue, Some(Color::Blue), "{label}");
        }
        let unchanged = |what: &str| {
            assert_eq!(
                std::fs::read(paths.active_color_map()).unwrap_or_default(),
                map_before,
                "{label} {what}: map file"
            );
            assert_eq!(
                state.recorded_color("staging").ok().flatten(),
                recorded_blue,
                "{label} {what}: state file"
            );
            assert_eq!(
                state.history("staging").unwrap_or_default().len(),
                history_len,
                "{label} {what}: history"
            );
            assert!(
                state.open_operations().unwrap_or_default().is_empty(),
                "{label} {what}: open op"
            );
        };

        // A map HAProxy did not load: refused before anything is written.
        let other = dir.path().join("other-maps");
        std::fs::create_dir_all(&other).unwrap_or_else(|e| panic!("{e}"));
        std::fs::copy(paths.active_color_map(), other.join("active-color.map"))
            .unwrap_or_else(|e| panic!("{e}"));
        let other_before = std::fs::read(other.join("active-color.map")).unwrap_or_default();
        let run = vezasock(
            &local,
            &[
                "switch",
                "staging",
                "green",
                "--maps-dir",
                &other.display().to_string(),
            ],
        );
        assert_eq!(run.code, Some(1), "{label}: {run:?}");
        assert!(
            run.err.contains("Unknown map identifier"),
            "{label}: {}",
            run.err
        );
        assert_eq!(
            std::fs::read(other.join("active-color.map")).unwrap_or_default(),
            other_before,
            "{label}"
        );
        unchanged("unknown map");

        // HAProxy unreachable: exit 3 for switch and status, nothing written.
        local.kill_haproxy();
        let started = std::time::Instant::now();
        let run = vezasock(&local, &["switch", "staging", "green"]);
        assert_eq!(run.code, Some(3), "{label}: {run:?}");
        assert!(
            run.err.contains(&paths.admin_socket.display().to_string()),
            "{label}: {}",
            run.err
        );
        let run = vezasock(&local, &["status"]);
        assert_eq!(run.code, Some(3), "{label}: {run:?}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{label}: unreachable took {:?}",
            started.elapsed()
        );
        unchanged("unreachable");
        assert_eq!(file_color(&local, "staging"), Some(Color::Blue), "{label}");
    }
);

/// HAProxy's words for a map read below level admin: 3.2 logs it (once per read), 3.4 refuses
/// the read.
const MAP_READ_WARNING: &str = "accessed without admin rights";

per_version!(
    no_command_reads_a_map_through_the_operator_socket,
    |v: &Haproxy| {
        let label = v.label;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let local = healthy_edge(v, dir.path());
        // Every read command (and a flip there and back) answers on this version, and HAProxy
        // logs no map read below level admin: on 3.4 such a read is refused (exit 1 or 3), on
        // 3.2 it is logged.
        for args in [
            &["status"][..],
            &["status", "staging"],
            &["status", "--json"],
            &["cert", "list"],
            &["switch", "staging", "green"],
            &["switch", "staging", "blue"],
            &["plan"],
        ] {
            let run = vezasock(&local, args);
            assert_eq!(run.code, Some(0), "{label} {args:?}: {run:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            !local.log().contains(MAP_READ_WARNING),
            "{label}: a map was read below level admin:\n{}",
            local.log()
        );

        // The detector works: a map read on the operator socket is refused on 3.4 and logged
        // on 3.2 (2.6 and 3.0 answer it silently).
        let map = local
            .topology
            .paths
            .active_color_map()
            .display()
            .to_string();
        let read = crate::support::haproxy::raw_one_shot(
            &local.topology.paths.operator_socket,
            &format!("show map {map}\n"),
        )
        .unwrap_or_else(|e| panic!("{label}: operator socket: {e}"));
        std::thread::sleep(Duration::from_millis(200));
        let refused = read.contains("Permission denied");
        let logged = local.log().contains(MAP_READ_WARNING);
        let (want_refused, want_logged) = match label {
            "3.4" => (true, false),
            "3.2" => (false, true),
            _ => (false, false),
        };
        assert_eq!(refused, want_refused, "{label}: {read:?}");
        assert_eq!(logged, want_logged, "{label}:\n{}", local.log());
    }
);
