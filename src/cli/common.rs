//! What every edge command does first: start its async runtime and load the edge, printing
//! the error and mapping it to its exit code when that fails.

use super::args::TopologyArgs;
use super::exit::Exit;
use crate::edge::{Edge, EdgeError};

/// A single-threaded async runtime for one command; failing to start one is exit 3.
pub(crate) fn runtime(command: &str) -> Result<tokio::runtime::Runtime, Exit> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("vezasock {command}: cannot start the async runtime: {e}");
            Exit::Unreachable
        })
}

/// The edge from the topology flags; a bad topology is exit 2.
pub(crate) fn load_edge(command: &str, args: &TopologyArgs) -> Result<Edge, Exit> {
    args.load().map(Edge::new).map_err(|e| {
        eprintln!("vezasock {command}: {e}");
        Exit::BadInput
    })
}

/// The async runtime and the edge a command needs, in that order (the preamble of every edge
/// command).
pub(crate) fn runtime_and_edge(
    command: &str,
    args: &TopologyArgs,
) -> Result<(tokio::runtime::Runtime, Edge), Exit> {
    Ok((runtime(command)?, load_edge(command, args)?))
}

/// Prints an edge error on stderr and returns its exit code.
pub(crate) fn fail(command: &str, error: &EdgeError) -> Exit {
    super::finish::said(command, error)
}
