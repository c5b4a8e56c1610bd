//! `show servers state`: format version 1, the same on 2.6, 3.0 and 3.2.
//!
//! Grammar (`grammar/README.md` §2, `show servers state`): line 1 is the format version `1`; line 2 is the header
//! `# be_id be_name …` naming the 25 columns; then one space-separated row per server; the
//! block ends with an empty line. An empty string prints as `-`. `srv_admin_state` is a
//! *decimal* bitmask. The same text is what `server-state-file` loads, hence
//! [`ServerStateRow::to_line`] and [`ServersState::to_text`].
//!
//! `set server <b>/<s> addr <ip> port <port>` answers what it changed in words, at warning
//! level (`[4]: ` with severity-output), and differently on 2.6 and 3.x
//! (`grammar/corpus-servers/<version>/`): [`parse_addr_change`].

use std::net::IpAddr;

use nom::branch::alt;
use nom::bytes::complete::{tag, take_while1};
use nom::character::complete::{u16 as decimal16, u32 as decimal};
use nom::combinator::{all_consuming, map, map_res, opt, value};
use nom::sequence::{delimited, preceded, terminated, tuple};
use nom::IResult;
use serde::Serialize;

use super::{Name, ReplyKind, RuntimeCommand};
use crate::runtime::parse::{lines, non_empty, Line, ParseError};
use crate::runtime::Error;

const WHAT: &str = "show servers state";

/// The 25 columns of format version 1, in HAProxy's order.
pub const COLUMNS: [&str; 25] = [
    "be_id",
    "be_name",
    "srv_id",
    "srv_name",
    "srv_addr",
    "srv_op_state",
    "srv_admin_state",
    "srv_uweight",
    "srv_iweight",
    "srv_time_since_last_change",
    "srv_check_status",
    "srv_check_result",
    "srv_check_health",
    "srv_check_state",
    "srv_agent_state",
    "bk_f_forced_id",
    "srv_f_forced_id",
    "srv_fqdn",
    "srv_port",
    "srvrecord",
    "srv_use_ssl",
    "srv_check_port",
    "srv_check_addr",
    "srv_agent_addr",
    "srv_agent_port",
];

/// `srv_admin_state`: why a server is administratively down or draining, HAProxy's
/// `SRV_ADMF_*` bitmask (management guide 9.3, `show servers state`). JSON shows it as the
/// number and its flag names: `"admin": 8, "admin_flags": ["FDRAIN"]`. Not to be confused
/// with [`AdminState`] (`ready`, `drain`, `maint`), what `set server … state` sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminFlags(pub u32);

impl AdminFlags {
    /// `FMAINT`: forced maintenance (`set server … state maint`, `disable server`).
    pub const FORCED_MAINT: u32 = 0x01;
    /// `IMAINT`: maintenance inherited from a tracked server.
    pub const INHERITED_MAINT: u32 = 0x02;
    /// `CMAINT`: `disabled` in the configuration.
    pub const CONFIG_MAINT: u32 = 0x04;
    /// `FDRAIN`: forced drain (`set server … state drain`).
    pub const FORCED_DRAIN: u32 = 0x08;
    /// `IDRAIN`: drain inherited from a tracked server.
    pub const INHERITED_DRAIN: u32 = 0x10;
    /// `RMAINT`: maintenance because DNS resolution failed.
    pub const RESOLUTION_MAINT: u32 = 0x20;
    /// `HMAINT`: FQDN set from the CLI.
    pub const FQDN_FROM_CLI: u32 = 0x40;

    /// Each bit and HAProxy's name for it (`SRV_ADMF_<name>`).
    pub const NAMES: [(u32, &'static str); 7] = [
        (Self::FORCED_MAINT, "FMAINT"),
        (Self::INHERITED_MAINT, "IMAINT"),
        (Self::CONFIG_MAINT, "CMAINT"),
        (Self::FORCED_DRAIN, "FDRAIN"),
        (Self::INHERITED_DRAIN, "IDRAIN"),
        (Self::RESOLUTION_MAINT, "RMAINT"),
        (Self::FQDN_FROM_CLI, "HMAINT"),
    ];

    const MAINT_BITS: u32 =
        Self::FORCED_MAINT | Self::INHERITED_MAINT | Self::CONFIG_MAINT | Self::RESOLUTION_MAINT;
    const DRAIN_BITS: u32 = Self::FORCED_DRAIN | Self::INHERITED_DRAIN;

    /// In maintenance for any reason.
    pub fn is_maint(self) -> bool {
        self.0 & Self::MAINT_BITS != 0
    }

    /// Draining for any reason.
    pub fn is_drain(self) -> bool {
        self.0 & Self::DRAIN_BITS != 0
    }

    /// True when `flag` (one of the constants) is set.
    pub fn has(self, flag: u32) -> bool {
        self.0 & flag != 0
    }

    /// The names of the bits set, lowest first (`["FMAINT", "FDRAIN"]`); a bit HAProxy did not
    /// have when this was written shows as its hex value (`"0x80"`).
    pub fn names(self) -> Vec<String> {
        flag_names(self.0, &Self::NAMES)
    }
}

/// `srv_check_state` / `srv_agent_state`: HAProxy's `CHK_ST_*` bitmask.
pub const CHECK_STATE_NAMES: [(u32, &str); 5] = [
    (0x01, "INPROGRESS"),
    (0x02, "CONFIGURED"),
    (0x04, "ENABLED"),
    (0x08, "PAUSED"),
    (0x10, "AGENT"),
];

/// Names of the bits of `bits`, lowest first; unnamed bits as `0x…`.
fn flag_names(bits: u32, names: &[(u32, &str)]) -> Vec<String> {
    (0..32)
        .map(|i| 1u32 << i)
        .filter(|bit| bits & bit != 0)
        .map(|bit| match names.iter().find(|(b, _)| *b == bit) {
            Some((_, name)) => (*name).to_string(),
            None => format!("{bit:#x}"),
        })
        .collect()
}

/// `srv_op_state`: the operational state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OpState {
    /// 0: down.
    Stopped,
    /// 1: coming up (slowstart).
    Starting,
    /// 2: up.
    Running,
    /// 3: going down.
    Stopping,
    /// A value this version of vezasock does not know.
    Unknown(u32),
}

