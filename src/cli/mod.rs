//! The `vezasock` command line: clap commands over the library, human output by default and
//! JSON behind `--json`.

pub mod after;
pub mod agent;
pub mod apply;
pub mod args;
pub mod canary;
pub mod cert;
pub mod check;
pub mod common;
pub mod completions;
pub mod demo;
pub mod exec;
pub mod exit;
pub mod finish;
pub mod fleet;
pub mod flip;
pub mod history;
pub mod output;
pub mod plan;
pub mod preview;
pub mod progress;
pub mod render;
pub mod rollback;
pub mod servers;
pub mod status;
pub mod switch;
pub mod txn;
pub mod watch;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Drives a shared HAProxy edge for blue/green deploys over the runtime API.
#[derive(Debug, Parser)]
#[command(name = "vezasock", version, about)]
pub struct Cli {
    /// More logging: -v for info, -vv for debug (RUST_LOG overrides both).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

// Each subcommand's arguments are built only when it runs (or its help is shown): the
// topology flags flattened into a dozen subcommands made building the whole CLI cost about half
// a millisecond of every short call (CI calls `switch` once per deploy). With `defer`, a doc
// comment on an `Args` struct would replace the subcommand's about text (the variant's doc
// below): those structs carry plain comments, and a test checks every subcommand's help.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Show vezasock's version (as `--version`; `status` shows HAProxy's).
    Version,
    /// Send one runtime API command (or a `;`-joined line) and print HAProxy's reply.
    Exec(exec::ExecArgs),
    /// Run a real local edge on loopback, flip it under load, and show that nothing failed.
    Demo(demo::DemoArgs),
    /// Render haproxy.cfg (stdout) or the config, maps and shape summary (--out DIR).
    Render(render::RenderArgs),
    /// Render the candidate into a temp dir and run `haproxy -c` on it.
    Check(check::CheckArgs),
    /// Show what an apply would do: nothing, runtime edits (maps, moved servers), or a reload and why.
    Plan(plan::PlanArgs),
    /// Bring the edge to the topology: nothing, runtime edits (maps, moved servers), or a checked, verified reload.
    Apply(apply::ApplyArgs),
    /// Put servers in DRAIN (no new sessions); with --wait, wait for their sessions to end.
    Drain(servers::DrainArgs),
    /// Put servers in maintenance (out of rotation); --kill-sessions ends their sessions.
    Maint(servers::MaintArgs),
    /// Put servers back in rotation (READY).
    Ready(servers::ReadyArgs),
    /// Flip an env to a color over the runtime API (no reload): gated, journalled, verified.
    Switch(switch::SwitchArgs),
    /// Move a growing share of an env's users to a color, with analysis, abort and promote.
    Canary(canary::CanaryArgs),
    /// Send requests that carry a fresh token to one color of an env through the edge.
    Preview(preview::PreviewArgs),
    /// Switch an env back to the previous deploy's color (or the one with --to SHA).
    Rollback(rollback::RollbackArgs),
    /// The last deploys of an env, newest first.
    History(history::HistoryArgs),
    /// The edge as runtime, map files and state files see it (read-only; exit 6 on drift).
    Status(status::StatusArgs),
    /// One edge's half of a multi-edge transaction: `txn prepare ENV COLOR --id ID`, then
    /// `txn commit --id ID` or `txn abort --id ID`.
    Txn(txn::TxnArgs),
    /// The far side of a fleet coordinator over ssh: JSON requests on stdin, answers on stdout.
    EdgeAgent(agent::AgentArgs),
    /// Certificates over the runtime API without a reload: `cert update FILE…`, `cert list`.
    Cert(cert::CertArgs),
    /// Print a shell completion script (bash, zsh, fish, …) generated from these commands.
    Completions(completions::CompletionsArgs),
    /// Print the man page (roff), or write one page per command with --out DIR.
    Man(completions::ManArgs),
}

/// Logging through `tracing`: quiet (warnings) by default, `-v` / `-vv`, `RUST_LOG` wins.
fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "vezasock=info",
        _ => "vezasock=debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// The commands that can wait long (a gate's `--wait-healthy`, `drain --wait`, canary steps, a
