//! The Ansible collection `vezasock.edge` (issue 24, ansible/ansible_collections/vezasock/edge):
//! `ansible-test sanity` on the collection, and real playbooks (the pinned ansible-core that
//! scripts/install-ansible.sh puts in a private virtualenv) against the fleet lab, one edge of
//! which the coordinator reaches over the project's sshd. Results are read from a json
//! stdout callback (integration/fixtures/ansible_callback). Ansible is slow to start (about 1.5 s per playbook run here), so each case runs few.

mod modules;
mod role;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use vezasock::topology::Color;

use crate::fleet::{EdgeSnapshot, Fleet, Reach, ENV};
use crate::package::tool_or_skip;
use crate::support::haproxy::{per_version, Haproxy};
use crate::support::run::Vezasock;

/// The folder holding `ansible_collections/vezasock/edge`.
fn collections_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ansible")
}

/// The virtualenv's bin dir (`VEZASOCK_ANSIBLE`, else where scripts/install-ansible.sh puts it),
/// or `None` after a SKIP line.
fn ansible_bin() -> Option<PathBuf> {
    let dir = std::env::var_os("VEZASOCK_ANSIBLE")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".cache/vezasock/ansible/venv/bin"))
        })?;
    tool_or_skip(&dir.join("ansible-playbook"), "ansible").then_some(dir)
}

/// A playbook run's outcome: the exit code and the json callback's document.
struct Played {
    code: Option<i32>,
    doc: Value,
    raw: String,
}

impl Played {
    /// The result of the task named `task` on `host` (the last such task).
    fn result(&self, task: &str, host: &str) -> Value {
        let mut found = None;
        for play in self.doc["plays"].as_array().into_iter().flatten() {
            for t in play["tasks"].as_array().into_iter().flatten() {
                if t["task"]["name"] == task && !t["hosts"][host].is_null() {
                    found = Some(t["hosts"][host].clone());
                }
            }
        }
        found.unwrap_or_else(|| panic!("no task {task:?} on {host}: {}", self.raw))
    }

    /// The results of every task on `host` whose name ends with `task` (a role's tasks are
    /// named `role : task`), in the order they ran.
    fn results(&self, task: &str, host: &str) -> Vec<Value> {
        let mut found = Vec::new();
        for play in self.doc["plays"].as_array().into_iter().flatten() {
            for t in play["tasks"].as_array().into_iter().flatten() {
                let name = t["task"]["name"].as_str().unwrap_or_default();
                if name.ends_with(task) && !t["hosts"][host].is_null() {
                    found.push(t["hosts"][host].clone());
                }
            }
        }
        found
    }
}

/// The inventory of the lab: group `edges`, every host run locally with the virtualenv's
/// Python; the ssh edge's fleet-file vars say how the coordinator reaches it.
fn inventory(fleet: &Fleet, python: &Path) -> Value {
    let mut hosts = serde_json::Map::new();
    for m in &fleet.members {
        let mut vars = json!({
            "ansible_connection": "local",
            "ansible_python_interpreter": python,
            "vezasock_edge_config": m.config,
        });
        if m.reach == Reach::Ssh {
            let sshd = fleet.sshd.as_ref().unwrap_or_else(|| panic!("no sshd"));
            vars["vezasock_edge_ssh"] = json!(sshd.destination);
            vars["vezasock_edge_ssh_options"] = json!(sshd.options());
            vars["vezasock_edge_binary"] = json!(env!("CARGO_BIN_EXE_vezasock"));
        }
        hosts.insert(m.name.clone(), vars);
    }
    json!({"all": {"children": {"edges": {"hosts": hosts}}}})
}

