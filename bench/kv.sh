#!/usr/bin/env bash
# KV throughput of `proconsul agent -dev`, plus its time-to-serving and idle RSS.
#
#   bash bench/kv.sh [BINARY] [SECONDS]
#   MODE=server bash bench/kv.sh     # a durable single server (redb log, fsync per batch)
#
# Needs wrk (apt-get install -y wrk) and curl. Runs wrk with 2 threads and 64 connections for
# PUT then GET, against an agent on 127.0.0.1:18500. Prints figures only; never a pass/fail.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/proconsul}
SECS=${2:-10}
source bench/lib.sh
bench_need wrk curl
[[ -x $BIN ]] || cargo build --release -p proconsul
WORK=$(mktemp -d)
trap 'kill $PID 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
cat >"$WORK/ports.json" <<JSON
{ "ports": { "http": 18500, "dns": -1, "grpc": -1 } }
JSON

t0=$(date +%s%N)
bench_start_single "$WORK/ports.json" "$WORK/log" "$WORK/data" 18500 8300
t1=$(date +%s%N)
echo "mode: ${MODE:-dev}"
echo "time to serving (leader known over HTTP): $(( (t1 - t0) / 1000000 )) ms"
sleep 2
echo "idle RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/$PID/status)"

echo "--- PUT /v1/kv (64 connections, ${SECS}s)"
wrk -t2 -c64 -d"${SECS}s" -s bench/kv_put.lua http://127.0.0.1:18500 | grep -E 'Requests/sec|Latency|Non-2xx'
echo "--- GET /v1/kv (64 connections, ${SECS}s)"
wrk -t2 -c64 -d"${SECS}s" -s bench/kv_get.lua http://127.0.0.1:18500 | grep -E 'Requests/sec|Latency|Non-2xx'
echo "RSS after load: $(awk '/VmRSS/ {print $2, $3}' /proc/$PID/status)"
