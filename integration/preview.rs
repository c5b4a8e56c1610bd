//! `vezasock preview` and `switch --preview-check` against a real local edge, on every HAProxy
//! version: a token reaches the idle color through the edge and nothing else does (counted over
//! a bounded load), a replaced or revoked token stops working, a switch revokes it, and a
//! preview check that answers 5xx refuses the switch with traffic untouched.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use vezasock::demo::LocalEdge;
use vezasock::topology::Color;

use crate::support::haproxy::{per_version, Haproxy};
use crate::support::run::vezasock;
use crate::switch::{healthy_edge, runtime_color, wait_healthy};

const HOST: &str = "staging.veza.fr";

/// `GET path` with `Host: HOST` and extra headers on a new connection: (status, body).
pub fn get_with(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut req = format!("GET {path} HTTP/1.1\r\nhost: {HOST}\r\nconnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())
        .unwrap_or_else(|e| panic!("send: {e}"));
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("read: {e}"));
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|w| w.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.trim().to_string())
        .unwrap_or_default();
    (status, body)
}

/// Counts, over `n` requests to `/api/x`, the answers from staging's api `color` server.
fn count_color(e: &LocalEdge, n: usize, headers: &[(&str, &str)], color: Color) -> usize {
    let want = format!("staging api {color}");
    (0..n)
        .filter(|_| {
            let (status, body) = get_with(e.http, "/api/x", headers);
            assert_eq!(status, 200, "{body}");
            body == want
        })
        .count()
}

/// `vezasock preview staging green`: exit 0, the token on the first line.
fn preview_token(e: &LocalEdge, label: &str) -> String {
    preview_token_for(e, Color::Green, label)
}

fn preview_token_for(e: &LocalEdge, color: Color, label: &str) -> String {
    let run = vezasock(e, &["preview", "staging", color.as_str()]);
    assert_eq!(run.code, Some(0), "{label}: {run:?}");
    let token = run.out.lines().next().unwrap_or("").trim().to_string();
    assert_eq!(token.len(), 32, "{label}: {run:?}");
    assert!(run.out.contains("curl -H 'x-vezasock-preview: "), "{run:?}");
    token
}

fn preview_file(e: &LocalEdge) -> String {
    std::fs::read_to_string(e.topology.paths.preview_map()).unwrap_or_default()
}

per_version!(
    a_preview_token_reaches_the_idle_color_and_nothing_else_does,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let e = healthy_edge(v, dir.path());
        let label = v.label;
        let token = preview_token(&e, label);
        let header = [("x-vezasock-preview", token.as_str())];
        let cookie_value = format!("vezasock_preview={token}");
        let cookie = [("cookie", cookie_value.as_str())];
        // Bounded load: 200 plain requests, never green; 100 with the header and 100 with
        // the cookie, always green.
        assert_eq!(count_color(&e, 200, &[], Color::Green), 0, "{label}");
        assert_eq!(count_color(&e, 100, &header, Color::Green), 100, "{label}");
        assert_eq!(count_color(&e, 100, &cookie, Color::Green), 100, "{label}");
        // A wrong token, or the token on another env's host, is plain traffic.
        let wrong = [("x-vezasock-preview", "0123456789abcdef0123456789abcdef")];
        assert_eq!(count_color(&e, 20, &wrong, Color::Green), 0, "{label}");
        assert!(preview_file(&e).contains(&format!("staging:{token} green")));

        // A new preview replaces the old token.
        let second = preview_token(&e, label);
        assert_ne!(second, token);
        assert_eq!(count_color(&e, 20, &header, Color::Green), 0, "{label}");
        let header2 = [("x-vezasock-preview", second.as_str())];
        assert_eq!(count_color(&e, 20, &header2, Color::Green), 20, "{label}");

        // A reload-free restart of HAProxy keeps the token: it is written through.
        let mut e = e;
        e.restart_haproxy()
            .unwrap_or_else(|err| panic!("{label}: {err}"));
        wait_healthy(&e, label);
        assert_eq!(count_color(&e, 20, &header2, Color::Green), 20, "{label}");

        // --revoke stops it, in the runtime and on disk, and is journalled.
        let run = vezasock(&e, &["preview", "staging", "--revoke"]);
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        assert!(run.out.contains("revoked"), "{run:?}");
        assert_eq!(count_color(&e, 20, &header2, Color::Green), 0, "{label}");
        assert!(
            !preview_file(&e).contains("staging:"),
            "{}",
            preview_file(&e)
        );
        let again = vezasock(&e, &["preview", "staging", "--revoke"]);
        assert_eq!(again.code, Some(0), "{again:?}");
        assert!(again.out.contains("nothing to revoke"), "{again:?}");
        let journal = std::fs::read_to_string(e.topology.paths.state_dir.join("journal.jsonl"))
            .unwrap_or_default();
        assert!(
            journal.matches("\"action\":\"preview\"").count() >= 6,
            "{journal}"
        );
        assert!(
            !journal.contains(&second),
            "a token in the journal: {journal}"
        );
        // --json: the keys of docs/reference.md.
        let run = vezasock(&e, &["preview", "staging", "green", "--json"]);
        assert_eq!(run.code, Some(0), "{run:?}");
        let v: serde_json::Value =
            serde_json::from_str(&run.out).unwrap_or_else(|err| panic!("{err}: {run:?}"));
        let keys: Vec<&str> = v
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let mut want = vec![
            "env", "color", "token", "header", "cookie", "curl", "revoked",
        ];
        want.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, want, "{run:?}");
        assert_eq!(v["revoked"], 0, "{run:?}");
        // Bad input: a colorless or unknown env, no color.
        assert_eq!(vezasock(&e, &["preview", "nope", "green"]).code, Some(2));
        assert_eq!(vezasock(&e, &["preview", "staging"]).code, Some(2));
    }
);

