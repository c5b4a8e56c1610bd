//! `haproxy -c -f <config>` on a candidate config, and HAProxy's messages mapped back to the
//! rendered line, its section and the topology item behind it. Used by `vezasock check` and by
//! the reload path (`edge::reload`), which must never install a config HAProxy refuses.

use std::fs::{self, File};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long `haproxy -c` may take before it is killed.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(60);

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
    // Named after the config, so a check beside the live config never collides with another.
    let name = config
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let log_path = dir.join(format!(".{name}.vezasock-check.log"));
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
