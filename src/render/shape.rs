//! The shape of a rendered config: everything the runtime API cannot change.
//!
//! Colors and env hosts live in map files, so the rendered `haproxy.cfg` holds only shape.
//! Its fingerprint is the sha256 of its lines with comments, blank lines and surrounding
//! whitespace left out; the rendered config carries it on its first line
//! (`# vezasock-shape: <hex>`), so a live config says its own shape.
//!
//! [`ShapeSummary`] is the same config cut into parts (sections, binds, servers with
//! addresses, options). It is written next to the live config at apply time, so `plan` can
//! say what differs in words rather than only "the hash changed", and tell a change of server
//! addresses alone ([`ShapeSummary::same_but_addresses`]: `set server … addr` at runtime)
//! from one that needs a reload. The fingerprint still covers the addresses: it says what
//! the config file holds, and a runtime move rewrites the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The first line of a rendered config is this prefix and the hex fingerprint.
pub const FINGERPRINT_PREFIX: &str = "# vezasock-shape: ";

/// The lines that make the shape: trimmed, without blanks and comments (the fingerprint line
/// is a comment too).
fn shape_lines(config: &str) -> impl Iterator<Item = &str> {
    config
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// sha256 (hex) of a config's shape lines, each ended by `\n`.
pub fn fingerprint(config: &str) -> String {
    let mut h = Sha256::new();
    for line in shape_lines(config) {
        h.update(line.as_bytes());
        h.update(b"\n");
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The fingerprint a config declares on its first line, if it has one.
pub fn declared_fingerprint(config: &str) -> Option<String> {
    let first = config.lines().next()?;
    let hex = first.strip_prefix(FINGERPRINT_PREFIX)?.trim();
    (hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()))
        .then(|| hex.to_ascii_lowercase())
}

/// Where the shape summary of a live config is kept: `<config>.shape.json`.
pub fn summary_path(config: &Path) -> PathBuf {
    let mut name = config
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".shape.json");
    config.with_file_name(name)
}

/// A frontend's binds and rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrontendShape {
    /// `bind` arguments, e.g. `:443 ssl crt /etc/haproxy/certs`.
    pub binds: Vec<String>,
    /// Every other line, in order.
    pub rules: Vec<String>,
}

/// One server line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerShape {
    pub address: String,
    /// The words after the address (`check cookie blue_1 …`).
    pub options: String,
}

/// A server whose address changes between two configs (backend and server as in the config,
/// addresses as written: `host:port`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerMove {
    pub backend: String,
    pub server: String,
    pub from: String,
    pub to: String,
}

impl ServerMove {
    /// The new address as an IPv4/IPv6 address and a port, when it is one (`set server …
    /// addr` takes an IP, not a name). `None` for a host name or anything unparsable.
    pub fn to_ip_port(&self) -> Option<(std::net::IpAddr, u16)> {
        let (host, port) = self.to.rsplit_once(':')?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let ip = host.parse().ok()?;
        let port: u16 = port.parse().ok()?;
        (port != 0).then_some((ip, port))
    }
}

/// A server added to (`added`) or removed from a backend both configs have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolChange {
    pub backend: String,
    pub server: String,
    /// As written in the config (`host:port`).
    pub address: String,
    /// The words after the address (`check cookie blue_3`).
    pub options: String,
    pub added: bool,
}

impl PoolChange {
    fn of(backend: &str, server: &str, s: &ServerShape, added: bool) -> PoolChange {
        PoolChange {
            backend: backend.to_string(),
            server: server.to_string(),
            address: s.address.clone(),
            options: s.options.clone(),
            added,
        }
    }

    /// The address as an IP and a port 1-65535, when it is one (`add server` here is given
    /// IPs only: HAProxy resolves names when it starts).
    pub fn ip_port(&self) -> Option<(std::net::IpAddr, u16)> {
        ServerMove {
            backend: String::new(),
            server: String::new(),
            from: String::new(),
            to: self.address.clone(),
        }
        .to_ip_port()
    }

