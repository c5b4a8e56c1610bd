//! The flip of one env to a color, as explicit phases (docs/architecture.md §3). [`crate::edge::deploy::switch`]
//! runs them in order; rollback reuses the switch. A transaction ([`crate::edge::flip::transaction`], the
//! fleet coordinator [`crate::edge::fleet`]) runs them split in two (`flip/staged.rs`): a *prepare* half
//! (lock, read, gate, intent, stage: the new color staged as a map version, nothing live
//! changed) on every edge before a *commit* half (disk, runtime `commit map @ver`, verify,
//! record) on any.
//!
//! | phase | reads / writes | a failure here |
//! |---|---|---|
//! | lock | `vezasock.lock` | nothing changed (exit 4) |
//! | read | runtime map + target servers, map file, state file, **history**, journal | nothing changed: a corrupt file is refused before traffic moves |
//! | gate | target servers (polled) | nothing changed (exit 1) |
//! | intent | journal line | nothing changed |
//! | disk | map file (+ `server-admin.json` when drained servers are readied) | disk put back, nothing changed |
//! | runtime | `set server … state ready` for drained target servers, then one `set map` | HAProxy refused: disk put back (exit 1); transport failed or unexpected reply: the runtime is re-read and put back (exit 3), or exit 5 when that cannot be confirmed |
//! | verify | `show map` + target servers | exit 5: live, not verified |
//! | record | history, state file, server-state file, journal `done` | exit 5: live and verified, not recorded |
//! | drain-old | old color's servers | the flip is complete and recorded: the drain's own exit code, with the command that finishes the drain |
//!
//! From the runtime phase on, traffic may have moved: a failure there is never reported as
//! "nothing changed" unless the edge was put back and the put-back confirmed. Exit 5 names what
//! is live, what is recorded, and the one command that finishes the flip.

use std::collections::BTreeMap;
use std::time::{Instant, SystemTime};

use self::gate::{Decision, GateServer};
pub use self::request::{
    check_sha, FlipPhase, LockWait, Step, SwitchRequest, Unfinished, BAKE_BREACH, SHA_MAX,
};
pub(crate) use self::request::{ms, Steps};
use crate::edge::active_color::{map_file_colors, map_ref, runtime_color, write_map_file, Sides};
use crate::edge::{crash_point, Edge, EdgeError};
use crate::runtime::command::maps::{AddMap, DelMap, MapEntry, SetMap, ShowMap};
use crate::runtime::command::servers::{ServersState, SetServerState, ShowServersState};
use crate::runtime::command::AdminState as SetState;
use crate::runtime::parse::outcome::Outcome;
use crate::runtime::session::{Batch, Reply, Session};
use crate::state::atomic::{put_file_back, read_optional};
use crate::state::{
    AdminDecision, EdgeLock, HistoryEntry, Holder, OpenOperation, Operation, Phase,
};
use crate::topology::{Color, Env};

pub mod gate;
mod request;
mod staged;
pub mod transaction;
pub mod txn_machine;

/// What the read phase found: every input the later phases need, validated.
#[derive(Debug, Clone)]
pub struct Read {
    pub sides: Sides,
    /// The live color (runtime; a missing entry is blue).
    pub from: Color,
    /// The map file's colors (empty: no file).
    pub file_colors: BTreeMap<String, Color>,
    /// The env's history, already parsed (a corrupt one is refused in the read phase).
    pub history: Vec<HistoryEntry>,
    /// The env's interrupted operations.
    pub open: Vec<OpenOperation>,
    /// Disagreements found (drift, interrupted operations), for the report.
    pub drift: Vec<String>,
    /// The runtime map's entries (every env), as read.
    pub entries: Vec<MapEntry>,
    states: ServersState,
}

