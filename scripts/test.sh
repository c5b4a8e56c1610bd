#!/usr/bin/env bash
# The test command (README, second command; .ci/run calls exactly this).
# On a fresh Debian machine: installs HAProxy 2.6 / 3.0 / 3.2 / 3.4 and the tools the tests use
# (scripts/install-haproxy.sh, cached between runs), then checks formatting and lints and runs
# the whole suite: unit, corpus, property, fault-injection and real-HAProxy integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# The install script prints VEZASOCK_HAPROXY_<v>=<path> (2_6 … 3_4) and VEZASOCK_SSHD=<path> lines last; export them.
while IFS= read -r line; do
  case "$line" in VEZASOCK_HAPROXY_*=* | VEZASOCK_SSHD=* | VEZASOCK_ANSIBLE=*) export "${line?}" ;; esac
done < <(scripts/install-haproxy.sh)

# CI must not pass by skipping a version.
export VEZASOCK_REQUIRE_ALL_VERSIONS=1

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
# The size targets of docs/development.md (no function over 150 lines, at most 5 over 100, at
# most 2 files over 800): a new long procedure fails here, not in a review.
scripts/sizes.sh
# Default targets: lib, bins, tests and doc tests; benchmarks are not tests (they run in `cargo bench`).
cargo test --locked -- --test-threads 2
