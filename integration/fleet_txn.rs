//! The per-edge transaction primitives (`vezasock txn prepare|commit|abort`) on one edge of the
//! lab, on every HAProxy version, for what `transaction.rs` does not cover: the files an open
//! transaction leaves (pending map file, `transaction.json`) and `status` while it is open, a
//! prepare the gate refuses, a second prepare while one is open, and an abort with nothing to
//! abort.

use vezasock::topology::Color;

use crate::fleet::{pending_map, transaction_file, Fleet, ENV};
use crate::support::haproxy::{per_version, Haproxy};
use crate::switch::{runtime_color, wait_running};

per_version!(
    status_shows_an_open_transaction_until_its_commit,
    |v: &Haproxy| {
        let fleet = Fleet::local(v, 1);
        let edge = &fleet.members[0].edge;
        let prep = fleet.edge_run(0, &["txn", "prepare", ENV, "green", "--id", "deploy-42"]);
        assert_eq!(prep.code, Some(0), "{}: {prep:?}", v.label);
        assert!(
            pending_map(edge).exists(),
            "{}: the pending map file",
            v.label
        );
        assert!(
            transaction_file(edge).exists(),
            "{}: transaction.json",
            v.label
        );
        let pending = std::fs::read_to_string(pending_map(edge)).unwrap_or_default();
        assert!(
            pending
                .lines()
                .any(|l| l.split_whitespace().eq([ENV, "green"])),
            "{}: the pending file names the new color: {pending:?}",
            v.label
        );
        assert_eq!(runtime_color(edge, ENV), Some(Color::Blue), "{}", v.label);

        let status = fleet.edge_run(0, &["status"]);
        assert_eq!(
            status.code,
            Some(6),
            "{}: open transaction: {status:?}",
            v.label
        );
        for word in ["deploy-42", ENV, "blue", "green", "expires"] {
            assert!(
                status.out.contains(word),
                "{}: status shows the transaction ({word}): {}",
                v.label,
                status.out
            );
        }

        let commit = fleet.edge_run(0, &["txn", "commit", "--id", "deploy-42"]);
        assert_eq!(commit.code, Some(0), "{}: {commit:?}", v.label);
        assert!(
            !pending_map(edge).exists(),
            "{}: pending renamed over",
            v.label
        );
        assert!(!transaction_file(edge).exists(), "{}: closed", v.label);
        fleet.assert_edge_on(0, ENV, Color::Green, "after the commit");
        let status = fleet.edge_run(0, &["status"]);
        assert_eq!(status.code, Some(0), "{}: closed: {status:?}", v.label);
    }
);

per_version!(a_prepare_the_gate_refuses_stages_nothing, |v: &Haproxy| {
    let mut fleet = Fleet::local(v, 1);
    assert!(fleet.members[0]
        .edge
        .set_backend_running("be_staging_api_green", "green_1", false));
    wait_running(
        &fleet.members[0].edge,
        "be_staging_api_green",
        "green_1",
        false,
        v.label,
    );
    let before = fleet.snapshot();
    let prep = fleet.edge_run(0, &["txn", "prepare", ENV, "green", "--id", "t-gate"]);
    assert_eq!(prep.code, Some(1), "{}: gate: {prep:?}", v.label);
    assert!(
        prep.err.contains("be_staging_api_green") || prep.err.contains("green_1"),
        "{}: says which server: {}",
        v.label,
        prep.err
    );
    assert_eq!(fleet.snapshot(), before, "{}: nothing staged", v.label);
    let commit = fleet.edge_run(0, &["txn", "commit", "--id", "t-gate"]);
    assert_ne!(
        commit.code,
        Some(0),
        "{}: nothing to commit: {commit:?}",
        v.label
    );
    assert_eq!(
        fleet.snapshot(),
        before,
        "{}: after the commit attempt",
        v.label
    );
});

per_version!(
    a_second_prepare_is_refused_while_one_is_open,
    |v: &Haproxy| {
        let fleet = Fleet::local(v, 1);
        let edge = &fleet.members[0].edge;
        let prep = fleet.edge_run(0, &["txn", "prepare", ENV, "green", "--id", "one"]);
        assert_eq!(prep.code, Some(0), "{}: {prep:?}", v.label);
        let second = fleet.edge_run(
            0,
            &[
                "txn",
                "prepare",
                "prod",
                "green",
                "--id",
                "two",
                "--no-wait",
            ],
        );
        assert_eq!(second.code, Some(4), "{}: held: {second:?}", v.label);
        assert!(
            second.err.contains("one"),
            "{}: names the open transaction: {}",
            v.label,
            second.err
        );
        let abort = fleet.edge_run(0, &["txn", "abort", "--id", "one"]);
        assert_eq!(abort.code, Some(0), "{}: {abort:?}", v.label);
        assert!(!pending_map(edge).exists(), "{}", v.label);
        assert!(!transaction_file(edge).exists(), "{}", v.label);
        // Nothing left to abort: still 0, and it says so.
        let again = fleet.edge_run(0, &["txn", "abort", "--id", "one"]);
        assert_eq!(again.code, Some(0), "{}: {again:?}", v.label);
        assert!(
            format!("{}{}", again.out, again.err)
                .to_lowercase()
                .contains("nothing"),
            "{}: says there was nothing to abort: {again:?}",
            v.label
        );
        fleet.assert_edge_on(0, ENV, Color::Blue, "after the abort");
        fleet.assert_edge_on(0, "prod", Color::Blue, "after the refused prepare");
    }
);

per_version!(
    a_play_that_prepares_on_every_edge_then_commits_on_every_edge_flips_them_all,
    |v: &Haproxy| {
        // What the Ansible example of docs/fleet.md does, host by host, with the primitives alone.
        let fleet = Fleet::local(v, 3);
        for i in 0..3 {
            let prep = fleet.edge_run(
                i,
                &[
                    "txn", "prepare", ENV, "green", "--id", "play-7", "--sha", "f00d",
                ],
            );
            assert_eq!(prep.code, Some(0), "{} edge {i}: {prep:?}", v.label);
        }
        assert_eq!(
            fleet.runtime_colors(ENV),
            vec![Some(Color::Blue); 3],
            "{}: nothing live moves at prepare",
            v.label
        );
        for i in 0..3 {
            let commit = fleet.edge_run(i, &["txn", "commit", "--id", "play-7"]);
            assert_eq!(commit.code, Some(0), "{} edge {i}: {commit:?}", v.label);
        }
        fleet.assert_all_on(ENV, Color::Green, "after the play");
        for m in &fleet.members {
            let newest = crate::fleet::history_lines(&m.edge, ENV);
            assert!(
                newest.first().is_some_and(|l| l.starts_with("green f00d ")),
                "{} {}: the history records the sha: {newest:?}",
                v.label,
                m.name
            );
        }
    }
);
