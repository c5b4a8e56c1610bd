//! One edge of a fleet as the coordinator drives it: a conversation of [`super::protocol`]
//! requests, served on its own thread for an edge on this host or by `vezasock edge-agent` for
//! an edge over ssh ([`super::agent`] serves both).

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::protocol::{EdgeSummary, Request, Response};
use crate::edge::flip::{LockWait, SwitchRequest};
use crate::edge::servers::Selection;
use crate::edge::{EdgeError, ErrorKind};
use crate::state::AdminDecision;
use crate::topology::fleet::Reach;
use crate::topology::Color;

/// The longest a far side may take to answer one step beyond the waits the request allows.
pub(super) const STEP_SLACK: Duration = Duration::from_secs(30);

/// What a prepare found.
#[derive(Debug, Clone, Copy)]
pub struct PrepareInfo {
    pub from: Color,
    pub version: u32,
    pub noop: bool,
}

/// What a fleet operation takes every edge's lock for: a flip (its prepare follows), or a
/// server change (lock, resolve, guard: `servers::prepare_change`; its apply follows).
pub enum Hold<'a> {
    Flip(&'a SwitchRequest),
    Servers {
        selection: &'a Selection,
        decision: AdminDecision,
        force: bool,
    },
}

/// An edge of the fleet and the conversation that drives it.
pub struct Member {
    pub name: String,
    link: Link,
}

/// How the coordinator talks to an edge: the same requests either way.
pub enum Link {
    /// An edge on this host, served on its own thread in this process
    /// ([`super::agent::serve_on_this_thread`]).
    Local(super::agent::ChannelLink),
    /// An edge over ssh: `vezasock edge-agent` on the far side.
    Ssh(Box<Agent>),
}

