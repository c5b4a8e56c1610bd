//! `vezasock exec`: the operator's better `socat`. Sends one runtime command (or a `;`-joined
//! line), prints HAProxy's reply, and exits non-zero with HAProxy's message on stderr when
//! HAProxy reports an error. `--json` prints the parsed reply.
//!
//! A single command goes over a one-shot connection (what socat does, minus the fork). A
//! `;`-joined line is split on its unescaped `;` and sent as a pipelined batch on one
//! interactive session, so each reply is framed, matched to its command and checked on its
//! own: a one-shot `;` chain would return the replies glued together.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde::Serialize;

use super::common::runtime;
use super::exit::Exit;
use super::finish::{self, Failed, Report};
use super::output;
use crate::edge::EdgeError;
use crate::runtime::codec::MAX_REPLY;
use crate::runtime::command::raw::Parsed;
use crate::runtime::command::RawLine;
use crate::runtime::endpoint::{Endpoint, Socket, WorkerTarget};
use crate::runtime::oneshot::one_shot_line_unchecked;
use crate::runtime::session::{Reply, Session, Timeouts};
use crate::runtime::Error;

/// Bound on `--timeout`, the same 7 days as every duration flag (`cli::args`); beyond it a
/// deadline could overflow the clock.
const MAX_TIMEOUT_S: f64 = 7.0 * 86_400.0;

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Worker stats socket: a unix path, `unix:PATH`, `tcp:HOST:PORT` or `HOST:PORT`.
    #[arg(
        long,
        env = "VEZASOCK_SOCKET",
        conflicts_with = "master",
        default_value = "/run/haproxy/admin.sock"
    )]
    pub socket: String,

    /// Master CLI socket instead (worker commands are routed to `--target`).
    #[arg(long, env = "VEZASOCK_MASTER_SOCKET")]
    pub master: Option<String>,

    /// Worker to route to through the master: `1` (current, `@1`), `!PID`, or `master`.
    #[arg(long, requires = "master")]
    pub target: Option<String>,

    /// Print the parsed reply as JSON.
    #[arg(long)]
    pub json: bool,

    /// How long to wait for the connection and for each reply (e.g. 10s, 500ms; plain seconds
    /// too; at most 7d).
    #[arg(long, value_name = "DURATION", default_value = "10", value_parser = super::args::Checked(super::args::parse_seconds))]
    pub timeout: f64,

    /// The runtime command, e.g. `show servers state` or `set map F k v; show map F`.
    #[arg(required = true, num_args = 1.., last = true)]
    pub command: Vec<String>,
}

