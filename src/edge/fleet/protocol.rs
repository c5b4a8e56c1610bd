//! The conversation between the coordinator and `vezasock edge-agent` on an edge reached over
//! ssh: one JSON object per line each way, one request → one response, in order. One agent
//! session carries at most one transaction (prepare, then its commit steps or abort); a
//! session whose input ends while its transaction is still prepared aborts it (the coordinator
//! is gone).

use serde::{Deserialize, Serialize};

use crate::edge::{EdgeError, ErrorKind, Stop};
use crate::state::Transaction;
use crate::topology::Color;

/// One side of a conversation: the requests in, the answers out.
pub(crate) trait Conversation {
    /// The next request; `None` when the other side ended the conversation.
    async fn next(&mut self) -> Option<Request>;
    async fn send(&mut self, response: &Response);
}

/// A request to the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// `transaction::lock` for a flip of `env` to `color` (the coordinator locks every edge
    /// in one order before preparing any).
    Lock {
        env: String,
        color: Color,
        #[serde(default)]
        sha: Option<String>,
        #[serde(default)]
        wait_healthy_ms: Option<u64>,
        /// `None`: do not wait for the edge lock.
        #[serde(default)]
        lock_wait_ms: Option<u64>,
        who: String,
        /// `switch` or `rollback`.
        action: crate::state::Action,
    },
    /// What a flip of `env` to `color` would do on this edge (`switch --dry-run`: read and
    /// gate, no lock, nothing written).
    DryRun {
        env: String,
        color: Color,
        #[serde(default)]
        sha: Option<String>,
        #[serde(default)]
        wait_healthy_ms: Option<u64>,
    },
    /// The rest of the prepare of the locked flip, under `id`.
    Prepare {
        id: String,
        ttl_ms: u64,
    },
    /// The deploy `rollback` would go back to on this edge (`to`: a sha).
    RollbackTarget {
        env: String,
        #[serde(default)]
        to: Option<String>,
    },
    CommitDisk,
    CommitRuntime,
    /// The read-back after the commit.
    Verify,
    /// The record phase (history, state file, journal).
    Record,
    Abort {
        why: String,
    },
    Undo {
        why: String,
    },
    /// `servers::prepare_change`: lock, resolve, guard (the fleet's `drain` / `maint` /
    /// `ready`, prepared on every edge before applied on any).
    ServersPrepare {
        selection: crate::edge::servers::Selection,
        decision: crate::state::AdminDecision,
        force: bool,
        #[serde(default)]
        lock_wait_ms: Option<u64>,
    },
    /// Apply the prepared server change, or `decision` instead (a drain's `--then maint`).
    ServersApply {
        kill_sessions: bool,
        #[serde(default)]
        decision: Option<crate::state::AdminDecision>,
    },
    /// Wait up to `limit_ms` for the changed servers to have no session left (`drain --wait`);
    /// still busy then is exit 1, naming them.
    ServersWait {
        limit_ms: u64,
    },
    /// Put back what the applied server change changed.
    ServersRestore,
    /// Release a prepared server change without applying it.
    ServersRelease,
    /// The edge's colors and status.
    Status,
    /// Abort an open transaction and repair the edge to its recorded state (`apply`'s repair).
    Repair,
    /// The counters of `color` in `env` now (a fleet bake sums every edge's window).
    Counters {
        env: String,
        color: Color,
    },
    /// `preview --fleet`: `token` for `color` of `env` on this edge (the same token on every
    /// edge), or with no color the env's token revoked; takes the edge lock.
    Preview {
        env: String,
        #[serde(default)]
        color: Option<Color>,
        #[serde(default)]
        token: Option<String>,
        #[serde(default)]
        lock_wait_ms: Option<u64>,
        who: String,
    },
    /// After a fleet switch is recorded: the env's preview token revoked when this edge has one.
    PreviewAfterSwitch {
        env: String,
        who: String,
    },
    /// `switch --fleet … --preview-check`: the paths requested through this edge's listener
    /// with a preview token for `color` (revoked after); refused unless every answer is 2xx/3xx.
    PreviewCheck {
        env: String,
        color: Color,
        paths: Vec<String>,
        #[serde(default)]
        lock_wait_ms: Option<u64>,
        who: String,
    },
    /// `cert update --fleet`: every file checked for this edge, its lock taken, a write into
    /// its certs dir tried, the intent journalled under the fleet transaction `txn`; then this
    /// session serves the cert steps below, in order ([`super::cert_agent`]).
    CertBegin {
        txn: String,
        files: Vec<crate::edge::cert::SentFile>,
        #[serde(default)]
        allow_other_domains: bool,
        #[serde(default)]
        lock_wait_ms: Option<u64>,
        who: String,
    },
    /// `canary --fleet`: the env's canary lock taken on this edge (the lock a running `canary`
    /// holds), kept until the conversation ends (the coordinator gone: released).
    CanaryHold {
        env: String,
    },
    /// One canary step staged on this edge: its edge lock taken, the env's entry read, the
    /// intent journalled; then `canary-apply` writes it (file, runtime) or `canary-drop` drops
    /// it. `percent` 0 (or no color) deletes the entry; `if_running`: refused unless a running
    /// canary of the env is there (`--promote` from another shell).
    CanaryStage {
        env: String,
        #[serde(default)]
        color: Option<Color>,
        percent: u8,
        #[serde(default)]
        if_running: bool,
        #[serde(default)]
        lock_wait_ms: Option<u64>,
        who: String,
    },
    /// File `index` (the next one) staged: `new ssl cert` for a new file, `set ssl cert`.
    CertStage {
        index: usize,
    },
    /// The staged file committed: `commit ssl cert` (and `add ssl crt-list` for a new one).
    CertCommit,
    /// The committed file written into the certs dir and read back (`show ssl cert`).
    CertFinish,
    /// The update ended here: a staged file aborted (`abort ssl cert`), the lock released.
    CertAbort {
        why: String,
    },
    /// The update done here (every file finished): journalled, the lock released.
    CertDone,
    /// `cert list` of this edge (read-only).
    CertList,
    /// The staged canary step written (map file, runtime, journal); the edge lock released.
    CanaryApply,
    /// The staged canary step dropped unapplied (nothing written); the edge lock released.
    CanaryDrop {
        why: String,
    },
    /// The env's canary on this edge: its entry in the map file and whether a process runs it.
    CanaryRead {
        env: String,
    },
}

