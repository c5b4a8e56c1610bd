//! `vezasock switch ENV COLOR`: the flip CI calls at the end of a deploy. Human output is one
//! line per step with its duration, then the total; `--json` prints one object (`cli::flip`).

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::after::after;
use super::args::{parse_duration, parse_name, parse_sha, Checked, LockArgs, TopologyArgs};
use super::common::{fail, runtime_and_edge};
use super::flip::{finish, step_line};
use super::output;
use crate::edge::deploy::switch::{switch, SwitchRequest};
use crate::edge::EdgeError;
use crate::topology::Color;

// Arguments of `vezasock switch` (a plain comment: a doc comment would replace the subcommand's
// about text, which clap applies from the `Command` variant).
#[derive(Debug, Clone, Args)]
pub struct SwitchArgs {
    /// The env to flip, e.g. staging (1-64 characters of 0-9A-Za-z._-).
    #[arg(value_parser = Checked(parse_name))]
    pub env: String,
    /// The color to make live: blue or green.
    pub color: Color,
    /// The deployed commit, recorded in the history: 1 to 64 characters of 0-9, A-Z, a-z, '.',
    /// '_', '-'.
    #[arg(long, value_parser = Checked(parse_sha))]
    pub sha: Option<String>,
    /// Wait up to DURATION for every server of the target color to be UP (e.g. 30s; at most
    /// 7d).
    #[arg(long, value_name = "DURATION", value_parser = Checked(parse_duration))]
    pub wait_healthy: Option<Duration>,
    /// After the flip, put the old color in DRAIN and wait for its sessions to end.
    #[arg(long)]
    pub drain_old: bool,
    /// How long --drain-old waits for the old color's sessions (at most 7d).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = Checked(parse_duration), requires = "drain_old")]
    pub drain_timeout: Duration,
    /// Before the gate, GET each PATH through the edge with a preview token for the target
    /// color; refuse the switch unless every answer is 2xx or 3xx (at most 32 paths). The
    /// edge's own redirect to HTTPS is followed over TLS to listen.https, never counted.
    #[arg(long, value_name = "PATH[,PATH…]", value_delimiter = ',', value_parser = Checked(parse_path))]
    pub preview_check: Vec<String>,
    /// Where --preview-check reaches the edge's HTTP listener (default: the topology's
    /// listen.http, a wildcard address as 127.0.0.1). Refused with --fleet: each edge checks
    /// through its own.
    #[arg(
        long,
        value_name = "ADDR:PORT",
        env = "VEZASOCK_PREVIEW_VIA",
        requires = "preview_check"
    )]
    pub preview_via: Option<std::net::SocketAddr>,
    /// After the flip, watch the new color for DURATION (e.g. 2m; at most 7d) and flip back by
    /// itself when its 5xx rate breaches --max-error-rate (exit 7). --drain-old waits for it.
    /// With --fleet: every edge's counters summed; a breach flips every edge back.
    #[arg(long, value_name = "DURATION", value_parser = Checked(parse_duration))]
    pub bake: Option<Duration>,
    /// The 5xx share of the new color's responses that fails the bake, in percent (e.g. 1% or
    /// 0.5; 0 to 100).
    #[arg(long, value_name = "PERCENT", default_value = "1%", value_parser = Checked(parse_percent), requires = "bake")]
    pub max_error_rate: f64,
    /// Fewer responses than this over the bake is inconclusive, never a breach (1 to 10^9).
    #[arg(long, value_name = "N", default_value_t = crate::edge::analysis::DEFAULT_MIN_REQUESTS, value_parser = clap::value_parser!(u64).range(1..=1_000_000_000), requires = "bake")]
    pub min_requests: u64,
    /// Read and check only; print the steps without changing anything.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub lock: LockArgs,
    /// Print a JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub fleet: super::fleet::FleetArgs,
    /// With --fleet: how long each edge's prepared transaction holds it if this process dies
    /// before the commit (1s to 1h).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = Checked(super::txn::parse_expiry), requires = "fleet")]
    pub expires: Duration,
    #[command(flatten)]
    pub topology: TopologyArgs,
}

/// The most paths `--preview-check` takes (each is one request before the gate).
const MAX_PREVIEW_PATHS: usize = 32;

/// `1%`, `0.5%`, `2` (percent) → a fraction (0.01, 0.005, 0.02); 0 to 100 %.
pub(crate) fn parse_percent(s: &str) -> Result<f64, String> {
    let text = s.trim().trim_end_matches('%').trim();
    let ok = !text.is_empty()
        && text.len() <= 16
        && text.chars().all(|c| c.is_ascii_digit() || c == '.');
    match text.parse::<f64>() {
        Ok(p) if ok && p.is_finite() && (0.0..=100.0).contains(&p) => Ok(p / 100.0),
        _ => Err(format!("{s:?}: a percent from 0 to 100, e.g. 1% or 0.5")),
    }
}

fn parse_path(s: &str) -> Result<String, String> {
    crate::edge::deploy::preview::check_path(s)
        .map(|()| s.to_string())
        .map_err(|e| e.to_string())
}

impl SwitchArgs {
    /// The request these flags make: the one place the flags of `switch` become a
    /// [`SwitchRequest`] (on one edge and on a fleet).
    pub fn request(&self) -> Result<SwitchRequest, EdgeError> {
        if self.preview_check.len() > MAX_PREVIEW_PATHS {
            return Err(EdgeError::BadInput(format!(
                "--preview-check takes at most {MAX_PREVIEW_PATHS} paths"
            )));
        }
        let mut req = SwitchRequest::new(&self.env, self.color);
        req.sha = self.sha.clone();
        req.wait_healthy = self.wait_healthy;
        req.drain_old = self.drain_old;
        req.drain_timeout = self.drain_timeout;
        req.dry_run = self.dry_run;
        req.preview_check = self.preview_check.clone();
        req.preview_via = self.preview_via;
        req.bake = self.bake;
        req.bake_limits = crate::edge::analysis::Limits {
            max_error_rate: self.max_error_rate,
            min_requests: self.min_requests,
        };
        req.lock_wait = self.lock.lock_wait();
        Ok(req)
    }
}

/// Runs `vezasock switch`.
pub fn run(args: &SwitchArgs) -> ExitCode {
    let req = match args.request() {
        Ok(req) => req,
        Err(e) => return fail("switch", &e).into(),
    };
    if let Some(fleet) = &args.fleet.fleet {
        return super::fleet::run_switch(fleet, &args.topology, args.json, req, args.expires);
    }
    let (rt, edge) = match runtime_and_edge("switch", &args.topology) {
        Ok(both) => both,
        Err(exit) => return exit.into(),
    };
    let mut steps = Vec::new();
    let json = args.json;
    let result = rt.block_on(switch(&edge, &req, &mut |step| {
        if !json {
            output::line(&step_line(step));
        }
        steps.push(step.clone());
    }));
    after(&rt, &edge, "switch");
    finish("switch", json, result, steps)
}

#[cfg(test)]
mod tests {
    use super::parse_percent;

    #[test]
    fn percents() {
        assert_eq!(parse_percent("1%"), Ok(0.01));
        assert_eq!(parse_percent("0.5"), Ok(0.005));
        assert_eq!(parse_percent("100%"), Ok(1.0));
        for bad in ["", "%", "101", "-1", "1e2", "nan", "inf", "1%%x", "1.2.3"] {
            assert!(parse_percent(bad).is_err(), "{bad}");
        }
    }
}
