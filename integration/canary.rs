//! `vezasock canary` against a real local edge, on every HAProxy version: a healthy color
//! promotes through every step with no failed request and ends recorded as a switch; a color
//! whose api answers 500 aborts at its first step within the bound that step allows; the split
//! follows the percent and 200 users with their cookies keep their color; a canary killed with
//! SIGKILL is reported by `status` and put back to 0 % by `apply`; a reload mid-canary keeps its
//! percent and its next step.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vezasock::demo::LocalEdge;
use vezasock::topology::Color;

use crate::preview::fail_staging_api_green;
use crate::support::haproxy::{per_version, Haproxy};
use crate::support::run::{vezasock, Run, Running, Vezasock, BOUND};
use crate::switch::{file_color, healthy_edge, runtime_color, state_dir, wait_healthy};

/// A `vezasock canary` started in the background (killed if the test ends first).
fn background(e: &LocalEdge, args: &[&str]) -> Running {
    Vezasock::edge(e, args).spawn()
}

/// `GET /api/x` on staging with an optional Cookie header: (status, body, Set-Cookie bucket).
pub(crate) fn get(addr: SocketAddr, cookie: Option<&str>) -> (u16, String, Option<String>) {
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

/// `apply` on the local edge (as a library call: the CLI's embedded topology is not this edge's).
fn apply(e: &LocalEdge, label: &str) -> vezasock::edge::apply::ApplyReport {
    let options = vezasock::edge::apply::ApplyOptions {
        dry_run: false,
        wait: vezasock::state::Wait::up_to(Duration::from_secs(10)),
        allow_reload: false,
    };
    crate::switch::rt()
        .block_on(vezasock::edge::apply::apply(
            &crate::switch::lib_edge(e),
            options,
        ))
        .unwrap_or_else(|err| panic!("{label}: apply: {err}"))
}

/// The preview map file's canary entry of staging, e.g. `green:30` (`None`: no canary).
fn staging_entry(e: &LocalEdge) -> Option<String> {
    std::fs::read_to_string(e.topology.paths.preview_map())
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("staging ").map(str::to_string))
}

/// The runtime preview map's canary entry of staging.
fn runtime_entry(e: &LocalEdge, label: &str) -> Option<String> {
    let map = e
        .topology
        .paths
        .preview_map()
        .to_string_lossy()
        .into_owned();
    crate::switch::rt().block_on(async {
        let mut s = crate::switch::admin_session(e, label).await;
        s.show_map(&map, None)
            .await
            .unwrap_or_else(|err| panic!("{label}: {err}"))
            .into_iter()
            .find(|x| x.key == "staging")
            .map(|x| x.value)
    })
}

/// Waits up to `bound` for staging's canary entry to be `entry`, in the map file and then in the
/// runtime (the file is written first).
pub(crate) fn wait_entry(e: &LocalEdge, entry: &str, bound: Duration, label: &str) {
    let deadline = Instant::now() + bound;
    while staging_entry(e).as_deref() != Some(entry)
        || runtime_entry(e, label).as_deref() != Some(entry)
    {
        assert!(
            Instant::now() < deadline,
            "{label}: no {entry} within {bound:?}: {:?}",
            staging_entry(e)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `n` cookie-less requests over 8 threads: how many reached green (every one must answer 200).
fn green_of(e: &LocalEdge, n: usize, label: &str) -> usize {
    let addr = e.http;
    let per = n.div_ceil(8);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(move || {
                    (0..per)
                        .filter(|_| {
                            let (status, body, _) = get(addr, None);
                            assert_eq!(status, 200, "{label}: {body}");
                            body.ends_with("green")
                        })
                        .count()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| panic!("{label}: a client panicked"))
            })
            .sum()
    })
}

