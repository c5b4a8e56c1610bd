//! `vezasock rollback ENV [--to SHA]`: back to the previous deploy's color (or the deploy with
//! that sha), through the same gated switch. Refused, with "a redeploy is needed", when that
//! color no longer runs the old deploy or its servers are not UP.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::after::after;
use super::args::{parse_duration, parse_name, parse_sha, Checked, LockArgs, TopologyArgs};
use super::common::runtime_and_edge;
use super::flip::{finish, step_line};
use super::output;
use crate::edge::deploy::rollback::rollback;
use crate::edge::deploy::switch::SwitchRequest;

// Arguments of `vezasock rollback` (a plain comment: a doc comment would replace the subcommand's
// about text, which clap applies from the `Command` variant).
#[derive(Debug, Clone, Args)]
pub struct RollbackArgs {
    /// The env to roll back (1-64 characters of 0-9A-Za-z._-).
    #[arg(value_parser = Checked(parse_name))]
    pub env: String,
    /// Roll back to the deploy with this sha (or a prefix of at least 4 characters; at most 64)
    /// instead of the previous one.
    #[arg(long, value_name = "SHA", value_parser = Checked(parse_sha))]
    pub to: Option<String>,
    /// Wait up to DURATION for the old color's servers to be UP (at most 7d).
    #[arg(long, value_name = "DURATION", value_parser = Checked(parse_duration))]
    pub wait_healthy: Option<Duration>,
    /// Read and check only; print the steps without changing anything.
    #[arg(long)]
    pub dry_run: bool,
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

impl RollbackArgs {
    /// The request these flags make, on one edge and on a fleet (the color and sha are filled
    /// in from the history).
    pub fn request(&self) -> SwitchRequest {
        let mut req = SwitchRequest::new(&self.env, crate::topology::Color::Blue);
        req.wait_healthy = self.wait_healthy;
        req.dry_run = self.dry_run;
        req.lock_wait = self.lock.lock_wait();
        req
    }
}

/// Runs `vezasock rollback`.
pub fn run(args: &RollbackArgs) -> ExitCode {
    let req = args.request();
    if let Some(fleet) = &args.fleet.fleet {
        let (topology, to) = (&args.topology, args.to.clone());
        return super::fleet::run_rollback(fleet, topology, args.json, req, to);
    }
    let (rt, edge) = match runtime_and_edge("rollback", &args.topology) {
        Ok(both) => both,
        Err(exit) => return exit.into(),
    };
    let json = args.json;
    let mut steps = Vec::new();
    let result = rt.block_on(rollback(&edge, req, args.to.as_deref(), &mut |step| {
        if !json {
            output::line(&step_line(step));
        }
        steps.push(step.clone());
    }));
    after(&rt, &edge, "rollback");
    finish("rollback", json, result, steps)
}
