//! Part 8 (`VEZASOCK_BENCH_PARTS=fleet-canary`, issue 22): one fleet canary step on 1, 3 and
//! 10 local edges (part 6's [`LocalFleet`]), beside the single-edge canary step in the same
//! rounds: the step's time and the skew between the first and the last edge serving the new
//! percent.
//!
//! **How one step is timed.** With the binary, as an operator runs it: `vezasock canary
//! [--fleet F] staging green --steps 10,100 --interval 1h`. The library has no public way to
//! reach a fleet's edges outside the CLI (`canary --fleet` talks to one `vezasock` agent per
//! edge, which the CLI starts), and the step an operator waits for includes what comes before
//! the map change: the process start, the fleet file, each edge's agent, the dry-run switch that
//! gates the canary and the canary locks. Part 5's in-process step (`set_percent` and the
//! counters' read) leaves all that out, so it is not the comparator: the single-edge step here
//! is the same binary without `--fleet` on `edge-a` (its paths in the environment), timed the
//! same way.
//!
//! **When an edge serves the percent.** The rendered config looks the env up in the preview
//! map on every request (`<env> <color>:<percent>`), so an edge sends 10 % of the env's users
//! to green from the moment its runtime map holds `staging green:10`. One watcher per edge reads
//! that map (`show map` over the edge's admin socket, one kept session, a read every
//! [`WATCH_PAUSE`]) from the command's start until the entry is there. The step's time: the
//! command's start → the last edge serving the percent; the skew: the last edge's time − the
//! first's. Traffic is not used: seeing a 10 % split on each edge takes many requests, and the
//! runtime map is what those requests read. The coordinator's own skew (between the edges'
//! answers to the step's apply, its `(skew … ms)` line) is kept beside it.
//!
//! **Cleaning up.** `vezasock canary [--fleet F] staging --abort` from outside; the running
//! canary sees the entry gone at its next analysis poll (500 ms) and exits 7; every edge is then
//! checked back at 0 % (no entry), so each step starts from the same state.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vezasock::demo::LocalEdge;
use vezasock::edge::Edge;

use super::baseline::Build;
use super::fleet::{run_scrubbed, spread, LocalFleet, FLEET_SIZES};
use super::support::haproxy;
use super::{cell_ms, ms, p50, p50_ratio, pct, sorted};

/// The step measured: 10 % of staging's users on green.
const PERCENT: u8 = 10;
/// The pause between two reads of an edge's runtime map: the time resolution of a step.
const WATCH_PAUSE: Duration = Duration::from_millis(1);
/// Bound on one step: the command's start → every edge serving the percent (and back at 0 %).
const STEP_LIMIT: Duration = Duration::from_secs(30);
/// Bound on the canary's exit after the abort (it polls every 500 ms).
const EXIT_LIMIT: Duration = Duration::from_secs(20);

/// What one round runs: the single-edge canary, or the fleet canary on the first `n` edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Single,
    Fleet(usize),
}

impl Target {
    fn edges(self) -> usize {
        match self {
            Target::Single => 1,
            Target::Fleet(n) => n,
        }
    }
}

/// One step's times, milliseconds from the command's start.
#[derive(Debug, Clone, Copy)]
struct Step {
    /// The last edge serving the percent.
    total: f64,
    /// The last edge's time − the first edge's.
    skew: f64,
    /// The coordinator's own skew line (`--fleet` only).
    coordinator_skew: Option<f64>,
}

/// One target's steps, one per round.
#[derive(Debug, Clone, Default)]
pub struct Series {
    edges: usize,
    total_ms: Vec<f64>,
    skew_ms: Vec<f64>,
    coordinator_skew_ms: Vec<f64>,
}

impl Series {
    fn push(&mut self, s: Step) {
        self.total_ms.push(s.total);
        self.skew_ms.push(s.skew);
        self.coordinator_skew_ms.extend(s.coordinator_skew);
    }
}

/// Part 8's samples: round `i` of every series ran back to back.
#[derive(Debug, Clone, Default)]
pub struct FleetCanaryBench {
    single: Series,
    sizes: Vec<Series>,
}

/// A thread that, when asked, reads one edge's runtime preview map until the `staging` entry
/// is the wanted value (`None`: no entry, 0 %) and reports when it first was.
struct Watcher {
    ask: mpsc::Sender<(Option<String>, Instant)>,
    seen: mpsc::Receiver<Result<Duration, String>>,
    handle: JoinHandle<()>,
}

