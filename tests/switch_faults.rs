//! A flip that HAProxy refuses, or whose connection drops, in the middle (the runtime phase, docs/architecture.md §3):
//! the edge is left as it was, and what happened is written down.
//!
//! Real HAProxy never refuses `set map` after `show map` succeeded on the same map, so these
//! tests run `edge::deploy::switch::switch` and the `vezasock` binary against a fake admin/operator
//! socket ([`support::FakeServer`]) that speaks the worker prompt protocol with replies shaped
//! like the recorded 3.0 corpus: every server of the embedded topology UP with its check
//! passed, the runtime map as the fake holds it, and a scripted fault on `set map` / `add map`.
//! The edge's files are the ones a rendered edge has (`render::render` + `write_rendered`) plus
//! a recorded deploy per env. Every test is bounded in time.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use support::{Answer, FakeServer};
use vezasock::edge::deploy::switch::{switch, SwitchRequest};
use vezasock::edge::status::status;
use vezasock::edge::{Edge, EdgeError};
use vezasock::render::{self, write::write_rendered};
use vezasock::runtime::session::Timeouts;
use vezasock::state::{JournalEntry, Phase};
use vezasock::topology::{Color, Topology, ACTIVE_COLOR_MAP, HOSTS_MAP};

/// `show info` as 3.0 answers it with `set severity-output number` on.
const SHOW_INFO: &[u8] = include_bytes!("../grammar/corpus/3.0/show-info.oneshot-sev");

/// HAProxy's reply to `set map` on an entry it does not have (recorded on 3.0).
const ENTRY_NOT_FOUND: &[u8] = b"[3]: entry not found.\n\n";

/// HAProxy's reply to a map command naming a map it does not know (recorded on 3.0).
const UNKNOWN_MAP: &[u8] = b"[3]: Unknown map identifier. Please use #<id> or <file>.\n\n";

/// The `show servers state` header line (v1 format, recorded on 3.0).
const STATE_HEADER: &str = "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port";

/// The whole test, not one step of it, must end within this.
const LIMIT: Duration = Duration::from_secs(30);

/// What the fake does with the flip (`set map` / `add map`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Applies it and answers the empty success reply (the control case).
    Accept,
    /// Answers these bytes (an HAProxy error text) and applies nothing.
    Refuse(&'static [u8]),
    /// Closes the connection on receiving it, without applying it.
    HangUp,
    /// Applies it, then closes the connection before answering.
    ApplyThenHangUp,
    /// Answers a text that is neither the empty success nor an HAProxy error, after applying
    /// it (`true`) or not.
    Unexpected(bool),
    /// Applies it and answers success; from then on every `show map` loses its connection,
    /// so the read-back cannot happen.
    ReadBackLost,
}

/// The fake HAProxy's runtime: its copy of `active-color.map` and the flip's fault.
struct FakeHaproxy {
    server: FakeServer,
    /// env → color, as `show map` reports it.
    runtime: Arc<Mutex<BTreeMap<String, String>>>,
}

impl FakeHaproxy {
    /// Every line the fake received, on every connection.
    fn lines(&self) -> Vec<String> {
        self.server
            .lines
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default()
    }

    fn runtime_color(&self, env: &str) -> Option<String> {
        self.runtime.lock().ok()?.get(env).cloned()
    }
}

/// One server the fake reports: `(backend, server, port)`.
type FakeServerRow = (String, String, u16);

