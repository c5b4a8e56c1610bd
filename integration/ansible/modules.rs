//! The collection's `txn`, `status`, `apply` and `cert` modules in real playbooks
//! (integration/fixtures/ansible_playbooks), one playbook run per case: each module's main
//! path and its `changed`/`failed` semantics, then the edges read back here.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use vezasock::topology::Color;

use super::{ansible_bin, play, Playbook, Played};
use crate::fleet::{recorded_color, transaction_file, Fleet, ENV};
use crate::support::haproxy::{per_version, Haproxy};
use crate::support::topology::to_toml;

/// A playbook of integration/fixtures/ansible_playbooks.
fn playbook(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("integration/fixtures/ansible_playbooks")
        .join(name)
        .display()
        .to_string()
}

/// The lab of `n` local edges and the ansible virtualenv, or `None` after a SKIP line.
fn local_lab(v: &Haproxy, n: usize) -> Option<(PathBuf, Fleet)> {
    let bin = ansible_bin()?;
    Some((bin, Fleet::local(v, n)))
}

per_version!(
    txn_prepares_on_every_edge_then_commits_and_an_abort_after_is_unchanged,
    |v: &Haproxy| {
        let Some((bin, fleet)) = local_lab(v, 2) else {
            return;
        };
        let workers = fleet.worker_pids();
        let played = play(
            &bin,
            &fleet,
            &playbook("txn.yml"),
            &[],
            json!({"txn_id": "deploy-42"}),
        );
        assert_eq!(played.code, Some(0), "{}: {}", v.label, played.raw);
        for m in &fleet.members {
            let host = m.name.as_str();
            let r = played.result("prepare", host);
            assert_eq!(
                (&r["changed"], &r["result"]),
                (&json!(true), &json!("prepared")),
                "{}: {r}",
                v.label
            );
            // Prepared: nothing live moved, and status shows the open transaction.
            let s = played.result("status while prepared", host);
            assert_eq!(s["live"][ENV], "blue", "{} {host}: {s}", v.label);
            assert_eq!(
                s["report"]["transaction"]["id"], "deploy-42",
                "{} {host}: {s}",
                v.label
            );
            assert_eq!(s["changed"], false, "{} {host}: {s}", v.label);
            let r = played.result("commit", host);
            assert_eq!(
                (&r["changed"], &r["result"]),
                (&json!(true), &json!("committed")),
                "{}: {r}",
                v.label
            );
            // Nothing left open to abort: unchanged, so a rescue may abort on every edge.
            let r = played.result("abort after the commit", host);
            assert_eq!(
                (&r["changed"], &r["result"]),
                (&json!(false), &json!("nothing")),
                "{}: {r}",
                v.label
            );
            assert_eq!(
                recorded_color(&m.edge, ENV),
                Color::Green,
                "{} {host}",
                v.label
            );
            assert!(
                !transaction_file(&m.edge).exists(),
                "{} {host}: still open",
                v.label
            );
        }
        fleet.assert_all_on(ENV, Color::Green, "after the commits");
        assert_eq!(fleet.worker_pids(), workers, "{}: a reload", v.label);
    }
);

per_version!(
    status_returns_drift_as_data_never_changed_and_fails_on_it_when_asked,
    |v: &Haproxy| {
        let Some((bin, fleet)) = local_lab(v, 2) else {
            return;
        };
        // Both edges switched to green (recorded), then drift behind vezasock's back on edge-b:
        // its runtime serves blue again.
        for i in 0..2 {
            let run = fleet.edge_run(i, &["switch", ENV, "green"]);
            assert_eq!(run.code, Some(0), "{}: {run:?}", v.label);
        }
        crate::switch::admin_set_map(&fleet.members[1].edge, ENV, Color::Blue);
        let before = fleet.snapshot();
        let played = play(&bin, &fleet, &playbook("status.yml"), &[], json!({}));
        // edge-b's failed task is ignored (ignore_errors), so the run succeeds.
        assert_eq!(played.code, Some(0), "{}: {}", v.label, played.raw);

        let a = played.result("status", "edge-a");
        assert_eq!(
            (&a["changed"], &a["drift"], &a["rc"]),
            (&json!(false), &json!(false), &json!(0)),
            "{}: {a}",
            v.label
        );
        assert_eq!(
            (&a["live"][ENV], &a["recorded"][ENV]),
            (&json!("green"), &json!("green")),
            "{}: {a}",
            v.label
        );
        let a = played.result("status failing on drift", "edge-a");
        assert_ne!(a["failed"], true, "{}: no drift, no failure: {a}", v.label);

        let b = played.result("status", "edge-b");
        assert_ne!(b["failed"], true, "{}: drift is data: {b}", v.label);
        assert_eq!(
            (&b["changed"], &b["drift"], &b["rc"]),
            (&json!(false), &json!(true), &json!(6)),
            "{}: {b}",
            v.label
        );
        assert_eq!(
            (&b["live"][ENV], &b["recorded"][ENV]),
            (&json!("blue"), &json!("green")),
            "{}: {b}",
            v.label
        );
        assert!(
            !b["problems"].as_array().is_none_or(Vec::is_empty),
            "{}: {b}",
            v.label
        );
        let b = played.result("status failing on drift", "edge-b");
        assert_eq!(
            (&b["failed"], &b["rc"]),
            (&json!(true), &json!(6)),
            "{}: {b}",
            v.label
        );
        let msg = b["msg"].as_str().unwrap_or_default();
        assert!(
            msg.starts_with("vezasock exit 6 (drift): "),
            "{}: {msg}",
            v.label
        );
        assert_eq!(
            fleet.snapshot(),
            before,
            "{}: status changed something",
            v.label
        );
    }
);

