//! `vezasock history ENV`: the env's last deploys, newest first (color, sha, time, who), read
//! from the seed-compatible `active-color-<env>.history` file.
//!
//! vezasock keeps the last [`HISTORY_LEN`] deploys; a file written by another tool may hold
//! more. Only the kept entries are printed, and a note on stderr says how many lines the file
//! holds, so a 100,000-line file is neither dumped nor silently cut.

use std::fmt::Write as _;
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use super::args::{parse_name, Checked, TopologyArgs};
use super::common::load_edge;
use super::finish::{self, Failed, Report};
use crate::edge::deploy::rollback::history;
use crate::state::colors::{HistoryEntry, HISTORY_LEN};
use crate::topology::Color;

// Arguments of `vezasock history` (a plain comment: a doc comment would replace the subcommand's
// about text, which clap applies from the `Command` variant).
#[derive(Debug, Clone, Args)]
pub struct HistoryArgs {
    /// The env (1-64 characters of 0-9A-Za-z._-).
    #[arg(value_parser = Checked(parse_name))]
    pub env: String,
    /// Print a JSON array instead of text: [{color, sha, time, who}], newest first.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub topology: TopologyArgs,
}

/// One history entry as `history --json` prints it (the keys of docs/reference.md).
#[derive(Debug, Serialize)]
struct JsonEntry<'a> {
    color: Color,
    sha: Option<&'a str>,
    time: Option<&'a str>,
    who: Option<&'a str>,
}

impl<'a> From<&'a HistoryEntry> for JsonEntry<'a> {
    fn from(e: &'a HistoryEntry) -> JsonEntry<'a> {
        JsonEntry {
            color: e.color,
            sha: e.sha.as_deref(),
            time: e.when.as_deref(),
            who: e.who.as_deref(),
        }
    }
}

/// The kept entries of an env's history, newest first, and how many the file holds.
struct History {
    env: String,
    entries: Vec<HistoryEntry>,
    in_file: usize,
}

impl Report for History {
    type Json<'a> = Vec<JsonEntry<'a>>;

    fn json(&self) -> Vec<JsonEntry<'_>> {
        self.entries.iter().map(JsonEntry::from).collect()
    }

    fn human(&self) -> String {
        let mut out = String::new();
        if self.entries.is_empty() {
            let _ = writeln!(
                out,
                "{}: no deploy recorded yet (the live color is blue when nothing is recorded)",
                self.env
            );
            return out;
        }
        let _ = writeln!(out, "{:<6} {:<12} {:<21} WHO", "COLOR", "SHA", "TIME");
        for e in &self.entries {
            let _ = writeln!(
                out,
                "{:<6} {:<12} {:<21} {}",
                e.color.as_str(),
                e.sha.as_deref().unwrap_or("-"),
                e.when.as_deref().unwrap_or("-"),
                e.who.as_deref().unwrap_or("-")
            );
        }
        out
    }

    /// A file that holds more than the kept entries (another tool wrote it) says so.
    fn note(&self) -> Option<String> {
        (self.in_file > HISTORY_LEN).then(|| {
            format!(
                "the history file holds {} entries; showing the {HISTORY_LEN} newest \
                 (vezasock keeps {HISTORY_LEN})",
                self.in_file
            )
        })
    }
}

/// Runs `vezasock history`.
pub fn run(args: &HistoryArgs) -> ExitCode {
    let edge = match load_edge("history", &args.topology) {
        Ok(edge) => edge,
        Err(exit) => return exit.into(),
    };
    let report = history(&edge, &args.env).map(|mut entries| {
        let in_file = entries.len();
        entries.truncate(HISTORY_LEN);
        History {
            env: args.env.clone(),
            entries,
            in_file,
        }
    });
    finish::finish("history", args.json, report.map_err(Failed::from))
}