/// Replaces staging's api green server with a [`failing_server`] (health check passes, every
/// request answers 500) and waits until its checks pass. Returns the server (to start the real
/// one again) and the flag that stops the fake.
pub fn fail_staging_api_green(
    e: &mut LocalEdge,
    label: &str,
) -> (vezasock::topology::LocalServer, Arc<AtomicBool>) {
    fail_api(e, "be_staging_api_green", label)
}

/// The first server of `backend` (an api backend) replaced by [`failing_server`]: healthy,
/// and 500 to every request. Clear the flag, then `set_backend_running(.., true)`, to undo.
pub fn fail_api(
    e: &mut LocalEdge,
    backend: &str,
    label: &str,
) -> (vezasock::topology::LocalServer, Arc<AtomicBool>) {
    let server = e
        .servers
        .iter()
        .find(|s| s.backend == backend)
        .cloned()
        .unwrap_or_else(|| panic!("no {backend} server"));
    assert!(e.set_backend_running(&server.backend, &server.server, false));
    let fake = failing_server(server.port, "/api/health");
    wait_healthy(e, label);
    (server, fake)
}

/// A server for `port` that answers 200 on `ok_path` (its health check) and 500 to anything
/// else, until the flag is cleared.
pub fn failing_server(port: u16, ok_path: &'static str) -> Arc<AtomicBool> {
    // The stopped backend's listener closes a moment after it is dropped.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let listener = loop {
        match TcpListener::bind(("127.0.0.1", port)) {
            Ok(l) => break l,
            Err(e) if std::time::Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("bind 127.0.0.1:{port}: {e}"),
        }
    };
    listener
        .set_nonblocking(true)
        .unwrap_or_else(|e| panic!("{e}"));
    let run = Arc::new(AtomicBool::new(true));
    let running = run.clone();
    std::thread::spawn(move || {
        while running.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((stream, _)) => {
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                    let mut reader = BufReader::new(stream);
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() {
                        continue;
                    }
                    // Read the rest of the head.
                    let mut h = String::new();
                    while reader.read_line(&mut h).is_ok_and(|n| n > 2) {
                        h.clear();
                    }
                    let status = if line.split_whitespace().nth(1) == Some(ok_path) {
                        "200 OK"
                    } else {
                        "500 Internal Server Error"
                    };
                    let answer = format!(
                        "HTTP/1.1 {status}\r\ncontent-length: 4\r\nconnection: close\r\n\r\nfail"
                    );
                    let _ = reader.get_mut().write_all(answer.as_bytes());
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    run
}

per_version!(
    preview_check_refuses_a_5xx_target_and_a_switch_revokes_the_token,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut e = healthy_edge(v, dir.path());
        let label = v.label;
        let (server, fake) = fail_staging_api_green(&mut e, label);

        let token = preview_token(&e, label);
        let run = vezasock(
            &e,
            &[
                "switch",
                "staging",
                "green",
                "--preview-check",
                "/,/api/x",
                "--preview-via",
                &e.http.to_string(),
            ],
        );
        assert_eq!(run.code, Some(1), "{label}: {run:?}");
        assert!(run.err.contains("GET /api/x answered 500"), "{run:?}");
        assert!(!run.err.contains("GET / answered"), "{run:?}");
        assert_eq!(runtime_color(&e, "staging"), Some(Color::Blue), "{label}");
        assert_eq!(count_color(&e, 50, &[], Color::Green), 0, "{label}");
        // The check's token is gone, and so is the operator's (one token per env).
        let header = [("x-vezasock-preview", token.as_str())];
        let (status, body) = get_with(e.http, "/api/x", &header);
        assert_eq!(
            (status, body.as_str()),
            (200, "staging api blue"),
            "{label}"
        );

        // Green fixed: the check passes and the switch goes through.
        fake.store(false, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(50));
        assert!(e.set_backend_running(&server.backend, &server.server, true));
        wait_healthy(&e, label);
        let run = vezasock(
            &e,
            &[
                "switch",
                "staging",
                "green",
                "--preview-check",
                "/,/api/x",
                "--preview-via",
                &e.http.to_string(),
            ],
        );
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        assert!(
            run.out.contains("/ 200, /api/x 200 through the edge"),
            "{run:?}"
        );
        assert!(
            !preview_file(&e).contains("staging:"),
            "{}",
            preview_file(&e)
        );
        // A switch revokes the env's token: one for blue, then blue → green → ... the token
        // would pin blue after the next flip if it were still there.
        let token = preview_token_for(&e, Color::Blue, label);
        let header = [("x-vezasock-preview", token.as_str())];
        assert_eq!(count_color(&e, 20, &header, Color::Blue), 20, "{label}");
        let run = vezasock(&e, &["switch", "staging", "blue"]);
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        assert!(
            run.out.contains("preview token of staging was revoked"),
            "{run:?}"
        );
        assert!(
            !preview_file(&e).contains("staging:"),
            "{}",
            preview_file(&e)
        );
        let run = vezasock(&e, &["switch", "staging", "green"]);
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        assert_eq!(count_color(&e, 20, &header, Color::Green), 20, "{label}");
        // Bad paths are refused before anything runs.
        let bad = vezasock(
            &e,
            &["switch", "staging", "green", "--preview-check", "api"],
        );
        assert_eq!(bad.code, Some(2), "{bad:?}");
    }
);

// The reload path makes an empty `preview.map` for its candidate when there is none (the config
// names it); when `haproxy -c` refuses the candidate, "nothing was changed" holds for that file
// too: it is not left behind.
per_version!(
    a_refused_candidate_leaves_no_preview_map_behind,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let e = healthy_edge(v, dir.path());
        let label = v.label;
        let preview = e.topology.paths.preview_map();
        // An edge whose maps dir has no preview map (HAProxy loaded it at start).
        std::fs::remove_file(&preview).unwrap_or_else(|err| panic!("{label}: {err}"));
        let mut topology = e.topology.clone();
        // A shape change that renders but that HAProxy refuses (not an HAProxy time).
        topology.timeouts.connect = "5zz".to_string();
        let options = vezasock::edge::apply::ApplyOptions {
            dry_run: false,
            wait: vezasock::state::Wait::up_to(Duration::from_secs(10)),
            allow_reload: false,
        };
        let edge = vezasock::edge::Edge::new(topology);
        let err = crate::switch::rt()
            .block_on(vezasock::edge::apply::apply(&edge, options))
            .err()
            .unwrap_or_else(|| panic!("{label}: a bad candidate was applied"));
        let msg = err.to_string();
        assert!(
            msg.contains("HAProxy refused the candidate") && msg.contains("nothing was changed"),
            "{label}: {msg}"
        );
        assert!(
            !preview.exists(),
            "{label}: {} was left behind",
            preview.display()
        );
        // A valid candidate still gets one (HAProxy cannot start without it).
        let mut topology = e.topology.clone();
        topology.timeouts.connect = "6s".to_string();
        let edge = vezasock::edge::Edge::new(topology);
        crate::switch::rt()
            .block_on(vezasock::edge::apply::apply(&edge, options))
            .unwrap_or_else(|err| panic!("{label}: {err}\n{}", e.log()));
        assert!(preview.exists(), "{label}: no preview map after the reload");
    }
);

