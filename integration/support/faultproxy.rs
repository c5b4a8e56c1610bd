//! A fault proxy in front of an HAProxy stats socket: a unix socket that relays each
//! connection to the real socket, except one, whose reply it cuts (closes) or hangs (stops
//! relaying and keeps the connection open) after a given number of reply bytes. vezasock is
//! pointed at it with `--admin-socket`, so a test sees what a command does when the socket it
//! talks to dies or stalls mid-reply, at a point the test chooses.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What happens to the chosen connection's reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Closed after the bytes relayed.
    Cut,
    /// Nothing more relayed, the connection held open until the client gives up (or 30 s).
    Hang,
}

/// Which connection (0 = the first) and after how many reply bytes.
#[derive(Debug, Clone, Copy)]
pub struct FaultAt {
    pub connection: usize,
    pub after_bytes: usize,
    pub fault: Fault,
}

/// The running proxy; stopped (and its socket removed) on drop.
pub struct FaultProxy {
    pub path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// How long a hung connection is held at most, and the bound of every relay.
const HOLD: Duration = Duration::from_secs(30);

impl FaultProxy {
    /// Listens on `path` and relays to `target`, with `at`'s fault on that connection.
    pub fn start(path: &Path, target: &Path, at: FaultAt) -> FaultProxy {
        let _ = std::fs::remove_file(path);
        let listener =
            UnixListener::bind(path).unwrap_or_else(|e| panic!("bind {}: {e}", path.display()));
        listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("{e}"));
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let target = target.to_path_buf();
        let thread = std::thread::spawn(move || accept_loop(&listener, &target, at, &stopping));
        FaultProxy {
            path: path.to_path_buf(),
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Accepts until stopped (polled every 5 ms), one relay thread per connection.
fn accept_loop(listener: &UnixListener, target: &Path, at: FaultAt, stop: &AtomicBool) {
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((client, _)) => {
                let fault = (n == at.connection).then_some(at);
                n += 1;
                let target = target.to_path_buf();
                std::thread::spawn(move || relay(client, &target, fault));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// Relays one connection both ways; the reply side applies `fault`.
fn relay(client: UnixStream, target: &Path, fault: Option<FaultAt>) {
    let _ = client.set_nonblocking(false);
    let Ok(server) = UnixStream::connect(target) else {
        return; // the client sees a closed connection, as from a dead HAProxy
    };
    let (Ok(mut client_in), Ok(mut server_out)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let _ = client_in.set_read_timeout(Some(HOLD));
    let up = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = client_in.read(&mut buf) {
            if server_out.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = server_out.shutdown(std::net::Shutdown::Write);
    });
    reply(server, client, fault);
    let _ = up.join();
}

/// Copies the reply to the client until its end, or until the fault's byte count.
fn reply(mut server: UnixStream, mut client: UnixStream, fault: Option<FaultAt>) {
    let _ = server.set_read_timeout(Some(HOLD));
    let limit = fault.map_or(usize::MAX, |f| f.after_bytes);
    let mut sent = 0usize;
    let mut buf = [0u8; 4096];
    while sent < limit {
        let n = match server.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n.min(limit - sent),
        };
        if client.write_all(&buf[..n]).is_err() {
            break;
        }
        sent += n;
    }
    if fault.is_some_and(|f| f.fault == Fault::Hang && sent >= limit) {
        hold(&mut client);
    }
    let _ = client.shutdown(std::net::Shutdown::Both);
    let _ = server.shutdown(std::net::Shutdown::Both);
}

/// Keeps a hung connection open until the client closes it (reads drained) or [`HOLD`].
fn hold(client: &mut UnixStream) {
    let deadline = Instant::now() + HOLD;
    let _ = client.set_read_timeout(Some(Duration::from_millis(100)));
    let mut buf = [0u8; 512];
    while Instant::now() < deadline {
        match client.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}
