//! Map replies: `show map` (the list of maps), `show map <file>` (entries), `get map` and
//! `prepare map`.
//!
//! Grammar (`grammar/README.md` §2, `show map`):
//! - list: `# id (file) description`, then `<id> (<file>) <description> curr_ver=<n>
//!   next_ver=<n> entry_cnt=<n>` per map (the counters are absent on older versions);
//! - entries: `0x<ref> <key> <value>` per entry, the value being the rest of the line; an
//!   empty map answers a bare `\n`;
//! - `get map`: `type=str, case=sensitive, found=yes, idx=tree, key="…", value="…",
//!   type="str"` (quotes inside key and value are *not* escaped), or `…, found=no`;
//! - `prepare map`: `New version created: <n>` (an info message: `[6]: ` under
//!   severity-output).

use nom::bytes::complete::{tag, take_while1};
use nom::character::complete::u32 as decimal;
use nom::combinator::{all_consuming, opt};
use nom::sequence::{preceded, terminated};
use nom::IResult;
use serde::Serialize;

use super::{MapKey, MapRef, MapValue, ReplyKind, RuntimeCommand};
use crate::runtime::parse::outcome::severity_prefix;
use crate::runtime::parse::{lines, non_empty, ParseError};
use crate::runtime::Error;

/// One map known to HAProxy (`show map` without argument).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MapInfo {
    /// Numeric id, usable as `#<id>` (differs between versions for the same config).
    pub id: i64,
    /// The map file (the name used in commands).
    pub file: String,
    /// HAProxy's description (`pattern loaded from file … line 14.`).
    pub description: String,
    /// Committed version.
    pub curr_ver: Option<u32>,
    /// Next version `prepare map` will hand out.
    pub next_ver: Option<u32>,
    /// Entries across all versions, uncommitted ones included.
    pub entry_cnt: Option<u64>,
}

/// One entry of `show map <file>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MapEntry {
    /// `0x…` reference, usable as `#0x…`; changes whenever the entry is re-created.
    pub reference: String,
    /// The key (second word).
    pub key: String,
    /// The rest of the line; may hold spaces.
    pub value: String,
}

/// The answer of `get map <file> <value>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MapLookup {
    /// `found=yes`.
    pub found: bool,
    /// The matching key, unquoted.
    pub key: Option<String>,
    /// The value it maps to, unquoted.
    pub value: Option<String>,
    /// Every `name=value` pair as printed (quotes removed); `type` appears twice.
    pub fields: Vec<(String, String)>,
}

/// Parses the `show map` list.
pub fn parse_map_list(body: &[u8]) -> Result<Vec<MapInfo>, ParseError> {
    const WHAT: &str = "show map";
    let all = lines(WHAT, body)?;
    let mut it = all.iter();
    let header = it
        .next()
        .ok_or_else(|| ParseError::new(WHAT, 0, "empty reply"))?;
    if !header.text.starts_with(b"# id (file)") {
        return Err(ParseError::new(
            WHAT,
            header.offset,
            "expected the header `# id (file) description`",
        ));
    }
    let mut maps = Vec::new();
    for line in it {
        non_empty(WHAT, line)?;
        let text = line.str(WHAT)?;
        let bad = |m: &str| ParseError::new(WHAT, line.offset, m.to_owned());
        let (id, rest) = text
            .split_once(" (")
            .ok_or_else(|| bad("expected `<id> (<file>)`"))?;
        let id: i64 = id.parse().map_err(|_| bad("map id is not a number"))?;
        let (file, rest) = match rest.split_once(") ") {
            Some(split) => split,
            None => (
                rest.strip_suffix(')')
                    .ok_or_else(|| bad("expected `)` after the file"))?,
                "",
            ),
        };
        let (description, counters) = match rest.rfind("curr_ver=") {
            Some(at) => (
                rest.get(..at).unwrap_or_default().trim_end(),
                Some(rest.get(at..).unwrap_or_default()),
            ),
            None => (rest, None),
        };
        let (curr_ver, next_ver, entry_cnt) = match counters {
            Some(counters) => {
                let c = parse_counters(counters)
                    .ok_or_else(|| bad("expected `curr_ver=<n> next_ver=<n> entry_cnt=<n>`"))?;
                (Some(c.0), Some(c.1), Some(c.2))
            }
            None => (None, None, None),
        };
        maps.push(MapInfo {
            id,
            file: file.to_owned(),
            description: description.to_owned(),
            curr_ver,
            next_ver,
            entry_cnt,
        });
    }
    Ok(maps)
}

