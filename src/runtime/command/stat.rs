//! `show stat`: the CSV dump, looked up by header name.
//!
//! Grammar (`grammar/README.md` §2, `show stat`): a header `# pxname,svname,…,` then one row per proxy, server or
//! listener; **every** line ends with a trailing comma then `\n`; a field holding `,` or `"`
//! is wrapped in `"…"` with inner quotes doubled; the block ends with an empty line. Column
//! positions differ between versions (2.6: 128 columns, 3.0: 205, 3.2: 207), so fields are
//! looked up by name, never by position past the static ones.
//!
//! Dumps reach 10,000 servers, so a row is stored as one `String` holding its unquoted
//! fields, each followed by a `,`, plus the end offset of each field: two allocations per row,
//! and only rows that hold a quoted field are rewritten byte by byte.

use std::collections::HashMap;
use std::sync::Arc;

use serde::ser::{SerializeSeq, SerializeStruct};
use serde::{Serialize, Serializer};

use super::{Name, ReplyKind, RuntimeCommand};
use crate::runtime::parse::ParseError;
use crate::runtime::Error;

const WHAT: &str = "show stat";

/// The columns of a dump, shared by the table and its row views.
#[derive(Debug, Clone, PartialEq)]
pub struct Columns {
    names: Vec<String>,
    index: HashMap<String, usize>,
}

impl Columns {
    fn new(names: Vec<String>) -> Self {
        let mut index = HashMap::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            // The first occurrence wins if a name ever repeats.
            index.entry(name.clone()).or_insert(i);
        }
        Columns { names, index }
    }

    /// Column names in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Position of a column by name.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when there are no columns (never the case for a parsed dump).
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// One data row: its fields, unquoted.
#[derive(Debug, Clone, PartialEq)]
pub struct StatRow {
    /// Every field followed by a `,`.
    text: String,
    /// End offset in `text` of each field (the position of its `,`).
    ends: Vec<u32>,
}

impl StatRow {
    /// Field number `i`, or `None` past the last one.
    pub fn field(&self, i: usize) -> Option<&str> {
        let end = *self.ends.get(i)? as usize;
        let start = match i.checked_sub(1) {
            Some(prev) => *self.ends.get(prev)? as usize + 1,
            None => 0,
        };
        self.text.get(start..end)
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True for a row with no field (never the case for a parsed row).
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// All fields in order.
    pub fn fields(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.ends.len()).map(move |i| self.field(i).unwrap_or_default())
    }
}

impl Serialize for StatRow {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.len()))?;
        for field in self.fields() {
            seq.serialize_element(field)?;
        }
        seq.end()
    }
}

/// What a row describes, from the `type` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatKind {
    /// `type` 0 (`svname` = `FRONTEND`).
    Frontend,
    /// `type` 1 (`svname` = `BACKEND`).
    Backend,
    /// `type` 2.
    Server,
    /// `type` 3.
    Listener,
}

/// A whole `show stat` dump.
#[derive(Debug, Clone, PartialEq)]
pub struct StatTable {
    /// The header, shared with the row views.
    pub columns: Arc<Columns>,
    /// Data rows in HAProxy's order.
    pub rows: Vec<StatRow>,
}

impl Serialize for StatTable {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("StatTable", 2)?;
        s.serialize_field("columns", self.columns.names())?;
        s.serialize_field("rows", &self.rows)?;
        s.end()
    }
}

impl StatTable {
    /// The value of column `name` in `row` (`None` if the column does not exist).
    pub fn get<'a>(&self, row: &'a StatRow, name: &str) -> Option<&'a str> {
        row.field(self.columns.position(name)?)
    }

    /// Row `i` with typed accessors.
    pub fn row(&self, i: usize) -> Option<StatRowView<'_>> {
        let row = self.rows.get(i)?;
        Some(StatRowView {
            columns: &self.columns,
            row,
        })
    }

    /// Every row with typed accessors.
    pub fn iter(&self) -> impl Iterator<Item = StatRowView<'_>> + '_ {
        self.rows.iter().map(move |row| StatRowView {
            columns: &self.columns,
            row,
        })
    }
}

/// A row seen through the header: fields by name, and typed helpers.
#[derive(Debug, Clone, Copy)]
pub struct StatRowView<'a> {
    columns: &'a Columns,
    row: &'a StatRow,
}

