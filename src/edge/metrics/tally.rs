//! The metrics counted from the journal: switches, canaries and reloads by how they ended, and
//! each env's last successful switch. The live journal is counted on every write; the archive
//! (`journal.archive.jsonl`, where a rotation moves ended operations every ~20 flips) is counted
//! once, in steps: `metrics-archive.json` in the state dir keeps the archive's counts with the
//! length they cover, and the next write counts only what was appended since. A rotation moves
//! whole operations (open ones stay live), so no operation is split between the two files.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::edge::flip::BAKE_BREACH;
use crate::state::time::parse_rfc3339_utc;
use crate::state::{Action, JournalEntry, Phase, StateDir};

/// The archive's counts, cached between writes.
pub const ARCHIVE_COUNTS_FILE: &str = "metrics-archive.json";

/// How many archive bytes one write counts at most (the rest waits for the next writes).
const ARCHIVE_STEP: u64 = 16 << 20;

/// Counts from some journal lines. Keys are owned: a tally outlives the lines (the cache).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// (env, action, result) → operations.
    #[serde(with = "rows")]
    pub switches: BTreeMap<(String, String, String), u64>,
    /// (env, promoted|aborted) → canaries.
    #[serde(with = "rows")]
    pub canaries: BTreeMap<(String, String), u64>,
    /// result → reloads.
    #[serde(with = "rows")]
    pub reloads: BTreeMap<String, u64>,
    /// env → (recorded at, seconds it took) of its last successful switch or rollback.
    #[serde(with = "rows")]
    pub last: BTreeMap<String, (i64, i64)>,
}

/// A map as a JSON list of `[key, value]` pairs (JSON object keys are strings only).
mod rows {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer, K: Serialize, V: Serialize>(
        map: &BTreeMap<K, V>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.iter())
    }

    pub fn deserialize<'de, D, K, V>(d: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        D: Deserializer<'de>,
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
    {
        Vec::<(K, V)>::deserialize(d).map(|rows| rows.into_iter().collect())
    }
}

/// The archive cache file: the counts of the archive's first `bytes` bytes.
#[derive(Debug, Default, Serialize, Deserialize)]
struct ArchiveCounts {
    bytes: u64,
    tally: Tally,
}

/// How one journal operation ended.
#[derive(Debug, Clone)]
struct Ended<'a> {
    action: Action,
    /// A bake's flip-back (its intent says [`BAKE_BREACH`]), not an operator's rollback.
    bake: bool,
    env: &'a str,
    before: Option<&'a str>,
    after: Option<&'a str>,
    /// ok, failed, rolled_back, refused or unfinished (no terminal phase yet).
    result: &'static str,
    started: Option<i64>,
    ended: Option<i64>,
}

/// Every operation of some journal lines, in the order it started, with how it ended.
fn operations(journal: &[JournalEntry]) -> Vec<Ended<'_>> {
    let mut order: Vec<&str> = Vec::new();
    let mut ops: BTreeMap<&str, Ended<'_>> = BTreeMap::new();
    for e in journal {
        let op = ops.entry(e.op_id.as_str()).or_insert_with(|| {
            order.push(e.op_id.as_str());
            Ended {
                action: e.action,
                bake: e.phase == Phase::Intent
                    && e.detail
                        .as_deref()
                        .is_some_and(|d| d.starts_with(BAKE_BREACH)),
                env: e.env.as_deref().unwrap_or(""),
                before: e.before.as_deref(),
                after: e.after.as_deref(),
                result: "unfinished",
                started: parse_rfc3339_utc(&e.ts),
                ended: None,
            }
        });
        let result = match e.phase {
            Phase::Done => "ok",
            Phase::Failed => "failed",
            Phase::RolledBack => "rolled_back",
            Phase::Refused => "refused",
            _ => continue,
        };
        op.result = result;
        op.ended = parse_rfc3339_utc(&e.ts);
    }
    order.iter().filter_map(|id| ops.remove(id)).collect()
}

