//! The seeded chaos run (issue 20): a real fleet of three edges of one HAProxy version (the
//! third reached over the project's sshd), driven by a random sequence of operations and
//! faults drawn from one seed, with every invariant checked after every step. FoundationDB's
//! simulator and Jepsen find the combinations nobody writes a test for by generating them;
//! vezasock's state is small and its promises precise, which makes that cheap here.
//!
//! - The seed is printed first. `VEZASOCK_CHAOS_SEED=<n>` replays the same sequence of
//!   operations and fault points; `VEZASOCK_CHAOS_STEPS=<n>` sets the length (the test
//!   command runs [`CI_STEPS`] per version; `scripts/chaos.sh` runs long ones).
//! - A broken invariant fails with the seed, the step number, the last steps and the
//!   invariant, and keeps the lab's files (their path is printed).
//!
//! Steps (`steps.rs`) and their faults (`faults.rs`: a stats socket cut or hung mid-reply, a
//! full state dir), bake and canary (`delivery.rs`), a pool change `apply` carries out
//! (`pool.rs`), `cert update` on a TLS edge beside the fleet (`cert.rs`).
//!
//! The invariants ([`Chaos::check`], `invariants.rs`): an exit code of 1–4 changed nothing on
//! any edge; a switch that exits 0 left its edges on the target on every side (a bake, a
//! canary, a faulted switch too); exit 7 only after a put-back; `apply` that exits 0 leaves
//! runtime, map file and state file agreeing on its edges; `status` reports drift whenever
//! the sides disagree; history and journal hold only whole lines; no temp file of a dead
//! writer is left after the next successful write; every edge answers each env with the
//! color its runtime map says; no reload happens unless the step made one; no command
//! panics, hangs or exits with a code the README (and docs/reference.md) does not list.

mod cert;
mod delivery;
mod faults;
mod fleet_faults;
mod invariants;
mod pool;
mod stall;
mod steps;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use vezasock::demo::load::Load;

use crate::fleet::{Fleet, Reach};
use crate::support::haproxy::{per_version, Haproxy};
use crate::support::run::{Run, Vezasock};

use steps::{draw_allowed, kind, promises_no_failed_request, Rng};

/// Steps per version in the test command (a few minutes for all versions together).
pub const CI_STEPS: usize = 75;

const ENVS: [&str; 2] = ["staging", "prod"];
/// What a step's commands answered.
#[derive(Debug, Default)]
struct Outcome {
    /// Each command run, with its exit code (`None`: killed by the run itself).
    runs: Vec<(String, Option<i32>, String)>,
    /// The step may have reloaded or restarted these edges.
    reloaded: Vec<usize>,
    /// The step killed a vezasock process: its edges may be left for `apply`.
    killed: bool,
    /// The step made requests fail by design (a color answering 500, a reload): the load
    /// it ran under is not checked.
    unpromised: bool,
}

struct Chaos {
    fleet: Fleet,
    rng: Rng,
    seed: u64,
    /// The last steps, for the failure message.
    log: Vec<String>,
    /// A transaction left prepared on an edge (`txn prepare` without its end): edge, id.
    open_txn: Option<(usize, String)>,
    /// Needs an `apply` before the "sides agree" checks mean anything.
    dirty: Vec<bool>,
    txn_count: usize,
    /// The servers the pool steps added (kept running while the lab runs) and their count.
    pool_backends: Vec<vezasock::demo::backend::Backend>,
    pool_count: u32,
    /// The lab's TLS edge (started at the first cert step), the last serial installed, and
    /// the version it runs.
    tls: Option<cert::TlsLab>,
    cert_serial: u64,
    haproxy: Haproxy,
    /// Tells a stall of the machine from an edge that stops answering (`stall.rs`).
    watchdog: stall::Watchdog,
}

impl Chaos {
    fn fail(&self, step: usize, invariant: &str) -> ! {
        let dir = self.keep_files();
        let last: Vec<&String> = self.log.iter().rev().take(8).collect();
        panic!(
            "chaos {}: seed {} step {step}: {invariant}\nreplay: VEZASOCK_CHAOS_SEED={} \
             VEZASOCK_CHAOS_STEPS={}\nlab files kept in {dir}\nlast steps (newest first):\n  {}",
            self.fleet.label,
            self.seed,
            self.seed,
            step + 1,
            last.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n  ")
        );
    }

    /// Copies the lab's files (every edge's maps and state dirs, the fleet file, the
    /// coordinator's state) out of its temp dir, which the failing test removes: the copy
    /// stays for a look. Returns where.
    fn keep_files(&self) -> String {
        let to = std::env::temp_dir().join(format!(
            "vezasock-chaos-{}-{}-{}",
            self.fleet.label,
            self.seed,
            std::process::id()
        ));
        let copied = Command::new("cp")
            .arg("-r")
            .arg(self.fleet.dir.path())
            .arg(&to)
            .status();
        match copied {
            Ok(s) if s.success() => to.display().to_string(),
            _ => format!("(not kept: copying to {} failed)", to.display()),
        }
    }

