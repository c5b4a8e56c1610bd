//! Events to a webhook (`--notify-webhook`, docs/observability.md) received by a real HTTP server
//! on loopback (a std `TcpListener` in the test): one event per milestone, in order, with the
//! documented fields; a webhook that answers 500 or hangs does not change the switch's exit code,
//! adds at most its bound to the command, is journalled, and its URL's path (where a secret
//! lives) is never printed or journalled. The same over `https://`, the server a rustls one in
//! the test with a certificate from a test CA given as `--notify-ca-file`; a certificate that is
//! not trusted, or names another host, is a failed delivery like a 500.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::fleet::{Fleet, Reach};
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

/// A test CA and a server certificate it signed for `names`, as the test's TLS webhook uses them.
struct TestCa {
    /// The CA's certificate (PEM), in a file for `--notify-ca-file`.
    ca_file: std::path::PathBuf,
    server: Arc<rustls::ServerConfig>,
}

impl TestCa {
    fn new(dir: &std::path::Path, names: &[&str]) -> TestCa {
        let ca_key = rcgen::KeyPair::generate().unwrap_or_else(fail);
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap_or_else(fail);
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        // Each CA its own name: a certificate from another CA is then one of an unknown issuer.
        let n = next_ca();
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, format!("vezasock test CA {n}"));
        let ca = ca.self_signed(&ca_key).unwrap_or_else(fail);
        let key = rcgen::KeyPair::generate().unwrap_or_else(fail);
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let leaf = rcgen::CertificateParams::new(names)
            .and_then(|p| p.signed_by(&key, &ca, &ca_key))
            .unwrap_or_else(fail);
        let ca_file = dir.join(format!("ca-{n}.pem"));
        std::fs::write(&ca_file, ca.pem()).unwrap_or_else(|e| panic!("{e}"));
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|b| {
                b.with_no_client_auth()
                    .with_single_cert(vec![leaf.der().clone()], key)
            })
            .unwrap_or_else(|e| panic!("{e}"));
        TestCa {
            ca_file,
            server: Arc::new(server),
        }
    }

    fn ca_file(&self) -> &str {
        self.ca_file.to_str().unwrap_or_default()
    }
}

fn fail<T>(e: rcgen::Error) -> T {
    panic!("{e}")
}

/// Tells apart the CA files of one test's CAs.
fn next_ca() -> u32 {
    use std::sync::atomic::AtomicU32;
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A webhook on a free loopback port; every request body it read, in order.
struct Webhook {
    url: String,
    bodies: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Webhook {
    fn start(answer: Answer) -> Webhook {
        Webhook::serving(answer, None)
    }

    /// An `https://` webhook presenting `ca`'s server certificate.
    fn start_tls(answer: Answer, ca: &TestCa) -> Webhook {
        Webhook::serving(answer, Some(ca.server.clone()))
    }

    fn serving(answer: Answer, tls: Option<Arc<rustls::ServerConfig>>) -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("{e}"));
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (b, s) = (bodies.clone(), stop.clone());
        let https = tls.is_some();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            while !s.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((conn, _)) => serve(conn, tls.clone(), answer, &b, &s),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        let scheme = if https { "https" } else { "http" };
        Webhook {
            url: format!("{scheme}://127.0.0.1:{port}/hooks/T0/s3cr3t-token"),
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

/// Serves one connection, over TLS when `tls` is given (a failed handshake ends it).
fn serve(
    conn: TcpStream,
    tls: Option<Arc<rustls::ServerConfig>>,
    answer: Answer,
    bodies: &Mutex<Vec<String>>,
    stop: &AtomicBool,
) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    match tls.map(rustls::ServerConnection::new) {
        None => answer_one(&mut { conn }, answer, bodies, stop),
        Some(Ok(session)) => answer_one(
            &mut rustls::StreamOwned::new(session, conn),
            answer,
            bodies,
            stop,
        ),
        Some(Err(_)) => {}
    }
}

/// Reads one request (headers, then Content-Length bytes) and answers as told.
fn answer_one(
    conn: &mut (impl Read + Write),
    answer: Answer,
    bodies: &Mutex<Vec<String>>,
    stop: &AtomicBool,
) {
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
    let _ = conn.flush();
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
        a_switchs_events(label, &hook.bodies());
    }
);

/// The events of `switch staging green --sha abc9` by it-test: started, flipped and recorded,
/// in order, with the documented fields.
fn a_switchs_events(label: &str, got: &[serde_json::Value]) {
    {
        let names: Vec<&str> = got.iter().filter_map(|b| b["event"].as_str()).collect();
        assert_eq!(
            names,
            ["started", "flipped", "recorded"],
            "{label}: {got:?}"
        );
        for b in got {
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
        assert_eq!(got[2]["detail"], "abc9", "{label}");
    }
}

per_version!(
    an_https_webhook_gets_started_flipped_and_recorded_in_order,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let e = healthy_edge(v, dir.path());
        let ca = TestCa::new(dir.path(), &["127.0.0.1"]);
        let hook = Webhook::start_tls(Answer::Ok, &ca);
        let run = vezasock_env(
            &e,
            &["switch", "staging", "green", "--sha", "abc9"],
            &[
                ("VEZASOCK_NOTIFY_WEBHOOK", &hook.url),
                ("VEZASOCK_NOTIFY_CA_FILE", ca.ca_file()),
            ],
        );
        assert_eq!(run.code, Some(0), "{}: {run:?}", v.label);
        assert!(!run.err.contains("warning"), "{}: {run:?}", v.label);
        a_switchs_events(v.label, &hook.bodies());
    }
);

/// How a failing test webhook is reached: plain, or over TLS with the CA file vezasock is given.
enum Via<'a> {
    Http,
    Https { ca_file: &'a str },
}

/// A switch with a webhook answering `answer`: exit 0, at most the bound added, a warning
/// without the URL's path, and a `notify failed` journal line.
fn a_failing_webhook_changes_nothing(v: &Haproxy, answer: Answer, why: &str) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let hook = Webhook::start(answer);
    a_failed_delivery(v, dir.path(), &hook, Via::Http, why, true);
}

