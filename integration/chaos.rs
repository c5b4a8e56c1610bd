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
//! The invariants ([`Chaos::check`]): an exit code of 1–4 changed nothing on any edge; a
//! switch that exits 0 left its edges on the target on every side; `apply` that exits 0 leaves
//! runtime, map file and state file agreeing on its edges; `status` reports drift whenever
//! the sides disagree; history and journal hold only whole lines; no temp file of a dead
//! writer is left after the next successful write; every edge answers each env with the
//! color its runtime map says; no reload happens unless the step made one; no command
//! panics, hangs or exits with a code the README (and docs/reference.md) does not list.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use vezasock::demo::http::get;
use vezasock::demo::load::{Load, LoadReport, LoadSpec};
use vezasock::topology::Color;

use crate::fleet::{history_lines, map_file_color, recorded_color, EdgeSnapshot, Fleet, Reach};
use crate::support::haproxy::{per_version, Haproxy};
use crate::support::run::{Run, Vezasock};

/// Steps per version in the test command (a few minutes for all versions together).
pub const CI_STEPS: usize = 75;

const ENVS: [&str; 2] = ["staging", "prod"];

/// A small deterministic generator (SplitMix64): the same seed gives the same sequence on
/// every machine, with no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    fn color(&mut self) -> Color {
        self.pick(&[Color::Blue, Color::Green])
    }
}

