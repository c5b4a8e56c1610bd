//! Master CLI replies: `show proc` and `reload`.
//!
//! `show proc` (recorded on 2.6, 3.0, 3.2):
//! ```text
//! #<PID>          <type>          <reloads>       <uptime>        <version>      
//! 9057            master          1 [failed: 0]   0d00h00m01s     2.6.12-1+deb12u4
//! # workers
//! 9079            worker          0               0d00h00m00s     2.6.12-1+deb12u4
//! # old workers
//! …
//! # programs
//! ```
//! Cells are printed `%-15s ` (so a wide cell pushes the next ones right) and the master's
//! reloads cell holds spaces (`N [failed: M]`), so a line is read as words with a dedicated
//! rule for that cell rather than by column position. 3.2 drops `# programs` and, after a
//! failed reload, leaves `# workers` empty and lists the serving worker under `# old workers`.
//!
//! `reload` (3.0, 3.2): `Success=0|1\n--\n<startup log lines>\n\n`; 2.6 answers nothing.

use serde::Serialize;

use super::{ReplyKind, RuntimeCommand};
use crate::runtime::parse::{lines, non_empty, Line, ParseError};

/// One process of `show proc`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Proc {
    pub pid: u32,
    /// `master`, `worker`, or a program's name.
    pub kind: String,
    /// Master: reloads so far; worker: reloads it has survived (0 = current).
    pub reloads: u32,
    /// Master only: failed reloads since the last good one (`[failed: M]`).
    pub failed_reloads: Option<u32>,
    /// `XdHHhMMmSSs`.
    pub uptime: String,
    /// HAProxy version (`-` for programs).
    pub version: String,
}

/// The whole `show proc` list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcList {
    pub master: Proc,
    pub workers: Vec<Proc>,
    pub old_workers: Vec<Proc>,
    pub programs: Vec<Proc>,
}

/// One line of the reload log: `[NOTICE]   (9085) : New worker (9152) forked`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    /// `NOTICE`, `WARNING`, `ALERT`, …; `None` for a line without the `[LEVEL]` form.
    pub level: Option<String>,
    /// The PID in parentheses.
    pub pid: Option<u32>,
    /// The rest of the line (the whole line when it has no `[LEVEL] (pid) : ` prefix).
    pub message: String,
}

/// The report of a master `reload` (HAProxy ≥ 2.7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReloadStatus {
    /// `Success=1`.
    pub success: bool,
    /// The startup log that followed `--`.
    pub log: Vec<LogLine>,
}

const PROC: &str = "show proc";
const RELOAD: &str = "reload";

/// Parses a `show proc` body.
pub fn parse_proc(body: &[u8]) -> Result<ProcList, ParseError> {
    let all = lines(PROC, body)?;
    let mut it = all.iter();
    let header = it
        .next()
        .ok_or_else(|| ParseError::new(PROC, 0, "empty reply"))?;
    if !header.text.starts_with(b"#<PID>") {
        return Err(ParseError::new(
            PROC,
            header.offset,
            "expected the header `#<PID> <type> …`",
        ));
    }
    let master_line = it
        .next()
        .ok_or_else(|| ParseError::new(PROC, body.len(), "missing the master line"))?;
    let master = proc_line(master_line)?;
    if master.kind != "master" || master.failed_reloads.is_none() {
        return Err(ParseError::new(
            PROC,
            master_line.offset,
            "expected the master line",
        ));
    }
    let (mut workers, mut old_workers, mut programs) = (Vec::new(), Vec::new(), Vec::new());
    let mut section: Option<&mut Vec<Proc>> = None;
    for line in it {
        non_empty(PROC, line)?;
        match line.text {
            b"# workers" => section = Some(&mut workers),
            b"# old workers" => section = Some(&mut old_workers),
            b"# programs" => section = Some(&mut programs),
            _ => {
                let proc = proc_line(line)?;
                match section.as_deref_mut() {
                    Some(list) => list.push(proc),
                    None => {
                        return Err(ParseError::new(
                            PROC,
                            line.offset,
                            "process line before any `# …` section",
                        ))
                    }
                }
            }
        }
    }
    Ok(ProcList {
        master,
        workers,
        old_workers,
        programs,
    })
}