/// Starts the fake for `topo`: every env server UP with its check passed, the runtime map
/// holding `runtime`, and `fault` on the flip.
fn start_fake(topo: &Topology, runtime: &[(&str, &str)], fault: Fault) -> FakeHaproxy {
    let (_, local) = topo
        .with_local_servers(40000)
        .unwrap_or_else(|e| panic!("local servers: {e}"));
    let rows: Vec<FakeServerRow> = local
        .iter()
        .map(|s| (s.backend.clone(), s.server.clone(), s.port))
        .collect();
    let map_path = topo.paths.active_color_map().to_string_lossy().into_owned();
    let state: Arc<Mutex<BTreeMap<String, String>>> = Arc::new(Mutex::new(
        runtime
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    ));
    let map = state.clone();
    // A dropped connection (or an odd reply) hits the first flip only: a real HAProxy behaves
    // normally on the next connection, which is where vezasock looks to find out what
    // happened. A refusal is HAProxy's answer every time.
    let faulted = std::sync::atomic::AtomicBool::new(false);
    let server = FakeServer::haproxy(move |line, _| {
        let is_flip = line.starts_with("set map ") || line.starts_with("add map ");
        let transport = matches!(
            fault,
            Fault::HangUp | Fault::ApplyThenHangUp | Fault::Unexpected(_)
        );
        let fault =
            if transport && is_flip && faulted.swap(true, std::sync::atomic::Ordering::SeqCst) {
                Fault::Accept
            } else {
                fault
            };
        answer(line, &map_path, &map, &rows, fault)
    });
    FakeHaproxy {
        server,
        runtime: state,
    }
}

/// The fake's reply to one line.
fn answer(
    line: &str,
    map_path: &str,
    map: &Mutex<BTreeMap<String, String>>,
    rows: &[FakeServerRow],
    fault: Fault,
) -> Answer {
    if line == "show info" {
        return Answer::Body(SHOW_INFO.to_vec());
    }
    if line == "show stat -1 4 -1" {
        return Answer::Body(show_stat(rows).into_bytes());
    }
    if line == "show servers state" {
        return Answer::Body(servers_state(rows, None).into_bytes());
    }
    if let Some(backend) = line.strip_prefix("show servers state ") {
        if !rows.iter().any(|(b, _, _)| b == backend) {
            return Answer::Body(b"[3]: Can't find backend.\n\n".to_vec());
        }
        return Answer::Body(servers_state(rows, Some(backend)).into_bytes());
    }
    if let Some(path) = line.strip_prefix("show map ") {
        if path != map_path {
            return Answer::Body(UNKNOWN_MAP.to_vec());
        }
        let Ok(entries) = map.lock() else {
            return Answer::HangUp;
        };
        if fault == Fault::ReadBackLost && entries.get("staging").is_some_and(|c| c == "green") {
            return Answer::HangUp;
        }
        let mut out = String::new();
        for (i, (env, color)) in entries.iter().enumerate() {
            out.push_str(&format!("0x7fdde9a294{:02x} {env} {color}\n", i * 0x70));
        }
        out.push('\n');
        return Answer::Body(out.into_bytes());
    }
    let flip = line
        .strip_prefix("set map ")
        .or_else(|| line.strip_prefix("add map "));
    if let Some(args) = flip {
        let words: Vec<&str> = args.split(' ').collect();
        let [path, env, color] = words[..] else {
            return Answer::Body(
                b"[3]: 'set map' expects three parameters: map identifier, key and value.\n\n"
                    .to_vec(),
            );
        };
        if path != map_path {
            return Answer::Body(UNKNOWN_MAP.to_vec());
        }
        let apply = || {
            if let Ok(mut m) = map.lock() {
                m.insert(env.to_string(), color.to_string());
            }
        };
        return match fault {
            Fault::Accept => {
                apply();
                Answer::Body(b"\n".to_vec())
            }
            Fault::Refuse(text) => Answer::Body(text.to_vec()),
            Fault::HangUp => Answer::HangUp,
            Fault::ApplyThenHangUp => {
                apply();
                Answer::HangUp
            }
            Fault::Unexpected(applied) => {
                if applied {
                    apply();
                }
                Answer::Body(b"Done, probably.\n\n".to_vec())
            }
            Fault::ReadBackLost => {
                apply();
                Answer::Body(b"\n".to_vec())
            }
        };
    }
    // `prompt`, `set severity-output number`; anything else hangs up, which fails the test.
    Answer::Default
}

/// `show servers state [backend]`: each server running (2), ready (0), check passed (3).
fn servers_state(rows: &[FakeServerRow], only: Option<&str>) -> String {
    let mut ids: BTreeMap<&str, usize> = BTreeMap::new();
    let mut out = format!("1\n{STATE_HEADER}\n");
    let mut srv_id = 0;
    for (backend, server, port) in rows {
        let next = ids.len() + 3;
        let be_id = *ids.entry(backend.as_str()).or_insert(next);
        srv_id += 1;
        if only.is_some_and(|b| b != backend) {
            continue;
        }
        out.push_str(&format!(
            "{be_id} {backend} {srv_id} {server} 127.0.0.1 2 0 100 100 1 6 3 4 6 0 0 0 - {port} - 0 0 - - 0\n"
        ));
    }
    out.push('\n');
    out
}

