//! The one way the tests and the benches run the `vezasock` binary: nothing inherited that
//! points it at an edge ([`EDGE_ENV_VARS`], [`FLEET_ENV_VARS`]), then the edge, topology file
//! or fleet file the caller gives, its own process group, output to files, optional stdin, and
//! a time bound (a run past it is killed: a hang fails the test).

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use vezasock::demo::LocalEdge;

use crate::support::env::{EDGE_ENV_VARS, FLEET_ENV_VARS};

/// The bound of a run unless the caller sets another: a run past it is a hang.
pub const BOUND: Duration = Duration::from_secs(120);

/// Output kept from one stream (bounded like every file read).
const OUTPUT_LIMIT: u64 = 64 << 20;

/// One run of the binary.
#[derive(Debug)]
pub struct Run {
    /// `None` when killed by a signal.
    pub code: Option<i32>,
    pub out: String,
    pub err: String,
}

/// A run being set up: `Vezasock::edge(&edge, &["switch", "staging", "green"]).run()`.
pub struct Vezasock {
    cmd: Command,
    stdin: Option<Vec<u8>>,
    bound: Duration,
    /// SIGKILL the run this long after its start, and return what it printed (no failure).
    kill_after: Option<Duration>,
    out_dir: Option<PathBuf>,
}

impl Vezasock {
    /// `vezasock ARGS` with nothing from the caller's environment pointing it at an edge or a
    /// fleet, as `VEZASOCK_WHO=it-test`.
    pub fn new<S: AsRef<OsStr>>(args: &[S]) -> Vezasock {
        Vezasock::program(Path::new(env!("CARGO_BIN_EXE_vezasock")), args)
    }

    /// Another program run like the binary (the same scrubbed environment): a wrapper such as
    /// `script` that runs `vezasock` itself.
    pub fn program<S: AsRef<OsStr>>(program: &Path, args: &[S]) -> Vezasock {
        let mut cmd = Command::new(program);
        cmd.args(args);
        for var in EDGE_ENV_VARS.iter().chain(&FLEET_ENV_VARS) {
            cmd.env_remove(var);
        }
        cmd.env("VEZASOCK_WHO", "it-test");
        Vezasock {
            cmd,
            stdin: None,
            bound: BOUND,
            kill_after: None,
            out_dir: None,
        }
    }

    /// `vezasock ARGS` with the local edge's paths in the environment (`LocalEdge::cli_env`).
    pub fn edge(edge: &LocalEdge, args: &[&str]) -> Vezasock {
        Vezasock::new(args).edge_paths(edge)
    }

    /// `vezasock ARGS --config FILE`: only the topology file counts.
    pub fn config(file: &Path, args: &[&str]) -> Vezasock {
        let mut run = Vezasock::new(args);
        run.cmd.arg("--config").arg(file);
        run
    }

    /// `vezasock COMMAND --fleet FILE REST` (ARGS = COMMAND REST; `status` when empty).
    pub fn fleet(file: &Path, args: &[&str]) -> Vezasock {
        let (command, rest) = args.split_first().unwrap_or((&"status", &[]));
        let mut run = Vezasock::new(&[command]);
        run.cmd.arg("--fleet").arg(file).args(rest);
        run
    }

    /// `vezasock ARGS` under a pseudo-terminal (util-linux `script -qec … /dev/null`): its
    /// stdout and stderr both reach the terminal, which the run's `out` records (lines end in
    /// `\r\n`), and `script` exits with its exit code. `None` (after a SKIP line) without
    /// `/usr/bin/script`.
    pub fn on_tty(args: &[&str]) -> Option<Vezasock> {
        let script = Path::new("/usr/bin/script");
        if !script.exists() {
            eprintln!("SKIP a terminal check: no /usr/bin/script");
            return None;
        }
        let line: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_vezasock"))
            .chain(args.iter().copied())
            .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
            .collect();
        Some(Vezasock::program(
            script,
            &["-qec", &line.join(" "), "/dev/null"],
        ))
    }

