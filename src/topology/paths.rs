//! Where the edge keeps its files and sockets on the host: the HAProxy config, the map files,
//! the runtime sockets, the server-state file, vezasock's own state dir, the HAProxy binary and
//! how to reload it.
//!
//! Defaults follow a Debian HAProxy install. Every path can be set in the topology file
//! (`[paths]`) and overridden again by [`PathOverrides`] (the CLI fills it from flags and
//! `VEZASOCK_…` environment variables), so tests can point everything at a temp dir.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How vezasock asks HAProxy to re-read its config (reload path only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReloadMethod {
    /// `reload` on the master CLI (HAProxy ≥ 2.7 answers `Success=0|1` with the startup logs).
    MasterCli,
    /// SIGUSR2 to the master process (its pid from `pid_file`), then watch the worker pids.
    Signal,
}

impl ReloadMethod {
    /// The word used in the topology file and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            ReloadMethod::MasterCli => "master-cli",
            ReloadMethod::Signal => "signal",
        }
    }

    /// Parses the word used in the topology file and on the command line.
    pub fn parse(word: &str) -> Option<ReloadMethod> {
        match word {
            "master-cli" => Some(ReloadMethod::MasterCli),
            "signal" => Some(ReloadMethod::Signal),
            _ => None,
        }
    }
}

impl std::fmt::Display for ReloadMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The runtime paths of one edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Paths {
    /// The live HAProxy config (`haproxy -f`).
    pub config: PathBuf,
    /// Where `hosts.map` and `active-color.map` live.
    pub maps_dir: PathBuf,
    /// Stats socket at level admin (flips, server states).
    pub admin_socket: PathBuf,
    /// Stats socket at level operator, for read-only status.
    pub operator_socket: PathBuf,
    /// The master CLI socket (`haproxy -W -S <path>`): reloads, worker list.
    pub master_socket: PathBuf,
    /// `server-state-file`: server states carried across a reload.
    pub server_state_file: PathBuf,
    /// vezasock's own state: lock, journal, active colors, history.
    pub state_dir: PathBuf,
    /// The HAProxy binary used for `haproxy -c` and to start the edge.
    pub haproxy: PathBuf,
    /// The master's pid file (used by the `signal` reload method).
    pub pid_file: PathBuf,
    /// How to reload.
    pub reload_method: ReloadMethod,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            config: PathBuf::from("/etc/haproxy/haproxy.cfg"),
            maps_dir: PathBuf::from("/etc/haproxy/maps"),
            admin_socket: PathBuf::from("/run/haproxy/admin.sock"),
            operator_socket: PathBuf::from("/run/haproxy/operator.sock"),
            master_socket: PathBuf::from("/run/haproxy/master.sock"),
            server_state_file: PathBuf::from("/var/lib/haproxy/server-state"),
            // The seed's playbooks read `/var/lib/veza/active-color-<env>` (and its history) here.
            state_dir: PathBuf::from("/var/lib/veza"),
            haproxy: PathBuf::from("/usr/sbin/haproxy"),
            pid_file: PathBuf::from("/run/haproxy.pid"),
            reload_method: ReloadMethod::MasterCli,
        }
    }
}

impl Paths {
    /// Every file and socket under one directory (tests, demos): `<dir>/haproxy.cfg`,
    /// `<dir>/maps`, `<dir>/admin.sock`, … The binary and reload method are kept.
    pub fn under(&self, dir: &Path) -> Paths {
        Paths {
            config: dir.join("haproxy.cfg"),
            maps_dir: dir.join("maps"),
            admin_socket: dir.join("admin.sock"),
            operator_socket: dir.join("operator.sock"),
            master_socket: dir.join("master.sock"),
            server_state_file: dir.join("server-state"),
            state_dir: dir.join("state"),
            haproxy: self.haproxy.clone(),
            pid_file: dir.join("haproxy.pid"),
            reload_method: self.reload_method,
        }
    }

    /// The hosts map (`host → env`).
    pub fn hosts_map(&self) -> PathBuf {
        self.maps_dir.join(crate::topology::HOSTS_MAP)
    }

    /// The active color map (`env → color`).
    pub fn active_color_map(&self) -> PathBuf {
        self.maps_dir.join(crate::topology::ACTIVE_COLOR_MAP)
    }

    /// The preview map (`<env>:<token> → color`): runtime state, never rendered over.
    pub fn preview_map(&self) -> PathBuf {
        self.maps_dir.join(crate::topology::PREVIEW_MAP)
    }

    /// Applies the overrides that are set.
    pub fn apply(&mut self, o: &PathOverrides) {
        let set = |slot: &mut PathBuf, v: &Option<PathBuf>| {
            if let Some(v) = v {
                *slot = v.clone();
            }
        };
        set(&mut self.config, &o.config);
        set(&mut self.maps_dir, &o.maps_dir);
        set(&mut self.admin_socket, &o.admin_socket);
        set(&mut self.operator_socket, &o.operator_socket);
        set(&mut self.master_socket, &o.master_socket);
        set(&mut self.server_state_file, &o.server_state_file);
        set(&mut self.state_dir, &o.state_dir);
        set(&mut self.haproxy, &o.haproxy);
        set(&mut self.pid_file, &o.pid_file);
        if let Some(m) = o.reload_method {
            self.reload_method = m;
        }
    }
}

/// Path overrides from the command line or the environment; `None` keeps the topology's value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathOverrides {
    pub config: Option<PathBuf>,
    pub maps_dir: Option<PathBuf>,
    pub admin_socket: Option<PathBuf>,
    pub operator_socket: Option<PathBuf>,
    pub master_socket: Option<PathBuf>,
    pub server_state_file: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub haproxy: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub reload_method: Option<ReloadMethod>,
}
