//! Kill -9 of `vezasock switch` at each step of the flip (`VEZASOCK_CRASH_AT`), on every HAProxy
//! version: afterwards `status` reports exactly what is inconsistent (exit 6, or 0 when the
//! kill came before anything was written), `repair` or a new `switch` puts it right, and no
//! file is ever torn.

use std::path::Path;

use vezasock::edge::apply::repair::repair;
use vezasock::render::maps::parse_colors;
use vezasock::state::Phase;
use vezasock::topology::Color;

use crate::support::haproxy::{self, per_version};
use crate::support::run::{vezasock, vezasock_env};
use crate::switch::{file_color, healthy_edge, lib_edge, rt, runtime_color, state_dir};

/// No temp-file leftovers in `dir`, and every file we own parses.
pub fn no_torn_files(local: &vezasock::demo::LocalEdge, label: &str) {
    let paths = &local.topology.paths;
    for dir in [&paths.state_dir, &paths.maps_dir] {
        let names: Vec<String> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{label}: {e}"))
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            !names.iter().any(|n| n.contains("vezasock-tmp")),
            "{label}: leftovers in {}: {names:?}",
            dir.display()
        );
    }
    let text = std::fs::read_to_string(paths.active_color_map())
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    parse_colors(&text).unwrap_or_else(|e| panic!("{label}: map file torn: {e}"));
    let state = state_dir(local);
    for env in ["staging", "prod"] {
        state
            .recorded_color(env)
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        state
            .history(env)
            .unwrap_or_else(|e| panic!("{label}: {e}"));
    }
    let journal = state
        .journal_read()
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    assert!(
        journal.skipped.is_empty(),
        "{label}: torn journal lines: {:?}",
        journal.skipped
    );
    if Path::new(&state.server_admin_file()).exists() {
        state
            .server_admin()
            .unwrap_or_else(|e| panic!("{label}: {e}"));
    }
}

