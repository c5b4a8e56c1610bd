//! The transaction's phase order on one real edge, on every HAProxy version (issue 19): the
//! edge-agent refuses a request out of order and changes nothing, and whatever order it is
//! driven in, the live map, the map file and the lock come out as before the transaction; a
//! prepared transaction is ended at once by `apply`, and `status` says it is prepared, not
//! interrupted.

use vezasock::demo::LocalEdge;
use vezasock::topology::Color;

use crate::fleet::{pending_map, transaction_file, Fleet, ENV};
use crate::support::haproxy::{per_version, Haproxy};
use crate::support::run::{vezasock, vezasock_stdin};
use crate::switch::{healthy_edge, runtime_color, state_dir};

const LOCK: &str = r#"{"op":"lock","env":"staging","color":"green","sha":"w","wait_healthy_ms":null,"lock_wait_ms":null,"who":"p","action":"switch"}"#;
const PREPARE: &str = r#"{"op":"prepare","id":"w","ttl_ms":60000}"#;

/// The edge's files and live map before anything: map file bytes, staging's and prod's
/// runtime colors.
type Snapshot = (Vec<u8>, Option<Color>, Option<Color>);

fn snapshot(edge: &LocalEdge) -> Snapshot {
    (
        std::fs::read(edge.topology.paths.active_color_map()).unwrap_or_default(),
        runtime_color(edge, "staging"),
        runtime_color(edge, "prod"),
    )
}

/// One agent session with `lines` on its stdin: its answers (`ok` of each).
fn agent(v: &Haproxy, edge: &LocalEdge, lines: &[&str]) -> Vec<serde_json::Value> {
    let input = lines.join("\n") + "\n";
    let run = vezasock_stdin(edge, &["edge-agent"], input.as_bytes());
    assert_eq!(run.code, Some(0), "{}: agent: {run:?}", v.label);
    run.out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {l:?}: {e}", v.label)))
        .collect()
}

fn oks(answers: &[serde_json::Value]) -> Vec<bool> {
    answers.iter().map(|a| a["ok"] == true).collect()
}

/// As before the transaction: map file, live map (every env), no pending or transaction file,
/// and the lock free (a switch that does not wait goes through).
fn assert_as_before(v: &Haproxy, edge: &LocalEdge, before: &Snapshot, what: &str) {
    assert_eq!(
        &snapshot(edge),
        before,
        "{}: {what}: map file and live map",
        v.label
    );
    let pending = edge
        .topology
        .paths
        .maps_dir
        .join("active-color.map.pending");
    assert!(!pending.exists(), "{}: {what}: no pending file", v.label);
    assert!(
        state_dir(edge).open_transaction().ok().flatten().is_none(),
        "{}: {what}: no open transaction",
        v.label
    );
    let status = vezasock(edge, &["status"]);
    assert_eq!(
        status.code,
        Some(0),
        "{}: {what}: status: {status:?}",
        v.label
    );
    let sw = vezasock(edge, &["switch", "prod", "green", "--no-wait"]);
    assert_eq!(
        sw.code,
        Some(0),
        "{}: {what}: the lock is free: {sw:?}",
        v.label
    );
}

per_version!(
    agent_commit_runtime_before_commit_disk_is_refused_and_abort_leaves_every_env_live,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let edge = healthy_edge(v, dir.path());
        let before = snapshot(&edge);
        let answers = agent(
            v,
            &edge,
            &[
                LOCK,
                PREPARE,
                r#"{"op":"commit-runtime"}"#,
                r#"{"op":"abort","why":"p"}"#,
            ],
        );
        assert_eq!(
            oks(&answers),
            [true, true, false, true],
            "{}: {answers:?}",
            v.label
        );
        assert_eq!(answers[2]["exit"], 1, "{}: {answers:?}", v.label);
        assert_as_before(v, &edge, &before, "commit-runtime out of order, then abort");
    }
);