    /// The server another one tracks in its options (`track <backend>/<server>`), if any.
    pub fn tracks(&self) -> Option<&str> {
        let mut words = self.options.split_whitespace();
        words.find(|w| *w == "track")?;
        words.next()
    }
}

/// A backend's servers and other lines.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendShape {
    pub servers: BTreeMap<String, ServerShape>,
    pub options: Vec<String>,
}

/// A config cut into the parts a reload would change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShapeSummary {
    pub fingerprint: String,
    pub tls: bool,
    pub global: Vec<String>,
    pub defaults: Vec<String>,
    /// Named `defaults <name>` sections (the rendered config ends with one per component,
    /// which no proxy of the config uses): each one's lines, for `add backend <b> from <name>`.
    #[serde(default)]
    pub profiles: BTreeMap<String, Vec<String>>,
    pub frontends: BTreeMap<String, FrontendShape>,
    pub backends: BTreeMap<String, BackendShape>,
}

enum Section {
    None,
    Global,
    Defaults,
    Profile(String),
    Frontend(String),
    Backend(String),
}

impl ShapeSummary {
    /// Cuts a config (rendered or live) into its parts. Never fails: unknown lines are kept
    /// under the section they sit in.
    pub fn from_config(config: &str) -> ShapeSummary {
        let mut s = ShapeSummary {
            fingerprint: fingerprint(config),
            ..ShapeSummary::default()
        };
        let mut section = Section::None;
        for line in shape_lines(config) {
            let mut words = line.splitn(2, char::is_whitespace);
            let keyword = words.next().unwrap_or("");
            let rest = words.next().unwrap_or("").trim();
            match keyword {
                "global" => section = Section::Global,
                "defaults" => {
                    section = match rest.split_whitespace().next() {
                        Some(name) => {
                            s.profiles.entry(name.to_string()).or_default();
                            Section::Profile(name.to_string())
                        }
                        None => Section::Defaults,
                    }
                }
                "frontend" | "listen" => {
                    s.frontends.entry(rest.to_string()).or_default();
                    section = Section::Frontend(rest.to_string());
                }
                "backend" => {
                    s.backends.entry(rest.to_string()).or_default();
                    section = Section::Backend(rest.to_string());
                }
                _ => match &section {
                    Section::None | Section::Global => s.global.push(line.to_string()),
                    Section::Defaults => s.defaults.push(line.to_string()),
                    Section::Profile(name) => s
                        .profiles
                        .entry(name.clone())
                        .or_default()
                        .push(line.to_string()),
                    Section::Frontend(name) => {
                        let f = s.frontends.entry(name.clone()).or_default();
                        if keyword == "bind" {
                            if rest.split_whitespace().any(|w| w == "ssl") {
                                s.tls = true;
                            }
                            f.binds.push(rest.to_string());
                        } else {
                            f.rules.push(line.to_string());
                        }
                    }
                    Section::Backend(name) => {
                        let b = s.backends.entry(name.clone()).or_default();
                        if keyword == "server" {
                            let mut w = rest.splitn(3, char::is_whitespace);
                            let server = w.next().unwrap_or("").to_string();
                            let address = w.next().unwrap_or("").to_string();
                            let options = w.next().unwrap_or("").trim().to_string();
                            b.servers.insert(server, ServerShape { address, options });
                        } else {
                            b.options.push(line.to_string());
                        }
                    }
                },
            }
        }
        s
    }

