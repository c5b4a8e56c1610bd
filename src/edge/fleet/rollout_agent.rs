//! The edge side of the fleet's bake and preview requests ([`Request::Counters`],
//! [`Request::Preview`], [`Request::PreviewAfterSwitch`], [`Request::PreviewCheck`]), served
//! by [`super::agent`]; the coordinator's side is in [`super::bake`] and [`super::preview`].

use std::time::Duration;

use super::protocol::{Request, Response};
use crate::edge::analysis::counters;
use crate::edge::deploy::preview as one;
use crate::edge::flip::LockWait;
use crate::edge::{Edge, EdgeError};
use crate::topology::Color;

pub(crate) fn lock_wait(ms: Option<u64>) -> LockWait {
    ms.map_or(LockWait::No, |ms| LockWait::UpTo(Duration::from_millis(ms)))
}

/// The edge side of [`Request::Counters`].
pub(crate) async fn serve_counters(edge: &Edge, env: &str, color: Color) -> Response {
    let read = async {
        let env = edge.colored_env(env)?;
        let mut session = edge.admin_session().await?;
        counters(&mut session, env, color).await
    };
    match read.await {
        Ok(c) => Response {
            ok: true,
            detail: format!("{} requests, {} 5xx", c.requests, c.errors),
            counters: Some(c),
            ..Response::default()
        },
        Err(e) => Response::failure(&e),
    }
}

/// The edge side of the preview requests ([`Request::Preview`], [`Request::PreviewAfterSwitch`],
/// [`Request::PreviewCheck`]).
pub(crate) async fn serve_preview(edge: &Edge, request: Request) -> Response {
    let answer = match request {
        Request::Preview {
            env,
            color,
            token,
            lock_wait_ms,
            who,
        } => {
            if color.is_some() && token.is_none() {
                Err(EdgeError::BadInput(
                    "a fleet preview sends its token".to_string(),
                ))
            } else {
                let wait = lock_wait(lock_wait_ms);
                one::preview_with(edge, &env, color, token.as_deref(), wait, &who)
                    .await
                    .map(|r| (format!("{} old token(s) removed", r.revoked), r.revoked))
            }
        }
        Request::PreviewAfterSwitch { env, who } => revoke_if_listed(edge, &env, &who).await,
        Request::PreviewCheck {
            env,
            color,
            paths,
            lock_wait_ms,
            who,
        } => check_here(edge, &env, color, &paths, lock_wait(lock_wait_ms), &who)
            .await
            .map(|line| (line, 0)),
        other => Err(EdgeError::Refused(format!(
            "{}: not a preview request",
            other.step()
        ))),
    };
    match answer {
        Ok((detail, revoked)) => Response {
            ok: true,
            detail,
            revoked: Some(revoked),
            ..Response::default()
        },
        Err(e) => Response::failure(&e),
    }
}

/// The env's token revoked on this edge when its preview map file lists one (the file is
/// written through: the cheap check that spares every fleet switch a lock and a round trip).
async fn revoke_if_listed(edge: &Edge, env: &str, who: &str) -> Result<(String, usize), EdgeError> {
    let path = edge.topology.paths.preview_map();
    let prefix = format!("{}:", edge.colored_env(env)?.name);
    let bytes = crate::state::atomic::read_optional(&path)?;
    let file = one::parse_file(edge, bytes.as_deref())?;
    if !file.keys().any(|k| k.starts_with(&prefix)) {
        return Ok(("no preview token".to_string(), 0));
    }
    let wait = LockWait::UpTo(Duration::from_secs(10));
    let r = one::preview(edge, env, None, wait, who).await?;
    Ok((format!("{} token(s) revoked", r.revoked), r.revoked))
}

/// `--preview-check` on this edge, its lock held: the paths through its own listener.
async fn check_here(
    edge: &Edge,
    env: &str,
    color: Color,
    paths: &[String],
    wait: LockWait,
    who: &str,
) -> Result<String, EdgeError> {
    if paths.len() > 32 {
        return Err(EdgeError::BadInput(
            "--preview-check takes at most 32 paths".to_string(),
        ));
    }
    let env = edge.colored_env(env)?;
    let holder = crate::state::Holder::current();
    let _lock = crate::state::EdgeLock::acquire_async(&edge.state, wait.wait(), holder).await?;
    let mut session = edge.admin_session().await?;
    match one::check(edge, &mut session, env, color, paths, None, who).await {
        Err(e @ EdgeError::Refused(_)) => {
            Err(journal_refused(edge, &mut session, env, color, who, e).await)
        }
        other => other,
    }
}

/// A preview check refused on this edge is journalled as one `refused` line with its words,
/// as `switch --preview-check` on one edge does (the metrics count it; nothing changed). `from`
/// is the env's live color (blue when it cannot be read). Returns the error unchanged.
async fn journal_refused(
    edge: &Edge,
    session: &mut crate::runtime::session::Session,
    env: &crate::topology::Env,
    color: Color,
    who: &str,
    e: EdgeError,
) -> EdgeError {
    use crate::edge::active_color::{map_ref, runtime_color};
    use crate::state::{Action, Operation, Phase};
    let EdgeError::Refused(why) = &e else {
        return e;
    };
    let entries = session.show_map(&map_ref(edge), None).await.ok();
    let from = entries
        .and_then(|list| runtime_color(&list, &env.name).ok().flatten())
        .unwrap_or(Color::Blue);
    let op = Operation::flip(Action::Switch, &env.name, from, color, who);
    if let Err(err) = edge.state.journal_record(&op, Phase::Refused, Some(why)) {
        eprintln!("vezasock: warning: the journal line `refused` was not written: {err}");
    }
    e
}