per_version!(
    agent_record_before_verify_is_refused_and_records_nothing,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let edge = healthy_edge(v, dir.path());
        let before = snapshot(&edge);
        let answers = agent(v, &edge, &[LOCK, PREPARE, r#"{"op":"record"}"#]);
        assert_eq!(
            oks(&answers),
            [true, true, false],
            "{}: {answers:?}",
            v.label
        );
        let state = state_dir(&edge);
        assert_eq!(
            state.recorded_color("staging").ok().flatten(),
            None,
            "{}",
            v.label
        );
        assert!(
            state.history("staging").unwrap_or_default().is_empty(),
            "{}: no history line",
            v.label
        );
        assert_as_before(
            v,
            &edge,
            &before,
            "record out of order, then the end of input",
        );
    }
);

per_version!(
    agent_undo_before_any_commit_keeps_the_map_file,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let edge = healthy_edge(v, dir.path());
        let before = snapshot(&edge);
        let answers = agent(v, &edge, &[LOCK, PREPARE, r#"{"op":"undo","why":"p"}"#]);
        assert_eq!(
            oks(&answers),
            [true, true, true],
            "{}: {answers:?}",
            v.label
        );
        assert!(
            edge.topology.paths.active_color_map().exists(),
            "{}: active-color.map is there",
            v.label
        );
        assert_as_before(v, &edge, &before, "undo right after the prepare");
    }
);

per_version!(
    agent_lines_that_are_not_requests_are_answered_and_the_session_goes_on,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let edge = healthy_edge(v, dir.path());
        let mut input = b"\xff\xfe not utf-8\n{\"op\":\"explode\"}\n".to_vec();
        input.extend_from_slice(
            LOCK.replace("\"who\":\"p\"", "\"who\":\"a b c\"")
                .as_bytes(),
        );
        input.extend_from_slice(b"\n{\"op\":\"status\"}\n");
        let run = vezasock_stdin(&edge, &["edge-agent"], &input);
        assert_eq!(run.code, Some(0), "{}: {run:?}", v.label);
        let answers: Vec<serde_json::Value> = run
            .out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
            .collect();
        assert_eq!(
            oks(&answers),
            [false, false, false, true],
            "{}: {answers:?}",
            v.label
        );
        for a in &answers[..3] {
            assert_eq!(a["exit"], 2, "{}: {a:?}", v.label);
        }
        assert!(
            state_dir(&edge).open_transaction().ok().flatten().is_none(),
            "{}: nothing locked or staged for a bad who",
            v.label
        );
    }
);

per_version!(
    apply_aborts_a_prepared_transaction_at_once,
    |v: &Haproxy| {
        // An edge of the fleet lab: its topology is the one its HAProxy runs (apply plans
        // nothing else).
        let fleet = Fleet::local(v, 1);
        let edge = &fleet.members[0].edge;
        let before = snapshot(edge);
        let prep = fleet.edge_run(
            0,
            &[
                "txn",
                "prepare",
                ENV,
                "green",
                "--id",
                "L",
                "--expires",
                "10m",
            ],
        );
        assert_eq!(prep.code, Some(0), "{}: {prep:?}", v.label);
        let started = std::time::Instant::now();
        let apply = fleet.edge_run(0, &["apply", "--lock-timeout", "3s"]);
        assert_eq!(apply.code, Some(0), "{}: {apply:?}", v.label);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(3),
            "{}: no waiting for the expiry",
            v.label
        );
        assert!(
            apply.out.contains("aborted the open transaction L"),
            "{}: {}",
            v.label,
            apply.out
        );
        assert_eq!(snapshot(edge), before, "{}: map file and live map", v.label);
        assert!(!pending_map(edge).exists(), "{}: no pending file", v.label);
        assert!(!transaction_file(edge).exists(), "{}: closed", v.label);
        let status = fleet.edge_run(0, &["status"]);
        assert_eq!(status.code, Some(0), "{}: {status:?}", v.label);
    }
);

per_version!(
    status_shows_a_prepared_transaction_as_prepared_not_interrupted,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let edge = healthy_edge(v, dir.path());
        let prep = vezasock(
            &edge,
            &[
                "txn",
                "prepare",
                "staging",
                "green",
                "--id",
                "L",
                "--expires",
                "10m",
            ],
        );
        assert_eq!(prep.code, Some(0), "{}: {prep:?}", v.label);
        let status = vezasock(&edge, &["status"]);
        let all = format!("{}{}", status.out, status.err);
        assert!(all.contains("prepared, expires at"), "{}: {all}", v.label);
        assert!(!all.contains("INTERRUPTED"), "{}: {all}", v.label);
    }
);

per_version!(
    txn_abort_of_a_transaction_whose_commit_started_puts_the_edge_back,
    |v: &Haproxy| {
        let fleet = Fleet::local(v, 1);
        let edge = &fleet.members[0].edge;
        let before = snapshot(edge);
        let prep = fleet.edge_run(0, &["txn", "prepare", ENV, "green", "--id", "C"]);
        assert_eq!(prep.code, Some(0), "{}: {prep:?}", v.label);
        // What an agent session that ended right after its commit-disk leaves: the pending
        // file renamed over the map file (the map file says green, the runtime blue).
        std::fs::rename(pending_map(edge), edge.topology.paths.active_color_map())
            .unwrap_or_else(|e| panic!("{e}"));
        let abort = fleet.edge_run(0, &["txn", "abort", "--id", "C", "--json"]);
        assert_eq!(abort.code, Some(0), "{}: {abort:?}", v.label);
        assert!(
            abort.out.contains("\"result\":\"undone\""),
            "{}: {}",
            v.label,
            abort.out
        );
        assert_eq!(snapshot(edge).1, before.1, "{}: staging live", v.label);
        assert_eq!(snapshot(edge).2, before.2, "{}: prod live", v.label);
        assert_eq!(
            crate::switch::file_color(edge, ENV),
            Some(Color::Blue),
            "{}: map file back",
            v.label
        );
        assert!(!transaction_file(edge).exists(), "{}: closed", v.label);
        let status = fleet.edge_run(0, &["status"]);
        assert_eq!(status.code, Some(0), "{}: {status:?}", v.label);
    }
);

per_version!(
    apply_removes_a_pending_file_no_transaction_owns,
    |v: &Haproxy| {
        let fleet = Fleet::local(v, 1);
        let edge = &fleet.members[0].edge;
        std::fs::write(pending_map(edge), "staging green\n").unwrap_or_else(|e| panic!("{e}"));
        let apply = fleet.edge_run(0, &["apply"]);
        assert_eq!(apply.code, Some(0), "{}: {apply:?}", v.label);
        assert!(!pending_map(edge).exists(), "{}: {}", v.label, apply.out);
        assert!(
            apply.out.contains("no open transaction owns it"),
            "{}: {}",
            v.label,
            apply.out
        );
    }
);
