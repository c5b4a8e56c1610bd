//! The client API: one-shot calls, persistent sessions and pipelined batches.
//!
//! - [`one_shot`]: one connection per command; the reply ends at EOF. Through the master the
//!   client half-closes after the line, since the master never closes on its own.
//! - [`Session`]: one persistent interactive connection (`prompt`), carrying many commands.
//!   On a stats socket it turns on `set severity-output number` so errors carry `[3]: `.
//!   [`Session::batch`] pipelines many commands and matches every reply to its command.
//!
//! Every connect and every reply runs under a deadline ([`Timeouts`]). A reply that is an
//! error becomes [`Error::Refused`] (never retried); a transport failure drops the connection,
//! and only idempotent reads are sent again.
//!
//! **Through the master CLI** each worker command is sent as `@1 <cmd>` (or `@!<pid> <cmd>`),
//! and each such command is a fresh worker session, so `set severity-output` cannot stay on
//! (research §5; 2.6 drops it even in `@1` mode). Master sessions therefore do not send it
//! and recognise errors by HAProxy's known error texts ([`super::parse::outcome::KNOWN_ERRORS`])
//! and, for commands whose success is an empty answer, by the presence of any text at all.
//!
//! **Reconnecting.** 3.0 closes idle interactive sessions after `stats timeout`, and after a
//! reload an old session keeps talking to the old worker. Before each send the session checks
//! whether HAProxy closed the connection; if so it reconnects first. That is not a resend:
//! the command had not been written. After a command *was* written and the connection then
//! failed, only an idempotent command is sent again (once); a write may have been applied.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio::time::{timeout_at, Instant};
use tokio_util::codec::{Decoder, Encoder};

use super::codec::{CodecError, Frame, Framing, ReplyCodec, MAX_REPLY};
use super::command::{AdminState, Command, StatFilter, Weight as WeightChange};
use super::endpoint::{Endpoint, Socket};
use super::parse::cli_level::CliLevel;
use super::parse::info::Info;
use super::parse::map::{GetMap, MapEntry, MapRef as MapInfo};
use super::parse::master::ProcList;
use super::parse::servers_conn::ServersConn;
use super::parse::servers_state::ServersState;
use super::parse::stat::StatTable;
use super::parse::weight::Weight;
use super::parse::{classify, parse, Outcome, Parsed, ReplyKind};
use super::Error;

/// Deadlines for connecting and for each reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Connecting to the socket (through the master: retries while it re-executes).
    pub connect: Duration,
    /// Waiting for one reply, from the write (or the previous reply of a batch) to its end.
    pub reply: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(2),
            reply: Duration::from_secs(10),
        }
    }
}

/// An HAProxy version, from `show info` or `show proc` (`2.6.12-1+deb12u4`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
    /// As HAProxy prints it.
    pub raw: String,
}

impl Version {
    /// Reads the leading `major.minor[.patch]`; anything after (`-1+deb12u4`, `-dev5`) is kept
    /// only in `raw`.
    pub fn parse(raw: &str) -> Option<Version> {
        let numbers: Vec<&str> = raw
            .split(|c: char| !c.is_ascii_digit() && c != '.')
            .next()?
            .split('.')
            .collect();
        let number = |i: usize| -> Option<u32> { numbers.get(i)?.parse().ok() };
        Some(Version {
            major: number(0)?,
            minor: number(1)?,
            patch: number(2).unwrap_or(0),
            raw: raw.to_string(),
        })
    }

    /// True when this version is `major.minor` or newer.
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        (self.major, self.minor) >= (major, minor)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// Behaviour differences between HAProxy versions that the client relies on (research §12,
/// §13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Master `reload` answers `Success=0|1` plus the startup log (≥ 2.7); 2.6 answers
    /// nothing and must be confirmed through `show proc`.
    pub reload_reports_status: bool,
    /// In prompt mode a `;` chain gets one prompt after its last command (≥ 3.2).
    pub one_prompt_per_line: bool,
    /// An empty line answers the whole help text (< 3.0).
    pub empty_line_is_help: bool,
    /// The whole line, `;` chain included, must fit `tune.bufsize` (≥ 3.2).
    pub whole_line_bufsize: bool,
    /// Idle interactive sessions are closed after `stats timeout` (≥ 3.0).
    pub closes_idle_sessions: bool,
}

impl Capabilities {
    /// What `version` does.
    pub fn of(version: &Version) -> Capabilities {
        Capabilities {
            reload_reports_status: version.at_least(2, 7),
            one_prompt_per_line: version.at_least(3, 2),
            empty_line_is_help: !version.at_least(3, 0),
            whole_line_bufsize: version.at_least(3, 2),
            closes_idle_sessions: version.at_least(3, 0),
        }
    }
}

