//! The fleet coordinator (`vezasock --fleet F switch|rollback|status`) on every HAProxy version,
//! against the lab of `fleet.rs`: 50 flips of three edges under load with no failed request and
//! no reload, a target that is DOWN on one edge refused at prepare with nothing changed, an
//! edge reached over ssh, two racing coordinators serialised with no lost history line, the
//! `--json` report, `VEZASOCK_FLEET`, `--dry-run` and `rollback`.

use std::time::{Duration, Instant};

use vezasock::demo::http::Conn;
use vezasock::topology::Color;

use crate::fleet::{one_color, Fleet, Reach, ENV};
use crate::support::haproxy::{per_version, Haproxy};
use crate::switch::wait_running;

/// The env's history as (color, sha) pairs, newest first.
fn deploys(edge: &vezasock::demo::LocalEdge, env: &str) -> Vec<(String, String)> {
    crate::fleet::history_lines(edge, env)
        .iter()
        .map(|l| {
            let mut words = l.split(' ');
            let color = words.next().unwrap_or_default().to_string();
            (color, words.next().unwrap_or_default().to_string())
        })
        .collect()
}

/// Edge-b's `be_staging_api_green/green_1` DOWN (its backend stopped), seen by HAProxy.
fn green_1_down_on_edge_b(fleet: &mut Fleet, v: &Haproxy) {
    let label = format!("{} edge-b", v.label);
    let edge = &mut fleet.members[1].edge;
    assert!(edge.set_backend_running("be_staging_api_green", "green_1", false));
    wait_running(edge, "be_staging_api_green", "green_1", false, &label);
}

fn json(text: &str, what: &str) -> serde_json::Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {text}"))
}

per_version!(
    fifty_fleet_flips_under_load_fail_no_request_and_reload_nothing,
    |v: &Haproxy| {
        let fleet = Fleet::local(v, 3);
        let workers = fleet.worker_pids();
        let masters: Vec<_> = fleet.members.iter().map(|m| m.edge.master_pid()).collect();
        let loads = fleet.load();
        for (m, load) in fleet.members.iter().zip(&loads) {
            assert!(
                load.wait_for_requests(30, Duration::from_secs(10)),
                "{} {}: the load does not get going",
                v.label,
                m.name
            );
        }
        // One kept-open connection per edge, as a browser holds one: it must see each flip
        // too, not only new connections.
        let mut kept: Vec<Conn> = fleet
            .members
            .iter()
            .map(|m| Conn::new(m.edge.http, Duration::from_secs(5)))
            .collect();
        let mut color = Color::Blue;
        for flip in 0..50 {
            color = color.other();
            let run = fleet.run(&["switch", ENV, color.as_str()]);
            assert_eq!(run.code, Some(0), "{} flip {flip}: {run:?}", v.label);
            fleet.assert_all_on(ENV, color, &format!("after flip {flip}"));
            let want = format!("staging web {}", color.as_str());
            for (m, conn) in fleet.members.iter().zip(kept.iter_mut()) {
                let deadline = Instant::now() + Duration::from_secs(2);
                let mut last = conn.get("staging.veza.fr", "/").map(|a| a.body);
                while last.as_ref().map_or(true, |b| *b != want) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(5));
                    last = conn.get("staging.veza.fr", "/").map(|a| a.body);
                }
                assert!(
                    last.as_ref().is_ok_and(|b| *b == want),
                    "{} flip {flip}: {}'s kept-open connection still gets {last:?} 2 s after, want {want:?}",
                    v.label,
                    m.name
                );
            }
        }
        for (m, load) in fleet.members.iter().zip(&loads) {
            // Traffic kept flowing through every edge during the flips.
            assert!(
                load.wait_for_requests(30, Duration::from_secs(10)),
                "{} {}: the load stalled",
                v.label,
                m.name
            );
        }
        for (m, load) in fleet.members.iter().zip(loads) {
            let report = load.stop();
            assert!(report.sent() > 100, "{} {}: {report:?}", v.label, m.name);
            assert_eq!(
                report.failed(),
                0,
                "{} {}: failed requests in 50 fleet flips: {:?}",
                v.label,
                m.name,
                report.failures
            );
        }
        assert_eq!(
            fleet.worker_pids(),
            workers,
            "{}: a worker changed (a reload)",
            v.label
        );
        let after: Vec<_> = fleet.members.iter().map(|m| m.edge.master_pid()).collect();
        assert_eq!(after, masters, "{}: a master changed", v.label);
        // The other env was never touched.
        fleet.assert_all_on("prod", Color::Blue, "after 50 staging flips");
    }
);