/// `<pid> <type> <reloads>[ [failed: M]] <uptime> <version>`, words padded with spaces.
fn proc_line(line: &Line<'_>) -> Result<Proc, ParseError> {
    let bad = |m: &str| ParseError::new(PROC, line.offset, m.to_owned());
    let text = line.str(PROC)?;
    // 3.2 `show proc debug` appends `\t\t <ipc fds>`: not part of these columns.
    let text = text.split('\t').next().unwrap_or_default();
    let mut words = text.split(' ').filter(|w| !w.is_empty()).peekable();
    let pid = words
        .next()
        .and_then(|w| w.parse().ok())
        .ok_or_else(|| bad("expected a PID"))?;
    let kind = words
        .next()
        .ok_or_else(|| bad("expected a process type"))?
        .to_owned();
    let reloads = words
        .next()
        .and_then(|w| w.parse().ok())
        .ok_or_else(|| bad("expected a reload count"))?;
    let failed_reloads = if words.peek() == Some(&"[failed:") {
        words.next();
        let failed = words
            .next()
            .and_then(|w| w.strip_suffix(']'))
            .and_then(|w| w.parse().ok())
            .ok_or_else(|| bad("expected `[failed: <n>]`"))?;
        Some(failed)
    } else {
        None
    };
    let uptime = words
        .next()
        .ok_or_else(|| bad("expected an uptime"))?
        .to_owned();
    let version = words
        .next()
        .ok_or_else(|| bad("expected a version"))?
        .to_owned();
    if words.next().is_some() {
        return Err(bad("unexpected words after the version"));
    }
    Ok(Proc {
        pid,
        kind,
        reloads,
        failed_reloads,
        uptime,
        version,
    })
}

/// Parses a master `reload` answer. `Ok(None)` is 2.6's empty answer: the reload was only
/// requested, and must be confirmed through `show proc`.
pub fn parse_reload(body: &[u8]) -> Result<Option<ReloadStatus>, ParseError> {
    if body.is_empty() {
        return Ok(None);
    }
    let all = lines(RELOAD, body)?;
    let mut it = all.iter();
    let first = it
        .next()
        .ok_or_else(|| ParseError::new(RELOAD, 0, "empty reply"))?;
    let success = match first.text {
        b"Success=1" => true,
        b"Success=0" => false,
        _ => {
            return Err(ParseError::new(
                RELOAD,
                first.offset,
                "expected `Success=0|1`",
            ))
        }
    };
    match it.next() {
        Some(sep) if sep.text == b"--" => {}
        Some(sep) => return Err(ParseError::new(RELOAD, sep.offset, "expected `--`")),
        None => return Err(ParseError::new(RELOAD, body.len(), "missing `--` line")),
    }
    let mut log = Vec::new();
    for line in it {
        non_empty(RELOAD, line)?;
        log.push(log_line(line.str(RELOAD)?));
    }
    Ok(Some(ReloadStatus { success, log }))
}

/// Splits `[LEVEL]   (pid) : message`; keeps any other line whole.
fn log_line(text: &str) -> LogLine {
    let parsed = (|| {
        let rest = text.strip_prefix('[')?;
        let (level, rest) = rest.split_once(']')?;
        let rest = rest.trim_start_matches(' ').strip_prefix('(')?;
        let (pid, rest) = rest.split_once(')')?;
        let message = rest.strip_prefix(" : ")?;
        Some(LogLine {
            level: Some(level.to_owned()),
            pid: Some(pid.parse().ok()?),
            message: message.to_owned(),
        })
    })();
    parsed.unwrap_or_else(|| LogLine {
        level: None,
        pid: None,
        message: text.to_owned(),
    })
}

/// No operator line beyond those [`super::ReplyKind`] knows.
pub(crate) const RAW: &[super::RawReply] = &[];

// ---------------------------------------------------------------------------------------------
// The commands (of the master process itself: sent without a worker routing prefix).

/// Master `show proc`: the master, its workers and old workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ShowProc;

impl RuntimeCommand for ShowProc {
    type Reply = ProcList;

    fn line(&self) -> String {
        "show proc".to_string()
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn kind(&self) -> ReplyKind {
        ReplyKind::Proc
    }

    fn parse_reply(&self, body: &[u8]) -> Result<ProcList, ParseError> {
        parse_proc(body)
    }

    fn master(&self) -> bool {
        true
    }
}

/// Master `reload`: `Some` status on ≥ 2.7, `None` on 2.6, which answers nothing (confirm it
/// with [`crate::runtime::master::reload`]). It closes the connection, so it is never
/// pipelined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Reload;

impl RuntimeCommand for Reload {
    type Reply = Option<ReloadStatus>;

    fn line(&self) -> String {
        "reload".to_string()
    }

    fn idempotent(&self) -> bool {
        false
    }

    fn kind(&self) -> ReplyKind {
        ReplyKind::Reload
    }

    fn parse_reply(&self, body: &[u8]) -> Result<Option<ReloadStatus>, ParseError> {
        parse_reload(body)
    }

    fn master(&self) -> bool {
        true
    }
}
