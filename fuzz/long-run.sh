#!/usr/bin/env bash
# The long runs behind the figures in fuzz/README.md: every target (or those named) for RUNS
# inputs (1,000,000), or for MAX_SECONDS each when that is set, one after another, one core each, from fuzz/corpus/<target> (kept between
# runs, not committed) plus the committed seeds. Prints one Markdown table row per target:
# target | runs | wall time | exec/s | coverage (edges) | features | peak RSS | result.
# A crash, hang (10 s per input) or out-of-memory (2 GB) fails the target; its input is kept
# in fuzz/artifacts/<target>/. Run `cargo fuzz build -s none` first (RUSTC_BOOTSTRAP=1).
set -uo pipefail
cd "$(dirname "$0")" || exit 1
RUNS=${RUNS:-1000000}
limit=(-runs="$RUNS")
[[ -n ${MAX_SECONDS:-} ]] && limit=(-max_total_time="$MAX_SECONDS")
bin=target/x86_64-unknown-linux-gnu/release
targets=("$@")
((${#targets[@]})) || mapfile -t targets < <(RUSTC_BOOTSTRAP=1 cargo fuzz list)
status=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  log=$(mktemp)
  start=$(date +%s.%N)
  "$bin/$t" "${limit[@]}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="artifacts/$t/" "corpus/$t" "seeds/$t" >"$log" 2>&1
  rc=$?
  wall=$(echo "$(date +%s.%N) - $start" | bc)
  stat() { grep -o "stat::$1: *[0-9]*" "$log" | grep -o '[0-9]*$'; }
  last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]*' <<<"$last" | grep -o '[0-9]*')
  ft=$(grep -o 'ft: [0-9]*' <<<"$last" | grep -o '[0-9]*')
  result=ok
  if ((rc != 0)); then
    result="FAILED (rc $rc, see artifacts/$t/)"
    status=1
    cp "$log" "artifacts/$t/log.txt"
  fi
  printf '| %s | %s | %.0f s | %s | %s | %s | %s MB | %s |\n' "$t" "$(stat number_of_executed_units)" \
    "$wall" "$(stat average_exec_per_sec)" "$cov" "$ft" "$(stat peak_rss_mb)" "$result"
  rm -f "$log"
done
exit "$status"
