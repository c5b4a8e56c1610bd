//! A local edge that is NOT started, for the tests where HAProxy is started by hand (a first
//! install, a takeover of a foreign edge, certificates): the embedded topology with every
//! server on a loopback port a backend answers on, every file under a temp dir, written as a
//! topology file. `vezasock::demo::LocalEdge` is the started one; this follows its steps,
//! its port retry included: a block whose port is taken before a backend binds it is tried
//! again on another block, and HAProxy's own bind, failing on "Address already in use", is
//! tried again (the frontend ports are held until HAProxy starts, so only a moment is open).

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vezasock::demo::backend::Backend;
use vezasock::demo::edge::{kill_group, label};
use vezasock::topology::{LocalServer, Tls, Topology};

use crate::support::haproxy::{raw_one_shot, Haproxy};
use crate::support::ports::{free_port_block, PortBlock};
use crate::support::topology::to_toml;

/// How many times a start on a taken port is tried, as `LocalEdge` does.
const TRIES: usize = 5;

/// The edge, not started: its topology, topology file and backends.
pub struct Fresh {
    /// Servers on loopback, every path under `dir`, HAProxy = the version given.
    pub topology: Topology,
    /// `dir/topology.toml`, saying exactly [`Fresh::topology`].
    pub file: PathBuf,
    /// The frontend's plain-HTTP bind.
    pub http: SocketAddr,
    /// The HTTPS bind's port, when started with certificates.
    pub https: Option<u16>,
    /// The servers moved to loopback, with their ports.
    pub servers: Vec<LocalServer>,
    pub dir: PathBuf,
    /// The frontend ports, held until [`Fresh::start`].
    ports: std::sync::Mutex<PortBlock>,
    _backends: Vec<Backend>,
}

/// The embedded veza topology for HAProxy `v` under `dir`: plain HTTP on the first port of a
/// block, with `certs` an HTTPS bind on the second (`[tls] redirect = false`, certificates from
/// `certs`), the servers on the ports after. The topology file is written.
pub fn fresh(v: &Haproxy, dir: &Path, certs: Option<&Path>) -> Fresh {
    let base = Topology::embedded_default().unwrap_or_else(|e| panic!("{e}"));
    let count = base
        .with_local_servers(1)
        .map(|(_, s)| s.len())
        .unwrap_or_else(|e| panic!("{e}"));
    let binds = 1 + u16::from(certs.is_some());
    let mut tries = 0;
    let (mut ports, mut topology, servers, backends) = loop {
        tries += 1;
        let mut ports = free_port_block(count + usize::from(binds));
        let (topology, servers) = base
            .with_local_servers(ports.base + binds)
            .unwrap_or_else(|e| panic!("{e}"));
        match start_backends(&topology, &servers, &mut ports) {
            Ok(backends) => break (ports, topology, servers, backends),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && tries < TRIES => {}
            Err(e) => panic!("start the backends: {e}"),
        }
    };
    let http = SocketAddr::from(([127, 0, 0, 1], ports.base));
    topology.listen.http = http.to_string();
    topology.tls = certs.map(|certs| Tls {
        certs_dir: certs.to_path_buf(),
        redirect: false,
    });
    let https = certs.map(|_| ports.base + 1);
    if let Some(port) = https {
        topology.listen.https = format!("127.0.0.1:{port}");
    }
    topology.paths = topology.paths.under(dir);
    topology.paths.haproxy = v.bin.clone();
    // The servers' ports are bound by now: only the frontend's stay held.
    for s in &servers {
        ports.release(s.port);
    }
    let fresh = Fresh {
        topology,
        file: dir.join("topology.toml"),
        http,
        https,
        servers,
        dir: dir.to_path_buf(),
        ports: std::sync::Mutex::new(ports),
        _backends: backends,
    };
    fresh.write();
    fresh
}

/// One backend per server, each port released from `ports` just before its backend binds it.
fn start_backends(
    topology: &Topology,
    servers: &[LocalServer],
    ports: &mut PortBlock,
) -> std::io::Result<Vec<Backend>> {
    let mut backends = Vec::with_capacity(servers.len());
    for s in servers {
        ports.release(s.port);
        backends.push(Backend::start(&label(topology, s), s.port)?);
    }
    Ok(backends)
}

impl Fresh {
    /// Writes [`Fresh::topology`] to [`Fresh::file`] (after a change), checking that the file
    /// loads back to exactly this topology, or the test would install something else.
    pub fn write(&self) {
        let text = to_toml(&self.topology);
        std::fs::write(&self.file, &text).unwrap_or_else(|e| panic!("{e}"));
        let loaded = Topology::load(&self.file).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(loaded, self.topology, "{text}");
    }

    /// Starts HAProxy with `command` (the one `apply` prints, or `edge::apply::install::start_command`)
    /// in its own process group and waits until its admin socket answers; a start that fails on
    /// a taken port is tried again, up to 5 times.
    pub fn start(&self, command: &[String]) -> Started {
        let admin = &self.topology.paths.admin_socket;
        // HAProxy's own ports stay held until it runs: it binds them beside the holding sockets
        // (SO_REUSEPORT, see `ports::hold`), so no other test can take them in between.
        let mut tries = 0;
        loop {
            tries += 1;
            let mut started = Started::spawn(command, &self.dir);
            match started.wait_ready(admin) {
                Ok(()) => {
                    if let Ok(mut ports) = self.ports.lock() {
                        ports.release_all();
                    }
                    return started;
                }
                Err(log) if log.contains("Address already in use") && tries < TRIES => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(log) => panic!("HAProxy did not start with {command:?}:\n{log}"),
            }
        }
    }
}

/// HAProxy started by hand; its whole process group is killed on drop.
pub struct Started {
    child: Child,
    log: PathBuf,
}

impl Started {
    fn spawn(command: &[String], dir: &Path) -> Started {
        let log = dir.join("haproxy.log");
        let out = std::fs::File::create(&log).unwrap_or_else(|e| panic!("{e}"));
        let err = out.try_clone().unwrap_or_else(|e| panic!("{e}"));
        let (program, rest) = command
            .split_first()
            .unwrap_or_else(|| panic!("empty start command"));
        let child = Command::new(program)
            .args(rest)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // Own process group: drop kills the master and every worker together.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("start {command:?}: {e}"));
        Started { child, log }
    }

    /// Waits (at most 10 s) until `show info` answers on `admin`; `Err` is HAProxy's log when
    /// it exited or did not answer.
    fn wait_ready(&mut self, admin: &Path) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exited with {status}:\n{}", self.log()));
            }
            if raw_one_shot(admin, "show info\n").is_ok_and(|r| r.contains("Pid:")) {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(format!("no admin socket after 10 s:\n{}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// HAProxy's own output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The master process's PID.
    pub fn master_pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the group now (HAProxy down, files left in place).
    pub fn kill(&mut self) {
        kill_group(&mut self.child);
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        self.kill();
    }
}
