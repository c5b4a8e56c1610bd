//! Taking over a running edge vezasock did not render (issue 11), on every HAProxy version:
//! a hand-written config in the seed's style (integration/fixtures/seed-haproxy.cfg) with
//! seed state files staging=green, prod=blue. `apply --seed-state DIR` takes it over with one
//! reload, every host keeps its color, `status` is clean, the history is imported and
//! `rollback staging` works at once; a `cat` of the state file sees each later switch. Refused
//! with nothing changed when a color cannot be decided or `haproxy -c` refuses the candidate;
//! `status` before the takeover says loudly that the edge is not vezasock's.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use vezasock::cli::exit::Exit;
use vezasock::demo::http::get;
use vezasock::demo::load::{Load, LoadSpec};
use vezasock::edge::apply::install::start_command;
use vezasock::runtime::endpoint::{Endpoint, Socket};
use vezasock::runtime::session::Timeouts;
use vezasock::topology::{LocalServer, Tls, Topology};

use crate::support::fresh::{fresh, Fresh, Started};
use crate::support::haproxy::{per_version, Haproxy};
use crate::support::load::spec;
use crate::support::run::{vezasock_config, Run};
use crate::support::topology::to_toml;

const SEED_CONFIG: &str = include_str!("fixtures/seed-haproxy.cfg");

/// A running foreign edge: its topology (servers on loopback, files under `dir`), the
/// topology file, the backends and HAProxy (killed with its group on drop).
struct Seed {
    topology: Topology,
    file: PathBuf,
    http: SocketAddr,
    dir: PathBuf,
    /// `None` until started.
    haproxy: Option<Started>,
    edge: Fresh,
}

/// The seed-style config for these servers: staging on `staging`, prod on `prod`; with
/// `both_staging`, staging's api backend also holds the other color's server in rotation.
fn seed_config(
    t: &Topology,
    servers: &[LocalServer],
    http: SocketAddr,
    staging: &str,
    prod: &str,
    both_staging: bool,
) -> String {
    let addr = |backend: &str| -> String {
        servers
            .iter()
            .find(|s| s.backend == backend)
            .map(|s| format!("127.0.0.1:{}", s.port))
            .unwrap_or_else(|| panic!("no server in {backend}"))
    };
    let mut text = SEED_CONFIG
        .replace(
            "@ADMIN_SOCKET@",
            &t.paths.admin_socket.display().to_string(),
        )
        .replace("@HTTP@", &http.to_string())
        .replace("@STAGING@", staging)
        .replace("@PROD@", prod)
        .replace("_STAGING@", &format!("_{staging}@"))
        .replace("_PROD@", &format!("_{prod}@"));
    let other = if staging == "blue" { "green" } else { "blue" };
    let extra = if both_staging {
        format!(
            "\nbackend staging_backend_api_{other}\n    server veza-staging-api-{other} {} check\n",
            addr(&format!("be_staging_api_{other}"))
        )
    } else {
        String::new()
    };
    text = text.replace("@EXTRA@", &extra);
    for s in servers {
        text = text.replace(&format!("@{}@", s.backend), &addr(&s.backend));
        if s.backend.contains("forgejo") {
            text = text.replace("@forgejo@", &format!("127.0.0.1:{}", s.port));
        }
    }
    assert!(
        !text
            .lines()
            .any(|l| !l.trim_start().starts_with('#') && l.contains('@')),
        "unfilled placeholder in:\n{text}"
    );
    text
}

/// The embedded veza topology with every server on loopback (a backend answering on each) and
/// every file under `dir`, written as a topology file. HAProxy is not started.
fn unstarted(v: &Haproxy, dir: &Path) -> Seed {
    let mut edge = fresh(v, dir, None);
    edge.topology.log = None;
    edge.write();
    Seed {
        topology: edge.topology.clone(),
        file: edge.file.clone(),
        http: edge.http,
        dir: dir.to_path_buf(),
        haproxy: None,
        edge,
    }
}

/// Starts HAProxy with vezasock's start command; waits until its admin socket answers.
fn start(seed: &mut Seed) {
    seed.haproxy = None;
    seed.haproxy = Some(seed.edge.start(&start_command(&seed.topology.paths)));
}