per_version!(
    a_kill_at_every_step_is_reported_by_status_and_repaired,
    |v: &haproxy::Haproxy| {
        let label = v.label;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let local = healthy_edge(v, dir.path());
        let lib = lib_edge(&local);
        let state = state_dir(&local);
        // Start from a recorded blue, so every side names a color.
        let run = vezasock(&local, &["switch", "staging", "green"]);
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        let run = vezasock(&local, &["switch", "staging", "blue"]);
        assert_eq!(run.code, Some(0), "{label}: {run:?}");

        let steps = [
            "after-lock",
            "after-journal",
            "after-disk",
            "after-runtime",
            "after-readback",
        ];
        for (i, step) in steps.iter().enumerate() {
            let live = state
                .active_color("staging")
                .unwrap_or_else(|e| panic!("{e}"));
            let target = live.other();
            let history_before = state.history("staging").unwrap_or_default();
            let run = vezasock_env(
                &local,
                &["switch", "staging", target.as_str()],
                &[("VEZASOCK_CRASH_AT", step)],
            );
            assert_eq!(run.code, None, "{label} {step}: not killed: {run:?}");
            no_torn_files(&local, &format!("{label} {step}"));
            // The state file never moved: it is written only after a verified flip.
            assert_eq!(
                state.active_color("staging").ok(),
                Some(live),
                "{label} {step}"
            );
            assert_eq!(
                state.history("staging").unwrap_or_default(),
                history_before,
                "{label} {step}"
            );

            let (disk, runtime) = (
                file_color(&local, "staging"),
                runtime_color(&local, "staging"),
            );
            let expect_disk = if i >= 2 { target } else { live };
            let expect_runtime = if i >= 3 { target } else { live };
            assert_eq!(
                (disk, runtime),
                (Some(expect_disk), Some(expect_runtime)),
                "{label} {step}"
            );

            let status = vezasock(&local, &["status", "--json"]);
            let json: serde_json::Value = serde_json::from_str(status.out.trim())
                .unwrap_or_else(|e| panic!("{label} {step}: {e}: {status:?}"));
            let env = json["envs"]
                .as_array()
                .and_then(|a| a.iter().find(|e| e["name"] == "staging"))
                .cloned()
                .unwrap_or_default();
            if *step == "after-lock" {
                // Killed before writing anything: consistent, and the lock died with it.
                assert_eq!(status.code, Some(0), "{label} {step}: {status:?}");
                assert_eq!(env["drift"], false, "{label}");
            } else {
                assert_eq!(status.code, Some(6), "{label} {step}: {status:?}");
                let op = &env["interrupted"][0];
                let phase = match i {
                    1 => "intent",
                    2 => "disk-written",
                    3 => "runtime-applied",
                    _ => "verified",
                };
                assert_eq!(op["last_phase"], phase, "{label} {step}: {env}");
                assert_eq!(op["after"], target.as_str(), "{label} {step}: {env}");
                assert_eq!(env["drift"], i >= 2, "{label} {step}: {env}");
                assert_eq!(
                    env["sides"]["runtime"],
                    expect_runtime.as_str(),
                    "{label} {step}"
                );
                assert_eq!(
                    env["sides"]["map_file"],
                    expect_disk.as_str(),
                    "{label} {step}"
                );
                assert_eq!(env["sides"]["state_file"], live.as_str(), "{label} {step}");
                let human = vezasock(&local, &["status", "staging"]);
                assert_eq!(human.code, Some(6), "{label} {step}");
                assert!(
                    human.out.contains(&format!("interrupted after {phase}")),
                    "{label} {step}: {}",
                    human.out
                );
                if i >= 2 {
                    assert!(
                        human.out.contains("DRIFT staging"),
                        "{label} {step}: {}",
                        human.out
                    );
                }
            }

            // Repair alternately by `repair` (back to the recorded color) and by switching again.
            if i % 2 == 0 {
                let report = rt()
                    .block_on(repair(&lib))
                    .unwrap_or_else(|e| panic!("{label} {step}: {e}"));
                let expect_fixed = *step != "after-lock";
                assert_eq!(
                    !report.is_clean(),
                    expect_fixed,
                    "{label} {step}: {report:?}"
                );
                assert_eq!(
                    runtime_color(&local, "staging"),
                    Some(live),
                    "{label} {step}"
                );
                assert_eq!(file_color(&local, "staging"), Some(live), "{label} {step}");
            } else {
                let run = vezasock(&local, &["switch", "staging", target.as_str()]);
                assert_eq!(run.code, Some(0), "{label} {step}: {run:?}");
                assert_eq!(
                    runtime_color(&local, "staging"),
                    Some(target),
                    "{label} {step}"
                );
                assert_eq!(
                    state.active_color("staging").ok(),
                    Some(target),
                    "{label} {step}"
                );
            }
            let status = vezasock(&local, &["status"]);
            assert_eq!(
                status.code,
                Some(0),
                "{label} {step}: still inconsistent after repair: {status:?}"
            );
            assert!(
                state.open_operations().unwrap_or_default().is_empty(),
                "{label} {step}"
            );
            no_torn_files(&local, &format!("{label} {step} repaired"));
        }
        // Every interrupted operation was closed by a terminal phase, never left open.
        let journal = state.journal_read().unwrap_or_else(|e| panic!("{e}"));
        let closed = journal
            .entries
            .iter()
            .filter(|e| e.phase == Phase::RolledBack)
            .count();
        assert!(closed >= 2, "{label}: {closed} rolled-back entries");
        assert_eq!(
            runtime_color(&local, "prod"),
            Some(Color::Blue),
            "{label}: prod touched"
        );
    }
);

per_version!(
    a_kill_inside_the_record_step_then_repair_then_rollback_goes_back_one_deploy,
    kill_inside_record_then_rollback
);

