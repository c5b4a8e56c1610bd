//! A real OpenSSH server on loopback for the fleet's ssh edge: `sshd -D -e` as the current user
//! on a free 127.0.0.1 port, from its own temp dir (fresh host key and user key, its own
//! `sshd_config`, `authorized_keys` and pid file), killed on drop. Like the HAProxy versions, a
//! missing sshd prints SKIP, and `VEZASOCK_REQUIRE_ALL_VERSIONS=1` makes it a failure.

use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::ports::free_port;

/// A running sshd that accepts the fixture's user key for the current user.
pub struct Sshd {
    pub port: u16,
    /// `user@127.0.0.1`: the current user, as `ssh` and the fleet file's `ssh =` want it.
    pub destination: String,
    /// The private key the server accepts.
    pub key: PathBuf,
    pub dir: tempfile::TempDir,
    child: Child,
}

/// The sshd binary: `VEZASOCK_SSHD` (what scripts/install-haproxy.sh prints), else Debian's
/// path. `Err` says why it is not usable.
fn find() -> Result<PathBuf, String> {
    let bin = std::env::var_os("VEZASOCK_SSHD")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/sshd"));
    // sshd re-executes itself and refuses a relative path.
    if !bin.is_absolute() {
        return Err(format!("{} is not an absolute path", bin.display()));
    }
    if !bin.is_file() {
        return Err(format!("{} is missing", bin.display()));
    }
    for tool in ["ssh", "ssh-keygen"] {
        let found = Command::new(tool)
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !found {
            return Err(format!("`{tool}` is not on PATH"));
        }
    }
    Ok(bin)
}

fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "vezasock-it", "-f"])
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("ssh-keygen: {e}"));
    assert!(
        out.status.success(),
        "ssh-keygen {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn current_user() -> String {
    let out = Command::new("id")
        .arg("-un")
        .output()
        .unwrap_or_else(|e| panic!("id -un: {e}"));
    let user = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        out.status.success() && !user.is_empty(),
        "id -un gave {out:?}"
    );
    user
}

impl Sshd {
    /// Starts one, or `None` after printing SKIP (a panic under
    /// `VEZASOCK_REQUIRE_ALL_VERSIONS=1`, so CI cannot pass by skipping the ssh edge).
    pub fn start() -> Option<Sshd> {
        let bin = match find() {
            Ok(bin) => bin,
            Err(why) => {
                let require_all =
                    std::env::var("VEZASOCK_REQUIRE_ALL_VERSIONS").is_ok_and(|v| v == "1");
                assert!(
                    !require_all,
                    "sshd required but unavailable: {why} (run scripts/install-haproxy.sh)"
                );
                eprintln!("SKIP sshd: {why} (run scripts/install-haproxy.sh)");
                return None;
            }
        };
        Some(Sshd::start_with(&bin))
    }

    fn start_with(bin: &Path) -> Sshd {
        let dir = tempfile::Builder::new()
            .prefix("vezasock-sshd-")
            .tempdir()
            .unwrap_or_else(|e| panic!("temp dir: {e}"));
        let host_key = dir.path().join("host_ed25519");
        let key = dir.path().join("user_ed25519");
        keygen(&host_key);
        keygen(&key);
        let authorized = dir.path().join("authorized_keys");
        std::fs::copy(key.with_extension("pub"), &authorized)
            .unwrap_or_else(|e| panic!("authorized_keys: {e}"));
        // The privilege separation dir sshd insists on when run as root (normally made by the
        // service unit, which never ran here).
        if !Path::new("/run/sshd").is_dir() {
            std::fs::create_dir_all("/run/sshd").unwrap_or_else(|e| panic!("/run/sshd: {e}"));
        }
        let port = free_port();
        let config = dir.path().join("sshd_config");
        let d = |p: &Path| p.display().to_string();
        std::fs::write(
            &config,
            format!(
                "ListenAddress 127.0.0.1\n\
                 Port {port}\n\
                 HostKey {host}\n\
                 AuthorizedKeysFile {auth}\n\
                 PidFile {pid}\n\
                 StrictModes no\n\
                 PermitRootLogin prohibit-password\n\
                 PubkeyAuthentication yes\n\
                 PasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\n\
                 UsePAM no\n\
                 AcceptEnv VEZASOCK_*\n\
                 LogLevel VERBOSE\n",
                host = d(&host_key),
                auth = d(&authorized),
                pid = d(&dir.path().join("sshd.pid")),
            ),
        )
        .unwrap_or_else(|e| panic!("sshd_config: {e}"));
        let log = std::fs::File::create(dir.path().join("sshd.log"))
            .unwrap_or_else(|e| panic!("sshd.log: {e}"));
        let child = Command::new(bin)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        let mut sshd = Sshd {
            port,
            destination: format!("{}@127.0.0.1", current_user()),
            key,
            dir,
            child,
        };
        sshd.wait_listening();
        sshd
    }

    fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("sshd exited ({status}) at start:\n{}", self.log());
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "sshd not listening on 127.0.0.1:{} after 10 s:\n{}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// sshd's own log so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// The client options that reach this server non-interactively, for `ssh OPTIONS DEST …`
    /// and the fleet file's `ssh_options`.
    pub fn options(&self) -> Vec<String> {
        [
            "-p",
            &self.port.to_string(),
            "-i",
            &self.key.display().to_string(),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "LogLevel=ERROR",
        ]
        .into_iter()
        .map(str::to_string)
        .collect()
    }

    /// `ssh OPTIONS DEST -- ARGS` (the remote command is ARGS joined by spaces, as ssh does).
    pub fn ssh(&self, args: &[&str]) -> std::process::Output {
        Command::new("ssh")
            .args(self.options())
            .arg(&self.destination)
            .arg("--")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run ssh: {e}"))
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // The listener and anything still in its group; sessions end with their clients.
        vezasock::demo::edge::kill_group(&mut self.child);
    }
}

#[test]
fn vezasock_runs_over_ssh_through_the_fixture() {
    let Some(sshd) = Sshd::start() else { return };
    let out = sshd.ssh(&[env!("CARGO_BIN_EXE_vezasock"), "version"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ssh {} vezasock version: {out:?}\nsshd log:\n{}",
        sshd.destination,
        sshd.log()
    );
    assert!(
        stdout.contains(env!("CARGO_PKG_VERSION")),
        "want version {}, got {stdout:?}",
        env!("CARGO_PKG_VERSION")
    );
}
