//! A persistent session and its pipelined batches (one-shot calls are in [`super::oneshot`],
//! re-exported here; the transport is in [`super::connection`]).
//!
//! - [`Session`]: one persistent interactive connection (`prompt`), carrying many commands.
//!   On a stats socket it turns on `set severity-output number` so errors carry `[3]: `.
//!   [`Session::run`] sends a typed command and returns its typed reply; [`Session::run_each`]
//!   and [`Batch`] pipeline many typed commands, every reply matched to its command;
//!   [`Session::send_lines`] pipelines an operator's lines (`vezasock exec`).
//!
//! Every connect and every reply runs under a deadline ([`Deadlines`]). A reply that is an
//! error becomes [`Error::Refused`] (never retried); a transport failure drops the connection,
//! and only idempotent reads are sent again.
//!
//! **Through the master CLI** each worker command is sent as `@1 <cmd>` (or `@!<pid> <cmd>`),
//! and each such command is a fresh worker session, so `set severity-output` cannot stay on
//! (seen on real binaries; 2.6 drops it even in `@1` mode). Master sessions therefore do not send it
//! and recognise errors by HAProxy's known error texts ([`super::parse::outcome::KNOWN_ERRORS`])
//! and, for commands whose success is an empty answer, by the presence of any text at all.
//!
//! **Reconnecting.** 3.0 closes idle interactive sessions after `stats timeout`, and after a
//! reload an old session keeps talking to the old worker. Before each send the session checks
//! whether HAProxy closed the connection; if so it reconnects first. That is not a resend:
//! the command had not been written. After a command *was* written and the connection then
//! failed, only an idempotent command is sent again (once); a write may have been applied.

use bytes::BytesMut;
use tokio::time::Instant;

pub use super::connection::Deadlines;
/// The old name of [`Deadlines`], kept for `src/edge` and `src/cli` until they migrate.
pub use super::connection::Deadlines as Timeouts;
use super::oneshot::RETRY_PAUSE;
pub use super::oneshot::{one_shot, one_shot_line, one_shot_with_limit};
pub use super::reply::Reply;
pub use super::version::{Capabilities, Version};

use super::codec::{Framing, ReplyCodec, MAX_REPLY};
use super::command::cli::CliLevel;
use super::command::cli::{SetSeverityOutput, ShowCliLevel};
use super::command::info::Info;
use super::command::info::ShowInfo;
use super::command::maps::{
    AddMap, ClearMap, CommitMap, DelMap, GetMap as GetMapCommand, PrepareMap, SetMap, ShowMap,
    ShowMaps,
};
use super::command::maps::{MapEntry, MapInfo, MapLookup};
use super::command::master::ProcList;
use super::command::master::ShowProc;
use super::command::servers::{
    GetWeight, SetServerState, SetServerWeight, ShowBackend, ShowServersConn, ShowServersState,
    ShutdownSessionsServer,
};
use super::command::servers::{ServersConn, ServersState, Weight};
use super::command::stat::ShowStat;
use super::command::stat::StatTable;
use super::command::{AdminState, RawLine, RuntimeCommand, StatFilter, WeightChange, Wire};
use super::connection::{connect, wire_line, Connection};
use super::endpoint::Endpoint;
use super::oneshot::one_shot_wire;
use super::parse::Outcome;
use super::Error;

/// A persistent interactive session with one HAProxy process (a stats socket or the master).
#[derive(Debug)]
pub struct Session {
    endpoint: Endpoint,
    name: String,
    timeouts: Deadlines,
    max_reply: usize,
    conn: Option<Connection>,
    version: Version,
    capabilities: Capabilities,
}

impl Session {
    /// Connects, enters prompt mode, turns on `set severity-output number` (stats sockets)
    /// and learns the version.
    pub async fn connect(endpoint: &Endpoint, timeouts: Deadlines) -> Result<Session, Error> {
        Self::connect_with_limit(endpoint, timeouts, MAX_REPLY).await
    }

