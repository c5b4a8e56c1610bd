//! The topology file as written by the operator: serde structs that mirror the TOML, with
//! `toml::Spanned` on every value we validate so errors can point at its line.
//!
//! Nothing here is trusted; `validate` turns it into the checked model in `super`.
//! Unknown keys are refused (`deny_unknown_fields`) so a typo never silently falls back to a
//! default.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// `Spanned<String>`: a string and where it sits in the file.
pub type SStr = Spanned<String>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTopology {
    /// The edge's name (used in comments and the stats page title).
    pub name: Option<SStr>,
    /// The base sticky cookie name; each env gets `<cookie>_<env>`.
    pub cookie: Option<SStr>,
    /// DNS suffix of the containers (`lxd` → `veza-api-blue.lxd`).
    pub container_domain: Option<SStr>,
    /// `none` (503 when the live color is down) or `cross-color`.
    pub failover: Option<SStr>,
    /// Where HAProxy sends request logs (a syslog socket path or `ipv4:port`); none: no logs.
    pub log: Option<SStr>,
    #[serde(default)]
    pub listen: RawListen,
    pub tls: Option<RawTls>,
    pub acme: Option<RawAcme>,
    /// `[metrics]`: HAProxy's Prometheus exporter on its own listener.
    pub metrics: Option<RawMetrics>,
    pub notify: Option<RawNotify>,
    #[serde(default)]
    pub timeouts: RawTimeouts,
    #[serde(default)]
    pub paths: RawPaths,
    #[serde(default, rename = "component")]
    pub components: Vec<Spanned<RawComponent>>,
    #[serde(default, rename = "env")]
    pub envs: Vec<Spanned<RawEnv>>,
    #[serde(default, rename = "external")]
    pub externals: Vec<Spanned<RawExternal>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListen {
    /// Plain HTTP bind, e.g. `:80` or `127.0.0.1:8080`.
    pub http: Option<SStr>,
    /// TLS bind, used only when `[tls]` is present.
    pub https: Option<SStr>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// Directory of PEM files (cert + key), given to `bind … ssl crt <dir>`.
    pub certs_dir: SStr,
    /// Redirect plain HTTP to HTTPS (ACME challenges excepted). Default true.
    pub redirect: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    /// `address:port`; default `127.0.0.1:8405`.
    pub listen: Option<SStr>,
    /// vezasock's own metrics, rewritten after each command (a node_exporter textfile).
    pub textfile: Option<SStr>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    /// `http[s]://host:port/path`: one JSON event per milestone of each operation.
    pub webhook: Option<SStr>,
    /// For an `https://` webhook: the CA certificates (PEM) to trust instead of the system's.
    pub ca_file: Option<SStr>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAcme {
    /// The http-01 challenge path prefix. Default `/.well-known/acme-challenge/`.
    pub path: Option<SStr>,
    /// Where the ACME client answers challenges (`host:port`).
    pub server: SStr,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTimeouts {
    pub connect: Option<SStr>,
    pub client: Option<SStr>,
    pub server: Option<SStr>,
    pub tunnel: Option<SStr>,
    pub http_request: Option<SStr>,
    pub check: Option<SStr>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPaths {
    pub config: Option<SStr>,
    pub maps_dir: Option<SStr>,
    pub admin_socket: Option<SStr>,
    pub operator_socket: Option<SStr>,
    pub master_socket: Option<SStr>,
    pub server_state_file: Option<SStr>,
    pub state_dir: Option<SStr>,
    pub haproxy: Option<SStr>,
    pub pid_file: Option<SStr>,
    pub reload_method: Option<SStr>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawComponent {
    pub name: SStr,
    /// Path prefixes (segment-aligned); none = the catch-all component.
    #[serde(default)]
    pub paths: Vec<SStr>,
    /// The port the component's containers listen on; needed only by the envs that use the
    /// container-name default servers.
    pub port: Option<Spanned<i64>>,
    /// Health check path (HTTP GET); none = a TCP check.
    pub check: Option<SStr>,
    /// `option http-no-delay` for long-lived streamed responses.
    #[serde(default)]
    pub http_no_delay: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEnv {
    pub name: SStr,
    /// Container name prefix: `<prefix>-<component>-<color>.<container_domain>`.
    pub prefix: Option<SStr>,
    #[serde(default)]
    pub hosts: Vec<SStr>,
    /// Base cookie name for this env (default: the edge's `cookie`).
    pub cookie: Option<SStr>,
    /// `false` = no blue/green: each component is one plain pool.
    pub colors: Option<bool>,
    #[serde(default)]
    pub components: Vec<SStr>,
    /// Explicit servers per component, instead of the container-name default.
    #[serde(default)]
    pub servers: BTreeMap<String, Spanned<RawServers>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServers {
    pub blue: Option<Vec<SStr>>,
    pub green: Option<Vec<SStr>>,
    pub pool: Option<Vec<SStr>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExternal {
    pub name: SStr,
    #[serde(default)]
    pub hosts: Vec<SStr>,
    /// No servers = a 503 placeholder.
    #[serde(default)]
    pub servers: Vec<SStr>,
    pub check: Option<SStr>,
}