    /// Who the run is recorded as (`VEZASOCK_WHO`).
    pub fn who(mut self, who: &str) -> Vezasock {
        self.cmd.env("VEZASOCK_WHO", who);
        self
    }

    /// One more environment variable (a test hook such as `VEZASOCK_CRASH_AT`).
    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Vezasock {
        self.cmd.env(key, value);
        self
    }

    /// More environment variables.
    pub fn envs(mut self, vars: &[(&str, &str)]) -> Vezasock {
        self.cmd.envs(vars.iter().copied());
        self
    }

    /// The local edge's paths in the environment (`LocalEdge::cli_env`).
    pub fn edge_paths(mut self, edge: &LocalEdge) -> Vezasock {
        self.cmd.envs(edge.cli_env());
        self
    }

    /// Bytes written to its stdin (else stdin is empty).
    pub fn stdin(mut self, input: &[u8]) -> Vezasock {
        self.stdin = Some(input.to_vec());
        self
    }

    /// SIGKILLs its process group `after` its start (a crash), without failing.
    pub fn kill_after(mut self, after: Duration) -> Vezasock {
        self.kill_after = Some(after);
        self
    }

    /// Runs it in `dir`.
    pub fn current_dir(mut self, dir: &Path) -> Vezasock {
        self.cmd.current_dir(dir);
        self
    }

    /// Its stdout and stderr go to `run-N.out`/`.err` in `dir` (kept with the dir), not to temp
    /// files.
    pub fn out_dir(mut self, dir: &Path) -> Vezasock {
        self.out_dir = Some(dir.to_path_buf());
        self
    }

    /// The command as set up, for a caller that wires its streams itself (a closed pipe).
    pub fn into_command(self) -> Command {
        self.cmd
    }

    /// Runs it to its exit (bounded).
    pub fn run(self) -> Run {
        let (bound, kill_after) = (self.bound, self.kill_after);
        let running = self.spawn();
        match kill_after {
            Some(after) => running.finish_killed_after(after),
            None => running.finish(bound),
        }
    }

    /// Starts it in the background.
    pub fn spawn(mut self) -> Running {
        let files = OutFiles::new(self.out_dir.as_deref());
        let stdout = std::fs::File::create(&files.out).unwrap_or_else(|e| panic!("{e}"));
        let stderr = std::fs::File::create(&files.err).unwrap_or_else(|e| panic!("{e}"));
        let stdin = match self.stdin {
            Some(_) => Stdio::piped(),
            None => Stdio::null(),
        };
        let mut child = self
            .cmd
            .stdin(stdin)
            .stdout(stdout)
            .stderr(stderr)
            // Its own group, so a run killed for its bound goes with its children (ssh).
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("run {:?}: {e}", self.cmd.get_program()));
        if let (Some(input), Some(mut pipe)) = (self.stdin.take(), child.stdin.take()) {
            // A thread: a child that reads nothing must not block the test before its bound.
            std::thread::spawn(move || {
                let _ = pipe.write_all(&input);
            });
        }
        Running { child, files }
    }
}

