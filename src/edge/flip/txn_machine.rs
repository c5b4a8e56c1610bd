//! The phases of one edge's transaction as an explicit state machine (issue 19): which request
//! is allowed in which phase, what it does there, and where it leaves the transaction. The
//! edge-agent ([`crate::edge::fleet::agent`]) and `vezasock txn` both go through [`decide`], so a
//! request out of order is refused the same way everywhere, before anything is touched.
//!
//! | phase | allowed | abort / end of input |
//! |---|---|---|
//! | locked | prepare | releases the lock |
//! | prepared | commit-disk | drops the staged version and the pending file |
//! | disk-committed | commit-runtime | undo: the map file put back, the staged version dropped |
//! | runtime-committed | verify | undo: the map file and the runtime put back |
//! | verified | record | undo, as above |
//!
//! `undo` is allowed wherever abort is (before any commit step it is the abort). After a
//! commit step nothing is ever cleared: the staged version may be the live one.

use std::time::Duration;

use crate::edge::EdgeError;
use crate::topology::Color;

/// How far a transaction got in this session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// The edge lock is held; nothing is staged.
    Locked,
    /// Staged (map version, pending file, `transaction.json`); nothing live changed.
    Prepared,
    /// The pending file was renamed over the map file; the runtime is unchanged.
    DiskCommitted,
    /// `commit map @ver` ran (or may have: a transaction resumed from its file).
    RuntimeCommitted,
    /// The commit was read back.
    Verified,
    /// Ended: recorded (history, state file, journal).
    Recorded,
    /// Ended: nothing live changed, the lock is released.
    Aborted,
    /// Ended: what the commit changed was put back.
    Undone,
}

impl Phase {
    /// Every phase, in order.
    pub const ALL: [Phase; 8] = [
        Phase::Locked,
        Phase::Prepared,
        Phase::DiskCommitted,
        Phase::RuntimeCommitted,
        Phase::Verified,
        Phase::Recorded,
        Phase::Aborted,
        Phase::Undone,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Locked => "locked",
            Phase::Prepared => "prepared",
            Phase::DiskCommitted => "disk-committed",
            Phase::RuntimeCommitted => "runtime-committed",
            Phase::Verified => "verified",
            Phase::Recorded => "recorded",
            Phase::Aborted => "aborted",
            Phase::Undone => "undone",
        }
    }

    /// True once the transaction is over (the session lets go of the edge).
    pub fn is_over(self) -> bool {
        matches!(self, Phase::Recorded | Phase::Aborted | Phase::Undone)
    }

    /// True once a commit step ran: the map file, maybe the runtime, hold the new color.
    pub fn committing(self) -> bool {
        matches!(
            self,
            Phase::DiskCommitted | Phase::RuntimeCommitted | Phase::Verified
        )
    }

    /// The phase of a transaction taken back from `transaction.json` (`vezasock txn`,
    /// `apply`): prepared, or — once its pending file is gone — one whose runtime may hold
    /// its color, since another process may have run `commit map`.
    pub fn of_file(state: crate::state::TxnState) -> Phase {
        match state {
            crate::state::TxnState::Prepared => Phase::Prepared,
            crate::state::TxnState::Committing => Phase::RuntimeCommitted,
        }
    }
}

/// A transaction request, as the agent and `txn` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Prepare,
    CommitDisk,
    CommitRuntime,
    Verify,
    Record,
    Abort,
    Undo,
}

impl Step {
    pub const ALL: [Step; 7] = [
        Step::Prepare,
        Step::CommitDisk,
        Step::CommitRuntime,
        Step::Verify,
        Step::Record,
        Step::Abort,
        Step::Undo,
    ];

    /// The op on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Prepare => "prepare",
            Step::CommitDisk => "commit-disk",
            Step::CommitRuntime => "commit-runtime",
            Step::Verify => "verify",
            Step::Record => "record",
            Step::Abort => "abort",
            Step::Undo => "undo",
        }
    }
}

/// What the edge is asked to do for an allowed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    Prepare,
    CommitDisk,
    CommitRuntime,
    Verify,
    Record,
    /// Locked, nothing staged: let go of the lock.
    Release,
    /// Prepared, nothing committed: drop the staged version and the pending file.
    DropStaged,
    /// After a commit step: put back what it changed. `runtime` is false when the runtime
    /// was not committed (its staged version is then dropped too).
    Undo {
        runtime: bool,
    },
}