/// Killed between the history line and the state file: repair (what `apply` runs first) puts
/// the env back on the recorded color and removes the undone flip's history line, so the next
/// `rollback` goes back one deploy from the recorded one, as the operator expects.
fn kill_inside_record_then_rollback(v: &haproxy::Haproxy) {
    let label = v.label;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let local = healthy_edge(v, dir.path());
    let lib = lib_edge(&local);
    let state = state_dir(&local);
    for (color, sha) in [("green", "aaaa1111"), ("blue", "bbbb2222")] {
        let run = vezasock(&local, &["switch", "staging", color, "--sha", sha]);
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
    }
    let run = vezasock_env(
        &local,
        &["switch", "staging", "green", "--sha", "cccc3333"],
        &[("VEZASOCK_CRASH_AT", "after-history")],
    );
    assert_eq!(run.code, None, "{label}: not killed: {run:?}");
    no_torn_files(&local, label);
    // The history is one line ahead of the state file, and status says so.
    let history = state.history("staging").unwrap_or_default();
    assert_eq!(history[0].sha.as_deref(), Some("cccc3333"), "{label}");
    assert_eq!(state.active_color("staging").ok(), Some(Color::Blue));
    assert_eq!(vezasock(&local, &["status"]).code, Some(6), "{label}");

    let report = rt()
        .block_on(repair(&lib))
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    assert!(
        report.fixed.iter().any(|f| f.contains("history staging")),
        "{label}: {report:?}"
    );
    // History, state file and runtime agree on the recorded deploy.
    let history = state.history("staging").unwrap_or_default();
    assert_eq!(history[0].sha.as_deref(), Some("bbbb2222"), "{label}");
    assert_eq!(history[0].color, Color::Blue, "{label}");
    assert_eq!(runtime_color(&local, "staging"), Some(Color::Blue));
    assert_eq!(vezasock(&local, &["status"]).code, Some(0), "{label}");

    // "Back one deploy" from bbbb2222 is aaaa1111 on green.
    let run = vezasock(&local, &["rollback", "staging"]);
    assert_eq!(run.code, Some(0), "{label}: {run:?}");
    assert_eq!(runtime_color(&local, "staging"), Some(Color::Green));
    let history = state.history("staging").unwrap_or_default();
    assert_eq!(history[0].sha.as_deref(), Some("aaaa1111"), "{label}");
    assert_eq!(state.active_color("staging").ok(), Some(Color::Green));
    no_torn_files(&local, label);
}

per_version!(
    a_full_disk_at_any_write_of_a_flip_never_lies_and_never_tears_the_journal,
    full_disk_flip
);

/// The state dir on a 128 KiB tmpfs, filled until 0, 1, 2, … pages are free: whichever write
/// of the flip runs out of space, the exit code tells the truth (1: nothing changed, 5: live
/// but not recorded, 0: done), the journal and its archive hold only whole lines, no temp
/// file is left, and once space is back a repair leaves every side agreeing.
fn full_disk_flip(v: &haproxy::Haproxy) {
    let label = v.label;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let local = healthy_edge(v, dir.path());
    let small = dir.path().join("small-state");
    let Some(tmpfs) = crate::support::tmpfs::Tmpfs::mount(&small, 128) else {
        // Only root can mount; CI runs as root, so this is a real skip only on a dev machine.
        assert!(
            std::env::var("VEZASOCK_REQUIRE_ALL_VERSIONS").is_err(),
            "{label}: cannot mount a tmpfs (not root?)"
        );
        eprintln!("SKIP {label}: cannot mount a tmpfs for the full-disk test (not root?)");
        return;
    };
    let state_env = small.display().to_string();
    let state = vezasock::state::StateDir::single(&small);
    let mut seen = std::collections::BTreeSet::new();
    for free_pages in 0..8u64 {
        tmpfs
            .fill(free_pages * 4096)
            .unwrap_or_else(|e| panic!("{label}: filler: {e}"));
        let live = runtime_color(&local, "staging").unwrap_or(Color::Blue);
        let recorded = state.active_color("staging").unwrap_or(Color::Blue);
        let on_disk = file_color(&local, "staging");
        let target = live.other();
        let run = vezasock_env(
            &local,
            &["switch", "staging", target.as_str()],
            &[("VEZASOCK_STATE_DIR", state_env.as_str())],
        );
        let case = format!("{label}, {free_pages} page(s) free");
        let now = runtime_color(&local, "staging");
        match run.code {
            Some(0) => {
                assert_eq!(now, Some(target), "{case}: {run:?}");
                assert_eq!(state.active_color("staging").ok(), Some(target), "{case}");
            }
            Some(1) => {
                // "Nothing changed" must be true.
                assert_eq!(now, Some(live), "{case}: {run:?}");
                assert_eq!(state.active_color("staging").ok(), Some(recorded), "{case}");
                assert_eq!(file_color(&local, "staging"), on_disk, "{case}: map file");
            }
            Some(5) => {
                assert!(run.err.contains("finishes it"), "{case}: {run:?}");
                assert!(run.err.contains("recorded:"), "{case}: {run:?}");
            }
            other => panic!("{case}: exit {other:?}: {run:?}"),
        }
        seen.insert(run.code);
        for name in ["journal.jsonl", "journal.archive.jsonl"] {
            let bytes = std::fs::read(small.join(name)).unwrap_or_default();
            let read = vezasock::state::journal::parse_journal(&bytes);
            assert!(
                read.skipped.is_empty(),
                "{case}: {name}: {:?}",
                read.skipped
            );
        }
        let names: Vec<String> = std::fs::read_dir(&small)
            .unwrap_or_else(|e| panic!("{e}"))
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            !names.iter().any(|n| n.contains("vezasock-tmp")),
            "{case}: leftovers {names:?}"
        );
        // Space back, then the repair `apply` runs: every side agrees again.
        tmpfs.unfill();
        let mut lib = lib_edge(&local);
        lib.state = vezasock::state::StateDir::single(&small);
        lib.topology.paths.state_dir = small.clone();
        rt().block_on(repair(&lib))
            .unwrap_or_else(|e| panic!("{case}: repair: {e}"));
        let recorded = state.active_color("staging").unwrap_or(Color::Blue);
        assert_eq!(runtime_color(&local, "staging"), Some(recorded), "{case}");
        assert_eq!(file_color(&local, "staging"), Some(recorded), "{case}");
        assert!(
            state.open_operations().unwrap_or_default().is_empty(),
            "{case}"
        );
    }
    eprintln!("{label}: full-disk exits seen: {seen:?}");
    // The filler must have hit the flip's writes, not only let everything pass.
    // Seen on 2.6, 3.0 and 3.2: 0 pages fail the intent (1), 1 page fails the record (5).
    assert!(
        [Some(0), Some(1), Some(5)].iter().all(|c| seen.contains(c)),
        "{label}: {seen:?}"
    );
}

