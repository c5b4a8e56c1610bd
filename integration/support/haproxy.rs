//! Real HAProxy processes for the tests: finding the binaries, and a fixture that starts one
//! master-worker instance in a temp dir and kills it (and its workers) on drop.
//!
//! Modelled on redis-rs's `redis-test` server: the real binary, a private temp dir, sockets
//! inside it, loopback-only listeners, nothing left behind.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One HAProxy version the tests run against.
#[derive(Debug, Clone)]
pub struct Haproxy {
    /// `2.6`, `3.0`, `3.2` or `3.4`.
    pub label: &'static str,
    pub bin: PathBuf,
    /// First line of `haproxy -v`.
    pub version_line: String,
}

const VERSIONS: [(&str, &str); 4] = [
    ("2.6", "2_6"),
    ("3.0", "3_0"),
    ("3.2", "3_2"),
    ("3.4", "3_4"),
];

fn default_path(label: &str) -> PathBuf {
    if label == "2.6" {
        return PathBuf::from("/usr/sbin/haproxy");
    }
    let cache = std::env::var_os("VEZASOCK_HAPROXY_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
            PathBuf::from(home).join(".cache/vezasock/haproxy")
        });
    cache.join(label).join("usr/sbin/haproxy")
}

impl Haproxy {
    /// True when this is version `major.minor` or newer (by its label).
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        let mut parts = self.label.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (major, minor)
    }
}

/// Finds one version: env var `VEZASOCK_HAPROXY_2_6` etc., else the install script's path.
/// `Err` says why it is unavailable (missing, does not run, or another version).
fn find(label: &'static str, var: &str) -> Result<Haproxy, String> {
    let bin = std::env::var_os(format!("VEZASOCK_HAPROXY_{var}"))
        .map(PathBuf::from)
        .unwrap_or_else(|| default_path(label));
    let version_line = Command::new(&bin)
        .arg("-v")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string));
    match version_line {
        Some(line) if line.contains(&format!("version {label}.")) => Ok(Haproxy {
            label,
            bin,
            version_line: line,
        }),
        Some(line) => Err(format!("{} reports {line:?}", bin.display())),
        None => Err(format!("{} is missing or does not run", bin.display())),
    }
}

/// One version by label (`2.6`, `3.0`, `3.2`, `3.4`), or `None` after printing a SKIP line. With
/// `VEZASOCK_REQUIRE_ALL_VERSIONS=1` (set by the CI command) a missing version panics instead,
/// so CI can never pass by silently skipping.
pub fn version(label: &str) -> Option<Haproxy> {
    let require_all = std::env::var("VEZASOCK_REQUIRE_ALL_VERSIONS").is_ok_and(|v| v == "1");
    let Some((label, var)) = VERSIONS.into_iter().find(|(l, _)| *l == label) else {
        panic!("no HAProxy version {label:?} is known to the tests");
    };
    match find(label, var) {
        Ok(v) => Some(v),
        Err(why) => {
            assert!(
                !require_all,
                "HAProxy {label} required but unavailable: {why} (run scripts/install-haproxy.sh)"
            );
            eprintln!("SKIP HAProxy {label}: {why} (run scripts/install-haproxy.sh)");
            None
        }
    }
}

/// Every HAProxy version found, each through [`version`] (so missing ones are printed, or fail
/// under `VEZASOCK_REQUIRE_ALL_VERSIONS=1`). Tests use [`per_version!`] instead, so that one
/// version's failure does not hide the others; this is for the benches and for tests not yet
/// converted.
#[allow(dead_code)] // the benches use it
pub fn versions() -> Vec<Haproxy> {
    VERSIONS
        .iter()
        .filter_map(|(label, _)| version(label))
        .collect()
}

