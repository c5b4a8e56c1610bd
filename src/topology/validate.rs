//! Turns the raw topology file into the checked model, or into errors that name the file, the
//! line and the field.
//!
//! Every value that reaches the rendered config is checked against a narrow character set here
//! (names, hosts, addresses, cookies, paths, timeouts), so no input can add a line or a
//! directive. All errors of a file are collected, one per bad value, so the operator fixes them
//! in one pass.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::{self, Display};
use std::net::Ipv4Addr;
use std::ops::Range;
use std::path::PathBuf;

use serde::Serialize;
use toml::Spanned;

use super::file::{RawServers, RawTopology, SStr};
use super::{
    Acme, Address, Color, Component, Env, EnvComponent, External, Failover, Listen, Metrics, Paths,
    ReloadMethod, Server, Servers, Timeouts, Tls, Topology, ACME_BACKEND, DEFAULT_BACKEND,
};

/// Most components, externals, hosts, paths or servers one list may hold (keeps the rendered
/// config and every loop over it bounded).
const MAX_ITEMS: usize = 256;

/// Most envs one edge may hold: the scale goal is 500 envs × 3 components, with room to grow;
/// still a bound, so an absurd file is refused instead of rendering a config of millions of lines.
const MAX_ENVS: usize = 2_000;

/// One problem in a topology file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopologyError {
    /// The file (or `<embedded veza.toml>`, or `command line` for overrides).
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// The field, e.g. `env.staging.hosts[0]`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for TopologyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{}:{}:{}: ", self.file, l, c)?,
            (Some(l), None) => write!(f, "{}:{}: ", self.file, l)?,
            _ => write!(f, "{}: ", self.file)?,
        }
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Why a topology could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read topology file {file}: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{}", list(.0))]
    Invalid(Vec<TopologyError>),
}

impl LoadError {
    /// The validation errors (empty for a read error).
    pub fn errors(&self) -> &[TopologyError] {
        match self {
            LoadError::Invalid(e) => e,
            LoadError::Read { .. } => &[],
        }
    }
}

fn list(errors: &[TopologyError]) -> String {
    let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    lines.join("\n")
}

/// Collects errors with positions computed from byte spans.
struct Checker<'a> {
    source: &'a str,
    file: &'a str,
    errors: Vec<TopologyError>,
}

impl<'a> Checker<'a> {
    fn position(&self, span: &Range<usize>) -> (Option<usize>, Option<usize>) {
        let start = span.start.min(self.source.len());
        let before = self.source.get(..start).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map(|l| l.chars().count() + 1);
        (Some(line), column)
    }

    fn err(&mut self, span: Option<Range<usize>>, field: impl Display, message: impl Into<String>) {
        let (line, column) = match &span {
            Some(s) => self.position(s),
            None => (None, None),
        };
        self.errors.push(TopologyError {
            file: self.file.to_string(),
            line,
            column,
            field: field.to_string(),
            message: message.into(),
        });
    }

    /// Runs a check on a spanned string; on failure records the error and returns `None`.
    fn check<T>(
        &mut self,
        value: &SStr,
        field: impl Display,
        f: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        match f(value.get_ref()) {
            Ok(v) => Some(v),
            Err(m) => {
                self.err(Some(value.span()), field, m);
                None
            }
        }
    }

    /// Checks a list length against [`MAX_ITEMS`].
    fn bounded<T>(&mut self, items: &[T], span: Option<Range<usize>>, field: impl Display) -> bool {
        self.bounded_to(items, MAX_ITEMS, span, field)
    }

    /// Checks a list length against `max`.
    fn bounded_to<T>(
        &mut self,
        items: &[T],
        max: usize,
        span: Option<Range<usize>>,
        field: impl Display,
    ) -> bool {
        if items.len() > max {
            self.err(
                span,
                field,
                format!("has {} entries; at most {max} are allowed", items.len()),
            );
            return false;
        }
        true
    }
}

/// Parses and validates `source` (named `file` in errors).
pub(super) fn load(source: &str, file: &str) -> Result<Topology, LoadError> {
    let mut c = Checker {
        source,
        file,
        errors: Vec::new(),
    };
    let raw: RawTopology = match toml::from_str(source) {
        Ok(r) => r,
        Err(e) => {
            let field = e
                .span()
                .and_then(|s| source.get(s))
                .map(|t| t.trim().chars().take(40).collect::<String>())
                .filter(|t| !t.is_empty() && !t.contains('\n'))
                .unwrap_or_else(|| "toml".to_string());
            c.err(e.span(), field, e.message().trim().to_string());
            return Err(LoadError::Invalid(c.errors));
        }
    };
    let topo = build(&mut c, raw);
    match topo {
        Some(t) if c.errors.is_empty() => Ok(t),
        _ => Err(LoadError::Invalid(c.errors)),
    }
}