impl Request {
    /// The request's `op`, as on the wire (for logs).
    pub fn step(&self) -> &'static str {
        match self {
            Request::Lock { .. } => "lock",
            Request::DryRun { .. } => "dry-run",
            Request::Prepare { .. } => "prepare",
            Request::RollbackTarget { .. } => "rollback-target",
            Request::CommitDisk => "commit-disk",
            Request::CommitRuntime => "commit-runtime",
            Request::Verify => "verify",
            Request::Record => "record",
            Request::Abort { .. } => "abort",
            Request::Undo { .. } => "undo",
            Request::ServersPrepare { .. } => "servers-prepare",
            Request::ServersApply { .. } => "servers-apply",
            Request::ServersWait { .. } => "servers-wait",
            Request::ServersRestore => "servers-restore",
            Request::ServersRelease => "servers-release",
            Request::Status => "status",
            Request::Repair => "repair",
            Request::Counters { .. } => "counters",
            Request::Preview { .. } => "preview",
            Request::PreviewAfterSwitch { .. } => "preview-after-switch",
            Request::PreviewCheck { .. } => "preview-check",
            Request::CertBegin { .. } => "cert-begin",
            Request::CertStage { .. } => "cert-stage",
            Request::CertCommit => "cert-commit",
            Request::CertFinish => "cert-finish",
            Request::CertAbort { .. } => "cert-abort",
            Request::CertDone => "cert-done",
            Request::CertList => "cert-list",
            Request::CanaryHold { .. } => "canary-hold",
            Request::CanaryStage { .. } => "canary-stage",
            Request::CanaryApply => "canary-apply",
            Request::CanaryDrop { .. } => "canary-drop",
            Request::CanaryRead { .. } => "canary-read",
        }
    }
}

/// The longest request line read (a prepare is a few hundred bytes; a `cert-begin` carries
/// its PEMs, each under 128 KiB).
pub const MAX_LINE: usize = 1024 * 1024;

/// One request line (without its newline): UTF-8, JSON, a known op with its fields. Anything
/// else is a bad-input error (exit 2) that the agent answers before reading the next line.
pub fn parse_request(line: &[u8]) -> Result<Request, EdgeError> {
    if line.len() > MAX_LINE {
        return Err(EdgeError::BadInput(format!(
            "request line too long (more than {MAX_LINE} bytes)"
        )));
    }
    let text = std::str::from_utf8(line)
        .map_err(|e| EdgeError::BadInput(format!("not a request: the line is not UTF-8 ({e})")))?;
    serde_json::from_str::<Request>(text)
        .map_err(|e| EdgeError::BadInput(format!("not a request: {e}")))
}

