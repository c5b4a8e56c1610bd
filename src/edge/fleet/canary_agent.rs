//! The edge side of `canary --fleet` ([`Request::CanaryHold`], [`Request::CanaryRead`],
//! [`Request::CanaryStage`] then [`Request::CanaryApply`] or [`Request::CanaryDrop`]), served
//! by [`super::agent`]; the coordinator's side is [`super::canary`]. Each step is the one-edge
//! canary's map change ([`crate::edge::deploy::canary`]) cut in two: staged (edge lock, read,
//! intent, map file written) on every edge before it is applied (runtime, done) on any; a
//! dropped stage puts the map file back.

use std::ops::ControlFlow;

use super::protocol::{Conversation, Request, Response};
use super::rollout_agent::lock_wait;
use crate::edge::deploy::canary::{
    self as one, apply_staged, drop_staged, stage_percent, write_staged, InProgress, Running,
    StagedPercent,
};
use crate::edge::{Edge, EdgeError};
use crate::runtime::session::Session;
use crate::state::{EdgeLock, Holder};

fn answer(detail: String, canary: Option<InProgress>) -> Response {
    Response {
        ok: true,
        detail,
        canary,
        ..Response::default()
    }
}

/// The env's canary lock taken for the rest of the conversation (kept in `holds`).
pub(crate) async fn hold(edge: &Edge, env: &str, holds: &mut Vec<Running>) -> Response {
    let held = async {
        let env = edge.colored_env(env)?;
        one::hold(edge, &env.name).await
    };
    match held.await {
        Ok(running) => {
            holds.push(running);
            answer(format!("the canary lock of {env} is held"), None)
        }
        Err(e) => Response::failure(&e),
    }
}

/// The env's canary on this edge, as its map file has it.
fn entry(edge: &Edge, env: &str) -> Result<Option<InProgress>, EdgeError> {
    let env = edge.colored_env(env)?;
    Ok(one::in_progress(edge)?
        .into_iter()
        .find(|c| c.env == env.name))
}

/// The edge side of [`Request::CanaryRead`].
pub(crate) fn read(edge: &Edge, env: &str) -> Response {
    match entry(edge, env) {
        Ok(c) => {
            let detail = c.as_ref().map_or("0 %".to_string(), |c| {
                format!("{} {} %", c.color, c.percent)
            });
            answer(detail, c)
        }
        Err(e) => Response::failure(&e),
    }
}

/// A staged step and what holds it: the edge lock and the session that applies it.
struct Step {
    staged: Option<StagedPercent>,
    session: Session,
    _lock: EdgeLock,
}

/// Stages the step of `request` ([`Request::CanaryStage`]) under the edge lock.
async fn stage(edge: &Edge, request: Request) -> Result<(Step, String), EdgeError> {
    let Request::CanaryStage {
        env,
        color,
        percent,
        if_running,
        lock_wait_ms,
        who,
    } = request
    else {
        return Err(EdgeError::Refused(format!(
            "{}: not a canary step",
            request.step()
        )));
    };
    if percent > 100 {
        return Err(EdgeError::BadInput(format!(
            "canary percent {percent}: at most 100"
        )));
    }
    let env = edge.colored_env(&env)?;
    let wait = lock_wait(lock_wait_ms).wait();
    let lock = EdgeLock::acquire_async(&edge.state, wait, Holder::current()).await?;
    if if_running && !entry(edge, &env.name)?.is_some_and(|c| c.running) {
        return Err(EdgeError::Refused(format!(
            "{} has no running canary on this edge (it ended, or its process is gone)",
            env.name
        )));
    }
    let mut session = edge.admin_session().await?;
    let to = color.filter(|_| percent > 0).map(|c| (c, percent));
    let mut staged = stage_percent(edge, &mut session, env, &who, to).await?;
    if let Some(s) = staged.as_mut() {
        // The slow half (an fsynced write) before any edge's runtime changes: the applies
        // are then one map command each, back to back.
        write_staged(edge, s)?;
    }
    let detail = staged.as_ref().map_or_else(
        || format!("{}: nothing to change", env.name),
        |s| s.describe(),
    );
    Ok((
        Step {
            staged,
            session,
            _lock: lock,
        },
        detail,
    ))
}

/// One canary step on this edge: staged, then applied or dropped as the coordinator says.
/// `Break` when the conversation ended before (the staged step dropped: nothing written).
pub(crate) async fn serve_step<C: Conversation>(
    edge: &Edge,
    request: Request,
    io: &mut C,
) -> ControlFlow<()> {
    let (mut step, detail) = match stage(edge, request).await {
        Ok(staged) => staged,
        Err(e) => {
            io.send(&Response::failure(&e)).await;
            return ControlFlow::Continue(());
        }
    };
    io.send(&answer(detail, None)).await;
    loop {
        let Some(next) = io.next().await else {
            if let Some(s) = step.staged {
                drop_staged(edge, s, "the coordinator went away before applying it");
            }
            return ControlFlow::Break(());
        };
        let response = match next {
            Request::CanaryApply => match step.staged.take() {
                Some(s) => match apply_staged(edge, &mut step.session, s).await {
                    Ok(()) => answer("applied".to_string(), None),
                    Err(e) => Response::failure(&e),
                },
                None => answer("nothing to change".to_string(), None),
            },
            Request::CanaryDrop { why } => {
                if let Some(s) = step.staged.take() {
                    drop_staged(edge, s, &why);
                }
                answer("dropped: nothing changed".to_string(), None)
            }
            other => {
                let e = EdgeError::Refused(format!(
                    "{}: a canary step is staged in this session; nothing was changed",
                    other.step()
                ));
                io.send(&Response::failure(&e)).await;
                continue;
            }
        };
        io.send(&response).await;
        return ControlFlow::Continue(());
    }
}
