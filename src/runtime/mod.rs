//! The HAProxy runtime API client: stats sockets (unix or TCP) and the master CLI.
//!
//! Layers, bottom up:
//! - [`endpoint`]: where to connect (unix path, TCP address, master socket + target worker);
//! - [`codec`]: splits the byte stream into one reply per command, per framing mode
//!   (one-shot = EOF, worker prompt `> `, master prompt `master> ` / `<pid>> `);
//! - [`parse`]: pure `nom` parsers from reply bytes to owned, typed values (no I/O);
//! - [`command`]: typed commands whose arguments are validated or escaped, so no value can
//!   inject a second command or a line break;
//! - [`session`]: a persistent connection carrying many commands, pipelined batches with every
//!   reply matched and checked, deadlines, version and capability detection;
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
