//! Typed runtime API commands whose arguments are validated or escaped, so that no input (a
//! host, a map value, a server name) can inject a second command or break the line.
//!
//! HAProxy's CLI tokenizer (research §2): words split on unescaped spaces and tabs, an
//! unescaped `;` ends a command, a backslash makes the next byte literal, quotes mean nothing,
//! extra words are *silently ignored* (`set map F k a b` stores `a` and answers success).
//! So:
//! - names (backend, server, proxy) must follow HAProxy's own charset `[A-Za-z0-9_.:-]`
//!   (`invalid_char()` in HAProxy), which also rules out `/` inside `backend/server`;
//! - a map reference is a file name as written in the config or `#<id>`: no whitespace, no
//!   control character, no `;`, no `\`, no leading `@` (that is a version) and a `#` only as
//!   `#<digits>`;
//! - map keys and values are escaped (space, tab, `;`, `\` get a backslash); control
//!   characters are refused (a `\n` would start a second command); keys may hold no
//!   whitespace at all, since `show map` prints `<ref> <key> <value>` and a key with a space
//!   would make that line ambiguous (research §9), nor start with `#` (a `#0x…` entry
//!   reference for `set map`/`del map`, and a comment in a map file);
//! - no argument may start or end with `<<`: it would switch the CLI to payload mode and the
//!   connection would wait for payload lines for ever. Checked on real binaries: 2.6 does it
//!   for any line *ending* in `<<`, even `set map F k a<<` or an escaped `a\<<`; 3.0 and 3.2
//!   for a last word *starting* with `<<` (`<<x`, the custom end marker form);
//! - every line, `\n` included, stays below [`MAX_LINE`] bytes: 3.2 refuses a longer line
//!   entirely and 2.6 hangs on a command that does not fit `tune.bufsize`. The per-argument
//!   bounds below guarantee this for every typed command.

use std::fmt;

use super::parse::{for_command_line, ReplyKind};
use super::Error;

/// Bound on a line including its `\n` (HAProxy's default `tune.bufsize`, 16,384 bytes).
/// Lines must be strictly shorter.
pub const MAX_LINE: usize = 16_384;

/// Bound on a backend, server or proxy name.
pub const MAX_NAME: usize = 512;
/// Bound on a map reference (a file path; PATH_MAX on Linux).
pub const MAX_MAP: usize = 4_096;
/// Bound on an escaped map key.
pub const MAX_KEY: usize = 4_096;
/// Bound on an escaped map value. With the other bounds, the longest typed line
/// (`add map @<u32> <map> <key> <value>`) stays below [`MAX_LINE`].
pub const MAX_VALUE: usize = 7_000;

/// A backend, server or proxy name, in HAProxy's charset.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Name(String);

impl Name {
    /// Validates a name.
    pub fn new(what: &'static str, value: &str) -> Result<Name, Error> {
        let bad = |why| Error::InvalidArgument {
            what,
            value: value.to_string(),
            why,
        };
        if value.is_empty() {
            return Err(bad("is empty"));
        }
        if value.len() > MAX_NAME {
            return Err(bad("is longer than 512 bytes"));
        }
        if !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'_' | b'-'))
        {
            return Err(bad(
                "may only hold letters, digits, '.', ':', '_' and '-' (HAProxy's name charset)",
            ));
        }
        Ok(Name(value.to_string()))
    }

    /// The name as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A map reference: the map file name as written in the config, or `#<id>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MapRef(String);

impl MapRef {
    /// Validates a map reference.
    pub fn new(value: &str) -> Result<MapRef, Error> {
        let bad = |why| Error::InvalidArgument {
            what: "map",
            value: value.to_string(),
            why,
        };
        if value.is_empty() {
            return Err(bad("is empty"));
        }
        if value.len() > MAX_MAP {
            return Err(bad("is longer than 4096 bytes"));
        }
        if value.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(bad("holds whitespace or a control character"));
        }
        if value.contains(';') || value.contains('\\') {
            return Err(bad("holds ';' or '\\'"));
        }
        if value.starts_with('@') {
            return Err(bad("starts with '@', which HAProxy reads as a map version"));
        }
        if let Some(id) = value.strip_prefix('#') {
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("a '#' reference must be '#<id>' with a numeric id"));
            }
        }
        check_payload_marker("map", value)?;
        Ok(MapRef(value.to_string()))
    }

    /// The reference as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A map key, escaped for the CLI.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MapKey {
    raw: String,
    escaped: String,
}

