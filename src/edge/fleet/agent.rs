//! The edge side of a fleet conversation ([`super::protocol`]): one edge serving the
//! coordinator's requests in order — lock, prepare, commit steps, undo, server changes, status,
//! repair. `vezasock edge-agent` serves it on stdin/stdout for an edge reached over ssh; the
//! coordinator serves each edge on this host on its own thread through channels, so that the
//! edges' file writes (each fsynced) run side by side. A transaction's requests follow the
//! phases of [`txn_machine`]; one still open when the conversation ends (the coordinator is
//! gone) is aborted, or undone once a commit step ran.

use std::time::Duration;

use super::cert_agent::{CertEdge, CertPhase};
use super::protocol::{EdgeSummary, EnvColors, Request, Response};
use crate::edge::deploy::switch::{LockWait, SwitchRequest};
use crate::edge::flip::transaction::{self, Held};
use crate::edge::flip::txn_machine::{self, Args, Phase as TxnPhase, Step, TxnEdge};
use crate::edge::{Edge, EdgeError};
use crate::topology::Color;

pub(crate) use super::protocol::Conversation;

fn done(detail: String) -> Response {
    Response {
        ok: true,
        detail,
        ..Response::default()
    }
}

/// The coordinator's end of an in-process conversation.
pub struct ChannelLink {
    pub(crate) to_edge: tokio::sync::mpsc::Sender<Request>,
    pub(crate) from_edge: tokio::sync::mpsc::Receiver<Response>,
}

/// The edge's end of an in-process conversation.
pub struct ChannelServer {
    from_coordinator: tokio::sync::mpsc::Receiver<Request>,
    to_coordinator: tokio::sync::mpsc::Sender<Response>,
}

/// A new in-process conversation: the coordinator's link and the edge's server.
pub fn channel() -> (ChannelLink, ChannelServer) {
    let (to_edge, from_coordinator) = tokio::sync::mpsc::channel(4);
    let (to_coordinator, from_edge) = tokio::sync::mpsc::channel(4);
    (
        ChannelLink { to_edge, from_edge },
        ChannelServer {
            from_coordinator,
            to_coordinator,
        },
    )
}

impl Conversation for ChannelServer {
    async fn next(&mut self) -> Option<Request> {
        self.from_coordinator.recv().await
    }

    async fn send(&mut self, response: &Response) {
        let _ = self.to_coordinator.send(response.clone()).await;
    }
}

/// Serves `edge` on this thread (its own async runtime) until the coordinator drops its link.
pub fn serve_on_this_thread(edge: &Edge, mut server: ChannelServer) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        // The coordinator sees the conversation end at its first request: exit 3.
        return;
    };
    rt.block_on(serve(edge, &mut server));
}

/// Serves one conversation: requests until the other side ends it.
pub(crate) async fn serve<C: Conversation>(edge: &Edge, io: &mut C) {
    // `canary --fleet`'s canary locks: held until the coordinator ends the conversation.
    let mut canary_holds = Vec::new();
    while let Some(request) = io.next().await {
        match request {
            Request::CanaryHold { env } => {
                let r = super::canary_agent::hold(edge, &env, &mut canary_holds).await;
                io.send(&r).await;
            }
            Request::CanaryRead { env } => {
                io.send(&super::canary_agent::read(edge, &env)).await;
            }
            request @ Request::CanaryStage { .. } => {
                if super::canary_agent::serve_step(edge, request, io)
                    .await
                    .is_break()
                {
                    return;
                }
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
                    Err(e) => io.send(&Response::failure(&e)).await,
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
                        let mut held = Held::Locked(Box::new(locked));
                        if serve_txn(&mut held, io).await.is_break() {
                            return;
                        }
                    }
                    Err(e) => io.send(&Response::failure(&e)).await,
                }
            }
            Request::CertBegin {
                txn,
                files,
                allow_other_domains,
                lock_wait_ms,
                who,
            } => {
                let what = (txn, files, allow_other_domains);
                match super::cert_agent::begin(edge, what, (lock_wait_ms, who)).await {
                    Ok((mut part, plan)) => {
                        io.send(&done(plan)).await;
                        if serve_cert(&mut part, io).await.is_break() {
                            return;
                        }
                    }
                    Err(e) => io.send(&Response::failure(&e)).await,
                }
            }
            other => io.send(&answer_one(edge, other).await).await,
        }
    }
}

