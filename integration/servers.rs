//! `vezasock drain / maint / ready` against a real local edge, on every HAProxy version: the
//! binary is run with the LocalEdge's paths, and the effect is checked three ways: HAProxy's
//! `show servers state`, HTTP answers through the edge, and the files on disk. The last part
//! flips a color, drains and maints, then reloads and fully restarts HAProxy and checks that the
//! colors and the server states survive both.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vezasock::demo::http::get;
use vezasock::demo::LocalEdge;
use vezasock::runtime::command::servers::AdminFlags;
use vezasock::runtime::endpoint::Endpoint;
use vezasock::runtime::master;
use vezasock::topology::ACTIVE_COLOR_MAP;

use crate::edge::{self, wait_answer};
use crate::support::haproxy::{per_version, Haproxy};
use crate::support::run::{Run, Vezasock};
use crate::switch::{admin_session, rt, T};

/// One run of the binary: exit code, stdout, stderr.
fn vezasock(edge: &LocalEdge, args: &[&str]) -> Run {
    Vezasock::edge(edge, args).run()
}

/// The admin bits of `backend/server` as the running HAProxy shows them.
fn admin(edge: &LocalEdge, backend: &str, server: &str) -> AdminFlags {
    crate::switch::admin_state(edge, backend, server)
}

/// Raw runtime commands on the admin socket, every reply checked.
fn runtime(edge: &LocalEdge, lines: &[&str]) {
    rt().block_on(async {
        let mut s = admin_session(edge, "admin socket").await;
        for line in lines {
            let command = vezasock::runtime::command::RawLine::new(line)
                .unwrap_or_else(|e| panic!("{line}: {e}"));
            s.send_line(&command)
                .await
                .unwrap_or_else(|e| panic!("{line}: {e}"));
        }
    })
}

/// `scur` of one server.
fn sessions(edge: &LocalEdge, backend: &str, server: &str) -> u64 {
    rt().block_on(async {
        let mut s = admin_session(edge, "admin socket").await;
        let table = s
            .show_stat(None)
            .await
            .unwrap_or_else(|e| panic!("show stat: {e}"));
        let scur = table
            .iter()
            .find(|r| r.pxname() == Some(backend) && r.svname() == Some(server))
            .and_then(|r| r.scur());
        scur.unwrap_or_else(|| panic!("no scur for {backend}/{server}"))
    })
}

