//! Which servers an operator means: a selection (an env narrowed by color, component and
//! server, or any backend by name) resolved from the topology alone to `backend/server` pairs;
//! an unknown name is [`EdgeError::BadInput`] listing the valid ones, before anything is touched.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::edge::{Edge, EdgeError};
use crate::topology::{Color, Servers, Topology, ACME_BACKEND};

/// Which servers an operator means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "by", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Selection {
    /// Servers of an env: every component and color unless narrowed.
    Env {
        env: String,
        color: Option<Color>,
        component: Option<String>,
        server: Option<String>,
    },
    /// Servers of any backend by name (an external site such as `forgejo_backend`, or an env
    /// component backend such as `be_staging_api_blue`).
    Backend {
        backend: String,
        server: Option<String>,
    },
}

impl Selection {
    /// The env this selection is about, for the journal (`None` for a backend by name).
    pub fn env(&self) -> Option<&str> {
        match self {
            Selection::Env { env, .. } => Some(env),
            Selection::Backend { .. } => None,
        }
    }
}

/// One selected server.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ServerRef {
    pub backend: String,
    pub server: String,
}

impl std::fmt::Display for ServerRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.backend, self.server)
    }
}

/// Every backend that has servers, with them: env components, externals, ACME.
fn all_backends(topology: &Topology) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for env in &topology.envs {
        for comp in &env.components {
            match &comp.servers {
                Servers::Colored { .. } => {
                    for color in Color::ALL {
                        let names = comp.servers.of(color).iter().map(|s| s.name.clone());
                        out.push((env.backend_name(&comp.name, color), names.collect()));
                    }
                }
                Servers::Pool(pool) => {
                    let names = pool.iter().map(|s| s.name.clone()).collect();
                    out.push((env.backend_name(&comp.name, Color::Blue), names));
                }
            }
        }
    }
    for ext in &topology.externals {
        let names = ext.servers.iter().map(|s| s.name.clone()).collect();
        out.push((ext.backend_name(), names));
    }
    if let Some(acme) = &topology.acme {
        out.push((ACME_BACKEND.to_string(), vec![acme.server.name.clone()]));
    }
    out
}

/// Keeps the servers named `server` (all when `None`); none left is a clear error.
fn narrow(
    found: Vec<ServerRef>,
    server: Option<&str>,
    scope: &str,
) -> Result<Vec<ServerRef>, EdgeError> {
    let Some(name) = server else {
        return Ok(found);
    };
    let known: BTreeSet<&str> = found.iter().map(|s| s.server.as_str()).collect();
    if !known.contains(name) {
        let list: Vec<&str> = known.into_iter().collect();
        return Err(EdgeError::BadInput(format!(
            "no server {name:?} in {scope}; servers: {}",
            list.join(", ")
        )));
    }
    Ok(found.into_iter().filter(|s| s.server == name).collect())
}

