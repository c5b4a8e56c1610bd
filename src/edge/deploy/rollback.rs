//! `vezasock rollback ENV [--to SHA]` and `vezasock history ENV`.
//!
//! A rollback is a switch back to an earlier deploy's color, through the same switch code
//! (lock, gate, journal, read-back, record): it is instant when that color's servers still run
//! the old deploy and are UP, and refused otherwise.
//!
//! Which entries can be rolled back to: the history is newest first and its first entry is
//! the live deploy. An older entry's code is still on its color only if no newer entry went to
//! the same color (a newer deploy to that color replaced it). If it was replaced, or the
//! color's servers are not UP and ready, the answer is "a redeploy is needed".
//!
//! The history is read before the switch takes the lock; the switch itself re-reads the live
//! state under the lock, so a concurrent switch can at worst make this a no-op.

use crate::edge::deploy::switch::{switch, Step, SwitchReport, SwitchRequest};
use crate::edge::{Edge, EdgeError};
use crate::state::{Action, HistoryEntry};

/// The last deploys of `env`, newest first (at most 5).
pub fn history(edge: &Edge, env: &str) -> Result<Vec<HistoryEntry>, EdgeError> {
    let env = edge.colored_env(env)?;
    Ok(edge.state.history(&env.name)?)
}

/// The history entry a rollback goes to: the one with `sha` (exact, or a prefix of at least 4
/// characters), else the previous deploy. Refused when there is none, or when a newer deploy
/// went to the same color since.
pub fn rollback_target(
    entries: &[HistoryEntry],
    sha: Option<&str>,
) -> Result<HistoryEntry, EdgeError> {
    let index = match sha {
        Some(sha) => {
            if sha.len() < 4 {
                return Err(EdgeError::BadInput(format!(
                    "--to {sha:?}: give at least 4 characters of the sha"
                )));
            }
            entries
                .iter()
                .position(|e| e.sha.as_deref().is_some_and(|s| s == sha || s.starts_with(sha)))
                .ok_or_else(|| {
                    EdgeError::Refused(format!(
                        "no deploy with sha {sha} in the last {} of the history: a redeploy is needed",
                        entries.len()
                    ))
                })?
        }
        None => {
            if entries.len() < 2 {
                return Err(EdgeError::Refused(
                    "the history has no previous deploy to roll back to: a redeploy is needed"
                        .to_string(),
                ));
            }
            1
        }
    };
    let Some(entry) = entries.get(index) else {
        return Err(EdgeError::Refused("no such history entry".to_string()));
    };
    if index == 0 {
        return Err(EdgeError::Refused(format!(
            "{} is the live deploy already (color {}): nothing to roll back",
            entry.sha.as_deref().unwrap_or("-"),
            entry.color
        )));
    }
    if let Some(newer) = entries.iter().take(index).find(|e| e.color == entry.color) {
        return Err(EdgeError::Refused(format!(
            "{} no longer runs {}: deploy {} went to {} since; a redeploy is needed",
            entry.color,
            entry.sha.as_deref().unwrap_or("that deploy"),
            newer.sha.as_deref().unwrap_or("-"),
            newer.color
        )));
    }
    Ok(entry.clone())
}

/// Rolls `req.env` back (the color and sha of `req` are replaced by the target entry's).
pub async fn rollback(
    edge: &Edge,
    mut req: SwitchRequest,
    to_sha: Option<&str>,
    on_step: &mut dyn FnMut(&Step),
) -> Result<SwitchReport, EdgeError> {
    let entries = history(edge, &req.env)?;
    let target = rollback_target(&entries, to_sha)?;
    req.color = target.color;
    req.sha = target.sha.clone();
    req.action = Action::Rollback;
    switch(edge, &req, on_step).await.map_err(|e| match e {
        EdgeError::Refused(why) => EdgeError::Refused(format!(
            "rollback of {} to {} ({}) refused: {why}; if that color no longer runs the old deploy, a redeploy is needed",
            req.env,
            target.color,
            target.sha.as_deref().unwrap_or("no sha")
        )),
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Color;

    fn e(color: Color, sha: &str) -> HistoryEntry {
        HistoryEntry {
            color,
            sha: Some(sha.to_string()),
            when: None,
            who: None,
        }
    }

    #[test]
    fn picks_the_previous_deploy_or_the_named_one_while_its_color_still_runs_it() {
        let h = vec![
            e(Color::Green, "cccc3"),
            e(Color::Blue, "bbbb2"),
            e(Color::Green, "aaaa1"),
        ];
        assert_eq!(
            rollback_target(&h, None).ok().map(|t| t.color),
            Some(Color::Blue)
        );
        assert_eq!(
            rollback_target(&h, Some("bbbb")).ok().and_then(|t| t.sha),
            Some("bbbb2".to_string())
        );
        // aaaa1 was on green, and cccc3 went to green since: gone.
        assert!(matches!(
            rollback_target(&h, Some("aaaa1")),
            Err(EdgeError::Refused(_))
        ));
        assert!(matches!(
            rollback_target(&h, Some("cccc3")),
            Err(EdgeError::Refused(_))
        ));
        assert!(matches!(
            rollback_target(&h, Some("dddd4")),
            Err(EdgeError::Refused(_))
        ));
        assert!(matches!(
            rollback_target(&h, Some("bb")),
            Err(EdgeError::BadInput(_))
        ));
        assert!(matches!(
            rollback_target(&h[..1], None),
            Err(EdgeError::Refused(_))
        ));
        // Two deploys in a row to green: the previous one was replaced on green.
        let same = vec![e(Color::Green, "cccc3"), e(Color::Green, "bbbb2")];
        assert!(matches!(
            rollback_target(&same, None),
            Err(EdgeError::Refused(_))
        ));
    }
}
