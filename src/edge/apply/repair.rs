//! Repair after a crash: make the runtime active-color map and the map file on disk agree with
//! the recorded colors (the state files), and close the interrupted switch operations in the
//! journal. `vezasock apply` calls [`repair`] before anything else.
//!
//! Why the state files win: a switch writes them LAST, after the read-back verified the flip
//! (docs/architecture.md §3, `switch` module doc). So a state file only ever names a color that was
//! verified live, while the map file and the runtime may be ahead of it by an interrupted
//! switch whose read-back never happened (or was never recorded). Rolling such a switch back
//! to the recorded color is always safe; rolling it forward would trust a flip nobody checked.
//! A later `switch` to the interrupted target simply runs again, gate and read-back included.
//!
//! How a repair shows in the history: a flip killed between its history line and its state
//! file left the history one line ahead of the state file; repair undoes the flip and removes
//! that line, so the history's newest line is the recorded deploy again (the journal keeps the
//! undone flip: its operation is closed as `rolled-back`). Repair adds no line of its own: the
//! history lists deploys, and a repair deploys nothing.
//!
//! A canary killed mid-way ([`crate::edge::deploy::canary::repair_crashed`]) goes back to 0 %, not forward:
//! every user returns to the recorded color, which the state file names as verified.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::edge::active_color::{
    map_file_colors, map_ref, recorded_colors, runtime_color, write_map_file,
};
use crate::edge::{Edge, EdgeError};
use crate::runtime::command::maps::{AddMap, SetMap};
use crate::runtime::session::Batch;
use crate::state::{Action, EdgeLock, Holder, Operation, Phase, Wait};
use crate::topology::Color;

/// What [`repair`] found and fixed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RepairReport {
    /// One line per fix, e.g. `staging: runtime green → blue (set map …)`.
    pub fixed: Vec<String>,
    /// Journal operations closed as `rolled-back` (their ids).
    pub closed: Vec<String>,
    /// The recorded colors everything now agrees with.
    pub colors: BTreeMap<String, Color>,
}

impl RepairReport {
    /// True when nothing needed fixing.
    pub fn is_clean(&self) -> bool {
        self.fixed.is_empty() && self.closed.is_empty()
    }
}

/// Takes the edge lock (waiting up to 60 s), then repairs; see [`repair_locked`].
pub async fn repair(edge: &Edge) -> Result<RepairReport, EdgeError> {
    let lock = EdgeLock::acquire_async(
        &edge.state,
        Wait::up_to(std::time::Duration::from_secs(60)),
        Holder::current(),
    )
    .await?;
    repair_locked(edge, &lock).await
}

/// Repairs with the edge lock already held by the caller (e.g. `apply`, which holds it for its
/// whole run: taking it again from the same process would wait on itself).
/// Once something is repaired, a failure is not "nothing changed" (exit 5, naming what was).
pub async fn repair_locked(edge: &Edge, lock: &EdgeLock) -> Result<RepairReport, EdgeError> {
    let mut report = RepairReport::default();
    match repair_steps(edge, lock, &mut report).await {
        Ok(()) => Ok(report),
        Err(e) if report.is_clean() => Err(e),
        Err(e) => Err(EdgeError::NotVerified(format!(
            "{e}; repaired so far: {}; run `vezasock apply` again to finish",
            report.fixed.join("; ")
        ))),
    }
}

