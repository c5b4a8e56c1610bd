//! First install: `apply` on a host where HAProxy is not running yet.
//!
//! The rule (one, documented in docs/operating.md, "First install"): under the edge lock, when the admin socket does
//! not exist or refuses the connection (`ENOENT` / `ECONNREFUSED`: nothing listens) AND there
//! is no file at `paths.config`, `apply` installs instead of failing. A timeout or a permission
//! error is not "not running" and keeps today's behaviour (exit 3). When HAProxy is down but a
//! live config exists, vezasock never writes over it: exit 3, with a message that says HAProxy
//! is not running and how to start it.
//!
//! Install, in this order:
//! 1. render with the recorded colors (state files; missing = blue), journal the intent;
//! 2. create the config and maps dirs, write the maps into `maps_dir` (HAProxy's `haproxy -c`
//!    opens the map files the config names, so the check needs them in place);
//! 3. `haproxy -c` on the exact candidate bytes, written beside the config. If it fails, the
//!    maps are put back as they were (removed when new), the dirs created in step 2 are
//!    removed, and the command fails (exit 1) with HAProxy's messages: nothing is installed;
//! 4. write the shape summary, then the config (each atomically; the config last, so a config
//!    on disk always has its maps and summary), create the parent dirs of the sockets, the pid
//!    file and the server-state file, so the printed start command works as is;
//! 5. record each env's color as its first history line (when its history is empty), journal
//!    done (action `apply`) and report the files and the command that starts HAProxy.
//!
//! HAProxy is not started: starting a service is the operator's (or systemd's) decision.
//! Interrupted operations found in the journal are left for the next `apply` (with HAProxy
//! running) to close; the install already renders the recorded colors, which is what that
//! repair converges to.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::edge::apply::{apply_with, desired_colors, ApplyOptions, ApplyReport, TakeoverOptions};
use crate::edge::{Edge, EdgeError};
use crate::render::check::{explain, haproxy_check};
use crate::render::shape::summary_path;
use crate::render::{render, Rendered};
use crate::state::atomic::{read_optional, write_atomic};
use crate::state::{Action, EdgeLock, Holder, Operation, Phase};
use crate::topology::{Color, Paths};

/// What `apply` did: the usual apply, or a first install.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum ApplyOutcome {
    Applied(Box<ApplyReport>),
    Installed(Box<InstallReport>),
}

/// What a first install wrote, and how to start HAProxy on it.
#[derive(Debug, Clone, Serialize)]
pub struct InstallReport {
    /// Always true: tells this report apart from an apply report in `--json` output.
    pub installed: bool,
    /// Why apply installed (what the admin socket said, and that no config existed).
    pub reason: String,
    pub desired_fingerprint: String,
    /// The active colors rendered (the recorded ones; missing = blue).
    pub colors: BTreeMap<String, Color>,
    /// The files written, in the order they were written (the config last).
    pub files_written: Vec<PathBuf>,
    /// The envs whose initial color was recorded in their history (it was empty), so the
    /// first `rollback` after the first switch goes back to it.
    pub history_recorded: Vec<String>,
    /// The directories that did not exist and were created.
    pub dirs_created: Vec<PathBuf>,
    /// The command that starts HAProxy on these files, one argument per item.
    pub start_command: Vec<String>,
    /// The same command as one shell line.
    pub start: String,
    /// The alternative for a host whose haproxy unit runs this config.
    pub start_with_systemd: String,
}

/// Applies, or installs when HAProxy is not running and there is no live config (see the
/// module doc). A dry run never installs: it plans as `apply --dry-run` always did.
pub async fn apply_or_install(
    edge: &Edge,
    options: ApplyOptions,
) -> Result<ApplyOutcome, EdgeError> {
    apply_or_install_with(edge, options, &TakeoverOptions::default()).await
}

