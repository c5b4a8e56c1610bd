//! One canary percent on one edge: the env's entry in `preview.map` changed under the edge
//! lock (journal intent → map file → runtime → journal done), in one call ([`set_percent`]) or
//! in the fleet's two halves (staged on every edge, then applied: [`stage_percent`],
//! [`write_staged`], [`apply_staged`], [`drop_staged`]).

use super::*;

/// One map change under the edge lock: journal intent → file → runtime → journal done.
/// `None` deletes the env's entry. Public for the canary-step benchmark.
pub async fn set_percent(
    edge: &Edge,
    session: &mut Session,
    env: &Env,
    req: &CanaryRequest,
    to: Option<(Color, u8)>,
) -> Result<(), EdgeError> {
    let _lock =
        EdgeLock::acquire_async(&edge.state, req.lock_wait.wait(), Holder::current()).await?;
    set_percent_locked(edge, session, env, &req.who, to)
        .await
        .map(|_| ())
}

/// [`set_percent`] with the edge lock held by the caller. Returns false when there was nothing
/// to change (a delete of an entry neither the file nor the runtime holds).
pub(super) async fn set_percent_locked(
    edge: &Edge,
    session: &mut Session,
    env: &Env,
    who: &str,
    to: Option<(Color, u8)>,
) -> Result<bool, EdgeError> {
    match stage_percent(edge, session, env, who, to).await? {
        Some(staged) => apply_staged(edge, session, staged).await.map(|()| true),
        None => Ok(false),
    }
}

/// One canary map change read and journalled (intent), not yet live: `canary --fleet` stages
/// one on every edge, its edge lock held, and writes each map file ([`write_staged`]) before
/// it changes any runtime ([`apply_staged`]), so the edges' runtimes change back to back; or it
/// drops them all ([`drop_staged`]: each map file put back, nothing live changed).
#[derive(Debug)]
pub struct StagedPercent {
    op: Operation,
    env: String,
    /// The new value (`None`: the entry deleted).
    value: Option<String>,
    old_bytes: Option<Vec<u8>>,
    in_runtime: bool,
    /// The new map file, rendered.
    new_file: String,
    /// The map file is written ([`write_staged`]).
    written: bool,
}

impl StagedPercent {
    /// `green:25 → green:50`, `green:25 → 0 %`.
    pub fn describe(&self) -> String {
        let before = self.op.before.as_deref().unwrap_or("0 %");
        let after = self.value.as_deref().unwrap_or("0 %");
        format!("{} {before} → {after}", self.env)
    }
}

/// The first half of a canary map change, the edge lock held by the caller: the map file and
/// the runtime entry read, the intent journalled. `None`: nothing to change (a delete of an
/// entry neither the file nor the runtime holds).
pub async fn stage_percent(
    edge: &Edge,
    session: &mut Session,
    env: &Env,
    who: &str,
    to: Option<(Color, u8)>,
) -> Result<Option<StagedPercent>, EdgeError> {
    let map = map_ref(edge);
    let path = edge.topology.paths.preview_map();
    let old_bytes = read_optional(&path)?;
    let mut file = parse_file(edge, old_bytes.as_deref())?;
    let replies = session.run_each(&[ShowMap::new(&map, None)?]).await?;
    let mut in_runtime = false;
    for entries in &replies {
        in_runtime = entries.iter().any(|e| e.key == env.name);
    }
    let value = to.map(|(c, p)| format!("{c}:{p}"));
    if value.is_none() && !in_runtime && !file.contains_key(&env.name) {
        return Ok(None);
    }
    let op = Operation::new(
        Action::Canary,
        Some(&env.name),
        file.get(&env.name).map(String::as_str),
        value.as_deref(),
        who,
    );
    edge.state.journal_record(&op, Phase::Intent, None)?;
    match &value {
        Some(v) => {
            file.insert(env.name.clone(), v.clone());
        }
        None => {
            file.remove(&env.name);
        }
    }
    Ok(Some(StagedPercent {
        op,
        env: env.name.clone(),
        value,
        old_bytes,
        in_runtime,
        new_file: render_file(&file),
        written: false,
    }))
}

/// The disk half: the new map file written (the file first, so a reload or restart after the
/// runtime change keeps the percent). A failure journals `failed` (nothing changed).
pub fn write_staged(edge: &Edge, staged: &mut StagedPercent) -> Result<(), EdgeError> {
    if staged.written {
        return Ok(());
    }
    let path = edge.topology.paths.preview_map();
    if let Err(e) = write_atomic(&path, staged.new_file.as_bytes()) {
        let _ = edge.state.journal_record(
            &staged.op,
            Phase::Failed,
            Some(&format!("map file not written: {e}")),
        );
        return Err(e.into());
    }
    staged.written = true;
    crate::edge::crash_point("canary-after-disk");
    Ok(())
}

/// The change made live: the map file written (when it is not yet), then the runtime (`add
/// map` / `set map` / `del map`), then the journal's `done`. A runtime refusal puts the file
/// back (journal `failed`).
pub async fn apply_staged(
    edge: &Edge,
    session: &mut Session,
    mut staged: StagedPercent,
) -> Result<(), EdgeError> {
    write_staged(edge, &mut staged)?;
    let (map, env) = (map_ref(edge), staged.env.as_str());
    let mut command = Batch::new();
    match (&staged.value, staged.in_runtime) {
        (Some(v), true) => {
            command.push(SetMap::new(&map, env, v)?)?;
        }
        (Some(v), false) => {
            command.push(AddMap::new(&map, None, env, v)?)?;
        }
        (None, _) => {
            command.push(DelMap::new(&map, env)?)?;
        }
    }
    if staged.value.is_none() && !staged.in_runtime {
        // Only the file had it (written, then the runtime lost it): nothing to delete live.
    } else if let Err(e) = session.run_batch(command).await {
        let path = edge.topology.paths.preview_map();
        let restored = put_back(&path, staged.old_bytes.as_deref());
        let _ = edge.state.journal_record(
            &staged.op,
            Phase::Failed,
            Some(&format!("runtime not changed: {e}; {restored}")),
        );
        return Err(e.into());
    }
    edge.state.journal_record(&staged.op, Phase::Done, None)?;
    Ok(())
}

/// A staged change dropped before its runtime change (another edge refused): its map file put
/// back when it was written; the journal closes the intent.
pub fn drop_staged(edge: &Edge, staged: StagedPercent, why: &str) {
    let mut detail = why.to_string();
    if staged.written {
        let path = edge.topology.paths.preview_map();
        detail = format!("{why}; {}", put_back(&path, staged.old_bytes.as_deref()));
    }
    let _ = edge
        .state
        .journal_record(&staged.op, Phase::RolledBack, Some(&detail));
}
