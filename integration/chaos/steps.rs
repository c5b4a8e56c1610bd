//! The steps of the chaos run: what each kind draws from the seed and what it runs.

use std::time::{Duration, Instant};

use vezasock::topology::Color;

use super::cert::CertFile;
use super::delivery::CanaryEnd;
use super::faults::FaultOp;
use super::fleet_faults::EdgeFault;
use super::{Chaos, Outcome, ENVS};
use crate::support::faultproxy::{Fault, FaultAt};
use crate::support::run::Run;

/// A small deterministic generator (SplitMix64): the same seed gives the same sequence on
/// every machine, with no dependency.
pub(super) struct Rng(pub(super) u64);

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
pub(super) enum Step {
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
    /// A switch (or rollback) on one edge through a fault proxy in front of its admin socket
    /// that cuts or hangs one connection's reply after some bytes.
    SocketFault {
        edge: usize,
        env: &'static str,
        color: Color,
        op: FaultOp,
        at: FaultAt,
    },
    /// A switch, rollback or server change on one edge whose state dir is full (`free_pages`
    /// pages left).
    FullStateDir {
        edge: usize,
        env: &'static str,
        color: Color,
        op: FaultOp,
        free_pages: u64,
    },
    /// `switch ENV COLOR --bake 2s`; with `fail`, COLOR's api answers 500 (it flips back).
    Bake {
        edge: usize,
        env: &'static str,
        color: Color,
        fail: bool,
    },
    /// A short canary ended by `--abort` or `--promote` from another process, or left to run.
    Canary {
        edge: usize,
        env: &'static str,
        color: Color,
        end: CanaryEnd,
        after_ms: u64,
    },
    /// prod web blue's pool grows or shrinks by one server, carried out by `apply`.
    Pool { edge: usize, grow: bool },
    /// A switch, rollback or server change with `--fleet` where edge `edge` (0 or 1, local;
    /// 2, its edge-agent over ssh) has its admin socket behind the fault proxy or its state
    /// dir full.
    FleetFault {
        edge: usize,
        env: &'static str,
        color: Color,
        op: FaultOp,
        fault: EdgeFault,
    },
    /// A pool step whose `apply` reaches the master socket through the fault proxy (a cut or
    /// hung reply to the reload), then `apply` again without it.
    MasterFault { edge: usize, at: FaultAt },
    /// `cert update` on the lab's TLS edge, SIGKILLed `kill_ms` after its start when given.
    Cert {
        which: CertFile,
        kill_ms: Option<u64>,
    },
}

#[derive(Debug, Clone, Copy)]
pub(super) enum TxnEnd {
    Commit,
    Abort,
    Leave,
}

/// An edge-agent request, as drawn.
#[derive(Debug, Clone, Copy)]
pub(super) enum AgentOp {
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
        match rng.below(118) {
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
            100..=101 => Step::SocketFault {
                edge,
                env,
                color,
                op: FaultOp::from_draw(rng.below(8)),
                // vezasock holds one session per command (connection 0); its replies for a
                // flip run to a few KB, so a fault lands anywhere in it or, past its end, not
                // at all.
                at: fault_at(rng, 4000),
            },
            102 => Step::FullStateDir {
                edge,
                env,
                color,
                op: FaultOp::from_draw(rng.below(8)),
                free_pages: rng.below(6) as u64,
            },
            103..=104 => Step::Bake {
                edge,
                env,
                color,
                fail: rng.below(2) == 0,
            },
            105..=106 => Step::Canary {
                edge,
                env,
                color,
                end: rng.pick(&[CanaryEnd::Abort, CanaryEnd::Promote, CanaryEnd::Run]),
                after_ms: rng.below(2500) as u64,
            },
            107..=109 => Step::Pool {
                edge,
                grow: rng.below(2) == 0,
            },
            97..=99 => {
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
            110..=113 => Step::Cert {
                which: rng.pick(&[CertFile::Default, CertFile::Chaos]),
                kill_ms: (rng.below(3) == 0).then(|| rng.below(80) as u64),
            },
            114..=115 => Step::FleetFault {
                edge: rng.below(3),
                env,
                color,
                op: FaultOp::from_draw(rng.below(8)),
                fault: if rng.below(4) == 0 {
                    EdgeFault::FullStateDir(rng.below(6) as u64)
                } else {
                    EdgeFault::Socket(fault_at(rng, 4000))
                },
            },
            _ => {
                // An apply's reload asks the master `show proc`, `reload`, then `show proc`
                // until the new worker shows: any of its first four connections; the answers
                // run to a few hundred bytes.
                let mut at = fault_at(rng, 600);
                at.connection = rng.below(4);
                Step::MasterFault { edge, at }
            }
        }
    }
}

