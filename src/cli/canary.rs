//! `vezasock canary ENV COLOR --steps 5,25,50,100 --interval 30s`: one human line per step and
//! analysis, then the switch that ends it; `--abort` / `--promote` from another shell; or one
//! JSON object (`{ok: true, …report}`, `{ok: false, error, exit}`, `{env, action, changed}`).
//! With `--fleet FILE` each of them runs on every edge ([`crate::edge::fleet::canary`]).

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde::Serialize;

use super::after::after;
use super::args::{parse_duration, parse_name, parse_sha, Checked, LockArgs, TopologyArgs};
use super::common::runtime_and_edge;
use super::exit::Exit;
use super::finish::{finish, Failed, Report, WithOk};
use super::fleet::on_fleet;
use super::output;
use super::switch::parse_percent;
use crate::edge::analysis::{Limits, DEFAULT_MIN_REQUESTS};
use crate::edge::deploy::canary::{
    abort_from_outside, canary, promote_from_outside, CanaryReport, CanaryRequest,
};
use crate::edge::fleet::canary::{
    abort_from_outside as abort_fleet, canary as fleet_canary,
    promote_from_outside as promote_fleet, FleetCanaryReport,
};
use crate::edge::EdgeError;
use crate::topology::Color;

impl Report for CanaryReport {
    type Json<'a> = WithOk<'a, CanaryReport>;

    fn json(&self) -> WithOk<'_, CanaryReport> {
        WithOk::of(self)
    }

    /// The steps were printed as they happened; then the promotion.
    fn human(&self) -> String {
        format!(
            "{} promoted {} → {} through {} step(s) (no reload)\n",
            self.env,
            self.from,
            self.to,
            self.steps.len() + 1
        )
    }
}

/// What `--abort` / `--promote` did, on one edge or on a fleet; its JSON is
/// `{env, action, changed}`.
#[derive(Serialize)]
struct Control {
    env: String,
    action: &'static str,
    /// False when the env had no canary (nothing to abort or promote).
    changed: bool,
    /// The canary's color, promoted to 100 %.
    #[serde(skip)]
    promoted: Option<Color>,
}

impl Report for Control {
    type Json<'a> = &'a Control;

    fn json(&self) -> &Control {
        self
    }

    fn human(&self) -> String {
        let env = &self.env;
        match (self.action, self.changed, self.promoted) {
            ("promote", true, Some(color)) => format!(
                "the canary of {env} is at 100 % ({color}); the running canary ends it as a switch\n"
            ),
            ("abort", true, _) => format!("the canary of {env} was aborted: 0 %\n"),
            ("abort", false, _) => format!("{env} has no canary: nothing to abort\n"),
            _ => String::new(),
        }
    }

    /// Promoting an env without a canary is refused (nothing changed); aborting one is not
    /// (it is where the operator wanted it).
    fn exit(&self) -> Exit {
        match (self.action, self.changed) {
            ("promote", false) => Exit::Refused,
            _ => Exit::Ok,
        }
    }

    fn note(&self) -> Option<String> {
        (self.action == "promote" && !self.changed)
            .then(|| format!("{} has no canary to promote", self.env))
    }
}

// Arguments of `vezasock canary` (a plain comment: a doc comment would replace the
// subcommand's about text).
#[derive(Debug, Clone, Args)]
pub struct CanaryArgs {
    /// The env, e.g. staging (1-64 characters of 0-9A-Za-z._-).
    #[arg(value_parser = Checked(parse_name))]
    pub env: String,
    /// The color to move users to (the idle one): blue or green.
    #[arg(required_unless_present_any = ["abort", "promote"], conflicts_with_all = ["abort", "promote"])]
    pub color: Option<Color>,
    /// Percents of the env's users on COLOR, rising, ending at 100 (at most 20 steps).
    #[arg(long, value_name = "P,P,…", value_delimiter = ',', default_value = "5,25,50,100", value_parser = clap::value_parser!(u8).range(1..=100))]
    pub steps: Vec<u8>,
    /// How long each step runs before its analysis (e.g. 30s; at most 7d).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = Checked(parse_duration))]
    pub interval: Duration,
    /// The 5xx share on COLOR, above the old color's own, that aborts (percent: 1% or 0.5).
    #[arg(long, value_name = "PERCENT", default_value = "1%", value_parser = Checked(parse_percent))]
    pub max_error_rate: f64,
    /// Fewer responses on COLOR in a step is inconclusive: it waits, up to 3 intervals.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MIN_REQUESTS, value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    pub min_requests: u64,
    /// The deployed commit, recorded in the history by the final switch.
    #[arg(long, value_parser = Checked(parse_sha))]
    pub sha: Option<String>,
    /// Stop the env's canary (from another shell): back to 0 %, one map change.
    #[arg(long, conflicts_with = "promote")]
    pub abort: bool,
    /// Skip the env's running canary to 100 % (from another shell); it then ends as a switch.
    #[arg(long)]
    pub promote: bool,
    #[command(flatten)]
    pub lock: LockArgs,
    /// Print a JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub fleet: super::fleet::FleetArgs,
    #[command(flatten)]
    pub topology: TopologyArgs,
}

