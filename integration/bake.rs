//! `switch … --bake D` against a real local edge, on every HAProxy version: a new color whose
//! api answers 500 breaches during the bake and the edge flips back by itself (old color live
//! and recorded, exit 7 with the numbers); a clean bake passes and only then `--drain-old`
//! drains the old color, with no failed request under load.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vezasock::demo::LocalEdge;
use vezasock::topology::Color;

use crate::preview::{fail_staging_api_green, get_with};
use crate::support::haproxy::{per_version, Haproxy};
use crate::support::run::vezasock;
use crate::switch::{
    admin_state, file_color, healthy_edge, runtime_color, state_dir, wait_healthy,
};

/// Requests to staging `/api/x` until stopped (at most 60 s): (answered, failed) counts.
pub(crate) fn load(e: &LocalEdge, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(u64, u64)> {
    let addr = e.http;
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        let (mut ok, mut failed) = (0u64, 0u64);
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            let (status, _) = get_with(addr, "/api/x", &[]);
            if status == 200 {
                ok += 1;
            } else {
                failed += 1;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        (ok, failed)
    })
}

per_version!(
    a_breach_during_the_bake_flips_back_by_itself_and_stays_recorded,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut e = healthy_edge(v, dir.path());
        let label = v.label;
        let (_, fake) = fail_staging_api_green(&mut e, label);

        let stop = Arc::new(AtomicBool::new(false));
        let loader = load(&e, stop.clone());
        let started = Instant::now();
        let run = vezasock(
            &e,
            &[
                "switch",
                "staging",
                "green",
                "--sha",
                "bad1",
                "--bake",
                "20s",
                "--max-error-rate",
                "5%",
                "--min-requests",
                "10",
                "--drain-old",
            ],
        );
        let took = started.elapsed();
        stop.store(true, Ordering::Relaxed);
        let (ok, failed) = loader.join().unwrap_or((0, 0));
        fake.store(false, Ordering::Relaxed);
        assert_eq!(run.code, Some(7), "{label}: {run:?}");
        assert!(
            run.err.contains("bake of staging green failed: "),
            "{run:?}"
        );
        assert!(run.err.contains("requests answered 5xx"), "{run:?}");
        assert!(
            run.err.contains("flipped back to blue (live and recorded)"),
            "{run:?}"
        );
        // Flipped back at the breach, long before the bake's end.
        assert!(took < Duration::from_secs(10), "{label}: took {took:?}");
        assert!(ok > 0 && failed > 0, "{label}: ok {ok}, failed {failed}");
        // Live and recorded on blue: runtime, map file, state file, history, journal.
        assert_eq!(runtime_color(&e, "staging"), Some(Color::Blue), "{label}");
        assert_eq!(file_color(&e, "staging"), Some(Color::Blue), "{label}");
        let sd = state_dir(&e);
        assert_eq!(
            sd.recorded_color("staging").ok().flatten(),
            Some(Color::Blue)
        );
        let history = sd.history("staging").unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(
            history.first().map(|h| h.color),
            Some(Color::Blue),
            "{history:?}"
        );
        assert_eq!(history.get(1).and_then(|h| h.sha.as_deref()), Some("bad1"));
        let journal = std::fs::read_to_string(e.topology.paths.state_dir.join("journal.jsonl"))
            .unwrap_or_default();
        assert!(
            journal.contains("\"action\":\"rollback\",\"phase\":\"done\""),
            "{journal}"
        );
        assert!(sd.open_operations().map(|o| o.is_empty()).unwrap_or(false));
        // The old color was not drained: --drain-old waits for a clean bake.
        assert!(!run.out.contains("drain-old"), "{run:?}");
        let blue = e
            .servers
            .iter()
            .find(|s| s.backend == "be_staging_api_blue")
            .cloned()
            .unwrap_or_else(|| panic!("no blue server"));
        assert!(
            !admin_state(&e, &blue.backend, &blue.server).is_drain(),
            "{label}"
        );
        let status = vezasock(&e, &["status", "staging"]);
        assert_eq!(status.code, Some(0), "{label}: {status:?}");
    }
);

