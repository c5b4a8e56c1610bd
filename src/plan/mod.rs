//! What an `apply` would do: compare the rendered edge with what is live, and answer nothing,
//! a few runtime edits (map entries, and servers whose address alone changed), or a reload with
//! its reasons in words. Every plan but a takeover also lists each change with how it reaches
//! the edge (`via: runtime` or `via: reload`) and why ([`Change`]).
//!
//! A server whose address or port changed, with nothing else of the shape changed, is a
//! runtime step (`set server <b>/<s> addr <ip> port <port>`; apply then writes the config
//! for the next reload). It stays on the reload path when its new address is a host name
//! (`set server … addr` takes an IP; HAProxy resolves names when it starts) and when any
//! other part of the shape changed too (the new address then comes with that reload).
//!
//! Pure: it takes plain values. Reading the live config, its shape summary and the map files
//! is the caller's job (`cli::plan::read_live`), so every case here is unit-tested on values.
//! Since a reload re-reads the map files, a reload plan carries no runtime steps: the caller
//! writes the maps with the config.

pub mod pool;
pub mod takeover;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::render::shape::ServerMove;
use crate::render::{Rendered, ShapeSummary};
use crate::topology::Color;

/// What is live on the edge, as read by the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LiveView {
    /// The fingerprint the live config declares on its first line; `None` = no live config,
    /// or one vezasock did not render.
    pub fingerprint: Option<String>,
    /// The live shape summary (`<config>.shape.json`), when present.
    pub summary: Option<ShapeSummary>,
    /// The live hosts map: host → env.
    pub hosts: BTreeMap<String, String>,
    /// The live active color map: env → color.
    pub colors: BTreeMap<String, Color>,
    /// `major.minor` of the running HAProxy (what `add server` takes depends on it); `None`
    /// when it was not asked or did not answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub haproxy_version: Option<(u32, u32)>,
}

/// One runtime map edit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum RuntimeStep {
    /// `add map hosts.map <host> <env>`.
    AddHost { host: String, env: String },
    /// `set map hosts.map <host> <env>`.
    MoveHost {
        host: String,
        from: String,
        to: String,
    },
    /// `del map hosts.map <host>`.
    RemoveHost { host: String, env: String },
    /// `set map` (or `add map` when absent) on active-color.map.
    SetColor {
        env: String,
        from: Option<Color>,
        to: Color,
    },
    /// `del map active-color.map <env>`: an env that no longer exists or has no colors.
    RemoveColor { env: String, color: Color },
    /// `set server <backend>/<server> addr <ip> port <port>`: only its address changed.
    MoveServer {
        backend: String,
        server: String,
        from: String,
        to: String,
    },
    /// `add backend <backend> from <from>` then `publish backend` (3.4+): a new env's or
    /// component's backend; its servers are `AddServer` steps.
    AddBackend { backend: String, from: String },
    /// `add server <backend>/<server> <address> …`: a server added to a pool.
    AddServer {
        backend: String,
        server: String,
        address: String,
    },
    /// drain, maint, `shutdown sessions`, `del server`: a server removed from a pool.
    RemoveServer {
        backend: String,
        server: String,
        address: String,
    },
}

impl std::fmt::Display for RuntimeStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RuntimeStep::AddHost { host, env } => write!(f, "add host {host} to env {env}"),
            RuntimeStep::MoveHost { host, from, to } => {
                write!(f, "move host {host} from env {from} to env {to}")
            }
            RuntimeStep::RemoveHost { host, env } => {
                write!(f, "remove host {host} (was env {env})")
            }
            RuntimeStep::SetColor {
                env,
                from: Some(from),
                to,
            } => {
                write!(f, "set env {env} active color from {from} to {to}")
            }
            RuntimeStep::SetColor {
                env,
                from: None,
                to,
            } => write!(f, "set env {env} active color to {to}"),
            RuntimeStep::RemoveColor { env, color } => {
                write!(f, "remove env {env} from the color map (was {color})")
            }
            RuntimeStep::MoveServer {
                backend,
                server,
                from,
                to,
            } => write!(f, "move server {backend}/{server} from {from} to {to}"),
            RuntimeStep::AddBackend { backend, from } => {
                write!(f, "add backend {backend} from {from}")
            }
            RuntimeStep::AddServer {
                backend,
                server,
                address,
            } => write!(f, "add server {backend}/{server} at {address}"),
            RuntimeStep::RemoveServer {
                backend,
                server,
                address,
            } => write!(f, "remove server {backend}/{server} (at {address})"),
        }
    }
}