/// One reply, matched to the command that asked for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The command line as sent, without a master routing prefix.
    pub command: String,
    /// The reply body, prompt removed: the bytes a one-shot call would return.
    pub body: Bytes,
    /// Empty, data, info or error.
    pub outcome: Outcome,
    kind: ReplyKind,
    expects_empty: bool,
    /// The session turned `set severity-output number` on, so info messages carry a `[N]: `
    /// prefix that a one-shot call would not show.
    severity_added: bool,
}

impl Reply {
    fn new(command: &Command, body: Bytes) -> Reply {
        Reply {
            command: command.line(),
            outcome: classify(&body),
            body,
            kind: command.reply_kind(),
            expects_empty: command.expects_empty(),
            severity_added: false,
        }
    }

    /// The body as a one-shot call would have returned it: the `[N]: ` prefix that the
    /// session's own `set severity-output number` put before an info message (`show
    /// version` answers `[6]: 3.2.26-1` then) is removed. Otherwise the body as it came.
    pub fn output(&self) -> &[u8] {
        if self.severity_added {
            if let Some((_, rest)) = super::parse::outcome::severity_prefix(&self.body) {
                return rest;
            }
        }
        &self.body
    }

    /// Which reply this is.
    pub fn kind(&self) -> ReplyKind {
        self.kind
    }

    /// The body as text (invalid UTF-8 replaced), final newlines removed.
    pub fn text(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        text.trim_end_matches('\n').to_string()
    }

    /// The error HAProxy answered, if any: an error outcome, any text where an empty success
    /// was expected, or a `reload` that reports `Success=0`. `index` is the 1-based position
    /// in a batch.
    pub fn refusal(&self, index: Option<usize>) -> Option<Error> {
        let refused = |message: String| {
            Some(Error::Refused {
                command: self.command.clone(),
                index,
                message,
            })
        };
        match &self.outcome {
            Outcome::Error { text, .. } => return refused(text.clone()),
            Outcome::Output(text) if self.expects_empty => return refused(text.clone()),
            _ => {}
        }
        if self.kind == ReplyKind::Reload {
            if let Ok(Parsed::Reload(reload)) = parse(ReplyKind::Reload, &self.body) {
                if !reload.success {
                    let log: Vec<String> = reload
                        .log
                        .iter()
                        .map(|l| match &l.level {
                            Some(level) => format!("[{level}] {}", l.message),
                            None => l.message.clone(),
                        })
                        .collect();
                    return refused(format!("reload failed (Success=0): {}", log.join("\n")));
                }
            }
        }
        None
    }

    /// `Ok` unless HAProxy refused the command.
    pub fn check(&self) -> Result<(), Error> {
        match self.refusal(None) {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// The typed value of the reply. An error reply is [`Error::Refused`], a body that does not
    /// follow the grammar is [`Error::Parse`].
    pub fn parse(&self) -> Result<Parsed, Error> {
        self.check()?;
        parse(self.kind, self.output()).map_err(|source| Error::Parse {
            command: self.command.clone(),
            source,
        })
    }
}

/// A unix or TCP stream.
#[derive(Debug)]
enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    /// Reads what is already there without waiting (`WouldBlock` when nothing is).
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.try_read(buf),
            Stream::Tcp(s) => s.try_read(buf),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// Connects under the connect deadline. The master socket refuses connections for ~50 ms
/// while it re-executes on a 2.6 reload, so a master connect retries `ECONNREFUSED` (and a
/// missing socket file) until the deadline.
async fn connect(endpoint: &Endpoint, timeouts: &Timeouts) -> Result<Stream, Error> {
    let name = endpoint.to_string();
    let deadline = Instant::now() + timeouts.connect;
    let retry = endpoint.is_master();
    // Bounded in time by the deadline and in count by the 10 ms pause.
    loop {
        let attempt = async {
            match endpoint.socket() {
                Socket::Unix(path) => UnixStream::connect(&path).await.map(Stream::Unix),
                Socket::Tcp(addr) => TcpStream::connect(addr.as_str()).await.map(Stream::Tcp),
            }
        };
        match timeout_at(deadline, attempt).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e))
                if retry
                    && matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound
                    )
                    && Instant::now() + Duration::from_millis(10) < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Ok(Err(source)) => {
                return Err(Error::Connect {
                    endpoint: name,
                    source,
                })
            }
            Err(_) => {
                return Err(Error::Timeout {
                    endpoint: name,
                    during: "connecting",
                    after: timeouts.connect,
                })
            }
        }
    }
}