impl MapKey {
    /// Validates and escapes a map key.
    pub fn new(value: &str) -> Result<MapKey, Error> {
        let bad = |why| Error::InvalidArgument {
            what: "map key",
            value: value.to_string(),
            why,
        };
        if value.is_empty() {
            return Err(bad("is empty"));
        }
        if value.chars().any(char::is_whitespace) {
            return Err(bad(
                "holds whitespace, which `show map` cannot print unambiguously",
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(bad("holds a control character"));
        }
        if value.starts_with('#') {
            return Err(bad(
                "starts with '#' (an entry reference for HAProxy, a comment in map files)",
            ));
        }
        check_payload_marker("map key", value)?;
        let escaped = escape(value);
        if escaped.len() > MAX_KEY {
            return Err(bad("is longer than 4096 bytes once escaped"));
        }
        Ok(MapKey {
            raw: value.to_string(),
            escaped,
        })
    }

    /// The key as stored in the map.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The key as sent on the line.
    pub fn escaped(&self) -> &str {
        &self.escaped
    }
}

/// A map value, escaped for the CLI (spaces and tabs allowed).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MapValue {
    raw: String,
    escaped: String,
}

impl MapValue {
    /// Validates and escapes a map value.
    pub fn new(value: &str) -> Result<MapValue, Error> {
        let bad = |why| Error::InvalidArgument {
            what: "map value",
            value: value.to_string(),
            why,
        };
        if value.is_empty() {
            return Err(bad("is empty (HAProxy would read a missing argument)"));
        }
        if value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(bad("holds a control character"));
        }
        check_payload_marker("map value", value)?;
        let escaped = escape(value);
        if escaped.len() > MAX_VALUE {
            return Err(bad("is longer than 7000 bytes once escaped"));
        }
        Ok(MapValue {
            raw: value.to_string(),
            escaped,
        })
    }

    /// The value as stored in the map.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The value as sent on the line.
    pub fn escaped(&self) -> &str {
        &self.escaped
    }
}

/// A line typed by an operator (`vezasock exec`), sent as is. `;` is allowed: the operator
/// typed it and may chain commands.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawLine(String);

impl RawLine {
    /// Refuses what would break framing or hang the connection.
    pub fn new(value: &str) -> Result<RawLine, Error> {
        let bad = |why| Error::InvalidArgument {
            what: "command line",
            value: value.to_string(),
            why,
        };
        if value.contains(['\n', '\r', '\0']) {
            return Err(bad("holds a newline, carriage return or NUL"));
        }
        if value.len() + 1 >= MAX_LINE {
            return Err(bad(
                "is 16,384 bytes or longer with its newline (HAProxy's tune.bufsize)",
            ));
        }
        if value.trim_matches([' ', '\t']).is_empty() {
            return Err(bad("is empty (HAProxy 2.6 answers its whole help text)"));
        }
        if value.trim_end_matches([' ', '\t']).ends_with("<<") {
            return Err(bad(
                "ends with '<<': the payload form is not supported here",
            ));
        }
        Ok(RawLine(value.to_string()))
    }

    /// The line as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// How many commands the line holds (unescaped `;` separate them, as HAProxy splits).
    pub fn command_count(&self) -> usize {
        self.commands().len()
    }

    /// The `;`-separated commands of the line, as HAProxy splits them (a backslash makes the
    /// next byte literal, so `\;` does not split).
    pub fn commands(&self) -> Vec<&str> {
        let bytes = self.0.as_bytes();
        let mut parts = Vec::new();
        let mut start = 0;
        let mut i = 0;
        while i < bytes.len() {
            match bytes.get(i) {
                Some(b'\\') => i += 2,
                Some(b';') => {
                    parts.push(self.0.get(start..i).unwrap_or_default());
                    i += 1;
                    start = i;
                }
                _ => i += 1,
            }
        }
        parts.push(self.0.get(start.min(bytes.len())..).unwrap_or_default());
        parts
    }
}

/// Backslash before space, tab, `;` and `\` (HAProxy unescapes `\x` to `x` inside a word).
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        if matches!(c, ' ' | '\t' | ';' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Refuses an argument that would switch the CLI to payload mode.
fn check_payload_marker(what: &'static str, value: &str) -> Result<(), Error> {
    if value.starts_with("<<") || value.ends_with("<<") {
        return Err(Error::InvalidArgument {
            what,
            value: value.to_string(),
            why: "starts or ends with '<<', which HAProxy reads as a payload marker",
        });
    }
    Ok(())
}

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
/// [`crate::runtime::parse::weight::Weight`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WeightChange {
    /// An absolute weight, 0 to 256.
    Absolute(u16),
    /// A percentage of the server's initial (configured) weight.
    Percent(u16),
}

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

