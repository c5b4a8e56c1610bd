//! `vezasock txn prepare|commit|abort`: one edge's half of a transaction over several edges,
//! for an Ansible play or a script (prepare on every host, then commit on every host). The
//! fleet coordinator (`--fleet`) runs the same steps itself ([`crate::edge::flip::transaction`]).

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::after::after;
use super::args::{parse_duration, parse_name, parse_sha, Checked, LockArgs, TopologyArgs};
use super::common::runtime_and_edge;
use super::exit::Exit;
use super::finish::{finish, Failed, Report, WithOk};
use super::output;
use crate::edge::deploy::switch::SwitchRequest;
use crate::edge::flip::transaction::{self, Held, TxnReport};
use crate::edge::flip::txn_machine::{self, Phase as TxnPhase};
use crate::edge::EdgeError;
use crate::state::Transaction;
use crate::topology::Color;

// Arguments of `vezasock txn` (plain comments: see `cli::Command`).
#[derive(Debug, Clone, Args)]
pub struct TxnArgs {
    #[command(subcommand)]
    pub step: TxnStep,
}

#[derive(Debug, Clone, Subcommand)]
pub enum TxnStep {
    /// Stage a flip of ENV to COLOR under --id: locked, gated, journalled, the new map version
    /// staged and read back, nothing live changed.
    Prepare(PrepareArgs),
    /// Commit the prepared transaction --id: `commit map`, read back, recorded.
    Commit(StepArgs),
    /// Abort the transaction --id: a prepared one's staged version and pending file dropped;
    /// one whose commit started is undone (the runtime read and put back, the map file
    /// restored).
    Abort(StepArgs),
}

#[derive(Debug, Clone, Args)]
pub struct PrepareArgs {
    /// The env to flip (1-64 characters of 0-9A-Za-z._-).
    #[arg(value_parser = Checked(parse_name))]
    pub env: String,
    /// The color it flips to at the commit: blue or green.
    pub color: Color,
    /// The transaction id the commit or abort names (1-64 of A-Z a-z 0-9 _ . -).
    #[arg(long, value_parser = Checked(parse_id))]
    pub id: String,
    /// How long the prepared transaction holds the edge without its commit; then the next
    /// change on the edge aborts it (at most 1h).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = Checked(parse_expiry))]
    pub expires: Duration,
    /// The deployed commit, recorded in the history at the commit.
    #[arg(long, value_parser = Checked(parse_sha))]
    pub sha: Option<String>,
    /// Wait up to DURATION for every server of the target color to be UP.
    #[arg(long, value_name = "DURATION", value_parser = Checked(parse_duration))]
    pub wait_healthy: Option<Duration>,
    #[command(flatten)]
    pub lock: LockArgs,
    /// Print a JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub topology: TopologyArgs,
}

#[derive(Debug, Clone, Args)]
pub struct StepArgs {
    /// The transaction id given to `txn prepare`.
    #[arg(long, value_parser = Checked(parse_id))]
    pub id: String,
    #[command(flatten)]
    pub lock: LockArgs,
    /// Print a JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub topology: TopologyArgs,
}

/// The longest `--expires` (a prepared transaction holds the edge that long at most).
pub const MAX_EXPIRES: Duration = transaction::MAX_TTL;

pub(crate) fn parse_id(s: &str) -> Result<String, String> {
    crate::state::transaction::check_id(s)
        .map(|()| s.to_string())
        .map_err(|e| e.to_string())
}

pub(crate) fn parse_expiry(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_secs(1) || d > MAX_EXPIRES {
        return Err(format!("{s:?}: from 1s to 1h"));
    }
    Ok(d)
}

/// Runs `vezasock txn …`.
pub fn run(args: &TxnArgs) -> ExitCode {
    match &args.step {
        TxnStep::Prepare(a) => run_prepare(a),
        TxnStep::Commit(a) => run_step(a, Step::Commit),
        TxnStep::Abort(a) => run_step(a, Step::Abort),
    }
}

fn run_prepare(args: &PrepareArgs) -> ExitCode {
    let (rt, edge) = match runtime_and_edge("txn prepare", &args.topology) {
        Ok(both) => both,
        Err(exit) => return exit.into(),
    };
    let mut req = SwitchRequest::new(&args.env, args.color);
    req.sha = args.sha.clone();
    req.wait_healthy = args.wait_healthy;
    req.lock_wait = args.lock.lock_wait();
    let result = rt.block_on(async {
        let prepared = transaction::prepare(&edge, &req, &args.id, args.expires).await?;
        let detail = format!(
            "staged as map version {}; expires in {} s unless committed",
            prepared.txn.version,
            args.expires.as_secs()
        );
        Ok(TxnReport::of(&prepared.txn, "prepared", detail))
    });
    after(&rt, &edge, "txn prepare");
    print("txn prepare", args.json, result)
}

