//! The runtime client (`vezasock::runtime`) against real HAProxy 2.6, 3.0 and 3.2: every
//! command of issue 2 §3 through the library's public API, on the lab edge of [`Lab`].
//!
//! Each test starts one lab per version and shares it across related assertions (the fixture
//! starts in ~50 ms; waiting for the health checks to settle costs ~1.5 s). Every assertion
//! message starts with the HAProxy version it ran against.

use std::fmt::{Debug, Display};
use std::future::Future;
use std::time::{Duration, Instant};

use vezasock::runtime::command::cli::CliLevel;
use vezasock::runtime::command::info::ShowInfo;
use vezasock::runtime::command::maps::MapEntry;
use vezasock::runtime::command::maps::{AddMap, GetMap, SetMap};
use vezasock::runtime::command::raw::Parsed;
use vezasock::runtime::command::servers::OpState;
use vezasock::runtime::command::servers::{
    GetWeight, SetServerState, ShowBackend, ShowServersState,
};
use vezasock::runtime::command::stat::{StatKind, StatTable};
use vezasock::runtime::command::{AdminState, RawLine, StatFilter, WeightChange};
use vezasock::runtime::endpoint::{Endpoint, Socket, WorkerTarget};
use vezasock::runtime::session::{one_shot, one_shot_line, Batch, Session, Timeouts};
use vezasock::runtime::{master, Error};

use crate::lab::Lab;
use crate::support::haproxy::{self, per_version};

/// Runs one version's async body on a fresh single-threaded runtime.
fn block_on<F: Future>(body: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio runtime: {e}"))
        .block_on(body)
}

/// Short deadlines: everything is local, so a slow answer is a bug.
fn timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(2),
        reply: Duration::from_secs(5),
    }
}

fn admin(lab: &Lab) -> Endpoint {
    Endpoint::Unix(lab.fixture.admin_sock())
}

fn operator(lab: &Lab) -> Endpoint {
    Endpoint::Unix(lab.fixture.path("operator.sock"))
}

fn master_at(lab: &Lab, target: Option<WorkerTarget>) -> Endpoint {
    Endpoint::Master {
        socket: Socket::Unix(lab.fixture.master_sock()),
        target,
    }
}

/// `Result::unwrap` with the version and the step in the panic message.
trait Must<T> {
    fn must(self, context: &str) -> T;
}

impl<T, E: Display> Must<T> for Result<T, E> {
    fn must(self, context: &str) -> T {
        self.unwrap_or_else(|e| panic!("{context}: {e}"))
    }
}

/// Asserts that HAProxy refused the command with a message starting with `expected`;
/// returns the batch index.
fn assert_refused<T: Debug>(
    result: Result<T, Error>,
    context: &str,
    expected: &str,
) -> Option<usize> {
    match result {
        Err(Error::Refused {
            index,
            message,
            command,
        }) => {
            assert!(
                message.starts_with(expected),
                "{context}: `{command}` refused with {message:?}, expected it to start with {expected:?}"
            );
            index
        }
        other => panic!("{context}: expected Refused({expected:?}), got {other:?}"),
    }
}

/// Asserts that the client refused an argument before sending anything.
fn assert_invalid<T: Debug>(result: Result<T, Error>, context: &str) {
    assert!(
        matches!(result, Err(Error::InvalidArgument { .. })),
        "{context}: expected InvalidArgument, got {result:?}"
    );
}

/// The `status` column of one server row.
fn stat_status(table: &StatTable, backend: &str, server: &str) -> Option<String> {
    table
        .iter()
        .find(|row| row.pxname() == Some(backend) && row.svname() == Some(server))
        .and_then(|row| row.status())
        .map(str::to_string)
}

