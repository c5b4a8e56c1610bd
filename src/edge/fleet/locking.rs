//! Every edge's lock for a fleet operation, taken in one order ([`hold_all`]): the flip's
//! prepare and the server changes both start here.

use futures::future::join_all;

use super::member::{Hold, Member};
use crate::edge::flip::LockWait;
use crate::edge::{EdgeError, ErrorKind};

/// Takes every edge's lock for `what`. First every edge at once, none waiting: the usual case
/// (nothing else runs on the fleet) costs one lock's time, not one per edge. When an edge is
/// busy, the locks taken are released and every edge is locked again one after the other in
/// the order of their names, each waiting up to `wait`: two coordinators never each hold an
/// edge the other waits for (nobody waits in the first round, everybody waits in one order in
/// the second). `Err` names the edge that could not be locked; no lock is held then.
pub(super) async fn hold_all(
    members: &mut [Member],
    what: &Hold<'_>,
    wait: LockWait,
) -> Result<(), (usize, EdgeError)> {
    let first = join_all(members.iter_mut().map(|m| m.hold(what, LockWait::No))).await;
    if first.iter().all(Result::is_ok) {
        return Ok(());
    }
    for (m, r) in members.iter_mut().zip(&first) {
        if r.is_ok() {
            m.release(what).await;
        }
    }
    let busy = |r: &Result<(), EdgeError>| r.as_ref().is_err_and(|e| e.kind() == ErrorKind::Locked);
    let order = name_order(members);
    // An edge that refused for another reason than a busy lock would refuse again: report it;
    // so is a busy edge when the caller does not wait.
    let refused = order
        .iter()
        .copied()
        .find(|i| first[*i].is_err() && (!busy(&first[*i]) || matches!(wait, LockWait::No)));
    if let Some(i) = refused {
        let error = first
            .into_iter()
            .nth(i)
            .and_then(Result::err)
            .unwrap_or_else(|| EdgeError::Refused("not locked".to_string()));
        return Err((i, error));
    }
    for (n, &i) in order.iter().enumerate() {
        if let Err(e) = members[i].hold(what, wait).await {
            for &j in &order[..n] {
                members[j].release(what).await;
            }
            return Err((i, e));
        }
    }
    Ok(())
}

/// The members' indices in the order of their names: the one order every fleet operation
/// locks edges in, so two coordinators never each hold an edge the other waits for.
fn name_order(members: &[Member]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..members.len()).collect();
    order.sort_by(|a, b| members[*a].name().cmp(members[*b].name()));
    order
}

#[cfg(test)]
mod tests {
    //! [`hold_all`] against scripted edges (channel conversations answered by a test task):
    //! the order and the waits of the lock requests, not HAProxy (the fleet tests in
    //! `integration/fleet_*.rs` run the real thing).

    use std::sync::{Arc, Mutex};

    use std::time::Duration;

    use super::super::agent::{channel, Conversation};
    use super::super::member::Link;
    use super::super::protocol::{Request, Response};
    use super::*;
    use crate::edge::flip::SwitchRequest;
    use crate::topology::Color;

