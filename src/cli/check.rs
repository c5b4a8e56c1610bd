//! `vezasock check`: render the candidate into a temp dir, run `haproxy -c -f` on it, and show
//! HAProxy's messages with the rendered line, the section and the topology item behind it.
//!
//! The candidate's maps dir is the temp dir (HAProxy loads map files during `-c`), so a check
//! never touches the live files.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use super::render::{load_and_render, TopologyArgs};
// The check itself lives in the library (the reload path runs it too).
pub use crate::render::check::{explain, haproxy_check, CheckOutcome};
use crate::render::{self, write::write_atomic};
use crate::topology::{PathOverrides, ACTIVE_COLOR_MAP, HOSTS_MAP};

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

/// Runs `vezasock check`.
pub fn run(args: &CheckArgs) -> ExitCode {
    let dir = match scratch_dir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("vezasock check: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = check_in(args, &dir);
    let _ = fs::remove_dir_all(&dir);
    code
}

fn check_in(args: &CheckArgs, dir: &Path) -> ExitCode {
    // The candidate reads its maps from the scratch dir, never from the live maps dir.
    let result = load_and_render(&args.topology, &[]).and_then(|(topo, live)| {
        let mut topo = topo;
        topo.override_paths(&PathOverrides {
            maps_dir: Some(dir.to_path_buf()),
            ..PathOverrides::default()
        })
        .map_err(|e| e.to_string())?;
        let candidate = render::render(&topo, &live.colors).map_err(|e| e.to_string())?;
        Ok((topo, candidate, live.fingerprint))
    });
    let (topo, candidate, fingerprint) = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vezasock check: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = dir.join("haproxy.cfg");
    let files = [
        (dir.join(HOSTS_MAP), candidate.hosts_map.as_str()),
        (
            dir.join(ACTIVE_COLOR_MAP),
            candidate.active_color_map.as_str(),
        ),
        (config.clone(), candidate.config.as_str()),
    ];
    for (path, text) in files {
        if let Err(e) = write_atomic(&path, text.as_bytes()) {
            eprintln!("vezasock check: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    match haproxy_check(&topo.paths.haproxy, &config) {
        Err(e) => {
            eprintln!("vezasock check: {e}");
            ExitCode::FAILURE
        }
        Ok(outcome) => {
            for line in explain(&outcome.output, &config, &candidate.config) {
                println!("{line}");
            }
            if outcome.valid {
                // The shape of the config as it would be installed (real maps dir), not of the
                // scratch copy.
                println!("vezasock check: the candidate config is valid (shape {fingerprint})");
                ExitCode::SUCCESS
            } else {
                println!("vezasock check: HAProxy refused the candidate config");
                ExitCode::FAILURE
            }
        }
    }
}