/// A request answered at once, without a session of its own (reads, a dry run, a repair, the
/// counters, a preview); anything else is refused: it belongs to a session not open here.
async fn answer_one(edge: &Edge, request: Request) -> Response {
    match request {
        Request::Status => match summarize(edge).await {
            Ok((summary, status)) => Response {
                ok: true,
                summary: Some(summary),
                status: Some(status),
                ..Response::default()
            },
            Err(e) => Response::failure(&e),
        },
        Request::Repair => match repair(edge).await {
            Ok(d) => done(d),
            Err(e) => Response::failure(&e),
        },
        Request::DryRun {
            env,
            color,
            sha,
            wait_healthy_ms,
        } => {
            let mut req = SwitchRequest::new(&env, color);
            req.sha = sha;
            req.wait_healthy = wait_healthy_ms.map(Duration::from_millis);
            req.dry_run = true;
            match crate::edge::deploy::switch::switch(edge, &req, &mut |_| {}).await {
                Ok(report) => Response {
                    ok: true,
                    detail: dry_run_line(&report),
                    from: Some(report.from),
                    noop: report.noop,
                    ..Response::default()
                },
                Err(e) => Response::failure(&e),
            }
        }
        Request::RollbackTarget { env, to } => match rollback_target(edge, &env, to.as_deref()) {
            Ok(target) => Response {
                ok: true,
                target: Some(target),
                ..Response::default()
            },
            Err(e) => Response::failure(&e),
        },
        Request::Counters { env, color } => {
            super::rollout_agent::serve_counters(edge, &env, color).await
        }
        request @ (Request::Preview { .. }
        | Request::PreviewAfterSwitch { .. }
        | Request::PreviewCheck { .. }) => super::rollout_agent::serve_preview(edge, request).await,
        Request::CertList => super::cert_agent::serve_list(edge).await,
        other => Response::failure(&EdgeError::Refused(format!(
            "{other:?}: no transaction is prepared in this session"
        ))),
    }
}

/// A prepared server change: apply, restore, release. `Break` when the input ended (a change
/// not applied yet is dropped with its lock).
async fn serve_change<C: Conversation>(
    mut change: crate::edge::servers::PreparedChange<'_>,
    decision: crate::state::AdminDecision,
    io: &mut C,
) -> std::ops::ControlFlow<()> {
    loop {
        let Some(request) = io.next().await else {
            return std::ops::ControlFlow::Break(());
        };
        let response = match request {
            Request::ServersApply {
                kill_sessions,
                decision: then,
            } => result(
                change
                    .apply(then.unwrap_or(decision), kill_sessions)
                    .await
                    .map(|r| change_line(&r)),
            ),
            Request::ServersWait { limit_ms } => {
                match change.wait_drained(Duration::from_millis(limit_ms)).await {
                    Ok(w) if w.drained => {
                        done(format!("drained after {:.1}s", w.waited_ms as f64 / 1000.0))
                    }
                    // Still busy at the deadline: a refusal (exit 1), left in drain.
                    Ok(w) => Response::failure(&EdgeError::Refused(format!(
                        "still busy after {:.1}s (left in drain): {}",
                        w.waited_ms as f64 / 1000.0,
                        crate::edge::servers::busy_line(&w.busy)
                    ))),
                    Err(e) => Response::failure(&e),
                }
            }
            Request::ServersRestore => result(change.restore().await),
            Request::ServersRelease => {
                io.send(&done("released".to_string())).await;
                return std::ops::ControlFlow::Continue(());
            }
            other => Response::failure(&EdgeError::Refused(format!(
                "{other:?}: a server change is in progress in this session"
            ))),
        };
        io.send(&response).await;
    }
}