/// Starts the seed-style edge in `dir` on HAProxy `v`.
fn seed_edge(v: &Haproxy, dir: &Path, staging: &str, prod: &str, both_staging: bool) -> Seed {
    let mut seed = unstarted(v, dir);
    let config = seed_config(
        &seed.topology,
        &seed.edge.servers,
        seed.http,
        staging,
        prod,
        both_staging,
    );
    std::fs::write(&seed.topology.paths.config, config).unwrap_or_else(|e| panic!("{e}"));
    start(&mut seed);
    seed
}

/// `vezasock ARGS --config <file>`, with no path variable from the caller's environment.
fn vezasock(seed: &Seed, args: &[&str]) -> Run {
    vezasock_config(&seed.file, "it-takeover", args)
}

/// The master's reload counter (`show proc`, through the library's master client).
fn reloads(seed: &Seed) -> u32 {
    let master = Endpoint::Master {
        socket: Socket::Unix(seed.topology.paths.master_socket.clone()),
        target: None,
    };
    let timeouts = Timeouts {
        connect: Duration::from_secs(2),
        reply: Duration::from_secs(5),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    rt.block_on(vezasock::runtime::master::show_proc(&master, timeouts))
        .unwrap_or_else(|e| panic!("show proc: {e}"))
        .master
        .reloads
}

/// The body a host answers with, waiting up to 10 s for `want` (health checks after a
/// reload start over).
fn answers(seed: &Seed, host: &str, path: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = get(seed.http, host, path, Duration::from_secs(2));
        if got
            .as_ref()
            .is_ok_and(|a| a.status == 200 && a.body.trim() == want)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{host}{path}: wanted {want:?}, got {:?}",
            got.map(|a| (a.status, a.body))
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn every_host(seed: &Seed, staging: &str, prod: &str) {
    for (host, env, color) in [
        ("staging.veza.fr", "staging", staging),
        ("veza.fr", "prod", prod),
        ("www.veza.fr", "prod", prod),
    ] {
        for (path, component) in [("/api/x", "api"), ("/stream/1", "stream"), ("/", "web")] {
            answers(seed, host, path, &format!("{env} {component} {color}"));
        }
    }
}

fn write_seed_state(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{e}"));
    for (name, text) in [
        ("active-color-staging", "green\n"),
        ("active-color-prod", "blue\n"),
        (
            "active-color-staging.history",
            "green 2b3c4d5 2026-11-30T10:00:00Z ansible\nblue 1a2b3c4 2026-11-29T10:00:00Z ansible\n",
        ),
        ("active-color-prod.history", "blue\n"),
    ] {
        std::fs::write(dir.join(name), text).unwrap_or_else(|e| panic!("{e}"));
    }
}

per_version!(
    a_seed_style_edge_is_taken_over_with_one_reload,
    |v: &Haproxy| {
        let label = v.label;
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let seed = seed_edge(v, tmp.path(), "green", "blue", false);
        let seed_dir = seed.dir.join("seed-state");
        write_seed_state(&seed_dir);
        every_host(&seed, "green", "blue");
        answers(&seed, "forgejo.talas.group", "/", "forgejo_backend");

        // Before: status is loud, plan says takeover and where each color comes from.
        let status = vezasock(&seed, &["status"]);
        assert_eq!(status.code, Some(Exit::Drift as i32), "{label}: {status:?}");
        assert!(
            status.out.contains("NOT VEZASOCK'S EDGE"),
            "{label}: {status:?}"
        );
        // A switch before the takeover is refused in words that say what to run, and moves
        // nothing.
        let switch = vezasock(&seed, &["switch", "staging", "blue"]);
        assert_eq!(
            switch.code,
            Some(Exit::Refused as i32),
            "{label}: {switch:?}"
        );
        assert!(
            switch.err.contains("not the one vezasock renders")
                && switch.err.contains("vezasock apply")
                && switch.err.contains("nothing was changed"),
            "{label}: {switch:?}"
        );
        every_host(&seed, "green", "blue");
        let seed_arg = seed_dir.display().to_string();
        let plan = vezasock(&seed, &["plan", "--seed-state", &seed_arg]);
        assert_eq!(plan.code, Some(0), "{label}: {plan:?}");
        assert!(
            plan.out
                .contains("takeover of a config vezasock did not render")
                && plan.out.contains("staging: green (from the state-file")
                && plan.out.contains("prod: blue (from the state-file"),
            "{label}: {plan:?}"
        );

        // Bounded load through the takeover: keep-alive and new-connection clients.
        let load = Load::start(&LoadSpec {
            max_requests_per_client: 100_000,
            ..spec(
                seed.http,
                &[("staging.veza.fr", "/api/x"), ("veza.fr", "/")],
            )
        });
        assert!(
            load.wait_for_requests(200, Duration::from_secs(10)),
            "{label}: no load"
        );
        let before = reloads(&seed);
        let apply = vezasock(&seed, &["apply", "--seed-state", &seed_arg]);
        assert_eq!(apply.code, Some(0), "{label}: {apply:?}");
        assert!(
            load.wait_for_requests(200, Duration::from_secs(10)),
            "{label}: load stalled"
        );
        let report = load.stop();
        assert_eq!(
            reloads(&seed),
            before + 1,
            "{label}: exactly one reload: {apply:?}"
        );
        eprintln!(
            "{label}: takeover under load: {} sent, {} failed ({:?})",
            report.sent(),
            report.failed(),
            report
        );

        // New connections reach the new worker (or the old one before it stopped listening):
        // none may fail. A keep-alive connection held by the old worker may be closed by it
        // once (the seed's config has no `option idle-close-on-response`); its client then
        // reconnects to the new worker, so each client fails at most once.
        assert_eq!(report.new_connection.failed, 0, "{label}: {report:?}");
        assert!(
            report.keepalive.failed <= 2
                && report
                    .failures
                    .iter()
                    .all(|f| f.contains("closed before answering")),
            "{label}: {report:?}"
        );
        every_host(&seed, "green", "blue");
        let config = std::fs::read_to_string(&seed.topology.paths.config).unwrap_or_default();
        assert!(
            config.starts_with("# vezasock-shape: "),
            "{label}: {config}"
        );
        let status = vezasock(&seed, &["status"]);
        assert_eq!(status.code, Some(0), "{label}: {status:?}");
        let history = vezasock(&seed, &["history", "staging"]);
        assert!(
            history.out.contains("2b3c4d5") && history.out.contains("1a2b3c4"),
            "{label}: {history:?}"
        );
        let state = seed.topology.paths.state_dir.join("active-color-staging");
        let cat = |p: &Path| {
            let out = Command::new("cat")
                .arg(p)
                .output()
                .unwrap_or_else(|e| panic!("{e}"));
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        assert_eq!(cat(&state), "green", "{label}");

        // rollback works at once (the imported history's previous deploy is blue).
        let rollback = vezasock(&seed, &["rollback", "staging"]);
        assert_eq!(rollback.code, Some(0), "{label}: {rollback:?}");
        every_host(&seed, "blue", "blue");
        assert_eq!(
            cat(&state),
            "blue",
            "{label}: a playbook reading the state file"
        );
        let switch = vezasock(&seed, &["switch", "staging", "green"]);
        assert_eq!(switch.code, Some(0), "{label}: {switch:?}");
        assert_eq!(
            cat(&state),
            "green",
            "{label}: a playbook reading the state file"
        );
        assert_eq!(reloads(&seed), before + 1, "{label}: flips do not reload");
    }
);

per_version!(
    a_takeover_whose_colors_cannot_be_decided_changes_nothing,
    |v: &Haproxy| {
        let label = v.label;
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        // No state file anywhere, and staging has both colors in rotation.
        let seed = seed_edge(v, tmp.path(), "green", "blue", true);
        let config = std::fs::read(&seed.topology.paths.config).unwrap_or_default();
        let before = reloads(&seed);
        let plan = vezasock(&seed, &["plan"]);
        assert_eq!(plan.code, Some(Exit::Refused as i32), "{label}: {plan:?}");
        assert!(
            plan.out.contains("UNDECIDED") && plan.out.contains("prod: blue (from the runtime"),
            "{label}: {plan:?}"
        );
        let apply = vezasock(&seed, &["apply"]);
        assert_eq!(apply.code, Some(Exit::Refused as i32), "{label}: {apply:?}");
        assert!(
            apply.err.contains("nothing changed")
                && apply.err.contains("both colors")
                && apply.err.contains("--color staging="),
            "{label}: {apply:?}"
        );
        assert_eq!(
            std::fs::read(&seed.topology.paths.config).unwrap_or_default(),
            config
        );
        assert!(
            !seed.topology.paths.maps_dir.exists(),
            "{label}: maps written"
        );
        assert!(
            !seed
                .topology
                .paths
                .state_dir
                .join("active-color-staging")
                .exists(),
            "{label}: state written"
        );
        assert_eq!(reloads(&seed), before, "{label}");

        // The flag decides it: one reload, staging as asked, prod from the runtime.
        let apply = vezasock(&seed, &["apply", "--color", "staging=green"]);
        assert_eq!(apply.code, Some(0), "{label}: {apply:?}");
        assert_eq!(reloads(&seed), before + 1, "{label}");
        every_host(&seed, "green", "blue");
        let history = vezasock(&seed, &["history", "prod"]);
        assert!(history.out.contains("blue"), "{label}: {history:?}");
    }
);

per_version!(
    a_takeover_whose_candidate_fails_the_check_changes_nothing,
    |v: &Haproxy| {
        let label = v.label;
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut seed = seed_edge(v, tmp.path(), "green", "blue", false);
        write_seed_state(&seed.topology.paths.state_dir.clone());
        // Valid topology, refused by HAProxy: TLS certificates that are not there.
        seed.topology.tls = Some(Tls {
            certs_dir: seed.dir.join("certs"),
            redirect: false,
        });
        seed.topology.listen.https = format!("127.0.0.1:{}", crate::support::ports::free_port());
        std::fs::write(&seed.file, to_toml(&seed.topology)).unwrap_or_else(|e| panic!("{e}"));
        let config = std::fs::read(&seed.topology.paths.config).unwrap_or_default();
        let state = |n: &str| std::fs::read(seed.topology.paths.state_dir.join(n)).ok();
        let history_before = state("active-color-staging.history");
        let before = reloads(&seed);
        let apply = vezasock(&seed, &["apply"]);
        assert_eq!(apply.code, Some(Exit::Refused as i32), "{label}: {apply:?}");
        assert!(
            apply.err.contains("HAProxy refused the candidate"),
            "{label}: {apply:?}"
        );
        assert_eq!(
            std::fs::read(&seed.topology.paths.config).unwrap_or_default(),
            config
        );
        assert_eq!(
            state("active-color-staging.history"),
            history_before,
            "{label}"
        );
        assert!(!seed.topology.paths.maps_dir.exists(), "{label}: maps left");
        assert_eq!(reloads(&seed), before, "{label}");
        every_host(&seed, "green", "blue");
    }
);

per_version!(
    a_first_install_records_the_initial_colors_so_the_first_rollback_works,
    |v: &Haproxy| {
        let label = v.label;
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut seed = unstarted(v, tmp.path());
        let install = vezasock(&seed, &["apply"]);
        assert_eq!(install.code, Some(0), "{label}: {install:?}");
        assert!(
            install.out.contains("initial colors recorded"),
            "{label}: {install:?}"
        );
        start(&mut seed);
        answers(&seed, "staging.veza.fr", "/api/x", "staging api blue");
        let switch = vezasock(
            &seed,
            &["switch", "staging", "green", "--wait-healthy", "10s"],
        );
        assert_eq!(switch.code, Some(0), "{label}: {switch:?}");
        answers(&seed, "staging.veza.fr", "/api/x", "staging api green");
        // Before, this was "no previous deploy": the initial blue was never recorded.
        let rollback = vezasock(&seed, &["rollback", "staging"]);
        assert_eq!(rollback.code, Some(0), "{label}: {rollback:?}");
        answers(&seed, "staging.veza.fr", "/api/x", "staging api blue");
    }
);
