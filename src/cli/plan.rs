//! `vezasock plan`: what an `apply` would do — nothing, runtime edits (map entries, moved
//! servers), or a reload and why; each change with `via runtime` or `via reload` and its reason.
//! Reads the live config, its shape summary and the live map files ([`read_live`]), then asks
//! the pure planner.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use super::args::TopologyArgs;
use super::common::runtime;
use super::exit::Exit;
use super::finish::{self, Failed, Report};
use super::render::load_and_render;
use crate::edge::apply::{has_pool_changes, is_takeover, takeover_plan, TakeoverOptions};
use crate::edge::{Edge, EdgeError};
use crate::plan::{plan, Plan, RuntimeStep};
use crate::render::Rendered;
use crate::topology::Color;

// Arguments of `vezasock plan` (a plain comment: a doc comment would replace the subcommand's
// about text, which clap applies from the `Command` variant).
#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub topology: TopologyArgs,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub takeover: TakeoverArgs,
}

// How a takeover decides each env's color, shared by `apply` and `plan` (a plain comment: a
// doc comment on a flattened `Args` struct would replace the subcommand's about text).
#[derive(Debug, Clone, Default, Args)]
pub struct TakeoverArgs {
    /// Takeover of a config vezasock did not render: keep ENV on COLOR (repeat per env; wins
    /// over the state file and the runtime).
    #[arg(long = "color", value_name = "ENV=COLOR", value_parser = parse_env_color)]
    pub colors: Vec<(String, Color)>,
    /// Takeover: the seed's state dir (`active-color-<env>`, `.history`) to read the colors
    /// from and import the histories of (default: the state dir itself).
    #[arg(long, value_name = "DIR")]
    pub seed_state: Option<PathBuf>,
}

impl TakeoverArgs {
    /// The library's options.
    pub fn options(&self) -> TakeoverOptions {
        TakeoverOptions {
            colors: self.colors.iter().cloned().collect(),
            seed_state: self.seed_state.clone(),
        }
    }
}

/// `staging=green`: an env name (checked against the topology later) and a color.
fn parse_env_color(value: &str) -> Result<(String, Color), String> {
    let (env, color) = value
        .split_once('=')
        .ok_or_else(|| "expected ENV=COLOR, e.g. staging=green".to_string())?;
    let ok_name = !env.is_empty()
        && env.len() <= 64
        && env
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if !ok_name {
        return Err("the env must be 1 to 64 of 0-9 A-Z a-z . _ -".to_string());
    }
    let color = Color::parse(color).ok_or_else(|| "the color must be blue or green".to_string())?;
    Ok((env.to_string(), color))
}

/// What is live on disk (moved into the library: `apply` reads it too).
pub use crate::edge::apply::read_live;

#[derive(Serialize)]
struct PlanReport {
    desired_fingerprint: String,
    live_fingerprint: Option<String>,
    #[serde(flatten)]
    plan: Plan,
}

impl Report for PlanReport {
    type Json<'a> = &'a PlanReport;

    fn json(&self) -> &PlanReport {
        self
    }

    fn human(&self) -> String {
        plan_text(&self.plan)
    }

    fn pretty(&self) -> bool {
        true
    }

    /// Exit 1 for a takeover whose colors cannot all be decided (apply would refuse it).
    fn exit(&self) -> Exit {
        if undecided(&self.plan) {
            Exit::Refused
        } else {
            Exit::Ok
        }
    }

    fn note(&self) -> Option<String> {
        undecided(&self.plan).then(|| NEEDS_COLORS.to_string())
    }
}

/// What `plan` and `apply` say after a takeover plan that leaves an env without a color.
pub(super) const NEEDS_COLORS: &str = "a takeover needs every env's color: pass --color ENV=COLOR";

/// A takeover that leaves some env without a color: `apply` refuses it.
pub(super) fn undecided(plan: &Plan) -> bool {
    matches!(plan, Plan::Takeover { undecided, .. } if !undecided.is_empty())
}

/// Runs `vezasock plan`. A takeover whose colors cannot all be decided is exit 1 (apply would
/// refuse it); the plan is printed first.
pub fn run(args: &PlanArgs) -> ExitCode {
    let (topo, rendered) = match load_and_render(&args.topology, &[]) {
        Ok(r) => r,
        Err(failure) => return failure.report("plan"),
    };
    let rt = match runtime("plan") {
        Ok(rt) => rt,
        Err(exit) => return exit.into(),
    };
    let edge = Edge::new(topo);
    let report = rt.block_on(plan_report(&edge, &rendered, &args.takeover));
    finish::finish("plan", args.json, report.map_err(Failed::from))
}