/// One test per HAProxy version: `per_version!(name, |v: &Haproxy| { ... })` defines the
/// tests `name::v2_6`, `name::v3_0`, `name::v3_2` and `name::v3_4`, so a failure on one version
/// hides none of the others, and `cargo test` lists each case. A missing version prints `SKIP` and passes, unless
/// `VEZASOCK_REQUIRE_ALL_VERSIONS=1`, where it fails. The body is a non-capturing closure; it
/// sees the calling module's items (`use super::*`).
macro_rules! per_version {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn run(label: &str) {
                if let Some(v) = $crate::support::haproxy::version(label) {
                    let body: fn(&$crate::support::haproxy::Haproxy) = $body;
                    body(&v);
                }
            }

            #[test]
            fn v2_6() {
                run("2.6")
            }

            #[test]
            fn v3_0() {
                run("3.0")
            }

            #[test]
            fn v3_2() {
                run("3.2")
            }

            #[test]
            fn v3_4() {
                run("3.4")
            }
        }
    };
}
pub(crate) use per_version;

/// [`versions`], narrowed to the labels listed in `VEZASOCK_BENCH_VERSIONS` (e.g. `3.2` or
/// `2.6,3.2`) when it is set: how the benchmarks, which include this file, run one version.
#[allow(dead_code)] // the benches use it
pub fn versions_for_bench() -> Vec<Haproxy> {
    let wanted: Option<Vec<String>> = std::env::var("VEZASOCK_BENCH_VERSIONS").ok().map(|s| {
        s.split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect()
    });
    versions()
        .into_iter()
        .filter(|v| {
            wanted
                .as_ref()
                .is_none_or(|w| w.iter().any(|x| x == v.label))
        })
        .collect()
}

/// A running master-worker HAProxy in its own temp dir.
pub struct Fixture {
    pub haproxy: Haproxy,
    pub dir: tempfile::TempDir,
    child: Child,
}

impl Fixture {
    /// Starts `haproxy -W -S <dir>/master.sock,level,admin -f <dir>/haproxy.cfg` with the given
    /// config and extra files (maps, certs), in all of which `{dir}` is replaced by the temp dir.
    /// Waits until `admin.sock` (which the config must declare as `{dir}/admin.sock`) answers.
    pub fn start_with_files(haproxy: &Haproxy, config: &str, files: &[(&str, &str)]) -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("vezasock-it-")
            .tempdir()
            .unwrap_or_else(|e| panic!("temp dir: {e}"));
        let d = dir.path().display().to_string();
        for (name, body) in files {
            std::fs::write(dir.path().join(name), body.replace("{dir}", &d))
                .unwrap_or_else(|e| panic!("write {name}: {e}"));
        }
        std::fs::write(dir.path().join("haproxy.cfg"), config.replace("{dir}", &d))
            .unwrap_or_else(|e| panic!("write config: {e}"));
        let log = std::fs::File::create(dir.path().join("haproxy.log"))
            .unwrap_or_else(|e| panic!("log file: {e}"));
        let log2 = log.try_clone().unwrap_or_else(|e| panic!("log file: {e}"));
        let child = Command::new(&haproxy.bin)
            .arg("-W")
            .arg("-S")
            .arg(format!("{d}/master.sock,level,admin"))
            .arg("-f")
            .arg(dir.path().join("haproxy.cfg"))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            // Own process group, so drop can kill the master and every worker at once.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", haproxy.bin.display()));
        let mut fixture = Fixture {
            haproxy: haproxy.clone(),
            dir,
            child,
        };
        fixture.wait_ready();
        fixture
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn admin_sock(&self) -> PathBuf {
        self.path("admin.sock")
    }

    pub fn master_sock(&self) -> PathBuf {
        self.path("master.sock")
    }

    /// HAProxy's own stdout/stderr so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("haproxy.log")).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "HAProxy {} exited ({status}) at start:\n{}",
                    self.haproxy.label,
                    self.log()
                );
            }
            if raw_one_shot(&self.admin_sock(), "show info\n").is_ok_and(|r| r.contains("Pid:")) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "HAProxy {} not ready after 10 s:\n{}",
                self.haproxy.label,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The master process's PID.
    pub fn master_pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // The whole group: master, current and old workers.
        vezasock::demo::edge::kill_group(&mut self.child);
    }
}

/// The simplest possible client, independent of the code under test: one line, read to EOF.
pub fn raw_one_shot(sock: &Path, line: &str) -> std::io::Result<String> {
    let mut s = UnixStream::connect(sock)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(line.as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}
