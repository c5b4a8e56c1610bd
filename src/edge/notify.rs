//! Events to a webhook (`[notify] webhook`, `--notify-webhook`): at the end of a command, one
//! JSON event per milestone this process journalled (started, flipped, recorded, failed, rolled
//! back, refused by the gate, a canary step, aborted, promoted), in journal order, then `unfinished` for each of its
//! operations left open, POSTed one by one to an `http://` or `https://` URL (TLS in [`tls`]).
//! Sent after the journal lines
//! and the command's work, so a slow or failing webhook never delays or changes a flip: each
//! command gives it at most [`BUDGET`] in all, two tries an event. The URL's path may hold a
//! secret: messages show only `http[s]://host:port/…`. Schema: docs/observability.md.

pub mod tls;

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::state::{Action, JournalEntry, Phase};
use crate::topology::webhook::Webhook;

/// The most a command spends on its events, tries included.
pub const BUDGET: Duration = Duration::from_secs(5);

/// Tries per event.
const TRIES: u32 = 2;

/// One event, as POSTed (`text` is for Slack-compatible receivers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    pub event: &'static str,
    pub edge: String,
    pub env: Option<String>,
    pub action: &'static str,
    pub from: Option<String>,
    pub to: Option<String>,
    pub op_id: String,
    pub who: String,
    /// When the journal line was written (RFC 3339 UTC).
    pub at: String,
    pub detail: Option<String>,
    pub text: String,
}

/// The milestone a journal line is, if it is one (`disk-written` and `verified` are steps
/// inside a flip, not milestones).
fn milestone(e: &JournalEntry) -> Option<&'static str> {
    Some(match (e.phase, e.action) {
        (Phase::Intent, _) => "started",
        (Phase::RuntimeApplied, _) => "flipped",
        (Phase::Done, Action::Canary) => match (&e.after, &e.before) {
            (Some(_), _) => "canary_step",
            (None, Some(before)) if before.ends_with(":100") => "promoted",
            (None, _) => "aborted",
        },
        (Phase::Done, _) => "recorded",
        (Phase::Failed, _) => "failed",
        (Phase::RolledBack, _) => "rolled_back",
        (Phase::Refused, _) => "refused",
        (Phase::DiskWritten | Phase::Verified, _) => return None,
    })
}

fn event(edge: &str, e: &JournalEntry, name: &'static str) -> Event {
    let env = e
        .env
        .as_deref()
        .map(|env| format!(" {env}"))
        .unwrap_or_default();
    let change = match (&e.before, &e.after) {
        (Some(b), Some(a)) => format!(" {b} → {a}"),
        (None, Some(a)) => format!(" → {a}"),
        (Some(b), None) => format!(" {b} → none"),
        (None, None) => String::new(),
    };
    Event {
        event: name,
        edge: edge.to_string(),
        env: e.env.clone(),
        action: e.action.as_str(),
        from: e.before.clone(),
        to: e.after.clone(),
        op_id: e.op_id.clone(),
        who: e.who.clone(),
        at: e.ts.clone(),
        detail: e.detail.clone(),
        text: format!(
            "{edge}: {}{env}{change}: {} (by {})",
            e.action.as_str(),
            name.replace('_', " "),
            e.who
        ),
    }
}

/// The events of the journal lines process `pid` wrote from `since` (RFC 3339, inclusive), then
/// `unfinished` for each of its operations without an end.
pub fn events(edge: &str, journal: &[JournalEntry], pid: u32, since: &str) -> Vec<Event> {
    let ours: Vec<&JournalEntry> = journal
        .iter()
        .filter(|e| e.pid == pid && e.ts.as_str() >= since && e.action != Action::Notify)
        .collect();
    let mut out: Vec<Event> = ours
        .iter()
        .filter_map(|e| milestone(e).map(|m| event(edge, e, m)))
        .collect();
    let mut seen: Vec<&str> = Vec::new();
    for e in ours.iter().rev() {
        if seen.contains(&e.op_id.as_str()) {
            continue;
        }
        seen.push(&e.op_id);
        if !e.phase.is_terminal() {
            out.push(event(edge, e, "unfinished"));
        }
    }
    out
}

