#!/usr/bin/env bash
# A long seeded chaos run (issue 20; integration/chaos/mod.rs): three real edges of one HAProxy
# version (one over the project's sshd), random operations and faults, every invariant checked
# after every step. The test command runs a short one per version; this runs long ones.
#
# Usage: scripts/chaos.sh [STEPS [VERSION [SEED]]]
#   STEPS    steps per run (default 10000)
#   VERSION  2.6, 3.0, 3.2 or 3.4 (default: every version, one after the other)
#   SEED     replays a run (default: a new seed per run, printed first)
# Env: VEZASOCK_CHAOS_KINDS=switch,edge-agent,... draws only those kinds of steps (every kind
#      is listed in docs/chaos.md; the fault kinds: socket-fault, full-state-dir,
#      fleet-socket-fault, fleet-full-state-dir, master-fault);
#      VEZASOCK_CHAOS_VERBOSE=1 prints each step and its exit codes as it ends.
# A broken invariant stops the run with the seed, the step, the last steps and the invariant,
# and copies the lab's files to $TMPDIR/vezasock-chaos-<version>-<seed>-<pid>.
set -euo pipefail
cd "$(dirname "$0")/.."

steps="${1:-10000}"
versions="${2:-2.6 3.0 3.2 3.4}"
while IFS= read -r line; do
  case "$line" in VEZASOCK_HAPROXY_*=* | VEZASOCK_SSHD=*) export "${line?}" ;; esac
done < <(scripts/install-haproxy.sh)
export VEZASOCK_REQUIRE_ALL_VERSIONS=1 VEZASOCK_CHAOS_STEPS="$steps"
if [ -n "${3:-}" ]; then export VEZASOCK_CHAOS_SEED="$3"; fi

cargo test --locked --test integration --no-run
for v in $versions; do
  case="chaos::a_seeded_chaos_run_keeps_every_invariant::v${v/./_}"
  echo "chaos: HAProxy $v, $steps steps" >&2
  cargo test --locked --test integration "$case" -- --exact --nocapture --test-threads 1
done
