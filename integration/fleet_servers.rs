//! `drain`, `maint` and `ready` with `--fleet` on three real local edges, on every HAProxy
//! version: the server change lands on every edge, or (refused by the live-color guard
//! anywhere) on none; `drain --wait` waits on every edge, and its `--then` follows only when
//! every edge drained.

use std::time::{Duration, Instant};

use vezasock::demo::LocalEdge;

use crate::fleet::{Fleet, ENV};
use crate::support::haproxy::{per_version, Haproxy};

/// The admin state (`maint`, `drain`, `ready`) of every server of `backend` on `edge`.
pub fn admin_states(edge: &LocalEdge, backend: &str) -> Vec<&'static str> {
    crate::switch::rt().block_on(async {
        let mut s = crate::switch::admin_session(edge, "admin socket").await;
        let state = s
            .show_servers_state(Some(backend))
            .await
            .unwrap_or_else(|e| panic!("show servers state: {e}"));
        state
            .rows
            .iter()
            .map(|r| {
                if r.admin.is_maint() {
                    "maint"
                } else if r.admin.is_drain() {
                    "drain"
                } else {
                    "ready"
                }
            })
            .collect()
    })
}

per_version!(
    a_fleet_maint_then_ready_changes_every_edge,
    |v: &Haproxy| {
        let fleet = Fleet::local(v, 3);
        let run = fleet.run(&["maint", ENV, "green", "--json"]);
        assert_eq!(run.code, Some(0), "{}: {run:?}", v.label);
        assert!(run.out.contains("\"ok\":true"), "{}: {}", v.label, run.out);
        for m in &fleet.members {
            let e = &m.edge;
            assert_eq!(
                admin_states(e, "be_staging_api_green"),
                ["maint"],
                "{}: {}",
                v.label,
                m.name
            );
            assert_eq!(
                admin_states(e, "be_staging_api_blue"),
                ["ready"],
                "{}: {}",
                v.label,
                m.name
            );
        }
        let run = fleet.run(&["ready", ENV, "green"]);
        assert_eq!(run.code, Some(0), "{}: {run:?}", v.label);
        for m in &fleet.members {
            assert_eq!(
                admin_states(&m.edge, "be_staging_api_green"),
                ["ready"],
                "{}: {}",
                v.label,
                m.name
            );
        }
    }
);

per_version!(
    a_fleet_maint_of_the_live_color_is_refused_on_every_edge,
    |v: &Haproxy| {
        let fleet = Fleet::local(v, 3);
        let run = fleet.run(&["maint", ENV, "blue"]);
        assert_eq!(run.code, Some(1), "{}: {run:?}", v.label);
        assert!(
            run.err.contains("nothing changed on any edge"),
            "{}: {}",
            v.label,
            run.err
        );
        for m in &fleet.members {
            assert_eq!(
                admin_states(&m.edge, "be_staging_api_blue"),
                ["ready"],
                "{}: {}",
                v.label,
                m.name
            );
        }
    }
);

/// `drain staging blue --force --component stream --wait W [--then maint]`.
fn drain_stream(fleet: &Fleet, wait: &str, then: bool) -> crate::support::run::Run {
    let mut args = vec![
        "drain",
        ENV,
        "blue",
        "--force",
        "--component",
        "stream",
        "--wait",
        wait,
    ];
    if then {
        args.extend(["--then", "maint"]);
    }
    fleet.run(&args)
}

per_version!(
    a_fleet_drain_waits_for_every_edge_then_maint_on_every_edge,
    |v: &Haproxy| {
        let fleet = Fleet::local(v, 2);
        // A 1.5 s streaming response through edge-b holds its drained server.
        let busy = &fleet.members[1].edge;
        let stream = crate::servers::open_stream(busy.http, "staging.veza.fr", 15);
        crate::servers::wait_busy(busy, "be_staging_stream_blue", "blue_1", v.label);
        let t0 = Instant::now();
        let run = drain_stream(&fleet, "10s", true);
        let took = t0.elapsed();
        assert_eq!(run.code, Some(0), "{}: {run:?}", v.label);
        let (body, _) = stream.join().unwrap_or_else(|_| panic!("stream thread"));
        assert_eq!(
            body.matches("staging stream blue").count(),
            15,
            "{}: the drained stream was cut: {body}",
            v.label
        );
        assert!(
            took >= Duration::from_millis(500),
            "{}: returned after {took:?}, before the stream ended",
            v.label
        );
        for m in &fleet.members {
            assert_eq!(
                admin_states(&m.edge, "be_staging_stream_blue"),
                ["maint"],
                "{}: {}: {run:?}",
                v.label,
                m.name
            );
        }
    }
);