/// How a change reaches the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// Over the runtime API, no reload (written through to disk).
    Runtime,
    /// Written into the config (or maps) and read by the reload.
    Reload,
}

impl std::fmt::Display for Via {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Via::Runtime => "runtime",
            Via::Reload => "reload",
        })
    }
}

/// One change of a plan: what changes, how it reaches the edge, and why that way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub change: String,
    pub via: Via,
    pub reason: String,
}

const WHY_MAP: &str = "a map entry: the map file is rewritten, the runtime map replaced in one \
                       transaction (prepare/commit map)";
const WHY_MOVE: &str = "only its address changed: `set server … addr … port …`, then the \
                        config and the server-state file are rewritten for the next reload";
const WHY_SHAPE: &str = "the runtime API cannot change this part of the config";
const WHY_NAME: &str = "its new address is a host name, and `set server … addr` takes an IP \
                        (HAProxy resolves names when it starts)";
const WHY_REMOVED: &str = "a removed env or component is a reload: its backends and their \
                           servers go with the old config";
const WHY_WITH_RELOAD: &str = "comes with the reload that the other changes need";
const WHY_MAP_RELOAD: &str = "the map files are written with the config; the reload reads them";

/// The outcome of planning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "plan", rename_all = "kebab-case")]
pub enum Plan {
    /// Live already matches.
    Nothing,
    /// Same shape, or only server addresses moved; these steps bring runtime and disk to the
    /// desired state.
    Runtime {
        steps: Vec<RuntimeStep>,
        changes: Vec<Change>,
    },
    /// The shape differs: render, check, swap and reload.
    Reload {
        reasons: Vec<String>,
        changes: Vec<Change>,
        /// Servers added to or removed from a pool that the running HAProxy refuses over the
        /// runtime API, each with why, when nothing else needs the reload: `apply` then
        /// refuses unless `--reload` is given.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        refused_at_runtime: Vec<String>,
    },
    /// The live config is not vezasock's: take it over with one checked, verified reload
    /// (the reload path), keeping each env's color as decided in `colors`. `undecided` not
    /// empty: apply refuses, naming what is missing. Built by `edge::apply` (it needs the
    /// runtime); [`plan`] itself answers `Reload` for a config without a fingerprint.
    Takeover {
        reasons: Vec<String>,
        colors: Vec<takeover::ColorDecision>,
        undecided: Vec<String>,
        steps: Vec<String>,
    },
}

impl Plan {
    /// Each change with its `via` and reason (empty for nothing and a takeover).
    pub fn changes(&self) -> &[Change] {
        match self {
            Plan::Runtime { changes, .. } | Plan::Reload { changes, .. } => changes,
            Plan::Nothing | Plan::Takeover { .. } => &[],
        }
    }

    /// The servers a runtime plan moves (`set server … addr`).
    pub fn server_moves(&self) -> Vec<ServerMove> {
        let Plan::Runtime { steps, .. } = self else {
            return Vec::new();
        };
        steps
            .iter()
            .filter_map(|s| match s {
                RuntimeStep::MoveServer {
                    backend,
                    server,
                    from,
                    to,
                } => Some(ServerMove {
                    backend: backend.clone(),
                    server: server.clone(),
                    from: from.clone(),
                    to: to.clone(),
                }),
                _ => None,
            })
            .collect()
    }
}

