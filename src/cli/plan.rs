//! `vezasock plan`: what an `apply` would do — nothing, runtime map edits, or a reload and why.
//! Reads the live config, its shape summary and the live map files ([`read_live`]), then asks
//! the pure planner.

use std::io::ErrorKind;
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use super::render::{load_and_render, TopologyArgs};
use crate::plan::{plan, LiveView, Plan};
use crate::render::{maps, shape, ShapeSummary};
use crate::topology::Paths;

/// Arguments of `vezasock plan`.
#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub topology: TopologyArgs,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// Reads a file that may not exist yet.
fn read_optional(path: &std::path::Path) -> Result<Option<String>, String> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// What is live on disk: the config's declared fingerprint, its shape summary and the maps.
/// Missing files read as empty; unreadable or malformed ones are errors.
pub fn read_live(paths: &Paths) -> Result<LiveView, String> {
    let fingerprint = read_optional(&paths.config)?.and_then(|c| shape::declared_fingerprint(&c));
    let summary_path = shape::summary_path(&paths.config);
    let summary = match read_optional(&summary_path)? {
        Some(text) => Some(
            serde_json::from_str::<ShapeSummary>(&text)
                .map_err(|e| format!("{}: not a shape summary: {e}", summary_path.display()))?,
        ),
        None => None,
    };
    let hosts = match read_optional(&paths.hosts_map())? {
        Some(t) => {
            maps::parse_map(&t).map_err(|e| format!("{}: {e}", paths.hosts_map().display()))?
        }
        None => Default::default(),
    };
    let colors = match read_optional(&paths.active_color_map())? {
        Some(t) => maps::parse_colors(&t)
            .map_err(|e| format!("{}: {e}", paths.active_color_map().display()))?,
        None => Default::default(),
    };
    Ok(LiveView {
        fingerprint,
        summary,
        hosts,
        colors,
    })
}

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
    match &p {
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
    ExitCode::SUCCESS
}
