//! `cert update --fleet` and `cert list --fleet` (issue 22 item 4) on the fleet lab with TLS
//! ([`Fleet::start_tls`]): three edges, the third reached over the project's sshd. A
//! certificate is staged on every edge before it is committed on any: the good path serves the
//! new serial on every edge without a reload (same worker PIDs, a TLS connection opened
//! before still carries a request); one edge's HAProxy refusing to stage it leaves every edge
//! serving the old one with no file changed; `cert list --fleet` shows a one-edge update as
//! DRIFT. Serials are read with a real TLS client (`openssl s_client`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::cert::{hex, make_cert, open_tls, request_on, served_serial, ALL, PROD};
use crate::fleet::{wait_paused, Fleet, Reach};
use crate::support::haproxy::{per_version, raw_one_shot, Haproxy};
use crate::support::run::{Run, BOUND};
use crate::support::tmpfs::ReadOnly;

/// The lab's three edges, the third over ssh.
const REACHES: &[Reach] = &[Reach::Local, Reach::Local, Reach::Ssh];

/// `veza.pem` for every host with `serial`, written in the lab's input dir.
fn veza_pem(fleet: &Fleet, serial: u64) -> PathBuf {
    let input = fleet.dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap_or_else(|e| panic!("{e}"));
    let file = input.join("veza.pem");
    std::fs::write(&file, make_cert(ALL, serial, -1, 60, false)).unwrap_or_else(|e| panic!("{e}"));
    file
}

fn path(p: &std::path::Path) -> &str {
    p.to_str().unwrap_or_default()
}

/// The serial each edge serves for `veza.fr` (a new TLS connection each).
fn served(fleet: &Fleet) -> Vec<String> {
    fleet
        .members
        .iter()
        .map(|m| served_serial(m.https(), PROD))
        .collect()
}

/// Every edge's certs dir, file by file.
fn certs_dirs(fleet: &Fleet) -> Vec<BTreeMap<String, Vec<u8>>> {
    fleet.members.iter().map(|m| m.certs_files()).collect()
}

/// `vezasock cert SUB --fleet <lab's file> REST…`.
fn cert(fleet: &Fleet, sub: &str, rest: &[&str]) -> Run {
    let file = fleet.file.display().to_string();
    let mut args = vec!["cert", sub, "--fleet", file.as_str()];
    args.extend(rest);
    fleet.run_raw(&args, &[])
}

/// `cert update --fleet FILE` that must succeed.
fn update_ok(fleet: &Fleet, file: &std::path::Path, label: &str) -> serde_json::Value {
    let run = cert(fleet, "update", &["--json", path(file)]);
    assert_eq!(run.code, Some(0), "{label}: {run:?}");
    serde_json::from_str(run.out.trim()).unwrap_or_else(|e| panic!("{label}: {e}: {run:?}"))
}

per_version!(
    cert_update_on_a_fleet_serves_the_new_serial_on_every_edge_without_a_reload,
    |v: &Haproxy| {
        let Some(fleet) = Fleet::start_tls(v, REACHES) else {
            return;
        };
        let label = v.label;
        let placeholder = served(&fleet);
        // A new file on every edge: added (new ssl cert + add ssl crt-list) everywhere.
        let json = update_ok(&fleet, &veza_pem(&fleet, 0xA1), label);
        let shapes = crate::cli_json::documented_shapes();
        let what = "cert update --fleet --json";
        crate::cli_json::agree(&shapes, "cert update fleet", &json, what, label);
        assert_eq!(served(&fleet), vec![hex(0xA1); 3], "{label}: {json}");
        assert_ne!(placeholder[0], hex(0xA1), "{label}");
        let pids = fleet.worker_pids();
        // A TLS connection to each edge, opened before the renewal.
        let long: Vec<_> = fleet
            .members
            .iter()
            .map(|m| open_tls(m.https(), PROD))
            .collect();

        // The renewal: set ssl cert staged on every edge, then committed on every edge.
        let file = veza_pem(&fleet, 0xA2);
        let json = update_ok(&fleet, &file, label);
        assert_eq!(served(&fleet), vec![hex(0xA2); 3], "{label}: {json}");
        assert_eq!(fleet.worker_pids(), pids, "{label}: an edge reloaded");
        for (m, e) in fleet
            .members
            .iter()
            .zip(json["edges"].as_array().into_iter().flatten())
        {
            assert_eq!(e["edge"], m.name.as_str(), "{label}: {json}");
            assert_eq!(e["result"], "installed", "{label}: {json}");
            assert_eq!(e["certs"][0]["serial"], hex(0xA2), "{label}: {json}");
            assert_eq!(e["certs"][0]["added"], false, "{label}: {json}");
            // Written through on every edge: a restart would serve it too.
            let on_disk = std::fs::read(m.certs().join("veza.pem")).unwrap_or_default();
            assert_eq!(
                on_disk,
                std::fs::read(&file).unwrap_or_default(),
                "{label} {}",
                m.name
            );
        }
        for (m, long) in fleet.members.iter().zip(long) {
            let answer = request_on(long, PROD, label);
            assert!(
                answer.starts_with("HTTP/1.1 "),
                "{label} {}: the connection opened before got {answer:?}",
                m.name
            );
        }
        // Every edge agrees: no DRIFT, and nothing left open anywhere.
        let list = cert(&fleet, "list", &["--warn-days", "5"]);
        assert_eq!(list.code, Some(0), "{label}: {list:?}");
        assert!(!list.out.contains("DRIFT"), "{label}: {list:?}");
        let status = fleet.run(&["status"]);
        assert_eq!(status.code, Some(0), "{label}: {status:?}");
    }
);