fn build(c: &mut Checker<'_>, raw: RawTopology) -> Option<Topology> {
    let name = match &raw.name {
        Some(n) => c.check(n, "name", |s| identifier(s, 32).map(|_| s.to_string())),
        None => Some("edge".to_string()),
    };
    let container_domain = match &raw.container_domain {
        Some(d) => c.check(d, "container_domain", host_name),
        None => Some("lxd".to_string()),
    };
    let failover = match &raw.failover {
        None => Some(Failover::None),
        Some(f) => c.check(f, "failover", |s| match s {
            "none" => Ok(Failover::None),
            "cross-color" => Ok(Failover::CrossColor),
            _ => Err(format!(
                "unknown failover policy {:?}; use \"none\" or \"cross-color\"",
                s
            )),
        }),
    };
    let log = match &raw.log {
        None => Some(None),
        Some(l) => c
            .check(l, "log", |s| match s.starts_with('/') {
                true => fs_path(s).map(|p| p.display().to_string()),
                false => address(s).map(|a| a.to_string()),
            })
            .map(Some),
    };
    let base_cookie = match &raw.cookie {
        Some(k) => c.check(k, "cookie", |s| cookie_name(s).map(|_| s.to_string())),
        None => Some("SERVERID".to_string()),
    };
    let listen = Listen {
        http: bind_or(c, &raw.listen.http, "listen.http", ":80"),
        https: bind_or(c, &raw.listen.https, "listen.https", ":443"),
    };
    let tls = raw.tls.as_ref().and_then(|t| {
        let dir = c.check(&t.certs_dir, "tls.certs_dir", fs_path)?;
        Some(Tls {
            certs_dir: dir,
            redirect: t.redirect.unwrap_or(true),
        })
    });
    let acme = raw.acme.as_ref().and_then(|a| {
        let path = match &a.path {
            Some(p) => c.check(p, "acme.path", |s| {
                path_rule(s)?;
                if !s.ends_with('/') {
                    return Err("must end with '/' (it is matched as a directory prefix)".into());
                }
                Ok(s.to_string())
            }),
            None => Some("/.well-known/acme-challenge/".to_string()),
        };
        let address = c.check(&a.server, "acme.server", address);
        Some(Acme {
            path: path?,
            server: Server {
                name: "srv_1".to_string(),
                address: address?,
            },
        })
    });
    // A section that only names a textfile does not turn on HAProxy's exporter.
    let metrics = raw
        .metrics
        .as_ref()
        .filter(|m| m.listen.is_some() || m.textfile.is_none())
        .map(|m| Metrics {
            listen: bind_or(c, &m.listen, "metrics.listen", super::METRICS_LISTEN),
        });
    let metrics_textfile = raw
        .metrics
        .as_ref()
        .and_then(|m| m.textfile.as_ref())
        .and_then(|t| c.check(t, "metrics.textfile", textfile_path));
    let notify_webhook = raw
        .notify
        .as_ref()
        .and_then(|n| n.webhook.as_ref())
        .and_then(|w| c.check(w, "notify.webhook", webhook_url));
    let t = &raw.timeouts;
    let timeouts = Timeouts {
        connect: timeout_or(c, &t.connect, "timeouts.connect", "5s"),
        client: timeout_or(c, &t.client, "timeouts.client", "60s"),
        server: timeout_or(c, &t.server, "timeouts.server", "60s"),
        tunnel: timeout_or(c, &t.tunnel, "timeouts.tunnel", "1h"),
        http_request: timeout_or(c, &t.http_request, "timeouts.http_request", "10s"),
        check: timeout_or(c, &t.check, "timeouts.check", "3s"),
    };
    let paths = raw_paths(c, &raw);
    let components = components(c, &raw, acme.as_ref().map(|a| a.path.as_str()));
    let domain = container_domain.clone().unwrap_or_default();
    let envs = envs(
        c,
        &raw,
        &components,
        base_cookie.as_deref().unwrap_or("SERVERID"),
        &domain,
    );
    let externals = externals(c, &raw);
    hosts_unique(c, &raw);

    let topo = Topology {
        name: name?,
        container_domain: container_domain?,
        failover: failover?,
        log: log?,
        listen,
        tls,
        acme,
        metrics,
        metrics_textfile,
        notify_webhook,
        timeouts,
        components,
        envs,
        externals,
        paths,
    };
    backends_unique(c, &topo);
    Some(topo)
}

fn bind_or(c: &mut Checker<'_>, v: &Option<SStr>, field: &str, default: &str) -> String {
    match v {
        Some(v) => c.check(v, field, bind).unwrap_or_default(),
        None => default.to_string(),
    }
}

fn timeout_or(c: &mut Checker<'_>, v: &Option<SStr>, field: &str, default: &str) -> String {
    match v {
        Some(v) => c.check(v, field, timeout).unwrap_or_default(),
        None => default.to_string(),
    }
}

fn raw_paths(c: &mut Checker<'_>, raw: &RawTopology) -> Paths {
    let mut paths = Paths::default();
    let p = &raw.paths;
    let slots: [(&Option<SStr>, &str, &mut PathBuf); 9] = [
        (&p.config, "paths.config", &mut paths.config),
        (&p.maps_dir, "paths.maps_dir", &mut paths.maps_dir),
        (
            &p.admin_socket,
            "paths.admin_socket",
            &mut paths.admin_socket,
        ),
        (
            &p.operator_socket,
            "paths.operator_socket",
            &mut paths.operator_socket,
        ),
        (
            &p.master_socket,
            "paths.master_socket",
            &mut paths.master_socket,
        ),
        (
            &p.server_state_file,
            "paths.server_state_file",
            &mut paths.server_state_file,
        ),
        (&p.state_dir, "paths.state_dir", &mut paths.state_dir),
        (&p.haproxy, "paths.haproxy", &mut paths.haproxy),
        (&p.pid_file, "paths.pid_file", &mut paths.pid_file),
    ];
    for (value, field, slot) in slots {
        if let Some(v) = value {
            if let Some(path) = c.check(v, field, fs_path) {
                *slot = path;
            }
        }
    }
    if let Some(m) = &p.reload_method {
        if let Some(m) = c.check(m, "paths.reload_method", |s| {
            ReloadMethod::parse(s).ok_or_else(|| {
                format!("unknown reload method {s:?}; use \"master-cli\" or \"signal\"")
            })
        }) {
            paths.reload_method = m;
        }
    }
    paths
}

