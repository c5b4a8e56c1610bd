//! Runtime API commands: one file per family, each command a type that knows its line, its
//! reply type, its parser and whether it may be resent ([`RuntimeCommand`]).
//!
//! | family | commands |
//! |---|---|
//! | [`info`] | `show info` |
//! | [`stat`] | `show stat` |
//! | [`pools`] | `add server`, `enable health`, `wait <ms> srv-removable`, `del server` |
//! | [`servers`] | `show servers state`, `show servers conn`, `show backend`, `get weight`, `set server … state`, `set server … weight`, `set server … addr … port`, `shutdown sessions server` |
//! | [`maps`] | `show map`, `get map`, `set map`, `add map`, `del map`, `clear map`, `prepare map`, `commit map` |
//! | [`cli`] | `show cli level`, `set severity-output number` |
//! | [`master`] | master `show proc`, `reload` |
//! | [`ssl`] | `show ssl cert`; the writes `new`/`set`/`commit`/`abort`/`del ssl cert`, `add`/`del ssl crt-list` ([`ssl::SslWrite`], own connection: `set` carries a payload) |
//!
//! **Adding a command** is a struct and its `impl RuntimeCommand` in its family's file (a new
//! family: a new file, plus its line in the `pub mod` list below). `Session::run` sends it and
//! returns its typed reply; `Batch` pipelines several. The older untyped [`Command`] enum (with
//! [`crate::runtime::parse::Parsed`] replies) stays for today's callers: each of its variants
//! hands its knowledge over to the typed command ([`Command::typed`], the one list of them).
//!
//! Arguments are validated or escaped, so that no input (a host, a map value, a server name)
//! can inject a second command or break the line.
//!
//! HAProxy's CLI tokenizer (`grammar/README.md` §1.1): words split on unescaped spaces and tabs, an
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
//!   would make that line ambiguous (`grammar/README.md` §2), nor start with `#` (a `#0x…` entry
//!   reference for `set map`/`del map`, and a comment in a map file);
//! - no argument may start or end with `<<`: it would switch the CLI to payload mode and the
//!   connection would wait for payload lines for ever. Checked on real binaries: 2.6 does it
//!   for any line *ending* in `<<`, even `set map F k a<<` or an escaped `a\<<`; 3.0 and 3.2
//!   for a last word *starting* with `<<` (`<<x`, the custom end marker form);
//! - every line, `\n` included, stays below [`MAX_LINE`] bytes: 3.2 refuses a longer line
//!   entirely and 2.6 hangs on a command that does not fit `tune.bufsize`. The per-argument
//!   bounds below guarantee this for every typed command.

use std::fmt;

use super::parse::{ParseError, ReplyKind};
use super::Error;

mod args;
pub(crate) use args::{check_payload_marker, split_commands};

/// The command families: one line each. A family's `RAW` lists the operator-typed lines
/// (`vezasock exec`) whose replies its parsers read, beyond the kinds of
/// [`crate::runtime::parse::ReplyKind`].
macro_rules! families {
    ($($family:ident),* $(,)?) => {
        $(pub mod $family;)*
        /// Every family's [`RawReply`] entries, in family order.
        pub(crate) fn raw_replies() -> impl Iterator<Item = &'static RawReply> {
            [$($family::RAW),*].into_iter().flatten()
        }
    };
}

families!(cli, info, maps, master, pools, servers, ssl, stat);

/// How `vezasock exec` reads the reply of a line it does not otherwise know: the words the
/// line starts with, the `kind` its `--json` prints, its parser, and its own error texts.
#[derive(Debug)]
pub struct RawReply {
    /// The line's first words (`["show", "ssl", "cert"]`).
    pub words: &'static [&'static str],
    /// How many more words it may have (`show ssl cert` 0, `show ssl cert <name>` 1).
    pub extra_words: usize,
    /// The `kind` in `--json` output.
    pub kind: &'static str,
    /// The parser, to a JSON value.
    pub parse: fn(&[u8]) -> Result<serde_json::Value, ParseError>,
    /// Error texts sent without a severity prefix.
    pub errors: &'static [&'static str],
}