/// Opens a certificate transaction on edge `i`'s HAProxy for its default certificate (an
/// operator's `set ssl cert`, not committed): HAProxy holds one at a time. Returns the line
/// that aborts it.
fn hold_transaction(fleet: &Fleet, i: usize, label: &str) -> String {
    let m = &fleet.members[i];
    let slot = m.certs().join("00-default.pem");
    let pem = make_cert(ALL, 0x77, -1, 60, false);
    let held = format!("set ssl cert {} <<\n{pem}\n", slot.display());
    let said = raw_one_shot(&m.edge.topology.paths.admin_socket, &held)
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    assert!(said.contains("Transaction created"), "{label}: {said}");
    format!("abort ssl cert {}\n", slot.display())
}

/// A fleet update refused by edge-c: exit 1 naming it, every edge's line as `want`, the old
/// serial served everywhere, no certs dir changed, no reload, nothing left open.
fn assert_refused_by_edge_c(fleet: &Fleet, run: &Run, want: [&str; 3], old: u64, label: &str) {
    assert_eq!(run.code, Some(1), "{label}: {run:?}");
    assert!(
        run.err.contains("edge edge-c"),
        "{label}: the message names the edge: {run:?}"
    );
    let json: serde_json::Value =
        serde_json::from_str(run.out.trim()).unwrap_or_else(|e| panic!("{label}: {e}: {run:?}"));
    assert_eq!(json["exit"], 1, "{label}: {json}");
    let results: Vec<&str> = json["report"]["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["result"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(results, want, "{label}: {json}");
    assert_eq!(served(fleet), vec![hex(old); 3], "{label}");
    // Each edge journalled the update and closed it, its runtime = its disk.
    let list = cert(fleet, "list", &["--warn-days", "5"]);
    assert_eq!(list.code, Some(0), "{label}: {list:?}");
}

per_version!(
    cert_update_on_a_fleet_refused_by_one_edge_changes_nothing_on_any_edge,
    |v: &Haproxy| {
        let Some(fleet) = Fleet::start_tls(v, REACHES) else {
            return;
        };
        let label = v.label;
        update_ok(&fleet, &veza_pem(&fleet, 0xB1), label);
        let before = certs_dirs(&fleet);
        let pids = fleet.worker_pids();
        let file = veza_pem(&fleet, 0xB2);

        // edge-c's HAProxy holds another certificate transaction before the update: refused
        // when the update begins there; the other edges end theirs.
        let abort = hold_transaction(&fleet, 2, label);
        let run = cert(&fleet, "update", &["--json", path(&file)]);
        assert!(
            run.err.contains("uncommitted certificate transaction"),
            "{label}: {run:?}"
        );
        assert_refused_by_edge_c(&fleet, &run, ["aborted", "aborted", "refused"], 0xB1, label);
        let admin = &fleet.members[2].edge.topology.paths.admin_socket;
        let said = raw_one_shot(admin, &abort).unwrap_or_else(|e| panic!("{label}: {e}"));
        assert!(said.contains("aborted"), "{label}: {said}");

        // Held once every edge has begun: edge-c's HAProxy refuses to stage the file (2.6
        // puts it into the held transaction instead, and says so: refused too); the two
        // edges that staged it abort it.
        let pause = fleet.pause_file();
        let pause_env = pause.display().to_string();
        let extra = [
            ("VEZASOCK_PAUSE_AT", "cert-after-begin"),
            ("VEZASOCK_PAUSE_FILE", pause_env.as_str()),
        ];
        let file_arg = fleet.file.display().to_string();
        let args = [
            "cert",
            "update",
            "--fleet",
            &file_arg,
            "--json",
            path(&file),
        ];
        let mut running = fleet.spawn_raw(&args, &extra);
        wait_paused(&mut running, &pause, label);
        let abort = hold_transaction(&fleet, 2, label);
        std::fs::remove_file(&pause).unwrap_or_else(|e| panic!("{e}"));
        let run = running.finish(BOUND);
        assert!(
            run.err.contains("refused to stage veza.pem"),
            "{label}: {run:?}"
        );
        assert_refused_by_edge_c(&fleet, &run, ["aborted", "aborted", "refused"], 0xB1, label);
        let said = raw_one_shot(admin, &abort).unwrap_or_else(|e| panic!("{label}: {e}"));
        assert!(said.contains("aborted"), "{label}: {said}");
        assert_eq!(certs_dirs(&fleet), before, "{label}: a certs dir changed");
        assert_eq!(fleet.worker_pids(), pids, "{label}: an edge reloaded");

        // With nothing held, the same update lands on every edge.
        update_ok(&fleet, &file, label);
        assert_eq!(served(&fleet), vec![hex(0xB2); 3], "{label}");
    }
);

per_version!(
    cert_update_on_a_fleet_with_one_read_only_certs_dir_changes_nothing_on_any_edge,
    |v: &Haproxy| {
        let Some(fleet) = Fleet::start_tls(v, REACHES) else {
            return;
        };
        let label = v.label;
        update_ok(&fleet, &veza_pem(&fleet, 0xF1), label);
        let before = certs_dirs(&fleet);
        // edge-b's certs dir takes no write (a read-only mount): refused when the update
        // begins, before any edge stages anything.
        let Some(read_only) = ReadOnly::bind(&fleet.members[1].certs()) else {
            eprintln!("SKIP {label}: a read-only bind mount needs root");
            return;
        };
        let file = veza_pem(&fleet, 0xF2);
        let run = cert(&fleet, "update", &["--json", path(&file)]);
        assert_eq!(run.code, Some(1), "{label}: {run:?}");
        assert!(
            run.err.contains("refused by edge edge-b") && run.err.contains("does not take a write"),
            "{label}: {run:?}"
        );
        assert_eq!(served(&fleet), vec![hex(0xF1); 3], "{label}");
        assert_eq!(certs_dirs(&fleet), before, "{label}: a certs dir changed");
        drop(read_only);
        update_ok(&fleet, &file, label);
        assert_eq!(served(&fleet), vec![hex(0xF2); 3], "{label}");
    }
);

per_version!(
    cert_update_on_a_fleet_whose_commit_fails_on_one_edge_exits_5_naming_what_is_live_where,
    |v: &Haproxy| {
        let Some(fleet) = Fleet::start_tls(v, REACHES) else {
            return;
        };
        let label = v.label;
        update_ok(&fleet, &veza_pem(&fleet, 0xD1), label);
        let file = veza_pem(&fleet, 0xD2);
        // Paused once every edge staged the file: edge-c's staged transaction is aborted
        // behind the coordinator's back, so its commit is refused after the others' landed.
        let pause = fleet.pause_file();
        let pause_env = pause.display().to_string();
        let extra = [
            ("VEZASOCK_PAUSE_AT", "cert-after-stage"),
            ("VEZASOCK_PAUSE_FILE", pause_env.as_str()),
        ];
        let file_arg = fleet.file.display().to_string();
        let args = [
            "cert",
            "update",
            "--fleet",
            &file_arg,
            "--json",
            path(&file),
        ];
        let mut running = fleet.spawn_raw(&args, &extra);
        wait_paused(&mut running, &pause, label);
        let c = &fleet.members[2];
        let staged = c.certs().join("veza.pem");
        let abort = format!("abort ssl cert {}\n", staged.display());
        let said = raw_one_shot(&c.edge.topology.paths.admin_socket, &abort)
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert!(said.contains("aborted"), "{label}: {said}");
        std::fs::remove_file(&pause).unwrap_or_else(|e| panic!("{e}"));
        let run = running.finish(BOUND);
        assert_eq!(run.code, Some(5), "{label}: {run:?}");
        assert!(
            run.err
                .contains("NEW LIVE on edge-a, edge-b; the old certificate is kept on edge-c"),
            "{label}: {run:?}"
        );
        // Where it is live it is written too; edge-c serves and keeps the old one.
        assert_eq!(served(&fleet), [hex(0xD2), hex(0xD2), hex(0xD1)], "{label}");
        let pem = std::fs::read(&file).unwrap_or_default();
        for (i, m) in fleet.members.iter().enumerate() {
            let on_disk = std::fs::read(m.certs().join("veza.pem")).unwrap_or_default();
            assert_eq!(on_disk == pem, i < 2, "{label} {}", m.name);
        }
        let list = cert(&fleet, "list", &["--warn-days", "5"]);
        assert_eq!(list.code, Some(6), "{label}: {list:?}");
        assert!(
            list.out.contains("DRIFT across edges on veza.pem"),
            "{label}: {list:?}"
        );
        // The command the message names installs it everywhere.
        update_ok(&fleet, &file, label);
        assert_eq!(served(&fleet), vec![hex(0xD2); 3], "{label}");
    }
);

per_version!(
    a_fleet_cert_coordinator_killed_after_the_stage_changes_nothing_live,
    |v: &Haproxy| {
        let Some(fleet) = Fleet::start_tls(v, REACHES) else {
            return;
        };
        let label = v.label;
        update_ok(&fleet, &veza_pem(&fleet, 0xE1), label);
        let file = veza_pem(&fleet, 0xE2);
        let file_arg = fleet.file.display().to_string();
        let args = ["cert", "update", "--fleet", &file_arg, path(&file)];
        let run = fleet.run_raw(&args, &[("VEZASOCK_CRASH_AT", "cert-after-stage")]);
        assert_eq!(run.code, None, "{label}: not killed: {run:?}");
        assert_eq!(served(&fleet), vec![hex(0xE1); 3], "{label}");
        // The ssh edge's agent saw its input end: it aborted the staged file and closed its
        // operation (the ssh connection ends a moment after the coordinator).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while fleet.edge_run(2, &["status"]).code != Some(0) {
            assert!(
                std::time::Instant::now() < deadline,
                "{label}: edge-c still open"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        // The local edges died with the coordinator: their operation is interrupted until
        // `apply` on each closes it, HAProxy serving its certs dir.
        for i in 0..2 {
            let status = fleet.edge_run(i, &["status"]);
            assert_eq!(status.code, Some(6), "{label} {i}: {status:?}");
            assert!(
                status.out.contains("INTERRUPTED cert"),
                "{label} {i}: {status:?}"
            );
            let apply = fleet.edge_run(i, &["apply"]);
            assert_eq!(apply.code, Some(0), "{label} {i}: {apply:?}");
            let status = fleet.edge_run(i, &["status"]);
            assert_eq!(status.code, Some(0), "{label} {i}: {status:?}");
        }
        assert_eq!(served(&fleet), vec![hex(0xE1); 3], "{label}");
        let list = cert(&fleet, "list", &["--warn-days", "5"]);
        assert_eq!(list.code, Some(0), "{label}: {list:?}");
        // Staged (`*` in `show ssl cert`) on the local edges only.
        for (i, m) in fleet.members.iter().enumerate() {
            let shown = raw_one_shot(&m.edge.topology.paths.admin_socket, "show ssl cert\n")
                .unwrap_or_else(|e| panic!("{label}: {e}"));
            let staged = shown
                .lines()
                .any(|l| l.starts_with('*') && l.ends_with("/veza.pem"));
            assert_eq!(staged, i < 2, "{label} {}: {shown}", m.name);
        }
        // The file still staged in the local edges' HAProxy is replaced by the next update.
        update_ok(&fleet, &file, label);
        assert_eq!(served(&fleet), vec![hex(0xE2); 3], "{label}");
    }
);

per_version!(
    cert_list_on_a_fleet_shows_drift_after_a_one_edge_update,
    |v: &Haproxy| {
        let Some(fleet) = Fleet::start_tls(v, REACHES) else {
            return;
        };
        let label = v.label;
        let file = veza_pem(&fleet, 0xC1);
        let run = fleet.edge_run(1, &["cert", "update", path(&file)]);
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        let list = cert(&fleet, "list", &["--warn-days", "5"]);
        assert_eq!(list.code, Some(6), "{label}: {list:?}");
        let drift = format!(
            "DRIFT across edges on veza.pem: edge-a=none edge-b={} edge-c=none",
            hex(0xC1)
        );
        assert!(list.out.contains(&drift), "{label}: {list:?}");
        let list = cert(&fleet, "list", &["--json", "--warn-days", "5"]);
        assert_eq!(list.code, Some(6), "{label}: {list:?}");
        let json: serde_json::Value = serde_json::from_str(list.out.trim())
            .unwrap_or_else(|e| panic!("{label}: {e}: {list:?}"));
        let shapes = crate::cli_json::documented_shapes();
        let what = "cert list --fleet --json";
        crate::cli_json::agree(&shapes, "cert list fleet", &json, what, label);
        assert_eq!(
            json["drift"].as_array().map(Vec::len),
            Some(2),
            "{label}: {json}"
        );
    }
);