#[derive(Clone, Copy)]
enum Step {
    Commit,
    Abort,
}

fn run_step(args: &StepArgs, step: Step) -> ExitCode {
    let name = match step {
        Step::Commit => "txn commit",
        Step::Abort => "txn abort",
    };
    let (rt, edge) = match runtime_and_edge(name, &args.topology) {
        Ok(both) => both,
        Err(exit) => return exit.into(),
    };
    if matches!(step, Step::Abort) {
        // Abort is idempotent: a script aborts on every edge, prepared there or not.
        match edge.state.open_transaction() {
            Ok(Some(txn)) if txn.id == args.id => {}
            Ok(other) => {
                let left = other
                    .map(|t| format!("; the open one, {}, is left alone", t.id))
                    .unwrap_or_default();
                let line = format!(
                    "no open transaction {} on this edge: nothing to abort{left}",
                    args.id
                );
                if args.json {
                    output::json(
                        &serde_json::json!({"ok": true, "id": args.id, "result": "nothing", "detail": line}),
                    );
                } else {
                    output::line(&line);
                }
                return Exit::Ok.into();
            }
            Err(e) => return super::common::fail(name, &e.into()).into(),
        }
    }
    let result = rt.block_on(async {
        let txn = transaction::open(&edge, &args.id)?;
        if matches!(step, Step::Commit) && transaction::expired(&txn) {
            return Err(EdgeError::Refused(format!(
                "transaction {} expired before its commit; the next change on this edge aborts \
                 it (`vezasock txn abort --id {}` does it now); nothing was changed",
                txn.id, txn.id
            )));
        }
        let req = transaction::request(&txn, args.lock.lock_wait())?;
        let prepared = transaction::resume(&edge, &req).await?;
        let txn = prepared.txn.clone();
        let phase = prepared.phase();
        let mut held = Held::Prepared(Box::new(prepared));
        match step {
            Step::Commit => commit(&mut held, phase, &txn).await,
            Step::Abort => abort(&mut held, phase, &txn).await,
        }
    });
    after(&rt, &edge, name);
    print(name, args.json, result)
}

/// The commit's steps in order, each checked against the phase the transaction is in (one
/// whose commit started elsewhere is refused: `txn abort` or `apply` puts it back).
async fn commit(
    held: &mut Held<'_>,
    mut phase: TxnPhase,
    txn: &Transaction,
) -> Result<TxnReport, EdgeError> {
    let mut line = String::new();
    for step in [
        txn_machine::Step::CommitDisk,
        txn_machine::Step::CommitRuntime,
        txn_machine::Step::Verify,
        txn_machine::Step::Record,
    ] {
        let (next, done) = txn_machine::run(held, phase, step, txn_machine::Args::default()).await;
        let done = done?;
        if step == txn_machine::Step::CommitRuntime {
            line = done.detail;
        }
        phase = next;
    }
    Ok(TxnReport::of(txn, "committed", line))
}

/// Abort: a prepared transaction's staged version and pending file dropped; one whose commit
/// started is undone (the runtime read and put back, the map file restored).
async fn abort(
    held: &mut Held<'_>,
    phase: TxnPhase,
    txn: &Transaction,
) -> Result<TxnReport, EdgeError> {
    let why = "aborted by `vezasock txn abort`";
    let args = txn_machine::Args {
        why,
        ..txn_machine::Args::default()
    };
    let (_, done) = txn_machine::run(held, phase, txn_machine::Step::Abort, args).await;
    let result = if phase.committing() {
        "undone"
    } else {
        "aborted"
    };
    Ok(TxnReport::of(txn, result, done?.detail))
}

impl Report for TxnReport {
    type Json<'a> = WithOk<'a, TxnReport>;

    fn json(&self) -> WithOk<'_, TxnReport> {
        WithOk::of(self)
    }

    fn human(&self) -> String {
        let noop = if self.noop {
            " (already live: no change)"
        } else {
            ""
        };
        format!(
            "transaction {} {}: {} {} → {}{noop}; {}\n",
            self.id, self.result, self.env, self.from, self.to, self.detail
        )
    }
}

fn print(command: &str, json: bool, result: Result<TxnReport, EdgeError>) -> ExitCode {
    finish(command, json, result.map_err(Failed::from))
}