/// Checks paths set outside the file (command line, environment).
pub(super) fn check_paths(paths: &Paths) -> Result<(), LoadError> {
    let items = [
        ("config", &paths.config),
        ("maps_dir", &paths.maps_dir),
        ("admin_socket", &paths.admin_socket),
        ("operator_socket", &paths.operator_socket),
        ("master_socket", &paths.master_socket),
        ("server_state_file", &paths.server_state_file),
        ("state_dir", &paths.state_dir),
        ("haproxy", &paths.haproxy),
        ("pid_file", &paths.pid_file),
    ];
    let mut errors = Vec::new();
    for (name, p) in items {
        let checked = p
            .to_str()
            .ok_or_else(|| "is not valid UTF-8".to_string())
            .and_then(fs_path);
        if let Err(m) = checked {
            errors.push(TopologyError {
                file: "command line".to_string(),
                line: None,
                column: None,
                field: format!("paths.{name}"),
                message: m,
            });
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(LoadError::Invalid(errors))
    }
}

/// The component kinds; `acme_path` is routed before any of them (when ACME is configured).
fn components(c: &mut Checker<'_>, raw: &RawTopology, acme_path: Option<&str>) -> Vec<Component> {
    let mut out: Vec<Component> = Vec::new();
    if !c.bounded(&raw.components, None, "component") {
        return out;
    }
    let mut seen_paths: BTreeMap<String, String> = BTreeMap::new();
    // Every accepted path rule in declaration order: the rendered use_backend rules keep it.
    let mut routed: Vec<(String, String)> = Vec::new();
    let mut catch_all: Option<String> = None;
    for (i, rc) in raw.components.iter().enumerate() {
        let rc = rc.get_ref();
        // Table-level errors point at the item's name line.
        let span = rc.name.span();
        let Some(name) = c.check(&rc.name, format_args!("component[{i}].name"), |s| {
            env_or_component_name(s)
        }) else {
            continue;
        };
        let f = format!("component.{name}");
        if out.iter().any(|o| o.name == name) {
            c.err(
                Some(rc.name.span()),
                format!("{f}.name"),
                format!("component {name:?} is declared twice"),
            );
            continue;
        }
        let mut bad_port = false;
        let port = rc
            .port
            .as_ref()
            .and_then(|port| match u16::try_from(*port.get_ref()) {
                Ok(p) if p > 0 => Some(p),
                _ => {
                    c.err(
                        Some(port.span()),
                        format!("{f}.port"),
                        "must be a port number from 1 to 65535",
                    );
                    bad_port = true;
                    None
                }
            });
        c.bounded(&rc.paths, Some(span.clone()), format_args!("{f}.paths"));
        let mut paths = Vec::new();
        for (j, p) in rc.paths.iter().enumerate().take(MAX_ITEMS) {
            let field = format!("{f}.paths[{j}]");
            if let Some(rule) = c.check(p, field.clone(), |s| path_rule(s).map(|_| s.to_string())) {
                if let Some(other) = seen_paths.insert(rule.clone(), name.clone()) {
                    c.err(
                        Some(p.span()),
                        field,
                        format!("path {rule:?} is already routed to component {other:?}"),
                    );
                } else if let Some(acme) = acme_path.filter(|a| shadows(a, &rule)) {
                    c.err(
                        Some(p.span()),
                        field,
                        format!(
                            "path {rule:?} of component {name:?} is unreachable: the ACME \
                             challenges under {acme:?} are routed before every component"
                        ),
                    );
                } else if let Some((other, by)) = routed
                    .iter()
                    .find(|(other, by)| *other != name && shadows(by, &rule))
                {
                    c.err(
                        Some(p.span()),
                        field,
                        format!(
                            "path {rule:?} of component {name:?} is unreachable: component \
                             {other:?}, declared earlier, routes {by:?}, which matches every \
                             request {rule:?} would; declare {name:?} first or drop the path"
                        ),
                    );
                } else {
                    routed.push((name.clone(), rule.clone()));
                    paths.push(rule);
                }
            }
        }
        if rc.paths.is_empty() {
            if let Some(other) = &catch_all {
                c.err(
                    Some(span.clone()),
                    format!("{f}.paths"),
                    format!("only one component may have no paths (the catch-all); {other:?} already has none"),
                );
            }
            catch_all = Some(name.clone());
        }
        let check = rc.check.as_ref().and_then(|p| {
            c.check(p, format_args!("{f}.check"), |s| {
                path_rule(s).map(|_| s.to_string())
            })
        });
        if bad_port {
            // Reported above; the envs using it are then not told again that it has no port.
            continue;
        }
        out.push(Component {
            name,
            paths,
            port,
            check,
            http_no_delay: rc.http_no_delay,
        });
    }
    out
}

fn envs(
    c: &mut Checker<'_>,
    raw: &RawTopology,
    components: &[Component],
    base_cookie: &str,
    domain: &str,
) -> Vec<Env> {
    let mut out: Vec<Env> = Vec::new();
    if !c.bounded_to(&raw.envs, MAX_ENVS, None, "env") {
        return out;
    }
    let mut seen: HashSet<String> = HashSet::new();
    for (i, re) in raw.envs.iter().enumerate() {
        let re = re.get_ref();
        // Table-level errors point at the item's name line.
        let span = re.name.span();
        let Some(name) = c.check(&re.name, format_args!("env[{i}].name"), |s| {
            env_or_component_name(s)
        }) else {
            continue;
        };
        let f = format!("env.{name}");
        if !seen.insert(name.clone()) {
            c.err(
                Some(re.name.span()),
                format!("{f}.name"),
                format!("env {name:?} is declared twice"),
            );
            continue;
        }
        let prefix = match &re.prefix {
            Some(p) => c.check(p, format_args!("{f}.prefix"), container_prefix),
            None => Some(name.clone()),
        };
        if re.hosts.is_empty() {
            c.err(
                Some(span.clone()),
                format!("{f}.hosts"),
                "an env needs at least one public host",
            );
        }
        c.bounded(&re.hosts, Some(span.clone()), format_args!("{f}.hosts"));
        let hosts: Vec<String> = re
            .hosts
            .iter()
            .enumerate()
            .take(MAX_ITEMS)
            .filter_map(|(j, h)| c.check(h, format_args!("{f}.hosts[{j}]"), host_name))
            .collect();
        let cookie = match &re.cookie {
            Some(k) => c.check(k, format_args!("{f}.cookie"), |s| {
                let full = format!("{s}_{name}");
                cookie_name(&full).map(|_| full)
            }),
            None => {
                let full = format!("{base_cookie}_{name}");
                match cookie_name(&full) {
                    Ok(()) => Some(full),
                    Err(m) => {
                        c.err(Some(span.clone()), format!("{f}.cookie"), m);
                        None
                    }
                }
            }
        };
        let colored = re.colors.unwrap_or(true);
        if re.components.is_empty() {
            c.err(
                Some(span.clone()),
                format!("{f}.components"),
                "an env needs at least one component",
            );
        }
        let mut env_components: Vec<EnvComponent> = Vec::new();
        for (j, rc) in re.components.iter().enumerate().take(MAX_ITEMS) {
            if declared_but_invalid(raw, rc.get_ref(), components) {
                continue; // already reported where it is declared
            }
            let Some(comp) = c.check(rc, format_args!("{f}.components[{j}]"), |s| {
                components
                    .iter()
                    .find(|k| k.name == s)
                    .cloned()
                    .ok_or_else(|| unknown_component(s, components))
            }) else {
                continue;
            };
            if env_components.iter().any(|e| e.name == comp.name) {
                c.err(
                    Some(rc.span()),
                    format_args!("{f}.components[{j}]"),
                    format!("component {:?} is listed twice", comp.name),
                );
                continue;
            }
            // The field name is only formatted when there is an error to report.
            let sf = format_args!("{f}.servers.{}", comp.name);
            let servers = match (re.servers.get(&comp.name), &prefix) {
                (Some(rs), _) => explicit_servers(c, rs, &sf, colored),
                (None, Some(prefix)) => {
                    default_servers(c, span.clone(), &sf, prefix, &comp, domain, colored)
                }
                (None, None) => None,
            };
            if let Some(servers) = servers {
                env_components.push(EnvComponent {
                    name: comp.name.clone(),
                    servers,
                });
            }
        }
        for (key, rs) in &re.servers {
            if declared_but_invalid(raw, key, components) {
                continue;
            }
            if !re.components.iter().any(|k| k.get_ref() == key) {
                let msg = if components.iter().any(|k| &k.name == key) {
                    format!("component {key:?} is not in this env's components list")
                } else {
                    unknown_component(key, components)
                };
                c.err(Some(rs.span()), format!("{f}.servers.{key}"), msg);
            }
        }
        if let (Some(prefix), Some(cookie)) = (prefix, cookie) {
            out.push(Env {
                name,
                prefix,
                hosts,
                cookie,
                colored,
                components: env_components,
            });
        }
    }
    out
}

/// Whether path rule `earlier` matches every request `later` matches, so a `use_backend` rule
/// for `later` placed after it never fires. A rule `/a` matches `/a` and `/a/…`; a rule `/a/`
/// matches `/a/…` (see the template's `path_beg`).
fn shadows(earlier: &str, later: &str) -> bool {
    let dir = |p: &str| {
        if p.ends_with('/') {
            p.to_string()
        } else {
            format!("{p}/")
        }
    };
    let earlier_dir = dir(earlier);
    let covered = |path: &str| path == earlier || path.starts_with(&earlier_dir);
    // `later`'s exact match (when it has one) and its directory prefix must both be covered.
    let exact_covered = later.ends_with('/') || covered(later);
    exact_covered && dir(later).starts_with(&earlier_dir)
}

/// A component declared in the file but refused: its error is already reported, so uses of its
/// name are not reported again.
fn declared_but_invalid(raw: &RawTopology, name: &str, components: &[Component]) -> bool {
    raw.components
        .iter()
        .any(|k| k.get_ref().name.get_ref() == name)
        && !components.iter().any(|k| k.name == name)
}

fn unknown_component(name: &str, components: &[Component]) -> String {
    let known: Vec<&str> = components.iter().map(|k| k.name.as_str()).collect();
    format!(
        "unknown component {name:?}; declared components: {}",
        known.join(", ")
    )
}

fn explicit_servers(
    c: &mut Checker<'_>,
    rs: &Spanned<RawServers>,
    f: &dyn Display,
    colored: bool,
) -> Option<Servers> {
    let span = rs.span();
    let r = rs.get_ref();
    let list = |c: &mut Checker<'_>,
                items: &[SStr],
                field: &dyn Display,
                prefix: &str|
     -> Option<Vec<Server>> {
        if items.is_empty() {
            c.err(
                Some(span.clone()),
                field,
                "needs at least one server address",
            );
            return None;
        }
        if !c.bounded(items, Some(span.clone()), field) {
            return None;
        }
        let mut out = Vec::new();
        let mut ok = true;
        for (k, a) in items.iter().enumerate() {
            match c.check(a, format_args!("{field}[{k}]"), address) {
                Some(address) => out.push(Server {
                    name: format!("{prefix}_{}", k + 1),
                    address,
                }),
                None => ok = false,
            }
        }
        ok.then_some(out)
    };
    if colored {
        if r.pool.is_some() {
            c.err(Some(span), format!("{f}.pool"), "this env has colors: give `blue` and `green`, not `pool` (or set `colors = false` on the env)");
            return None;
        }
        match (&r.blue, &r.green) {
            (Some(b), Some(g)) => {
                let blue = list(c, b, &format_args!("{f}.blue"), "blue");
                let green = list(c, g, &format_args!("{f}.green"), "green");
                Some(Servers::Colored {
                    blue: blue?,
                    green: green?,
                })
            }
            _ => {
                c.err(Some(span), f, "give both `blue` and `green` server lists");
                None
            }
        }
    } else {
        if r.blue.is_some() || r.green.is_some() {
            c.err(
                Some(span),
                f,
                "this env has `colors = false`: give `pool`, not `blue`/`green`",
            );
            return None;
        }
        match &r.pool {
            Some(p) => list(c, p, &format_args!("{f}.pool"), "srv").map(Servers::Pool),
            None => {
                c.err(Some(span), format!("{f}.pool"), "give a `pool` server list");
                None
            }
        }
    }
}

fn default_servers(
    c: &mut Checker<'_>,
    span: Range<usize>,
    f: &dyn Display,
    prefix: &str,
    comp: &Component,
    domain: &str,
    colored: bool,
) -> Option<Servers> {
    let Some(port) = comp.port else {
        c.err(
            Some(span),
            f,
            format!(
                "component {:?} has no port, so its container-name servers have none: give the \
                 component a `port`, or list this env's servers for it",
                comp.name
            ),
        );
        return None;
    };
    let mk = |c: &mut Checker<'_>, label: String, name: &str| {
        // The container name becomes a DNS label: keep it within 63 characters.
        if label.len() > 63 {
            c.err(
                Some(span.clone()),
                f,
                format!(
                    "container name {label:?} is longer than 63 characters; shorten the prefix"
                ),
            );
        }
        Server {
            name: name.to_string(),
            address: Address {
                host: format!("{label}.{domain}"),
                port,
            },
        }
    };
    if colored {
        let blue = mk(
            c,
            format!("{prefix}-{}-{}", comp.name, Color::Blue),
            "blue_1",
        );
        let green = mk(
            c,
            format!("{prefix}-{}-{}", comp.name, Color::Green),
            "green_1",
        );
        Some(Servers::Colored {
            blue: vec![blue],
            green: vec![green],
        })
    } else {
        Some(Servers::Pool(vec![mk(
            c,
            format!("{prefix}-{}", comp.name),
            "srv_1",
        )]))
    }
}

