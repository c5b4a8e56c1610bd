//! `vezasock switch ENV COLOR`: the flip CI calls at the end of a deploy. Human output is one
//! line per step with its duration, then the total; `--json` prints one object. Also holds the
//! small helpers the edge commands share (runtime, edge loading, error output).

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde::Serialize;

use super::exit::Exit;
use super::render::TopologyArgs;
use super::servers::{parse_duration, LockArgs};
use crate::edge::switch::{switch, LockWait, Step, SwitchReport, SwitchRequest};
use crate::edge::{Edge, EdgeError};
use crate::topology::Color;

// Arguments of `vezasock switch` (a plain comment: a doc comment would replace the subcommand's
// about text, which clap applies from the `Command` variant).
#[derive(Debug, Clone, Args)]
pub struct SwitchArgs {
    /// The env to flip (e.g. staging).
    pub env: String,
    /// The color to make live: blue or green.
    pub color: Color,
    /// The deployed commit, recorded in the history.
    #[arg(long)]
    pub sha: Option<String>,
    /// Wait up to DURATION for every server of the target color to be UP (e.g. 30s).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub wait_healthy: Option<Duration>,
    /// After the flip, put the old color in DRAIN and wait for its sessions to end.
    #[arg(long)]
    pub drain_old: bool,
    /// How long --drain-old waits for the old color's sessions.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration, requires = "drain_old")]
    pub drain_timeout: Duration,
    /// Read and check only; print the steps without changing anything.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub lock: LockArgs,
    /// Print a JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub topology: TopologyArgs,
}

/// A single-threaded async runtime for one command; failing to start one is exit 3.
pub(crate) fn runtime(command: &str) -> Result<tokio::runtime::Runtime, Exit> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("vezasock {command}: cannot start the async runtime: {e}");
            Exit::Unreachable
        })
}

/// The edge from the topology flags; a bad topology is exit 2.
pub(crate) fn load_edge(command: &str, args: &TopologyArgs) -> Result<Edge, Exit> {
    args.load().map(Edge::new).map_err(|e| {
        eprintln!("vezasock {command}: {e}");
        Exit::BadInput
    })
}

/// The lock policy from `--no-wait` / `--lock-timeout`.
pub(crate) fn lock_wait(lock: &LockArgs) -> LockWait {
    if lock.no_wait {
        LockWait::No
    } else {
        LockWait::UpTo(lock.lock_timeout)
    }
}

/// One step as a human line: `gate          0.412 ms  3 server(s) of green UP and ready`.
pub(crate) fn step_line(step: &Step) -> String {
    format!("{:<13} {:>9.3} ms  {}", step.name, step.ms, step.detail)
}

/// The JSON printed on failure: the error, its exit code, and the steps done before it.
#[derive(Debug, Serialize)]
pub(crate) struct JsonFailure<'a> {
    pub ok: bool,
    pub error: String,
    pub exit: u8,
    pub steps: &'a [Step],
}

/// The JSON printed on success.
#[derive(Debug, Serialize)]
struct JsonSuccess<'a> {
    ok: bool,
    #[serde(flatten)]
    report: &'a SwitchReport,
}

/// Prints a value as one JSON line.
pub(crate) fn print_json(value: &impl Serialize) {
    match serde_json::to_string(value) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("vezasock: cannot print JSON: {e}"),
    }
}

/// Prints a switch (or rollback) outcome and returns its exit code. Human steps were printed
/// live by `on_step`.
pub(crate) fn finish(
    command: &str,
    json: bool,
    result: Result<SwitchReport, EdgeError>,
    steps: &[Step],
) -> ExitCode {
    match result {
        Ok(report) => {
            if json {
                print_json(&JsonSuccess {
                    ok: true,
                    report: &report,
                });
            } else {
                for line in &report.drift {
                    println!("warning: {line}");
                }
                for note in &report.notes {
                    println!("note: {note}");
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
                println!("{what}; total {:.3} ms", report.total_ms);
                if let Some(left) = report.drain_left {
                    println!(
                        "warning: {left} session(s) still open on {} after the drain timeout",
                        report.from
                    );
                }
            }
            Exit::Ok.into()
        }
        Err(error) => {
            let exit = Exit::of_edge(&error);
            if json {
                print_json(&JsonFailure {
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

/// Runs `vezasock switch`.
pub fn run(args: &SwitchArgs) -> ExitCode {
    let rt = match runtime("switch") {
        Ok(rt) => rt,
        Err(exit) => return exit.into(),
    };
    let edge = match load_edge("switch", &args.topology) {
        Ok(edge) => edge,
        Err(exit) => return exit.into(),
    };
    let mut req = SwitchRequest::new(&args.env, args.color);
    req.sha = args.sha.clone();
    req.wait_healthy = args.wait_healthy;
    req.drain_old = args.drain_old;
    req.drain_timeout = args.drain_timeout;
    req.dry_run = args.dry_run;
    req.lock_wait = lock_wait(&args.lock);
    let mut steps = Vec::new();
    let json = args.json;
    let result = rt.block_on(switch(&edge, &req, &mut |step| {
        if !json {
            println!("{}", step_line(step));
        }
        steps.push(step.clone());
    }));
    finish("switch", json, result, &steps)
}