/// Polls `show stat` (bounded: 10 s) until the health checks have settled as the lab
/// configures them: prod's green is on a closed port, so DOWN; the three others UP.
async fn wait_for_checks(session: &mut Session, label: &str) -> StatTable {
    let deadline = Instant::now() + Duration::from_secs(10);
    let expected = [
        ("be_staging_api", "blue", "UP"),
        ("be_staging_api", "green", "UP"),
        ("be_prod_web", "blue", "UP"),
        ("be_prod_web", "green", "DOWN"),
    ];
    loop {
        let table = session
            .show_stat(None)
            .await
            .must(&format!("{label}: show stat"));
        let seen: Vec<Option<String>> = expected
            .iter()
            .map(|(b, s, _)| stat_status(&table, b, s))
            .collect();
        if expected
            .iter()
            .zip(&seen)
            .all(|((_, _, want), got)| got.as_deref() == Some(*want))
        {
            return table;
        }
        assert!(
            Instant::now() < deadline,
            "{label}: health checks did not settle in 10 s: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls until `show stat` gives `backend/server` a status starting with `want` (5 s bound).
async fn wait_for_status(
    session: &mut Session,
    label: &str,
    backend: &str,
    server: &str,
    want: &str,
) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let table = session
            .show_stat(None)
            .await
            .must(&format!("{label}: show stat"));
        let status = stat_status(&table, backend, server);
        if status.as_deref().is_some_and(|s| s.starts_with(want)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{label}: {backend}/{server} is {status:?}, not {want} after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn entry_value<'a>(entries: &'a [MapEntry], key: &str) -> Option<&'a str> {
    entries
        .iter()
        .find(|e| e.key == key)
        .map(|e| e.value.as_str())
}

per_version!(
    dumps_servers_weights_and_privileges,
    |v: &haproxy::Haproxy| {
        let label = v.label;
        let lab = Lab::start(v);
        block_on(async {
            let mut s = Session::connect(&admin(&lab), timeouts())
                .await
                .must(&format!("{label}: connect admin.sock"));

            // show info: the version HAProxy reports is the binary's, and the session saw it.
            let info = s.show_info().await.must(&format!("{label}: show info"));
            let version = info.version().unwrap_or_default().to_string();
            assert!(
                version.starts_with(&format!("{label}.")) && v.version_line.contains(&version),
                "{label}: show info Version {version:?} vs `haproxy -v` {:?}",
                v.version_line
            );
            assert_eq!(s.version().raw, version, "{label}: session version");
            assert_eq!(
                s.capabilities().reload_reports_status,
                label != "2.6",
                "{label}: reload capability"
            );
            assert_eq!(
                s.capabilities().one_prompt_per_line,
                label == "3.2" || label == "3.4",
                "{label}: prompt capability"
            );
            assert!(info.pid().is_some(), "{label}: show info has a Pid");
            // The same through a one-shot connection.
            let reply = one_shot(&admin(&lab), &ShowInfo, timeouts())
                .await
                .must(&format!("{label}: one-shot show info"));
            match reply
                .parse()
                .must(&format!("{label}: one-shot show info parse"))
            {
                Parsed::Info(one) => assert_eq!(
                    one.version(),
                    Some(version.as_str()),
                    "{label}: one-shot version"
                ),
                other => panic!("{label}: one-shot show info parsed as {other:?}"),
            }

            // show stat: CSV keyed by header, statuses as configured.
            let table = wait_for_checks(&mut s, label).await;
            for name in [
                "pxname",
                "svname",
                "status",
                "weight",
                "check_status",
                "type",
            ] {
                assert!(
                    table.columns.position(name).is_some(),
                    "{label}: show stat has no {name} column"
                );
            }
            let fe = table
                .iter()
                .find(|r| r.pxname() == Some("fe_main") && r.svname() == Some("FRONTEND"))
                .unwrap_or_else(|| panic!("{label}: no fe_main FRONTEND row"));
            assert_eq!(fe.status(), Some("OPEN"), "{label}: frontend status");
            assert_eq!(
                fe.kind(),
                Some(StatKind::Frontend),
                "{label}: frontend type"
            );
            let green = table
                .iter()
                .find(|r| r.pxname() == Some("be_prod_web") && r.svname() == Some("green"))
                .unwrap_or_else(|| panic!("{label}: no be_prod_web/green row"));
            assert!(
                green.check_status().is_some_and(|c| c.contains("L4CON")),
                "{label}: prod green check_status {:?}",
                green.check_status()
            );
            let filtered = s
                .show_stat(Some(StatFilter::servers_of("be_staging_api").must(label)))
                .await
                .must(&format!("{label}: show stat be_staging_api 4 -1"));
            let names: Vec<_> = filtered
                .iter()
                .map(|r| (r.pxname(), r.svname(), r.kind()))
                .collect();
            assert_eq!(
                names,
                vec![
                    (Some("be_staging_api"), Some("blue"), Some(StatKind::Server)),
                    (
                        Some("be_staging_api"),
                        Some("green"),
                        Some(StatKind::Server)
                    ),
                ],
                "{label}: filtered show stat"
            );
            assert_refused(
                s.show_stat(Some(StatFilter::servers_of("nosuch").must(label)))
                    .await,
                &format!("{label}: show stat nosuch"),
                "No such proxy.",
            );

            // show servers state: all, then one backend.
            let all = s
                .show_servers_state(None)
                .await
                .must(&format!("{label}: show servers state"));
            assert_eq!(
                all.rows.len(),
                4,
                "{label}: servers state rows {:?}",
                all.rows
            );
            for (b, srv, op) in [
                ("be_staging_api", "blue", OpState::Running),
                ("be_staging_api", "green", OpState::Running),
                ("be_prod_web", "blue", OpState::Running),
                ("be_prod_web", "green", OpState::Stopped),
            ] {
                let row = all
                    .find(b, srv)
                    .unwrap_or_else(|| panic!("{label}: no {b}/{srv} in servers state"));
                assert_eq!(row.op, op, "{label}: {b}/{srv} srv_op_state");
                assert_eq!(row.admin.0, 0, "{label}: {b}/{srv} srv_admin_state");
                assert_eq!(
                    (row.uweight, row.iweight),
                    (1, 1),
                    "{label}: {b}/{srv} weights"
                );
            }
            let one = s
                .show_servers_state(Some("be_staging_api"))
                .await
                .must(&format!("{label}: show servers state be_staging_api"));
            let names: Vec<_> = one
                .rows
                .iter()
                .map(|r| (r.be_name.as_str(), r.srv_name.as_str()))
                .collect();
            assert_eq!(
                names,
                [("be_staging_api", "blue"), ("be_staging_api", "green")],
                "{label}: one backend"
            );
            assert_refused(
                s.show_servers_state(Some("nosuch")).await,
                &format!("{label}: show servers state nosuch"),
                "Can't find backend.",
            );

            // show backend: backends only, no frontend.
            let backends = s
                .show_backends()
                .await
                .must(&format!("{label}: show backend"));
            assert_eq!(
                backends,
                ["be_staging_api", "be_prod_web"],
                "{label}: show backend"
            );

            // show servers conn: all, and one backend.
            let conns = s
                .show_servers_conn(None)
                .await
                .must(&format!("{label}: show servers conn"));
            for (b, srv) in [("be_staging_api", "blue"), ("be_prod_web", "green")] {
                assert!(
                    conns.find(b, srv).is_some(),
                    "{label}: no {b}/{srv} in show servers conn: {conns:?}"
                );
            }
            let conns = s
                .show_servers_conn(Some("be_prod_web"))
                .await
                .must(&format!("{label}: show servers conn be_prod_web"));
            assert!(
                conns.rows.len() == 2 && conns.rows.iter().all(|r| r.backend == "be_prod_web"),
                "{label}: show servers conn be_prod_web: {conns:?}"
            );

            // Weights: get, set absolute and percent, out of range (refused by the client
            // before sending, and by HAProxy when sent raw), garbage.
            let w = s
                .get_weight("be_staging_api", "blue")
                .await
                .must(&format!("{label}: get weight"));
            assert_eq!((w.current, w.initial), (1, 1), "{label}: initial weight");
            s.set_server_weight("be_staging_api", "blue", WeightChange::Absolute(50))
                .await
                .must(&format!("{label}: weight 50"));
            let w = s
                .get_weight("be_staging_api", "blue")
                .await
                .must(&format!("{label}: get weight"));
            assert_eq!((w.current, w.initial), (50, 1), "{label}: weight after 50");
            assert_invalid(
                s.set_server_weight("be_staging_api", "blue", WeightChange::Absolute(300))
                    .await,
                &format!("{label}: typed weight 300"),
            );
            for (line, expected) in [
                (
                    "set server be_staging_api/blue weight 300",
                    "Absolute weight can only be between 0 and 256 inclusive.",
                ),
                (
                    "set server be_staging_api/blue weight abc",
                    "Empty weight string empty or preceded by garbage",
                ),
                (
                    "set server be_staging_api/blue weight",
                    "Require <weight> or <weight%>.",
                ),
            ] {
                let command = RawLine::new(line).must(label);
                assert_refused(
                    s.send_line(&command).await,
                    &format!("{label}: {line}"),
                    expected,
                );
            }
            let w = s
                .get_weight("be_staging_api", "blue")
                .await
                .must(&format!("{label}: get weight"));
            assert_eq!(w.current, 50, "{label}: refused weights changed nothing");
            s.set_server_weight("be_staging_api", "blue", WeightChange::Percent(100))
                .await
                .must(&format!("{label}: weight 100%"));
            let w = s
                .get_weight("be_staging_api", "blue")
                .await
                .must(&format!("{label}: get weight"));
            assert_eq!((w.current, w.initial), (1, 1), "{label}: weight after 100%");
            assert_refused(
                s.get_weight("be_staging_api", "nosuch").await,
                &format!("{label}: get weight nosuch"),
                "No such server.",
            );

            // Server state: drain, maint, ready, seen in servers state and show stat.
            s.set_server_state("be_staging_api", "blue", AdminState::Drain)
                .await
                .must(&format!("{label}: state drain"));
            let row = s
                .show_servers_state(Some("be_staging_api"))
                .await
                .must(label);
            let blue = row
                .find("be_staging_api", "blue")
                .unwrap_or_else(|| panic!("{label}: no blue"));
            assert!(
                blue.admin.is_drain() && !blue.admin.is_maint(),
                "{label}: drain admin state {:?}",
                blue.admin
            );
            wait_for_status(&mut s, label, "be_staging_api", "blue", "DRAIN").await;
            s.set_server_state("be_staging_api", "blue", AdminState::Maint)
                .await
                .must(&format!("{label}: state maint"));
            let row = s
                .show_servers_state(Some("be_staging_api"))
                .await
                .must(label);
            let blue = row
                .find("be_staging_api", "blue")
                .unwrap_or_else(|| panic!("{label}: no blue"));
            assert!(
                blue.admin.is_maint(),
                "{label}: maint admin state {:?}",
                blue.admin
            );
            wait_for_status(&mut s, label, "be_staging_api", "blue", "MAINT").await;
            s.set_server_state("be_staging_api", "blue", AdminState::Ready)
                .await
                .must(&format!("{label}: state ready"));
            let row = s
                .show_servers_state(Some("be_staging_api"))
                .await
                .must(label);
            let blue = row
                .find("be_staging_api", "blue")
                .unwrap_or_else(|| panic!("{label}: no blue"));
            assert_eq!(blue.admin.0, 0, "{label}: ready admin state");
            wait_for_status(&mut s, label, "be_staging_api", "blue", "UP").await;

            // Every state error.
            assert_refused(
                s.set_server_state("be_staging_api", "nosuch", AdminState::Drain)
                    .await,
                &format!("{label}: state on nosuch server"),
                "No such server.",
            );
            assert_refused(
                s.set_server_state("nosuch", "blue", AdminState::Drain)
                    .await,
                &format!("{label}: state on nosuch backend"),
                "No such backend.",
            );
            for (line, expected) in [
                (
                    "set server be_staging_api/blue state bogus",
                    "'set server <srv> state' expects 'ready', 'drain' and 'maint'.",
                ),
                ("set server be_staging_api", "Require 'backend/server'."),
                ("set server be_staging_api/blue", "usage: set server "),
            ] {
                let command = RawLine::new(line).must(label);
                assert_refused(
                    s.send_line(&command).await,
                    &format!("{label}: {line}"),
                    expected,
                );
            }
            assert_invalid(
                s.set_server_state("be_staging_api/x", "blue", AdminState::Maint)
                    .await,
                &format!("{label}: a '/' in a backend name"),
            );

            // Unknown command: refused with HAProxy's text, and the session stays in step.
            assert_refused(
                s.send_line(&RawLine::new("foo").must(label)).await,
                &format!("{label}: foo"),
                "Unknown command",
            );
            let w = s
                .get_weight("be_prod_web", "blue")
                .await
                .must(&format!("{label}: get weight after errors"));
            assert_eq!(
                (w.current, w.initial),
                (1, 1),
                "{label}: session in step after errors"
            );

            // Privileges: the operator socket reads but may not change server state or weight.
            let mut op = Session::connect(&operator(&lab), timeouts())
                .await
                .must(&format!("{label}: connect operator.sock"));
            assert_eq!(
                op.show_cli_level().await.must(label),
                CliLevel::Operator,
                "{label}: operator level"
            );
            assert_eq!(
                s.show_cli_level().await.must(label),
                CliLevel::Admin,
                "{label}: admin level"
            );
            let op_info = op
                .show_info()
                .await
                .must(&format!("{label}: operator show info"));
            assert_eq!(
                op_info.version(),
                Some(version.as_str()),
                "{label}: operator read"
            );
            assert_refused(
                op.set_server_state("be_staging_api", "green", AdminState::Maint)
                    .await,
                &format!("{label}: operator set server state"),
                "Permission denied",
            );
            assert_refused(
                op.set_server_weight("be_staging_api", "green", WeightChange::Absolute(7))
                    .await,
                &format!("{label}: operator set weight"),
                "Permission denied",
            );
            let reply = one_shot(
                &operator(&lab),
                &SetServerState::new("be_staging_api", "green", AdminState::Drain).must(label),
                timeouts(),
            )
            .await;
            assert_refused(
                reply,
                &format!("{label}: operator one-shot set server state"),
                "Permission denied",
            );
            let state = s
                .show_servers_state(Some("be_staging_api"))
                .await
                .must(label);
            let green = state
                .find("be_staging_api", "green")
                .unwrap_or_else(|| panic!("{label}: no green"));
            assert_eq!(
                (green.admin.0, green.uweight),
                (0, 1),
                "{label}: operator changed nothing"
            );
            eprintln!(
                "runtime client: dumps, servers, weights, privileges ok on {}",
                v.version_line
            );
        });
    }
);

per_version!(maps_versions_and_injection, |v: &haproxy::Haproxy| {
    let label = v.label;
    let lab = Lab::start(v);
    let colors = lab.map("active-color.map");
    // The lab writes scratch.map but no config line loads it, so HAProxy does not know
    // it: map edits go to hosts.map, whose extra keys match no request's Host.
    let scratch = lab.map("hosts.map");
    block_on(async {
        let mut s = Session::connect(&admin(&lab), timeouts())
            .await
            .must(&format!("{label}: connect admin.sock"));

        // show map: the list, then entries by file and by #id.
        let maps = s.show_maps().await.must(&format!("{label}: show map"));
        for file in [&colors, &scratch] {
            assert!(
                maps.iter().any(|m| &m.file == file),
                "{label}: {file} not in show map: {maps:?}"
            );
        }
        let color_ref = maps
            .iter()
            .find(|m| m.file == colors)
            .unwrap_or_else(|| panic!("{label}: no active-color.map"));
        let by_file = s
            .show_map(&colors, None)
            .await
            .must(&format!("{label}: show map file"));
        let pairs: Vec<_> = by_file
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [("staging", "blue"), ("prod", "green")],
            "{label}: active-color.map"
        );
        let by_id = s
            .show_map(&format!("#{}", color_ref.id), None)
            .await
            .must(&format!("{label}: show map #id"));
        assert_eq!(by_id, by_file, "{label}: show map by #id");

        // get map.
        let found = s
            .get_map(&colors, "staging")
            .await
            .must(&format!("{label}: get map"));
        assert!(
            found.found && found.value.as_deref() == Some("blue"),
            "{label}: get map staging: {found:?}"
        );
        let missing = s
            .get_map(&colors, "nosuch")
            .await
            .must(&format!("{label}: get map nosuch"));
        assert!(!missing.found, "{label}: get map nosuch: {missing:?}");

        // set / add / del / clear, and each error.
        s.add_map(&scratch, None, "a", "1")
            .await
            .must(&format!("{label}: add map"));
        s.set_map(&scratch, "a", "10")
            .await
            .must(&format!("{label}: set map"));
        s.add_map(&scratch, None, "c", "3")
            .await
            .must(&format!("{label}: add map"));
        let entries = s.show_map(&scratch, None).await.must(label);
        assert_eq!(
            entry_value(&entries, "a"),
            Some("10"),
            "{label}: after set map"
        );
        assert_eq!(
            entry_value(&entries, "c"),
            Some("3"),
            "{label}: after add map"
        );
        s.del_map(&scratch, "c")
            .await
            .must(&format!("{label}: del map"));
        assert_refused(
            s.del_map(&scratch, "c").await,
            &format!("{label}: del map again"),
            "Key not found.",
        );
        assert_refused(
            s.set_map(&scratch, "nosuch", "x").await,
            &format!("{label}: set map missing key"),
            "entry not found.",
        );
        for result in [
            s.set_map("/nonexistent/x.map", "a", "1").await,
            s.add_map("/nonexistent/x.map", None, "a", "1").await,
            s.del_map("/nonexistent/x.map", "a").await,
            s.clear_map("/nonexistent/x.map", None).await,
        ] {
            assert_refused(
                result,
                &format!("{label}: unknown map file"),
                "Unknown map identifier. Please use #<id> or <file>.",
            );
        }
        assert_refused(
            s.show_map("/nonexistent/x.map", None).await,
            &format!("{label}: show map unknown file"),
            "Unknown map identifier. Please use #<id> or <file>.",
        );
        for (line, expected) in [
            (
                format!("set map {scratch}"),
                "'set map' expects three parameters",
            ),
            (
                format!("add map {scratch} k"),
                "'add map' expects three parameters",
            ),
            (
                format!("get map {scratch}"),
                "Missing map identifier and/or key.",
            ),
            (format!("commit map {scratch}"), "Missing version number."),
        ] {
            let command = RawLine::new(&line).must(label);
            assert_refused(
                s.send_line(&command).await,
                &format!("{label}: {line}"),
                expected,
            );
        }

        // prepare / add @ver / commit: the new version becomes live, for show map and for
        // real HTTP requests. The lab routes to `be_<env>_<color>`, a backend that does not
        // exist for `prod green`, so prod.example.test falls back to the default backend
        // (staging api) until active-color.map says `prod web`: then it reaches
        // be_prod_web, whose only UP server answers `prod web blue`.
        wait_for_checks(&mut s, label).await;
        let before = lab
            .http_get("prod.example.test")
            .must(&format!("{label}: HTTP before"));
        assert!(
            before.status == 200 && before.body.starts_with("staging api "),
            "{label}: prod.example.test before the commit: {before:?}"
        );
        let version = s
            .prepare_map(&colors)
            .await
            .must(&format!("{label}: prepare map"));
        s.add_map(&colors, Some(version), "staging", "api")
            .await
            .must(&format!("{label}: add map @{version}"));
        s.add_map(&colors, Some(version), "prod", "web")
            .await
            .must(&format!("{label}: add map @{version}"));
        let staged = s
            .show_map(&colors, Some(version))
            .await
            .must(&format!("{label}: show map @{version}"));
        let pairs: Vec<_> = staged
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [("staging", "api"), ("prod", "web")],
            "{label}: staged version"
        );
        let live = s.show_map(&colors, None).await.must(label);
        assert_eq!(
            entry_value(&live, "prod"),
            Some("green"),
            "{label}: staged version is not live yet"
        );
        let list = s.show_maps().await.must(label);
        let pending = list
            .iter()
            .find(|m| m.file == colors)
            .unwrap_or_else(|| panic!("{label}: no map"));
        // `next_ver` is the newest version handed out (the one just prepared), not
        // the next one; `entry_cnt` counts the staged entries too.
        assert_eq!(
            (pending.curr_ver, pending.next_ver, pending.entry_cnt),
            (Some(version - 1), Some(version), Some(4)),
            "{label}: show map after prepare: {pending:?}"
        );
        let still = lab
            .http_get("prod.example.test")
            .must(&format!("{label}: HTTP staged"));
        assert!(
            still.body.starts_with("staging api "),
            "{label}: staged version served: {still:?}"
        );
        assert_refused(
            s.add_map(&colors, Some(version + 99), "x", "y").await,
            &format!("{label}: add map @future"),
            "Version number in the future, please use 'prepare map' before.",
        );
        s.commit_map(&colors, version)
            .await
            .must(&format!("{label}: commit map @{version}"));
        let live = s.show_map(&colors, None).await.must(label);
        let pairs: Vec<_> = live
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [("staging", "api"), ("prod", "web")],
            "{label}: committed version is live"
        );
        let after = lab
            .http_get("prod.example.test")
            .must(&format!("{label}: HTTP after"));
        assert_eq!(
            (after.status, after.body.as_str()),
            (200, "prod web blue"),
            "{label}: prod.example.test after the commit"
        );
        let staging = lab
            .http_get("staging.example.test")
            .must(&format!("{label}: HTTP staging"));
        assert!(
            staging.body.starts_with("staging api "),
            "{label}: staging after the commit: {staging:?}"
        );
        assert_refused(
            s.commit_map(&colors, version).await,
            &format!("{label}: commit twice"),
            "Version number out of range.",
        );
        assert_refused(
            s.commit_map(&colors, version + 99).await,
            &format!("{label}: commit @future"),
            "Version number out of range.",
        );

        // Injection: spaces, `;`, `\` and a tab are stored exactly as given, whether sent
        // on the session or one-shot; a line break is refused before anything is sent.
        let nasty = "a b;show info\\ c\td  e";
        s.add_map(&scratch, None, "inj", nasty)
            .await
            .must(&format!("{label}: add map nasty"));
        let entries = s.show_map(&scratch, None).await.must(label);
        assert_eq!(
            entry_value(&entries, "inj"),
            Some(nasty),
            "{label}: show map of nasty value: {entries:?}"
        );
        assert_eq!(
            entries.iter().filter(|e| e.key == "inj").count(),
            1,
            "{label}: exactly one inj entry: {entries:?}"
        );
        let got = s.get_map(&scratch, "inj").await.must(label);
        assert_eq!(
            got.value.as_deref(),
            Some(nasty),
            "{label}: get map of nasty value"
        );
        let nasty2 = "x;set map {scratch} inj pwned;\\;\t ";
        let command = SetMap::new(&scratch, "inj", nasty2).must(label);
        one_shot(&admin(&lab), &command, timeouts())
            .await
            .must(&format!("{label}: one-shot nasty set"));
        let got = s.get_map(&scratch, "inj").await.must(label);
        assert_eq!(
            got.value.as_deref(),
            Some(nasty2),
            "{label}: one-shot nasty value"
        );
        assert_invalid(
            s.set_map(&scratch, "inj", "ok\nshow info").await,
            &format!("{label}: value with \\n"),
        );
        assert_invalid(
            AddMap::new(&scratch, None, "inj", "a\nb"),
            &format!("{label}: typed value with \\n"),
        );
        assert_invalid(
            SetMap::new(&scratch, "in\nj", "a"),
            &format!("{label}: key with \\n"),
        );
        assert_invalid(
            RawLine::new("show info\nshow stat"),
            &format!("{label}: raw line with \\n"),
        );
        let got = s.get_map(&scratch, "inj").await.must(label);
        assert_eq!(
            got.value.as_deref(),
            Some(nasty2),
            "{label}: refused value changed nothing"
        );

        // A `;`-chained raw line: each command answers, in order, and the session stays in
        // step (one prompt per command before 3.2, one per line on 3.2).
        let chained = RawLine::new(&format!(
            "get weight be_staging_api/blue;get map {colors} prod;show backend"
        ))
        .must(label);
        let reply = s
            .send_line(&chained)
            .await
            .must(&format!("{label}: chained line"));
        let text = reply.text();
        let weight_at = text.find("1 (initial 1)");
        let map_at = text.find("value=\"web\"");
        let backend_at = text.find("be_prod_web");
        assert!(
            weight_at.is_some() && weight_at < map_at && map_at < backend_at,
            "{label}: chained replies out of order: {text:?}"
        );
        let reply = one_shot_line(&admin(&lab), &chained, timeouts())
            .await
            .must(&format!("{label}: one-shot chain"));
        assert_eq!(
            reply.text(),
            text,
            "{label}: one-shot chain = session chain"
        );
        let w = s
            .get_weight("be_prod_web", "blue")
            .await
            .must(&format!("{label}: after chain"));
        assert_eq!(w.current, 1, "{label}: session in step after the chain");

        // clear map, last: routing needs hosts.map until here.
        s.clear_map(&scratch, None)
            .await
            .must(&format!("{label}: clear map"));
        let entries = s.show_map(&scratch, None).await.must(label);
        assert!(
            entries.is_empty(),
            "{label}: scratch after clear: {entries:?}"
        );
        eprintln!(
            "runtime client: maps, versions, injection ok on {}",
            v.version_line
        );
    });
});