/// `curr_ver=<n> next_ver=<n> entry_cnt=<n>`.
fn parse_counters(text: &str) -> Option<(u32, u32, u64)> {
    let mut curr = None;
    let mut next = None;
    let mut count = None;
    for word in text.split(' ') {
        let (name, value) = word.split_once('=')?;
        match name {
            "curr_ver" => curr = Some(value.parse().ok()?),
            "next_ver" => next = Some(value.parse().ok()?),
            "entry_cnt" => count = Some(value.parse().ok()?),
            _ => return None,
        }
    }
    Some((curr?, next?, count?))
}

/// Parses `show map <file>` entries.
pub fn parse_map_entries(body: &[u8]) -> Result<Vec<MapEntry>, ParseError> {
    const WHAT: &str = "show map <file>";
    let mut entries = Vec::new();
    for line in lines(WHAT, body)? {
        non_empty(WHAT, &line)?;
        let text = line.str(WHAT)?;
        let bad = |m: &str| ParseError::new(WHAT, line.offset, m.to_owned());
        let (reference, rest) = text
            .split_once(' ')
            .ok_or_else(|| bad("expected `0x<ref> <key> <value>`"))?;
        let hex = reference
            .strip_prefix("0x")
            .ok_or_else(|| bad("reference does not start with 0x"))?;
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("reference is not hexadecimal"));
        }
        // A map file line may carry a key and no value: HAProxy then prints `<key> ` or `<key>`.
        let (key, value) = rest.split_once(' ').unwrap_or((rest, ""));
        if key.is_empty() {
            return Err(bad("empty key"));
        }
        entries.push(MapEntry {
            reference: reference.to_owned(),
            key: key.to_owned(),
            value: value.to_owned(),
        });
    }
    Ok(entries)
}

/// Parses the answer of `get map`.
pub fn parse_get_map(body: &[u8]) -> Result<MapLookup, ParseError> {
    const WHAT: &str = "get map";
    let all = lines(WHAT, body)?;
    let [line] = all.as_slice() else {
        return Err(ParseError::new(WHAT, 0, "expected exactly one line"));
    };
    let text = line.str(WHAT)?;
    let mut fields = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (name, after) = rest
            .split_once('=')
            .ok_or_else(|| ParseError::new(WHAT, line.offset, "expected `name=value`"))?;
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(ParseError::new(
                WHAT,
                line.offset,
                format!("bad field name {name:?}"),
            ));
        }
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            // Quotes inside are not escaped: the value ends at the `"` that is followed by
            // the end of the line or by `, <name>=`.
            let end = closing_quote(quoted)
                .ok_or_else(|| ParseError::new(WHAT, line.offset, "unterminated quoted value"))?;
            (
                quoted.get(..end).unwrap_or_default(),
                quoted.get(end + 1..).unwrap_or_default(),
            )
        } else {
            match after.find(", ") {
                Some(at) => (
                    after.get(..at).unwrap_or_default(),
                    after.get(at..).unwrap_or_default(),
                ),
                None => (after, ""),
            }
        };
        fields.push((name.to_owned(), value.to_owned()));
        rest = match next {
            "" => "",
            more => more.strip_prefix(", ").ok_or_else(|| {
                ParseError::new(WHAT, line.offset, "expected `, ` between fields")
            })?,
        };
    }
    // `type=` comes twice in real replies; these must not: a reply that says both `found=no`
    // and `found=yes` is not HAProxy's, and guessing which one counts would be worse than
    // refusing it.
    for name in ["found", "key", "value"] {
        if fields.iter().filter(|(k, _)| k == name).count() > 1 {
            return Err(ParseError::new(
                WHAT,
                line.offset,
                format!("field `{name}` appears more than once"),
            ));
        }
    }
    let field = |n: &str| fields.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let found = match field("found").as_deref() {
        Some("yes") => true,
        Some("no") => false,
        _ => return Err(ParseError::new(WHAT, line.offset, "missing `found=yes|no`")),
    };
    Ok(MapLookup {
        found,
        key: field("key"),
        value: field("value"),
        fields,
    })
}