/// `ansible-playbook -i <lab inventory> PLAYBOOK ARGS` with the collection on its path and
/// the json callback, bounded at 180 s; `extra_vars` as one JSON `-e`.
fn play(bin: &Path, fleet: &Fleet, playbook: &str, args: &[&str], extra_vars: Value) -> Played {
    let python = bin.join("python");
    let mut vars = json!({
        "vezasock_become": false,
        "vezasock_fleet_file": fleet.dir.path().join("fleet-from-inventory.toml"),
        "vezasock_fleet_state_dir": fleet.state_dir,
    });
    for (k, v) in extra_vars.as_object().into_iter().flatten() {
        vars[k] = v.clone();
    }
    let run = Playbook {
        dir: fleet.dir.path(),
        label: fleet.label,
        inventory: inventory(fleet, &python),
        wrap: Vec::new(),
    };
    run.play(bin, playbook, args, vars)
}

/// Where and against what inventory a playbook runs: `dir` holds the inventory, the
/// ansible.cfg, ANSIBLE_HOME and the run's output.
struct Playbook<'a> {
    dir: &'a Path,
    label: &'a str,
    inventory: Value,
    /// A command ansible-playbook runs under (its argv, the playbook's after it); empty: none.
    wrap: Vec<String>,
}

impl Playbook<'_> {
    /// `ansible-playbook -i <inventory> PLAYBOOK ARGS` with the collection on its path and the
    /// json callback, bounded at 180 s; `vars` (plus `vezasock_binary`, this build) as one `-e`.
    fn play(&self, bin: &Path, playbook: &str, args: &[&str], vars: Value) -> Played {
        let dir = self.dir;
        let inv = dir.join("inventory.json");
        std::fs::write(&inv, self.inventory.to_string()).unwrap_or_else(|e| panic!("{e}"));
        let mut all = json!({"vezasock_binary": env!("CARGO_BIN_EXE_vezasock")});
        for (k, v) in vars.as_object().into_iter().flatten() {
            all[k] = v.clone();
        }
        let ansible = bin.join("ansible-playbook").display().to_string();
        let mut argv: Vec<String> = self.wrap.iter().skip(1).cloned().collect();
        if !self.wrap.is_empty() {
            argv.push(ansible.clone());
        }
        let program = self.wrap.first().unwrap_or(&ansible);
        argv.extend(["-i".into(), inv.display().to_string(), playbook.into()]);
        argv.extend(args.iter().map(|a| a.to_string()));
        argv.extend(["-e".to_string(), all.to_string()]);
        let env = ansible_env(dir);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let started = Instant::now();
        let run = Vezasock::program(Path::new(program), &argv)
            .who("it-fleet")
            .envs(&env)
            .current_dir(dir)
            .out_dir(dir)
            .spawn()
            .finish(Duration::from_secs(180));
        eprintln!(
            "{}: ansible-playbook {playbook} {args:?}: {:?}",
            self.label,
            started.elapsed()
        );
        let doc = serde_json::from_str(&run.out).unwrap_or_else(|e| {
            panic!(
                "{}: not the json callback's output ({e}): {run:?}",
                self.label
            )
        });
        Played {
            code: run.code,
            doc,
            raw: run.out,
        }
    }
}

/// The environment of an ansible-playbook run in `dir`: only the settings below (an empty
/// ansible.cfg written there, no ansible.cfg of the machine or the user), the collection from
/// this checkout, the json callback.
fn ansible_env(dir: &Path) -> Vec<(&'static str, String)> {
    let cfg = dir.join("ansible.cfg");
    std::fs::write(&cfg, "[defaults]\n").unwrap_or_else(|e| panic!("{e}"));
    let callbacks =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("integration/fixtures/ansible_callback");
    vec![
        ("ANSIBLE_CONFIG", cfg.display().to_string()),
        (
            "ANSIBLE_HOME",
            dir.join("ansible-home").display().to_string(),
        ),
        (
            "ANSIBLE_COLLECTIONS_PATH",
            collections_path().display().to_string(),
        ),
        ("ANSIBLE_COLLECTIONS_SCAN_SYS_PATH", "false".into()),
        ("ANSIBLE_CALLBACK_PLUGINS", callbacks.display().to_string()),
        ("ANSIBLE_STDOUT_CALLBACK", "results_json".into()),
        ("ANSIBLE_NOCOLOR", "1".into()),
        ("PYTHONWARNINGS", "ignore".into()),
    ]
}

