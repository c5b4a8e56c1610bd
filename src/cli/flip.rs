//! The output of a flip, shared by `switch` and `rollback` (a rollback is a switch to the
//! color the history names): one human line per step, then the outcome; or one JSON object.

use std::process::ExitCode;

use serde::Serialize;

use super::exit::Exit;
use super::output;
use crate::edge::switch::{Step, SwitchReport};
use crate::edge::EdgeError;

/// One step as a human line: `gate          0.412 ms  3 server(s) of green UP and ready`.
pub(crate) fn step_line(step: &Step) -> String {
    format!("{:<13} {:>9.3} ms  {}", step.name, step.ms, step.detail)
}

/// The JSON printed on failure: the error, its exit code, and the steps done before it.
#[derive(Debug, Serialize)]
struct JsonFailure<'a> {
    ok: bool,
    error: String,
    exit: u8,
    steps: &'a [Step],
}

/// The JSON printed on success.
#[derive(Debug, Serialize)]
struct JsonSuccess<'a> {
    ok: bool,
    #[serde(flatten)]
    report: &'a SwitchReport,
}

/// Prints a switch (or rollback) outcome and returns its exit code. Human steps were printed
/// live by the step callback.
pub(crate) fn finish(
    command: &str,
    json: bool,
    result: Result<SwitchReport, EdgeError>,
    steps: &[Step],
) -> ExitCode {
    match result {
        Ok(report) => {
            if json {
                output::json(&JsonSuccess {
                    ok: true,
                    report: &report,
                });
            } else {
                print_human(&report);
            }
            Exit::Ok.into()
        }
        Err(error) => {
            let exit = Exit::of_edge(&error);
            if json {
                output::json(&JsonFailure {
                    ok: false,
                    error: error.to_string(),
                    exit: exit as u8,
                    steps,
                });
            }
            eprintln!("vezasock {command}: {error}");
            exit.into()
        }
    }
}

fn print_human(report: &SwitchReport) {
    for line in &report.drift {
        output::line(&format!("warning: {line}"));
    }
    for note in &report.notes {
        output::line(&format!("note: {note}"));
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
    output::line(&format!("{what}; total {:.3} ms", report.total_ms));
    if let Some(left) = report.drain_left {
        output::line(&format!(
            "warning: {left} session(s) still open on {} after the drain timeout",
            report.from
        ));
    }
}
