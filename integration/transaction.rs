//! `vezasock txn prepare|commit|abort` on one real edge, on every HAProxy version: a prepared
//! transaction changes nothing live and holds the edge; its commit flips and records; its abort
//! leaves no trace but the journal; an expired one is aborted by the next change.

use std::time::Duration;

use vezasock::topology::Color;

use crate::support::haproxy::{per_version, Haproxy};
use crate::support::run::vezasock;
use crate::switch::{file_color, healthy_edge, runtime_color, state_dir, worker_pid};

fn history_lines(edge: &vezasock::demo::LocalEdge, env: &str) -> usize {
    state_dir(edge)
        .history(env)
        .unwrap_or_else(|e| panic!("history: {e}"))
        .len()
}

per_version!(
    a_prepared_transaction_changes_nothing_live_until_its_commit,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let edge = healthy_edge(v, dir.path());
        let pid = worker_pid(&edge);
        let run = vezasock(&edge, &["txn", "prepare", "staging", "green", "--id", "t1"]);
        assert_eq!(run.code, Some(0), "{}: prepare: {run:?}", v.label);
        assert!(
            run.out.contains("transaction t1 prepared"),
            "{}: {}",
            v.label,
            run.out
        );
        assert_eq!(
            runtime_color(&edge, "staging"),
            Some(Color::Blue),
            "{}",
            v.label
        );
        assert_eq!(
            file_color(&edge, "staging"),
            Some(Color::Blue),
            "{}",
            v.label
        );
        assert!(state_dir(&edge).open_transaction().ok().flatten().is_some());

        // Another change waits for the transaction (here: not at all, exit 4).
        let other = vezasock(&edge, &["switch", "prod", "green", "--no-wait"]);
        assert_eq!(other.code, Some(4), "{}: held edge: {other:?}", v.label);
        assert!(
            other.err.contains("transaction t1"),
            "{}: {}",
            v.label,
            other.err
        );

        let before = history_lines(&edge, "staging");
        let commit = vezasock(&edge, &["txn", "commit", "--id", "t1", "--json"]);
        assert_eq!(commit.code, Some(0), "{}: commit: {commit:?}", v.label);
        assert!(
            commit.out.contains("\"result\":\"committed\""),
            "{}: {}",
            v.label,
            commit.out
        );
        assert_eq!(
            runtime_color(&edge, "staging"),
            Some(Color::Green),
            "{}",
            v.label
        );
        assert_eq!(
            runtime_color(&edge, "prod"),
            Some(Color::Blue),
            "{}: other env",
            v.label
        );
        assert_eq!(
            file_color(&edge, "staging"),
            Some(Color::Green),
            "{}",
            v.label
        );
        let state = state_dir(&edge);
        assert_eq!(
            state.recorded_color("staging").ok().flatten(),
            Some(Color::Green)
        );
        assert_eq!(history_lines(&edge, "staging"), before + 1, "{}", v.label);
        assert!(
            state.open_transaction().ok().flatten().is_none(),
            "{}",
            v.label
        );
        assert_eq!(worker_pid(&edge), pid, "{}: no reload", v.label);
        let again = vezasock(&edge, &["txn", "commit", "--id", "t1"]);
        assert_eq!(
            again.code,
            Some(1),
            "{}: a second commit: {again:?}",
            v.label
        );
    }
);

per_version!(
    an_aborted_transaction_leaves_the_edge_as_it_was,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let edge = healthy_edge(v, dir.path());
        let map_before =
            std::fs::read(edge.topology.paths.active_color_map()).unwrap_or_else(|e| panic!("{e}"));
        let prep = vezasock(&edge, &["txn", "prepare", "staging", "green", "--id", "t2"]);
        assert_eq!(prep.code, Some(0), "{}: {prep:?}", v.label);
        let abort = vezasock(&edge, &["txn", "abort", "--id", "t2"]);
        assert_eq!(abort.code, Some(0), "{}: {abort:?}", v.label);
        assert_eq!(
            runtime_color(&edge, "staging"),
            Some(Color::Blue),
            "{}",
            v.label
        );
        let map_after =
            std::fs::read(edge.topology.paths.active_color_map()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(map_before, map_after, "{}: map file unchanged", v.label);
        let pending = edge
            .topology
            .paths
            .maps_dir
            .join("active-color.map.pending");
        assert!(!pending.exists(), "{}: no pending file left", v.label);
        assert!(state_dir(&edge).open_transaction().ok().flatten().is_none());
        assert_eq!(history_lines(&edge, "staging"), 0, "{}", v.label);
        // The edge is free again: a plain switch goes through.
        let sw = vezasock(&edge, &["switch", "staging", "green", "--no-wait"]);
        assert_eq!(sw.code, Some(0), "{}: {sw:?}", v.label);
        assert_eq!(
            runtime_color(&edge, "staging"),
            Some(Color::Green),
            "{}",
            v.label
        );
    }
);

per_version!(
    an_expired_transaction_is_aborted_by_the_next_change,
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
                "t3",
                "--expires",
                "1s",
            ],
        );
        assert_eq!(prep.code, Some(0), "{}: {prep:?}", v.label);
        std::thread::sleep(Duration::from_millis(2100));
        let commit = vezasock(&edge, &["txn", "commit", "--id", "t3"]);
        assert_eq!(
            commit.code,
            Some(1),
            "{}: commit after expiry: {commit:?}",
            v.label
        );
        let sw = vezasock(&edge, &["switch", "prod", "green", "--no-wait"]);
        assert_eq!(sw.code, Some(0), "{}: {sw:?}", v.label);
        assert!(
            sw.err.contains("aborted the expired transaction t3"),
            "{}: {}",
            v.label,
            sw.err
        );
        assert_eq!(
            runtime_color(&edge, "staging"),
            Some(Color::Blue),
            "{}",
            v.label
        );
        assert_eq!(
            runtime_color(&edge, "prod"),
            Some(Color::Green),
            "{}",
            v.label
        );
        assert!(state_dir(&edge).open_transaction().ok().flatten().is_none());
    }
);