/// One command's result, as `--json` prints it.
#[derive(Debug, Serialize)]
struct JsonReply {
    command: String,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply: Option<Parsed>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// What `exec` did: the replies as `--json` prints them (one, or a list for a chain; empty
/// without `--json`, whose replies are printed as they come), and the exit of the first reply
/// that failed.
struct ExecReport {
    replies: Vec<JsonReply>,
    exit: Exit,
}

/// `--json`: one reply as an object, a chain's as an array.
#[derive(Serialize)]
#[serde(untagged)]
enum ExecJson<'a> {
    One(&'a JsonReply),
    Chain(&'a [JsonReply]),
}

impl Report for ExecReport {
    type Json<'a> = ExecJson<'a>;

    fn json(&self) -> ExecJson<'_> {
        match &self.replies[..] {
            [one] => ExecJson::One(one),
            all => ExecJson::Chain(all),
        }
    }

    fn human(&self) -> String {
        String::new()
    }

    fn pretty(&self) -> bool {
        true
    }

    /// Exit 1 when HAProxy refused a command (its message is on stderr), 3 when a reply could
    /// not be read; the first such reply decides.
    fn exit(&self) -> Exit {
        self.exit
    }
}

pub fn run(args: &ExecArgs) -> ExitCode {
    let runtime = match runtime("exec") {
        Ok(rt) => rt,
        Err(exit) => return exit.into(),
    };
    let report = runtime.block_on(exec(args));
    finish::finish("exec", args.json, report.map_err(Failed::from))
}

fn endpoint(args: &ExecArgs) -> Result<Endpoint, Error> {
    let Some(master) = &args.master else {
        return Ok(match args.socket.parse::<Socket>()? {
            Socket::Unix(path) => Endpoint::Unix(path),
            Socket::Tcp(addr) => Endpoint::Tcp(addr),
        });
    };
    let socket = if master.starts_with('/') {
        Socket::Unix(PathBuf::from(master))
    } else {
        master.parse::<Socket>()?
    };
    let target = match &args.target {
        None => None,
        Some(t) => Some(parse_target(t)?),
    };
    Ok(Endpoint::Master { socket, target })
}

fn parse_target(text: &str) -> Result<WorkerTarget, Error> {
    let spelled = if text.starts_with('@') {
        text.to_string()
    } else {
        format!("@{text}")
    };
    spelled.parse::<WorkerTarget>()
}

/// `--timeout` as a duration, refused (exit 2) when it is not more than 0 and at most 7 days
/// (the parser already refused `inf`, `nan`, `1e19`, which would panic or overflow a deadline).
fn timeout(seconds: f64) -> Result<Duration, String> {
    if !(seconds > 0.0 && seconds <= MAX_TIMEOUT_S) {
        return Err(format!(
            "--timeout {seconds}: must be more than 0 and at most {MAX_TIMEOUT_S} seconds"
        ));
    }
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("--timeout {seconds}: {e}"))
}

async fn exec(args: &ExecArgs) -> Result<ExecReport, EdgeError> {
    let line = args.command.join(" ");
    let wait = timeout(args.timeout).map_err(EdgeError::BadInput)?;
    let timeouts = Timeouts {
        connect: wait,
        reply: wait,
    };
    let endpoint = endpoint(args)?;
    let command = RawLine::new(&line)?;
    let parts: Vec<String> = command
        .commands()
        .iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    let replies = if parts.len() <= 1 {
        one_shot_line_unchecked(&endpoint, &command, timeouts, MAX_REPLY)
            .await
            .map(|r| vec![r])
    } else {
        batch(&endpoint, &parts, timeouts).await
    };
    Ok(report(&replies?, args.json))
}

async fn batch(
    endpoint: &Endpoint,
    parts: &[String],
    timeouts: Timeouts,
) -> Result<Vec<Reply>, Error> {
    let commands = parts
        .iter()
        .map(|p| RawLine::new(p))
        .collect::<Result<Vec<_>, _>>()?;
    let mut session = Session::connect(endpoint, timeouts).await?;
    session.send_lines(&commands).await
}

/// Prints every refusal (stderr) and, without `json`, every reply (stdout), as they come; the
/// exit code is the first failure.
fn report(replies: &[Reply], json: bool) -> ExecReport {
    let mut exit = Exit::Ok;
    let mut json_out = Vec::new();
    for (i, reply) in replies.iter().enumerate() {
        let index = (replies.len() > 1).then_some(i + 1);
        let refusal = reply.refusal(index);
        if let Some(error) = &refusal {
            eprintln!("vezasock exec: {error}");
            if exit == Exit::Ok {
                exit = Exit::Refused;
            }
        }
        if json {
            let (parsed, error) = match (&refusal, reply.parse()) {
                (Some(e), _) => (None, Some(e.to_string())),
                (None, Ok(p)) => (Some(p), None),
                (None, Err(e)) => {
                    if exit == Exit::Ok {
                        exit = Exit::Unreachable;
                    }
                    (None, Some(e.to_string()))
                }
            };
            json_out.push(JsonReply {
                command: reply.command.clone(),
                ok: error.is_none(),
                reply: parsed,
                error,
            });
        } else if refusal.is_none() {
            // HAProxy's bytes as a one-shot call returns them, so scripts that used socat see
            // the same output (in a chain, without the session's severity prefix).
            output::bytes(reply.output());
        }
    }
    ExecReport {
        replies: json_out,
        exit,
    }
}