/// `show stat -1 4 -1` (server rows): the recorded 3.0 header and one UP row per server.
fn show_stat(rows: &[FakeServerRow]) -> String {
    const CORPUS: &str = include_str!("../grammar/corpus/3.0/show-stat-filtered.oneshot-sev");
    let mut lines = CORPUS.lines();
    let header = lines.next().unwrap_or_default();
    // The recorded `be_staging_api,blue,…` row, with its proxy and server names cut off.
    let row = lines.next().unwrap_or_default();
    let tail = row.splitn(3, ',').nth(2).unwrap_or_default();
    let mut out = format!("{header}\n");
    for (backend, server, _) in rows {
        out.push_str(&format!("{backend},{server},{tail}\n"));
    }
    out.push('\n');
    out
}

/// A rendered edge in a temp dir whose sockets point at the fake.
struct TestEdge {
    dir: tempfile::TempDir,
    edge: Edge,
}

/// The embedded topology with every path under `dir`.
fn topology(dir: &Path) -> Topology {
    let mut topo = Topology::embedded_default().unwrap_or_else(|e| panic!("topology: {e}"));
    topo.paths = topo.paths.under(dir);
    topo
}

/// Renders the edge with `colors`, writes its files, records one deploy per env (so the state
/// files and histories exist), and points the admin and operator sockets at `fake`.
fn rendered_edge(dir: tempfile::TempDir, fake: &FakeHaproxy, colors: &[(&str, Color)]) -> TestEdge {
    let mut topo = topology(dir.path());
    topo.paths.admin_socket = fake.server.path.clone();
    topo.paths.operator_socket = fake.server.path.clone();
    let colors: BTreeMap<String, Color> = colors.iter().map(|(e, c)| (e.to_string(), *c)).collect();
    let rendered = render::render(&topo, &colors).unwrap_or_else(|e| panic!("render: {e}"));
    write_rendered(&rendered, dir.path()).unwrap_or_else(|e| panic!("write rendered: {e}"));
    // The config reads its maps from the maps dir, as `vezasock apply` installs them.
    std::fs::create_dir_all(&topo.paths.maps_dir).unwrap_or_else(|e| panic!("maps dir: {e}"));
    for name in [HOSTS_MAP, ACTIVE_COLOR_MAP] {
        std::fs::rename(dir.path().join(name), topo.paths.maps_dir.join(name))
            .unwrap_or_else(|e| panic!("move {name}: {e}"));
    }
    let mut edge = Edge::new(topo);
    edge.timeouts = Timeouts {
        connect: Duration::from_secs(2),
        reply: Duration::from_secs(3),
    };
    let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    for (env, color) in &colors {
        edge.state
            .record_switch(env, *color, Some("0ld5ha"), "ci-deploy", when)
            .unwrap_or_else(|e| panic!("record {env}: {e}"));
    }
    TestEdge { dir, edge }
}

/// Every file under the edge's dir (sockets excepted) with its bytes, leaving out the journal
/// and the lock file (both expected to change on any attempt).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let entries = std::fs::read_dir(&d).unwrap_or_else(|e| panic!("read {}: {e}", d.display()));
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                todo.push(path);
            } else if kind.is_file() && name != "journal.jsonl" && name != "vezasock.lock" {
                let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {name}: {e}"));
                out.insert(path, bytes);
            }
        }
    }
    out
}

/// Asserts that no file was added, removed or changed (temp files and holder files included).
fn assert_unchanged(before: &BTreeMap<PathBuf, Vec<u8>>, dir: &Path, label: &str) {
    let after = snapshot(dir);
    let added: Vec<&PathBuf> = after.keys().filter(|p| !before.contains_key(*p)).collect();
    let removed: Vec<&PathBuf> = before.keys().filter(|p| !after.contains_key(*p)).collect();
    let changed: Vec<&PathBuf> = before
        .iter()
        .filter(|(p, b)| after.get(*p).is_some_and(|a| a != *b))
        .map(|(p, _)| p)
        .collect();
    assert!(
        added.is_empty() && removed.is_empty() && changed.is_empty(),
        "{label}: files added {added:?}, removed {removed:?}, changed {changed:?}"
    );
}

