//! The journal's rotation: a long live journal's ended operations move to
//! `journal.archive.jsonl`, its lines that are not entries to `journal.torn.jsonl`, and the
//! open operations stay where `status` and `apply` look for them. Crash-safe in steps (see
//! [`StateDir::journal_rotate`]).

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::FileExt;

use serde::Serialize;

use super::{
    journal_lines, open_operations_in, parse_journal, PhaseOnly, SkippedLine, JOURNAL_FILE,
};
use crate::state::atomic::{read_optional, sync_dir, write_atomic};
use crate::state::{Error, StateDir};

impl StateDir {
    /// Moves a long journal's lines to `journal.archive.jsonl` (append-only, never pruned by
    /// vezasock) so that every command reads a short live journal. The lines of an operation
    /// still open stay in the live journal (where `status` and `apply` look for it): the
    /// journal stays bounded while an interrupted operation waits for its repair. Lines that
    /// are not journal entries go to `journal.torn.jsonl`, never to the archive. The caller
    /// holds the edge lock (every journal writer does).
    ///
    /// Crash-safe in steps, each finished by the next rotation if cut short, without writing
    /// a line twice: the journal is copied to `journal.rotating.jsonl`; the live journal is
    /// replaced (atomically) by the open operations' lines; the other lines are appended to
    /// the archive and to the torn file; the rotating file is removed. The live journal
    /// always holds every open operation.
    pub(super) fn journal_rotate(&self) -> Result<(), Error> {
        self.journal_finish_rotation()?;
        let path = self.journal_file();
        let Some(bytes) = read_optional(&path)? else {
            return Ok(());
        };
        let split = split_for_rotation(&bytes);
        if split.archived.is_empty() && split.apart.is_empty() {
            return Ok(()); // only open operations: nothing would move
        }
        let rotating = self.path().join(JOURNAL_ROTATING_FILE);
        write_atomic(&rotating, &bytes)?;
        self.journal_finish_rotation()
    }

    /// Finishes a rotation from `journal.rotating.jsonl` (each step skipped when a cut-short
    /// run already did it) and removes it.
    fn journal_finish_rotation(&self) -> Result<(), Error> {
        let rotating = self.path().join(JOURNAL_ROTATING_FILE);
        let Some(bytes) = read_optional(&rotating)? else {
            return Ok(());
        };
        let split = split_for_rotation(&bytes);
        // The live journal still starting with the rotated bytes: replace them by the open
        // operations' lines (anything appended after them stays after them).
        let path = self.journal_file();
        let live = read_optional(&path)?.unwrap_or_default();
        if !bytes.is_empty() && live.starts_with(&bytes) {
            let mut kept = split.carried.clone();
            kept.extend_from_slice(&live[bytes.len()..]);
            if kept.is_empty() {
                std::fs::remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
                sync_dir(self.path())?;
            } else {
                write_atomic(&path, &kept)?;
            }
        }
        self.keep_apart(&split.apart)?;
        let archive_path = self.path().join(JOURNAL_ARCHIVE_FILE);
        append_once(
            &archive_path,
            &split.archived,
            "append to the journal archive",
        )?;
        std::fs::remove_file(&rotating).map_err(|e| Error::io("remove", &rotating, e))?;
        sync_dir(self.path())
    }

    /// Appends `lines` (read from the live journal) to `journal.torn.jsonl`, one JSON object
    /// each, unless that file already ends with them (a cut-short run wrote them).
    fn keep_apart(&self, lines: &[SkippedLine]) -> Result<(), Error> {
        if lines.is_empty() {
            return Ok(());
        }
        let path = self.path().join(JOURNAL_TORN_FILE);
        let mut bytes = Vec::new();
        for line in lines {
            serde_json::to_writer(&mut bytes, &KeptApart::from(line)).map_err(|e| {
                Error::BadJson {
                    path: path.clone(),
                    source: e,
                }
            })?;
            bytes.push(b'\n');
        }
        append_once(&path, &bytes, "append to the torn journal lines")
    }

