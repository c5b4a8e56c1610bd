//! Finding an HAProxy binary for the demo and the benchmarks: `VEZASOCK_HAPROXY`, then
//! `haproxy` on `PATH`, then `/usr/sbin/haproxy`, then the builds `scripts/install-haproxy.sh`
//! extracts into its cache (newest first).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The command that installs what is missing, quoted in every "not found" message.
pub const INSTALL_HINT: &str =
    "install it with `scripts/install-haproxy.sh` (from the vezasock checkout), or `sudo apt-get install haproxy`";

/// A usable HAProxy binary and its version line.
#[derive(Debug, Clone)]
pub struct Found {
    pub path: PathBuf,
    pub version: String,
}

/// The first candidate that runs `-v`, or a message naming every place looked at and the
/// command that installs HAProxy.
pub fn find_haproxy() -> Result<Found, String> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("VEZASOCK_HAPROXY") {
        candidates.push(PathBuf::from(p));
    }
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join("haproxy")));
    }
    candidates.push(PathBuf::from("/usr/sbin/haproxy"));
    let cache = std::env::var_os("VEZASOCK_HAPROXY_CACHE")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/vezasock/haproxy"))
        });
    if let Some(cache) = cache {
        for v in ["3.2", "3.0"] {
            candidates.push(cache.join(v).join("usr/sbin/haproxy"));
        }
    }
    for path in &candidates {
        if let Some(version) = version_of(path) {
            return Ok(Found {
                path: path.clone(),
                version,
            });
        }
    }
    Err(format!(
        "HAProxy not found (looked at $VEZASOCK_HAPROXY, PATH, /usr/sbin/haproxy and the vezasock cache); {INSTALL_HINT}"
    ))
}

/// First line of `<path> -v`, when the binary runs.
pub fn version_of(path: &Path) -> Option<String> {
    if !path.is_file() {
        return None;
    }
    let out = Command::new(path).arg("-v").output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .map(str::to_string)
}
