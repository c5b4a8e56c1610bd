//! `vezasock preview ENV COLOR`: prints a fresh preview token (first line, alone, for scripts),
//! how to send it, and a ready `curl` line; `--revoke` removes the env's token.

use std::process::ExitCode;

use clap::Args;

use super::args::{parse_name, Checked, LockArgs, TopologyArgs};
use super::common::{after, fail, runtime_and_edge};
use super::exit::Exit;
use super::output;
use crate::edge::deploy::preview::preview;
use crate::topology::Color;

// Arguments of `vezasock preview` (a plain comment: a doc comment would replace the
// subcommand's about text).
#[derive(Debug, Clone, Args)]
pub struct PreviewArgs {
    /// The env to preview, e.g. staging (1-64 characters of 0-9A-Za-z._-).
    #[arg(value_parser = Checked(parse_name))]
    pub env: String,
    /// The color the token reaches: blue or green (usually the idle one).
    #[arg(required_unless_present = "revoke", conflicts_with = "revoke")]
    pub color: Option<Color>,
    /// Remove the env's preview token instead.
    #[arg(long)]
    pub revoke: bool,
    #[command(flatten)]
    pub lock: LockArgs,
    /// Print a JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub fleet: super::fleet::FleetArgs,
    #[command(flatten)]
    pub topology: TopologyArgs,
}

/// Runs `vezasock preview`.
pub fn run(args: &PreviewArgs) -> ExitCode {
    let color = if args.revoke { None } else { args.color };
    if let Some(fleet) = &args.fleet.fleet {
        let lock_wait = args.lock.lock_wait();
        let how = (&args.topology, args.json);
        return super::fleet::run_preview(fleet, how, &args.env, color, lock_wait);
    }
    let (rt, edge) = match runtime_and_edge("preview", &args.topology) {
        Ok(both) => both,
        Err(exit) => return exit.into(),
    };
    let who = crate::state::who();
    let report = rt.block_on(preview(
        &edge,
        &args.env,
        color,
        args.lock.lock_wait(),
        &who,
    ));
    after(&rt, &edge, "preview");
    let report = match report {
        Ok(report) => report,
        Err(e) => return fail("preview", &e).into(),
    };
    if args.json {
        output::json(&report);
        return Exit::Ok.into();
    }
    match (&report.token, report.color) {
        (Some(token), Some(color)) => {
            output::line(token);
            output::line(&format!(
                "requests to {} with `{}: {token}` (or the cookie {}={token}) reach {color}",
                report.env, report.header, report.cookie
            ));
            if let Some(curl) = &report.curl {
                output::line(curl);
            }
        }
        _ if report.revoked > 0 => {
            output::line(&format!("the preview token of {} was revoked", report.env))
        }
        _ => output::line(&format!(
            "{} has no preview token: nothing to revoke",
            report.env
        )),
    }
    Exit::Ok.into()
}