fn externals(c: &mut Checker<'_>, raw: &RawTopology) -> Vec<External> {
    let mut out: Vec<External> = Vec::new();
    if !c.bounded(&raw.externals, None, "external") {
        return out;
    }
    for (i, rx) in raw.externals.iter().enumerate() {
        let rx = rx.get_ref();
        // Table-level errors point at the item's name line.
        let span = rx.name.span();
        let Some(name) = c.check(&rx.name, format_args!("external[{i}].name"), |s| {
            identifier(s, 32)?;
            if s == "acme" {
                return Err("\"acme\" is reserved for the ACME challenge backend".into());
            }
            Ok(s.to_string())
        }) else {
            continue;
        };
        let f = format!("external.{name}");
        if out.iter().any(|o| o.name == name) {
            c.err(
                Some(rx.name.span()),
                format!("{f}.name"),
                format!("external {name:?} is declared twice"),
            );
            continue;
        }
        if rx.hosts.is_empty() {
            c.err(
                Some(span.clone()),
                format!("{f}.hosts"),
                "an external site needs at least one public host",
            );
        }
        c.bounded(&rx.hosts, Some(span.clone()), format_args!("{f}.hosts"));
        c.bounded(&rx.servers, Some(span.clone()), format_args!("{f}.servers"));
        let hosts = rx
            .hosts
            .iter()
            .enumerate()
            .take(MAX_ITEMS)
            .filter_map(|(j, h)| c.check(h, format_args!("{f}.hosts[{j}]"), host_name))
            .collect();
        let servers = rx
            .servers
            .iter()
            .enumerate()
            .take(MAX_ITEMS)
            .filter_map(|(j, a)| {
                c.check(a, format_args!("{f}.servers[{j}]"), address)
                    .map(|address| Server {
                        name: format!("srv_{}", j + 1),
                        address,
                    })
            })
            .collect();
        let check = rx.check.as_ref().and_then(|p| {
            c.check(p, format_args!("{f}.check"), |s| {
                path_rule(s).map(|_| s.to_string())
            })
        });
        out.push(External {
            name,
            hosts,
            servers,
            check,
        });
    }
    out
}