impl OpState {
    /// From the numeric column.
    pub fn from_code(code: u32) -> Self {
        match code {
            0 => OpState::Stopped,
            1 => OpState::Starting,
            2 => OpState::Running,
            3 => OpState::Stopping,
            n => OpState::Unknown(n),
        }
    }

    /// Back to the numeric column.
    pub fn code(self) -> u32 {
        match self {
            OpState::Stopped => 0,
            OpState::Starting => 1,
            OpState::Running => 2,
            OpState::Stopping => 3,
            OpState::Unknown(n) => n,
        }
    }
}

/// Names of the `HCHK_STATUS_*` values, as `show stat` prints them.
const CHECK_STATUS_NAMES: [&str; 21] = [
    "UNK", "INI", "START", "CHECKED", "HANA", "SOCKERR", "L4OK", "L4TOUT", "L4CON", "L6OK",
    "L6TOUT", "L6RSP", "L7TOUT", "L7RSP", "L57DATA", "L7OK", "L7OKC", "L7STS", "PROCERR",
    "PROCTOUT", "PROCOK",
];

/// Names of the `CHK_RES_*` values.
const CHECK_RESULT_NAMES: [&str; 5] = ["unknown", "neutral", "failed", "passed", "condpass"];

/// One server line. Its JSON carries every column under its name here, and beside each coded
/// number its meaning: `admin_flags`, `check_status_name`, `check_result_name`,
/// `check_state_flags`, `agent_state_flags` (grammar/README.md, "show servers state").
#[derive(Debug, Clone, PartialEq)]
pub struct ServerStateRow {
    pub be_id: u32,
    pub be_name: String,
    pub srv_id: u32,
    pub srv_name: String,
    pub srv_addr: Option<String>,
    pub op: OpState,
    pub admin: AdminFlags,
    pub uweight: u32,
    pub iweight: u32,
    /// Seconds; HAProxy prints `-1` when the server's last change is stamped a moment after
    /// its own `now` (seen on 2.6 right after a restart that loaded a server-state file).
    pub time_since_last_change: i64,
    /// `HCHK_STATUS_*` number; see [`ServerStateRow::check_status_name`].
    pub check_status: u32,
    /// `CHK_RES_*` number; see [`ServerStateRow::check_result_name`].
    pub check_result: u32,
    pub check_health: u32,
    /// Bitmask: 0x01 running, 0x02 configured, 0x04 enabled, 0x08 paused, 0x10 agent.
    pub check_state: u32,
    pub agent_state: u32,
    pub bk_f_forced_id: u32,
    pub srv_f_forced_id: u32,
    pub fqdn: Option<String>,
    pub port: u32,
    pub srvrecord: Option<String>,
    pub use_ssl: u32,
    pub check_port: u32,
    pub check_addr: Option<String>,
    pub agent_addr: Option<String>,
    pub agent_port: u32,
}

impl ServerStateRow {
    /// `L4OK`, `L7STS`, … or `None` for a number HAProxy did not have when this was written.
    pub fn check_status_name(&self) -> Option<&'static str> {
        CHECK_STATUS_NAMES.get(self.check_status as usize).copied()
    }

    /// `passed`, `failed`, …
    pub fn check_result_name(&self) -> Option<&'static str> {
        CHECK_RESULT_NAMES.get(self.check_result as usize).copied()
    }

    /// The names of the `srv_check_state` bits (`["CONFIGURED", "ENABLED"]`).
    pub fn check_state_names(&self) -> Vec<String> {
        flag_names(self.check_state, &CHECK_STATE_NAMES)
    }

    /// The names of the `srv_agent_state` bits.
    pub fn agent_state_names(&self) -> Vec<String> {
        flag_names(self.agent_state, &CHECK_STATE_NAMES)
    }

    /// The row in `show servers state` / server-state-file format (no newline).
    pub fn to_line(&self) -> String {
        fn opt(v: &Option<String>) -> &str {
            v.as_deref().unwrap_or("-")
        }
        format!(
            "{} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {}",
            self.be_id,
            self.be_name,
            self.srv_id,
            self.srv_name,
            opt(&self.srv_addr),
            self.op.code(),
            self.admin.0,
            self.uweight,
            self.iweight,
            self.time_since_last_change,
            self.check_status,
            self.check_result,
            self.check_health,
            self.check_state,
            self.agent_state,
            self.bk_f_forced_id,
            self.srv_f_forced_id,
            opt(&self.fqdn),
            self.port,
            opt(&self.srvrecord),
            self.use_ssl,
            self.check_port,
            opt(&self.check_addr),
            opt(&self.agent_addr),
            self.agent_port,
        )
    }
}

