//! The last commit skew of each fleet switch that included this edge: a fleet switch
//! (`--fleet`) records it in each local edge's state dir (`metrics-fleet.json`), and every
//! metrics write of the edge reads it back, so the gauge survives the next `status`. Only a
//! cache for the metrics: a file missing or corrupt is no samples, never an error.

use serde::{Deserialize, Serialize};

use crate::state::StateDir;

/// The file, in the edge's state dir.
pub const FLEET_FILE: &str = "metrics-fleet.json";

/// At most this many (fleet, env) pairs are kept; the oldest go first.
const MAX_ENTRIES: usize = 64;

/// The last fleet switch of one env by one fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetSkew {
    /// The fleet file's name without its extension (`prod` for `prod.toml`).
    pub fleet: String,
    pub env: String,
    /// From the first to the last edge's `commit map` answer.
    pub commit_skew_seconds: f64,
    /// When it was recorded (Unix seconds).
    pub at: i64,
}

/// What the edge's state dir holds; empty when missing or corrupt.
pub fn read(state: &StateDir) -> Vec<FleetSkew> {
    let path = state.path().join(FLEET_FILE);
    crate::state::atomic::read_optional(&path)
        .ok()
        .flatten()
        .and_then(|bytes| serde_json::from_slice::<Vec<FleetSkew>>(&bytes).ok())
        .map(|mut list| {
            list.truncate(MAX_ENTRIES);
            list
        })
        .unwrap_or_default()
}

/// Records `skew` as the last one of its (fleet, env), replacing the older one.
pub fn record(state: &StateDir, skew: FleetSkew) -> Result<(), crate::state::Error> {
    let list = merged(read(state), skew);
    let json = serde_json::to_vec(&list).unwrap_or_default();
    crate::state::atomic::write_atomic_volatile(&state.path().join(FLEET_FILE), &json)
}

/// `list` with `skew` in place of its (fleet, env), newest first, at most [`MAX_ENTRIES`].
fn merged(mut list: Vec<FleetSkew>, skew: FleetSkew) -> Vec<FleetSkew> {
    list.retain(|s| (s.fleet.as_str(), s.env.as_str()) != (skew.fleet.as_str(), skew.env.as_str()));
    list.insert(0, skew);
    list.truncate(MAX_ENTRIES);
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skew(fleet: &str, env: &str, s: f64) -> FleetSkew {
        FleetSkew {
            fleet: fleet.to_string(),
            env: env.to_string(),
            commit_skew_seconds: s,
            at: 1,
        }
    }

    /// The last switch of a (fleet, env) replaces the one before; a corrupt file is nothing.
    #[test]
    fn the_last_skew_of_each_fleet_and_env_is_kept() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let state = StateDir::single(dir.path());
        assert!(read(&state).is_empty());
        for s in [skew("prod", "staging", 0.5), skew("prod", "web", 0.1)] {
            record(&state, s).unwrap_or_else(|e| panic!("{e}"));
        }
        record(&state, skew("prod", "staging", 0.002)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            read(&state),
            vec![skew("prod", "staging", 0.002), skew("prod", "web", 0.1)]
        );
        std::fs::write(dir.path().join(FLEET_FILE), "{not json").unwrap_or_else(|e| panic!("{e}"));
        assert!(read(&state).is_empty());
    }

    proptest::proptest! {
        /// Any sequence of records keeps one entry per (fleet, env), at most the bound.
        #[test]
        fn one_entry_per_fleet_and_env_within_the_bound(
            keys in proptest::collection::vec((0u8..10, 0u8..10), 0..200)
        ) {
            let mut list = Vec::new();
            for (f, e) in &keys {
                list = merged(list, skew(&f.to_string(), &e.to_string(), 0.0));
            }
            proptest::prop_assert!(list.len() <= MAX_ENTRIES);
            let mut seen: Vec<(String, String)> = list.iter().map(|s| (s.fleet.clone(), s.env.clone())).collect();
            let n = seen.len();
            seen.sort();
            seen.dedup();
            proptest::prop_assert_eq!(seen.len(), n);
        }
    }
}