    /// The lines the journal kept apart in `journal.torn.jsonl` (a torn last line, a line that
    /// is not a journal entry), for `status` to report; 0 when there is no such file.
    pub fn journal_torn_lines(&self) -> Result<usize, Error> {
        let path = self.path().join(JOURNAL_TORN_FILE);
        Ok(read_optional(&path)?
            .map(|b| b.split(|c| *c == b'\n').filter(|l| !l.is_empty()).count())
            .unwrap_or(0))
    }
}

/// The size above which the journal's lines move to the archive after an operation ends
/// (about 20 flips): every flip and `status` reads the whole live journal, so it stays short.
pub const ROTATE_BYTES: u64 = 16 * 1024;

/// Where [`ROTATE_BYTES`] of journal go: append-only, in the state dir.
pub const JOURNAL_ARCHIVE_FILE: &str = "journal.archive.jsonl";

/// A journal being moved to the archive (see `journal_rotate`).
pub const JOURNAL_ROTATING_FILE: &str = "journal.rotating.jsonl";

/// Where the journal keeps lines that are not whole journal entries (a last line cut by a
/// power cut or a hand edit, a line that is not a journal entry), one JSON object each:
/// `{"from", "line", "torn", "why", "text"}`. Never read back as entries; `status` reports it.
pub const JOURNAL_TORN_FILE: &str = "journal.torn.jsonl";

/// One line kept apart in [`JOURNAL_TORN_FILE`]. No timestamp: a cut-short rotation writes
/// the same bytes again, which [`append_once`] recognises.
#[derive(Serialize)]
struct KeptApart<'a> {
    from: &'static str,
    line: usize,
    torn: bool,
    why: &'a str,
    text: &'a str,
}

impl<'a> From<&'a SkippedLine> for KeptApart<'a> {
    fn from(s: &'a SkippedLine) -> Self {
        KeptApart {
            from: JOURNAL_FILE,
            line: s.line,
            torn: s.torn,
            why: &s.why,
            text: &s.text,
        }
    }
}

/// A journal's bytes sorted for a rotation: whole lines, each with its newline.
#[derive(Debug, Default)]
struct RotationSplit {
    /// The lines of operations still open: they stay in the live journal.
    carried: Vec<u8>,
    /// The entries of ended operations: to the archive.
    archived: Vec<u8>,
    /// Lines that are not journal entries (the torn tail among them): kept apart.
    apart: Vec<SkippedLine>,
}

fn split_for_rotation(bytes: &[u8]) -> RotationSplit {
    let open: HashSet<String> = open_operations_in(bytes)
        .into_iter()
        .map(|o| o.op_id)
        .collect();
    let mut split = RotationSplit {
        apart: parse_journal(bytes).skipped,
        ..RotationSplit::default()
    };
    let (lines, _) = journal_lines(bytes);
    for (_, line) in lines {
        let Ok(entry) = serde_json::from_slice::<PhaseOnly>(line) else {
            continue; // in `apart`
        };
        let to = if open.contains(entry.op_id.as_ref()) {
            &mut split.carried
        } else {
            &mut split.archived
        };
        to.extend_from_slice(line);
        to.push(b'\n');
    }
    split
}

/// Appends `bytes` to the file at `path` and fsyncs it, unless it already ends with them
/// (a cut-short run appended them before it was killed). A short append is cut back, so the
/// file only ever holds whole lines.
fn append_once(path: &std::path::Path, bytes: &[u8], action: &'static str) -> Result<(), Error> {
    if bytes.is_empty() {
        return Ok(());
    }
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| Error::io("open", path, e))?;
    let len = file
        .metadata()
        .map_err(|e| Error::io("read the metadata of", path, e))?
        .len();
    let mut tail = vec![0u8; bytes.len()];
    let already = len >= bytes.len() as u64
        && file
            .read_exact_at(&mut tail, len - bytes.len() as u64)
            .is_ok()
        && tail == bytes;
    if already {
        return Ok(());
    }
    if let Err(e) = file.write_all(bytes) {
        let _ = file.set_len(len);
        return Err(Error::io(action, path, e));
    }
    file.sync_data().map_err(|e| Error::io("fsync", path, e))
}
