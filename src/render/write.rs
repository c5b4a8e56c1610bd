//! Writing rendered files so a reader never sees half a file (the crash-safe writes of
//! [`crate::files`], with plain `io::Error`s as render's callers expect).

use std::fs;
use std::io;
use std::path::Path;

use super::shape::summary_path;
use super::Rendered;
use crate::topology::{ACTIVE_COLOR_MAP, HOSTS_MAP, PREVIEW_MAP};

/// Replaces `path` with `bytes` atomically and durably ([`crate::files::write_atomic`]); the
/// error is the underlying I/O error.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    crate::files::write_atomic(path, bytes).map_err(|e| e.source)
}

/// Creates an empty preview map at `path` when there is none: the config names it, so HAProxy
/// cannot start without it. An existing one holds live tokens and is kept. True when created.
pub fn ensure_preview_map(path: &Path) -> io::Result<bool> {
    match fs::metadata(path) {
        Ok(_) => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            write_atomic(path, super::PREVIEW_MAP_HEADER.as_bytes())?;
            Ok(true)
        }
        Err(e) => Err(e),
    }
}

/// Writes `haproxy.cfg`, `haproxy.cfg.shape.json`, `hosts.map` and `active-color.map` (and an empty `preview.map` when there is none) into
/// `dir` (created if missing). Returns the paths written.
pub fn write_rendered(rendered: &Rendered, dir: &Path) -> io::Result<Vec<std::path::PathBuf>> {
    fs::create_dir_all(dir)?;
    let config = dir.join("haproxy.cfg");
    let summary = summary_path(&config);
    let json = serde_json::to_vec_pretty(&rendered.summary).map_err(io::Error::other)?;
    let files = [
        (dir.join(HOSTS_MAP), rendered.hosts_map.as_bytes()),
        (
            dir.join(ACTIVE_COLOR_MAP),
            rendered.active_color_map.as_bytes(),
        ),
        (summary, json.as_slice()),
        (config, rendered.config.as_bytes()),
    ];
    let mut written = Vec::new();
    if ensure_preview_map(&dir.join(PREVIEW_MAP))? {
        written.push(dir.join(PREVIEW_MAP));
    }
    for (path, bytes) in files {
        write_atomic(&path, bytes)?;
        written.push(path);
    }
    Ok(written)
}
