//! The journal: an append-only record of every change vezasock makes to an edge, one JSON object
//! per line in `<state_dir>/journal.jsonl`.
//!
//! An operation (a switch, a drain, …) has one `op_id` and writes one entry per phase it reaches:
//! `intent` → `disk-written` → `runtime-applied` → `verified` → `done`, or `failed` /
//! `rolled-back`; a switch the gate refuses writes one `refused` line and nothing else. An
//! operation whose last phase is not one of those ends was interrupted
//! (a crash, a kill -9); [`StateDir::last_open_operation`] finds it so that `status` can say
//! "switch staging blue→green interrupted after disk-written" and `apply` can repair it. The
//! repairing command closes the old operation by appending a terminal phase with its `op_id`.
//!
//! ```text
//! {"ts":"2024-05-01T12:34:56Z","who":"ci","pid":4242,"op_id":"18c9…-4242-0","env":"staging",
//!  "action":"switch","phase":"intent","before":"blue","after":"green","detail":null}
//! ```
//! (one line in the file.)
//!
//! Each append is one `write` on an `O_APPEND` descriptor (fsynced when it ends an operation).
//! A write that fails or comes up short (a full disk) is cut back to the last whole line, so
//! vezasock itself never leaves half a line. A torn last line can still come from outside (a
//! power cut, a hand edit): the reader skips it and reports it instead of failing, and the next
//! append first ends it so that it cannot glue itself to the new entry. Any line that is not a
//! journal entry is skipped and reported the same way: the journal is an audit trail, and one
//! bad line must not hide the others. A rotation moves such lines to `journal.torn.jsonl`,
//! never to the archive: the archive only takes whole entries.

mod rotation;

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

pub use rotation::{JOURNAL_ARCHIVE_FILE, JOURNAL_ROTATING_FILE, JOURNAL_TORN_FILE, ROTATE_BYTES};

use super::atomic::{read_optional, sync_dir};
use super::{time, Error, StateDir};

/// The journal file, in the state dir.
pub const JOURNAL_FILE: &str = "journal.jsonl";

/// What an operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Switch,
    Rollback,
    Drain,
    Maint,
    Ready,
    Apply,
    Reload,
    /// `cert update`: a certificate replaced or added over the runtime API.
    Cert,
    /// A preview token given or revoked (`vezasock preview`).
    Preview,
    /// A canary step, abort or end (`vezasock canary`).
    Canary,
    /// A webhook that did not take a command's events (`edge::notify`): one `failed` line.
    Notify,
}

impl Action {
    /// The word written in the journal.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Switch => "switch",
            Action::Rollback => "rollback",
            Action::Drain => "drain",
            Action::Maint => "maint",
            Action::Ready => "ready",
            Action::Apply => "apply",
            Action::Reload => "reload",
            Action::Cert => "cert",
            Action::Preview => "preview",
            Action::Canary => "canary",
            Action::Notify => "notify",
        }
    }
}

/// How far an operation got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// About to change something; nothing changed yet.
    Intent,
    /// The files on disk (map, state) hold the new value.
    DiskWritten,
    /// HAProxy's runtime accepted the change.
    RuntimeApplied,
    /// The read-back matched the intent.
    Verified,
    /// Finished; state and history recorded.
    Done,
    /// Gave up; the detail says why and what was left.
    Failed,
    /// Undone after a failure: disk and runtime are as before.
    RolledBack,
    /// A safety gate said no before anything changed (a target color not healthy, a preview
    /// check failing): the operation's one and only line, with the gate's words.
    Refused,
}

