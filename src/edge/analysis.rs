//! The traffic analysis a bake and a canary judge by: counters from `show stat` (the per-color
//! backends' `BACKEND` rows), their difference over a window, and a verdict against limits.
//!
//! Counted per window, summed over the color's backends (one per component): requests are the
//! HTTP responses (`hrsp_1xx` … `hrsp_5xx`, `hrsp_other`); errors are `hrsp_5xx`, which
//! includes the 502/503/504 that HAProxy answers itself for connection and response errors
//! (`econ`, `eresp` are reported beside it, not added: that would count them twice). A window
//! with fewer than `min_requests` requests is inconclusive, never a breach.

use std::time::Duration;

use serde::Serialize;

use crate::edge::EdgeError;
use crate::runtime::session::Session;
use crate::topology::{Color, Env};

/// How often the bake reads the counters: a breach flips back within one period (plus the flip).
pub const POLL: Duration = Duration::from_millis(500);
/// The default `--max-error-rate`: 1 %.
pub const DEFAULT_MAX_ERROR_RATE: f64 = 0.01;
/// The default `--min-requests`.
pub const DEFAULT_MIN_REQUESTS: u64 = 20;

/// One color's counters at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Counters {
    pub requests: u64,
    pub errors: u64,
    pub econ: u64,
    pub eresp: u64,
}

impl Counters {
    /// `self - earlier`, per counter (a counter that went back, after a restart, counts from 0).
    pub fn since(self, earlier: Counters) -> Counters {
        let d = |a: u64, b: u64| if a >= b { a - b } else { a };
        Counters {
            requests: d(self.requests, earlier.requests),
            errors: d(self.errors, earlier.errors),
            econ: d(self.econ, earlier.econ),
            eresp: d(self.eresp, earlier.eresp),
        }
    }

    /// errors / requests (0 without requests).
    pub fn rate(self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        }
    }
}

/// The thresholds of an analysis.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Limits {
    /// A fraction: 0.01 is 1 %.
    pub max_error_rate: f64,
    pub min_requests: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_error_rate: DEFAULT_MAX_ERROR_RATE,
            min_requests: DEFAULT_MIN_REQUESTS,
        }
    }
}

/// What one window says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Pass,
    Breach,
    /// Too few requests to judge.
    Inconclusive,
    /// A canary step cut short by `vezasock canary ENV --promote` (never from [`judge`]).
    Promoted,
}

/// Judges one window's counters.
pub fn judge(window: Counters, limits: Limits) -> Verdict {
    if window.requests < limits.min_requests.max(1) {
        Verdict::Inconclusive
    } else if window.rate() > limits.max_error_rate {
        Verdict::Breach
    } else {
        Verdict::Pass
    }
}

/// `37 of 120 requests answered 5xx (30.8 %, limit 1 %); econ 0, eresp 0`.
pub fn describe(window: Counters, limits: Limits) -> String {
    format!(
        "{} of {} requests answered 5xx ({:.1} %, limit {} %); econ {}, eresp {}",
        window.errors,
        window.requests,
        window.rate() * 100.0,
        limits.max_error_rate * 100.0,
        window.econ,
        window.eresp
    )
}

/// The counters of `color` in `env` now: one `show stat`, the `BACKEND` rows of its backends.
pub async fn counters(
    session: &mut Session,
    env: &Env,
    color: Color,
) -> Result<Counters, EdgeError> {
    let backends = env.color_backends(color);
    let table = session.show_stat(None).await?;
    let mut c = Counters::default();
    for row in table.iter() {
        let ours = row.svname() == Some("BACKEND")
            && row
                .pxname()
                .is_some_and(|p| backends.iter().any(|b| b == p));
        if !ours {
            continue;
        }
        let n = |name: &str| {
            row.get(name)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        c.requests += [
            "hrsp_1xx",
            "hrsp_2xx",
            "hrsp_3xx",
            "hrsp_4xx",
            "hrsp_5xx",
            "hrsp_other",
        ]
        .iter()
        .map(|k| n(k))
        .sum::<u64>();
        c.errors += n("hrsp_5xx");
        c.econ += n("econ");
        c.eresp += n("eresp");
    }
    Ok(c)
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

    #[test]
    fn verdicts() {
        let l = Limits::default();
        assert_eq!(judge(c(19, 19), l), Verdict::Inconclusive);
        assert_eq!(judge(c(100, 1), l), Verdict::Pass);
        assert_eq!(judge(c(100, 2), l), Verdict::Breach);
        assert_eq!(
            judge(
                c(0, 0),
                Limits {
                    min_requests: 0,
                    ..l
                }
            ),
            Verdict::Inconclusive
        );
        assert_eq!(c(10, 3).since(c(4, 1)), c(6, 2));
        // A counter reset (restart) counts from zero instead of underflowing.
        assert_eq!(c(3, 0).since(c(10, 2)), c(3, 0));
        assert!(describe(c(120, 37), l).starts_with("37 of 120 requests answered 5xx (30.8 %"));
    }
}
