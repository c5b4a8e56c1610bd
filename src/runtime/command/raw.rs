//! The free line an operator types (`vezasock exec`): which reply it expects, and the one
//! entry point that parses any reply into a [`Parsed`] value that prints as JSON.
//!
//! The rest of the crate speaks typed commands ([`super::RuntimeCommand`]); only `exec` and
//! [`crate::runtime::reply::Reply::parse`] (which `exec` calls) use this untyped form.
//! [`for_command_line`] tells which family's parser fits a line, and [`parse`] runs it.

use serde::Serialize;

use super::args::split_commands;
use super::cli::{parse_cli_level, CliLevel};
use super::info::{parse_info, Info};
use super::maps::{
    parse_get_map, parse_map_entries, parse_map_list, parse_prepare_map, MapEntry, MapInfo,
    MapLookup,
};
use super::master::{parse_proc, parse_reload, ProcList, ReloadStatus};
use super::servers::{
    parse_backends, parse_servers_conn, parse_servers_state, parse_weight, ServersConn,
    ServersState, Weight,
};
use super::stat::{parse_stat, StatTable};
use super::{raw_replies, ReplyKind, Wire, MAX_LINE};
use crate::runtime::parse::ParseError;
use crate::runtime::Error;

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
        split_commands(&self.0)
    }

    /// Which reply the line produces ([`for_command_line`]).
    pub fn reply_kind(&self) -> ReplyKind {
        for_command_line(&self.0)
    }

    /// A command of the master process itself (`@` routing, `show proc`, `reload`,
    /// `show startup-logs`): sent without a worker routing prefix.
    pub fn is_master_command(&self) -> bool {
        self.wire().master
    }

    /// What the connection needs to send it. An operator's line is never assumed safe to
    /// resend, nor expected empty; its `;` parts are routed one by one.
    pub(crate) fn wire(&self) -> Wire {
        let line = self.0.clone();
        let kind = for_command_line(&line);
        let trimmed = line.trim_start_matches([' ', '\t']);
        let master = trimmed.starts_with('@')
            || matches!(
                for_command_line(trimmed),
                ReplyKind::Proc | ReplyKind::Reload
            )
            || trimmed.starts_with("show startup-logs");
        Wire {
            line,
            kind,
            idempotent: false,
            expects_empty: false,
            master,
            raw: true,
            reload: false,
            errors: match kind {
                ReplyKind::Typed(i) => raw_replies().nth(usize::from(i)).map_or(&[], |r| r.errors),
                _ => &[],
            },
        }
    }
}

/// What reply a raw command line expects. A master routing prefix (`@1 `, `@!1234 `,
/// `@@1 `, `@master `) is skipped first.
pub fn for_command_line(line: &str) -> ReplyKind {
    let mut words = line
        .split([' ', '\t', '\r', '\n'])
        .filter(|w| !w.is_empty());
    let mut first = words.next();
    if let Some(word) = first {
        if word.starts_with('@') {
            first = words.next();
            // A bare `@1` only switches the master's target: no output at all.
            if first.is_none() {
                return ReplyKind::Empty;
            }
        }
    }
    let Some(first) = first else {
        return ReplyKind::Text;
    };
    let rest: Vec<&str> = words.collect();
    let second = rest.first().copied();
    match (first, second) {
        ("show", Some("info")) if rest.len() == 1 => ReplyKind::Info,
        ("show", Some("stat")) => {
            if rest.iter().any(|w| matches!(*w, "typed" | "json" | "desc")) {
                ReplyKind::Text
            } else {
                ReplyKind::Stat
            }
        }
        ("show", Some("servers")) => match rest.get(1).copied() {
            Some("state") => ReplyKind::ServersState,
            Some("conn") => ReplyKind::ServersConn,
            _ => ReplyKind::Text,
        },
        ("show", Some("backend")) if rest.len() == 1 => ReplyKind::Backends,
        ("show", Some("map")) if rest.len() == 1 => ReplyKind::MapList,
        ("show", Some("map")) => ReplyKind::MapEntries,
        ("show", Some("proc")) if rest.len() == 1 => ReplyKind::Proc,
        ("show", Some("cli")) if rest.get(1).copied() == Some("level") => ReplyKind::CliLevel,
        ("get", Some("map")) => ReplyKind::GetMap,
        ("get", Some("weight")) => ReplyKind::Weight,
        ("prepare", Some("map")) => ReplyKind::PrepareMap,
        ("reload", _) | ("hard-reload", _) => ReplyKind::Reload,
        ("set", _) | ("enable", _) | ("disable", _) => ReplyKind::Empty,
        ("add" | "del" | "clear" | "commit", Some("map" | "acl")) => ReplyKind::Empty,
        _ => {
            let mut all = vec![first];
            all.extend(&rest);
            raw_replies()
                .position(|r| r.matches(&all))
                .and_then(|i| u16::try_from(i).ok())
                .map_or(ReplyKind::Text, ReplyKind::Typed)
        }
    }
}