/// The journal entries of the last operation on `env`.
fn last_operation(edge: &Edge, env: &str) -> Vec<JournalEntry> {
    let read = edge
        .state
        .journal_read()
        .unwrap_or_else(|e| panic!("journal: {e}"));
    assert!(
        read.skipped.is_empty(),
        "journal lines skipped: {:?}",
        read.skipped
    );
    let Some(last) = read
        .entries
        .iter()
        .rev()
        .find(|e| e.env.as_deref() == Some(env))
    else {
        panic!("no journal entry for {env}");
    };
    let op = last.op_id.clone();
    read.entries.into_iter().filter(|e| e.op_id == op).collect()
}

fn phases(entries: &[JournalEntry]) -> Vec<Phase> {
    entries.iter().map(|e| e.phase).collect()
}

/// Runs `vezasock ARGS` with every path of `edge` as a flag and no `VEZASOCK_*` from outside.
async fn vezasock(edge: &Edge, args: &[&str]) -> (Option<i32>, String, String) {
    let p = &edge.topology.paths;
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_vezasock"));
    cmd.args(args)
        .arg("--haproxy-config")
        .arg(&p.config)
        .arg("--maps-dir")
        .arg(&p.maps_dir)
        .arg("--admin-socket")
        .arg(&p.admin_socket)
        .arg("--operator-socket")
        .arg(&p.operator_socket)
        .arg("--master-socket")
        .arg(&p.master_socket)
        .arg("--server-state-file")
        .arg(&p.server_state_file)
        .arg("--state-dir")
        .arg(&p.state_dir)
        .arg("--pid-file")
        .arg(&p.pid_file)
        .kill_on_drop(true);
    for (key, _) in std::env::vars() {
        if key.starts_with("VEZASOCK_") {
            cmd.env_remove(&key);
        }
    }
    cmd.env("VEZASOCK_WHO", "switch-faults-test");
    let out = cmd
        .output()
        .await
        .unwrap_or_else(|e| panic!("run vezasock: {e}"));
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs a test body under [`LIMIT`].
async fn bounded<F: std::future::Future<Output = ()>>(body: F) {
    tokio::time::timeout(LIMIT, body)
        .await
        .unwrap_or_else(|_| panic!("test took longer than {LIMIT:?}"));
}

/// A fresh edge: staging blue, prod green everywhere (runtime, map file, state file).
fn setup(fault: Fault) -> (TestEdge, FakeHaproxy) {
    setup_with_runtime(fault, &[("prod", "green"), ("staging", "blue")])
}

fn setup_with_runtime(fault: Fault, runtime: &[(&str, &str)]) -> (TestEdge, FakeHaproxy) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let fake = start_fake(&topology(dir.path()), runtime, fault);
    let edge = rendered_edge(
        dir,
        &fake,
        &[("staging", Color::Blue), ("prod", Color::Green)],
    );
    (edge, fake)
}

/// The flip line the switch must have sent to the fake (proves step 5 was reached).
fn flip_line(edge: &Edge, verb: &str) -> String {
    format!(
        "{verb} map {} staging green",
        edge.topology.paths.active_color_map().display()
    )
}

/// Asserts `status` (library, through the operator socket = the fake) sees no problem and
/// staging blue on every side.
async fn assert_status_clean(edge: &Edge, label: &str) {
    let report = status(edge, None)
        .await
        .unwrap_or_else(|e| panic!("{label}: status: {e}"));
    assert!(
        report.problems.is_empty(),
        "{label}: status reports {:?}",
        report.problems
    );
    let staging = report
        .envs
        .iter()
        .find(|e| e.name == "staging")
        .unwrap_or_else(|| panic!("{label}: no staging in status"));
    assert!(
        staging.interrupted.is_empty(),
        "{label}: {:?}",
        staging.interrupted
    );
    assert_eq!(staging.live, Some(Color::Blue), "{label}");
    assert!(!staging.drift, "{label}");
}