impl Phase {
    /// The word written in the journal.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Intent => "intent",
            Phase::DiskWritten => "disk-written",
            Phase::RuntimeApplied => "runtime-applied",
            Phase::Verified => "verified",
            Phase::Done => "done",
            Phase::Failed => "failed",
            Phase::RolledBack => "rolled-back",
            Phase::Refused => "refused",
        }
    }

    /// True for the phases that end an operation (`done`, `failed`, `rolled-back`, `refused`).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Phase::Done | Phase::Failed | Phase::RolledBack | Phase::Refused
        )
    }
}

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// When (RFC 3339 UTC).
    pub ts: String,
    pub who: String,
    pub pid: u32,
    pub op_id: String,
    /// The env changed; `None` for edge-wide operations (apply, reload, a non-env backend).
    #[serde(default)]
    pub env: Option<String>,
    pub action: Action,
    pub phase: Phase,
    /// The value before (a color, a server state, a shape fingerprint).
    #[serde(default)]
    pub before: Option<String>,
    /// The value after.
    #[serde(default)]
    pub after: Option<String>,
    /// Free text: the servers touched, an error message, …
    #[serde(default)]
    pub detail: Option<String>,
}

/// An operation in progress: the fields shared by all its journal entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub op_id: String,
    pub who: String,
    pub env: Option<String>,
    pub action: Action,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// Makes op ids unique between operations started in the same nanosecond by one process.
static OP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Operation {
    /// A new operation with a fresh `op_id` (`<nanoseconds, hex>-<pid>-<n>`).
    pub fn new(
        action: Action,
        env: Option<&str>,
        before: Option<&str>,
        after: Option<&str>,
        who: &str,
    ) -> Operation {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        Operation {
            op_id: format!(
                "{nanos:x}-{}-{}",
                std::process::id(),
                OP_COUNTER.fetch_add(1, Ordering::Relaxed)
            ),
            who: who.to_string(),
            env: env.map(str::to_string),
            action,
            before: before.map(str::to_string),
            after: after.map(str::to_string),
        }
    }

    /// A new flip of `env` (a switch or a rollback) from one color to another.
    pub fn flip(
        action: Action,
        env: &str,
        from: crate::topology::Color,
        to: crate::topology::Color,
        who: &str,
    ) -> Operation {
        Operation::new(
            action,
            Some(env),
            Some(from.as_str()),
            Some(to.as_str()),
            who,
        )
    }

    /// The journal entry for reaching `phase`, stamped now by this process.
    pub fn entry(&self, phase: Phase, detail: Option<&str>) -> JournalEntry {
        JournalEntry {
            ts: time::now_rfc3339(),
            who: self.who.clone(),
            pid: std::process::id(),
            op_id: self.op_id.clone(),
            env: self.env.clone(),
            action: self.action,
            phase,
            before: self.before.clone(),
            after: self.after.clone(),
            detail: detail.map(str::to_string),
        }
    }
}

/// A journal line that was skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedLine {
    /// 1-based line number.
    pub line: usize,
    pub text: String,
    /// True for a last line without its `\n` (a writer killed mid-append).
    pub torn: bool,
    pub why: String,
}

/// What the journal holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JournalRead {
    /// The readable entries, oldest first.
    pub entries: Vec<JournalEntry>,
    /// Lines that were skipped, for the caller to report.
    pub skipped: Vec<SkippedLine>,
}

/// An operation that never reached `done`, `failed` or `rolled-back`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpenOperation {
    pub op_id: String,
    pub action: Action,
    pub env: Option<String>,
    pub before: Option<String>,
    pub after: Option<String>,
    pub who: String,
    pub pid: u32,
    /// When its first entry was written.
    pub started: String,
    /// The last phase it reached.
    pub last_phase: Phase,
    /// When its last entry was written.
    pub last_ts: String,
    /// The detail of its last entry.
    pub last_detail: Option<String>,
}

impl OpenOperation {
    /// The operation this one is, carried on by `who`: the same `op_id`, env, action and
    /// values, so that a repairing or superseding command can append the line that ends it.
    pub fn continued_by(&self, who: &str) -> Operation {
        Operation {
            op_id: self.op_id.clone(),
            who: who.to_string(),
            env: self.env.clone(),
            action: self.action,
            before: self.before.clone(),
            after: self.after.clone(),
        }
    }
}