per_version!(
    a_full_disk_after_the_intent_line_puts_the_map_file_back,
    full_disk_after_the_intent
);

/// The chaos run's seed 1796659951697217813 on 3.2 (step 117): the intent line fitted the
/// journal's last page, the map file was written, the `disk-written` line found the disk full,
/// and the switch exited 1 ("nothing changed") with the map file already on the new color (a
/// restart would have flipped traffic). The journal is padded so that its last page has room
/// for the intent line and not for the next one, at every offset in steps of 64 bytes: each
/// exit 1 leaves runtime, map file and state file as they were.
fn full_disk_after_the_intent(v: &haproxy::Haproxy) {
    let label = v.label;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let local = healthy_edge(v, dir.path());
    let small = dir.path().join("small-state");
    let Some(tmpfs) = crate::support::tmpfs::Tmpfs::mount(&small, 128) else {
        assert!(
            std::env::var("VEZASOCK_REQUIRE_ALL_VERSIONS").is_err(),
            "{label}: cannot mount a tmpfs (not root?)"
        );
        eprintln!("SKIP {label}: cannot mount a tmpfs for the full-disk test (not root?)");
        return;
    };
    let state_env = small.display().to_string();
    let journal = small.join("journal.jsonl");
    let mut after_intent = 0;
    for pad in (0..4096usize).step_by(64) {
        // One JSON line of `pad` bytes (at least its braces): not an entry, never an open
        // operation, so every try starts from a settled edge.
        let line = format!("{{\"pad\":\"{}\"}}\n", "x".repeat(pad.saturating_sub(11)));
        std::fs::write(&journal, line).unwrap_or_else(|e| panic!("{e}"));
        // One page free, for the lock's holder file (written first; a try leaves it behind).
        let _ = std::fs::remove_file(small.join("vezasock.lock.holder"));
        tmpfs
            .fill(4096)
            .unwrap_or_else(|e| panic!("{label}: filler: {e}"));
        let live = runtime_color(&local, "staging").unwrap_or(Color::Blue);
        let on_disk = file_color(&local, "staging");
        let run = vezasock_env(
            &local,
            &["switch", "staging", live.other().as_str()],
            &[("VEZASOCK_STATE_DIR", state_env.as_str())],
        );
        tmpfs.unfill();
        let case = format!("{label}, journal padded to {pad} bytes");
        if run.code == Some(1) {
            assert_eq!(
                runtime_color(&local, "staging"),
                Some(live),
                "{case}: {run:?}"
            );
            assert_eq!(
                file_color(&local, "staging"),
                on_disk,
                "{case}: map file: {run:?}"
            );
            let text = std::fs::read_to_string(&journal).unwrap_or_default();
            if text.contains("\"phase\":\"intent\"") {
                after_intent += 1;
            }
        }
        // Whatever happened, the next try starts agreeing: space back, a repair.
        let mut lib = lib_edge(&local);
        lib.state = vezasock::state::StateDir::single(&small);
        lib.topology.paths.state_dir = small.clone();
        rt().block_on(repair(&lib))
            .unwrap_or_else(|e| panic!("{case}: repair: {e}"));
    }
    // The disk filled between the intent line and the next one at least once.
    assert!(
        after_intent > 0,
        "{label}: no try failed after its intent line"
    );
}

