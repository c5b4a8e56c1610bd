//! `vezasock switch / rollback / history` against a real local edge, on every HAProxy version:
//! 50 flips under load with no failed request and no reload, per-env atomicity, a streaming
//! response that survives the flips, the health gate, racing switches, and the input errors.
//! Also the helpers that `crash.rs` and `status.rs` share (waiting for health checks, reading
//! the files).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vezasock::demo::http::{get, Conn};
use vezasock::demo::LocalEdge;
use vezasock::edge::deploy::switch::{switch, SwitchRequest};
use vezasock::edge::Edge;
use vezasock::render::maps::parse_colors;
use vezasock::runtime::command::servers::OpState;
use vezasock::runtime::command::AdminState as SetState;
use vezasock::runtime::endpoint::Endpoint;
use vezasock::runtime::session::{Session, Timeouts};
use vezasock::state::{Action, EdgeLock, Holder, Phase, StateDir, Wait};
use vezasock::topology::Color;

use crate::edge;
use crate::support::haproxy;
use crate::support::haproxy::per_version;
use crate::support::run::{vezasock, Run};

pub const T: Timeouts = Timeouts {
    connect: Duration::from_secs(5),
    reply: Duration::from_secs(10),
};

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio: {e}"))
}

/// A session on the edge's admin socket; `label` names the caller if the connect fails.
pub async fn admin_session(edge: &LocalEdge, label: &str) -> Session {
    let endpoint = Endpoint::Unix(edge.topology.paths.admin_socket.clone());
    Session::connect(&endpoint, T)
        .await
        .unwrap_or_else(|e| panic!("{label}: connect: {e}"))
}

/// The library's view of the local edge (same paths the binary gets).
pub fn lib_edge(local: &LocalEdge) -> Edge {
    Edge::new(local.topology.clone())
}

