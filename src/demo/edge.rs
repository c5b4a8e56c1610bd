//! A complete local edge on loopback: the topology rendered with every server moved to a
//! 127.0.0.1 port, one [`Backend`] per server answering with its env, component and color,
//! and a master-worker HAProxy started from the rendered files in a private directory.
//! `vezasock demo`, the integration tests and the benchmarks all drive this same edge.

use std::collections::BTreeMap;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::backend::Backend;
use crate::edge::apply::install::start_command;
use crate::render::{render, write::write_rendered};
use crate::topology::{Color, LocalServer, Topology};

/// Why a local edge could not start.
#[derive(Debug, thiserror::Error)]
pub enum LocalEdgeError {
    #[error("no free block of {0} loopback ports found")]
    NoPorts(usize),
    #[error("{0}")]
    Topology(String),
    #[error("cannot render the edge: {0}")]
    Render(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("HAProxy did not start: {0}")]
    Start(String),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> LocalEdgeError {
    let what = what.into();
    move |source| LocalEdgeError::Io { what, source }
}

/// SIGKILLs the process group that `child` leads (spawned with `process_group(0)`: an HAProxy
/// master and every worker, old ones included), then reaps `child`. Best effort: a group that is
/// already gone is not an error.
pub fn kill_group(child: &mut Child) {
    if let Some(group) = i32::try_from(child.id())
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A running local edge. Dropping it kills HAProxy (master and workers) and the backends.
pub struct LocalEdge {
    /// The topology as rendered: servers on loopback, paths inside `dir`.
    pub topology: Topology,
    /// Where HTTP requests go (the frontend's plain-HTTP bind).
    pub http: SocketAddr,
    /// The servers that were moved to loopback, with their ports.
    pub servers: Vec<LocalServer>,
    /// Every file and socket of this edge lives here.
    pub dir: PathBuf,
    backends: Vec<Backend>,
    child: Option<Child>,
}

impl LocalEdge {
    /// Renders `base` for loopback into `dir` (created if needed) and starts it with the
    /// HAProxy binary `haproxy`. Every env starts blue unless `colors` says otherwise.
    pub fn start(
        base: &Topology,
        haproxy: &Path,
        dir: &Path,
        colors: &BTreeMap<String, Color>,
    ) -> Result<LocalEdge, LocalEdgeError> {
        LocalEdge::start_with(base, haproxy, dir, colors, None)
    }

    /// [`LocalEdge::start`] with TLS as the embedded edge has it (`[tls] redirect` on): an
    /// HTTPS bind on a loopback port of its own, serving the certificates already in
    /// `certs_dir` (HAProxy does not start without one).
    pub fn start_tls(
        base: &Topology,
        haproxy: &Path,
        dir: &Path,
        colors: &BTreeMap<String, Color>,
        certs_dir: &Path,
    ) -> Result<LocalEdge, LocalEdgeError> {
        LocalEdge::start_with(base, haproxy, dir, colors, Some(certs_dir))
    }

    /// Starts the edge; a block of ports whose HTTP bind another process took before HAProxy
    /// bound it (a parallel test: "Address already in use" in HAProxy's log) is tried again on
    /// another block, up to 5 times in all, as a taken backend port is in [`Self::start_once`].
    fn start_with(
        base: &Topology,
        haproxy: &Path,
        dir: &Path,
        colors: &BTreeMap<String, Color>,
        certs_dir: Option<&Path>,
    ) -> Result<LocalEdge, LocalEdgeError> {
        let mut tries = 0;
        loop {
            tries += 1;
            match LocalEdge::start_once(base, haproxy, dir, colors, certs_dir) {
                Err(LocalEdgeError::Start(log))
                    if log.contains("Address already in use") && tries < 5 => {}
                other => return other,
            }
        }
    }

    fn start_once(
        base: &Topology,
        haproxy: &Path,
        dir: &Path,
        colors: &BTreeMap<String, Color>,
        certs_dir: Option<&Path>,
    ) -> Result<LocalEdge, LocalEdgeError> {
        std::fs::create_dir_all(dir).map_err(io_err(format!("create {}", dir.display())))?;
        let server_count = count_servers(base);
        // The HTTP bind, the servers, and the HTTPS bind last when there is one.
        let ports = server_count + 1 + usize::from(certs_dir.is_some());
        // A block found free can be taken by another process (a parallel test) before every
        // backend is bound: such a start is tried again on another block.
        let mut tries = 0;
        let (base_port, mut topology, servers, backends) = loop {
            tries += 1;
            let base_port = free_port_block(ports).ok_or(LocalEdgeError::NoPorts(ports))?;
            let (topology, servers) = base
                .with_local_servers(base_port + 1)
                .map_err(LocalEdgeError::Topology)?;
            match start_backends(&topology, &servers) {
                Ok(backends) => break (base_port, topology, servers, backends),
                Err((e, _)) if e.kind() == std::io::ErrorKind::AddrInUse && tries < 5 => {}
                Err((e, what)) => return Err(io_err(what)(e)),
            }
        };
        topology.listen.http = format!("127.0.0.1:{base_port}");
        // TLS needs certificates: without them the local edge is plain HTTP on loopback.
        topology.tls = certs_dir.map(|certs| crate::topology::Tls {
            certs_dir: certs.to_path_buf(),
            redirect: true,
        });
        let https_port = u16::try_from(usize::from(base_port) + server_count + 1).ok();
        if let (Some(_), Some(port)) = (certs_dir, https_port) {
            topology.listen.https = format!("127.0.0.1:{port}");
        }
        // Logging to a socket that is not there costs every request and reaches no one.
        if topology
            .log
            .as_deref()
            .is_some_and(|l| l.starts_with('/') && !Path::new(l).exists())
        {
            topology.log = None;
        }
        topology.paths = topology.paths.under(dir);
        topology.paths.haproxy = haproxy.to_path_buf();

        let rendered =
            render(&topology, colors).map_err(|e| LocalEdgeError::Render(e.to_string()))?;
        std::fs::create_dir_all(&topology.paths.state_dir)
            .map_err(io_err("create the state dir"))?;
        let config_dir = topology.paths.config.parent().unwrap_or(dir).to_path_buf();
        write_rendered(&rendered, &config_dir).map_err(io_err("write the rendered edge"))?;
        if topology.paths.maps_dir != config_dir {
            // The maps live in their own dir; write_rendered put them beside the config.
            std::fs::create_dir_all(&topology.paths.maps_dir)
                .map_err(io_err("create the maps dir"))?;
            for name in [
                crate::topology::HOSTS_MAP,
                crate::topology::ACTIVE_COLOR_MAP,
                crate::topology::PREVIEW_MAP,
            ] {
                std::fs::rename(config_dir.join(name), topology.paths.maps_dir.join(name))
                    .map_err(io_err(format!("move {name}")))?;
            }
        }
        let http = SocketAddr::from(([127, 0, 0, 1], base_port));
        let mut edge = LocalEdge {
            topology,
            http,
            servers,
            dir: dir.to_path_buf(),
            backends,
            child: None,
        };
        edge.start_haproxy()?;
        Ok(edge)
    }

    /// Starts HAProxy from the files on disk (also used to restart it).
    pub fn start_haproxy(&mut self) -> Result<(), LocalEdgeError> {
        let paths = &self.topology.paths;
        let log = std::fs::File::create(self.dir.join("haproxy.log"))
            .map_err(io_err("create haproxy.log"))?;
        let log2 = log.try_clone().map_err(io_err("open haproxy.log"))?;
        // The command `vezasock apply` tells operators to start a first install with.
        let command = start_command(paths);
        let child = Command::new(&command[0])
            .args(&command[1..])
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            // Its own process group, so stopping kills the master and every worker together.
            .process_group(0)
            .spawn()
            .map_err(io_err(format!("start {}", paths.haproxy.display())))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(LocalEdgeError::Start(format!(
                        "exited with {status}:\n{}",
                        self.log()
                    )));
                }
            }
            if UnixStream::connect(&self.topology.paths.admin_socket).is_ok()
                && UnixStream::connect(&self.topology.paths.master_socket).is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(LocalEdgeError::Start(format!(
                    "no admin socket after 10 s:\n{}",
                    self.log()
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills HAProxy (master and workers, SIGKILL): what a crash or a host reboot does.
    pub fn kill_haproxy(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(&mut child);
        }
    }

    /// A full restart: kill, then start again from the files on disk.
    pub fn restart_haproxy(&mut self) -> Result<(), LocalEdgeError> {
        self.kill_haproxy();
        self.start_haproxy()
    }

    /// The master process's PID, while it runs.
    pub fn master_pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The environment that points the `vezasock` binary at this edge: every path variable
    /// the CLI reads (`cli::render::TopologyArgs`), each set to this edge's path. The topology
    /// file (`VEZASOCK_CONFIG`) and the reload method are left to the caller.
    pub fn cli_env(&self) -> Vec<(&'static str, std::ffi::OsString)> {
        let p = &self.topology.paths;
        [
            ("VEZASOCK_HAPROXY_CONFIG", &p.config),
            ("VEZASOCK_MAPS_DIR", &p.maps_dir),
            ("VEZASOCK_ADMIN_SOCKET", &p.admin_socket),
            ("VEZASOCK_OPERATOR_SOCKET", &p.operator_socket),
            ("VEZASOCK_MASTER_SOCKET", &p.master_socket),
            ("VEZASOCK_SERVER_STATE_FILE", &p.server_state_file),
            ("VEZASOCK_STATE_DIR", &p.state_dir),
            ("VEZASOCK_HAPROXY", &p.haproxy),
            ("VEZASOCK_PID_FILE", &p.pid_file),
        ]
        .into_iter()
        .map(|(name, path)| (name, path.clone().into_os_string()))
        .collect()
    }

    /// HAProxy's own output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("haproxy.log")).unwrap_or_default()
    }

    /// Stops the backend serving `backend`/`server` (its health check will go DOWN), or starts
    /// it again on the same port. Returns false when no such server exists.
    pub fn set_backend_running(&mut self, backend: &str, server: &str, running: bool) -> bool {
        let Some(s) = self
            .servers
            .iter()
            .find(|s| s.backend == backend && s.server == server)
            .cloned()
        else {
            return false;
        };
        let label = label(&self.topology, &s);
        self.backends.retain(|b| b.addr.port() != s.port);
        if running {
            match Backend::start(&label, s.port) {
                Ok(b) => self.backends.push(b),
                Err(_) => return false,
            }
        }
        true
    }
}

impl Drop for LocalEdge {
    fn drop(&mut self) {
        self.kill_haproxy();
    }
}

/// What a backend answers: `<env> <component> <color>` for env servers, else the backend name.
pub fn label(topology: &Topology, server: &LocalServer) -> String {
    for env in &topology.envs {
        for comp in &env.components {
            for color in Color::ALL {
                if env.backend_name(&comp.name, color) == server.backend {
                    return match server.color {
                        Some(c) => format!("{} {} {}", env.name, comp.name, c.as_str()),
                        None => format!("{} {} {}", env.name, comp.name, server.server),
                    };
                }
            }
        }
    }
    server.backend.clone()
}

fn count_servers(topology: &Topology) -> usize {
    topology
        .with_local_servers(1)
        .map(|(_, s)| s.len())
        .unwrap_or(0)
}

/// The first port of `n` consecutive free loopback ports (checked by binding each), in
/// 20000-32767.
/// One backend per server; the first that cannot bind is the error, with what it was doing
/// (the ones started are stopped as they drop).
fn start_backends(
    topology: &Topology,
    servers: &[LocalServer],
) -> Result<Vec<Backend>, (std::io::Error, String)> {
    let mut backends = Vec::with_capacity(servers.len());
    for s in servers {
        let label = label(topology, s);
        let backend = Backend::start(&label, s.port)
            .map_err(|e| (e, format!("start backend {label} on port {}", s.port)))?;
        backends.push(backend);
    }
    Ok(backends)
}

fn free_port_block(n: usize) -> Option<u16> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as usize);
    let seed = std::process::id() as usize ^ nanos;
    for attempt in 0..50usize {
        // Below Linux's ephemeral range (32768+): a port picked there can be taken by an
        // outgoing connection (a health check, a load client) before the backend binds it.
        let base = 20_000 + (seed.wrapping_mul(7919).wrapping_add(attempt * 1_237) % 12_000);
        let all_free = (0..n).all(|i| TcpListener::bind(("127.0.0.1", (base + i) as u16)).is_ok());
        if all_free {
            return Some(base as u16);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every path variable `TopologyArgs` reads is set, and each one lands on the edge's own
    /// path (checked by giving the values to the CLI parser as the matching flags).
    #[test]
    fn cli_env_points_every_cli_path_at_the_edge() {
        use clap::{Args, FromArgMatches};
        let base = Topology::embedded_default().unwrap_or_else(|e| panic!("{e}"));
        let edge = LocalEdge {
            topology: Topology {
                paths: base.paths.under(Path::new("/tmp/edge")),
                ..base.clone()
            },
            http: SocketAddr::from(([127, 0, 0, 1], 1)),
            servers: Vec::new(),
            dir: PathBuf::from("/tmp/edge"),
            backends: Vec::new(),
            child: None,
        };
        let command = crate::cli::render::TopologyArgs::augment_args(clap::Command::new("t"));
        let env = edge.cli_env();
        let mut read: Vec<String> = command
            .get_arguments()
            .filter_map(|a| a.get_env())
            .map(|e| e.to_string_lossy().into_owned())
            .filter(|e| {
                ![
                    "VEZASOCK_CONFIG",
                    "VEZASOCK_RELOAD_METHOD",
                    "VEZASOCK_METRICS_TEXTFILE",
                    "VEZASOCK_NOTIFY_WEBHOOK",
                    "VEZASOCK_NOTIFY_CA_FILE",
                ]
                .contains(&e.as_str())
            })
            .collect();
        read.sort();
        let mut set: Vec<String> = env.iter().map(|(k, _)| k.to_string()).collect();
        set.sort();
        assert_eq!(set, read);

        let mut argv = vec![std::ffi::OsString::from("t")];
        for (name, value) in &env {
            let arg = command
                .get_arguments()
                .find(|a| a.get_env().is_some_and(|e| e == *name))
                .unwrap_or_else(|| panic!("no flag reads {name}"));
            let long = arg
                .get_long()
                .unwrap_or_else(|| panic!("{name}: no long flag"));
            argv.push(format!("--{long}").into());
            argv.push(value.clone());
        }
        let matches = command
            .clone()
            .try_get_matches_from(argv)
            .unwrap_or_else(|e| panic!("{e}"));
        let args = crate::cli::render::TopologyArgs::from_arg_matches(&matches)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut loaded = base;
        loaded
            .override_paths(&args.overrides())
            .unwrap_or_else(|e| panic!("{e}"));
        loaded.paths.reload_method = edge.topology.paths.reload_method;
        assert_eq!(loaded.paths, edge.topology.paths);
    }
}