impl Chaos {
    /// Runs one step and returns what its commands answered.
    pub(super) fn apply_step(&mut self, step: &Step) -> Outcome {
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
            Step::SocketFault {
                edge,
                env,
                color,
                op,
                at,
            } => {
                let admin = self.admin_states(*edge);
                self.socket_fault(*edge, &op.words(env, *color), *at, &mut out);
                self.end_servers_fault(*edge, env, *color, *op, &admin, &mut out);
            }
            Step::FullStateDir {
                edge,
                env,
                color,
                op,
                free_pages,
            } => {
                let admin = self.admin_states(*edge);
                self.full_state_dir(*edge, &op.words(env, *color), *free_pages, &mut out);
                self.end_servers_fault(*edge, env, *color, *op, &admin, &mut out);
            }
            Step::Bake {
                edge,
                env,
                color,
                fail,
            } => self.bake(*edge, env, *color, *fail, &mut out),
            Step::Canary {
                edge,
                env,
                color,
                end,
                after_ms,
            } => self.canary(*edge, env, *color, *end, *after_ms, &mut out),
            Step::Pool { edge, grow } => self.pool(*edge, *grow, None, &mut out),
            Step::FleetFault {
                edge,
                env,
                color,
                op,
                fault,
            } => {
                let admin: Vec<_> = (0..3).map(|i| self.admin_states(i)).collect();
                self.fleet_fault(*edge, &op.words(env, *color), *fault, &mut out);
                self.end_fleet_servers_fault((env, *color), *op, &admin, &mut out);
            }
            Step::MasterFault { edge, at } => {
                // The reload path: 1 → 2 servers or 2 → 1 (3 → 2 is the runtime path, which
                // never asks the master).
                self.pool(*edge, false, Some(*at), &mut out);
            }
            Step::Cert { which, kill_ms } => self.cert(*which, *kill_ms, &mut out),
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
}

/// A fault on the first or (one time in four) the second connection, after up to `bytes`
/// reply bytes; a hang (it costs the reply timeout, 10 s) one time in four.
fn fault_at(rng: &mut Rng, bytes: usize) -> FaultAt {
    FaultAt {
        connection: usize::from(rng.below(4) == 0),
        after_bytes: rng.below(bytes),
        fault: if rng.below(4) == 0 {
            Fault::Hang
        } else {
            Fault::Cut
        },
    }
}

/// Steps during which no request may fail: every flip, abort, repair and read. Not those that
/// kill or reload HAProxy, put a color in maint or drain, or drive the agent by hand.
pub(super) fn promises_no_failed_request(step: &Step) -> bool {
    !matches!(
        step,
        Step::KillHaproxy { .. } | Step::Reload { .. } | Step::Servers { .. } | Step::Agent { .. }
    )
}

/// The next step whose kind is in `only` (any, when empty).
pub(super) fn draw_allowed(rng: &mut Rng, only: &[String]) -> Step {
    loop {
        let step = Step::draw(rng);
        if only.is_empty() || only.iter().any(|k| k == kind(&step)) {
            return step;
        }
    }
}

pub(super) fn kind(step: &Step) -> &'static str {
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
        Step::SocketFault { .. } => "socket-fault",
        Step::FullStateDir { .. } => "full-state-dir",
        Step::Bake { .. } => "bake",
        Step::Canary { .. } => "canary",
        Step::Pool { .. } => "pool",
        Step::Cert { .. } => "cert",
        Step::FleetFault {
            fault: EdgeFault::Socket(_),
            ..
        } => "fleet-socket-fault",
        Step::FleetFault {
            fault: EdgeFault::FullStateDir(_),
            ..
        } => "fleet-full-state-dir",
        Step::MasterFault { .. } => "master-fault",
    }
}

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