per_version!(
    pipelined_batches_on_the_stats_socket_and_the_master,
    |v: &haproxy::Haproxy| {
        let label = v.label;
        let lab = Lab::start(v);
        // The lab writes scratch.map but no config line loads it, so HAProxy does not know
        // it: map edits go to hosts.map, whose extra keys match no request's Host.
        let scratch = lab.map("hosts.map");
        block_on(async {
            let mut s = Session::connect(&admin(&lab), timeouts())
                .await
                .must(&format!("{label}: connect admin.sock"));

            // 100 commands in one pipelined write; number 57 fails. Every reply is read, the
            // error is reported with its position and command, and the others all ran.
            let mut commands = Batch::new();
            for i in 1..=100 {
                let pushed = if i == 57 {
                    SetMap::new(&scratch, "nosuch", "x").and_then(|c| commands.push(c).map(drop))
                } else {
                    AddMap::new(&scratch, None, &format!("k{i}"), &format!("v {i}"))
                        .and_then(|c| commands.push(c).map(drop))
                };
                pushed.must(label);
            }
            let started = Instant::now();
            let index = assert_refused(
                s.run_batch(commands).await,
                &format!("{label}: batch of 100"),
                "entry not found.",
            );
            assert_eq!(index, Some(57), "{label}: refused index");
            eprintln!("{label}: batch of 100 in {:?}", started.elapsed());
            let entries = s
                .show_map(&scratch, None)
                .await
                .must(&format!("{label}: show map after batch"));
            for i in (1..=100).filter(|&i| i != 57) {
                assert_eq!(
                    entry_value(&entries, &format!("k{i}")),
                    Some(format!("v {i}").as_str()),
                    "{label}: entry k{i} after the batch"
                );
            }
            let info = s
                .show_info()
                .await
                .must(&format!("{label}: session after the batch"));
            assert!(info.pid().is_some(), "{label}: show info after the batch");

            // Every reply matched to its command: 100 reads, 57 a refusal.
            let mut reads = Batch::new();
            for i in 1..=100 {
                let pushed = if i == 57 {
                    GetWeight::new("be_staging_api", "nosuch").and_then(|c| reads.push(c).map(drop))
                } else {
                    GetMap::new(&scratch, &format!("k{i}")).and_then(|c| reads.push(c).map(drop))
                };
                pushed.must(label);
            }
            let replies = s
                .run_batch_all(reads)
                .await
                .must(&format!("{label}: batch_all"))
                .into_replies();
            assert_eq!(replies.len(), 100, "{label}: reply count");
            for (i, reply) in (1..=100).zip(&replies) {
                if i == 57 {
                    assert_refused(
                        reply.refusal(Some(i)).map_or(Ok(()), Err),
                        &format!("{label}: reply 57"),
                        "No such server.",
                    );
                    continue;
                }
                match reply.parse().must(&format!("{label}: reply {i}")) {
                    Parsed::GetMap(found) => assert_eq!(
                        found.value.as_deref(),
                        Some(format!("v {i}").as_str()),
                        "{label}: reply {i} belongs to `{}`",
                        reply.command
                    ),
                    other => panic!("{label}: reply {i} parsed as {other:?}"),
                }
            }

            // The same through the master socket (each command routed with `@1`).
            let proc = master::show_proc(&master_at(&lab, None), timeouts())
                .await
                .must(&format!("{label}: show proc"));
            let worker = proc
                .workers
                .first()
                .map(|p| p.pid)
                .unwrap_or_else(|| panic!("{label}: no worker"));
            let mut m = Session::connect(&master_at(&lab, None), timeouts())
                .await
                .must(&format!("{label}: connect master"));
            assert!(
                m.version().raw.starts_with(&format!("{label}.")),
                "{label}: master session version {}",
                m.version()
            );
            let mut commands = Batch::new();
            commands
                .push(GetWeight::new("be_staging_api", "blue").must(label))
                .must(label);
            commands.push(ShowBackend).must(label);
            commands
                .push(AddMap::new(&scratch, None, "via-master", "m 1").must(label))
                .must(label);
            commands
                .push(GetMap::new(&scratch, "via-master").must(label))
                .must(label);
            commands
                .push(ShowServersState::new(Some("be_prod_web")).must(label))
                .must(label);
            commands.push(ShowInfo).must(label);
            let replies = m
                .run_batch(commands)
                .await
                .must(&format!("{label}: master batch"))
                .into_replies();
            let parsed: Vec<Parsed> = replies
                .iter()
                .map(|r| r.parse().must(&format!("{label}: master reply")))
                .collect();
            assert!(
                matches!(&parsed[0], Parsed::Weight(w) if w.current == 1),
                "{label}: master get weight {:?}",
                parsed[0]
            );
            assert!(
                matches!(&parsed[1], Parsed::Backends(b) if b.len() == 2),
                "{label}: master show backend {:?}",
                parsed[1]
            );
            assert!(
                matches!(&parsed[3], Parsed::GetMap(g) if g.value.as_deref() == Some("m 1")),
                "{label}: master get map {:?}",
                parsed[3]
            );
            assert!(
                matches!(&parsed[4], Parsed::ServersState(st) if st.rows.len() == 2),
                "{label}: master servers state {:?}",
                parsed[4]
            );
            assert!(
                matches!(&parsed[5], Parsed::Info(i) if i.pid() == Some(worker)),
                "{label}: master show info reached worker {worker}: {:?}",
                parsed[5]
            );
            // Without severity-output, errors through the master are recognised by text.
            let mut commands = Batch::new();
            commands
                .push(GetWeight::new("be_staging_api", "blue").must(label))
                .must(label);
            commands
                .push(SetMap::new(&scratch, "via-master", "m 2").must(label))
                .must(label);
            commands
                .push(
                    SetServerState::new("be_staging_api", "nosuch", AdminState::Drain).must(label),
                )
                .must(label);
            commands
                .push(GetMap::new(&scratch, "via-master").must(label))
                .must(label);
            let index = assert_refused(
                m.run_batch(commands).await,
                &format!("{label}: master batch error"),
                "No such server.",
            );
            assert_eq!(index, Some(3), "{label}: master refused index");
            let got = m
                .get_map(&scratch, "via-master")
                .await
                .must(&format!("{label}: master after error"));
            assert_eq!(
                got.value.as_deref(),
                Some("m 2"),
                "{label}: master session in step"
            );
            eprintln!("runtime client: pipelined batches ok on {}", v.version_line);
        });
    }
);

