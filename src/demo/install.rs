//! When the demo finds no HAProxy: the project's own `scripts/install-haproxy.sh`, embedded at
//! build time (so an installed binary carries it too), run with bash for one version. 3.2, the
//! newest LTS the tests cover, goes into the user's cache (Debian sid's `.deb` and its
//! libraries, extracted and made standalone); the system's packages are left alone except
//! `patchelf`, which apt installs when it is missing.

use std::io::Write;
use std::process::{Command, Stdio};

use super::find::{version_of, Found};

/// The install script, byte for byte as in the checkout.
pub const SCRIPT: &str = include_str!("../../scripts/install-haproxy.sh");

/// The version the demo installs.
pub const VERSION: &str = "3.2";

/// What [`install`] is about to do, in words, for stderr.
pub fn plan_in_words() -> String {
    let cache = std::env::var("VEZASOCK_HAPROXY_CACHE")
        .unwrap_or_else(|_| "~/.cache/vezasock/haproxy".to_string());
    format!(
        "installing HAProxy {VERSION} so the demo can run: vezasock's scripts/install-haproxy.sh \
         {VERSION} downloads Debian sid's haproxy .deb and its libraries from the Debian mirror \
         and extracts them into {cache}/{VERSION} (patchelf, from apt-get when missing, points \
         the binary at those libraries); nothing else of the system changes. \
         Refuse with --no-install or VEZASOCK_NO_INSTALL=1."
    )
}

/// Runs the embedded script for [`VERSION`] (its progress goes to stderr) and returns the
/// binary it reports, checked to run.
pub fn install() -> Result<Found, String> {
    let mut file = tempfile::Builder::new()
        .prefix("vezasock-install-haproxy-")
        .suffix(".sh")
        .tempfile()
        .map_err(|e| format!("temp file for the install script: {e}"))?;
    file.write_all(SCRIPT.as_bytes())
        .and_then(|()| file.flush())
        .map_err(|e| format!("writing the install script: {e}"))?;
    // A file, not stdin: apt and dpkg may read stdin, and must not eat the script.
    let out = Command::new("bash")
        .arg(file.path())
        .arg(VERSION)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run bash for scripts/install-haproxy.sh: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "scripts/install-haproxy.sh {VERSION} failed ({}); its messages are above",
            out.status
        ));
    }
    let key = format!("VEZASOCK_HAPROXY_{}=", VERSION.replace('.', "_"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let path = stdout
        .lines()
        .find_map(|l| l.strip_prefix(&key))
        .ok_or_else(|| format!("scripts/install-haproxy.sh printed no {key} line"))?;
    let path = std::path::PathBuf::from(path);
    let version = version_of(&path).ok_or_else(|| {
        format!(
            "scripts/install-haproxy.sh reported {}, which does not run",
            path.display()
        )
    })?;
    Ok(Found { path, version })
}
