//! `status --fleet`: every edge's status side by side, and the env colors the edges disagree
//! on.

use futures::future::join_all;
use serde::Serialize;

use super::member::Member;
use super::protocol::EdgeSummary;
use crate::edge::{EdgeError, ErrorKind};
use crate::exit::Exit;
use crate::topology::fleet::Fleet;
use crate::topology::Color;

/// One edge in a fleet status.
#[derive(Debug, Clone, Serialize)]
pub struct EdgeStatusEntry {
    pub edge: String,
    pub summary: Option<EdgeSummary>,
    pub status: Option<serde_json::Value>,
    pub error: Option<String>,
    /// The error's kind (an edge not reached: unreachable).
    #[serde(skip)]
    pub kind: Option<ErrorKind>,
}

/// The fleet side by side.
#[derive(Debug, Clone, Serialize)]
pub struct FleetStatus {
    pub edges: Vec<EdgeStatusEntry>,
    /// `DRIFT across edges on ENV: a=green b=blue`, one line per env.
    pub drift: Vec<String>,
    /// Fleet transactions the journal has not closed (a coordinator that died), then each
    /// edge's open transaction (`on edge NAME: transaction ID …`, also one staged there with
    /// `txn prepare`).
    pub open_transactions: Vec<String>,
}

impl FleetStatus {
    /// Exit 6 on drift across or within edges and on open transactions; else 3 when an edge
    /// was not reached; else 0.
    pub fn exit(&self) -> Exit {
        let edge_problems = self
            .edges
            .iter()
            .any(|e| e.summary.as_ref().is_some_and(|s| !s.problems.is_empty()));
        if !self.drift.is_empty() || !self.open_transactions.is_empty() || edge_problems {
            Exit::Drift
        } else if self.edges.iter().any(|e| e.error.is_some()) {
            Exit::Unreachable
        } else {
            Exit::Ok
        }
    }
}

/// Reads every edge's status in parallel and compares their colors.
pub async fn status(fleet: &Fleet, members: &mut [Member]) -> Result<FleetStatus, EdgeError> {
    let results = join_all(members.iter_mut().map(|m| async move {
        let name = m.name().to_string();
        (name, m.status().await)
    }))
    .await;
    let edges: Vec<EdgeStatusEntry> = results
        .into_iter()
        .map(|(edge, r)| match r {
            Ok((summary, status)) => EdgeStatusEntry {
                edge,
                summary: Some(summary),
                status: Some(status),
                error: None,
                kind: None,
            },
            Err(e) => EdgeStatusEntry {
                edge,
                summary: None,
                status: None,
                kind: Some(e.kind()),
                error: Some(e.to_string()),
            },
        })
        .collect();
    let drift = cross_edge_drift(&edges);
    let mut open_transactions: Vec<String> = super::journal(fleet)
        .open_operations()?
        .into_iter()
        .map(|o| o.to_string())
        .collect();
    // Each edge's own open transaction too: one staged by `txn prepare` there has no line in
    // the fleet journal.
    open_transactions.extend(edges.iter().filter_map(|e| {
        let t = e.summary.as_ref()?.transaction.as_ref()?;
        Some(format!("on edge {}: {t}", e.edge))
    }));
    Ok(FleetStatus {
        edges,
        drift,
        open_transactions,
    })
}

/// One edge's live and recorded color of an env.
type Side = (String, Option<Color>, Option<Color>);

/// One line per env whose live or recorded color differs between edges.
fn cross_edge_drift(edges: &[EdgeStatusEntry]) -> Vec<String> {
    let mut envs: Vec<String> = Vec::new();
    for s in edges.iter().filter_map(|e| e.summary.as_ref()) {
        for c in &s.envs {
            if !envs.contains(&c.env) {
                envs.push(c.env.clone());
            }
        }
    }
    let mut out = Vec::new();
    for env in envs {
        let sides: Vec<Side> = edges
            .iter()
            .filter_map(|e| {
                let s = e.summary.as_ref()?;
                let c = s.envs.iter().find(|c| c.env == env)?;
                Some((e.edge.clone(), c.live, c.recorded))
            })
            .collect();
        let differ = |f: fn(&Side) -> Option<Color>| sides.windows(2).any(|w| f(&w[0]) != f(&w[1]));
        if differ(|s| s.1) || differ(|s| s.2) {
            let word = |c: Option<Color>| c.map_or("?", Color::as_str);
            let each: Vec<String> = sides
                .iter()
                .map(|(e, live, rec)| {
                    if live == rec {
                        format!("{e}={}", word(*live))
                    } else {
                        format!("{e}={} (recorded {})", word(*live), word(*rec))
                    }
                })
                .collect();
            out.push(format!("DRIFT across edges on {env}: {}", each.join(" ")));
        }
    }
    out
}
