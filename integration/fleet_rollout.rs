//! Bake and preview on a fleet (issue 22, items 2 and 3) on every HAProxy version, against the
//! lab of `fleet.rs` (two local edges and one over the project's sshd): a fleet bake that
//! passes under bounded load with no failed request, recorded on every edge; a bake breached
//! by one edge's new color flipping every edge back (exit 7, a rollback journalled on each); a
//! fleet preview token working through every edge until a fleet switch revokes it on each; a
//! preview check refused by one edge, naming it, nothing changed anywhere; an edge lost during
//! the bake (exit 5 naming it, the switch left in place) and a flip-back that cannot lock an
//! edge (exit 5, never 7, every edge still on the new color).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use vezasock::topology::Color;

use crate::fleet::{history_lines, Fleet, Reach, ENV};
use crate::preview::{fail_staging_api_green, get_with};
use crate::support::haproxy::{per_version, Haproxy};

/// Two local edges and one over ssh (`None`: no sshd, a SKIP line was printed).
fn lab(v: &Haproxy) -> Option<Fleet> {
    Fleet::start(v, &[Reach::Local, Reach::Local, Reach::Ssh])
}

/// Edge `i`'s journal (`journal.jsonl` in its state dir).
fn journal(fleet: &Fleet, i: usize) -> String {
    let dir = &fleet.members[i].edge.topology.paths.state_dir;
    std::fs::read_to_string(dir.join("journal.jsonl")).unwrap_or_default()
}

/// Edge `i`'s preview map file.
fn preview_file(fleet: &Fleet, i: usize) -> String {
    std::fs::read_to_string(fleet.members[i].edge.topology.paths.preview_map()).unwrap_or_default()
}

/// The body staging's api answers on edge `i` with `headers`.
fn api_body(fleet: &Fleet, i: usize, headers: &[(&str, &str)]) -> String {
    let (status, body) = get_with(fleet.members[i].edge.http, "/api/x", headers);
    assert_eq!(
        status, 200,
        "{} {}: {body}",
        fleet.label, fleet.members[i].name
    );
    body
}

per_version!(
    a_fleet_bake_that_passes_is_recorded_on_every_edge,
    |v: &Haproxy| {
        let Some(fleet) = lab(v) else {
            return;
        };
        let loads = fleet.load();
        for load in &loads {
            assert!(
                load.wait_for_requests(20, Duration::from_secs(10)),
                "{}",
                v.label
            );
        }
        let run = fleet.run(&[
            "switch",
            ENV,
            "green",
            "--bake",
            "2s",
            "--min-requests",
            "10",
            "--json",
        ]);
        fleet.stop_loads(loads, v.label);
        assert_eq!(run.code, Some(0), "{}: {run:?}", v.label);
        let j: serde_json::Value = serde_json::from_str(run.out.trim())
            .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {run:?}", v.label));
        assert_eq!(j["bake"]["verdict"], "pass", "{}: {j}", v.label);
        assert_eq!(j["bake"]["window"]["errors"], 0, "{}: {j}", v.label);
        assert!(
            j["bake"]["watched_ms"].as_f64().unwrap_or(0.0) >= 2000.0,
            "{j}"
        );
        // Every edge's counters were read over the window, the ssh one too, and summed.
        let edges = j["bake"]["edges"].as_array().cloned().unwrap_or_default();
        assert_eq!(edges.len(), 3, "{}: {j}", v.label);
        let mut total = 0;
        for (e, m) in edges.iter().zip(&fleet.members) {
            assert_eq!(e["edge"], m.name.as_str(), "{j}");
            let n = e["window"]["requests"].as_u64().unwrap_or(0);
            assert!(n > 0, "{}: {} saw no request: {j}", v.label, m.name);
            total += n;
        }
        assert_eq!(j["bake"]["window"]["requests"], total, "{}: {j}", v.label);
        fleet.assert_all_on(ENV, Color::Green, "after a clean fleet bake");
        for m in &fleet.members {
            let history = history_lines(&m.edge, ENV);
            assert!(
                history.first().is_some_and(|l| l.starts_with("green")),
                "{} {}: {history:?}",
                v.label,
                m.name
            );
        }
    }
);

