//! `apply --fleet`: every edge repaired, then the envs whose edges disagree put on one color,
//! the one the fleet journal names ([`resolve_color`]).

use futures::future::join_all;
use serde::Serialize;

use super::member::Member;
use super::status::status;
use super::switch::switch;
use super::EdgeOutcome;
use crate::edge::flip::transaction::DEFAULT_TTL;
use crate::edge::flip::SwitchRequest;
use crate::edge::EdgeError;
use crate::state::Phase;
use crate::topology::fleet::Fleet;
use crate::topology::Color;

/// What a fleet apply did.
#[derive(Debug, Clone, Serialize)]
pub struct FleetApply {
    /// Each edge's repair, one line.
    pub repaired: Vec<EdgeOutcome>,
    /// Envs flipped to one color across the fleet, with the reason.
    pub resolved: Vec<String>,
    /// Envs left disagreeing, with the command to run.
    pub unresolved: Vec<String>,
}

/// The color every edge of `env` goes to after a coordinator died: the last unfinished fleet
/// transaction of that env says it (its color when every edge had committed, else the color
/// the edges had before it). `None`: no such transaction, or the edges had differed before it.
pub fn resolve_color(fleet: &Fleet, env: &str) -> Result<Option<Color>, EdgeError> {
    let open = super::journal(fleet).open_operations()?;
    let Some(op) = open.iter().rev().find(|o| o.env.as_deref() == Some(env)) else {
        return Ok(None);
    };
    let color = if op.last_phase == Phase::RuntimeApplied {
        &op.after
    } else {
        &op.before
    };
    Ok(color.as_deref().and_then(Color::parse))
}

/// Closes the fleet journal's open operations of `env` (resolved by apply).
pub fn close_open(fleet: &Fleet, env: &str, why: &str) -> Result<(), EdgeError> {
    let fj = super::journal(fleet);
    for o in fj
        .open_operations()?
        .into_iter()
        .filter(|o| o.env.as_deref() == Some(env))
    {
        let op = o.continued_by(&crate::state::who());
        fj.journal_record(&op, Phase::RolledBack, Some(why))?;
    }
    Ok(())
}

/// `apply --fleet`: every edge repaired to its recorded colors (open transactions aborted),
/// then each env whose edges still disagree flipped to the color the fleet journal names.
pub async fn apply(fleet: &Fleet, members: &mut [Member]) -> Result<FleetApply, EdgeError> {
    let repaired = repair_all(members).await;
    let status = status(fleet, members).await?;
    let drifting: Vec<String> = status
        .drift
        .iter()
        .filter_map(|line| {
            let rest = line.strip_prefix("DRIFT across edges on ")?;
            rest.split(':').next().map(str::to_string)
        })
        .collect();
    let mut resolved = Vec::new();
    let mut unresolved = Vec::new();
    for env in drifting {
        match resolve_env(fleet, members, &env).await? {
            Ok(line) => resolved.push(line),
            Err(line) => unresolved.push(line),
        }
    }
    // Open fleet transactions whose envs now agree are over.
    let left: Vec<&str> = unresolved
        .iter()
        .filter_map(|u| u.split(':').next())
        .collect();
    for t in journal_open_envs(fleet)?
        .into_iter()
        .filter(|e| !left.contains(&e.as_str()))
    {
        close_open(fleet, &t, "closed by apply: every edge agrees")?;
    }
    Ok(FleetApply {
        repaired,
        resolved,
        unresolved,
    })
}

/// Every edge repaired at once, one line each.
async fn repair_all(members: &mut [Member]) -> Vec<EdgeOutcome> {
    let repaired = join_all(members.iter_mut().map(|m| async move {
        let name = m.name().to_string();
        let r = m.repair().await;
        (name, r)
    }))
    .await;
    repaired
        .into_iter()
        .map(|(edge, r)| EdgeOutcome {
            edge,
            from: None,
            to: Color::Blue,
            result: if r.is_ok() {
                "repaired"
            } else {
                "NOT REPAIRED"
            }
            .to_string(),
            ms: 0.0,
            detail: match r {
                Ok(d) => d,
                Err(e) => e.to_string(),
            },
        })
        .collect()
}

/// One env whose edges disagree: flipped to the color the fleet journal names (`Ok`: the
/// resolved line), or left with the command to run (`Err`: the unresolved line).
async fn resolve_env(
    fleet: &Fleet,
    members: &mut [Member],
    env: &str,
) -> Result<Result<String, String>, EdgeError> {
    let Some(color) = resolve_color(fleet, env)? else {
        return Ok(Err(format!(
            "{env}: the edges disagree and the fleet journal names no unfinished transaction; \
             `vezasock switch --fleet … {env} COLOR` puts every edge on one color"
        )));
    };
    let req = SwitchRequest::new(env, color);
    if let Err(e) = switch(fleet, members, &req, DEFAULT_TTL).await {
        return Ok(Err(format!("{env}: the switch to {color} failed: {e}")));
    }
    close_open(
        fleet,
        env,
        &format!("resolved by apply: every edge on {color}"),
    )?;
    Ok(Ok(format!(
        "{env}: every edge on {color} (the fleet journal's unfinished transaction)"
    )))
}

fn journal_open_envs(fleet: &Fleet) -> Result<Vec<String>, EdgeError> {
    Ok(super::journal(fleet)
        .open_operations()?
        .into_iter()
        .filter_map(|o| o.env)
        .collect())
}
