//! `vezasock plan`: what an `apply` would do — nothing, runtime edits (map entries, moved
//! servers), or a reload and why; each change with `via runtime` or `via reload` and its reason.
//! Reads the live config, its shape summary and the live map files ([`read_live`]), then asks
//! the pure planner.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use super::args::TopologyArgs;
use super::common::{fail, load_edge, runtime};
use super::exit::Exit;
use super::output;
use super::render::load_and_render;
use crate::edge::apply::{has_pool_changes, is_takeover, takeover_plan, TakeoverOptions};
use crate::plan::{plan, Plan, RuntimeStep};
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
struct PlanReport<'a> {
    desired_fingerprint: &'a str,
    live_fingerprint: Option<&'a str>,
    #[serde(flatten)]
    plan: &'a Plan,
}

/// Runs `vezasock plan`. A takeover whose colors cannot all be decided is exit 1 (apply would
/// refuse it); the plan is printed first.
pub fn run(args: &PlanArgs) -> ExitCode {
    let (topo, rendered) = match load_and_render(&args.topology, &[]) {
        Ok(r) => r,
        Err(failure) => return failure.report("plan"),
    };
    let mut live = match read_live(&topo.paths) {
        Ok(live) => live,
        Err(e) => {
            eprintln!("vezasock plan: {e}");
            return Exit::Refused.into();
        }
    };
    if has_pool_changes(&rendered, &live) {
        live.haproxy_version = running_version(args);
    }
    let mut p = plan(&rendered, &live);
    if live.fingerprint.is_none() {
        match takeover_plan_of(args) {
            Ok(Some(t)) => p = t,
            Ok(None) => {}
            Err(exit) => return exit.into(),
        }
    }
    let refused = matches!(&p, Plan::Takeover { undecided, .. } if !undecided.is_empty());
    if args.json {
        let report = PlanReport {
            desired_fingerprint: &rendered.fingerprint,
            live_fingerprint: live.fingerprint.as_deref(),
            plan: &p,
        };
        output::json_pretty(&report);
    } else {
        print_plan(&p);
    }
    if refused {
        eprintln!("vezasock plan: a takeover needs every env's color: pass --color ENV=COLOR");
        Exit::Refused.into()
    } else {
        Exit::Ok.into()
    }
}

/// `major.minor` of the running HAProxy (what `add server` takes depends on it); `None` when
/// it does not answer.
fn running_version(args: &PlanArgs) -> Option<(u32, u32)> {
    let edge = load_edge("plan", &args.topology).ok()?;
    let rt = runtime("plan").ok()?;
    rt.block_on(crate::edge::apply::pool::running_version(&edge))
}

/// The takeover plan when HAProxy runs a config vezasock did not render; `None` when it is not
/// a takeover (no HAProxy: a first install).
fn takeover_plan_of(args: &PlanArgs) -> Result<Option<Plan>, Exit> {
    let edge = load_edge("plan", &args.topology)?;
    let rt = runtime("plan")?;
    rt.block_on(async {
        let live = read_live(&edge.topology.paths).map_err(|e| {
            eprintln!("vezasock plan: {e}");
            Exit::Refused
        })?;
        if !is_takeover(&edge, &live).await {
            return Ok(None);
        }
        takeover_plan(&edge, &args.takeover.options())
            .await
            .map(Some)
            .map_err(|e| fail("plan", &e))
    })
}

/// A plan for humans (also what `apply` prints first).
pub(super) fn print_plan(plan: &Plan) {
    match plan {
        Plan::Nothing => output::line("Nothing to do: the live edge matches the topology."),
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
            output::line(&format!("Runtime changes, no reload ({count}):"));
            print_changes(changes);
        }
        Plan::Reload {
            reasons,
            changes,
            refused_at_runtime,
        } => {
            output::line("Reload needed: the edge's shape changed.");
            for r in reasons {
                output::line(&format!("  - {r}"));
            }
            if !refused_at_runtime.is_empty() {
                output::line(
                    "HAProxy refuses these pool changes at runtime: `apply` refuses them, \
                     `apply --reload` takes the reload path.",
                );
            }
            if !changes.is_empty() {
                output::line("Each change and how it reaches the edge:");
                print_changes(changes);
            }
        }
        Plan::Takeover {
            reasons,
            colors,
            undecided,
            steps,
        } => {
            output::line(
                "Takeover of a config vezasock did not render (one checked, verified reload):",
            );
            for r in reasons {
                output::line(&format!("  - {r}"));
            }
            output::line("Colors kept:");
            for d in colors {
                output::line(&format!(
                    "  - {}: {} (from the {}: {})",
                    d.env, d.color, d.source, d.detail
                ));
            }
            if !undecided.is_empty() {
                output::line("UNDECIDED (apply refuses until each has a color):");
                for u in undecided {
                    output::line(&format!("  - {u}"));
                }
            }
            output::line("Steps:");
            for (i, s) in steps.iter().enumerate() {
                output::line(&format!("  {}. {s}", i + 1));
            }
        }
    }
}

/// `  - <change>` and, under it, `via runtime|reload: <why>`.
fn print_changes(changes: &[crate::plan::Change]) {
    for c in changes {
        output::line(&format!("  - {}", c.change));
        output::line(&format!("      via {}: {}", c.via, c.reason));
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
