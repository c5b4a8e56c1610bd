//! What the edge is: environments with blue/green components, external sites, TLS, ACME, the
//! failover policy and the runtime paths — read from a TOML file and checked.
//!
//! [`Topology`] is the validated model. It is built only by [`Topology::from_toml`] (or
//! [`Topology::embedded_default`], the "veza" edge of docs/topology.md), which reject anything that
//! could break the rendered config: every name, host, address and path is checked here, and the
//! templates refuse control characters again as a second line of defence.
//!
//! Naming used everywhere downstream (render, runtime, state):
//! - colored env component backend: `be_<env>_<component>_<color>`, servers `<color>_<n>`;
//! - colorless env component backend: `be_<env>_<component>`, servers `srv_<n>`;
//! - external site backend: `<name>_backend`, servers `srv_<n>`; ACME: `acme_backend`;
//!   everything else: `default_503`.

mod file;
pub mod fleet;
pub mod paths;
mod validate;
pub mod webhook;

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use paths::{PathOverrides, Paths, ReloadMethod};
pub use validate::values::{ca_file_path, textfile_path, webhook_url};
pub use validate::{LoadError, TopologyError};

/// File name of the hosts map (`host env`) inside the maps dir.
pub const HOSTS_MAP: &str = "hosts.map";
/// File name of the active color map (`env color`) inside the maps dir.
pub const ACTIVE_COLOR_MAP: &str = "active-color.map";
/// The preview map file name (`<env>:<token> → color`), in `maps_dir`.
pub const PREVIEW_MAP: &str = "preview.map";
/// The backend that answers 503 for anything unknown.
pub const DEFAULT_BACKEND: &str = "default_503";
/// The backend the ACME http-01 challenges go to.
pub const ACME_BACKEND: &str = "acme_backend";
/// The name of the only frontend.
pub const FRONTEND: &str = "fe_edge";

/// The embedded default topology (docs/topology.md), also shipped as `examples/veza.toml`.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../examples/veza.toml");
/// The name errors use for the embedded default.
pub const EMBEDDED_NAME: &str = "<embedded veza.toml>";

/// A deployment color.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Color {
    Blue,
    Green,
}

impl Color {
    /// Both colors, blue first.
    pub const ALL: [Color; 2] = [Color::Blue, Color::Green];

    /// `blue` or `green`.
    pub fn as_str(self) -> &'static str {
        match self {
            Color::Blue => "blue",
            Color::Green => "green",
        }
    }

    /// The color a flip goes to.
    pub fn other(self) -> Color {
        match self {
            Color::Blue => Color::Green,
            Color::Green => Color::Blue,
        }
    }

    /// Parses `blue` / `green` (exact, lowercase, as in the map file).
    pub fn parse(word: &str) -> Option<Color> {
        match word {
            "blue" => Some(Color::Blue),
            "green" => Some(Color::Green),
            _ => None,
        }
    }
}

/// The one message for a word that is not a color (CLI arguments, files, map values).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a color: use blue or green")]
pub struct NotAColor(pub String);

impl std::str::FromStr for Color {
    type Err = NotAColor;

    fn from_str(word: &str) -> Result<Color, NotAColor> {
        Color::parse(word).ok_or_else(|| NotAColor(word.to_string()))
    }
}

impl fmt::Display for Color {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What serves an env's traffic when all servers of its live color are down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Failover {
    /// A 503, as the seed edge did: the old color never silently serves after a flip.
    None,
    /// The other color's servers are `backup` servers of the live color's backend.
    CrossColor,
}

impl Failover {
    /// The word used in the topology file.
    pub fn as_str(self) -> &'static str {
        match self {
            Failover::None => "none",
            Failover::CrossColor => "cross-color",
        }
    }
}

/// A `host:port` address (the host is an IPv4 address or an RFC 1123 name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Address {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// One server line of a backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Server {
    /// The server's name inside its backend (`blue_1`, `srv_1`).
    pub name: String,
    pub address: Address,
}

/// A component's servers in one env.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Servers {
    /// Blue/green: one backend per color.
    Colored {
        blue: Vec<Server>,
        green: Vec<Server>,
    },
    /// No colors: one plain pool (the seed's multi-instance lab).
    Pool(Vec<Server>),
}

