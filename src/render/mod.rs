//! Renders the edge: `haproxy.cfg`, `hosts.map` and `active-color.map` from a [`Topology`] and
//! the current active colors, plus the config's shape fingerprint and summary.
//!
//! Mechanism (docs/architecture.md §2), chosen so a flip is one map edit and never a reload:
//! - the frontend reads `host → env` from `hosts.map` and `env → color` from
//!   `active-color.map` (missing → blue) into `txn.env` / `txn.color`;
//! - there is ONE BACKEND PER ENV × COMPONENT × COLOR (`be_<env>_<component>_<color>`) holding
//!   only that color's servers, picked by a dynamic `use_backend`. One `set map
//!   active-color.map staging green` flips every component of staging at the same instant, and
//!   a DOWN live color answers 503 (the seed's behaviour) instead of silently falling back to
//!   the old color, as `use-server` would. With `failover = "cross-color"` the other color's
//!   servers are added as `backup` servers that `track` their own-color twin, so each server is
//!   health-checked once and the backup is UP exactly when its twin is;
//! - a dynamic `use_backend` name that matches no backend (an env without that component)
//!   ends the rule list and HAProxy applies `default_backend` (`default_503`); checked on 2.6,
//!   3.0 and 3.2 by the integration tests;
//! - externals and ACME use plain host / path ACLs: they are shape, outside the deploy pipeline.
//!
//! Injection: the topology is validated first; then the template formatter refuses any
//! interpolated value holding a control character, whitespace, `#`, a quote or a backslash, so
//! even a validation bug cannot add a line or a directive to the config.

pub mod check;
pub mod maps;
pub mod shape;
pub mod write;

use std::collections::BTreeMap;

use minijinja::{Environment, ErrorKind, UndefinedBehavior, Value};
use serde::Serialize;

use crate::topology::{
    Acme, Color, Component, Env, External, Failover, Server, Servers, Topology, ACME_BACKEND,
    DEFAULT_BACKEND, FRONTEND,
};
pub use shape::{ShapeSummary, FINGERPRINT_PREFIX};

const CONFIG_TEMPLATE: &str = include_str!("../../templates/haproxy.cfg.j2");
const HOSTS_TEMPLATE: &str = include_str!("../../templates/hosts.map.j2");
/// The request header that carries a preview token (lowercase, as HAProxy matches it).
pub const PREVIEW_HEADER: &str = "x-vezasock-preview";
/// The cookie that carries a preview token (the header wins when both are sent).
pub const PREVIEW_COOKIE: &str = "vezasock_preview";
/// The first line of an empty preview map.
pub const PREVIEW_MAP_HEADER: &str =
    "# preview.map: <env>:<token> -> color. Written by `vezasock preview`.\n";

const COLORS_TEMPLATE: &str = include_str!("../../templates/active-color.map.j2");

/// Everything `render` produces for one edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rendered {
    /// `haproxy.cfg`, first line `# vezasock-shape: <hex>`.
    pub config: String,
    /// `hosts.map` text.
    pub hosts_map: String,
    /// `active-color.map` text.
    pub active_color_map: String,
    /// The hosts map as values: host → env.
    pub hosts: BTreeMap<String, String>,
    /// The active color map as values: env → color (colored envs only).
    pub colors: BTreeMap<String, Color>,
    /// sha256 of the config's shape (hex).
    pub fingerprint: String,
    /// The shape in parts, for `plan` to explain a difference in words.
    pub summary: ShapeSummary,
}

/// Rendering failed: a template bug, or a value the formatter refused.
#[derive(Debug, thiserror::Error)]
#[error("cannot render {template}: {message}")]
pub struct RenderError {
    pub template: String,
    pub message: String,
}

#[derive(Serialize)]
struct ServerView {
    name: String,
    address: String,
    /// Extra server keywords, each a separate validated word.
    backup: bool,
    track: Option<String>,
    cookie: bool,
    /// Health-checked (not for the ACME client, which runs only during renewals).
    check: bool,
}

#[derive(Serialize)]
struct BackendView {
    name: String,
    /// Comment words: what topology item this backend comes from.
    origin: Vec<String>,
    cookie: Option<String>,
    check: Option<String>,
    http_no_delay: bool,
    /// 503 placeholder (no server).
    placeholder: bool,
    servers: Vec<ServerView>,
}

/// A named `defaults` section that a new backend of a component copies (`add backend … from`).
#[derive(Serialize)]
struct ProfileView {
    name: String,
    component: String,
    check: Option<String>,
    http_no_delay: bool,
}