/// The collection's deploy playbook, flipping ENV to `color` on every edge.
fn deploy(bin: &Path, fleet: &Fleet, color: Color, args: &[&str]) -> Played {
    // Every server is up in the lab; a refused target must not wait the default 60 s.
    let vars = json!({"env": ENV, "color": color.as_str(), "sha": format!("sha-{}", color.as_str()),
                      "vezasock_coordinator": fleet.members[0].name, "wait_healthy": "2s"});
    play(bin, fleet, "vezasock.edge.deploy_switch", args, vars)
}

/// The fleet_switch task's result in the deploy playbook (it runs once, on edge-a).
fn switch_result(played: &Played) -> Value {
    played.result("Flip, one transaction over every edge", "edge-a")
}

/// Every edge's files, runtime colors and journal, to compare around a change that must not be.
fn untouched(fleet: &Fleet) -> (Vec<EdgeSnapshot>, Vec<String>) {
    let journals = fleet
        .members
        .iter()
        .map(|m| {
            let path = m.edge.topology.paths.state_dir.join("journal.jsonl");
            std::fs::read_to_string(path).unwrap_or_default()
        })
        .collect();
    (fleet.snapshot(), journals)
}

fn lab(v: &Haproxy) -> Option<(PathBuf, Fleet)> {
    let bin = ansible_bin()?;
    let fleet = Fleet::start(v, &[Reach::Local, Reach::Local, Reach::Ssh])?;
    Some((bin, fleet))
}

per_version!(
    a_playbook_switches_three_edges_under_load_in_one_module_call_then_reports_unchanged,
    |v: &Haproxy| {
        let Some((bin, fleet)) = lab(v) else { return };
        let workers = fleet.worker_pids();
        let loads = fleet.load();
        for load in &loads {
            assert!(
                load.wait_for_requests(30, Duration::from_secs(10)),
                "{}: no load",
                v.label
            );
        }
        let played = deploy(&bin, &fleet, Color::Green, &[]);
        assert_eq!(played.code, Some(0), "{}: {}", v.label, played.raw);
        let r = switch_result(&played);
        assert_eq!(r["changed"], true, "{}: {r}", v.label);
        let edges = r["edges"].as_array().cloned().unwrap_or_default();
        assert_eq!(edges.len(), 3, "{}: every edge's report: {r}", v.label);
        assert!(
            edges.iter().all(|e| e["result"] == "switched"),
            "{}: {r}",
            v.label
        );
        assert!(
            r["commit_skew_ms"].as_f64().is_some(),
            "{}: the commit skew: {r}",
            v.label
        );
        fleet.assert_all_on(ENV, Color::Green, "after the playbook");

        let again = deploy(&bin, &fleet, Color::Green, &[]);
        assert_eq!(again.code, Some(0), "{}: {}", v.label, again.raw);
        let r = switch_result(&again);
        assert_eq!(r["changed"], false, "{}: run again: {r}", v.label);
        for load in &loads {
            assert!(
                load.wait_for_requests(30, Duration::from_secs(10)),
                "{}: stalled",
                v.label
            );
        }
        fleet.stop_loads(loads, v.label);
        assert_eq!(fleet.worker_pids(), workers, "{}: a reload", v.label);
    }
);

