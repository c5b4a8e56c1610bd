//! `show servers state`: format version 1, the same on 2.6, 3.0 and 3.2.
//!
//! Grammar (research §9): line 1 is the format version `1`; line 2 is the header
//! `# be_id be_name …` naming the 25 columns; then one space-separated row per server; the
//! block ends with an empty line. An empty string prints as `-`. `srv_admin_state` is a
//! *decimal* bitmask. The same text is what `server-state-file` loads, hence
//! [`ServerStateRow::to_line`] and [`ServersState::to_text`].

use serde::Serialize;

use super::{lines, non_empty, Line, ParseError};

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
/// number and its flag names: `"admin": 8, "admin_flags": ["FDRAIN"]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminFlags(pub u32);

/// The old name of [`AdminFlags`], kept for `src/edge` until it migrates. Not to be confused
/// with [`crate::runtime::command::ServerAdmin`], the state `set server … state` sets.
pub use self::AdminFlags as AdminState;

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
    pub time_since_last_change: u64,
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
            time_since_last_change: u64,
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