/// A canary operation that ended one (its entry deleted): `promoted` when it was at 100 %
/// (every user already moved, then switched), `aborted` otherwise. `None` for a step.
fn canary_end(op: &Ended<'_>) -> Option<&'static str> {
    if op.after.is_some() || op.result != "ok" {
        return None;
    }
    Some(match op.before {
        Some(before) if before.ends_with(":100") => "promoted",
        _ => "aborted",
    })
}

impl Tally {
    /// The counts of some journal lines.
    pub fn of(journal: &[JournalEntry]) -> Tally {
        let mut t = Tally::default();
        for op in operations(journal) {
            let env = op.env.to_string();
            match op.action {
                Action::Switch | Action::Rollback => {
                    let action = if op.bake {
                        "bake_rollback"
                    } else {
                        op.action.as_str()
                    };
                    let key = (env.clone(), action.to_string(), op.result.to_string());
                    *t.switches.entry(key).or_default() += 1;
                    if let (Some(start), Some(end), "ok") = (op.started, op.ended, op.result) {
                        t.last.insert(env, (end, end - start));
                    }
                }
                Action::Canary => {
                    if let Some(result) = canary_end(&op) {
                        *t.canaries.entry((env, result.to_string())).or_default() += 1;
                    }
                }
                Action::Reload => *t.reloads.entry(op.result.to_string()).or_default() += 1,
                _ => {}
            }
        }
        t
    }

    /// Adds `later`'s counts; its last switches win over older ones.
    pub fn add(&mut self, later: &Tally) {
        for (k, n) in &later.switches {
            *self.switches.entry(k.clone()).or_default() += n;
        }
        for (k, n) in &later.canaries {
            *self.canaries.entry(k.clone()).or_default() += n;
        }
        for (k, n) in &later.reloads {
            *self.reloads.entry(k.clone()).or_default() += n;
        }
        for (env, (at, took)) in &later.last {
            let newer = self.last.get(env).is_none_or(|(old, _)| old <= at);
            if newer {
                self.last.insert(env.clone(), (*at, *took));
            }
        }
    }
}

/// The tally of the archive and the live journal together.
pub fn of_state(state: &StateDir) -> Result<Tally, crate::state::Error> {
    let mut tally = archive(state)?;
    tally.add(&Tally::of(&state.journal_read()?.entries));
    Ok(tally)
}

/// The archive's tally: the cached counts plus what was appended since (at most
/// [`ARCHIVE_STEP`] bytes a write), the cache then rewritten. An archive shorter than the
/// cache says (replaced by hand) is counted again from its start.
fn archive(state: &StateDir) -> Result<Tally, crate::state::Error> {
    let path = state
        .path()
        .join(crate::state::journal::JOURNAL_ARCHIVE_FILE);
    let cache_path = state.path().join(ARCHIVE_COUNTS_FILE);
    let len = match std::fs::metadata(&path) {
        Ok(meta) => meta.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Tally::default()),
        Err(e) => return Err(crate::state::Error::io("read the metadata of", &path, e)),
    };
    // A cache that does not parse is counted again, never trusted.
    let mut cached: ArchiveCounts = crate::state::atomic::read_optional(&cache_path)?
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .filter(|c: &ArchiveCounts| c.bytes <= len)
        .unwrap_or_default();
    if cached.bytes == len {
        return Ok(cached.tally);
    }
    let bytes = crate::files::read_chunk(&path, cached.bytes, ARCHIVE_STEP)
        .map_err(|e| crate::state::Error::io("read", &path, e))?;
    let whole = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let read = crate::state::journal::parse_journal(&bytes[..whole]);
    cached.tally.add(&Tally::of(&read.entries));
    cached.bytes += whole as u64;
    let json = serde_json::to_vec(&cached).unwrap_or_default();
    // Only a cache: not writing it (a read-only state dir) costs counting the archive again.
    let _ = crate::state::atomic::write_atomic_volatile(&cache_path, &json);
    Ok(cached.tally)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(id: u32, action: Action, env: &str, end: Phase) -> Vec<JournalEntry> {
        let entry = |phase, ts: &str| JournalEntry {
            ts: ts.to_string(),
            who: "ci".to_string(),
            pid: 1,
            op_id: format!("op-{id}"),
            env: Some(env.to_string()),
            action,
            phase,
            before: Some("blue".to_string()),
            after: Some("green".to_string()),
            detail: None,
        };
        let at = |s: u32| format!("2026-01-01T00:{:02}:{:02}Z", s / 60 % 60, s % 60);
        vec![entry(Phase::Intent, &at(id)), entry(end, &at(id + 1))]
    }

    fn lines(entries: &[JournalEntry]) -> String {
        entries
            .iter()
            .map(|e| serde_json::to_string(e).unwrap_or_default() + "\n")
            .collect()
    }

    fn ops(range: std::ops::Range<u32>) -> Vec<JournalEntry> {
        let ends = [Phase::Done, Phase::Failed, Phase::RolledBack];
        range
            .flat_map(|i| op(i, Action::Switch, "staging", ends[i as usize % 3]))
            .collect()
    }

    fn switches(t: &Tally, result: &str) -> u64 {
        let key = (
            "staging".to_string(),
            "switch".to_string(),
            result.to_string(),
        );
        t.switches.get(&key).copied().unwrap_or(0)
    }

    /// The archive is counted once and then in steps; a corrupt cache is counted again; the live
    /// journal adds to it.
    #[test]
    fn archive_and_live_journal_add_up_through_the_cache() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let state = StateDir::single(dir.path());
        let archive = dir.path().join(crate::state::journal::JOURNAL_ARCHIVE_FILE);
        let write = |path: &std::path::Path, text: &str| {
            std::fs::write(path, text).unwrap_or_else(|e| panic!("{e}"))
        };
        write(&archive, &lines(&ops(0..30)));
        write(&state.journal_file(), &lines(&ops(30..36)));
        let t = of_state(&state).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            switches(&t, "ok") + switches(&t, "failed") + switches(&t, "rolled_back"),
            36
        );
        assert_eq!(switches(&t, "ok"), 12, "{t:?}");
        assert!(dir.path().join(ARCHIVE_COUNTS_FILE).exists());
        // A rotation appends; the cache covers the old part.
        let mut more = std::fs::read_to_string(&archive).unwrap_or_default();
        more.push_str(&lines(&ops(30..36)));
        write(&archive, &more);
        write(&state.journal_file(), "");
        assert_eq!(of_state(&state).unwrap_or_else(|e| panic!("{e}")), t);
        write(&dir.path().join(ARCHIVE_COUNTS_FILE), "{not json");
        assert_eq!(of_state(&state).unwrap_or_else(|e| panic!("{e}")), t);
        // A torn last archive line waits for its end.
        write(&archive, &(more.clone() + "{\"ts\":"));
        assert_eq!(of_state(&state).unwrap_or_else(|e| panic!("{e}")), t);
    }

    /// A bake's flip-back counts apart from an operator's rollback; a gate's refusal (its one
    /// line) counts as `refused`.
    #[test]
    fn a_bake_flip_back_and_a_refusal_have_their_own_labels() {
        let mut journal = op(1, Action::Rollback, "staging", Phase::Done);
        journal[0].detail = Some(format!("{BAKE_BREACH}: 3 of 10 answers 5xx (30.0 %)"));
        journal.extend(op(3, Action::Rollback, "staging", Phase::Done));
        let mut refused = op(5, Action::Switch, "staging", Phase::Refused);
        refused.remove(0);
        journal.extend(refused);
        let t = Tally::of(&journal);
        let count = |action: &str, result: &str| {
            let key = (
                "staging".to_string(),
                action.to_string(),
                result.to_string(),
            );
            t.switches.get(&key).copied().unwrap_or(0)
        };
        assert_eq!(count("bake_rollback", "ok"), 1, "{t:?}");
        assert_eq!(count("rollback", "ok"), 1, "{t:?}");
        assert_eq!(count("switch", "refused"), 1, "{t:?}");
        assert_eq!(count("switch", "unfinished"), 0, "{t:?}");
        assert_eq!(t.switches.values().sum::<u64>(), 3, "{t:?}");
    }

    proptest::proptest! {
        /// Counting two journals apart and adding gives the count of both (what the archive and
        /// the live journal rely on), for any ends and envs of whole operations.
        #[test]
        fn tallies_add_like_the_journals_they_count(
            ends in proptest::collection::vec((0u8..5, 0u8..3, 0u8..4), 0..30),
            split in 0usize..30
        ) {
            let phases = [Phase::Done, Phase::Failed, Phase::RolledBack, Phase::Verified, Phase::Refused];
            let actions = [Action::Switch, Action::Rollback, Action::Reload, Action::Canary];
            let envs = ["a", "b", "c"];
            let all: Vec<Vec<JournalEntry>> = ends
                .iter()
                .enumerate()
                .map(|(i, (p, e, a))| op(i as u32, actions[*a as usize], envs[*e as usize], phases[*p as usize]))
                .collect();
            let split = split.min(all.len());
            let first: Vec<JournalEntry> = all[..split].concat();
            let second: Vec<JournalEntry> = all[split..].concat();
            let mut added = Tally::of(&first);
            added.add(&Tally::of(&second));
            proptest::prop_assert_eq!(added, Tally::of(&all.concat()));
        }
    }
}
