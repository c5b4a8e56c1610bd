//! The flip's safety gate: never send traffic to a color whose servers are not UP and
//! checked. Pure functions over `show servers state` rows and the clock, so every rule is
//! tested on plain values; the flip's gate phase polls HAProxy and asks [`decide`] again.
//!
//! | server of the target color | the gate |
//! |---|---|
//! | UP, last check passed, READY | passes |
//! | UP, last check passed, in DRAIN (set by an operator or `--drain-old`) | passes: the flip puts it back to READY first, then flips (the instant rollback after `--drain-old`) |
//! | its first check has not run yet (right after an HAProxy start), or a check is running | waits, bounded by [`CHECK_WAIT`] (or `--wait-healthy` when longer) |
//! | not UP | waits only up to `--wait-healthy`, else refuses |
//! | in MAINT, DRAIN inherited from a tracked server, or not in the runtime at all | refuses at once: waiting cannot help |

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::runtime::command::servers::{AdminFlags, OpState, ServersState};
use crate::topology::{Color, Env};

/// How often the gate looks again while a server is DOWN (with `--wait-healthy`).
pub const POLL: Duration = Duration::from_millis(100);

/// How often the gate looks again while the only problem is a health check still to come:
/// a check ends within its own timeout, usually milliseconds.
pub const CHECK_POLL: Duration = Duration::from_millis(5);

/// How long the gate waits, without being asked, for checks that have not given a result
/// yet: right after an HAProxy (re)start every server waits for its first check (`inter 2s`
/// in the rendered config, `rise 2`), and HAProxy resets the result to "unknown" at the start
/// of every check (seen on 2.6 under load).
pub const CHECK_WAIT: Duration = Duration::from_secs(10);

/// `CHK_ST_INPROGRESS` in `srv_check_state`: a check is running.
const CHECK_IN_PROGRESS: u32 = 0x1;

/// `CHK_ST_CONFIGURED` in `srv_check_state`: the server has a health check.
const CHECK_CONFIGURED: u32 = 0x2;

/// What the gate thinks of one server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "verdict", content = "why")]
pub enum Verdict {
    /// UP, checked, READY.
    Ready,
    /// UP and checked, in a DRAIN an operator set: the flip makes it READY first.
    Drained,
    /// No check result yet (first check to come, or one running): waited for, bounded.
    Checking,
    /// Not UP: waited for only with `--wait-healthy`.
    Down(String),
    /// Waiting cannot help (MAINT, inherited drain, not in the runtime).
    Blocked(String),
}

/// One server of a color, as the gate sees it.
#[derive(Debug, Clone, Serialize)]
pub struct GateServer {
    pub backend: String,
    pub server: String,
    pub verdict: Verdict,
}

impl GateServer {
    pub(crate) fn line(&self) -> String {
        let why = match &self.verdict {
            Verdict::Ready => "ready",
            Verdict::Drained => "in DRAIN",
            Verdict::Checking => "its health check has not given a result yet",
            Verdict::Down(why) | Verdict::Blocked(why) => why,
        };
        format!("{}/{} {why}", self.backend, self.server)
    }
}

/// The `(backend, server)` pairs of `color` in `env`, per component.
pub(crate) fn color_servers(env: &Env, color: Color) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for comp in &env.components {
        let backend = env.backend_name(&comp.name, color);
        for s in comp.servers.of(color) {
            out.push((backend.clone(), s.name.clone()));
        }
    }
    out
}

/// Judges every server of `color` in `env` from `show servers state` rows.
pub(crate) fn judge(env: &Env, color: Color, states: &ServersState) -> Vec<GateServer> {
    color_servers(env, color)
        .into_iter()
        .map(|(backend, server)| {
            let verdict = match states.find(&backend, &server) {
                None => Verdict::Blocked(
                    "is not in `show servers state` (a config without this server? `vezasock apply` first)"
                        .to_string(),
                ),
                Some(row) => verdict(row.admin, row.op, row.check_result, row.check_state, || {
                    row.check_status_name().unwrap_or("?")
                }),
            };
            GateServer {
                backend,
                server,
                verdict,
            }
        })
        .collect()
}