/// Runs `vezasock canary`.
pub fn run(args: &CanaryArgs) -> ExitCode {
    if let Some(fleet) = &args.fleet.fleet {
        return run_fleet(args, fleet);
    }
    let (rt, edge) = match runtime_and_edge("canary", &args.topology) {
        Ok(both) => both,
        Err(exit) => return exit.into(),
    };
    let code = run_on(args, &rt, &edge);
    after(&rt, &edge, "canary");
    code
}

/// The end of `--promote` (on one edge or on a fleet): `Some(color)` promoted, `None` no canary
/// to promote (exit 1).
fn promoted(json: bool, env: &str, result: Result<Option<Color>, EdgeError>) -> ExitCode {
    let control = result.map(|color| Control {
        env: env.to_string(),
        action: "promote",
        changed: color.is_some(),
        promoted: color,
    });
    finish("canary", json, control.map_err(Failed::from))
}

/// The end of `--abort` (on one edge or on a fleet): true when there was a canary.
fn aborted(json: bool, env: &str, result: Result<bool, EdgeError>) -> ExitCode {
    let control = result.map(|had| Control {
        env: env.to_string(),
        action: "abort",
        changed: had,
        promoted: None,
    });
    finish("canary", json, control.map_err(Failed::from))
}

/// The request of a canary from the flags.
fn request(args: &CanaryArgs, color: Color, who: String) -> CanaryRequest {
    CanaryRequest {
        env: args.env.clone(),
        color,
        steps: args.steps.clone(),
        interval: args.interval,
        limits: Limits {
            max_error_rate: args.max_error_rate,
            min_requests: args.min_requests,
        },
        sha: args.sha.clone(),
        lock_wait: args.lock.lock_wait(),
        who,
    }
}

/// `vezasock canary` once the edge is loaded: a canary, `--promote` or `--abort`.
fn run_on(args: &CanaryArgs, rt: &tokio::runtime::Runtime, edge: &crate::edge::Edge) -> ExitCode {
    let who = crate::state::who();
    let wait = args.lock.lock_wait();
    if args.promote {
        let r = rt.block_on(promote_from_outside(edge, &args.env, &who, wait));
        return promoted(args.json, &args.env, r);
    }
    let Some(color) = args.color.filter(|_| !args.abort) else {
        let r = rt.block_on(abort_from_outside(edge, &args.env, &who, wait));
        return aborted(args.json, &args.env, r);
    };
    let req = request(args, color, who);
    let json = args.json;
    let result = rt.block_on(canary(edge, &req, &mut |line| {
        if !json {
            output::line(line);
        }
    }));
    finish("canary", json, result.map_err(Failed::from))
}

impl Report for FleetCanaryReport {
    type Json<'a> = WithOk<'a, FleetCanaryReport>;

    fn json(&self) -> WithOk<'_, FleetCanaryReport> {
        WithOk::of(self)
    }

    /// The steps were printed as they happened; then the fleet switch's edges and the end.
    fn human(&self) -> String {
        let mut text = self.switch.as_ref().map(Report::human).unwrap_or_default();
        for note in &self.notes {
            text.push_str(&format!("{note}\n"));
        }
        text.push_str(&format!(
            "{} promoted {} → {} on {} edge(s) through {} step(s) (no reload)\n",
            self.env,
            self.from,
            self.to,
            self.edges.len(),
            self.steps.len() + 1
        ));
        text
    }
}

/// `vezasock canary --fleet F …`: the canary, `--promote` or `--abort` on every edge; then
/// each local edge's metrics textfile is rewritten, as after every fleet command.
fn run_fleet(args: &CanaryArgs, path: &std::path::Path) -> ExitCode {
    let exit = run_fleet_command(args, path);
    super::fleet::after_fleet("canary", path, &args.topology);
    exit
}

fn run_fleet_command(args: &CanaryArgs, path: &std::path::Path) -> ExitCode {
    let who = crate::state::who();
    let wait = args.lock.lock_wait();
    let env = args.env.as_str();
    let json = args.json;
    if args.promote {
        let result = on_fleet("canary", path, &args.topology, async |_, members| {
            promote_fleet(members, env, wait, &who).await
        });
        return match result {
            Ok(r) => promoted(json, env, r),
            Err(exit) => exit.into(),
        };
    }
    let Some(color) = args.color.filter(|_| !args.abort) else {
        let result = on_fleet("canary", path, &args.topology, async |_, members| {
            abort_fleet(members, env, wait, &who).await
        });
        return match result {
            Ok(r) => aborted(json, env, r),
            Err(exit) => exit.into(),
        };
    };
    let req = request(args, color, who);
    let result = on_fleet("canary", path, &args.topology, async |fleet, members| {
        fleet_canary(fleet, members, &req, &mut |line| {
            if !json {
                output::line(line);
            }
        })
        .await
    });
    match result {
        Ok(result) => finish("canary", json, result.map_err(Failed::from)),
        Err(exit) => exit.into(),
    }
}