per_version!(
    master_routing_reload_and_reconnect,
    |v: &haproxy::Haproxy| {
        let label = v.label;
        let lab = Lab::start(v);
        block_on(async {
            let master_ep = master_at(&lab, None);
            let t = timeouts();

            // show proc: one master, one worker, this version.
            let proc = master::show_proc(&master_ep, t)
                .await
                .must(&format!("{label}: show proc"));
            assert_eq!(
                proc.master.pid,
                lab.fixture.master_pid(),
                "{label}: master PID"
            );
            assert_eq!(proc.master.kind, "master", "{label}: master kind");
            assert!(
                proc.master.version.starts_with(&format!("{label}.")),
                "{label}: {proc:?}"
            );
            assert_eq!(proc.workers.len(), 1, "{label}: workers {proc:?}");
            let worker = proc.workers[0].pid;
            // A bad target: one error line. 3.0/3.2 masters sometimes then neither close nor
            // say more, even after the half-close; the client must answer without waiting for
            // its reply deadline (5 s here), which this assertion would turn into a Timeout.
            assert_refused(
                one_shot(
                    &master_at(&lab, Some(WorkerTarget::Relative(99))),
                    &ShowInfo,
                    t,
                )
                .await,
                &format!("{label}: @99"),
                "Can't find the target PID matching the prefix '@99'",
            );
            let mut ms = Session::connect(&master_at(&lab, Some(WorkerTarget::Master)), t)
                .await
                .must(&format!("{label}: master session"));
            let again = ms
                .show_proc()
                .await
                .must(&format!("{label}: session show proc"));
            assert_eq!(again.workers[0].pid, worker, "{label}: session show proc");

            // `@1` and `@!<pid>` routing, one-shot and in a session, and a bad target.
            for target in [WorkerTarget::Current, WorkerTarget::Pid(worker)] {
                let ep = master_at(&lab, Some(target));
                let reply = one_shot(&ep, &ShowInfo, t)
                    .await
                    .must(&format!("{label}: {target} show info"));
                match reply.parse().must(label) {
                    Parsed::Info(info) => {
                        assert_eq!(info.pid(), Some(worker), "{label}: {target} reached")
                    }
                    other => panic!("{label}: {target} show info parsed as {other:?}"),
                }
                let mut ws = Session::connect(&ep, t)
                    .await
                    .must(&format!("{label}: {target} session"));
                let info = ws
                    .show_info()
                    .await
                    .must(&format!("{label}: {target} session show info"));
                assert_eq!(
                    info.pid(),
                    Some(worker),
                    "{label}: {target} session reached"
                );
            }

            // A session kept open on the stats socket across a reload.
            let mut kept = Session::connect(&admin(&lab), t)
                .await
                .must(&format!("{label}: admin session"));
            let info = kept.show_info().await.must(label);
            assert_eq!(
                info.pid(),
                Some(worker),
                "{label}: admin session on the first worker"
            );

            // Reload, in this version's form: 2.6 confirmed through show proc, ≥ 2.7 Success=1.
            let report = master::reload(&master_ep, t)
                .await
                .must(&format!("{label}: reload"));
            assert_eq!(
                report.reported,
                label != "2.6",
                "{label}: reload reported Success=: {report:?}"
            );
            if report.reported {
                assert!(
                    report
                        .log
                        .iter()
                        .any(|l| l.message.contains("Loading success")),
                    "{label}: reload log {:?}",
                    report.log
                );
            }
            assert_eq!(
                report.new_workers.len(),
                1,
                "{label}: new workers {report:?}"
            );
            let new_worker = report.new_workers[0];
            assert_ne!(new_worker, worker, "{label}: a new worker");
            let proc = master::show_proc(&master_ep, t).await.must(label);
            assert_eq!(
                proc.workers.first().map(|p| p.pid),
                Some(new_worker),
                "{label}: after reload {proc:?}"
            );
            assert_eq!(proc.master.reloads, 1, "{label}: reload counter {proc:?}");

            // The old worker, pinned by the kept session, is still reachable by `@!<pid>`.
            let old = one_shot(
                &master_at(&lab, Some(WorkerTarget::Pid(worker))),
                &ShowInfo,
                t,
            )
            .await;
            match old.and_then(|r| r.parse()) {
                Ok(Parsed::Info(info)) => {
                    assert_eq!(info.pid(), Some(worker), "{label}: @!old reached")
                }
                other => panic!("{label}: @!{worker} (old worker) after the reload: {other:?}"),
            }
            assert!(
                report.old_workers.contains(&worker),
                "{label}: the pinned worker is an old worker: {report:?}"
            );
            // The kept session still talks to the old worker (its connection pins it); after
            // reconnect() it talks to the new one.
            let before = kept
                .show_info()
                .await
                .must(&format!("{label}: kept session"));
            assert_eq!(
                before.pid(),
                Some(worker),
                "{label}: kept session before reconnect"
            );
            kept.reconnect().await.must(&format!("{label}: reconnect"));
            let info = kept
                .show_info()
                .await
                .must(&format!("{label}: show info after reconnect"));
            assert_eq!(
                info.pid(),
                Some(new_worker),
                "{label}: reconnected session reaches the new worker"
            );

            // A failed reload: HAProxy's ALERT text comes back; the new worker keeps serving.
            // 2.6's master answers `reload` with nothing and has no `show startup-logs`, so
            // its ALERT reaches only the master's stderr: there the error can only say
            // `[failed: 1]`, and the ALERT is checked in HAProxy's own log.
            let cfg = lab.fixture.path("haproxy.cfg");
            let good = std::fs::read_to_string(&cfg).must(&format!("{label}: read config"));
            std::fs::write(&cfg, format!("{good}    vezasock_not_a_keyword on\n")).must(label);
            let failed = master::reload(&master_ep, t).await;
            let message = match failed {
                Err(Error::Refused { message, .. }) => message,
                other => panic!("{label}: failed reload gave {other:?}"),
            };
            if label == "2.6" {
                assert!(
                    message.contains("[failed: 1]"),
                    "{label}: failed reload message: {message}"
                );
                let log = lab.fixture.log();
                assert!(
                    log.contains("[ALERT]") && log.contains("vezasock_not_a_keyword"),
                    "{label}: HAProxy's stderr lacks the ALERT: {log}"
                );
            } else {
                assert!(
                    message.contains("[ALERT]") && message.contains("vezasock_not_a_keyword"),
                    "{label}: failed reload message lacks HAProxy's ALERT: {message}"
                );
            }
            let proc = ms
                .show_proc()
                .await
                .must(&format!("{label}: master session after failed reload"));
            assert_eq!(
                proc.master.failed_reloads,
                Some(1),
                "{label}: [failed: 1] {proc:?}"
            );
            let info = kept
                .show_info()
                .await
                .must(&format!("{label}: show info after failed reload"));
            assert_eq!(
                info.pid(),
                Some(new_worker),
                "{label}: the worker keeps serving"
            );

            // Restore and reload through a master session: good again.
            std::fs::write(&cfg, &good).must(label);
            let report = ms
                .reload()
                .await
                .must(&format!("{label}: reload after restore"));
            assert_eq!(
                report.new_workers.len(),
                1,
                "{label}: restored reload {report:?}"
            );
            let proc = ms
                .show_proc()
                .await
                .must(&format!("{label}: show proc after restore"));
            assert_eq!(
                proc.master.failed_reloads,
                Some(0),
                "{label}: [failed: 0] {proc:?}"
            );
            assert_eq!(
                proc.workers.first().map(|p| p.pid),
                Some(report.new_workers[0]),
                "{label}: {proc:?}"
            );
            let reply = one_shot(&admin(&lab), &ShowInfo, t).await.must(label);
            match reply.parse().must(label) {
                Parsed::Info(info) => assert_eq!(
                    info.pid(),
                    Some(report.new_workers[0]),
                    "{label}: serving worker"
                ),
                other => panic!("{label}: show info parsed as {other:?}"),
            }
            eprintln!(
                "runtime client: master routing, reloads, reconnect ok on {}",
                v.version_line
            );
        });
    }
);

