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