impl Servers {
    /// The servers of one color (empty for a pool).
    pub fn of(&self, color: Color) -> &[Server] {
        match (self, color) {
            (Servers::Colored { blue, .. }, Color::Blue) => blue,
            (Servers::Colored { green, .. }, Color::Green) => green,
            (Servers::Pool(_), _) => &[],
        }
    }

    fn all_mut(&mut self) -> Vec<&mut Server> {
        match self {
            Servers::Colored { blue, green } => blue.iter_mut().chain(green.iter_mut()).collect(),
            Servers::Pool(p) => p.iter_mut().collect(),
        }
    }
}

/// A component kind shared by the envs (api, stream, web).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Component {
    pub name: String,
    /// Segment-aligned path prefixes; empty = catch-all (rendered last).
    pub paths: Vec<String>,
    /// The containers' port (`None`: every env lists this component's servers explicitly).
    pub port: Option<u16>,
    /// HTTP health check path; `None` = TCP check.
    pub check: Option<String>,
    pub http_no_delay: bool,
}

/// One component as deployed in one env.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvComponent {
    /// The component's name (a key into [`Topology::components`]).
    pub name: String,
    pub servers: Servers,
}

/// A deployment environment (staging, prod).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Env {
    pub name: String,
    /// Container name prefix (`veza-staging`).
    pub prefix: String,
    /// Public host names, lowercase.
    pub hosts: Vec<String>,
    /// The full sticky cookie name (`<cookie>_<env>`).
    pub cookie: String,
    /// Blue/green env, or plain pools.
    pub colored: bool,
    pub components: Vec<EnvComponent>,
}

impl Env {
    /// The backend of one of this env's components; `color` is ignored for a colorless env.
    pub fn backend_name(&self, component: &str, color: Color) -> String {
        if self.colored {
            format!("be_{}_{}_{}", self.name, component, color)
        } else {
            format!("be_{}_{}", self.name, component)
        }
    }

    /// The backends of `color` in this env, one per component.
    pub fn color_backends(&self, color: Color) -> Vec<String> {
        self.components
            .iter()
            .map(|c| self.backend_name(&c.name, color))
            .collect()
    }

    /// Every backend this env renders: one per component and color, one per component for a
    /// colorless env.
    pub fn backends(&self) -> impl Iterator<Item = String> + '_ {
        let colors: &[Color] = if self.colored {
            &Color::ALL
        } else {
            &[Color::Blue]
        };
        self.components.iter().flat_map(move |comp| {
            colors
                .iter()
                .map(move |color| self.backend_name(&comp.name, *color))
        })
    }
}

/// A site outside the deploy pipeline (Forgejo, the Talas vitrine).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct External {
    pub name: String,
    pub hosts: Vec<String>,
    /// Empty = a 503 placeholder.
    pub servers: Vec<Server>,
    pub check: Option<String>,
}

impl External {
    /// `<name>_backend`.
    pub fn backend_name(&self) -> String {
        format!("{}_backend", self.name)
    }
}

/// TLS termination settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tls {
    pub certs_dir: std::path::PathBuf,
    pub redirect: bool,
}

/// The shared Let's Encrypt (ACME http-01) settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acme {
    /// Challenge path prefix, starts and ends with `/`.
    pub path: String,
    pub server: Server,
}

/// The Prometheus exporter's listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metrics {
    /// A bind address, `127.0.0.1:8405` unless configured.
    pub listen: String,
}

/// The default `[metrics] listen`: loopback only.
pub const METRICS_LISTEN: &str = "127.0.0.1:8405";

/// Bind addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listen {
    pub http: String,
    pub https: String,
}

/// HAProxy timeouts (HAProxy time syntax, e.g. `5s`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeouts {
    pub connect: String,
    pub client: String,
    pub server: String,
    pub tunnel: String,
    pub http_request: String,
    pub check: String,
}

