//! `vezasock canary` against a real local edge, on every HAProxy version: a healthy color
//! promotes through every step with no failed request and ends recorded as a switch; a color
//! whose api answers 500 aborts at its first step within the bound that step allows; the split
//! follows the percent and a user with its cookie keeps its color.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vezasock::demo::LocalEdge;
use vezasock::topology::Color;

use crate::haproxy::{per_version, Haproxy};
use crate::preview::fail_staging_api_green;
use crate::switch::{file_color, healthy_edge, runtime_color, state_dir, vezasock, wait_healthy};

/// `GET /api/x` on staging with an optional Cookie header: (status, body, Set-Cookie bucket).
fn get(addr: SocketAddr, cookie: Option<&str>) -> (u16, String, Option<String>) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap_or_else(|e| panic!("{e}"));
    let extra = cookie
        .map(|c| format!("cookie: {c}\r\n"))
        .unwrap_or_default();
    let req =
        format!("GET /api/x HTTP/1.1\r\nhost: staging.veza.fr\r\nconnection: close\r\n{extra}\r\n");
    s.write_all(req.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|w| w.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let bucket = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: vezasock_bucket=")
                .or_else(|| l.strip_prefix("Set-Cookie: vezasock_bucket="))
        })
        .and_then(|v| v.split(';').next())
        .map(str::to_string);
    (status, body.trim().to_string(), bucket)
}

/// Cookie-less load until stopped: (ok, failed, green).
fn load(e: &LocalEdge, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(u64, u64, u64)> {
    let addr = e.http;
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(90);
        let (mut ok, mut failed, mut green) = (0, 0, 0);
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            let (status, body, _) = get(addr, None);
            if status == 200 {
                ok += 1;
            } else {
                failed += 1;
            }
            if body.ends_with("green") || status != 200 {
                green += 1;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        (ok, failed, green)
    })
}

per_version!(
    a_healthy_canary_promotes_through_every_step_and_ends_as_a_switch,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let e = healthy_edge(v, dir.path());
        let label = v.label;
        let stop = Arc::new(AtomicBool::new(false));
        let loader = load(&e, stop.clone());
        let run = vezasock(
            &e,
            &[
                "canary",
                "staging",
                "green",
                "--steps",
                "20,50,100",
                "--interval",
                "1s",
                "--min-requests",
                "5",
                "--sha",
                "good1",
                "--json",
            ],
        );
        stop.store(true, Ordering::Relaxed);
        let (ok, failed, green) = loader.join().unwrap_or((0, 0, 0));
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        assert_eq!(failed, 0, "{label}: {ok} ok");
        assert!(green > 0 && green < ok, "{label}: {green} of {ok} on green");
        let r: serde_json::Value =
            serde_json::from_str(&run.out).unwrap_or_else(|err| panic!("{err}: {run:?}"));
        assert_eq!(r["steps"].as_array().map(Vec::len), Some(2), "{run:?}");
        assert_eq!(r["steps"][0]["verdict"], "pass", "{run:?}");
        assert_eq!(r["switch"]["to"], "green", "{run:?}");
        // Recorded exactly as a switch: runtime, map file, state file, history, journal.
        assert_eq!(runtime_color(&e, "staging"), Some(Color::Green), "{label}");
        assert_eq!(file_color(&e, "staging"), Some(Color::Green), "{label}");
        let sd = state_dir(&e);
        assert_eq!(
            sd.recorded_color("staging").ok().flatten(),
            Some(Color::Green)
        );
        let history = sd.history("staging").unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(
            history.first().map(|h| (h.color, h.sha.as_deref())),
            Some((Color::Green, Some("good1")))
        );
        let journal = std::fs::read_to_string(e.topology.paths.state_dir.join("journal.jsonl"))
            .unwrap_or_default();
        assert!(
            journal.contains("\"action\":\"switch\",\"phase\":\"done\""),
            "{journal}"
        );
        assert!(
            journal
                .matches("\"action\":\"canary\",\"phase\":\"done\"")
                .count()
                >= 4,
            "{journal}"
        );
        assert!(sd.open_operations().map(|o| o.is_empty()).unwrap_or(false));
        // The canary entry is gone; every request is green.
        let map = std::fs::read_to_string(e.topology.paths.preview_map()).unwrap_or_default();
        assert!(!map.lines().any(|l| l.starts_with("staging ")), "{map}");
        for _ in 0..20 {
            assert_eq!(get(e.http, None).1, "staging api green");
        }
    }
);