impl<'a> StatRowView<'a> {
    /// The value of column `name`.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.row.field(self.columns.position(name)?)
    }

    /// A non-empty numeric column.
    fn number(&self, name: &str) -> Option<u64> {
        self.get(name)?.parse().ok()
    }

    /// Proxy name (`pxname`).
    pub fn pxname(&self) -> Option<&'a str> {
        self.get("pxname")
    }

    /// Server name, or `FRONTEND`/`BACKEND` for aggregate rows (`svname`).
    pub fn svname(&self) -> Option<&'a str> {
        self.get("svname")
    }

    /// `status`: `UP`, `DOWN`, `DRAIN`, `MAINT`, `OPEN`, `NOLB`, `UP 1/2`, …
    pub fn status(&self) -> Option<&'a str> {
        self.get("status")
    }

    /// Current sessions (`scur`).
    pub fn scur(&self) -> Option<u64> {
        self.number("scur")
    }

    /// Effective weight (`weight`).
    pub fn weight(&self) -> Option<u64> {
        self.number("weight")
    }

    /// Last check status (`L4OK`, `* L7OK` while running, empty in maint).
    pub fn check_status(&self) -> Option<&'a str> {
        self.get("check_status")
    }

    /// Frontend, backend, server or listener, from `type`.
    pub fn kind(&self) -> Option<StatKind> {
        match self.get("type")? {
            "0" => Some(StatKind::Frontend),
            "1" => Some(StatKind::Backend),
            "2" => Some(StatKind::Server),
            "3" => Some(StatKind::Listener),
            _ => None,
        }
    }

    /// The underlying row.
    pub fn row(&self) -> &'a StatRow {
        self.row
    }
}

/// Parses a `show stat` body.
pub fn parse_stat(body: &[u8]) -> Result<StatTable, ParseError> {
    if !body.starts_with(b"# ") {
        return Err(ParseError::new(
            WHAT,
            0,
            "expected the header line `# pxname,…`",
        ));
    }
    let (header_row, mut pos) = parse_row(body, 2)?;
    let names: Vec<String> = header_row.fields().map(str::to_owned).collect();
    let width = names.len();
    let columns = Arc::new(Columns::new(names));
    // A typical row is ~5 bytes per field: a cheap guess that avoids most regrowth.
    let mut rows = Vec::with_capacity(body.len() / (width * 5 + 1).max(1));
    loop {
        match body.get(pos) {
            // The codec already removed the final empty line.
            None => break,
            Some(b'\n') => {
                if pos + 1 != body.len() {
                    return Err(ParseError::new(
                        WHAT,
                        pos + 1,
                        "data after the final empty line",
                    ));
                }
                break;
            }
            Some(_) => {
                let (row, next) = parse_row(body, pos)?;
                if row.len() != width {
                    return Err(ParseError::new(
                        WHAT,
                        pos,
                        format!("row has {} fields, the header has {width}", row.len()),
                    ));
                }
                rows.push(row);
                pos = next;
            }
        }
    }
    Ok(StatTable { columns, rows })
}

/// Parses one line starting at `start`: `(field ",")+ "\n"`. Returns the row and the position
/// after its `\n`.
fn parse_row(body: &[u8], start: usize) -> Result<(StatRow, usize), ParseError> {
    let rest = body.get(start..).unwrap_or_default();
    let newline = rest
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| ParseError::new(WHAT, body.len(), "line does not end with a newline"))?;
    let line = rest.get(..newline).unwrap_or_default();
    if line.contains(&b'"') {
        return parse_quoted_row(body, start);
    }
    if line.last() != Some(&b',') {
        return Err(ParseError::new(
            WHAT,
            start + newline,
            "line does not end with a comma",
        ));
    }
    if u32::try_from(line.len()).is_err() {
        return Err(ParseError::new(WHAT, start, "line too long"));
    }
    let text = std::str::from_utf8(line)
        .map_err(|e| ParseError::new(WHAT, start + e.valid_up_to(), "invalid UTF-8"))?;
    let mut ends = Vec::with_capacity(256);
    for (i, &b) in line.iter().enumerate() {
        if b == b',' {
            // Fits: the line length was checked above.
            ends.push(i as u32);
        }
    }
    ends.shrink_to_fit();
    let row = StatRow {
        text: text.to_owned(),
        ends,
    };
    Ok((row, start + newline + 1))
}