impl Serialize for ServerStateRow {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        /// The row as JSON: the columns, each coded number followed by its decoded form.
        #[derive(Serialize)]
        struct Json<'a> {
            be_id: u32,
            be_name: &'a str,
            srv_id: u32,
            srv_name: &'a str,
            srv_addr: &'a Option<String>,
            op: OpState,
            admin: u32,
            admin_flags: Vec<String>,
            uweight: u32,
            iweight: u32,
            time_since_last_change: i64,
            check_status: u32,
            check_status_name: Option<&'static str>,
            check_result: u32,
            check_result_name: Option<&'static str>,
            check_health: u32,
            check_state: u32,
            check_state_flags: Vec<String>,
            agent_state: u32,
            agent_state_flags: Vec<String>,
            bk_f_forced_id: u32,
            srv_f_forced_id: u32,
            fqdn: &'a Option<String>,
            port: u32,
            srvrecord: &'a Option<String>,
            use_ssl: u32,
            check_port: u32,
            check_addr: &'a Option<String>,
            agent_addr: &'a Option<String>,
            agent_port: u32,
        }
        Json {
            be_id: self.be_id,
            be_name: &self.be_name,
            srv_id: self.srv_id,
            srv_name: &self.srv_name,
            srv_addr: &self.srv_addr,
            op: self.op,
            admin: self.admin.0,
            admin_flags: self.admin.names(),
            uweight: self.uweight,
            iweight: self.iweight,
            time_since_last_change: self.time_since_last_change,
            check_status: self.check_status,
            check_status_name: self.check_status_name(),
            check_result: self.check_result,
            check_result_name: self.check_result_name(),
            check_health: self.check_health,
            check_state: self.check_state,
            check_state_flags: self.check_state_names(),
            agent_state: self.agent_state,
            agent_state_flags: self.agent_state_names(),
            bk_f_forced_id: self.bk_f_forced_id,
            srv_f_forced_id: self.srv_f_forced_id,
            fqdn: &self.fqdn,
            port: self.port,
            srvrecord: &self.srvrecord,
            use_ssl: self.use_ssl,
            check_port: self.check_port,
            check_addr: &self.check_addr,
            agent_addr: &self.agent_addr,
            agent_port: self.agent_port,
        }
        .serialize(serializer)
    }
}

/// A whole `show servers state` dump.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServersState {
    pub rows: Vec<ServerStateRow>,
}

impl ServersState {
    /// The dump in server-state-file format: `1`, the header, the rows, each ending in `\n`.
    pub fn to_text(&self) -> String {
        let mut out = String::from("1\n# ");
        out.push_str(&COLUMNS.join(" "));
        out.push('\n');
        for row in &self.rows {
            out.push_str(&row.to_line());
            out.push('\n');
        }
        out
    }

    /// The row of `backend/server`.
    pub fn find(&self, backend: &str, server: &str) -> Option<&ServerStateRow> {
        self.rows
            .iter()
            .find(|r| r.be_name == backend && r.srv_name == server)
    }
}

/// Parses a `show servers state` body.
pub fn parse_servers_state(body: &[u8]) -> Result<ServersState, ParseError> {
    let all = lines(WHAT, body)?;
    let mut it = all.iter();
    let version = it
        .next()
        .ok_or_else(|| ParseError::new(WHAT, 0, "empty reply"))?;
    if version.text != b"1" {
        return Err(ParseError::new(
            WHAT,
            version.offset,
            "expected format version `1` on the first line",
        ));
    }
    let header = it
        .next()
        .ok_or_else(|| ParseError::new(WHAT, body.len(), "missing header line"))?;
    let order = header_order(header)?;
    let mut rows = Vec::with_capacity(all.len().saturating_sub(2));
    let mut cells: Vec<&str> = Vec::with_capacity(COLUMNS.len());
    for line in it {
        non_empty(WHAT, line)?;
        let text = line.str(WHAT)?;
        cells.clear();
        cells.extend(text.split(' '));
        if cells.len() != order.len() {
            return Err(ParseError::new(
                WHAT,
                line.offset,
                format!(
                    "row has {} fields, the header has {}",
                    cells.len(),
                    order.len()
                ),
            ));
        }
        rows.push(row(line, &order, &cells)?);
    }
    Ok(ServersState { rows })
}

