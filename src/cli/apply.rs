//! `vezasock apply`: bring the edge to the topology with the recorded colors — nothing, a few
//! runtime map edits, or a checked, verified reload with automatic rescue (`edge::apply`).
//! `--dry-run` prints what `plan` prints.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::exit::Exit;
use super::plan::print_plan;
use super::render::TopologyArgs;
use super::switch::load_edge;
use crate::edge::apply::{apply, ApplyOptions, ApplyReport};
use crate::plan::Plan;
use crate::state::Wait;

/// Arguments of `vezasock apply`.
#[derive(Debug, Clone, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub topology: TopologyArgs,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// Only show what would be done (the same as `vezasock plan`).
    #[arg(long)]
    pub dry_run: bool,
    /// Fail at once (exit 4) when another vezasock holds the edge's lock.
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait for the edge's lock, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub lock_timeout: u64,
}

/// Runs `vezasock apply`.
pub fn run(args: &ApplyArgs) -> ExitCode {
    let edge = match load_edge("apply", &args.topology) {
        Ok(edge) => edge,
        Err(exit) => return exit.into(),
    };
    let options = ApplyOptions {
        dry_run: args.dry_run,
        wait: if args.no_wait {
            Wait::No
        } else {
            Wait::up_to(Duration::from_secs(args.lock_timeout))
        },
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vezasock apply: cannot start the async runtime: {e}");
            return Exit::Refused.into();
        }
    };
    match runtime.block_on(apply(&edge, options)) {
        Ok(report) => {
            if args.json {
                match serde_json::to_string_pretty(&report) {
                    Ok(j) => println!("{j}"),
                    Err(e) => {
                        eprintln!("vezasock apply: {e}");
                        return Exit::Refused.into();
                    }
                }
            } else {
                print_human(&report);
            }
            Exit::Ok.into()
        }
        Err(e) => {
            if args.json {
                let j =
                    serde_json::json!({ "error": e.to_string(), "exit": Exit::of_edge(&e) as u8 });
                println!("{j}");
            }
            eprintln!("vezasock apply: {e}");
            Exit::of_edge(&e).into()
        }
    }
}

fn print_human(report: &ApplyReport) {
    print_plan(&report.plan);
    if report.dry_run {
        return;
    }
    if let Some(repair) = &report.repair {
        for f in &repair.fixed {
            println!("repaired: {f}");
        }
        for id in &repair.closed {
            println!("repaired: closed interrupted operation {id}");
        }
    }
    for f in &report.files_written {
        println!("wrote {}", f.display());
    }
    for c in &report.runtime_changes {
        println!("runtime: {c}");
    }
    if let Some(r) = &report.reload {
        println!(
            "reloaded ({}, HAProxy {}): reload #{}, new worker(s) {:?}, worker {} verified: {} backends, {} server states kept",
            r.method,
            r.report.version,
            r.report.reloads,
            r.report.new_workers,
            r.worker,
            r.backends,
            r.servers_checked
        );
        if !r.moved_servers.is_empty() {
            println!(
                "  moved servers (state-file rows dropped, states set again): {}",
                r.moved_servers.join(", ")
            );
        }
        for line in &r.report.log {
            match &line.level {
                Some(level) => println!("  [{level}] {}", line.message),
                None => println!("  {}", line.message),
            }
        }
    }
    if report.untouched() && !matches!(report.plan, Plan::Nothing) {
        println!("(the edge already held these values)");
    } else if report.untouched() {
        println!("The edge was not touched.");
    }
}
