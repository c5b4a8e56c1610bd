//! `vezasock status --watch`: without a terminal it prints plain snapshots, each headed by its
//! time; on a pseudo-terminal (util-linux `script`) it redraws the screen and shows a flip made
//! from another shell within one interval. `status --fleet --watch` the same on the fleet lab,
//! an edge not reached shown as such while the watch goes on.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::canary::wait_entry;
use crate::fleet::{Fleet, ENV};
use crate::support::haproxy::{per_version, Haproxy};
use crate::support::run::{vezasock, vezasock_env, Running, Vezasock};
use crate::switch::healthy_edge;

per_version!(
    status_watch_without_a_terminal_prints_plain_snapshots,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let e = healthy_edge(v, dir.path());
        let label = v.label;
        let run = vezasock_env(&e, &["status", "--watch", "200ms", "--count", "3"], &[]);
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        assert_eq!(
            run.out.matches("every 200ms: vezasock status, ").count(),
            3,
            "{label}: {run:?}"
        );
        assert_eq!(
            run.out.matches("staging: live blue").count(),
            3,
            "{label}: {run:?}"
        );
        assert!(!run.out.contains('\x1b'), "{label}: {run:?}");
    }
);

per_version!(
    status_watch_on_a_terminal_shows_a_flip_within_one_interval,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let e = healthy_edge(v, dir.path());
        let label = v.label;
        let interval = Duration::from_millis(500);
        let inner = format!(
            "'{}' status staging --watch 500ms --count 20",
            env!("CARGO_BIN_EXE_vezasock")
        );
        let mut child = Command::new("script")
            .args(["-q", "-e", "-c", &inner, "/dev/null"])
            .env_remove("VEZASOCK_CONFIG")
            .envs(e.cli_env())
            .env("VEZASOCK_WHO", "it-test")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("script: {err}"));
        let seen: Arc<Mutex<(String, Option<Instant>)>> = Arc::default();
        let mut stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        let reader = {
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = stdout.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if let Ok(mut s) = seen.lock() {
                        s.0.push_str(&String::from_utf8_lossy(&buf[..n]));
                        if s.1.is_none() && s.0.contains("staging: live green") {
                            s.1 = Some(Instant::now());
                        }
                    }
                }
            })
        };
        std::thread::sleep(Duration::from_millis(1500));
        let run = vezasock(&e, &["switch", "staging", "green"]);
        let switched = Instant::now();
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        let status = child.wait().unwrap_or_else(|err| panic!("{err}"));
        let _ = reader.join();
        let (out, green_at) = seen.lock().map(|s| s.clone()).unwrap_or_default();
        assert!(status.success(), "{label}: {status:?} {out}");
        assert!(
            out.contains("\x1b[H\x1b[2J"),
            "{label}: not redrawn: {out:?}"
        );
        assert!(out.contains("staging: live blue"), "{label}: {out}");
        let green_at = green_at.unwrap_or_else(|| panic!("{label}: the flip never showed: {out}"));
        let late = green_at.saturating_duration_since(switched);
        assert!(
            late <= interval + Duration::from_millis(700),
            "{label}: shown {late:?} after the flip"
        );
    }
);

