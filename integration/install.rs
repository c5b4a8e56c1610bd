//! First install on every HAProxy version (2.6, 3.0, 3.2): on a fresh dir where HAProxy is not
//! running, `vezasock apply` writes the checked config, summary and maps, starts nothing, and
//! prints the command that starts HAProxy; that command brings up an edge that `status`
//! accepts and that routes staging to blue; a second apply does nothing; with a live config
//! but HAProxy down, apply is exit 3 and says how to start it; a candidate that `haproxy -c`
//! refuses installs nothing.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use vezasock::cli::exit::Exit;
use vezasock::demo::http::get;
use vezasock::render::render;
use vezasock::render::shape::summary_path;
use vezasock::topology::{Tls, Topology};

use crate::support::fresh::{fresh, Fresh};
use crate::support::haproxy::{per_version, Haproxy};
use crate::support::run::{vezasock_config, Run};
use crate::support::topology::to_toml;

/// `vezasock ARGS --config <file>`, with no path variable from the caller's environment.
fn vezasock(fresh: &Fresh, args: &[&str]) -> Run {
    vezasock_config(&fresh.file, "it-install", args)
}

/// Polls until `host path` answers 200 with `want`, for at most 15 s.
fn wait_answer(http: SocketAddr, host: &str, path: &str, want: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got = get(http, host, path, Duration::from_secs(5));
        if got
            .as_ref()
            .is_ok_and(|a| a.status == 200 && a.body == want)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {host}{path} gave {got:?}, want {want:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Names of the files under `dir`, recursively (relative), sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.filter_map(|e| e.ok()) {
            let path = e.path();
            if path.is_dir() {
                stack.push(path.clone());
            }
            let rel = path.strip_prefix(dir).unwrap_or(&path);
            out.push(rel.display().to_string());
        }
    }
    out.sort();
    out
}