fn verdict(
    admin: AdminFlags,
    op: OpState,
    check_result: u32,
    check_state: u32,
    check_status: impl Fn() -> &'static str,
) -> Verdict {
    if admin.is_maint() {
        return Verdict::Blocked("is in MAINT".to_string());
    }
    if admin.has(AdminFlags::INHERITED_DRAIN) {
        return Verdict::Blocked("is in DRAIN inherited from the server it tracks".to_string());
    }
    if op != OpState::Running {
        return Verdict::Down(format!(
            "is not UP (operational state {op:?}, last check {})",
            check_status()
        ));
    }
    // CHK_RES_PASSED (3) or CHK_RES_CONDPASS (4): a server that has not been checked yet is
    // not known to be healthy. CHK_RES_UNKNOWN (0): no result yet, one is coming.
    let checked = matches!(check_result, 3 | 4);
    if !checked && check_state & CHECK_CONFIGURED == 0 {
        return Verdict::Blocked(
            "has no health check: vezasock cannot know that it is healthy".to_string(),
        );
    }
    if !checked {
        let coming = check_result == 0 || check_state & CHECK_IN_PROGRESS != 0;
        if coming {
            return Verdict::Checking;
        }
        return Verdict::Down(format!(
            "its last health check did not pass (result {check_result})"
        ));
    }
    if admin.is_drain() {
        return Verdict::Drained;
    }
    Verdict::Ready
}

/// What the gate says now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Flip. `drained` are the servers to put back to READY first.
    Pass { drained: Vec<(String, String)> },
    /// Look again after this long.
    Wait(Duration),
    /// Refuse; the message says why and what would help.
    Refuse(String),
}