/// Compares the desired edge with the live one.
pub fn plan(desired: &Rendered, live: &LiveView) -> Plan {
    let maps = map_steps(desired, live);
    let mut reasons = shape_reasons(desired, live);
    if reasons.is_empty() {
        if maps.is_empty() {
            return Plan::Nothing;
        }
        let changes = maps
            .iter()
            .map(|s| change(s, Via::Runtime, WHY_MAP))
            .collect();
        return Plan::Runtime {
            steps: maps,
            changes,
        };
    }
    if let Some(p) = pool_plan(desired, live, &maps) {
        return p;
    }
    let moves = address_moves(desired, live);
    let named: Vec<&ServerMove> = moves.iter().filter(|m| m.to_ip_port().is_none()).collect();
    if !moves.is_empty() && named.is_empty() {
        let mut changes: Vec<Change> = maps
            .iter()
            .map(|s| change(s, Via::Runtime, WHY_MAP))
            .collect();
        let mut steps = maps;
        for m in moves {
            let step = RuntimeStep::MoveServer {
                backend: m.backend,
                server: m.server,
                from: m.from,
                to: m.to,
            };
            changes.push(change(&step, Via::Runtime, WHY_MOVE));
            steps.push(step);
        }
        return Plan::Runtime { steps, changes };
    }
    for m in &named {
        reasons.push(format!(
            "server {}/{} moves to {}: {WHY_NAME}",
            m.backend, m.server, m.to
        ));
    }
    let changes = reload_changes(desired, live, &reasons, &maps, &[]);
    Plan::Reload {
        reasons,
        changes,
        refused_at_runtime: Vec::new(),
    }
}

/// The live summary when it belongs to the live config (else it says nothing about it).
fn trusted(live: &LiveView) -> Option<&ShapeSummary> {
    let summary = live.summary.as_ref()?;
    (live.fingerprint.as_deref() == Some(summary.fingerprint.as_str())).then_some(summary)
}

/// The plan when servers were added to or removed from pools and nothing else of the shape
/// changed but server addresses ([`pool`]): runtime steps when HAProxy takes every change,
/// else a reload that names what it refuses. `None` when it is not such a change.
fn pool_plan(desired: &Rendered, live: &LiveView, maps: &[RuntimeStep]) -> Option<Plan> {
    let summary = trusted(live)?;
    let pool = desired.summary.pool_changes(summary)?;
    let new = desired.summary.new_backends(summary);
    if pool.is_empty() && new.is_empty() {
        return None;
    }
    // A move and a pool change together: one reload (each alone goes over the runtime).
    if !desired.summary.server_moves(summary).is_empty() {
        return None;
    }
    let mut backends = Vec::new();
    let mut not_runtime = Vec::new();
    for (backend, options) in new {
        match pool::backend_source(&options, summary, live.haproxy_version) {
            Ok(from) => backends.push(RuntimeStep::AddBackend { backend, from }),
            Err(why) => not_runtime.push(format!("add backend {backend}: {why}")),
        }
    }
    let refused: Vec<String> = pool
        .iter()
        .filter_map(|c| {
            let why = pool::refusal(c, &pool, summary, live.haproxy_version)?;
            let verb = if c.added { "add" } else { "remove" };
            Some(format!("{verb} server {}/{}: {why}", c.backend, c.server))
        })
        .collect();
    // A new env or component takes the reload path as before 3.4 when any part of it cannot
    // go over the runtime (no `--reload` needed): the plan says why.
    if !not_runtime.is_empty() || (!backends.is_empty() && !refused.is_empty()) {
        not_runtime.extend(refused);
        let mut reasons = shape_reasons(desired, live);
        reasons.extend(not_runtime.iter().cloned());
        let changes = reload_changes(desired, live, &reasons, maps, &not_runtime);
        return Some(Plan::Reload {
            reasons,
            changes,
            refused_at_runtime: Vec::new(),
        });
    }
    if refused.is_empty() {
        let mut changes: Vec<Change> = maps
            .iter()
            .map(|s| change(s, Via::Runtime, WHY_MAP))
            .collect();
        let mut steps = maps.to_vec();
        for step in backends {
            changes.push(change(&step, Via::Runtime, pool::WHY_ADD_BACKEND));
            steps.push(step);
        }
        for c in pool {
            let (backend, server, address) = (c.backend, c.server, c.address);
            let (step, why) = if c.added {
                let s = RuntimeStep::AddServer {
                    backend,
                    server,
                    address,
                };
                (s, pool::WHY_ADD)
            } else {
                let s = RuntimeStep::RemoveServer {
                    backend,
                    server,
                    address,
                };
                (s, pool::WHY_REMOVE)
            };
            changes.push(change(&step, Via::Runtime, why));
            steps.push(step);
        }
        return Some(Plan::Runtime { steps, changes });
    }
    let mut reasons = shape_reasons(desired, live);
    reasons.extend(refused.iter().cloned());
    let changes = reload_changes(desired, live, &reasons, maps, &refused);
    Some(Plan::Reload {
        reasons,
        changes,
        refused_at_runtime: refused,
    })
}