#[tokio::test]
async fn control_the_fake_accepts_a_flip_and_the_files_change() {
    // Without this, the refusal tests below could pass because the fake never let the switch
    // reach step 5: here the same fake accepts, and the switch completes and records green.
    bounded(async {
        let (t, fake) = setup(Fault::Accept);
        let before = snapshot(t.dir.path());
        let req = SwitchRequest::new("staging", Color::Green);
        let report = switch(&t.edge, &req, &mut |_| {})
            .await
            .unwrap_or_else(|e| panic!("switch: {e}"));
        assert_eq!(report.to, Color::Green);
        assert!(fake.lines().contains(&flip_line(&t.edge, "set")));
        assert_eq!(fake.runtime_color("staging").as_deref(), Some("green"));
        let after = snapshot(t.dir.path());
        assert_ne!(before, after, "a completed switch changes the files");
        assert_eq!(
            t.edge.state.recorded_color("staging").ok().flatten(),
            Some(Color::Green)
        );
        assert_eq!(
            phases(&last_operation(&t.edge, "staging")).last(),
            Some(&Phase::Done)
        );
    })
    .await;
}

#[tokio::test]
async fn refused_set_map_leaves_the_edge_as_it_was() {
    bounded(async {
        let (t, fake) = setup(Fault::Refuse(ENTRY_NOT_FOUND));
        let map_file = t.edge.topology.paths.active_color_map();
        let map_before = std::fs::read(&map_file).unwrap_or_else(|e| panic!("map: {e}"));
        let history_before = t.edge.state.history("staging").ok();
        let before = snapshot(t.dir.path());

        let req = SwitchRequest::new("staging", Color::Green);
        let err = switch(&t.edge, &req, &mut |_| {})
            .await
            .err()
            .unwrap_or_else(|| panic!("a refused set map must fail the switch"));

        // HAProxy's own words, as a refusal (exit 1), naming the command.
        let EdgeError::Runtime(runtime) = &err else {
            panic!("expected a runtime error, got {err:?}");
        };
        assert!(runtime.is_refused(), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("entry not found"), "{text}");
        assert!(text.contains("set map"), "{text}");
        assert!(fake.lines().contains(&flip_line(&t.edge, "set")));

        // Disk: the map file byte-identical, state file and history unchanged, no temp file.
        assert_eq!(std::fs::read(&map_file).ok(), Some(map_before));
        assert_eq!(t.edge.state.history("staging").ok(), history_before);
        assert_eq!(
            t.edge.state.recorded_color("staging").ok().flatten(),
            Some(Color::Blue)
        );
        assert_unchanged(&before, t.dir.path(), "after a refused set map");
        // Runtime: untouched.
        assert_eq!(fake.runtime_color("staging").as_deref(), Some("blue"));

        // Journal: intent → disk-written → failed, the detail carrying HAProxy's message.
        let op = last_operation(&t.edge, "staging");
        assert_eq!(
            phases(&op),
            [Phase::Intent, Phase::DiskWritten, Phase::Failed]
        );
        let detail = op.last().and_then(|e| e.detail.clone()).unwrap_or_default();
        assert!(detail.contains("entry not found"), "{detail}");
        assert!(detail.contains("map file restored"), "{detail}");
        assert!(!detail.contains("may or may not"), "{detail}");
        assert_eq!(op[0].before.as_deref(), Some("blue"));
        assert_eq!(op[0].after.as_deref(), Some("green"));
        assert!(t
            .edge
            .state
            .open_operations()
            .unwrap_or_default()
            .is_empty());

        assert_status_clean(&t.edge, "after a refused set map").await;
    })
    .await;
}

