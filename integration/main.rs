//! Tests against real HAProxy processes (2.6, 3.0, 3.2, 3.4), started in temp dirs by
//! [`support::haproxy::Fixture`] and killed on drop. Each behaviour is one test per version
//! ([`support::haproxy::per_version!`]: `name::v2_6` … `name::v3_4`); a missing version
//! prints SKIP, and `VEZASOCK_REQUIRE_ALL_VERSIONS=1` turns it into a failure.

mod ansible;
mod bake;
mod canary;
mod cert;
mod chaos;
mod cli_json;
mod crash;
mod demo;
mod edge;
mod fleet;
mod fleet_canary;
mod fleet_cert;
mod fleet_exits;
mod fleet_faults;
mod fleet_rollout;
mod fleet_servers;
mod fleet_switch;
mod fleet_txn;
mod install;
mod lab;
mod metrics;
mod moved_server;
mod new_env;
mod notify;
mod package;
mod pool_failures;
mod pools;
mod preview;
mod progress;
mod reload;
mod render;
mod runtime_client;
mod servers;
mod sshd;
mod status;
mod support;
mod switch;
mod takeover;
mod transaction;
mod txn_order;
mod watch;

use support::haproxy::{per_version, raw_one_shot, Haproxy};

per_version!(
    every_version_starts_and_answers_on_its_sockets,
    |v: &Haproxy| {
        let lab = lab::Lab::start(v);
        let info = raw_one_shot(&lab.fixture.admin_sock(), "show info\n")
            .unwrap_or_else(|e| panic!("{}: {e}", v.label));
        assert!(
            info.contains(&format!("Version: {}", v.label)),
            "{}: {info}",
            v.label
        );
        eprintln!("ran against {}", v.version_line);
    }
);