/// One edge's certificate update after its `cert-begin`, phase by phase
/// ([`super::cert_agent::step`]): each request checked against the phase, refused (nothing
/// changed, the phase kept) when out of order. `Continue` once the update is over; `Break` when
/// the input ended (after a staged file is aborted, or a committed one finished).
pub(crate) async fn serve_cert<C: Conversation, E: CertEdge>(
    edge: &mut E,
    io: &mut C,
) -> std::ops::ControlFlow<()> {
    let mut phase = CertPhase::Ready { next: 0 };
    loop {
        let Some(request) = io.next().await else {
            super::cert_agent::end(edge, phase).await;
            return std::ops::ControlFlow::Break(());
        };
        let (next, response) = super::cert_agent::step(edge, phase, request).await;
        phase = next;
        io.send(&response).await;
        if phase == CertPhase::Over {
            return std::ops::ControlFlow::Continue(());
        }
    }
}

/// A locked edge's transaction, phase by phase ([`txn_machine`]): every request checked
/// against the phase reached, refused (nothing changed, the phase kept) when out of order.
/// `Continue` once the transaction is over; `Break` when the input ended, after what was
/// started is aborted or undone (the coordinator is gone): the edge is left as before the
/// transaction or as after its completed commit, and the lock is released.
pub(crate) async fn serve_txn<C: Conversation, E: TxnEdge>(
    edge: &mut E,
    io: &mut C,
) -> std::ops::ControlFlow<()> {
    let mut phase = TxnPhase::Locked;
    loop {
        let Some(request) = io.next().await else {
            txn_machine::end(edge, phase, "the coordinator went away before the end").await;
            return std::ops::ControlFlow::Break(());
        };
        let Some((step, args)) = txn_step(&request) else {
            let e = EdgeError::Refused(format!(
                "{}: a transaction is {} in this session; nothing was changed",
                request.step(),
                phase.as_str()
            ));
            io.send(&Response::failure(&e)).await;
            continue;
        };
        let (next, result) = txn_machine::run(edge, phase, step, args).await;
        phase = next;
        let response = match result {
            Ok(done) => Response {
                ok: true,
                detail: done.detail,
                from: done.staged.map(|s| s.from),
                version: done.staged.map(|s| s.version),
                noop: done.staged.is_some_and(|s| s.noop),
                ..Response::default()
            },
            Err(e) => Response::failure(&e),
        };
        io.send(&response).await;
        if phase.is_over() {
            return std::ops::ControlFlow::Continue(());
        }
    }
}

/// The transaction step a request is, with its arguments (`None`: not a transaction step).
fn txn_step(request: &Request) -> Option<(Step, Args<'_>)> {
    let plain = |step| Some((step, Args::default()));
    match request {
        Request::Prepare { id, ttl_ms } => Some((
            Step::Prepare,
            Args {
                id,
                ttl: Duration::from_millis(*ttl_ms).min(transaction::MAX_TTL),
                why: "",
            },
        )),
        Request::CommitDisk => plain(Step::CommitDisk),
        Request::CommitRuntime => plain(Step::CommitRuntime),
        Request::Verify => plain(Step::Verify),
        Request::Record => plain(Step::Record),
        Request::Abort { why } => Some((
            Step::Abort,
            Args {
                why,
                ..Args::default()
            },
        )),
        Request::Undo { why } => Some((
            Step::Undo,
            Args {
                why,
                ..Args::default()
            },
        )),
        _ => None,
    }
}

fn result(r: Result<String, EdgeError>) -> Response {
    match r {
        Ok(d) => done(d),
        Err(e) => Response::failure(&e),
    }
}

/// What a dry run found on this edge, one line: its read and gate (`read: …; gate: …`); the
/// single-edge plan (`would: …`) is not the fleet's, which the coordinator says.
fn dry_run_line(report: &crate::edge::deploy::switch::SwitchReport) -> String {
    report
        .steps
        .iter()
        .filter(|s| s.name != "would")
        .map(|s| format!("{}: {}", s.name, s.detail))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `be/s ready → maint, …`: what a server change did, one line.
pub fn change_line(report: &crate::edge::servers::ChangeReport) -> String {
    let each: Vec<String> = report
        .servers
        .iter()
        .map(|c| {
            format!(
                "{}/{} {} → {}",
                c.backend,
                c.server,
                c.before,
                c.after.as_str()
            )
        })
        .collect();
    each.join(", ")
}

/// The deploy `rollback` of `env` goes back to on `edge` (its history): color and sha.
pub fn rollback_target(
    edge: &Edge,
    env: &str,
    to: Option<&str>,
) -> Result<(Color, Option<String>), EdgeError> {
    let entries = crate::edge::deploy::rollback::history(edge, env)?;
    let target = crate::edge::deploy::rollback::rollback_target(&entries, to)?;
    Ok((target.color, target.sha))
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
            servers: Color::ALL
                .into_iter()
                .map(|c| color_servers(e, c))
                .collect(),
        })
        .collect();
    let summary = EdgeSummary {
        envs,
        problems: report.problems.clone(),
        transaction: report.transaction.clone(),
        canaries: report.canaries.clone(),
    };
    let json = serde_json::to_value(&report)
        .map_err(|e| EdgeError::NotVerified(format!("status does not serialize: {e}")))?;
    Ok((summary, json))
}

