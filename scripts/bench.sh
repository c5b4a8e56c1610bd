#!/usr/bin/env bash
# Runs every vezasock benchmark and collects the results into docs/bench/results.md (and the
# flip-latency chart into docs/bench/flip-latency.svg):
#
#   cargo bench --bench client   runtime client: one-shot, round trips, pipelined batch, socat
#   cargo bench --bench parse    show stat / show servers state parser throughput
#   cargo bench --bench flip     vezasock switch vs reload flip vs socat (latency, failed
#                                requests under load, processes and memory), and the rendered
#                                config's keep-alive req/s vs a minimal one, per HAProxy version
#   cargo bench --bench scale    status and switch on synthetic edges of 10 to 500 envs
#
# Usage: scripts/bench.sh
# Env: VEZASOCK_BENCH_OUT (output dir, default docs/bench), VEZASOCK_BENCH_VERSIONS (e.g. 3.2),
# and each bench's own knobs (see the top of benches/*.rs). Each bench is bounded by a timeout;
# a bench that fails is reported in the results file with the end of its error output.
# Needs the HAProxy builds of scripts/install-haproxy.sh and socat (apt-get install socat).
set -euo pipefail

cd "$(dirname "$0")/.."
out="${VEZASOCK_BENCH_OUT:-docs/bench}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
export VEZASOCK_BENCH_OUT="$out"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

started=$(date -u +%s)
echo "building the benches (release)..." >&2
cargo bench --no-run --bench client --bench parse --bench flip --bench scale 2>"$tmp/build.err" \
  || { tail -n 40 "$tmp/build.err" >&2; exit 1; }

failed=0
for bench in client parse flip scale; do
  echo "== cargo bench --bench $bench" >&2
  t0=$(date -u +%s)
  if timeout 900 cargo bench --bench "$bench" >"$tmp/$bench.out" 2>"$tmp/$bench.err"; then
    echo "ok" >"$tmp/$bench.status"
  else
    echo "FAILED (exit $?)" >"$tmp/$bench.status"
    failed=1
  fi
  echo "$(( $(date -u +%s) - t0 ))" >"$tmp/$bench.secs"
  echo "   $(cat "$tmp/$bench.status") in $(cat "$tmp/$bench.secs") s" >&2
done

versions() {
  local label bin var
  for label in 2.6 3.0 3.2 3.4; do
    var="VEZASOCK_HAPROXY_${label/./_}"
    if [ "$label" = 2.6 ]; then bin="${!var:-/usr/sbin/haproxy}"
    else bin="${!var:-${HOME:-/root}/.cache/vezasock/haproxy/$label/usr/sbin/haproxy}"; fi
    if [ -x "$bin" ]; then echo "- $("$bin" -v 2>/dev/null | head -n 1)"; fi
  done
}

{
  echo "# vezasock benchmark results"
  echo
  echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- Commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- src benches templates 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "- Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')), Linux $(uname -r), $(free -g | awk '/^Mem:/ {print $2}') GB RAM"
  echo "- Toolchain: $(rustc --version)"
  echo "- socat: $(socat -V 2>/dev/null | grep -m1 'socat version' || echo 'not installed')"
  echo "- HAProxy versions installed:"
  versions | sed 's/^/  /'
  echo "- Command: \`scripts/bench.sh\` (each part alone: \`cargo bench --bench <name>\`); whole run took $(( $(date -u +%s) - started )) s"
  echo
  echo "![flip latency](flip-latency.svg)"
  echo
  for bench in client parse flip scale; do
    echo "<!-- cargo bench --bench $bench: $(cat "$tmp/$bench.status"), $(cat "$tmp/$bench.secs") s -->"
    if ! grep -q ok "$tmp/$bench.status"; then
      echo "## $bench: $(cat "$tmp/$bench.status")"
      echo
      echo '```text'
      tail -n 30 "$tmp/$bench.err"
      echo '```'
      echo
    fi
    if head -n 5 "$tmp/$bench.out" | grep -q '^#'; then
      cat "$tmp/$bench.out"
    elif [ -s "$tmp/$bench.out" ]; then
      echo "## $bench"
      echo
      echo '```text'
      cat "$tmp/$bench.out"
      echo '```'
    fi
    echo
  done
} >"$out/results.md.tmp"
mv "$out/results.md.tmp" "$out/results.md"
echo "wrote $out/results.md and $out/flip-latency.svg" >&2
exit "$failed"
