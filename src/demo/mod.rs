//! `vezasock demo` and the local edge it runs: real HAProxy, the embedded topology pointed at
//! loopback backends that answer with their env, component and color.

pub mod backend;
pub mod edge;
pub mod find;
pub mod http;
pub mod install;
pub mod load;
pub mod run;

pub use edge::{LocalEdge, LocalEdgeError};
