//! `vezasock status --watch`: without a terminal it prints plain snapshots, each headed by its
//! time; on a pseudo-terminal (util-linux `script`) it redraws the screen and shows a flip made
//! from another shell within one interval.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::haproxy::{per_version, Haproxy};
use crate::support::run::{vezasock, vezasock_env};
use crate::switch::healthy_edge;

per_version!(
    status_watch_without_a_terminal_prints_plain_snapshots,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let e = healthy_edge(v, dir.path());
        let label = v.label;
        let run = vezasock_env(&e, &["status", "--watch", "200ms", "--count", "3"], &[]);
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        assert_eq!(
            run.out.matches("every 200ms: vezasock status, ").count(),
            3,
            "{label}: {run:?}"
        );
        assert_eq!(
            run.out.matches("staging: live blue").count(),
            3,
            "{label}: {run:?}"
        );
        assert!(!run.out.contains('\x1b'), "{label}: {run:?}");
    }
);

per_version!(
    status_watch_on_a_terminal_shows_a_flip_within_one_interval,
    |v: &Haproxy| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let e = healthy_edge(v, dir.path());
        let label = v.label;
        let interval = Duration::from_millis(500);
        let inner = format!(
            "'{}' status staging --watch 500ms --count 20",
            env!("CARGO_BIN_EXE_vezasock")
        );
        let mut child = Command::new("script")
            .args(["-q", "-e", "-c", &inner, "/dev/null"])
            .env_remove("VEZASOCK_CONFIG")
            .envs(e.cli_env())
            .env("VEZASOCK_WHO", "it-test")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("script: {err}"));
        let seen: Arc<Mutex<(String, Option<Instant>)>> = Arc::default();
        let mut stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        let reader = {
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = stdout.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if let Ok(mut s) = seen.lock() {
                        s.0.push_str(&String::from_utf8_lossy(&buf[..n]));
                        if s.1.is_none() && s.0.contains("staging: live green") {
                            s.1 = Some(Instant::now());
                        }
                    }
                }
            })
        };
        std::thread::sleep(Duration::from_millis(1500));
        let run = vezasock(&e, &["switch", "staging", "green"]);
        let switched = Instant::now();
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        let status = child.wait().unwrap_or_else(|err| panic!("{err}"));
        let _ = reader.join();
        let (out, green_at) = seen.lock().map(|s| s.clone()).unwrap_or_default();
        assert!(status.success(), "{label}: {status:?} {out}");
        assert!(
            out.contains("\x1b[H\x1b[2J"),
            "{label}: not redrawn: {out:?}"
        );
        assert!(out.contains("staging: live blue"), "{label}: {out}");
        let green_at = green_at.unwrap_or_else(|| panic!("{label}: the flip never showed: {out}"));
        let late = green_at.saturating_duration_since(switched);
        assert!(
            late <= interval + Duration::from_millis(700),
            "{label}: shown {late:?} after the flip"
        );
    }
);
