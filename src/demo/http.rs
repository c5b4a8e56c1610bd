//! A minimal HTTP/1.1 client for the demo's load and the tests: new-connection requests and
//! keep-alive connections, each request bounded by a timeout. It only needs to read the
//! small `content-length` answers of the demo backends and HAProxy's own error pages.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// One answer: status code and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// A keep-alive connection to the edge (reconnects when the server closed it).
pub struct Conn {
    addr: SocketAddr,
    timeout: Duration,
    stream: Option<BufReader<TcpStream>>,
}

impl Conn {
    pub fn new(addr: SocketAddr, timeout: Duration) -> Conn {
        Conn {
            addr,
            timeout,
            stream: None,
        }
    }

    /// `GET path` with `Host: host` on the kept connection. A connection the server closed
    /// between two requests is reopened once; a failure during a request is an error.
    pub fn get(&mut self, host: &str, path: &str) -> io::Result<Answer> {
        if self.stream.is_none() {
            self.stream = Some(BufReader::new(connect(self.addr, self.timeout)?));
        }
        let result = match self.stream.as_mut() {
            Some(stream) => exchange(stream, host, path, false),
            None => Err(io::Error::other("no connection")),
        };
        match result {
            Ok((answer, keep)) => {
                if !keep {
                    self.stream = None;
                }
                Ok(answer)
            }
            Err(e) => {
                self.stream = None;
                Err(e)
            }
        }
    }
}

/// `GET path` with `Host: host` on a new connection, closed after the answer.
pub fn get(addr: SocketAddr, host: &str, path: &str, timeout: Duration) -> io::Result<Answer> {
    let mut stream = BufReader::new(connect(addr, timeout)?);
    exchange(&mut stream, host, path, true).map(|(a, _)| a)
}

fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Sends one request and reads one answer; returns whether the connection may be reused.
fn exchange(
    stream: &mut BufReader<TcpStream>,
    host: &str,
    path: &str,
    close: bool,
) -> io::Result<(Answer, bool)> {
    let request = format!(
        "GET {path} HTTP/1.1\r\nhost: {host}\r\n{}\r\n",
        if close { "connection: close\r\n" } else { "" }
    );
    stream.get_mut().write_all(request.as_bytes())?;
    let mut status_line = String::new();
    if stream.read_line(&mut status_line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "closed before answering",
        ));
    }
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad status line {status_line:?}"),
            )
        })?;
    let (mut length, mut keep) = (None, !close);
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed in the headers",
            ));
        }
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse::<usize>().ok();
        } else if lower.starts_with("connection: close") {
            keep = false;
        }
    }
    let body = match length {
        Some(n) if n <= 1 << 20 => {
            let mut buf = vec![0u8; n];
            stream.read_exact(&mut buf)?;
            buf
        }
        Some(n) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("body of {n} bytes is too large"),
            ))
        }
        None => {
            // No length: the body ends at close (HAProxy's own error pages do this).
            keep = false;
            let mut buf = Vec::new();
            stream.take(1 << 20).read_to_end(&mut buf)?;
            buf
        }
    };
    Ok((
        Answer {
            status,
            body: String::from_utf8_lossy(&body).trim_end().to_string(),
        },
        keep,
    ))
}