/// For each known column, its position in this dump's header.
fn header_order(header: &Line<'_>) -> Result<Vec<usize>, ParseError> {
    let text = header.str(WHAT)?;
    let names = text
        .strip_prefix("# ")
        .ok_or_else(|| ParseError::new(WHAT, header.offset, "expected the header `# be_id …`"))?;
    let names: Vec<&str> = names.split(' ').collect();
    let mut order = Vec::with_capacity(COLUMNS.len());
    for column in COLUMNS {
        let at = names.iter().position(|n| *n == column).ok_or_else(|| {
            ParseError::new(WHAT, header.offset, format!("header lacks `{column}`"))
        })?;
        order.push(at);
    }
    if names.len() != COLUMNS.len() {
        return Err(ParseError::new(
            WHAT,
            header.offset,
            format!(
                "header has {} columns, format 1 has {}",
                names.len(),
                COLUMNS.len()
            ),
        ));
    }
    Ok(order)
}

/// Builds one row from its cells, `order[i]` being the cell of `COLUMNS[i]`.
fn row(line: &Line<'_>, order: &[usize], cells: &[&str]) -> Result<ServerStateRow, ParseError> {
    let cell = |i: usize| -> Result<&str, ParseError> {
        let text = order
            .get(i)
            .and_then(|&at| cells.get(at))
            .copied()
            .unwrap_or_default();
        if text.is_empty() {
            return Err(ParseError::new(WHAT, line.offset, "empty field"));
        }
        Ok(text)
    };
    let num = |i: usize| -> Result<u32, ParseError> {
        let text = cell(i)?;
        text.parse().map_err(|_| {
            let name = COLUMNS.get(i).copied().unwrap_or("?");
            ParseError::new(
                WHAT,
                line.offset,
                format!("`{name}` is not a number: {text:?}"),
            )
        })
    };
    let string = |i: usize| -> Result<String, ParseError> { Ok(cell(i)?.to_owned()) };
    let optional = |i: usize| -> Result<Option<String>, ParseError> {
        let text = cell(i)?;
        Ok((text != "-").then(|| text.to_owned()))
    };
    let since = cell(9)?;
    let time_since_last_change = since.parse().map_err(|_| {
        ParseError::new(
            WHAT,
            line.offset,
            format!("`srv_time_since_last_change` is not a number: {since:?}"),
        )
    })?;
    Ok(ServerStateRow {
        be_id: num(0)?,
        be_name: string(1)?,
        srv_id: num(2)?,
        srv_name: string(3)?,
        srv_addr: optional(4)?,
        op: OpState::from_code(num(5)?),
        admin: AdminFlags(num(6)?),
        uweight: num(7)?,
        iweight: num(8)?,
        time_since_last_change,
        check_status: num(10)?,
        check_result: num(11)?,
        check_health: num(12)?,
        check_state: num(13)?,
        agent_state: num(14)?,
        bk_f_forced_id: num(15)?,
        srv_f_forced_id: num(16)?,
        fqdn: optional(17)?,
        port: num(18)?,
        srvrecord: optional(19)?,
        use_ssl: num(20)?,
        check_port: num(21)?,
        check_addr: optional(22)?,
        agent_addr: optional(23)?,
        agent_port: num(24)?,
    })
}

// ---------------------------------------------------------------------------------------------
// `show servers conn [<backend>]`: per-server connection counters, a space-separated table.
//
// Recorded on 2.6, 3.0 and 3.2 (same format):
// `# bkname/svname bkid/svid addr port - purge_delay used_cur used_max need_est unsafe_nb
// safe_nb idle_lim idle_cur idle_per_thr[2]` then rows such as
// `be_a/blue 3/1 127.0.0.1 28992 - 5000 0 1 1 0 0 -1 0 0 0`. The last column holds one value
// per thread: `idle_per_thr[N]` is followed by N values, so it is expanded here into the
// columns `idle_per_thr[0]` … `idle_per_thr[N-1]` and every row has one field per column.