/// The same over https, the server's certificate for `names` from a test CA; vezasock trusts
/// that CA, or another one when `other_ca`. Only a hanging server gets the request.
fn a_failing_https_webhook_changes_nothing(
    v: &Haproxy,
    answer: Answer,
    names: &[&str],
    other_ca: bool,
    why: &str,
) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let ca = TestCa::new(dir.path(), names);
    let other = other_ca.then(|| TestCa::new(dir.path(), &["127.0.0.1"]));
    let hook = Webhook::start_tls(answer, &ca);
    let via = Via::Https {
        ca_file: other.as_ref().unwrap_or(&ca).ca_file(),
    };
    let reached = answer == Answer::Hang;
    a_failed_delivery(v, dir.path(), &hook, via, why, reached);
}

/// A switch with `hook` failing: exit 0, at most the bound added, a warning naming the
/// webhook by scheme, host and port only, with `why`, and a `notify failed` journal line.
fn a_failed_delivery(
    v: &Haproxy,
    dir: &std::path::Path,
    hook: &Webhook,
    via: Via,
    why: &str,
    reached: bool,
) {
    let e = healthy_edge(v, dir);
    let label = v.label;
    let mut env = vec![("VEZASOCK_NOTIFY_WEBHOOK", hook.url.as_str())];
    let shown = match via {
        Via::Http => "warning: the webhook http://127.0.0.1:",
        Via::Https { ca_file } => {
            env.push(("VEZASOCK_NOTIFY_CA_FILE", ca_file));
            "warning: the webhook https://127.0.0.1:"
        }
    };
    let started = Instant::now();
    let run = vezasock_env(&e, &["switch", "staging", "green"], &env);
    let took = started.elapsed();
    assert_eq!(run.code, Some(0), "{label}: {run:?}");
    assert!(took < Duration::from_secs(5 + 4), "{label}: took {took:?}");
    assert!(
        run.err.contains(shown) && run.err.contains(why),
        "{label}: {run:?}"
    );
    assert!(!run.err.contains("s3cr3t"), "{label}: {run:?}");
    assert!(!run.out.contains("s3cr3t"), "{label}: {run:?}");
    let journal = std::fs::read_to_string(e.topology.paths.state_dir.join("journal.jsonl"))
        .unwrap_or_default();
    assert!(
        journal.contains("\"action\":\"notify\",\"phase\":\"failed\""),
        "{label}: {journal}"
    );
    assert!(!journal.contains("s3cr3t"), "{label}: {journal}");
    assert_eq!(
        !hook.bodies().is_empty(),
        reached,
        "{label}: the webhook got {:?}",
        hook.bodies()
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

per_version!(
    an_https_webhook_with_a_certificate_from_an_unknown_ca_is_a_failed_delivery,
    |v: &Haproxy| {
        a_failing_https_webhook_changes_nothing(
            v,
            Answer::Ok,
            &["127.0.0.1"],
            true,
            "took 0 of 3 event(s): TLS handshake: invalid peer certificate: UnknownIssuer",
        );
    }
);

per_version!(
    an_https_webhook_with_a_certificate_for_another_host_is_a_failed_delivery,
    |v: &Haproxy| {
        a_failing_https_webhook_changes_nothing(
            v,
            Answer::Ok,
            &["hooks.example.org"],
            false,
            "took 0 of 3 event(s): TLS handshake: invalid peer certificate: certificate not valid for name",
        );
    }
);

per_version!(
    a_hanging_https_webhook_adds_at_most_its_bound,
    |v: &Haproxy| {
        a_failing_https_webhook_changes_nothing(
            v,
            Answer::Hang,
            &["127.0.0.1"],
            false,
            "took 0 of",
        );
    }
);

per_version!(
    a_fleet_switch_posts_every_edges_events_in_order,
    |v: &Haproxy| {
        // Two local edges hear the coordinator's variable; the edge over ssh its own topology's
        // `[notify]` (the variable does not cross ssh).
        let Some(fleet) = Fleet::start(v, &[Reach::Local, Reach::Local, Reach::Ssh]) else {
            return;
        };
        let label = v.label;
        let hook = Webhook::start(Answer::Ok);
        let ssh_config = &fleet.members[2].config;
        let mut topo = std::fs::read_to_string(ssh_config).unwrap_or_else(|e| panic!("{e}"));
        topo.push_str(&format!("\n[notify]\nwebhook = {:?}\n", hook.url));
        std::fs::write(ssh_config, topo).unwrap_or_else(|e| panic!("{e}"));
        let run = fleet.run_env(
            &["switch", "staging", "green", "--sha", "abc9"],
            &[("VEZASOCK_NOTIFY_WEBHOOK", &hook.url)],
        );
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        assert!(!run.err.contains("warning"), "{label}: {run:?}");
        // The edge-agent posts when its conversation ends, which may be after the coordinator.
        let deadline = Instant::now() + Duration::from_secs(10);
        while hook.bodies().len() < 9 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let got = hook.bodies();
        for member in &fleet.members {
            let edge: Vec<&serde_json::Value> =
                got.iter().filter(|b| b["edge"] == *member.name).collect();
            let names: Vec<&str> = edge.iter().filter_map(|b| b["event"].as_str()).collect();
            assert_eq!(
                names,
                ["started", "flipped", "recorded"],
                "{label}: {}: {got:?}",
                member.name
            );
            for b in &edge {
                assert_eq!(b["env"], "staging", "{label}: {b}");
                assert_eq!(b["action"], "switch", "{label}: {b}");
                assert_eq!(b["to"], "green", "{label}: {b}");
                assert_eq!(b["who"], "it-fleet", "{label}: {b}");
                assert_eq!(b["op_id"], edge[0]["op_id"], "{label}: {b}");
            }
        }
        assert_eq!(
            got.len(),
            9,
            "{label}: one event per milestone per edge: {got:?}"
        );
    }
);

per_version!(
    a_hanging_webhook_costs_a_fleet_switch_one_bound_not_one_per_edge,
    |v: &Haproxy| {
        let fleet = Fleet::local(v, 3);
        let label = v.label;
        let hook = Webhook::start(Answer::Hang);
        let started = Instant::now();
        let run = fleet.run_env(
            &["switch", "staging", "green"],
            &[("VEZASOCK_NOTIFY_WEBHOOK", &hook.url)],
        );
        let took = started.elapsed();
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        // One 5 s budget for the fleet's one delivery (three edges' events), not 3 × 5 s.
        assert!(took < Duration::from_secs(5 + 6), "{label}: took {took:?}");
        assert!(
            run.err.contains("warning: the webhook http://127.0.0.1:")
                && run.err.contains("took 0 of 9 event(s)"),
            "{label}: {run:?}"
        );
        assert!(!run.err.contains("s3cr3t"), "{label}: {run:?}");
        for m in &fleet.members {
            let journal =
                std::fs::read_to_string(m.edge.topology.paths.state_dir.join("journal.jsonl"))
                    .unwrap_or_default();
            assert!(
                journal.contains("\"action\":\"notify\",\"phase\":\"failed\""),
                "{label}: {}: {journal}",
                m.name
            );
        }
        fleet.assert_all_on("staging", vezasock::topology::Color::Green, label);
    }
);