impl Watcher {
    fn start(local: &LocalEdge) -> Watcher {
        let (ask, asks) = mpsc::channel::<(Option<String>, Instant)>();
        let (tell, seen) = mpsc::channel();
        let edge = Edge::new(local.topology.clone());
        let handle = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("tokio: {e}"));
            while let Ok((want, start)) = asks.recv() {
                let result = match &rt {
                    Ok(rt) => rt.block_on(watch(&edge, want.as_deref(), start)),
                    Err(e) => Err(e.clone()),
                };
                if tell.send(result).is_err() {
                    return;
                }
            }
        });
        Watcher { ask, seen, handle }
    }

    fn ask(&self, want: Option<&str>, start: Instant) -> Result<(), String> {
        self.ask
            .send((want.map(str::to_string), start))
            .map_err(|_| "a watcher stopped".to_string())
    }

    fn answer(&self) -> Result<f64, String> {
        self.seen
            .recv_timeout(STEP_LIMIT + Duration::from_secs(5))
            .map_err(|_| "a watcher did not answer".to_string())?
            .map(ms)
    }

    fn stop(self) {
        drop(self.ask);
        let _ = self.handle.join();
    }
}

/// Reads `edge`'s runtime preview map until its `staging` entry is `want`; the time since
/// `start` when it first was. Bounded by [`STEP_LIMIT`].
async fn watch(edge: &Edge, want: Option<&str>, start: Instant) -> Result<Duration, String> {
    let map = edge.topology.paths.preview_map().display().to_string();
    let mut session = edge.admin_session().await.map_err(|e| e.to_string())?;
    let mut last = String::from("no answer");
    while start.elapsed() < STEP_LIMIT {
        match session.show_map(&map, None).await {
            Ok(entries) => {
                let now = entries.iter().find(|e| e.key == "staging");
                if now.map(|e| e.value.as_str()) == want {
                    return Ok(start.elapsed());
                }
                last = now.map_or("no entry".to_string(), |e| e.value.clone());
            }
            Err(e) => {
                last = e.to_string();
                let _ = session.reconnect().await;
            }
        }
        tokio::time::sleep(WATCH_PAUSE).await;
    }
    let want = want.unwrap_or("no entry");
    Err(format!(
        "staging {want} not in the runtime map within {STEP_LIMIT:?} (last: {last})"
    ))
}

/// Part 8 on a fresh fleet of the largest size: `rounds` rounds, each one step of every
/// target back to back (the order rotating).
pub fn measure(h: &haproxy::Haproxy, rounds: usize) -> Result<FleetCanaryBench, String> {
    let most = FLEET_SIZES.iter().copied().max().unwrap_or(1);
    let fleet = LocalFleet::start(h, most)?;
    let watchers: Vec<Watcher> = fleet.edges.iter().map(Watcher::start).collect();
    let mut targets = vec![Target::Single];
    targets.extend(FLEET_SIZES.iter().map(|n| Target::Fleet(*n)));
    let mut out = FleetCanaryBench {
        single: Series {
            edges: 1,
            ..Series::default()
        },
        sizes: FLEET_SIZES
            .iter()
            .map(|n| Series {
                edges: *n,
                ..Series::default()
            })
            .collect(),
    };
    let result = (|| {
        for round in 0..rounds {
            eprintln!(
                "[{}] fleet canary: round {}/{rounds}: a {PERCENT} % step on 1 edge, on a fleet of {FLEET_SIZES:?}",
                h.label,
                round + 1
            );
            for k in 0..targets.len() {
                let target = targets[(round + k) % targets.len()];
                let step = step_once(&fleet, &watchers, target).inspect_err(|e| {
                    eprintln!("[{}] fleet canary: {e}", h.label);
                })?;
                match target {
                    Target::Single => out.single.push(step),
                    Target::Fleet(n) => {
                        if let Some(s) = out.sizes.iter_mut().find(|s| s.edges == n) {
                            s.push(step);
                        }
                    }
                }
            }
        }
        Ok::<(), String>(())
    })();
    for w in watchers {
        w.stop();
    }
    result.map(|()| out)
}