impl std::fmt::Display for OpenOperation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.action.as_str())?;
        if let Some(env) = &self.env {
            write!(f, " {env}")?;
        }
        match (&self.before, &self.after) {
            (Some(b), Some(a)) => write!(f, " {b}→{a}")?,
            (None, Some(a)) => write!(f, " →{a}")?,
            (Some(b), None) => write!(f, " {b}→?")?,
            (None, None) => {}
        }
        write!(
            f,
            " interrupted after {} (op {}, pid {}, by {}, started {})",
            self.last_phase.as_str(),
            self.op_id,
            self.pid,
            self.who,
            self.started
        )
    }
}

impl StateDir {
    /// Appends one entry: one line, one `write` with `O_APPEND`, then fsync when the entry
    /// ends an operation (`done`, `failed`, `rolled-back`, `refused`): one fsync per operation.
    ///
    /// The other phases are not fsynced. A process crash (`kill -9`) cannot lose them: they are
    /// in the page cache the moment `write` returns. A power cut can lose the last operation's
    /// lines, but not what they describe: the map file (what HAProxy loads on restart) and the
    /// state files are fsynced as they are written, and `status` compares the three sides
    /// (runtime, map file, state file) to say which one is ahead whether or not the journal
    /// still explains why. The fsync at the end makes all of the operation's lines durable.
    pub fn journal_append(&self, entry: &JournalEntry) -> Result<(), Error> {
        self.append(entry, entry.phase.is_terminal())
    }

    fn append(&self, entry: &JournalEntry, sync: bool) -> Result<(), Error> {
        let path = self.journal_file();
        self.ensure()?;
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| Error::io("open the journal", &path, e))?;

        let mut line = Vec::new();
        // End a torn last line first, so the new entry starts on a line of its own (the torn
        // line is not an entry: the next rotation moves it to `journal.torn.jsonl`). Never cut
        // here: an append of another process may be in flight.
        let len = file
            .metadata()
            .map_err(|e| Error::io("read the metadata of", &path, e))?
            .len();
        if len > 0 {
            let mut last = [0u8; 1];
            file.read_exact_at(&mut last, len - 1)
                .map_err(|e| Error::io("read the end of", &path, e))?;
            if last[0] != b'\n' {
                line.push(b'\n');
            }
        }
        serde_json::to_writer(&mut line, entry).map_err(|e| Error::BadJson {
            path: path.clone(),
            source: e,
        })?;
        line.push(b'\n');

        if let Err(e) = file.write_all(&line) {
            // A short write (a full disk) must not leave half a line: cut back to where the
            // journal ended, so every line in it (and later in the archive) is whole.
            let _ = file.set_len(len);
            return Err(Error::io("append to the journal", &path, e));
        }
        if sync {
            file.sync_data()
                .map_err(|e| Error::io("fsync the journal", &path, e))?;
        }
        if !existed {
            sync_dir(self.path())?;
        }
        if entry.phase.is_terminal() && len + line.len() as u64 > ROTATE_BYTES {
            drop(file);
            self.journal_rotate()?;
        }
        Ok(())
    }

    /// Appends the entry of `op` reaching `phase`, and returns it.
    pub fn journal_record(
        &self,
        op: &Operation,
        phase: Phase,
        detail: Option<&str>,
    ) -> Result<JournalEntry, Error> {
        let entry = op.entry(phase, detail);
        self.journal_append(&entry)?;
        Ok(entry)
    }

    /// [`Self::journal_record`] without the fsync of an operation's last line: for the fleet
    /// journal, which only names the color that resolves edges left disagreeing by a dead
    /// coordinator (every edge's own records are durable). A power cut that loses its last line
    /// leaves that transaction shown open until `apply --fleet` sees the edges agree and
    /// closes it.
    pub fn journal_record_unsynced(
        &self,
        op: &Operation,
        phase: Phase,
        detail: Option<&str>,
    ) -> Result<(), Error> {
        self.append(&op.entry(phase, detail), false)
    }

    /// Reads the whole journal (empty when it does not exist). Never fails on the content: bad
    /// lines come back in [`JournalRead::skipped`].
    pub fn journal_read(&self) -> Result<JournalRead, Error> {
        let path = self.journal_file();
        let Some(bytes) = read_optional(&path)? else {
            return Ok(JournalRead::default());
        };
        Ok(parse_journal(&bytes))
    }

    /// Every operation (of any env) that has not ended, oldest first.
    pub fn open_operations(&self) -> Result<Vec<OpenOperation>, Error> {
        let path = self.journal_file();
        Ok(read_optional(&path)?
            .map(|bytes| open_operations_in(&bytes))
            .unwrap_or_default())
    }

    /// The most recent operation on `env` that has not ended, if any.
    pub fn last_open_operation(&self, env: &str) -> Result<Option<OpenOperation>, Error> {
        Ok(self
            .open_operations()?
            .into_iter()
            .rev()
            .find(|op| op.env.as_deref() == Some(env)))
    }
}

