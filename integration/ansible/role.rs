//! The collection's `vezasock.edge.edge` role for real on this host: ansible-playbook runs in a
//! mount namespace where /usr, /etc and /var are overlays (integration/fixtures/overlay_root.sh),
//! so the role's `ansible.builtin.apt` installs the package built by scripts/build-deb.sh with
//! the real dpkg, and its topology goes to /etc/vezasock, while this machine's root is never
//! written: what the role wrote is read back from the overlays' upper dirs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use serde_json::{json, Value};

use super::{ansible_bin, Playbook, Played};
use crate::fleet::Fleet;

/// The overlay script.
fn overlay_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("integration/fixtures/overlay_root.sh")
}

/// The `unshare` command line that runs a command under the overlays, with `scratch` holding
/// their upper dirs, the .deb files in `preload` installed there first.
fn overlay_wrap(scratch: &Path, preload: &str) -> Vec<String> {
    let mut wrap: Vec<String> = [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--",
        "env",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    wrap.push(format!("PRELOAD_DEBS={preload}"));
    wrap.push("sh".to_string());
    wrap.push(overlay_script().display().to_string());
    wrap.push(scratch.display().to_string());
    wrap
}

/// Whether the overlays can be mounted here (root, overlayfs, `unshare`); when not, a SKIP
/// line, or a failure under `VEZASOCK_REQUIRE_ALL_VERSIONS=1`.
fn overlays_mount(dir: &Path) -> bool {
    let scratch = dir.join("probe");
    let wrap = overlay_wrap(&scratch, "");
    let ok = std::fs::create_dir_all(&scratch).is_ok()
        && Command::new(&wrap[0])
            .args(&wrap[1..])
            .arg("true")
            .status()
            .is_ok_and(|s| s.success());
    if !ok {
        let require_all = std::env::var("VEZASOCK_REQUIRE_ALL_VERSIONS").is_ok_and(|v| v == "1");
        assert!(
            !require_all,
            "overlay_root.sh cannot mount its overlays (root, overlayfs and unshare are needed)"
        );
        eprintln!("SKIP the edge role: overlay_root.sh cannot mount its overlays (needs root, overlayfs, unshare)");
    }
    ok
}

/// Where scripts/install-ansible.sh fetched python3-apt when this machine lacks it.
fn preload_debs() -> String {
    std::env::var("VEZASOCK_ANSIBLE_DEBS").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_default();
        format!("{home}/.cache/vezasock/ansible/debs")
    })
}

fn modified(path: &str) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// `changed`, or `"skipped"`, of each run of the role's task `task`.
fn outcomes(played: &Played, task: &str) -> Vec<Value> {
    played
        .results(task, "edge")
        .iter()
        .map(|r| {
            assert_ne!(r["failed"], true, "{task}: {r}");
            if r["skipped"] == true {
                json!("skipped")
            } else {
                r["changed"].clone()
            }
        })
        .collect()
}

/// A run that succeeded, and for each of the role's `task`s, its outcome in the role's first
/// and second run (`changed`, or `"skipped"`).
fn assert_outcomes(played: &Played, want: &[(&str, [&Value; 2])]) {
    assert_eq!(played.code, Some(0), "{}", played.raw);
    for (task, [first, second]) in want {
        let got = outcomes(played, task);
        assert_eq!(
            got,
            [(*first).clone(), (*second).clone()],
            "{task}: {}",
            played.raw
        );
    }
}

/// The role's task names, in order.
const COPY: &str = "Copy the vezasock package";
const INSTALL: &str = "Install the vezasock package (no service, nothing touches HAProxy)";
const TOPOLOGY: &str = "Install the topology";
const PLAN: &str = "Plan the topology change (what apply would do)";

// One HAProxy version: the role installs a package; the edge is only there for its plan task.
#[test]
fn the_edge_role_installs_the_package_and_topology_then_changes_nothing_and_check_mode_writes_nothing(
) {
    let Some(bin) = ansible_bin() else { return };
    let Some(v) = crate::support::haproxy::version("3.4") else {
        return;
    };
    let fleet = Fleet::local(&v, 1);
    let dir = fleet.dir.path();
    if !overlays_mount(dir) {
        return;
    }
    let config = &fleet.members[0].config;
    let real = [
        "/var/lib/dpkg/status",
        "/usr/bin/vezasock",
        "/etc/vezasock/topology.toml",
    ];
    let before: Vec<_> = real.iter().map(|p| modified(p)).collect();
    let scratch = dir.join("root");
    std::fs::create_dir_all(&scratch).unwrap_or_else(|e| panic!("{e}"));
    let upper = scratch.join("upper");
    let inventory = json!({"all": {"hosts": {"edge": {
        "ansible_connection": "local",
        "ansible_python_interpreter": bin.join("python"),
    }}}});
    let run = Playbook {
        dir,
        label: v.label,
        inventory,
        wrap: overlay_wrap(&scratch, &preload_debs()),
    };
    let vars =
        json!({"vezasock_deb": crate::package::installed().deb, "vezasock_topology_src": config});
    let playbook = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("integration/fixtures/ansible_playbooks/role.yml");
    let playbook = playbook.display().to_string();

    // --check: what would change, and nothing written (the .deb is not there to install).
    let played = run.play(&bin, &playbook, &["--check"], vars.clone());
    let (t, f, skipped) = (json!(true), json!(false), json!("skipped"));
    assert_outcomes(
        &played,
        &[
            (COPY, [&t, &t]),
            (INSTALL, [&skipped, &skipped]),
            (TOPOLOGY, [&t, &t]),
            (PLAN, [&skipped, &skipped]),
        ],
    );
    let deb = &crate::package::installed().deb;
    let cached = Path::new("var/cache").join(deb.file_name().unwrap_or_default());
    for path in [
        Path::new("usr/bin/vezasock"),
        Path::new("etc/vezasock"),
        &cached,
    ] {
        assert!(
            !upper.join(path).exists(),
            "--check wrote {}",
            path.display()
        );
    }

    // For real, twice: the second run changes nothing.
    let played = run.play(&bin, &playbook, &[], vars);
    assert_outcomes(
        &played,
        &[
            (COPY, [&t, &f]),
            (INSTALL, [&t, &f]),
            (TOPOLOGY, [&t, &f]),
            (PLAN, [&f, &skipped]),
        ],
    );
    // The installed binary, found on PATH by the module, planned the running edge: in step.
    let plan = &played.results(PLAN, "edge")[0];
    assert_eq!(plan["plan"]["plan"], "nothing", "{plan}");
    assert_installed_in(&upper, config);
    let after: Vec<_> = real.iter().map(|p| modified(p)).collect();
    assert_eq!(after, before, "{real:?} changed outside the overlays");
}

/// What the role wrote, read from the overlays' upper dirs: the package (dpkg's database and
/// the binary) and the topology.
fn assert_installed_in(upper: &Path, config: &Path) {
    let version = Command::new(upper.join("usr/bin/vezasock"))
        .arg("--version")
        .output();
    let version = version.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    assert_eq!(
        version.ok(),
        Some(format!("vezasock {}", env!("CARGO_PKG_VERSION")))
    );
    let status = std::fs::read_to_string(upper.join("var/lib/dpkg/status")).unwrap_or_default();
    assert!(
        status.contains("Package: vezasock\nStatus: install ok installed\n"),
        "dpkg's database in the overlay"
    );
    let copied = std::fs::read_to_string(upper.join("etc/vezasock/topology.toml")).ok();
    assert_eq!(copied, std::fs::read_to_string(config).ok());
}