per_version!(
    a_failing_canary_aborts_at_its_first_step_within_its_bound,
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
                "canary",
                "staging",
                "green",
                "--steps",
                "10,50,100",
                "--interval",
                "5s",
                "--max-error-rate",
                "5%",
                "--min-requests",
                "10",
            ],
        );
        let took = started.elapsed();
        stop.store(true, Ordering::Relaxed);
        let (ok, failed, _) = loader.join().unwrap_or((0, 0, 0));
        fake.store(false, Ordering::Relaxed);
        assert_eq!(run.code, Some(7), "{label}: {run:?}");
        assert!(run.err.contains("aborted: breach at step 10 %"), "{run:?}");
        assert!(run.err.contains("requests answered 5xx"), "{run:?}");
        // Aborted at the first breach, before the step's interval ended.
        assert!(took < Duration::from_secs(5), "{label}: {took:?}");
        // The bound: at 10 % with every api answer from green failing, about 10 % of the
        // requests during the step fail; allow 10 points of noise (random buckets).
        let total = ok + failed;
        assert!(
            failed > 0 && failed * 100 <= total * 20,
            "{label}: {failed} of {total}"
        );
        // After the abort every request goes to the old color, and nothing is recorded.
        for _ in 0..100 {
            assert_eq!(get(e.http, None).1, "staging api blue", "{label}");
        }
        assert_eq!(
            runtime_color(&e, "staging").unwrap_or(Color::Blue),
            Color::Blue
        );
        let sd = state_dir(&e);
        assert_ne!(
            sd.recorded_color("staging").ok().flatten(),
            Some(Color::Green)
        );
        let map = std::fs::read_to_string(e.topology.paths.preview_map()).unwrap_or_default();
        assert!(!map.lines().any(|l| l.starts_with("staging ")), "{map}");
    }
);

per_version!(
    the_split_follows_the_percent_and_a_cookie_keeps_its_color,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let e = healthy_edge(v, dir.path());
        let label = v.label;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_vezasock"))
            .args([
                "canary",
                "staging",
                "green",
                "--steps",
                "30,60,100",
                "--interval",
                "6s",
                "--min-requests",
                "1",
            ])
            .env_remove("VEZASOCK_CONFIG")
            .envs(e.cli_env())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("{err}"));
        // Wait for the first step.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !std::fs::read_to_string(e.topology.paths.preview_map())
            .unwrap_or_default()
            .contains("staging green:30")
        {
            assert!(Instant::now() < deadline, "{label}: no step 30");
            std::thread::sleep(Duration::from_millis(20));
        }
        // 50 users get a bucket and keep it.
        let users: Vec<(String, String)> = (0..50)
            .map(|_| {
                let (_, body, bucket) = get(e.http, None);
                (
                    bucket.unwrap_or_else(|| panic!("{label}: no Set-Cookie")),
                    body,
                )
            })
            .collect();
        // 1000 cookie-less requests: 30 % ± 5 points on green.
        let green = (0..1000)
            .filter(|_| get(e.http, None).1.ends_with("green"))
            .count();
        assert!(
            (250..=350).contains(&green),
            "{label}: {green} of 1000 on green at 30 %"
        );
        for (bucket, body) in &users {
            let cookie = format!("vezasock_bucket={bucket}");
            assert_eq!(
                &get(e.http, Some(&cookie)).1,
                body,
                "{label}: bucket {bucket}"
            );
        }
        // At 60 % a user never moves from green back to blue.
        let deadline = Instant::now() + Duration::from_secs(15);
        while !std::fs::read_to_string(e.topology.paths.preview_map())
            .unwrap_or_default()
            .contains("staging green:60")
        {
            assert!(Instant::now() < deadline, "{label}: no step 60");
            std::thread::sleep(Duration::from_millis(20));
        }
        for (bucket, body) in &users {
            let cookie = format!("vezasock_bucket={bucket}");
            let now = get(e.http, Some(&cookie)).1;
            if body.ends_with("green") {
                assert_eq!(&now, body, "{label}: bucket {bucket} went back");
            }
        }
        let status = child.wait().unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(status.code(), Some(0), "{label}");
        assert_eq!(runtime_color(&e, "staging"), Some(Color::Green), "{label}");
    }
);