/// A journal line as read, borrowing its strings from the file's bytes: the same fields and
/// rules as [`JournalEntry`], without an allocation per field.
#[derive(Deserialize)]
struct RawEntry<'a> {
    #[serde(borrow)]
    ts: Cow<'a, str>,
    #[serde(borrow)]
    who: Cow<'a, str>,
    pid: u32,
    #[serde(borrow)]
    op_id: Cow<'a, str>,
    #[serde(default, borrow)]
    env: Option<Cow<'a, str>>,
    action: Action,
    phase: Phase,
    #[serde(default, borrow)]
    before: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    after: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    detail: Option<Cow<'a, str>>,
}

impl RawEntry<'_> {
    fn to_owned_entry(&self) -> JournalEntry {
        let own = |v: &Option<Cow<str>>| v.as_deref().map(str::to_string);
        JournalEntry {
            ts: self.ts.to_string(),
            who: self.who.to_string(),
            pid: self.pid,
            op_id: self.op_id.to_string(),
            env: own(&self.env),
            action: self.action,
            phase: self.phase,
            before: own(&self.before),
            after: own(&self.after),
            detail: own(&self.detail),
        }
    }
}

/// The fields that say whether an operation ended. The other required fields must be there
/// (so that this accepts the lines [`RawEntry`] accepts) but are skipped, not read.
#[derive(Deserialize)]
struct PhaseOnly<'a> {
    #[allow(dead_code)]
    ts: IgnoredAny,
    #[allow(dead_code)]
    who: IgnoredAny,
    #[allow(dead_code)]
    pid: u32,
    #[serde(borrow)]
    op_id: Cow<'a, str>,
    #[allow(dead_code)]
    action: Action,
    phase: Phase,
}

/// True when every operation in `lines` reached a terminal phase (unreadable lines are left
/// out, as [`parse_journal`] leaves them out).
fn nothing_open(lines: &[Numbered<'_>]) -> bool {
    let mut last: HashMap<Cow<str>, Phase> = HashMap::new();
    for (_, line) in lines {
        if let Ok(e) = serde_json::from_slice::<PhaseOnly>(line) {
            last.insert(e.op_id, e.phase);
        }
    }
    last.values().all(|phase| phase.is_terminal())
}

/// A journal line and its number (from 1).
type Numbered<'a> = (usize, &'a [u8]);