/// [`apply_or_install`] with the takeover's color sources (`--color`, `--seed-state`).
pub async fn apply_or_install_with(
    edge: &Edge,
    options: ApplyOptions,
    takeover: &TakeoverOptions,
) -> Result<ApplyOutcome, EdgeError> {
    // An open transaction means an installed edge: `apply` ends it first, at once (its
    // prepare held HAProxy's runtime; an install never follows it), so no lock is taken here.
    let transaction_open = matches!(edge.state.open_transaction(), Ok(Some(_)));
    if !options.dry_run && !transaction_open {
        let lock = EdgeLock::acquire_async(&edge.state, options.wait, Holder::current()).await?;
        if let Some(down) = not_running(edge).await {
            let config = &edge.topology.paths.config;
            // Anything but a clean "not found" counts as a live config: never write over it.
            return match std::fs::symlink_metadata(config) {
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    install_locked(edge, &lock, &down).map(|r| ApplyOutcome::Installed(Box::new(r)))
                }
                _ => Err(not_running_error(edge, &down)),
            };
        }
        // HAProxy answers (or fails some other way, which apply reports as before). apply
        // takes the lock itself; a second flock from this process would wait on this one.
        drop(lock);
    }
    apply_with(edge, options, takeover)
        .await
        .map(|r| ApplyOutcome::Applied(Box::new(r)))
}

/// `Some(error)` when nothing listens on the admin socket: the path does not exist, or
/// connecting is refused. A timeout, a permission error or a success is `None`.
pub async fn not_running(edge: &Edge) -> Option<std::io::Error> {
    let path = &edge.topology.paths.admin_socket;
    let connect = tokio::net::UnixStream::connect(path);
    match tokio::time::timeout(edge.timeouts.connect, connect).await {
        Ok(Err(e)) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => {
            Some(e)
        }
        _ => None,
    }
}

/// The error for "HAProxy is down but a live config exists": the same connect error (exit 3)
/// as before, saying that HAProxy is not running and how to start it.
fn not_running_error(edge: &Edge, down: &std::io::Error) -> EdgeError {
    let paths = &edge.topology.paths;
    let message = format!(
        "{down}: HAProxy is not running. The live config {} exists, so apply does not install \
         over it. Start HAProxy with `{}` (or `systemctl start haproxy` when its unit runs \
         this config with master socket {}), then run apply again",
        paths.config.display(),
        shell_line(&start_command(paths)),
        paths.master_socket.display()
    );
    EdgeError::Runtime(crate::runtime::Error::Connect {
        endpoint: edge.admin().to_string(),
        source: std::io::Error::new(down.kind(), message),
    })
}

/// `haproxy -W -S <master_socket>,level,admin -f <config> -p <pid_file>`: master-worker mode
/// with the master CLI vezasock reloads through (the command `LocalEdge` starts).
pub fn start_command(paths: &Paths) -> Vec<String> {
    vec![
        paths.haproxy.display().to_string(),
        "-W".to_string(),
        "-S".to_string(),
        format!("{},level,admin", paths.master_socket.display()),
        "-f".to_string(),
        paths.config.display().to_string(),
        "-p".to_string(),
        paths.pid_file.display().to_string(),
    ]
}

/// Arguments as one line a POSIX shell reads back as the same arguments.
pub fn shell_line(args: &[String]) -> String {
    let quote = |a: &String| {
        let plain = !a.is_empty()
            && a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "/._,:=@%+-".contains(c));
        if plain {
            a.clone()
        } else {
            format!("'{}'", a.replace('\'', r"'\''"))
        }
    };
    args.iter().map(quote).collect::<Vec<_>>().join(" ")
}