/// A public host may belong to one env or external only (the hosts map has one value per key).
fn hosts_unique(c: &mut Checker<'_>, raw: &RawTopology) {
    // Owner and field names are formatted only for an error: this runs over every host.
    let mut owners: HashMap<String, (&str, &str)> = HashMap::new();
    let items = raw
        .envs
        .iter()
        .map(|e| ("env", e.get_ref().name.get_ref(), &e.get_ref().hosts))
        .chain(
            raw.externals
                .iter()
                .map(|x| ("external", x.get_ref().name.get_ref(), &x.get_ref().hosts)),
        );
    for (kind, name, hosts) in items {
        for (j, h) in hosts.iter().enumerate().take(MAX_ITEMS) {
            let Ok(host) = host_name(h.get_ref()) else {
                continue;
            };
            if let Some((prev_kind, prev_name)) = owners.insert(host.clone(), (kind, name)) {
                c.err(
                    Some(h.span()),
                    format_args!("{kind}.{name}.hosts[{j}]"),
                    format!("host {host:?} is already used by {prev_kind} {prev_name:?}"),
                );
            }
        }
    }
}

/// Safety net: two items must never render the same backend name.
fn backends_unique(c: &mut Checker<'_>, t: &Topology) {
    let mut seen: HashSet<String> = HashSet::new();
    seen.insert(DEFAULT_BACKEND.to_string());
    seen.insert(ACME_BACKEND.to_string());
    let mut names: Vec<(&str, &str, String)> = Vec::new();
    for e in &t.envs {
        names.extend(e.backends().map(|b| ("env", e.name.as_str(), b)));
    }
    for x in &t.externals {
        names.push(("external", &x.name, x.backend_name()));
    }
    for (kind, item, name) in names {
        if !seen.insert(name.clone()) {
            c.err(
                None,
                format_args!("{kind}.{item}"),
                format!(
                    "renders backend {name:?}, which another item already uses; rename one of them"
                ),
            );
        }
    }
}