/// fleet's prepares), with their `--json`: they show a progress line on a terminal.
fn waits(command: &Command) -> Option<bool> {
    match command {
        Command::Switch(a) => Some(a.json),
        Command::Rollback(a) => Some(a.json),
        Command::Canary(a) => Some(a.json),
        Command::Drain(a) => Some(a.json),
        _ => None,
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    after::mark_started();
    init_logging(cli.verbose);
    if let Some(json) = waits(&cli.command) {
        progress::install(json);
    }
    match cli.command {
        Command::Version => {
            output::line(concat!("vezasock ", env!("CARGO_PKG_VERSION")));
            ExitCode::SUCCESS
        }
        Command::Exec(args) => exec::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Render(args) => render::run(&args),
        Command::Check(args) => check::run(&args),
        Command::Plan(args) => plan::run(&args),
        Command::Apply(args) => apply::run(&args),
        Command::Txn(args) => txn::run(&args),
        Command::EdgeAgent(args) => agent::run(&args),
        Command::Drain(args) => servers::run_drain(&args),
        Command::Maint(args) => servers::run_maint(&args),
        Command::Ready(args) => servers::run_ready(&args),
        Command::Switch(args) => switch::run(&args),
        Command::Rollback(args) => rollback::run(&args),
        Command::Preview(args) => preview::run(&args),
        Command::Canary(args) => canary::run(&args),
        Command::History(args) => history::run(&args),
        Command::Status(args) => status::run(&args),
        Command::Cert(args) => cert::run(&args),
        Command::Completions(args) => completions::run_completions(&args),
        Command::Man(args) => completions::run_man(&args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Issue 9: the `use super::` lines of the `cli` files form no cycle (shared pieces live in
    /// `args`, `common`, `flip`, `output`, `exit`). It reads only those lines; the crate-wide
    /// check, which also sees inline paths, is tests/layout.rs.
    #[test]
    fn no_import_cycles_between_the_cli_files() {
        use std::collections::BTreeMap;
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/cli");
        let mut uses: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{dir}: {e}"));
        for entry in entries.filter_map(|e| e.ok()) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(module) = name.strip_suffix(".rs").filter(|m| *m != "mod") else {
                continue;
            };
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let deps: Vec<String> = text
                .lines()
                .filter_map(|l| l.trim_start().strip_prefix("use super::"))
                .chain(
                    text.lines()
                        .filter_map(|l| l.trim_start().strip_prefix("pub use super::")),
                )
                .filter_map(|rest| rest.split([':', ';']).next())
                .map(str::to_string)
                .filter(|dep| dep.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
                .filter(|dep| !dep.is_empty())
                .collect();
            uses.insert(module.to_string(), deps);
        }
        assert!(uses.len() >= 15, "{uses:?}");
        // Depth-first search for a path back to the start.
        fn reaches(
            uses: &BTreeMap<String, Vec<String>>,
            from: &str,
            to: &str,
            seen: &mut Vec<String>,
        ) -> bool {
            for dep in uses.get(from).into_iter().flatten() {
                if dep == to {
                    return true;
                }
                if !seen.contains(dep) {
                    seen.push(dep.clone());
                    if reaches(uses, dep, to, seen) {
                        return true;
                    }
                }
            }
            false
        }
        for module in uses.keys() {
            assert!(
                !reaches(&uses, module, module, &mut Vec::new()),
                "cli/{module}.rs imports itself back through its siblings: {uses:?}"
            );
        }
        // The shared pieces import no command.
        for shared in ["args", "common", "finish", "flip", "output", "exit"] {
            let deps = &uses[shared];
            assert!(
                deps.iter()
                    .all(|d| ["args", "exit", "finish", "output"].contains(&d.as_str())),
                "cli/{shared}.rs imports {deps:?}"
            );
        }
    }

    #[test]
    fn the_cli_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Every subcommand's help starts with the about text the top-level help lists for it (a
    /// doc comment on a deferred `Args` struct would silently replace it).
    #[test]
    fn every_subcommand_help_starts_with_its_about() {
        let mut top = Cli::command();
        let abouts: Vec<(String, String)> = top
            .get_subcommands()
            .filter(|c| c.get_name() != "help")
            .map(|c| {
                let about = c.get_about().map(|a| a.to_string()).unwrap_or_default();
                (c.get_name().to_string(), about)
            })
            .collect();
        assert!(abouts.len() >= 14, "{abouts:?}");
        for (name, about) in abouts {
            assert!(!about.is_empty(), "{name} has no about text");
            let sub = top
                .find_subcommand_mut(&name)
                .unwrap_or_else(|| panic!("{name}"));
            let help = sub.render_help().to_string();
            let first = help.lines().next().unwrap_or_default();
            assert_eq!(first, about, "`vezasock {name} --help`");
            assert!(help.contains("Usage:"), "{help}");
        }
    }
}
