//! One edge of a fleet as the coordinator drives it: on this host in the coordinator's own
//! process ([`crate::edge::transaction`] directly), or over ssh through `vezasock edge-agent`
//! ([`super::protocol`]). Both answer the same steps the same way.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::protocol::{EdgeSummary, EnvColors, Request, Response};
use crate::edge::flip::{LockWait, SwitchRequest};
use crate::edge::transaction::{self, Prepared};
use crate::edge::{Edge, EdgeError};
use crate::topology::fleet::Reach;
use crate::topology::Color;

/// The longest a far side may take to answer one step beyond the waits the request allows.
const STEP_SLACK: Duration = Duration::from_secs(30);

/// What a prepare found.
#[derive(Debug, Clone, Copy)]
pub struct PrepareInfo {
    pub from: Color,
    pub version: u32,
    pub noop: bool,
}

/// An edge of the fleet, with its transaction when one is prepared.
pub enum Member<'e> {
    Local {
        name: String,
        edge: &'e Edge,
        prepared: Option<Box<Prepared<'e>>>,
    },
    Remote {
        name: String,
        agent: Box<Agent>,
    },
}

impl<'e> Member<'e> {
    pub fn name(&self) -> &str {
        match self {
            Member::Local { name, .. } | Member::Remote { name, .. } => name,
        }
    }

    /// Prepare (lock, read, gate, intent, stage) of `req` under `id`.
    pub async fn prepare(
        &mut self,
        req: &SwitchRequest,
        id: &str,
        ttl: Duration,
    ) -> Result<PrepareInfo, EdgeError> {
        match self {
            Member::Local { edge, prepared, .. } => {
                let p = transaction::prepare(edge, req, id, ttl).await?;
                let info = PrepareInfo {
                    from: p.from(),
                    version: p.txn.version,
                    noop: p.txn.noop,
                };
                *prepared = Some(Box::new(p));
                Ok(info)
            }
            Member::Remote { name, agent } => {
                let lock_wait_ms = match req.lock_wait {
                    LockWait::No => None,
                    LockWait::UpTo(d) => Some(millis(d)),
                };
                let wait = req.wait_healthy.unwrap_or(Duration::ZERO)
                    + match req.lock_wait {
                        LockWait::No => Duration::ZERO,
                        LockWait::UpTo(d) => d,
                    };
                let r = agent
                    .ask(
                        name,
                        &Request::Prepare {
                            env: req.env.clone(),
                            color: req.color,
                            id: id.to_string(),
                            ttl_ms: millis(ttl),
                            sha: req.sha.clone(),
                            wait_healthy_ms: req.wait_healthy.map(millis),
                            lock_wait_ms,
                            who: req.who.clone(),
                        },
                        wait + STEP_SLACK,
                    )
                    .await?;
                Ok(PrepareInfo {
                    from: r.from.unwrap_or(Color::Blue),
                    version: r.version.unwrap_or(0),
                    noop: r.noop,
                })
            }
        }
    }

    /// Commit, disk half.
    pub async fn commit_disk(&mut self) -> Result<(), EdgeError> {
        match self {
            Member::Local { prepared, .. } => held(prepared)?.commit_disk(),
            Member::Remote { name, agent } => agent
                .ask(name, &Request::CommitDisk, STEP_SLACK)
                .await
                .map(drop),
        }
    }

    /// Commit, runtime half (`commit map @ver`).
    pub async fn commit_runtime(&mut self) -> Result<String, EdgeError> {
        match self {
            Member::Local { prepared, .. } => held(prepared)?.commit_runtime().await,
            Member::Remote { name, agent } => agent
                .ask(name, &Request::CommitRuntime, STEP_SLACK)
                .await
                .map(|r| r.detail),
        }
    }

    /// Verify and record.
    pub async fn finish(&mut self) -> Result<(), EdgeError> {
        match self {
            Member::Local { prepared, .. } => held(prepared)?.finish().await,
            Member::Remote { name, agent } => agent
                .ask(name, &Request::Finish, STEP_SLACK)
                .await
                .map(drop),
        }
    }

    /// Abort of a prepared (not committing) transaction.
    pub async fn abort(&mut self, why: &str) -> Result<String, EdgeError> {
        match self {
            Member::Local { prepared, .. } => {
                let r = held(prepared)?.abort(why).await?;
                *prepared = None;
                Ok(r.detail)
            }
            Member::Remote { name, agent } => agent
                .ask(
                    name,
                    &Request::Abort {
                        why: why.to_string(),
                    },
                    STEP_SLACK,
                )
                .await
                .map(|r| r.detail),
        }
    }