/// Decides from the judged servers, the time the gate started, now, and `--wait-healthy`.
pub fn decide(
    env: &str,
    target: Color,
    judged: &[GateServer],
    started: Instant,
    now: Instant,
    wait_healthy: Option<Duration>,
) -> Decision {
    let bad: Vec<&GateServer> = judged
        .iter()
        .filter(|g| !matches!(g.verdict, Verdict::Ready | Verdict::Drained))
        .collect();
    if bad.is_empty() {
        let drained = judged
            .iter()
            .filter(|g| g.verdict == Verdict::Drained)
            .map(|g| (g.backend.clone(), g.server.clone()))
            .collect();
        return Decision::Pass { drained };
    }
    let list = || bad.iter().map(|g| g.line()).collect::<Vec<_>>().join(", ");
    let refuse = |hint: String| {
        Decision::Refuse(format!(
            "refusing to switch {env} to {target}: {}{hint}; nothing was changed",
            list()
        ))
    };
    if bad.iter().any(|g| matches!(g.verdict, Verdict::Blocked(_))) {
        let maint = bad
            .iter()
            .any(|g| matches!(&g.verdict, Verdict::Blocked(w) if w.contains("MAINT")));
        return refuse(if maint {
            format!(
                "; put it back with `vezasock ready {env} {target}` first (waiting cannot help)"
            )
        } else {
            String::new()
        });
    }
    let asked = wait_healthy.unwrap_or(Duration::ZERO);
    let only_checking = bad.iter().all(|g| g.verdict == Verdict::Checking);
    let (deadline, poll) = if only_checking {
        (started + asked.max(CHECK_WAIT), CHECK_POLL)
    } else {
        (started + asked, POLL)
    };
    if now + poll < deadline {
        return Decision::Wait(poll);
    }
    let waited = now.saturating_duration_since(started);
    refuse(match (only_checking, wait_healthy) {
        (true, _) => format!(
            " after waiting {:.1}s for a check result",
            waited.as_secs_f64()
        ),
        (false, None) => {
            " (--wait-healthy DURATION waits for it to come UP; `vezasock status` shows its checks)"
                .to_string()
        }
        (false, Some(_)) => format!(" after waiting {:.1}s", waited.as_secs_f64()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(verdict: Verdict) -> GateServer {
        GateServer {
            backend: "be_staging_api_green".to_string(),
            server: "green_1".to_string(),
            verdict,
        }
    }

    fn v(admin: u32, op: OpState, result: u32, state: u32) -> Verdict {
        verdict(AdminFlags(admin), op, result, state, || "L7OK")
    }

    #[test]
    fn each_server_state_gets_its_verdict() {
        assert_eq!(v(0, OpState::Running, 3, 6), Verdict::Ready);
        assert_eq!(v(0, OpState::Running, 4, 6), Verdict::Ready);
        assert_eq!(
            v(AdminFlags::FORCED_DRAIN, OpState::Running, 3, 6),
            Verdict::Drained
        );
        assert!(matches!(
            v(AdminFlags::INHERITED_DRAIN, OpState::Running, 3, 0),
            Verdict::Blocked(_)
        ));
        assert!(matches!(
            v(AdminFlags::FORCED_MAINT, OpState::Running, 3, 0),
            Verdict::Blocked(_)
        ));
        assert_eq!(v(0, OpState::Running, 0, 6), Verdict::Checking);
        assert_eq!(v(0, OpState::Running, 2, 7), Verdict::Checking);
        assert!(matches!(v(0, OpState::Running, 2, 6), Verdict::Down(_)));
        // No check configured: never known healthy.
        assert!(matches!(v(0, OpState::Running, 0, 0), Verdict::Blocked(_)));
        assert!(matches!(v(0, OpState::Stopped, 3, 0), Verdict::Down(_)));
        // A drained server that is DOWN is DOWN: readying it would not help.
        assert!(matches!(
            v(AdminFlags::FORCED_DRAIN, OpState::Stopped, 2, 0),
            Verdict::Down(_)
        ));
    }

    #[test]
    fn drained_servers_pass_and_are_listed_to_ready() {
        let t = Instant::now();
        let judged = [server(Verdict::Ready), server(Verdict::Drained)];
        match decide("staging", Color::Green, &judged, t, t, None) {
            Decision::Pass { drained } => assert_eq!(drained.len(), 1),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn checks_to_come_are_waited_for_without_being_asked_but_bounded() {
        let t = Instant::now();
        let judged = [server(Verdict::Checking)];
        assert_eq!(
            decide("staging", Color::Green, &judged, t, t, None),
            Decision::Wait(CHECK_POLL)
        );
        let late = t + CHECK_WAIT;
        assert!(matches!(
            decide("staging", Color::Green, &judged, t, late, None),
            Decision::Refuse(m) if m.contains("check result")
        ));
        // A longer --wait-healthy extends it.
        assert_eq!(
            decide(
                "staging",
                Color::Green,
                &judged,
                t,
                late,
                Some(CHECK_WAIT * 2)
            ),
            Decision::Wait(CHECK_POLL)
        );
    }

    #[test]
    fn a_down_server_is_waited_for_only_when_asked() {
        let t = Instant::now();
        let judged = [server(Verdict::Down("is not UP".to_string()))];
        assert!(matches!(
            decide("staging", Color::Green, &judged, t, t, None),
            Decision::Refuse(m) if m.contains("--wait-healthy") && m.contains("nothing was changed")
        ));
        assert_eq!(
            decide(
                "staging",
                Color::Green,
                &judged,
                t,
                t,
                Some(Duration::from_secs(5))
            ),
            Decision::Wait(POLL)
        );
    }

    #[test]
    fn maint_is_refused_at_once_with_the_command_that_helps() {
        let t = Instant::now();
        let judged = [server(Verdict::Blocked("is in MAINT".to_string()))];
        assert!(matches!(
            decide("staging", Color::Green, &judged, t, t, Some(Duration::from_secs(60))),
            Decision::Refuse(m) if m.contains("vezasock ready staging green")
        ));
    }
}