/// `users` new users (no cookie): each one's bucket (from its Set-Cookie) and color.
fn new_users(e: &LocalEdge, users: usize, label: &str) -> Vec<(u8, String)> {
    let addr = e.http;
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(move || {
                    (0..users.div_ceil(8))
                        .map(|_| {
                            let (_, body, bucket) = get(addr, None);
                            let bucket = bucket
                                .and_then(|b| b.parse().ok())
                                .unwrap_or_else(|| panic!("{label}: no bucket cookie: {body}"));
                            (bucket, body)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| {
                w.join()
                    .unwrap_or_else(|_| panic!("{label}: a client panicked"))
            })
            .collect()
    })
}

/// Each user sends its cookie again: the color it gets now, in the same order.
fn returning(e: &LocalEdge, users: &[(u8, String)]) -> Vec<String> {
    let addr = e.http;
    std::thread::scope(|s| {
        let workers: Vec<_> = users
            .chunks(users.len().div_ceil(8).max(1))
            .map(|chunk| {
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|(bucket, _)| get(addr, Some(&format!("vezasock_bucket={bucket}"))).1)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    })
}

/// A user is on green exactly when its bucket is below the percent.
fn assert_sticky(users: &[(u8, String)], now: &[String], percent: u8, label: &str) {
    assert_eq!(users.len(), now.len(), "{label}");
    for ((bucket, _), body) in users.iter().zip(now) {
        let want = if *bucket < percent { "green" } else { "blue" };
        assert_eq!(
            body,
            &format!("staging api {want}"),
            "{label}: bucket {bucket} at {percent} %"
        );
    }
}

// The split over 2,000 cookie-less requests per step is within ±5 points of the step's percent
// (σ ≈ 1 point: the bound is about 5σ), and 200 users that keep their cookie keep their color;
// at the next step, only users move from blue to green, never back. About 3 s per version
// beyond the two 5 s steps (8 client threads).
per_version!(
    the_split_follows_the_percent_and_a_cookie_keeps_its_color,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let e = healthy_edge(v, dir.path());
        let label = v.label;
        let started = Instant::now();
        let child = background(
            &e,
            &[
                "canary",
                "staging",
                "green",
                "--steps",
                "30,60,100",
                "--interval",
                "5s",
                "--min-requests",
                "1",
            ],
        );
        wait_entry(&e, "green:30", Duration::from_secs(10), label);
        let users = new_users(&e, 200, label);
        assert_eq!(users.len(), 200, "{label}");
        for (bucket, body) in &users {
            let want = if *bucket < 30 { "green" } else { "blue" };
            assert_eq!(
                body,
                &format!("staging api {want}"),
                "{label}: bucket {bucket}"
            );
        }
        let green = green_of(&e, 2000, label);
        assert!(
            (500..=700).contains(&green),
            "{label}: {green} of 2000 on green at 30 %"
        );
        assert_sticky(&users, &returning(&e, &users), 30, label);
        assert_eq!(
            staging_entry(&e).as_deref(),
            Some("green:30"),
            "{label}: the measurement overran the step"
        );
        wait_entry(&e, "green:60", Duration::from_secs(15), label);
        // At 60 %: every user that was green stays green; the users that move go to green.
        let now = returning(&e, &users);
        for ((bucket, before), after) in users.iter().zip(&now) {
            if before.ends_with("green") {
                assert_eq!(after, before, "{label}: bucket {bucket} went back");
            }
        }
        assert_sticky(&users, &now, 60, label);
        let green = green_of(&e, 2000, label);
        assert!(
            (1100..=1300).contains(&green),
            "{label}: {green} of 2000 on green at 60 %"
        );
        assert_eq!(
            staging_entry(&e).as_deref(),
            Some("green:60"),
            "{label}: the measurement overran the step"
        );
        let Run { code, out, err } = child.finish(BOUND);
        assert_eq!(code, Some(0), "{label}: {out} {err}");
        assert_eq!(runtime_color(&e, "staging"), Some(Color::Green), "{label}");
        eprintln!(
            "canary stickiness {label}: {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
);

// kill -9 of a running canary: its percent stays live and on disk (a restart keeps it), `status`
// reports it as interrupted (exit 6), and `apply` puts it back to 0 % by itself.
per_version!(
    a_killed_canary_is_reported_by_status_and_put_back_to_0_by_apply,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut e = healthy_edge(v, dir.path());
        let label = v.label;
        let child = background(
            &e,
            &[
                "canary",
                "staging",
                "green",
                "--steps",
                "40,100",
                "--interval",
                "60s",
            ],
        );
        wait_entry(&e, "green:40", Duration::from_secs(10), label);
        let _ = child.kill();
        e.restart_haproxy()
            .unwrap_or_else(|err| panic!("{label}: {err}"));
        wait_healthy(&e, label);
        let green = green_of(&e, 800, label);
        assert!(
            (240..=400).contains(&green),
            "{label}: {green} of 800 at 40 % after the restart"
        );
        // `status` shows the canary the killed process left, with its percent, as interrupted.
        let status = vezasock(&e, &["status", "--json"]);
        assert_eq!(status.code, Some(6), "{label}: {status:?}");
        let json: serde_json::Value = serde_json::from_str(status.out.trim())
            .unwrap_or_else(|err| panic!("{label}: {err}: {status:?}"));
        assert_eq!(
            json["canaries"],
            serde_json::json!([{"env": "staging", "color": "green", "percent": 40, "running": false}]),
            "{label}: {json}"
        );
        let human = vezasock(&e, &["status"]);
        assert_eq!(human.code, Some(6), "{label}: {human:?}");
        assert!(
            human.out.contains("CANARY IN PROGRESS staging: 40 %")
                && human.out.contains("INTERRUPTED")
                && human.out.contains("`vezasock apply` puts it back to 0 %"),
            "{label}: {human:?}"
        );
        // Nobody would finish a promote: refused, the percent unchanged.
        let promote = vezasock(&e, &["canary", "staging", "--promote"]);
        assert_eq!(promote.code, Some(1), "{label}: {promote:?}");
        assert!(
            promote.err.contains("no process any more"),
            "{label}: {promote:?}"
        );
        assert_eq!(staging_entry(&e).as_deref(), Some("green:40"), "{label}");
        // `apply` puts it on the safe side: 0 %, one map change, journalled, written through.
        let journal = e.topology.paths.state_dir.join("journal.jsonl");
        let before = std::fs::read_to_string(&journal).unwrap_or_default();
        let report = apply(&e, label);
        let fixed = report.repair.map(|r| r.fixed).unwrap_or_default();
        assert!(
            fixed
                .iter()
                .any(|f| f.starts_with("canary staging: green:40 → 0 %")),
            "{label}: {fixed:?}"
        );
        assert_eq!(staging_entry(&e), None, "{label}");
        assert_eq!(runtime_entry(&e, label), None, "{label}");
        let after = std::fs::read_to_string(&journal).unwrap_or_default();
        let new = after.get(before.len()..).unwrap_or_default();
        assert!(
            new.contains("\"action\":\"canary\",\"phase\":\"done\"")
                && new.contains("\"before\":\"green:40\""),
            "{label}: {new}"
        );
        assert!(state_dir(&e)
            .open_operations()
            .map(|o| o.is_empty())
            .unwrap_or(false));
        assert_eq!(
            green_of(&e, 200, label),
            0,
            "{label}: a request on green after apply"
        );
        let status = vezasock(&e, &["status", "--json"]);
        assert_eq!(status.code, Some(0), "{label}: {status:?}");
        assert!(
            status.out.contains("\"canaries\":[]"),
            "{label}: {status:?}"
        );
        let again = vezasock(&e, &["canary", "staging", "--abort"]);
        assert!(again.out.contains("nothing to abort"), "{again:?}");
        // Nothing recorded: the env is still on blue.
        assert_ne!(
            state_dir(&e).recorded_color("staging").ok().flatten(),
            Some(Color::Green)
        );
    }
);

// A kill between the map file and the runtime of a canary's map change (here an `--abort`,
// after its canary was killed): the runtime alone still holds the percent and the journal an
// open `canary` operation. `status` reports it (exit 6); `apply` deletes the runtime entry and
// closes the operation.
per_version!(
    a_kill_inside_a_canary_map_change_is_repaired_by_apply,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let e = healthy_edge(v, dir.path());
        let label = v.label;
        let child = background(
            &e,
            &[
                "canary",
                "staging",
                "green",
                "--steps",
                "40,100",
                "--interval",
                "60s",
            ],
        );
        wait_entry(&e, "green:40", Duration::from_secs(10), label);
        // The kill must land while the canary waits out its interval, not between its runtime
        // step and its `done` line (a busy machine showed that order too): wait for the step's
        // operation to close first.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !state_dir(&e)
            .open_operations()
            .unwrap_or_else(|err| panic!("{label}: {err}"))
            .is_empty()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "{label}: the canary's 40 % step never closed"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let run = crate::support::run::vezasock_env(
            &e,
            &["canary", "staging", "--abort"],
            &[("VEZASOCK_CRASH_AT", "canary-after-disk")],
        );
        assert_eq!(run.code, None, "{label}: not killed: {run:?}");
        assert_eq!(staging_entry(&e), None, "{label}: the file was written");
        assert_eq!(
            runtime_entry(&e, label).as_deref(),
            Some("green:40"),
            "{label}: the runtime was not"
        );
        let open = state_dir(&e)
            .open_operations()
            .unwrap_or_else(|err| panic!("{label}: {err}"));
        assert_eq!(open.len(), 1, "{label}: {open:?}");
        let status = vezasock(&e, &["status"]);
        assert_eq!(status.code, Some(6), "{label}: {status:?}");
        assert!(status.out.contains("INTERRUPTED"), "{label}: {status:?}");
        let report = apply(&e, label);
        let fixed = report.repair.map(|r| r.fixed).unwrap_or_default();
        assert!(
            fixed
                .iter()
                .any(|f| f.starts_with("canary staging: runtime entry → 0 %")),
            "{label}: {fixed:?}"
        );
        assert!(
            fixed
                .iter()
                .any(|f| f.starts_with("closed the interrupted")),
            "{label}: {fixed:?}"
        );
        assert_eq!(runtime_entry(&e, label), None, "{label}");
        assert!(
            state_dir(&e)
                .open_operations()
                .map(|o| o.is_empty())
                .unwrap_or(false),
            "{label}"
        );
        assert_eq!(
            green_of(&e, 200, label),
            0,
            "{label}: a request on green after apply"
        );
        let status = vezasock(&e, &["status"]);
        assert_eq!(status.code, Some(0), "{label}: {status:?}");
    }
);

// A reload in the middle of a canary keeps its percent (the new worker reads the map file), the
// running canary's next step reaches the new worker, `apply` leaves a running canary alone, a
// second canary of the env is refused, and `--abort` from another shell stops it.
per_version!(
    a_reload_mid_canary_keeps_its_percent_and_its_next_step,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let e = healthy_edge(v, dir.path());
        let label = v.label;
        let child = background(
            &e,
            &[
                "canary",
                "staging",
                "green",
                "--steps",
                "30,60,100",
                "--interval",
                "6s",
                "--min-requests",
                "1",
            ],
        );
        wait_entry(&e, "green:30", Duration::from_secs(10), label);
        let step_started = Instant::now();
        let second = vezasock(&e, &["canary", "staging", "green", "--steps", "100"]);
        assert_eq!(second.code, Some(1), "{label}: {second:?}");
        assert!(
            second.err.contains("already running"),
            "{label}: {second:?}"
        );
        let report = apply(&e, label);
        assert!(report.untouched(), "{label}: {report:?}");
        assert_eq!(staging_entry(&e).as_deref(), Some("green:30"), "{label}");
        let worker = crate::switch::worker_pid(&e);
        let master = vezasock::runtime::endpoint::Endpoint::Master {
            socket: vezasock::runtime::endpoint::Socket::Unix(
                e.topology.paths.master_socket.clone(),
            ),
            target: None,
        };
        crate::switch::rt()
            .block_on(vezasock::runtime::master::reload(
                &master,
                vezasock::runtime::connection::Deadlines {
                    connect: Duration::from_secs(5),
                    reply: Duration::from_secs(30),
                },
            ))
            .unwrap_or_else(|err| panic!("{label}: reload: {err}\n{}", e.log()));
        assert_ne!(
            crate::switch::worker_pid(&e),
            worker,
            "{label}: no new worker"
        );
        let green = green_of(&e, 2000, label);
        assert!(
            (500..=700).contains(&green),
            "{label}: {green} of 2000 on green at 30 % after the reload"
        );
        assert!(
            step_started.elapsed() < Duration::from_secs(6)
                && staging_entry(&e).as_deref() == Some("green:30"),
            "{label}: the measurement overran the step ({:?})",
            step_started.elapsed()
        );
        // The next step goes to the new worker (the canary does not talk to the old one).
        wait_entry(&e, "green:60", Duration::from_secs(15), label);
        let green = green_of(&e, 2000, label);
        assert!(
            (1100..=1300).contains(&green),
            "{label}: {green} of 2000 on green at 60 % (the step after the reload)"
        );
        let run = vezasock(&e, &["canary", "staging", "--abort"]);
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        let Run { code, out, err } = child.finish(BOUND);
        assert_eq!(code, Some(7), "{label}: {out} {err}");
        assert!(err.contains("aborted from outside"), "{label}: {err}");
        assert_eq!(
            green_of(&e, 200, label),
            0,
            "{label}: a request on green after the abort"
        );
    }
);

per_version!(
    canary_promote_from_another_shell_ends_it_as_a_switch,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let e = healthy_edge(v, dir.path());
        let label = v.label;
        let child = background(
            &e,
            &[
                "canary",
                "staging",
                "green",
                "--steps",
                "10,100",
                "--interval",
                "60s",
                "--sha",
                "p1",
            ],
        );
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
        let out = child.finish(BOUND);
        assert!(started.elapsed() < Duration::from_secs(10), "{label}");
        let text = &out.out;
        assert_eq!(out.code, Some(0), "{label}: {text} {}", out.err);
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
