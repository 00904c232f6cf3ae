#!/usr/bin/env bash
# Blocking queries at scale: the agent's RSS per open blocking query, and the wake-up of the
# queries that watch what a write changed (and of no others).
#
#   bash bench/blocking.sh [BINARY] [CHECKPOINTS] [MODE]
#   bash bench/blocking.sh target/release/proconsul 5000,20000,100000 kv
#
# Starts `proconsul agent -dev` on 127.0.0.1:18540 with no per-client connection limit, then
# runs examples/watchers: 1,000 targets (KV keys, or services with one check each: MODE=health,
# or both: mixed), queries opened up to each checkpoint, one keep-alive connection each from
# 127.0.0.2, .3, … (10,000 per source address), the agent's RSS printed at each checkpoint;
# then 20 targets are changed one at a time and their watchers' wake-ups timed. Both processes
# hold one descriptor per query: `ulimit -n` is raised as far as the hard limit allows (raising
# that needs CAP_SYS_RESOURCE). Prints figures only; never a pass/fail.
#
# The allocator is not where a parked query's memory goes: with glibc, MALLOC_ARENA_MAX=2 or
# GLIBC_TUNABLES=glibc.malloc.trim_threshold=0 in this script's environment (the agent inherits
# it) change the RSS per query by under 1% (13.6 KB per KV query either way, 5,000 queries). To
# see what holds it, run the agent under `heaptrack` and read `heaptrack_print` with
# `--print-flamegraph F --flamegraph-cost-type peak`: per parked query, hyper's 8 KiB read
# buffer and 8 KiB header write buffer (its floor while it holds the connection), the request's
# boxed handler future, the connection's task.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/proconsul}
CHECKPOINTS=${2:-5000,20000}
MODE=${3:-kv}
LAST=${CHECKPOINTS##*,}
ulimit -n $(( LAST + 1000 )) 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if (( $(ulimit -n) < LAST + 100 )); then
  echo "ulimit -n is $(ulimit -n): fewer than $LAST queries will open" >&2
fi
[[ -x $BIN ]] || cargo build --release -p proconsul
# Its own target dir: built alone, tokio's feature set differs from the workspace's.
cargo build --release -q -p proconsul-example-watchers --target-dir target/bench

WORK=$(mktemp -d)
trap 'kill $PID 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
cat >"$WORK/config.json" <<JSON
{ "ports": { "http": 18540, "dns": -1, "grpc": -1, "serf_lan": 18543, "serf_wan": -1, "server": 18544 },
  "limits": { "http_max_conns_per_client": 0 } }
JSON
"$BIN" agent -dev -log-level=warn -config-file="$WORK/config.json" >"$WORK/log" 2>&1 &
PID=$!
until curl -sf localhost:18540/v1/status/leader | grep -q 18544; do
  kill -0 $PID 2>/dev/null || { cat "$WORK/log"; exit 1; }
  sleep 0.05
done
sleep 1
echo "binary: $BIN ($(git rev-parse --short HEAD 2>/dev/null || echo ?)), ulimit -n $(ulimit -n)"
echo "idle RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/$PID/status)"
target/bench/release/watchers --addr 127.0.0.1:18540 --pid "$PID" --n "$CHECKPOINTS" --mode "$MODE" --targets 1000 --changes 20
