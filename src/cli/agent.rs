//! `vezasock edge-agent`: the far side of a fleet coordinator that reaches this edge over ssh.
//! It reads one JSON request per line on stdin and answers one JSON line on stdout
//! ([`crate::edge::fleet::protocol`]); nothing else is written to stdout. A prepared
//! transaction whose coordinator goes away (stdin ends) is aborted.

use std::process::ExitCode;

use clap::Args;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines, Stdin, Stdout};

use super::args::TopologyArgs;
use super::common::runtime_and_edge;
use super::exit::Exit;
use crate::edge::fleet::agent::{failure, serve, Conversation, ExitOf};
use crate::edge::fleet::protocol::{Request, Response};
use crate::edge::EdgeError;

// Arguments of `vezasock edge-agent` (plain comment: see `cli::Command`).
#[derive(Debug, Clone, Args)]
pub struct AgentArgs {
    #[command(flatten)]
    pub topology: TopologyArgs,
}

/// The longest request line read (a prepare is a few hundred bytes).
const MAX_LINE: usize = 64 * 1024;

struct Io {
    lines: Lines<BufReader<Stdin>>,
    out: Stdout,
}

impl Conversation for Io {
    /// The next request; `None` at the end of input. A line that is not a request is answered
    /// with an error and skipped.
    async fn next(&mut self) -> Option<Request> {
        loop {
            let line = self.lines.next_line().await.ok()??;
            if line.len() > MAX_LINE {
                self.send(&failure(
                    exit_code,
                    &EdgeError::BadInput("request line too long".into()),
                ))
                .await;
                continue;
            }
            match serde_json::from_str::<Request>(&line) {
                Ok(r) => return Some(r),
                Err(e) => {
                    self.send(&failure(
                        exit_code,
                        &EdgeError::BadInput(format!("not a request: {e}")),
                    ))
                    .await;
                }
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

    fn exit_of(&self) -> ExitOf {
        exit_code
    }
}

/// The CLI's exit code of an error, as a number.
pub(crate) fn exit_code(e: &EdgeError) -> u8 {
    Exit::of_edge(e) as u8
}

/// Runs `vezasock edge-agent`.
pub fn run(args: &AgentArgs) -> ExitCode {
    let (rt, edge) = match runtime_and_edge("edge-agent", &args.topology) {
        Ok(both) => both,
        Err(exit) => return exit.into(),
    };
    rt.block_on(async {
        let mut io = Io {
            lines: BufReader::new(tokio::io::stdin()).lines(),
            out: tokio::io::stdout(),
        };
        serve(&edge, &mut io).await;
    });
    Exit::Ok.into()
}
