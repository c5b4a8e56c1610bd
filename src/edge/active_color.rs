//! The active color of each env, as the three sides hold it: the runtime map entry
//! (`show map`), the map file on disk (`active-color.map`, what HAProxy loads at start) and the
//! state file (`active-color-<env>`, what vezasock recorded after a verified flip). Every
//! operation that reads or writes an env's color goes through these helpers.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::edge::{Edge, EdgeError};
use crate::render::{self, maps};
use crate::runtime::command::maps::MapEntry;
use crate::state::atomic::{read_optional, write_atomic};
use crate::topology::Color;

/// The env's active color as each side sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Sides {
    /// `show map`: `None` when the entry is missing (HAProxy then uses the default, blue).
    pub runtime: Option<Color>,
    /// The map file on disk: `None` when the file or the entry is missing.
    pub map_file: Option<Color>,
    /// The state file: `None` when missing (the seed reads that as blue).
    pub state_file: Option<Color>,
}

/// Each side's color once "missing" is read as blue, as HAProxy and the seed do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Effective {
    pub runtime: Color,
    pub map_file: Color,
    pub state_file: Color,
}

impl Effective {
    /// True when all three sides name `color`.
    pub fn all(&self, color: Color) -> bool {
        self.runtime == color && self.map_file == color && self.state_file == color
    }
}

impl Sides {
    /// Each side's effective color (missing = blue everywhere, as HAProxy and the seed do).
    pub fn effective(&self) -> Effective {
        let c = |o: Option<Color>| o.unwrap_or(Color::Blue);
        Effective {
            runtime: c(self.runtime),
            map_file: c(self.map_file),
            state_file: c(self.state_file),
        }
    }

    /// True when the three sides do not name the same color.
    pub fn drift(&self) -> bool {
        let e = self.effective();
        !e.all(e.runtime)
    }

    /// `runtime green, map file green, state file blue`.
    pub fn describe(&self) -> String {
        let w = |o: Option<Color>, missing: &str| match o {
            Some(c) => c.to_string(),
            None => format!("blue ({missing})"),
        };
        format!(
            "runtime {}, map file {}, state file {}",
            w(self.runtime, "no entry"),
            w(self.map_file, "no entry"),
            w(self.state_file, "no file")
        )
    }
}

/// The color of `env` in `show map` entries (the first entry wins, as in HAProxy's lookup).
pub(crate) fn runtime_color(entries: &[MapEntry], env: &str) -> Result<Option<Color>, EdgeError> {
    entry_color(env, entries.iter().find(|e| e.key == env))
}

/// The color of `env`'s runtime map entry (the first one with its key, as HAProxy matches).
pub(crate) fn entry_color(env: &str, entry: Option<&MapEntry>) -> Result<Option<Color>, EdgeError> {
    match entry {
        None => Ok(None),
        Some(e) => Color::parse(&e.value).map(Some).ok_or_else(|| {
            EdgeError::NotVerified(format!(
                "the runtime active-color map gives env {env:?} the color {:?}, not blue or green",
                e.value
            ))
        }),
    }
}

/// The map file's colors (`None`: no file). A file that does not parse is an error naming it.
pub(crate) fn map_file_colors(edge: &Edge) -> Result<Option<BTreeMap<String, Color>>, EdgeError> {
    let path = edge.topology.paths.active_color_map();
    let Some(bytes) = read_optional(&path)? else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(&bytes);
    maps::parse_colors(&text).map(Some).map_err(|e| {
        EdgeError::BadInput(format!(
            "{}: {e}; fix the file (or re-render it with `vezasock render`)",
            path.display()
        ))
    })
}

/// The map reference HAProxy knows the active color map by: its path as written in the config.
pub(crate) fn map_ref(edge: &Edge) -> String {
    edge.topology
        .paths
        .active_color_map()
        .to_string_lossy()
        .into_owned()
}

/// Writes `active-color.map` with `colors` (envs not listed: blue), rendered exactly as
/// `vezasock render` writes it, atomically.
pub(crate) fn write_map_file(
    edge: &Edge,
    colors: &BTreeMap<String, Color>,
) -> Result<(), EdgeError> {
    let text = render::render_active_color_map(&edge.topology, colors)
        .map_err(|e| EdgeError::BadInput(format!("cannot render active-color.map: {e}")))?;
    write_atomic(&edge.topology.paths.active_color_map(), text.as_bytes())?;
    Ok(())
}

/// The recorded color of every colored env (state files; missing = blue), for `repair` and
/// `status`.
pub(crate) fn recorded_colors(edge: &Edge) -> Result<BTreeMap<String, Color>, EdgeError> {
    let mut out = BTreeMap::new();
    for env in edge.topology.envs.iter().filter(|e| e.colored) {
        out.insert(env.name.clone(), edge.state.active_color(&env.name)?);
    }
    Ok(out)
}

/// `green`, or `no entry` for a missing runtime entry.
pub(crate) fn color_word(color: Option<Color>) -> &'static str {
    color.map_or("no entry", Color::as_str)
}