/// The agent's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Response {
    pub ok: bool,
    /// What was done (or the error message when `ok` is false).
    pub detail: String,
    /// The exit code `vezasock` would give this failure (kept for a coordinator older than
    /// `kind`; a coordinator decides by `kind`).
    #[serde(default)]
    pub exit: u8,
    /// The failure's kind (absent from an older agent: the coordinator reads it from `exit`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient"
    )]
    pub kind: Option<ErrorKind>,
    /// Where this edge stopped, once traffic may have moved there: the phase, what is live and
    /// recorded, whether it was put back, the command that finishes it.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient"
    )]
    pub stop: Option<Stop>,
    /// `prepare`: the env's live color before it, the staged version, no change needed.
    #[serde(default)]
    pub from: Option<Color>,
    #[serde(default)]
    pub version: Option<u32>,
    #[serde(default)]
    pub noop: bool,
    /// `rollback-target`: the color and sha.
    #[serde(default)]
    pub target: Option<(Color, Option<String>)>,
    /// `status`: the edge's summary and full status report.
    #[serde(default)]
    pub summary: Option<EdgeSummary>,
    #[serde(default)]
    pub status: Option<serde_json::Value>,
    /// `counters`: the color's counters on this edge now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counters: Option<crate::edge::analysis::Counters>,
    /// `preview`, `preview-after-switch`: how many old tokens of the env were removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<usize>,
    /// `cert-finish`: the certificate installed; `cert-list`: the edge's certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<CertAnswer>,
    /// `canary-read`, `canary-stage`: the env's canary on this edge (`None`: none, 0 %).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<crate::edge::deploy::canary::InProgress>,
}

/// What a certificate request answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CertAnswer {
    Installed(crate::edge::cert::Updated),
    List(crate::edge::cert::CertReport),
}

impl PartialEq for CertAnswer {
    /// Compared as their JSON (the reports hold no float).
    fn eq(&self, other: &CertAnswer) -> bool {
        serde_json::to_value(self).ok() == serde_json::to_value(other).ok()
    }
}

impl Response {
    /// The answer to a request that failed with `error`.
    pub fn failure(error: &EdgeError) -> Response {
        Response {
            ok: false,
            detail: error.to_string(),
            exit: error.exit() as u8,
            kind: Some(error.kind()),
            stop: error.stop(),
            ..Response::default()
        }
    }

    /// The error an edge's failed answer stands for: its kind as sent (from `exit` when an
    /// older agent sent no kind).
    pub fn error(self, edge: &str) -> EdgeError {
        EdgeError::Remote {
            edge: edge.to_string(),
            kind: self.kind.unwrap_or_else(|| ErrorKind::of_code(self.exit)),
            stop: self.stop.map(Box::new),
            message: self.detail,
        }
    }
}

/// A field a newer agent may fill with a value this coordinator does not know: read as absent
/// (`kind` then falls back to `exit`), not as an unreadable answer.
fn lenient<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let value = serde_json::Value::deserialize(deserializer)?;
    Ok(serde_json::from_value(value).ok())
}

/// What fleet status compares across edges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct EdgeSummary {
    /// Per colored env: the live (runtime) and recorded (state file) colors.
    pub envs: Vec<EnvColors>,
    /// The edge's own problems (drift, interrupted operations, an open transaction).
    pub problems: Vec<String>,
    pub transaction: Option<Transaction>,
    /// The canaries in progress on this edge (absent from an older agent: none seen).
    #[serde(default)]
    pub canaries: Vec<crate::edge::deploy::canary::InProgress>,
}

