//! Errors of the runtime client.
//!
//! The split that matters to callers (as in redis-rs): **HAProxy refused** a command
//! ([`Error::Refused`]; never retried, the command is wrong or not allowed) versus **the
//! transport failed** or **timed out** (only idempotent reads may be retried: see
//! [`crate::runtime::command::RuntimeCommand::idempotent`] and the session's retry).

use std::time::Duration;

use super::parse::ParseError;

/// Everything that can go wrong talking to HAProxy.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// HAProxy answered with an error (severity `[0]`–`[3]`, or one of its known error texts).
    /// `index` is the 1-based position of the command in a batch, when it was part of one.
    #[error("HAProxy refused {}`{command}`: {message}", index.map(|i| format!("command {i} ")).unwrap_or_default())]
    Refused {
        command: String,
        index: Option<usize>,
        message: String,
    },

    /// A command argument that cannot be sent safely (would break the line or inject a command).
    #[error("invalid {what} {value:?}: {why}")]
    InvalidArgument {
        what: &'static str,
        value: String,
        why: &'static str,
    },

    /// Could not connect to the socket.
    #[error("cannot connect to {endpoint}: {source}")]
    Connect {
        endpoint: String,
        #[source]
        source: std::io::Error,
    },

    /// Reading or writing the socket failed after connecting.
    #[error("socket error on {endpoint}: {source}")]
    Io {
        endpoint: String,
        #[source]
        source: std::io::Error,
    },

    /// A deadline passed (connect, or waiting for a reply).
    #[error("timed out after {after:?} while {during} on {endpoint}")]
    Timeout {
        endpoint: String,
        during: &'static str,
        after: Duration,
    },

    /// HAProxy closed the connection before the reply was complete.
    #[error("{endpoint} closed the connection {}", if *received == 0 { "before replying".to_string() } else { format!("in the middle of a reply ({received} bytes received)") })]
    Closed { endpoint: String, received: usize },

    /// A reply larger than the client accepts.
    #[error("reply from {endpoint} exceeds {limit} bytes")]
    TooLarge { endpoint: String, limit: usize },

    /// Bytes that follow no framing HAProxy uses.
    #[error("protocol error on {endpoint}: {message}")]
    Protocol { endpoint: String, message: String },

    /// A reply that was framed correctly but does not parse as the command's reply.
    #[error("{command}: {source}")]
    Parse {
        command: String,
        #[source]
        source: ParseError,
    },
}

impl Error {
    /// HAProxy itself said no: retrying the same command cannot help.
    pub fn is_refused(&self) -> bool {
        matches!(self, Error::Refused { .. })
    }

    /// A deadline passed.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }

    /// The connection failed or dropped (connect, I/O, early close).
    pub fn is_connection_dropped(&self) -> bool {
        matches!(
            self,
            Error::Connect { .. } | Error::Io { .. } | Error::Closed { .. }
        )
    }
}