per_version!(
    a_target_down_on_one_edge_is_refused_at_prepare_and_no_edge_changes,
    |v: &Haproxy| {
        let mut fleet = Fleet::local(v, 3);
        green_1_down_on_edge_b(&mut fleet, v);
        let before = fleet.snapshot();
        let run = fleet.run(&["switch", ENV, "green"]);
        assert_eq!(run.code, Some(1), "{}: gate refused: {run:?}", v.label);
        assert!(
            run.err.contains("edge-b"),
            "{}: the error names the edge: {run:?}",
            v.label
        );
        assert!(
            run.err.contains("be_staging_api_green") || run.err.contains("green_1"),
            "{}: the error says why (the DOWN server): {run:?}",
            v.label
        );
        assert_eq!(
            fleet.snapshot(),
            before,
            "{}: runtime, map file, state files, history, pending file, transaction",
            v.label
        );
        let status = fleet.run(&["status"]);
        assert_eq!(
            status.code,
            Some(0),
            "{}: nothing open: {status:?}",
            v.label
        );
    }
);

per_version!(an_edge_over_ssh_flips_with_the_local_ones, |v: &Haproxy| {
    let Some(fleet) = Fleet::start(v, &[Reach::Local, Reach::Local, Reach::Ssh]) else {
        return;
    };
    let run = fleet.run(&["switch", ENV, "green"]);
    let sshd_log = fleet.sshd.as_ref().map(|s| s.log()).unwrap_or_default();
    assert_eq!(run.code, Some(0), "{}: {run:?}\nsshd:\n{sshd_log}", v.label);
    for m in &fleet.members {
        assert!(
            run.out.contains(&m.name),
            "{}: one line per edge: {}",
            v.label,
            run.out
        );
    }
    fleet.assert_all_on(ENV, Color::Green, "after the fleet switch");

    let status = fleet.run(&["status", "--json"]);
    assert_eq!(status.code, Some(0), "{}: {status:?}", v.label);
    let s = json(&status.out, "fleet status --json");
    let edges = s["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{}: edges[]: {s}", v.label));
    assert_eq!(edges.len(), 3, "{}: {s}", v.label);
    assert_eq!(edges[2]["edge"], "edge-c", "{}: {s}", v.label);
    assert!(
        edges.iter().all(|e| e["status"].is_object()),
        "{}: every edge's status, the ssh one too: {s}",
        v.label
    );
    assert_eq!(s["drift"], serde_json::json!([]), "{}: {s}", v.label);

    let back = fleet.run(&["switch", ENV, "blue"]);
    assert_eq!(back.code, Some(0), "{}: {back:?}", v.label);
    fleet.assert_all_on(ENV, Color::Blue, "after the switch back");
});

per_version!(
    the_fleet_switch_json_reports_every_edge_and_the_commit_skew,
    |v: &Haproxy| {
        let fleet = Fleet::local(v, 3);
        let run = fleet.run(&["switch", ENV, "green", "--json"]);
        assert_eq!(run.code, Some(0), "{}: {run:?}", v.label);
        let j = json(&run.out, "fleet switch --json");
        // docs/reference.md: `{ok, env, to, transaction, edges[{edge, from, to, result, ms, detail}],
        // commit_skew_ms, total_ms}` (no top-level `from`: each edge says its own).
        assert_eq!(j["ok"], true, "{}: {j}", v.label);
        assert_eq!(j["env"], ENV, "{}: {j}", v.label);
        assert_eq!(j["to"], "green", "{}: {j}", v.label);
        assert!(j["transaction"].is_string(), "{}: {j}", v.label);
        let edges = j["edges"]
            .as_array()
            .unwrap_or_else(|| panic!("{}: edges[]: {j}", v.label));
        let names: Vec<_> = edges.iter().map(|e| e["edge"].clone()).collect();
        assert_eq!(
            names,
            vec!["edge-a", "edge-b", "edge-c"],
            "{}: {j}",
            v.label
        );
        for e in edges {
            for key in ["edge", "from", "to", "result", "ms", "detail"] {
                assert!(e.get(key).is_some(), "{}: edges[].{key}: {j}", v.label);
            }
            assert_eq!(e["from"], "blue", "{}: {e}", v.label);
            assert_eq!(e["to"], "green", "{}: {e}", v.label);
            assert!(e["ms"].is_number(), "{}: {e}", v.label);
        }
        let skew = j["commit_skew_ms"]
            .as_f64()
            .unwrap_or_else(|| panic!("{}: commit_skew_ms: {j}", v.label));
        let total = j["total_ms"]
            .as_f64()
            .unwrap_or_else(|| panic!("{}: total_ms: {j}", v.label));
        assert!(
            (0.0..=total).contains(&skew),
            "{}: skew {skew} within the total {total}: {j}",
            v.label
        );
        fleet.assert_all_on(ENV, Color::Green, "after the --json switch");
    }
);

