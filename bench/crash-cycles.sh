#!/usr/bin/env bash
# Crash cycles (#20): three release-built servers under concurrent KV writes and CAS
# increments; CYCLES times (100 by default) one random server — every tenth time all three —
# is killed with SIGKILL and started again on its data directory. Runs the process test
# `crash_cycles::kill_and_restart_under_writes` with PROCONSUL_CRASH_CYCLES set (CI runs it
# with 10) and prints its figures: cycles, writes acknowledged (all readable at the end),
# counters (final value, acknowledged and unanswered increments), recovery times. A lost or
# changed write, a counter that went backwards or a server that failed to start fails it,
# with the servers' logs.
#
#   bash bench/crash-cycles.sh [CYCLES]
set -euo pipefail
cd "$(dirname "$0")/.."
CYCLES=${1:-100}
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
status=0
PROCONSUL_CRASH_CYCLES=$CYCLES cargo test --release -p proconsul --test process \
  crash_cycles::kill_and_restart_under_writes -- --exact --nocapture >"$OUT" 2>&1 || status=$?
# The figures, or on failure the whole report (with the servers' logs).
if ((status == 0)); then grep -E '^crash cycles:|^test result' "$OUT"; else cat "$OUT"; fi
exit $status
