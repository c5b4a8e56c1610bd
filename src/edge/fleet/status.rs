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
    /// `CANARY DISAGREES across edges on ENV: a=green 25 % b=0 %`, one line per env whose
    /// canary percent differs between edges (an edge without one counts as 0 %).
    pub canary_drift: Vec<String>,
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
        let disagree = !self.drift.is_empty() || !self.canary_drift.is_empty();
        if disagree || !self.open_transactions.is_empty() || edge_problems {
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
    let canary_drift = canary_drift(&edges);
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
        canary_drift,
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

/// One line per env whose canary (color and percent) differs between the reached edges; an
/// edge without a canary of the env is at 0 %.
pub fn canary_drift(edges: &[EdgeStatusEntry]) -> Vec<String> {
    let reached: Vec<(&str, &EdgeSummary)> = edges
        .iter()
        .filter_map(|e| Some((e.edge.as_str(), e.summary.as_ref()?)))
        .collect();
    let mut envs: Vec<&str> = reached
        .iter()
        .flat_map(|(_, s)| s.canaries.iter().map(|c| c.env.as_str()))
        .collect();
    envs.sort_unstable();
    envs.dedup();
    let mut out = Vec::new();
    for env in envs {
        let sides: Vec<(&str, Option<(Color, u8)>)> = reached
            .iter()
            .map(|(edge, s)| {
                let c = s.canaries.iter().find(|c| c.env == env);
                (*edge, c.map(|c| (c.color, c.percent)))
            })
            .collect();
        if sides.windows(2).all(|w| w[0].1 == w[1].1) {
            continue;
        }
        let each: Vec<String> = sides
            .iter()
            .map(|(edge, c)| match c {
                Some((color, percent)) => format!("{edge}={color} {percent} %"),
                None => format!("{edge}=0 %"),
            })
            .collect();
        out.push(format!(
            "CANARY DISAGREES across edges on {env}: {}; `vezasock canary --fleet … {env} \
             --abort` puts every edge back to 0 %",
            each.join(" ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edge::deploy::canary::InProgress;

    fn edge(name: &str, canary: Option<u8>) -> EdgeStatusEntry {
        let canaries = canary
            .map(|percent| InProgress {
                env: "staging".into(),
                color: Color::Green,
                percent,
                running: true,
            })
            .into_iter()
            .collect();
        EdgeStatusEntry {
            edge: name.into(),
            summary: Some(EdgeSummary {
                canaries,
                ..EdgeSummary::default()
            }),
            status: None,
            error: None,
            kind: None,
        }
    }

    /// Edges at one percent agree; one edge at another (or at 0 %) is a loud line, exit 6.
    #[test]
    fn edges_at_different_canary_percents_disagree() {
        assert!(canary_drift(&[edge("a", Some(25)), edge("b", Some(25))]).is_empty());
        assert!(canary_drift(&[edge("a", None), edge("b", None)]).is_empty());
        let lines = canary_drift(&[edge("a", Some(25)), edge("b", None), edge("c", Some(25))]);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with(
                "CANARY DISAGREES across edges on staging: a=green 25 % b=0 % c=green 25 %"
            ),
            "{lines:?}"
        );
        let status = FleetStatus {
            edges: Vec::new(),
            drift: Vec::new(),
            canary_drift: lines,
            open_transactions: Vec::new(),
        };
        assert_eq!(status.exit(), Exit::Drift);
    }
}
