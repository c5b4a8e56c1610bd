//! The local edge (`vezasock::demo::LocalEdge`): the embedded veza topology rendered for
//! loopback, started on every HAProxy version, answering by Host header and path.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use vezasock::demo::http::get;
use vezasock::demo::LocalEdge;
use vezasock::topology::Topology;

use crate::support::haproxy::{self, per_version, Haproxy};

pub fn start(v: &haproxy::Haproxy, dir: &std::path::Path) -> LocalEdge {
    let topo = Topology::embedded_default().unwrap_or_else(|e| panic!("embedded default: {e}"));
    LocalEdge::start(&topo, &v.bin, dir, &BTreeMap::new())
        .unwrap_or_else(|e| panic!("{}: {e}", v.label))
}

/// Polls until `host path` answers 200 with `want` (health checks take a moment to mark
/// servers UP), for at most 15 s; then fails with the last answer and HAProxy's log.
pub fn wait_answer(edge: &LocalEdge, host: &str, path: &str, want: &str, label: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got = get(edge.http, host, path, Duration::from_secs(5));
        if let Ok(a) = &got {
            if a.status == 200 && a.body == want {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{label}: {host}{path} gave {got:?}, want {want:?}\n{}",
            edge.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

per_version!(
    the_embedded_edge_routes_by_host_and_path_on_every_version,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let edge = start(v, dir.path());
        let t = Duration::from_secs(5);
        let cases = [
            ("staging.veza.fr", "/", "staging web blue"),
            ("staging.veza.fr", "/api/users", "staging api blue"),
            ("veza.fr", "/stream/x", "prod stream blue"),
            ("www.veza.fr", "/api", "prod api blue"),
        ];
        for (host, path, want) in cases {
            wait_answer(&edge, host, path, want, v.label);
        }
        let other = get(edge.http, "unknown.example", "/", t).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(other.status, 503, "{}: unknown host", v.label);
    }
);