per_version!(
    check_and_diff_mode_show_the_color_change_and_change_nothing,
    |v: &Haproxy| {
        let Some((bin, fleet)) = lab(v) else { return };
        let before = untouched(&fleet);
        let played = deploy(&bin, &fleet, Color::Green, &["--check", "--diff"]);
        assert_eq!(played.code, Some(0), "{}: {}", v.label, played.raw);
        let r = switch_result(&played);
        assert_eq!(r["changed"], true, "{}: would change: {r}", v.label);
        let diff = &r["diff"];
        for name in ["edge-a", "edge-b", "edge-c"] {
            let (b, a) = (diff["before"].to_string(), diff["after"].to_string());
            assert!(b.contains(&format!("{name}: blue")), "{}: {diff}", v.label);
            assert!(a.contains(&format!("{name}: green")), "{}: {diff}", v.label);
        }
        assert!(
            r["edges"]
                .as_array()
                .into_iter()
                .flatten()
                .all(|e| e["result"] == "would switch"),
            "{}: {r}",
            v.label
        );
        assert_eq!(
            untouched(&fleet),
            before,
            "{}: check mode changed something",
            v.label
        );
    }
);

per_version!(
    a_refused_switch_fails_the_task_with_the_tools_message_and_changes_no_edge,
    |v: &Haproxy| {
        let Some((bin, mut fleet)) = lab(v) else {
            return;
        };
        let edge = &mut fleet.members[1].edge;
        assert!(edge.set_backend_running("be_staging_api_green", "green_1", false));
        crate::switch::wait_running(edge, "be_staging_api_green", "green_1", false, v.label);
        let before = fleet.snapshot();
        let played = deploy(&bin, &fleet, Color::Green, &[]);
        assert_ne!(played.code, Some(0), "{}: {}", v.label, played.raw);
        let r = switch_result(&played);
        assert_eq!(r["failed"], true, "{}: {r}", v.label);
        assert_eq!(r["rc"], 1, "{}: {r}", v.label);
        let msg = r["msg"].as_str().unwrap_or_default();
        assert!(
            msg.starts_with("vezasock exit 1 (refused): ") && msg.contains("edge-b"),
            "{}: the tool's message naming the edge: {msg}",
            v.label
        );
        // Runtime, map files, state files and history (the journal records the refusal).
        assert_eq!(
            fleet.snapshot(),
            before,
            "{}: a refused switch changed something",
            v.label
        );
    }
);

