//! The edge side of `cert update --fleet` and `cert list --fleet` ([`Request::CertBegin`] and
//! the cert steps after it, [`Request::CertList`]), served by [`super::agent`]; the
//! coordinator's side is in [`super::cert`].
//!
//! After a `cert-begin`, the session follows these phases ([`step`], served by the agent's
//! `serve_cert`): per file in order
//! `cert-stage` → `cert-commit` → `cert-finish`, then `cert-done`; `cert-abort` before a
//! commit ends it. A request out of that order is refused and changes nothing. A failed step
//! has already cleaned up (its staged transaction aborted, journalled) and ends the session.
//! The end of the input ends it too: a staged file is aborted, a committed one is finished
//! (written and read back), so this edge's disk and runtime agree.

use std::time::Duration;

use super::protocol::{CertAnswer, Request, Response};
use crate::edge::cert::{FleetPart, SentFile};
use crate::edge::{Edge, EdgeError};

/// What the phases of one edge's certificate update act on (the real edge, or a fake in the
/// tests).
pub(crate) trait CertEdge {
    /// How many files the update installs.
    fn files(&self) -> usize;
    async fn stage(&mut self, i: usize) -> Result<String, EdgeError>;
    async fn commit(&mut self, i: usize) -> Result<String, EdgeError>;
    async fn finish(&mut self, i: usize) -> Result<Option<CertAnswer>, EdgeError>;
    /// Ends the update with `staged` aborted; says what it did.
    async fn abort(&mut self, staged: Option<usize>, why: &str) -> String;
    /// Ends the update, every file finished.
    fn done(&mut self) -> Result<String, EdgeError>;
}

/// Where one edge's certificate update is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CertPhase {
    /// Files `0..next` finished; nothing staged.
    Ready {
        next: usize,
    },
    Staged(usize),
    Committed(usize),
    Over,
}

/// The real edge: its part while the update runs (dropped, with its lock, once over).
struct Part<'a>(Option<FleetPart<'a>>);

impl<'a> Part<'a> {
    fn part(&mut self) -> Result<&mut FleetPart<'a>, EdgeError> {
        self.0
            .as_mut()
            .ok_or_else(|| EdgeError::Refused("the certificate update is over".to_string()))
    }

    /// After a failed step: the step cleaned up and journalled; the lock goes.
    fn after<T>(&mut self, r: Result<T, EdgeError>) -> Result<T, EdgeError> {
        if r.is_err() {
            self.0 = None;
        }
        r
    }
}

impl CertEdge for Part<'_> {
    fn files(&self) -> usize {
        self.0.as_ref().map_or(0, FleetPart::files)
    }

    async fn stage(&mut self, i: usize) -> Result<String, EdgeError> {
        let r = self.part()?.stage(i).await;
        self.after(r)
    }

    async fn commit(&mut self, i: usize) -> Result<String, EdgeError> {
        let r = self.part()?.commit(i).await;
        self.after(r)
    }

    async fn finish(&mut self, i: usize) -> Result<Option<CertAnswer>, EdgeError> {
        let r = self.part()?.finish(i).await;
        self.after(r).map(|u| Some(CertAnswer::Installed(u)))
    }

    async fn abort(&mut self, staged: Option<usize>, why: &str) -> String {
        match self.0.take() {
            Some(part) => part.abort(staged, why).await,
            None => "nothing to abort".to_string(),
        }
    }

    fn done(&mut self) -> Result<String, EdgeError> {
        let part = self
            .0
            .take()
            .ok_or_else(|| EdgeError::Refused("the certificate update is over".to_string()))?;
        let report = part.done()?;
        Ok(format!("{} certificate(s) installed", report.certs.len()))
    }
}

/// The edge side of [`Request::CertBegin`]: this edge's part begun (the files checked, the
/// lock taken, the intent journalled) and one line for the answer; the agent then serves the
/// cert steps ([`step`]) until the update is over.
pub(crate) async fn begin<'a>(
    edge: &'a Edge,
    (txn, files, allow_other_domains): (String, Vec<SentFile>, bool),
    (lock_wait_ms, who): (Option<u64>, String),
) -> Result<(impl CertEdge + 'a, String), EdgeError> {
    let wait = match lock_wait_ms {
        None => crate::state::Wait::No,
        Some(ms) => crate::state::Wait::up_to(Duration::from_millis(ms)),
    };
    let (part, plan) =
        FleetPart::begin(edge, files, allow_other_domains, wait, (&who, &txn)).await?;
    Ok((Part(Some(part)), plan))
}

fn ok(detail: String, cert: Option<CertAnswer>) -> Response {
    Response {
        ok: true,
        detail,
        cert,
        ..Response::default()
    }
}