per_version!(
    a_killed_canary_keeps_its_percent_across_a_restart_until_aborted,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut e = healthy_edge(v, dir.path());
        let label = v.label;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_vezasock"))
            .args([
                "canary",
                "staging",
                "green",
                "--steps",
                "40,100",
                "--interval",
                "60s",
            ])
            .env_remove("VEZASOCK_CONFIG")
            .envs(e.cli_env())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("{err}"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !std::fs::read_to_string(e.topology.paths.preview_map())
            .unwrap_or_default()
            .contains("staging green:40")
        {
            assert!(Instant::now() < deadline, "{label}: no step 40");
            std::thread::sleep(Duration::from_millis(20));
        }
        // kill -9 mid-step.
        child.kill().unwrap_or_else(|err| panic!("{err}"));
        let _ = child.wait();
        e.restart_haproxy()
            .unwrap_or_else(|err| panic!("{label}: {err}"));
        wait_healthy(&e, label);
        let green = (0..400)
            .filter(|_| get(e.http, None).1.ends_with("green"))
            .count();
        assert!(
            (100..=220).contains(&green),
            "{label}: {green} of 400 at 40 %"
        );
        // `status` shows the canary the killed process left, with its percent.
        let status = vezasock(&e, &["status", "--json"]);
        let json: serde_json::Value = serde_json::from_str(status.out.trim())
            .unwrap_or_else(|err| panic!("{label}: {err}: {status:?}"));
        assert_eq!(
            json["canaries"],
            serde_json::json!([{"env": "staging", "color": "green", "percent": 40}]),
            "{label}: {json}"
        );
        let human = vezasock(&e, &["status"]);
        assert!(
            human.out.contains("CANARY IN PROGRESS staging: 40 %"),
            "{label}: {human:?}"
        );
        let run = vezasock(&e, &["canary", "staging", "--abort"]);
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        assert!(run.out.contains("aborted"), "{run:?}");
        let status = vezasock(&e, &["status", "--json"]);
        assert!(
            status.out.contains("\"canaries\":[]"),
            "{label}: {status:?}"
        );
        for _ in 0..50 {
            assert_eq!(get(e.http, None).1, "staging api blue", "{label}");
        }
        let again = vezasock(&e, &["canary", "staging", "--abort"]);
        assert!(again.out.contains("nothing to abort"), "{again:?}");
    }
);

per_version!(
    canary_promote_from_another_shell_ends_it_as_a_switch,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let e = healthy_edge(v, dir.path());
        let label = v.label;
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_vezasock"))
            .args([
                "canary",
                "staging",
                "green",
                "--steps",
                "10,100",
                "--interval",
                "60s",
                "--sha",
                "p1",
            ])
            .env_remove("VEZASOCK_CONFIG")
            .envs(e.cli_env())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("{err}"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !std::fs::read_to_string(e.topology.paths.preview_map())
            .unwrap_or_default()
            .contains("staging green:10")
        {
            assert!(Instant::now() < deadline, "{label}: no step 10");
            std::thread::sleep(Duration::from_millis(20));
        }
        let run = vezasock(&e, &["canary", "staging", "--promote"]);
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        let started = Instant::now();
        let out = child
            .wait_with_output()
            .unwrap_or_else(|err| panic!("{err}"));
        assert!(started.elapsed() < Duration::from_secs(10), "{label}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{label}: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("promoted from outside"), "{text}");
        assert_eq!(runtime_color(&e, "staging"), Some(Color::Green), "{label}");
        let history = state_dir(&e)
            .history("staging")
            .unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(
            history.first().map(|h| (h.color, h.sha.as_deref())),
            Some((Color::Green, Some("p1")))
        );
        let nothing = vezasock(&e, &["canary", "staging", "--promote"]);
        assert_eq!(nothing.code, Some(1), "{nothing:?}");
    }
);
