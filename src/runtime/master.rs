//! The master CLI's own operations: `show proc` and a confirmed `reload`.
//!
//! `reload` differs by version (`grammar/README.md` §2, `master reload`):
//! - ≥ 2.7 answers `Success=0|1`, `--`, then the startup log, and closes. `Success=0` is an
//!   error carrying HAProxy's log lines.
//! - 2.6 answers nothing and closes at once, *before* the reload is done; the master then
//!   refuses connections for ~50 ms while it re-executes. The reload is confirmed by polling
//!   `show proc` until the master's reload counter went up: `[failed: N]` rising means it
//!   failed (the old worker keeps serving), otherwise a new worker (reloads 0, a PID not seen
//!   before) must appear.
//!
//! The version is read from `show proc`'s version column before reloading.

use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::codec::MAX_REPLY;
use super::command::master::{parse_reload, LogLine, ProcList, Reload, ShowProc};
use super::command::RawLine;
use super::connection::Deadlines;
use super::endpoint::{Endpoint, WorkerTarget};
use super::oneshot::{one_shot_line_unchecked, one_shot_unchecked};
use super::version::Version;
use super::Error;

/// What a confirmed reload did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReloadReport {
    /// The master's HAProxy version (decides how the reload was confirmed).
    pub version: String,
    /// `Success=1` was read (≥ 2.7); false when confirmed through `show proc` only (2.6).
    pub reported: bool,
    /// The startup log HAProxy printed (≥ 2.7; empty on 2.6).
    pub log: Vec<LogLine>,
    /// The master's reload counter after the reload.
    pub reloads: u32,
    /// Workers that were not there before the reload (the new current worker first).
    pub new_workers: Vec<u32>,
    /// Workers still alive from before (old workers finishing their sessions).
    pub old_workers: Vec<u32>,
}

/// Pause between two `show proc` polls while confirming a 2.6 reload.
const POLL: Duration = Duration::from_millis(20);

/// Refuses a stats-socket endpoint for master operations.
fn master_only(endpoint: &Endpoint) -> Result<Endpoint, Error> {
    if !endpoint.is_master() {
        return Err(Error::InvalidArgument {
            what: "endpoint",
            value: endpoint.to_string(),
            why: "show proc and reload need the master CLI: use master:<socket>",
        });
    }
    Ok(endpoint.with_target(WorkerTarget::Master))
}

/// Master `show proc`, one-shot.
pub async fn show_proc(endpoint: &Endpoint, timeouts: Deadlines) -> Result<ProcList, Error> {
    let endpoint = master_only(endpoint)?;
    let reply = one_shot_unchecked(&endpoint, &ShowProc, timeouts, MAX_REPLY).await?;
    reply.parse_with(&ShowProc)
}

/// Every worker PID of a `show proc` list.
fn worker_pids(list: &ProcList) -> Vec<u32> {
    list.workers
        .iter()
        .chain(&list.old_workers)
        .map(|p| p.pid)
        .collect()
}

/// Reloads HAProxy through the master CLI and confirms the outcome (see the module doc).
/// A failed reload is [`Error::Refused`] with HAProxy's messages; the old worker keeps
/// serving.
pub async fn reload(endpoint: &Endpoint, timeouts: Deadlines) -> Result<ReloadReport, Error> {
    let endpoint = master_only(endpoint)?;
    let before = show_proc(&endpoint, timeouts).await?;
    let version = Version::parse(&before.master.version).ok_or_else(|| Error::Protocol {
        endpoint: endpoint.to_string(),
        message: format!(
            "cannot read the version from `show proc`: {:?}",
            before.master.version
        ),
    })?;
    let old_pids = worker_pids(&before);

    let answer = one_shot_unchecked(&endpoint, &Reload, timeouts, MAX_REPLY).await;
    let mut report = ReloadReport {
        version: version.raw.clone(),
        reported: false,
        log: Vec::new(),
        reloads: before.master.reloads,
        new_workers: Vec::new(),
        old_workers: Vec::new(),
    };
    match answer {
        Ok(reply) => {
            if let Some(refused) = reply.refusal(None) {
                return Err(refused);
            }
            // `None`: 2.6 answers nothing; the reload is confirmed below.
            match parse_reload(&reply.body) {
                Ok(Some(status)) => {
                    report.reported = true;
                    report.log = status.log;
                }
                Ok(None) => {}
                Err(source) => {
                    return Err(Error::Parse {
                        command: "reload".to_string(),
                        source,
                    })
                }
            }
        }
        // 2.6 hangs up at once, before or while the half-close goes out: confirm below.
        Err(e) if !version.at_least(2, 7) && e.is_connection_dropped() => {}
        Err(e) => return Err(e),
    }

    // Confirm through `show proc`: the counter went up, and a new worker is there (or the
    // failure counter rose). Bounded by the reply deadline.
    let deadline = Instant::now() + timeouts.reply;
    loop {
        let poll_timeouts = Deadlines {
            connect: timeouts
                .connect
                .min(deadline.saturating_duration_since(Instant::now()) + POLL),
            reply: timeouts.reply,
        };
        let after = match show_proc(&endpoint, poll_timeouts).await {
            Ok(list) => Some(list),
            // The master is re-executing (2.6): keep polling until the deadline.
            Err(e) if e.is_connection_dropped() || e.is_timeout() => None,
            Err(e) => return Err(e),
        };
        if let Some(after) = after {
            if after.master.reloads > before.master.reloads {
                let failed_before = before.master.failed_reloads.unwrap_or(0);
                let failed_after = after.master.failed_reloads.unwrap_or(0);
                if failed_after > failed_before {
                    return Err(Error::Refused {
                        command: "reload".to_string(),
                        index: None,
                        message: failure_message(&endpoint, timeouts, failed_after).await,
                    });
                }
                let new: Vec<u32> = after
                    .workers
                    .iter()
                    .filter(|p| p.reloads == 0 && !old_pids.contains(&p.pid))
                    .map(|p| p.pid)
                    .collect();
                if !new.is_empty() {
                    report.reloads = after.master.reloads;
                    report.old_workers = worker_pids(&after)
                        .into_iter()
                        .filter(|pid| old_pids.contains(pid))
                        .collect();
                    report.new_workers = new;
                    return Ok(report);
                }
            }
        }
        if Instant::now() + POLL >= deadline {
            return Err(Error::Timeout {
                endpoint: endpoint.to_string(),
                during: "confirming the reload through `show proc`",
                after: timeouts.reply,
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The message of a failed 2.6 reload. 2.6's master CLI has no `show startup-logs` (checked:
/// "Unknown command"), so HAProxy's ALERT lines cannot be read from it; newer masters that
/// keep them are asked, and otherwise the message says where to look.
async fn failure_message(endpoint: &Endpoint, timeouts: Deadlines, failed: u32) -> String {
    let mut message = format!(
        "reload failed ([failed: {failed}] in show proc); the previous worker keeps serving"
    );
    // An operator's line on purpose: sent and read exactly as `vezasock exec` would.
    if let Ok(line) = RawLine::new("show startup-logs") {
        if let Ok(reply) = one_shot_line_unchecked(endpoint, &line, timeouts, MAX_REPLY).await {
            if reply.refusal(None).is_none() && !reply.text().is_empty() {
                message.push_str(":\n");
                message.push_str(&reply.text());
                return message;
            }
        }
    }
    message.push_str(
        ". This HAProxy's master CLI does not report why: run `haproxy -c -f <config>` \
         or read the master's log for the ALERT lines",
    );
    message
}