// ---- value checks: each returns a message that says what is allowed ----

/// Describes a character that is not allowed, naming the invisible ones.
fn bad_char(c: char) -> String {
    match c {
        '\n' => "a newline".to_string(),
        '\r' => "a carriage return".to_string(),
        '\t' => "a tab".to_string(),
        ' ' => "a space".to_string(),
        c if c.is_control() => format!("control character U+{:04X}", c as u32),
        c => format!("{c:?}"),
    }
}

fn first_bad(s: &str, ok: impl Fn(char) -> bool) -> Result<(), String> {
    match s.chars().find(|&c| !ok(c)) {
        Some(c) => Err(format!(
            "contains {}, which is not allowed here",
            bad_char(c)
        )),
        None => Ok(()),
    }
}

/// Env and component names: they become parts of backend names (`be_<env>_<component>_<color>`)
/// and map values, so `_` (the separator) and anything outside `a-z0-9-` is refused.
fn env_or_component_name(s: &str) -> Result<String, String> {
    // Bad characters first: "contains a newline" says more than "too long".
    first_bad(s, |c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
    })
    .map_err(|m| format!("{m}; use a-z, 0-9 and '-' (it becomes part of backend names)"))?;
    if s.is_empty() || s.len() > 24 {
        return Err("must be 1 to 24 characters of a-z, 0-9 and '-'".into());
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err("must not start or end with '-'".into());
    }
    Ok(s.to_string())
}

/// An HAProxy identifier: `[A-Za-z0-9_.-]`, starting with a letter or digit.
fn identifier(s: &str, max: usize) -> Result<(), String> {
    first_bad(s, |c| {
        c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
    })
    .map_err(|m| format!("{m}; an HAProxy name may only hold A-Z, a-z, 0-9, '_', '.', '-'"))?;
    if s.is_empty() || s.len() > max {
        return Err(format!(
            "must be 1 to {max} characters of A-Z, a-z, 0-9, '_', '.', '-'"
        ));
    }
    if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("must start with a letter or a digit".into());
    }
    Ok(())
}

/// A container prefix: one DNS label.
fn container_prefix(s: &str) -> Result<String, String> {
    first_bad(s, |c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
    })
    .map_err(|m| format!("{m}; a container prefix is part of a DNS name (a-z, 0-9, '-')"))?;
    if s.is_empty() || s.len() > 40 {
        return Err("must be 1 to 40 characters of a-z, 0-9 and '-'".into());
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err("must not start or end with '-'".into());
    }
    Ok(s.to_string())
}

