//! `show servers conn [<backend>]`: per-server connection counters, a space-separated table.
//!
//! Recorded on 2.6, 3.0 and 3.2 (same format):
//! `# bkname/svname bkid/svid addr port - purge_delay used_cur used_max need_est unsafe_nb
//! safe_nb idle_lim idle_cur idle_per_thr[2]` then rows such as
//! `be_a/blue 3/1 127.0.0.1 28992 - 5000 0 1 1 0 0 -1 0 0 0`. The last column holds one value
//! per thread: `idle_per_thr[N]` is followed by N values, so it is expanded here into the
//! columns `idle_per_thr[0]` … `idle_per_thr[N-1]` and every row has one field per column.

use serde::Serialize;

use super::{lines, non_empty, ParseError};

const WHAT: &str = "show servers conn";

/// One server's row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerConnRow {
    /// Backend name (the part of `bkname/svname` before `/`).
    pub backend: String,
    /// Server name.
    pub server: String,
    /// Every field, `bkname/svname` included, one per column.
    pub fields: Vec<String>,
}

/// The whole table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServersConn {
    /// Column names, per-thread columns expanded.
    pub columns: Vec<String>,
    /// Rows in HAProxy's order.
    pub rows: Vec<ServerConnRow>,
}

impl ServersConn {
    /// Column `name` of `row`.
    pub fn get<'a>(&self, row: &'a ServerConnRow, name: &str) -> Option<&'a str> {
        let at = self.columns.iter().position(|c| c == name)?;
        row.fields.get(at).map(String::as_str)
    }

    /// The row of `backend/server`.
    pub fn find(&self, backend: &str, server: &str) -> Option<&ServerConnRow> {
        self.rows
            .iter()
            .find(|r| r.backend == backend && r.server == server)
    }
}

/// `name[N]` → `Some((name, N))`.
fn per_thread(column: &str) -> Option<(&str, usize)> {
    let inner = column.strip_suffix(']')?;
    let (name, count) = inner.split_once('[')?;
    Some((name, count.parse().ok()?))
}

/// Parses a `show servers conn` body.
pub fn parse_servers_conn(body: &[u8]) -> Result<ServersConn, ParseError> {
    let all = lines(WHAT, body)?;
    let mut it = all.iter();
    let header = it
        .next()
        .ok_or_else(|| ParseError::new(WHAT, 0, "empty reply"))?;
    let names = header.str(WHAT)?.strip_prefix("# ").ok_or_else(|| {
        ParseError::new(WHAT, header.offset, "expected a `# bkname/svname …` header")
    })?;
    let mut columns = Vec::new();
    for name in names.split(' ') {
        match per_thread(name) {
            // A thread count is small; refuse absurd ones rather than allocate them.
            Some((base, n)) if n <= 4096 => {
                columns.extend((0..n).map(|i| format!("{base}[{i}]")));
            }
            Some(_) => {
                return Err(ParseError::new(
                    WHAT,
                    header.offset,
                    "absurd per-thread count",
                ))
            }
            None => columns.push(name.to_owned()),
        }
    }
    if columns.first().map(String::as_str) != Some("bkname/svname") {
        return Err(ParseError::new(
            WHAT,
            header.offset,
            "first column is not `bkname/svname`",
        ));
    }
    let mut rows = Vec::new();
    for line in it {
        non_empty(WHAT, line)?;
        let fields: Vec<String> = line.str(WHAT)?.split(' ').map(str::to_owned).collect();
        if fields.len() != columns.len() {
            return Err(ParseError::new(
                WHAT,
                line.offset,
                format!(
                    "row has {} fields, the header has {}",
                    fields.len(),
                    columns.len()
                ),
            ));
        }
        let (backend, server) = fields
            .first()
            .and_then(|f| f.split_once('/'))
            .ok_or_else(|| ParseError::new(WHAT, line.offset, "expected `backend/server`"))?;
        rows.push(ServerConnRow {
            backend: backend.to_owned(),
            server: server.to_owned(),
            fields,
        });
    }
    Ok(ServersConn { columns, rows })
}