/// Installs the rendered edge (steps 1–5 of the module doc). The caller holds the lock and has
/// checked that HAProxy is not running and no config exists.
fn install_locked(
    edge: &Edge,
    _lock: &EdgeLock,
    down: &std::io::Error,
) -> Result<InstallReport, EdgeError> {
    let paths = &edge.topology.paths;
    let colors = desired_colors(edge)?;
    let rendered =
        render(&edge.topology, &colors).map_err(|e| EdgeError::BadInput(e.to_string()))?;
    let reason = format!(
        "HAProxy is not running ({}: {down}) and there is no config at {}",
        paths.admin_socket.display(),
        paths.config.display()
    );
    let _placeholder = crate::edge::cert::ensure_placeholder(&edge.topology)?;
    let op = Operation::new(
        Action::Apply,
        None,
        None,
        Some(&rendered.fingerprint),
        &crate::state::who(),
    );
    edge.state
        .journal_record(&op, Phase::Intent, Some(&format!("install: {reason}")))?;

    let mut created = Vec::new();
    let written = match write_checked(edge, &rendered, &mut created) {
        Ok(w) => w,
        Err(e) => {
            // Only dirs this install created, deepest first, and only while empty.
            for dir in created.iter().rev() {
                let _ = std::fs::remove_dir(dir);
            }
            let _ = edge
                .state
                .journal_record(&op, Phase::Failed, Some(&e.to_string()));
            return Err(e);
        }
    };
    edge.state.journal_record(
        &op,
        Phase::DiskWritten,
        Some("installed the config, its shape summary and the maps"),
    )?;
    // The start command's own paths: HAProxy does not create these directories.
    for file in [
        &paths.admin_socket,
        &paths.operator_socket,
        &paths.master_socket,
        &paths.pid_file,
        &paths.server_state_file,
    ] {
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_dirs(dir, &mut created).map_err(EdgeError::State)?;
        }
    }
    let recorded = record_initial_colors(edge, &rendered.colors)?;
    let command = start_command(paths);
    let start = shell_line(&command);
    edge.state.journal_record(
        &op,
        Phase::Done,
        Some(&format!("installed; HAProxy not started: {start}")),
    )?;
    Ok(InstallReport {
        installed: true,
        reason,
        desired_fingerprint: rendered.fingerprint.clone(),
        colors: rendered.colors.clone(),
        files_written: written,
        history_recorded: recorded,
        dirs_created: created,
        start_command: command,
        start,
        start_with_systemd: "systemctl start haproxy".to_string(),
    })
}

/// Records each env's installed color as its first history line (and its state file) when
/// its history is empty: without it, `rollback` after the first switch had no previous deploy.
/// Returns the envs recorded.
fn record_initial_colors(
    edge: &Edge,
    colors: &BTreeMap<String, Color>,
) -> Result<Vec<String>, EdgeError> {
    let who = crate::state::who();
    let mut recorded = Vec::new();
    for (env, color) in colors {
        if edge.state.history(env)?.is_empty() {
            let entry =
                crate::state::HistoryEntry::now(*color, None, &who, std::time::SystemTime::now())?;
            edge.state.record_entry(env, &[], entry, || {})?;
            recorded.push(env.clone());
        }
    }
    Ok(recorded)
}

/// Steps 2–4: maps, check, summary and config. On error every file is as it was; the dirs
/// created so far are in `created` for the caller to remove.
fn write_checked(
    edge: &Edge,
    rendered: &Rendered,
    created: &mut Vec<PathBuf>,
) -> Result<Vec<PathBuf>, EdgeError> {
    let paths = &edge.topology.paths;
    let config_dir = parent_dir(&paths.config);
    create_dirs(&config_dir, created)?;
    create_dirs(&paths.maps_dir, created)?;

    let summary_json = serde_json::to_vec_pretty(&rendered.summary)
        .map_err(|e| EdgeError::Refused(format!("cannot serialise the shape summary: {e}")))?;
    // The config names the preview map: HAProxy cannot start without the file (kept when present).
    let preview = read_optional(&paths.preview_map())?
        .unwrap_or_else(|| crate::render::PREVIEW_MAP_HEADER.as_bytes().to_vec());
    let files: [(PathBuf, &[u8]); 5] = [
        (paths.hosts_map(), rendered.hosts_map.as_bytes()),
        (
            paths.active_color_map(),
            rendered.active_color_map.as_bytes(),
        ),
        (paths.preview_map(), &preview),
        (summary_path(&paths.config), &summary_json),
        (paths.config.clone(), rendered.config.as_bytes()),
    ];
    let mut old = Vec::new();
    for (path, _) in &files {
        old.push((path.clone(), read_optional(path)?));
    }
    let mut written = Vec::new();
    let result = (|| {
        for (path, bytes) in &files[..3] {
            write_atomic(path, bytes)?;
            written.push(path.clone());
        }
        check_candidate(edge, rendered, &config_dir)?;
        for (path, bytes) in &files[3..] {
            write_atomic(path, bytes)?;
            written.push(path.clone());
        }
        Ok::<(), EdgeError>(())
    })();
    if let Err(e) = result {
        restore(&old);
        return Err(e);
    }
    Ok(written)
}

