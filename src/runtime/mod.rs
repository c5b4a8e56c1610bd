//! The HAProxy runtime API client: stats sockets (unix or TCP) and the master CLI.
//!
//! Layers, bottom up:
//! - [`endpoint`]: where to connect (unix path, TCP address, master socket + target worker);
//! - [`codec`]: splits the byte stream into one reply per command, per framing mode
//!   (one-shot = EOF, worker prompt `> `, master prompt `master> ` / `<pid>> `), tells a
//!   whole one-shot reply from a cut one, and holds the master's framing quirks;
//! - [`connection`]: the stream, connect deadlines, one framed read, the line written;
//! - [`command`]: one file per command family; each command a type with its line, reply
//!   type, parser (pure: no I/O) and idempotency, its arguments validated or escaped so no
//!   value can inject a second command or a line break;
//! - [`parse`]: what a reply is (empty, data, info, refusal), and the untyped [`parse::Parsed`]
//!   value of any reply (for `exec --json` and the untyped [`command::Command`]);
//! - [`reply`], [`version`]: one matched reply; the HAProxy version and what it does;
//! - [`session`], [`oneshot`]: a persistent connection carrying many commands (typed `run`,
//!   `Batch`, untyped `batch`), deadlines, reconnects; one connection per command;
//! - [`master`]: `show proc` and a confirmed `reload`;
//! - [`error`]: typed errors separating *HAProxy refused* from *the transport failed*.
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
