//! `vezasock edge-agent`: the far side of a fleet coordinator that reaches this edge over ssh.
//! It reads one JSON request per line on stdin and answers one JSON line on stdout
//! ([`crate::edge::fleet::protocol`]); nothing else is written to stdout. A prepared
//! transaction whose coordinator goes away (stdin ends) is aborted.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines, Stdin, Stdout};

use super::args::TopologyArgs;
use super::common::runtime_and_edge;
use super::exit::Exit;
use crate::edge::fleet::member::{repair, rollback_target, summarize};
use crate::edge::fleet::protocol::{Request, Response};
use crate::edge::switch::{LockWait, SwitchRequest};
use crate::edge::transaction::{self, Locked, Prepared};
use crate::edge::{Edge, EdgeError};

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

impl Io {
    /// The next request; `None` at the end of input. A line that is not a request is answered
    /// with an error and skipped.
    async fn next(&mut self) -> Option<Request> {
        loop {
            let line = self.lines.next_line().await.ok()??;
            if line.len() > MAX_LINE {
                self.send(&failure(&EdgeError::BadInput(
                    "request line too long".into(),
                )))
                .await;
                continue;
            }
            match serde_json::from_str::<Request>(&line) {
                Ok(r) => return Some(r),
                Err(e) => {
                    self.send(&failure(&EdgeError::BadInput(format!(
                        "not a request: {e}"
                    ))))
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
}

fn failure(e: &EdgeError) -> Response {
    Response {
        ok: false,
        detail: e.to_string(),
        exit: Exit::of_edge(e) as u8,
        ..Response::default()
    }
}

fn done(detail: String) -> Response {
    Response {
        ok: true,
        detail,
        ..Response::default()
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
            lines: BufReader::new(tokio::io::stdin()).lines(),
            out: tokio::io::stdout(),
        };
        serve(&edge, &mut io).await;
    });
    Exit::Ok.into()
}

async fn serve(edge: &Edge, io: &mut Io) {
    while let Some(request) = io.next().await {
        match request {
            Request::Status => {
                let r = match summarize(edge).await {
                    Ok((summary, status)) => Response {
                        ok: true,
                        summary: Some(summary),
                        status: Some(status),
                        ..Response::default()
                    },
                    Err(e) => failure(&e),
                };
                io.send(&r).await;
            }
            Request::Repair => {
                let r = match repair(edge).await {
                    Ok(d) => done(d),
                    Err(e) => failure(&e),
                };
                io.send(&r).await;
            }
            Request::RollbackTarget { env, to } => {
                let r = match rollback_target(edge, &env, to.as_deref()) {
                    Ok(target) => Response {
                        ok: true,
                        target: Some(target),
                        ..Response::default()
                    },
                    Err(e) => failure(&e),
                };
                io.send(&r).await;
            }
            Request::ServersPrepare {
                selection,
                decision,
                force,
                lock_wait_ms,
            } => {
                let wait = match lock_wait_ms {
                    None => crate::state::Wait::No,
                    Some(ms) => crate::state::Wait::up_to(Duration::from_millis(ms)),
                };
                match crate::edge::servers::prepare_change(edge, &selection, decision, force, wait)
                    .await
                {
                    Ok(change) => {
                        io.send(&done("server change prepared".to_string())).await;
                        if serve_change(change, decision, io).await.is_break() {
                            return;
                        }
                    }
                    Err(e) => io.send(&failure(&e)).await,
                }
            }
            Request::Lock {
                env,
                color,
                sha,
                wait_healthy_ms,
                lock_wait_ms,
                who,
                action,
            } => {
                let mut req = SwitchRequest::new(&env, color);
                req.sha = sha;
                req.wait_healthy = wait_healthy_ms.map(Duration::from_millis);
                req.lock_wait = lock_wait_ms
                    .map_or(LockWait::No, |ms| LockWait::UpTo(Duration::from_millis(ms)));
                req.who = who;
                req.action = action;
                match transaction::lock(edge, &req).await {
                    Ok(locked) => {
                        io.send(&done(format!("{env} locked on this edge"))).await;
                        if serve_locked(locked, io).await.is_break() {
                            return;
                        }
                    }
                    Err(e) => io.send(&failure(&e)).await,
                }
            }
            other => {
                let e = EdgeError::Refused(format!(
                    "{other:?}: no transaction is prepared in this session"
                ));
                io.send(&failure(&e)).await;
            }
        }
    }
}

/// A prepared server change: apply, restore, release. `Break` when the input ended (a change
/// not applied yet is dropped with its lock).
async fn serve_change(
    mut change: crate::edge::servers::PreparedChange<'_>,
    decision: crate::state::AdminDecision,
    io: &mut Io,
) -> std::ops::ControlFlow<()> {
    loop {
        let Some(request) = io.next().await else {
            return std::ops::ControlFlow::Break(());
        };
        let response = match request {
            Request::ServersApply { kill_sessions } => result(
                change
                    .apply(decision, kill_sessions)
                    .await
                    .map(|r| crate::edge::fleet::member::change_line(&r)),
            ),
            Request::ServersRestore => result(change.restore().await),
            Request::ServersRelease => {
                io.send(&done("released".to_string())).await;
                return std::ops::ControlFlow::Continue(());
            }
            other => failure(&EdgeError::Refused(format!(
                "{other:?}: a server change is in progress in this session"
            ))),
        };
        io.send(&response).await;
    }
}

/// A locked edge: the prepare, or an abort that releases the lock. `Break` when the input
/// ended.
async fn serve_locked(locked: Locked<'_>, io: &mut Io) -> std::ops::ControlFlow<()> {
    let Some(request) = io.next().await else {
        return std::ops::ControlFlow::Break(());
    };
    match request {
        Request::Prepare { id, ttl_ms } => {
            let ttl = Duration::from_millis(ttl_ms).min(super::txn::MAX_EXPIRES);
            match locked.prepare(&id, ttl).await {
                Ok(prepared) => {
                    io.send(&Response {
                        ok: true,
                        detail: format!("map version {} staged", prepared.txn.version),
                        from: Some(prepared.from()),
                        version: Some(prepared.txn.version),
                        noop: prepared.txn.noop,
                        ..Response::default()
                    })
                    .await;
                    serve_transaction(prepared, io).await
                }
                Err(e) => {
                    io.send(&failure(&e)).await;
                    std::ops::ControlFlow::Continue(())
                }
            }
        }
        Request::Abort { .. } => {
            io.send(&done("lock released; nothing was prepared".to_string()))
                .await;
            std::ops::ControlFlow::Continue(())
        }
        other => {
            let e = EdgeError::Refused(format!("{other:?}: the edge is locked for a prepare"));
            io.send(&failure(&e)).await;
            std::ops::ControlFlow::Continue(())
        }
    }
}

/// The steps of one prepared transaction. `Break` when the input ended (the coordinator is
/// gone): a transaction still prepared is aborted then.
async fn serve_transaction(mut prepared: Prepared<'_>, io: &mut Io) -> std::ops::ControlFlow<()> {
    loop {
        let Some(request) = io.next().await else {
            if !prepared.committing() {
                let _ = prepared
                    .abort("the coordinator went away before the commit")
                    .await;
            }
            return std::ops::ControlFlow::Break(());
        };
        let (response, over) = match request {
            Request::CommitDisk => (
                result(
                    prepared
                        .commit_disk()
                        .map(|()| "disk committed".to_string()),
                ),
                false,
            ),
            Request::CommitRuntime => {
                let r = prepared.commit_runtime().await;
                let over = r.is_err();
                (result(r), over)
            }
            Request::Finish => (
                result(
                    prepared
                        .finish()
                        .await
                        .map(|()| "verified and recorded".to_string()),
                ),
                true,
            ),
            Request::Abort { why } => (result(prepared.abort(&why).await.map(|r| r.detail)), true),
            Request::Undo { why } => match prepared.undo(&why).await {
                Ok(d) => (done(d), true),
                Err(d) => (
                    Response {
                        ok: false,
                        detail: d,
                        exit: 5,
                        ..Response::default()
                    },
                    true,
                ),
            },
            other => (
                failure(&EdgeError::Refused(format!(
                    "{other:?}: a transaction is in progress in this session"
                ))),
                false,
            ),
        };
        io.send(&response).await;
        if over {
            return std::ops::ControlFlow::Continue(());
        }
    }
}

fn result(r: Result<String, EdgeError>) -> Response {
    match r {
        Ok(d) => done(d),
        Err(e) => failure(&e),
    }
}
