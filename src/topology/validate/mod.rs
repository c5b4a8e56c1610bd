//! Turns the raw topology file into the checked model, or into errors that name the file, the
//! line and the field.
//!
//! Every value that reaches the rendered config is checked against a narrow character set here
//! (names, hosts, addresses, cookies, paths, timeouts), so no input can add a line or a
//! directive. All errors of a file are collected, one per bad value, so the operator fixes them
//! in one pass.

mod components;
mod envs;
pub(crate) mod values;

use std::collections::{HashMap, HashSet};

use self::components::components;
use self::envs::envs;
use self::values::*;
use std::fmt::{self, Display};
use std::ops::Range;
use std::path::PathBuf;

use serde::Serialize;

use super::file::{RawAcme, RawTimeouts, RawTopology, SStr};
use super::{
    Acme, External, Failover, Listen, Metrics, Paths, ReloadMethod, Server, Timeouts, Tls,
    Topology, ACME_BACKEND, DEFAULT_BACKEND,
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
    let failover = failover(c, raw.failover.as_ref());
    let log = log(c, raw.log.as_ref());
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
    let acme = raw.acme.as_ref().and_then(|a| acme(c, a));
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
    let notify_ca_file = raw
        .notify
        .as_ref()
        .and_then(|n| n.ca_file.as_ref())
        .and_then(|f| c.check(f, "notify.ca_file", ca_file_path));
    let timeouts = timeouts(c, &raw.timeouts);
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
        notify_ca_file,
        timeouts,
        components,
        envs,
        externals,
        paths,
    };
    backends_unique(c, &topo);
    Some(topo)
}

/// `failover`: `none` (the default) or `cross-color`.
fn failover(c: &mut Checker<'_>, raw: Option<&SStr>) -> Option<Failover> {
    let Some(f) = raw else {
        return Some(Failover::None);
    };
    c.check(f, "failover", |s| match s {
        "none" => Ok(Failover::None),
        "cross-color" => Ok(Failover::CrossColor),
        _ => Err(format!(
            "unknown failover policy {:?}; use \"none\" or \"cross-color\"",
            s
        )),
    })
}

/// `log`: a socket path or an address; `Some(None)` when not set, `None` when invalid.
fn log(c: &mut Checker<'_>, raw: Option<&SStr>) -> Option<Option<String>> {
    let Some(l) = raw else {
        return Some(None);
    };
    c.check(l, "log", |s| match s.starts_with('/') {
        true => fs_path(s).map(|p| p.display().to_string()),
        false => address(s).map(|a| a.to_string()),
    })
    .map(Some)
}

/// `[acme]`: its path prefix (a directory) and its challenge server.
fn acme(c: &mut Checker<'_>, a: &RawAcme) -> Option<Acme> {
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
}

/// `[timeouts]`, each with its default.
fn timeouts(c: &mut Checker<'_>, t: &RawTimeouts) -> Timeouts {
    Timeouts {
        connect: timeout_or(c, &t.connect, "timeouts.connect", "5s"),
        client: timeout_or(c, &t.client, "timeouts.client", "60s"),
        server: timeout_or(c, &t.server, "timeouts.server", "60s"),
        tunnel: timeout_or(c, &t.tunnel, "timeouts.tunnel", "1h"),
        http_request: timeout_or(c, &t.http_request, "timeouts.http_request", "10s"),
        check: timeout_or(c, &t.check, "timeouts.check", "3s"),
    }
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

#[cfg(test)]
mod tests {
    use super::components::shadows;
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

    /// `[notify]`: an https webhook and the CA file it is checked against (an absolute path).
    #[test]
    fn notify_https_and_ca_file() {
        let base = super::super::EMBEDDED_DEFAULT;
        let load =
            |section: &str| super::super::Topology::from_toml(&format!("{base}\n{section}"), "t");
        let t = load("[notify]\nwebhook = \"https://h.example/x\"\nca_file = \"/etc/ca.pem\"\n")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.notify_webhook.as_deref(), Some("https://h.example/x"));
        assert_eq!(t.notify_ca_file, Some(PathBuf::from("/etc/ca.pem")));
        let e = load("[notify]\nca_file = \"ca.pem\"\n")
            .map(|_| ())
            .unwrap_err();
        assert!(e.to_string().contains("notify.ca_file"), "{e}");
    }
}
