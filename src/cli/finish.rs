//! The one finishing point of the commands: a command returns its report or its error
//! ([`EdgeError`]); [`finish`] prints it (human text, or `--json`, including the failure JSON)
//! and gives the exit code (the error's own, [`EdgeError::exit`]; a report's own for the
//! reports that have one, such as status with drift or a drain still busy, which then say why
//! on stderr).
//!
//! What goes wrong before the command runs (the topology cannot be loaded, flags that do not
//! go together) is said on stderr only ([`said`]), with its exit code.

use std::process::ExitCode;

use serde::Serialize;

use super::exit::Exit;
use super::output;
use crate::edge::EdgeError;

/// What a command prints when it succeeds, and the exit it gives.
pub(crate) trait Report {
    /// The `--json` value.
    type Json<'a>: Serialize
    where
        Self: 'a;

    fn json(&self) -> Self::Json<'_>;

    /// The human text on stdout (each line ends with a newline; empty when the command printed
    /// its lines as they happened).
    fn human(&self) -> String;

    /// Indented JSON (the reports people read as often as scripts do).
    fn pretty(&self) -> bool {
        false
    }

    /// The exit code of a report (0: done).
    fn exit(&self) -> Exit {
        Exit::Ok
    }

    /// A line said on stderr after the report, text or JSON: why a report gives its own
    /// non-zero exit (a drain still busy at its deadline, a takeover that needs colors), or
    /// what it left out (a history file longer than the entries kept).
    fn note(&self) -> Option<String> {
        None
    }
}

/// A command that failed: its error, and what its failure JSON carries beside `ok`, `error`
/// and `exit` (the steps done before it, the fleet's report, …; `()` for nothing).
pub(crate) struct Failed<X> {
    pub error: EdgeError,
    pub beside: X,
}

impl From<EdgeError> for Failed<()> {
    fn from(error: EdgeError) -> Failed<()> {
        Failed { error, beside: () }
    }
}

/// The failure JSON: `{ok: false, error, exit, …beside}`.
#[derive(Serialize)]
struct FailureJson<'a, X: Serialize> {
    ok: bool,
    error: String,
    exit: u8,
    #[serde(flatten)]
    beside: &'a X,
}

/// Prints `result` for `vezasock COMMAND` and returns its exit code: the report on stdout
/// (human or JSON); or the error on stderr, and with `json` the failure JSON on stdout.
pub(crate) fn finish<R: Report, X: Serialize>(
    command: &str,
    json: bool,
    result: Result<R, Failed<X>>,
) -> ExitCode {
    match result {
        Ok(report) => {
            if !json {
                output::text(&report.human());
            } else if report.pretty() {
                output::json_pretty(&report.json());
            } else {
                output::json(&report.json());
            }
            if let Some(note) = report.note() {
                eprintln!("vezasock {command}: {note}");
            }
            report.exit().into()
        }
        Err(failed) => fail(command, json, &failed).into(),
    }
}

/// Prints a failure (the error on stderr; with `json` the failure JSON on stdout) and returns
/// its exit code.
pub(crate) fn fail<X: Serialize>(command: &str, json: bool, failed: &Failed<X>) -> Exit {
    if json {
        output::json(&FailureJson {
            ok: false,
            error: failed.error.to_string(),
            exit: failed.error.exit() as u8,
            beside: &failed.beside,
        });
    }
    said(command, &failed.error)
}

/// Says `error` on stderr (`vezasock COMMAND: …`) and returns its exit code: the failures that
/// print no JSON (the edge could not be loaded, a status that could not be read).
pub(crate) fn said(command: &str, error: &EdgeError) -> Exit {
    eprintln!("vezasock {command}: {error}");
    error.exit()
}

/// The `{ok: true, …report}` JSON of the reports that say `ok`.
#[derive(Serialize)]
pub(crate) struct WithOk<'a, R: Serialize> {
    pub ok: bool,
    #[serde(flatten)]
    pub report: &'a R,
}

impl<'a, R: Serialize> WithOk<'a, R> {
    pub(crate) fn of(report: &'a R) -> WithOk<'a, R> {
        WithOk { ok: true, report }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure_json<X: Serialize>(beside: X) -> String {
        let failed = Failed {
            error: EdgeError::BadInput("no env \"x\"".into()),
            beside,
        };
        serde_json::to_string(&FailureJson {
            ok: false,
            error: failed.error.to_string(),
            exit: failed.error.exit() as u8,
            beside: &failed.beside,
        })
        .unwrap_or_default()
    }

    /// The failure JSON is `ok`, `error`, `exit`, then what the command adds, in that order.
    #[test]
    fn the_failure_json_is_ok_error_exit_then_what_the_command_adds() {
        assert_eq!(
            failure_json(()),
            r#"{"ok":false,"error":"no env \"x\"","exit":2}"#
        );
        #[derive(Serialize)]
        struct Steps {
            steps: Vec<u8>,
        }
        assert_eq!(
            failure_json(Steps { steps: vec![1] }),
            r#"{"ok":false,"error":"no env \"x\"","exit":2,"steps":[1]}"#
        );
    }
}
