//! `show cli level`: the privilege level of the current CLI session.

use serde::Serialize;

use super::{ReplyKind, RuntimeCommand};
use crate::runtime::parse::outcome::severity_prefix;
use crate::runtime::parse::ParseError;

const WHAT: &str = "show cli level";

/// The CLI privilege level, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CliLevel {
    /// Read-only, no sensitive data.
    User,
    /// Also maps, `show sess`, `clear counters`.
    Operator,
    /// Everything, including server state and weight changes.
    Admin,
}

/// Parses `admin\n\n` (or `[6]: admin\n\n` under severity-output).
pub fn parse_cli_level(body: &[u8]) -> Result<CliLevel, ParseError> {
    let text = match severity_prefix(body) {
        Some((6, rest)) => rest,
        Some(_) => return Err(ParseError::new(WHAT, 0, "unexpected severity")),
        None => body,
    };
    let word = text
        .strip_suffix(b"\n\n")
        .or_else(|| text.strip_suffix(b"\n"));
    match word {
        Some(b"admin") => Ok(CliLevel::Admin),
        Some(b"operator") => Ok(CliLevel::Operator),
        Some(b"user") => Ok(CliLevel::User),
        _ => Err(ParseError::new(
            WHAT,
            0,
            "expected `admin`, `operator` or `user`",
        )),
    }
}

/// No operator line beyond those [`super::ReplyKind`] knows.
pub(crate) const RAW: &[super::RawReply] = &[];

// ---------------------------------------------------------------------------------------------
// The commands.

/// `show cli level`: the privilege level of this CLI session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ShowCliLevel;

impl RuntimeCommand for ShowCliLevel {
    type Reply = CliLevel;

    fn line(&self) -> String {
        "show cli level".to_string()
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn kind(&self) -> ReplyKind {
        ReplyKind::CliLevel
    }

    fn parse_reply(&self, body: &[u8]) -> Result<CliLevel, ParseError> {
        parse_cli_level(body)
    }
}

/// `set severity-output number`: errors as `[3]: …`, info as `[6]: …`. It changes only this
/// connection's own setting, so sending it twice changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SetSeverityOutput;

impl RuntimeCommand for SetSeverityOutput {
    type Reply = ();

    fn line(&self) -> String {
        "set severity-output number".to_string()
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn kind(&self) -> ReplyKind {
        ReplyKind::Empty
    }

    fn parse_reply(&self, body: &[u8]) -> Result<(), ParseError> {
        super::empty_reply(body)
    }
}
