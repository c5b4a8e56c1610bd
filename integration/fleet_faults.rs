//! Failures in the middle of a fleet switch, on every HAProxy version: one edge's HAProxy
//! SIGKILLed while the coordinator waits at `VEZASOCK_PAUSE_AT=fleet-after-prepare` or
//! `fleet-after-first-commit`, and the coordinator itself SIGKILLed there
//! (`VEZASOCK_CRASH_AT`). Each time: what the exit code and message say, that the edges still
//! up agree, what fleet `status` shows, that `apply` (or the expiry) brings every edge back to
//! one color, and that no file is torn; with an ssh edge, that no edge agent outlives its
//! killed coordinator.

use std::path::Path;
use std::time::Duration;

use vezasock::topology::Color;

use crate::crash::no_torn_files;
use crate::fleet::{pending_map, transaction_file, wait_paused, Fleet, Reach, ENV};
use crate::support::haproxy::{per_version, Haproxy};
use crate::support::run::Run;
use crate::support::run::Running;
use crate::switch::runtime_color;

/// `switch staging green` on the fleet, paused at `point` until the pause file is removed.
fn paused_switch(fleet: &Fleet, point: &str) -> Running {
    let pause = fleet.pause_file();
    let pause = pause.display().to_string();
    let mut running = fleet.spawn(
        &["switch", ENV, "green"],
        &[
            ("VEZASOCK_PAUSE_AT", point),
            ("VEZASOCK_PAUSE_FILE", &pause),
        ],
    );
    wait_paused(
        &mut running,
        Path::new(&pause),
        &format!("{} {point}", fleet.label),
    );
    running
}

/// Lets the paused coordinator go on and waits for it.
fn resume(fleet: &Fleet, running: Running) -> Run {
    std::fs::remove_file(fleet.pause_file()).unwrap_or_else(|e| panic!("remove pause file: {e}"));
    running.finish(Duration::from_secs(90))
}

fn said(run: &Run) -> String {
    format!("{}\n{}", run.out, run.err)
}

/// Edge `i` is on `color` everywhere and holds no transaction, and its files are whole.
fn settled(fleet: &Fleet, i: usize, color: Color, context: &str) {
    let m = &fleet.members[i];
    let what = format!("{} {context}: {}", fleet.label, m.name);
    fleet.assert_edge_on(i, ENV, color, context);
    assert!(
        !pending_map(&m.edge).exists(),
        "{what}: a pending map file is left"
    );
    assert!(
        !transaction_file(&m.edge).exists(),
        "{what}: a transaction file is left"
    );
    no_torn_files(&m.edge, &what);
}

/// Every line of the coordinator's journal(s) is whole JSON.
fn fleet_journal_whole(fleet: &Fleet, context: &str) {
    let Ok(entries) = std::fs::read_dir(&fleet.state_dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let name = path.display().to_string();
        assert!(
            !name.contains("vezasock-tmp"),
            "{} {context}: leftover {name}",
            fleet.label
        );
        if path.extension().is_some_and(|e| e == "jsonl") {
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
            for line in text.lines() {
                assert!(
                    serde_json::from_str::<serde_json::Value>(line).is_ok(),
                    "{} {context}: torn line in {name}: {line:?}",
                    fleet.label
                );
            }
            assert!(
                text.is_empty() || text.ends_with('\n'),
                "{} {context}: {name} ends mid-line",
                fleet.label
            );
        }
    }
}

/// After an edge is back: `apply` on the fleet brings every edge to blue, `status` is clean, and
/// a new fleet switch goes through.
fn apply_brings_one_color(fleet: &Fleet, context: &str) {
    let apply = fleet.run(&["apply"]);
    assert_eq!(
        apply.code,
        Some(0),
        "{} {context}: apply: {apply:?}",
        fleet.label
    );
    for i in 0..fleet.members.len() {
        settled(fleet, i, Color::Blue, &format!("{context}, after apply"));
    }
    fleet_journal_whole(fleet, context);
    let status = fleet.run(&["status"]);
    assert_eq!(
        status.code,
        Some(0),
        "{} {context}: status after apply: {status:?}",
        fleet.label
    );
    let again = fleet.run(&["switch", ENV, "green"]);
    assert_eq!(again.code, Some(0), "{} {context}: {again:?}", fleet.label);
    fleet.assert_all_on(ENV, Color::Green, &format!("{context}, a new switch"));
}