fn expect_status(edge: &LocalEdge, host: &str, path: &str, want: u16, label: &str) {
    let got = get(edge.http, host, path, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    assert_eq!(got.status, want, "{label}: {host}{path} gave {got:?}");
}

/// A streaming GET (`?stream=N`, 100 ms per chunk) read to its end in a thread: returns the
/// bytes received and how long it took.
pub fn open_stream(http: SocketAddr, host: &str, chunks: u32) -> JoinHandle<(String, Duration)> {
    let host = host.to_string();
    std::thread::spawn(move || {
        let start = Instant::now();
        let mut s = TcpStream::connect(http).unwrap_or_else(|e| panic!("connect: {e}"));
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap_or_else(|e| panic!("{e}"));
        let req = format!(
            "GET /stream/x?stream={chunks} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n"
        );
        s.write_all(req.as_bytes())
            .unwrap_or_else(|e| panic!("write: {e}"));
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        (String::from_utf8_lossy(&buf).into_owned(), start.elapsed())
    })
}

/// Waits until `backend/server` has at least one current session (bounded).
pub fn wait_busy(edge: &LocalEdge, backend: &str, server: &str, label: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while sessions(edge, backend, server) == 0 {
        assert!(
            Instant::now() < deadline,
            "{label}: {backend}/{server} never got a session"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn journal_actions(edge: &LocalEdge) -> String {
    read(&edge.topology.paths.state_dir.join("journal.jsonl"))
}

per_version!(
    drain_maint_ready_are_applied_written_through_and_survive_reload_and_restart,
    |v: &Haproxy| {
        let started = Instant::now();
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut edge = edge::start(v, dir.path());
        let l = v.label;
        let paths = edge.topology.paths.clone();
        wait_answer(&edge, "staging.veza.fr", "/api/x", "staging api blue", l);

        // --- maint then ready on one server ---
        let r = vezasock(
            &edge,
            &[
                "maint",
                "staging",
                "blue",
                "--force",
                "--component",
                "api",
                "--server",
                "blue_1",
            ],
        );
        assert_eq!(r.code, Some(0), "{l}: maint: {}{}", r.out, r.err);
        assert!(
            r.out.contains("be_staging_api_blue/blue_1: ready -> maint"),
            "{l}: {}",
            r.out
        );
        assert!(
            admin(&edge, "be_staging_api_blue", "blue_1").has(AdminFlags::FORCED_MAINT),
            "{l}"
        );
        expect_status(&edge, "staging.veza.fr", "/api/x", 503, l);
        assert!(
            read(&paths.state_dir.join("server-admin.json"))
                .contains("\"be_staging_api_blue/blue_1\": \"maint\""),
            "{l}"
        );
        let dump = read(&paths.server_state_file);
        let row = dump
            .lines()
            .find(|x| x.contains(" be_staging_api_blue ") && x.contains(" blue_1 "))
            .unwrap_or_else(|| panic!("{l}: no row in {dump}"));
        // Column 7 is srv_admin_state: forced maint (1).
        assert_eq!(row.split_whitespace().nth(6), Some("1"), "{l}: {row}");
        let r = vezasock(
            &edge,
            &[
                "ready",
                "staging",
                "blue",
                "--component",
                "api",
                "--server",
                "blue_1",
                "--json",
            ],
        );
        assert_eq!(r.code, Some(0), "{l}: ready: {}{}", r.out, r.err);
        let json: serde_json::Value =
            serde_json::from_str(&r.out).unwrap_or_else(|e| panic!("{l}: {e}: {}", r.out));
        assert_eq!(json["servers"][0]["before"], "maint", "{l}: {json}");
        assert_eq!(json["servers"][0]["after"], "ready", "{l}: {json}");
        assert_eq!(admin(&edge, "be_staging_api_blue", "blue_1").0, 0, "{l}");
        wait_answer(&edge, "staging.veza.fr", "/api/x", "staging api blue", l);
        let journal = journal_actions(&edge);
        assert!(
            journal.contains("\"action\":\"maint\"") && journal.contains("\"action\":\"ready\""),
            "{l}: {journal}"
        );

        // --- drain --wait: a too-short deadline fails and leaves the server in drain; a long
        // one waits for the open streaming response to end, then maint ---
        let stream = open_stream(edge.http, "staging.veza.fr", 15);
        wait_busy(&edge, "be_staging_stream_blue", "blue_1", l);
        let r = vezasock(
            &edge,
            &[
                "drain",
                "staging",
                "blue",
                "--force",
                "--component",
                "stream",
                "--wait",
                "300ms",
                "--then",
                "maint",
            ],
        );
        assert_eq!(r.code, Some(1), "{l}: short drain: {}{}", r.out, r.err);
        assert!(
            r.err.contains("be_staging_stream_blue/blue_1"),
            "{l}: {}",
            r.err
        );
        // Again on a terminal: the live countdown shows the busy session.
        let short = [
            "drain",
            "staging",
            "blue",
            "--force",
            "--component",
            "stream",
            "--wait",
            "300ms",
        ];
        if let Some(r) = Vezasock::on_tty(&short).map(|v| v.edge_paths(&edge).run()) {
            assert_eq!(
                r.code,
                Some(1),
                "{l}: short drain on a tty: {}{}",
                r.out,
                r.err
            );
            assert!(
                r.out.contains("draining: 1 session(s) on 1 server(s)"),
                "{l}: no countdown: {:?}",
                r.out
            );
        }
        let bits = admin(&edge, "be_staging_stream_blue", "blue_1");
        assert!(bits.is_drain() && !bits.is_maint(), "{l}: {bits:?}");
        let t0 = Instant::now();
        let r = vezasock(
            &edge,
            &[
                "drain",
                "staging",
                "blue",
                "--force",
                "--component",
                "stream",
                "--wait",
                "10s",
                "--then",
                "maint",
                "--json",
            ],
        );
        let took = t0.elapsed();
        assert_eq!(r.code, Some(0), "{l}: drain: {}{}", r.out, r.err);
        let json: serde_json::Value =
            serde_json::from_str(&r.out).unwrap_or_else(|e| panic!("{l}: {e}: {}", r.out));
        assert_eq!(json["wait"]["drained"], true, "{l}: {json}");
        assert_eq!(json["then"]["action"], "maint", "{l}: {json}");
        let (body, _) = stream
            .join()
            .unwrap_or_else(|_| panic!("{l}: stream thread"));
        assert_eq!(
            body.matches("staging stream blue").count(),
            15,
            "{l}: the drained stream was cut: {body}"
        );
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(9),
            "{l}: drain took {took:?}"
        );
        assert!(
            admin(&edge, "be_staging_stream_blue", "blue_1").has(AdminFlags::FORCED_MAINT),
            "{l}"
        );
        let r = vezasock(
            &edge,
            &["ready", "staging", "blue", "--component", "stream"],
        );
        assert_eq!(r.code, Some(0), "{l}: {}{}", r.out, r.err);

        // --- a DOWN server counts as drained, and maint --kill-sessions ends its stream ---
        let stream = open_stream(edge.http, "veza.fr", 100);
        wait_busy(&edge, "be_prod_stream_blue", "blue_1", l);
        runtime(
            &edge,
            &[
                "disable health be_prod_stream_blue/blue_1",
                "set server be_prod_stream_blue/blue_1 health down",
            ],
        );
        let t0 = Instant::now();
        let r = vezasock(
            &edge,
            &[
                "drain",
                "prod",
                "blue",
                "--force",
                "--component",
                "stream",
                "--wait",
                "8s",
            ],
        );
        assert_eq!(
            r.code,
            Some(0),
            "{l}: drain of a DOWN server: {}{}",
            r.out,
            r.err
        );
        assert!(
            t0.elapsed() < Duration::from_secs(4),
            "{l}: waited {:?} for a DOWN server",
            t0.elapsed()
        );
        assert!(
            sessions(&edge, "be_prod_stream_blue", "blue_1") > 0,
            "{l}: the stream should still be open"
        );
        let r = vezasock(
            &edge,
            &[
                "maint",
                "prod",
                "blue",
                "--force",
                "--component",
                "stream",
                "--kill-sessions",
            ],
        );
        assert_eq!(
            r.code,
            Some(0),
            "{l}: maint --kill-sessions: {}{}",
            r.out,
            r.err
        );
        let (body, took) = stream
            .join()
            .unwrap_or_else(|_| panic!("{l}: stream thread"));
        assert!(
            took < Duration::from_secs(8),
            "{l}: the stream was not ended ({took:?})"
        );
        assert!(
            body.matches("prod stream blue").count() < 100,
            "{l}: the stream ran to its end"
        );
        runtime(&edge, &["enable health be_prod_stream_blue/blue_1"]);
        let r = vezasock(&edge, &["ready", "prod", "blue", "--component", "stream"]);
        assert_eq!(r.code, Some(0), "{l}: {}{}", r.out, r.err);

        // --- any backend by name ---
        let r = vezasock(&edge, &["maint", "--backend", "forgejo_backend"]);
        assert_eq!(r.code, Some(0), "{l}: maint forgejo: {}{}", r.out, r.err);
        assert!(admin(&edge, "forgejo_backend", "srv_1").is_maint(), "{l}");
        expect_status(&edge, "forgejo.talas.group", "/", 503, l);
        let r = vezasock(
            &edge,
            &["ready", "--backend", "forgejo_backend", "--server", "srv_1"],
        );
        assert_eq!(r.code, Some(0), "{l}: ready forgejo: {}{}", r.out, r.err);
        wait_answer(&edge, "forgejo.talas.group", "/", "forgejo_backend", l);

        // --- the edge lock: --no-wait fails at once (exit 4) naming the holder ---
        {
            let state = vezasock::state::StateDir::single(paths.state_dir.clone());
            let mut holder = vezasock::state::Holder::current();
            holder.command = "test holder".to_string();
            let held =
                vezasock::state::EdgeLock::acquire(&state, vezasock::state::Wait::No, holder)
                    .unwrap_or_else(|e| panic!("{l}: lock: {e}"));
            let r = vezasock(
                &edge,
                &["maint", "--backend", "forgejo_backend", "--no-wait"],
            );
            assert_eq!(r.code, Some(4), "{l}: locked: {}{}", r.out, r.err);
            assert!(r.err.contains("test holder"), "{l}: {}", r.err);
            let r = vezasock(
                &edge,
                &[
                    "maint",
                    "--backend",
                    "forgejo_backend",
                    "--lock-timeout",
                    "200ms",
                ],
            );
            assert_eq!(r.code, Some(4), "{l}: locked: {}{}", r.out, r.err);
            drop(held);
            assert_eq!(
                admin(&edge, "forgejo_backend", "srv_1").0,
                0,
                "{l}: changed while locked"
            );
        }

        // --- bad selections: exit 2 with the valid names, nothing changed ---
        let admin_before = read(&paths.state_dir.join("server-admin.json"));
        let journal_before = journal_actions(&edge);
        let state_before = read(&paths.server_state_file);
        for (args, names) in [
            (vec!["maint", "nope"], "staging, prod"),
            (
                vec!["drain", "staging", "--component", "db"],
                "api, stream, web",
            ),
            (
                vec!["maint", "staging", "blue", "--server", "blue_9"],
                "blue_1",
            ),
            (
                vec!["ready", "--backend", "nope_backend"],
                "forgejo_backend",
            ),
            (
                vec!["maint", "--backend", "forgejo_backend", "--server", "srv_2"],
                "srv_1",
            ),
            (vec!["maint", "staging", "purple"], "blue or green"),
        ] {
            let r = vezasock(&edge, &args);
            assert_eq!(r.code, Some(2), "{l}: {args:?}: {}{}", r.out, r.err);
            assert!(
                r.err.contains(names),
                "{l}: {args:?} should list {names:?}: {}",
                r.err
            );
        }
        assert_eq!(
            read(&paths.state_dir.join("server-admin.json")),
            admin_before,
            "{l}"
        );
        assert_eq!(journal_actions(&edge), journal_before, "{l}");
        assert_eq!(read(&paths.server_state_file), state_before, "{l}");

        // --- flip staging to green, drain prod api blue, maint staging web blue; then a reload
        // and a full restart keep the colors and the server states ---
        let map = paths.maps_dir.join(ACTIVE_COLOR_MAP);
        let text = read(&map);
        let flipped: String = if text
            .lines()
            .any(|x| x.split_whitespace().next() == Some("staging"))
        {
            text.lines()
                .map(|x| {
                    if x.split_whitespace().next() == Some("staging") {
                        "staging green".to_string()
                    } else {
                        x.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
                + "\n"
        } else {
            format!("{text}staging green\n")
        };
        std::fs::write(&map, flipped).unwrap_or_else(|e| panic!("{e}"));
        let map_ref = map.display().to_string();
        let flip = format!("set map {map_ref} staging green");
        let add = format!("add map {map_ref} staging green");
        let has_entry = text
            .lines()
            .any(|x| x.split_whitespace().next() == Some("staging"));
        runtime(
            &edge,
            &[if has_entry {
                flip.as_str()
            } else {
                add.as_str()
            }],
        );
        wait_answer(&edge, "staging.veza.fr", "/", "staging web green", l);
        let r = vezasock(
            &edge,
            &["drain", "prod", "blue", "--force", "--component", "api"],
        );
        assert_eq!(r.code, Some(0), "{l}: {}{}", r.out, r.err);
        let r = vezasock(&edge, &["maint", "staging", "blue", "--component", "web"]);
        assert_eq!(r.code, Some(0), "{l}: {}{}", r.out, r.err);

        let check = |edge: &LocalEdge, when: &str| {
            let drain = admin(edge, "be_prod_api_blue", "blue_1");
            assert!(
                drain.has(AdminFlags::FORCED_DRAIN) && !drain.is_maint(),
                "{l} after {when}: prod api blue {drain:?}"
            );
            assert!(
                admin(edge, "be_staging_web_blue", "blue_1").has(AdminFlags::FORCED_MAINT),
                "{l} after {when}: staging web blue"
            );
            assert_eq!(
                admin(edge, "be_staging_api_green", "green_1").0,
                0,
                "{l} after {when}"
            );
            wait_answer(
                edge,
                "staging.veza.fr",
                "/",
                "staging web green",
                &format!("{l} after {when}"),
            );
            wait_answer(
                edge,
                "veza.fr",
                "/",
                "prod web blue",
                &format!("{l} after {when}"),
            );
        };
        check(&edge, "the changes");
        let master = Endpoint::Master {
            socket: vezasock::runtime::endpoint::Socket::Unix(paths.master_socket.clone()),
            target: None,
        };
        rt().block_on(master::reload(&master, T))
            .unwrap_or_else(|e| panic!("{l}: reload: {e}\n{}", edge.log()));
        check(&edge, "a reload");
        edge.restart_haproxy()
            .unwrap_or_else(|e| panic!("{l}: restart: {e}"));
        check(&edge, "a full restart");
        eprintln!(
            "servers: {} passed in {:.1}s",
            v.version_line,
            started.elapsed().as_secs_f64()
        );
    }
);

// The live-color guard: `drain` / `maint` refuse to take every server of an env's live
// color out of rotation (its requests would get 503) unless `--force`; the same change on
// the color the env has just left goes through.
per_version!(
    taking_the_live_color_out_of_rotation_needs_force,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let edge = edge::start(v, dir.path());
        let l = v.label;
        wait_answer(&edge, "staging.veza.fr", "/api/x", "staging api blue", l);
        let journal_before = journal_actions(&edge);

        for args in [
            vec!["maint", "staging", "blue", "--component", "api"],
            vec!["drain", "staging", "--component", "web"],
        ] {
            let r = vezasock(&edge, &args);
            assert_eq!(r.code, Some(1), "{l}: {args:?}: {}{}", r.out, r.err);
            assert!(
                r.err.contains("live color") && r.err.contains("--force"),
                "{l}: {}",
                r.err
            );
        }
        assert!(
            admin(&edge, "be_staging_api_blue", "blue_1").0 == 0,
            "{l}: changed anyway"
        );
        assert!(
            admin(&edge, "be_staging_web_blue", "blue_1").0 == 0,
            "{l}: changed anyway"
        );
        assert_eq!(
            journal_actions(&edge),
            journal_before,
            "{l}: journalled a refused change"
        );
        wait_answer(&edge, "staging.veza.fr", "/api/x", "staging api blue", l);

        // After the flip, blue is not live any more: no --force needed.
        let r = vezasock(
            &edge,
            &["switch", "staging", "green", "--wait-healthy", "15s"],
        );
        assert_eq!(r.code, Some(0), "{l}: switch: {}{}", r.out, r.err);
        let r = vezasock(&edge, &["maint", "staging", "blue", "--component", "api"]);
        assert_eq!(
            r.code,
            Some(0),
            "{l}: maint of the old color: {}{}",
            r.out,
            r.err
        );
        assert!(
            admin(&edge, "be_staging_api_blue", "blue_1").is_maint(),
            "{l}"
        );
        // The green one is live now, and guarded.
        let r = vezasock(&edge, &["maint", "staging", "green", "--component", "api"]);
        assert_eq!(r.code, Some(1), "{l}: {}{}", r.out, r.err);
        let r = vezasock(
            &edge,
            &["maint", "staging", "green", "--component", "api", "--force"],
        );
        assert_eq!(r.code, Some(0), "{l}: --force: {}{}", r.out, r.err);
        assert!(
            admin(&edge, "be_staging_api_green", "green_1").is_maint(),
            "{l}"
        );
    }
);
