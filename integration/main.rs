//! Tests against real HAProxy processes (2.6, 3.0, 3.2), started in temp dirs by
//! [`haproxy::Fixture`] and killed on drop. Each test runs once per installed version and
//! prints which versions ran; `VEZASOCK_REQUIRE_ALL_VERSIONS=1` turns a missing one into a failure.

mod cli_json;
mod crash;
mod demo;
mod edge;
mod haproxy;
mod install;
mod lab;
mod reload;
mod runtime_client;
mod servers;
mod status;
mod switch;

use haproxy::raw_one_shot;

#[test]
fn every_version_starts_and_answers_on_its_sockets() {
    for v in haproxy::versions() {
        let lab = lab::Lab::start(&v);
        let info = raw_one_shot(&lab.fixture.admin_sock(), "show info\n")
            .unwrap_or_else(|e| panic!("{}: {e}", v.label));
        assert!(
            info.contains(&format!("Version: {}", v.label)),
            "{}: {info}",
            v.label
        );
        eprintln!("ran against {}", v.version_line);
    }
}