/// An RFC 1123 host name, returned lowercase (Host headers are compared lowercase).
pub(crate) fn host_name(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("a host name must not be empty".into());
    }
    if s.len() > 253 {
        return Err("a host name is at most 253 characters (RFC 1123)".into());
    }
    first_bad(s, |c| c.is_ascii_alphanumeric() || c == '-' || c == '.').map_err(|m| {
        format!("{m}; a host name holds only letters, digits, '-' and '.' (RFC 1123)")
    })?;
    for label in s.split('.') {
        if label.is_empty() {
            return Err("has an empty label (two dots in a row, or a leading/trailing dot)".into());
        }
        if label.len() > 63 {
            return Err(format!(
                "label {label:?} is longer than 63 characters (RFC 1123)"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "label {label:?} starts or ends with '-' (RFC 1123)"
            ));
        }
    }
    Ok(s.to_ascii_lowercase())
}

/// A server address: `host:port`, the host an IPv4 address or an RFC 1123 name.
pub(crate) fn address(s: &str) -> Result<Address, String> {
    first_bad(s, |c| c.is_ascii_graphic())?;
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err(format!("{s:?} is not host:port"));
    };
    if host.contains(':') || host.starts_with('[') {
        return Err("IPv6 server addresses are not supported; use IPv4 or a host name".into());
    }
    let port = parse_port(port)?;
    let host = if host.parse::<Ipv4Addr>().is_ok() {
        host.to_string()
    } else if host.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(format!("{host:?} is not a valid IPv4 address"));
    } else {
        host_name(host)?
    };
    Ok(Address { host, port })
}

fn parse_port(s: &str) -> Result<u16, String> {
    match s.parse::<u16>() {
        Ok(p) if p > 0 && s.chars().all(|c| c.is_ascii_digit()) => Ok(p),
        _ => Err(format!("port {s:?} must be a number from 1 to 65535")),
    }
}

/// A bind address: `:port`, `*:port` or `<ipv4>:port`.
fn bind(s: &str) -> Result<String, String> {
    first_bad(s, |c| c.is_ascii_graphic())?;
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err(format!("{s:?} is not [address]:port"));
    };
    parse_port(port)?;
    if !(host.is_empty() || host == "*" || host.parse::<Ipv4Addr>().is_ok()) {
        return Err(format!(
            "bind address {host:?} must be empty, '*' or an IPv4 address"
        ));
    }
    Ok(s.to_string())
}

/// A cookie name: an RFC 6265 token (visible ASCII without separators).
fn cookie_name(s: &str) -> Result<(), String> {
    first_bad(s, |c| {
        c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?={}".contains(c)
    })
    .map_err(|m| format!("{m}; a cookie name is an RFC 6265 token"))?;
    if s.is_empty() || s.len() > 64 {
        return Err("a cookie name must be 1 to 64 characters".into());
    }
    Ok(())
}

/// A path rule or check path: starts with `/`, URL path characters only.
fn path_rule(s: &str) -> Result<(), String> {
    if !s.starts_with('/') {
        return Err("a path must start with '/'".into());
    }
    if s.len() > 256 {
        return Err("a path is at most 256 characters".into());
    }
    // No whitespace, quotes, '#', ';', '\', '{', '}': each could end or comment out a config
    // word, or open an anonymous ACL.
    first_bad(s, |c| {
        c.is_ascii_alphanumeric() || "/-._~%!$&()*+,=:@".contains(c)
    })
    .map_err(|m| format!("{m} in a path rule"))
}

/// HAProxy's timers are signed 32-bit milliseconds: `haproxy -c` refuses more ("timer
/// overflow … maximum value is 2147483647 ms or ~24.8 days", 2.6 to 3.2).
const MAX_TIMEOUT_MS: u64 = i32::MAX as u64;

/// An HAProxy duration: digits and an optional unit (`us`, `ms`, `s`, `m`, `h`, `d`; none is
/// milliseconds), from 1 ms to HAProxy's ~24.8 days.
fn timeout(s: &str) -> Result<String, String> {
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &s[digits.len()..];
    let per_unit_us: u64 = match unit {
        "us" => 1,
        "" | "ms" => 1_000,
        "s" => 1_000_000,
        "m" => 60_000_000,
        "h" => 3_600_000_000,
        "d" => 86_400_000_000,
        _ => return Err(format!("{s:?} is not a duration like 5s, 500ms, 1h")),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("{s:?} is not a duration like 5s, 500ms, 1h"));
    }
    let micros = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(per_unit_us))
        // More digits than u64 holds is over the limit too.
        .unwrap_or(u64::MAX);
    // HAProxy rounds microseconds up to whole milliseconds.
    let ms = micros.div_ceil(1_000);
    if ms == 0 {
        return Err(format!(
            "{s:?} is zero: HAProxy reads a zero timeout as no timeout at all; give at least 1ms"
        ));
    }
    if ms > MAX_TIMEOUT_MS {
        return Err(format!(
            "{s:?} is longer than HAProxy's timers allow (2147483647 ms, about 24.8 days; e.g. 24d)"
        ));
    }
    Ok(s.to_string())
}

/// A filesystem path that reaches the config: absolute, no whitespace or config syntax.
///
/// Besides what ends a word or a line, refused: `$` (HAProxy expands environment variables in
/// its config, so it would bind or read another path than vezasock uses), `,` `(` `)` (a map
/// path is an argument of `map(…,…)`), `[` `]` `%` (sample-fetch and log-format syntax).
/// `[notify] webhook`: a plain `http://` URL that [`super::webhook::Webhook`] parses.
pub fn webhook_url(s: &str) -> Result<String, String> {
    super::webhook::Webhook::parse(s).map(|_| s.to_string())
}