/// Maps a codec error to the client error for `endpoint`.
fn codec_error(endpoint: &str, error: CodecError) -> Error {
    match error {
        CodecError::TooLarge { limit } => Error::TooLarge {
            endpoint: endpoint.to_string(),
            limit,
        },
        CodecError::Closed { received } => Error::Closed {
            endpoint: endpoint.to_string(),
            received,
        },
        CodecError::InvalidLine(what) => Error::Protocol {
            endpoint: endpoint.to_string(),
            message: format!("refusing to send a line holding {what}"),
        },
        CodecError::Io(source) => Error::Io {
            endpoint: endpoint.to_string(),
            source,
        },
    }
}

/// Reads one reply within `wait`. EOF before any reply is `Closed { received: 0 }`.
/// How long a one-shot master call waits for EOF after a bad-target error line.
const TARGET_ERROR_GRACE: Duration = Duration::from_millis(200);

/// A one-shot reply that is exactly the master's one-line "bad `@` target" error.
fn lone_target_error(codec: &ReplyCodec, buf: &[u8]) -> bool {
    const PREFIX: &[u8] = b"Can't find the target PID matching the prefix '";
    codec.framing() == Framing::OneShot
        && buf.starts_with(PREFIX)
        && buf.ends_with(b"'\n")
        && buf.iter().filter(|&&b| b == b'\n').count() == 1
}

async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
    codec: &mut ReplyCodec,
    endpoint: &str,
    wait: Duration,
) -> Result<Frame, Error> {
    let mut deadline = Instant::now() + wait;
    // Bounded: each turn either returns or reads at least one byte, under the deadline and
    // the codec's reply bound.
    loop {
        if let Some(frame) = codec.decode(buf).map_err(|e| codec_error(endpoint, e))? {
            return Ok(frame);
        }
        buf.reserve(16 * 1024);
        let read = match timeout_at(deadline, reader.read_buf(buf)).await {
            Ok(Ok(n)) => n,
            Ok(Err(source)) => {
                return Err(Error::Io {
                    endpoint: endpoint.to_string(),
                    source,
                })
            }
            Err(_) if lone_target_error(codec, buf) => {
                let body = buf.split().freeze();
                return Ok(Frame { body, prompt: None });
            }
            Err(_) => {
                return Err(Error::Timeout {
                    endpoint: endpoint.to_string(),
                    during: "waiting for a reply",
                    after: wait,
                })
            }
        };
        if read > 0 && lone_target_error(codec, buf) {
            // Seen in the integration suite on 3.0 and 3.2: after this one-line answer to a
            // one-shot `@<bad target> …` the master sometimes neither closes nor says more,
            // even after our half-close. The line is the whole answer; don't wait for EOF.
            deadline = deadline.min(Instant::now() + TARGET_ERROR_GRACE);
        }
        if read == 0 {
            // 2.6's master answers a bad `@` target with one error line and hangs up: that
            // is HAProxy's answer, not a transport failure.
            if codec.framing() == Framing::MasterPrompt && classify(buf).is_error() {
                let body = buf.split().freeze();
                return Ok(Frame { body, prompt: None });
            }
            return match codec
                .decode_eof(buf)
                .map_err(|e| codec_error(endpoint, e))?
            {
                Some(frame) => Ok(frame),
                None => Err(Error::Closed {
                    endpoint: endpoint.to_string(),
                    received: 0,
                }),
            };
        }
    }
}

/// Appends `line` and its `\n` to `out` through the codec's encoder, which refuses a line
/// holding a line break (validation already did; this is the last gate before the socket).
fn push_line(out: &mut BytesMut, line: &str, endpoint: &str) -> Result<(), Error> {
    ReplyCodec::new(Framing::OneShot)
        .encode(line, out)
        .map_err(|e| codec_error(endpoint, e))
}

/// The line actually written for `command` on `endpoint`: worker commands through the master
/// get the target prefix (every `;` part of a raw line, since the master splits chains
/// itself).
fn wire_line(endpoint: &Endpoint, command: &Command) -> Result<String, Error> {
    if command.is_master_command() && !endpoint.is_master() {
        if let Command::ShowProc | Command::Reload = command {
            return Err(Error::InvalidArgument {
                what: "endpoint",
                value: endpoint.to_string(),
                why: "this is a master CLI command: use a master:<socket> endpoint",
            });
        }
    }
    let Some(prefix) = endpoint.worker_prefix() else {
        return Ok(command.line());
    };
    if command.is_master_command() {
        return Ok(command.line());
    }
    Ok(match command {
        Command::Raw(raw) => raw
            .commands()
            .iter()
            .map(|part| {
                let trimmed = part.trim_start_matches([' ', '\t']);
                if trimmed.starts_with('@') || trimmed.is_empty() {
                    part.to_string()
                } else {
                    format!("{prefix} {trimmed}")
                }
            })
            .collect::<Vec<_>>()
            .join(";"),
        _ => format!("{prefix} {}", command.line()),
    })
}