per_version!(
    a_fleet_bake_breached_on_one_edge_flips_every_edge_back,
    |v: &Haproxy| {
        let Some(mut fleet) = lab(v) else {
            return;
        };
        let label = format!("{} edge-b", v.label);
        // Edge-b's green api answers 500 to every request (its health check still passes).
        let (_server, fake) = fail_staging_api_green(&mut fleet.members[1].edge, &label);
        let loads = fleet.load();
        for load in &loads {
            assert!(
                load.wait_for_requests(20, Duration::from_secs(10)),
                "{}",
                v.label
            );
        }
        let started = Instant::now();
        let run = fleet.run(&[
            "switch",
            ENV,
            "green",
            "--sha",
            "bad1",
            "--bake",
            "20s",
            "--max-error-rate",
            "5%",
            "--min-requests",
            "10",
        ]);
        let took = started.elapsed();
        for load in loads {
            load.stop();
        }
        fake.store(false, Ordering::Relaxed);
        assert_eq!(run.code, Some(7), "{}: {run:?}", v.label);
        assert!(
            run.err
                .contains("bake of staging green on the fleet failed"),
            "{run:?}"
        );
        assert!(
            run.err.contains("edge-b "),
            "{}: per edge numbers: {run:?}",
            v.label
        );
        assert!(
            run.err.contains("every edge flipped back to blue"),
            "{}: {run:?}",
            v.label
        );
        // At the breach, long before the bake's 20 s.
        assert!(took < Duration::from_secs(15), "{}: took {took:?}", v.label);
        fleet.assert_all_on(ENV, Color::Blue, "after the breach");
        for (i, m) in fleet.members.iter().enumerate() {
            let history = history_lines(&m.edge, ENV);
            assert!(
                history.first().is_some_and(|l| l.starts_with("blue"))
                    && history.get(1).is_some_and(|l| l.starts_with("green bad1")),
                "{} {}: {history:?}",
                v.label,
                m.name
            );
            assert!(
                journal(&fleet, i).contains("\"action\":\"rollback\",\"phase\":\"done\""),
                "{} {}: no rollback journalled: {}",
                v.label,
                m.name,
                journal(&fleet, i)
            );
        }
        let status = fleet.run(&["status"]);
        assert_eq!(
            status.code,
            Some(0),
            "{}: history and state agree: {status:?}",
            v.label
        );
    }
);

per_version!(
    a_fleet_preview_token_works_through_every_edge_until_a_fleet_switch_revokes_it,
    |v: &Haproxy| {
        let Some(fleet) = lab(v) else {
            return;
        };
        let run = fleet.run(&["preview", ENV, "green"]);
        assert_eq!(run.code, Some(0), "{}: {run:?}", v.label);
        let token = run.out.lines().next().unwrap_or("").trim().to_string();
        assert_eq!(token.len(), 32, "{}: {run:?}", v.label);
        let header = [("x-vezasock-preview", token.as_str())];
        for i in 0..fleet.members.len() {
            // The same token on every edge, the ssh one too; plain requests stay on blue.
            assert!(
                preview_file(&fleet, i).contains(&format!("staging:{token} green")),
                "{}: {}",
                v.label,
                preview_file(&fleet, i)
            );
            assert_eq!(
                api_body(&fleet, i, &header),
                "staging api green",
                "{}",
                v.label
            );
            assert_eq!(api_body(&fleet, i, &[]), "staging api blue", "{}", v.label);
        }
        // A token pinned to blue (replacing the green one): after a fleet switch to green it
        // would keep sending its requests to blue on an edge that had not revoked it.
        let run = fleet.run(&["preview", ENV, "blue"]);
        assert_eq!(run.code, Some(0), "{}: {run:?}", v.label);
        let pinned = run.out.lines().next().unwrap_or("").trim().to_string();
        assert_ne!(pinned, token, "{}", v.label);
        let switch = fleet.run(&["switch", ENV, "green"]);
        assert_eq!(switch.code, Some(0), "{}: {switch:?}", v.label);
        let header = [("x-vezasock-preview", pinned.as_str())];
        for (i, m) in fleet.members.iter().enumerate() {
            let said = format!("edge {}: the preview token of staging was revoked", m.name);
            assert!(switch.out.contains(&said), "{}: {switch:?}", v.label);
            assert!(!preview_file(&fleet, i).contains("staging:"), "{}", v.label);
            assert_eq!(
                api_body(&fleet, i, &header),
                "staging api green",
                "{}",
                v.label
            );
        }
    }
);