#[derive(Serialize)]
struct ComponentView {
    name: String,
    paths: Vec<PathView>,
}

#[derive(Serialize)]
struct PathView {
    /// Matched exactly (`/api`), when the rule is not a directory prefix.
    exact: Option<String>,
    /// Matched as a prefix (`/api/`).
    prefix: String,
}

#[derive(Serialize)]
struct ExternalView {
    name: String,
    backend: String,
    hosts: Vec<String>,
}

#[derive(Serialize)]
struct Context {
    edge: String,
    frontend: &'static str,
    default_backend: &'static str,
    acme_backend: &'static str,
    admin_socket: String,
    operator_socket: String,
    server_state_file: String,
    hosts_map: String,
    active_color_map: String,
    preview_map: String,
    /// The Prometheus exporter's bind (`None`: no exporter).
    metrics_listen: Option<String>,
    preview_header: &'static str,
    preview_cookie: &'static str,
    http_bind: String,
    https_bind: String,
    tls: Option<TlsView>,
    acme_path: Option<String>,
    timeouts: crate::topology::Timeouts,
    failover: &'static str,
    /// The log target; no `log` lines without one.
    log: Option<String>,
    externals: Vec<ExternalView>,
    /// Components with paths first, the catch-all last.
    components: Vec<ComponentView>,
    colorless_envs: Vec<String>,
    colored_envs: bool,
    backends: Vec<BackendView>,
    /// One per component: what a backend of it holds besides its servers when it has no
    /// sticky cookie (one server).
    profiles: Vec<ProfileView>,
}

#[derive(Serialize)]
struct TlsView {
    certs_dir: String,
    redirect: bool,
}

#[derive(Serialize)]
struct MapLine {
    key: String,
    value: String,
}

