//! Topologies shared by the hermetic render tests (tests/render.rs) and the `haproxy -c`
//! checks of the same topologies (integration/render.rs), so both test the same edge.

use vezasock::topology::{Topology, EMBEDDED_DEFAULT};

/// The embedded default.
pub fn default_topology() -> Topology {
    Topology::embedded_default().unwrap_or_else(|e| panic!("{e}"))
}

/// The default with cross-color failover and a colorless env with an api pool, every server
/// moved to loopback (ports from 21000).
pub fn cross_color_pools_on_loopback() -> Topology {
    let text = EMBEDDED_DEFAULT.replace("failover = \"none\"", "failover = \"cross-color\"")
        + r#"
[[env]]
name = "lab"
colors = false
hosts = ["lab.veza.fr"]
components = ["api", "web"]
[env.servers]
api = { pool = ["10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080"] }
"#;
    let t = Topology::from_toml(&text, "cross.toml").unwrap_or_else(|e| panic!("{e}"));
    let (local, _) = t
        .with_local_servers(21000)
        .unwrap_or_else(|e| panic!("{e}"));
    local
}