impl RawReply {
    /// True when `words` (a line split on whitespace, routing prefix removed) is this reply's
    /// command.
    pub(crate) fn matches(&self, words: &[&str]) -> bool {
        words.len() == self.words.len() + self.extra_words && words.starts_with(self.words)
    }
}

/// A typed reply as a JSON value, for [`RawReply::parse`].
pub(crate) fn to_json<T: serde::Serialize>(
    what: &'static str,
    value: Result<T, ParseError>,
) -> Result<serde_json::Value, ParseError> {
    serde_json::to_value(value?).map_err(|e| ParseError::new(what, 0, e.to_string()))
}

pub use args::{
    escape, MapKey, MapRef, MapValue, Name, RawLine, MAX_KEY, MAX_LINE, MAX_MAP, MAX_NAME,
    MAX_VALUE,
};
pub use servers::{AdminState, SetServerAddr, WeightChange};
pub use stat::StatFilter;

/// A runtime API command that knows everything about itself: the line it sends, what its
/// reply parses into, and whether sending it twice is harmless.
pub trait RuntimeCommand {
    /// What a reply HAProxy did not refuse parses into (`()` for an empty success).
    type Reply;

    /// The exact text sent, without the `\n` and without a master routing prefix.
    fn line(&self) -> String;

    /// Reads only (sending it twice changes nothing), so it may be sent again after a
    /// transport failure. A write is never resent: it may have been applied.
    fn idempotent(&self) -> bool;

    /// Which kind of reply it is for the untyped [`crate::runtime::parse::Parsed`] world
    /// (`exec --json`, [`crate::runtime::reply::Reply::parse`]). [`ReplyKind::Empty`] also
    /// means that any text in the reply is HAProxy's error message.
    fn kind(&self) -> ReplyKind;

    /// Parses the body of a reply that HAProxy did not refuse.
    fn parse_reply(&self, body: &[u8]) -> Result<Self::Reply, ParseError>;

    /// A command of the master process itself: sent without a worker routing prefix, and
    /// only to a master socket.
    fn master(&self) -> bool {
        false
    }

    /// Error texts of this command that HAProxy sends without a `[N]: ` prefix when
    /// severity-output is off, beyond the shared [`crate::runtime::parse::outcome::KNOWN_ERRORS`].
    /// A reply starting with one is [`crate::runtime::Error::Refused`].
    fn errors(&self) -> &'static [&'static str] {
        &[]
    }

    /// What the types alone cannot check (numeric ranges). The line length is checked for
    /// every command by [`validate`].
    fn check(&self) -> Result<(), Error> {
        Ok(())
    }
}

/// The checks run before anything is sent: [`RuntimeCommand::check`], then the line length
/// (3.2 refuses a longer line entirely and 2.6 hangs on it).
pub fn validate<C: RuntimeCommand + ?Sized>(command: &C) -> Result<(), Error> {
    command.check()?;
    check_line(&command.line())
}

fn check_line(line: &str) -> Result<(), Error> {
    if line.len() + 1 >= MAX_LINE {
        return Err(Error::InvalidArgument {
            what: "command line",
            value: line.chars().take(80).collect::<String>() + "…",
            why: "is 16,384 bytes or longer with its newline (HAProxy's tune.bufsize)",
        });
    }
    Ok(())
}

/// The reply of a command whose success is an empty answer (`\n`).
pub(crate) fn empty_reply(body: &[u8]) -> Result<(), ParseError> {
    if body.iter().all(|&b| b == b'\n') {
        Ok(())
    } else {
        Err(ParseError::new(
            "empty reply",
            0,
            "expected an empty answer",
        ))
    }
}

/// What the connection needs to know of one command, worked out once before it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Wire {
    /// The line, without `\n` and without a master routing prefix.
    pub line: String,
    pub kind: ReplyKind,
    pub idempotent: bool,
    /// Success is an empty answer: any text is an error.
    pub expects_empty: bool,
    /// Goes to the master process itself.
    pub master: bool,
    /// An operator-typed line: its `;` parts are routed one by one, and it may hold several
    /// commands (one reply each, before 3.2).
    pub raw: bool,
    /// The master `reload`, which closes the connection.
    pub reload: bool,
    /// Its own error texts ([`RuntimeCommand::errors`]).
    pub errors: &'static [&'static str],
}

