//! What an `apply` would do: compare the rendered edge with what is live, and answer nothing,
//! a few runtime map edits, or a reload with its reasons in words.
//!
//! Pure: it takes plain values. Reading the live config, its shape summary and the map files
//! is the caller's job (`cli::plan::read_live`), so every case here is unit-tested on values.
//! Since a reload re-reads the map files, a reload plan carries no runtime steps: the caller
//! writes the maps with the config.

pub mod takeover;

use std::collections::BTreeMap;

use serde::Serialize;

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
        }
    }
}

/// The outcome of planning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "plan", rename_all = "kebab-case")]
pub enum Plan {
    /// Live already matches.
    Nothing,
    /// Same shape; these map edits bring runtime and disk to the desired state.
    Runtime { steps: Vec<RuntimeStep> },
    /// The shape differs: render, check, swap and reload.
    Reload { reasons: Vec<String> },
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

/// Compares the desired edge with the live one.
pub fn plan(desired: &Rendered, live: &LiveView) -> Plan {
    let reasons = shape_reasons(desired, live);
    if !reasons.is_empty() {
        return Plan::Reload { reasons };
    }
    let steps = map_steps(desired, live);
    if steps.is_empty() {
        Plan::Nothing
    } else {
        Plan::Runtime { steps }
    }
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
        let Plan::Runtime { steps } = plan(&r, &live) else {
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
    }

    #[test]
    fn shape_change_reloads_with_reasons_in_words() {
        let live = rendered(BODY, &[], &[]);
        let moved = BODY.replace("10.0.0.1", "10.0.0.9") + "backend be_prod_stream_green\n";
        let r = rendered(&moved, &[("x.veza.fr", "staging")], &[]);
        let Plan::Reload { reasons } = plan(&r, &live_of(&live)) else {
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
        let Plan::Reload { reasons } = plan(&r, &view) else {
            panic!("expected a reload");
        };
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        // A stale summary (from another config) is not used for details.
        let mut view = live_of(&live);
        view.summary = Some(r.summary.clone());
        let Plan::Reload { reasons } = plan(&r, &view) else {
            panic!("expected a reload");
        };
        assert!(reasons[1].contains("does not match"), "{reasons:?}");
    }
}