#[tokio::test]
async fn refused_add_map_when_the_runtime_has_no_entry_leaves_the_edge_as_it_was() {
    // No `staging` entry in the runtime map (HAProxy uses blue): the flip is an `add map`.
    bounded(async {
        let (t, fake) = setup_with_runtime(Fault::Refuse(UNKNOWN_MAP), &[("prod", "green")]);
        let before = snapshot(t.dir.path());
        let req = SwitchRequest::new("staging", Color::Green);
        let err = switch(&t.edge, &req, &mut |_| {})
            .await
            .err()
            .unwrap_or_else(|| panic!("a refused add map must fail the switch"));
        let text = err.to_string();
        assert!(text.contains("Unknown map identifier"), "{text}");
        assert!(text.contains("add map"), "{text}");
        assert!(fake.lines().contains(&flip_line(&t.edge, "add")));
        assert_unchanged(&before, t.dir.path(), "after a refused add map");
        assert_eq!(fake.runtime_color("staging"), None);
        let op = last_operation(&t.edge, "staging");
        assert_eq!(phases(&op).last(), Some(&Phase::Failed));
        assert_status_clean(&t.edge, "after a refused add map").await;
    })
    .await;
}

#[tokio::test]
async fn the_binary_exits_1_with_haproxys_message_and_changes_nothing() {
    bounded(async {
        let (t, fake) = setup(Fault::Refuse(ENTRY_NOT_FOUND));
        let before = snapshot(t.dir.path());

        let (code, out, err) = vezasock(&t.edge, &["switch", "staging", "green"]).await;
        assert_eq!(code, Some(1), "stdout: {out}\nstderr: {err}");
        assert!(err.contains("entry not found"), "stderr: {err}");
        assert!(err.contains("set map"), "stderr: {err}");
        assert!(fake.lines().contains(&flip_line(&t.edge, "set")));
        assert_unchanged(&before, t.dir.path(), "after `vezasock switch` was refused");
        let op = last_operation(&t.edge, "staging");
        assert_eq!(
            phases(&op),
            [Phase::Intent, Phase::DiskWritten, Phase::Failed]
        );
        assert_eq!(op[0].who, "switch-faults-test");

        // The same with --json: one object, ok false, exit 1, HAProxy's message.
        let (code, out, _) = vezasock(&t.edge, &["switch", "staging", "green", "--json"]).await;
        assert_eq!(code, Some(1), "{out}");
        let json: serde_json::Value =
            serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
        assert_eq!(json["ok"], serde_json::Value::Bool(false), "{out}");
        assert_eq!(json["exit"], serde_json::json!(1), "{out}");
        assert!(
            json["error"]
                .as_str()
                .is_some_and(|e| e.contains("entry not found")),
            "{out}"
        );
        assert_unchanged(
            &before,
            t.dir.path(),
            "after `vezasock switch --json` was refused",
        );

        // `vezasock status` through the fake operator socket: all consistent, exit 0.
        let (code, out, err) = vezasock(&t.edge, &["status"]).await;
        assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
        assert!(
            !out.contains("INTERRUPTED") && !out.contains("DRIFT"),
            "{out}"
        );
    })
    .await;
}

#[tokio::test]
async fn connection_dropped_on_set_map_exits_3_restores_the_map_file_and_finds_it_not_applied() {
    // The fake closes the connection on receiving `set map`, without applying it.
    bounded(async {
        let (t, fake) = setup(Fault::HangUp);
        let before = snapshot(t.dir.path());

        let (code, out, err) = vezasock(&t.edge, &["switch", "staging", "green"]).await;
        assert_eq!(code, Some(3), "stdout: {out}\nstderr: {err}");
        assert!(err.contains("closed the connection"), "stderr: {err}");
        // Sent once: `set map` is not idempotent, so it is never sent again on a new connection.
        let flips = fake
            .lines()
            .iter()
            .filter(|l| **l == flip_line(&t.edge, "set"))
            .count();
        assert_eq!(flips, 1, "{:?}", fake.lines());
        assert_eq!(fake.runtime_color("staging").as_deref(), Some("blue"));

        // src/edge/deploy/switch.rs: the map file is restored whatever the error; a new connection shows
        // the runtime did not apply it, and the journal says so.
        assert_unchanged(&before, t.dir.path(), "after a dropped set map");
        let op = last_operation(&t.edge, "staging");
        assert_eq!(
            phases(&op),
            [Phase::Intent, Phase::DiskWritten, Phase::Failed]
        );
        let detail = op.last().and_then(|e| e.detail.clone()).unwrap_or_default();
        assert!(detail.contains("map file restored"), "{detail}");
        assert!(detail.contains("HAProxy did not apply it"), "{detail}");
        assert!(err.contains("HAProxy did not apply it"), "stderr: {err}");

        // Here the runtime did not apply it: status finds every side on blue.
        assert_status_clean(&t.edge, "after a dropped set map").await;
        let (code, out, err) = vezasock(&t.edge, &["status"]).await;
        assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    })
    .await;
}