/// One step of the run, drawn from the seed.
#[derive(Debug, Clone)]
enum Step {
    /// `switch ENV COLOR` on one edge.
    Switch {
        edge: usize,
        env: &'static str,
        color: Color,
    },
    /// `switch ENV COLOR --fleet`.
    FleetSwitch { env: &'static str, color: Color },
    /// `rollback ENV` on one edge, or on the fleet.
    Rollback {
        edge: Option<usize>,
        env: &'static str,
    },
    /// `txn prepare` on one edge, then `txn commit` or `txn abort` (or nothing: `apply` or the
    /// next step finds it).
    Txn {
        edge: usize,
        env: &'static str,
        color: Color,
        end: TxnEnd,
    },
    /// `apply` on one edge, or `apply --fleet`.
    Apply { edge: Option<usize> },
    /// `status` on one edge (the drift check runs after every step anyway).
    Status { edge: usize },
    /// A fleet switch killed with SIGKILL `after_ms` after its start, then `apply --fleet`.
    KillCoordinator {
        env: &'static str,
        color: Color,
        after_ms: u64,
    },
    /// A one-edge switch killed with SIGKILL `after_ms` after its start, then `apply`.
    KillSwitch {
        edge: usize,
        env: &'static str,
        color: Color,
        after_ms: u64,
    },
    /// The edge's HAProxy SIGKILLed and started again from its files.
    KillHaproxy { edge: usize },
    /// A master-CLI `reload` of the edge, by hand.
    Reload { edge: usize },
    /// Two one-edge switches of one env to different colors at once.
    Race { edge: usize, env: &'static str },
    /// A fleet switch whose ssh edge cannot be reached (its port closed).
    Unreachable { env: &'static str, color: Color },
    /// A random sequence of edge-agent requests on one local edge, then end of input.
    Agent { edge: usize, ops: Vec<AgentOp> },
    /// `preview staging COLOR`, a request with its token, `preview staging --revoke`, the
    /// same request again.
    Preview { edge: usize, color: Color },
    /// `drain` (with `--wait 2s` or not) or `maint` of one color of an env, then `ready`;
    /// `status --json` read after each.
    Servers {
        edge: usize,
        env: &'static str,
        color: Color,
        verb: &'static str,
        wait: bool,
    },
}

#[derive(Debug, Clone, Copy)]
enum TxnEnd {
    Commit,
    Abort,
    Leave,
}

/// An edge-agent request, as drawn.
#[derive(Debug, Clone, Copy)]
enum AgentOp {
    Lock(Color),
    Prepare,
    CommitDisk,
    CommitRuntime,
    Verify,
    Record,
    Abort,
    Undo,
    Garbage,
}

impl AgentOp {
    fn line(self, env: &str) -> String {
        match self {
            AgentOp::Lock(c) => format!(
                r#"{{"op":"lock","env":"{env}","color":"{c}","sha":"c4a05","wait_healthy_ms":null,"lock_wait_ms":null,"who":"chaos","action":"switch"}}"#
            ),
            AgentOp::Prepare => r#"{"op":"prepare","id":"chaos-agent","ttl_ms":60000}"#.into(),
            AgentOp::CommitDisk => r#"{"op":"commit-disk"}"#.into(),
            AgentOp::CommitRuntime => r#"{"op":"commit-runtime"}"#.into(),
            AgentOp::Verify => r#"{"op":"verify"}"#.into(),
            AgentOp::Record => r#"{"op":"record"}"#.into(),
            AgentOp::Abort => r#"{"op":"abort","why":"chaos"}"#.into(),
            AgentOp::Undo => r#"{"op":"undo","why":"chaos"}"#.into(),
            AgentOp::Garbage => r#"{"op":"nonsense"}"#.into(),
        }
    }
}

impl Step {
    /// Draws the next step. The three edges: 0 and 1 local, 2 over ssh.
    fn draw(rng: &mut Rng) -> Step {
        let edge = rng.below(3);
        let env = rng.pick(&ENVS);
        let color = rng.color();
        match rng.below(100) {
            0..=17 => Step::Switch { edge, env, color },
            18..=31 => Step::FleetSwitch { env, color },
            32..=37 => Step::Rollback {
                edge: (rng.below(2) == 0).then_some(edge),
                env,
            },
            38..=49 => Step::Txn {
                edge,
                env,
                color,
                end: rng.pick(&[TxnEnd::Commit, TxnEnd::Abort, TxnEnd::Leave]),
            },
            50..=57 => Step::Apply {
                edge: (rng.below(2) == 0).then_some(edge),
            },
            58..=61 => Step::Status { edge },
            62..=67 => Step::KillCoordinator {
                env,
                color,
                after_ms: rng.below(60) as u64,
            },
            68..=73 => Step::KillSwitch {
                edge,
                env,
                color,
                after_ms: rng.below(40) as u64,
            },
            74..=77 => Step::KillHaproxy { edge },
            78..=81 => Step::Reload { edge },
            82..=87 => Step::Race { edge, env },
            88..=90 => Step::Unreachable { env, color },
            91..=93 => Step::Preview { edge, color },
            94..=96 => Step::Servers {
                edge,
                env,
                color,
                verb: rng.pick(&["drain", "maint"]),
                wait: rng.below(2) == 0,
            },
            _ => {
                // Mostly lock and prepare first: the phases after them are where orders matter.
                let n = rng.below(6);
                let mut ops = vec![AgentOp::Lock(color)];
                if rng.below(4) > 0 {
                    ops.push(AgentOp::Prepare);
                }
                for _ in 0..n {
                    ops.push(rng.pick(&[
                        AgentOp::Prepare,
                        AgentOp::CommitDisk,
                        AgentOp::CommitRuntime,
                        AgentOp::Verify,
                        AgentOp::Record,
                        AgentOp::Abort,
                        AgentOp::Undo,
                        AgentOp::Garbage,
                    ]));
                }
                Step::Agent {
                    edge: rng.below(2),
                    ops,
                }
            }
        }
    }
}

/// What a step's commands answered.
#[derive(Debug, Default)]
struct Outcome {
    /// Each command run, with its exit code (`None`: killed by the run itself).
    runs: Vec<(String, Option<i32>, String)>,
    /// The step may have reloaded or restarted these edges.
    reloaded: Vec<usize>,
    /// The step killed a vezasock process: its edges may be left for `apply`.
    killed: bool,
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

    /// Runs one step and returns what its commands answered.
    fn apply_step(&mut self, step: &Step) -> Outcome {
        let mut out = Outcome::default();
        let file = self.fleet.file.clone();
        let record = |name: String, run: &Run, out: &mut Outcome| {
            out.runs
                .push((name, run.code, format!("{}{}", run.out, run.err)));
        };
        match step {
            Step::Switch { edge, env, color } => {
                let args = self.edge_args(*edge, &["switch", env, color.as_str()]);
                let run = self.run(&args, None);
                record(args.join(" "), &run, &mut out);
            }
            Step::FleetSwitch { env, color } => {
                let args = self.fleet_args(&file, &["switch", env, color.as_str()]);
                let run = self.run(&args, None);
                record(args.join(" "), &run, &mut out);
            }
            Step::Rollback { edge, env } => {
                let args = match edge {
                    Some(i) => self.edge_args(*i, &["rollback", env]),
                    None => self.fleet_args(&file, &["rollback", env]),
                };
                let run = self.run(&args, None);
                record(args.join(" "), &run, &mut out);
            }
            Step::Txn {
                edge,
                env,
                color,
                end,
            } => {
                self.txn_count += 1;
                let id = format!("chaos-{}", self.txn_count);
                // A transaction left open holds the edge until it expires: short, so the
                // steps after it wait at most that long.
                let args = self.edge_args(
                    *edge,
                    &[
                        "txn",
                        "prepare",
                        env,
                        color.as_str(),
                        "--id",
                        &id,
                        "--no-wait",
                        "--expires",
                        "3s",
                    ],
                );
                let run = self.run(&args, None);
                record(args.join(" "), &run, &mut out);
                if run.code == Some(0) {
                    let verb = match end {
                        TxnEnd::Commit => Some("commit"),
                        TxnEnd::Abort => Some("abort"),
                        TxnEnd::Leave => None,
                    };
                    match verb {
                        Some(verb) => {
                            let args = self.edge_args(*edge, &["txn", verb, "--id", &id]);
                            let run = self.run(&args, None);
                            record(args.join(" "), &run, &mut out);
                        }
                        None => self.open_txn = Some((*edge, id)),
                    }
                }
            }
            Step::Apply { edge } => {
                let args = match edge {
                    Some(i) => self.edge_args(*i, &["apply", "--lock-timeout", "5s"]),
                    None => self.fleet_args(&file, &["apply"]),
                };
                let run = self.run(&args, None);
                record(args.join(" "), &run, &mut out);
                if run.code == Some(0) {
                    self.open_txn = None;
                }
            }
            Step::Status { edge } => {
                let args = self.edge_args(*edge, &["status"]);
                let run = self.run(&args, None);
                record(args.join(" "), &run, &mut out);
            }
            Step::KillCoordinator {
                env,
                color,
                after_ms,
            } => {
                let args = self.fleet_args(&file, &["switch", env, color.as_str()]);
                let run = self.run(&args, Some(Duration::from_millis(*after_ms)));
                out.killed = run.code.is_none();
                record(
                    format!("{} (SIGKILL at {after_ms} ms)", args.join(" ")),
                    &run,
                    &mut out,
                );
                let args = self.fleet_args(&file, &["apply"]);
                let run = self.run(&args, None);
                record(args.join(" "), &run, &mut out);
            }
            Step::KillSwitch {
                edge,
                env,
                color,
                after_ms,
            } => {
                let args = self.edge_args(*edge, &["switch", env, color.as_str()]);
                let run = self.run(&args, Some(Duration::from_millis(*after_ms)));
                out.killed = run.code.is_none();
                record(
                    format!("{} (SIGKILL at {after_ms} ms)", args.join(" ")),
                    &run,
                    &mut out,
                );
                if out.killed {
                    self.dirty[*edge] = true;
                }
            }
            Step::KillHaproxy { edge } => {
                self.fleet.kill_edge(*edge);
                self.fleet.restart_edge(*edge);
                out.reloaded.push(*edge);
            }
            Step::Reload { edge } => {
                let m = &self.fleet.members[*edge];
                let master = m.edge.topology.paths.master_socket.clone();
                let before = self.worker_pids()[*edge];
                let answer = crate::support::haproxy::raw_one_shot(&master, "reload\n")
                    .unwrap_or_else(|e| panic!("reload: {e}"));
                out.reloaded.push(*edge);
                wait_new_worker(&m.edge, before, &answer);
            }
            Step::Race { edge, env } => {
                let a = self.edge_args(*edge, &["switch", env, "green", "--lock-timeout", "30s"]);
                let b = self.edge_args(*edge, &["switch", env, "blue", "--lock-timeout", "30s"]);
                let (ra, rb) = std::thread::scope(|s| {
                    let ha = s.spawn(|| self.run(&a, None));
                    let hb = s.spawn(|| self.run(&b, None));
                    (
                        ha.join().unwrap_or_else(|_| panic!("race thread")),
                        hb.join().unwrap_or_else(|_| panic!("race thread")),
                    )
                });
                record(a.join(" "), &ra, &mut out);
                record(b.join(" "), &rb, &mut out);
            }
            Step::Unreachable { env, color } => {
                let broken = self.fleet.dir.path().join("fleet-unreachable.toml");
                let text = std::fs::read_to_string(&file).unwrap_or_default();
                std::fs::write(&broken, closed_ssh_port(&text)).unwrap_or_else(|e| panic!("{e}"));
                let args = self.fleet_args(&broken, &["switch", env, color.as_str()]);
                let run = self.run(&args, None);
                record(args.join(" "), &run, &mut out);
            }
            Step::Preview { edge, color } => self.preview(*edge, *color, &mut out),
            Step::Servers {
                edge,
                env,
                color,
                verb,
                wait,
            } => {
                let mut first = vec![*verb, *env, color.as_str()];
                if *wait && *verb == "drain" {
                    first.extend(["--wait", "2s"]);
                }
                for (args, admin) in [
                    (first, *verb),
                    (vec!["ready", env, color.as_str()], "ready"),
                ] {
                    let args = self.edge_args(*edge, &args);
                    let run = self.run(&args, None);
                    record(args.join(" "), &run, &mut out);
                    if run.code == Some(0) {
                        self.expect_admin(*edge, env, *color, admin);
                    }
                }
            }
            Step::Agent { edge, ops } => {
                let env = "staging";
                let input: String = ops.iter().map(|o| o.line(env) + "\n").collect();
                let args = self.edge_args(*edge, &["edge-agent"]);
                let run = self.run_with_input(&args, &input);
                record(format!("{} <<< {ops:?}", args.join(" ")), &run, &mut out);
            }
        }
        out
    }

    /// The preview step: the token reaches `color`, the revoked token reaches the live one.
    fn preview(&self, edge: usize, color: Color, out: &mut Outcome) {
        let args = self.edge_args(edge, &["preview", "staging", color.as_str(), "--json"]);
        let run = self.run(&args, None);
        out.runs
            .push((args.join(" "), run.code, format!("{}{}", run.out, run.err)));
        if run.code != Some(0) {
            return;
        }
        let json: serde_json::Value = serde_json::from_str(&run.out)
            .unwrap_or_else(|e| panic!("preview --json: {e}: {}", run.out));
        let token = json["token"].as_str().unwrap_or_default().to_string();
        let header = json["header"].as_str().unwrap_or_default().to_string();
        let addr = self.fleet.members[edge].edge.http;
        let (status, body) = crate::preview::get_with(addr, "/api/x", &[(&header, &token)]);
        let want = format!("staging api {}", color.as_str());
        if status != 200 || body != want {
            self.fail_now(&format!(
                "{}: a request with preview token for {color} got {status} {body:?}",
                self.fleet.members[edge].name
            ));
        }
        let args = self.edge_args(edge, &["preview", "staging", "--revoke"]);
        let run = self.run(&args, None);
        out.runs
            .push((args.join(" "), run.code, format!("{}{}", run.out, run.err)));
        if run.code == Some(0) {
            let live = self.live(edge, "staging");
            let (status, body) = crate::preview::get_with(addr, "/api/x", &[(&header, &token)]);
            let want = format!("staging api {}", live.map_or("?", |c| c.as_str()));
            if status != 200 || body != want {
                self.fail_now(&format!(
                    "{}: a revoked preview token got {status} {body:?}, the live color is {live:?}",
                    self.fleet.members[edge].name
                ));
            }
        }
    }

    /// `status --json` on edge `i` shows every server of `env`'s `color` as `admin`.
    fn expect_admin(&self, i: usize, env: &str, color: Color, admin: &str) {
        let args = self.edge_args(i, &["status", env, "--json"]);
        let run = self.run(&args, None);
        let json: serde_json::Value = serde_json::from_str(&run.out)
            .unwrap_or_else(|e| panic!("status --json: {e}: {}{}", run.out, run.err));
        let mut seen = Vec::new();
        for e in json["envs"].as_array().into_iter().flatten() {
            for c in e["components"].as_array().into_iter().flatten() {
                for b in c["backends"].as_array().into_iter().flatten() {
                    if b["color"] != color.as_str() {
                        continue;
                    }
                    for s in b["servers"].as_array().into_iter().flatten() {
                        seen.push(s["admin"].as_str().unwrap_or("?").to_string());
                    }
                }
            }
        }
        if seen.is_empty() || seen.iter().any(|a| a != admin) {
            self.fail_now(&format!(
                "{}: after `{admin}` of {env} {color}, status shows the servers as {seen:?}",
                self.fleet.members[i].name
            ));
        }
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

    /// Every invariant, after step `n`. `before` is every edge's snapshot before it.
    fn check(
        &mut self,
        n: usize,
        step: &Step,
        before: &[EdgeSnapshot],
        pids: &[u32],
        out: &Outcome,
    ) {
        for (what, code, said) in &out.runs {
            if said.contains("panicked") {
                self.fail(n, &format!("`{what}` panicked:\n{said}"));
            }
            if let Some(c) = code {
                if !(0..=7).contains(c) {
                    self.fail(
                        n,
                        &format!("`{what}` exited {c}, not a README exit code:\n{said}"),
                    );
                }
                if *c == 2 {
                    self.fail(
                        n,
                        &format!("`{what}` called valid input bad (exit 2):\n{said}"),
                    );
                }
            }
        }
        // 0. Every edge keeps a map file that parses: HAProxy cannot restart without it.
        for m in &self.fleet.members {
            let path = m.edge.topology.paths.active_color_map();
            let text = std::fs::read_to_string(&path);
            let parsed = text
                .as_ref()
                .map_err(|e| e.to_string())
                .and_then(|t| vezasock::render::maps::parse_colors(t).map_err(|e| e.to_string()));
            if let Err(why) = parsed {
                self.fail(n, &format!("{}: {}: {why}", m.name, path.display()));
            }
        }
        let after: Vec<EdgeSnapshot> = self.snapshot();
        // 1. An exit of 1, 3 or 4 as the step's only command changed nothing anywhere.
        if let [(what, Some(c), said)] = out.runs.as_slice() {
            if matches!(c, 1 | 3 | 4) && !out.killed && !same_edges(before, &after) {
                self.fail(
                    n,
                    &format!(
                        "`{what}` exited {c} (nothing changed) but the edges changed:\n{said}\n\
                         before: {before:#?}\nafter: {after:#?}"
                    ),
                );
            }
        }
        // 2. A switch that exits 0 left its edges on the target.
        let target = match step {
            Step::Switch { edge, env, color } => Some((vec![*edge], *env, *color)),
            Step::FleetSwitch { env, color } => Some(((0..3).collect(), *env, *color)),
            _ => None,
        };
        if let (Some((edges, env, color)), Some((what, Some(0), said))) = (target, out.runs.first())
        {
            for i in edges {
                let sides = self.sides(i, env);
                if sides != [Some(color); 3] {
                    self.fail(
                        n,
                        &format!(
                            "`{what}` exited 0 but {} {env} is runtime/map/state {sides:?}:\n{said}",
                            self.fleet.members[i].name
                        ),
                    );
                }
            }
        }
        // 3. `apply` that exits 0 leaves every side agreeing on its edges.
        let applied: Vec<usize> = match (step, out.runs.last()) {
            (Step::Apply { edge: Some(i) }, Some((_, Some(0), _))) => vec![*i],
            (Step::Apply { edge: None }, Some((_, Some(0), _)))
            | (Step::KillCoordinator { .. }, Some((_, Some(0), _))) => (0..3).collect(),
            _ => Vec::new(),
        };
        for i in applied {
            self.dirty[i] = false;
            for env in ENVS {
                let sides = self.sides(i, env);
                if sides.iter().any(|s| *s != sides[0]) {
                    let said = out.runs.last().map(|r| r.2.clone()).unwrap_or_default();
                    self.fail(
                        n,
                        &format!(
                            "apply exited 0 but {} {env} is runtime/map/state {sides:?}:\n{said}",
                            self.fleet.members[i].name
                        ),
                    );
                }
            }
        }
        // 4. `status` says drift whenever the sides disagree (exit 6), on every edge.
        for i in 0..3 {
            let disagree = ENVS.iter().any(|env| {
                let s = self.sides(i, env);
                s.iter().any(|c| *c != s[0])
            });
            if disagree {
                let args = self.edge_args(i, &["status"]);
                let run = self.run(&args, None);
                if run.code != Some(6) {
                    self.fail(
                        n,
                        &format!(
                            "{}'s sides disagree ({:?} / {:?}) but status exited {:?}:\n{}{}",
                            self.fleet.members[i].name,
                            self.sides(i, "staging"),
                            self.sides(i, "prod"),
                            run.code,
                            run.out,
                            run.err
                        ),
                    );
                }
            }
        }
        // 5. Whole lines in the history and the journal; no dead writer's temp file after a
        // step whose last command wrote and exited 0.
        for i in 0..3 {
            if let Err(why) = whole_lines(&self.fleet.members[i].edge) {
                self.fail(n, &format!("{}: {why}", self.fleet.members[i].name));
            }
        }
        // 6. Every edge answers each env with its runtime color.
        for i in 0..3 {
            for env in ENVS {
                let m = &self.fleet.members[i];
                let Some(live) = self.live(i, env) else {
                    continue;
                };
                let host = if env == "prod" {
                    "veza.fr"
                } else {
                    "staging.veza.fr"
                };
                let want = format!("{env} api {}", live.as_str());
                let answer = get(m.edge.http, host, "/api/x", Duration::from_secs(5));
                if !answer
                    .as_ref()
                    .is_ok_and(|a| a.status == 200 && a.body == want)
                {
                    self.fail(
                        n,
                        &format!(
                            "{} answered {env} with {answer:?}, its runtime says {want:?}",
                            m.name
                        ),
                    );
                }
            }
        }
        // 7. No reload unless the step made one.
        let now = self.worker_pids();
        for i in 0..3 {
            if now[i] != pids[i] && !out.reloaded.contains(&i) {
                self.fail(
                    n,
                    &format!(
                        "{}'s worker changed ({} → {}): a reload the step did not ask for",
                        self.fleet.members[i].name, pids[i], now[i]
                    ),
                );
            }
        }
    }

    /// True when runtime, map file and state file agree on every env of edge `i`.
    fn agrees(&self, i: usize) -> bool {
        ENVS.iter().all(|env| {
            let s = self.sides(i, env);
            s.iter().all(|c| *c == s[0])
        })
    }

    /// Invariant 8: an edge whose sides agreed before a step still agrees after it, unless the step
    /// killed a vezasock process or a command said it could not finish (exit 5, naming what
    /// is live and what is recorded): every other answer promises a settled edge.
    fn check_still_agrees(&self, n: usize, agreed: &[bool], out: &Outcome) {
        let unfinished = out.runs.iter().any(|r| r.1 == Some(5));
        if out.killed || unfinished {
            return;
        }
        for (i, before) in agreed.iter().enumerate() {
            if *before && !self.agrees(i) {
                self.fail(
                    n,
                    &format!(
                        "{} agreed before the step and not after (staging {:?}, prod {:?} as \
                         runtime/map/state); the step said: {:?}",
                        self.fleet.members[i].name,
                        self.sides(i, "staging"),
                        self.sides(i, "prod"),
                        out.runs
                    ),
                );
            }
        }
    }

    /// A bounded load through every edge for one step: one keep-alive and one new-connection
    /// client per edge over both envs' api, at most 120 s.
    fn load(&self) -> Vec<Load> {
        self.fleet
            .members
            .iter()
            .map(|m| {
                Load::start(&LoadSpec {
                    keepalive_clients: 1,
                    new_connection_clients: 1,
                    max_duration: Duration::from_secs(120),
                    max_requests_per_client: 100_000,
                    ..crate::support::load::spec(
                        m.edge.http,
                        &[("staging.veza.fr", "/api/x"), ("veza.fr", "/api/x")],
                    )
                })
            })
            .collect()
    }

    /// Invariant 9: no request failed on any edge during a step that promises none.
    fn check_no_failed_request(&self, n: usize, reports: &[LoadReport]) {
        for (m, r) in self.fleet.members.iter().zip(reports) {
            if r.failed() > 0 {
                self.fail(
                    n,
                    &format!(
                        "{}: {} of {} requests failed during the step: {:?}",
                        m.name,
                        r.failed(),
                        r.sent(),
                        r.failures
                    ),
                );
            }
        }
    }

    /// Edge `i`'s color for `env` in its running HAProxy. A broken invariant when the admin
    /// socket does not answer within 5 s (a worker that just started is given that long).
    fn live(&self, i: usize, env: &str) -> Option<Color> {
        let m = &self.fleet.members[i];
        let map = m.edge.topology.paths.active_color_map();
        let reply = self.ask(i, &format!("show map {}\n", map.display()));
        // `0x55d0c8a0e2f0 staging green`: the first entry of a key is the one HAProxy matches.
        reply.lines().find_map(|l| {
            let mut words = l.split_whitespace().skip(1);
            (words.next() == Some(env))
                .then(|| words.next().and_then(Color::parse))
                .flatten()
        })
    }

    /// Every edge's worker pid (`show info`).
    fn worker_pids(&self) -> Vec<u32> {
        (0..self.fleet.members.len())
            .map(|i| {
                let info = self.ask(i, "show info\n");
                info.lines()
                    .find_map(|l| l.strip_prefix("Pid: "))
                    .and_then(|p| p.trim().parse().ok())
                    .unwrap_or_else(|| self.fail_now(&format!("no Pid in show info: {info:?}")))
            })
            .collect()
    }

    /// One command on edge `i`'s admin socket, tried again for up to 5 s while the socket
    /// refuses or resets (a worker starting after a restart or a reload).
    fn ask(&self, i: usize, line: &str) -> String {
        let m = &self.fleet.members[i];
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match crate::support::haproxy::raw_one_shot(&m.edge.topology.paths.admin_socket, line) {
                Ok(reply) => return reply,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => self.fail_now(&format!(
                    "{}: the admin socket does not answer `{}`: {e}",
                    m.name,
                    line.trim()
                )),
            }
        }
    }

    /// Every edge's live colors, map file and state files ([`EdgeSnapshot`]), read with
    /// [`Self::live`].
    fn snapshot(&self) -> Vec<EdgeSnapshot> {
        (0..self.fleet.members.len())
            .map(|i| {
                let e = &self.fleet.members[i].edge;
                let p = &e.topology.paths;
                let mut state_files = BTreeMap::new();
                for env in ENVS {
                    for name in [
                        format!("active-color-{env}"),
                        format!("active-color-{env}.history"),
                    ] {
                        let text = std::fs::read_to_string(p.state_dir.join(&name)).ok();
                        state_files.insert(name, text);
                    }
                }
                EdgeSnapshot {
                    runtime: ENVS.iter().map(|env| self.live(i, env)).collect(),
                    map_file: std::fs::read_to_string(p.active_color_map()).unwrap_or_default(),
                    state_files,
                    pending_map: crate::fleet::pending_map(e).exists(),
                    transaction_file: crate::fleet::transaction_file(e).exists(),
                }
            })
            .collect()
    }

    /// The env's color on edge `i` as runtime, map file and state file see it.
    fn sides(&self, i: usize, env: &str) -> [Option<Color>; 3] {
        let e = &self.fleet.members[i].edge;
        [
            self.live(i, env),
            map_file_color(e, env),
            Some(recorded_color(e, env)),
        ]
    }
}

/// Whether every edge's runtime colors, map file and state files are as before. An open
/// transaction's own files are left out: a lock taker aborts an expired one (its pending and
/// transaction files go, nothing live changes) before refusing for another reason.
fn same_edges(before: &[EdgeSnapshot], after: &[EdgeSnapshot]) -> bool {
    before.len() == after.len()
        && before.iter().zip(after).all(|(b, a)| {
            b.runtime == a.runtime && b.map_file == a.map_file && b.state_files == a.state_files
        })
}

/// Waits (at most 30 s) until the edge runs a new worker after a reload.
fn wait_new_worker(edge: &vezasock::demo::LocalEdge, before: u32, answer: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let info =
            crate::support::haproxy::raw_one_shot(&edge.topology.paths.admin_socket, "show info\n");
        let pid = info.ok().and_then(|i| {
            i.lines()
                .find_map(|l| l.strip_prefix("Pid: "))
                .and_then(|p| p.trim().parse::<u32>().ok())
        });
        if pid.is_some_and(|p| p != before) {
            crate::switch::wait_healthy(edge, "after a reload by hand");
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no new worker 30 s after `reload` (the master said {answer:?})");
}

/// History lines are `<color> <sha> <time> <who>`; journal lines are JSON objects; both end
/// with a newline.
fn whole_lines(edge: &vezasock::demo::LocalEdge) -> Result<(), String> {
    for env in ENVS {
        for line in history_lines(edge, env) {
            let fields: Vec<&str> = line.split(' ').collect();
            if fields.len() != 4 || Color::parse(fields[0]).is_none() {
                return Err(format!("history {env}: not a whole line: {line:?}"));
            }
        }
    }
    let journal = edge.topology.paths.state_dir.join("journal.jsonl");
    let text = std::fs::read_to_string(&journal).unwrap_or_default();
    if !text.is_empty() && !text.ends_with('\n') {
        return Err(format!("journal ends with a torn line: {text:?}"));
    }
    for line in text.lines() {
        if serde_json::from_str::<serde_json::Value>(line).map_or(true, |v| !v.is_object()) {
            return Err(format!("journal line is not a JSON object: {line:?}"));
        }
    }
    Ok(())
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
    };
    let only = kinds();
    let started = Instant::now();
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    for n in 0..steps {
        let step = draw_allowed(&mut chaos.rng, &only);
        let before = chaos.snapshot();
        let pids = chaos.worker_pids();
        let agreed: Vec<bool> = (0..3).map(|i| chaos.agrees(i)).collect();
        let load = promises_no_failed_request(&step).then(|| chaos.load());
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
        chaos.log.push(format!(
            "#{n} {step:?} → exits {codes:?} ({} ms)",
            t.elapsed().as_millis()
        ));
        *counts.entry(kind(&step)).or_default() += 1;
        chaos.check(n, &step, &before, &pids, &out);
        chaos.check_still_agrees(n, &agreed, &out);
        if let Some(reports) = seen {
            chaos.check_no_failed_request(n, &reports);
        }
    }
    eprintln!(
        "chaos {}: seed {seed}: {steps} steps, every invariant held, {:.1} s; steps: {counts:?}",
        v.label,
        started.elapsed().as_secs_f64()
    );
}

/// Steps during which no request may fail: every flip, abort, repair and read. Not those that
/// kill or reload HAProxy, put a color in maint or drain, or drive the agent by hand.
fn promises_no_failed_request(step: &Step) -> bool {
    !matches!(
        step,
        Step::KillHaproxy { .. } | Step::Reload { .. } | Step::Servers { .. } | Step::Agent { .. }
    )
}

/// `VEZASOCK_CHAOS_KINDS=switch,edge-agent`: only those kinds of steps (all when unset), to
/// aim a long run at one surface.
fn kinds() -> Vec<String> {
    std::env::var("VEZASOCK_CHAOS_KINDS")
        .map(|s| s.split(',').map(|k| k.trim().to_string()).collect())
        .unwrap_or_default()
}

/// The next step whose kind is in `only` (any, when empty).
fn draw_allowed(rng: &mut Rng, only: &[String]) -> Step {
    loop {
        let step = Step::draw(rng);
        if only.is_empty() || only.iter().any(|k| k == kind(&step)) {
            return step;
        }
    }
}

fn kind(step: &Step) -> &'static str {
    match step {
        Step::Switch { .. } => "switch",
        Step::FleetSwitch { .. } => "fleet-switch",
        Step::Rollback { .. } => "rollback",
        Step::Txn { .. } => "txn",
        Step::Apply { .. } => "apply",
        Step::Status { .. } => "status",
        Step::KillCoordinator { .. } => "kill-coordinator",
        Step::KillSwitch { .. } => "kill-switch",
        Step::KillHaproxy { .. } => "kill-haproxy",
        Step::Reload { .. } => "reload",
        Step::Race { .. } => "race",
        Step::Unreachable { .. } => "unreachable-edge",
        Step::Agent { .. } => "edge-agent",
        Step::Preview { .. } => "preview",
        Step::Servers { .. } => "servers",
    }
}

per_version!(a_seeded_chaos_run_keeps_every_invariant, |v: &Haproxy| {
    chaos_run(v, seed(), steps());
});

/// The fleet file `text` with its ssh edge's port (`"-p", "<port>"`) replaced by a closed one.
fn closed_ssh_port(text: &str) -> String {
    let marker = "\"-p\", \"";
    let Some(at) = text.find(marker) else {
        panic!("the fleet file has no ssh port: {text}");
    };
    let start = at + marker.len();
    let end = start + text[start..].find('"').unwrap_or(0);
    format!(
        "{}{}{}",
        &text[..start],
        crate::support::ports::free_port(),
        &text[end..]
    )
}