per_version!(
    the_fleet_file_is_also_taken_from_vezasock_fleet,
    |v: &Haproxy| {
        let fleet = Fleet::local(v, 2);
        let file = fleet.file.display().to_string();
        let run = fleet.run_raw(&["switch", ENV, "green"], &[("VEZASOCK_FLEET", &file)]);
        assert_eq!(run.code, Some(0), "{}: VEZASOCK_FLEET: {run:?}", v.label);
        fleet.assert_all_on(ENV, Color::Green, "after a switch with VEZASOCK_FLEET");
    }
);

per_version!(
    a_fleet_dry_run_reads_every_edge_and_changes_none,
    |v: &Haproxy| {
        // docs/fleet.md: `--dry-run` reads and gates on every edge, no lock, nothing written.
        let fleet = Fleet::local(v, 2);
        let before = fleet.snapshot();
        let journal = fleet.state_dir.join("journal.jsonl");
        let run = fleet.run(&["switch", ENV, "green", "--dry-run", "--json"]);
        assert_eq!(run.code, Some(0), "{}: {run:?}", v.label);
        let report = json(&run.out, "switch --fleet --dry-run --json");
        assert_eq!(report["dry_run"], true, "{}: {report}", v.label);
        for (i, m) in fleet.members.iter().enumerate() {
            let e = &report["edges"][i];
            assert_eq!(e["edge"], m.name.as_str(), "{}: {report}", v.label);
            assert_eq!(e["result"], "would switch", "{}: {report}", v.label);
            assert_eq!(e["from"], "blue", "{}: {report}", v.label);
        }
        assert_eq!(fleet.snapshot(), before, "{}: a dry run", v.label);
        assert!(
            !journal.exists(),
            "{}: a dry run writes no fleet journal line",
            v.label
        );
    }
);

per_version!(
    a_fleet_dry_run_names_the_edge_whose_gate_would_refuse,
    |v: &Haproxy| {
        let mut fleet = Fleet::local(v, 2);
        green_1_down_on_edge_b(&mut fleet, v);
        let before = fleet.snapshot();
        let run = fleet.run(&["switch", ENV, "green", "--dry-run"]);
        assert_eq!(
            run.code,
            Some(1),
            "{}: the gate would refuse: {run:?}",
            v.label
        );
        assert!(
            run.err.contains("edge-b") && run.err.contains("green_1"),
            "{}: names the edge and the DOWN server: {run:?}",
            v.label
        );
        assert!(
            run.out.contains("edge-a") || run.err.contains("edge-a: would switch"),
            "{}: the other edge's answer is shown too: {run:?}",
            v.label
        );
        assert_eq!(fleet.snapshot(), before, "{}: a refused dry run", v.label);
    }
);

per_version!(
    a_fleet_switch_with_drain_old_drains_the_old_color_on_every_edge,
    |v: &Haproxy| {
        let fleet = Fleet::local(v, 2);
        let run = fleet.run(&[
            "switch",
            ENV,
            "green",
            "--drain-old",
            "--drain-timeout",
            "5s",
            "--json",
        ]);
        assert_eq!(run.code, Some(0), "{}: {run:?}", v.label);
        fleet.assert_all_on(ENV, Color::Green, "after the switch");
        let report = json(&run.out, "switch --fleet --drain-old --json");
        assert_eq!(
            report["drain_old"]["action"], "drain",
            "{}: {report}",
            v.label
        );
        for (i, m) in fleet.members.iter().enumerate() {
            assert_eq!(
                report["drain_old"]["edges"][i]["result"], "drained",
                "{}: {report}",
                v.label
            );
            for backend in ["be_staging_api_blue", "be_staging_web_blue"] {
                assert_eq!(
                    crate::fleet_servers::admin_states(&m.edge, backend),
                    ["drain"],
                    "{} {}: {backend}",
                    v.label,
                    m.name
                );
            }
            assert_eq!(
                crate::fleet_servers::admin_states(&m.edge, "be_staging_api_green"),
                ["ready"],
                "{} {}: the new color stays in rotation",
                v.label,
                m.name
            );
        }
    }
);

