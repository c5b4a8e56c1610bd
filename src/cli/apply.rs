//! `vezasock apply`: bring the edge to the topology with the recorded colors — nothing, a few
//! runtime map edits, or a checked, verified reload with automatic rescue (`edge::apply`).
//! On a host where HAProxy is not running and no config exists yet, it installs the checked
//! files instead and prints the command that starts HAProxy (`edge::install`).
//! `--dry-run` prints what `plan` prints.

use std::fmt::Write as _;
use std::process::ExitCode;

use clap::Args;

use super::after::after;
use super::args::{LockArgs, TopologyArgs};
use super::common::{load_edge, runtime};
use super::exit::Exit;
use super::finish::{self, Failed, Report};
use super::plan::{plan_text, undecided, TakeoverArgs, NEEDS_COLORS};
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
    finish::finish("apply", args.json, result.map_err(Failed::from))
}

impl Report for ApplyOutcome {
    type Json<'a> = &'a ApplyOutcome;

    fn json(&self) -> &ApplyOutcome {
        self
    }

    fn human(&self) -> String {
        match self {
            ApplyOutcome::Applied(report) => applied_text(report),
            ApplyOutcome::Installed(report) => install_text(report),
        }
    }

    fn pretty(&self) -> bool {
        true
    }

    /// A dry run of a takeover that apply would refuse is exit 1, as `plan` is.
    fn exit(&self) -> Exit {
        if takeover_undecided(self) {
            Exit::Refused
        } else {
            Exit::Ok
        }
    }

    fn note(&self) -> Option<String> {
        takeover_undecided(self).then(|| NEEDS_COLORS.to_string())
    }
}

/// A dry run of a takeover with an env left without a color.
fn takeover_undecided(outcome: &ApplyOutcome) -> bool {
    matches!(outcome, ApplyOutcome::Applied(r) if undecided(&r.plan))
}

fn install_text(report: &InstallReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "installed: {}", report.reason);
    for d in &report.dirs_created {
        let _ = writeln!(out, "created {}", d.display());
    }
    for f in &report.files_written {
        let _ = writeln!(out, "wrote {}", f.display());
    }
    let _ = writeln!(
        out,
        "`haproxy -c` passed; shape {}, active colors {}",
        report.desired_fingerprint,
        colors_line(&report.colors)
    );
    if !report.history_recorded.is_empty() {
        let _ = writeln!(
            out,
            "initial colors recorded in the history of {}",
            report.history_recorded.join(", ")
        );
    }
    let _ = writeln!(out, "HAProxy was not started. Start it with:");
    let _ = writeln!(out, "  {}", report.start);
    let _ = writeln!(
        out,
        "or, when the haproxy unit runs this config with the same master socket: {}",
        report.start_with_systemd
    );
    out
}

fn applied_text(report: &ApplyReport) -> String {
    let mut out = plan_text(&report.plan);
    if report.dry_run {
        return out;
    }
    if let Some(repair) = &report.repair {
        for f in &repair.fixed {
            let _ = writeln!(out, "repaired: {f}");
        }
        for id in &repair.closed {
            let _ = writeln!(out, "repaired: closed interrupted operation {id}");
        }
    }
    if let Some(t) = &report.takeover {
        for r in &t.recorded {
            let _ = writeln!(out, "recorded: {r}");
        }
    }
    for f in &report.files_written {
        let _ = writeln!(out, "wrote {}", f.display());
    }
    for c in &report.runtime_changes {
        let _ = writeln!(out, "runtime: {c}");
    }
    if let Some(r) = &report.reload {
        let _ = writeln!(
            out,
            "reloaded ({}, HAProxy {}): reload #{}, new worker(s) {:?}, worker {} verified: \
             {} backends, {} server states kept",
            r.method,
            r.report.version,
            r.report.reloads,
            r.report.new_workers,
            r.worker,
            r.backends,
            r.servers_checked
        );
        if !r.moved_servers.is_empty() {
            let _ = writeln!(
                out,
                "  moved servers (state-file rows dropped, states set again): {}",
                r.moved_servers.join(", ")
            );
        }
        for line in &r.report.log {
            let _ = match &line.level {
                Some(level) => writeln!(out, "  [{level}] {}", line.message),
                None => writeln!(out, "  {}", line.message),
            };
        }
    }
    if report.untouched() && !matches!(report.plan, Plan::Nothing) {
        let _ = writeln!(out, "(the edge already held these values)");
    } else if report.untouched() {
        let _ = writeln!(out, "The edge was not touched.");
    }
    out
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