fn change(step: &RuntimeStep, via: Via, reason: &str) -> Change {
    Change {
        change: step.to_string(),
        via,
        reason: reason.to_string(),
    }
}

/// The servers that moved when nothing but server addresses differs between the live config
/// (its trusted summary) and the desired one; empty otherwise.
fn address_moves(desired: &Rendered, live: &LiveView) -> Vec<ServerMove> {
    let (Some(live_fp), Some(summary)) = (&live.fingerprint, &live.summary) else {
        return Vec::new();
    };
    if summary.fingerprint != *live_fp || !desired.summary.same_but_addresses(summary) {
        return Vec::new();
    }
    desired.summary.server_moves(summary)
}

/// The changes of a reload plan: each shape difference, each moved server (by name: why it
/// cannot go over the runtime, else it comes with the reload), each map edit.
fn reload_changes(
    desired: &Rendered,
    live: &LiveView,
    reasons: &[String],
    maps: &[RuntimeStep],
    refused: &[String],
) -> Vec<Change> {
    let moves: Vec<ServerMove> = match &live.summary {
        Some(s) if live.fingerprint.as_deref() == Some(s.fingerprint.as_str()) => {
            desired.summary.server_moves(s)
        }
        _ => Vec::new(),
    };
    let mut changes = Vec::new();
    let details = match &live.summary {
        Some(s) if live.fingerprint.as_deref() == Some(s.fingerprint.as_str()) => {
            desired.summary.diff(s)
        }
        _ => reasons.to_vec(),
    };
    for d in details {
        let moved = moves.iter().find(|m| {
            d == format!(
                "server {}/{} moved from {} to {}",
                m.backend, m.server, m.from, m.to
            )
        });
        let reason = match moved {
            Some(m) if m.to_ip_port().is_none() => WHY_NAME.to_string(),
            Some(_) => WHY_WITH_RELOAD.to_string(),
            None => pool_reason(&d, refused).unwrap_or_else(|| WHY_SHAPE.to_string()),
        };
        changes.push(Change {
            change: d,
            via: Via::Reload,
            reason,
        });
    }
    changes.extend(maps.iter().map(|s| change(s, Via::Reload, WHY_MAP_RELOAD)));
    changes
}

/// The reason of a diff line that adds or removes a server: what HAProxy refuses for it (from
/// `refused`, `add|remove server <b>/<s>: <why>`), else that it comes with the reload.
fn pool_reason(line: &str, refused: &[String]) -> Option<String> {
    if let Some(name) = line
        .strip_prefix("backend ")
        .and_then(|l| l.strip_suffix(" added"))
    {
        let prefix = format!("add backend {name}: ");
        return Some(
            refused
                .iter()
                .find_map(|r| r.strip_prefix(&prefix))
                .map(|why| format!("not at runtime: {why}"))
                .unwrap_or_else(|| WHY_SHAPE.to_string()),
        );
    }
    if line.starts_with("backend ") && line.ends_with(" removed") {
        return Some(WHY_REMOVED.to_string());
    }
    let rest = line.strip_prefix("server ")?;
    let (name, verb) = if let Some((name, _)) = rest.split_once(" added at ") {
        (name, "add")
    } else {
        (rest.strip_suffix(" removed")?, "remove")
    };
    let prefix = format!("{verb} server {name}: ");
    Some(
        refused
            .iter()
            .find_map(|r| r.strip_prefix(&prefix))
            .map(|why| {
                format!(
                    "HAProxy refuses it at runtime: {why} (`apply --reload` takes the reload path)"
                )
            })
            .unwrap_or_else(|| WHY_WITH_RELOAD.to_string()),
    )
}

