//! A fleet's exit code and the edge it names are those of the edge that decided (issue 19): a
//! busy edge that is not the first of the fleet file (held by a `txn prepare` on it and waited
//! for, or locked by another process with `--no-wait`) is exit 4 naming it; an ssh edge that
//! cannot be reached is exit 3 naming it; nothing changes on any edge. `status --fleet` lists
//! a transaction staged on an edge with `txn prepare` among the open transactions.

use vezasock::state::{EdgeLock, Holder, Wait};
use vezasock::topology::Color;

use crate::fleet::{transaction_file, Fleet, Reach, ENV};
use crate::support::haproxy::{per_version, Haproxy};
use crate::support::run::Run;
use crate::switch::state_dir;

/// The coordinator's error line (the message; each edge's line follows; ssh's own
/// complaints may come before it).
fn headline(run: &Run) -> &str {
    run.err
        .lines()
        .find(|l| l.starts_with("vezasock switch: "))
        .unwrap_or_default()
}

/// Asserts a refused fleet switch: `code`, a headline naming `edge` (and no other edge), and
/// every edge still serving blue with no transaction left but `kept`'s.
fn refused_naming(fleet: &Fleet, run: &Run, code: i32, edge: &str, kept: Option<usize>) {
    let label = fleet.label;
    assert_eq!(run.code, Some(code), "{label}: {run:?}");
    let line = headline(run);
    assert!(
        line.contains(&format!("on edge {edge}:")),
        "{label}: the headline names {edge}: {line:?}\n{run:?}"
    );
    for m in fleet.members.iter().filter(|m| m.name != edge) {
        assert!(
            !line.contains(&m.name),
            "{label}: the headline names {} too: {line:?}",
            m.name
        );
    }
    assert_eq!(
        fleet.runtime_colors(ENV),
        vec![Some(Color::Blue); fleet.members.len()],
        "{label}: nothing flipped"
    );
    for (i, m) in fleet.members.iter().enumerate() {
        assert_eq!(
            transaction_file(&m.edge).exists(),
            kept == Some(i),
            "{label} {}: transaction file",
            m.name
        );
    }
}

per_version!(
    a_fleet_switch_waiting_on_an_edge_held_by_txn_prepare_exits_4_naming_it,
    |v: &Haproxy| {
        let fleet = Fleet::local(v, 3);
        let prep = fleet.edge_run(1, &["txn", "prepare", ENV, "green", "--id", "held-b"]);
        assert_eq!(prep.code, Some(0), "{}: {prep:?}", v.label);
        let run = fleet.run(&["switch", ENV, "green", "--lock-timeout", "1s"]);
        refused_naming(&fleet, &run, 4, "edge-b", Some(1));
        assert!(
            run.err.contains("held-b"),
            "{}: the holder: {run:?}",
            v.label
        );
        let json = fleet.run(&["switch", ENV, "green", "--lock-timeout", "1s", "--json"]);
        let j: serde_json::Value = serde_json::from_str(json.out.trim())
            .unwrap_or_else(|e| panic!("{}: {e}: {json:?}", v.label));
        assert_eq!(j["exit"], 4, "{}: {j}", v.label);
        let abort = fleet.edge_run(1, &["txn", "abort", "--id", "held-b"]);
        assert_eq!(abort.code, Some(0), "{}: {abort:?}", v.label);
    }
);

per_version!(
    a_fleet_switch_without_waiting_on_a_locked_edge_exits_4_naming_it,
    |v: &Haproxy| {
        let fleet = Fleet::local(v, 3);
        let held = EdgeLock::acquire(
            &state_dir(&fleet.members[2].edge),
            Wait::No,
            Holder::current(),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", v.label));
        let run = fleet.run(&["switch", ENV, "green", "--no-wait"]);
        refused_naming(&fleet, &run, 4, "edge-c", None);
        assert!(
            run.err.contains(&format!("pid {}", std::process::id())),
            "{}: the holder: {run:?}",
            v.label
        );
        drop(held);
    }
);

per_version!(
    a_fleet_switch_whose_ssh_edge_is_unreachable_exits_3_naming_it,
    |v: &Haproxy| {
        let Some(mut fleet) = Fleet::start(v, &[Reach::Local, Reach::Ssh]) else {
            return;
        };
        // The fleet file still names the sshd's port: nothing listens there any more.
        drop(fleet.sshd.take());
        let run = fleet.run(&["switch", ENV, "green"]);
        refused_naming(&fleet, &run, 3, "edge-b", None);
    }
);

per_version!(
    status_fleet_lists_a_transaction_staged_on_an_edge_with_txn_prepare,
    |v: &Haproxy| {
        let fleet = Fleet::local(v, 2);
        let prep = fleet.edge_run(1, &["txn", "prepare", ENV, "green", "--id", "staged-7"]);
        assert_eq!(prep.code, Some(0), "{}: {prep:?}", v.label);
        let status = fleet.run(&["status", "--json"]);
        assert_eq!(status.code, Some(6), "{}: {status:?}", v.label);
        let s: serde_json::Value = serde_json::from_str(status.out.trim())
            .unwrap_or_else(|e| panic!("{}: {e}: {status:?}", v.label));
        let open: Vec<&str> = s["open_transactions"]
            .as_array()
            .map(|a| a.iter().filter_map(|t| t.as_str()).collect())
            .unwrap_or_default();
        assert_eq!(open.len(), 1, "{}: {s}", v.label);
        assert!(
            open[0].starts_with("on edge edge-b: transaction staged-7 prepared"),
            "{}: {open:?}",
            v.label
        );
        let text = fleet.run(&["status"]);
        assert!(
            text.out
                .contains("OPEN TRANSACTION on edge edge-b: transaction staged-7"),
            "{}: {text:?}",
            v.label
        );
        let abort = fleet.edge_run(1, &["txn", "abort", "--id", "staged-7"]);
        assert_eq!(abort.code, Some(0), "{}: {abort:?}", v.label);
        let after = fleet.run(&["status", "--json"]);
        assert_eq!(after.code, Some(0), "{}: {after:?}", v.label);
    }
);
