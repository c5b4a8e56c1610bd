//! Where to reach HAProxy: a stats socket (unix or TCP) or the master CLI socket.
//!
//! Parsed from what an operator types (`--socket`):
//! - `unix:/run/haproxy/admin.sock`, `/run/haproxy/admin.sock`, `./admin.sock`, `admin.sock`;
//! - `tcp:127.0.0.1:9999`, `127.0.0.1:9999`, `[::1]:9999`, `tcp:localhost:9999`;
//! - `master:/run/haproxy-master.sock`, `master:tcp:127.0.0.1:9998`, optionally ending with a
//!   worker target: `@1` (current worker), `@2` (the 2nd), `@!1234` (by PID), `@master`.
//!
//! [`Endpoint`]'s `Display` prints this same form, so error messages show what to type.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use super::Error;

/// A socket address: a unix socket path or a TCP `host:port`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Socket {
    /// A unix stream socket.
    Unix(PathBuf),
    /// A TCP address, `host:port` (`[v6]:port` for IPv6 literals).
    Tcp(String),
}

/// Which process the master CLI forwards a command to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WorkerTarget {
    /// The current worker: `@1`.
    #[default]
    Current,
    /// The N-th worker by relative number, `@N` (1 = current, 2 = the previous one, …).
    Relative(u32),
    /// A worker by PID, `@!<pid>`; reaches old (leaving) workers too.
    Pid(u32),
    /// The master itself: its own commands go without a prefix.
    Master,
}

impl WorkerTarget {
    /// The routing prefix put before a worker command (`@1`, `@!1234`), `None` for the master.
    pub fn prefix(&self) -> Option<String> {
        match self {
            WorkerTarget::Current => Some("@1".to_string()),
            WorkerTarget::Relative(n) => Some(format!("@{n}")),
            WorkerTarget::Pid(pid) => Some(format!("@!{pid}")),
            WorkerTarget::Master => None,
        }
    }
}

impl fmt::Display for WorkerTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.prefix() {
            Some(prefix) => f.write_str(&prefix),
            None => f.write_str("@master"),
        }
    }
}

impl FromStr for WorkerTarget {
    type Err = Error;

    /// `@1`, `@3`, `@!1234`, `@master` (the leading `@` is optional).
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |why| Error::InvalidArgument {
            what: "worker target",
            value: s.to_string(),
            why,
        };
        let text = s.strip_prefix('@').unwrap_or(s);
        if text == "master" {
            return Ok(WorkerTarget::Master);
        }
        if let Some(pid) = text.strip_prefix('!') {
            return match pid.parse::<u32>() {
                Ok(pid) if pid > 0 && is_digits(pid_text(s)) => Ok(WorkerTarget::Pid(pid)),
                _ => Err(bad("expected @!<pid> with a positive PID")),
            };
        }
        match text.parse::<u32>() {
            Ok(1) if is_digits(text) => Ok(WorkerTarget::Current),
            Ok(n) if n > 0 && is_digits(text) => Ok(WorkerTarget::Relative(n)),
            _ => Err(bad("expected @<n>, @!<pid> or @master")),
        }
    }
}

/// The digits after `@!` (for the strict digit check).
fn pid_text(s: &str) -> &str {
    s.trim_start_matches('@').trim_start_matches('!')
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Where to reach HAProxy.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// A worker stats socket on a unix path.
    Unix(PathBuf),
    /// A worker stats socket on TCP (`host:port`).
    Tcp(String),
    /// The master CLI (`haproxy -W -S <socket>`); worker commands are routed to `target`
    /// (the current worker `@1` when `None`).
    Master {
        socket: Socket,
        target: Option<WorkerTarget>,
    },
}

impl Endpoint {
    /// The socket to connect to.
    pub fn socket(&self) -> Socket {
        match self {
            Endpoint::Unix(path) => Socket::Unix(path.clone()),
            Endpoint::Tcp(addr) => Socket::Tcp(addr.clone()),
            Endpoint::Master { socket, .. } => socket.clone(),
        }
    }

    /// True for the master CLI.
    pub fn is_master(&self) -> bool {
        matches!(self, Endpoint::Master { .. })
    }

    /// The worker target of a master endpoint (`@1` by default); `None` for a stats socket.
    pub fn target(&self) -> Option<WorkerTarget> {
        match self {
            Endpoint::Master { target, .. } => Some(target.unwrap_or_default()),
            _ => None,
        }
    }

    /// The same master socket with another worker target (a stats socket is returned as is).
    pub fn with_target(&self, target: WorkerTarget) -> Endpoint {
        match self {
            Endpoint::Master { socket, .. } => Endpoint::Master {
                socket: socket.clone(),
                target: Some(target),
            },
            other => other.clone(),
        }
    }

    /// The routing prefix for a worker command (`@1 `…), empty on a stats socket.
    pub fn worker_prefix(&self) -> Option<String> {
        self.target().and_then(|t| t.prefix())
    }
}

impl fmt::Display for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Socket::Unix(path) => write!(f, "unix:{}", path.display()),
            Socket::Tcp(addr) => write!(f, "tcp:{addr}"),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(path) => write!(f, "unix:{}", path.display()),
            Endpoint::Tcp(addr) => write!(f, "tcp:{addr}"),
            Endpoint::Master { socket, target } => {
                write!(f, "master:{socket}")?;
                match target {
                    Some(target) => write!(f, "{target}"),
                    None => Ok(()),
                }
            }
        }
    }
}