per_version!(
    exec_chain_prints_each_reply_as_one_shot_does,
    super::exec_chain_prints_each_reply_as_one_shot_does
);
per_version!(
    exec_survives_a_closed_stdout,
    super::exec_survives_a_closed_stdout
);
per_version!(
    exec_json_names_the_admin_flags_and_check_codes,
    super::exec_json_names_the_admin_flags_and_check_codes
);
per_version!(
    typed_commands_and_batches,
    super::typed_commands_and_batches
);

/// `vezasock exec --socket <admin.sock> [extra…] -- <line>`, stdout captured.
fn exec_binary(lab: &Lab, extra: &[&str], line: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_vezasock"))
        .arg("exec")
        .arg("--socket")
        .arg(lab.fixture.admin_sock())
        .args(extra)
        .args(["--", line])
        .env_remove("VEZASOCK_MASTER_SOCKET")
        .output()
        .unwrap_or_else(|e| panic!("run vezasock exec: {e}"))
}

/// Issue 10: a chain leaked the session's `[6]: ` prefix (`show version` printed
/// `[6]: 3.2.26-1`) in text and in the JSON `value`; each reply must print as its one-shot
/// call prints it.
fn exec_chain_prints_each_reply_as_one_shot_does(v: &haproxy::Haproxy) {
    let label = v.label;
    let lab = Lab::start(v);
    let one = |line: &str| {
        let out = exec_binary(&lab, &[], line);
        assert!(out.status.success(), "{label}: {line}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let version = one("show version");
    let weight = one("get weight be_staging_api/blue");
    assert!(
        version.starts_with(label) && version.ends_with("\n\n"),
        "{label}: show version printed {version:?}"
    );
    let chain = one("show version; get weight be_staging_api/blue");
    assert_eq!(chain, format!("{version}{weight}"), "{label}: chain");

    let out = exec_binary(
        &lab,
        &["--json"],
        "show version; get weight be_staging_api/blue",
    );
    assert!(out.status.success(), "{label}: --json chain: {out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{label}: --json chain is not JSON: {e}: {out:?}"));
    assert_eq!(json[0]["reply"]["kind"], "text", "{label}: {json}");
    assert_eq!(
        json[0]["reply"]["value"].as_str(),
        Some(version.trim_end()),
        "{label}: {json}"
    );
    assert_eq!(json[1]["reply"]["kind"], "weight", "{label}: {json}");
}

/// Issue 10: `vezasock exec -- show stat | head -1` panicked (exit 101, "failed printing to
/// stdout: Broken pipe") in one-shot, chain and `--json` mode. Here the reader is gone
/// before the first byte is written, so every write meets a closed pipe.
fn exec_survives_a_closed_stdout(v: &haproxy::Haproxy) {
    let label = v.label;
    let lab = Lab::start(v);
    for (extra, line) in [
        (&[][..], "show stat"),
        (&[][..], "show stat; show info"),
        (&["--json"][..], "show stat"),
        (&["--json"][..], "show stat; show info"),
    ] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_vezasock"))
            .arg("exec")
            .arg("--socket")
            .arg(lab.fixture.admin_sock())
            .args(extra)
            .args(["--", line])
            .env_remove("VEZASOCK_MASTER_SOCKET")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{label}: spawn vezasock: {e}"));
        drop(child.stdout.take());
        let out = child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("{label}: wait for vezasock: {e}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{label}: {extra:?} {line}: {stderr}"
        );
        assert!(
            stderr.is_empty(),
            "{label}: {extra:?} {line}: a closed pipe is quiet: {stderr}"
        );
    }
}

