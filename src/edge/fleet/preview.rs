//! Preview tokens on a fleet (issue 22): `preview --fleet` gives every edge the same token
//! ([`preview`]), a fleet switch revokes it on every edge ([`revoke_after_switch`]), and
//! `switch --fleet … --preview-check` requests the paths through every edge's own listener
//! before any edge is prepared ([`check`]). A token moves no user traffic: setting it is not a
//! transaction; when one edge refuses, the edges that took the token have it revoked.

use std::time::Duration;

use futures::future::join_all;
use serde::Serialize;

use super::member::{Member, STEP_SLACK};
use super::protocol::Request;
use crate::edge::deploy::preview::{self as one, CHECK_TIMEOUT};
use crate::edge::flip::{LockWait, SwitchRequest};
use crate::edge::EdgeError;
use crate::render::{PREVIEW_COOKIE, PREVIEW_HEADER};
use crate::topology::Color;

/// What `preview --fleet` did on each edge.
#[derive(Debug, Clone, Serialize)]
pub struct FleetPreview {
    pub env: String,
    /// The color the token reaches (`None`: revoked).
    pub color: Option<Color>,
    /// The one token every edge now has.
    pub token: Option<String>,
    pub header: &'static str,
    pub cookie: &'static str,
    /// Tokens of this env removed, over every edge.
    pub revoked: usize,
    pub edges: Vec<PreviewEdge>,
}

/// One edge's line of a fleet preview.
#[derive(Debug, Clone, Serialize)]
pub struct PreviewEdge {
    pub edge: String,
    /// `set`, `revoked`, `nothing to revoke`, `refused`, `set, then revoked`.
    pub result: String,
    pub detail: String,
}

