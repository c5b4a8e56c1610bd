//! Small HTTP/1.1 servers on loopback that answer with their name (`staging api green`), so a
//! demo or a test sees a flip the way a browser would. Keep-alive; `?stream=N` answers with N
//! chunks 100 ms apart (a long-lived response that must survive a flip).
//!
//! Plain std threads, one per connection: the load here is tens of connections, and the
//! servers must run whatever async runtime (or none) the caller uses.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// A running backend; stops accepting when dropped.
pub struct Backend {
    pub addr: SocketAddr,
    pub name: String,
    stop: Arc<AtomicBool>,
}

impl Backend {
    /// Listens on `127.0.0.1:<port>` (0 = any free port) and answers every request with `name`.
    pub fn start(name: &str, port: u16) -> io::Result<Backend> {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let label = name.to_string();
        thread::Builder::new()
            .name(format!("backend {name}"))
            .spawn(move || {
                for conn in listener.incoming() {
                    if flag.load(Ordering::Relaxed) {
                        break;
                    }
                    if let Ok(conn) = conn {
                        let label = label.clone();
                        let _ = thread::Builder::new().spawn(move || serve(conn, &label));
                    }
                }
            })?;
        Ok(Backend {
            addr,
            name: name.to_string(),
            stop,
        })
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

/// Keep-alive loop: read a request head, answer, repeat until the peer closes or idles 60 s.
fn serve(conn: TcpStream, name: &str) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(60)));
    let _ = conn.set_nodelay(true);
    let Ok(mut out) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    loop {
        let mut request_line = String::new();
        let mut close = false;
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" || line == "\n" {
                if request_line.is_empty() {
                    continue; // stray empty line between requests
                }
                break;
            }
            if request_line.is_empty() {
                request_line = line;
            } else if line.to_ascii_lowercase().starts_with("connection: close") {
                close = true;
            }
        }
        let body = format!("{name}\n");
        let chunks = stream_chunks(&request_line);
        let result = if chunks > 0 {
            stream(&mut out, &body, chunks)
        } else {
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n{}\r\n",
                body.len(),
                if close { "connection: close\r\n" } else { "" }
            );
            out.write_all(head.as_bytes())
                .and_then(|()| out.write_all(body.as_bytes()))
        };
        if result.is_err() || close {
            return;
        }
    }
}

/// `GET /path?stream=N HTTP/1.1` → N (bounded to 600, one minute of chunks).
fn stream_chunks(request_line: &str) -> u32 {
    request_line
        .split_whitespace()
        .nth(1)
        .and_then(|target| target.split_once("stream=").map(|(_, n)| n))
        .and_then(|n| n.split('&').next())
        .and_then(|n| n.parse::<u32>().ok())
        .map_or(0, |n| n.min(600))
}

fn stream(out: &mut TcpStream, body: &str, chunks: u32) -> io::Result<()> {
    out.write_all(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n",
    )?;
    for _ in 0..chunks {
        out.write_all(format!("{:x}\r\n{body}\r\n", body.len()).as_bytes())?;
        thread::sleep(Duration::from_millis(100));
    }
    out.write_all(b"0\r\n\r\n")
}