/// The validated topology of one edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topology {
    pub name: String,
    pub container_domain: String,
    pub failover: Failover,
    /// HAProxy's log target (`/dev/log`, `127.0.0.1:514`); `None`: the config logs nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    pub listen: Listen,
    pub tls: Option<Tls>,
    pub acme: Option<Acme>,
    /// `[metrics]`: where the Prometheus exporter listens (`None`: no exporter).
    pub metrics: Option<Metrics>,
    /// `[metrics] textfile`: where vezasock writes its own metrics after each command
    /// (`edge::metrics`); `None`: nowhere. Not part of HAProxy's config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_textfile: Option<std::path::PathBuf>,
    /// `[notify] webhook`: where each operation's milestones are POSTed (`edge::notify`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_webhook: Option<String>,
    /// `[notify] ca_file`: the CAs an `https://` webhook is checked against instead of the
    /// system's bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_ca_file: Option<std::path::PathBuf>,
    pub timeouts: Timeouts,
    pub components: Vec<Component>,
    pub envs: Vec<Env>,
    pub externals: Vec<External>,
    pub paths: Paths,
}

impl Topology {
    /// Parses and validates a topology; `file` names the source in errors.
    pub fn from_toml(source: &str, file: &str) -> Result<Topology, LoadError> {
        validate::load(source, file)
    }

    /// Reads, parses and validates a topology file.
    pub fn load(path: &Path) -> Result<Topology, LoadError> {
        let file = path.display().to_string();
        let source = crate::files::read_bounded_text(path, crate::files::limit::CONFIG).map_err(
            |source| LoadError::Read {
                file: file.clone(),
                source,
            },
        )?;
        Topology::from_toml(&source, &file)
    }

    /// The embedded "veza" edge.
    pub fn embedded_default() -> Result<Topology, LoadError> {
        Topology::from_toml(EMBEDDED_DEFAULT, EMBEDDED_NAME)
    }

    /// Applies path overrides, checking the new paths like the file's own.
    pub fn override_paths(&mut self, overrides: &PathOverrides) -> Result<(), LoadError> {
        let mut paths = self.paths.clone();
        paths.apply(overrides);
        validate::check_paths(&paths)?;
        self.paths = paths;
        Ok(())
    }

    /// A component kind by name.
    pub fn component(&self, name: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.name == name)
    }

    /// An env by name.
    pub fn env(&self, name: &str) -> Option<&Env> {
        self.envs.iter().find(|e| e.name == name)
    }

    /// The same edge with every server (env components, externals, ACME) moved to
    /// `127.0.0.1:<port>`, ports counted up from `base_port` in a fixed order (envs, then
    /// externals, then ACME). Returns the moved servers so tests can start a backend on each.
    /// External placeholders (no server) stay placeholders.
    pub fn with_local_servers(
        &self,
        base_port: u16,
    ) -> Result<(Topology, Vec<LocalServer>), String> {
        let mut topo = self.clone();
        let mut moved = Vec::new();
        let mut port = u32::from(base_port);
        let mut next = |backend: String, color: Option<Color>, server: &mut Server| {
            let p = u16::try_from(port).map_err(|_| format!("port {port} is out of range"))?;
            port += 1;
            server.address = Address {
                host: "127.0.0.1".to_string(),
                port: p,
            };
            moved.push(LocalServer {
                backend,
                server: server.name.clone(),
                color,
                port: p,
            });
            Ok::<(), String>(())
        };
        for env in &mut topo.envs {
            let namer = Env {
                components: Vec::new(),
                ..env.clone()
            };
            for comp in &mut env.components {
                for color in Color::ALL {
                    let backend = namer.backend_name(&comp.name, color);
                    let tag = env.colored.then_some(color);
                    let servers: Vec<&mut Server> = match &mut comp.servers {
                        Servers::Colored { blue, green } => match color {
                            Color::Blue => blue.iter_mut().collect(),
                            Color::Green => green.iter_mut().collect(),
                        },
                        // A pool has one backend: visit it once, on the blue pass.
                        Servers::Pool(_) if color == Color::Green => Vec::new(),
                        Servers::Pool(_) => comp.servers.all_mut(),
                    };
                    for s in servers {
                        next(backend.clone(), tag, s)?;
                    }
                }
            }
        }
        for ext in &mut topo.externals {
            let backend = ext.backend_name();
            for s in &mut ext.servers {
                next(backend.clone(), None, s)?;
            }
        }
        if let Some(acme) = &mut topo.acme {
            next(ACME_BACKEND.to_string(), None, &mut acme.server)?;
        }
        Ok((topo, moved))
    }
}

/// A server moved to loopback by [`Topology::with_local_servers`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalServer {
    pub backend: String,
    pub server: String,
    /// The server's color, for env components with colors.
    pub color: Option<Color>,
    pub port: u16,
}
