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
//! **Adding a command** is a struct, a constructor from the operator's words (validated) and
//! its `impl RuntimeCommand` in its family's file; a new family is a new file plus its name in
//! the `families!` list below. `Session::run` sends one and returns its typed reply,
//! `Session::run_each` pipelines several of one type, `Batch` several of any types (each reply
//! taken by the `Slot` its `push` returned). There is no other list of commands to extend.
//!
//! A line typed by an operator (`vezasock exec`) is a [`RawLine`]; [`raw`] tells which family's
//! parser reads its reply and gives the untyped [`raw::Parsed`] value that `exec --json`
//! prints. Nothing else in the crate uses the untyped form.
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

use serde::Serialize;

use super::parse::ParseError;
use super::Error;

mod args;
pub(crate) use args::{check_payload_marker, split_commands};
pub mod raw;

/// The command families: one line each. A family's `RAW` lists the operator-typed lines
/// (`vezasock exec`) whose replies its parsers read, beyond the kinds of [`ReplyKind`].
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

/// The shape of reply a command produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyKind {
    /// `show info`.
    Info,
    /// `show stat` (CSV form).
    Stat,
    /// `show servers state`.
    ServersState,
    /// `show backend`.
    Backends,
    /// `show map` with no argument: the list of maps.
    MapList,
    /// `show map <file|#id>` / `show map @<ver> <file>`.
    MapEntries,
    /// `get map <file> <value>`.
    GetMap,
    /// `prepare map <file>`.
    PrepareMap,
    /// `get weight <backend>/<server>`.
    Weight,
    /// `show servers conn`.
    ServersConn,
    /// Master `show proc`.
    Proc,
    /// Master `reload`.
    Reload,
    /// `show cli level`.
    CliLevel,
    /// A command whose success is an empty answer (`set …`, `add map`, …).
    Empty,
    /// Anything else: kept as text.
    Text,
    /// A line one of the command families reads (`show ssl cert`): the position of its
    /// [`RawReply`] among them.
    Typed(u16),
}

impl ReplyKind {
    /// Every fixed kind, for tests and fuzzing that must try each parser (the `Typed` ones
    /// are the command families' `RAW` entries).
    pub const ALL: [ReplyKind; 15] = [
        ReplyKind::Info,
        ReplyKind::Stat,
        ReplyKind::ServersState,
        ReplyKind::Backends,
        ReplyKind::MapList,
        ReplyKind::MapEntries,
        ReplyKind::GetMap,
        ReplyKind::PrepareMap,
        ReplyKind::Weight,
        ReplyKind::ServersConn,
        ReplyKind::Proc,
        ReplyKind::Reload,
        ReplyKind::CliLevel,
        ReplyKind::Empty,
        ReplyKind::Text,
    ];
}

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
    escape, MapKey, MapRef, MapValue, Name, MAX_KEY, MAX_LINE, MAX_MAP, MAX_NAME, MAX_VALUE,
};
pub use raw::RawLine;
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

    /// Which kind of reply it is for the untyped [`raw::Parsed`] world
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