    /// `vezasock ARGS` with the given topology or fleet flag, bounded at 120 s; `kill_after`
    /// SIGKILLs its process group that long after the start.
    fn run(&self, args: &[String], kill_after: Option<Duration>) -> Run {
        let run = Vezasock::new(args).who("chaos");
        match kill_after {
            Some(after) => run.kill_after(after).run(),
            None => run.run(),
        }
    }

    fn edge_args(&self, edge: usize, args: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        v.push("--config".into());
        v.push(self.fleet.members[edge].config.display().to_string());
        v
    }

    fn fleet_args(&self, file: &Path, args: &[&str]) -> Vec<String> {
        let (command, rest) = args.split_first().unwrap_or((&"status", &[]));
        let mut v = vec![
            command.to_string(),
            "--fleet".into(),
            file.display().to_string(),
        ];
        v.extend(rest.iter().map(|s| s.to_string()));
        v
    }

    /// A broken invariant found in the middle of a step (the step number is the last logged
    /// one plus one).
    fn fail_now(&self, invariant: &str) -> ! {
        self.fail(self.log.len(), invariant)
    }

    fn run_with_input(&self, args: &[String], input: &str) -> Run {
        Vezasock::new(args)
            .who("chaos")
            .stdin(input.as_bytes())
            .run()
    }
}

/// The seed: `VEZASOCK_CHAOS_SEED`, else from the clock (printed either way).
fn seed() -> u64 {
    std::env::var("VEZASOCK_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
}

fn steps() -> usize {
    std::env::var("VEZASOCK_CHAOS_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(CI_STEPS)
}

/// Runs `steps` seeded steps on a fresh fleet of version `v`.
pub fn chaos_run(v: &Haproxy, seed: u64, steps: usize) {
    eprintln!("chaos {}: seed {seed}, {steps} steps", v.label);
    let Some(fleet) = Fleet::start(v, &[Reach::Local, Reach::Local, Reach::Ssh]) else {
        return;
    };
    let mut chaos = Chaos {
        fleet,
        rng: Rng(seed),
        seed,
        log: Vec::new(),
        open_txn: None,
        dirty: vec![false; 3],
        txn_count: 0,
        pool_backends: Vec::new(),
        pool_count: 100,
        tls: None,
        cert_serial: 0x1000,
        haproxy: v.clone(),
        watchdog: stall::Watchdog::start(),
    };
    let only = kinds();
    // `VEZASOCK_CHAOS_VERBOSE=1`: every step and its exits as it ends (a long run's progress).
    let verbose = std::env::var_os("VEZASOCK_CHAOS_VERBOSE").is_some();
    let started = Instant::now();
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    for n in 0..steps {
        let step = draw_allowed(&mut chaos.rng, &only);
        let before = chaos.snapshot();
        let pids = chaos.worker_pids();
        let agreed: Vec<bool> = (0..3).map(|i| chaos.agrees(i)).collect();
        let load = promises_no_failed_request(&step).then(|| chaos.load());
        chaos.watchdog.restart();
        let t = Instant::now();
        // A lab helper that panics mid-step (an edge that does not come back after a restart)
        // is reported like a broken invariant: with the seed and the last steps.
        let ran =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| chaos.apply_step(&step)));
        let out = match ran {
            Ok(out) => out,
            Err(panic) => {
                let why = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                chaos.log.push(format!("#{n} {step:?} → the lab failed"));
                chaos.fail(n, &format!("the step could not run: {why}"));
            }
        };
        let seen = load.map(|l| l.into_iter().map(Load::stop).collect::<Vec<_>>());
        let codes: Vec<Option<i32>> = out.runs.iter().map(|r| r.1).collect();
        let stalled = match chaos.watchdog.stalled() {
            Some(gap) => format!(", the machine stalled {:.1} s", gap.as_secs_f64()),
            None => String::new(),
        };
        chaos.log.push(format!(
            "#{n} {step:?} → exits {codes:?} ({} ms{stalled})",
            t.elapsed().as_millis()
        ));
        if verbose {
            eprintln!("{}", chaos.log.last().map_or("", |l| l.as_str()));
        }
        *counts.entry(kind(&step)).or_default() += 1;
        chaos.check(n, &step, &before, &pids, &out);
        chaos.check_still_agrees(n, &agreed, &out);
        if let (Some(reports), false) = (seen, out.unpromised) {
            chaos.check_no_failed_request(n, &reports);
        }
    }
    eprintln!(
        "chaos {}: seed {seed}: {steps} steps, every invariant held, {:.1} s; steps: {counts:?}",
        v.label,
        started.elapsed().as_secs_f64()
    );
}

/// `VEZASOCK_CHAOS_KINDS=switch,edge-agent`: only those kinds of steps (all when unset), to
/// aim a long run at one surface.
fn kinds() -> Vec<String> {
    std::env::var("VEZASOCK_CHAOS_KINDS")
        .map(|s| s.split(',').map(|k| k.trim().to_string()).collect())
        .unwrap_or_default()
}

per_version!(a_seeded_chaos_run_keeps_every_invariant, |v: &Haproxy| {
    chaos_run(v, seed(), steps());
});