/// `green 3/3 up` or `blue 2/3 up, 1 drain, 0 maint`: the servers of one color of an env.
fn color_servers(env: &crate::edge::status::EnvStatus, color: Color) -> String {
    let servers: Vec<&crate::edge::status::ServerStatus> = env
        .components
        .iter()
        .flat_map(|c| &c.backends)
        .filter(|b| b.color == Some(color))
        .flat_map(|b| &b.servers)
        .collect();
    let up = servers
        .iter()
        .filter(|s| s.op == "up" && s.admin == "ready")
        .count();
    let drain = servers.iter().filter(|s| s.admin == "drain").count();
    let maint = servers.iter().filter(|s| s.admin == "maint").count();
    let mut line = format!("{color} {up}/{} up", servers.len());
    if drain + maint > 0 {
        line.push_str(&format!(", {drain} drain, {maint} maint"));
    }
    line
}

/// `apply`'s part on one edge of a fleet: an open transaction aborted, then the crash repair.
pub async fn repair(edge: &Edge) -> Result<String, EdgeError> {
    let mut done = Vec::new();
    if let Some(line) =
        transaction::abort_open(edge, LockWait::UpTo(Duration::from_secs(60))).await?
    {
        done.push(line);
    }
    let report = crate::edge::apply::repair::repair(edge).await?;
    done.extend(report.fixed);
    if done.is_empty() {
        done.push("nothing to repair".to_string());
    }
    Ok(done.join("; "))
}

#[cfg(test)]
mod tests {
    //! The agent's transaction loop ([`serve_txn`]) driven by random request lines against an
    //! in-memory edge ([`txn_machine::fake`]).

    use std::collections::VecDeque;

    use proptest::prelude::*;

    use super::*;
    use crate::edge::fleet::protocol::parse_request;
    use crate::edge::flip::txn_machine::fake::{locked_edge, FakeEdge};

    /// Lines in, responses out; lines that are not requests are answered as the stdin agent
    /// answers them.
    struct Lines {
        lines: VecDeque<Vec<u8>>,
        sent: Vec<Response>,
    }

    impl Conversation for Lines {
        async fn next(&mut self) -> Option<Request> {
            loop {
                let line = self.lines.pop_front()?;
                match parse_request(&line) {
                    Ok(r) => return Some(r),
                    Err(e) => self.send(&Response::failure(&e)).await,
                }
            }
        }

        async fn send(&mut self, response: &Response) {
            self.sent.push(response.clone());
        }
    }

