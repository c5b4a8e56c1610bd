//! `drain`, `maint` and `ready` with `--fleet` on three real local edges, on every HAProxy
//! version: the server change lands on every edge, or (refused by the live-color guard
//! anywhere) on none.

use vezasock::demo::LocalEdge;

use crate::fleet::{Fleet, ENV};
use crate::haproxy::{per_version, Haproxy};

/// The admin state (`maint`, `drain`, `ready`) of every server of `backend` on `edge`.
fn admin_states(edge: &LocalEdge, backend: &str) -> Vec<&'static str> {
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
