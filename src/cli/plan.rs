//! `vezasock plan`: what an `apply` would do — nothing, runtime map edits, or a reload and why.
//! Reads the live config, its shape summary and the live map files ([`read_live`]), then asks
//! the pure planner.

use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use super::args::TopologyArgs;
use super::exit::Exit;
use super::output;
use super::render::load_and_render;
use crate::plan::{plan, Plan};

// Arguments of `vezasock plan` (a plain comment: a doc comment would replace the subcommand's
// about text, which clap applies from the `Command` variant).
#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub topology: TopologyArgs,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// What is live on disk (moved into the library: `apply` reads it too).
pub use crate::edge::apply::read_live;

#[derive(Serialize)]
struct PlanReport<'a> {
    desired_fingerprint: &'a str,
    live_fingerprint: Option<&'a str>,
    #[serde(flatten)]
    plan: &'a Plan,
}

/// Runs `vezasock plan`.
pub fn run(args: &PlanArgs) -> ExitCode {
    let (topo, rendered) = match load_and_render(&args.topology, &[]) {
        Ok(r) => r,
        Err(failure) => return failure.report("plan"),
    };
    let live = match read_live(&topo.paths) {
        Ok(live) => live,
        Err(e) => {
            eprintln!("vezasock plan: {e}");
            return Exit::Refused.into();
        }
    };
    let p = plan(&rendered, &live);
    if args.json {
        let report = PlanReport {
            desired_fingerprint: &rendered.fingerprint,
            live_fingerprint: live.fingerprint.as_deref(),
            plan: &p,
        };
        output::json_pretty(&report);
        return Exit::Ok.into();
    }
    print_plan(&p);
    Exit::Ok.into()
}

/// A plan for humans (also what `apply` prints first).
pub(super) fn print_plan(plan: &Plan) {
    match plan {
        Plan::Nothing => output::line("Nothing to do: the live edge matches the topology."),
        Plan::Runtime { steps } => {
            output::line(&format!(
                "Runtime changes, no reload ({} map edit(s)):",
                steps.len()
            ));
            for s in steps {
                output::line(&format!("  - {s}"));
            }
        }
        Plan::Reload { reasons } => {
            output::line("Reload needed: the edge's shape changed.");
            for r in reasons {
                output::line(&format!("  - {r}"));
            }
        }
    }
}
