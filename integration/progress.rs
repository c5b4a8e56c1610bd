//! Progress on long waits (issue 23): on a terminal (util-linux `script`) a `--wait-healthy`
//! gate, a canary step, a fleet's prepares and a fleet's drain wait draw one progress line;
//! piped (a CI log) and under `--json` nothing of it is printed. One edge's `drain --wait`
//! countdown is checked in integration/servers.rs.

use vezasock::demo::load::Load;
use vezasock::demo::LocalEdge;

use crate::fleet::{Fleet, ENV};
use crate::servers::{open_stream, wait_busy};
use crate::support::haproxy::{per_version, Haproxy};
use crate::support::load::spec;
use crate::support::run::{vezasock, Run, Vezasock};
use crate::switch::{healthy_edge, wait_running};

/// The gate's progress line, up to its time (`waiting for green of staging to be healthy, 3s:
/// 2/3 ready (…)`).
const GATE_LINE: &str = "waiting for green of staging to be healthy, ";

/// The server the gate waits for: green_1 of staging's api.
const BACKEND: (&str, &str) = ("be_staging_api_green", "green_1");

/// Takes green_1 of staging's api down (its health check fails), then starts it again: its
/// check needs rise × inter (about 4 s) to call it up, so a switch to green made now waits for
/// it at the gate.
fn green_coming_back(e: &mut LocalEdge, label: &str) {
    let (backend, server) = BACKEND;
    assert!(e.set_backend_running(backend, server, false), "{label}");
    wait_running(e, backend, server, false, label);
    assert!(e.set_backend_running(backend, server, true), "{label}");
}

/// `switch staging green --wait-healthy 20s` (and `extra`) as given by `run`, after green_1
/// went down and was started again; `None` when `run` could not run it (no `script`).
fn switch_waiting(
    v: &Haproxy,
    extra: &[&str],
    run: impl Fn(&LocalEdge, &[&str]) -> Option<Run>,
) -> Option<Run> {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut e = healthy_edge(v, dir.path());
    green_coming_back(&mut e, v.label);
    let mut args = vec!["switch", "staging", "green", "--wait-healthy", "20s"];
    args.extend_from_slice(extra);
    let r = run(&e, &args)?;
    assert_eq!(r.code, Some(0), "{}: {r:?}", v.label);
    Some(r)
}

/// `vezasock ARGS` on the edge under a pseudo-terminal; `None` without `script`.
fn on_tty(e: &LocalEdge, args: &[&str]) -> Option<Run> {
    Vezasock::on_tty(args).map(|v| v.edge_paths(e).run())
}

/// `vezasock ARGS` on the edge, its output piped to files.
fn piped(e: &LocalEdge, args: &[&str]) -> Option<Run> {
    Some(vezasock(e, args))
}

per_version!(
    a_wait_for_healthy_shows_its_progress_on_a_terminal,
    |v: &Haproxy| {
        let Some(r) = switch_waiting(v, &[], on_tty) else {
            return;
        };
        let (label, out) = (v.label, &r.out);
        assert!(out.contains(GATE_LINE), "{label}: {out:?}");
        // Cut to the terminal's width (80 columns: `script` has no terminal of its own).
        assert!(
            out.contains("s: 2/3 ready (be_staging_api_"),
            "{label}: {out:?}"
        );
        // Drawn in place, and erased before the report.
        assert!(out.contains("\r\x1b[2K"), "{label}: {out:?}");
        assert!(out.contains("polls)"), "{label}: {out:?}");
    }
);

per_version!(
    a_wait_for_healthy_piped_prints_no_progress,
    |v: &Haproxy| {
        let Some(r) = switch_waiting(v, &[], piped) else {
            return;
        };
        let label = v.label;
        // The gate did wait (it polled), and said nothing of it while it did.
        assert!(r.out.contains("polls)"), "{label}: {r:?}");
        assert!(!r.err.contains("waiting for"), "{label}: {r:?}");
        assert!(
            !r.err.contains('\r') && !r.err.contains('\x1b'),
            "{label}: {r:?}"
        );
        assert!(!r.out.contains("waiting for"), "{label}: {r:?}");
    }
);