/// Sends one command on a fresh connection and reads the reply to EOF.
///
/// Through the master, the line gets the target prefix (`@1 `) and the client half-closes
/// after it: the master never ends a one-shot connection by itself.
pub async fn one_shot(
    endpoint: &Endpoint,
    command: &Command,
    timeouts: Timeouts,
) -> Result<Reply, Error> {
    one_shot_with_limit(endpoint, command, timeouts, MAX_REPLY).await
}

/// [`one_shot`] with a bound on the reply size.
pub async fn one_shot_with_limit(
    endpoint: &Endpoint,
    command: &Command,
    timeouts: Timeouts,
    max_reply: usize,
) -> Result<Reply, Error> {
    let reply = one_shot_unchecked(endpoint, command, timeouts, max_reply).await?;
    reply.check()?;
    Ok(reply)
}

/// One-shot exchange without checking the outcome (the caller reports errors itself).
///
/// An idempotent command whose connection dropped is tried again: once on a stats socket;
/// through the master until the connect deadline, since the 2.6 master re-executes itself
/// (at startup and on every reload) and meanwhile refuses or resets connections.
pub(crate) async fn one_shot_unchecked(
    endpoint: &Endpoint,
    command: &Command,
    timeouts: Timeouts,
    max_reply: usize,
) -> Result<Reply, Error> {
    command.validate()?;
    let deadline = Instant::now() + timeouts.connect;
    let mut retried = false;
    // Bounded by the deadline (master) or one retry (stats socket), 10 ms apart.
    loop {
        match one_shot_once(endpoint, command, timeouts, max_reply).await {
            Err(error)
                if error.is_connection_dropped()
                    && command.is_idempotent()
                    && (endpoint.is_master() || !retried)
                    && Instant::now() + RETRY_PAUSE < deadline =>
            {
                tracing::debug!(%endpoint, %error, "connection dropped; trying again");
                retried = true;
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            other => return other,
        }
    }
}

/// Pause before connecting again after a dropped connection.
const RETRY_PAUSE: Duration = Duration::from_millis(10);

/// One connection, one line, the reply to EOF.
async fn one_shot_once(
    endpoint: &Endpoint,
    command: &Command,
    timeouts: Timeouts,
    max_reply: usize,
) -> Result<Reply, Error> {
    let line = wire_line(endpoint, command)?;
    let name = endpoint.to_string();
    let mut stream = connect(endpoint, &timeouts).await?;
    let mut out = BytesMut::with_capacity(line.len() + 1);
    push_line(&mut out, &line, &name)?;
    let deadline = Instant::now() + timeouts.reply;
    let io_error = |source| Error::Io {
        endpoint: name.clone(),
        source,
    };
    let write = async {
        stream.write_all(&out).await?;
        if endpoint.is_master() {
            stream.shutdown().await?;
        }
        Ok::<(), io::Error>(())
    };
    match timeout_at(deadline, write).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(io_error(e)),
        Err(_) => {
            return Err(Error::Timeout {
                endpoint: name,
                during: "sending a command",
                after: timeouts.reply,
            })
        }
    }
    let mut codec = ReplyCodec::with_max_reply(Framing::OneShot, max_reply);
    let mut buf = BytesMut::new();
    let frame = read_frame(&mut stream, &mut buf, &mut codec, &name, timeouts.reply).await?;
    // A worker always answers at least `\n`; nothing at all means it hung up. Only 2.6's
    // master `reload` and the master's own silent commands answer nothing.
    let silent_ok = endpoint.is_master() && command.is_master_command();
    if frame.body.is_empty() && !silent_ok {
        return Err(Error::Closed {
            endpoint: name,
            received: 0,
        });
    }
    Ok(Reply::new(command, frame.body))
}

/// An open interactive connection.
#[derive(Debug)]
struct Connection {
    stream: Stream,
    buf: BytesMut,
    codec: ReplyCodec,
}

/// How much to write at once in a batch: large enough for few syscalls, bounded so a batch
/// of thousands of commands never builds one huge buffer.
const WRITE_CHUNK: usize = 64 * 1024;