per_version!(
    a_fleet_drain_still_busy_on_one_edge_is_exit_1_and_every_edge_stays_in_drain,
    |v: &Haproxy| {
        let fleet = Fleet::local(v, 2);
        let busy = &fleet.members[1].edge;
        let stream = crate::servers::open_stream(busy.http, "staging.veza.fr", 15);
        crate::servers::wait_busy(busy, "be_staging_stream_blue", "blue_1", v.label);
        let run = drain_stream(&fleet, "300ms", true);
        assert_eq!(run.code, Some(1), "{}: {run:?}", v.label);
        assert!(
            run.err.contains("edge-b") && run.err.contains("be_staging_stream_blue/blue_1"),
            "{}: names the busy edge and server: {run:?}",
            v.label
        );
        for m in &fleet.members {
            assert_eq!(
                admin_states(&m.edge, "be_staging_stream_blue"),
                ["drain"],
                "{}: {}: no `--then` before every edge drained: {run:?}",
                v.label,
                m.name
            );
        }
        let _ = stream.join();
    }
);

per_version!(
    a_fleet_maint_live_on_an_edge_with_a_full_disk_exits_5_never_3,
    fleet_maint_on_a_full_disk
);

/// The chaos run's seed 3401 on 3.4 (`fleet-full-state-dir`, step 30): `maint --fleet` where
/// one edge's state dir was full; that edge's HAProxy took the change, its write-through found
/// the disk full, the other edges were put back, and the fleet exited 3 ("nothing changed")
/// with the servers of that edge in MAINT. Edge-b's state dir is a tmpfs whose journal is
/// padded so that the disk fills at every point of the change in turn (steps of 128 bytes):
/// an exit of 1, 3 or 4 leaves edge-b's servers ready.
fn fleet_maint_on_a_full_disk(v: &Haproxy) {
    let label = v.label;
    let fleet = Fleet::local(v, 2);
    let b = &fleet.members[1];
    let small = fleet.dir.path().join("small-state");
    let Some(tmpfs) = crate::support::tmpfs::Tmpfs::mount(&small, 256) else {
        assert!(
            std::env::var("VEZASOCK_REQUIRE_ALL_VERSIONS").is_err(),
            "{label}: cannot mount a tmpfs (not root?)"
        );
        eprintln!("SKIP {label}: cannot mount a tmpfs (not root?)");
        return;
    };
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", b.edge.topology.paths.state_dir.display()))
        .arg(&small)
        .status()
        .is_ok_and(|s| s.success());
    assert!(copied, "{label}: cp -a the state dir");
    // The fleet file names edge-b by a topology copy whose state dir is the tmpfs.
    let mut topo = b.edge.topology.clone();
    topo.paths.state_dir = small.clone();
    let config = fleet.dir.path().join("edge-b-small.toml");
    std::fs::write(&config, crate::support::topology::to_toml(&topo))
        .unwrap_or_else(|e| panic!("{e}"));
    let text = std::fs::read_to_string(&fleet.file).unwrap_or_else(|e| panic!("{e}"));
    let file = fleet.dir.path().join("fleet-small.toml");
    let was = format!("config = {:?}", b.config.display().to_string());
    let now = format!("config = {:?}", config.display().to_string());
    std::fs::write(&file, text.replace(&was, &now)).unwrap_or_else(|e| panic!("{e}"));
    let journal = small.join("journal.jsonl");
    let mut live = 0;
    for pad in (0..4096usize).step_by(128) {
        let line = format!("{{\"pad\":\"{}\"}}\n", "x".repeat(pad.saturating_sub(11)));
        std::fs::write(&journal, line).unwrap_or_else(|e| panic!("{e}"));
        let _ = std::fs::remove_file(small.join("vezasock.lock.holder"));
        tmpfs
            .fill(4096)
            .unwrap_or_else(|e| panic!("{label}: filler: {e}"));
        let run = fleet.run_file(&file, &["maint", ENV, "green"], &[]);
        tmpfs.unfill();
        let states = admin_states(&b.edge, "be_staging_api_green");
        let case = format!("{label}, journal padded to {pad} bytes");
        if matches!(run.code, Some(1 | 3 | 4)) {
            assert_eq!(states, ["ready"], "{case}: {run:?}");
        }
        if run.code == Some(5) && states == ["maint"] {
            live += 1;
        }
        let back = fleet.run_file(&file, &["ready", ENV, "green"], &[]);
        assert_eq!(back.code, Some(0), "{case}: ready: {back:?}");
    }
    // The disk filled after edge-b's HAProxy took the change at least once.
    assert!(live > 0, "{label}: no try failed with the change live");
}
