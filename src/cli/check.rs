//! `vezasock check`: render the candidate into a temp dir, run `haproxy -c -f` on it, and show
//! HAProxy's messages with the rendered line, the section and the topology item behind it.
//!
//! The candidate's maps dir is the temp dir (HAProxy loads map files during `-c`), so a check
//! never touches the live files.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Args;

use super::render::{load_and_render, TopologyArgs};
use crate::render::{self, write::write_atomic};
use crate::topology::{PathOverrides, ACTIVE_COLOR_MAP, HOSTS_MAP};

/// How long `haproxy -c` may take before it is killed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(60);

/// Arguments of `vezasock check`.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub topology: TopologyArgs,
}

/// What `haproxy -c` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    /// Exit status 0.
    pub valid: bool,
    /// stdout and stderr, as HAProxy wrote them.
    pub output: String,
}

/// Runs `<haproxy> -c -f <config>` with a deadline. An error means HAProxy could not be run
/// (missing binary, timeout), not that the config is bad.
pub fn haproxy_check(haproxy: &Path, config: &Path) -> Result<CheckOutcome, String> {
    let dir = config.parent().unwrap_or(Path::new("."));
    let log_path = dir.join(".vezasock-check.log");
    let log = File::create(&log_path)
        .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
    let log_err = log.try_clone().map_err(|e| e.to_string())?;
    let mut child = Command::new(haproxy)
        .arg("-c")
        .arg("-f")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", haproxy.display()))?;
    let deadline = Instant::now() + CHECK_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{} -c did not finish within {:?}",
                    haproxy.display(),
                    CHECK_TIMEOUT
                ));
            }
            Err(e) => return Err(format!("waiting for {}: {e}", haproxy.display())),
        }
    };
    let output = fs::read(&log_path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let _ = fs::remove_file(&log_path);
    Ok(CheckOutcome {
        valid: status.success(),
        output,
    })
}

/// HAProxy's messages, each followed by where it points in the rendered config: the line, its
/// section and the topology item that section comes from (the comment above it).
pub fn explain(output: &str, config_path: &Path, config_text: &str) -> Vec<String> {
    let lines: Vec<&str> = config_text.lines().collect();
    let marker = format!("[{}:", config_path.display());
    let mut out = Vec::new();
    for msg in output.lines().filter(|l| !l.trim().is_empty()) {
        out.push(msg.to_string());
        let Some(at) = msg.find(&marker) else {
            continue;
        };
        let rest = &msg[at + marker.len()..];
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        let Ok(n) = digits.parse::<usize>() else {
            continue;
        };
        if let Some(text) = n.checked_sub(1).and_then(|i| lines.get(i)) {
            out.push(format!("    at rendered line {n}: `{}`", text.trim()));
        }
        if let Some(section) = section_of(&lines, n) {
            out.push(format!("    in {section}"));
        }
    }
    out
}

/// The section header above 1-based line `n`, with the topology origin comment before it.
fn section_of(lines: &[&str], n: usize) -> Option<String> {
    let upto = n.min(lines.len());
    let idx = (0..upto).rev().find(|&i| {
        let w = lines[i].split_whitespace().next().unwrap_or("");
        matches!(w, "backend" | "frontend" | "global" | "defaults" | "listen")
    })?;
    let header = lines[idx].trim().to_string();
    let origin = idx
        .checked_sub(1)
        .and_then(|i| lines.get(i))
        .and_then(|l| l.trim().strip_prefix('#'))
        .map(str::trim)
        .filter(|o| o.contains('='));
    Some(match origin {
        Some(o) => format!("{header} (topology: {o})"),
        None => header,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explain_points_at_line_section_and_origin() {
        let cfg = "global\n    master-worker\n\n# env=staging component=api color=blue\nbackend be_x\n    server a b:1 bogus\n";
        let msg = "[ALERT]    (1) : config : parsing [/tmp/c/haproxy.cfg:6] : 'server a' unknown keyword 'bogus'.";
        let out = explain(msg, Path::new("/tmp/c/haproxy.cfg"), cfg);
        assert_eq!(out.len(), 3, "{out:?}");
        assert_eq!(out[1], "    at rendered line 6: `server a b:1 bogus`");
        assert_eq!(
            out[2],
            "    in backend be_x (topology: env=staging component=api color=blue)"
        );
        // Out-of-range and foreign lines never panic.
        let odd = "[/tmp/c/haproxy.cfg:999] x\n[/tmp/c/haproxy.cfg:] y\n[/tmp/c/haproxy.cfg:0] z";
        assert!(explain(odd, Path::new("/tmp/c/haproxy.cfg"), cfg).len() >= 3);
    }
}