/// Issue 10: `exec --json -- show servers state` gave `"admin": 8` and nothing else. The JSON
/// keeps the number and names the flags; the check codes get their names too.
fn exec_json_names_the_admin_flags_and_check_codes(v: &haproxy::Haproxy) {
    let label = v.label;
    let lab = Lab::start(v);
    for (state, admin, flags) in [
        ("drain", 8, vec!["FDRAIN"]),
        ("maint", 1, vec!["FMAINT"]),
        ("ready", 0, vec![]),
    ] {
        let out = exec_binary(
            &lab,
            &[],
            &format!("set server be_staging_api/blue state {state}"),
        );
        assert!(out.status.success(), "{label}: {state}: {out:?}");
        let out = exec_binary(&lab, &["--json"], "show servers state be_staging_api");
        assert!(out.status.success(), "{label}: {state}: {out:?}");
        let json: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{label}: not JSON: {e}: {out:?}"));
        let rows = json["reply"]["value"]["rows"]
            .as_array()
            .unwrap_or_else(|| panic!("{label}: no rows: {json}"));
        let blue = rows
            .iter()
            .find(|r| r["srv_name"] == "blue")
            .unwrap_or_else(|| panic!("{label}: no blue row: {json}"));
        assert_eq!(blue["admin"], admin, "{label}: {state}: {blue}");
        assert_eq!(
            blue["admin_flags"],
            serde_json::json!(flags),
            "{label}: {state}: {blue}"
        );
        for row in rows {
            assert!(
                row["check_status_name"].is_string() && row["check_result_name"].is_string(),
                "{label}: {state}: check codes not named: {row}"
            );
            assert!(
                row["check_state_flags"]
                    .as_array()
                    .is_some_and(|f| f.iter().any(|n| n == "CONFIGURED")),
                "{label}: {state}: {row}"
            );
        }
    }
}