/// One flip in progress: the phases are its methods, called in order.
pub struct Flip<'e> {
    pub edge: &'e Edge,
    pub env: &'e Env,
    pub target: Color,
    req: SwitchRequest,
    map: String,
    backends: Vec<String>,
    session: Session,
    lock: Option<EdgeLock>,
    /// Set by [`Flip::gate`]: target servers in DRAIN to put back to READY before the flip.
    drained: Vec<(String, String)>,
    /// Set by [`Flip::intent`].
    op: Option<Operation>,
    /// What [`Flip::disk`] replaced, to put back.
    old_map: Option<Vec<u8>>,
    old_admin: Option<Option<Vec<u8>>>,
    /// The `show map` entry existed before (`set map`), or not (`add map`).
    had_entry: bool,
}

impl<'e> Flip<'e> {
    /// Lock phase: takes the per-edge lock (not for a dry run: it changes nothing) and opens
    /// the admin session.
    pub async fn lock(
        edge: &'e Edge,
        env: &'e Env,
        req: &SwitchRequest,
    ) -> Result<Flip<'e>, EdgeError> {
        let lock = if req.dry_run {
            None
        } else {
            let holder = match &req.transaction {
                Some(id) => Holder::current().in_transaction(id),
                None => Holder::current(),
            };
            let lock = EdgeLock::acquire_async(&edge.state, req.lock_wait.wait(), holder).await?;
            crash_point("after-lock");
            Some(lock)
        };
        let session = edge.admin_session().await?;
        Ok(Flip {
            edge,
            env,
            target: req.color,
            req: req.clone(),
            map: map_ref(edge),
            backends: env.color_backends(req.color),
            session,
            lock,
            drained: Vec::new(),
            op: None,
            old_map: None,
            old_admin: None,
            had_entry: false,
        })
    }

    /// Read phase: the runtime (map + target servers, one batch) and every file the later
    /// phases read or rewrite, validated now so that a corrupt file is refused before anything
    /// changes.
    pub async fn read(&mut self) -> Result<Read, EdgeError> {
        let observed = observe(&mut self.session, &self.map, &self.backends)
            .await
            .map_err(not_this_shape)?;
        let env = &self.env.name;
        let file_colors = map_file_colors(self.edge)?.unwrap_or_default();
        let history = self.edge.state.history(env)?;
        // Rewritten when the gate finds drained target servers: refuse a corrupt one now.
        self.edge.state.server_admin()?;
        let sides = Sides {
            runtime: runtime_color(&observed.entries, env)?,
            map_file: file_colors.get(env).copied(),
            state_file: self.edge.state.recorded_color(env)?,
        };
        self.had_entry = sides.runtime.is_some();
        let open: Vec<OpenOperation> = self
            .edge
            .state
            .open_operations()?
            .into_iter()
            .filter(|op| op.env.as_deref() == Some(env.as_str()))
            .collect();
        let mut drift = Vec::new();
        if sides.drift() {
            drift.push(format!("DRIFT on {env}: {}", sides.describe()));
        }
        drift.extend(open.iter().map(ToString::to_string));
        Ok(Read {
            from: sides.effective().runtime,
            sides,
            file_colors,
            history,
            open,
            drift,
            entries: observed.entries,
            states: observed.states,
        })
    }

    /// True when every side already names the target and nothing is open: nothing to do.
    pub fn is_noop(&self, read: &Read) -> bool {
        read.sides.effective().all(self.target) && read.open.is_empty()
    }

    /// Gate phase: every server of the target color UP and checked, waiting as [`gate`]
    /// decides. Returns the servers judged, for the report.
    pub async fn gate(&mut self, read: &Read) -> Result<(Vec<GateServer>, u32), EdgeError> {
        let started = Instant::now();
        let wait_healthy = if self.req.dry_run {
            None
        } else {
            self.req.wait_healthy
        };
        let mut judged = gate::judge(self.env, self.target, &read.states);
        let mut polls = 0u32;
        let mut progress = crate::edge::progress::Wait::start();
        loop {
            match gate::decide(
                &self.env.name,
                self.target,
                &judged,
                started,
                Instant::now(),
                wait_healthy,
            ) {
                Decision::Pass { drained } => {
                    self.drained = drained;
                    return Ok((judged, polls));
                }
                Decision::Refuse(why) => return Err(EdgeError::Refused(why)),
                Decision::Wait(poll) => {
                    progress.show(|| gate_line(&self.env.name, self.target, &judged, started));
                    tokio::time::sleep(poll).await;
                    polls += 1;
                    let again = observe(&mut self.session, &self.map, &self.backends).await?;
                    judged = gate::judge(self.env, self.target, &again.states);
                }
            }
        }
    }

    /// A gate's refusal (a target color not healthy, a preview check failing; on one edge or
    /// at a fleet's prepare) is journalled as one `refused` line with the gate's words, so the
    /// metrics and the webhook count it. Nothing changed: no intent, no other line, and a dry
    /// run journals nothing. A line not written is a warning; the refusal stays the command's
    /// outcome. Returns the error unchanged.
    pub fn journal_refusal(&self, read: &Read, e: EdgeError) -> EdgeError {
        if let (EdgeError::Refused(why), false) = (&e, self.req.dry_run) {
            let op = Operation::flip(
                self.req.action,
                &self.env.name,
                read.from,
                self.target,
                &self.req.who,
            );
            if let Err(err) = self
                .edge
                .state
                .journal_record(&op, Phase::Refused, Some(why))
            {
                eprintln!("vezasock: warning: the journal line `refused` was not written: {err}");
            }
        }
        e
    }

    /// The admin session this flip holds (the deploy steps around the phases use it: a
    /// preview check, a bake).
    pub(crate) fn session(&mut self) -> &mut Session {
        &mut self.session
    }

    /// The request this flip runs.
    pub fn req(&self) -> &SwitchRequest {
        &self.req
    }

    /// The target servers the flip puts back to READY first (set by the gate).
    pub fn drained(&self) -> &[(String, String)] {
        &self.drained
    }

    /// Intent phase: the journal line that says what is about to happen.
    pub fn intent(&mut self, read: &Read) -> Result<(), EdgeError> {
        let op = Operation::flip(
            self.req.action,
            &self.env.name,
            read.from,
            self.target,
            &self.req.who,
        );
        let detail = self.intent_detail();
        self.edge
            .state
            .journal_record(&op, Phase::Intent, detail.as_deref())?;
        self.op = Some(op);
        crash_point("after-journal");
        Ok(())
    }

    /// The intent's detail: the sha, and the servers readied first.
    fn intent_detail(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(why) = &self.req.why {
            parts.push(why.clone());
        }
        if let Some(sha) = &self.req.sha {
            parts.push(sha.clone());
        }
        if !self.drained.is_empty() {
            parts.push(format!("ready first: {}", server_list(&self.drained)));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    /// Disk phase: the map file (and the readied servers' admin states), atomically. A failure
    /// puts back what was written.
    pub fn disk(&mut self, read: &Read) -> Result<(), EdgeError> {
        let map_path = self.edge.topology.paths.active_color_map();
        self.old_map = read_optional(&map_path)?;
        if !self.drained.is_empty() {
            self.old_admin = Some(read_optional(&self.edge.state.server_admin_file())?);
        }
        let mut colors = read.file_colors.clone();
        colors.insert(self.env.name.clone(), self.target);
        let written = write_map_file(self.edge, &colors).and_then(|()| {
            let ready: Vec<(&str, &str, AdminDecision)> = self
                .drained
                .iter()
                .map(|(b, s)| (b.as_str(), s.as_str(), AdminDecision::Ready))
                .collect();
            if !ready.is_empty() {
                self.edge.state.set_server_admin(&ready)?;
            }
            Ok(())
        });
        if let Err(e) = written {
            let restored = self.restore_disk();
            self.journal(Phase::Failed, &format!("disk not written: {e}; {restored}"));
            return Err(e);
        }
        // The map file is written: a journal that cannot say so (a full disk) must not leave it
        // ahead of the runtime behind an exit that says nothing changed.
        if let Err(e) = self.journal_strict(Phase::DiskWritten, None) {
            let restored = self.restore_disk();
            self.journal(
                Phase::Failed,
                &format!("disk not journalled: {e}; {restored}"),
            );
            return Err(e);
        }
        crash_point("after-disk");
        Ok(())
    }

    /// Runtime phase: READY for the drained target servers, then one `set map` (`add map`
    /// when the entry is missing), pipelined in that order so that no request reaches a
    /// drained server's color. Every reply is checked.
    pub async fn runtime(&mut self) -> Result<String, EdgeError> {
        let env = &self.env.name;
        let mut change = Batch::new();
        if self.had_entry {
            change.push(SetMap::new(&self.map, env, self.target.as_str())?)?;
        } else {
            change.push(AddMap::new(&self.map, None, env, self.target.as_str())?)?;
        }
        self.send_change(change).await
    }

    /// The runtime phase's send: READY for the drained target servers, then `changes` (the
    /// map change that moves traffic), one pipelined batch; a failure puts back what was
    /// applied.
    async fn send_change(&mut self, changes: Batch) -> Result<String, EdgeError> {
        let mut commands = Batch::new();
        for (backend, server) in &self.drained {
            commands.push(SetServerState::new(backend, server, SetState::Ready)?)?;
        }
        let line = changes.lines().collect::<Vec<_>>().join("; ");
        // A refusal means "nothing applied" only for the first change: a later one comes after
        // changes HAProxy did apply, so the runtime is re-read and put back then.
        let first_change = commands.len();
        commands.append(changes);
        let failure = match self.session.run_batch_all(commands).await {
            Ok(replies) => match first_problem(replies.replies()) {
                None => None,
                Some((i, Problem::Refused(e))) => {
                    Some((e, Applied::NotTheChange(i <= first_change)))
                }
                Some((_, Problem::Unexpected(e))) => Some((e, Applied::Unknown)),
            },
            // No connection: nothing of the batch was sent (an edge whose HAProxy died).
            Err(e @ crate::runtime::Error::Connect { .. }) => {
                Some((EdgeError::Runtime(e), Applied::Nothing))
            }
            Err(e) => Some((EdgeError::Runtime(e), Applied::Unknown)),
        };
        if let Some((error, applied)) = failure {
            return Err(self.put_back(error, applied).await);
        }
        self.journal_strict(Phase::RuntimeApplied, None)
            .map_err(|e| self.unfinished(FlipPhase::Runtime, Some(self.target), e))?;
        crash_point("after-runtime");
        Ok(line)
    }

    /// After a failed runtime phase: the disk goes back; the runtime is re-read on a new
    /// connection and put back when HAProxy may have applied anything.
    async fn put_back(&mut self, error: EdgeError, applied: Applied) -> EdgeError {
        let disk = self.restore_disk();
        let refused = matches!(applied, Applied::NotTheChange(true));
        let runtime = match applied {
            Applied::Nothing => Ok(
                "nothing was sent (no connection to HAProxy): the runtime was not changed"
                    .to_string(),
            ),
            Applied::NotTheChange(true) if self.drained.is_empty() => {
                Ok("the runtime was not changed".to_string())
            }
            _ => self.put_back_runtime().await,
        };
        let (words, confirmed) = match &runtime {
            Ok(words) => (words.clone(), true),
            Err(why) => (why.clone(), false),
        };
        let disk_ok = disk.starts_with("disk put back");
        self.journal(Phase::Failed, &format!("{error}; {disk}; {words}"));
        if confirmed && disk_ok {
            return match error {
                // HAProxy said no and nothing is left changed: a plain refusal.
                e if refused => e,
                EdgeError::Runtime(source) => EdgeError::Interrupted {
                    source,
                    detail: format!("{disk}; {words}"),
                },
                other => EdgeError::Interrupted {
                    source: crate::runtime::Error::Protocol {
                        endpoint: self.edge.admin().to_string(),
                        message: other.to_string(),
                    },
                    detail: format!("{disk}; {words}"),
                },
            };
        }
        let live = if confirmed {
            Some(self.recorded())
        } else {
            None
        };
        self.unfinished(
            FlipPhase::Runtime,
            live,
            EdgeError::NotVerified(format!("{error}; {disk}; {words}")),
        )
    }

    /// Re-reads the runtime and undoes what the failed runtime phase applied.
    async fn put_back_runtime(&mut self) -> Result<String, String> {
        let attempt = async {
            let mut session = self.edge.admin_session().await?;
            let observed = observe(&mut session, &self.map, &self.backends).await?;
            let now = runtime_color(&observed.entries, &self.env.name)?;
            let mut undo = Batch::new();
            let from = self.color_before();
            let applied = now == Some(self.target) && now != self.had_entry.then_some(from);
            if applied {
                if self.had_entry {
                    undo.push(SetMap::new(&self.map, &self.env.name, from.as_str())?)?;
                } else {
                    undo.push(DelMap::new(&self.map, &self.env.name)?)?;
                }
            }
            let readied: Vec<&(String, String)> = self
                .drained
                .iter()
                .filter(|(b, s)| {
                    observed
                        .states
                        .find(b, s)
                        .is_some_and(|r| !r.admin.is_drain())
                })
                .collect();
            for (backend, server) in &readied {
                undo.push(SetServerState::new(backend, server, SetState::Drain)?)?;
            }
            if !undo.is_empty() {
                session.run_batch(undo).await?;
            }
            Ok::<String, EdgeError>(match (applied, readied.is_empty()) {
                (false, true) => format!(
                    "HAProxy did not apply it (the runtime still says {})",
                    crate::edge::active_color::color_word(now)
                ),
                (true, _) => format!("HAProxy had applied it; the runtime was put back to {from}"),
                (false, false) => format!(
                    "the map was not changed; {} put back to DRAIN",
                    server_list(&self.drained)
                ),
            })
        };
        attempt.await.map_err(|why| {
            format!("the runtime may or may not have applied it (checking again failed: {why})")
        })
    }

    /// Verify phase: `show map` says the target, and the target servers are still UP.
    pub async fn verify(&mut self) -> Result<(), EdgeError> {
        let back = match observe(&mut self.session, &self.map, &self.backends).await {
            Ok(back) => back,
            Err(e) => {
                self.journal(Phase::Failed, &format!("read-back failed: {e}"));
                return Err(self.unfinished(FlipPhase::Verify, Some(self.target), e));
            }
        };
        let live = runtime_color(&back.entries, &self.env.name).ok().flatten();
        let mut problems = Vec::new();
        if live != Some(self.target) {
            problems.push(format!(
                "the runtime map says {:?} for {}",
                live.map(Color::as_str),
                self.env.name
            ));
        }
        // A check running right now is no sign of trouble: the server is still UP.
        for g in gate::judge(self.env, self.target, &back.states) {
            if !matches!(g.verdict, gate::Verdict::Ready | gate::Verdict::Checking) {
                problems.push(g.line());
            }
        }
        if !problems.is_empty() {
            let detail = format!("read-back disagrees: {}", problems.join(", "));
            self.journal(Phase::Failed, &detail);
            return Err(self.unfinished(FlipPhase::Verify, live, EdgeError::NotVerified(detail)));
        }
        self.journal_strict(Phase::Verified, None)
            .map_err(|e| self.unfinished(FlipPhase::Verify, Some(self.target), e))?;
        crash_point("after-readback");
        Ok(())
    }

    /// Record phase: the history line, then the state file (last, so that it only ever names
    /// a verified color), the server-state file when servers were readied, and the journal.
    pub async fn record(&mut self, read: &Read) -> Result<(), EdgeError> {
        let recorded = self.record_files(read).await;
        if let Err(e) = recorded {
            self.journal(Phase::Failed, &format!("not recorded: {e}"));
            return Err(self.unfinished(FlipPhase::Record, Some(self.target), e));
        }
        Ok(())
    }

    async fn record_files(&mut self, read: &Read) -> Result<(), EdgeError> {
        let env = &self.env.name;
        self.edge.state.record_entry(
            env,
            &read.history,
            HistoryEntry::now(
                self.target,
                self.req.sha.as_deref(),
                &self.req.who,
                SystemTime::now(),
            )?,
            || crash_point("after-history"),
        )?;
        if !self.drained.is_empty() {
            crate::edge::servers::save_server_state(self.edge, &mut self.session).await?;
        }
        let Some(op) = &self.op else {
            return Ok(());
        };
        for old in &read.open {
            let superseded = old.continued_by(&self.req.who);
            self.edge.state.journal_record(
                &superseded,
                Phase::Failed,
                Some(&format!(
                    "interrupted; superseded by op {} which left {env} on {}",
                    op.op_id, self.target
                )),
            )?;
        }
        self.edge
            .state
            .journal_record(op, Phase::Done, self.req.sha.as_deref())?;
        Ok(())
    }

    /// Releases the edge lock (the drain-old phase takes it again through the servers module).
    pub fn unlock(&mut self) {
        self.lock = None;
    }

    /// The color the state file records (what `apply` puts back).
    fn recorded(&self) -> Color {
        self.edge
            .state
            .recorded_color(&self.env.name)
            .ok()
            .flatten()
            .unwrap_or(Color::Blue)
    }

    /// The live color before the flip, as journalled in the intent.
    fn color_before(&self) -> Color {
        self.op
            .as_ref()
            .and_then(|op| op.before.as_deref())
            .and_then(Color::parse)
            .unwrap_or(Color::Blue)
    }

    /// The exit-5 error for a failure in `phase`, after traffic may have moved.
    pub fn unfinished(&self, phase: FlipPhase, live: Option<Color>, error: EdgeError) -> EdgeError {
        let finish = format!("vezasock switch {} {}", self.env.name, self.target);
        EdgeError::Unfinished(Box::new(Unfinished {
            phase,
            env: self.env.name.clone(),
            live,
            recorded: self.recorded(),
            why: error.to_string(),
            finish,
        }))
    }

    /// Puts the map file and `server-admin.json` back as they were before the disk phase.
    fn restore_disk(&self) -> String {
        let map_path = self.edge.topology.paths.active_color_map();
        let mut failed = Vec::new();
        if let Err(e) = put_file_back(&map_path, self.old_map.as_deref()) {
            failed.push(e);
        }
        if let Some(old) = &self.old_admin {
            if let Err(e) = crate::state::atomic::put_file_back(
                &self.edge.state.server_admin_file(),
                old.as_deref(),
            ) {
                failed.push(e);
            }
        }
        if failed.is_empty() {
            "disk put back (map file restored)".to_string()
        } else {
            format!("the disk was NOT put back: {}", failed.join("; "))
        }
    }

    /// A journal line whose failure must not hide the error being reported: it is tried,
    /// and a failure to write it is said on stderr (the journal cuts a failed line back).
    fn journal(&self, phase: Phase, detail: &str) {
        if let Some(op) = &self.op {
            if let Err(e) = self.edge.state.journal_record(op, phase, Some(detail)) {
                tracing::warn!(%e, "journal line not written");
                eprintln!(
                    "vezasock: warning: the journal line `{}` was not written: {e}",
                    phase.as_str()
                );
            }
        }
    }

    /// A journal line the flip cannot go on without.
    fn journal_strict(&self, phase: Phase, detail: Option<&str>) -> Result<(), EdgeError> {
        if let Some(op) = &self.op {
            self.edge.state.journal_record(op, phase, detail)?;
        }
        Ok(())
    }
}

/// HAProxy does not know the map or a backend the flip needs: the running config is not the
/// one vezasock renders (a foreign edge, or a shape change not applied yet). Still a refusal
/// before anything changed, with what to run.
fn not_this_shape(error: EdgeError) -> EdgeError {
    let foreign = matches!(
        &error,
        EdgeError::Runtime(crate::runtime::Error::Refused { message, .. })
            if message.contains("Can't find backend") || message.contains("Unknown map identifier")
    );
    if !foreign {
        return error;
    }
    EdgeError::Refused(format!(
        "{error}: the running config is not the one vezasock renders (an edge it did not \
         render, or a shape change not applied yet); `vezasock status` and `vezasock plan` say \
         what differs, `vezasock apply` brings the edge to the topology; nothing was changed"
    ))
}

/// `be/s, be/s`.
fn server_list(servers: &[(String, String)]) -> String {
    servers
        .iter()
        .map(|(b, s)| format!("{b}/{s}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How much of a failed runtime batch HAProxy may have applied.
#[derive(Debug, Clone, Copy)]
enum Applied {
    /// Nothing was sent.
    Nothing,
    /// HAProxy refused a command: `true` when it was the map change itself (nothing of the
    /// change applied; readied servers may have been), `false` when a later one.
    NotTheChange(bool),
    /// The transport failed mid-batch or a reply was unexpected: re-read to know.
    Unknown,
}

/// What went wrong in a batch of changes.
enum Problem {
    /// HAProxy answered with an error: it did not apply that command.
    Refused(EdgeError),
    /// Something that is neither success nor a known error: the outcome is not known.
    Unexpected(EdgeError),
}

/// The first reply that is not the empty success of a change, with its index.
fn first_problem(replies: &[Reply]) -> Option<(usize, Problem)> {
    for (i, reply) in replies.iter().enumerate() {
        match &reply.outcome {
            Outcome::Empty | Outcome::Info { .. } => {}
            Outcome::Error { .. } => {
                return reply
                    .refusal(Some(i + 1))
                    .map(|e| (i, Problem::Refused(EdgeError::Runtime(e))))
            }
            Outcome::Output(text) => {
                return Some((
                    i,
                    Problem::Unexpected(EdgeError::NotVerified(format!(
                        "`{}` answered something unexpected: {text:?}",
                        reply.command
                    ))),
                ))
            }
        }
    }
    None
}

/// What one pipelined read returned.
pub(crate) struct Observed {
    pub entries: Vec<MapEntry>,
    pub states: ServersState,
}

/// `show map <file>` plus `show servers state <backend>` for each given backend, one batch.
pub(crate) async fn observe(
    session: &mut Session,
    map: &str,
    backends: &[String],
) -> Result<Observed, EdgeError> {
    let mut commands = Batch::new();
    let map = commands.push(ShowMap::new(map, None)?)?;
    let mut of_backends = Vec::with_capacity(backends.len());
    for b in backends {
        of_backends.push(commands.push(ShowServersState::new(Some(b))?)?);
    }
    let replies = session.run_batch(commands).await?;
    let entries = replies.take(&map)?;
    let mut states = ServersState { rows: Vec::new() };
    for slot in &of_backends {
        states.rows.extend(replies.take(slot)?.rows);
    }
    Ok(Observed { entries, states })
}

/// The gate's progress while it waits: `waiting for green of staging to be healthy, 4s: 1/2
/// ready (be_staging_api_green/green_1 DOWN, L4CON)` (the time first: a terminal narrower than
/// the line cuts its end).
fn gate_line(env: &str, target: Color, judged: &[GateServer], started: Instant) -> String {
    let ready =
        |g: &&GateServer| matches!(g.verdict, gate::Verdict::Ready | gate::Verdict::Drained);
    let not: Vec<String> = judged
        .iter()
        .filter(|g| !ready(g))
        .map(GateServer::line)
        .collect();
    format!(
        "waiting for {target} of {env} to be healthy, {}: {}/{} ready ({})",
        crate::edge::progress::seconds(started.elapsed()),
        judged.iter().filter(ready).count(),
        judged.len(),
        not.join(", ")
    )
}
