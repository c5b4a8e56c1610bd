//! A bounded HTTP load on the local edge: keep-alive clients and new-connection-per-request
//! clients, each a thread that loops over the given targets until stopped, its request budget
//! is spent, or its time is up. Every failure (connection error, non-200 answer) is counted and
//! the first few are kept, so a flip that drops a request cannot hide.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::http::{get, Conn};

/// What load to run.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// The edge's HTTP address.
    pub edge: SocketAddr,
    /// `(host, path)` pairs each client cycles through.
    pub targets: Vec<(String, String)>,
    /// Clients that keep one connection open across requests.
    pub keepalive_clients: usize,
    /// Clients that open a new connection for every request.
    pub new_connection_clients: usize,
    /// Hard bound on the run, whatever else happens.
    pub max_duration: Duration,
    /// Hard bound on the requests of each client.
    pub max_requests_per_client: u64,
    /// Pause between two requests of one client (0 = as fast as it can).
    pub pause: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
}

/// Counts for one kind of client.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    pub sent: u64,
    pub failed: u64,
}

/// What the load saw.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadReport {
    pub keepalive: Counts,
    pub new_connection: Counts,
    /// The first failures, in words (at most 20).
    pub failures: Vec<String>,
}

impl LoadReport {
    pub fn sent(&self) -> u64 {
        self.keepalive.sent + self.new_connection.sent
    }

    pub fn failed(&self) -> u64 {
        self.keepalive.failed + self.new_connection.failed
    }
}

/// One client's counts and its first failures.
type ClientResult = (Counts, Vec<String>);

/// A running load; [`Load::stop`] ends it and returns the report.
pub struct Load {
    stop: Arc<AtomicBool>,
    /// Requests sent so far by every client, so a caller can wait for traffic, not for time.
    sent: Arc<AtomicU64>,
    /// (is keep-alive, thread)
    clients: Vec<(bool, JoinHandle<ClientResult>)>,
}

impl Load {
    /// Starts every client thread.
    pub fn start(spec: &LoadSpec) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let mut clients = Vec::new();
        let kinds = std::iter::repeat_n(true, spec.keepalive_clients)
            .chain(std::iter::repeat_n(false, spec.new_connection_clients));
        for (i, keepalive) in kinds.enumerate() {
            let spec = spec.clone();
            let stop = stop.clone();
            let sent = sent.clone();
            let handle = std::thread::spawn(move || run_client(&spec, keepalive, i, &stop, &sent));
            clients.push((keepalive, handle));
        }
        Load {
            stop,
            sent,
            clients,
        }
    }

    /// Requests sent so far by all clients (answered or not).
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Waits until the clients have sent `more` requests beyond those sent so far, for at
    /// most `bound`; `false` when the bound ran out first.
    pub fn wait_for_requests(&self, more: u64, bound: Duration) -> bool {
        let target = self.sent().saturating_add(more);
        let deadline = Instant::now() + bound;
        while self.sent() < target {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }

    /// Stops the clients (each finishes its request in flight) and sums up.
    pub fn stop(self) -> LoadReport {
        self.stop.store(true, Ordering::Relaxed);
        let mut report = LoadReport::default();
        for (keepalive, handle) in self.clients {
            let (counts, failures) = handle.join().unwrap_or_else(|_| {
                (
                    Counts { sent: 0, failed: 1 },
                    vec!["a load client panicked".to_string()],
                )
            });
            let slot = if keepalive {
                &mut report.keepalive
            } else {
                &mut report.new_connection
            };
            slot.sent += counts.sent;
            slot.failed += counts.failed;
            for f in failures {
                if report.failures.len() < 20 {
                    report.failures.push(f);
                }
            }
        }
        report
    }
}

fn run_client(
    spec: &LoadSpec,
    keepalive: bool,
    index: usize,
    stop: &AtomicBool,
    sent: &AtomicU64,
) -> (Counts, Vec<String>) {
    let deadline = Instant::now() + spec.max_duration;
    let mut counts = Counts::default();
    let mut failures = Vec::new();
    let mut conn = Conn::new(spec.edge, spec.timeout);
    let mut n = index; // clients start at different targets
    while !stop.load(Ordering::Relaxed)
        && Instant::now() < deadline
        && counts.sent < spec.max_requests_per_client
    {
        let Some((host, path)) = spec.targets.get(n % spec.targets.len().max(1)) else {
            break;
        };
        n += 1;
        counts.sent += 1;
        sent.fetch_add(1, Ordering::Relaxed);
        let answer = if keepalive {
            conn.get(host, path)
        } else {
            get(spec.edge, host, path, spec.timeout)
        };
        let failure = match answer {
            Ok(a) if a.status == 200 => None,
            Ok(a) => Some(format!("{host}{path}: HTTP {} {:?}", a.status, a.body)),
            Err(e) => Some(format!("{host}{path}: {e}")),
        };
        if let Some(f) = failure {
            counts.failed += 1;
            if failures.len() < 20 {
                let kind = if keepalive {
                    "keep-alive"
                } else {
                    "new-connection"
                };
                failures.push(format!("{kind} client {index}: {f}"));
            }
        }
        if !spec.pause.is_zero() {
            std::thread::sleep(spec.pause);
        }
    }
    (counts, failures)
}
