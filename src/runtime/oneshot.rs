//! One-shot calls: one connection per command, the reply read to EOF (what socat does).
//! Through the master the client half-closes after the line, since the master never closes a
//! one-shot connection on its own.

use std::io;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::time::{timeout_at, Instant};

use super::codec::{Framing, ReplyCodec, MAX_REPLY};
use super::command::ssl::SslWrite;
use super::command::{RawLine, RuntimeCommand, Wire, MAX_LINE};
use super::connection::{connect, push_line, read_frame, wire_line, Deadlines};
use super::endpoint::Endpoint;
use super::reply::Reply;
use super::Error;

/// Sends one command on a fresh connection and reads the reply to EOF.
///
/// Through the master, the line gets the target prefix (`@1 `) and the client half-closes
/// after it: the master never ends a one-shot connection by itself.
pub async fn one_shot<C: RuntimeCommand>(
    endpoint: &Endpoint,
    command: &C,
    timeouts: Deadlines,
) -> Result<Reply, Error> {
    one_shot_with_limit(endpoint, command, timeouts, MAX_REPLY).await
}

/// [`one_shot`] with a bound on the reply size.
pub async fn one_shot_with_limit<C: RuntimeCommand>(
    endpoint: &Endpoint,
    command: &C,
    timeouts: Deadlines,
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
pub(crate) async fn one_shot_unchecked<C: RuntimeCommand>(
    endpoint: &Endpoint,
    command: &C,
    timeouts: Deadlines,
    max_reply: usize,
) -> Result<Reply, Error> {
    one_shot_wire(endpoint, &Wire::of(command)?, timeouts, max_reply).await
}

/// An operator-typed line over a one-shot connection; a refusal is [`Error::Refused`].
/// Never resent: an operator's line may write.
pub async fn one_shot_line(
    endpoint: &Endpoint,
    line: &RawLine,
    timeouts: Deadlines,
) -> Result<Reply, Error> {
    let reply = one_shot_line_unchecked(endpoint, line, timeouts, MAX_REPLY).await?;
    reply.check()?;
    Ok(reply)
}

/// [`one_shot_line`] without checking the outcome (the caller reports a refusal itself).
pub async fn one_shot_line_unchecked(
    endpoint: &Endpoint,
    line: &RawLine,
    timeouts: Deadlines,
    max_reply: usize,
) -> Result<Reply, Error> {
    one_shot_wire(endpoint, &line.wire(), timeouts, max_reply).await
}

/// A typed command over a one-shot connection: its reply, parsed ([`Error::Refused`] when
/// HAProxy said no).
pub async fn one_shot_run<C: RuntimeCommand>(
    endpoint: &Endpoint,
    command: &C,
    timeouts: Deadlines,
) -> Result<C::Reply, Error> {
    let reply = one_shot_wire(endpoint, &Wire::of(command)?, timeouts, MAX_REPLY).await?;
    reply.parse_with(command)
}

/// [`one_shot_unchecked`] for a command already in wire form.
pub(crate) async fn one_shot_wire(
    endpoint: &Endpoint,
    command: &Wire,
    timeouts: Deadlines,
    max_reply: usize,
) -> Result<Reply, Error> {
    let deadline = Instant::now() + timeouts.connect;
    let mut retried = false;
    // Bounded by the deadline (master) or one retry (stats socket), 10 ms apart.
    loop {
        match one_shot_once(endpoint, command, timeouts, max_reply).await {
            Err(error)
                if error.is_connection_dropped()
                    && command.idempotent
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
pub(crate) const RETRY_PAUSE: Duration = Duration::from_millis(10);

/// One connection, one line, the reply to EOF.
async fn one_shot_once(
    endpoint: &Endpoint,
    command: &Wire,
    timeouts: Deadlines,
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
    let silent_ok = endpoint.is_master() && command.master;
    if frame.body.is_empty() && !silent_ok {
        return Err(Error::Closed {
            endpoint: name,
            received: 0,
        });
    }
    Ok(Reply::new(command, frame.body))
}

/// The certificate writes travel here, beside the other one-shot calls: their family
/// ([`super::command::ssl`]) only knows their text and how to read the answer.
impl SslWrite {
    /// Sends the write on its own connection (one-shot: HAProxy closes after the reply) and
    /// checks the reply. Never resent: a write may have been applied. The payload's size is
    /// the caller's to check against the version ([`payload_too_big`]): the line is checked here.
    pub async fn send(&self, endpoint: &Endpoint, timeouts: Deadlines) -> Result<(), Error> {
        let name = endpoint.to_string();
        if endpoint.is_master() {
            return Err(Error::InvalidArgument {
                what: "endpoint",
                value: name,
                why: "is a master socket: certificate writes go to a stats socket",
            });
        }
        let text = self.text();
        if self.line().len() + 1 >= MAX_LINE {
            return Err(Error::InvalidArgument {
                what: "certificate command",
                value: self.line(),
                why: "is 16,384 bytes or longer with its newline (HAProxy's tune.bufsize)",
            });
        }
        let mut stream = connect(endpoint, &timeouts).await?;
        let deadline = Instant::now() + timeouts.reply;
        match timeout_at(deadline, stream.write_all(text.as_bytes())).await {
            Ok(Ok(())) => {}
            Ok(Err(source)) => {
                return Err(Error::Io {
                    endpoint: name,
                    source,
                })
            }
            Err(_) => {
                return Err(Error::Timeout {
                    endpoint: name,
                    during: "sending a command",
                    after: timeouts.reply,
                })
            }
        }
        let mut codec = ReplyCodec::new(Framing::OneShot);
        let mut buf = BytesMut::new();
        let frame = read_frame(&mut stream, &mut buf, &mut codec, &name, timeouts.reply).await?;
        self.check_reply(&frame.body)
    }
}