/// The complete lines of `bytes` and the torn tail (a last line without its `\n`, empty when
/// there is none), each with its number. Blank lines are left out.
fn journal_lines(bytes: &[u8]) -> (Vec<Numbered<'_>>, Numbered<'_>) {
    let mut pieces: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    // `split` yields an empty piece after a final `\n`; anything else there is a torn line.
    let tail = (pieces.len(), pieces.pop().unwrap_or(&[]));
    let lines = pieces
        .into_iter()
        .enumerate()
        .filter(|(_, piece)| !piece.iter().all(|b| b.is_ascii_whitespace()))
        .map(|(i, piece)| (i + 1, piece))
        .collect();
    (lines, tail)
}

/// The operations in journal `bytes` that have not ended (what [`open_operations`] finds in
/// [`parse_journal`]'s entries), reading each line once without copying its fields: the
/// journal is read on every flip and every `status`.
pub fn open_operations_in(bytes: &[u8]) -> Vec<OpenOperation> {
    let (lines, _) = journal_lines(bytes);
    // Almost always every operation has ended: find that out reading only ids and phases.
    if nothing_open(&lines) {
        return Vec::new();
    }
    let raw: Vec<RawEntry> = lines
        .iter()
        .filter_map(|(_, line)| serde_json::from_slice::<RawEntry>(line).ok())
        .collect();
    let mut last: HashMap<&str, Phase> = HashMap::new();
    for e in &raw {
        last.insert(&e.op_id, e.phase);
    }
    if last.values().all(|phase| phase.is_terminal()) {
        return Vec::new();
    }
    let open: HashSet<&str> = last
        .into_iter()
        .filter(|(_, phase)| !phase.is_terminal())
        .map(|(id, _)| id)
        .collect();
    let entries: Vec<JournalEntry> = raw
        .iter()
        .filter(|e| open.contains(e.op_id.as_ref()))
        .map(RawEntry::to_owned_entry)
        .collect();
    open_operations(&entries)
}

/// Parses journal bytes; never fails (bad lines are skipped and reported).
pub fn parse_journal(bytes: &[u8]) -> JournalRead {
    let mut read = JournalRead::default();
    let (lines, (tail_number, tail)) = journal_lines(bytes);
    for (number, piece) in lines {
        match serde_json::from_slice::<RawEntry>(piece).map(|e| e.to_owned_entry()) {
            Ok(entry) => read.entries.push(entry),
            Err(e) => read.skipped.push(SkippedLine {
                line: number,
                text: String::from_utf8_lossy(piece).into_owned(),
                torn: false,
                why: format!("not a journal entry ({e}); a torn write from a crashed writer?"),
            }),
        }
    }
    if !tail.is_empty() {
        read.skipped.push(SkippedLine {
            line: tail_number,
            text: String::from_utf8_lossy(tail).into_owned(),
            torn: true,
            why: "last line without a newline: a writer was interrupted mid-append".to_string(),
        });
    }
    read
}

/// The operations among `entries` whose last phase is not terminal, in the order they started.
pub fn open_operations(entries: &[JournalEntry]) -> Vec<OpenOperation> {
    let mut ops: Vec<OpenOperation> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for e in entries {
        match index.get(e.op_id.as_str()).and_then(|&i| ops.get_mut(i)) {
            Some(op) => {
                op.last_phase = e.phase;
                op.last_ts = e.ts.clone();
                op.last_detail = e.detail.clone();
                // A repairing process may know the values better than the interrupted one.
                if e.before.is_some() {
                    op.before = e.before.clone();
                }
                if e.after.is_some() {
                    op.after = e.after.clone();
                }
            }
            None => {
                index.insert(e.op_id.as_str(), ops.len());
                ops.push(OpenOperation {
                    op_id: e.op_id.clone(),
                    action: e.action,
                    env: e.env.clone(),
                    before: e.before.clone(),
                    after: e.after.clone(),
                    who: e.who.clone(),
                    pid: e.pid,
                    started: e.ts.clone(),
                    last_phase: e.phase,
                    last_ts: e.ts.clone(),
                    last_detail: e.detail.clone(),
                });
            }
        }
    }
    ops.retain(|op| !op.last_phase.is_terminal());
    ops
}
