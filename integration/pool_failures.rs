//! A pool change's failure paths (issue 25, docs/pools.md "Written through"), on real HAProxy
//! 2.6, 3.0, 3.2 and 3.4: prod web blue grown to three or four servers, then a change that
//! removes one (and, on 3.0+, adds one: 2.6 refuses `cookie` on an added server). A config
//! write that fails (`chattr +i`) puts every server back; a kill at either crash point is
//! finished by the next `apply`. No reload in any of it.

use std::path::Path;

use vezasock::demo::backend::Backend;
use vezasock::demo::LocalEdge;
use vezasock::topology::Topology;

use crate::moved_server::{ok, show_proc, vezasock_config_env, write_topology, Immutable};
use crate::pools::{
    assert_nothing, grown_edge, in_runtime, prod_web_blue, server, wait_server, BACKEND, WHO,
};
use crate::support::haproxy::{per_version, Haproxy};
use crate::support::run::{vezasock_config, Run};

/// Versions that take `cookie` on an added server (every server of a sticky backend has one).
fn adds_at_runtime(label: &str) -> bool {
    label != "2.6"
}

/// `topo` with its last prod web blue server (the highest number: names follow the order)
/// removed, the topology file written. Returns it and the name removed.
fn shrunk(file: &Path, topo: &Topology) -> (Topology, String) {
    let mut topo = topo.clone();
    let gone = prod_web_blue(&mut topo)
        .pop()
        .unwrap_or_else(|| panic!("no prod web blue server"));
    write_topology(file, &topo);
    (topo, gone.name)
}

/// `topo` with one more prod web blue server (its backend started and returned), the
/// topology file written.
fn grown(file: &Path, topo: &Topology) -> (Topology, Backend, u32) {
    let mut topo = topo.clone();
    let n = u32::try_from(prod_web_blue(&mut topo).len()).unwrap_or(0) + 1;
    let (backend, s) = server(n);
    prod_web_blue(&mut topo).push(s);
    write_topology(file, &topo);
    (topo, backend, n)
}

fn config_text(edge: &LocalEdge) -> String {
    std::fs::read_to_string(&edge.topology.paths.config).unwrap_or_default()
}

fn killed_at(file: &Path, point: &str, label: &str) {
    let killed = vezasock_config_env(file, &["apply"], &[("VEZASOCK_CRASH_AT", point)]);
    assert_eq!(killed.code, None, "{label}: killed at {point}: {killed:?}");
}

fn interrupted(file: &Path, label: &str) {
    let status = vezasock_config(file, WHO, &["status"]);
    assert_eq!(status.code, Some(6), "{label}: {status:?}");
    assert!(
        status.out.contains("INTERRUPTED"),
        "{label}: {}",
        status.out
    );
}

fn finished(file: &Path, label: &str) -> Run {
    let run = vezasock_config(file, WHO, &["apply"]);
    ok(&run, "apply after the kill", label);
    assert!(
        run.out.contains("closed interrupted operation"),
        "{label}: {}",
        run.out
    );
    let status = vezasock_config(file, WHO, &["status"]);
    assert_eq!(status.code, Some(0), "{label}: {status:?}");
    run
}

/// The bytes of the config, the server-state file and the shape summary.
fn files(edge: &LocalEdge) -> Vec<Option<Vec<u8>>> {
    let paths = &edge.topology.paths;
    let summary = vezasock::render::shape::summary_path(&paths.config);
    [&paths.config, &paths.server_state_file, &summary]
        .iter()
        .map(|p| std::fs::read(p).ok())
        .collect()
}

/// `apply` with the config made immutable: the write after the runtime change fails.
fn apply_frozen(edge: &LocalEdge, file: &Path) -> Run {
    let _frozen = Immutable::set(&edge.topology.paths.config);
    vezasock_config(file, WHO, &["apply"])
}