/// A runtime API command.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Command {
    /// `show info`.
    ShowInfo,
    /// `show stat [<proxy> <type> <sid>]`.
    ShowStat { filter: Option<StatFilter> },
    /// `show servers state [<backend>]`.
    ShowServersState { backend: Option<Name> },
    /// `show backend`.
    ShowBackend,
    /// `show map`: the list of maps.
    ShowMaps,
    /// `show map [@<ver>] <map>`: the entries of one map.
    ShowMap { map: MapRef, version: Option<u32> },
    /// `get map <map> <key>`: looks a sample up.
    GetMap { map: MapRef, key: MapKey },
    /// `set map <map> <key> <value>`: changes every entry with that key.
    SetMap {
        map: MapRef,
        key: MapKey,
        value: MapValue,
    },
    /// `add map [@<ver>] <map> <key> <value>`.
    AddMap {
        map: MapRef,
        version: Option<u32>,
        key: MapKey,
        value: MapValue,
    },
    /// `del map <map> <key>`.
    DelMap { map: MapRef, key: MapKey },
    /// `clear map [@<ver>] <map>`.
    ClearMap { map: MapRef, version: Option<u32> },
    /// `prepare map <map>`: a new empty version.
    PrepareMap { map: MapRef },
    /// `commit map @<ver> <map>`.
    CommitMap { map: MapRef, version: u32 },
    /// `set server <b>/<s> state ready|drain|maint`.
    SetServerState {
        backend: Name,
        server: Name,
        state: AdminState,
    },
    /// `set server <b>/<s> weight <n>|<n>%`.
    SetServerWeight {
        backend: Name,
        server: Name,
        weight: WeightChange,
    },
    /// `get weight <b>/<s>`.
    GetWeight { backend: Name, server: Name },
    /// `show servers conn [<backend>]`.
    ShowServersConn { backend: Option<Name> },
    /// `shutdown sessions server <b>/<s>`.
    ShutdownSessionsServer { backend: Name, server: Name },
    /// `show cli level`.
    ShowCliLevel,
    /// `set severity-output number`: errors as `[3]: …`, info as `[6]: …`.
    SetSeverityOutput,
    /// Master `show proc`.
    ShowProc,
    /// Master `reload`.
    Reload,
    /// A line typed by an operator.
    Raw(RawLine),
}

impl Command {
    /// `show map <map>`.
    pub fn show_map(map: &str, version: Option<u32>) -> Result<Command, Error> {
        Ok(Command::ShowMap {
            map: MapRef::new(map)?,
            version,
        })
    }

    /// `get map <map> <key>`.
    pub fn get_map(map: &str, key: &str) -> Result<Command, Error> {
        Ok(Command::GetMap {
            map: MapRef::new(map)?,
            key: MapKey::new(key)?,
        })
    }

    /// `set map <map> <key> <value>`.
    pub fn set_map(map: &str, key: &str, value: &str) -> Result<Command, Error> {
        Ok(Command::SetMap {
            map: MapRef::new(map)?,
            key: MapKey::new(key)?,
            value: MapValue::new(value)?,
        })
    }

    /// `add map [@<ver>] <map> <key> <value>`.
    pub fn add_map(
        map: &str,
        version: Option<u32>,
        key: &str,
        value: &str,
    ) -> Result<Command, Error> {
        Ok(Command::AddMap {
            map: MapRef::new(map)?,
            version,
            key: MapKey::new(key)?,
            value: MapValue::new(value)?,
        })
    }

    /// `del map <map> <key>`.
    pub fn del_map(map: &str, key: &str) -> Result<Command, Error> {
        Ok(Command::DelMap {
            map: MapRef::new(map)?,
            key: MapKey::new(key)?,
        })
    }

    /// `clear map [@<ver>] <map>`.
    pub fn clear_map(map: &str, version: Option<u32>) -> Result<Command, Error> {
        Ok(Command::ClearMap {
            map: MapRef::new(map)?,
            version,
        })
    }

    /// `prepare map <map>`.
    pub fn prepare_map(map: &str) -> Result<Command, Error> {
        Ok(Command::PrepareMap {
            map: MapRef::new(map)?,
        })
    }

    /// `commit map @<ver> <map>`.
    pub fn commit_map(map: &str, version: u32) -> Result<Command, Error> {
        Ok(Command::CommitMap {
            map: MapRef::new(map)?,
            version,
        })
    }

