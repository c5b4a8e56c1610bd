//! `VEZASOCK_BENCH_BASELINE=PATH`: another build's `vezasock` binary (e.g. an older commit's
//! release build) run beside this one in the same rounds, by part 7 (one edge) and part 6 (a
//! fleet). Both take the ratio pair by pair ([`super::p50_ratio`]): on this shared machine a
//! busy second lands on both builds of a pair, not on one build's whole series.

use std::path::{Path, PathBuf};

use super::support::run::Vezasock;

/// Which `vezasock` binary runs a command.
#[derive(Debug, Clone, Copy)]
pub enum Build<'a> {
    /// This build's (`CARGO_BIN_EXE_vezasock`).
    This,
    /// The baseline's (`VEZASOCK_BENCH_BASELINE`).
    Baseline(&'a Path),
}

impl Build<'_> {
    /// `vezasock ARGS` of this build, with nothing from the caller's environment pointing it at
    /// an edge (`support::run`).
    pub fn command(self, args: &[&str]) -> Vezasock {
        match self {
            Build::This => Vezasock::new(args),
            Build::Baseline(program) => Vezasock::program(program, args),
        }
    }

    /// `vezasock` or `baseline`, for error messages.
    pub fn name(self) -> &'static str {
        match self {
            Build::This => "vezasock",
            Build::Baseline(_) => "baseline",
        }
    }
}

/// The baseline binary, when `VEZASOCK_BENCH_BASELINE` names one.
pub fn program() -> Option<PathBuf> {
    std::env::var_os("VEZASOCK_BENCH_BASELINE")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
}

/// The builds of one round, the order alternating with `round` so neither always runs right
/// after the other: this build alone without a baseline.
pub fn round(round: usize, baseline: Option<&Path>) -> Vec<Build<'_>> {
    match baseline {
        None => vec![Build::This],
        Some(b) if round % 2 == 0 => vec![Build::This, Build::Baseline(b)],
        Some(b) => vec![Build::Baseline(b), Build::This],
    }
}