per_version!(a_fleet_rollback_goes_back_on_every_edge, |v: &Haproxy| {
    let fleet = Fleet::local(v, 3);
    // Two deploys, so the history has one to go back to.
    for (color, sha) in [("green", "abc123"), ("blue", "def456")] {
        let run = fleet.run(&["switch", ENV, color, "--sha", sha]);
        assert_eq!(run.code, Some(0), "{}: {run:?}", v.label);
    }
    fleet.assert_all_on(ENV, Color::Blue, "after the second switch");
    let back = fleet.run(&["rollback", ENV]);
    assert_eq!(back.code, Some(0), "{}: {back:?}", v.label);
    fleet.assert_all_on(ENV, Color::Green, "after the rollback");
    for m in &fleet.members {
        let newest = deploys(&m.edge, ENV);
        assert_eq!(
            newest.first(),
            Some(&("green".to_string(), "abc123".to_string())),
            "{} {}: the rollback is recorded as the deploy it went back to: {newest:?}",
            v.label,
            m.name
        );
    }
});

/// One coordinator of a race: the fleet file, the switch, its sha.
struct Racer {
    file: std::path::PathBuf,
    env: &'static str,
    color: Color,
    sha: String,
}

per_version!(
    two_racing_fleet_switches_are_serialised_with_no_lost_history_line,
    |v: &Haproxy| {
        let fleet = Fleet::local(v, 3);
        // The second coordinator names the edges in the opposite order: if edges were locked
        // in file order, the two could each hold one edge and wait for the other's.
        let reversed = fleet.dir.path().join("fleet-reversed.toml");
        fleet.write_fleet_file(&reversed, &[2, 1, 0]);
        let rounds: [(&str, Color, &str, Color); 4] = [
            ("staging", Color::Green, "prod", Color::Green),
            ("staging", Color::Blue, "prod", Color::Blue),
            ("staging", Color::Green, "staging", Color::Blue),
            ("staging", Color::Blue, "staging", Color::Green),
        ];
        for (round, (env1, c1, env2, c2)) in rounds.into_iter().enumerate() {
            let racers = [
                Racer {
                    file: fleet.file.clone(),
                    env: env1,
                    color: c1,
                    sha: format!("race{round}a"),
                },
                Racer {
                    file: reversed.clone(),
                    env: env2,
                    color: c2,
                    sha: format!("race{round}b"),
                },
            ];
            let started: Vec<_> = racers
                .iter()
                .map(|r| {
                    fleet.spawn_file(
                        &r.file,
                        &["switch", r.env, r.color.as_str(), "--sha", &r.sha],
                        &[],
                    )
                })
                .collect();
            // Bounded: a deadlock is a failure here, not a hung test.
            let runs: Vec<_> = started
                .into_iter()
                .map(|s| s.finish(Duration::from_secs(90)))
                .collect();
            let what = format!("{} round {round}", v.label);
            for run in &runs {
                assert!(
                    matches!(run.code, Some(0) | Some(4)),
                    "{what}: each exits cleanly (done, or refused as locked): {run:?}"
                );
            }
            assert!(
                runs.iter().any(|r| r.code == Some(0)),
                "{what}: at least one goes through: {runs:?}"
            );
            for env in ["staging", "prod"] {
                let colors = fleet.runtime_colors(env);
                let Some(color) = one_color(&colors) else {
                    panic!("{what}: {env} split across edges: {colors:?} after {runs:?}");
                };
                for i in 0..fleet.members.len() {
                    fleet.assert_edge_on(i, env, color, &format!("round {round}"));
                }
            }
            // Each switch that went through is in its env's history on every edge, in the same
            // order everywhere; a refused one is nowhere. (Lines compared by color and sha:
            // the time may cross a second between two edges.)
            for (racer, run) in racers.iter().zip(&runs) {
                for m in &fleet.members {
                    let lines = deploys(&m.edge, racer.env);
                    let found = lines.iter().any(|(_, sha)| *sha == racer.sha);
                    // A switch to the color already live (the other racer went first and left
                    // it there) records nothing, as a single-edge switch does.
                    let noop = run.out.lines().any(|l| l.contains(" already "));
                    assert_eq!(
                        found,
                        run.code == Some(0) && !noop,
                        "{what}: {}'s {} history {lines:?} and {}'s run {run:?}",
                        m.name,
                        racer.env,
                        racer.sha
                    );
                }
            }
            let first = deploys(&fleet.members[0].edge, env1);
            for m in &fleet.members {
                assert_eq!(
                    deploys(&m.edge, env1),
                    first,
                    "{what}: {}'s {env1} history vs edge-a's",
                    m.name
                );
            }
            // The winner of a same-env race is the newest line, and it is what is live.
            let newest = first.first().map_or("blue", |(color, _)| color.as_str());
            let live = one_color(&fleet.runtime_colors(env1));
            assert_eq!(
                live.map(Color::as_str),
                Some(newest),
                "{what}: newest {env1} history line vs live"
            );
        }
        let status = fleet.run(&["status"]);
        assert_eq!(
            status.code,
            Some(0),
            "{}: nothing left open: {status:?}",
            v.label
        );
    }
);