/// The plan from the live files: the running HAProxy's version when a pool changes (what
/// `add server` takes depends on it; unknown when it does not answer), and the takeover plan
/// when HAProxy runs a config vezasock did not render.
async fn plan_report(
    edge: &Edge,
    rendered: &Rendered,
    takeover: &TakeoverArgs,
) -> Result<PlanReport, EdgeError> {
    let mut live = read_live(&edge.topology.paths).map_err(EdgeError::Refused)?;
    if has_pool_changes(rendered, &live) {
        live.haproxy_version = crate::edge::apply::pool::running_version(edge).await;
    }
    let mut p = plan(rendered, &live);
    if is_takeover(edge, &live).await {
        p = takeover_plan(edge, &takeover.options()).await?;
    }
    Ok(PlanReport {
        desired_fingerprint: rendered.fingerprint.clone(),
        live_fingerprint: live.fingerprint,
        plan: p,
    })
}

/// A plan for humans (also what `apply` prints first).
pub(super) fn plan_text(plan: &Plan) -> String {
    let mut out = String::new();
    plan_lines(plan, &mut out);
    out
}

fn plan_lines(plan: &Plan, out: &mut String) {
    match plan {
        Plan::Nothing => {
            let _ = writeln!(out, "Nothing to do: the live edge matches the topology.");
        }
        Plan::Runtime { steps, changes } => {
            let moves = plan.server_moves().len();
            let added = steps
                .iter()
                .filter(|s| matches!(s, RuntimeStep::AddServer { .. }))
                .count();
            let removed = steps
                .iter()
                .filter(|s| matches!(s, RuntimeStep::RemoveServer { .. }))
                .count();
            let backends = steps
                .iter()
                .filter(|s| matches!(s, RuntimeStep::AddBackend { .. }))
                .count();
            let maps = steps.len() - moves - added - removed - backends;
            let mut count = format!("{maps} map edit(s)");
            if backends > 0 {
                count.push_str(&format!(", {backends} backend(s) added"));
            }
            if moves > 0 {
                count.push_str(&format!(", {moves} server move(s)"));
            }
            if added + removed > 0 {
                count.push_str(&format!(", {added} server(s) added, {removed} removed"));
            }
            let _ = writeln!(out, "Runtime changes, no reload ({count}):");
            change_lines(changes, out);
        }
        Plan::Reload {
            reasons,
            changes,
            refused_at_runtime,
        } => {
            let _ = writeln!(out, "Reload needed: the edge's shape changed.");
            for r in reasons {
                let _ = writeln!(out, "  - {r}");
            }
            if !refused_at_runtime.is_empty() {
                let _ = writeln!(
                    out,
                    "HAProxy refuses these pool changes at runtime: `apply` refuses them, \
                     `apply --reload` takes the reload path.",
                );
            }
            if !changes.is_empty() {
                let _ = writeln!(out, "Each change and how it reaches the edge:");
                change_lines(changes, out);
            }
        }
        Plan::Takeover {
            reasons,
            colors,
            undecided,
            steps,
        } => {
            let _ = writeln!(
                out,
                "Takeover of a config vezasock did not render (one checked, verified reload):",
            );
            for r in reasons {
                let _ = writeln!(out, "  - {r}");
            }
            let _ = writeln!(out, "Colors kept:");
            for d in colors {
                let _ = writeln!(
                    out,
                    "  - {}: {} (from the {}: {})",
                    d.env, d.color, d.source, d.detail
                );
            }
            if !undecided.is_empty() {
                let _ = writeln!(out, "UNDECIDED (apply refuses until each has a color):");
                for u in undecided {
                    let _ = writeln!(out, "  - {u}");
                }
            }
            let _ = writeln!(out, "Steps:");
            for (i, s) in steps.iter().enumerate() {
                let _ = writeln!(out, "  {}. {s}", i + 1);
            }
        }
    }
}

/// `  - <change>` and, under it, `via runtime|reload: <why>`.
fn change_lines(changes: &[crate::plan::Change], out: &mut String) {
    for c in changes {
        let _ = writeln!(out, "  - {}", c.change);
        let _ = writeln!(out, "      via {}: {}", c.via, c.reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_color_flags_parse_and_refuse_in_words() {
        assert_eq!(
            parse_env_color("staging=green"),
            Ok(("staging".to_string(), Color::Green))
        );
        assert!(parse_env_color("staging").is_err_and(|e| e.contains("ENV=COLOR")));
        assert!(parse_env_color("staging=red").is_err_and(|e| e.contains("blue or green")));
        assert!(parse_env_color("=blue").is_err_and(|e| e.contains("1 to 64")));
        assert!(parse_env_color("st;aging=blue").is_err());
        assert!(parse_env_color(&format!("{}=blue", "e".repeat(65))).is_err());
    }
}