fn lock_ms(wait: LockWait) -> Option<u64> {
    match wait {
        LockWait::No => None,
        LockWait::UpTo(d) => Some(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
    }
}

impl Member {
    /// The env's token set to `token` for `color` (or revoked); how many old ones it removed.
    async fn preview(
        &mut self,
        env: &str,
        grant: Option<(Color, &str)>,
        wait: LockWait,
        who: &str,
    ) -> Result<usize, EdgeError> {
        let request = Request::Preview {
            env: env.to_string(),
            color: grant.map(|(c, _)| c),
            token: grant.map(|(_, t)| t.to_string()),
            lock_wait_ms: lock_ms(wait),
            who: who.to_string(),
        };
        let limit = lock_ms(wait).map_or(Duration::ZERO, Duration::from_millis) + STEP_SLACK;
        Ok(self.ask(&request, limit).await?.revoked.unwrap_or(0))
    }
}

/// Gives every edge the same fresh token for `color` of `env` (`None`: revokes it on every
/// edge). A refusal anywhere revokes the token on the edges that took it; the error names the
/// edge, with its kind.
pub async fn preview(
    members: &mut [Member],
    env: &str,
    color: Option<Color>,
    wait: LockWait,
    who: &str,
) -> Result<FleetPreview, EdgeError> {
    let token = color.map(|_| one::fresh_token()).transpose()?;
    let grant = color.zip(token.as_deref());
    let answers = join_all(
        members
            .iter_mut()
            .map(|m| async move { m.preview(env, grant, wait, who).await }),
    )
    .await;
    let mut report = FleetPreview {
        env: env.to_string(),
        color,
        token: token.clone(),
        header: PREVIEW_HEADER,
        cookie: PREVIEW_COOKIE,
        revoked: 0,
        edges: Vec::new(),
    };
    let mut refused = None;
    for (m, answer) in members.iter().zip(answers) {
        let (result, detail) = match answer {
            Ok(n) => {
                report.revoked += n;
                let result = match (color, n) {
                    (Some(_), _) => "set",
                    (None, 0) => "nothing to revoke",
                    (None, _) => "revoked",
                };
                (result.to_string(), format!("{n} old token(s) removed"))
            }
            Err(e) => {
                let line = (String::from("refused"), e.to_string());
                refused.get_or_insert((m.name().to_string(), e));
                line
            }
        };
        report.edges.push(PreviewEdge {
            edge: m.name().to_string(),
            result,
            detail,
        });
    }
    let Some((name, error)) = refused else {
        return Ok(report);
    };
    if color.is_some() {
        take_back(members, &mut report, env, who).await;
    }
    let lines: Vec<String> = report
        .edges
        .iter()
        .map(|e| format!("{}: {}: {}", e.edge, e.result, e.detail))
        .collect();
    Err(EdgeError::Remote {
        edge: name,
        message: format!(
            "the preview of {env} was refused there ({}); {}",
            error,
            lines.join("; ")
        ),
        kind: error.kind(),
        stop: None,
    })
}

/// After a refusal: the token revoked on every edge that took it.
async fn take_back(members: &mut [Member], report: &mut FleetPreview, env: &str, who: &str) {
    let took: Vec<bool> = report.edges.iter().map(|e| e.result == "set").collect();
    let answers = join_all(
        members
            .iter_mut()
            .zip(&took)
            .filter(|(_, took)| **took)
            .map(|(m, _)| async move {
                let r = m.preview(env, None, LockWait::UpTo(STEP_SLACK), who).await;
                (m.name().to_string(), r)
            }),
    )
    .await;
    for (name, r) in answers {
        let Some(e) = report.edges.iter_mut().find(|e| e.edge == name) else {
            continue;
        };
        match r {
            Ok(_) => e.result = "set, then revoked".to_string(),
            Err(err) => {
                e.result = "SET, NOT REVOKED".to_string();
                e.detail = format!("{err}; `vezasock preview --fleet … {env} --revoke` revokes it");
            }
        }
    }
}

/// After a fleet switch recorded on every edge: the env's token revoked on every edge that has
/// one. The flip is done: a failed revoke is a note naming the edge, not an error.
pub async fn revoke_after_switch(members: &mut [Member], req: &SwitchRequest) -> Vec<String> {
    let env = req.env.as_str();
    let answers = join_all(members.iter_mut().map(|m| async move {
        let request = Request::PreviewAfterSwitch {
            env: env.to_string(),
            who: req.who.clone(),
        };
        let r = m.ask(&request, STEP_SLACK).await;
        (m.name().to_string(), r)
    }))
    .await;
    let mut notes = Vec::new();
    for (name, r) in answers {
        match r {
            Ok(r) if r.revoked.unwrap_or(0) > 0 => {
                notes.push(format!(
                    "edge {name}: the preview token of {env} was revoked"
                ));
            }
            Ok(_) => {}
            Err(e) => notes.push(format!(
                "edge {name}: the preview token of {env} was not revoked: {e}; `vezasock \
                 preview --fleet … {env} --revoke` does it"
            )),
        }
    }
    notes
}

/// `--preview-check` on every edge at once, before any edge is prepared: each edge requests
/// the paths through its own listener with a preview token for the target (revoked after).
/// `Ok`: each edge's answers, one line each; `Err`: the index of the first edge that answered
/// badly (or could not be asked) and its error.
pub(super) async fn check(
    members: &mut [Member],
    req: &SwitchRequest,
) -> Result<Vec<String>, (usize, EdgeError, Vec<String>)> {
    let paths = req.preview_check.len() as u32;
    let limit = CHECK_TIMEOUT * 2 * paths.max(1)
        + lock_ms(req.lock_wait).map_or(Duration::ZERO, Duration::from_millis)
        + STEP_SLACK;
    let answers = join_all(members.iter_mut().map(|m| async move {
        let request = Request::PreviewCheck {
            env: req.env.clone(),
            color: req.color,
            paths: req.preview_check.clone(),
            lock_wait_ms: lock_ms(req.lock_wait),
            who: req.who.clone(),
        };
        let r = m.ask(&request, limit).await;
        (m.name().to_string(), r)
    }))
    .await;
    let mut lines = Vec::new();
    let mut failed = None;
    for (i, (name, r)) in answers.into_iter().enumerate() {
        match r {
            Ok(r) => lines.push(format!("edge {name}: {}", r.detail)),
            Err(e) => {
                lines.push(format!("edge {name}: REFUSED: {e}"));
                failed.get_or_insert((i, e));
            }
        }
    }
    match failed {
        None => Ok(lines),
        Some((i, e)) => Err((i, e, lines)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_waits_cross_the_wire_unchanged() {
        for wait in [LockWait::No, LockWait::UpTo(Duration::from_millis(1500))] {
            assert_eq!(super::super::rollout_agent::lock_wait(lock_ms(wait)), wait);
        }
    }
}