const WHAT_CONN: &str = "show servers conn";

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
    let all = lines(WHAT_CONN, body)?;
    let mut it = all.iter();
    let header = it
        .next()
        .ok_or_else(|| ParseError::new(WHAT_CONN, 0, "empty reply"))?;
    let names = header.str(WHAT_CONN)?.strip_prefix("# ").ok_or_else(|| {
        ParseError::new(
            WHAT_CONN,
            header.offset,
            "expected a `# bkname/svname …` header",
        )
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
                    WHAT_CONN,
                    header.offset,
                    "absurd per-thread count",
                ))
            }
            None => columns.push(name.to_owned()),
        }
    }
    if columns.first().map(String::as_str) != Some("bkname/svname") {
        return Err(ParseError::new(
            WHAT_CONN,
            header.offset,
            "first column is not `bkname/svname`",
        ));
    }
    let mut rows = Vec::new();
    for line in it {
        non_empty(WHAT_CONN, line)?;
        let fields: Vec<String> = line.str(WHAT_CONN)?.split(' ').map(str::to_owned).collect();
        if fields.len() != columns.len() {
            return Err(ParseError::new(
                WHAT_CONN,
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
            .ok_or_else(|| ParseError::new(WHAT_CONN, line.offset, "expected `backend/server`"))?;
        rows.push(ServerConnRow {
            backend: backend.to_owned(),
            server: server.to_owned(),
            fields,
        });
    }
    Ok(ServersConn { columns, rows })
}

// ---------------------------------------------------------------------------------------------
// `get weight <backend>/<server>`: `<current> (initial <initial>)`.

const WHAT_WEIGHT: &str = "get weight";

/// A server's weight now and in the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Weight {
    /// Effective weight (0..=256).
    pub current: u32,
    /// Weight from the configuration, which `N%` values are relative to.
    pub initial: u32,
}

fn weight(input: &[u8]) -> IResult<&[u8], Weight> {
    let (rest, (current, initial)) = all_consuming(terminated(
        tuple((decimal, delimited(tag(" (initial "), decimal, tag(")\n")))),
        opt(tag("\n")),
    ))(input)?;
    Ok((rest, Weight { current, initial }))
}

/// Parses `100 (initial 100)\n\n`.
pub fn parse_weight(body: &[u8]) -> Result<Weight, ParseError> {
    weight(body)
        .map(|(_, w)| w)
        .map_err(|_| ParseError::new(WHAT_WEIGHT, 0, "expected `<current> (initial <initial>)`"))
}

// ---------------------------------------------------------------------------------------------
// `show backend`: a `# name` header, then one backend name per line (frontends are not listed).

const WHAT_BACKENDS: &str = "show backend";

/// Parses a `show backend` body into the backend names, in HAProxy's order.
pub fn parse_backends(body: &[u8]) -> Result<Vec<String>, ParseError> {
    let all = lines(WHAT_BACKENDS, body)?;
    let mut it = all.iter();
    let header = it
        .next()
        .ok_or_else(|| ParseError::new(WHAT_BACKENDS, 0, "empty reply"))?;
    if header.text != b"# name" {
        return Err(ParseError::new(
            WHAT_BACKENDS,
            header.offset,
            "expected the header `# name`",
        ));
    }
    let mut names = Vec::with_capacity(all.len().saturating_sub(1));
    for line in it {
        non_empty(WHAT_BACKENDS, line)?;
        let name = line.str(WHAT_BACKENDS)?;
        // Proxy names never hold whitespace: a line that does is not this reply.
        if name.contains([' ', '\t']) {
            return Err(ParseError::new(
                WHAT_BACKENDS,
                line.offset,
                "backend name holds a space",
            ));
        }
        names.push(name.to_owned());
    }
    Ok(names)
}

const WHAT_ADDR: &str = "set server addr";

/// What `set server <b>/<s> addr <ip> port <port>` says it changed. Both `None`: HAProxy
/// found the server already there (3.x `nothing changed`, 2.6 `no need to change the addr,
/// no need to change the port`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AddrChange {
    /// `(from, to)` when the IP changed.
    pub ip: Option<(IpAddr, IpAddr)>,
    /// `(from, to)` when the port changed.
    pub port: Option<(u16, u16)>,
}

fn quoted_ip(input: &[u8]) -> IResult<&[u8], IpAddr> {
    delimited(
        tag("'"),
        map_res(take_while1(|b| b != b'\''), |ip: &[u8]| {
            std::str::from_utf8(ip)
                .map_err(|_| ())
                .and_then(|t| t.parse::<IpAddr>().map_err(|_| ()))
        }),
        tag("'"),
    )(input)
}

fn quoted_port(input: &[u8]) -> IResult<&[u8], u16> {
    delimited(tag("'"), decimal16, tag("'"))(input)
}

/// `IP changed from '<a>' to '<b>'`, or 2.6's `no need to change the addr`.
fn ip_part(input: &[u8]) -> IResult<&[u8], Option<(IpAddr, IpAddr)>> {
    alt((
        map(
            tuple((
                preceded(tag("IP changed from "), quoted_ip),
                preceded(tag(" to "), quoted_ip),
            )),
            Some,
        ),
        value(None, tag("no need to change the addr")),
    ))(input)
}

/// `port changed from '<p>' to '<q>'`, or 2.6's `no need to change the port`.
fn port_part(input: &[u8]) -> IResult<&[u8], Option<(u16, u16)>> {
    alt((
        map(
            tuple((
                preceded(tag("port changed from "), quoted_port),
                preceded(tag(" to "), quoted_port),
            )),
            Some,
        ),
        value(None, tag("no need to change the port")),
    ))(input)
}

/// `<ip part>[, <port part>] by '<source>'` or `<port part> by '<source>'`.
fn changes(input: &[u8]) -> IResult<&[u8], AddrChange> {
    let by = tuple((tag(" by '"), take_while1(|b| b != b'\'' && b != b'\n'), tag("'")));
    terminated(
        alt((
            map(
                tuple((ip_part, opt(preceded(tag(", "), port_part)))),
                |(ip, port)| AddrChange {
                    ip,
                    port: port.flatten(),
                },
            ),
            map(port_part, |port| AddrChange { ip: None, port }),
        )),
        by,
    )(input)
}