#[tokio::test]
async fn connection_dropped_after_haproxy_applied_set_map_is_put_back() {
    // The worst case of a transport failure: HAProxy applied the flip, then the connection
    // dropped before the reply. The map file is restored (blue); on a new connection vezasock
    // sees the runtime on green and sets it back to blue, so the edge is as it was.
    bounded(async {
        let (t, fake) = setup(Fault::ApplyThenHangUp);
        let before = snapshot(t.dir.path());

        let req = SwitchRequest::new("staging", Color::Green);
        let err = switch(&t.edge, &req, &mut |_| {})
            .await
            .err()
            .unwrap_or_else(|| panic!("a dropped set map must fail the switch"));
        let EdgeError::Interrupted { source, detail } = &err else {
            panic!("expected an interrupted change, got {err:?}");
        };
        assert!(source.is_connection_dropped(), "{err:?}");
        assert!(detail.contains("map file restored"), "{detail}");
        assert!(
            detail.contains("HAProxy had applied it; the runtime was put back to blue"),
            "{detail}"
        );
        // The flip, then the undo on the new connection.
        let sets: Vec<String> = fake
            .lines()
            .into_iter()
            .filter(|l| l.starts_with("set map "))
            .collect();
        assert_eq!(sets.len(), 2, "{sets:?}");
        assert!(sets[1].ends_with(" staging blue"), "{sets:?}");
        assert_eq!(fake.runtime_color("staging").as_deref(), Some("blue"));
        assert_unchanged(
            &before,
            t.dir.path(),
            "after an applied-then-dropped set map",
        );
        let op = last_operation(&t.edge, "staging");
        assert_eq!(phases(&op).last(), Some(&Phase::Failed));
        assert_status_clean(&t.edge, "after the put-back").await;
    })
    .await;
}

