//! The grammar shared by the pure parsers of HAProxy runtime API replies: bytes in, owned
//! typed values out.
//!
//! No I/O here. Replies are line-oriented, so each parser splits the body into lines
//! ([`lines`]) and reads each line: with `nom` combinators where a line has inner structure
//! (`show info`'s `Key: value`, map entries, `get map`, weights), by hand where a split is the
//! whole grammar (`show stat`'s quoted CSV, `show servers state`'s space-separated columns),
//! which is also faster. Every parser takes the *body* of one reply (the codec has already removed the
//! prompt) and never panics, whatever the bytes. The grammar each one follows is in
//! `grammar/README.md`; the tests run them over the corpus recorded from real HAProxy.
//!
//! This module holds what every parser shares: [`ParseError`], the line splitter, and
//! [`classify`] (what a reply is: empty success, data, info, or HAProxy's refusal). The
//! parsers themselves live beside their commands, in `runtime::command::<family>`; the untyped
//! value of any reply (`exec --json`) is [`crate::runtime::command::raw`]. A dump may end in
//! `\n\n` as received or in `\n` if the final empty line was already removed; a body cut
//! inside a line is an error. Nothing here depends on another runtime module: it is the
//! bottom layer with [`crate::runtime::error`].

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

pub mod outcome;

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