fn addr_reply(input: &[u8]) -> IResult<&[u8], AddrChange> {
    all_consuming(terminated(
        alt((
            value(
                AddrChange {
                    ip: None,
                    port: None,
                },
                tag("nothing changed"),
            ),
            changes,
        )),
        terminated(tag("\n"), opt(tag("\n"))),
    ))(input)
}

/// Parses the reply of `set server … addr …` (with or without its `[4]: ` prefix). Anything
/// else, `Invalid addr '…'` included (HAProxy sends that refusal at warning level), is an
/// error: the caller reads the server back rather than guess.
pub fn parse_addr_change(body: &[u8]) -> Result<AddrChange, ParseError> {
    let text = match crate::runtime::parse::outcome::severity_prefix(body) {
        Some((4, rest)) => rest,
        Some(_) => return Err(ParseError::new(WHAT_ADDR, 0, "unexpected severity")),
        None => body,
    };
    addr_reply(text).map(|(_, c)| c).map_err(|_| {
        ParseError::new(
            WHAT_ADDR,
            0,
            "expected `IP changed from '<ip>' to '<ip>', port changed from '<port>' to \
             '<port>' by '<source>'` or one of its short forms",
        )
    })
}

/// No operator line beyond those [`super::ReplyKind`] knows.
pub(crate) const RAW: &[super::RawReply] = &[];

// ---------------------------------------------------------------------------------------------
// The commands.

/// Administrative state of a server (`set server <b>/<s> state …`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdminState {
    /// Takes traffic.
    Ready,
    /// Keeps its sessions, gets no new ones (except persistent ones).
    Drain,
    /// Out of rotation.
    Maint,
}

impl AdminState {
    /// HAProxy's word.
    pub fn as_str(&self) -> &'static str {
        match self {
            AdminState::Ready => "ready",
            AdminState::Drain => "drain",
            AdminState::Maint => "maint",
        }
    }
}

/// A server weight change (`set server … weight`); the weight HAProxy reports is
/// [`Weight`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WeightChange {
    /// An absolute weight, 0 to 256.
    Absolute(u16),
    /// A percentage of the server's initial (configured) weight.
    Percent(u16),
}

/// A backend and a server name, validated.
fn server(backend: &str, server: &str) -> Result<(Name, Name), Error> {
    Ok((Name::new("backend", backend)?, Name::new("server", server)?))
}

/// An optional backend name, validated.
fn backend(backend: Option<&str>) -> Result<Option<Name>, Error> {
    backend.map(|b| Name::new("backend", b)).transpose()
}

impl ShowServersState {
    /// `show servers state [<backend>]`.
    pub fn new(of: Option<&str>) -> Result<ShowServersState, Error> {
        Ok(ShowServersState {
            backend: backend(of)?,
        })
    }
}

impl ShowServersConn {
    /// `show servers conn [<backend>]`.
    pub fn new(of: Option<&str>) -> Result<ShowServersConn, Error> {
        Ok(ShowServersConn {
            backend: backend(of)?,
        })
    }
}

impl GetWeight {
    /// `get weight <b>/<s>`.
    pub fn new(backend: &str, server: &str) -> Result<GetWeight, Error> {
        let (backend, server) = self::server(backend, server)?;
        Ok(GetWeight { backend, server })
    }
}

impl SetServerState {
    /// `set server <b>/<s> state <state>`.
    pub fn new(backend: &str, server: &str, state: AdminState) -> Result<SetServerState, Error> {
        let (backend, server) = self::server(backend, server)?;
        Ok(SetServerState {
            backend,
            server,
            state,
        })
    }
}

impl SetServerWeight {
    /// `set server <b>/<s> weight <weight>`, its range checked now.
    pub fn new(
        backend: &str,
        server: &str,
        weight: WeightChange,
    ) -> Result<SetServerWeight, Error> {
        let (backend, server) = self::server(backend, server)?;
        let command = SetServerWeight {
            backend,
            server,
            weight,
        };
        super::validate(&command)?;
        Ok(command)
    }
}

impl ShutdownSessionsServer {
    /// `shutdown sessions server <b>/<s>`.
    pub fn new(backend: &str, server: &str) -> Result<ShutdownSessionsServer, Error> {
        let (backend, server) = self::server(backend, server)?;
        Ok(ShutdownSessionsServer { backend, server })
    }
}

/// `show servers state [<backend>]`: the server-state-file dump.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ShowServersState {
    pub backend: Option<Name>,
}

impl RuntimeCommand for ShowServersState {
    type Reply = ServersState;