/// `[metrics] textfile` / `--metrics-textfile`: an absolute path ending in `.prom` (node_exporter's
/// textfile collector reads only those).
pub fn textfile_path(s: &str) -> Result<PathBuf, String> {
    let path = fs_path(s)?;
    if !s.ends_with(".prom") || s.ends_with("/.prom") {
        return Err(
            "must end in .prom (node_exporter's textfile collector reads only those)".into(),
        );
    }
    Ok(path)
}

fn fs_path(s: &str) -> Result<PathBuf, String> {
    if !s.starts_with('/') {
        return Err("must be an absolute path".into());
    }
    if s.len() > 1024 {
        return Err("is longer than 1024 characters".into());
    }
    first_bad(s, |c| {
        !c.is_control() && !c.is_whitespace() && !"#\"'\\;{}$,()[]%`".contains(c)
    })
    .map_err(|m| format!("{m} in a path (HAProxy's config reads it as syntax)"))?;
    Ok(PathBuf::from(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names() {
        assert_eq!(host_name("Veza.FR"), Ok("veza.fr".to_string()));
        assert!(host_name("a..b").is_err());
        assert!(host_name("-a.b").is_err());
        assert!(host_name("a b").is_err());
        assert!(host_name(&"a".repeat(64)).is_err());
    }

    #[test]
    fn addresses() {
        assert!(address("10.0.20.105:3000").is_ok());
        assert!(address("veza-api-blue.lxd:8080").is_ok());
        assert!(address("10.0.20.105").is_err());
        assert!(address("10.0.20.105:0").is_err());
        assert!(address("10.0.20.105:70000").is_err());
        assert!(address("999.1.1.1:80").is_err());
        assert!(address("[::1]:80").is_err());
        assert!(address("a:+80").is_err());
    }

    #[test]
    fn timeouts() {
        assert!(timeout("5s").is_ok());
        assert!(timeout("500").is_ok());
        assert!(timeout("s").is_err());
        assert!(timeout("5 s").is_err());
        assert!(timeout("5sec").is_err());
    }

    /// The limits `haproxy -c` enforces (2.6, 3.0 and 3.2 agree): 2147483647 ms passes, one more
    /// millisecond is a timer overflow; a zero means no timeout.
    #[test]
    fn timeouts_within_haproxy_limits() {
        for ok in [
            "2147483647ms",
            "2147483647",
            "2147483s",
            "24d",
            "596h",
            "35791m",
            "1us",
        ] {
            assert!(timeout(ok).is_ok(), "{ok}");
        }
        for over in [
            "2147483648ms",
            "2147484s",
            "25d",
            "597h",
            "999999999s",
            "999999999999d",
        ] {
            let e = timeout(over).unwrap_err();
            assert!(e.contains("24.8 days"), "{over}: {e}");
        }
        for zero in ["0", "0s", "0us", "000ms"] {
            assert!(timeout(zero).unwrap_err().contains("zero"), "{zero}");
        }
        assert!(timeout("99999999999999999999999s")
            .unwrap_err()
            .contains("24.8 days"));
    }

    #[test]
    fn shadowed_path_rules() {
        assert!(shadows("/api", "/api/v2"));
        assert!(shadows("/api", "/api/"));
        assert!(shadows("/api/", "/api/v2"));
        assert!(shadows("/api/", "/api/v2/"));
        // `/api/` does not match the exact path `/api`, so a later `/api` still gets it.
        assert!(!shadows("/api/", "/api"));
        // A later, shorter rule is not shadowed: the earlier one is more specific.
        assert!(!shadows("/api/v2", "/api"));
        assert!(!shadows("/api", "/apiary"));
        assert!(!shadows("/api", "/ap"));
        assert!(!shadows("/stream", "/hls"));
    }

    /// `[metrics] textfile`: an absolute `.prom` path; alone, it leaves HAProxy's exporter off;
    /// with `listen`, both.
    #[test]
    fn metrics_textfile() {
        let base = super::super::EMBEDDED_DEFAULT;
        let load =
            |section: &str| super::super::Topology::from_toml(&format!("{base}\n{section}"), "t");
        let t = load("[metrics]\ntextfile = \"/var/lib/n/vezasock.prom\"\n")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            t.metrics_textfile,
            Some(PathBuf::from("/var/lib/n/vezasock.prom"))
        );
        assert_eq!(t.metrics, None);
        let t = load("[metrics]\nlisten = \"127.0.0.1:9000\"\ntextfile = \"/v.prom\"\n")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(t.metrics.is_some() && t.metrics_textfile.is_some());
        let t = load("[metrics]\n").unwrap_or_else(|e| panic!("{e}"));
        assert!(t.metrics.is_some() && t.metrics_textfile.is_none());
        for bad in [
            "v.prom",
            "/var/lib/n/vezasock.txt",
            "/var/lib/n/.prom",
            "/a b.prom",
        ] {
            let e = load(&format!("[metrics]\ntextfile = \"{bad}\"\n"))
                .map(|_| ())
                .unwrap_err();
            assert!(e.to_string().contains("metrics.textfile"), "{bad}: {e}");
        }
    }
}