/// Characters no interpolated value may hold: they could end a word, start a comment, or add
/// a line.
fn refuse_unsafe(value: &str) -> Result<(), minijinja::Error> {
    match value
        .chars()
        .find(|c| c.is_control() || c.is_whitespace() || matches!(c, '#' | '"' | '\'' | '\\'))
    {
        Some(c) => Err(minijinja::Error::new(
            ErrorKind::InvalidOperation,
            format!("refusing to write {value:?} into the config: it contains {c:?}"),
        )),
        None => Ok(()),
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_keep_trailing_newline(true);
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // Every `{{ … }}` goes through here: the last line of defence against injection.
    env.set_formatter(|out, _state, value: &Value| {
        if value.is_none() || value.is_undefined() {
            return Err(minijinja::Error::new(
                ErrorKind::UndefinedError,
                "refusing to write an empty value into the config",
            ));
        }
        let text = value.to_string();
        // `|safe` marks a macro's output (the common defaults lines): each value in it passed here.
        if !value.is_safe() {
            refuse_unsafe(&text)?;
        }
        out.write_str(&text)
            .map_err(|e| minijinja::Error::new(ErrorKind::WriteFailure, e.to_string()))
    });
    env
}

fn run(template: &str, name: &str, ctx: impl Serialize) -> Result<String, RenderError> {
    let env = environment();
    env.render_str(template, ctx).map_err(|e| RenderError {
        template: name.to_string(),
        message: format!("{e:#}"),
    })
}

fn path_text(p: &std::path::Path) -> String {
    p.to_string_lossy().into_owned()
}

/// The active colors of the colored envs (missing: blue), as values and as map lines.
fn color_lines(
    topo: &Topology,
    colors: &BTreeMap<String, Color>,
) -> (BTreeMap<String, Color>, Vec<MapLine>) {
    let mut active = BTreeMap::new();
    let mut lines = Vec::new();
    for env in topo.envs.iter().filter(|e| e.colored) {
        let color = colors.get(&env.name).copied().unwrap_or(Color::Blue);
        active.insert(env.name.clone(), color);
        lines.push(MapLine {
            key: env.name.clone(),
            value: color.to_string(),
        });
    }
    (active, lines)
}

fn run_colors(lines: Vec<MapLine>) -> Result<String, RenderError> {
    run(
        COLORS_TEMPLATE,
        "active-color.map.j2",
        minijinja::context! { lines => lines },
    )
}

/// Only `active-color.map`, byte for byte what [`render`] writes: a flip rewrites this one file
/// and must not pay for rendering the whole config (tens of ms on a 500-env edge).
pub fn render_active_color_map(
    topo: &Topology,
    colors: &BTreeMap<String, Color>,
) -> Result<String, RenderError> {
    run_colors(color_lines(topo, colors).1)
}

/// Renders the edge with the given active colors (envs not listed are blue).
pub fn render(topo: &Topology, colors: &BTreeMap<String, Color>) -> Result<Rendered, RenderError> {
    let ctx = context(topo);
    let body = run(CONFIG_TEMPLATE, "haproxy.cfg.j2", &ctx)?;
    let fingerprint = shape::fingerprint(&body);
    let config = format!("{FINGERPRINT_PREFIX}{fingerprint}\n{body}");
    let summary = ShapeSummary::from_config(&config);

    let mut hosts = BTreeMap::new();
    let mut host_lines = Vec::new();
    for env in &topo.envs {
        for h in &env.hosts {
            hosts.insert(h.clone(), env.name.clone());
            host_lines.push(MapLine {
                key: h.clone(),
                value: env.name.clone(),
            });
        }
    }
    let (active, color_lines) = color_lines(topo, colors);
    let hosts_map = run(
        HOSTS_TEMPLATE,
        "hosts.map.j2",
        minijinja::context! { lines => host_lines },
    )?;
    let active_color_map = run_colors(color_lines)?;
    Ok(Rendered {
        config,
        hosts_map,
        active_color_map,
        hosts,
        colors: active,
        fingerprint,
        summary,
    })
}

/// The named defaults section of a component's backends (`vz_<component>`).
pub fn profile_name(component: &str) -> String {
    format!("vz_{component}")
}

fn context(topo: &Topology) -> Context {
    let mut backends: Vec<BackendView> = topo
        .envs
        .iter()
        .flat_map(|env| env_backends(topo, env))
        .collect();
    backends.extend(topo.externals.iter().map(external_backend));
    backends.extend(topo.acme.as_ref().map(acme_backend));
    Context {
        edge: topo.name.clone(),
        frontend: FRONTEND,
        default_backend: DEFAULT_BACKEND,
        acme_backend: ACME_BACKEND,
        admin_socket: path_text(&topo.paths.admin_socket),
        operator_socket: path_text(&topo.paths.operator_socket),
        server_state_file: path_text(&topo.paths.server_state_file),
        hosts_map: path_text(&topo.paths.hosts_map()),
        active_color_map: path_text(&topo.paths.active_color_map()),
        preview_map: path_text(&topo.paths.preview_map()),
        metrics_listen: topo.metrics.as_ref().map(|m| m.listen.clone()),
        preview_header: PREVIEW_HEADER,
        preview_cookie: PREVIEW_COOKIE,
        http_bind: topo.listen.http.clone(),
        https_bind: topo.listen.https.clone(),
        tls: topo.tls.as_ref().map(|t| TlsView {
            certs_dir: path_text(&t.certs_dir),
            redirect: t.redirect,
        }),
        acme_path: topo.acme.as_ref().map(|a| a.path.clone()),
        timeouts: topo.timeouts.clone(),
        failover: topo.failover.as_str(),
        log: topo.log.clone(),
        externals: topo
            .externals
            .iter()
            .map(|x| ExternalView {
                name: x.name.clone(),
                backend: x.backend_name(),
                hosts: x.hosts.clone(),
            })
            .collect(),
        components: component_views(topo),
        colorless_envs: topo
            .envs
            .iter()
            .filter(|e| !e.colored)
            .map(|e| e.name.clone())
            .collect(),
        colored_envs: topo.envs.iter().any(|e| e.colored),
        backends,
        profiles: topo
            .components
            .iter()
            .map(|c| ProfileView {
                name: profile_name(&c.name),
                component: c.name.clone(),
                check: c.check.clone(),
                http_no_delay: c.http_no_delay,
            })
            .collect(),
    }
}

/// The components' path rules, the catch-all (no paths) last: it must be the last
/// `use_backend` rule.
fn component_views(topo: &Topology) -> Vec<ComponentView> {
    let mut components: Vec<ComponentView> = topo
        .components
        .iter()
        .map(|c| ComponentView {
            name: c.name.clone(),
            paths: c.paths.iter().map(|p| path_view(p)).collect(),
        })
        .collect();
    components.sort_by_key(|c| c.paths.is_empty());
    components
}

/// `/api` matches `/api` and `/api/…`, never `/apiary`; `/api/` only its prefix.
fn path_view(p: &str) -> PathView {
    if p.ends_with('/') {
        PathView {
            exact: None,
            prefix: p.to_string(),
        }
    } else {
        PathView {
            exact: Some(p.to_string()),
            prefix: format!("{p}/"),
        }
    }
}

/// One env's backends: one per component and color, one per component for a colorless env.
fn env_backends(topo: &Topology, env: &Env) -> Vec<BackendView> {
    let mut backends = Vec::new();
    for ec in &env.components {
        let Some(kind) = topo.component(&ec.name) else {
            continue;
        };
        match &ec.servers {
            Servers::Colored { .. } => {
                for color in Color::ALL {
                    let mut servers: Vec<ServerView> =
                        ec.servers.of(color).iter().map(ServerView::own).collect();
                    if topo.failover == Failover::CrossColor {
                        let twin = env.backend_name(&ec.name, color.other());
                        let other = ec.servers.of(color.other()).iter();
                        servers.extend(other.map(|s| ServerView::backup_of(s, &twin)));
                    }
                    let origin = vec![
                        format!("env={}", env.name),
                        format!("component={}", ec.name),
                        format!("color={color}"),
                    ];
                    let name = env.backend_name(&ec.name, color);
                    backends.push(component_backend(env, kind, name, origin, servers));
                }
            }
            Servers::Pool(pool) => {
                let servers = pool.iter().map(ServerView::own).collect();
                let origin = vec![
                    format!("env={}", env.name),
                    format!("component={}", ec.name),
                ];
                let name = env.backend_name(&ec.name, Color::Blue);
                backends.push(component_backend(env, kind, name, origin, servers));
            }
        }
    }
    backends
}

/// A component's backend in one env. A sticky cookie only where it has a choice to make: with
/// one server (the backups never take one), it would only add a Set-Cookie to every response.
fn component_backend(
    env: &Env,
    kind: &Component,
    name: String,
    origin: Vec<String>,
    mut servers: Vec<ServerView>,
) -> BackendView {
    let sticky = servers.iter().filter(|s| s.cookie).count() > 1;
    if !sticky {
        servers.iter_mut().for_each(|s| s.cookie = false);
    }
    BackendView {
        name,
        origin,
        cookie: sticky.then(|| env.cookie.clone()),
        check: kind.check.clone(),
        http_no_delay: kind.http_no_delay,
        placeholder: false,
        servers,
    }
}

/// An external service's backend (a placeholder while it has no server).
fn external_backend(x: &External) -> BackendView {
    BackendView {
        name: x.backend_name(),
        origin: vec![format!("external={}", x.name)],
        cookie: None,
        check: x.check.clone(),
        http_no_delay: false,
        placeholder: x.servers.is_empty(),
        servers: x
            .servers
            .iter()
            .map(|s| ServerView {
                cookie: false,
                ..ServerView::own(s)
            })
            .collect(),
    }
}

/// The ACME challenge backend: one server, never health-checked.
fn acme_backend(acme: &Acme) -> BackendView {
    BackendView {
        name: ACME_BACKEND.to_string(),
        origin: vec!["acme".to_string()],
        cookie: None,
        check: None,
        http_no_delay: false,
        placeholder: false,
        servers: vec![ServerView {
            cookie: false,
            check: false,
            ..ServerView::own(&acme.server)
        }],
    }
}

impl ServerView {
    /// A server of its own backend: checked, cookie-capable.
    fn own(s: &Server) -> ServerView {
        ServerView {
            name: s.name.clone(),
            address: s.address.to_string(),
            backup: false,
            track: None,
            cookie: true,
            check: true,
        }
    }

    /// The other color's server as a backup that tracks its twin (one health check per
    /// server) and carries no cookie, so a sticky session never pins to the other color.
    /// HAProxy refuses `check` and `track` on one server.
    fn backup_of(s: &Server, twin: &str) -> ServerView {
        ServerView {
            backup: true,
            track: Some(format!("{twin}/{}", s.name)),
            cookie: false,
            check: false,
            ..ServerView::own(s)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatter_refuses_newlines_and_config_syntax() {
        for bad in ["a\nb", "a b", "a#b", "a\"b", "a'b", "a\\b", "a\rb", "a\tb"] {
            let out = run("x {{ v }}", "t", minijinja::context! { v => bad });
            assert!(out.is_err(), "{bad:?} was rendered");
        }
        assert_eq!(
            run("x {{ v }}", "t", minijinja::context! { v => "ok" })
                .ok()
                .as_deref(),
            Some("x ok")
        );
        assert!(run("x {{ nope }}", "t", minijinja::context! {}).is_err());
    }
}