/// Kills edge `killed` while the coordinator waits at `point`; checks the exit, the survivors,
/// `status`, then restarts the edge and applies.
fn edge_killed_at(v: &Haproxy, point: &str, killed: usize) {
    let mut fleet = Fleet::local(v, 3);
    let running = paused_switch(&fleet, point);
    fleet.kill_edge(killed);
    let run = resume(&fleet, running);
    let name = fleet.members[killed].name.clone();
    let what = format!("{} {name} killed at {point}", v.label);
    // docs/fleet.md: a failed commit puts every committed edge back, exit 3 when every put-back is
    // confirmed. A committed edge lost before its verify cannot be confirmed: 5.
    let want = if killed == 0 && point == "fleet-after-first-commit" {
        5
    } else {
        3
    };
    assert_eq!(run.code, Some(want), "{what}: exit code: {run:?}");
    assert!(
        run.err.contains(&name),
        "{what}: the error names the edge: {}",
        said(&run)
    );
    for i in (0..3).filter(|i| *i != killed) {
        settled(&fleet, i, Color::Blue, &what);
    }
    let status = fleet.run(&["status"]);
    assert_eq!(
        status.code,
        Some(3),
        "{what}: status, an edge down: {status:?}"
    );
    let status = fleet.run(&["status", "--json"]);
    assert_eq!(status.code, Some(3), "{what}: status --json: {status:?}");
    let j: serde_json::Value = serde_json::from_str(status.out.trim())
        .unwrap_or_else(|e| panic!("{what}: status --json: {e}: {}", status.out));
    let edge = &j["edges"][killed];
    assert_eq!(edge["edge"], name.as_str(), "{what}: {j}");
    assert!(
        edge["status"].is_null() && edge["error"].is_string(),
        "{what}: the killed edge shows as unreachable: {j}"
    );

    fleet.restart_edge(killed);
    if killed == 0 && point == "fleet-after-first-commit" {
        // edge-a's commit had landed before it died; its read-back failed, so every edge was put
        // back: its map file too, so it comes back on blue like the others. Its transaction,
        // whose put-back could not be confirmed, stays open until apply closes it.
        let status = fleet.run(&["status"]);
        assert_eq!(
            status.code,
            Some(6),
            "{what}: status after restart: {status:?}"
        );
        assert!(
            !status.out.contains(&format!("DRIFT across edges on {ENV}")),
            "{what}: every edge back on one color: {}",
            status.out
        );
        assert!(
            status.out.contains("OPEN transaction"),
            "{what}: the open transaction is shown: {}",
            status.out
        );
        fleet.assert_all_on(ENV, Color::Blue, &format!("{what}: after the restart"));
    }
    apply_brings_one_color(&fleet, &what);
}

per_version!(
    an_edge_killed_between_prepare_and_commit_leaves_the_others_on_the_old_color,
    |v: &Haproxy| edge_killed_at(v, "fleet-after-prepare", 1)
);

per_version!(
    an_edge_killed_between_two_commits_has_the_committed_edge_put_back,
    |v: &Haproxy| edge_killed_at(v, "fleet-after-first-commit", 1)
);

per_version!(
    the_committed_edge_killed_before_the_next_commit_is_brought_back_by_apply,
    |v: &Haproxy| edge_killed_at(v, "fleet-after-first-commit", 0)
);

per_version!(
    a_coordinator_killed_after_prepare_leaves_open_transactions_that_apply_aborts,
    |v: &Haproxy| {
        let fleet = Fleet::local(v, 3);
        let run = fleet.run_env(
            &["switch", ENV, "green"],
            &[("VEZASOCK_CRASH_AT", "fleet-after-prepare")],
        );
        assert_eq!(run.code, None, "{}: killed by SIGKILL: {run:?}", v.label);
        for (i, m) in fleet.members.iter().enumerate() {
            let what = format!("{} {}", v.label, m.name);
            assert!(transaction_file(&m.edge).exists(), "{what}: prepared, open");
            assert_eq!(runtime_color(&m.edge, ENV), Some(Color::Blue), "{what}");
            assert_eq!(
                crate::fleet::map_file_color(&m.edge, ENV),
                Some(Color::Blue),
                "{what}: the map file is only staged"
            );
            no_torn_files(&fleet.members[i].edge, &what);
        }
        fleet_journal_whole(&fleet, "after the crash");
        let status = fleet.run(&["status"]);
        assert_eq!(
            status.code,
            Some(6),
            "{}: open transactions: {status:?}",
            v.label
        );
        assert!(
            status.out.to_lowercase().contains("transaction"),
            "{}: status shows the open transaction: {}",
            v.label,
            status.out
        );
        apply_brings_one_color(&fleet, "coordinator killed after prepare");
    }
);

