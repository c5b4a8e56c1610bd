//! `show info`: one `Key: value` line per field.
//!
//! Keys may hold spaces (`Unstoppable Jobs`, `Build info`) and values may hold `:`, so each
//! line is split at its first `": "`. 2.6 prints 69 fields, 3.0 and 3.2 print 76.

use nom::bytes::complete::{tag, take_until};
use nom::IResult;
use serde::Serialize;

use super::{ReplyKind, RuntimeCommand};
use crate::runtime::parse::{lines, non_empty, ParseError};

const WHAT: &str = "show info";

/// The fields of `show info`, in HAProxy's order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Info {
    /// `(key, value)` pairs as printed.
    pub fields: Vec<(String, String)>,
}

impl Info {
    /// The value of `key` (exact, case-sensitive match).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `Version` (e.g. `3.0.11-1+deb13u4`).
    pub fn version(&self) -> Option<&str> {
        self.get("Version")
    }

    /// `Pid` of the worker that answered.
    pub fn pid(&self) -> Option<u32> {
        self.get("Pid")?.parse().ok()
    }

    /// `Uptime_sec`.
    pub fn uptime_sec(&self) -> Option<u64> {
        self.get("Uptime_sec")?.parse().ok()
    }

    /// `node` (the host name unless set in the config).
    pub fn node(&self) -> Option<&str> {
        self.get("node")
    }
}

/// `Key: value`, split at the first `": "`.
fn field(line: &[u8]) -> IResult<&[u8], &[u8]> {
    let (rest, key) = take_until(": ")(line)?;
    let (value, _) = tag(": ")(rest)?;
    Ok((value, key))
}

/// Parses a `show info` body.
pub fn parse_info(body: &[u8]) -> Result<Info, ParseError> {
    let mut fields = Vec::new();
    for line in lines(WHAT, body)? {
        non_empty(WHAT, &line)?;
        let text = line.str(WHAT)?;
        let (value, key) = field(text.as_bytes())
            .map_err(|_| ParseError::new(WHAT, line.offset, "expected `Key: value`"))?;
        if key.is_empty() {
            return Err(ParseError::new(WHAT, line.offset, "empty key"));
        }
        // Both halves are slices of a valid &str cut at an ASCII separator.
        let key = String::from_utf8_lossy(key).into_owned();
        let value = String::from_utf8_lossy(value).into_owned();
        fields.push((key, value));
    }
    if fields.is_empty() {
        return Err(ParseError::new(WHAT, 0, "no fields"));
    }
    Ok(Info { fields })
}

/// No operator line beyond those [`super::ReplyKind`] knows.
pub(crate) const RAW: &[super::RawReply] = &[];

// ---------------------------------------------------------------------------------------------
// The command.

/// `show info`: the process's fields (version, PID, uptime, counters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ShowInfo;

impl RuntimeCommand for ShowInfo {
    type Reply = Info;

    fn line(&self) -> String {
        "show info".to_string()
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn kind(&self) -> ReplyKind {
        ReplyKind::Info
    }

    fn parse_reply(&self, body: &[u8]) -> Result<Info, ParseError> {
        parse_info(body)
    }
}
