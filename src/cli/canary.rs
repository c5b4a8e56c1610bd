//! `vezasock canary ENV COLOR --steps 5,25,50,100 --interval 30s`: one human line per step and
//! analysis, then the switch that ends it; `--abort` / `--promote` from another shell; or one
//! JSON object (`{ok: true, …report}`, `{ok: false, error, exit}`, `{env, action, changed}`).

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde::Serialize;

use super::args::{parse_duration, parse_name, parse_sha, Checked, LockArgs, TopologyArgs};
use super::common::{after, fail, runtime_and_edge};
use super::exit::Exit;
use super::finish::{finish, Failed, Report, WithOk};
use super::output;
use super::switch::parse_percent;
use crate::edge::analysis::{Limits, DEFAULT_MIN_REQUESTS};
use crate::edge::deploy::canary::{
    abort_from_outside, canary, promote_from_outside, CanaryReport, CanaryRequest,
};
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

/// `--abort` / `--promote` with `--json`.
#[derive(Serialize)]
struct JsonControl<'a> {
    env: &'a str,
    action: &'static str,
    /// False when the env had no canary (nothing to abort or promote).
    changed: bool,
}

/// Prints `--json` of `--abort` / `--promote`.
fn control(json: bool, env: &str, action: &'static str, changed: bool) {
    if json {
        output::json(&JsonControl {
            env,
            action,
            changed,
        });
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
    pub topology: TopologyArgs,
}

/// Runs `vezasock canary`.
pub fn run(args: &CanaryArgs) -> ExitCode {
    let (rt, edge) = match runtime_and_edge("canary", &args.topology) {
        Ok(both) => both,
        Err(exit) => return exit.into(),
    };
    let code = run_on(args, &rt, &edge);
    after(&rt, &edge, "canary");
    code
}

/// `vezasock canary` once the edge is loaded: a canary, `--promote` or `--abort`.
fn run_on(args: &CanaryArgs, rt: &tokio::runtime::Runtime, edge: &crate::edge::Edge) -> ExitCode {
    let who = crate::state::who();
    if args.promote {
        return match rt.block_on(promote_from_outside(
            edge,
            &args.env,
            &who,
            args.lock.lock_wait(),
        )) {
            Ok(Some(color)) => {
                control(args.json, &args.env, "promote", true);
                if !args.json {
                    output::line(&format!(
                        "the canary of {} is at 100 % ({color}); the running canary ends it as a switch",
                        args.env
                    ));
                }
                Exit::Ok.into()
            }
            Ok(None) => {
                control(args.json, &args.env, "promote", false);
                eprintln!("vezasock canary: {} has no canary to promote", args.env);
                Exit::Refused.into()
            }
            Err(e) => fail("canary", &e).into(),
        };
    }
    let Some(color) = args.color.filter(|_| !args.abort) else {
        return match rt.block_on(abort_from_outside(
            edge,
            &args.env,
            &who,
            args.lock.lock_wait(),
        )) {
            Ok(aborted) => {
                control(args.json, &args.env, "abort", aborted);
                if !args.json {
                    output::line(&if aborted {
                        format!("the canary of {} was aborted: 0 %", args.env)
                    } else {
                        format!("{} has no canary: nothing to abort", args.env)
                    });
                }
                Exit::Ok.into()
            }
            Err(e) => fail("canary", &e).into(),
        };
    };
    let req = CanaryRequest {
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
    };
    let json = args.json;
    let result = rt.block_on(canary(edge, &req, &mut |line| {
        if !json {
            output::line(line);
        }
    }));
    finish("canary", json, result.map_err(Failed::from))
}