per_version!(
    a_coordinator_killed_after_prepare_is_repaired_by_the_expiry,
    |v: &Haproxy| {
        let fleet = Fleet::local(v, 3);
        let run = fleet.run_env(
            &["switch", ENV, "green", "--expires", "1s"],
            &[("VEZASOCK_CRASH_AT", "fleet-after-prepare")],
        );
        assert_eq!(run.code, None, "{}: killed by SIGKILL: {run:?}", v.label);
        std::thread::sleep(Duration::from_millis(2100));
        // The next command on each edge aborts its expired transaction before anything else.
        let again = fleet.run(&["switch", ENV, "green"]);
        assert_eq!(again.code, Some(0), "{}: {again:?}", v.label);
        assert!(
            again.err.contains("expired"),
            "{}: says it aborted the expired transactions: {}",
            v.label,
            again.err
        );
        for i in 0..fleet.members.len() {
            settled(&fleet, i, Color::Green, "after the expiry and a new switch");
        }
    }
);

per_version!(
    a_coordinator_killed_between_commits_shows_drift_and_apply_repairs_it,
    |v: &Haproxy| {
        let fleet = Fleet::local(v, 3);
        let run = fleet.run_env(
            &["switch", ENV, "green"],
            &[("VEZASOCK_CRASH_AT", "fleet-after-first-commit")],
        );
        assert_eq!(run.code, None, "{}: killed by SIGKILL: {run:?}", v.label);
        let colors = fleet.runtime_colors(ENV);
        assert_eq!(
            colors,
            vec![Some(Color::Green), Some(Color::Blue), Some(Color::Blue)],
            "{}: the first edge committed, the others prepared",
            v.label
        );
        for m in &fleet.members {
            no_torn_files(&m.edge, &format!("{} {}", v.label, m.name));
        }
        fleet_journal_whole(&fleet, "after the crash");
        let status = fleet.run(&["status"]);
        assert_eq!(status.code, Some(6), "{}: {status:?}", v.label);
        let drift = status
            .out
            .lines()
            .find(|l| l.starts_with(&format!("DRIFT across edges on {ENV}: ")))
            .unwrap_or_else(|| panic!("{}: no cross-edge drift line: {}", v.label, status.out))
            .to_string();
        for side in ["edge-a=green", "edge-b=blue", "edge-c=blue"] {
            assert!(drift.contains(side), "{}: {side} in {drift:?}", v.label);
        }
        assert!(
            status.out.to_lowercase().contains("transaction"),
            "{}: status shows the open transactions: {}",
            v.label,
            status.out
        );
        apply_brings_one_color(&fleet, "coordinator killed between commits");
        // The exact line of docs/fleet.md (checked last, so a wording difference hides no behaviour).
        assert_eq!(
            drift,
            format!(
                "DRIFT across edges on {ENV}: edge-a=green (recorded blue) edge-b=blue edge-c=blue"
            ),
            "{}: the drift line as docs/fleet.md writes it",
            v.label
        );
    }
);

/// Processes whose command line mentions `needle` (from /proc; ours only).
fn processes_mentioning(needle: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
        .filter(|cmd| cmd.contains(needle))
        .collect()
}

per_version!(
    a_coordinator_killed_after_prepare_with_an_ssh_edge_leaves_nothing_running_after_apply,
    |v: &Haproxy| {
        let Some(fleet) = Fleet::start(v, &[Reach::Local, Reach::Ssh]) else {
            return;
        };
        let config = fleet.members[1].config.display().to_string();
        // While a coordinator holds the transaction, its agent is there to be seen (so the
        // check below can fail).
        let paused = paused_switch(&fleet, "fleet-after-prepare");
        let during = processes_mentioning(&config);
        assert!(
            during.iter().any(|c| c.contains("edge-agent")),
            "{}: no edge agent seen during a transaction: {during:?}",
            v.label
        );
        let first = resume(&fleet, paused);
        assert_eq!(first.code, Some(0), "{}: {first:?}", v.label);
        let back = fleet.run(&["switch", ENV, "blue"]);
        assert_eq!(back.code, Some(0), "{}: {back:?}", v.label);
        let run = fleet.run_env(
            &["switch", ENV, "green"],
            &[("VEZASOCK_CRASH_AT", "fleet-after-prepare")],
        );
        assert_eq!(run.code, None, "{}: killed by SIGKILL: {run:?}", v.label);
        assert_eq!(
            fleet.runtime_colors(ENV),
            vec![Some(Color::Blue), Some(Color::Blue)],
            "{}: nothing live moved at prepare",
            v.label
        );
        let status = fleet.run(&["status"]);
        assert_eq!(
            status.code,
            Some(6),
            "{}: open transaction: {status:?}",
            v.label
        );
        apply_brings_one_color(&fleet, "coordinator killed after prepare, ssh edge");
        // The far side's agent of the killed coordinator must not linger once its session is
        // gone (its stdin closed with the ssh client).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let left: Vec<String> = processes_mentioning(&config)
                .into_iter()
                .filter(|c| c.contains("edge-agent"))
                .collect();
            if left.is_empty() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{}: edge agents still running 10 s after: {left:?}",
                v.label
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
);