// A switch the tool could not record (exit 5: the state file is immutable, so the record
// phase fails after the runtime flip) fails the task with what is live and what is recorded.
per_version!(
    an_unfinished_switch_fails_the_task_with_live_and_recorded,
    |v: &Haproxy| {
        let Some(bin) = ansible_bin() else {
            return;
        };
        let Some(fleet) = Fleet::start(v, &[Reach::Local]) else {
            return;
        };
        let state = fleet.members[0]
            .edge
            .topology
            .paths
            .state_dir
            .join(format!("active-color-{ENV}"));
        std::fs::write(&state, "blue\n").unwrap_or_else(|e| panic!("{e}"));
        let _frozen = crate::moved_server::Immutable::set(&state);
        let playbook = fleet.dir.path().join("unfinished.yml");
        std::fs::write(
            &playbook,
            format!(
                "- hosts: edge-a\n  gather_facts: false\n  tasks:\n    - name: Flip\n      \
                 vezasock.edge.switch:\n        env: {ENV}\n        color: green\n        \
                 config: \"{{{{ vezasock_edge_config }}}}\"\n        \
                 binary: \"{{{{ vezasock_binary }}}}\"\n"
            ),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let played = play(
            &bin,
            &fleet,
            &playbook.display().to_string(),
            &[],
            json!({}),
        );
        assert_ne!(played.code, Some(0), "{}: {}", v.label, played.raw);
        let r = played.result("Flip", "edge-a");
        assert_eq!(r["failed"], true, "{}: {r}", v.label);
        assert_eq!(r["rc"], 5, "{}: {r}", v.label);
        assert_eq!(r["live"], "green", "{}: {r}", v.label);
        assert_eq!(r["recorded"], "blue", "{}: {r}", v.label);
        let msg = r["msg"].as_str().unwrap_or_default();
        assert!(
            msg.starts_with("vezasock exit 5 (applied but not verified or not recorded): "),
            "{}: {msg}",
            v.label
        );
    }
);

/// A playbook of one `vezasock.edge.server` task on edge-a, timed.
fn server_task(bin: &Path, fleet: &Fleet, args: Value) -> (Value, Duration) {
    let dir = fleet.dir.path();
    let mut task_args = args;
    task_args["config"] = json!(fleet.members[0].config);
    task_args["binary"] = json!(env!("CARGO_BIN_EXE_vezasock"));
    let book = json!([{"hosts": "edge-a", "gather_facts": false, "tasks": [
        {"name": "server", "vezasock.edge.server": task_args, "ignore_errors": true}
    ]}]);
    let path = dir.join("server.yml");
    std::fs::write(&path, book.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let played = play(bin, fleet, &path.display().to_string(), &[], json!({}));
    (played.result("server", "edge-a"), started.elapsed())
}

per_version!(
    server_drain_waits_for_sessions_fails_at_its_deadline_naming_them_and_never_hangs,
    |v: &Haproxy| {
        let Some(bin) = ansible_bin() else { return };
        let fleet = Fleet::local(v, 1);
        let edge = &fleet.members[0].edge;
        // A 10 s stream on staging's live color (blue), then staging flipped to green: blue is
        // the old color with one session.
        let stream = crate::servers::open_stream(edge.http, "staging.veza.fr", 100);
        crate::servers::wait_busy(edge, "be_staging_stream_blue", "blue_1", v.label);
        let run = fleet.edge_run(0, &["switch", ENV, "green"]);
        assert_eq!(run.code, Some(0), "{}: {run:?}", v.label);
        let drain = |wait: &str| json!({"state": "drain", "env": ENV, "color": "blue", "wait": wait, "then": "maint"});

        let (r, _) = server_task(&bin, &fleet, drain("500ms"));
        assert_eq!(r["failed"], true, "{}: busy at the deadline: {r}", v.label);
        let busy = r["busy"].to_string();
        assert!(
            busy.contains("blue_1"),
            "{}: names the busy server: {r}",
            v.label
        );

        // Already in drain: waits for the stream's end, then maintenance.
        let (r, took) = server_task(&bin, &fleet, drain("30s"));
        assert_ne!(r["failed"], true, "{}: {r}", v.label);
        assert!(took < Duration::from_secs(20), "{}: took {took:?}", v.label);
        let after: Vec<_> = r["servers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| s["after"].clone())
            .collect();
        assert!(
            after
                .iter()
                .any(|a| a.to_string().to_lowercase().contains("maint")),
            "{}: {r}",
            v.label
        );
        let _ = stream.join();

        let ready = json!({"state": "ready", "env": ENV, "color": "blue"});
        let (r, _) = server_task(&bin, &fleet, ready.clone());
        assert_eq!(r["changed"], true, "{}: {r}", v.label);
        // Already up: at once, unchanged.
        let (r, took) = server_task(&bin, &fleet, ready);
        assert_eq!(r["changed"], false, "{}: {r}", v.label);
        assert!(took < Duration::from_secs(20), "{}: took {took:?}", v.label);
    }
);

#[test]
fn the_collection_passes_ansible_test_sanity() {
    let Some(bin) = ansible_bin() else { return };
    let root = collections_path().join("ansible_collections/vezasock/edge");
    let version = Command::new(bin.join("python"))
        .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
        .output()
        .unwrap_or_else(|e| panic!("python: {e}"));
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let run = Vezasock::program(
        &bin.join("ansible-test"),
        &["sanity", "--python", &version, "--color", "no"],
    )
    .env("PATH", &path)
    .env("PYTHONWARNINGS", "ignore")
    .current_dir(&root)
    .out_dir(dir.path())
    .spawn()
    .finish(Duration::from_secs(600));
    assert_eq!(run.code, Some(0), "ansible-test sanity: {run:?}");
}