impl Connection {
    /// True when HAProxy closed the connection (or sent bytes nobody asked for, which leaves
    /// the session out of step): either way it must not be used.
    fn is_stale(&mut self) -> bool {
        if !self.buf.is_empty() {
            return true;
        }
        let mut probe = [0u8; 64];
        !matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Writes `lines` (in chunks) while reading `frames[i]` replies for line `i`, each within
    /// `wait` of the previous one. Reading and writing run together, so a long batch of big
    /// replies cannot fill both socket buffers and stall.
    async fn exchange(
        &mut self,
        endpoint: &str,
        lines: &[String],
        frames: &[usize],
        wait: Duration,
    ) -> Result<Vec<Bytes>, Error> {
        let (mut reader, mut writer) = tokio::io::split(&mut self.stream);
        let buf = &mut self.buf;
        let codec = &mut self.codec;
        let write = async {
            let mut chunk = BytesMut::with_capacity(WRITE_CHUNK + 16 * 1024);
            for (i, line) in lines.iter().enumerate() {
                push_line(&mut chunk, line, endpoint)?;
                if chunk.len() >= WRITE_CHUNK || i + 1 == lines.len() {
                    match tokio::time::timeout(wait, writer.write_all(&chunk)).await {
                        Ok(Ok(())) => chunk.clear(),
                        Ok(Err(source)) => {
                            return Err(Error::Io {
                                endpoint: endpoint.to_string(),
                                source,
                            })
                        }
                        Err(_) => {
                            return Err(Error::Timeout {
                                endpoint: endpoint.to_string(),
                                during: "sending commands",
                                after: wait,
                            })
                        }
                    }
                }
            }
            Ok(())
        };
        let read = async {
            let mut bodies = Vec::with_capacity(lines.len());
            for &count in frames {
                let mut body = BytesMut::new();
                for _ in 0..count {
                    let frame = read_frame(&mut reader, buf, codec, endpoint, wait).await?;
                    body.extend_from_slice(&frame.body);
                }
                bodies.push(body.freeze());
            }
            Ok(bodies)
        };
        let ((), bodies) = tokio::try_join!(write, read)?;
        Ok(bodies)
    }
}

/// A persistent interactive session with one HAProxy process (a stats socket or the master).
#[derive(Debug)]
pub struct Session {
    endpoint: Endpoint,
    name: String,
    timeouts: Timeouts,
    max_reply: usize,
    conn: Option<Connection>,
    version: Version,
    capabilities: Capabilities,
}

impl Session {
    /// Connects, enters prompt mode, turns on `set severity-output number` (stats sockets)
    /// and learns the version.
    pub async fn connect(endpoint: &Endpoint, timeouts: Timeouts) -> Result<Session, Error> {
        Self::connect_with_limit(endpoint, timeouts, MAX_REPLY).await
    }

    /// [`Session::connect`] with a bound on each reply's size.
    pub async fn connect_with_limit(
        endpoint: &Endpoint,
        timeouts: Timeouts,
        max_reply: usize,
    ) -> Result<Session, Error> {
        let placeholder = Version {
            major: 0,
            minor: 0,
            patch: 0,
            raw: String::new(),
        };
        let mut session = Session {
            endpoint: endpoint.clone(),
            name: endpoint.to_string(),
            timeouts,
            max_reply,
            conn: None,
            capabilities: Capabilities::of(&placeholder),
            version: placeholder,
        };
        session.open().await?;
        Ok(session)
    }

    /// Where this session is connected.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The HAProxy version seen at the last (re)connect.
    pub fn version(&self) -> &Version {
        &self.version
    }

    /// What that version does.
    pub fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    /// The deadlines in use.
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// Closes the connection and opens a new one (e.g. after a reload, so the session talks
    /// to the new worker instead of pinning the old one).
    pub async fn reconnect(&mut self) -> Result<(), Error> {
        self.conn = None;
        self.open().await
    }

