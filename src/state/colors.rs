//! The active color of each env and its deploy history, in the seed pipeline's files so its
//! playbooks keep working.
//!
//! `<state_dir>/active-color-<env>`: one line, the color (`blue\n` or `green\n`). A missing file
//! means blue, as in the seed. Anything else in it is an error naming the file.
//!
//! `<state_dir>/active-color-<env>.history`: one line per deploy, newest first, the last
//! [`HISTORY_LEN`] kept:
//!
//! ```text
//! <color> <sha> <time> <who>
//! green 4f2a9c1 2024-05-01T12:34:56Z ci-deploy
//! blue - 2024-04-30T08:00:00Z alice
//! green
//! ```
//!
//! The color comes first so that the seed's `head -1 | cut -d' ' -f1` still reads the newest
//! color. `<sha>` is `-` when unknown; `<time>` is RFC 3339 UTC; `<who>` is the rest of the line
//! (it may contain spaces). Reading is lenient: a line with only a color (older seed lines) or
//! with some trailing fields missing is accepted; empty lines are skipped. When the file is
//! rewritten, such lines get `-` in their missing fields.

use std::time::SystemTime;

use serde::Serialize;

use super::atomic::{read_optional_string, write_atomic, write_atomic_whole};
use super::{time, Error, StateDir};
use crate::topology::Color;

/// How many deploys the history keeps per env.
pub const HISTORY_LEN: usize = 5;

/// One deploy in an env's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    pub color: Color,
    /// The deployed commit (`None` when the line has `-` or no sha).
    pub sha: Option<String>,
    /// When (RFC 3339 UTC as written; `None` on older seed lines). `time` in JSON, as
    /// docs/reference.md names the history's field.
    #[serde(rename = "time")]
    pub when: Option<String>,
    /// Who switched (`None` on older seed lines).
    pub who: Option<String>,
}

impl HistoryEntry {
    /// The line as written in the history file (without the newline).
    pub fn to_line(&self) -> String {
        format!(
            "{} {} {} {}",
            self.color,
            self.sha.as_deref().unwrap_or("-"),
            self.when.as_deref().unwrap_or("-"),
            self.who.as_deref().unwrap_or("-")
        )
    }

    /// Parses one history line (already known not to be empty). `Err` says why not.
    pub fn parse_line(line: &str) -> Result<HistoryEntry, String> {
        let line = line.trim();
        let mut fields = line.splitn(4, ' ');
        let color_word = fields.next().unwrap_or("");
        let color = Color::parse(color_word)
            .ok_or_else(|| format!("the first field {color_word:?} is not `blue` or `green`"))?;
        let field = |f: Option<&str>| {
            f.map(str::trim)
                .filter(|v| !v.is_empty() && *v != "-")
                .map(str::to_string)
        };
        Ok(HistoryEntry {
            color,
            sha: field(fields.next()),
            when: field(fields.next()),
            who: field(fields.next()),
        })
    }
}

impl StateDir {
    /// The color recorded for `env`: `None` when the file does not exist.
    pub fn recorded_color(&self, env: &str) -> Result<Option<Color>, Error> {
        let path = self.color_file(env)?;
        let Some(text) = read_optional_string(&path)? else {
            return Ok(None);
        };
        // One line; tolerate a missing final newline or surrounding blanks (hand edits).
        Color::parse(text.trim())
            .map(Some)
            .ok_or(Error::BadColorFile {
                path,
                content: text,
            })
    }

    /// The active color of `env` on disk: the recorded one, or blue when none is (seed behaviour).
    pub fn active_color(&self, env: &str) -> Result<Color, Error> {
        Ok(self.recorded_color(env)?.unwrap_or(Color::Blue))
    }

    /// Writes the active color file alone (atomically). [`StateDir::record_switch`] is the
    /// normal path; this is for repairing a crash between its two writes.
    pub fn write_active_color(&self, env: &str, color: Color) -> Result<(), Error> {
        let path = self.color_file(env)?;
        self.ensure()?;
        write_atomic(&path, format!("{color}\n").as_bytes())
    }