    /// Undo of a committed transaction (`Ok`: put back and confirmed).
    pub async fn undo(&mut self, why: &str) -> Result<String, String> {
        match self {
            Member::Local { prepared, .. } => match prepared.as_mut() {
                Some(p) => p.undo(why).await,
                None => Err("no transaction held".to_string()),
            },
            Member::Remote { name, agent } => agent
                .ask(
                    name,
                    &Request::Undo {
                        why: why.to_string(),
                    },
                    STEP_SLACK,
                )
                .await
                .map(|r| r.detail)
                .map_err(|e| e.to_string()),
        }
    }

    /// The edge's summary and its status report (JSON).
    pub async fn status(&mut self) -> Result<(EdgeSummary, serde_json::Value), EdgeError> {
        match self {
            Member::Local { edge, .. } => summarize(edge).await,
            Member::Remote { name, agent } => {
                let r = agent.ask(name, &Request::Status, STEP_SLACK).await?;
                Ok((
                    r.summary.unwrap_or_default(),
                    r.status.unwrap_or(serde_json::Value::Null),
                ))
            }
        }
    }

    /// Abort an open transaction and repair the edge to its recorded colors.
    pub async fn repair(&mut self) -> Result<String, EdgeError> {
        match self {
            Member::Local { edge, .. } => repair(edge).await,
            Member::Remote { name, agent } => agent
                .ask(name, &Request::Repair, Duration::from_secs(60) + STEP_SLACK)
                .await
                .map(|r| r.detail),
        }
    }
}

fn held<'a, 'e>(
    prepared: &'a mut Option<Box<Prepared<'e>>>,
) -> Result<&'a mut Prepared<'e>, EdgeError> {
    prepared
        .as_deref_mut()
        .ok_or_else(|| EdgeError::Refused("no transaction prepared on this edge".to_string()))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// One edge's summary (what fleet status compares) and its full status report.
pub async fn summarize(edge: &Edge) -> Result<(EdgeSummary, serde_json::Value), EdgeError> {
    let report = crate::edge::status::status(edge, None).await?;
    let envs = report
        .envs
        .iter()
        .filter(|e| e.colored)
        .map(|e| EnvColors {
            env: e.name.clone(),
            live: e.live,
            recorded: e.sides.and_then(|s| s.state_file).or(Some(Color::Blue)),
        })
        .collect();
    let summary = EdgeSummary {
        envs,
        problems: report.problems.clone(),
        transaction: report.transaction.clone(),
    };
    let json = serde_json::to_value(&report)
        .map_err(|e| EdgeError::NotVerified(format!("status does not serialize: {e}")))?;
    Ok((summary, json))
}

/// `apply`'s part on one edge of a fleet: an open transaction aborted, then the crash repair.
pub async fn repair(edge: &Edge) -> Result<String, EdgeError> {
    let mut done = Vec::new();
    if let Some(line) =
        transaction::abort_open(edge, LockWait::UpTo(Duration::from_secs(60))).await?
    {
        done.push(line);
    }
    let report = crate::edge::repair::repair(edge).await?;
    done.extend(report.fixed);
    if done.is_empty() {
        done.push("nothing to repair".to_string());
    }
    Ok(done.join("; "))
}

/// A `vezasock edge-agent` on the far side of an ssh connection.
pub struct Agent {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Agent {
    /// Starts `ssh [options] target -- vezasock edge-agent [--config FILE]`. `VEZASOCK_SSH`
    /// names another ssh client (default `ssh`).
    pub fn start(reach: &Reach, config: Option<&std::path::Path>) -> Result<Agent, EdgeError> {
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
            .arg("edge-agent");
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

    /// One request, one response within `limit`. A failure the far side reports comes back as
    /// [`EdgeError::Remote`] with its exit code; a lost connection is exit 3.
    pub async fn ask(
        &mut self,
        edge: &str,
        request: &Request,
        limit: Duration,
    ) -> Result<Response, EdgeError> {
        let lost = |why: String| EdgeError::Remote {
            edge: edge.to_string(),
            message: format!("the connection to its edge-agent was lost: {why}"),
            exit: 3,
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
        if response.ok {
            Ok(response)
        } else {
            Err(EdgeError::Remote {
                edge: edge.to_string(),
                message: response.detail,
                exit: response.exit,
            })
        }
    }

    /// Ends the conversation (the far side sees its input end).
    pub async fn close(mut self) {
        drop(self.stdin);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}