/// Waits until every env server is running with a passed health check (the gate's rule).
pub fn wait_healthy(edge: &LocalEdge, label: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    rt().block_on(async {
        let mut s = admin_session(edge, label).await;
        loop {
            let state = s
                .show_servers_state(None)
                .await
                .unwrap_or_else(|e| panic!("{label}: {e}"));
            let bad: Vec<String> = state
                .rows
                .iter()
                .filter(|r| r.be_name.starts_with("be_"))
                .filter(|r| r.op != OpState::Running || r.check_result != 3)
                .map(|r| format!("{}/{}", r.be_name, r.srv_name))
                .collect();
            if bad.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{label}: not healthy after 20 s: {bad:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

/// Waits until `backend/server` has operational state `running` (or not).
pub fn wait_running(edge: &LocalEdge, backend: &str, server: &str, running: bool, label: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    rt().block_on(async {
        let mut s = admin_session(edge, label).await;
        loop {
            let state = s
                .show_servers_state(Some(backend))
                .await
                .unwrap_or_else(|e| panic!("{label}: {e}"));
            if state
                .find(backend, server)
                .is_some_and(|r| (r.op == OpState::Running) == running)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{label}: {backend}/{server} running={running} not reached in 20 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

/// The env's color in the running HAProxy's active-color map (`None`: no entry).
pub fn runtime_color(edge: &LocalEdge, env: &str) -> Option<Color> {
    let map = edge.topology.paths.active_color_map().display().to_string();
    rt().block_on(async {
        let mut s = admin_session(edge, "admin socket").await;
        let entries = s
            .show_map(&map, None)
            .await
            .unwrap_or_else(|e| panic!("show map: {e}"));
        entries
            .iter()
            .find(|e| e.key == env)
            .and_then(|e| Color::parse(&e.value))
    })
}

/// Sets a map entry or a server state behind vezasock's back.
pub fn admin_set_map(edge: &LocalEdge, env: &str, color: Color) {
    let map = edge.topology.paths.active_color_map().display().to_string();
    rt().block_on(async {
        let mut s = admin_session(edge, "admin socket").await;
        s.set_map(&map, env, color.as_str())
            .await
            .unwrap_or_else(|e| panic!("set map: {e}"));
    });
}

pub fn admin_set_server(edge: &LocalEdge, backend: &str, server: &str, state: SetState) {
    rt().block_on(async {
        let mut s = admin_session(edge, "admin socket").await;
        s.set_server_state(backend, server, state)
            .await
            .unwrap_or_else(|e| panic!("set server: {e}"));
    });
}

/// The env's color in the map file on disk.
pub fn file_color(edge: &LocalEdge, env: &str) -> Option<Color> {
    let text = std::fs::read_to_string(edge.topology.paths.active_color_map())
        .unwrap_or_else(|e| panic!("map file: {e}"));
    parse_colors(&text)
        .unwrap_or_else(|e| panic!("map file does not parse: {e}"))
        .get(env)
        .copied()
}

pub fn state_dir(edge: &LocalEdge) -> StateDir {
    StateDir::single(edge.topology.paths.state_dir.clone())
}

/// The worker pid from `show info`.
pub fn worker_pid(edge: &LocalEdge) -> u32 {
    rt().block_on(async {
        let mut s = admin_session(edge, "admin socket").await;
        s.show_info()
            .await
            .ok()
            .and_then(|i| i.pid())
            .unwrap_or_else(|| panic!("no worker pid"))
    })
}

/// Starts an edge and waits for its health checks.
pub fn healthy_edge(v: &haproxy::Haproxy, dir: &std::path::Path) -> LocalEdge {
    let e = edge::start(v, dir);
    wait_healthy(&e, v.label);
    e
}

/// What a load client saw for one request.
struct Seen {
    sent: Instant,
    host: &'static str,
    path: &'static str,
    answer: Result<(u16, String), String>,
}

const TARGETS: [(&str, &str); 4] = [
    ("staging.veza.fr", "/api/x"),
    ("staging.veza.fr", "/stream/x"),
    ("staging.veza.fr", "/"),
    ("veza.fr", "/api/x"),
];

fn load_client(
    addr: std::net::SocketAddr,
    keepalive: bool,
    index: usize,
    stop: Arc<AtomicBool>,
) -> Vec<Seen> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut conn = Conn::new(addr, Duration::from_secs(5));
    let mut seen = Vec::new();
    let mut n = index;
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline && seen.len() < 50_000 {
        let (host, path) = TARGETS[n % TARGETS.len()];
        n += 1;
        let sent = Instant::now();
        let answer = if keepalive {
            conn.get(host, path)
        } else {
            get(addr, host, path, Duration::from_secs(5))
        };
        seen.push(Seen {
            sent,
            host,
            path,
            answer: answer
                .map(|a| (a.status, a.body))
                .map_err(|e| e.to_string()),
        });
        std::thread::sleep(Duration::from_millis(2));
    }
    seen
}

/// A streaming response started before the flips: returns the body once complete.
fn stream_client(
    addr: std::net::SocketAddr,
    chunks: u32,
    started: std::sync::mpsc::Sender<()>,
) -> Result<String, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let req = format!("GET /stream/live?stream={chunks} HTTP/1.1\r\nhost: staging.veza.fr\r\nconnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut body = Vec::new();
    let mut buf = [0u8; 4096];
    let mut signalled = false;
    loop {
        let n = s
            .read(&mut buf)
            .map_err(|e| format!("after {} bytes: {e}", body.len()))?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&buf[..n]);
        if !signalled && body.windows(19).any(|w| w == b"staging stream blue") {
            let _ = started.send(());
            signalled = true;
        }
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

per_version!(
    fifty_flips_under_load_fail_no_request_reload_nothing_and_flip_every_component_at_once,
    |v: &haproxy::Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let local = healthy_edge(v, dir.path());
        let lib = lib_edge(&local);
        let label = v.label;
        let master_before = local.master_pid();
        let worker_before = worker_pid(&local);

        // A long response opened before the first flip: 30 chunks, 100 ms apart.
        let (tx, rx) = std::sync::mpsc::channel();
        let addr = local.http;
        let streamer = std::thread::spawn(move || stream_client(addr, 30, tx));
        rx.recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("{label}: stream did not start: {e}"));

        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..6)
            .map(|i| {
                let stop = stop.clone();
                std::thread::spawn(move || load_client(addr, i < 3, i, stop))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(100));

        // 50 alternating flips: even ones through the binary, odd ones through the library.
        let mut flips: Vec<(Instant, Instant, Color)> = Vec::new();
        let runtime = rt();
        let mut color = Color::Blue;
        for i in 0..50 {
            color = color.other();
            let start = Instant::now();
            if i % 2 == 0 {
                let sha = format!("sha{i:04}");
                let run = vezasock(
                    &local,
                    &["switch", "staging", color.as_str(), "--sha", &sha],
                );
                assert_eq!(run.code, Some(0), "{label}: flip {i}: {run:?}");
                assert!(
                    run.out
                        .contains(&format!("switched {} → {color}", color.other())),
                    "{label}: {}",
                    run.out
                );
            } else {
                let req = SwitchRequest::new("staging", color);
                let report = runtime
                    .block_on(switch(&lib, &req, &mut |_| {}))
                    .unwrap_or_else(|e| panic!("{label}: flip {i}: {e}"));
                assert_eq!(
                    (report.from, report.to, report.noop),
                    (color.other(), color, false),
                    "{label}"
                );
            }
            let done = Instant::now();
            // Atomic per env: right after the command returns, every component answers the
            // new color (fresh connections, so no keep-alive reuse hides anything).
            for path in ["/api/a", "/stream/a", "/"] {
                let a = get(addr, "staging.veza.fr", path, Duration::from_secs(5))
                    .unwrap_or_else(|e| panic!("{label}: flip {i} {path}: {e}"));
                assert_eq!(a.status, 200, "{label}: flip {i} {path}");
                assert!(
                    a.body.ends_with(color.as_str()),
                    "{label}: flip {i}: {path} answered {:?} after the switch to {color}",
                    a.body
                );
            }
            flips.push((start, done, color));
            std::thread::sleep(Duration::from_millis(10));
        }
        stop.store(true, Ordering::Relaxed);
        let seen: Vec<Seen> = clients
            .into_iter()
            .flat_map(|c| c.join().unwrap_or_default())
            .collect();

        // Zero failed requests, and every request sent after a flip's verification (and
        // before the next flip began) saw that flip's color, on every component; prod blue.
        assert!(seen.len() > 200, "{label}: only {} requests", seen.len());
        let mut checked = 0;
        for s in &seen {
            let (status, body) = s
                .answer
                .as_ref()
                .unwrap_or_else(|e| panic!("{label}: {}{} failed: {e}", s.host, s.path));
            assert_eq!(
                *status, 200,
                "{label}: {}{} → {status} {body}",
                s.host, s.path
            );
            if s.host == "veza.fr" {
                assert_eq!(body, "prod api blue", "{label}: prod was touched");
                continue;
            }
            let expected = match flips.iter().rposition(|(start, _, _)| *start <= s.sent) {
                None => Some(Color::Blue),
                Some(k) => {
                    let (_, done, c) = flips[k];
                    (s.sent > done).then_some(c)
                }
            };
            if let Some(c) = expected {
                checked += 1;
                assert!(
                    body.ends_with(c.as_str()),
                    "{label}: {}{} sent after the switch to {c} answered {body:?}",
                    s.host,
                    s.path
                );
            }
        }
        assert!(
            checked > 100,
            "{label}: only {checked} requests fell between flips"
        );

        let body = streamer
            .join()
            .unwrap_or_else(|_| panic!("{label}: stream thread"))
            .unwrap_or_else(|e| panic!("{label}: stream: {e}"));
        assert!(body.starts_with("HTTP/1.1 200"), "{label}: {body}");
        assert_eq!(
            body.matches("staging stream blue\n").count(),
            30,
            "{label}: stream cut: {body}"
        );
        assert!(
            body.ends_with("0\r\n\r\n"),
            "{label}: stream not finished: {body}"
        );

        assert_eq!(local.master_pid(), master_before, "{label}: master changed");
        assert_eq!(
            worker_pid(&local),
            worker_before,
            "{label}: worker changed: HAProxy reloaded"
        );
        let state = state_dir(&local);
        assert_eq!(
            state.recorded_color("staging").ok().flatten(),
            Some(color),
            "{label}"
        );
        assert_eq!(
            state.recorded_color("prod").ok().flatten(),
            None,
            "{label}: prod state written"
        );
        let history = state.history("staging").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(history.len(), 5, "{label}");
        assert_eq!(history[0].color, color, "{label}");
        assert_eq!(
            history[1].sha.as_deref(),
            Some("sha0048"),
            "{label}: {history:?}"
        );
        assert_eq!(file_color(&local, "staging"), Some(color), "{label}");
        assert_eq!(runtime_color(&local, "prod"), Some(Color::Blue), "{label}");
        eprintln!(
            "{label}: 50 flips, {} requests, 0 failed, no reload",
            seen.len()
        );
    }
);

per_version!(
    the_gate_refuses_a_down_or_maint_color_and_wait_healthy_waits_for_it,
    |v: &haproxy::Haproxy| {
        let label = v.label;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut local = healthy_edge(v, dir.path());
        let state = state_dir(&local);
        let map_path = local.topology.paths.active_color_map();
        let map_before = std::fs::read(&map_path).unwrap_or_default();

        // Bad input: exit 2, nothing touched (not even the journal).
        for (args, code) in [
            (vec!["switch", "nosuch", "green"], 2),
            (vec!["switch", "staging", "red"], 2),
            (vec!["switch", "staging", "green", "--sha", "a b"], 2),
        ] {
            let run = vezasock(&local, &args);
            assert_eq!(run.code, Some(code), "{label}: {args:?}: {run:?}");
        }
        // Already live: a no-op that says so.
        let run = vezasock(&local, &["switch", "staging", "blue"]);
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        assert!(run.out.contains("already blue"), "{label}: {}", run.out);
        // Dry run: the steps, no change.
        let run = vezasock(&local, &["switch", "staging", "green", "--dry-run"]);
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        assert!(run.out.contains("would"), "{label}: {}", run.out);
        assert!(
            state
                .journal_read()
                .map(|j| j.entries.is_empty())
                .unwrap_or(false),
            "{label}: journal written"
        );

        // A DOWN server of the target color: refused, nothing changed.
        assert!(local.set_backend_running("be_staging_api_green", "green_1", false));
        wait_running(&local, "be_staging_api_green", "green_1", false, label);
        let run = vezasock(&local, &["switch", "staging", "green", "--json"]);
        assert_eq!(run.code, Some(1), "{label}: {run:?}");
        assert!(
            run.err.contains("be_staging_api_green/green_1")
                && run.err.contains("nothing was changed"),
            "{label}: {}",
            run.err
        );
        let json: serde_json::Value = serde_json::from_str(run.out.trim())
            .unwrap_or_else(|e| panic!("{label}: {e}: {}", run.out));
        assert_eq!(json["ok"], false, "{label}");
        assert_eq!(json["exit"], 1, "{label}");
        assert_eq!(
            std::fs::read(&map_path).unwrap_or_default(),
            map_before,
            "{label}: map file changed"
        );
        assert_eq!(
            runtime_color(&local, "staging"),
            Some(Color::Blue),
            "{label}"
        );
        assert_eq!(
            state.recorded_color("staging").ok().flatten(),
            None,
            "{label}"
        );
        // The refusal is journalled as its one `refused` line (no intent: nothing changed).
        let journal = state.journal_read().unwrap_or_else(|e| panic!("{e}"));
        let lines: Vec<_> = journal
            .entries
            .iter()
            .map(|e| (e.action, e.phase, e.before.as_deref(), e.after.as_deref()))
            .collect();
        assert_eq!(
            lines,
            [(Action::Switch, Phase::Refused, Some("blue"), Some("green"))],
            "{label}: {:?}",
            journal.entries
        );
        assert!(
            journal.entries[0]
                .detail
                .as_deref()
                .is_some_and(|d| d.contains("be_staging_api_green/green_1")),
            "{label}: {:?}",
            journal.entries
        );

        // --wait-healthy: the server comes back within the wait (rise 2 × inter 2 s).
        let restart_at = Instant::now() + Duration::from_millis(500);
        std::thread::sleep(restart_at.saturating_duration_since(Instant::now()));
        assert!(local.set_backend_running("be_staging_api_green", "green_1", true));
        let run = vezasock(
            &local,
            &[
                "switch",
                "staging",
                "green",
                "--wait-healthy",
                "15s",
                "--json",
            ],
        );
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        let json: serde_json::Value = serde_json::from_str(run.out.trim())
            .unwrap_or_else(|e| panic!("{label}: {e}: {}", run.out));
        assert_eq!(
            (json["ok"].as_bool(), json["to"].as_str()),
            (Some(true), Some("green")),
            "{label}: {json}"
        );
        assert!(
            json["steps"].as_array().is_some_and(|s| s.len() >= 6),
            "{label}: {json}"
        );
        assert_eq!(
            runtime_color(&local, "staging"),
            Some(Color::Green),
            "{label}"
        );

        // Target in maintenance: refused at once, even with a wait.
        admin_set_server(&local, "be_staging_stream_blue", "blue_1", SetState::Maint);
        let started = Instant::now();
        let run = vezasock(
            &local,
            &["switch", "staging", "blue", "--wait-healthy", "10s"],
        );
        assert_eq!(run.code, Some(1), "{label}: {run:?}");
        assert!(run.err.contains("MAINT"), "{label}: {}", run.err);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{label}: waited for a maint server"
        );
        admin_set_server(&local, "be_staging_stream_blue", "blue_1", SetState::Ready);

        // Rollback to the previous deploy (blue, no sha), then history shows both.
        let run = vezasock(&local, &["switch", "staging", "green"]);
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        let run = vezasock(&local, &["rollback", "staging"]);
        assert_eq!(
            run.code,
            Some(1),
            "{label}: only one deploy recorded: {run:?}"
        );
        assert!(run.err.contains("redeploy"), "{label}: {}", run.err);
        let run = vezasock(&local, &["switch", "staging", "blue", "--sha", "bbbb222"]);
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        let run = vezasock(&local, &["switch", "staging", "green", "--sha", "cccc333"]);
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        let run = vezasock(&local, &["rollback", "staging"]);
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        assert_eq!(
            runtime_color(&local, "staging"),
            Some(Color::Blue),
            "{label}"
        );
        let run = vezasock(&local, &["history", "staging", "--json"]);
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        let h: serde_json::Value =
            serde_json::from_str(run.out.trim()).unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(h[0]["color"], "blue", "{label}: {h}");
        assert_eq!(
            h[0]["sha"], "bbbb222",
            "{label}: rollback records the old sha: {h}"
        );
        assert_eq!(h[1]["sha"], "cccc333", "{label}: {h}");
        assert_eq!(h[0]["who"], "it-test", "{label}: {h}");
        // A rollback to a color whose servers are DOWN: refused, a redeploy is needed.
        assert!(local.set_backend_running("be_staging_web_green", "green_1", false));
        wait_running(&local, "be_staging_web_green", "green_1", false, label);
        let run = vezasock(&local, &["rollback", "staging", "--to", "cccc333"]);
        assert_eq!(run.code, Some(1), "{label}: {run:?}");
        assert!(run.err.contains("redeploy"), "{label}: {}", run.err);
        assert_eq!(
            runtime_color(&local, "staging"),
            Some(Color::Blue),
            "{label}"
        );
    }
);

per_version!(
    racing_switches_are_serialised_and_lose_no_history_line,
    |v: &haproxy::Haproxy| {
        let label = v.label;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let local = Arc::new(healthy_edge(v, dir.path()));
        let state = state_dir(&local);

        // A held lock and --no-wait: exit 4, naming the holder.
        {
            let _held = EdgeLock::acquire(&state, Wait::No, Holder::current())
                .unwrap_or_else(|e| panic!("{e}"));
            let run = vezasock(&local, &["switch", "staging", "green", "--no-wait"]);
            assert_eq!(run.code, Some(4), "{label}: {run:?}");
            assert!(
                run.err.contains(&format!("pid {}", std::process::id())),
                "{label}: {}",
                run.err
            );
            let run = vezasock(
                &local,
                &["switch", "staging", "green", "--lock-timeout", "300ms"],
            );
            assert_eq!(run.code, Some(4), "{label}: {run:?}");
        }

        // Six processes at once: three on staging, three on prod, each to its own color.
        let jobs = [
            ("staging", "green", "s1"),
            ("staging", "blue", "s2"),
            ("staging", "green", "s3"),
            ("prod", "green", "p1"),
            ("prod", "blue", "p2"),
            ("prod", "green", "p3"),
        ];
        let handles: Vec<_> = jobs
            .iter()
            .map(|(env, color, sha)| {
                let local = local.clone();
                let (env, color, sha) = (env.to_string(), color.to_string(), sha.to_string());
                std::thread::spawn(move || {
                    vezasock(&local, &["switch", &env, &color, "--sha", &sha])
                })
            })
            .collect();
        let runs: Vec<Run> = handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| panic!("thread")))
            .collect();
        for env in ["staging", "prod"] {
            let mut switched = 0;
            for (run, (e, _, _)) in runs.iter().zip(jobs.iter()) {
                assert_eq!(run.code, Some(0), "{label}: {run:?}");
                if *e == env && run.out.contains("switched") {
                    switched += 1;
                }
            }
            let history = state.history(env).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(history.len(), switched, "{label}: {env}: {history:?}");
            assert_eq!(
                Some(history[0].color),
                runtime_color(&local, env),
                "{label}: {env}"
            );
            assert_eq!(
                Some(history[0].color),
                state.recorded_color(env).ok().flatten(),
                "{label}: {env}"
            );
        }
        // Serialised: no operation started while another one was open.
        let journal = state.journal_read().unwrap_or_else(|e| panic!("{e}"));
        assert!(journal.skipped.is_empty(), "{label}: {:?}", journal.skipped);
        let mut open: Option<String> = None;
        for e in &journal.entries {
            match &open {
                Some(id) => assert_eq!(
                    &e.op_id, id,
                    "{label}: interleaved operations: {:?}",
                    journal.entries
                ),
                None => open = Some(e.op_id.clone()),
            }
            if e.phase.is_terminal() {
                open = None;
            }
        }
        assert!(open.is_none(), "{label}: an operation was left open");
    }
);

per_version!(
    switch_drain_old_then_rollback_is_instant_and_fails_no_request,
    drain_old_then_rollback
);

/// The README's CI line leaves the old color in DRAIN; the instant rollback must still work:
/// the flip puts the drained (alive, checked) servers back to READY first, then flips, with
/// no failed request under load and no `--wait-healthy`.
fn drain_old_then_rollback(v: &haproxy::Haproxy) {
    use vezasock::demo::load::{Load, LoadSpec};
    let label = v.label;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let local = healthy_edge(v, dir.path());
    let run = vezasock(&local, &["switch", "staging", "green", "--sha", "aaaa1111"]);
    assert_eq!(run.code, Some(0), "{label}: {run:?}");
    let load = Load::start(&LoadSpec {
        max_duration: Duration::from_secs(20),
        pause: Duration::from_millis(1),
        ..crate::support::load::spec(local.http, &TARGETS)
    });
    let run = vezasock(
        &local,
        &[
            "switch",
            "staging",
            "blue",
            "--sha",
            "bbbb2222",
            "--drain-old",
            "--drain-timeout",
            "2s",
        ],
    );
    assert_eq!(run.code, Some(0), "{label}: {run:?}");
    assert!(
        admin_state(&local, "be_staging_api_green", "green_1").is_drain(),
        "{label}: the old color is not in DRAIN"
    );
    let started = Instant::now();
    let run = vezasock(&local, &["rollback", "staging", "--json"]);
    let took = started.elapsed();
    let report = load.stop();
    assert_eq!(run.code, Some(0), "{label}: {run:?}");
    assert!(
        run.out.contains("DRAIN, put back to READY"),
        "{label}: {}",
        run.out
    );
    assert_eq!(
        runtime_color(&local, "staging"),
        Some(Color::Green),
        "{label}"
    );
    for backend in [
        "be_staging_api_green",
        "be_staging_stream_green",
        "be_staging_web_green",
    ] {
        let admin = admin_state(&local, backend, "green_1");
        assert!(!admin.is_drain(), "{label}: {backend} still in DRAIN");
    }
    // Written through: a reload would keep them READY.
    let recorded = state_dir(&local)
        .server_admin()
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    assert_eq!(
        recorded
            .get("be_staging_api_green/green_1")
            .map(|d| d.as_str()),
        Some("ready"),
        "{label}: {recorded:?}"
    );
    // One actor for the flip and the drain it ran (the binary runs with VEZASOCK_WHO=it-test).
    let journal = state_dir(&local)
        .journal_read()
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    let actions: std::collections::BTreeSet<&str> =
        journal.entries.iter().map(|e| e.action.as_str()).collect();
    assert!(actions.contains("drain"), "{label}: {actions:?}");
    let whos: std::collections::BTreeSet<&str> =
        journal.entries.iter().map(|e| e.who.as_str()).collect();
    assert_eq!(whos.into_iter().collect::<Vec<_>>(), ["it-test"], "{label}");
    assert!(report.sent() > 0, "{label}: no load sent");
    assert_eq!(report.failed(), 0, "{label}: {:?}", report.failures);
    // Instant: no waiting for a health check or a drain (generous bound for a slow machine).
    assert!(
        took < Duration::from_secs(5),
        "{label}: rollback took {took:?}"
    );
}

per_version!(
    switch_right_after_an_haproxy_start_waits_for_the_first_checks_by_itself,
    switch_after_start
);

/// Right after HAProxy starts, no server has a check result yet: the switch waits for the
/// first checks (bounded) without being asked to, instead of refusing.
fn switch_after_start(v: &haproxy::Haproxy) {
    let label = v.label;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let local = edge::start(v, dir.path());
    let run = vezasock(&local, &["switch", "staging", "green"]);
    assert_eq!(run.code, Some(0), "{label}: {run:?}");
    assert_eq!(
        runtime_color(&local, "staging"),
        Some(Color::Green),
        "{label}"
    );
}

/// The admin bits of `backend/server` as the running HAProxy shows them.
pub fn admin_state(
    edge: &LocalEdge,
    backend: &str,
    server: &str,
) -> vezasock::runtime::command::servers::AdminFlags {
    rt().block_on(async {
        let mut s = admin_session(edge, "admin socket").await;
        let state = s
            .show_servers_state(None)
            .await
            .unwrap_or_else(|e| panic!("show servers state: {e}"));
        state
            .find(backend, server)
            .unwrap_or_else(|| panic!("no {backend}/{server}"))
            .admin
    })
}
