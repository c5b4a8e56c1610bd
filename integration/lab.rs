//! A small lab edge for the runtime-client tests: one frontend, a hosts map, an active-color
//! map, two backends with a blue and a green server each (prod's green is DOWN on purpose),
//! an admin socket, an operator socket and the master socket.

use crate::haproxy::{free_port, Fixture, Haproxy};
use vezasock::demo::backend::Backend;

pub struct Lab {
    pub fixture: Fixture,
    pub http_port: u16,
    /// Held so the backends live as long as the lab.
    _backends: Vec<Backend>,
}

impl Lab {
    pub fn start(haproxy: &Haproxy) -> Lab {
        let backends = vec![
            start_backend("staging api blue"),
            start_backend("staging api green"),
            start_backend("prod web blue"),
        ];
        let down_port = free_port();
        let http_port = free_port();
        let config = format!(
            r#"global
    stats socket {{dir}}/admin.sock mode 600 level admin
    stats socket {{dir}}/operator.sock mode 600 level operator severity-output number
    stats timeout 2m
    server-state-file {{dir}}/server-state

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    load-server-state-from-file global

frontend fe_main
    bind 127.0.0.1:{http_port}
    http-request set-var(txn.env) req.hdr(host),lower,map({{dir}}/hosts.map)
    http-request set-var(txn.color) var(txn.env),map({{dir}}/active-color.map,blue)
    use_backend be_%[var(txn.env)]_%[var(txn.color)] if {{ var(txn.env) -m found }}
    default_backend be_staging_api

backend be_staging_api
    server blue {b0} check inter 500ms
    server green {b1} check inter 500ms

backend be_prod_web
    server blue {b2} check inter 500ms
    server green 127.0.0.1:{down_port} check inter 500ms
"#,
            b0 = backends[0].addr,
            b1 = backends[1].addr,
            b2 = backends[2].addr,
        );
        let fixture = Fixture::start_with_files(
            haproxy,
            &config,
            &[
                (
                    "hosts.map",
                    "staging.example.test staging\nprod.example.test prod\n",
                ),
                ("active-color.map", "staging blue\nprod green\n"),
                ("scratch.map", "a 1\nb 2\n"),
            ],
        );
        Lab {
            fixture,
            http_port,
            _backends: backends,
        }
    }

    pub fn map(&self, name: &str) -> String {
        self.fixture.path(name).display().to_string()
    }
}

/// One HTTP answer as the lab's frontend sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    /// The status code from the status line.
    pub status: u16,
    /// The body (the connection is closed after it, so it runs to EOF).
    pub body: String,
}

impl Lab {
    /// A tiny HTTP/1.1 client over a std `TcpStream`, independent of the code under test:
    /// `GET /` with `Host: <host>` and `Connection: close` through the frontend, read to EOF.
    /// Deadlines: 2 s to connect, 5 s per read; the reply is bounded to 64 KiB.
    pub fn http_get(&self, host: &str) -> std::io::Result<HttpReply> {
        use std::io::{Error, ErrorKind, Read, Write};
        use std::net::{SocketAddr, TcpStream};
        use std::time::Duration;

        let addr = SocketAddr::from(([127, 0, 0, 1], self.http_port));
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.set_write_timeout(Some(Duration::from_secs(5)))?;
        let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes())?;
        let mut raw = Vec::new();
        stream.take(64 * 1024).read_to_end(&mut raw)?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let bad = |why: &str| Error::new(ErrorKind::InvalidData, format!("{why}: {text:?}"));
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| bad("no end of head"))?;
        let status = head
            .strip_prefix("HTTP/1.1 ")
            .or_else(|| head.strip_prefix("HTTP/1.0 "))
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| bad("no status line"))?;
        Ok(HttpReply {
            status,
            body: body.to_string(),
        })
    }
}

fn start_backend(name: &str) -> Backend {
    Backend::start(name, 0).unwrap_or_else(|e| panic!("backend {name}: {e}"))
}