    /// The history of `env`, newest first (empty when the file does not exist).
    pub fn history(&self, env: &str) -> Result<Vec<HistoryEntry>, Error> {
        let path = self.history_file(env)?;
        let Some(text) = read_optional_string(&path)? else {
            return Ok(Vec::new());
        };
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let entry = HistoryEntry::parse_line(line).map_err(|why| Error::BadHistoryLine {
                path: path.clone(),
                line: i + 1,
                text: line.to_string(),
                why,
            })?;
            entries.push(entry);
        }
        Ok(entries)
    }

    /// Records a deploy of `env` to `color`: a history line first, then the color file, each
    /// written atomically. `sha` `None` is written `-`. Reads the history first; a flip that
    /// read it already (and refused a corrupt one before anything changed) calls
    /// [`StateDir::record_entry`].
    pub fn record_switch(
        &self,
        env: &str,
        color: Color,
        sha: Option<&str>,
        who: &str,
        when: SystemTime,
    ) -> Result<(), Error> {
        let entry = HistoryEntry::now(color, sha, who, when)?;
        let history = self.history(env)?;
        self.record_entry(env, &history, entry, || {})
    }

    /// Records `entry` on top of `history` (the env's history as read under the edge lock):
    /// the history file, then `between()` (a crash point in tests), then the color file.
    ///
    /// Why this order: a crash between the two writes leaves the history one line ahead of the
    /// color file, which is visible (the newest history color differs from the color file) and
    /// undone by `apply`'s repair ([`StateDir::drop_newest_history`]). The other order would
    /// leave the live color without its history line, and a rollback ("the previous entry")
    /// would then skip one deploy.
    ///
    /// The caller holds the edge lock, so two switches cannot lose each other's line.
    pub fn record_entry(
        &self,
        env: &str,
        history: &[HistoryEntry],
        entry: HistoryEntry,
        between: impl FnOnce(),
    ) -> Result<(), Error> {
        let color = entry.color;
        let mut entries = Vec::with_capacity(HISTORY_LEN);
        entries.push(entry);
        entries.extend(history.iter().take(HISTORY_LEN - 1).cloned());
        // Whole (fsynced) but its rename not fsynced: the color file's directory fsync, right
        // after, makes both renames durable (one directory), one fsync fewer per flip.
        self.write_history_whole(env, &entries)?;
        between();
        self.write_active_color(env, color)
    }

    /// Removes the newest history line of `env` (repair, after undoing a flip whose history
    /// line was written but whose color file was not). Returns the line removed.
    pub fn drop_newest_history(&self, env: &str) -> Result<Option<HistoryEntry>, Error> {
        let mut entries = self.history(env)?;
        if entries.is_empty() {
            return Ok(None);
        }
        let newest = entries.remove(0);
        self.write_history(env, &entries)?;
        Ok(Some(newest))
    }

    /// Writes `entries` as the env's whole history (newest first, the last [`HISTORY_LEN`]):
    /// a takeover importing the seed's history. The color file is left alone.
    pub fn write_history_entries(&self, env: &str, entries: &[HistoryEntry]) -> Result<(), Error> {
        self.write_history(env, entries)
    }

    fn write_history(&self, env: &str, entries: &[HistoryEntry]) -> Result<(), Error> {
        self.ensure()?;
        write_atomic(&self.history_file(env)?, &history_text(entries))
    }

    fn write_history_whole(&self, env: &str, entries: &[HistoryEntry]) -> Result<(), Error> {
        self.ensure()?;
        write_atomic_whole(&self.history_file(env)?, &history_text(entries))
    }
}

/// The history file's bytes: one line per entry, newest first, the last [`HISTORY_LEN`].
fn history_text(entries: &[HistoryEntry]) -> Vec<u8> {
    let mut text = String::new();
    for e in entries.iter().take(HISTORY_LEN) {
        text.push_str(&e.to_line());
        text.push('\n');
    }
    text.into_bytes()
}

impl HistoryEntry {
    /// A new deploy line, stamped `when`. A sha is one word; `who` (the rest of the line) has
    /// no control character.
    pub fn now(
        color: Color,
        sha: Option<&str>,
        who: &str,
        when: SystemTime,
    ) -> Result<HistoryEntry, Error> {
        let sha = match sha {
            None => None,
            Some(s) => {
                if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(Error::BadValue {
                        what: "sha",
                        value: s.to_string(),
                        why: "it must be one word without spaces",
                    });
                }
                Some(s.to_string())
            }
        };
        if who.chars().any(|c| c.is_control()) {
            return Err(Error::BadValue {
                what: "who",
                value: who.to_string(),
                why: "it must not contain a newline or a control character",
            });
        }
        let who = who.trim();
        Ok(HistoryEntry {
            color,
            sha,
            when: Some(time::rfc3339_utc(when)),
            who: (!who.is_empty()).then(|| who.to_string()),
        })
    }
}