    fn line(&self) -> String {
        match &self.backend {
            Some(b) => format!("show servers state {}", b.as_str()),
            None => "show servers state".to_string(),
        }
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn kind(&self) -> ReplyKind {
        ReplyKind::ServersState
    }

    fn parse_reply(&self, body: &[u8]) -> Result<ServersState, ParseError> {
        parse_servers_state(body)
    }
}

/// `show servers conn [<backend>]`: per-server connection counters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ShowServersConn {
    pub backend: Option<Name>,
}

impl RuntimeCommand for ShowServersConn {
    type Reply = ServersConn;

    fn line(&self) -> String {
        match &self.backend {
            Some(b) => format!("show servers conn {}", b.as_str()),
            None => "show servers conn".to_string(),
        }
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn kind(&self) -> ReplyKind {
        ReplyKind::ServersConn
    }

    fn parse_reply(&self, body: &[u8]) -> Result<ServersConn, ParseError> {
        parse_servers_conn(body)
    }
}

/// `show backend`: the backend names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ShowBackend;

impl RuntimeCommand for ShowBackend {
    type Reply = Vec<String>;

    fn line(&self) -> String {
        "show backend".to_string()
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn kind(&self) -> ReplyKind {
        ReplyKind::Backends
    }

    fn parse_reply(&self, body: &[u8]) -> Result<Vec<String>, ParseError> {
        parse_backends(body)
    }
}

/// `get weight <b>/<s>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GetWeight {
    pub backend: Name,
    pub server: Name,
}

impl RuntimeCommand for GetWeight {
    type Reply = Weight;

    fn line(&self) -> String {
        format!(
            "get weight {}/{}",
            self.backend.as_str(),
            self.server.as_str()
        )
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn kind(&self) -> ReplyKind {
        ReplyKind::Weight
    }

    fn parse_reply(&self, body: &[u8]) -> Result<Weight, ParseError> {
        parse_weight(body)
    }
}

/// `set server <b>/<s> state ready|drain|maint`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SetServerState {
    pub backend: Name,
    pub server: Name,
    pub state: AdminState,
}

impl RuntimeCommand for SetServerState {
    type Reply = ();

