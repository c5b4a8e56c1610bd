//! The HAProxy runtime API client: stats sockets (unix or TCP) and the master CLI.
//!
//! Layers, bottom up; a module uses only the ones below it (no import cycle: `tests/layout.rs`):
//! - [`error`], [`parse`], [`endpoint`], [`version`]: typed errors separating *HAProxy
//!   refused* from *the transport failed*; what a reply is (empty, data, info, refusal) and
//!   the line splitter every parser shares; where to connect (unix path, TCP address, master
//!   socket + target worker); the HAProxy version and what it does;
//! - [`codec`]: splits the byte stream into one reply per command, per framing mode
//!   (one-shot = EOF, worker prompt `> `, master prompt `master> ` / `<pid>> `), tells a
//!   whole one-shot reply from a cut one, and holds the master's framing quirks;
//! - [`command`]: one file per command family; each command a type with its line, reply
//!   type, parser (pure: no I/O) and idempotency, its arguments validated or escaped so no
//!   value can inject a second command or a line break; [`command::raw`] is the operator's
//!   free line (`vezasock exec`) and the untyped value of any reply;
//! - [`connection`], [`reply`]: the stream, connect deadlines, one framed read, the line
//!   written; one reply matched to the command that asked for it;
//! - [`oneshot`]: one connection per command (and the certificate writes, which carry a
//!   payload);
//! - [`master`]: `show proc` and a confirmed `reload`;
//! - [`session`]: a persistent connection carrying many commands (typed `run`, `run_each`,
//!   `Batch`; an operator's lines), deadlines, reconnects; its `reload` is [`master`]'s.
//!
//! The reply grammar these follow is written down in `grammar/README.md`.

pub mod codec;
pub mod command;
pub mod connection;
pub mod endpoint;
pub mod error;
pub mod master;
pub mod oneshot;
pub mod parse;
pub mod reply;
pub mod session;
pub mod version;

pub use error::Error;
