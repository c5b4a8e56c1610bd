//! Pure `nom` parsers for HAProxy runtime API replies: bytes in, owned typed values out.
//!
//! No I/O here. Every parser takes the *body* of one reply (the codec has already removed the
//! prompt) and never panics, whatever the bytes. The grammar each one follows is in
//! `grammar/README.md`; the tests run them over the corpus recorded from real HAProxy.

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

pub use kind::{for_command_line, parse, Parsed, ReplyKind};
pub use outcome::{classify, Outcome};