/// What `step` does in `phase`, or why it is refused (exit 1, nothing touched).
pub fn decide(phase: Phase, step: Step) -> Result<Move, EdgeError> {
    let refused = |after: &str| {
        Err(EdgeError::Refused(format!(
            "{} refused: the transaction is {}; it comes only after {after}, and nothing was changed",
            step.as_str(),
            phase.as_str()
        )))
    };
    if phase.is_over() {
        return Err(EdgeError::Refused(format!(
            "{} refused: the transaction is over ({}); nothing was changed",
            step.as_str(),
            phase.as_str()
        )));
    }
    match (step, phase) {
        (Step::Prepare, Phase::Locked) => Ok(Move::Prepare),
        (Step::Prepare, _) => refused("lock (one prepare per lock)"),
        (Step::CommitDisk, Phase::Prepared) => Ok(Move::CommitDisk),
        (Step::CommitDisk, _) => refused("prepare (once)"),
        (Step::CommitRuntime, Phase::DiskCommitted) => Ok(Move::CommitRuntime),
        (Step::CommitRuntime, _) => refused("commit-disk (once)"),
        (Step::Verify, Phase::RuntimeCommitted | Phase::Verified) => Ok(Move::Verify),
        (Step::Verify, _) => refused("commit-runtime"),
        (Step::Record, Phase::Verified) => Ok(Move::Record),
        (Step::Record, _) => refused("a verify that succeeded"),
        (Step::Abort | Step::Undo, Phase::Locked) => Ok(Move::Release),
        (Step::Abort | Step::Undo, Phase::Prepared) => Ok(Move::DropStaged),
        (Step::Abort | Step::Undo, Phase::DiskCommitted) => Ok(Move::Undo { runtime: false }),
        (Step::Abort | Step::Undo, _) => Ok(Move::Undo { runtime: true }),
    }
}

/// What an ended input does in `phase`: the transaction is never left half done.
pub fn at_end(phase: Phase) -> Option<Move> {
    decide(phase, Step::Abort).ok()
}

/// The phase after `mv` ran in `phase` with `result`.
pub fn after(phase: Phase, mv: Move, result: Result<(), &EdgeError>) -> Phase {
    match (mv, result) {
        (Move::Prepare, Ok(())) => Phase::Prepared,
        // A failed prepare removed what it staged and let go of the lock.
        (Move::Prepare, Err(_)) => Phase::Aborted,
        (Move::CommitDisk, Ok(())) => Phase::DiskCommitted,
        // The disk was put back.
        (Move::CommitDisk, Err(_)) => Phase::Prepared,
        (Move::CommitRuntime, Ok(())) => Phase::RuntimeCommitted,
        // Not confirmed put back: the runtime may hold the color; an undo tries again.
        (Move::CommitRuntime, Err(EdgeError::Unfinished(_))) => Phase::RuntimeCommitted,
        // Put back and confirmed (disk and runtime).
        (Move::CommitRuntime, Err(_)) => Phase::Undone,
        (Move::Verify, Ok(())) => Phase::Verified,
        (Move::Verify, Err(_)) => Phase::RuntimeCommitted,
        // A record cut short is the flip's own interrupted operation (`apply` repairs it).
        (Move::Record, _) => Phase::Recorded,
        (Move::Release, _) => Phase::Aborted,
        (Move::DropStaged, Ok(())) => Phase::Aborted,
        (Move::Undo { .. }, Ok(())) => Phase::Undone,
        // Not done: the phase stays, and the end of input tries again.
        (Move::DropStaged | Move::Undo { .. }, Err(_)) => phase,
    }
}

/// What a staged prepare reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Staged {
    /// The env's live color before the transaction.
    pub from: Color,
    pub version: u32,
    pub noop: bool,
}

/// What a move did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Done {
    pub detail: String,
    pub staged: Option<Staged>,
}

impl Done {
    pub fn said(detail: impl Into<String>) -> Done {
        Done {
            detail: detail.into(),
            staged: None,
        }
    }
}

/// The edge side of a transaction: one method per [`Move`], each called only when
/// [`decide`] allowed it. The real one is [`crate::edge::flip::transaction::Held`]; tests use an
/// in-memory edge.
pub(crate) trait TxnEdge {
    async fn prepare(&mut self, id: &str, ttl: Duration) -> Result<Done, EdgeError>;
    async fn commit_disk(&mut self) -> Result<Done, EdgeError>;
    async fn commit_runtime(&mut self) -> Result<Done, EdgeError>;
    async fn verify(&mut self) -> Result<Done, EdgeError>;
    async fn record(&mut self) -> Result<Done, EdgeError>;
    async fn drop_staged(&mut self, why: &str) -> Result<Done, EdgeError>;
    async fn undo(&mut self, why: &str, runtime: bool) -> Result<Done, EdgeError>;
    /// The transaction is over (or the session ends): let go of the edge lock.
    fn close(&mut self);
}

