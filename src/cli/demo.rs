//! `vezasock demo`: the README's first command. Starts a real local edge (the embedded veza
//! topology, loopback backends, HAProxy from PATH or the project's cache, installed by the
//! embedded install script when there is none), puts a bounded load
//! on it, flips staging and prod through the same code CI uses, drains the old colors, and
//! prints a summary (`--json` for a machine). Everything it started is stopped when it ends,
//! also on Ctrl-C.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::exit::Exit;
use super::servers::parse_duration;
use crate::demo::run::{run as run_demo, DemoError, DemoOptions, DemoSummary};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Number of flips (alternating staging and prod).
    #[arg(long, default_value_t = 8)]
    pub flips: usize,
    /// Upper bound on the run (e.g. 20s, 1m).
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Load clients of each kind (keep-alive, new connection per request).
    #[arg(long, default_value_t = 3)]
    pub clients: usize,
    /// Keep the edge's files in DIR (default: a temp dir, removed at the end).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Print the summary as JSON (progress lines are not printed).
    #[arg(long)]
    pub json: bool,
    /// When no HAProxy is found, fail (exit 3) instead of installing HAProxy 3.2 into
    /// ~/.cache/vezasock/haproxy with the embedded scripts/install-haproxy.sh.
    #[arg(
        long,
        env = "VEZASOCK_NO_INSTALL",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::FalseyValueParser::new()
    )]
    pub no_install: bool,
}

pub fn run(args: &DemoArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vezasock demo: cannot start the async runtime: {e}");
            return Exit::Unreachable.into();
        }
    };
    let opts = DemoOptions {
        flips: args.flips.min(10_000),
        duration: args.duration,
        clients: args.clients.clamp(1, 64),
        dir: args.dir.clone(),
        verbose: !args.json,
        install: !args.no_install,
    };
    let json = args.json;
    let outcome = runtime.block_on(async {
        let mut say = |line: &str| {
            if !json {
                println!("{line}");
            }
        };
        tokio::select! {
            r = run_demo(&opts, &mut say) => Some(r),
            // Dropping the scenario stops the load and kills HAProxy and the backends.
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    match outcome {
        None => {
            eprintln!("vezasock demo: interrupted; every process it started was stopped");
            ExitCode::from(130)
        }
        Some(Err(e)) => {
            eprintln!("vezasock demo: {e}");
            match e {
                DemoError::NoHaproxy(_) => Exit::Unreachable.into(),
                DemoError::Edge(e) => e.exit().into(),
                _ => Exit::Unreachable.into(),
            }
        }
        Some(Ok(summary)) => {
            print_summary(&summary, json);
            if summary.ok() {
                Exit::Ok.into()
            } else {
                Exit::NotVerified.into()
            }
        }
    }
}

fn print_summary(s: &DemoSummary, json: bool) {
    if json {
        match serde_json::to_string_pretty(s) {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("vezasock demo: cannot encode JSON: {e}"),
        }
        return;
    }
    println!();
    println!("summary");
    println!(
        "  requests sent     {} ({} keep-alive, {} new-connection)",
        s.requests_sent, s.keepalive.sent, s.new_connection.sent
    );
    println!("  failed requests   {}", s.failed_requests);
    for f in &s.failures {
        println!("    {f}");
    }
    println!("  flips             {}", s.flips);
    println!("  reloads           {}", s.reloads);
    println!(
        "  flip latency      p50 {:.2} ms · p99 {:.2} ms · max {:.2} ms (whole switch: lock, gate, write-through, flip, read-back)",
        s.flip_latency.p50_ms, s.flip_latency.p99_ms, s.flip_latency.max_ms
    );
    println!(
        "  worker PID        {} before, {} after",
        s.worker_pid_before, s.worker_pid_after
    );
    println!(
        "  final colors      {}",
        s.final_colors
            .iter()
            .map(|(e, c)| format!("{e}={c}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "  {}",
        if s.ok() {
            "OK: zero failed requests, zero reloads, same worker"
        } else {
            "NOT OK: see above"
        }
    );
}