/// The slow path for a line holding a `"`: fields may be quoted (and may then hold `,`, `""`
/// and even newlines).
fn parse_quoted_row(body: &[u8], start: usize) -> Result<(StatRow, usize), ParseError> {
    let mut out: Vec<u8> = Vec::new();
    let mut ends = Vec::new();
    let mut pos = start;
    loop {
        match body.get(pos) {
            None => {
                return Err(ParseError::new(
                    WHAT,
                    pos,
                    "line does not end with a newline",
                ))
            }
            Some(b'\n') => {
                if ends.is_empty() {
                    return Err(ParseError::new(WHAT, pos, "empty line"));
                }
                break;
            }
            Some(b'"') => {
                pos += 1;
                loop {
                    match body.get(pos) {
                        None => {
                            return Err(ParseError::new(WHAT, pos, "unterminated quoted field"))
                        }
                        Some(b'"') if body.get(pos + 1) == Some(&b'"') => {
                            out.push(b'"');
                            pos += 2;
                        }
                        Some(b'"') => {
                            pos += 1;
                            break;
                        }
                        Some(&b) => {
                            out.push(b);
                            pos += 1;
                        }
                    }
                }
                if body.get(pos) != Some(&b',') {
                    return Err(ParseError::new(
                        WHAT,
                        pos,
                        "expected `,` after a quoted field",
                    ));
                }
            }
            Some(_) => loop {
                match body.get(pos) {
                    Some(b',') => break,
                    Some(b'"') => {
                        return Err(ParseError::new(WHAT, pos, "quote inside an unquoted field"))
                    }
                    Some(b'\n') | None => {
                        return Err(ParseError::new(WHAT, pos, "line does not end with a comma"))
                    }
                    Some(&b) => {
                        out.push(b);
                        pos += 1;
                    }
                }
            },
        }
        // `pos` is on the `,` that ends the field.
        let end =
            u32::try_from(out.len()).map_err(|_| ParseError::new(WHAT, start, "line too long"))?;
        ends.push(end);
        out.push(b',');
        pos += 1;
    }
    let text = String::from_utf8(out)
        .map_err(|e| ParseError::new(WHAT, start, format!("invalid UTF-8: {e}")))?;
    Ok((StatRow { text, ends }, pos + 1))
}

/// No operator line beyond those [`super::ReplyKind`] knows.
pub(crate) const RAW: &[super::RawReply] = &[];

// ---------------------------------------------------------------------------------------------
// The command.

/// The filter of `show stat <proxy> <type> <sid>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StatFilter {
    /// Proxy name or numeric id (`-1` for all).
    pub proxy: Name,
    /// Bitmask: 1 frontends, 2 backends, 4 servers; `-1` for everything.
    pub types: i32,
    /// Server id, `-1` for all.
    pub server_id: i32,
}

impl StatFilter {
    /// The servers (and only them) of one backend: `show stat <backend> 4 -1`.
    pub fn servers_of(backend: &str) -> Result<StatFilter, Error> {
        Ok(StatFilter {
            proxy: Name::new("backend", backend)?,
            types: 4,
            server_id: -1,
        })
    }

    /// Every server of every backend, and no frontend or backend row: `show stat -1 4 -1`.
    /// On a big edge this is about half of the full dump's bytes and of HAProxy's time.
    pub fn all_servers() -> StatFilter {
        StatFilter {
            proxy: Name("-1".to_string()),
            types: 4,
            server_id: -1,
        }
    }
}

/// `show stat [<proxy> <type> <sid>]`: the CSV dump.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ShowStat {
    pub filter: Option<StatFilter>,
}

impl RuntimeCommand for ShowStat {
    type Reply = StatTable;

    fn line(&self) -> String {
        match &self.filter {
            None => "show stat".to_string(),
            Some(f) => format!("show stat {} {} {}", f.proxy.as_str(), f.types, f.server_id),
        }
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn kind(&self) -> ReplyKind {
        ReplyKind::Stat
    }

    fn parse_reply(&self, body: &[u8]) -> Result<StatTable, ParseError> {
        parse_stat(body)
    }

    fn check(&self) -> Result<(), Error> {
        let Some(filter) = &self.filter else {
            return Ok(());
        };
        if filter.types != -1 && !(1..=15).contains(&filter.types) {
            return Err(Error::InvalidArgument {
                what: "show stat type",
                value: filter.types.to_string(),
                why: "must be -1 or a mask of 1 (frontends), 2 (backends), 4 (servers)",
            });
        }
        if filter.server_id < -1 {
            return Err(Error::InvalidArgument {
                what: "show stat server id",
                value: filter.server_id.to_string(),
                why: "must be -1 (all) or a server id",
            });
        }
        Ok(())
    }
}