/// The arguments a request brings.
#[derive(Debug, Clone, Copy)]
pub struct Args<'a> {
    pub id: &'a str,
    pub ttl: Duration,
    pub why: &'a str,
}

impl Default for Args<'_> {
    fn default() -> Self {
        Args {
            id: "",
            ttl: Duration::ZERO,
            why: "",
        }
    }
}

/// Runs `step` in `phase` on `edge`: refused (nothing touched) or its move, then the new phase.
/// A prepare's id is checked before anything.
pub(crate) async fn run<E: TxnEdge>(
    edge: &mut E,
    phase: Phase,
    step: Step,
    args: Args<'_>,
) -> (Phase, Result<Done, EdgeError>) {
    let mv = match decide(phase, step) {
        Ok(mv) => mv,
        Err(e) => return (phase, Err(e)),
    };
    if mv == Move::Prepare {
        if let Err(e) = crate::state::transaction::check_id(args.id) {
            return (phase, Err(EdgeError::BadInput(e.to_string())));
        }
    }
    let result = run_move(edge, mv, args).await;
    let next = after(phase, mv, result.as_ref().map(|_| ()));
    if next.is_over() {
        edge.close();
    }
    (next, result)
}

/// The end of the input in `phase`: abort or undo what was started, then let go of the edge.
pub(crate) async fn end<E: TxnEdge>(edge: &mut E, phase: Phase, why: &str) -> Phase {
    let mut next = phase;
    if let Some(mv) = at_end(phase) {
        let args = Args {
            why,
            ..Args::default()
        };
        let result = run_move(edge, mv, args).await;
        next = after(phase, mv, result.as_ref().map(|_| ()));
    }
    edge.close();
    next
}

async fn run_move<E: TxnEdge>(edge: &mut E, mv: Move, args: Args<'_>) -> Result<Done, EdgeError> {
    match mv {
        Move::Prepare => edge.prepare(args.id, args.ttl).await,
        Move::CommitDisk => edge.commit_disk().await,
        Move::CommitRuntime => edge.commit_runtime().await,
        Move::Verify => edge.verify().await,
        Move::Record => edge.record().await,
        Move::Release => Ok(Done::said("lock released; nothing was prepared")),
        Move::DropStaged => edge.drop_staged(args.why).await,
        Move::Undo { runtime } => edge.undo(args.why, runtime).await,
    }
}

#[cfg(test)]
pub(crate) mod fake {
    //! An in-memory edge that behaves as HAProxy and the files do: map versions (a cleared
    //! version that is the live one empties the live map), the map file, the pending file,
    //! the transaction file and the lock.

    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::{Done, Staged, TxnEdge};
    use crate::edge::EdgeError;
    use crate::topology::Color;

    pub type Map = BTreeMap<String, String>;

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct FakeEdge {
        pub map_file: Option<Map>,
        pub pending: Option<Map>,
        /// Every map version HAProxy holds; `live` is the current one.
        pub versions: BTreeMap<u32, Map>,
        pub live: u32,
        pub staged: Option<u32>,
        pub txn_file: bool,
        pub locked: bool,
        pub recorded: Option<Color>,
        /// What commit-disk saved of the map file.
        saved: Option<Map>,
        env: String,
        target: Color,
        from: Color,
    }