per_version!(
    apply_plans_in_check_mode_then_applies_at_runtime_then_reports_unchanged,
    |v: &Haproxy| {
        let Some((bin, fleet)) = local_lab(v, 1) else {
            return;
        };
        let m = &fleet.members[0];
        let workers = fleet.worker_pids();
        // A new host of staging: a map entry, the runtime path.
        let mut topo = m.edge.topology.clone();
        let staging = topo.envs.iter_mut().find(|e| e.name == ENV);
        staging
            .unwrap_or_else(|| panic!("no {ENV}"))
            .hosts
            .push("beta.veza.fr".to_string());
        std::fs::write(&m.config, to_toml(&topo)).unwrap_or_else(|e| panic!("{e}"));
        let hosts_map =
            || std::fs::read_to_string(m.edge.topology.paths.hosts_map()).unwrap_or_default();
        assert!(!hosts_map().contains("beta.veza.fr"), "{}", v.label);

        let played = play(&bin, &fleet, &playbook("apply.yml"), &[], json!({}));
        assert_eq!(played.code, Some(0), "{}: {}", v.label, played.raw);
        // Check mode: the plan as the diff; the apply after it still has the change to make.
        let r = played.result("plan", "edge-a");
        assert_eq!(
            (&r["changed"], &r["plan"]["plan"]),
            (&json!(true), &json!("runtime")),
            "{}: {r}",
            v.label
        );
        assert_eq!(r["report"]["dry_run"], true, "{}: {r}", v.label);
        let diff = r["diff"]["after"].as_str().unwrap_or_default();
        assert!(
            diff.starts_with("plan: runtime\n") && diff.contains("add-host"),
            "{}: {diff}",
            v.label
        );
        let r = played.result("apply", "edge-a");
        assert_eq!(
            (&r["changed"], &r["plan"]["plan"]),
            (&json!(true), &json!("runtime")),
            "{}: {r}",
            v.label
        );
        let r = played.result("apply again", "edge-a");
        assert_eq!(
            (&r["changed"], &r["plan"]["plan"]),
            (&json!(false), &json!("nothing")),
            "{}: {r}",
            v.label
        );
        assert!(hosts_map().contains("beta.veza.fr"), "{}", v.label);
        assert_eq!(fleet.worker_pids(), workers, "{}: a reload", v.label);
    }
);

per_version!(
    cert_lists_updates_without_a_reload_and_an_update_again_is_unchanged,
    |v: &Haproxy| {
        let Some(bin) = ansible_bin() else { return };
        let label = v.label;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let fresh = crate::cert::fresh(v, dir.path());
        let (_started, _) = crate::cert::install_and_start(&fresh, label);
        let pid = crate::cert::worker_pid_of(&fresh.admin);
        let file = dir.path().join("veza.pem");
        let names = [
            "staging.veza.fr",
            "veza.fr",
            "www.veza.fr",
            "talas.fr",
            "www.talas.fr",
        ];
        std::fs::write(&file, crate::cert::make_cert(&names, 0xC1, -1, 60, false))
            .unwrap_or_else(|e| panic!("{e}"));
        let python = bin.join("python");
        let inventory = json!({"all": {"hosts": {"edge": {
            "ansible_connection": "local",
            "ansible_python_interpreter": python,
            "vezasock_edge_config": fresh.file,
        }}}});
        let run = Playbook {
            dir: dir.path(),
            label,
            inventory,
            wrap: Vec::new(),
        };
        let played = run.play(&bin, &playbook("cert.yml"), &[], json!({"cert_file": file}));
        assert_eq!(played.code, Some(0), "{label}: {}", played.raw);
        let r = cert_task(&played, "list");
        assert_eq!(
            (&r["changed"], &r["rc"]),
            (&json!(false), &json!(0)),
            "{label}: {r}"
        );
        let placeholder = r["certs"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["placeholder"] == true));
        assert!(placeholder, "{label}: the placeholder listed: {r}");
        let r = cert_task(&played, "update");
        assert_eq!(r["changed"], true, "{label}: {r}");
        assert_eq!(
            r["certs"][0]["serial"],
            crate::cert::hex(0xC1),
            "{label}: {r}"
        );
        let r = cert_task(&played, "update again");
        assert_eq!(
            r["changed"], false,
            "{label}: HAProxy already served it: {r}"
        );
        // Under warn_days: exit 1 is data in `expiring`, not a failure.
        let r = cert_task(&played, "list with a warning");
        assert_eq!(
            (&r["changed"], &r["rc"]),
            (&json!(false), &json!(1)),
            "{label}: {r}"
        );
        assert!(
            r["expiring"].to_string().contains("veza.pem"),
            "{label}: {r}"
        );
        assert_eq!(
            crate::cert::served_serial(fresh.https, "veza.fr"),
            crate::cert::hex(0xC1),
            "{label}"
        );
        assert_eq!(
            crate::cert::worker_pid_of(&fresh.admin),
            pid,
            "{label}: reloaded"
        );
    }
);

/// The result of the cert playbook's task `name`, which must not have failed.
fn cert_task(played: &Played, name: &str) -> Value {
    let r = played.result(name, "edge");
    assert_ne!(r["failed"], true, "{name}: {r}");
    r
}
