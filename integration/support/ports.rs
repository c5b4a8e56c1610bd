//! Loopback ports for the tests and the benches: one free port, or a block of consecutive
//! ports held until the process that needs each one binds it.

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A free loopback TCP port (bound then released: another process may take it before the
/// caller binds it, so a start that binds it retries on "Address already in use").
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free loopback port: {e}"))
}

/// `n` consecutive loopback ports, each held by a bound socket that does not listen: every
/// bind by anyone else (another test's port search, a backend, HAProxy) fails until it is
/// released, and a connection to it is refused as to a free port. Dropping it releases the
/// ports still held.
pub struct PortBlock {
    /// The first port.
    pub base: u16,
    held: Vec<(u16, OwnedFd)>,
}

impl PortBlock {
    /// Releases `port` (the caller binds it next).
    pub fn release(&mut self, port: u16) {
        self.held.retain(|(p, _)| *p != port);
    }

    /// Releases every port still held.
    pub fn release_all(&mut self) {
        self.held.clear();
    }
}

/// The first free block of `n` consecutive loopback ports, held (see [`PortBlock`]), in
/// 20000-31999: below Linux's ephemeral range (32768+), where a port can be taken by an
/// outgoing connection (a health check, a load client) before its server binds it. Each call
/// starts elsewhere (pid, time and a counter), so tests running side by side do not try the
/// same blocks.
pub fn free_port_block(n: usize) -> PortBlock {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as usize);
    let seed = (std::process::id() as usize ^ nanos)
        .wrapping_add(CALLS.fetch_add(1, Ordering::Relaxed).wrapping_mul(4_099));
    for attempt in 0..50usize {
        let base = 20_000 + (seed.wrapping_mul(7919).wrapping_add(attempt * 1_237) % 12_000);
        let held: Option<Vec<(u16, OwnedFd)>> = (0..n)
            .map(|i| {
                let port = u16::try_from(base + i).ok()?;
                hold(port).map(|fd| (port, fd))
            })
            .collect();
        if let (Some(held), Ok(base)) = (held, u16::try_from(base)) {
            return PortBlock { base, held };
        }
    }
    panic!("no block of {n} free loopback ports")
}

/// A TCP socket bound to `127.0.0.1:port` with `SO_REUSEPORT`, without `SO_REUSEADDR`, and not
/// listening, or `None` when the port is taken. `SO_REUSEPORT` lets HAProxy (which binds its
/// listeners with it) bind the port while it is still held, so a port meant for HAProxy can
/// stay held until HAProxy has it; any other bind (a port search, a backend) still fails, and
/// a non-listening socket never takes a connection.
fn hold(port: u16) -> Option<OwnedFd> {
    use rustix::net::{bind, socket, sockopt, AddressFamily, SocketType};
    let fd = socket(AddressFamily::INET, SocketType::STREAM, None).ok()?;
    sockopt::set_socket_reuseport(&fd, true).ok()?;
    bind(&fd, &SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).ok()?;
    Some(fd)
}
