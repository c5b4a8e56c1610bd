//! A small lab edge for the runtime-client tests: one frontend, a hosts map, an active-color
//! map, two backends with a blue and a green server each (prod's green is DOWN on purpose),
//! an admin socket, an operator socket and the master socket.

use crate::support::haproxy::{Fixture, Haproxy};
use crate::support::ports::free_port;
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
    /// `GET /` with `Host: <host>` through the frontend on a new connection (the demo's HTTP
    /// client: 5 s deadlines, bounded body, trailing newline trimmed).
    pub fn http_get(&self, host: &str) -> std::io::Result<HttpReply> {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.http_port));
        let answer = vezasock::demo::http::get(addr, host, "/", std::time::Duration::from_secs(5))?;
        Ok(HttpReply {
            status: answer.status,
            body: answer.body,
        })
    }
}

fn start_backend(name: &str) -> Backend {
    Backend::start(name, 0).unwrap_or_else(|e| panic!("backend {name}: {e}"))
}