/// POSTs `events` in order within [`BUDGET`]; the first event not taken stops the rest. An
/// `https://` target is checked against `ca_file`'s CAs, else the system's.
/// Returns how many were delivered, or that number and why the next was not.
pub fn send(
    target: &Webhook,
    ca_file: Option<&Path>,
    events: &[Event],
) -> Result<usize, (usize, String)> {
    let deadline = Instant::now() + BUDGET;
    let tls = match target.tls {
        true => Some(tls::config(ca_file).map_err(|why| (0, why))?),
        false => None,
    };
    for (sent, e) in events.iter().enumerate() {
        let body = serde_json::to_vec(e).unwrap_or_default();
        let mut why = String::new();
        for _ in 0..TRIES {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                why = format!("no answer within {} s", BUDGET.as_secs());
                break;
            }
            match post(
                target,
                tls.as_ref(),
                &body,
                left.min(Duration::from_secs(2)),
            ) {
                Ok(status) if (200..300).contains(&status) => {
                    why.clear();
                    break;
                }
                Ok(status) => why = format!("answered HTTP {status}"),
                Err(err) => why = err.to_string(),
            }
        }
        if !why.is_empty() {
            return Err((sent, why));
        }
    }
    Ok(events.len())
}

/// One POST, over TLS when `tls` is given; returns the HTTP status. Every step (connect, each
/// read and write of the handshake and the exchange) is bounded by `timeout`.
fn post(
    target: &Webhook,
    tls: Option<&Arc<rustls::ClientConfig>>,
    body: &[u8],
    timeout: Duration,
) -> std::io::Result<u16> {
    let addr = (target.host.as_str(), target.port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other("the host has no address"))?;
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    match tls {
        Some(config) => exchange(
            &mut tls::connect(config, &target.host, stream)?,
            target,
            body,
        ),
        None => exchange(&mut { stream }, target, body),
    }
}

/// Writes the request and reads the answer's status line (at most 1 KiB read).
fn exchange(stream: &mut impl ReadWrite, target: &Webhook, body: &[u8]) -> std::io::Result<u16> {
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: vezasock/{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        target.path,
        target.host,
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()?;
    let reply = status_line(stream)?;
    let text = String::from_utf8_lossy(&reply);
    text.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .filter(|_| text.starts_with("HTTP/1."))
        .ok_or_else(|| std::io::Error::other("no HTTP status line in the answer"))
}

/// A plain or TLS connection.
trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// The answer's bytes up to the end of its status line (or 1 KiB, or the end of the stream):
/// a server that keeps the connection open, or closes it without TLS's close_notify, still
/// gives its status.
fn status_line(stream: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut reply = Vec::new();
    let mut buf = [0u8; 256];
    while reply.len() < 1024 && !reply.windows(2).any(|w| w == b"\r\n") {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => reply.extend_from_slice(&buf[..n]),
            Err(e) if reply.is_empty() => return Err(e),
            Err(_) => break,
        }
    }
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(
        op: &str,
        pid: u32,
        ts: &str,
        action: Action,
        phase: Phase,
        before: Option<&str>,
        after: Option<&str>,
    ) -> JournalEntry {
        JournalEntry {
            ts: ts.to_string(),
            who: "ci".to_string(),
            pid,
            op_id: op.to_string(),
            env: Some("staging".to_string()),
            action,
            phase,
            before: before.map(str::to_string),
            after: after.map(str::to_string),
            detail: None,
        }
    }

    /// Only this process's lines from its start, milestones in journal order, then one
    /// `unfinished` per operation it left open; canary ends named by their percent.
    #[test]
    fn events_of_this_command() {
        use Action::{Canary, Switch};
        use Phase::{DiskWritten, Done, Intent, Refused, RuntimeApplied, Verified};
        let (t0, t1) = ("2026-01-01T00:00:00Z", "2026-01-01T00:00:05Z");
        let (b, g) = (Some("blue"), Some("green"));
        let journal = vec![
            entry("old", 7, t0, Switch, Intent, b, g),
            entry("other", 8, t1, Switch, Intent, b, g),
            entry("s", 7, t1, Switch, Intent, b, g),
            entry("s", 7, t1, Switch, DiskWritten, b, g),
            entry("s", 7, t1, Switch, RuntimeApplied, b, g),
            entry("s", 7, t1, Switch, Verified, b, g),
            entry("s", 7, t1, Switch, Done, b, g),
            entry("c1", 7, t1, Canary, Done, None, Some("green:10")),
            entry("c2", 7, t1, Canary, Done, Some("green:10"), None),
            entry("c3", 7, t1, Canary, Done, Some("green:100"), None),
            entry("r", 7, t1, Switch, Refused, b, g),
            entry("open", 7, t1, Switch, Intent, g, b),
        ];
        let got: Vec<(&str, String)> = events("veza", &journal, 7, t1)
            .into_iter()
            .map(|e| (e.event, e.op_id))
            .collect();
        let want = [
            ("started", "s"),
            ("flipped", "s"),
            ("recorded", "s"),
            ("canary_step", "c1"),
            ("aborted", "c2"),
            ("promoted", "c3"),
            ("refused", "r"),
            ("started", "open"),
            ("unfinished", "open"),
        ];
        let want: Vec<(&str, String)> = want.iter().map(|(e, o)| (*e, o.to_string())).collect();
        assert_eq!(got, want);
    }
}