    fn line_strategy() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            Just(br#"{"op":"prepare","id":"t1","ttl_ms":60000}"#.to_vec()),
            Just(br#"{"op":"prepare","id":"a b","ttl_ms":60000}"#.to_vec()),
            Just(br#"{"op":"commit-disk"}"#.to_vec()),
            Just(br#"{"op":"commit-runtime"}"#.to_vec()),
            Just(br#"{"op":"verify"}"#.to_vec()),
            Just(br#"{"op":"record"}"#.to_vec()),
            Just(br#"{"op":"abort","why":"p"}"#.to_vec()),
            Just(br#"{"op":"undo","why":"p"}"#.to_vec()),
            Just(br#"{"op":"status"}"#.to_vec()),
            Just(br#"{"op":"servers-release"}"#.to_vec()),
            Just(
                br#"{"op":"lock","env":"prod","color":"green","who":"x","action":"switch"}"#
                    .to_vec()
            ),
            Just(br#"{"op":"explode"}"#.to_vec()),
            Just(b"\xff\xfe{\"op\":\"verify\"}".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..40),
        ]
    }

    /// The first `n` requests of a whole transaction, in order.
    fn in_order(n: usize) -> Vec<Vec<u8>> {
        [
            &br#"{"op":"prepare","id":"t1","ttl_ms":60000}"#[..],
            br#"{"op":"commit-disk"}"#,
            br#"{"op":"commit-runtime"}"#,
            br#"{"op":"verify"}"#,
            br#"{"op":"record"}"#,
        ]
        .iter()
        .take(n)
        .map(|l| l.to_vec())
        .collect()
    }

    /// A run of the loop on a freshly locked fake edge: the edge after it, the answers, the
    /// lines left unread.
    fn drive(lines: Vec<Vec<u8>>) -> (FakeEdge, Vec<Response>, usize) {
        let mut io = Lines {
            lines: lines.into(),
            sent: Vec::new(),
        };
        let mut edge = locked_edge();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let _ = rt.block_on(serve_txn(&mut edge, &mut io));
        (edge, io.sent, io.lines.len())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn any_request_sequence_then_the_end_leaves_the_edge_before_or_committed_and_unlocked(
            first in 0usize..=5,
            rest in proptest::collection::vec(line_strategy(), 0..14)
        ) {
            // A correct start of some length, then anything: every phase gets its random tail.
            let mut lines = in_order(first);
            lines.extend(rest);
            let count = lines.len();
            let (edge, sent, left) = drive(lines);
            let state = edge.live_state();
            prop_assert!(
                state == FakeEdge::before_state() || state == FakeEdge::committed_state(),
                "map file and runtime: {state:?}"
            );
            // A half state is never reached: the map file and the runtime agree.
            prop_assert_eq!(state.0.as_ref(), Some(&state.1));
            prop_assert!(!edge.locked, "the lock is free");
            prop_assert!(edge.pending.is_none(), "no pending file");
            prop_assert!(!edge.txn_file, "no open transaction file");
            // One answer per line read (the loop stops reading once the transaction is over).
            prop_assert_eq!(sent.len(), count - left);
        }

        #[test]
        fn a_refused_request_changes_nothing(
            lines in proptest::collection::vec(line_strategy(), 0..10),
            bad in prop_oneof![
                Just(br#"{"op":"record"}"#.to_vec()),
                Just(br#"{"op":"commit-runtime"}"#.to_vec()),
                Just(br#"{"op":"explode"}"#.to_vec()),
                Just(b"\xff".to_vec()),
            ]
        ) {
            // The same lines with one request that is out of order or unreadable right after
            // the prepare: the edge ends exactly as without it.
            let prepare = br#"{"op":"prepare","id":"t1","ttl_ms":60000}"#.to_vec();
            let mut with = vec![prepare.clone(), bad];
            with.extend(lines.clone());
            let mut without = vec![prepare];
            without.extend(lines);
            let (a, sent, _) = drive(with);
            let (b, _, _) = drive(without);
            prop_assert_eq!(a, b);
            prop_assert!(!sent[1].ok && sent[1].exit != 0, "{:?}", sent[1]);
        }
    }

    #[test]
    fn the_three_destructive_orders_of_issue_19_leave_the_edge_as_before() {
        let prepare = br#"{"op":"prepare","id":"w","ttl_ms":60000}"#.to_vec();
        let runtime = br#"{"op":"commit-runtime"}"#.to_vec();
        let abort = br#"{"op":"abort","why":"p"}"#.to_vec();
        let record = br#"{"op":"record"}"#.to_vec();
        let undo = br#"{"op":"undo","why":"p"}"#.to_vec();
        // Each order with whether each answer is ok.
        for (order, oks) in [
            (
                vec![prepare.clone(), runtime, abort],
                vec![true, false, true],
            ),
            (vec![prepare.clone(), record], vec![true, false]),
            (vec![prepare, undo], vec![true, true]),
        ] {
            let (edge, sent, _) = drive(order);
            let got: Vec<bool> = sent.iter().map(|r| r.ok).collect();
            assert_eq!(got, oks, "{sent:?}");
            assert_eq!(edge.live_state(), FakeEdge::before_state(), "{sent:?}");
            assert!(!edge.locked && edge.pending.is_none() && !edge.txn_file);
        }
    }
}
