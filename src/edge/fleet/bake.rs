//! `switch --fleet … --bake D` (issue 22): once the flip is verified and recorded on every
//! edge, the new color's counters are read on every edge over the same window, every
//! [`POLL`], and judged as one sum ([`crate::edge::analysis`]); on a breach the fleet switch
//! ([`super::switch`]) flips every edge back in one fleet transaction, journalled as a
//! rollback on each. Exit 7 only
//! once that put-back is confirmed on every edge; a flip-back that fails somewhere is exit 5
//! naming the edge; an edge whose counters cannot be read stops the bake, the switch left in
//! place on every edge (exit 5, naming the edge).

use std::time::{Duration, Instant};

use serde::Serialize;

use super::member::Member;
use super::protocol::Request;
use crate::edge::analysis::{describe, judge, Counters, Limits, Verdict, POLL};
use crate::edge::flip::{ms, FlipPhase, SwitchRequest};
use crate::edge::{EdgeError, ErrorKind, Stop};
use crate::topology::Color;

/// One edge's share of a fleet bake.
#[derive(Debug, Clone, Serialize)]
pub struct EdgeBake {
    pub edge: String,
    /// This edge's counters over the bake (up to the breach).
    pub window: Counters,
}

/// What a fleet bake saw: the sum over every edge (judged), and each edge's part.
#[derive(Debug, Clone, Serialize)]
pub struct FleetBake {
    pub color: Color,
    pub verdict: Verdict,
    pub window: Counters,
    pub limits: Limits,
    pub watched_ms: f64,
    pub edges: Vec<EdgeBake>,
}

/// Why a fleet bake did not pass: what the failure says, its kind, where it stopped.
pub struct BakeFailure {
    pub bake: Option<FleetBake>,
    pub message: String,
    pub kind: ErrorKind,
    pub stop: Stop,
}

impl Member {
    /// The counters of `color` in `env` on this edge now.
    pub async fn counters(&mut self, env: &str, color: Color) -> Result<Counters, EdgeError> {
        let request = Request::Counters {
            env: env.to_string(),
            color,
        };
        let r = self.ask(&request, super::member::STEP_SLACK).await?;
        r.counters.ok_or_else(|| EdgeError::Remote {
            edge: self.name.clone(),
            message: "no counters in the answer".to_string(),
            kind: ErrorKind::Unreachable,
            stop: None,
        })
    }
}

/// Every edge's counters now, in member order; `Err`: the first edge that could not be read.
pub(super) async fn read_all(
    members: &mut [Member],
    env: &str,
    color: Color,
) -> Result<Vec<Counters>, (String, EdgeError)> {
    super::member::on_every(members, async |m| m.counters(env, color).await).await
}

/// Watches `color` on every edge for `duration`: the edges' windows summed and judged every
/// [`POLL`]; returns at the first breach or when the time is up.
async fn watch(
    members: &mut [Member],
    env: &str,
    color: Color,
    duration: Duration,
    limits: Limits,
) -> Result<FleetBake, (String, EdgeError)> {
    let started = Instant::now();
    let base = read_all(members, env, color).await?;
    let deadline = started + duration;
    let names: Vec<String> = members.iter().map(|m| m.name().to_string()).collect();
    // Bounded: each turn sleeps until the deadline or one POLL, and the last turn returns.
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(left.min(POLL)).await;
        let now = read_all(members, env, color).await?;
        let windows: Vec<Counters> = now.iter().zip(&base).map(|(n, b)| n.since(*b)).collect();
        let window = sum(&windows);
        for (name, w) in names.iter().zip(&windows) {
            tracing::info!(edge = %name, requests = w.requests, errors = w.errors, "fleet bake window");
        }
        let verdict = judge(window, limits);
        if verdict == Verdict::Breach || Instant::now() >= deadline {
            let edges = names
                .iter()
                .zip(windows)
                .map(|(edge, window)| EdgeBake {
                    edge: edge.clone(),
                    window,
                })
                .collect();
            return Ok(FleetBake {
                color,
                verdict,
                window,
                limits,
                watched_ms: ms(started.elapsed()),
                edges,
            });
        }
    }
}

pub(super) fn sum(windows: &[Counters]) -> Counters {
    windows.iter().fold(Counters::default(), |a, w| Counters {
        requests: a.requests + w.requests,
        errors: a.errors + w.errors,
        econ: a.econ + w.econ,
        eresp: a.eresp + w.eresp,
    })
}

/// `edge-a 3/40, edge-b 0/38`: each edge's 5xx of its requests.
fn per_edge(bake: &FleetBake) -> String {
    let each: Vec<String> = bake
        .edges
        .iter()
        .map(|e| format!("{} {}/{}", e.edge, e.window.errors, e.window.requests))
        .collect();
    each.join(", ")
}

/// The bake after a fleet switch of `req` recorded on every edge: what it saw, or the failure
/// when an edge's counters could not be read (nothing flipped back). A breach is for the
/// caller ([`super::switch`]) to flip back, then [`after_breach`] says how it ended.
pub(super) async fn watch_fleet(
    members: &mut [Member],
    req: &SwitchRequest,
    duration: Duration,
) -> Result<FleetBake, BakeFailure> {
    watch(members, &req.env, req.color, duration, req.bake_limits)
        .await
        .map_err(|(edge, e)| unwatched(&req.env, req.color, &edge, &e))
}