async fn repair_steps(
    edge: &Edge,
    lock: &EdgeLock,
    report: &mut RepairReport,
) -> Result<(), EdgeError> {
    let who = crate::state::who();
    report.colors = recorded_colors(edge)?;
    // A canary whose process is gone goes back to 0 %: the safe side, every user on the
    // recorded color (a running canary is left alone).
    report
        .fixed
        .extend(crate::edge::deploy::canary::repair_crashed(edge, lock, &who).await?);
    // An interrupted `cert update`: HAProxy back to the files of the certs dir.
    let certs = crate::edge::cert::repair_interrupted(edge, &who).await?;
    report.fixed.extend(certs.fixed);
    report.closed.extend(certs.closed);
    let map = map_ref(edge);
    let mut session = edge.admin_session().await?;
    let entries = session.show_map(&map, None).await?;
    let file = map_file_colors(edge)?;
    let open = edge.state.open_operations()?;

    // The map file first (one atomic write for every env), then the runtime, as a switch does.
    let file_wrong: Vec<String> = report
        .colors
        .iter()
        .filter(|(env, color)| {
            file.as_ref()
                .is_none_or(|f| f.get(*env).copied().unwrap_or(Color::Blue) != **color)
        })
        .map(|(env, color)| format!("{env} → {color}"))
        .collect();
    let mut runtime_wrong = Vec::new();
    for (env, color) in &report.colors {
        let live = runtime_color(&entries, env)?;
        if live.unwrap_or(Color::Blue) != *color {
            runtime_wrong.push((env.clone(), live, *color));
        }
    }
    if file_wrong.is_empty() && runtime_wrong.is_empty() && !open.iter().any(is_flip) {
        return Ok(());
    }

    let op = Operation::new(Action::Apply, None, None, None, &who);
    edge.state.journal_record(
        &op,
        Phase::Intent,
        Some("repair: back to the recorded colors"),
    )?;
    if !file_wrong.is_empty() {
        write_map_file(edge, &report.colors)?;
        report.fixed.push(format!(
            "map file {}: {}",
            edge.topology.paths.active_color_map().display(),
            file_wrong.join(", ")
        ));
        edge.state.journal_record(&op, Phase::DiskWritten, None)?;
    }
    if !runtime_wrong.is_empty() {
        let mut commands = Batch::new();
        for (env, live, color) in &runtime_wrong {
            if live.is_some() {
                commands.push(SetMap::new(&map, env, color.as_str())?)?;
            } else {
                commands.push(AddMap::new(&map, None, env, color.as_str())?)?;
            }
        }
        if let Err(e) = session.run_batch(commands).await {
            let _ = edge
                .state
                .journal_record(&op, Phase::Failed, Some(&e.to_string()));
            return Err(e.into());
        }
        for (env, live, color) in &runtime_wrong {
            report.fixed.push(format!(
                "runtime {env}: {} → {color}",
                live.map_or("blue (no entry)", Color::as_str)
            ));
        }
        edge.state
            .journal_record(&op, Phase::RuntimeApplied, None)?;
    }

    // Read back before closing anything.
    let back = session.show_map(&map, None).await?;
    for (env, color) in &report.colors {
        let live = runtime_color(&back, env)?.unwrap_or(Color::Blue);
        if live != *color {
            let detail = format!("read-back: {env} is {live} in the runtime, recorded {color}");
            let _ = edge.state.journal_record(&op, Phase::Failed, Some(&detail));
            return Err(EdgeError::NotVerified(detail));
        }
    }

    // A flip killed between its history line and its state file left the history one line
    // ahead; it was just undone, so its line goes too: the history's newest line names the
    // recorded deploy again, and `rollback` goes back one deploy from there.
    for env in open
        .iter()
        .filter(|o| is_flip(o))
        .filter_map(|o| o.env.as_deref().zip(o.after.as_deref()))
    {
        let (env, after) = env;
        let Some(recorded) = report.colors.get(env).copied() else {
            continue;
        };
        let history = edge.state.history(env)?;
        let ahead = history
            .first()
            .is_some_and(|h| h.color != recorded && h.color.as_str() == after);
        if ahead {
            if let Some(line) = edge.state.drop_newest_history(env)? {
                report.fixed.push(format!(
                    "history {env}: removed `{}` (a flip to {after} that was undone)",
                    line.to_line()
                ));
            }
        }
    }
    for old in open.iter().filter(|o| is_flip(o)) {
        let closing = old.continued_by(&who);
        let back_to = old
            .env
            .as_ref()
            .and_then(|e| report.colors.get(e))
            .map_or("-", |c| c.as_str());
        edge.state.journal_record(
            &closing,
            Phase::RolledBack,
            Some(&format!(
                "interrupted after {}; repaired by op {} back to the recorded color {back_to}",
                old.last_phase.as_str(),
                op.op_id
            )),
        )?;
        report.closed.push(old.op_id.clone());
        report.fixed.push(format!("closed the interrupted {old}"));
    }
    edge.state
        .journal_record(&op, Phase::Done, Some(&report.fixed.join("; ")))?;
    Ok(())
}

/// A switch or rollback: the operations repair knows how to undo.
fn is_flip(op: &crate::state::OpenOperation) -> bool {
    matches!(op.action, Action::Switch | Action::Rollback)
}