impl FromStr for Socket {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |why| Error::InvalidArgument {
            what: "socket",
            value: s.to_string(),
            why,
        };
        if s.is_empty() {
            return Err(bad("empty; expected unix:<path> or tcp:<host>:<port>"));
        }
        if s.chars().any(char::is_control) {
            return Err(bad("holds a control character"));
        }
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(bad("unix: needs a path"));
            }
            return Ok(Socket::Unix(PathBuf::from(path)));
        }
        if let Some(addr) = s.strip_prefix("tcp:") {
            return if is_host_port(addr) {
                Ok(Socket::Tcp(addr.to_string()))
            } else {
                Err(bad("tcp: needs <host>:<port> ([<ipv6>]:<port> for IPv6)"))
            };
        }
        if s.starts_with('/') || s.starts_with('.') {
            return Ok(Socket::Unix(PathBuf::from(s)));
        }
        if is_host_port(s) {
            return Ok(Socket::Tcp(s.to_string()));
        }
        if !s.contains(':') {
            // A relative socket file name, e.g. `admin.sock`.
            return Ok(Socket::Unix(PathBuf::from(s)));
        }
        Err(bad(
            "expected unix:<path>, a path, tcp:<host>:<port> or <ip>:<port>",
        ))
    }
}

/// `host:port` with a non-empty host and a valid port; IPv6 literals in brackets.
fn is_host_port(s: &str) -> bool {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return addr.port() != 0;
    }
    let Some((host, port)) = s.rsplit_once(':') else {
        return false;
    };
    let port_ok = is_digits(port) && port.parse::<u16>().is_ok_and(|p| p > 0);
    let host_ok = !host.is_empty()
        && !host.contains(':')
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_');
    port_ok && host_ok
}

impl FromStr for Endpoint {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        if let Some(rest) = s.strip_prefix("master:") {
            // A trailing `@1`, `@!1234` or `@master` is the target, when it parses as one.
            let (socket, target) = match rest.rsplit_once('@') {
                Some((socket, target)) if !socket.is_empty() => {
                    match target.parse::<WorkerTarget>() {
                        Ok(target) => (socket, Some(target)),
                        Err(_) => (rest, None),
                    }
                }
                _ => (rest, None),
            };
            return Ok(Endpoint::Master {
                socket: socket.parse()?,
                target,
            });
        }
        Ok(match s.parse::<Socket>()? {
            Socket::Unix(path) => Endpoint::Unix(path),
            Socket::Tcp(addr) => Endpoint::Tcp(addr),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(s: &str) -> Endpoint {
        s.parse().unwrap()
    }

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(ep("unix:/run/a.sock"), Endpoint::Unix("/run/a.sock".into()));
        assert_eq!(ep("/run/a.sock"), Endpoint::Unix("/run/a.sock".into()));
        assert_eq!(ep("./a.sock"), Endpoint::Unix("./a.sock".into()));
        assert_eq!(ep("a.sock"), Endpoint::Unix("a.sock".into()));
        assert_eq!(
            ep("tcp:127.0.0.1:9999"),
            Endpoint::Tcp("127.0.0.1:9999".into())
        );
        assert_eq!(ep("127.0.0.1:9999"), Endpoint::Tcp("127.0.0.1:9999".into()));
        assert_eq!(ep("[::1]:9999"), Endpoint::Tcp("[::1]:9999".into()));
        assert_eq!(
            ep("tcp:localhost:9999"),
            Endpoint::Tcp("localhost:9999".into())
        );
        assert_eq!(
            ep("master:/run/m.sock"),
            Endpoint::Master {
                socket: Socket::Unix("/run/m.sock".into()),
                target: None
            }
        );
        assert_eq!(
            ep("master:tcp:127.0.0.1:9998@!1234"),
            Endpoint::Master {
                socket: Socket::Tcp("127.0.0.1:9998".into()),
                target: Some(WorkerTarget::Pid(1234))
            }
        );
        assert_eq!(
            ep("master:/m.sock@2").target(),
            Some(WorkerTarget::Relative(2))
        );
        assert_eq!(ep("master:/m.sock@1").target(), Some(WorkerTarget::Current));
        assert_eq!(ep("master:/m.sock").target(), Some(WorkerTarget::Current));
        assert_eq!(ep("master:/m.sock@master").worker_prefix(), None);
        // `@` inside a path that is not a target stays in the path.
        assert_eq!(
            ep("master:/tmp/a@b.sock").socket(),
            Socket::Unix("/tmp/a@b.sock".into())
        );
    }

    #[test]
    fn refuses_nonsense() {
        for bad in [
            "",
            "unix:",
            "tcp:",
            "tcp:127.0.0.1",
            "tcp:127.0.0.1:0",
            "tcp:host:99999",
            "host:port",
            "a\nb",
            "master:",
        ] {
            assert!(
                bad.parse::<Endpoint>().is_err(),
                "{bad:?} should be refused"
            );
        }
        for bad in ["@0", "@!0", "@x", "@!", "@-1", "@+2"] {
            assert!(
                bad.parse::<WorkerTarget>().is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "unix:/run/a.sock",
            "tcp:127.0.0.1:9999",
            "tcp:[::1]:9999",
            "master:unix:/run/m.sock",
            "master:unix:/run/m.sock@1",
            "master:unix:/run/m.sock@3",
            "master:tcp:127.0.0.1:9998@!42",
            "master:unix:/m@master",
        ] {
            assert_eq!(ep(s).to_string(), s);
        }
    }
}