    /// Servers present in both whose address changes from `live` to `self`, as
    /// `(backend, server)`. Their lines must be dropped from the server-state file before a
    /// reload, or the saved address wins over the new config (HAProxy issues #1412, #2103).
    pub fn moved_servers(&self, live: &ShapeSummary) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (name, b) in &self.backends {
            let Some(l) = live.backends.get(name) else {
                continue;
            };
            for (srv, s) in &b.servers {
                if l.servers.get(srv).is_some_and(|ls| ls.address != s.address) {
                    out.push((name.clone(), srv.clone()));
                }
            }
        }
        out
    }

    /// Each server present in both whose address (`host:port`) changes from `live` to `self`.
    pub fn server_moves(&self, live: &ShapeSummary) -> Vec<ServerMove> {
        let mut out = Vec::new();
        for (name, b) in &self.backends {
            let Some(l) = live.backends.get(name) else {
                continue;
            };
            for (srv, s) in &b.servers {
                if let Some(ls) = l.servers.get(srv).filter(|ls| ls.address != s.address) {
                    out.push(ServerMove {
                        backend: name.clone(),
                        server: srv.clone(),
                        from: ls.address.clone(),
                        to: s.address.clone(),
                    });
                }
            }
        }
        out
    }

    /// True when `self` and `live` differ in server addresses only (or not at all): the same
    /// sections, binds, rules, servers and server options. Such a change can go over the
    /// runtime API (`set server … addr … port …`) instead of a reload.
    pub fn same_but_addresses(&self, live: &ShapeSummary) -> bool {
        self.without_addresses() == live.without_addresses()
    }

    /// Servers added to or removed from backends both configs have, and the servers of
    /// backends only `self` has ([`ShapeSummary::new_backends`]), when nothing else differs
    /// but server addresses (`None` otherwise): the changes `add backend` / `add server` /
    /// `del server` can make at runtime. Empty when only addresses (or nothing) differ.
    pub fn pool_changes(&self, live: &ShapeSummary) -> Option<Vec<PoolChange>> {
        if live.backends.keys().any(|k| !self.backends.contains_key(k)) {
            return None;
        }
        let empty = BackendShape::default();
        let mut out = Vec::new();
        for (name, b) in &self.backends {
            let l = live.backends.get(name).unwrap_or(&empty);
            for (srv, s) in b
                .servers
                .iter()
                .filter(|(k, _)| !l.servers.contains_key(*k))
            {
                out.push(PoolChange::of(name, srv, s, true));
            }
            for (srv, s) in l
                .servers
                .iter()
                .filter(|(k, _)| !b.servers.contains_key(*k))
            {
                out.push(PoolChange::of(name, srv, s, false));
            }
        }
        let (mut desired, mut was) = (self.without_addresses(), live.without_addresses());
        for (name, _) in self.new_backends(live) {
            desired.backends.remove(&name);
        }
        for c in &out {
            for s in [&mut desired, &mut was] {
                if let Some(b) = s.backends.get_mut(&c.backend) {
                    b.servers.remove(&c.server);
                }
            }
        }
        (desired == was).then_some(out)
    }

    /// The backends `self` has and `live` has not, each with its lines other than servers.
    pub fn new_backends(&self, live: &ShapeSummary) -> Vec<(String, Vec<String>)> {
        self.backends
            .iter()
            .filter(|(name, _)| !live.backends.contains_key(*name))
            .map(|(name, b)| (name.clone(), b.options.clone()))
            .collect()
    }

    /// The named defaults section whose lines other than the common ones (those of the
    /// unnamed `defaults`) are exactly `options`: what `add backend … from <it>` copies.
    pub fn profile_for(&self, options: &[String]) -> Option<&str> {
        self.profiles
            .iter()
            .find(|(_, lines)| {
                let own: Vec<&String> = lines
                    .iter()
                    .filter(|l| !self.defaults.contains(l))
                    .collect();
                own.len() == options.len() && own.iter().zip(options).all(|(a, b)| *a == b)
            })
            .map(|(name, _)| name.as_str())
    }

    /// A copy with every server address and the fingerprint blanked.
    fn without_addresses(&self) -> ShapeSummary {
        let mut s = self.clone();
        s.fingerprint.clear();
        for b in s.backends.values_mut() {
            for server in b.servers.values_mut() {
                server.address.clear();
            }
        }
        s
    }

    /// What changes from `live` to `self`, in words, one line per difference.
    pub fn diff(&self, live: &ShapeSummary) -> Vec<String> {
        let mut out = Vec::new();
        if self.tls != live.tls {
            out.push(if self.tls {
                "TLS turned on".into()
            } else {
                "TLS turned off".into()
            });
        }
        lines_diff(&mut out, "global", &self.global, &live.global);
        lines_diff(&mut out, "defaults", &self.defaults, &live.defaults);
        for (name, lines) in &self.profiles {
            match live.profiles.get(name) {
                None => out.push(format!("defaults {name} added")),
                Some(l) => lines_diff(&mut out, &format!("defaults {name}"), lines, l),
            }
        }
        for name in live
            .profiles
            .keys()
            .filter(|n| !self.profiles.contains_key(*n))
        {
            out.push(format!("defaults {name} removed"));
        }
        for (name, f) in &self.frontends {
            match live.frontends.get(name) {
                None => out.push(format!("frontend {name} added")),
                Some(l) => {
                    for b in f.binds.iter().filter(|b| !l.binds.contains(b)) {
                        out.push(format!("frontend {name}: bind {b} added"));
                    }
                    for b in l.binds.iter().filter(|b| !f.binds.contains(b)) {
                        out.push(format!("frontend {name}: bind {b} removed"));
                    }
                    lines_diff(&mut out, &format!("frontend {name}"), &f.rules, &l.rules);
                }
            }
        }
        for name in live
            .frontends
            .keys()
            .filter(|n| !self.frontends.contains_key(*n))
        {
            out.push(format!("frontend {name} removed"));
        }
        for (name, b) in &self.backends {
            let Some(l) = live.backends.get(name) else {
                out.push(format!("backend {name} added"));
                continue;
            };
            for (srv, s) in &b.servers {
                match l.servers.get(srv) {
                    None => out.push(format!("server {name}/{srv} added at {}", s.address)),
                    Some(ls) => {
                        if ls.address != s.address {
                            out.push(format!(
                                "server {name}/{srv} moved from {} to {}",
                                ls.address, s.address
                            ));
                        }
                        if ls.options != s.options {
                            out.push(format!(
                                "server {name}/{srv} options changed from `{}` to `{}`",
                                ls.options, s.options
                            ));
                        }
                    }
                }
            }
            for srv in l.servers.keys().filter(|k| !b.servers.contains_key(*k)) {
                out.push(format!("server {name}/{srv} removed"));
            }
            lines_diff(&mut out, &format!("backend {name}"), &b.options, &l.options);
        }
        for name in live
            .backends
            .keys()
            .filter(|n| !self.backends.contains_key(*n))
        {
            out.push(format!("backend {name} removed"));
        }
        if out.is_empty() && self.fingerprint != live.fingerprint {
            out.push("the config's lines were reordered".to_string());
        }
        out
    }
}