/// How a breached fleet bake ended: every edge flipped back (`Ok`, exit 7), or the flip-back's
/// own failure (exit 5).
pub(super) fn after_breach(
    req: &SwitchRequest,
    baked: FleetBake,
    flipped: Result<(), &EdgeError>,
) -> BakeFailure {
    let (env, new, old) = (req.env.as_str(), req.color, req.color.other());
    let why = format!(
        "bake of {env} {new} on the fleet failed: {} (per edge 5xx/requests: {})",
        describe(baked.window, baked.limits),
        per_edge(&baked)
    );
    match flipped {
        Ok(()) => BakeFailure {
            bake: Some(baked),
            message: format!(
                "{why}; every edge flipped back to {old} in one fleet transaction (live and \
                 recorded, journalled as a rollback on each)"
            ),
            kind: ErrorKind::AnalysisFailed,
            stop: Stop {
                phase: FlipPhase::Analysis,
                live: Some(old),
                recorded: Some(old),
                put_back: true,
                finish: None,
            },
        },
        Err(e) => not_flipped_back(env, (new, old), why, e, Some(baked)),
    }
}

/// The bake could not read one edge's counters: the switch is left in place, verified and
/// recorded on every edge, so the exit is 5 whatever the edge's own error was (3 would say
/// nothing changed), as a one-edge bake that cannot watch is.
fn unwatched(env: &str, new: Color, edge: &str, e: &EdgeError) -> BakeFailure {
    let finish = format!("vezasock switch --fleet … {env} {}", new.other());
    BakeFailure {
        bake: None,
        message: format!(
            "{env} switched to {new} on every edge (verified and recorded), but the bake could \
             not read the counters of edge {edge}: {e}; nothing was flipped back; `{finish}` \
             flips every edge back"
        ),
        kind: ErrorKind::Unfinished,
        stop: Stop {
            phase: FlipPhase::Analysis,
            live: Some(new),
            recorded: Some(new),
            put_back: false,
            finish: Some(finish),
        },
    }
}

/// The flip-back after a breach failed (its error `e` names the edges): exit 5, never 7.
fn not_flipped_back(
    env: &str,
    (new, old): (Color, Color),
    why: String,
    e: &EdgeError,
    bake: Option<FleetBake>,
) -> BakeFailure {
    let finish = format!("vezasock switch --fleet … {env} {old}");
    // A flip-back refused or put back changed nothing: every edge is still on the new color.
    let unchanged = e.kind() != ErrorKind::Unfinished;
    let where_now = if unchanged {
        format!("every edge is still on {new} (live and recorded)")
    } else {
        "NOT every edge is confirmed on one color: `vezasock status --fleet …` shows each edge"
            .to_string()
    };
    BakeFailure {
        bake,
        message: format!(
            "{why}; flipping every edge back to {old} FAILED: {e}; {where_now}; `{finish}` \
             retries"
        ),
        kind: ErrorKind::Unfinished,
        stop: Stop {
            phase: FlipPhase::Analysis,
            live: unchanged.then_some(new),
            recorded: unchanged.then_some(new),
            put_back: false,
            finish: Some(finish),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(requests: u64, errors: u64) -> Counters {
        Counters {
            requests,
            errors,
            econ: 0,
            eresp: 0,
        }
    }

    /// One edge's errors breach the fleet's sum only by their share of every edge's traffic.
    #[test]
    fn the_fleet_judges_the_sum_of_every_edge() {
        let l = Limits::default();
        let quiet = [c(100, 0), c(100, 0), c(100, 2)];
        assert_eq!(sum(&quiet), c(300, 2));
        assert_eq!(judge(sum(&quiet), l), Verdict::Pass);
        let bad = [c(100, 0), c(100, 0), c(100, 30)];
        assert_eq!(judge(sum(&bad), l), Verdict::Breach);
        // Too few on every edge together is inconclusive, never a breach.
        assert_eq!(judge(sum(&[c(5, 5), c(5, 5)]), l), Verdict::Inconclusive);
    }

    /// An edge lost during the bake leaves the switch in place: exit 5 naming it, never the
    /// lost edge's own 3 ("nothing changed").
    #[test]
    fn an_unwatched_bake_is_unfinished_whatever_the_edge_said() {
        let lost = EdgeError::Remote {
            edge: "edge-b".into(),
            message: "connection refused".into(),
            kind: ErrorKind::Unreachable,
            stop: None,
        };
        let f = unwatched("staging", Color::Green, "edge-b", &lost);
        assert_eq!(f.kind.exit() as u8, 5);
        assert_eq!(f.stop.live, Some(Color::Green));
        assert!(!f.stop.put_back);
        assert!(f.message.contains("edge-b"), "{}", f.message);
    }

    /// A failed flip-back is exit 5 whatever stopped it, never 7.
    #[test]
    fn a_failed_flip_back_is_unfinished() {
        for inner in [
            EdgeError::Refused("edge edge-b refused".into()),
            EdgeError::NotVerified("edge edge-b lost".into()),
        ] {
            let f = not_flipped_back(
                "staging",
                (Color::Green, Color::Blue),
                "bake failed".into(),
                &inner,
                None,
            );
            assert_eq!(f.kind, ErrorKind::Unfinished);
            assert_eq!(f.kind.exit() as u8, 5);
            assert!(f.message.contains("edge-b"), "{}", f.message);
        }
    }
}