per_version!(
    apply_installs_a_new_edge_and_prints_how_to_start_it,
    |v: &Haproxy| {
        let label = v.label;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let fresh = fresh(v, dir.path(), None);
        let paths = fresh.topology.paths.clone();

        let run = vezasock(&fresh, &["apply", "--json"]);
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        let json: serde_json::Value =
            serde_json::from_str(&run.out).unwrap_or_else(|e| panic!("{label}: {e}: {run:?}"));
        assert_eq!(json["installed"], true, "{label}: {json}");

        // The files are the render with the recorded colors (none: blue), in place.
        let want = render(&fresh.topology, &BTreeMap::new()).unwrap_or_else(|e| panic!("{e}"));
        let read = |p: &Path| {
            std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{label}: {}: {e}", p.display()))
        };
        assert_eq!(read(&paths.config), want.config, "{label}");
        assert_eq!(read(&paths.hosts_map()), want.hosts_map, "{label}");
        assert_eq!(
            read(&paths.active_color_map()),
            want.active_color_map,
            "{label}"
        );
        assert!(summary_path(&paths.config).is_file(), "{label}");
        assert_eq!(json["desired_fingerprint"], want.fingerprint, "{label}");
        assert!(paths.state_dir.is_dir(), "{label}: state dir");
        let journal = read(&paths.state_dir.join("journal.jsonl"));
        let last = journal.lines().last().unwrap_or("");
        assert!(
            last.contains("\"action\":\"apply\"") && last.contains("\"phase\":\"done\""),
            "{label}: {journal}"
        );
        // Not started.
        assert!(
            !paths.admin_socket.exists() && !paths.master_socket.exists(),
            "{label}: HAProxy was started"
        );
        assert!(
            get(
                fresh.http,
                "staging.veza.fr",
                "/",
                Duration::from_millis(500)
            )
            .is_err(),
            "{label}: something answers on the edge port"
        );

        let command: Vec<String> = json["start_command"]
            .as_array()
            .unwrap_or_else(|| panic!("{label}: {json}"))
            .iter()
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect();
        assert_eq!(
            command[1..],
            [
                "-W".to_string(),
                "-S".to_string(),
                format!("{},level,admin", paths.master_socket.display()),
                "-f".to_string(),
                paths.config.display().to_string(),
                "-p".to_string(),
                paths.pid_file.display().to_string(),
            ],
            "{label}"
        );
        assert_eq!(json["start"], command.join(" "), "{label}");

        // Fails with HAProxy's log when no admin socket answers within 10 s.
        let mut haproxy = fresh.start(&command);
        wait_answer(
            fresh.http,
            "staging.veza.fr",
            "/",
            "staging web blue",
            label,
        );
        wait_answer(fresh.http, "veza.fr", "/api/x", "prod api blue", label);

        let status = vezasock(&fresh, &["status"]);
        assert_eq!(status.code, Some(0), "{label}: {status:?}");

        // Now HAProxy runs: the usual apply, and nothing to do.
        let again = vezasock(&fresh, &["apply", "--json"]);
        assert_eq!(again.code, Some(0), "{label}: {again:?}");
        let again: serde_json::Value =
            serde_json::from_str(&again.out).unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(again["plan"]["plan"], "nothing", "{label}: {again}");
        assert!(
            again.get("installed").is_none()
                && again["files_written"].as_array().is_some_and(Vec::is_empty)
                && again["runtime_changes"]
                    .as_array()
                    .is_some_and(Vec::is_empty)
                && again["reload"].is_null(),
            "{label}: {again}"
        );
        assert_eq!(read(&paths.config), want.config, "{label}");

        // HAProxy down with a live config: no install over it, exit 3, and how to start it.
        haproxy.kill();
        // The worker exits a moment after the master: wait until its socket refuses, or a
        // connection it still accepts is reset instead.
        let deadline = Instant::now() + Duration::from_secs(5);
        while UnixStream::connect(&paths.admin_socket).is_ok() {
            assert!(
                Instant::now() < deadline,
                "{label}: the admin socket still accepts 5 s after the kill"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let down = vezasock(&fresh, &["apply"]);
        assert_eq!(
            down.code,
            Some(Exit::Unreachable as i32),
            "{label}: {down:?}"
        );
        assert!(
            down.err.contains("HAProxy is not running")
                && down
                    .err
                    .contains(&json["start"].as_str().unwrap_or("?").to_string()),
            "{label}: {down:?}"
        );
        assert_eq!(read(&paths.config), want.config, "{label}");
        eprintln!("{label}: installed, started with `{}`", command.join(" "));
    }
);

per_version!(
    a_candidate_haproxy_refuses_installs_nothing,
    |v: &Haproxy| {
        let label = v.label;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut fresh = fresh(v, dir.path(), None);
        // A valid topology HAProxy refuses: a certs dir holding a broken link (a missing
        // certs dir no longer fails: apply writes a placeholder, removed again here).
        let certs = dir.path().join("certs");
        std::fs::create_dir_all(&certs).unwrap_or_else(|e| panic!("{e}"));
        std::os::unix::fs::symlink("/nonexistent/cert.pem", certs.join("veza.pem"))
            .unwrap_or_else(|e| panic!("{e}"));
        fresh.topology.tls = Some(Tls {
            certs_dir: dir.path().join("certs"),
            redirect: false,
        });
        fresh.topology.listen.https = format!("127.0.0.1:{}", crate::support::ports::free_port());
        std::fs::write(&fresh.file, to_toml(&fresh.topology)).unwrap_or_else(|e| panic!("{e}"));
        let loaded = Topology::load(&fresh.file).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(loaded, fresh.topology, "{label}");
        let before = tree(dir.path());

        let run = vezasock(&fresh, &["apply"]);
        assert_eq!(run.code, Some(Exit::Refused as i32), "{label}: {run:?}");
        assert!(
            run.err.contains("HAProxy refused the candidate")
                && run.err.contains("nothing was installed")
                && run.err.contains("SSL certificate")
                && run.err.contains("at rendered line"),
            "{label}: {run:?}"
        );
        let paths = &fresh.topology.paths;
        assert!(!paths.config.exists(), "{label}: config written");
        assert!(!paths.maps_dir.exists(), "{label}: maps dir left behind");
        // Only vezasock's own state dir (lock, journal) is new: no edge file, no leftover.
        let after: Vec<String> = tree(dir.path())
            .into_iter()
            .filter(|f| !before.contains(f))
            .collect();
        assert!(
            after.iter().all(|f| f.starts_with("state")),
            "{label}: {after:?}"
        );
        let journal = std::fs::read_to_string(paths.state_dir.join("journal.jsonl"))
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert!(
            journal
                .lines()
                .last()
                .is_some_and(|l| l.contains("\"phase\":\"failed\"")),
            "{label}: {journal}"
        );
        eprintln!(
            "{label}: refused candidate, nothing installed: {}",
            run.err.lines().find(|l| l.contains("ALERT")).unwrap_or("")
        );
    }
);
