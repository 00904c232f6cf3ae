#!/usr/bin/env bash
# Registration throughput of `proconsul agent -dev`: agent-local registrations
# (PUT /v1/agent/service/register) and catalog registrations (PUT /v1/catalog/register), on one
# connection and on 64, each request a new service instance (bench/register.lua).
#
#   bash bench/register.sh [BINARY] [SECONDS]
#   MODE=server bash bench/register.sh   # a durable single server (redb log, fsync per batch)
#
# Needs wrk and curl. Prints figures only; never a pass/fail.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/proconsul}
SECS=${2:-10}
source bench/lib.sh
bench_need wrk curl
[[ -x $BIN ]] || cargo build --release -p proconsul
bench_port_free 18502
WORK=$(mktemp -d)
trap 'kill $PID 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
cat >"$WORK/ports.json" <<JSON
{ "ports": { "http": 18502, "dns": -1, "grpc": -1, "serf_lan": 18503, "serf_wan": -1, "server": 18504 } }
JSON
start() {
  rm -rf "$WORK/data"
  bench_start_single "$WORK/ports.json" "$WORK/log" "$WORK/data" 18502 18504
}
echo "proconsul $($BIN version | head -1), mode ${MODE:-dev}, $(nproc) cores"
for kind in agent catalog; do
  for conns in 1 64; do
    start
    threads=$(( conns < 2 ? 1 : 2 ))
    printf '%-8s %2d connection(s): ' "$kind" "$conns"
    KIND=$kind wrk -t"$threads" -c"$conns" -d"${SECS}s" --latency -s bench/register.lua \
      http://127.0.0.1:18502 | awk '/Requests\/sec/ {r=$2} / 50%/ {p50=$2} / 99%/ {p99=$2} /Non-2xx/ {e=$0}
        END {printf "%s req/s  p50 %s  p99 %s %s\n", r, p50, p99, e}'
    kill $PID; wait $PID 2>/dev/null || true
  done
done