/// One request in `phase`: the phase after it and the answer.
pub(crate) async fn step<E: CertEdge>(
    edge: &mut E,
    phase: CertPhase,
    request: Request,
) -> (CertPhase, Response) {
    let answer = |r: Result<(String, Option<CertAnswer>), EdgeError>, then: CertPhase| match r {
        Ok((detail, cert)) => (then, ok(detail, cert)),
        Err(e) => (CertPhase::Over, Response::failure(&e)),
    };
    match (phase, request) {
        (CertPhase::Ready { next }, Request::CertStage { index }) if index == next => {
            if index >= edge.files() {
                return refused(phase, "cert-stage: no such file in this update");
            }
            let r = edge.stage(index).await.map(|d| (d, None));
            answer(r, CertPhase::Staged(index))
        }
        (CertPhase::Staged(i), Request::CertCommit) => {
            let r = edge.commit(i).await.map(|d| (d, None));
            answer(r, CertPhase::Committed(i))
        }
        (CertPhase::Committed(i), Request::CertFinish) => {
            let r = edge
                .finish(i)
                .await
                .map(|c| (String::from("written and read back"), c));
            answer(r, CertPhase::Ready { next: i + 1 })
        }
        (CertPhase::Ready { .. }, Request::CertAbort { why }) => {
            (CertPhase::Over, ok(edge.abort(None, &why).await, None))
        }
        (CertPhase::Staged(i), Request::CertAbort { why }) => {
            (CertPhase::Over, ok(edge.abort(Some(i), &why).await, None))
        }
        (CertPhase::Ready { next }, Request::CertDone) if next == edge.files() => {
            answer(edge.done().map(|d| (d, None)), CertPhase::Over)
        }
        (_, other) => refused(phase, &format!("{}: out of order", other.step())),
    }
}

fn refused(phase: CertPhase, why: &str) -> (CertPhase, Response) {
    let e = EdgeError::Refused(format!(
        "{why} (a certificate update is at {phase:?} in this session); nothing was changed"
    ));
    (phase, Response::failure(&e))
}

/// The coordinator went away: a staged file aborted; a committed one finished (the
/// coordinator may have committed it elsewhere, and disk and runtime agree here); then done
/// when every file is finished, else ended as aborted.
pub(crate) async fn end<E: CertEdge>(edge: &mut E, phase: CertPhase) {
    let why = "the coordinator went away before the end";
    match phase {
        CertPhase::Over => {}
        CertPhase::Staged(i) => {
            edge.abort(Some(i), why).await;
        }
        CertPhase::Committed(i) => {
            if edge.finish(i).await.is_ok() {
                end_ready(edge, i + 1, why).await;
            }
        }
        CertPhase::Ready { next } => end_ready(edge, next, why).await,
    }
}

async fn end_ready<E: CertEdge>(edge: &mut E, next: usize, why: &str) {
    if next == edge.files() {
        let _ = edge.done();
    } else {
        edge.abort(None, why).await;
    }
}

/// The edge side of [`Request::CertList`].
pub(crate) async fn serve_list(edge: &Edge) -> Response {
    match crate::edge::cert::report(edge).await {
        Ok(report) => ok(
            format!("{} certificate(s)", report.certs.len()),
            Some(CertAnswer::List(report)),
        ),
        Err(e) => Response::failure(&e),
    }
}

#[cfg(test)]
mod tests {
    //! The agent's certificate session (`serve_cert`) driven by random request sequences
    //! against an in-memory edge.

    use std::collections::VecDeque;

    use proptest::prelude::*;

    use super::*;
    use crate::edge::fleet::agent::{serve_cert, Conversation};