per_version!(
    a_preview_check_refused_by_one_edge_names_it_and_changes_nothing,
    |v: &Haproxy| {
        let Some(mut fleet) = lab(v) else {
            return;
        };
        let label = format!("{} edge-c", v.label);
        // The ssh edge's green api answers 500: its own listener is what it checks through.
        let (_server, fake) = fail_staging_api_green(&mut fleet.members[2].edge, &label);
        let before = fleet.snapshot();
        let run = fleet.run(&["switch", ENV, "green", "--preview-check", "/,/api/x"]);
        fake.store(false, Ordering::Relaxed);
        assert_eq!(run.code, Some(1), "{}: {run:?}", v.label);
        assert!(
            run.err.contains("the preview check failed on edge edge-c"),
            "{}: {run:?}",
            v.label
        );
        assert!(
            run.err.contains("GET /api/x answered 500"),
            "{}: {run:?}",
            v.label
        );
        assert!(!run.err.contains("edge-a: refused"), "{}: {run:?}", v.label);
        assert_eq!(fleet.snapshot(), before, "{}: nothing changed", v.label);
        for i in 0..fleet.members.len() {
            assert!(!preview_file(&fleet, i).contains("staging:"), "{}", v.label);
        }
        let status = fleet.run(&["status"]);
        assert_eq!(
            status.code,
            Some(0),
            "{}: nothing open: {status:?}",
            v.label
        );
    }
);

per_version!(
    a_preview_check_passing_on_every_edge_lets_the_fleet_switch_through,
    |v: &Haproxy| {
        let Some(fleet) = lab(v) else {
            return;
        };
        let run = fleet.run(&["switch", ENV, "green", "--preview-check", "/,/api/x"]);
        assert_eq!(run.code, Some(0), "{}: {run:?}", v.label);
        for m in &fleet.members {
            let said = format!(
                "preview-check edge {}: / 200, /api/x 200 through the edge",
                m.name
            );
            assert!(run.out.contains(&said), "{}: {run:?}", v.label);
        }
        fleet.assert_all_on(ENV, Color::Green, "after a checked fleet switch");
    }
);