    /// What the scripted edges were asked, in the order asked: (edge, step, waits).
    type Log = Arc<Mutex<Vec<(String, &'static str, bool)>>>;

    /// An edge answering every request; its `n`-th lock (from 0) is refused with `exit` when
    /// `refuse(n)` says so.
    fn scripted(name: &str, log: &Log, refuse: fn(usize) -> Option<u8>) -> Member {
        let (link, mut server) = channel();
        let (name_owned, log) = (name.to_string(), Arc::clone(log));
        tokio::spawn(async move {
            let mut locks = 0;
            while let Some(request) = server.next().await {
                let waits = matches!(
                    &request,
                    Request::Lock {
                        lock_wait_ms: Some(_),
                        ..
                    }
                );
                if let Ok(mut l) = log.lock() {
                    l.push((name_owned.clone(), request.step(), waits));
                }
                let exit = match request {
                    Request::Lock { .. } => {
                        locks += 1;
                        refuse(locks - 1)
                    }
                    _ => None,
                };
                let response = Response {
                    ok: exit.is_none(),
                    exit: exit.unwrap_or(0),
                    kind: exit.map(ErrorKind::of_code),
                    detail: exit.map_or("done", |_| "refused").to_string(),
                    ..Response::default()
                };
                server.send(&response).await;
            }
        });
        Member::new(name, Link::Local(link))
    }

    fn asked(log: &Log) -> Vec<(String, &'static str, bool)> {
        log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    fn never(_: usize) -> Option<u8> {
        None
    }

    fn busy_once(n: usize) -> Option<u8> {
        (n == 0).then_some(4)
    }

    fn unreachable(_: usize) -> Option<u8> {
        Some(3)
    }

    /// The locks of a flip of staging to green, waiting `wait`.
    async fn hold(members: &mut [Member], wait: LockWait) -> Result<(), (usize, EdgeError)> {
        let req = SwitchRequest::new("staging", Color::Green);
        hold_all(members, &Hold::Flip(&req), wait).await
    }

    fn run<T>(test: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("{e}"))
            .block_on(test)
    }

    #[test]
    fn every_edge_is_locked_at_once_without_waiting_when_none_is_busy() {
        run(async {
            let log = Log::default();
            let mut members: Vec<Member> = ["edge-c", "edge-a", "edge-b"]
                .iter()
                .map(|n| scripted(n, &log, never))
                .collect();
            let held = hold(&mut members, LockWait::UpTo(Duration::from_secs(5))).await;
            assert!(held.is_ok());
            let asked = asked(&log);
            assert_eq!(asked.len(), 3, "{asked:?}");
            assert!(
                asked
                    .iter()
                    .all(|(_, step, waits)| *step == "lock" && !waits),
                "{asked:?}"
            );
        });
    }

    #[test]
    fn a_busy_edge_releases_the_others_then_every_edge_is_locked_in_name_order_waiting() {
        run(async {
            let log = Log::default();
            let mut members = vec![
                scripted("edge-c", &log, never),
                scripted("edge-b", &log, busy_once),
                scripted("edge-a", &log, never),
            ];
            let held = hold(&mut members, LockWait::UpTo(Duration::from_secs(5))).await;
            assert!(held.is_ok());
            let asked = asked(&log);
            let first: Vec<_> = asked[..3].iter().map(|(_, s, w)| (*s, *w)).collect();
            assert_eq!(first, [("lock", false); 3], "{asked:?}");
            let released: Vec<&str> = asked
                .iter()
                .filter(|(_, s, _)| *s == "abort")
                .map(|(n, _, _)| n.as_str())
                .collect();
            assert_eq!(
                released.len(),
                2,
                "the two edges locked are released: {asked:?}"
            );
            assert!(!released.contains(&"edge-b"), "{asked:?}");
            let second: Vec<(&str, bool)> = asked
                .iter()
                .skip(3)
                .filter(|(_, s, _)| *s == "lock")
                .map(|(n, _, w)| (n.as_str(), *w))
                .collect();
            assert_eq!(
                second,
                [("edge-a", true), ("edge-b", true), ("edge-c", true)],
                "{asked:?}"
            );
        });
    }

    #[test]
    fn a_busy_edge_without_waiting_is_the_error_and_no_lock_is_left() {
        run(async {
            let log = Log::default();
            let mut members = vec![
                scripted("edge-a", &log, never),
                scripted("edge-b", &log, busy_once),
            ];
            let held = hold(&mut members, LockWait::No).await;
            assert!(
                matches!(&held, Err((1, e)) if e.kind() == ErrorKind::Locked),
                "{held:?}"
            );
            let asked = asked(&log);
            assert_eq!(
                asked.iter().filter(|(_, s, _)| *s == "lock").count(),
                2,
                "no second round: {asked:?}"
            );
            assert!(
                asked.contains(&("edge-a".to_string(), "abort", false)),
                "{asked:?}"
            );
        });
    }

    #[test]
    fn an_edge_that_refuses_for_another_reason_is_not_tried_again() {
        run(async {
            let log = Log::default();
            let mut members = vec![
                scripted("edge-a", &log, busy_once),
                scripted("edge-b", &log, unreachable),
            ];
            let held = hold(&mut members, LockWait::UpTo(Duration::from_secs(5))).await;
            assert!(
                matches!(&held, Err((1, e)) if e.kind() == ErrorKind::Unreachable),
                "{held:?}"
            );
            let locks = asked(&log).iter().filter(|(_, s, _)| *s == "lock").count();
            assert_eq!(locks, 2, "no second round");
        });
    }
}