/// A local edge with TLS as the embedded edge has it (`[tls] redirect` on: every plain-HTTP
/// request gets the edge's own 301 to HTTPS), serving a self-signed certificate for every host
/// from `dir/certs`, healthy; and its topology file, so the binary sees the TLS listener.
pub(crate) fn tls_edge(v: &Haproxy, dir: &std::path::Path) -> (LocalEdge, std::path::PathBuf) {
    let topo = vezasock::topology::Topology::embedded_default()
        .unwrap_or_else(|e| panic!("embedded default: {e}"));
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).unwrap_or_else(|e| panic!("{e}"));
    let pem = vezasock::edge::cert::placeholder_pem(&vezasock::edge::cert::domain_set(&topo))
        .unwrap_or_else(|e| panic!("certificate: {e}"));
    std::fs::write(certs.join("00-default.pem"), pem).unwrap_or_else(|e| panic!("{e}"));
    let e = LocalEdge::start_tls(&topo, &v.bin, dir, &BTreeMap::new(), &certs)
        .unwrap_or_else(|err| panic!("{}: {err}", v.label));
    wait_healthy(&e, v.label);
    let file = dir.join("topology.toml");
    std::fs::write(&file, crate::support::topology::to_toml(&e.topology))
        .unwrap_or_else(|e| panic!("{e}"));
    // The edge redirects plain HTTP itself: the answer a check through listen.http gets.
    let (status, _) = get_with(e.http, "/api/health", &[]);
    assert_eq!(
        status, 301,
        "{}: the TLS edge redirects plain HTTP",
        v.label
    );
    (e, file)
}