    /// `staging blue, prod green`, the lock held for a flip of staging to green.
    pub fn locked_edge() -> FakeEdge {
        let map: Map = [("staging", "blue"), ("prod", "green")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        FakeEdge {
            map_file: Some(map.clone()),
            pending: None,
            versions: BTreeMap::from([(1, map)]),
            live: 1,
            staged: None,
            txn_file: false,
            locked: true,
            recorded: None,
            saved: None,
            env: "staging".into(),
            target: Color::Green,
            from: Color::Blue,
        }
    }

    impl FakeEdge {
        /// The runtime map as served.
        pub fn runtime(&self) -> Map {
            self.versions.get(&self.live).cloned().unwrap_or_default()
        }

        fn with_target(&self, map: &Map) -> Map {
            let mut m = map.clone();
            m.insert(self.env.clone(), self.target.as_str().into());
            m
        }

        fn clear_version(&mut self, v: u32) {
            // HAProxy: `clear map @ver` clears that version, the live one included.
            if let Some(m) = self.versions.get_mut(&v) {
                m.clear();
            }
        }

        /// The map file and runtime as they were before the transaction.
        pub fn before_state() -> (Option<Map>, Map) {
            let e = locked_edge();
            (e.map_file.clone(), e.runtime())
        }

        /// The map file and runtime after a completed commit.
        pub fn committed_state() -> (Option<Map>, Map) {
            let e = locked_edge();
            let m = e.with_target(&e.runtime());
            (Some(m.clone()), m)
        }

        pub fn live_state(&self) -> (Option<Map>, Map) {
            (self.map_file.clone(), self.runtime())
        }

        fn refuse(&self, what: &str) -> EdgeError {
            EdgeError::Refused(format!("fake edge: {what}"))
        }
    }

    impl TxnEdge for FakeEdge {
        async fn prepare(&mut self, _id: &str, _ttl: Duration) -> Result<Done, EdgeError> {
            if !self.locked {
                return Err(self.refuse("prepare without the lock"));
            }
            let v = self.versions.keys().max().copied().unwrap_or(0) + 1;
            let staged = self.with_target(&self.runtime());
            self.versions.insert(v, staged.clone());
            self.staged = Some(v);
            self.pending = Some(staged);
            self.txn_file = true;
            Ok(Done {
                detail: format!("map version {v} staged"),
                staged: Some(Staged {
                    from: self.from,
                    version: v,
                    noop: false,
                }),
            })
        }

        async fn commit_disk(&mut self) -> Result<Done, EdgeError> {
            let Some(pending) = self.pending.take() else {
                return Err(self.refuse("no pending file"));
            };
            self.saved = self.map_file.replace(pending);
            Ok(Done::said("disk committed"))
        }

        async fn commit_runtime(&mut self) -> Result<Done, EdgeError> {
            let Some(v) = self.staged else {
                return Err(self.refuse("nothing staged"));
            };
            self.live = v;
            Ok(Done::said(format!("commit map @{v}")))
        }

        async fn verify(&mut self) -> Result<Done, EdgeError> {
            if self.runtime().get(&self.env).map(String::as_str) == Some(self.target.as_str()) {
                Ok(Done::said("read back"))
            } else {
                Err(EdgeError::NotVerified("fake edge: not live".into()))
            }
        }

        async fn record(&mut self) -> Result<Done, EdgeError> {
            self.txn_file = false;
            self.recorded = Some(self.target);
            Ok(Done::said("recorded"))
        }

        async fn drop_staged(&mut self, _why: &str) -> Result<Done, EdgeError> {
            if let Some(v) = self.staged.take() {
                self.clear_version(v);
            }
            self.pending = None;
            self.txn_file = false;
            Ok(Done::said("aborted"))
        }

        async fn undo(&mut self, _why: &str, runtime: bool) -> Result<Done, EdgeError> {
            // The map file from what commit-disk saved, else rewritten with the color before:
            // never deleted.
            let restored = match self.saved.take() {
                Some(m) => m,
                None => {
                    let mut m = self.map_file.clone().unwrap_or_default();
                    m.insert(self.env.clone(), self.from.as_str().into());
                    m
                }
            };
            self.map_file = Some(restored);
            self.pending = None;
            let mut live = self.runtime();
            if live.get(&self.env).map(String::as_str) == Some(self.target.as_str()) {
                live.insert(self.env.clone(), self.from.as_str().into());
                self.versions.insert(self.live, live);
            }
            if !runtime {
                if let Some(v) = self.staged.take() {
                    self.clear_version(v);
                }
            }
            self.txn_file = false;
            Ok(Done::said("undone"))
        }

        fn close(&mut self) {
            self.locked = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::{locked_edge, FakeEdge};
    use super::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("{e}"))
            .block_on(f)
    }

    fn args() -> Args<'static> {
        Args {
            id: "t1",
            ttl: Duration::from_secs(60),
            why: "test",
        }
    }

    /// The steps that lead from `Locked` to `phase`.
    fn path_to(phase: Phase) -> Vec<Step> {
        use Step::*;
        match phase {
            Phase::Locked => vec![],
            Phase::Prepared => vec![Prepare],
            Phase::DiskCommitted => vec![Prepare, CommitDisk],
            Phase::RuntimeCommitted => vec![Prepare, CommitDisk, CommitRuntime],
            Phase::Verified => vec![Prepare, CommitDisk, CommitRuntime, Verify],
            Phase::Recorded => vec![Prepare, CommitDisk, CommitRuntime, Verify, Record],
            Phase::Aborted => vec![Abort],
            Phase::Undone => vec![Prepare, CommitDisk, Undo],
        }
    }

