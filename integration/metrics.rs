//! The metrics textfile (`--metrics-textfile`, docs/observability.md) read by the tools an
//! operator runs: Debian's `prometheus-node-exporter` serves it through its textfile collector
//! (on a free loopback port, every other collector off) and `promtool check metrics` passes on
//! it, after a switch, a rollback and a canary abort, on every HAProxy version. The file is
//! never seen torn while 50 switches rewrite it; the example alert rules of the docs pass
//! `promtool check rules`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vezasock::demo::LocalEdge;

use crate::canary::wait_entry;
use crate::fleet::{Fleet, Reach};
use crate::package::tool_or_skip;
use crate::preview::fail_staging_api_green;
use crate::support::haproxy::{per_version, Haproxy};
use crate::support::run::{vezasock_env, Run};
use crate::switch::{healthy_edge, wait_running};

const NODE_EXPORTER: &str = "prometheus-node-exporter";
const PROMTOOL: &str = "promtool";

/// A node_exporter serving only the textfile collector of one directory, killed on drop.
struct NodeExporter {
    child: Child,
    port: u16,
}

impl NodeExporter {
    fn start(dir: &Path) -> NodeExporter {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("a free port: {e}"));
        let child = Command::new(NODE_EXPORTER)
            .arg("--collector.disable-defaults")
            .arg("--collector.textfile")
            .arg(format!("--collector.textfile.directory={}", dir.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{NODE_EXPORTER}: {e}"));
        let exporter = NodeExporter { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while get(port).is_err() {
            assert!(Instant::now() < deadline, "{NODE_EXPORTER} never answered");
            std::thread::sleep(Duration::from_millis(50));
        }
        exporter
    }

    /// `GET /metrics`.
    fn scrape(&self) -> String {
        get(self.port).unwrap_or_else(|e| panic!("scrape: {e}"))
    }
}

impl Drop for NodeExporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET /metrics` over HTTP/1.0 on loopback (at most 4 MiB, 5 s).
fn get(port: u16) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut body = String::new();
    s.take(4 << 20).read_to_string(&mut body)?;
    Ok(body)
}

/// The value of the sample of `name` carrying every label in `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// A healthy local edge whose commands write their metrics into `dir`/textfile, served by a
/// node_exporter. `None` when the tools are not installed (a SKIP, or a failure under
/// `VEZASOCK_REQUIRE_ALL_VERSIONS=1`).
struct Metered {
    e: LocalEdge,
    file: PathBuf,
    exporter: NodeExporter,
    _dir: tempfile::TempDir,
}

impl Metered {
    fn start(v: &Haproxy) -> Option<Metered> {
        if !tool_or_skip(Path::new(NODE_EXPORTER), NODE_EXPORTER)
            || !tool_or_skip(Path::new(PROMTOOL), PROMTOOL)
        {
            return None;
        }
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let e = healthy_edge(v, dir.path());
        let textdir = dir.path().join("textfile");
        std::fs::create_dir_all(&textdir).unwrap_or_else(|e| panic!("{e}"));
        let exporter = NodeExporter::start(&textdir);
        Some(Metered {
            e,
            file: textdir.join("vezasock.prom"),
            exporter,
            _dir: dir,
        })
    }

    /// `vezasock ARGS` with the textfile set by `VEZASOCK_METRICS_TEXTFILE`.
    fn run(&self, args: &[&str]) -> Run {
        let file = self.file.to_string_lossy();
        vezasock_env(&self.e, args, &[("VEZASOCK_METRICS_TEXTFILE", &file)])
    }

    /// What node_exporter serves now, after `promtool check metrics` passed on the file.
    fn checked_scrape(&self, label: &str) -> String {
        promtool_check_metrics(&self.file, label);
        let text = self.exporter.scrape();
        assert_eq!(
            sample(&text, "node_textfile_scrape_error", &[]),
            Some(0.0),
            "{label}: {text}"
        );
        text
    }
}

fn promtool_check_metrics(file: &Path, label: &str) {
    let input = std::fs::File::open(file).unwrap_or_else(|e| panic!("{label}: {e}"));
    let out = Command::new(PROMTOOL)
        .args(["check", "metrics"])
        .stdin(input)
        .output()
        .unwrap_or_else(|e| panic!("{PROMTOOL}: {e}"));
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "{label}: promtool check metrics: {out:?}\n{}",
        std::fs::read_to_string(file).unwrap_or_default()
    );
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

per_version!(
    after_a_switch_node_exporter_serves_its_color_and_count,
    |v: &Haproxy| {
        let Some(m) = Metered::start(v) else { return };
        let label = v.label;
        let run = m.run(&["switch", "staging", "green", "--sha", "abc1"]);
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        let text = m.checked_scrape(label);
        let staging = [("env", "staging")];
        let s = |name: &str, labels: &[(&str, &str)]| sample(&text, name, labels);
        assert_eq!(s("vezasock_edge_up", &[]), Some(1.0), "{label}: {text}");
        assert_eq!(
            s(
                "vezasock_active_color_info",
                &[("env", "staging"), ("color", "green")]
            ),
            Some(1.0),
            "{label}: {text}"
        );
        assert_eq!(
            s(
                "vezasock_active_color_info",
                &[("env", "staging"), ("color", "blue")]
            ),
            None
        );
        let ok = [("env", "staging"), ("action", "switch"), ("result", "ok")];
        assert_eq!(
            s("vezasock_switches_total", &ok),
            Some(1.0),
            "{label}: {text}"
        );
        for side in ["runtime", "map_file", "state_file"] {
            let labels = [("env", "staging"), ("side", side)];
            assert_eq!(s("vezasock_drift", &labels), Some(0.0), "{label}: {text}");
        }
        let at = s("vezasock_last_switch_timestamp_seconds", &staging).unwrap_or(0.0);
        assert!((now() - at).abs() < 120.0, "{label}: {at}\n{text}");
        assert_eq!(s("vezasock_canary_percent", &staging), Some(0.0));
    }
);

per_version!(
    after_a_rollback_node_exporter_serves_the_earlier_color_and_the_rollback,
    |v: &Haproxy| {
        let Some(m) = Metered::start(v) else { return };
        let label = v.label;
        for (color, sha) in [("green", "abc2"), ("blue", "abc3")] {
            let run = m.run(&["switch", "staging", color, "--sha", sha]);
            assert_eq!(run.code, Some(0), "{label}: {run:?}");
        }
        let run = m.run(&["rollback", "staging"]);
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        let text = m.checked_scrape(label);
        let s = |name: &str, labels: &[(&str, &str)]| sample(&text, name, labels);
        assert_eq!(
            s(
                "vezasock_active_color_info",
                &[("env", "staging"), ("color", "green")]
            ),
            Some(1.0),
            "{label}: {text}"
        );
        let rollback = [("env", "staging"), ("action", "rollback"), ("result", "ok")];
        assert_eq!(
            s("vezasock_switches_total", &rollback),
            Some(1.0),
            "{label}: {text}"
        );
        let switch = [("env", "staging"), ("action", "switch"), ("result", "ok")];
        assert_eq!(
            s("vezasock_switches_total", &switch),
            Some(2.0),
            "{label}: {text}"
        );
    }
);

per_version!(
    a_running_canary_and_its_abort_show_on_node_exporter,
    |v: &Haproxy| {
        let Some(m) = Metered::start(v) else { return };
        let label = v.label;
        let child = crate::support::run::Vezasock::edge(
            &m.e,
            &[
                "canary",
                "staging",
                "green",
                "--steps",
                "30,100",
                "--interval",
                "30s",
                "--min-requests",
                "1000000",
            ],
        )
        .spawn();
        wait_entry(&m.e, "green:30", Duration::from_secs(10), label);
        let status = m.run(&["status", "staging"]);
        assert!(status.out.contains("staging"), "{label}: {status:?}");
        let text = m.checked_scrape(label);
        let staging = [("env", "staging")];
        assert_eq!(
            sample(&text, "vezasock_canary_percent", &staging),
            Some(30.0),
            "{label}: {text}"
        );
        assert_eq!(
            sample(&text, "vezasock_canary_running", &staging),
            Some(1.0),
            "{label}: {text}"
        );

        let run = m.run(&["canary", "staging", "--abort"]);
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        let ended = child.finish(Duration::from_secs(60));
        assert_eq!(ended.code, Some(7), "{label}: {ended:?}");
        let text = m.checked_scrape(label);
        assert_eq!(
            sample(&text, "vezasock_canary_percent", &staging),
            Some(0.0),
            "{label}: {text}"
        );
        let aborted = [("env", "staging"), ("result", "aborted")];
        assert_eq!(
            sample(&text, "vezasock_canaries_total", &aborted),
            Some(1.0),
            "{label}: {text}"
        );
        assert_eq!(
            sample(
                &text,
                "vezasock_active_color_info",
                &[("env", "staging"), ("color", "blue")]
            ),
            Some(1.0),
            "{label}: {text}"
        );
    }
);

per_version!(
    the_textfile_is_never_seen_torn_during_50_switches,
    |v: &Haproxy| {
        let Some(m) = Metered::start(v) else { return };
        let label = v.label;
        let run = m.run(&["status"]);
        assert!(m.file.exists(), "{label}: {run:?}");
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (file, stop) = (m.file.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut reads = 0u64;
                let deadline = Instant::now() + Duration::from_secs(600);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{e}"));
                    // The first family first, the write's timestamp last.
                    let last = text.lines().last().unwrap_or_default();
                    let whole = text.starts_with("# HELP vezasock_edge_up ")
                        && text.ends_with('\n')
                        && last.starts_with("vezasock_metrics_write_timestamp_seconds{");
                    assert!(whole, "a torn read after {reads} whole ones:\n{text}");
                    reads += 1;
                }
                reads
            })
        };
        for i in 0..50 {
            let color = if i % 2 == 0 { "green" } else { "blue" };
            let run = m.run(&["switch", "staging", color]);
            assert_eq!(run.code, Some(0), "{label}: switch {i}: {run:?}");
        }
        stop.store(true, Ordering::Relaxed);
        let reads = reader
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        assert!(reads > 50, "{label}: only {reads} reads");
        let text = m.checked_scrape(label);
        let ok = [("env", "staging"), ("action", "switch"), ("result", "ok")];
        assert_eq!(
            sample(&text, "vezasock_switches_total", &ok),
            Some(50.0),
            "{label}: {text}"
        );
    }
);