/// One env's colors on one edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvColors {
    pub env: String,
    pub live: Option<Color>,
    pub recorded: Option<Color>,
    /// Per color: `green 3/3 up` (servers up and ready / servers), or with the drained and
    /// maintained ones named (`blue 2/3 up, 1 drain`).
    #[serde(default)]
    pub servers: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An older agent sends only `exit`: the coordinator reads the kind from it.
    #[test]
    fn an_answer_without_a_kind_is_read_from_its_exit_code() {
        let old = r#"{"ok":false,"detail":"the edge is locked","exit":4}"#;
        let r: Response = serde_json::from_str(old).unwrap_or_default();
        assert_eq!(r.kind, None);
        assert_eq!(r.error("edge-a").kind(), ErrorKind::Locked);
    }

    /// A kind or phase this coordinator does not know is not an unreadable answer.
    #[test]
    fn an_unknown_kind_falls_back_to_the_exit_code() {
        let newer = r#"{"ok":false,"detail":"x","exit":3,"kind":"from-the-future","stop":{"phase":"warp"}}"#;
        let r: Response = serde_json::from_str(newer).unwrap_or_default();
        assert!(!r.ok && r.exit == 3, "{r:?}");
        assert_eq!(r.error("edge-a").kind(), ErrorKind::Unreachable);
    }

    /// A failure crosses the wire with its kind, its exit code and where it stopped.
    #[test]
    fn a_failure_carries_its_kind_and_where_it_stopped() {
        let e = EdgeError::Unfinished(Box::new(crate::edge::flip::Unfinished {
            phase: crate::edge::flip::FlipPhase::Verify,
            env: "staging".into(),
            live: None,
            recorded: Color::Blue,
            why: "read-back lost".into(),
            finish: "vezasock switch staging green".into(),
        }));
        let line = serde_json::to_string(&Response::failure(&e)).unwrap_or_default();
        let back: Response = serde_json::from_str(&line).unwrap_or_default();
        assert_eq!(back.exit, 5, "{line}");
        assert_eq!(back.kind, Some(ErrorKind::Unfinished), "{line}");
        let remote = back.error("edge-a");
        assert_eq!(remote.kind(), ErrorKind::Unfinished);
        assert_eq!(remote.stop(), e.stop());
        assert!(line.contains(r#""phase":"verify""#), "{line}");
    }

    #[test]
    fn each_step_name_is_the_op_on_the_wire() {
        let lock = Request::Lock {
            env: "staging".into(),
            color: Color::Green,
            sha: None,
            wait_healthy_ms: None,
            lock_wait_ms: None,
            who: "ci".into(),
            action: crate::state::Action::Switch,
        };
        let servers = Request::ServersPrepare {
            selection: crate::edge::servers::Selection::Backend {
                backend: "forgejo_backend".into(),
                server: None,
            },
            decision: crate::state::AdminDecision::Drain,
            force: false,
            lock_wait_ms: None,
        };
        let why = "test".to_string();
        let every = [
            lock,
            Request::DryRun {
                env: "staging".into(),
                color: Color::Green,
                sha: None,
                wait_healthy_ms: None,
            },
            Request::Prepare {
                id: "t".into(),
                ttl_ms: 1,
            },
            Request::RollbackTarget {
                env: "staging".into(),
                to: None,
            },
            Request::CommitDisk,
            Request::CommitRuntime,
            Request::Verify,
            Request::Record,
            Request::Abort { why: why.clone() },
            Request::Undo { why },
            servers,
            Request::ServersApply {
                kill_sessions: false,
                decision: None,
            },
            Request::ServersWait { limit_ms: 1 },
            Request::ServersRestore,
            Request::ServersRelease,
            Request::Status,
            Request::Repair,
            Request::Counters {
                env: "staging".into(),
                color: Color::Green,
            },
            Request::Preview {
                env: "staging".into(),
                color: Some(Color::Green),
                token: Some("t".into()),
                lock_wait_ms: None,
                who: "ci".into(),
            },
            Request::PreviewAfterSwitch {
                env: "staging".into(),
                who: "ci".into(),
            },
            Request::PreviewCheck {
                env: "staging".into(),
                color: Color::Green,
                paths: vec!["/".into()],
                lock_wait_ms: None,
                who: "ci".into(),
            },
            Request::CertBegin {
                txn: "t".into(),
                files: vec![crate::edge::cert::SentFile {
                    name: "veza.pem".into(),
                    pem: "x".into(),
                }],
                allow_other_domains: false,
                lock_wait_ms: None,
                who: "ci".into(),
            },
            Request::CertStage { index: 0 },
            Request::CertCommit,
            Request::CertFinish,
            Request::CertAbort { why: "t".into() },
            Request::CertDone,
            Request::CertList,
            Request::CanaryHold {
                env: "staging".into(),
            },
            Request::CanaryStage {
                env: "staging".into(),
                color: Some(Color::Green),
                percent: 25,
                if_running: false,
                lock_wait_ms: None,
                who: "ci".into(),
            },
            Request::CanaryApply,
            Request::CanaryDrop { why: "p".into() },
            Request::CanaryRead {
                env: "staging".into(),
            },
        ];
        for request in every {
            let json = serde_json::to_value(&request).unwrap_or_default();
            assert_eq!(json["op"], request.step(), "{request:?}");
        }
    }
}