fn lines_diff(out: &mut Vec<String>, section: &str, desired: &[String], live: &[String]) {
    let mut changed = false;
    for l in desired.iter().filter(|l| !live.contains(l)) {
        out.push(format!("{section}: `{l}` added"));
        changed = true;
    }
    for l in live.iter().filter(|l| !desired.contains(l)) {
        out.push(format!("{section}: `{l}` removed"));
        changed = true;
    }
    if !changed && desired != live {
        out.push(format!("{section}: rule order changed"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = "# vezasock-shape: x\nglobal\n    master-worker\nfrontend fe\n    bind :80\n    \
                       default_backend b\nbackend b\n    balance roundrobin\n    server s1 10.0.0.1:80 check\n";

    #[test]
    fn fingerprint_ignores_comments_blanks_and_indent() {
        let other = "# another comment\n\nglobal\nmaster-worker\n# x\nfrontend fe\nbind :80\ndefault_backend b\n\
                     backend b\nbalance roundrobin\nserver s1 10.0.0.1:80 check\n";
        assert_eq!(fingerprint(CFG), fingerprint(other));
        assert_ne!(
            fingerprint(CFG),
            fingerprint(&CFG.replace("10.0.0.1", "10.0.0.2"))
        );
    }

    #[test]
    fn declared_fingerprint_needs_64_hex() {
        let hex = "a".repeat(64);
        assert_eq!(
            declared_fingerprint(&format!("{FINGERPRINT_PREFIX}{hex}\nglobal\n")),
            Some(hex)
        );
        assert_eq!(declared_fingerprint(CFG), None);
        assert_eq!(declared_fingerprint(""), None);
    }

    #[test]
    fn diff_in_words() {
        let live = ShapeSummary::from_config(CFG);
        let moved = ShapeSummary::from_config(
            &(CFG.replace("10.0.0.1", "10.0.0.2") + "backend c\n    server s 1.2.3.4:5\n")
                .replace("bind :80", "bind :80\n    bind :443 ssl crt /c"),
        );
        let d = moved.diff(&live);
        assert!(
            d.contains(&"server b/s1 moved from 10.0.0.1:80 to 10.0.0.2:80".to_string()),
            "{d:?}"
        );
        assert!(d.contains(&"backend c added".to_string()), "{d:?}");
        assert!(d.contains(&"TLS turned on".to_string()), "{d:?}");
        assert!(
            d.contains(&"frontend fe: bind :443 ssl crt /c added".to_string()),
            "{d:?}"
        );
        assert!(live.diff(&live).is_empty());
        assert_eq!(
            moved.moved_servers(&live),
            [("b".to_string(), "s1".to_string())]
        );
        assert!(live.moved_servers(&live).is_empty());
        assert!(live.diff(&moved).contains(&"backend c removed".to_string()));
    }

    #[test]
    fn moves_alone_are_told_apart_from_other_changes() {
        let live = ShapeSummary::from_config(CFG);
        let moved = ShapeSummary::from_config(&CFG.replace("10.0.0.1:80", "10.0.0.2:8080"));
        assert!(moved.same_but_addresses(&live));
        assert!(live.same_but_addresses(&live));
        let m = moved.server_moves(&live);
        assert_eq!(
            m,
            [ServerMove {
                backend: "b".into(),
                server: "s1".into(),
                from: "10.0.0.1:80".into(),
                to: "10.0.0.2:8080".into()
            }]
        );
        assert_eq!(
            m[0].to_ip_port(),
            Some(("10.0.0.2".parse().unwrap_or_else(|e| panic!("{e}")), 8080))
        );
        // A move plus another change is no longer addresses only.
        let both = ShapeSummary::from_config(
            &CFG.replace("10.0.0.1:80 check", "10.0.0.2:80 check inter 5s"),
        );
        assert!(!both.same_but_addresses(&live));
        let added = ShapeSummary::from_config(&(CFG.to_string() + "    server s2 10.0.0.3:80\n"));
        assert!(!added.same_but_addresses(&live));
        // A name, a zero port or garbage is not an IP and port.
        for to in [
            "veza-api-blue.lxd:8080",
            "10.0.0.2:0",
            "10.0.0.2",
            "10.0.0.2:x",
            "",
        ] {
            let m = ServerMove {
                backend: "b".into(),
                server: "s".into(),
                from: String::new(),
                to: to.into(),
            };
            assert_eq!(m.to_ip_port(), None, "{to}");
        }
    }

    #[test]
    fn pool_changes_are_servers_added_or_removed_and_nothing_else() {
        let live = ShapeSummary::from_config(CFG);
        assert_eq!(live.pool_changes(&live), Some(Vec::new()));
        let grown =
            ShapeSummary::from_config(&(CFG.to_string() + "    server s2 10.0.0.3:80 check\n"));
        let want = PoolChange {
            backend: "b".into(),
            server: "s2".into(),
            address: "10.0.0.3:80".into(),
            options: "check".into(),
            added: true,
        };
        assert_eq!(grown.pool_changes(&live), Some(vec![want.clone()]));
        assert_eq!(
            want.ip_port(),
            Some(("10.0.0.3".parse().unwrap_or_else(|e| panic!("{e}")), 80))
        );
        assert_eq!(
            live.pool_changes(&grown),
            Some(vec![PoolChange {
                added: false,
                ..want
            }])
        );
        // A move with an added server is still a pool change; another change is not.
        let moved = ShapeSummary::from_config(
            &(CFG.replace("10.0.0.1", "10.0.0.9") + "    server s2 10.0.0.3:80\n"),
        );
        assert_eq!(moved.pool_changes(&live).map(|c| c.len()), Some(1));
        let other = ShapeSummary::from_config(
            &(CFG.replace("roundrobin", "leastconn") + "    server s2 10.0.0.3:80\n"),
        );
        assert_eq!(other.pool_changes(&live), None);
        let options = ShapeSummary::from_config(&CFG.replace("80 check", "80"));
        assert_eq!(options.pool_changes(&live), None);
        // A new backend: its servers are added ones, and it is listed with its lines; a
        // removed backend is not a pool change.
        let new_backend = ShapeSummary::from_config(
            &(CFG.to_string()
                + "backend c\n    balance roundrobin\n    server n1 10.0.0.7:80 check\n"),
        );
        let added = new_backend.pool_changes(&live).unwrap_or_default();
        assert_eq!(added.len(), 1);
        assert!(added[0].added && added[0].backend == "c" && added[0].server == "n1");
        assert_eq!(
            new_backend.new_backends(&live),
            vec![("c".to_string(), vec!["balance roundrobin".to_string()])]
        );
        assert_eq!(live.pool_changes(&new_backend), None);
        let new_and_other =
            ShapeSummary::from_config(&(CFG.replace("roundrobin", "leastconn") + "backend c\n"));
        assert_eq!(new_and_other.pool_changes(&live), None);
        let backup = PoolChange {
            options: "backup track be_x_blue/blue_2".into(),
            ..PoolChange::of("b", "s", &ServerShape::default(), true)
        };
        assert_eq!(backup.tracks(), Some("be_x_blue/blue_2"));
        assert_eq!(
            PoolChange::of("b", "s", &ServerShape::default(), true).tracks(),
            None
        );
    }

    #[test]
    fn named_defaults_are_profiles_a_new_backend_copies() {
        let cfg = "defaults\n    mode http\n    timeout client 5s\nbackend b\n    balance roundrobin\n\
                   defaults vz_web\n    mode http\n    timeout client 5s\n    balance roundrobin\n    \
                   option httpchk GET /\n";
        let s = ShapeSummary::from_config(cfg);
        assert_eq!(s.defaults, vec!["mode http", "timeout client 5s"]);
        assert_eq!(s.profiles["vz_web"].len(), 4);
        assert!(s.backends["b"].options == vec!["balance roundrobin"]);
        let web = ["balance roundrobin", "option httpchk GET /"].map(String::from);
        assert_eq!(s.profile_for(&web), Some("vz_web"));
        assert_eq!(s.profile_for(&web[..1]), None);
        let sticky = [
            "balance roundrobin",
            "cookie c insert indirect nocache httponly",
            "option httpchk GET /",
        ]
        .map(String::from);
        assert_eq!(s.profile_for(&sticky), None);
        // A new profile is a shape change in words.
        let live = ShapeSummary::from_config(&cfg.replace("vz_web", "vz_api"));
        let d = s.diff(&live);
        assert!(d.contains(&"defaults vz_web added".to_string()), "{d:?}");
        assert!(d.contains(&"defaults vz_api removed".to_string()), "{d:?}");
        // An old summary file without profiles still reads.
        let old: ShapeSummary = serde_json::from_str(
            r#"{"fingerprint":"x","tls":false,"global":[],"defaults":[],"frontends":{},"backends":{}}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(old.profiles.is_empty());
    }

    #[test]
    fn summary_path_is_next_to_config() {
        assert_eq!(
            summary_path(Path::new("/etc/haproxy/haproxy.cfg")),
            PathBuf::from("/etc/haproxy/haproxy.cfg.shape.json")
        );
    }
}
