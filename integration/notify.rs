//! Events to a webhook (`--notify-webhook`, docs/observability.md) received by a real HTTP server
//! on loopback (a std `TcpListener` in the test): one event per milestone, in order, with the
//! documented fields; a webhook that answers 500 or hangs does not change the switch's exit code,
//! adds at most its bound to the command, is journalled, and its URL's path (where a secret
//! lives) is never printed or journalled.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::haproxy::{per_version, Haproxy};
use crate::support::run::vezasock_env;
use crate::switch::healthy_edge;

/// How the test webhook answers.
#[derive(Clone, Copy, PartialEq)]
enum Answer {
    Ok,
    Status500,
    /// Reads the request, then never answers (until the server stops).
    Hang,
}

/// A webhook on a free loopback port; every request body it read, in order.
struct Webhook {
    url: String,
    bodies: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Webhook {
    fn start(answer: Answer) -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("{e}"));
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (b, s) = (bodies.clone(), stop.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            while !s.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((conn, _)) => serve(conn, answer, &b, &s),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Webhook {
            url: format!("http://127.0.0.1:{port}/hooks/T0/s3cr3t-token"),
            bodies,
            stop,
        }
    }

    fn bodies(&self) -> Vec<serde_json::Value> {
        let bodies = self.bodies.lock().map(|b| b.clone()).unwrap_or_default();
        bodies
            .iter()
            .map(|b| serde_json::from_str(b).unwrap_or_else(|e| panic!("{e}: {b}")))
            .collect()
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Reads one request (headers, then Content-Length bytes) and answers as told.
fn serve(mut conn: TcpStream, answer: Answer, bodies: &Mutex<Vec<String>>, stop: &AtomicBool) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(5);
    let body = loop {
        if Instant::now() > deadline || data.len() > 1 << 20 {
            return;
        }
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
        let text = String::from_utf8_lossy(&data).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let len: usize = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            if data.len() >= end + 4 + len {
                break String::from_utf8_lossy(&data[end + 4..end + 4 + len]).into_owned();
            }
        }
    };
    if let Ok(mut b) = bodies.lock() {
        b.push(body);
    }
    let status = match answer {
        Answer::Ok => "200 OK",
        Answer::Status500 => "500 Internal Server Error",
        Answer::Hang => {
            let until = Instant::now() + Duration::from_secs(60);
            while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(20));
            }
            return;
        }
    };
    let _ = conn.write_all(
        format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
    );
}

per_version!(
    a_switch_posts_started_flipped_and_recorded_in_order,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let e = healthy_edge(v, dir.path());
        let label = v.label;
        let hook = Webhook::start(Answer::Ok);
        let run = vezasock_env(
            &e,
            &["switch", "staging", "green", "--sha", "abc9"],
            &[("VEZASOCK_NOTIFY_WEBHOOK", &hook.url)],
        );
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        assert!(!run.err.contains("warning"), "{label}: {run:?}");
        let got = hook.bodies();
        let names: Vec<&str> = got.iter().filter_map(|b| b["event"].as_str()).collect();
        assert_eq!(
            names,
            ["started", "flipped", "recorded"],
            "{label}: {got:?}"
        );
        for b in &got {
            assert_eq!(b["edge"], "veza", "{b}");
            assert_eq!(b["env"], "staging", "{b}");
            assert_eq!(b["action"], "switch", "{b}");
            assert_eq!(b["from"], "blue", "{b}");
            assert_eq!(b["to"], "green", "{b}");
            assert_eq!(b["who"], "it-test", "{b}");
            assert_eq!(b["op_id"], got[0]["op_id"], "{b}");
            assert!(b["at"].as_str().is_some_and(|t| t.ends_with('Z')), "{b}");
        }
        assert_eq!(
            got[2]["text"], "veza: switch staging blue → green: recorded (by it-test)",
            "{label}"
        );
    }
);

/// A switch with a webhook answering `answer`: exit 0, at most the bound added, a warning
/// without the URL's path, and a `notify failed` journal line.
fn a_failing_webhook_changes_nothing(v: &Haproxy, answer: Answer, why: &str) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let e = healthy_edge(v, dir.path());
    let label = v.label;
    let hook = Webhook::start(answer);
    let started = Instant::now();
    let run = vezasock_env(
        &e,
        &["switch", "staging", "green"],
        &[("VEZASOCK_NOTIFY_WEBHOOK", &hook.url)],
    );
    let took = started.elapsed();
    assert_eq!(run.code, Some(0), "{label}: {run:?}");
    assert!(took < Duration::from_secs(5 + 4), "{label}: took {took:?}");
    assert!(
        run.err.contains("warning: the webhook http://127.0.0.1:") && run.err.contains(why),
        "{label}: {run:?}"
    );
    assert!(!run.err.contains("s3cr3t"), "{label}: {run:?}");
    let journal = std::fs::read_to_string(e.topology.paths.state_dir.join("journal.jsonl"))
        .unwrap_or_default();
    assert!(
        journal.contains("\"action\":\"notify\",\"phase\":\"failed\""),
        "{label}: {journal}"
    );
    assert!(!journal.contains("s3cr3t"), "{label}: {journal}");
    assert!(
        !hook.bodies().is_empty(),
        "{label}: the webhook was never reached"
    );
}

per_version!(
    a_webhook_answering_500_is_a_warning_and_a_journal_line,
    |v: &Haproxy| {
        a_failing_webhook_changes_nothing(v, Answer::Status500, "answered HTTP 500");
    }
);

per_version!(a_hanging_webhook_adds_at_most_its_bound, |v: &Haproxy| {
    a_failing_webhook_changes_nothing(v, Answer::Hang, "took 0 of");
});