per_version!(
    a_clean_bake_passes_then_drains_the_old_color_with_no_failed_request,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let e = healthy_edge(v, dir.path());
        let label = v.label;
        let stop = Arc::new(AtomicBool::new(false));
        let loader = load(&e, stop.clone());
        let run = vezasock(
            &e,
            &[
                "switch",
                "staging",
                "green",
                "--bake",
                "3s",
                "--min-requests",
                "10",
                "--drain-old",
                "--drain-timeout",
                "5s",
                "--json",
            ],
        );
        stop.store(true, Ordering::Relaxed);
        let (ok, failed) = loader.join().unwrap_or((0, 0));
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        assert_eq!(failed, 0, "{label}: {ok} ok");
        assert!(ok > 10, "{label}: {ok}");
        let v: serde_json::Value =
            serde_json::from_str(&run.out).unwrap_or_else(|err| panic!("{err}: {run:?}"));
        assert_eq!(v["bake"]["verdict"], "pass", "{run:?}");
        assert!(
            v["bake"]["window"]["requests"].as_u64().unwrap_or(0) >= 10,
            "{run:?}"
        );
        assert_eq!(v["bake"]["window"]["errors"], 0, "{run:?}");
        assert!(
            v["bake"]["watched_ms"].as_f64().unwrap_or(0.0) >= 3000.0,
            "{run:?}"
        );
        let names: Vec<&str> = v["steps"]
            .as_array()
            .map(|a| a.iter().filter_map(|s| s["name"].as_str()).collect())
            .unwrap_or_default();
        let bake = names.iter().position(|n| *n == "bake");
        let drain = names.iter().position(|n| *n == "drain-old");
        assert!(bake.is_some() && drain > bake, "{names:?}");
        assert_eq!(runtime_color(&e, "staging"), Some(Color::Green), "{label}");
        for s in e
            .servers
            .iter()
            .filter(|s| s.backend.starts_with("be_staging_") && s.color == Some(Color::Blue))
        {
            assert!(
                admin_state(&e, &s.backend, &s.server).is_drain(),
                "{label}: {s:?}"
            );
        }
    }
);

per_version!(
    the_prometheus_listener_shows_per_color_backends_on_loopback,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut topo = vezasock::topology::Topology::embedded_default()
            .unwrap_or_else(|e| panic!("embedded default: {e}"));
        let port = crate::support::ports::free_port();
        topo.metrics = Some(vezasock::topology::Metrics {
            listen: format!("127.0.0.1:{port}"),
        });
        let e = LocalEdge::start(
            &topo,
            &v.bin,
            dir.path(),
            &std::collections::BTreeMap::new(),
        )
        .unwrap_or_else(|err| panic!("{}: {err}", v.label));
        wait_healthy(&e, v.label);
        for _ in 0..5 {
            assert_eq!(get_with(e.http, "/api/x", &[]).0, 200);
        }
        let metrics = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        // HAProxy counts a response when its stream ends, which can be just after the client
        // read it: read again (bounded) until the fifth is counted.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let (answer, line) = loop {
            let answer =
                vezasock::demo::http::get(metrics, "localhost", "/metrics", Duration::from_secs(5))
                    .unwrap_or_else(|err| panic!("{}: GET /metrics: {err}", v.label));
            assert_eq!(answer.status, 200, "{}", v.label);
            // The queries of docs/progressive-delivery.md read these series.
            let line = answer
                .body
                .lines()
                .find(|l| {
                    l.starts_with("haproxy_backend_http_responses_total{")
                        && l.contains("proxy=\"be_staging_api_blue\"")
                        && l.contains("code=\"2xx\"")
                })
                .unwrap_or_else(|| panic!("{}: no 2xx series for be_staging_api_blue", v.label))
                .to_string();
            let value: f64 = line
                .rsplit(' ')
                .next()
                .and_then(|x| x.parse().ok())
                .unwrap_or(0.0);
            if value >= 5.0 || std::time::Instant::now() > deadline {
                break (answer, line);
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let value: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|x| x.parse().ok())
            .unwrap_or(0.0);
        assert!(value >= 5.0, "{}: {line}", v.label);
        assert!(
            answer.body.contains("proxy=\"be_staging_api_green\""),
            "{}",
            v.label
        );
        let other = vezasock::demo::http::get(metrics, "localhost", "/", Duration::from_secs(5))
            .unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(other.status, 404, "{}", v.label);
    }
);
