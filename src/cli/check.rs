//! `vezasock check`: render the candidate `apply` would install (the real paths), run
//! `haproxy -c -f` on it, and show HAProxy's messages with the rendered line, the section and
//! the topology item behind it.
//!
//! The config checked is the exact text `apply` installs, map paths included, so a path HAProxy
//! would read differently fails here and not at apply. HAProxy loads the map files during
//! `-c`: when the live maps dir holds none yet (a new host), the check reads scratch copies in
//! a temp dir instead and says so. The config itself is always written to the temp dir, so a
//! check never touches a live file.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use super::args::TopologyArgs;
use super::exit::Exit;
use super::finish::{self, Failed, Report};
use super::render::load_and_render;
use crate::edge::EdgeError;
// The check itself lives in the library (the reload path runs it too).
pub use crate::render::check::{explain, haproxy_check, CheckOutcome};
use crate::render::{self, write::write_atomic, Rendered};
use crate::topology::{PathOverrides, Topology, ACTIVE_COLOR_MAP, HOSTS_MAP};

// Arguments of `vezasock check` (a plain comment: a doc comment would replace the subcommand's
// about text, which clap applies from the `Command` variant).
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub topology: TopologyArgs,
}

fn scratch_dir() -> Result<PathBuf, String> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("vezasock-check-{}-{nanos}", std::process::id()));
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// What `check` found: HAProxy's messages explained, then the notes and the verdict.
#[derive(Debug, Serialize)]
struct CheckReport {
    lines: Vec<String>,
    valid: bool,
}

impl Report for CheckReport {
    type Json<'a> = &'a CheckReport;

    fn json(&self) -> &CheckReport {
        self
    }

    fn human(&self) -> String {
        self.lines.iter().map(|l| format!("{l}\n")).collect()
    }

    /// Exit 1 when HAProxy refused the candidate config.
    fn exit(&self) -> Exit {
        if self.valid {
            Exit::Ok
        } else {
            Exit::Refused
        }
    }
}

/// Runs `vezasock check` (it has no `--json`: the text is HAProxy's own messages).
pub fn run(args: &CheckArgs) -> ExitCode {
    // Input first: a bad topology is exit 2 before any file is created.
    let (topo, live) = match load_and_render(&args.topology, &[]) {
        Ok(r) => r,
        Err(failure) => return failure.report("check"),
    };
    let report = scratch_dir().and_then(|dir| {
        let report = check_in(topo, &live, &dir);
        let _ = fs::remove_dir_all(&dir);
        report
    });
    let report = report.map_err(|e| Failed::from(EdgeError::Refused(e)));
    finish::finish("check", false, report)
}

/// When the certs dir holds no certificate for the edge's domains, points the topology's
/// certs dir at a scratch one holding the real dir's files and the placeholder, and returns the
/// real dir's name.
fn placeholder_dir(topo: &mut Topology, dir: &Path) -> Result<Option<String>, String> {
    if !crate::edge::cert::needs_placeholder(topo) {
        return Ok(None);
    }
    let domains = crate::edge::cert::domain_set(topo);
    let Some(tls) = topo.tls.as_mut() else {
        return Ok(None);
    };
    let scratch = dir.join("certs");
    // The real dir's files too (links as links), so HAProxy still reports a broken one.
    fs::create_dir_all(&scratch)
        .map_err(|e| format!("cannot create {}: {e}", scratch.display()))?;
    if let Ok(entries) = fs::read_dir(&tls.certs_dir) {
        for entry in entries.flatten() {
            let to = scratch.join(entry.file_name());
            let copied = match entry.file_type() {
                Ok(t) if t.is_symlink() => fs::read_link(entry.path())
                    .and_then(|target| std::os::unix::fs::symlink(target, &to)),
                Ok(t) if t.is_file() => fs::copy(entry.path(), &to).map(|_| ()),
                _ => Ok(()),
            };
            copied.map_err(|e| format!("cannot copy {}: {e}", entry.path().display()))?;
        }
    }
    crate::edge::cert::ensure_placeholder_in(&scratch, &domains)?;
    let real = tls.certs_dir.display().to_string();
    tls.certs_dir = scratch;
    Ok(Some(real))
}

/// The live maps dir holds both map files, so HAProxy can load them where `apply` puts them.
fn live_maps_exist(topo: &Topology) -> bool {
    topo.paths.hosts_map().is_file() && topo.paths.active_color_map().is_file()
}

fn check_in(topo: Topology, live: &Rendered, dir: &Path) -> Result<CheckReport, String> {
    let real_maps = live_maps_exist(&topo);
    let live_maps_dir = topo.paths.maps_dir.display().to_string();
    let mut topo = topo;
    // No certificate for the edge's domains yet: HAProxy reads a placeholder in a scratch
    // certs dir, the one `apply` would write into the real one.
    let placeholder = placeholder_dir(&mut topo, dir)?;
    let scratch;
    let candidate = if real_maps && placeholder.is_none() {
        live
    } else {
        let maps_dir = if real_maps {
            topo.paths.maps_dir.clone()
        } else {
            dir.to_path_buf()
        };
        topo.override_paths(&PathOverrides {
            maps_dir: Some(maps_dir),
            ..PathOverrides::default()
        })
        .map_err(|e| e.to_string())?;
        scratch = render::render(&topo, &live.colors).map_err(|e| e.to_string())?;
        &scratch
    };
    let config = dir.join("haproxy.cfg");
    let mut files = vec![(config.clone(), candidate.config.as_str())];
    if !real_maps {
        files.push((dir.join(HOSTS_MAP), candidate.hosts_map.as_str()));
        files.push((
            dir.join(ACTIVE_COLOR_MAP),
            candidate.active_color_map.as_str(),
        ));
        files.push((
            dir.join(crate::topology::PREVIEW_MAP),
            render::PREVIEW_MAP_HEADER,
        ));
    } else {
        // An edge from before previews: the reload path creates the same empty file.
        let preview = topo.paths.preview_map();
        render::write::ensure_preview_map(&preview)
            .map_err(|e| format!("cannot create {}: {e}", preview.display()))?;
    }
    for (path, text) in files {
        write_atomic(&path, text.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    let outcome = haproxy_check(&topo.paths.haproxy, &config)?;
    let mut lines = explain(&outcome.output, &config, &candidate.config);
    if !real_maps {
        lines.push(format!(
            "note: {live_maps_dir} holds no map files yet: HAProxy read scratch copies of them"
        ));
    }
    if let Some(certs) = &placeholder {
        lines.push(format!(
            "note: {certs} holds no certificate for the edge's domains: HAProxy read a \
             self-signed placeholder (`apply` writes it there on a first install)"
        ));
    }
    lines.push(if outcome.valid {
        // The shape of the config as it would be installed (real maps dir).
        format!(
            "vezasock check: the candidate config is valid (shape {})",
            live.fingerprint
        )
    } else {
        "vezasock check: HAProxy refused the candidate config".to_string()
    });
    Ok(CheckReport {
        lines,
        valid: outcome.valid,
    })
}
