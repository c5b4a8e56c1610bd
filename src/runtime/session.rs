//! A persistent session and its pipelined batches (one-shot calls are in [`super::oneshot`],
//! re-exported here; the transport is in [`super::connection`]).
//!
//! - [`Session`]: one persistent interactive connection (`prompt`), carrying many commands.
//!   On a stats socket it turns on `set severity-output number` so errors carry `[3]: `.
//!   [`Session::batch`] pipelines many commands and matches every reply to its command.
//!
//! Every connect and every reply runs under a deadline ([`Deadlines`]). A reply that is an
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

use bytes::BytesMut;
use tokio::time::Instant;

pub use super::connection::Deadlines;
/// The old name of [`Deadlines`], kept for `src/edge` and `src/cli` until they migrate.
pub use super::connection::Deadlines as Timeouts;
pub use super::oneshot::{one_shot, one_shot_with_limit};
pub(crate) use super::oneshot::{one_shot_unchecked, RETRY_PAUSE};
pub use super::reply::Reply;
pub use super::version::{Capabilities, Version};

use super::codec::{Framing, ReplyCodec, MAX_REPLY};
use super::command::{AdminState, Command, StatFilter, WeightChange};
use super::connection::{connect, wire_line, Connection};
use super::endpoint::Endpoint;
use super::parse::cli_level::CliLevel;
use super::parse::info::Info;
use super::parse::map::{GetMap, MapEntry, MapInfo};
use super::parse::master::ProcList;
use super::parse::servers_conn::ServersConn;
use super::parse::servers_state::ServersState;
use super::parse::stat::StatTable;
use super::parse::weight::Weight;
use super::parse::{Outcome, Parsed};
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
