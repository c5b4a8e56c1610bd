//! What a flip is asked to do and what it says: the request ([`SwitchRequest`], its `--sha`
//! and lock policy), the phases in order ([`FlipPhase`]), the exit-5 report of a flip that
//! stopped after traffic may have moved ([`Unfinished`]), and the steps as printed.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::edge::EdgeError;
use crate::state::{Action, Wait};
use crate::topology::Color;

/// What to switch, and how.
#[derive(Debug, Clone)]
pub struct SwitchRequest {
    pub env: String,
    pub color: Color,
    pub sha: Option<String>,
    /// Wait up to this long for the target color to become healthy (`None`: only for checks
    /// still to come, see [`gate::CHECK_WAIT`]).
    pub wait_healthy: Option<Duration>,
    /// Drain the old color after the flip, waiting up to `drain_timeout` for its sessions.
    pub drain_old: bool,
    pub drain_timeout: Duration,
    /// Read and gate only; change nothing.
    pub dry_run: bool,
    /// How long to wait for the per-edge lock.
    pub lock_wait: LockWait,
    /// Who switches (history and journal).
    pub who: String,
    /// `switch`, or `rollback` when called by [`crate::edge::deploy::rollback`].
    pub action: Action,
    /// `--preview-check`: paths requested through the edge with a preview token for the
    /// target before the gate; any answer but 2xx/3xx refuses the switch.
    pub preview_check: Vec<String>,
    /// Where `--preview-check` connects (`None`: the topology's `listen.http`).
    pub preview_via: Option<std::net::SocketAddr>,
    /// `--bake`: watch the new color this long after the record phase, flipping back on a
    /// breach of `bake_limits`.
    pub bake: Option<Duration>,
    pub bake_limits: crate::edge::analysis::Limits,
    /// The prepared transaction this flip continues (its commit or abort): its lock holder
    /// carries the id, so the open transaction does not hold the edge against it.
    pub transaction: Option<String>,
    /// Why vezasock runs this flip itself (a bake's flip-back: [`BAKE_BREACH`] and the numbers):
    /// the first part of its journal intent's detail, so the metrics tell it from an operator's.
    pub why: Option<String>,
}

/// How the intent of a bake's flip-back starts (`bake breach: <numbers>`).
pub const BAKE_BREACH: &str = "bake breach";

/// The longest `--sha` accepted (a SHA-256 hex digest is 64).
pub const SHA_MAX: usize = 64;

/// `--sha`: one word of at most [`SHA_MAX`] characters, letters, digits, `.`, `_`, `-`.
pub fn check_sha(sha: Option<&str>) -> Result<(), EdgeError> {
    let Some(sha) = sha else {
        return Ok(());
    };
    let ok = !sha.is_empty()
        && sha.len() <= SHA_MAX
        && sha
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        return Ok(());
    }
    let shown: String = sha.chars().take(80).collect();
    Err(EdgeError::BadInput(format!(
        "--sha {shown:?}: a sha is one word of at most {SHA_MAX} letters, digits, `.`, `_` or `-`"
    )))
}

/// The lock policy, resolved to an instant only when the lock is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockWait {
    /// `--no-wait`.
    No,
    /// Wait up to this long.
    UpTo(Duration),
}

impl LockWait {
    /// The state module's wait.
    pub(crate) fn wait(self) -> Wait {
        match self {
            LockWait::No => Wait::No,
            LockWait::UpTo(d) => Wait::up_to(d),
        }
    }
}

impl SwitchRequest {
    /// A plain switch with the defaults: no health wait, no drain, lock wait 60 s.
    pub fn new(env: &str, color: Color) -> SwitchRequest {
        SwitchRequest {
            env: env.to_string(),
            color,
            sha: None,
            wait_healthy: None,
            drain_old: false,
            drain_timeout: Duration::from_secs(300),
            dry_run: false,
            lock_wait: LockWait::UpTo(Duration::from_secs(60)),
            who: crate::state::who(),
            action: Action::Switch,
            preview_check: Vec::new(),
            preview_via: None,
            bake: None,
            bake_limits: crate::edge::analysis::Limits::default(),
            transaction: None,
            why: None,
        }
    }
}

/// The phases of a flip, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlipPhase {
    Lock,
    Read,
    Gate,
    Intent,
    Disk,
    Runtime,
    Verify,
    Record,
    DrainOld,
    /// After the flip: a bake's or a canary's analysis of the new color.
    Analysis,
}

impl FlipPhase {
    /// The word used in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            FlipPhase::Lock => "lock",
            FlipPhase::Read => "read",
            FlipPhase::Gate => "gate",
            FlipPhase::Intent => "intent",
            FlipPhase::Disk => "disk",
            FlipPhase::Runtime => "runtime",
            FlipPhase::Verify => "verify",
            FlipPhase::Record => "record",
            FlipPhase::DrainOld => "drain-old",
            FlipPhase::Analysis => "analysis",
        }
    }
}

/// A flip that stopped after traffic may have moved, with what the edge holds now (exit 5).
#[derive(Debug, Clone, Serialize)]
pub struct Unfinished {
    /// The phase that failed.
    pub phase: FlipPhase,
    pub env: String,
    /// What the runtime serves, as far as vezasock knows (`None`: could not be read).
    pub live: Option<Color>,
    /// What the state file records.
    pub recorded: Color,
    /// What failed.
    pub why: String,
    /// The one command that finishes it.
    pub finish: String,
}

impl std::fmt::Display for Unfinished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let live = self
            .live
            .map_or("unknown (could not be read)", Color::as_str);
        write!(
            f,
            "{} failed in the {} phase, after traffic may have moved: {}; live: {live}, recorded: {}; \
             `{}` finishes it",
            self.env,
            self.phase.as_str(),
            self.why,
            self.recorded,
            self.finish
        )?;
        write!(
            f,
            ", `vezasock apply` puts {} back on {}",
            self.env, self.recorded
        )
    }
}

/// One step of the flip, as printed.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// `lock`, `read`, `gate`, `journal+disk`, `runtime`, `read-back`, `record`, `drain-old`.
    pub name: &'static str,
    /// Milliseconds.
    pub ms: f64,
    pub detail: String,
}

/// Step timing and reporting.
pub(crate) struct Steps<'a> {
    pub started: Instant,
    last: Instant,
    pub steps: Vec<Step>,
    on_step: &'a mut dyn FnMut(&Step),
}

impl<'a> Steps<'a> {
    pub fn new(on_step: &'a mut dyn FnMut(&Step)) -> Steps<'a> {
        let now = Instant::now();
        Steps {
            started: now,
            last: now,
            steps: Vec::new(),
            on_step,
        }
    }

    pub fn done(&mut self, name: &'static str, detail: String) {
        let now = Instant::now();
        let step = Step {
            name,
            ms: ms(now - self.last),
            detail,
        };
        self.last = now;
        (self.on_step)(&step);
        self.steps.push(step);
    }
}

pub(crate) fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}
