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
    STARTED.get_or_init(crate::state::time::now_rfc3339);
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

/// The end of every command that changes the edge, and of `status`: rewrites the metrics
/// textfile when one is configured (`edge::metrics`). A failure is a warning on stderr and
/// never changes the command's exit code: the metrics describe the edge, they are not part of
/// the change.
pub(crate) fn after(rt: &tokio::runtime::Runtime, edge: &Edge, command: &str) {
    notify(edge, command);
    if edge.topology.metrics_textfile.is_none() {
        return;
    }
    if let Err(e) = rt.block_on(crate::edge::metrics::write(edge)) {
        eprintln!("vezasock {command}: warning: the metrics textfile was not written: {e}");
    }
}

/// When this command started (RFC 3339): its journal lines are the ones from then with its pid.
static STARTED: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Posts this command's events to the webhook, if one is configured (`edge::notify`). A
/// delivery that fails is a warning and a `notify failed` journal line, never an exit code.
fn notify(edge: &Edge, command: &str) {
    use crate::edge::notify::{events, send};
    use crate::state::{Action, Operation, Phase};
    use crate::topology::webhook::Webhook;
    let Some(target) = edge
        .topology
        .notify_webhook
        .as_deref()
        .and_then(|u| Webhook::parse(u).ok())
    else {
        return;
    };
    let Some(since) = STARTED.get() else { return };
    let journal = edge
        .state
        .journal_read()
        .map(|r| r.entries)
        .unwrap_or_default();
    let list = events(&edge.topology.name, &journal, std::process::id(), since);
    if list.is_empty() {
        return;
    }
    let ca_file = edge.topology.notify_ca_file.as_deref();
    if let Err((sent, why)) = send(&target, ca_file, &list) {
        let detail = format!(
            "the webhook {} took {sent} of {} event(s): {why}",
            target.shown(),
            list.len()
        );
        eprintln!("vezasock {command}: warning: {detail}");
        let op = Operation::new(Action::Notify, None, None, None, &crate::state::who());
        let _ = edge.state.journal_record(&op, Phase::Failed, Some(&detail));
    }
}