    fn line(&self) -> String {
        format!(
            "set server {}/{} state {}",
            self.backend.as_str(),
            self.server.as_str(),
            self.state.as_str()
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

/// `set server <b>/<s> weight <n>|<n>%`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SetServerWeight {
    pub backend: Name,
    pub server: Name,
    pub weight: WeightChange,
}

impl RuntimeCommand for SetServerWeight {
    type Reply = ();

    fn line(&self) -> String {
        let weight = match self.weight {
            WeightChange::Absolute(w) => w.to_string(),
            WeightChange::Percent(p) => format!("{p}%"),
        };
        format!(
            "set server {}/{} weight {weight}",
            self.backend.as_str(),
            self.server.as_str()
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

    fn check(&self) -> Result<(), Error> {
        match self.weight {
            WeightChange::Absolute(w) if w > 256 => Err(Error::InvalidArgument {
                what: "weight",
                value: w.to_string(),
                why: "must be between 0 and 256",
            }),
            _ => Ok(()),
        }
    }
}

/// `shutdown sessions server <b>/<s>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ShutdownSessionsServer {
    pub backend: Name,
    pub server: Name,
}

impl RuntimeCommand for ShutdownSessionsServer {
    type Reply = ();

    fn line(&self) -> String {
        format!(
            "shutdown sessions server {}/{}",
            self.backend.as_str(),
            self.server.as_str()
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

/// `set server <b>/<s> addr <ip> port <port>`: moves a server without a reload. HAProxy wants
/// an IP here (a name is `Invalid addr`); the config's address for the next reload is the
/// caller's to write.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SetServerAddr {
    pub backend: Name,
    pub server: Name,
    pub addr: IpAddr,
    pub port: u16,
}

/// Errors of `set server … addr` sent without a `[N]: ` prefix (or, for `Invalid addr`, at
/// warning level although nothing changed).
const ADDR_ERRORS: &[&str] = &[
    "Invalid addr",
    "set server <b>/<s> addr requires",
];

impl RuntimeCommand for SetServerAddr {
    type Reply = AddrChange;

    fn line(&self) -> String {
        format!(
            "set server {}/{} addr {} port {}",
            self.backend.as_str(),
            self.server.as_str(),
            self.addr,
            self.port
        )
    }

    fn idempotent(&self) -> bool {
        false
    }

    fn kind(&self) -> ReplyKind {
        ReplyKind::Text
    }

    fn parse_reply(&self, body: &[u8]) -> Result<AddrChange, ParseError> {
        parse_addr_change(body)
    }

    fn errors(&self) -> &'static [&'static str] {
        ADDR_ERRORS
    }

    fn check(&self) -> Result<(), Error> {
        // HAProxy takes any number and wraps it (`port 99999` became 34463 on 2.6, 3.0, 3.2);
        // port 0 would mean "the client's port".
        if self.port == 0 {
            return Err(Error::InvalidArgument {
                what: "port",
                value: "0".to_string(),
                why: "must be between 1 and 65535",
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::command::Wire;
    use crate::runtime::reply::Reply;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn command() -> SetServerAddr {
        SetServerAddr {
            backend: Name::new("backend", "be_app").unwrap_or_else(|e| panic!("{e}")),
            server: Name::new("server", "blue").unwrap_or_else(|e| panic!("{e}")),
            addr: ip("127.0.0.1"),
            port: 18002,
        }
    }

    /// The reply as a session would take it for `set server … addr`: refused, or parsed.
    fn outcome(body: &[u8]) -> Result<AddrChange, Error> {
        let c = command();
        let wire = Wire::of(&c).unwrap_or_else(|e| panic!("{e}"));
        Reply::new(&wire, bytes::Bytes::copy_from_slice(body)).parse_with(&c)
    }

    /// 2.6 printed `-1` seconds since the last change right after a restart that loaded a
    /// server-state file (seen by the chaos run, seed 1796652147876592233, step 612; and in a
    /// reload test): the recorded 2.6 reply with that one cell changed parses, as -1.
    #[test]
    fn a_negative_time_since_the_last_change_parses() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("grammar/corpus/2.6/show-servers-state-after-drain.oneshot");
        let recorded = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
        let body = recorded.replacen(" 100 100 0 6 3 4 6 ", " 100 100 -1 6 3 4 6 ", 1);
        assert_ne!(body, recorded, "the cell was found");
        let state = parse_servers_state(body.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        let blue = state
            .rows
            .iter()
            .find(|r| r.srv_name == "blue")
            .unwrap_or_else(|| panic!("no blue row"));
        assert_eq!(blue.time_since_last_change, -1);
    }

    /// Every recorded reply (grammar/capture_servers.py, 2.6, 3.0, 3.2, with and without
    /// severity-output) parses into what the case did, or is refused.
    #[test]
    fn recorded_replies_parse_or_are_refused() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("grammar/corpus-servers");
        let both = |a: &str, b: &str| Some((ip(a), ip(b)));
        let mut seen = 0;
        for version in ["2.6", "3.0", "3.2", "3.4"] {
            for mode in ["oneshot", "oneshot-sev"] {
                let read = |case: &str| {
                    let path = root.join(version).join(format!("{case}.{mode}"));
                    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                };
                let mut ok = |case: &str, ip, port| {
                    seen += 1;
                    let got = outcome(&read(case));
                    assert_eq!(
                        got.as_ref().ok(),
                        Some(&AddrChange { ip, port }),
                        "{version} {case}.{mode}: {got:?}"
                    );
                };
                ok("set-server-addr-port", None, Some((18001, 18002)));
                ok(
                    "set-server-addr-ip-and-port",
                    both("127.0.0.1", "127.0.0.2"),
                    Some((18001, 18002)),
                );
                ok("set-server-addr-same", None, None);
                ok("set-server-addr-no-port", both("127.0.0.1", "127.0.0.2"), None);
                ok(
                    "set-server-addr-ipv6",
                    both("127.0.0.1", "::1"),
                    Some((18001, 18002)),
                );
                ok("set-server-addr-named-server", None, Some((18003, 18004)));
                // HAProxy wraps a port above 65535 (99999 → 34463): the command never sends one.
                ok("set-server-addr-bad-port", None, Some((18001, 34463)));
                for case in [
                    "set-server-addr-hostname",
                    "set-server-addr-missing",
                    "set-server-addr-nosuch-server",
                    "set-server-addr-nosuch-backend",
                ] {
                    let got = outcome(&read(case));
                    assert!(
                        matches!(got, Err(Error::Refused { .. })),
                        "{version} {case}.{mode}: {got:?}"
                    );
                }
            }
        }
        assert_eq!(seen, 4 * 2 * 7);
    }

    #[test]
    fn anything_else_is_not_a_change() {
        for body in [
            &b""[..],
            b"\n",
            b"IP changed from '127.0.0.1' to 'x' by 'stats socket command'\n\n",
            b"port changed from '1' to '99999' by 'stats socket command'\n\n",
            b"port changed from '1' to '2'\n\n",
            b"port changed from '1' to '2' by 'stats socket command'\n\nmore\n",
            b"[6]: nothing changed\n\n",
            b"nothing changed, really\n\n",
            b"IP changed from '127.0.0.1' to '127.0.0.2', by 's'\n\n",
            b"\xff\xfe\n\n",
        ] {
            assert!(
                parse_addr_change(body).is_err(),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(
            parse_addr_change(b"[4]: nothing changed\n"),
            Ok(AddrChange {
                ip: None,
                port: None
            })
        );
    }

    #[test]
    fn the_line_and_its_checks() {
        let c = command();
        assert_eq!(c.line(), "set server be_app/blue addr 127.0.0.1 port 18002");
        let v6 = SetServerAddr {
            addr: ip("::1"),
            ..command()
        };
        assert_eq!(v6.line(), "set server be_app/blue addr ::1 port 18002");
        assert!(!c.idempotent());
        let zero = SetServerAddr { port: 0, ..command() };
        assert!(matches!(
            crate::runtime::command::validate(&zero),
            Err(Error::InvalidArgument { what: "port", .. })
        ));
    }
}
