//! The output of a flip, shared by `switch` and `rollback` (a rollback is a switch to the
//! color the history names): one human line per step, then the outcome; or one JSON object.

use std::process::ExitCode;

use serde::Serialize;

use super::finish::{Failed, Report, WithOk};
use crate::edge::deploy::switch::{Step, SwitchReport};
use crate::edge::EdgeError;

/// One step as a human line: `gate          0.412 ms  3 server(s) of green UP and ready`.
pub(crate) fn step_line(step: &Step) -> String {
    format!("{:<13} {:>9.3} ms  {}", step.name, step.ms, step.detail)
}

/// What the failure JSON of a flip carries: the steps done before it.
#[derive(Debug, Serialize)]
struct StepsDone {
    steps: Vec<Step>,
}

impl Report for SwitchReport {
    type Json<'a> = WithOk<'a, SwitchReport>;

    fn json(&self) -> WithOk<'_, SwitchReport> {
        WithOk::of(self)
    }

    fn human(&self) -> String {
        human(self)
    }
}

/// Prints a switch (or rollback) outcome and returns its exit code. Human steps were printed
/// live by the step callback; `steps` are the ones done, for the failure JSON.
pub(crate) fn finish(
    command: &str,
    json: bool,
    result: Result<SwitchReport, EdgeError>,
    steps: Vec<Step>,
) -> ExitCode {
    let result = result.map_err(|error| Failed {
        error,
        beside: StepsDone { steps },
    });
    super::finish::finish(command, json, result)
}

/// The outcome lines after the steps.
fn human(report: &SwitchReport) -> String {
    let mut out = String::new();
    for line in &report.drift {
        out.push_str(&format!("warning: {line}\n"));
    }
    for note in &report.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    let what = if report.noop {
        format!("{} is already {}: nothing changed", report.env, report.to)
    } else if report.dry_run {
        format!(
            "dry run: {} would switch {} → {}; nothing changed",
            report.env, report.from, report.to
        )
    } else {
        format!(
            "{} switched {} → {}{} (no reload)",
            report.env,
            report.from,
            report.to,
            report
                .sha
                .as_deref()
                .map(|s| format!(" at {s}"))
                .unwrap_or_default()
        )
    };
    out.push_str(&format!("{what}; total {:.3} ms\n", report.total_ms));
    if let Some(left) = report.drain_left {
        out.push_str(&format!(
            "warning: {left} session(s) still open on {} after the drain timeout\n",
            report.from
        ));
    }
    out
}