    /// Opens the connection and runs the handshake. Through the master, a handshake whose
    /// connection dropped is tried again until the connect deadline (the 2.6 master resets
    /// connections while it re-executes, at startup and on reloads).
    async fn open(&mut self) -> Result<(), Error> {
        let deadline = Instant::now() + self.timeouts.connect;
        // Bounded by the connect deadline, 10 ms apart.
        loop {
            match self.open_once().await {
                Err(error)
                    if error.is_connection_dropped()
                        && self.endpoint.is_master()
                        && Instant::now() + RETRY_PAUSE < deadline =>
                {
                    tracing::debug!(endpoint = %self.name, %error, "handshake dropped; trying again");
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                other => return other,
            }
        }
    }

    /// One connection attempt and handshake.
    async fn open_once(&mut self) -> Result<(), Error> {
        self.conn = None;
        let stream = connect(&self.endpoint, &self.timeouts).await?;
        let framing = if self.endpoint.is_master() {
            Framing::MasterPrompt
        } else {
            Framing::Prompt
        };
        let mut conn = Connection {
            stream,
            buf: BytesMut::new(),
            codec: ReplyCodec::with_max_reply(framing, self.max_reply),
        };
        let wait = self.timeouts.reply;
        let master = self.endpoint.is_master();
        // A stats socket gets the whole handshake in one write (prompt, severity, version):
        // HAProxy answers the lines in order, and one round trip instead of three is most
        // of the cost of a short-lived CLI call. The master is asked one line at a time.
        let mut lines = vec!["prompt".to_string()];
        if !master {
            lines.push(wire_line(&self.endpoint, &Command::SetSeverityOutput)?);
            lines.push(wire_line(&self.endpoint, &Command::ShowInfo)?);
        }
        let frames = vec![1; lines.len()];
        let mut bodies = conn.exchange(&self.name, &lines, &frames, wait).await?;
        // `prompt`: the worker answers `\n> `, the master `master> `.
        let expected: &[u8] = if master { b"" } else { b"\n" };
        if bodies.first().map(|b| &b[..]) != Some(expected) {
            return Err(Error::Protocol {
                endpoint: self.name.clone(),
                message: format!(
                    "`prompt` was answered with {:?}, not a prompt: is this an HAProxy {}?",
                    String::from_utf8_lossy(bodies.first().map(|b| &b[..]).unwrap_or_default()),
                    if master {
                        "master socket"
                    } else {
                        "stats socket"
                    }
                ),
            });
        }
        self.conn = Some(conn);
        let raw = if master {
            if self.endpoint.target() == Some(super::endpoint::WorkerTarget::Master) {
                let reply = self.exchange_one(&Command::ShowProc).await?;
                match reply.parse()? {
                    Parsed::Proc(list) => list.master.version,
                    _ => String::new(),
                }
            } else {
                let reply = self.exchange_one(&Command::ShowInfo).await?;
                match reply.parse()? {
                    Parsed::Info(info) => info.version().unwrap_or_default().to_string(),
                    _ => String::new(),
                }
            }
        } else {
            let info = Reply::new(&Command::ShowInfo, bodies.pop().unwrap_or_default());
            let severity = Reply::new(
                &Command::SetSeverityOutput,
                bodies.pop().unwrap_or_default(),
            );
            if severity.outcome != Outcome::Empty {
                self.conn = None;
                return Err(Error::Protocol {
                    endpoint: self.name.clone(),
                    message: format!(
                        "`set severity-output number` was answered with {:?}",
                        severity.text()
                    ),
                });
            }
            match info.parse()? {
                Parsed::Info(info) => info.version().unwrap_or_default().to_string(),
                _ => String::new(),
            }
        };
        let Some(version) = Version::parse(&raw) else {
            self.conn = None;
            return Err(Error::Protocol {
                endpoint: self.name.clone(),
                message: format!("cannot read the HAProxy version from {raw:?}"),
            });
        };
        self.capabilities = Capabilities::of(&version);
        self.version = version;
        Ok(())
    }

    /// Replies expected for one command line: a `;` chain gets one per command before 3.2
    /// and through the master, one per line on a 3.2 worker.
    fn frames_for(&self, command: &Command) -> usize {
        if self.endpoint.is_master() || !self.capabilities.one_prompt_per_line {
            command.command_count()
        } else {
            1
        }
    }

    /// One round trip on the open connection, no retry, no outcome check.
    async fn exchange_one(&mut self, command: &Command) -> Result<Reply, Error> {
        let mut replies = self.exchange(std::slice::from_ref(command)).await?;
        replies.pop().ok_or_else(|| Error::Protocol {
            endpoint: self.name.clone(),
            message: "no reply".to_string(),
        })
    }

    /// Pipelines `commands` on the open connection; drops the connection on any transport
    /// failure (it is out of step).
    async fn exchange(&mut self, commands: &[Command]) -> Result<Vec<Reply>, Error> {
        let mut lines = Vec::with_capacity(commands.len());
        let mut frames = Vec::with_capacity(commands.len());
        for command in commands {
            lines.push(wire_line(&self.endpoint, command)?);
            frames.push(self.frames_for(command));
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(Error::Closed {
                endpoint: self.name.clone(),
                received: 0,
            });
        };
        match conn
            .exchange(&self.name, &lines, &frames, self.timeouts.reply)
            .await
        {
            Ok(bodies) => {
                // Stats sockets only: the master cannot keep severity-output on (see above).
                let severity_added = !self.endpoint.is_master();
                Ok(commands
                    .iter()
                    .zip(bodies)
                    .map(|(command, body)| Reply {
                        severity_added,
                        ..Reply::new(command, body)
                    })
                    .collect())
            }
            Err(error) => {
                self.conn = None;
                Err(error)
            }
        }
    }

    /// Reconnects first when HAProxy closed the connection while it was idle. Nothing has
    /// been sent yet, so this is safe for every command.
    async fn ensure_open(&mut self) -> Result<(), Error> {
        let stale = match self.conn.as_mut() {
            Some(conn) => conn.is_stale(),
            None => true,
        };
        if stale {
            tracing::debug!(endpoint = %self.name, "connection closed by HAProxy; reconnecting");
            self.open().await?;
        }
        Ok(())
    }

    /// Sends every command, pipelined, and returns every reply without failing on refusals
    /// (see [`Reply::refusal`]). Fails only when validation or the transport fails.
    pub async fn batch_all(&mut self, commands: &[Command]) -> Result<Vec<Reply>, Error> {
        for command in commands {
            command.validate()?;
            if let Command::Reload = command {
                return Err(Error::InvalidArgument {
                    what: "command",
                    value: "reload".to_string(),
                    why: "a reload closes the session: use Session::reload or master::reload",
                });
            }
            wire_line(&self.endpoint, command)?;
        }
        if commands.is_empty() {
            return Ok(Vec::new());
        }
        self.ensure_open().await?;
        match self.exchange(commands).await {
            Ok(replies) => Ok(replies),
            Err(error)
                if error.is_connection_dropped() && commands.iter().all(Command::is_idempotent) =>
            {
                tracing::debug!(endpoint = %self.name, %error, "retrying idempotent commands");
                self.open().await?;
                self.exchange(commands).await
            }
            Err(error) => Err(error),
        }
    }

    /// Sends every command, pipelined; every reply is read (so the session stays in step),
    /// then the first refusal is returned as `Refused { index: Some(i) }` (1-based).
    pub async fn batch(&mut self, commands: &[Command]) -> Result<Vec<Reply>, Error> {
        let replies = self.batch_all(commands).await?;
        for (i, reply) in replies.iter().enumerate() {
            if let Some(error) = reply.refusal(Some(i + 1)) {
                return Err(error);
            }
        }
        Ok(replies)
    }

    /// One round trip; an error reply is [`Error::Refused`]. `reload` goes over its own
    /// one-shot connection (the master closes the connection after it), and the session
    /// reconnects before its next command.
    pub async fn send(&mut self, command: &Command) -> Result<Reply, Error> {
        if let Command::Reload = command {
            let reply =
                one_shot_unchecked(&self.endpoint, command, self.timeouts, self.max_reply).await;
            self.conn = None;
            let reply = reply?;
            reply.check()?;
            return Ok(reply);
        }
        let mut replies = self.batch_all(std::slice::from_ref(command)).await?;
        let reply = replies.pop().ok_or_else(|| Error::Protocol {
            endpoint: self.name.clone(),
            message: "no reply".to_string(),
        })?;
        reply.check()?;
        Ok(reply)
    }

    /// Sends `command` and parses its reply.
    async fn fetch(&mut self, command: Command) -> Result<Parsed, Error> {
        self.send(&command).await?.parse()
    }

    /// The parsed value did not have the expected variant (a bug in the kind mapping).
    fn unexpected(&self, command: &str) -> Error {
        Error::Protocol {
            endpoint: self.name.clone(),
            message: format!("`{command}` reply parsed as another kind"),
        }
    }

    /// `show info`.
    pub async fn show_info(&mut self) -> Result<Info, Error> {
        match self.fetch(Command::ShowInfo).await? {
            Parsed::Info(info) => Ok(info),
            _ => Err(self.unexpected("show info")),
        }
    }

    /// `show stat`, optionally filtered.
    pub async fn show_stat(&mut self, filter: Option<StatFilter>) -> Result<StatTable, Error> {
        match self.fetch(Command::ShowStat { filter }).await? {
            Parsed::Stat(table) => Ok(table),
            _ => Err(self.unexpected("show stat")),
        }
    }

    /// `show servers state [<backend>]`.
    pub async fn show_servers_state(
        &mut self,
        backend: Option<&str>,
    ) -> Result<ServersState, Error> {
        match self.fetch(Command::show_servers_state(backend)?).await? {
            Parsed::ServersState(state) => Ok(state),
            _ => Err(self.unexpected("show servers state")),
        }
    }

    /// `show backend`.
    pub async fn show_backends(&mut self) -> Result<Vec<String>, Error> {
        match self.fetch(Command::ShowBackend).await? {
            Parsed::Backends(names) => Ok(names),
            _ => Err(self.unexpected("show backend")),
        }
    }

    /// `show map`: the maps HAProxy knows.
    pub async fn show_maps(&mut self) -> Result<Vec<MapInfo>, Error> {
        match self.fetch(Command::ShowMaps).await? {
            Parsed::MapList(maps) => Ok(maps),
            _ => Err(self.unexpected("show map")),
        }
    }

    /// `show map [@<ver>] <map>`: its entries.
    pub async fn show_map(
        &mut self,
        map: &str,
        version: Option<u32>,
    ) -> Result<Vec<MapEntry>, Error> {
        match self.fetch(Command::show_map(map, version)?).await? {
            Parsed::MapEntries(entries) => Ok(entries),
            _ => Err(self.unexpected("show map")),
        }
    }

    /// `get map <map> <key>`.
    pub async fn get_map(&mut self, map: &str, key: &str) -> Result<GetMap, Error> {
        match self.fetch(Command::get_map(map, key)?).await? {
            Parsed::GetMap(found) => Ok(found),
            _ => Err(self.unexpected("get map")),
        }
    }

    /// `set map <map> <key> <value>`.
    pub async fn set_map(&mut self, map: &str, key: &str, value: &str) -> Result<(), Error> {
        self.send(&Command::set_map(map, key, value)?)
            .await
            .map(drop)
    }

    /// `add map [@<ver>] <map> <key> <value>`.
    pub async fn add_map(
        &mut self,
        map: &str,
        version: Option<u32>,
        key: &str,
        value: &str,
    ) -> Result<(), Error> {
        self.send(&Command::add_map(map, version, key, value)?)
            .await
            .map(drop)
    }

    /// `del map <map> <key>`.
    pub async fn del_map(&mut self, map: &str, key: &str) -> Result<(), Error> {
        self.send(&Command::del_map(map, key)?).await.map(drop)
    }

    /// `clear map [@<ver>] <map>`.
    pub async fn clear_map(&mut self, map: &str, version: Option<u32>) -> Result<(), Error> {
        self.send(&Command::clear_map(map, version)?)
            .await
            .map(drop)
    }

    /// `prepare map <map>`: the new version number.
    pub async fn prepare_map(&mut self, map: &str) -> Result<u32, Error> {
        match self.fetch(Command::prepare_map(map)?).await? {
            Parsed::PrepareMap(version) => Ok(version),
            _ => Err(self.unexpected("prepare map")),
        }
    }

    /// `commit map @<ver> <map>`.
    pub async fn commit_map(&mut self, map: &str, version: u32) -> Result<(), Error> {
        self.send(&Command::commit_map(map, version)?)
            .await
            .map(drop)
    }

    /// `set server <b>/<s> state <state>`.
    pub async fn set_server_state(
        &mut self,
        backend: &str,
        server: &str,
        state: AdminState,
    ) -> Result<(), Error> {
        self.send(&Command::set_server_state(backend, server, state)?)
            .await
            .map(drop)
    }

    /// `set server <b>/<s> weight <weight>`.
    pub async fn set_server_weight(
        &mut self,
        backend: &str,
        server: &str,
        weight: WeightChange,
    ) -> Result<(), Error> {
        self.send(&Command::set_server_weight(backend, server, weight)?)
            .await
            .map(drop)
    }

    /// `get weight <b>/<s>`.
    pub async fn get_weight(&mut self, backend: &str, server: &str) -> Result<Weight, Error> {
        match self.fetch(Command::get_weight(backend, server)?).await? {
            Parsed::Weight(weight) => Ok(weight),
            _ => Err(self.unexpected("get weight")),
        }
    }

    /// `show servers conn [<backend>]`.
    pub async fn show_servers_conn(&mut self, backend: Option<&str>) -> Result<ServersConn, Error> {
        match self.fetch(Command::show_servers_conn(backend)?).await? {
            Parsed::ServersConn(conns) => Ok(conns),
            _ => Err(self.unexpected("show servers conn")),
        }
    }

    /// `shutdown sessions server <b>/<s>`.
    pub async fn shutdown_sessions_server(
        &mut self,
        backend: &str,
        server: &str,
    ) -> Result<(), Error> {
        self.send(&Command::shutdown_sessions_server(backend, server)?)
            .await
            .map(drop)
    }

    /// `show cli level`.
    pub async fn show_cli_level(&mut self) -> Result<CliLevel, Error> {
        match self.fetch(Command::ShowCliLevel).await? {
            Parsed::CliLevel(level) => Ok(level),
            _ => Err(self.unexpected("show cli level")),
        }
    }

    /// Master `show proc`.
    pub async fn show_proc(&mut self) -> Result<ProcList, Error> {
        match self.fetch(Command::ShowProc).await? {
            Parsed::Proc(list) => Ok(list),
            _ => Err(self.unexpected("show proc")),
        }
    }

    /// Master `reload`, confirmed (see [`super::master::reload`]); the session reconnects
    /// before its next command.
    pub async fn reload(&mut self) -> Result<super::master::ReloadReport, Error> {
        let report = super::master::reload(&self.endpoint, self.timeouts).await;
        self.conn = None;
        report
    }
}