/// A parsed reply, one variant per typed value; prints as `{"kind": …, "value": …}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Parsed {
    /// `show info`.
    Info(Info),
    /// `show stat`.
    Stat(StatTable),
    /// `show servers state`.
    ServersState(ServersState),
    /// `show backend`.
    Backends(Vec<String>),
    /// `show map`.
    MapList(Vec<MapInfo>),
    /// `show map <file>`.
    MapEntries(Vec<MapEntry>),
    /// `get map`.
    GetMap(MapLookup),
    /// `prepare map`: the new version.
    PrepareMap(u32),
    /// `get weight`.
    Weight(Weight),
    /// `show servers conn`.
    ServersConn(ServersConn),
    /// Master `show proc`.
    Proc(ProcList),
    /// Master `reload` on HAProxy ≥ 2.7.
    Reload(ReloadStatus),
    /// Master `reload` on 2.6: no report; confirm through `show proc`.
    ReloadUnconfirmed,
    /// `show cli level`.
    CliLevel(CliLevel),
    /// Any other reply, final newline(s) removed.
    Text(String),
    /// An empty success.
    Empty,
    /// The reply of a line a command family reads ([`ReplyKind::Typed`]): prints as
    /// `{"kind": <its kind>, "value": …}` like the others (serde wants it last).
    #[serde(untagged)]
    Typed(TypedValue),
}

/// The JSON form of a [`ReplyKind::Typed`] reply.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TypedValue {
    pub kind: &'static str,
    pub value: serde_json::Value,
}

/// Parses a reply body as the given kind.
pub fn parse(kind: ReplyKind, body: &[u8]) -> Result<Parsed, ParseError> {
    match kind {
        ReplyKind::Empty => {
            if body.iter().all(|&b| b == b'\n') {
                Ok(Parsed::Empty)
            } else {
                Err(ParseError {
                    what: "empty reply",
                    offset: 0,
                    message: "expected an empty answer".into(),
                })
            }
        }
        ReplyKind::Info => parse_info(body).map(Parsed::Info),
        ReplyKind::Stat => parse_stat(body).map(Parsed::Stat),
        ReplyKind::ServersState => parse_servers_state(body).map(Parsed::ServersState),
        ReplyKind::Backends => parse_backends(body).map(Parsed::Backends),
        ReplyKind::MapList => parse_map_list(body).map(Parsed::MapList),
        ReplyKind::MapEntries => parse_map_entries(body).map(Parsed::MapEntries),
        ReplyKind::GetMap => parse_get_map(body).map(Parsed::GetMap),
        ReplyKind::PrepareMap => parse_prepare_map(body).map(Parsed::PrepareMap),
        ReplyKind::Weight => parse_weight(body).map(Parsed::Weight),
        ReplyKind::ServersConn => parse_servers_conn(body).map(Parsed::ServersConn),
        ReplyKind::Proc => parse_proc(body).map(Parsed::Proc),
        ReplyKind::Reload => Ok(match parse_reload(body)? {
            Some(reload) => Parsed::Reload(reload),
            None => Parsed::ReloadUnconfirmed,
        }),
        ReplyKind::CliLevel => parse_cli_level(body).map(Parsed::CliLevel),
        ReplyKind::Text => Ok(Parsed::Text(text_of(body))),
        ReplyKind::Typed(i) => match raw_replies().nth(usize::from(i)) {
            Some(raw) => Ok(Parsed::Typed(TypedValue {
                kind: raw.kind,
                value: (raw.parse)(body)?,
            })),
            None => Ok(Parsed::Text(text_of(body))),
        },
    }
}

/// The body as text with the final framing newline(s) removed.
fn text_of(body: &[u8]) -> String {
    let end = body.iter().rposition(|&b| b != b'\n').map_or(0, |i| i + 1);
    String::from_utf8_lossy(body.get(..end).unwrap_or_default()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_of_lines() {
        assert_eq!(for_command_line("show info"), ReplyKind::Info);
        assert_eq!(for_command_line("show info typed"), ReplyKind::Text);
        assert_eq!(for_command_line("show stat be 4 -1"), ReplyKind::Stat);
        assert_eq!(for_command_line("show stat typed"), ReplyKind::Text);
        assert_eq!(
            for_command_line("@1 show servers state"),
            ReplyKind::ServersState
        );
        assert_eq!(for_command_line("@!1234 get weight b/s"), ReplyKind::Weight);
        assert_eq!(for_command_line("show proc"), ReplyKind::Proc);
        assert_eq!(for_command_line("reload"), ReplyKind::Reload);
        assert_eq!(for_command_line("set map f k v"), ReplyKind::Empty);
        assert_eq!(for_command_line("commit map @2 f"), ReplyKind::Empty);
        assert_eq!(for_command_line("prepare map f"), ReplyKind::PrepareMap);
        assert_eq!(for_command_line("show map"), ReplyKind::MapList);
        assert_eq!(for_command_line("show map #4"), ReplyKind::MapEntries);
        assert_eq!(for_command_line("frobnicate"), ReplyKind::Text);
    }

    /// An operator's line is never assumed safe to resend, nor expected empty, whatever it
    /// says; `@` routing and the master's own commands go to the master.
    #[test]
    fn raw_lines_are_never_resent_nor_expected_empty() {
        for text in [
            "show servers state",
            "set map m k v",
            "show info",
            "get weight b/s",
        ] {
            let wire = RawLine::new(text).unwrap().wire();
            assert!(!wire.idempotent, "{text}");
            assert!(!wire.expects_empty, "{text}");
            assert!(wire.raw, "{text}");
        }
        assert!(RawLine::new("@!1234 show info").unwrap().wire().master);
        assert!(RawLine::new("show proc").unwrap().wire().master);
        assert!(!RawLine::new("show info").unwrap().wire().master);
    }
}