/// The example alerting rules of docs/observability.md (its first ```yaml block) pass
/// `promtool check rules`.
#[test]
fn the_documented_alert_rules_pass_promtool_check_rules() {
    if !tool_or_skip(Path::new(PROMTOOL), PROMTOOL) {
        return;
    }
    let doc = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/observability.md");
    let text = std::fs::read_to_string(doc).unwrap_or_else(|e| panic!("{doc}: {e}"));
    let rules = text
        .split("```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .unwrap_or_else(|| panic!("{doc}: no ```yaml block"));
    assert!(rules.contains("alert: VezasockDrift"), "{rules}");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("vezasock.rules.yml");
    std::fs::write(&file, rules).unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(PROMTOOL)
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("{PROMTOOL}: {e}"));
    assert!(out.status.success(), "{out:?}\n{rules}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("SUCCESS"), "{said}");
}

per_version!(
    a_bake_breach_shows_as_the_switch_and_its_bake_rollback,
    |v: &Haproxy| {
        let Some(mut m) = Metered::start(v) else {
            return;
        };
        let label = v.label;
        let (_, fake) = crate::preview::fail_staging_api_green(&mut m.e, label);
        let stop = Arc::new(AtomicBool::new(false));
        let loader = crate::bake::load(&m.e, stop.clone());
        let run = m.run(&[
            "switch",
            "staging",
            "green",
            "--bake",
            "20s",
            "--max-error-rate",
            "5%",
            "--min-requests",
            "10",
        ]);
        stop.store(true, Ordering::Relaxed);
        let _ = loader.join();
        fake.store(false, Ordering::Relaxed);
        assert_eq!(run.code, Some(7), "{label}: {run:?}");
        let text = m.checked_scrape(label);
        let s = |name: &str, labels: &[(&str, &str)]| sample(&text, name, labels);
        let blue = [("env", "staging"), ("color", "blue")];
        assert_eq!(
            s("vezasock_active_color_info", &blue),
            Some(1.0),
            "{label}: {text}"
        );
        // The flip-back is the bake's, not an operator's rollback.
        for (action, want) in [
            ("switch", Some(1.0)),
            ("bake_rollback", Some(1.0)),
            ("rollback", None),
        ] {
            let labels = [("env", "staging"), ("action", action), ("result", "ok")];
            assert_eq!(
                s("vezasock_switches_total", &labels),
                want,
                "{label}: {action}: {text}"
            );
        }
    }
);

per_version!(
    a_switch_the_gate_refuses_is_counted_refused_and_changes_nothing,
    |v: &Haproxy| {
        let Some(mut m) = Metered::start(v) else {
            return;
        };
        let label = v.label;
        assert!(m
            .e
            .set_backend_running("be_staging_api_green", "green_1", false));
        wait_running(&m.e, "be_staging_api_green", "green_1", false, label);
        let run = m.run(&["switch", "staging", "green"]);
        assert_eq!(run.code, Some(1), "{label}: {run:?}");
        let text = m.checked_scrape(label);
        let s = |name: &str, labels: &[(&str, &str)]| sample(&text, name, labels);
        let count = |result: &str| {
            let labels = [("env", "staging"), ("action", "switch"), ("result", result)];
            s("vezasock_switches_total", &labels)
        };
        assert_eq!(count("refused"), Some(1.0), "{label}: {text}");
        for result in ["ok", "failed", "unfinished", "rolled_back"] {
            assert_eq!(count(result), None, "{label}: {result}: {text}");
        }
        let blue = [("env", "staging"), ("color", "blue")];
        assert_eq!(
            s("vezasock_active_color_info", &blue),
            Some(1.0),
            "{label}: {text}"
        );
        // A refusal is no switch: no last-switch time.
        assert_eq!(
            s(
                "vezasock_last_switch_timestamp_seconds",
                &[("env", "staging")]
            ),
            None,
            "{label}: {text}"
        );
    }
);

per_version!(
    a_textfile_that_cannot_be_written_is_a_warning_not_a_failure,
    |v: &Haproxy| {
        let Some(m) = Metered::start(v) else { return };
        let label = v.label;
        let missing = m.file.with_file_name("no-such-dir").join("vezasock.prom");
        let missing = missing.to_string_lossy();
        let run = vezasock_env(
            &m.e,
            &["switch", "staging", "green"],
            &[("VEZASOCK_METRICS_TEXTFILE", &missing)],
        );
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        assert!(
            run.err
                .contains("vezasock switch: warning: the metrics textfile was not written: "),
            "{label}: {run:?}"
        );
        assert!(run.out.contains("green"), "{label}: {run:?}");
    }
);

per_version!(
    after_a_fleet_switch_each_local_edge_file_has_its_color_and_the_commit_skew,
    |v: &Haproxy| {
        if !tool_or_skip(Path::new(PROMTOOL), PROMTOOL) {
            return;
        }
        let label = v.label;
        let fleet = crate::fleet::Fleet::local(v, 2);
        let files = textfiles(&fleet);
        let run = fleet.run(&["switch", "staging", "green", "--json"]);
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        let report: serde_json::Value = serde_json::from_str(run.out.trim())
            .unwrap_or_else(|e| panic!("{label}: {e}: {}", run.out));
        let skew_ms = report["commit_skew_ms"].as_f64().unwrap_or(-1.0);
        for (m, file) in fleet.members.iter().zip(&files) {
            promtool_check_metrics(file, label);
            let text = std::fs::read_to_string(file).unwrap_or_default();
            let s = |name: &str, labels: &[(&str, &str)]| sample(&text, name, labels);
            let green = [("env", "staging"), ("color", "green")];
            assert_eq!(
                s("vezasock_active_color_info", &green),
                Some(1.0),
                "{label} {}: {text}",
                m.name
            );
            let skew = [("fleet", "fleet"), ("env", "staging")];
            let seconds = s("vezasock_fleet_commit_skew_seconds", &skew);
            assert!(
                seconds.is_some_and(|x| (x * 1e3 - skew_ms).abs() < 1e-6),
                "{label} {}: {seconds:?} s, the report said {skew_ms} ms: {text}",
                m.name
            );
        }
        // The gauge is kept on disk: the next `status` of an edge still writes it.
        let status = fleet.edge_run(0, &["status"]);
        assert_eq!(status.code, Some(0), "{label}: {status:?}");
        let text = std::fs::read_to_string(&files[0]).unwrap_or_default();
        assert!(
            sample(
                &text,
                "vezasock_fleet_commit_skew_seconds",
                &[("env", "staging")]
            )
            .is_some(),
            "{label}: after status: {text}"
        );
    }
);

/// Each fleet edge's own topology file names its own textfile, `textfile-<edge>/vezasock.prom`
/// in the lab's dir: one dir per edge (the lab's edges share one topology name, so their files
/// cannot share a node_exporter). Written by the commands only: none exists yet.
fn textfiles(fleet: &Fleet) -> Vec<PathBuf> {
    fleet
        .members
        .iter()
        .map(|m| {
            let dir = fleet.dir.path().join(format!("textfile-{}", m.name));
            std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
            let file = dir.join("vezasock.prom");
            let mut toml = std::fs::read_to_string(&m.config).unwrap_or_default();
            toml.push_str(&format!(
                "\n[metrics]\ntextfile = {:?}\n",
                file.display().to_string()
            ));
            std::fs::write(&m.config, toml).unwrap_or_else(|e| panic!("{e}"));
            file
        })
        .collect()
}

/// True when node_exporter and promtool are installed (else a SKIP line).
fn tools_or_skip() -> bool {
    tool_or_skip(Path::new(NODE_EXPORTER), NODE_EXPORTER)
        && tool_or_skip(Path::new(PROMTOOL), PROMTOOL)
}

/// What a node_exporter reading `file`'s directory serves, after `promtool check metrics`
/// passed on it.
fn scrape_file(file: &Path, label: &str) -> String {
    promtool_check_metrics(file, label);
    let exporter = NodeExporter::start(file.parent().unwrap_or(Path::new(".")));
    let text = exporter.scrape();
    assert_eq!(
        sample(&text, "node_textfile_scrape_error", &[]),
        Some(0.0),
        "{label}: {text}"
    );
    text
}

per_version!(
    a_fleet_switch_the_gate_refuses_is_counted_refused_on_the_edge_that_refused,
    |v: &Haproxy| {
        if !tools_or_skip() {
            return;
        }
        let label = v.label;
        let mut fleet = Fleet::local(v, 2);
        let files = textfiles(&fleet);
        let b = &mut fleet.members[1].edge;
        assert!(b.set_backend_running("be_staging_api_green", "green_1", false));
        wait_running(b, "be_staging_api_green", "green_1", false, label);
        let run = fleet.run(&["switch", "staging", "green"]);
        assert_eq!(run.code, Some(1), "{label}: {run:?}");
        let text = scrape_file(&files[1], label);
        let count = |text: &str, result: &str| {
            let labels = [("env", "staging"), ("action", "switch"), ("result", result)];
            sample(text, "vezasock_switches_total", &labels)
        };
        assert_eq!(count(&text, "refused"), Some(1.0), "{label}: {text}");
        let blue = [("env", "staging"), ("color", "blue")];
        assert_eq!(
            sample(&text, "vezasock_active_color_info", &blue),
            Some(1.0),
            "{label}: {text}"
        );
        // Edge a was prepared, then aborted because of b: not a refusal of its own gate.
        let a = scrape_file(&files[0], label);
        assert_eq!(count(&a, "refused"), None, "{label}: {a}");
        assert_eq!(
            sample(&a, "vezasock_active_color_info", &blue),
            Some(1.0),
            "{label}: {a}"
        );
    }
);

per_version!(
    fleet_server_changes_and_apply_rewrite_each_local_edge_file,
    |v: &Haproxy| {
        if !tools_or_skip() {
            return;
        }
        let label = v.label;
        let fleet = Fleet::local(v, 2);
        let files = textfiles(&fleet);
        for args in [
            &["drain", "staging", "green"][..],
            &["maint", "staging", "green"],
            &["ready", "staging", "green"],
            &["apply"],
        ] {
            for f in &files {
                let _ = std::fs::remove_file(f);
            }
            let started = now().floor();
            let run = fleet.run(args);
            assert_eq!(run.code, Some(0), "{label}: {args:?}: {run:?}");
            for f in &files {
                let text = scrape_file(f, label);
                let written = sample(&text, "vezasock_metrics_write_timestamp_seconds", &[]);
                assert!(
                    written.is_some_and(|t| t >= started),
                    "{label}: {args:?}: {written:?} < {started}: {text}"
                );
                assert_eq!(
                    sample(&text, "vezasock_edge_up", &[]),
                    Some(1.0),
                    "{label}: {args:?}: {text}"
                );
            }
        }
    }
);

per_version!(
    an_edge_over_ssh_rewrites_its_own_file_after_a_fleet_switch,
    |v: &Haproxy| {
        if !tools_or_skip() {
            return;
        }
        let label = v.label;
        let Some(fleet) = Fleet::start(v, &[Reach::Local, Reach::Ssh]) else {
            return;
        };
        let files = textfiles(&fleet);
        let run = fleet.run(&["switch", "staging", "green"]);
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        let green = [("env", "staging"), ("color", "green")];
        for f in &files {
            let text = scrape_file(f, label);
            assert_eq!(
                sample(&text, "vezasock_active_color_info", &green),
                Some(1.0),
                "{label}: {}: {text}",
                f.display()
            );
            let labels = [("env", "staging"), ("action", "switch"), ("result", "ok")];
            assert_eq!(
                sample(&text, "vezasock_switches_total", &labels),
                Some(1.0),
                "{label}: {}: {text}",
                f.display()
            );
        }
    }
);

per_version!(
    a_fleet_preview_check_an_edge_refuses_is_counted_refused_on_that_edge,
    |v: &Haproxy| {
        if !tools_or_skip() {
            return;
        }
        let label = v.label;
        let mut fleet = Fleet::local(v, 2);
        let files = textfiles(&fleet);
        // Edge b's green api answers 500: its own listener is what it checks through.
        let (_server, fake) = fail_staging_api_green(&mut fleet.members[1].edge, label);
        let run = fleet.run(&["switch", "staging", "green", "--preview-check", "/api/x"]);
        fake.store(false, Ordering::Relaxed);
        assert_eq!(run.code, Some(1), "{label}: {run:?}");
        let count = |text: &str, result: &str| {
            let labels = [("env", "staging"), ("action", "switch"), ("result", result)];
            sample(text, "vezasock_switches_total", &labels)
        };
        let b = scrape_file(&files[1], label);
        assert_eq!(count(&b, "refused"), Some(1.0), "{label}: {b}");
        let a = scrape_file(&files[0], label);
        assert_eq!(count(&a, "refused"), None, "{label}: {a}");
        let journal = std::fs::read_to_string(
            fleet.members[1]
                .edge
                .topology
                .paths
                .state_dir
                .join("journal.jsonl"),
        )
        .unwrap_or_default();
        assert!(
            journal.contains("\"phase\":\"refused\"") && journal.contains("answered 500"),
            "{label}: {journal}"
        );
    }
);