// A removed server (every version), then an added one (3.0+), whose config write fails: put
// back (the removed one added again, the added one deleted), the files as before, no reload;
// then the same apply succeeds.
per_version!(
    a_pool_change_whose_config_write_fails_is_put_back,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let label = v.label;
        let (edge, topo, _grown) = grown_edge(v, dir.path(), 2);
        let file = dir.path().join("topology.toml");
        let old = files(&edge);
        let reloads = show_proc(&edge).master.reloads;

        // 1. blue_3 removed, the write fails: added back.
        let (smaller, gone) = shrunk(&file, &topo);
        let failed = apply_frozen(&edge, &file);
        if adds_at_runtime(label) {
            assert_eq!(failed.code, Some(1), "{label}: {failed:?}");
            assert!(
                failed.err.contains("every server was put back")
                    && failed.err.contains("nothing changed"),
                "{label}: {}",
                failed.err
            );
        } else {
            // 2.6 adds it back without its sticky cookie: said, exit 5.
            assert_eq!(failed.code, Some(5), "{label}: {failed:?}");
            assert!(
                failed.err.contains("without its sticky cookie"),
                "{label}: {}",
                failed.err
            );
        }
        assert!(in_runtime(&edge, &gone), "{label}: {gone} back");
        wait_server(&edge, 3, label);
        assert!(files(&edge) == old, "{label}: the files restored");

        // 2. blue_4 added (3.0+), the write fails: deleted again.
        if adds_at_runtime(label) {
            let (_, _b4, n) = grown(&file, &topo);
            let failed = apply_frozen(&edge, &file);
            assert_eq!(failed.code, Some(1), "{label}: {failed:?}");
            assert!(
                failed.err.contains("every server was put back"),
                "{label}: {}",
                failed.err
            );
            assert!(!in_runtime(&edge, &format!("blue_{n}")), "{label}: deleted");
            assert!(files(&edge) == old, "{label}: the files restored");
            let journal =
                std::fs::read_to_string(edge.topology.paths.state_dir.join("journal.jsonl"))
                    .unwrap_or_default();
            assert!(journal.contains("rolled-back"), "{label}: {journal}");
        }
        assert_eq!(
            show_proc(&edge).master.reloads,
            reloads,
            "{label}: no reload"
        );

        // Nothing is left half done: the removal now goes through.
        write_topology(&file, &smaller);
        ok(&vezasock_config(&file, WHO, &["apply"]), "apply", label);
        assert!(!in_runtime(&edge, &gone), "{label}: removed");
        assert_nothing(&file, label);
        assert_eq!(
            show_proc(&edge).master.reloads,
            reloads,
            "{label}: still no reload"
        );
    }
);

// kill -9 after the runtime change (before any write), then after the config write (before
// the end): `status` says INTERRUPTED (exit 6), the next `apply` finishes the change (finding
// the server already added or gone) and closes the interrupted operation.
per_version!(
    an_apply_killed_mid_pool_change_is_finished_by_the_next_apply,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let label = v.label;
        let (edge, topo, _grown) = grown_edge(v, dir.path(), 3);
        let file = dir.path().join("topology.toml");
        let reloads = show_proc(&edge).master.reloads;

        // 1. Killed after the runtime change (3.0+: blue_5 added; 2.6: blue_4 removed).
        let (topo, _b5) = if adds_at_runtime(label) {
            let (topo, b5, n) = grown(&file, &topo);
            killed_at(&file, "after-pool-runtime", label);
            assert!(in_runtime(&edge, &format!("blue_{n}")), "{label}: added");
            assert!(
                !config_text(&edge).contains(&format!("server blue_{n} ")),
                "{label}: the old config"
            );
            (topo, Some(b5))
        } else {
            let (topo, gone) = shrunk(&file, &topo);
            killed_at(&file, "after-pool-runtime", label);
            assert!(!in_runtime(&edge, &gone), "{label}: deleted");
            assert!(
                config_text(&edge).contains(&format!("server {gone} ")),
                "{label}: the old config"
            );
            (topo, None)
        };
        interrupted(&file, label);
        let plan = vezasock_config(&file, WHO, &["plan"]);
        assert!(
            plan.out.contains(&format!("server {BACKEND}/blue_")),
            "{label}: planned again: {}",
            plan.out
        );
        let done = finished(&file, label);
        if adds_at_runtime(label) {
            assert!(
                done.out.contains("blue_5: added at")
                    && done.out.contains("found added by an earlier apply"),
                "{label}: {}",
                done.out
            );
            wait_server(&edge, 5, label);
        }
        assert_nothing(&file, label);

        // 2. Killed after the config write (the last server removed): the next apply finds
        // it all done.
        let (_, gone) = shrunk(&file, &topo);
        killed_at(&file, "after-pool-config", label);
        assert!(!in_runtime(&edge, &gone), "{label}: deleted");
        assert!(
            !config_text(&edge).contains(&format!("server {gone} ")),
            "{label}: config written"
        );
        interrupted(&file, label);
        let done = finished(&file, label);
        assert!(done.out.contains("Nothing to do"), "{label}: {}", done.out);
        assert_eq!(
            show_proc(&edge).master.reloads,
            reloads,
            "{label}: no reload"
        );
    }
);