impl Wire {
    /// The wire form of a typed command, checked.
    pub(crate) fn of<C: RuntimeCommand + ?Sized>(command: &C) -> Result<Wire, Error> {
        command.check()?;
        let line = command.line();
        check_line(&line)?;
        let kind = command.kind();
        Ok(Wire {
            line,
            kind,
            idempotent: command.idempotent(),
            expects_empty: kind == ReplyKind::Empty,
            master: command.master(),
            raw: false,
            reload: kind == ReplyKind::Reload,
            errors: command.errors(),
        })
    }

    /// How many replies (prompts, in prompt mode before 3.2) the line produces.
    pub(crate) fn command_count(&self) -> usize {
        if self.raw {
            args::split_commands(&self.line).len()
        } else {
            1
        }
    }
}

/// The object-safe part of [`RuntimeCommand`], for the untyped [`Command`] enum.
pub(crate) trait DynCommand {
    fn line(&self) -> String;
    fn idempotent(&self) -> bool;
    fn kind(&self) -> ReplyKind;
    fn master(&self) -> bool;
    fn validate(&self) -> Result<(), Error>;
    fn wire(&self) -> Result<Wire, Error>;
}

impl<C: RuntimeCommand> DynCommand for C {
    fn line(&self) -> String {
        RuntimeCommand::line(self)
    }
    fn idempotent(&self) -> bool {
        RuntimeCommand::idempotent(self)
    }
    fn kind(&self) -> ReplyKind {
        RuntimeCommand::kind(self)
    }
    fn master(&self) -> bool {
        RuntimeCommand::master(self)
    }
    fn validate(&self) -> Result<(), Error> {
        validate(self)
    }
    fn wire(&self) -> Result<Wire, Error> {
        Wire::of(self)
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

    /// Runs `f` on the typed command behind this variant: the one list of the untyped
    /// variants. `None` for [`Command::Raw`], which has no typed command.
    pub(crate) fn typed<R>(&self, f: impl FnOnce(&dyn DynCommand) -> R) -> Option<R> {
        use self::cli::{SetSeverityOutput, ShowCliLevel};
        use self::info::ShowInfo;
        use self::maps::{
            AddMap, ClearMap, CommitMap, DelMap, GetMap, PrepareMap, SetMap, ShowMap, ShowMaps,
        };
        use self::master::{Reload, ShowProc};
        use self::servers::{
            GetWeight, SetServerState, SetServerWeight, ShowBackend, ShowServersConn,
            ShowServersState, ShutdownSessionsServer,
        };
        use self::stat::ShowStat;
        Some(match self {
            Command::ShowInfo => f(&ShowInfo),
            Command::ShowStat { filter } => f(&ShowStat {
                filter: filter.clone(),
            }),
            Command::ShowServersState { backend } => f(&ShowServersState {
                backend: backend.clone(),
            }),
            Command::ShowBackend => f(&ShowBackend),
            Command::ShowMaps => f(&ShowMaps),
            Command::ShowMap { map, version } => f(&ShowMap {
                map: map.clone(),
                version: *version,
            }),
            Command::GetMap { map, key } => f(&GetMap {
                map: map.clone(),
                key: key.clone(),
            }),
            Command::SetMap { map, key, value } => f(&SetMap {
                map: map.clone(),
                key: key.clone(),
                value: value.clone(),
            }),
            Command::AddMap {
                map,
                version,
                key,
                value,
            } => f(&AddMap {
                map: map.clone(),
                version: *version,
                key: key.clone(),
                value: value.clone(),
            }),
            Command::DelMap { map, key } => f(&DelMap {
                map: map.clone(),
                key: key.clone(),
            }),
            Command::ClearMap { map, version } => f(&ClearMap {
                map: map.clone(),
                version: *version,
            }),
            Command::PrepareMap { map } => f(&PrepareMap { map: map.clone() }),
            Command::CommitMap { map, version } => f(&CommitMap {
                map: map.clone(),
                version: *version,
            }),
            Command::SetServerState {
                backend,
                server,
                state,
            } => f(&SetServerState {
                backend: backend.clone(),
                server: server.clone(),
                state: *state,
            }),
            Command::SetServerWeight {
                backend,
                server,
                weight,
            } => f(&SetServerWeight {
                backend: backend.clone(),
                server: server.clone(),
                weight: *weight,
            }),
            Command::GetWeight { backend, server } => f(&GetWeight {
                backend: backend.clone(),
                server: server.clone(),
            }),
            Command::ShowServersConn { backend } => f(&ShowServersConn {
                backend: backend.clone(),
            }),
            Command::ShutdownSessionsServer { backend, server } => f(&ShutdownSessionsServer {
                backend: backend.clone(),
                server: server.clone(),
            }),
            Command::ShowCliLevel => f(&ShowCliLevel),
            Command::SetSeverityOutput => f(&SetSeverityOutput),
            Command::ShowProc => f(&ShowProc),
            Command::Reload => f(&Reload),
            Command::Raw(_) => return None,
        })
    }

    /// The exact text sent, without the `\n` (and without a master routing prefix).
    pub fn line(&self) -> String {
        match self {
            Command::Raw(raw) => raw.as_str().to_string(),
            typed => typed.typed(|c| c.line()).unwrap_or_default(),
        }
    }

    /// Checks what the types alone do not: numeric ranges and the line length. The session
    /// calls it before sending anything.
    pub fn validate(&self) -> Result<(), Error> {
        self.typed(|c| c.validate()).unwrap_or(Ok(()))
    }

    /// What the connection needs to send it (validated).
    pub(crate) fn wire(&self) -> Result<Wire, Error> {
        match self {
            Command::Raw(raw) => {
                let line = raw.as_str().to_string();
                let kind = super::parse::for_command_line(&line);
                let trimmed = line.trim_start_matches([' ', '\t']);
                let master = trimmed.starts_with('@')
                    || matches!(
                        super::parse::for_command_line(trimmed),
                        ReplyKind::Proc | ReplyKind::Reload
                    )
                    || trimmed.starts_with("show startup-logs");
                Ok(Wire {
                    line,
                    kind,
                    // An operator's line is never assumed safe to resend, nor expected empty.
                    idempotent: false,
                    expects_empty: false,
                    master,
                    raw: true,
                    reload: false,
                    errors: match kind {
                        ReplyKind::Typed(i) => {
                            raw_replies().nth(usize::from(i)).map_or(&[], |r| r.errors)
                        }
                        _ => &[],
                    },
                })
            }
            typed => typed.typed(|c| c.wire()).unwrap_or_else(|| {
                Err(Error::InvalidArgument {
                    what: "command",
                    value: typed.to_string(),
                    why: "has no typed form",
                })
            }),
        }
    }

    /// Which reply the command produces.
    pub fn reply_kind(&self) -> ReplyKind {
        match self {
            Command::Raw(raw) => super::parse::for_command_line(raw.as_str()),
            typed => typed.typed(|c| c.kind()).unwrap_or(ReplyKind::Text),
        }
    }

    /// Reads only (sending it twice changes nothing), so it may be retried after a transport
    /// failure. A raw line never is.
    pub fn is_idempotent(&self) -> bool {
        self.typed(|c| c.idempotent()).unwrap_or(false)
    }

    /// Success is an empty answer (`\n`); any text is HAProxy's error message, even one
    /// without a severity prefix.
    pub fn expects_empty(&self) -> bool {
        !matches!(self, Command::Raw(_)) && self.reply_kind() == ReplyKind::Empty
    }

    /// A command of the master process itself: sent without a worker routing prefix.
    pub fn is_master_command(&self) -> bool {
        match self {
            Command::Raw(_) => self.wire().is_ok_and(|w| w.master),
            typed => typed.typed(|c| c.master()).unwrap_or(false),
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
