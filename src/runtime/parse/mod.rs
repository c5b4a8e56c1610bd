//! Pure parsers for HAProxy runtime API replies: bytes in, owned typed values out.
//!
//! No I/O here. Replies are line-oriented, so each parser splits the body into lines
//! ([`lines`]) and reads each line: with `nom` combinators where a line has inner structure
//! (`show info`'s `Key: value`, map entries, `get map`, weights), by hand where a split is the
//! whole grammar (`show stat`'s quoted CSV, `show servers state`'s space-separated columns),
//! which is also faster. Every parser takes the *body* of one reply (the codec has already removed the
//! prompt) and never panics, whatever the bytes. The grammar each one follows is in
//! `grammar/README.md`; the tests run them over the corpus recorded from real HAProxy.
//!
//! Use: [`classify`] a body first (empty success, data, info, or HAProxy's refusal), then
//! [`parse`] data with the [`ReplyKind`] its command expects ([`for_command_line`] for raw
//! lines), or call a module's parser directly. A dump may end in `\n\n` as received or in
//! `\n` if the final empty line was already removed; a body cut inside a line is an error.

use std::fmt;

/// A reply that does not follow the grammar of the parser it was given to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Which reply was being parsed, in HAProxy's words (`show stat`, `show servers state`).
    pub what: &'static str,
    /// Byte offset in the body where parsing stopped.
    pub offset: usize,
    /// What was expected there.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot parse `{}` reply at byte {}: {}",
            self.what, self.offset, self.message
        )
    }
}

impl std::error::Error for ParseError {}

pub mod kind;
pub mod outcome;

// Each parser lives with its command, in `runtime::command::<family>`; these paths stay for
// the callers, tests and fuzz targets that name them here.

/// `show backend` (parser in [`crate::runtime::command::servers`]).
pub mod backends {
    pub use crate::runtime::command::servers::parse_backends;
}

/// `show cli level` (parser in [`crate::runtime::command::cli`]).
pub mod cli_level {
    pub use crate::runtime::command::cli::{parse_cli_level, CliLevel};
}

/// `show info` (parser in [`crate::runtime::command::info`]).
pub mod info {
    pub use crate::runtime::command::info::{parse_info, Info};
}

/// Map replies (parsers in [`crate::runtime::command::maps`]).
pub mod map {
    pub use crate::runtime::command::maps::{
        parse_get_map, parse_map_entries, parse_map_list, parse_prepare_map, MapEntry, MapInfo,
        MapLookup,
    };
}

/// Master replies (parsers in [`crate::runtime::command::master`]).
pub mod master {
    pub use crate::runtime::command::master::{
        parse_proc, parse_reload, LogLine, Proc, ProcList, ReloadStatus,
    };
}

/// `show servers conn` (parser in [`crate::runtime::command::servers`]).
pub mod servers_conn {
    pub use crate::runtime::command::servers::{parse_servers_conn, ServerConnRow, ServersConn};
}

/// `show servers state` (parser in [`crate::runtime::command::servers`]).
pub mod servers_state {
    /// The old name of [`AdminFlags`], kept for `src/edge` until it migrates. Not the
    /// [`crate::runtime::command::AdminState`] that `set server … state` sets.
    pub use crate::runtime::command::servers::AdminFlags as AdminState;
    pub use crate::runtime::command::servers::{
        parse_servers_state, AdminFlags, OpState, ServerStateRow, ServersState, CHECK_STATE_NAMES,
        COLUMNS,
    };
}

/// `show stat` (parser in [`crate::runtime::command::stat`]).
pub mod stat {
    pub use crate::runtime::command::stat::{
        parse_stat, Columns, StatKind, StatRow, StatRowView, StatTable,
    };
}

/// `get weight` (parser in [`crate::runtime::command::servers`]).
pub mod weight {
    pub use crate::runtime::command::servers::{parse_weight, Weight};
}

pub use kind::{for_command_line, parse, Parsed, ReplyKind};
pub use outcome::{classify, Outcome};

impl ParseError {
    /// A parse error for reply `what` at byte `offset`.
    pub(crate) fn new(what: &'static str, offset: usize, message: impl Into<String>) -> Self {
        ParseError {
            what,
            offset,
            message: message.into(),
        }
    }
}

/// One line of a reply: its text without the `\n`, and where it starts in the body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Line<'a> {
    pub offset: usize,
    pub text: &'a [u8],
}

impl<'a> Line<'a> {
    /// The line as UTF-8, or a parse error pointing at it.
    pub(crate) fn str(&self, what: &'static str) -> Result<&'a str, ParseError> {
        std::str::from_utf8(self.text)
            .map_err(|e| ParseError::new(what, self.offset + e.valid_up_to(), "invalid UTF-8"))
    }
}

/// Splits a dump into its lines. Every line ends in `\n`; the empty line that closes a dump
/// (`…\n\n`) is framing and is dropped, so a body may end in `\n\n` or, when the codec
/// already removed it, in `\n`. A body that stops inside a line is truncated: an error.
pub(crate) fn lines<'a>(what: &'static str, body: &'a [u8]) -> Result<Vec<Line<'a>>, ParseError> {
    let mut content = body;
    if content.is_empty() {
        return Ok(Vec::new());
    }
    if content.last() != Some(&b'\n') {
        return Err(ParseError::new(
            what,
            body.len(),
            "reply does not end with a newline",
        ));
    }
    if content.ends_with(b"\n\n") || content == b"\n" {
        content = content.get(..content.len() - 1).unwrap_or_default();
    }
    let mut out = Vec::new();
    let mut offset = 0;
    for text in content.split(|&b| b == b'\n') {
        if offset >= content.len() {
            break;
        }
        out.push(Line { offset, text });
        offset += text.len() + 1;
    }
    Ok(out)
}

/// Rejects a line that is empty in the middle of a dump (the dump ended early or two replies
/// were glued together).
pub(crate) fn non_empty(what: &'static str, line: &Line<'_>) -> Result<(), ParseError> {
    if line.text.is_empty() {
        Err(ParseError::new(
            what,
            line.offset,
            "unexpected empty line inside the reply",
        ))
    } else {
        Ok(())
    }
}