/// Position of the `"` closing a quoted `get map` value.
fn closing_quote(text: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = text.get(from..)?.find('"') {
        let at = from + at;
        let after = text.get(at + 1..)?;
        if after.is_empty() || is_next_field(after) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// True when `text` starts with `, <name>=`.
fn is_next_field(text: &str) -> bool {
    fn next(input: &str) -> IResult<&str, &str> {
        preceded(
            tag(", "),
            terminated(
                take_while1(|c: char| c.is_ascii_alphanumeric() || c == '_'),
                tag("="),
            ),
        )(input)
    }
    next(text).is_ok()
}

/// Parses `New version created: <n>` (with or without `[6]: `) into the version.
pub fn parse_prepare_map(body: &[u8]) -> Result<u32, ParseError> {
    const WHAT: &str = "prepare map";
    let text = match severity_prefix(body) {
        Some((6, rest)) => rest,
        Some(_) => return Err(ParseError::new(WHAT, 0, "unexpected severity")),
        None => body,
    };
    fn version(input: &[u8]) -> IResult<&[u8], u32> {
        all_consuming(terminated(
            preceded(tag("New version created: "), decimal),
            terminated(tag("\n"), opt(tag("\n"))),
        ))(input)
    }
    version(text)
        .map(|(_, v)| v)
        .map_err(|_| ParseError::new(WHAT, 0, "expected `New version created: <n>`"))
}

/// No operator line beyond those [`super::ReplyKind`] knows.
pub(crate) const RAW: &[super::RawReply] = &[];

// ---------------------------------------------------------------------------------------------
// Constructors from the operator's words: each argument validated or escaped (module doc).

impl ShowMap {
    /// `show map [@<ver>] <map>`.
    pub fn new(map: &str, version: Option<u32>) -> Result<ShowMap, Error> {
        Ok(ShowMap {
            map: MapRef::new(map)?,
            version,
        })
    }
}

impl GetMap {
    /// `get map <map> <key>`.
    pub fn new(map: &str, key: &str) -> Result<GetMap, Error> {
        Ok(GetMap {
            map: MapRef::new(map)?,
            key: MapKey::new(key)?,
        })
    }
}

impl SetMap {
    /// `set map <map> <key> <value>`.
    pub fn new(map: &str, key: &str, value: &str) -> Result<SetMap, Error> {
        Ok(SetMap {
            map: MapRef::new(map)?,
            key: MapKey::new(key)?,
            value: MapValue::new(value)?,
        })
    }
}

impl AddMap {
    /// `add map [@<ver>] <map> <key> <value>`.
    pub fn new(map: &str, version: Option<u32>, key: &str, value: &str) -> Result<AddMap, Error> {
        Ok(AddMap {
            map: MapRef::new(map)?,
            version,
            key: MapKey::new(key)?,
            value: MapValue::new(value)?,
        })
    }
}

impl DelMap {
    /// `del map <map> <key>`.
    pub fn new(map: &str, key: &str) -> Result<DelMap, Error> {
        Ok(DelMap {
            map: MapRef::new(map)?,
            key: MapKey::new(key)?,
        })
    }
}

impl ClearMap {
    /// `clear map [@<ver>] <map>`.
    pub fn new(map: &str, version: Option<u32>) -> Result<ClearMap, Error> {
        Ok(ClearMap {
            map: MapRef::new(map)?,
            version,
        })
    }
}

impl PrepareMap {
    /// `prepare map <map>`.
    pub fn new(map: &str) -> Result<PrepareMap, Error> {
        Ok(PrepareMap {
            map: MapRef::new(map)?,
        })
    }
}

impl CommitMap {
    /// `commit map @<ver> <map>`.
    pub fn new(map: &str, version: u32) -> Result<CommitMap, Error> {
        Ok(CommitMap {
            map: MapRef::new(map)?,
            version,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The commands.

/// `show map`: the maps HAProxy knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ShowMaps;

impl RuntimeCommand for ShowMaps {
    type Reply = Vec<MapInfo>;

    fn line(&self) -> String {
        "show map".to_string()
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn kind(&self) -> ReplyKind {
        ReplyKind::MapList
    }

    fn parse_reply(&self, body: &[u8]) -> Result<Vec<MapInfo>, ParseError> {
        parse_map_list(body)
    }
}

/// `show map [@<ver>] <map>`: the entries of one map (of one version).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ShowMap {
    pub map: MapRef,
    pub version: Option<u32>,
}

impl RuntimeCommand for ShowMap {
    type Reply = Vec<MapEntry>;

    fn line(&self) -> String {
        format!(
            "show map {}{}",
            self.version.map(|v| format!("@{v} ")).unwrap_or_default(),
            self.map.as_str()
        )
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn kind(&self) -> ReplyKind {
        ReplyKind::MapEntries
    }

    fn parse_reply(&self, body: &[u8]) -> Result<Vec<MapEntry>, ParseError> {
        parse_map_entries(body)
    }
}

/// `get map <map> <key>`: looks a sample up.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GetMap {
    pub map: MapRef,
    pub key: MapKey,
}

impl RuntimeCommand for GetMap {
    type Reply = MapLookup;

    fn line(&self) -> String {
        format!("get map {} {}", self.map.as_str(), self.key.escaped())
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn kind(&self) -> ReplyKind {
        ReplyKind::GetMap
    }

    fn parse_reply(&self, body: &[u8]) -> Result<MapLookup, ParseError> {
        parse_get_map(body)
    }
}

/// `set map <map> <key> <value>`: changes every entry with that key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SetMap {
    pub map: MapRef,
    pub key: MapKey,
    pub value: MapValue,
}

impl RuntimeCommand for SetMap {
    type Reply = ();

    fn line(&self) -> String {
        format!(
            "set map {} {} {}",
            self.map.as_str(),
            self.key.escaped(),
            self.value.escaped()
        )
    }

    fn idempotent(&self) -> bool {
        false
    }

    fn kind(&self) -> ReplyKind {
        ReplyKind::Empty
    }

    fn parse_reply(&self, body: &[u8]) -> Result<(), ParseError> {
        super::empty_reply(body)
    }
}

/// `add map [@<ver>] <map> <key> <value>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AddMap {
    pub map: MapRef,
    pub version: Option<u32>,
    pub key: MapKey,
    pub value: MapValue,
}

impl RuntimeCommand for AddMap {
    type Reply = ();

    fn line(&self) -> String {
        format!(
            "add map {}{} {} {}",
            self.version.map(|v| format!("@{v} ")).unwrap_or_default(),
            self.map.as_str(),
            self.key.escaped(),
            self.value.escaped()
        )
    }

    fn idempotent(&self) -> bool {
        false
    }

    fn kind(&self) -> ReplyKind {
        ReplyKind::Empty
    }

    fn parse_reply(&self, body: &[u8]) -> Result<(), ParseError> {
        super::empty_reply(body)
    }
}

/// `del map <map> <key>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DelMap {
    pub map: MapRef,
    pub key: MapKey,
}

impl RuntimeCommand for DelMap {
    type Reply = ();

    fn line(&self) -> String {
        format!("del map {} {}", self.map.as_str(), self.key.escaped())
    }

    fn idempotent(&self) -> bool {
        false
    }

    fn kind(&self) -> ReplyKind {
        ReplyKind::Empty
    }

    fn parse_reply(&self, body: &[u8]) -> Result<(), ParseError> {
        super::empty_reply(body)
    }
}

/// `clear map [@<ver>] <map>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClearMap {
    pub map: MapRef,
    pub version: Option<u32>,
}

impl RuntimeCommand for ClearMap {
    type Reply = ();

    fn line(&self) -> String {
        format!(
            "clear map {}{}",
            self.version.map(|v| format!("@{v} ")).unwrap_or_default(),
            self.map.as_str()
        )
    }

    fn idempotent(&self) -> bool {
        false
    }

    fn kind(&self) -> ReplyKind {
        ReplyKind::Empty
    }

    fn parse_reply(&self, body: &[u8]) -> Result<(), ParseError> {
        super::empty_reply(body)
    }
}

/// `prepare map <map>`: a new empty version; the reply is its number.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PrepareMap {
    pub map: MapRef,
}

impl RuntimeCommand for PrepareMap {
    type Reply = u32;

    fn line(&self) -> String {
        format!("prepare map {}", self.map.as_str())
    }

    fn idempotent(&self) -> bool {
        false
    }

    fn kind(&self) -> ReplyKind {
        ReplyKind::PrepareMap
    }

    fn parse_reply(&self, body: &[u8]) -> Result<u32, ParseError> {
        parse_prepare_map(body)
    }
}

/// `commit map @<ver> <map>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CommitMap {
    pub map: MapRef,
    pub version: u32,
}

impl RuntimeCommand for CommitMap {
    type Reply = ();

    fn line(&self) -> String {
        format!("commit map @{} {}", self.version, self.map.as_str())
    }

    fn idempotent(&self) -> bool {
        false
    }

    fn kind(&self) -> ReplyKind {
        ReplyKind::Empty
    }

    fn parse_reply(&self, body: &[u8]) -> Result<(), ParseError> {
        super::empty_reply(body)
    }
}
