//! Writing rendered files so a reader never sees half a file: temp file in the same dir,
//! fsync, rename over the target, fsync the dir (a crash leaves the old file or the new one).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use super::shape::summary_path;
use super::Rendered;
use crate::topology::{ACTIVE_COLOR_MAP, HOSTS_MAP};

/// Replaces `path` with `bytes` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp.{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        // Best effort: the temp file is ours and useless now.
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Writes `haproxy.cfg`, `haproxy.cfg.shape.json`, `hosts.map` and `active-color.map` into
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
    for (path, bytes) in files {
        write_atomic(&path, bytes)?;
        written.push(path);
    }
    Ok(written)
}
