//! What `status` reports, as its `--json` shows it: the edge, HAProxy, each env with its sides,
//! components, backends and servers.

use serde::Serialize;

use crate::edge::active_color::Sides;
use crate::edge::cert::CertEntry;
use crate::state::{AdminDecision, HistoryEntry, OpenOperation};
use crate::topology::Color;

/// The whole status of the edge.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub edge: String,
    /// `none` or `cross-color`.
    pub failover: &'static str,
    /// What the policy means, in words.
    pub failover_meaning: String,
    pub haproxy: HaproxyStatus,
    pub envs: Vec<EnvStatus>,
    pub externals: Vec<BackendStatus>,
    /// Interrupted operations not tied to one env (apply, reload, a backend by name).
    pub open_operations: Vec<OpenOperation>,
    /// Every drift and interruption, one line each (empty: all consistent).
    pub problems: Vec<String>,
    /// The certificates of the edge, disk and runtime side by side (`vezasock cert list`).
    pub certificates: Vec<CertEntry>,
    /// Canaries in progress (`vezasock canary`): env, color, percent, as written through.
    pub canaries: Vec<crate::edge::deploy::canary::InProgress>,
    /// A prepared transaction holding the edge (`vezasock txn`, a fleet switch), if any: it
    /// counts as a problem (exit 6) while it is open.
    pub transaction: Option<crate::state::Transaction>,
    /// Loud lines that do not make the edge inconsistent: a canary in progress, a certificate
    /// expiring within
    /// [`CERT_WARN_DAYS`], a placeholder certificate, a certificate file not loaded.
    pub warnings: Vec<String>,
}

/// HAProxy itself.
#[derive(Debug, Clone, Serialize)]
pub struct HaproxyStatus {
    pub version: String,
    pub worker_pid: Option<u32>,
    pub uptime_s: Option<u64>,
    pub master: Option<MasterStatus>,
    /// Why the master was not asked (socket missing, permission denied, …).
    pub master_error: Option<String>,
}

/// From master `show proc`.
#[derive(Debug, Clone, Serialize)]
pub struct MasterStatus {
    pub pid: u32,
    pub reloads: u32,
    pub failed_reloads: Option<u32>,
    pub uptime: String,
    pub workers: Vec<u32>,
    pub old_workers: Vec<u32>,
}

/// One env.
#[derive(Debug, Clone, Serialize)]
pub struct EnvStatus {
    pub name: String,
    pub colored: bool,
    /// The active color on each side (colored envs).
    pub sides: Option<Sides>,
    /// The color live for new requests (the runtime's; blue when the entry is missing).
    pub live: Option<Color>,
    pub drift: bool,
    pub interrupted: Vec<OpenOperation>,
    pub last_switch: Option<HistoryEntry>,
    pub components: Vec<ComponentStatus>,
}

/// One component of an env.
#[derive(Debug, Clone, Serialize)]
pub struct ComponentStatus {
    pub name: String,
    pub backends: Vec<BackendStatus>,
}

/// One backend.
#[derive(Debug, Clone, Serialize)]
pub struct BackendStatus {
    pub backend: String,
    pub color: Option<Color>,
    /// Serves the env's new requests now.
    pub live: bool,
    pub servers: Vec<ServerStatus>,
}

/// One server.
#[derive(Debug, Clone, Serialize)]
pub struct ServerStatus {
    pub server: String,
    /// `ready`, `drain` or `maint`, as HAProxy has it.
    pub admin: String,
    /// The admin state recorded on disk (`server-admin.json`), if any.
    pub recorded: Option<AdminDecision>,
    /// The recorded state is not the runtime's (a restart would change it).
    pub admin_drift: bool,
    /// `up`, `down`, `starting`, `stopping`.
    pub op: String,
    /// `show stat` status (`UP`, `DOWN`, `DRAIN`, `MAINT`, `UP 1/2`, `no check`).
    pub status: String,
    /// Last check (`L7OK`, `L4CON`, …).
    pub check: String,
    pub sessions: u64,
    pub weight: u64,
    /// A cross-color backup server (tracks its own-color twin).
    pub backup: bool,
}