/// Waits (at most `bound`) until the run's output so far holds `needle` after byte `from`;
/// the byte where it ends.
fn wait_for_output(running: &Running, needle: &str, from: usize, bound: Duration) -> usize {
    let deadline = Instant::now() + bound;
    loop {
        let (out, err) = running.output_so_far();
        if let Some(i) = out.get(from..).and_then(|rest| rest.find(needle)) {
            return from + i + needle.len();
        }
        assert!(
            Instant::now() < deadline,
            "{needle:?} not shown within {bound:?}\nstdout:\n{out}\nstderr:\n{err}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

per_version!(
    status_fleet_watch_without_a_terminal_prints_plain_snapshots,
    |v: &Haproxy| {
        let fleet = Fleet::local(v, 2);
        let label = v.label;
        let run = fleet.run(&["status", "--watch", "200ms", "--count", "3"]);
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        for (needle, n) in [
            ("every 200ms: vezasock status --fleet, ", 3),
            ("2 of 2 edge(s) reached", 3),
            ("edge edge-a ", 3),
            ("edge edge-b ", 3),
            ("every edge agrees on every env's color", 3),
        ] {
            assert_eq!(
                run.out.matches(needle).count(),
                n,
                "{label}: {needle}: {run:?}"
            );
        }
        assert!(!run.out.contains('\x1b'), "{label}: {run:?}");
        assert!(!run.out.contains("DISAGREE"), "{label}: {run:?}");
    }
);

per_version!(
    status_fleet_watch_shows_an_edge_not_reached_and_goes_on,
    |v: &Haproxy| {
        let mut fleet = Fleet::local(v, 2);
        fleet.kill_edge(1);
        let running = fleet.spawn(&["status", "--watch", "300ms", "--count", "1000"], &[]);
        let seen = wait_for_output(&running, "edge edge-b", 0, Duration::from_secs(30));
        let seen = wait_for_output(&running, "NOT REACHED", seen, Duration::from_secs(1));
        wait_for_output(
            &running,
            "1 of 2 edge(s) reached",
            0,
            Duration::from_secs(1),
        );
        // Edge b back: a later snapshot reaches it again, the watch never stopped.
        fleet.restart_edge(1);
        wait_for_output(
            &running,
            "2 of 2 edge(s) reached",
            seen,
            Duration::from_secs(30),
        );
        let (_, err) = running.output_so_far();
        let run = running.kill();
        assert_eq!(
            run.code, None,
            "{}: it stopped by itself: {run:?} {err}",
            v.label
        );
    }
);

per_version!(
    status_fleet_watch_on_a_terminal_shows_edges_that_disagree_within_one_interval,
    |v: &Haproxy| {
        let fleet = Fleet::local(v, 2);
        let label = v.label;
        let file = fleet.file.display().to_string();
        let args = [
            "status", "--fleet", &file, "--watch", "500ms", "--count", "1000",
        ];
        let Some(tty) = Vezasock::on_tty(&args) else {
            return;
        };
        let running = tty.spawn();
        let seen = wait_for_output(
            &running,
            "2 of 2 edge(s) reached",
            0,
            Duration::from_secs(30),
        );
        // Edge a alone to green: the edges disagree on staging.
        let run = fleet.edge_run(0, &["switch", ENV, "green"]);
        let switched = Instant::now();
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        let marker = "!!! EDGES DISAGREE on 1 env(s) !!!";
        wait_for_output(&running, marker, seen, Duration::from_secs(10));
        let late = switched.elapsed();
        let run = running.kill();
        assert!(
            run.out.contains("\x1b[H\x1b[2J"),
            "{label}: not redrawn: {:?}",
            run.out
        );
        assert!(
            run.out
                .contains("DRIFT across edges on staging: edge-a=green edge-b=blue"),
            "{label}: {:?}",
            run.out
        );
        // One interval, the round that reads both edges, and the 50 ms this test polls at.
        assert!(
            late <= Duration::from_millis(2500),
            "{label}: shown {late:?} after the flip"
        );
    }
);

per_version!(
    status_fleet_watch_shows_a_canary_in_progress_with_its_percent,
    |v: &Haproxy| {
        let fleet = Fleet::local(v, 2);
        let label = v.label;
        // A canary on edge a alone, held at its first step (its analysis needs more requests
        // than come).
        let canary = Vezasock::config(
            &fleet.members[0].config,
            &[
                "canary",
                ENV,
                "green",
                "--steps",
                "30,100",
                "--interval",
                "30s",
                "--min-requests",
                "1000000",
            ],
        )
        .spawn();
        wait_entry(
            &fleet.members[0].edge,
            "green:30",
            Duration::from_secs(10),
            label,
        );
        let run = fleet.run(&["status", "--watch", "200ms", "--count", "2"]);
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        assert_eq!(
            run.out.matches("  canary staging: 30 % on green\n").count(),
            2,
            "{label}: {run:?}"
        );
        let abort = fleet.edge_run(0, &["canary", ENV, "--abort"]);
        assert_eq!(abort.code, Some(0), "{label}: {abort:?}");
        let ended = canary.finish(Duration::from_secs(60));
        assert_eq!(ended.code, Some(7), "{label}: {ended:?}");
        let run = fleet.run(&["status", "--watch", "200ms", "--count", "1"]);
        assert!(!run.out.contains("canary staging"), "{label}: {run:?}");
    }
);

/// A fleet file that does not load stops the watch before its first snapshot (exit 2), as
/// `status --fleet` does; no HAProxy needed.
#[test]
fn status_fleet_watch_with_a_fleet_file_that_does_not_load_is_exit_2_at_once() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("fleet.toml");
    std::fs::write(&file, "[[edge]\nname = ").unwrap_or_else(|e| panic!("{e}"));
    let run = Vezasock::fleet(&file, &["status", "--watch", "100ms", "--count", "3"]).run();
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(!run.out.contains("every "), "{run:?}");
    assert!(run.err.contains("vezasock status: "), "{run:?}");
}
