//! `vezasock history ENV`: the env's last deploys, newest first (color, sha, when, who), read
//! from the seed-compatible `active-color-<env>.history` file.

use std::process::ExitCode;

use clap::Args;

use super::exit::Exit;
use super::render::TopologyArgs;
use super::switch::{load_edge, print_json};
use crate::edge::rollback::history;

// Arguments of `vezasock history` (a plain comment: a doc comment would replace the subcommand's
// about text, which clap applies from the `Command` variant).
#[derive(Debug, Clone, Args)]
pub struct HistoryArgs {
    /// The env.
    pub env: String,
    /// Print a JSON array instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub topology: TopologyArgs,
}

/// Runs `vezasock history`.
pub fn run(args: &HistoryArgs) -> ExitCode {
    let edge = match load_edge("history", &args.topology) {
        Ok(edge) => edge,
        Err(exit) => return exit.into(),
    };
    let entries = match history(&edge, &args.env) {
        Ok(entries) => entries,
        Err(e) => {
            eprintln!("vezasock history: {e}");
            return Exit::of_edge(&e).into();
        }
    };
    if args.json {
        print_json(&entries);
    } else if entries.is_empty() {
        println!(
            "{}: no deploy recorded yet (the live color is blue when nothing is recorded)",
            args.env
        );
    } else {
        println!("{:<6} {:<12} {:<21} WHO", "COLOR", "SHA", "WHEN");
        for e in &entries {
            println!(
                "{:<6} {:<12} {:<21} {}",
                e.color.as_str(),
                e.sha.as_deref().unwrap_or("-"),
                e.when.as_deref().unwrap_or("-"),
                e.who.as_deref().unwrap_or("-")
            );
        }
    }
    Exit::Ok.into()
}
