//! `vezasock preview ENV COLOR`: prints a fresh preview token (first line, alone, for scripts),
//! how to send it, and a ready `curl` line; `--revoke` removes the env's token.

use std::fmt::Write as _;
use std::process::ExitCode;

use clap::Args;

use super::after::after;
use super::args::{parse_name, Checked, LockArgs, TopologyArgs};
use super::common::runtime_and_edge;
use super::finish::{self, Failed, Report};
use crate::edge::deploy::preview::{preview, PreviewReport};
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
    finish::finish("preview", args.json, report.map_err(Failed::from))
}

impl Report for PreviewReport {
    type Json<'a> = &'a PreviewReport;

    fn json(&self) -> &PreviewReport {
        self
    }

    /// The token alone on the first line (for scripts), how to send it, and a `curl` line.
    fn human(&self) -> String {
        let mut out = String::new();
        let _ = match (&self.token, self.color) {
            (Some(token), Some(color)) => {
                let _ = writeln!(out, "{token}");
                let _ = writeln!(
                    out,
                    "requests to {} with `{}: {token}` (or the cookie {}={token}) reach {color}",
                    self.env, self.header, self.cookie
                );
                match &self.curl {
                    Some(curl) => writeln!(out, "{curl}"),
                    None => Ok(()),
                }
            }
            _ if self.revoked > 0 => {
                writeln!(out, "the preview token of {} was revoked", self.env)
            }
            _ => writeln!(out, "{} has no preview token: nothing to revoke", self.env),
        };
        out
    }
}