impl Member {
    pub fn new(name: &str, link: Link) -> Member {
        Member {
            name: name.to_string(),
            link,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// One request, its answer within `limit`; a failure the edge reports is
    /// [`EdgeError::Remote`] with its kind, a lost conversation [`ErrorKind::Unreachable`].
    pub(super) async fn ask(
        &mut self,
        request: &Request,
        limit: Duration,
    ) -> Result<Response, EdgeError> {
        let started = std::time::Instant::now();
        let response = match &mut self.link {
            Link::Ssh(agent) => agent.exchange(&self.name, request, limit).await?,
            Link::Local(link) => {
                let lost = |why: &str| EdgeError::Remote {
                    edge: self.name.clone(),
                    message: format!("its conversation ended: {why}"),
                    kind: ErrorKind::Unreachable,
                    stop: None,
                };
                let exchange = async {
                    link.to_edge.send(request.clone()).await.ok()?;
                    link.from_edge.recv().await
                };
                match tokio::time::timeout(limit, exchange).await {
                    Err(_) => return Err(lost(&format!("no answer within {} s", limit.as_secs()))),
                    Ok(None) => return Err(lost("the edge's thread is gone")),
                    Ok(Some(r)) => r,
                }
            }
        };
        tracing::debug!(
            edge = %self.name,
            step = request.step(),
            ok = response.ok,
            ms = crate::edge::flip::ms(started.elapsed()),
            "fleet step answered"
        );
        if response.ok {
            Ok(response)
        } else {
            Err(response.error(&self.name))
        }
    }

    /// Takes this edge's lock for `what`, waiting for it up to `wait`.
    pub async fn hold(&mut self, what: &Hold<'_>, wait: LockWait) -> Result<(), EdgeError> {
        let (lock_wait_ms, limit) = match wait {
            LockWait::No => (None, Duration::ZERO),
            LockWait::UpTo(d) => (Some(millis(d)), d),
        };
        let request = match what {
            Hold::Flip(req) => Request::Lock {
                env: req.env.clone(),
                color: req.color,
                sha: req.sha.clone(),
                wait_healthy_ms: req.wait_healthy.map(millis),
                lock_wait_ms,
                who: req.who.clone(),
                action: req.action,
            },
            Hold::Servers {
                selection,
                decision,
                force,
            } => Request::ServersPrepare {
                selection: (*selection).clone(),
                decision: *decision,
                force: *force,
                lock_wait_ms,
            },
        };
        self.ask(&request, limit + STEP_SLACK).await.map(drop)
    }

    /// Releases a lock taken by [`Member::hold`] before anything was prepared or applied.
    pub async fn release(&mut self, what: &Hold<'_>) {
        match what {
            Hold::Flip(_) => {
                let why = "another edge could not be locked".to_string();
                let _ = self.ask(&Request::Abort { why }, STEP_SLACK).await;
            }
            Hold::Servers { .. } => self.servers_release().await,
        }
    }

    /// What `req` would do on this edge (read and gate, nothing written): the env's color now,
    /// whether it is already the target, and the read and gate, one line.
    pub async fn dry_run(
        &mut self,
        req: &SwitchRequest,
    ) -> Result<(Color, bool, String), EdgeError> {
        let request = Request::DryRun {
            env: req.env.clone(),
            color: req.color,
            sha: req.sha.clone(),
            wait_healthy_ms: req.wait_healthy.map(millis),
        };
        let wait = req.wait_healthy.unwrap_or(Duration::ZERO);
        let r = self.ask(&request, wait + STEP_SLACK).await?;
        Ok((r.from.unwrap_or(Color::Blue), r.noop, r.detail))
    }

    /// The rest of the prepare (read, gate, intent, stage) under `id`; `wait` bounds the
    /// gate's wait.
    pub async fn prepare(
        &mut self,
        id: &str,
        ttl: Duration,
        wait: Duration,
    ) -> Result<PrepareInfo, EdgeError> {
        let request = Request::Prepare {
            id: id.to_string(),
            ttl_ms: millis(ttl),
        };
        let r = self.ask(&request, wait + STEP_SLACK).await?;
        Ok(PrepareInfo {
            from: r.from.unwrap_or(Color::Blue),
            version: r.version.unwrap_or(0),
            noop: r.noop,
        })
    }

    /// The deploy a rollback of `env` goes back to on this edge: its color and sha.
    pub async fn rollback_target(
        &mut self,
        env: &str,
        to: Option<&str>,
    ) -> Result<(Color, Option<String>), EdgeError> {
        let request = Request::RollbackTarget {
            env: env.to_string(),
            to: to.map(str::to_string),
        };
        let r = self.ask(&request, STEP_SLACK).await?;
        r.target.ok_or_else(|| EdgeError::Remote {
            edge: self.name.clone(),
            message: "no rollback target in the answer".to_string(),
            kind: ErrorKind::Unfinished,
            stop: None,
        })
    }

    /// Applies the prepared server change; returns the servers changed, one line.
    pub async fn servers_apply(&mut self, kill_sessions: bool) -> Result<String, EdgeError> {
        self.ask(
            &Request::ServersApply {
                kill_sessions,
                decision: None,
            },
            STEP_SLACK,
        )
        .await
        .map(|r| r.detail)
    }

    /// A drain's follow-up on this edge (`--then maint|kill`): `decision` applied to the same
    /// servers; returns them, one line.
    pub async fn servers_then(
        &mut self,
        decision: AdminDecision,
        kill_sessions: bool,
    ) -> Result<String, EdgeError> {
        let request = Request::ServersApply {
            kill_sessions,
            decision: Some(decision),
        };
        self.ask(&request, STEP_SLACK).await.map(|r| r.detail)
    }

    /// Waits up to `limit` for the drained servers of this edge to have no session left.
    pub async fn servers_wait(&mut self, limit: Duration) -> Result<String, EdgeError> {
        let request = Request::ServersWait {
            limit_ms: millis(limit),
        };
        self.ask(&request, limit + STEP_SLACK)
            .await
            .map(|r| r.detail)
    }

    /// Puts back an applied server change.
    pub async fn servers_restore(&mut self) -> Result<String, EdgeError> {
        self.ask(&Request::ServersRestore, STEP_SLACK)
            .await
            .map(|r| r.detail)
    }

    /// Ends a server change (its lock released).
    pub async fn servers_release(&mut self) {
        let _ = self.ask(&Request::ServersRelease, STEP_SLACK).await;
    }

    /// Commit, disk half.
    pub async fn commit_disk(&mut self) -> Result<(), EdgeError> {
        self.ask(&Request::CommitDisk, STEP_SLACK).await.map(drop)
    }

    /// Commit, runtime half (`commit map @ver`).
    pub async fn commit_runtime(&mut self) -> Result<String, EdgeError> {
        self.ask(&Request::CommitRuntime, STEP_SLACK)
            .await
            .map(|r| r.detail)
    }

    /// The read-back after the commit.
    pub async fn verify(&mut self) -> Result<(), EdgeError> {
        self.ask(&Request::Verify, STEP_SLACK).await.map(drop)
    }

    /// The record phase.
    pub async fn record(&mut self) -> Result<(), EdgeError> {
        self.ask(&Request::Record, STEP_SLACK).await.map(drop)
    }

    /// Abort of a prepared (not committing) transaction.
    pub async fn abort(&mut self, why: &str) -> Result<String, EdgeError> {
        self.ask(
            &Request::Abort {
                why: why.to_string(),
            },
            STEP_SLACK,
        )
        .await
        .map(|r| r.detail)
    }

    /// Undo of a committed transaction (`Ok`: put back and confirmed).
    pub async fn undo(&mut self, why: &str) -> Result<String, String> {
        self.ask(
            &Request::Undo {
                why: why.to_string(),
            },
            STEP_SLACK,
        )
        .await
        .map(|r| r.detail)
        .map_err(|e| e.to_string())
    }

    /// The edge's summary and its status report (JSON).
    pub async fn status(&mut self) -> Result<(EdgeSummary, serde_json::Value), EdgeError> {
        let r = self.ask(&Request::Status, STEP_SLACK).await?;
        Ok((
            r.summary.unwrap_or_default(),
            r.status.unwrap_or(serde_json::Value::Null),
        ))
    }

    /// Abort an open transaction and repair the edge to its recorded colors.
    pub async fn repair(&mut self) -> Result<String, EdgeError> {
        self.ask(&Request::Repair, Duration::from_secs(60) + STEP_SLACK)
            .await
            .map(|r| r.detail)
    }

    /// Ends the conversation (the edge sees it end; an ssh agent exits).
    pub async fn close(self) {
        if let Link::Ssh(agent) = self.link {
            agent.close().await;
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A `vezasock edge-agent` on the far side of an ssh connection.
pub struct Agent {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Agent {
    /// Starts `ssh [options] target -- vezasock edge-agent --fleet-edge NAME [--config FILE]`
    /// (`name`: the fleet file's, which the agent's webhook events carry). `VEZASOCK_SSH` names
    /// another ssh client (default `ssh`).
    pub fn start(
        name: &str,
        reach: &Reach,
        config: Option<&std::path::Path>,
    ) -> Result<Agent, EdgeError> {
        let Reach::Ssh {
            target,
            options,
            vezasock,
        } = reach
        else {
            return Err(EdgeError::BadInput("not an ssh edge".to_string()));
        };
        let ssh = std::env::var("VEZASOCK_SSH").unwrap_or_else(|_| "ssh".to_string());
        let mut cmd = Command::new(&ssh);
        cmd.arg("-o")
            .arg("BatchMode=yes")
            .args(options)
            .arg(target)
            .arg("--")
            .arg(vezasock)
            .arg("edge-agent")
            .arg("--fleet-edge")
            .arg(name);
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| {
            EdgeError::Runtime(crate::runtime::Error::Protocol {
                endpoint: format!("ssh {target}"),
                message: format!("cannot start {ssh}: {e}"),
            })
        })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(EdgeError::NotVerified(
                "ssh started without pipes".to_string(),
            ));
        };
        Ok(Agent {
            child,
            stdin,
            stdout: BufReader::new(stdout),
        })
    }

    /// One request, one response within `limit` (a lost connection is exit 3).
    pub async fn exchange(
        &mut self,
        edge: &str,
        request: &Request,
        limit: Duration,
    ) -> Result<Response, EdgeError> {
        let lost = |why: String| EdgeError::Remote {
            edge: edge.to_string(),
            message: format!("the connection to its edge-agent was lost: {why}"),
            kind: ErrorKind::Unreachable,
            stop: None,
        };
        let mut line = serde_json::to_vec(request)
            .map_err(|e| EdgeError::NotVerified(format!("request does not serialize: {e}")))?;
        line.push(b'\n');
        let exchange = async {
            self.stdin.write_all(&line).await?;
            self.stdin.flush().await?;
            let mut answer = String::new();
            let n = self.stdout.read_line(&mut answer).await?;
            Ok::<_, std::io::Error>((n, answer))
        };
        let (n, answer) = match tokio::time::timeout(limit, exchange).await {
            Err(_) => return Err(lost(format!("no answer within {} s", limit.as_secs()))),
            Ok(Err(e)) => return Err(lost(e.to_string())),
            Ok(Ok(got)) => got,
        };
        if n == 0 {
            return Err(lost("it closed the connection".to_string()));
        }
        let response: Response = serde_json::from_str(answer.trim_end()).map_err(|e| {
            lost(format!(
                "not an agent answer ({e}): {:?}",
                answer.chars().take(200).collect::<String>()
            ))
        })?;
        Ok(response)
    }

    /// Ends the conversation (the far side sees its input end).
    pub async fn close(mut self) {
        drop(self.stdin);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

/// `ask` on every member at once: the answers in member order, or the first member (in order)
/// whose answer failed, with its name.
pub(super) async fn on_every<T>(
    members: &mut [Member],
    ask: impl AsyncFn(&mut Member) -> Result<T, EdgeError>,
) -> Result<Vec<T>, (String, EdgeError)> {
    let ask = &ask;
    let answers = futures::future::join_all(members.iter_mut().map(|m| async move {
        let name = m.name().to_string();
        (name, ask(m).await)
    }))
    .await;
    let mut out = Vec::with_capacity(answers.len());
    for (name, r) in answers {
        out.push(r.map_err(|e| (name, e))?);
    }
    Ok(out)
}