    /// `set server <b>/<s> state <state>`.
    pub fn set_server_state(
        backend: &str,
        server: &str,
        state: AdminState,
    ) -> Result<Command, Error> {
        Ok(Command::SetServerState {
            backend: Name::new("backend", backend)?,
            server: Name::new("server", server)?,
            state,
        })
    }

    /// `set server <b>/<s> weight <weight>`.
    pub fn set_server_weight(
        backend: &str,
        server: &str,
        weight: WeightChange,
    ) -> Result<Command, Error> {
        let command = Command::SetServerWeight {
            backend: Name::new("backend", backend)?,
            server: Name::new("server", server)?,
            weight,
        };
        command.validate()?;
        Ok(command)
    }

    /// `get weight <b>/<s>`.
    pub fn get_weight(backend: &str, server: &str) -> Result<Command, Error> {
        Ok(Command::GetWeight {
            backend: Name::new("backend", backend)?,
            server: Name::new("server", server)?,
        })
    }

    /// `show servers state [<backend>]`.
    pub fn show_servers_state(backend: Option<&str>) -> Result<Command, Error> {
        Ok(Command::ShowServersState {
            backend: backend.map(|b| Name::new("backend", b)).transpose()?,
        })
    }

    /// `show servers conn [<backend>]`.
    pub fn show_servers_conn(backend: Option<&str>) -> Result<Command, Error> {
        Ok(Command::ShowServersConn {
            backend: backend.map(|b| Name::new("backend", b)).transpose()?,
        })
    }

    /// `shutdown sessions server <b>/<s>`.
    pub fn shutdown_sessions_server(backend: &str, server: &str) -> Result<Command, Error> {
        Ok(Command::ShutdownSessionsServer {
            backend: Name::new("backend", backend)?,
            server: Name::new("server", server)?,
        })
    }

    /// An operator-typed line.
    pub fn raw(line: &str) -> Result<Command, Error> {
        Ok(Command::Raw(RawLine::new(line)?))
    }

    /// The exact text sent, without the `\n` (and without a master routing prefix).
    pub fn line(&self) -> String {
        let version = |v: &Option<u32>| v.map(|v| format!("@{v} ")).unwrap_or_default();
        match self {
            Command::ShowInfo => "show info".to_string(),
            Command::ShowStat { filter: None } => "show stat".to_string(),
            Command::ShowStat {
                filter: Some(filter),
            } => format!(
                "show stat {} {} {}",
                filter.proxy.as_str(),
                filter.types,
                filter.server_id
            ),
            Command::ShowServersState { backend } => match backend {
                Some(b) => format!("show servers state {}", b.as_str()),
                None => "show servers state".to_string(),
            },
            Command::ShowBackend => "show backend".to_string(),
            Command::ShowMaps => "show map".to_string(),
            Command::ShowMap { map, version: v } => {
                format!("show map {}{}", version(v), map.as_str())
            }
            Command::GetMap { map, key } => {
                format!("get map {} {}", map.as_str(), key.escaped())
            }
            Command::SetMap { map, key, value } => format!(
                "set map {} {} {}",
                map.as_str(),
                key.escaped(),
                value.escaped()
            ),
            Command::AddMap {
                map,
                version: v,
                key,
                value,
            } => format!(
                "add map {}{} {} {}",
                version(v),
                map.as_str(),
                key.escaped(),
                value.escaped()
            ),
            Command::DelMap { map, key } => {
                format!("del map {} {}", map.as_str(), key.escaped())
            }
            Command::ClearMap { map, version: v } => {
                format!("clear map {}{}", version(v), map.as_str())
            }
            Command::PrepareMap { map } => format!("prepare map {}", map.as_str()),
            Command::CommitMap { map, version } => {
                format!("commit map @{version} {}", map.as_str())
            }
            Command::SetServerState {
                backend,
                server,
                state,
            } => format!(
                "set server {}/{} state {}",
                backend.as_str(),
                server.as_str(),
                state.as_str()
            ),
            Command::SetServerWeight {
                backend,
                server,
                weight,
            } => {
                let weight = match weight {
                    WeightChange::Absolute(w) => w.to_string(),
                    WeightChange::Percent(p) => format!("{p}%"),
                };
                format!(
                    "set server {}/{} weight {weight}",
                    backend.as_str(),
                    server.as_str()
                )
            }
            Command::GetWeight { backend, server } => {
                format!("get weight {}/{}", backend.as_str(), server.as_str())
            }
            Command::ShowServersConn { backend } => match backend {
                Some(b) => format!("show servers conn {}", b.as_str()),
                None => "show servers conn".to_string(),
            },
            Command::ShutdownSessionsServer { backend, server } => format!(
                "shutdown sessions server {}/{}",
                backend.as_str(),
                server.as_str()
            ),
            Command::ShowCliLevel => "show cli level".to_string(),
            Command::SetSeverityOutput => "set severity-output number".to_string(),
            Command::ShowProc => "show proc".to_string(),
            Command::Reload => "reload".to_string(),
            Command::Raw(raw) => raw.as_str().to_string(),
        }
    }