/// The `backend/server` pairs a selection means, from the topology alone.
pub fn resolve(edge: &Edge, selection: &Selection) -> Result<Vec<ServerRef>, EdgeError> {
    let found = match selection {
        Selection::Env {
            env,
            color,
            component,
            server,
        } => {
            let env = edge.env(env)?;
            if color.is_some() && !env.colored {
                return Err(EdgeError::BadInput(format!(
                    "env {} has no colors (its components are plain pools): drop the color",
                    env.name
                )));
            }
            if let Some(name) = component {
                if !env.components.iter().any(|c| &c.name == name) {
                    let known: Vec<&str> = env.components.iter().map(|c| c.name.as_str()).collect();
                    return Err(EdgeError::BadInput(format!(
                        "no component {name:?} in env {}; components: {}",
                        env.name,
                        known.join(", ")
                    )));
                }
            }
            let mut found = Vec::new();
            for comp in &env.components {
                if component.as_ref().is_some_and(|c| *c != comp.name) {
                    continue;
                }
                let groups: Vec<(String, Vec<String>)> = match &comp.servers {
                    Servers::Colored { .. } => Color::ALL
                        .into_iter()
                        .filter(|c| color.iter().all(|want| want == c))
                        .map(|c| {
                            let names = comp.servers.of(c).iter().map(|s| s.name.clone());
                            (env.backend_name(&comp.name, c), names.collect())
                        })
                        .collect(),
                    Servers::Pool(pool) => vec![(
                        env.backend_name(&comp.name, Color::Blue),
                        pool.iter().map(|s| s.name.clone()).collect(),
                    )],
                };
                for (backend, names) in groups {
                    for name in names {
                        found.push(ServerRef {
                            backend: backend.clone(),
                            server: name,
                        });
                    }
                }
            }
            let mut scope = format!("env {}", env.name);
            if let Some(c) = color {
                scope.push_str(&format!(" color {c}"));
            }
            if let Some(c) = component {
                scope.push_str(&format!(" component {c}"));
            }
            narrow(found, server.as_deref(), &scope)?
        }
        Selection::Backend { backend, server } => {
            let all = all_backends(&edge.topology);
            let Some((_, names)) = all.iter().find(|(name, _)| name == backend) else {
                let known: Vec<&str> = all
                    .iter()
                    .filter(|(_, s)| !s.is_empty())
                    .map(|(n, _)| n.as_str())
                    .collect();
                return Err(EdgeError::BadInput(format!(
                    "no backend {backend:?} with servers on edge {}; backends: {}",
                    edge.topology.name,
                    known.join(", ")
                )));
            };
            if names.is_empty() {
                return Err(EdgeError::BadInput(format!(
                    "backend {backend} has no servers (a placeholder): nothing to change"
                )));
            }
            let found = names
                .iter()
                .map(|n| ServerRef {
                    backend: backend.clone(),
                    server: n.clone(),
                })
                .collect();
            narrow(found, server.as_deref(), &format!("backend {backend}"))?
        }
    };
    if found.is_empty() {
        return Err(EdgeError::BadInput(
            "the selection holds no server".to_string(),
        ));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge() -> Edge {
        match Topology::embedded_default() {
            Ok(topo) => Edge::new(topo),
            Err(e) => panic!("embedded default: {e}"),
        }
    }

    fn names(found: &[ServerRef]) -> Vec<String> {
        found.iter().map(ToString::to_string).collect()
    }

    fn env(
        env: &str,
        color: Option<Color>,
        component: Option<&str>,
        server: Option<&str>,
    ) -> Selection {
        Selection::Env {
            env: env.to_string(),
            color,
            component: component.map(str::to_string),
            server: server.map(str::to_string),
        }
    }

    fn bad(selection: Selection) -> String {
        match resolve(&edge(), &selection) {
            Err(EdgeError::BadInput(message)) => message,
            other => panic!("{selection:?} gave {other:?}"),
        }
    }

    #[test]
    fn an_env_selection_narrows_by_color_component_and_server() {
        let edge = edge();
        let all = resolve(&edge, &env("staging", None, None, None)).unwrap_or_default();
        assert_eq!(all.len(), 6, "{all:?}");
        let blue_api = resolve(&edge, &env("staging", Some(Color::Blue), Some("api"), None));
        assert_eq!(
            names(&blue_api.unwrap_or_default()),
            ["be_staging_api_blue/blue_1"]
        );
        let green = resolve(
            &edge,
            &env("prod", Some(Color::Green), None, Some("green_1")),
        );
        assert_eq!(
            names(&green.unwrap_or_default()),
            [
                "be_prod_api_green/green_1",
                "be_prod_stream_green/green_1",
                "be_prod_web_green/green_1"
            ]
        );
    }

    #[test]
    fn a_backend_selection_takes_any_backend_with_servers() {
        let edge = edge();
        let forgejo = Selection::Backend {
            backend: "forgejo_backend".to_string(),
            server: None,
        };
        assert_eq!(
            names(&resolve(&edge, &forgejo).unwrap_or_default()),
            ["forgejo_backend/srv_1"]
        );
        let env_backend = Selection::Backend {
            backend: "be_prod_web_blue".to_string(),
            server: Some("blue_1".to_string()),
        };
        assert_eq!(
            names(&resolve(&edge, &env_backend).unwrap_or_default()),
            ["be_prod_web_blue/blue_1"]
        );
    }

    #[test]
    fn unknown_names_are_bad_input_listing_the_valid_ones() {
        assert!(bad(env("nope", None, None, None)).contains("staging, prod"));
        assert!(bad(env("staging", None, Some("db"), None)).contains("api, stream, web"));
        assert!(bad(env("staging", Some(Color::Blue), None, Some("green_1"))).contains("blue_1"));
        let message = bad(Selection::Backend {
            backend: "nope".to_string(),
            server: None,
        });
        assert!(
            message.contains("forgejo_backend") && !message.contains("talas_vitrine_backend"),
            "{message}"
        );
        let placeholder = bad(Selection::Backend {
            backend: "talas_vitrine_backend".to_string(),
            server: None,
        });
        assert!(placeholder.contains("no servers"), "{placeholder}");
        let server = bad(Selection::Backend {
            backend: "forgejo_backend".to_string(),
            server: Some("srv_2".to_string()),
        });
        assert!(server.contains("srv_1"), "{server}");
    }
}
