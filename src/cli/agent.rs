//! `vezasock edge-agent`: the far side of a fleet coordinator that reaches this edge over ssh.
//! It reads one JSON request per line on stdin and answers one JSON line on stdout
//! ([`crate::edge::fleet::protocol`]); nothing else is written to stdout. A prepared
//! transaction whose coordinator goes away (stdin ends) is aborted.

use std::process::ExitCode;

use clap::Args;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Stdin, Stdout};

use super::args::{Checked, TopologyArgs};
use super::common::runtime_and_edge;
use super::exit::Exit;
use crate::edge::fleet::agent::{serve, Conversation};
use crate::edge::fleet::protocol::{parse_request, Request, Response, MAX_LINE};

// Arguments of `vezasock edge-agent` (plain comment: see `cli::Command`).
#[derive(Debug, Clone, Args)]
pub struct AgentArgs {
    #[command(flatten)]
    pub topology: TopologyArgs,
    /// The name the coordinator's fleet file gives this edge; its webhook events carry it
    /// (default: the topology's name). The coordinator passes it.
    #[arg(long, value_name = "NAME", value_parser = Checked(crate::topology::fleet::edge_name))]
    pub fleet_edge: Option<String>,
}

struct Io {
    input: BufReader<Stdin>,
    out: Stdout,
}

impl Io {
    /// The next line's bytes, without its newline, at most [`MAX_LINE`] + 1 of them kept (the
    /// rest of a longer line is read and dropped). `None` at the end of input or on a read
    /// error.
    async fn next_line(&mut self) -> Option<Vec<u8>> {
        let mut line = Vec::new();
        let mut any = false;
        loop {
            let buf = self.input.fill_buf().await.ok()?;
            if buf.is_empty() {
                return any.then_some(line);
            }
            any = true;
            let (chunk, ended) = match buf.iter().position(|b| *b == b'\n') {
                Some(i) => (&buf[..i], Some(i + 1)),
                None => (buf, None),
            };
            let room = (MAX_LINE + 1).saturating_sub(line.len());
            line.extend_from_slice(&chunk[..chunk.len().min(room)]);
            let used = ended.unwrap_or(buf.len());
            self.input.consume(used);
            if ended.is_some() {
                return Some(line);
            }
        }
    }
}

impl Conversation for Io {
    /// The next request; `None` at the end of input. A line that is not a request (not
    /// UTF-8, not JSON, an unknown op, too long) is answered with an error and skipped.
    async fn next(&mut self) -> Option<Request> {
        loop {
            let line = self.next_line().await?;
            match parse_request(&line) {
                Ok(r) => return Some(r),
                Err(e) => self.send(&Response::failure(&e)).await,
            }
        }
    }

    async fn send(&mut self, r: &Response) {
        let mut line = serde_json::to_vec(r).unwrap_or_else(|_| {
            b"{\"ok\":false,\"detail\":\"unserializable\",\"exit\":5}".to_vec()
        });
        line.push(b'\n');
        let _ = self.out.write_all(&line).await;
        let _ = self.out.flush().await;
    }
}

/// Runs `vezasock edge-agent`.
pub fn run(args: &AgentArgs) -> ExitCode {
    let (rt, edge) = match runtime_and_edge("edge-agent", &args.topology) {
        Ok(both) => both,
        Err(exit) => return exit.into(),
    };
    rt.block_on(async {
        let mut io = Io {
            input: BufReader::new(tokio::io::stdin()),
            out: tokio::io::stdout(),
        };
        serve(&edge, &mut io).await;
    });
    after_conversation(&rt, &edge, args.fleet_edge.as_deref());
    Exit::Ok.into()
}

/// When the coordinator's conversation ends (its command is done), the edge's events are posted
/// and its metrics textfile rewritten, when its topology names a webhook, a textfile: an edge
/// reached over ssh tells what the fleet command did as a local edge does. Not after each
/// request: a write between two commit steps would widen the fleet's commit skew. A failure is
/// a warning on stderr (the coordinator's).
fn after_conversation(rt: &tokio::runtime::Runtime, edge: &crate::edge::Edge, name: Option<&str>) {
    let served = super::after::Served {
        edge,
        fleet_name: name,
    };
    super::after::after_edges(rt, "edge-agent", &[served]);
}
