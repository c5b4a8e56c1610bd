//! The tests' bounded load through an edge: `vezasock::demo::load::Load`, the load client the
//! demo and the benches use, with the tests' usual shape (override a field with
//! `LoadSpec { max_duration: …, ..spec(addr, targets) }`).

use std::net::SocketAddr;
use std::time::Duration;

use vezasock::demo::load::LoadSpec;

/// Two keep-alive and two new-connection clients cycling over `targets` (`(host, path)`),
/// 2 ms apart, at most 60 s and 20,000 requests each, 5 s per request.
pub fn spec(edge: SocketAddr, targets: &[(&str, &str)]) -> LoadSpec {
    LoadSpec {
        edge,
        targets: targets
            .iter()
            .map(|(host, path)| (host.to_string(), path.to_string()))
            .collect(),
        keepalive_clients: 2,
        new_connection_clients: 2,
        max_duration: Duration::from_secs(60),
        max_requests_per_client: 20_000,
        pause: Duration::from_millis(2),
        timeout: Duration::from_secs(5),
    }
}
