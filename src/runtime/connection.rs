//! The connection to one HAProxy socket, apart from what is sent on it: the unix or TCP
//! stream, connecting under a deadline, reading one framed reply (with the master's quirks),
//! the line actually written (master routing prefixes), and an open interactive connection
//! that pipelines lines while it reads their replies.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio::time::{timeout_at, Instant};
use tokio_util::codec::{Decoder, Encoder};

use super::codec::{CodecError, Frame, Framing, ReplyCodec};
use super::command::{split_commands, Wire};
use super::endpoint::{Endpoint, Socket};
use super::Error;

/// Deadlines for connecting and for each reply (`session::Deadlines` is its old name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// Connecting to the socket (through the master: retries while it re-executes).
    pub connect: Duration,
    /// Waiting for one reply, from the write (or the previous reply of a batch) to its end.
    pub reply: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines {
            connect: Duration::from_secs(2),
            reply: Duration::from_secs(10),
        }
    }
}

/// A unix or TCP stream.
#[derive(Debug)]
pub(crate) enum Stream {
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
pub(crate) async fn connect(endpoint: &Endpoint, timeouts: &Deadlines) -> Result<Stream, Error> {
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
pub(crate) fn codec_error(endpoint: &str, error: CodecError) -> Error {
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

/// How long a one-shot master call waits for EOF after a bad-target error line.
const TARGET_ERROR_GRACE: Duration = Duration::from_millis(200);

/// Reads one reply within `wait`. EOF before any reply is `Closed { received: 0 }`.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
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
            Err(_) if codec.lone_target_error(buf) => {
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
        if read > 0 && codec.lone_target_error(buf) {
            // Seen in the integration suite on 3.0 and 3.2: after this one-line answer to a
            // one-shot `@<bad target> …` the master sometimes neither closes nor says more,
            // even after our half-close. The line is the whole answer; don't wait for EOF.
            deadline = deadline.min(Instant::now() + TARGET_ERROR_GRACE);
        }
        if read == 0 {
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
pub(crate) fn push_line(out: &mut BytesMut, line: &str, endpoint: &str) -> Result<(), Error> {
    ReplyCodec::new(Framing::OneShot)
        .encode(line, out)
        .map_err(|e| codec_error(endpoint, e))
}

/// The line actually written for `command` on `endpoint`: worker commands through the master
/// get the target prefix (every `;` part of a raw line, since the master splits chains
/// itself).
pub(crate) fn wire_line(endpoint: &Endpoint, command: &Wire) -> Result<String, Error> {
    if command.master && !command.raw && !endpoint.is_master() {
        return Err(Error::InvalidArgument {
            what: "endpoint",
            value: endpoint.to_string(),
            why: "this is a master CLI command: use a master:<socket> endpoint",
        });
    }
    let Some(prefix) = endpoint.worker_prefix() else {
        return Ok(command.line.clone());
    };
    if command.master {
        return Ok(command.line.clone());
    }
    if !command.raw {
        return Ok(format!("{prefix} {}", command.line));
    }
    Ok(split_commands(&command.line)
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
        .join(";"))
}

/// An open interactive connection.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) stream: Stream,
    pub(crate) buf: BytesMut,
    pub(crate) codec: ReplyCodec,
}

/// How much to write at once in a batch: large enough for few syscalls, bounded so a batch
/// of thousands of commands never builds one huge buffer.
const WRITE_CHUNK: usize = 64 * 1024;

impl Connection {
    /// True when HAProxy closed the connection (or sent bytes nobody asked for, which leaves
    /// the session out of step): either way it must not be used.
    pub(crate) fn is_stale(&mut self) -> bool {
        if !self.buf.is_empty() {
            return true;
        }
        let mut probe = [0u8; 64];
        !matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Writes `lines` (in chunks) while reading `frames[i]` replies for line `i`, each within
    /// `wait` of the previous one. Reading and writing run together, so a long batch of big
    /// replies cannot fill both socket buffers and stall.
    pub(crate) async fn exchange(
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