/// The typed API on a real HAProxy: `Session::run`, `run_each`, a `Batch` of mixed commands
/// with typed replies (a refusal reported with its position), and `show ssl cert` (the
/// command added in one file) on a TLS frontend serving the test certificate.
fn typed_commands_and_batches(v: &haproxy::Haproxy) {
    use vezasock::runtime::command::info::ShowInfo;
    use vezasock::runtime::command::servers::{GetWeight, ShowServersState};
    use vezasock::runtime::command::ssl::{CertRef, ShowSslCert, ShowSslCerts};
    use vezasock::runtime::command::Name;
    use vezasock::runtime::oneshot::one_shot_run;
    use vezasock::runtime::session::Batch;
    let label = v.label;
    let config = format!(
        r#"global
    stats socket {{dir}}/admin.sock mode 600 level admin
    stats socket {{dir}}/plain.sock mode 600 level admin

defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s

frontend fe_tls
    bind 127.0.0.1:{tls} ssl crt {{dir}}/site.pem
    default_backend be_app

backend be_app
    server blue 127.0.0.1:{down} weight 40
    server green 127.0.0.1:{down} weight 60
"#,
        tls = crate::support::ports::free_port(),
        down = crate::support::ports::free_port(),
    );
    let pem = include_str!("../grammar/lab/ssl/site.pem");
    let fixture = haproxy::Fixture::start_with_files(v, &config, &[("site.pem", pem)]);
    let site = fixture.path("site.pem").display().to_string();
    let admin = Endpoint::Unix(fixture.admin_sock());
    let name = |n: &str| Name::new("server", n).must(label);
    block_on(async {
        let mut s = Session::connect(&admin, timeouts()).await.must(label);
        let certs = s.run(&ShowSslCerts).await.must(label);
        assert_eq!(
            certs.certs,
            std::slice::from_ref(&site),
            "{label}: {certs:?}"
        );
        let cert = s
            .run(&ShowSslCert {
                cert: CertRef::new(&site).must(label),
            })
            .await
            .must(label);
        assert_eq!(cert.filename(), Some(site.as_str()), "{label}: {cert:?}");
        assert_eq!(cert.status(), Some("Used"), "{label}");
        assert_eq!(
            cert.alt_names(),
            ["DNS:edge.vezasock.test", "DNS:www.vezasock.test"],
            "{label}"
        );
        let missing = ShowSslCert {
            cert: CertRef::new(&format!("{site}.nosuch")).must(label),
        };
        assert_refused(
            s.run(&missing).await,
            label,
            "Can't display the certificate",
        );
        // Without severity-output: the command's own error text is still a refusal.
        let plain = Endpoint::Unix(fixture.path("plain.sock"));
        assert_refused(
            one_shot_run(&plain, &missing, timeouts()).await,
            &format!("{label}: one-shot"),
            "Can't display the certificate",
        );

        let weights = s
            .run_each(&[
                GetWeight {
                    backend: Name::new("backend", "be_app").must(label),
                    server: name("blue"),
                },
                GetWeight {
                    backend: Name::new("backend", "be_app").must(label),
                    server: name("green"),
                },
            ])
            .await
            .must(label);
        let current: Vec<u32> = weights.iter().map(|w| w.current).collect();
        assert_eq!(current, [40, 60], "{label}");

        let mut batch = Batch::new();
        let info = batch.push(ShowInfo).must(label);
        let states = batch.push(ShowServersState::default()).must(label);
        let replies = s.run_batch(batch).await.must(label);
        let version = replies.take(&info).must(label);
        assert!(
            version.version().is_some_and(|v| v.starts_with(label)),
            "{label}: {version:?}"
        );
        let states = replies.take(&states).must(label);
        assert!(
            states.find("be_app", "green").is_some(),
            "{label}: {states:?}"
        );

        let mut batch = Batch::new();
        batch.push(ShowInfo).must(label);
        batch
            .push(GetWeight {
                backend: Name::new("backend", "be_app").must(label),
                server: name("nosuch"),
            })
            .must(label);
        let index = assert_refused(s.run_batch(batch).await, label, "No such server.");
        assert_eq!(index, Some(2), "{label}");
        // Still in step after the refusal.
        assert!(s.run(&ShowInfo).await.is_ok(), "{label}");
    });

    // `exec --json` reads the same line through the family's raw entry; an unknown name is
    // refused (exit 1) even on a socket without severity-output.
    let exec = |socket: &std::path::Path, line: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_vezasock"))
            .arg("exec")
            .arg("--socket")
            .arg(socket)
            .args(["--json", "--", line])
            .env_remove("VEZASOCK_MASTER_SOCKET")
            .output()
            .unwrap_or_else(|e| panic!("{label}: run vezasock exec: {e}"))
    };
    let out = exec(&fixture.admin_sock(), &format!("show ssl cert {site}"));
    assert!(out.status.success(), "{label}: {out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{label}: not JSON: {e}: {out:?}"));
    assert_eq!(json["reply"]["kind"], "ssl_cert", "{label}: {json}");
    assert_eq!(
        json["reply"]["value"]["fields"][0]["value"].as_str(),
        Some(site.as_str()),
        "{label}: {json}"
    );
    let out = exec(
        &fixture.path("plain.sock"),
        &format!("show ssl cert {site}.nosuch"),
    );
    assert_eq!(out.status.code(), Some(1), "{label}: {out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Can't display the certificate"),
        "{label}: {out:?}"
    );
}
