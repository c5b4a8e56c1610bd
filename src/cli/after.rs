//! The end of every command that changes an edge, and of `status`: the command's events posted
//! to the webhook and the metrics textfile rewritten, each when the edge's topology names one
//! (`edge::notify`, `edge::metrics`). A failure is a warning on stderr (and, for the webhook, a
//! `notify failed` journal line), never the command's exit code: they describe the change, they
//! are not part of it.

use crate::edge::notify::{events, send, Event};
use crate::edge::Edge;
use crate::state::{Action, Operation, Phase};
use crate::topology::webhook::Webhook;

/// When this command started (RFC 3339): its journal lines are the ones from then with its pid.
static STARTED: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Notes the command's start, before it reads or changes anything (`cli::main`): the events
/// posted at its end are the journal lines this process wrote from then on, whichever edges
/// (one, a fleet's local ones, or an edge-agent's) it served.
pub(crate) fn mark_started() {
    STARTED.get_or_init(crate::state::time::now_rfc3339);
}

/// One edge a command served.
pub(crate) struct Served<'a> {
    pub edge: &'a Edge,
    /// The name a fleet file gives it (the edges of a fleet often share one topology name):
    /// its events carry it and its warnings say it. `None` for the edge of an edge command.
    pub fleet_name: Option<&'a str>,
}

impl Served<'_> {
    fn name(&self) -> &str {
        self.fleet_name.unwrap_or(&self.edge.topology.name)
    }
}

/// The end of an edge command (`command`: its name in warnings).
pub(crate) fn after(rt: &tokio::runtime::Runtime, edge: &Edge, command: &str) {
    after_edges(
        rt,
        command,
        &[Served {
            edge,
            fleet_name: None,
        }],
    );
}

/// The end of a command that served `edges`: a fleet command's local edges, or an edge-agent's.
pub(crate) fn after_edges(rt: &tokio::runtime::Runtime, command: &str, edges: &[Served]) {
    notify(command, edges);
    for served in edges {
        if served.edge.topology.metrics_textfile.is_none() {
            continue;
        }
        if let Err(e) = rt.block_on(crate::edge::metrics::write(served.edge)) {
            let on = match served.fleet_name {
                Some(name) => format!("edge {name}: "),
                None => String::new(),
            };
            eprintln!("vezasock {command}: warning: {on}the metrics textfile was not written: {e}");
        }
    }
}

/// The events for one webhook: every served edge's that names it, in the edges' order.
struct Delivery<'a> {
    url: &'a str,
    ca_file: Option<&'a std::path::Path>,
    target: Webhook,
    events: Vec<Event>,
    edges: Vec<&'a Edge>,
}

/// Posts the command's events, one delivery per webhook within one [`BUDGET`](crate::edge::notify::BUDGET)
/// (a fleet of edges that hang costs one budget, not one each). A delivery that fails is a
/// warning and a `notify failed` journal line on each of its edges.
fn notify(command: &str, edges: &[Served]) {
    let Some(since) = STARTED.get() else { return };
    let mut deliveries: Vec<Delivery> = Vec::new();
    for served in edges {
        let topology = &served.edge.topology;
        let Some(url) = topology.notify_webhook.as_deref() else {
            continue;
        };
        let Ok(target) = Webhook::parse(url) else {
            continue;
        };
        let journal = served
            .edge
            .state
            .journal_read()
            .map(|r| r.entries)
            .unwrap_or_default();
        let list = events(served.name(), &journal, std::process::id(), since);
        if list.is_empty() {
            continue;
        }
        let ca_file = topology.notify_ca_file.as_deref();
        match deliveries
            .iter_mut()
            .find(|d| d.url == url && d.ca_file == ca_file)
        {
            Some(d) => {
                d.events.extend(list);
                d.edges.push(served.edge);
            }
            None => deliveries.push(Delivery {
                url,
                ca_file,
                target,
                events: list,
                edges: vec![served.edge],
            }),
        }
    }
    for d in deliveries {
        deliver(command, &d);
    }
}

/// One delivery; its failure said on stderr and in each of its edges' journals.
fn deliver(command: &str, d: &Delivery) {
    let Err((sent, why)) = send(&d.target, d.ca_file, &d.events) else {
        return;
    };
    let detail = format!(
        "the webhook {} took {sent} of {} event(s): {why}",
        d.target.shown(),
        d.events.len()
    );
    eprintln!("vezasock {command}: warning: {detail}");
    let op = Operation::new(Action::Notify, None, None, None, &crate::state::who());
    for edge in &d.edges {
        let _ = edge.state.journal_record(&op, Phase::Failed, Some(&detail));
    }
}
