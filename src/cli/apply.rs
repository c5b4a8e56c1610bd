//! `vezasock apply`: bring the edge to the topology with the recorded colors — nothing, a few
//! runtime map edits, or a checked, verified reload with automatic rescue (`edge::apply`).
//! On a host where HAProxy is not running and no config exists yet, it installs the checked
//! files instead and prints the command that starts HAProxy (`edge::install`).
//! `--dry-run` prints what `plan` prints.

use std::process::ExitCode;

use clap::Args;

use super::args::{LockArgs, TopologyArgs};
use super::common::{after, load_edge, runtime};
use super::exit::Exit;
use super::output;
use super::plan::{print_plan, TakeoverArgs};
use crate::edge::apply::install::{apply_or_install_with, ApplyOutcome, InstallReport};
use crate::edge::apply::{ApplyOptions, ApplyReport};
use crate::plan::Plan;
use crate::topology::Color;

// Arguments of `vezasock apply` (a plain comment: a doc comment would replace the subcommand's
// about text, which clap applies from the `Command` variant).
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
    /// Take the reload path for servers added to or removed from a pool that the running
    /// HAProxy refuses over the runtime API (`plan` names them); without it `apply` refuses.
    #[arg(long)]
    pub reload: bool,
    #[command(flatten)]
    pub lock: LockArgs,
    #[command(flatten)]
    pub takeover: TakeoverArgs,
    #[command(flatten)]
    pub fleet: super::fleet::FleetArgs,
}

/// Runs `vezasock apply`.
pub fn run(args: &ApplyArgs) -> ExitCode {
    if let Some(fleet) = &args.fleet.fleet {
        if args.dry_run {
            eprintln!("vezasock apply: --dry-run is not available with --fleet; `vezasock status --fleet …` shows what differs");
            return Exit::BadInput.into();
        }
        return super::fleet::run_apply(fleet, &args.topology, args.json);
    }
    let edge = match load_edge("apply", &args.topology) {
        Ok(edge) => edge,
        Err(exit) => return exit.into(),
    };
    let options = ApplyOptions {
        dry_run: args.dry_run,
        wait: args.lock.wait(),
        allow_reload: args.reload,
    };
    let runtime = match runtime("apply") {
        Ok(r) => r,
        Err(exit) => return exit.into(),
    };
    let result = runtime.block_on(apply_or_install_with(
        &edge,
        options,
        &args.takeover.options(),
    ));
    after(&runtime, &edge, "apply");
    match result {
        Ok(outcome) => {
            if args.json {
                output::json_pretty(&outcome);
            } else {
                match &outcome {
                    ApplyOutcome::Applied(report) => print_human(report),
                    ApplyOutcome::Installed(report) => print_install(report),
                }
            }
            // A dry run of a takeover that apply would refuse says so, as `plan` does.
            match &outcome {
                ApplyOutcome::Applied(r) if matches!(&r.plan, Plan::Takeover { undecided, .. } if !undecided.is_empty()) =>
                {
                    eprintln!("vezasock apply: a takeover needs every env's color: pass --color ENV=COLOR");
                    Exit::Refused.into()
                }
                _ => Exit::Ok.into(),
            }
        }
        Err(e) => {
            if args.json {
                let j = serde_json::json!({ "error": e.to_string(), "exit": e.exit() as u8 });
                output::line(&j.to_string());
            }
            eprintln!("vezasock apply: {e}");
            e.exit().into()
        }
    }
}

fn print_install(report: &InstallReport) {
    output::line(&format!("installed: {}", report.reason));
    for d in &report.dirs_created {
        output::line(&format!("created {}", d.display()));
    }
    for f in &report.files_written {
        output::line(&format!("wrote {}", f.display()));
    }
    output::line(&format!(
        "`haproxy -c` passed; shape {}, active colors {}",
        report.desired_fingerprint,
        colors_line(&report.colors)
    ));
    if !report.history_recorded.is_empty() {
        output::line(&format!(
            "initial colors recorded in the history of {}",
            report.history_recorded.join(", ")
        ));
    }
    output::line("HAProxy was not started. Start it with:");
    output::line(&format!("  {}", report.start));
    output::line(&format!(
        "or, when the haproxy unit runs this config with the same master socket: {}",
        report.start_with_systemd
    ));
}

fn print_human(report: &ApplyReport) {
    print_plan(&report.plan);
    if report.dry_run {
        return;
    }
    if let Some(repair) = &report.repair {
        for f in &repair.fixed {
            output::line(&format!("repaired: {f}"));
        }
        for id in &repair.closed {
            output::line(&format!("repaired: closed interrupted operation {id}"));
        }
    }
    if let Some(t) = &report.takeover {
        for r in &t.recorded {
            output::line(&format!("recorded: {r}"));
        }
    }
    for f in &report.files_written {
        output::line(&format!("wrote {}", f.display()));
    }
    for c in &report.runtime_changes {
        output::line(&format!("runtime: {c}"));
    }
    if let Some(r) = &report.reload {
        output::line(&format!(
            "reloaded ({}, HAProxy {}): reload #{}, new worker(s) {:?}, worker {} verified: {} backends, {} server states kept",
            r.method,
            r.report.version,
            r.report.reloads,
            r.report.new_workers,
            r.worker,
            r.backends,
            r.servers_checked
        ));
        if !r.moved_servers.is_empty() {
            output::line(&format!(
                "  moved servers (state-file rows dropped, states set again): {}",
                r.moved_servers.join(", ")
            ));
        }
        for line in &r.report.log {
            match &line.level {
                Some(level) => output::line(&format!("  [{level}] {}", line.message)),
                None => output::line(&format!("  {}", line.message)),
            }
        }
    }
    if report.untouched() && !matches!(report.plan, Plan::Nothing) {
        output::line("(the edge already held these values)");
    } else if report.untouched() {
        output::line("The edge was not touched.");
    }
}

/// `staging=blue prod=green` on a small edge; counts per color on a big one (one line per env
/// would bury the start command under it; `vezasock status` lists them all).
fn colors_line<'a>(colors: impl IntoIterator<Item = (&'a String, &'a Color)>) -> String {
    const LISTED: usize = 12;
    let colors: Vec<(&String, &Color)> = colors.into_iter().collect();
    if colors.len() <= LISTED {
        let each: Vec<String> = colors.iter().map(|(e, c)| format!("{e}={c}")).collect();
        return each.join(" ");
    }
    let counts: Vec<String> = Color::ALL
        .iter()
        .map(|c| (c, colors.iter().filter(|(_, k)| *k == c).count()))
        .filter(|(_, n)| *n > 0)
        .map(|(c, n)| format!("{n} envs {c}"))
        .collect();
    format!("{} (`vezasock status` lists them)", counts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn colors_are_listed_on_a_small_edge_and_counted_on_a_big_one() {
        let small: BTreeMap<String, Color> = [("prod", Color::Green), ("staging", Color::Blue)]
            .into_iter()
            .map(|(e, c)| (e.to_string(), c))
            .collect();
        assert_eq!(colors_line(&small), "prod=green staging=blue");
        let big: BTreeMap<String, Color> = (0..500)
            .map(|i| {
                let c = if i < 3 { Color::Green } else { Color::Blue };
                (format!("e{i:04}"), c)
            })
            .collect();
        assert_eq!(
            colors_line(&big),
            "497 envs blue, 3 envs green (`vezasock status` lists them)"
        );
    }
}