fn shape_reasons(desired: &Rendered, live: &LiveView) -> Vec<String> {
    let Some(live_fp) = &live.fingerprint else {
        return vec![
            "no live config rendered by vezasock (no shape fingerprint on its first line)"
                .to_string(),
        ];
    };
    if *live_fp == desired.fingerprint {
        return Vec::new();
    }
    let mut reasons = vec![format!(
        "shape fingerprint changed from {} to {}",
        short(live_fp),
        short(&desired.fingerprint)
    )];
    match &live.summary {
        // A summary that belongs to another config says nothing about this one.
        Some(s) if s.fingerprint == *live_fp => reasons.extend(desired.summary.diff(s)),
        Some(_) => reasons
            .push("the live shape summary does not match the live config; no details".to_string()),
        None => reasons.push("no live shape summary to compare with; no details".to_string()),
    }
    reasons
}

fn short(hex: &str) -> &str {
    hex.get(..12).unwrap_or(hex)
}

fn map_steps(desired: &Rendered, live: &LiveView) -> Vec<RuntimeStep> {
    let mut steps = Vec::new();
    for (host, env) in &desired.hosts {
        match live.hosts.get(host) {
            None => steps.push(RuntimeStep::AddHost {
                host: host.clone(),
                env: env.clone(),
            }),
            Some(l) if l != env => steps.push(RuntimeStep::MoveHost {
                host: host.clone(),
                from: l.clone(),
                to: env.clone(),
            }),
            Some(_) => {}
        }
    }
    for (host, env) in &live.hosts {
        if !desired.hosts.contains_key(host) {
            steps.push(RuntimeStep::RemoveHost {
                host: host.clone(),
                env: env.clone(),
            });
        }
    }
    for (env, color) in &desired.colors {
        let from = live.colors.get(env).copied();
        if from != Some(*color) {
            steps.push(RuntimeStep::SetColor {
                env: env.clone(),
                from,
                to: *color,
            });
        }
    }
    for (env, color) in &live.colors {
        if !desired.colors.contains_key(env) {
            steps.push(RuntimeStep::RemoveColor {
                env: env.clone(),
                color: *color,
            });
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::shape::{fingerprint, FINGERPRINT_PREFIX};

    const BODY: &str = "global\n    master-worker\nbackend be_staging_api_blue\n    server blue_1 10.0.0.1:8080 check\n";

    fn rendered(body: &str, hosts: &[(&str, &str)], colors: &[(&str, Color)]) -> Rendered {
        let fp = fingerprint(body);
        let config = format!("{FINGERPRINT_PREFIX}{fp}\n{body}");
        Rendered {
            summary: ShapeSummary::from_config(&config),
            config,
            hosts_map: String::new(),
            active_color_map: String::new(),
            hosts: hosts
                .iter()
                .map(|(h, e)| (h.to_string(), e.to_string()))
                .collect(),
            colors: colors.iter().map(|(e, c)| (e.to_string(), *c)).collect(),
            fingerprint: fp,
        }
    }

    fn live_of(r: &Rendered) -> LiveView {
        LiveView {
            fingerprint: Some(r.fingerprint.clone()),
            summary: Some(r.summary.clone()),
            hosts: r.hosts.clone(),
            colors: r.colors.clone(),
            haproxy_version: Some((3, 4)),
        }
    }

    #[test]
    fn same_everything_is_nothing() {
        let r = rendered(
            BODY,
            &[("staging.veza.fr", "staging")],
            &[("staging", Color::Blue)],
        );
        assert_eq!(plan(&r, &live_of(&r)), Plan::Nothing);
    }

    #[test]
    fn no_live_config_reloads() {
        let r = rendered(BODY, &[], &[]);
        assert!(matches!(
            plan(&r, &LiveView::default()),
            Plan::Reload { .. }
        ));
    }

    #[test]
    fn host_and_color_changes_are_runtime_steps() {
        let r = rendered(
            BODY,
            &[
                ("staging.veza.fr", "staging"),
                ("new.veza.fr", "staging"),
                ("veza.fr", "prod"),
            ],
            &[("staging", Color::Green), ("prod", Color::Blue)],
        );
        let mut live = live_of(&r);
        live.hosts.remove("new.veza.fr");
        live.hosts.insert("veza.fr".into(), "staging".into());
        live.hosts.insert("old.veza.fr".into(), "staging".into());
        live.colors.insert("staging".into(), Color::Blue);
        live.colors.remove("prod");
        live.colors.insert("gone".into(), Color::Green);
        let Plan::Runtime { steps, changes } = plan(&r, &live) else {
            panic!("expected runtime steps");
        };
        assert_eq!(
            steps,
            vec![
                RuntimeStep::AddHost {
                    host: "new.veza.fr".into(),
                    env: "staging".into()
                },
                RuntimeStep::MoveHost {
                    host: "veza.fr".into(),
                    from: "staging".into(),
                    to: "prod".into()
                },
                RuntimeStep::RemoveHost {
                    host: "old.veza.fr".into(),
                    env: "staging".into()
                },
                RuntimeStep::SetColor {
                    env: "prod".into(),
                    from: None,
                    to: Color::Blue
                },
                RuntimeStep::SetColor {
                    env: "staging".into(),
                    from: Some(Color::Blue),
                    to: Color::Green
                },
                RuntimeStep::RemoveColor {
                    env: "gone".into(),
                    color: Color::Green
                },
            ]
        );
        assert_eq!(changes.len(), steps.len());
        assert!(changes
            .iter()
            .all(|c| c.via == Via::Runtime && c.reason == WHY_MAP));
    }

    #[test]
    fn an_address_move_alone_is_a_runtime_step() {
        let live = rendered(BODY, &[("staging.veza.fr", "staging")], &[]);
        let r = rendered(
            &BODY.replace("10.0.0.1:8080", "10.0.0.9:9090"),
            &[("staging.veza.fr", "staging"), ("new.veza.fr", "staging")],
            &[],
        );
        let p = plan(&r, &live_of(&live));
        let Plan::Runtime { steps, changes } = &p else {
            panic!("expected runtime steps: {p:?}");
        };
        let moved = RuntimeStep::MoveServer {
            backend: "be_staging_api_blue".into(),
            server: "blue_1".into(),
            from: "10.0.0.1:8080".into(),
            to: "10.0.0.9:9090".into(),
        };
        assert_eq!(
            steps,
            &vec![
                RuntimeStep::AddHost {
                    host: "new.veza.fr".into(),
                    env: "staging".into()
                },
                moved.clone()
            ]
        );
        assert_eq!(
            changes[1],
            Change {
                change:
                    "move server be_staging_api_blue/blue_1 from 10.0.0.1:8080 to 10.0.0.9:9090"
                        .into(),
                via: Via::Runtime,
                reason: WHY_MOVE.into()
            }
        );
        assert_eq!(p.server_moves().len(), 1);
        assert_eq!(p.server_moves()[0].to, "10.0.0.9:9090");
        // Without a trusted live summary the move cannot be told apart: reload.
        let mut view = live_of(&live);
        view.summary = None;
        assert!(matches!(plan(&r, &view), Plan::Reload { .. }));
    }

    #[test]
    fn a_move_to_a_host_name_or_with_other_changes_reloads_and_says_why() {
        let live = rendered(BODY, &[], &[]);
        let named = rendered(
            &BODY.replace("10.0.0.1:8080", "veza-api-blue.lxd:8080"),
            &[("x.veza.fr", "staging")],
            &[],
        );
        let Plan::Reload {
            reasons, changes, ..
        } = plan(&named, &live_of(&live))
        else {
            panic!("a host name must reload");
        };
        let want = format!(
            "server be_staging_api_blue/blue_1 moves to veza-api-blue.lxd:8080: {WHY_NAME}"
        );
        assert!(reasons.contains(&want), "{reasons:?}");
        assert_eq!(
            changes,
            vec![
                Change {
                    change: "server be_staging_api_blue/blue_1 moved from 10.0.0.1:8080 to veza-api-blue.lxd:8080".into(),
                    via: Via::Reload,
                    reason: WHY_NAME.into()
                },
                Change {
                    change: "add host x.veza.fr to env staging".into(),
                    via: Via::Reload,
                    reason: WHY_MAP_RELOAD.into()
                }
            ]
        );
        let both = rendered(
            &(BODY.replace("10.0.0.1", "10.0.0.9") + "backend be_prod_stream_green\n"),
            &[],
            &[],
        );
        let Plan::Reload { changes, .. } = plan(&both, &live_of(&live)) else {
            panic!("a move with another shape change must reload");
        };
        assert!(changes.iter().all(|c| c.via == Via::Reload), "{changes:?}");
        assert!(
            changes
                .iter()
                .any(|c| c.reason == WHY_WITH_RELOAD && c.change.contains("blue_1 moved")),
            "{changes:?}"
        );
        assert!(
            changes
                .iter()
                .any(|c| c.reason == WHY_SHAPE && c.change == "backend be_prod_stream_green added"),
            "{changes:?}"
        );
    }

    const POOL: &str =
        "global\n    master-worker\nbackend be_prod_web_blue\n    balance roundrobin\n    \
                        cookie vz insert\n    server blue_1 10.0.0.1:80 check cookie blue_1\n    \
                        server blue_2 10.0.0.2:80 check cookie blue_2\n";

    #[test]
    fn a_pool_change_is_runtime_where_haproxy_takes_it_else_a_reload_on_request() {
        let live = rendered(POOL, &[], &[]);
        let grown = rendered(
            &(POOL.to_string() + "    server blue_3 10.0.0.3:80 check cookie blue_3\n"),
            &[],
            &[],
        );
        let Plan::Runtime { steps, changes } = plan(&grown, &live_of(&live)) else {
            panic!("3.4 takes `add server … cookie`");
        };
        assert_eq!(
            steps,
            vec![RuntimeStep::AddServer {
                backend: "be_prod_web_blue".into(),
                server: "blue_3".into(),
                address: "10.0.0.3:80".into()
            }]
        );
        assert_eq!(changes[0].via, Via::Runtime);
        assert_eq!(changes[0].reason, pool::WHY_ADD);
        // Removed: runtime on every version.
        let mut old = live_of(&grown);
        old.haproxy_version = Some((2, 6));
        let Plan::Runtime { steps, .. } = plan(&live, &old) else {
            panic!("2.6 takes `del server`");
        };
        assert!(
            matches!(&steps[0], RuntimeStep::RemoveServer { server, .. } if server == "blue_3")
        );
        // 2.6 refuses the cookie: a reload that apply takes only with --reload.
        let mut view = live_of(&live);
        view.haproxy_version = Some((2, 6));
        let Plan::Reload {
            changes,
            refused_at_runtime,
            ..
        } = plan(&grown, &view)
        else {
            panic!("2.6 refuses `cookie` on an added server");
        };
        assert_eq!(refused_at_runtime.len(), 1, "{refused_at_runtime:?}");
        assert!(refused_at_runtime[0].starts_with("add server be_prod_web_blue/blue_3: "));
        let added = changes
            .iter()
            .find(|c| c.change == "server be_prod_web_blue/blue_3 added at 10.0.0.3:80")
            .unwrap_or_else(|| panic!("{changes:?}"));
        assert_eq!(added.via, Via::Reload);
        assert!(
            added.reason.contains("HAProxy refuses it at runtime"),
            "{added:?}"
        );
        // With a move as well: one reload that needs no flag.
        let both = rendered(
            &(POOL.replace("10.0.0.1", "10.0.0.9")
                + "    server blue_3 10.0.0.3:80 check cookie blue_3\n"),
            &[],
            &[],
        );
        let Plan::Reload {
            changes,
            refused_at_runtime,
            ..
        } = plan(&both, &live_of(&live))
        else {
            panic!("a move with a pool change is one reload");
        };
        assert!(refused_at_runtime.is_empty());
        assert!(
            changes
                .iter()
                .any(|c| c.change.contains("blue_3 added") && c.reason == WHY_WITH_RELOAD),
            "{changes:?}"
        );
    }

    const WITH_PROFILE: &str = "global\n    master-worker\ndefaults\n    mode http\n\
                                backend be_prod_web_blue\n    balance roundrobin\n    \
                                option httpchk GET /\n    server blue_1 10.0.0.1:80 check\n\
                                defaults vz_web\n    mode http\n    balance roundrobin\n    \
                                option httpchk GET /\n";

    #[test]
    fn a_new_env_is_runtime_on_3_4_from_its_profile_else_a_reload_that_says_why() {
        let live = rendered(
            WITH_PROFILE,
            &[("veza.fr", "prod")],
            &[("prod", Color::Blue)],
        );
        let new_env = WITH_PROFILE.replace(
            "defaults vz_web",
            "backend be_demo_web_blue\n    balance roundrobin\n    option httpchk GET /\n    \
             server blue_1 10.0.9.1:80 check\ndefaults vz_web",
        );
        let hosts = [("veza.fr", "prod"), ("demo.veza.fr", "demo")];
        let colors = [("prod", Color::Blue), ("demo", Color::Blue)];
        let desired = rendered(&new_env, &hosts, &colors);
        let Plan::Runtime { steps, changes } = plan(&desired, &live_of(&live)) else {
            panic!("3.4 adds the backend");
        };
        let backend = RuntimeStep::AddBackend {
            backend: "be_demo_web_blue".into(),
            from: "vz_web".into(),
        };
        let at = steps.iter().position(|s| *s == backend);
        let server = steps
            .iter()
            .position(|s| matches!(s, RuntimeStep::AddServer { backend, .. } if backend == "be_demo_web_blue"));
        assert!(at.is_some() && at < server, "{steps:?}");
        assert!(steps.contains(&RuntimeStep::AddHost {
            host: "demo.veza.fr".into(),
            env: "demo".into()
        }));
        assert!(changes.iter().all(|c| c.via == Via::Runtime), "{changes:?}");
        // Before 3.4: the reload path with no flag, and why.
        for version in [Some((3, 2)), None] {
            let mut view = live_of(&live);
            view.haproxy_version = version;
            let Plan::Reload {
                changes,
                refused_at_runtime,
                ..
            } = plan(&desired, &view)
            else {
                panic!("{version:?}: a reload");
            };
            assert!(refused_at_runtime.is_empty());
            let added = changes
                .iter()
                .find(|c| c.change == "backend be_demo_web_blue added")
                .unwrap_or_else(|| panic!("{changes:?}"));
            assert!(added.reason.contains("`add backend`"), "{added:?}");
        }
        // A sticky backend (two servers) has no profile: a reload on 3.4 too.
        let sticky = new_env.replace(
            "    server blue_1 10.0.9.1:80 check\n",
            "    cookie c insert\n    server blue_1 10.0.9.1:80 check cookie blue_1\n    \
             server blue_2 10.0.9.2:80 check cookie blue_2\n",
        );
        let Plan::Reload { changes, .. } =
            plan(&rendered(&sticky, &hosts, &colors), &live_of(&live))
        else {
            panic!("no profile holds a cookie");
        };
        assert!(
            changes
                .iter()
                .any(|c| c.reason.contains("no named defaults section")),
            "{changes:?}"
        );
        // Removing the env again is a reload.
        let Plan::Reload { changes, .. } = plan(&live, &live_of(&desired)) else {
            panic!("a removed env reloads");
        };
        assert!(
            changes
                .iter()
                .any(|c| c.change == "backend be_demo_web_blue removed" && c.reason == WHY_REMOVED),
            "{changes:?}"
        );
    }

    #[test]
    fn shape_change_reloads_with_reasons_in_words() {
        let live = rendered(BODY, &[], &[]);
        let moved = BODY.replace("10.0.0.1", "10.0.0.9") + "backend be_prod_stream_green\n";
        let r = rendered(&moved, &[("x.veza.fr", "staging")], &[]);
        let Plan::Reload { reasons, .. } = plan(&r, &live_of(&live)) else {
            panic!("expected a reload");
        };
        assert!(
            reasons[0].starts_with("shape fingerprint changed"),
            "{reasons:?}"
        );
        assert!(reasons.contains(
            &"server be_staging_api_blue/blue_1 moved from 10.0.0.1:8080 to 10.0.0.9:8080".into()
        ));
        assert!(reasons.contains(&"backend be_prod_stream_green added".into()));
    }

    #[test]
    fn shape_change_without_summary_still_reloads() {
        let live = rendered(BODY, &[], &[]);
        let r = rendered(&BODY.replace("8080", "9090"), &[], &[]);
        let mut view = live_of(&live);
        view.summary = None;
        let Plan::Reload { reasons, .. } = plan(&r, &view) else {
            panic!("expected a reload");
        };
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        // A stale summary (from another config) is not used for details.
        let mut view = live_of(&live);
        view.summary = Some(r.summary.clone());
        let Plan::Reload { reasons, .. } = plan(&r, &view) else {
            panic!("expected a reload");
        };
        assert!(reasons[1].contains("does not match"), "{reasons:?}");
    }
}