#[tokio::test]
async fn connection_dropped_on_set_map_tells_the_operator_what_happened() {
    bounded(async {
        let (t, _fake) = setup(Fault::ApplyThenHangUp);
        let (code, out, err) = vezasock(&t.edge, &["switch", "staging", "green"]).await;
        assert_eq!(code, Some(3), "stdout: {out}\nstderr: {err}");
        // The operator learns here, not only in the journal, what the edge is now.
        assert!(err.contains("closed the connection"), "stderr: {err}");
        assert!(err.contains("map file restored"), "stderr: {err}");
        assert!(
            err.contains("the runtime was put back to blue"),
            "stderr: {err}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_corrupt_history_is_refused_before_anything_changes() {
    bounded(async {
        let (t, fake) = setup(Fault::Accept);
        let history = t
            .edge
            .state
            .history_file("staging")
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&history, b"purple 1234 - ci\n").unwrap_or_else(|e| panic!("{e}"));
        let before = snapshot(t.dir.path());

        let (code, out, err) = vezasock(&t.edge, &["switch", "staging", "green"]).await;
        assert_eq!(code, Some(1), "stdout: {out}\nstderr: {err}");
        assert!(err.contains("history"), "stderr: {err}");
        assert!(
            !fake.lines().iter().any(|l| l.starts_with("set map ")),
            "the flip was sent: {:?}",
            fake.lines()
        );
        assert_eq!(fake.runtime_color("staging").as_deref(), Some("blue"));
        assert_unchanged(&before, t.dir.path(), "after a refused corrupt history");
        // Nothing was journalled for staging after the recorded deploy.
        let journal = t
            .edge
            .state
            .journal_read()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(journal.entries.is_empty(), "{:?}", journal.entries);
    })
    .await;
}

#[tokio::test]
async fn an_unexpected_reply_that_was_applied_is_found_and_put_back() {
    bounded(async {
        let (t, fake) = setup(Fault::Unexpected(true));
        let before = snapshot(t.dir.path());
        let (code, out, err) = vezasock(&t.edge, &["switch", "staging", "green"]).await;
        // Not "refused, nothing changed" on HAProxy's word: vezasock looked, undid it, and
        // says so (3: an unreadable reply).
        assert_eq!(code, Some(3), "stdout: {out}\nstderr: {err}");
        assert!(err.contains("unexpected"), "stderr: {err}");
        assert!(
            err.contains("HAProxy had applied it; the runtime was put back to blue"),
            "stderr: {err}"
        );
        assert_eq!(fake.runtime_color("staging").as_deref(), Some("blue"));
        assert_unchanged(&before, t.dir.path(), "after an unexpected reply");
        assert_status_clean(&t.edge, "after an unexpected reply").await;
    })
    .await;
}

#[tokio::test]
async fn an_unexpected_reply_that_was_not_applied_is_found_and_reported() {
    bounded(async {
        let (t, fake) = setup(Fault::Unexpected(false));
        let before = snapshot(t.dir.path());
        let (code, out, err) = vezasock(&t.edge, &["switch", "staging", "green"]).await;
        assert_eq!(code, Some(3), "stdout: {out}\nstderr: {err}");
        assert!(err.contains("HAProxy did not apply it"), "stderr: {err}");
        assert_eq!(fake.runtime_color("staging").as_deref(), Some("blue"));
        assert_unchanged(&before, t.dir.path(), "after an unexpected reply");
        let op = last_operation(&t.edge, "staging");
        assert_eq!(phases(&op).last(), Some(&Phase::Failed));
    })
    .await;
}

#[tokio::test]
async fn a_lost_read_back_after_the_flip_exits_5_saying_what_is_live() {
    bounded(async {
        let (t, fake) = setup(Fault::ReadBackLost);
        let (code, out, err) = vezasock(&t.edge, &["switch", "staging", "green"]).await;
        assert_eq!(code, Some(5), "stdout: {out}\nstderr: {err}");
        assert!(err.contains("verify phase"), "stderr: {err}");
        assert!(err.contains("recorded: blue"), "stderr: {err}");
        assert!(
            err.contains("`vezasock switch staging green` finishes it"),
            "stderr: {err}"
        );
        // The flip is live; the state file still names the verified color.
        assert_eq!(fake.runtime_color("staging").as_deref(), Some("green"));
        assert_eq!(
            t.edge.state.recorded_color("staging").ok().flatten(),
            Some(Color::Blue)
        );
        let op = last_operation(&t.edge, "staging");
        assert_eq!(
            phases(&op),
            [
                Phase::Intent,
                Phase::DiskWritten,
                Phase::RuntimeApplied,
                Phase::Failed
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn temp_files_of_a_dead_writer_are_removed_by_the_next_switch() {
    bounded(async {
        let (t, _fake) = setup(Fault::Accept);
        // A pid that existed and is gone: a child that has exited and been reaped.
        let mut child = std::process::Command::new("true")
            .spawn()
            .unwrap_or_else(|e| panic!("spawn: {e}"));
        let dead = child.id();
        child.wait().unwrap_or_else(|e| panic!("wait: {e}"));
        let state_dir = &t.edge.topology.paths.state_dir;
        let maps_dir = &t.edge.topology.paths.maps_dir;
        let litter = [
            state_dir.join(format!(".active-color-prod.history.vezasock-tmp.{dead}.0")),
            state_dir.join(format!(".server-admin.json.vezasock-tmp.{dead}.3")),
            maps_dir.join(format!(".hosts.map.vezasock-tmp.{dead}.1")),
        ];
        // One of a live writer (this test process) must stay.
        let alive = state_dir.join(format!(
            ".active-color-prod.vezasock-tmp.{}.9",
            std::process::id()
        ));
        for path in litter.iter().chain([&alive]) {
            std::fs::write(path, b"half").unwrap_or_else(|e| panic!("{e}"));
        }
        let (code, out, err) = vezasock(&t.edge, &["switch", "staging", "green"]).await;
        assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
        for path in &litter {
            assert!(!path.exists(), "{} left behind", path.display());
        }
        assert!(alive.exists(), "a live writer's temp file was removed");
    })
    .await;
}
