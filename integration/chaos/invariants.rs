//! The invariants checked after every step of the chaos run (docs/chaos.md numbers them).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use vezasock::demo::http::get;
use vezasock::demo::load::{Load, LoadReport, LoadSpec};
use vezasock::topology::Color;

use super::faults::FaultOp;
use super::steps::Step;
use super::{Chaos, Outcome, ENVS};
use crate::fleet::{history_lines, map_file_color, recorded_color, EdgeSnapshot};

impl Chaos {
    /// Every invariant, after step `n`. `before` is every edge's snapshot before it.
    pub(super) fn check(
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
            Step::FleetSwitch { env, color }
            | Step::FleetFault {
                env,
                color,
                op: FaultOp::Switch,
                ..
            } => Some(((0..3).collect(), *env, *color)),
            Step::Bake {
                edge, env, color, ..
            }
            | Step::Canary {
                edge, env, color, ..
            }
            | Step::SocketFault {
                edge,
                env,
                color,
                op: FaultOp::Switch,
                ..
            }
            | Step::FullStateDir {
                edge,
                env,
                color,
                op: FaultOp::Switch,
                ..
            } => Some((vec![*edge], *env, *color)),
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
            if !out.killed {
                self.check_no_dead_temp(n, i, &before[i], &after[i]);
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
                let mut answer = get(m.edge.http, host, "/api/x", Duration::from_secs(5));
                // Timed out while the machine stood still (`stall.rs`): ask once more.
                if answer.is_err() && self.watchdog.stalled().is_some() {
                    answer = get(m.edge.http, host, "/api/x", Duration::from_secs(5));
                }
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

    /// Invariant 5, temp files: a directory whose file the step rewrote (the map file in the
    /// maps dir, a state file in the state dir) holds no temp file of a dead writer: the next
    /// write there removes them (src/files.rs).
    fn check_no_dead_temp(&self, n: usize, i: usize, before: &EdgeSnapshot, after: &EdgeSnapshot) {
        let paths = &self.fleet.members[i].edge.topology.paths;
        let state_written = ENVS.iter().any(|env| {
            let name = format!("active-color-{env}");
            before.state_files.get(&name) != after.state_files.get(&name)
        });
        let written = [
            (before.map_file != after.map_file, &paths.maps_dir),
            (state_written, &paths.state_dir),
        ];
        for (_, dir) in written.iter().filter(|(w, _)| *w) {
            let dead: Vec<String> = super::faults::temp_files(dir)
                .into_iter()
                .filter(|name| !writer_alive(name))
                .collect();
            if !dead.is_empty() {
                self.fail(
                    n,
                    &format!(
                        "{}: {} was written but still holds dead writers' temp files {dead:?}",
                        self.fleet.members[i].name,
                        dir.display()
                    ),
                );
            }
        }
    }

    /// True when runtime, map file and state file agree on every env of edge `i`.
    pub(super) fn agrees(&self, i: usize) -> bool {
        ENVS.iter().all(|env| {
            let s = self.sides(i, env);
            s.iter().all(|c| *c == s[0])
        })
    }

    /// Invariant 8: an edge whose sides agreed before a step still agrees after it, unless the step
    /// killed a vezasock process or a command said it could not finish (exit 5, naming what
    /// is live and what is recorded): every other answer promises a settled edge.
    pub(super) fn check_still_agrees(&self, n: usize, agreed: &[bool], out: &Outcome) {
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
    pub(super) fn load(&self) -> Vec<Load> {
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
    /// Requests that only timed out while the machine stalled (`stall.rs`) are said, not
    /// counted: every failure listed a timeout, and all of them listed.
    pub(super) fn check_no_failed_request(&self, n: usize, reports: &[LoadReport]) {
        for (m, r) in self.fleet.members.iter().zip(reports) {
            let all_listed = r.failed() as usize == r.failures.len();
            let timeouts = all_listed && r.failures.iter().all(|f| super::stall::is_timeout(f));
            if let (true, true, Some(gap)) = (r.failed() > 0, timeouts, self.watchdog.stalled()) {
                eprintln!(
                    "chaos: step {n}: {}: {} request(s) timed out while the machine stalled {:.1} s: \
                     not counted ({:?})",
                    m.name,
                    r.failed(),
                    gap.as_secs_f64(),
                    r.failures
                );
                continue;
            }
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
    pub(super) fn live(&self, i: usize, env: &str) -> Option<Color> {
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
    pub(super) fn worker_pids(&self) -> Vec<u32> {
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
    pub(super) fn ask(&self, i: usize, line: &str) -> String {
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
    pub(super) fn snapshot(&self) -> Vec<EdgeSnapshot> {
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
    pub(super) fn sides(&self, i: usize, env: &str) -> [Option<Color>; 3] {
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

/// Whether the process named in a temp file's name (`.<name>.vezasock-tmp.<pid>.<n>`) runs.
fn writer_alive(temp_name: &str) -> bool {
    temp_name
        .split(".vezasock-tmp.")
        .nth(1)
        .and_then(|rest| rest.split('.').next())
        .is_some_and(|pid| Path::new("/proc").join(pid).exists())
}