per_version!(
    a_wait_for_healthy_with_json_on_a_terminal_prints_only_its_json,
    |v: &Haproxy| {
        let Some(r) = switch_waiting(v, &["--json"], on_tty) else {
            return;
        };
        let label = v.label;
        assert!(!r.out.contains("waiting for"), "{label}: {r:?}");
        assert!(!r.out.contains('\x1b'), "{label}: {r:?}");
        let json: serde_json::Value = serde_json::from_str(r.out.trim())
            .unwrap_or_else(|e| panic!("{label}: {e}: {:?}", r.out));
        assert_eq!(json["to"], "green", "{label}: {json}");
        // The gate did wait: it polled the server until it came up.
        assert!(json.to_string().contains("polls)"), "{label}: {json}");
    }
);

per_version!(
    a_canary_step_shows_its_progress_on_a_terminal,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let e = healthy_edge(v, dir.path());
        let load = Load::start(&spec(e.http, &[("staging.veza.fr", "/")]));
        let args = [
            "canary",
            "staging",
            "green",
            "--steps",
            "50,100",
            "--interval",
            "2s",
            "--min-requests",
            "5",
        ];
        let Some(r) = on_tty(&e, &args) else {
            let _ = load.stop();
            return;
        };
        let report = load.stop();
        assert_eq!(r.code, Some(0), "{}: {r:?}", v.label);
        assert_eq!(report.failed(), 0, "{}: {report:?}", v.label);
        assert!(
            r.out.contains("canary staging at 50 % on green: "),
            "{}: {:?}",
            v.label,
            r.out
        );
        assert!(r.out.contains(" of 2s"), "{}: {:?}", v.label, r.out);
    }
);

per_version!(
    a_fleet_s_prepares_show_their_progress_on_a_terminal,
    |v: &Haproxy| {
        let mut fleet = Fleet::local(v, 2);
        green_coming_back(&mut fleet.members[1].edge, v.label);
        let file = fleet.file.display().to_string();
        let args = [
            "switch",
            "--fleet",
            &file,
            ENV,
            "green",
            "--wait-healthy",
            "20s",
        ];
        let Some(tty) = Vezasock::on_tty(&args) else {
            return;
        };
        let r = tty.who("it-fleet").run();
        assert_eq!(r.code, Some(0), "{}: {r:?}", v.label);
        assert!(
            r.out.contains("preparing staging → green on 2 edge(s): "),
            "{}: {:?}",
            v.label,
            r.out
        );
        assert!(
            r.out.contains(" of 2 prepared, "),
            "{}: {:?}",
            v.label,
            r.out
        );
        // The edges' own gates are the coordinator's to show: no second line fighting it.
        assert!(!r.out.contains(GATE_LINE), "{}: {:?}", v.label, r.out);
        fleet.assert_all_on(ENV, vezasock::topology::Color::Green, v.label);
    }
);

per_version!(
    a_fleet_drain_wait_shows_its_progress_on_a_terminal,
    |v: &Haproxy| {
        let fleet = Fleet::local(v, 2);
        let label = v.label;
        // Edge b's stream server holds a 4 s response; edge a's has nothing to wait for.
        let b = &fleet.members[1].edge;
        let stream = open_stream(b.http, "staging.veza.fr", 40);
        wait_busy(b, "be_staging_stream_blue", "blue_1", label);
        let file = fleet.file.display().to_string();
        let args = [
            "drain",
            "--fleet",
            &file,
            ENV,
            "blue",
            "--force",
            "--component",
            "stream",
            "--wait",
            "1500ms",
        ];
        let Some(tty) = Vezasock::on_tty(&args) else {
            let _ = stream.join();
            return;
        };
        let r = tty.who("it-fleet").run();
        let _ = stream.join();
        // Still busy on edge b at the deadline: exit 1, as one edge's drain --wait.
        assert_eq!(r.code, Some(1), "{label}: {r:?}");
        assert!(
            r.out.contains("draining on 2 edge(s): 1 of 2 done, "),
            "{label}: {:?}",
            r.out
        );
        // The edges' own countdowns are the coordinator's to show.
        assert!(!r.out.contains("draining: "), "{label}: {:?}", r.out);
    }
);