/// `haproxy -c` on the candidate, written beside the config (same dir, so relative paths
/// resolve as they will at start) and removed afterwards.
fn check_candidate(edge: &Edge, rendered: &Rendered, config_dir: &Path) -> Result<(), EdgeError> {
    let paths = &edge.topology.paths;
    let name = paths
        .config
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "haproxy.cfg".to_string());
    let candidate = config_dir.join(format!(".{name}.vezasock-candidate"));
    write_atomic(&candidate, rendered.config.as_bytes())?;
    // The config names the preview map: HAProxy 2.6 cannot start without the file (kept when present).
    crate::render::write::ensure_preview_map(&paths.preview_map()).map_err(|e| {
        EdgeError::Refused(format!(
            "cannot create {}: {e}",
            paths.preview_map().display()
        ))
    })?;
    let outcome = haproxy_check(&paths.haproxy, &candidate);
    let _ = std::fs::remove_file(&candidate);
    let outcome =
        outcome.map_err(|e| EdgeError::Refused(format!("cannot check the candidate: {e}")))?;
    if outcome.valid {
        return Ok(());
    }
    let lines = explain(&outcome.output, &candidate, &rendered.config);
    Err(EdgeError::Refused(format!(
        "HAProxy refused the candidate config (`{} -c`); nothing was installed:\n{}",
        paths.haproxy.display(),
        lines.join("\n")
    )))
}

/// Puts files back as they were: old bytes rewritten, new files removed. Best effort per file.
pub(crate) fn restore(old: &[(PathBuf, Option<Vec<u8>>)]) {
    for (path, bytes) in old {
        let result = match bytes {
            Some(b) => write_atomic(path, b).map_err(|e| e.to_string()),
            None => match std::fs::remove_file(path) {
                Err(e) if e.kind() != ErrorKind::NotFound => Err(e.to_string()),
                _ => Ok(()),
            },
        };
        if let Err(e) = result {
            tracing::error!(file = %path.display(), error = %e, "cannot undo a failed install");
        }
    }
}

/// Creates `dir` and its missing parents, recording each one created (outermost first).
pub(crate) fn create_dirs(
    dir: &Path,
    created: &mut Vec<PathBuf>,
) -> Result<(), crate::state::Error> {
    let mut missing = Vec::new();
    let mut at = Some(dir);
    while let Some(d) = at.filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        missing.push(d.to_path_buf());
        at = d.parent();
    }
    for d in missing.into_iter().rev() {
        match std::fs::create_dir(&d) {
            Ok(()) => created.push(d),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(crate::state::Error::Io {
                    action: "create the directory",
                    path: d,
                    source: e,
                })
            }
        }
    }
    Ok(())
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_line_quotes_only_what_a_shell_would_split() {
        let args = vec![
            "/usr/sbin/haproxy".to_string(),
            "-S".to_string(),
            "/run/haproxy/master.sock,level,admin".to_string(),
            "/tmp/my dir/it's.cfg".to_string(),
        ];
        assert_eq!(
            shell_line(&args),
            r"/usr/sbin/haproxy -S /run/haproxy/master.sock,level,admin '/tmp/my dir/it'\''s.cfg'"
        );
    }

    #[test]
    fn the_start_command_is_master_worker_with_the_master_cli() {
        let paths = Paths::default().under(Path::new("/e"));
        let cmd = start_command(&paths);
        assert_eq!(
            cmd[1..],
            [
                "-W",
                "-S",
                "/e/master.sock,level,admin",
                "-f",
                "/e/haproxy.cfg",
                "-p",
                "/e/haproxy.pid"
            ]
        );
    }

    #[test]
    fn created_dirs_are_recorded_outermost_first() {
        let tmp = std::env::temp_dir().join(format!("vezasock-install-{}", std::process::id()));
        let deep = tmp.join("a/b");
        let mut created = Vec::new();
        let made = create_dirs(&deep, &mut created);
        let exists = deep.is_dir();
        let _ = std::fs::remove_dir_all(&tmp);
        assert!(made.is_ok() && exists, "{made:?}");
        assert_eq!(created, vec![tmp.clone(), tmp.join("a"), deep]);
    }
}