    /// A fake edge driven to `phase`.
    fn edge_in(phase: Phase) -> FakeEdge {
        let mut edge = locked_edge();
        let mut at = Phase::Locked;
        for step in path_to(phase) {
            let (next, r) = block_on(run(&mut edge, at, step, args()));
            assert!(r.is_ok(), "{step:?} in {at:?}: {r:?}");
            at = next;
        }
        assert_eq!(at, phase);
        edge
    }

    /// Which request each phase allows (every other one is refused).
    fn allowed(phase: Phase, step: Step) -> bool {
        use Phase as P;
        use Step as S;
        match phase {
            P::Locked => matches!(step, S::Prepare | S::Abort | S::Undo),
            P::Prepared => matches!(step, S::CommitDisk | S::Abort | S::Undo),
            P::DiskCommitted => matches!(step, S::CommitRuntime | S::Abort | S::Undo),
            P::RuntimeCommitted => matches!(step, S::Verify | S::Abort | S::Undo),
            P::Verified => matches!(step, S::Verify | S::Record | S::Abort | S::Undo),
            P::Recorded | P::Aborted | P::Undone => false,
        }
    }

    #[test]
    fn every_request_in_every_phase_is_allowed_or_refused_and_a_refusal_changes_nothing() {
        for phase in Phase::ALL {
            for step in Step::ALL {
                let mut edge = edge_in(phase);
                let before = edge.clone();
                let (next, r) = block_on(run(&mut edge, phase, step, args()));
                if allowed(phase, step) {
                    assert!(r.is_ok(), "{step:?} in {phase:?}: {r:?}");
                } else {
                    assert!(
                        matches!(r, Err(EdgeError::Refused(_))),
                        "{step:?} in {phase:?}: {r:?}"
                    );
                    assert_eq!(next, phase, "{step:?} in {phase:?}: the phase stays");
                    assert_eq!(edge, before, "{step:?} in {phase:?}: nothing changed");
                }
            }
        }
    }

    #[test]
    fn a_bad_transaction_id_is_refused_before_anything_is_staged() {
        for id in ["", "a b", "x\u{0}y", &"x".repeat(65)] {
            let mut edge = locked_edge();
            let before = edge.clone();
            let a = Args { id, ..args() };
            let (next, r) = block_on(run(&mut edge, Phase::Locked, Step::Prepare, a));
            assert!(matches!(r, Err(EdgeError::BadInput(_))), "{id:?}: {r:?}");
            assert_eq!(next, Phase::Locked);
            assert_eq!(edge, before, "{id:?}");
        }
    }

    #[test]
    fn abort_and_undo_put_back_the_state_before_the_transaction_in_every_phase() {
        for phase in [
            Phase::Locked,
            Phase::Prepared,
            Phase::DiskCommitted,
            Phase::RuntimeCommitted,
            Phase::Verified,
        ] {
            for step in [Step::Abort, Step::Undo] {
                let mut edge = edge_in(phase);
                let (next, r) = block_on(run(&mut edge, phase, step, args()));
                assert!(r.is_ok(), "{step:?} in {phase:?}: {r:?}");
                assert!(next.is_over(), "{step:?} in {phase:?}: {next:?}");
                assert_eq!(
                    edge.live_state(),
                    FakeEdge::before_state(),
                    "{step:?} in {phase:?}"
                );
                assert!(!edge.locked && !edge.txn_file && edge.pending.is_none());
            }
        }
    }

    #[test]
    fn the_end_of_input_leaves_the_edge_as_before_or_committed_with_the_lock_free() {
        for phase in Phase::ALL {
            let mut edge = edge_in(phase);
            let end_phase = block_on(end(&mut edge, phase, "the input ended"));
            assert!(end_phase.is_over(), "{phase:?}: {end_phase:?}");
            let want = if phase == Phase::Recorded {
                FakeEdge::committed_state()
            } else {
                FakeEdge::before_state()
            };
            assert_eq!(edge.live_state(), want, "{phase:?}");
            assert!(!edge.locked, "{phase:?}: the lock is free");
            assert!(edge.pending.is_none(), "{phase:?}: no pending file");
        }
    }

    #[test]
    fn a_resumed_committing_transaction_is_never_committed_again_and_its_abort_undoes() {
        let phase = Phase::of_file(crate::state::TxnState::Committing);
        assert!(decide(phase, Step::CommitDisk).is_err());
        assert!(decide(phase, Step::CommitRuntime).is_err());
        assert_eq!(
            decide(phase, Step::Abort).ok(),
            Some(Move::Undo { runtime: true })
        );
        assert_eq!(
            decide(
                Phase::of_file(crate::state::TxnState::Prepared),
                Step::Abort
            )
            .ok(),
            Some(Move::DropStaged)
        );
    }
}