/// `vezasock ARGS --config FILE` (the TLS edge's topology file).
fn on_tls_edge(file: &std::path::Path, args: &[&str]) -> crate::support::run::Run {
    crate::support::run::vezasock_config(file, "it-preview-tls", args)
}

per_version!(
    preview_check_on_a_tls_edge_refuses_a_5xx_target_behind_the_redirect,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (mut e, file) = tls_edge(v, dir.path());
        let label = v.label;
        let (_server, _fake) = fail_staging_api_green(&mut e, label);
        let run = on_tls_edge(
            &file,
            &[
                "switch",
                "staging",
                "green",
                "--preview-check",
                "/api/health,/api/x",
            ],
        );
        assert_eq!(run.code, Some(1), "{label}: {run:?}");
        assert!(
            run.err.contains("GET /api/x answered 500 (https)"),
            "{label}: the answer of green over TLS, not the edge's 301: {run:?}"
        );
        assert!(!run.out.contains("301"), "{label}: {run:?}");
        assert_eq!(runtime_color(&e, "staging"), Some(Color::Blue), "{label}");
        assert!(
            !preview_file(&e).contains("staging:"),
            "{label}: the check's token is revoked: {}",
            preview_file(&e)
        );
    }
);

per_version!(
    preview_check_on_a_tls_edge_passes_a_healthy_target_over_tls,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (e, file) = tls_edge(v, dir.path());
        let label = v.label;
        let run = on_tls_edge(
            &file,
            &[
                "switch",
                "staging",
                "green",
                "--preview-check",
                "/api/health",
            ],
        );
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        assert!(
            run.out.contains("/api/health 200 (https) through the edge"),
            "{label}: {run:?}"
        );
        assert_eq!(runtime_color(&e, "staging"), Some(Color::Green), "{label}");
    }
);

per_version!(
    a_dry_run_says_the_preview_check_was_not_run,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let e = healthy_edge(v, dir.path());
        let label = v.label;
        let args = [
            "switch",
            "staging",
            "green",
            "--dry-run",
            "--preview-check",
            "/api/health",
            "--preview-via",
            &e.http.to_string(),
        ];
        let run = vezasock(&e, &args);
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        assert!(
            run.out
                .contains("NOT RUN (a dry run sends no request): /api/health"),
            "{label}: {run:?}"
        );
        let mut json_args = args.to_vec();
        json_args.push("--json");
        let run = vezasock(&e, &json_args);
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        let v: serde_json::Value =
            serde_json::from_str(&run.out).unwrap_or_else(|err| panic!("{err}: {run:?}"));
        let step = v["steps"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == "preview-check"))
            .unwrap_or_else(|| panic!("{label}: no preview-check step: {v}"));
        assert!(
            step["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("NOT RUN")),
            "{label}: {step}"
        );
        assert!(
            !preview_file(&e).contains("staging:"),
            "{label}: no token given"
        );
        assert_eq!(runtime_color(&e, "staging"), Some(Color::Blue), "{label}");
    }
);

per_version!(
    preview_check_over_tls_trusts_only_the_edges_own_certificate,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (e, file) = tls_edge(v, dir.path());
        let label = v.label;
        // The file on disk is no longer the certificate HAProxy serves (loaded at start).
        let other = vezasock::edge::cert::placeholder_pem(&["staging.veza.fr".to_string()])
            .unwrap_or_else(|err| panic!("certificate: {err}"));
        std::fs::write(dir.path().join("certs").join("00-default.pem"), other)
            .unwrap_or_else(|err| panic!("{err}"));
        let run = on_tls_edge(
            &file,
            &[
                "switch",
                "staging",
                "green",
                "--preview-check",
                "/api/health",
            ],
        );
        assert_eq!(run.code, Some(1), "{label}: {run:?}");
        assert!(
            run.err.contains("GET /api/health failed")
                && run.err.contains("not one of")
                && run.err.contains("certs"),
            "{label}: {run:?}"
        );
        assert_eq!(runtime_color(&e, "staging"), Some(Color::Blue), "{label}");
    }
);
