//! `vezasock plan`: what an `apply` would do — nothing, runtime map edits, or a reload and why.
//! Reads the live config, its shape summary and the live map files ([`read_live`]), then asks
//! the pure planner.

use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use super::render::{load_and_render, TopologyArgs};
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
    let result = load_and_render(&args.topology, &[])
        .and_then(|(topo, rendered)| read_live(&topo.paths).map(|live| (rendered, live)));
    let (rendered, live) = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vezasock plan: {e}");
            return ExitCode::FAILURE;
        }
    };
    let p = plan(&rendered, &live);
    if args.json {
        let report = PlanReport {
            desired_fingerprint: &rendered.fingerprint,
            live_fingerprint: live.fingerprint.as_deref(),
            plan: &p,
        };
        match serde_json::to_string_pretty(&report) {
            Ok(j) => println!("{j}"),
            Err(e) => {
                eprintln!("vezasock plan: {e}");
                return ExitCode::FAILURE;
            }
        }
        return ExitCode::SUCCESS;
    }
    print_plan(&p);
    ExitCode::SUCCESS
}

/// A plan for humans (also what `apply` prints first).
pub(super) fn print_plan(plan: &Plan) {
    match plan {
        Plan::Nothing => println!("Nothing to do: the live edge matches the topology."),
        Plan::Runtime { steps } => {
            println!("Runtime changes, no reload ({} map edit(s)):", steps.len());
            for s in steps {
                println!("  - {s}");
            }
        }
        Plan::Reload { reasons } => {
            println!("Reload needed: the edge's shape changed.");
            for r in reasons {
                println!("  - {r}");
            }
        }
    }
}