    /// [`Session::connect`] with a bound on each reply's size.
    pub async fn connect_with_limit(
        endpoint: &Endpoint,
        timeouts: Deadlines,
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
    pub fn timeouts(&self) -> Deadlines {
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
            lines.push(wire_line(&self.endpoint, &Wire::of(&SetSeverityOutput)?)?);
            lines.push(wire_line(&self.endpoint, &Wire::of(&ShowInfo)?)?);
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
                let reply = self.exchange_one(&Wire::of(&ShowProc)?).await?;
                reply.parse_with(&ShowProc)?.master.version
            } else {
                let reply = self.exchange_one(&Wire::of(&ShowInfo)?).await?;
                let info = reply.parse_with(&ShowInfo)?;
                info.version().unwrap_or_default().to_string()
            }
        } else {
            let info = Reply::new(&Wire::of(&ShowInfo)?, bodies.pop().unwrap_or_default());
            let severity = Reply::new(
                &Wire::of(&SetSeverityOutput)?,
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
            let info = info.parse_with(&ShowInfo)?;
            info.version().unwrap_or_default().to_string()
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
    fn frames_for(&self, command: &Wire) -> usize {
        if self.endpoint.is_master() || !self.capabilities.one_prompt_per_line {
            command.command_count()
        } else {
            1
        }
    }

    /// One round trip on the open connection, no retry, no outcome check.
    async fn exchange_one(&mut self, command: &Wire) -> Result<Reply, Error> {
        let mut replies = self.exchange(std::slice::from_ref(command)).await?;
        replies.pop().ok_or_else(|| Error::Protocol {
            endpoint: self.name.clone(),
            message: "no reply".to_string(),
        })
    }

    /// Pipelines `commands` on the open connection; drops the connection on any transport
    /// failure (it is out of step).
    async fn exchange(&mut self, commands: &[Wire]) -> Result<Vec<Reply>, Error> {
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
                    .map(|(command, body)| {
                        let mut reply = Reply::new(command, body);
                        reply.severity_added = severity_added;
                        reply
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

    /// Sends an operator-typed line; a refusal is [`Error::Refused`]. Never resent: an
    /// operator's line may write.
    pub async fn send_line(&mut self, line: &RawLine) -> Result<Reply, Error> {
        self.send_wire(&line.wire()).await
    }

    /// Sends operator-typed lines (`vezasock exec`), pipelined, and returns every reply
    /// without failing on refusals (see [`Reply::refusal`]). Fails only when the transport
    /// fails. Never resent: an operator's line may write.
    pub async fn send_lines(&mut self, lines: &[RawLine]) -> Result<Vec<Reply>, Error> {
        let wires: Vec<Wire> = lines.iter().map(RawLine::wire).collect();
        self.batch_wires(&wires).await
    }

    /// Sends commands already in wire form (validated), pipelined; every reply unchecked.
    async fn batch_wires(&mut self, commands: &[Wire]) -> Result<Vec<Reply>, Error> {
        for command in commands {
            if command.reload {
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
                if error.is_connection_dropped() && commands.iter().all(|c| c.idempotent) =>
            {
                tracing::debug!(endpoint = %self.name, %error, "retrying idempotent commands");
                self.open().await?;
                self.exchange(commands).await
            }
            Err(error) => Err(error),
        }
    }

    /// One round trip; an error reply is [`Error::Refused`]. `reload` goes over its own
    /// one-shot connection (the master closes the connection after it), and the session
    /// reconnects before its next command.
    async fn send_wire(&mut self, command: &Wire) -> Result<Reply, Error> {
        if command.reload {
            let reply = one_shot_wire(&self.endpoint, command, self.timeouts, self.max_reply).await;
            self.conn = None;
            let reply = reply?;
            reply.check()?;
            return Ok(reply);
        }
        let mut replies = self.batch_wires(std::slice::from_ref(command)).await?;
        let reply = replies.pop().ok_or_else(|| Error::Protocol {
            endpoint: self.name.clone(),
            message: "no reply".to_string(),
        })?;
        reply.check()?;
        Ok(reply)
    }

    /// Sends a typed command and returns its typed reply ([`Error::Refused`] when HAProxy
    /// said no, [`Error::Parse`] when the reply does not follow the command's grammar).
    pub async fn run<C: RuntimeCommand>(&mut self, command: &C) -> Result<C::Reply, Error> {
        self.send_wire(&Wire::of(command)?)
            .await?
            .parse_with(command)
    }

    /// Sends a typed command and returns its reply as received (the bytes), checked
    /// ([`Error::Refused`] when HAProxy said no), for a caller that keeps the text itself.
    pub async fn send<C: RuntimeCommand>(&mut self, command: &C) -> Result<Reply, Error> {
        self.send_wire(&Wire::of(command)?).await
    }

    /// Sends commands of one type, pipelined, and returns their typed replies in order; the
    /// first refusal is `Refused { index: Some(i) }` after every reply was read.
    pub async fn run_each<C: RuntimeCommand>(
        &mut self,
        commands: &[C],
    ) -> Result<Vec<C::Reply>, Error> {
        let wires = commands
            .iter()
            .map(|c| Wire::of(c))
            .collect::<Result<Vec<_>, _>>()?;
        let replies = self.batch_wires(&wires).await?;
        first_refusal(&replies)?;
        commands
            .iter()
            .zip(&replies)
            .map(|(command, reply)| reply.parse_with(command))
            .collect()
    }

    /// Sends a [`Batch`] of typed commands of any types, pipelined. Every reply is read;
    /// the first refusal is `Refused { index: Some(i) }`. Each reply is then taken by the
    /// [`Slot`] its `push` returned, with its own type.
    pub async fn run_batch(&mut self, batch: Batch) -> Result<BatchReplies, Error> {
        let replies = self.batch_wires(&batch.wires).await?;
        first_refusal(&replies)?;
        Ok(BatchReplies { replies })
    }

    /// Sends a [`Batch`], pipelined, and returns every reply without failing on refusals (see
    /// [`Reply::refusal`]), for a caller that tells a refused first command from a later one.
    /// Fails only when the transport fails.
    pub async fn run_batch_all(&mut self, batch: Batch) -> Result<BatchReplies, Error> {
        let replies = self.batch_wires(&batch.wires).await?;
        Ok(BatchReplies { replies })
    }

    // Shorthands for one typed command each, taking the operator's words.

    /// `show info`.
    pub async fn show_info(&mut self) -> Result<Info, Error> {
        self.run(&ShowInfo).await
    }

    /// `show stat`, optionally filtered.
    pub async fn show_stat(&mut self, filter: Option<StatFilter>) -> Result<StatTable, Error> {
        self.run(&ShowStat { filter }).await
    }

    /// `show servers state [<backend>]`.
    pub async fn show_servers_state(
        &mut self,
        backend: Option<&str>,
    ) -> Result<ServersState, Error> {
        self.run(&ShowServersState::new(backend)?).await
    }

    /// `show backend`.
    pub async fn show_backends(&mut self) -> Result<Vec<String>, Error> {
        self.run(&ShowBackend).await
    }

    /// `show map`: the maps HAProxy knows.
    pub async fn show_maps(&mut self) -> Result<Vec<MapInfo>, Error> {
        self.run(&ShowMaps).await
    }

    /// `show map [@<ver>] <map>`: its entries.
    pub async fn show_map(
        &mut self,
        map: &str,
        version: Option<u32>,
    ) -> Result<Vec<MapEntry>, Error> {
        self.run(&ShowMap::new(map, version)?).await
    }

    /// `get map <map> <key>`.
    pub async fn get_map(&mut self, map: &str, key: &str) -> Result<MapLookup, Error> {
        self.run(&GetMapCommand::new(map, key)?).await
    }

    /// `set map <map> <key> <value>`.
    pub async fn set_map(&mut self, map: &str, key: &str, value: &str) -> Result<(), Error> {
        self.run(&SetMap::new(map, key, value)?).await
    }

    /// `add map [@<ver>] <map> <key> <value>`.
    pub async fn add_map(
        &mut self,
        map: &str,
        version: Option<u32>,
        key: &str,
        value: &str,
    ) -> Result<(), Error> {
        self.run(&AddMap::new(map, version, key, value)?).await
    }

    /// `del map <map> <key>`.
    pub async fn del_map(&mut self, map: &str, key: &str) -> Result<(), Error> {
        self.run(&DelMap::new(map, key)?).await
    }

    /// `clear map [@<ver>] <map>`.
    pub async fn clear_map(&mut self, map: &str, version: Option<u32>) -> Result<(), Error> {
        self.run(&ClearMap::new(map, version)?).await
    }

    /// `prepare map <map>`: the new version number.
    pub async fn prepare_map(&mut self, map: &str) -> Result<u32, Error> {
        self.run(&PrepareMap::new(map)?).await
    }

    /// `commit map @<ver> <map>`.
    pub async fn commit_map(&mut self, map: &str, version: u32) -> Result<(), Error> {
        self.run(&CommitMap::new(map, version)?).await
    }

    /// `set server <b>/<s> state <state>`.
    pub async fn set_server_state(
        &mut self,
        backend: &str,
        server: &str,
        state: AdminState,
    ) -> Result<(), Error> {
        self.run(&SetServerState::new(backend, server, state)?)
            .await
    }

    /// `set server <b>/<s> weight <weight>`.
    pub async fn set_server_weight(
        &mut self,
        backend: &str,
        server: &str,
        weight: WeightChange,
    ) -> Result<(), Error> {
        self.run(&SetServerWeight::new(backend, server, weight)?)
            .await
    }

    /// `get weight <b>/<s>`.
    pub async fn get_weight(&mut self, backend: &str, server: &str) -> Result<Weight, Error> {
        self.run(&GetWeight::new(backend, server)?).await
    }

    /// `show servers conn [<backend>]`.
    pub async fn show_servers_conn(&mut self, backend: Option<&str>) -> Result<ServersConn, Error> {
        self.run(&ShowServersConn::new(backend)?).await
    }

    /// `shutdown sessions server <b>/<s>`.
    pub async fn shutdown_sessions_server(
        &mut self,
        backend: &str,
        server: &str,
    ) -> Result<(), Error> {
        self.run(&ShutdownSessionsServer::new(backend, server)?)
            .await
    }

    /// `show cli level`.
    pub async fn show_cli_level(&mut self) -> Result<CliLevel, Error> {
        self.run(&ShowCliLevel).await
    }

    /// Master `show proc`.
    pub async fn show_proc(&mut self) -> Result<ProcList, Error> {
        self.run(&ShowProc).await
    }

    /// Master `reload`, confirmed (see [`super::master::reload`]); the session reconnects
    /// before its next command.
    pub async fn reload(&mut self) -> Result<super::master::ReloadReport, Error> {
        let report = super::master::reload(&self.endpoint, self.timeouts).await;
        self.conn = None;
        report
    }
}

/// A [`Session`] that sends reads only (`show …`, `get …`: the commands that are
/// [`RuntimeCommand::idempotent`]); anything else is refused before a byte is sent. `status` reads
/// through one on the admin socket: HAProxy 3.4 answers map reads at level admin only (3.2 logs
/// a warning for each at a lower level), and this type is what keeps `status` read-only there.
#[derive(Debug)]
pub struct ReadSession {
    session: Session,
}

impl ReadSession {
    /// Connects as [`Session::connect`] does.
    pub async fn connect(endpoint: &Endpoint, timeouts: Deadlines) -> Result<ReadSession, Error> {
        Ok(ReadSession {
            session: Session::connect(endpoint, timeouts).await?,
        })
    }

    /// The HAProxy version seen at the last (re)connect.
    pub fn version(&self) -> &Version {
        self.session.version()
    }

    /// [`Session::run_batch`] for reads only: a batch holding a write is refused and nothing
    /// is sent.
    pub async fn run_batch(&mut self, batch: Batch) -> Result<BatchReplies, Error> {
        reads_only(&batch)?;
        self.session.run_batch(batch).await
    }
}

/// `Ok` when every command of `batch` only reads; else the first one that does not, as an
/// error.
pub fn reads_only(batch: &Batch) -> Result<(), Error> {
    match batch.wires.iter().find(|w| !w.idempotent) {
        None => Ok(()),
        Some(write) => Err(Error::InvalidArgument {
            what: "command",
            value: write.line.clone(),
            why: "is not a read: this session sends reads only",
        }),
    }
}

/// The first refusal of a batch, with its 1-based position.
fn first_refusal(replies: &[Reply]) -> Result<(), Error> {
    for (i, reply) in replies.iter().enumerate() {
        if let Some(error) = reply.refusal(Some(i + 1)) {
            return Err(error);
        }
    }
    Ok(())
}

/// Typed commands of any types to pipeline in one round trip ([`Session::run_batch`]):
///
/// ```no_run
/// # async fn f(session: &mut vezasock::runtime::session::Session) -> Result<(), vezasock::runtime::Error> {
/// use vezasock::runtime::command::{info::ShowInfo, servers::ShowServersState};
/// use vezasock::runtime::session::Batch;
/// let mut batch = Batch::new();
/// let info = batch.push(ShowInfo)?;
/// let states = batch.push(ShowServersState::default())?;
/// let replies = session.run_batch(batch).await?;
/// let (info, states) = (replies.take(&info)?, replies.take(&states)?);
/// # let _ = (info, states); Ok(()) }
/// ```
#[derive(Debug, Default)]
pub struct Batch {
    wires: Vec<Wire>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Adds a command (validated now); the slot takes its typed reply later.
    pub fn push<C: RuntimeCommand>(&mut self, command: C) -> Result<Slot<C>, Error> {
        self.wires.push(Wire::of(&command)?);
        Ok(Slot {
            index: self.wires.len() - 1,
            command,
        })
    }

    /// Adds every command of `other` after these, in order. The slots `other` gave out are
    /// not valid for the result: a caller appends commands whose replies it reads as a whole.
    pub fn append(&mut self, other: Batch) {
        self.wires.extend(other.wires);
    }

    /// The lines the batch sends, in order (without routing prefix or `\n`).
    pub fn lines(&self) -> impl Iterator<Item = &str> + '_ {
        self.wires.iter().map(|w| w.line.as_str())
    }

    /// How many commands it holds.
    pub fn len(&self) -> usize {
        self.wires.len()
    }

    /// True when it holds none.
    pub fn is_empty(&self) -> bool {
        self.wires.is_empty()
    }
}

/// Where one command of a [`Batch`] is, and the command itself (it parses its reply).
#[derive(Debug, Clone)]
pub struct Slot<C> {
    index: usize,
    command: C,
}

impl<C> Slot<C> {
    /// The command's 0-based position in its batch.
    pub fn index(&self) -> usize {
        self.index
    }
}

/// The replies of a [`Batch`], none refused.
#[derive(Debug, Clone)]
pub struct BatchReplies {
    replies: Vec<Reply>,
}

impl BatchReplies {
    /// The typed reply of the command at `slot`.
    pub fn take<C: RuntimeCommand>(&self, slot: &Slot<C>) -> Result<C::Reply, Error> {
        let reply = self
            .replies
            .get(slot.index)
            .ok_or_else(|| Error::Protocol {
                endpoint: String::new(),
                message: format!("no reply number {} in the batch", slot.index + 1),
            })?;
        reply.parse_with(&slot.command)
    }

    /// Every reply, as read.
    pub fn replies(&self) -> &[Reply] {
        &self.replies
    }

    /// Every reply, as read, owned.
    pub fn into_replies(self) -> Vec<Reply> {
        self.replies
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch_of<C: RuntimeCommand>(first: impl RuntimeCommand, then: C) -> Batch {
        let mut batch = Batch::new();
        batch.push(first).unwrap();
        batch.push(then).unwrap();
        batch
    }

    const MAP: &str = "/etc/haproxy/maps/active-color.map";

    #[test]
    fn a_read_session_takes_every_read_status_sends() {
        let mut reads = Batch::new();
        reads.push(ShowInfo).unwrap();
        reads.push(ShowStat { filter: None }).unwrap();
        reads.push(ShowServersState::new(None).unwrap()).unwrap();
        reads.push(ShowBackend).unwrap();
        reads.push(ShowMaps).unwrap();
        reads.push(ShowMap::new(MAP, None).unwrap()).unwrap();
        reads
            .push(GetMapCommand::new(MAP, "prod").unwrap())
            .unwrap();
        reads.push(GetWeight::new("be", "s").unwrap()).unwrap();
        reads.push(ShowServersConn::new(None).unwrap()).unwrap();
        reads.push(ShowCliLevel).unwrap();
        assert!(reads_only(&reads).is_ok());
    }

    #[test]
    fn a_read_session_refuses_every_write_before_sending() {
        let writes = [
            batch_of(ShowInfo, SetMap::new(MAP, "prod", "green").unwrap()),
            batch_of(ShowInfo, AddMap::new(MAP, None, "prod", "green").unwrap()),
            batch_of(ShowInfo, DelMap::new(MAP, "prod").unwrap()),
            batch_of(ShowInfo, ClearMap::new(MAP, None).unwrap()),
            batch_of(ShowInfo, PrepareMap::new(MAP).unwrap()),
            batch_of(ShowInfo, CommitMap::new(MAP, 1).unwrap()),
            batch_of(
                ShowInfo,
                SetServerState::new("be", "s", AdminState::Maint).unwrap(),
            ),
            batch_of(
                ShowInfo,
                SetServerWeight::new("be", "s", WeightChange::Absolute(0)).unwrap(),
            ),
            batch_of(ShowInfo, ShutdownSessionsServer::new("be", "s").unwrap()),
            batch_of(ShowInfo, super::super::command::master::Reload),
        ];
        for batch in writes {
            let write = batch.lines().nth(1).unwrap_or_default().to_string();
            let err = reads_only(&batch).expect_err(&write);
            assert!(err.to_string().contains("not a read"), "{write}: {err}");
        }
    }
}
