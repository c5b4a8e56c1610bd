//! `switch … --bake D`: after the flip is verified and recorded, watch the new color's backends
//! for D ([`watch`], judged by [`crate::edge::analysis`]); the switch flips back by itself on a
//! breach (`deploy/switch.rs`).

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::edge::analysis::{counters, judge, Counters, Limits, Verdict, POLL};
use crate::edge::EdgeError;
use crate::runtime::session::Session;
use crate::topology::{Color, Env};

/// What a bake saw.
#[derive(Debug, Clone, Serialize)]
pub struct BakeReport {
    pub color: Color,
    pub verdict: Verdict,
    /// Over the whole bake (up to the breach).
    pub window: Counters,
    pub limits: Limits,
    /// Milliseconds watched.
    pub watched_ms: f64,
}

/// Watches `color` for `duration`, reading the counters every [`POLL`]. Returns at the first
/// breach (verdict `breach`) or when the time is up (`pass`, or `inconclusive` with too few
/// requests over the whole bake).
pub async fn watch(
    session: &mut Session,
    env: &Env,
    color: Color,
    duration: Duration,
    limits: Limits,
) -> Result<BakeReport, EdgeError> {
    let started = Instant::now();
    let base = counters(session, env, color).await?;
    let deadline = started + duration;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(left.min(POLL)).await;
        let window = counters(session, env, color).await?.since(base);
        let verdict = judge(window, limits);
        let done = Instant::now() >= deadline;
        if verdict == Verdict::Breach || done {
            return Ok(BakeReport {
                color,
                verdict,
                window,
                limits,
                watched_ms: crate::edge::flip::ms(started.elapsed()),
            });
        }
    }
}