/// Where a run's output goes: two files in the caller's dir, or temp files removed on drop.
struct OutFiles {
    out: PathBuf,
    err: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl OutFiles {
    fn new(dir: Option<&Path>) -> OutFiles {
        static N: AtomicUsize = AtomicUsize::new(0);
        let temp = match dir {
            Some(_) => None,
            None => Some(
                tempfile::Builder::new()
                    .prefix("vezasock-run-")
                    .tempdir()
                    .unwrap_or_else(|e| panic!("temp dir: {e}")),
            ),
        };
        let dir = dir.map_or_else(|| temp.as_ref().map(|t| t.path()), Some);
        let dir = dir.unwrap_or_else(|| Path::new("."));
        let n = N.fetch_add(1, Ordering::Relaxed);
        OutFiles {
            out: dir.join(format!("run-{n}.out")),
            err: dir.join(format!("run-{n}.err")),
            _temp: temp,
        }
    }

    fn read(path: &Path) -> String {
        let bytes = vezasock::files::read_bounded(path, OUTPUT_LIMIT).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// A run started in the background ([`Vezasock::spawn`]); its process group is killed on
/// drop if it still runs.
pub struct Running {
    child: Child,
    files: OutFiles,
}

impl Running {
    /// Whether it has exited.
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Output so far (for messages while it runs).
    pub fn output_so_far(&self) -> (String, String) {
        (
            OutFiles::read(&self.files.out),
            OutFiles::read(&self.files.err),
        )
    }

    /// Waits for the exit, at most `bound` (then kills it and fails: a hang is a deadlock).
    pub fn finish(mut self, bound: Duration) -> Run {
        let (status, killed) = self.wait_within(bound);
        let (out, err) = self.output_so_far();
        assert!(
            !killed,
            "vezasock still running after {bound:?}, killed\nstdout:\n{out}\nstderr:\n{err}"
        );
        Run {
            code: status.code(),
            out,
            err,
        }
    }

    /// Waits for the exit, SIGKILLing its group `after` its start if it still runs then.
    pub fn finish_killed_after(mut self, after: Duration) -> Run {
        let (status, _) = self.wait_within(after);
        let (out, err) = self.output_so_far();
        Run {
            code: status.code(),
            out,
            err,
        }
    }

    /// SIGKILLs its process group now and waits for it.
    pub fn kill(mut self) -> Run {
        vezasock::demo::edge::kill_group(&mut self.child);
        self.finish(BOUND)
    }

    /// The exit status, blocking (no polling delay: the benches time runs) while a watchdog
    /// kills the process group once `bound` has passed; true when it did.
    fn wait_within(&mut self, bound: Duration) -> (ExitStatus, bool) {
        let (done, watch) = mpsc::channel::<()>();
        let killed = Arc::new(AtomicBool::new(false));
        let group = self.child.id();
        let flag = Arc::clone(&killed);
        let watchdog = std::thread::spawn(move || {
            if watch.recv_timeout(bound) == Err(mpsc::RecvTimeoutError::Timeout) {
                flag.store(true, Ordering::SeqCst);
                kill_group_id(group);
            }
        });
        let status = self
            .child
            .wait()
            .unwrap_or_else(|e| panic!("wait vezasock: {e}"));
        let _ = done.send(());
        let _ = watchdog.join();
        (status, killed.load(Ordering::SeqCst))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A test that panicked with a run still going must not leave it behind.
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            vezasock::demo::edge::kill_group(&mut self.child);
        }
    }
}

/// SIGKILL to the process group led by `pid` (best effort: it may be gone).
fn kill_group_id(pid: u32) {
    if let Some(group) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
    }
}

/// `vezasock ARGS` on the local edge (its paths in the environment), as `it-test`.
pub fn vezasock(edge: &LocalEdge, args: &[&str]) -> Run {
    Vezasock::edge(edge, args).run()
}

/// [`vezasock`] with `extra` variables in the environment (a test hook).
pub fn vezasock_env(edge: &LocalEdge, args: &[&str], extra: &[(&str, &str)]) -> Run {
    Vezasock::edge(edge, args).envs(extra).run()
}

/// [`vezasock`] with `input` on its stdin.
pub fn vezasock_stdin(edge: &LocalEdge, args: &[&str], input: &[u8]) -> Run {
    Vezasock::edge(edge, args).stdin(input).run()
}

/// `vezasock ARGS --config FILE` as `who`: only the topology file counts.
pub fn vezasock_config(file: &Path, who: &str, args: &[&str]) -> Run {
    Vezasock::config(file, args).who(who).run()
}