per_version!(
    an_edge_lost_during_a_fleet_bake_is_named_exit_5_and_the_switch_stays,
    |v: &Haproxy| {
        let Some(mut fleet) = lab(v) else {
            return;
        };
        let l = v.label;
        let loads = fleet.load();
        for load in &loads {
            assert!(load.wait_for_requests(20, Duration::from_secs(10)), "{l}");
        }
        let pid = fleet.members[1]
            .edge
            .master_pid()
            .unwrap_or_else(|| panic!("{l}: edge-b's HAProxy is not running"));
        let run = std::thread::scope(|s| {
            let switch = s.spawn(|| {
                fleet.run(&[
                    "switch",
                    ENV,
                    "green",
                    "--bake",
                    "10s",
                    "--min-requests",
                    "10",
                ])
            });
            // The bake starts once every edge has recorded the flip: kill edge-b in it.
            let deadline = Instant::now() + Duration::from_secs(30);
            while fleet
                .members
                .iter()
                .any(|m| crate::fleet::recorded_color(&m.edge, ENV) != Color::Green)
            {
                assert!(
                    Instant::now() < deadline,
                    "{l}: the switch was never recorded"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            std::thread::sleep(Duration::from_secs(1));
            let killed = std::process::Command::new("kill")
                .args(["-9", "--", &format!("-{pid}")])
                .status();
            assert!(
                killed.is_ok_and(|s| s.success()),
                "{l}: kill edge-b's HAProxy"
            );
            switch
                .join()
                .unwrap_or_else(|_| panic!("{l}: the switch thread panicked"))
        });
        // Edge-b's load fails with its HAProxy gone; the others' is not checked here.
        for load in loads {
            load.stop();
        }
        assert_eq!(run.code, Some(5), "{l}: {run:?}");
        assert!(
            run.err
                .contains("could not read the counters of edge edge-b"),
            "{l}: {run:?}"
        );
        fleet.assert_edge_on(0, ENV, Color::Green, "the bake lost edge-b");
        fleet.assert_edge_on(2, ENV, Color::Green, "the bake lost edge-b");
        // Edge-b restarts from its files on the recorded color.
        fleet.restart_edge(1);
        fleet.assert_edge_on(1, ENV, Color::Green, "edge-b restarted");
    }
);

per_version!(
    a_fleet_bake_whose_flip_back_is_refused_exits_5_with_every_edge_still_on_the_new_color,
    |v: &Haproxy| {
        let Some(mut fleet) = lab(v) else {
            return;
        };
        let l = v.label;
        let label = format!("{l} edge-b");
        let (server, fake) = fail_staging_api_green(&mut fleet.members[1].edge, &label);
        let loads = fleet.load();
        for load in &loads {
            assert!(load.wait_for_requests(20, Duration::from_secs(10)), "{l}");
        }
        let state = crate::switch::state_dir(&fleet.members[0].edge);
        let run = std::thread::scope(|s| {
            let switch = s.spawn(|| {
                fleet.run(&[
                    "switch",
                    ENV,
                    "green",
                    "--bake",
                    "20s",
                    "--max-error-rate",
                    "5%",
                    "--min-requests",
                    "100",
                    "--lock-timeout",
                    "1s",
                ])
            });
            // Once every edge recorded the flip, edge-a's lock is taken: the flip-back after
            // the breach cannot lock it.
            let deadline = Instant::now() + Duration::from_secs(30);
            while fleet
                .members
                .iter()
                .any(|m| crate::fleet::recorded_color(&m.edge, ENV) != Color::Green)
            {
                assert!(
                    Instant::now() < deadline,
                    "{l}: the switch was never recorded"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            // The switch may still hold it for the end of its record phase: wait that out.
            let held = vezasock::state::EdgeLock::acquire(
                &state,
                vezasock::state::Wait::up_to(Duration::from_secs(5)),
                vezasock::state::Holder::current(),
            )
            .unwrap_or_else(|e| panic!("{l}: take edge-a's lock: {e}"));
            let run = switch
                .join()
                .unwrap_or_else(|_| panic!("{l}: the switch thread panicked"));
            drop(held);
            run
        });
        for load in loads {
            load.stop();
        }
        // Edge-b's real green api back, so that every edge answers green again.
        // The fake's listener closes a moment after its flag is cleared.
        fake.store(false, Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !fleet.members[1]
            .edge
            .set_backend_running(&server.backend, &server.server, true)
        {
            assert!(Instant::now() < deadline, "{l}: edge-b's api green back");
            std::thread::sleep(Duration::from_millis(50));
        }
        crate::switch::wait_healthy(&fleet.members[1].edge, &label);
        assert_eq!(
            run.code,
            Some(5),
            "{l}: never 7 without the flip-back: {run:?}"
        );
        assert!(
            run.err.contains("flipping every edge back to blue FAILED"),
            "{l}: {run:?}"
        );
        assert!(run.err.contains("edge-a"), "{l}: names the edge: {run:?}");
        assert!(
            run.err.contains("every edge is still on green"),
            "{l}: {run:?}"
        );
        fleet.assert_all_on(ENV, Color::Green, "the flip-back was refused");
        // The command the message gives finishes it.
        let back = fleet.run(&["switch", ENV, "blue"]);
        assert_eq!(back.code, Some(0), "{l}: {back:?}");
        fleet.assert_all_on(ENV, Color::Blue, "after the retry");
    }
);