    /// Checks what the types alone do not: numeric ranges and the line length. The session
    /// calls it before sending anything.
    pub fn validate(&self) -> Result<(), Error> {
        match self {
            Command::SetServerWeight {
                weight: WeightChange::Absolute(w),
                ..
            } if *w > 256 => {
                return Err(Error::InvalidArgument {
                    what: "weight",
                    value: w.to_string(),
                    why: "must be between 0 and 256",
                })
            }
            Command::ShowStat {
                filter: Some(filter),
            } => {
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
            }
            _ => {}
        }
        let line = self.line();
        if line.len() + 1 >= MAX_LINE {
            return Err(Error::InvalidArgument {
                what: "command line",
                value: line.chars().take(80).collect::<String>() + "…",
                why: "is 16,384 bytes or longer with its newline (HAProxy's tune.bufsize)",
            });
        }
        Ok(())
    }

    /// Which reply the command produces.
    pub fn reply_kind(&self) -> ReplyKind {
        match self {
            Command::ShowInfo => ReplyKind::Info,
            Command::ShowStat { .. } => ReplyKind::Stat,
            Command::ShowServersState { .. } => ReplyKind::ServersState,
            Command::ShowBackend => ReplyKind::Backends,
            Command::ShowMaps => ReplyKind::MapList,
            Command::ShowMap { .. } => ReplyKind::MapEntries,
            Command::GetMap { .. } => ReplyKind::GetMap,
            Command::PrepareMap { .. } => ReplyKind::PrepareMap,
            Command::GetWeight { .. } => ReplyKind::Weight,
            Command::ShowServersConn { .. } => ReplyKind::ServersConn,
            Command::ShowCliLevel => ReplyKind::CliLevel,
            Command::ShowProc => ReplyKind::Proc,
            Command::Reload => ReplyKind::Reload,
            Command::SetMap { .. }
            | Command::AddMap { .. }
            | Command::DelMap { .. }
            | Command::ClearMap { .. }
            | Command::CommitMap { .. }
            | Command::SetServerState { .. }
            | Command::SetServerWeight { .. }
            | Command::ShutdownSessionsServer { .. }
            | Command::SetSeverityOutput => ReplyKind::Empty,
            Command::Raw(raw) => for_command_line(raw.as_str()),
        }
    }

    /// Reads only (sending it twice changes nothing), so it may be retried after a transport
    /// failure. `set severity-output` only changes the connection's own setting.
    pub fn is_idempotent(&self) -> bool {
        matches!(
            self,
            Command::ShowInfo
                | Command::ShowStat { .. }
                | Command::ShowServersState { .. }
                | Command::ShowBackend
                | Command::ShowMaps
                | Command::ShowMap { .. }
                | Command::GetMap { .. }
                | Command::GetWeight { .. }
                | Command::ShowServersConn { .. }
                | Command::ShowCliLevel
                | Command::SetSeverityOutput
                | Command::ShowProc
        )
    }

    /// Success is an empty answer (`\n`); any text is HAProxy's error message, even one
    /// without a severity prefix.
    pub fn expects_empty(&self) -> bool {
        !matches!(self, Command::Raw(_)) && self.reply_kind() == ReplyKind::Empty
    }

    /// A command of the master process itself: sent without a worker routing prefix.
    pub fn is_master_command(&self) -> bool {
        match self {
            Command::ShowProc | Command::Reload => true,
            Command::Raw(raw) => {
                let line = raw.as_str().trim_start_matches([' ', '\t']);
                line.starts_with('@')
                    || matches!(for_command_line(line), ReplyKind::Proc | ReplyKind::Reload)
                    || line.starts_with("show startup-logs")
            }
            _ => false,
        }
    }

    /// How many replies (prompts, in prompt mode before 3.2) the line produces.
    pub fn command_count(&self) -> usize {
        match self {
            Command::Raw(raw) => raw.command_count(),
            _ => 1,
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line())
    }
}