/// One canary step on `target`, timed by the watchers of its edges, then aborted and checked
/// back at 0 % on every edge.
fn step_once(fleet: &LocalFleet, watchers: &[Watcher], target: Target) -> Result<Step, String> {
    let watchers = &watchers[..target.edges()];
    let file = match target {
        Target::Single => None,
        Target::Fleet(n) => Some(fleet.file(n)?),
    };
    let fleet_args: Vec<&str> = file.iter().flat_map(|f| ["--fleet", f.as_str()]).collect();
    let env: Vec<(&'static str, OsString)> = match target {
        Target::Single => fleet.first_edge_env(),
        Target::Fleet(_) => Vec::new(),
    };
    let steps = format!("{PERCENT},100");
    let mut args = vec!["canary"];
    args.extend(&fleet_args);
    args.extend([
        "staging",
        "green",
        "--steps",
        steps.as_str(),
        "--interval",
        "1h",
    ]);
    let want = format!("green:{PERCENT}");
    let start = Instant::now();
    for w in watchers {
        w.ask(Some(&want), start)?;
    }
    let mut run = Build::This.command(&args).who("bench");
    for (key, value) in &env {
        run = run.env(key, value);
    }
    let running = run.spawn();
    let seen: Vec<Result<f64, String>> = watchers.iter().map(Watcher::answer).collect();
    // Whatever was seen: the abort from outside, the canary's exit, every edge at 0 %.
    let mut abort = vec!["canary"];
    abort.extend(&fleet_args);
    abort.extend(["staging", "--abort"]);
    let aborted = run_scrubbed(Build::This, &abort, &env);
    let ran = running.finish_killed_after(EXIT_LIMIT);
    let back = Instant::now();
    for w in watchers {
        w.ask(None, back)?;
    }
    let mut errors: Vec<String> = seen.iter().filter_map(|s| s.clone().err()).collect();
    errors.extend(watchers.iter().filter_map(|w| w.answer().err()));
    errors.extend(aborted.err());
    if ran.code != Some(7) {
        errors.push(format!(
            "the canary exited {:?} after the abort (7 expected): {}",
            ran.code,
            ran.err.trim()
        ));
    }
    if !errors.is_empty() {
        return Err(format!("{target:?}: {}", errors.join("; ")));
    }
    let seen: Vec<f64> = seen.into_iter().flatten().collect();
    Ok(Step {
        total: seen.iter().copied().fold(0.0, f64::max),
        skew: spread(&seen),
        coordinator_skew: coordinator_skew(&ran.out),
    })
}

/// The `(skew 0.123 ms)` of the fleet canary's step line.
fn coordinator_skew(out: &str) -> Option<f64> {
    let line = out.lines().find(|l| l.starts_with("step "))?;
    let rest = &line[line.find("(skew ")? + "(skew ".len()..];
    rest.split_whitespace().next()?.parse().ok()
}

/// Part 8's report: a row per fleet size beside the single-edge step.
pub fn report(s: &mut String, f: &FleetCanaryBench) {
    let rounds = f.single.total_ms.len();
    let _ = writeln!(
        s,
        "**8. Fleet canary step** (issue 22): `vezasock canary [--fleet F] staging green --steps \
         {PERCENT},100` on one edge and on fleets of 1, 3 and 10 local edges, {rounds} rounds (one \
         step of each per round, the order rotating), ms. *Step*: the command's start → the last \
         edge's runtime `preview.map` holding `staging green:{PERCENT}` (read every \
         {WATCH_PAUSE:?} over its admin socket); *skew*: the last edge's time − the first's; \
         *coordinator skew*: the command's own (between the edges' apply answers); ratio: p50 of \
         the per-round ratios to the single-edge step; p90 by nearest rank (sample {} of \
         {rounds}, sorted).\n",
        ((0.9 * rounds as f64).ceil() as usize).clamp(1, rounds.max(1))
    );
    let _ = writeln!(
        s,
        "| edges | step p50 | step p90 | ÷ single-edge step | skew p50 | skew p90 | coordinator skew p50 |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    let single = sorted(&f.single.total_ms);
    let _ = writeln!(
        s,
        "| 1, no `--fleet` | {} | {} | 1× | – | – | – |",
        cell_ms(pct(&single, 0.5)),
        cell_ms(pct(&single, 0.9)),
    );
    for r in &f.sizes {
        let total = sorted(&r.total_ms);
        let skew = sorted(&r.skew_ms);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.2}× | {} | {} | {} |",
            r.edges,
            cell_ms(pct(&total, 0.5)),
            cell_ms(pct(&total, 0.9)),
            p50_ratio(&r.total_ms, &f.single.total_ms),
            cell_ms(pct(&skew, 0.5)),
            cell_ms(pct(&skew, 0.9)),
            cell_ms(p50(&r.coordinator_skew_ms)),
        );
    }
    s.push('\n');
}