per_version!(
    a_full_disk_after_a_server_change_is_live_exits_5_never_1,
    full_disk_after_a_server_change
);

/// The chaos run's seed 1796668591636740656 on 3.2 (step 70): `maint` on a state dir with one
/// page free; HAProxy accepted the change, then the write-through found the disk full, and
/// `maint` exited 1 ("nothing changed") with the server in MAINT. The journal is padded so
/// that the disk fills at every point of the change in turn (steps of 128 bytes): an exit of
/// 1, 3 or 4 leaves the server as it was, and a failure after HAProxy took it is 5, naming it.
fn full_disk_after_a_server_change(v: &haproxy::Haproxy) {
    let label = v.label;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let local = healthy_edge(v, dir.path());
    let small = dir.path().join("small-state");
    let Some(tmpfs) = crate::support::tmpfs::Tmpfs::mount(&small, 128) else {
        assert!(
            std::env::var("VEZASOCK_REQUIRE_ALL_VERSIONS").is_err(),
            "{label}: cannot mount a tmpfs (not root?)"
        );
        eprintln!("SKIP {label}: cannot mount a tmpfs for the full-disk test (not root?)");
        return;
    };
    let state_env = [("VEZASOCK_STATE_DIR", small.display().to_string())];
    let state_env: Vec<(&str, &str)> = state_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let journal = small.join("journal.jsonl");
    // Staging is live on blue: its green api server is not guarded.
    let (backend, server) = ("be_staging_api_green", "green_1");
    let maint = ["maint", "staging", "green", "--component", "api"];
    let mut live_and_5 = 0;
    for pad in (0..4096usize).step_by(128) {
        let line = format!("{{\"pad\":\"{}\"}}\n", "x".repeat(pad.saturating_sub(11)));
        std::fs::write(&journal, line).unwrap_or_else(|e| panic!("{e}"));
        let _ = std::fs::remove_file(small.join("vezasock.lock.holder"));
        tmpfs
            .fill(4096)
            .unwrap_or_else(|e| panic!("{label}: filler: {e}"));
        let run = vezasock_env(&local, &maint, &state_env);
        tmpfs.unfill();
        let case = format!("{label}, journal padded to {pad} bytes");
        let in_maint = crate::switch::admin_state(&local, backend, server).is_maint();
        match run.code {
            Some(1 | 3 | 4) => {
                assert!(!in_maint, "{case}: exited {:?} in MAINT: {run:?}", run.code)
            }
            Some(5) => {
                assert!(in_maint, "{case}: exit 5 but not in MAINT: {run:?}");
                assert!(
                    run.err.contains(server),
                    "{case}: names the server: {run:?}"
                );
                live_and_5 += 1;
            }
            Some(0) => assert!(in_maint, "{case}: {run:?}"),
            other => panic!("{case}: exit {other:?}: {run:?}"),
        }
        // Space back: `ready` puts the server back for the next try.
        let ready = vezasock_env(
            &local,
            &["ready", "staging", "green", "--component", "api"],
            &state_env,
        );
        assert_eq!(ready.code, Some(0), "{case}: ready: {ready:?}");
    }
    assert!(
        live_and_5 > 0,
        "{label}: no try filled the disk after HAProxy took the change"
    );
}