    /// Two files, each `old` or `new` at runtime and on disk, one transaction slot (as
    /// HAProxy has), a lock and a journal operation.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Fake {
        runtime: [bool; 2],
        disk: [bool; 2],
        staged: Option<usize>,
        locked: bool,
        open_op: bool,
        /// The file whose stage HAProxy refuses.
        refuse: Option<usize>,
    }

    impl Fake {
        fn new(refuse: Option<usize>) -> Fake {
            Fake {
                runtime: [false; 2],
                disk: [false; 2],
                staged: None,
                locked: true,
                open_op: true,
                refuse,
            }
        }

        fn over(&mut self) {
            self.locked = false;
            self.open_op = false;
        }
    }

    impl CertEdge for Fake {
        fn files(&self) -> usize {
            2
        }

        async fn stage(&mut self, i: usize) -> Result<String, EdgeError> {
            assert!(self.locked && self.staged.is_none(), "{self:?}");
            if self.refuse == Some(i) {
                self.over();
                return Err(EdgeError::Refused("HAProxy said no".into()));
            }
            self.staged = Some(i);
            Ok("staged".into())
        }

        async fn commit(&mut self, i: usize) -> Result<String, EdgeError> {
            assert_eq!(self.staged, Some(i), "{self:?}");
            self.staged = None;
            self.runtime[i] = true;
            Ok("committed".into())
        }

        async fn finish(&mut self, i: usize) -> Result<Option<CertAnswer>, EdgeError> {
            assert!(self.runtime[i] && self.locked, "{self:?}");
            self.disk[i] = true;
            Ok(None)
        }

        async fn abort(&mut self, staged: Option<usize>, _why: &str) -> String {
            assert_eq!(staged, self.staged, "{self:?}");
            self.staged = None;
            self.over();
            "aborted".into()
        }

        fn done(&mut self) -> Result<String, EdgeError> {
            assert!(self.staged.is_none() && self.disk == [true; 2], "{self:?}");
            self.over();
            Ok("done".into())
        }
    }

    struct Script {
        requests: VecDeque<Request>,
        sent: Vec<Response>,
    }

    impl Conversation for Script {
        async fn next(&mut self) -> Option<Request> {
            self.requests.pop_front()
        }

        async fn send(&mut self, response: &Response) {
            self.sent.push(response.clone());
        }
    }

    fn request() -> impl Strategy<Value = Request> {
        prop_oneof![
            (0usize..3).prop_map(|index| Request::CertStage { index }),
            Just(Request::CertCommit),
            Just(Request::CertFinish),
            Just(Request::CertAbort { why: "p".into() }),
            Just(Request::CertDone),
            Just(Request::CertList),
            Just(Request::Status),
        ]
    }

    fn drive(mut fake: Fake, requests: Vec<Request>) -> (Fake, Vec<Response>, usize) {
        let mut io = Script {
            requests: requests.into(),
            sent: Vec::new(),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let _ = rt.block_on(serve_cert(&mut fake, &mut io));
        (fake, io.sent, io.requests.len())
    }

    /// The whole update of both files, in order.
    fn in_order() -> Vec<Request> {
        let mut out = Vec::new();
        for index in 0..2 {
            out.extend([
                Request::CertStage { index },
                Request::CertCommit,
                Request::CertFinish,
            ]);
        }
        out.push(Request::CertDone);
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any start of a correct update, then anything, then the end of the input: nothing
        /// staged, the lock free, the journal closed, and each file the same at runtime and on
        /// disk, the files installed in order.
        #[test]
        fn any_sequence_then_the_end_leaves_runtime_and_disk_agreeing_and_the_lock_free(
            first in 0usize..=7,
            rest in proptest::collection::vec(request(), 0..12),
            refuse in prop_oneof![Just(None), (0usize..2).prop_map(Some)],
        ) {
            let mut requests: Vec<Request> = in_order().into_iter().take(first).collect();
            requests.extend(rest);
            let count = requests.len();
            let (fake, sent, left) = drive(Fake::new(refuse), requests);
            prop_assert_eq!(fake.staged, None);
            prop_assert!(!fake.locked && !fake.open_op, "{:?}", fake);
            prop_assert_eq!(fake.runtime, fake.disk);
            prop_assert!(fake.runtime[0] || !fake.runtime[1], "in order: {:?}", fake);
            if let Some(i) = refuse {
                prop_assert!(!fake.runtime[i], "a refused file is not served: {:?}", fake);
            }
            // One answer per request read; the loop stops reading once the update is over.
            prop_assert_eq!(sent.len(), count - left);
        }

        /// A request out of order is refused and changes nothing.
        #[test]
        fn a_request_out_of_order_changes_nothing(
            first in 0usize..=6,
            bad in request(),
        ) {
            let start: Vec<Request> = in_order().into_iter().take(first).collect();
            let expected = in_order().get(first).cloned();
            prop_assume!(Some(&bad) != expected.as_ref());
            prop_assume!(!matches!(bad, Request::CertAbort { .. }));
            let mut with = start.clone();
            with.push(bad);
            with.extend(in_order().into_iter().skip(first));
            let (a, sent, _) = drive(Fake::new(None), with);
            let (b, _, _) = drive(Fake::new(None), in_order());
            prop_assert_eq!(a, b);
            prop_assert!(!sent[first].ok && sent[first].exit == 1, "{:?}", sent[first]);
        }
    }

    #[test]
    fn the_whole_update_installs_both_files() {
        let (fake, sent, _) = drive(Fake::new(None), in_order());
        assert!(sent.iter().all(|r| r.ok), "{sent:?}");
        assert_eq!(fake.disk, [true; 2]);
        assert!(!fake.locked);
    }
}
