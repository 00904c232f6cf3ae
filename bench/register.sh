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
command -v wrk >/dev/null || { echo "needs wrk: apt-get install -y wrk" >&2; exit 2; }
[[ -x $BIN ]] || cargo build --release -p proconsul
if curl -sf localhost:18502/v1/status/leader >/dev/null 2>&1; then
  echo "something already answers on 127.0.0.1:18502: stop it first" >&2; exit 1
fi
WORK=$(mktemp -d)
trap 'kill $PID 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
cat >"$WORK/ports.json" <<JSON
{ "ports": { "http": 18502, "dns": -1, "grpc": -1, "serf_lan": 18503, "serf_wan": -1, "server": 18504 } }
JSON
start() {
  rm -rf "$WORK/data"
  if [[ ${MODE:-dev} == server ]]; then
    "$BIN" agent -server -bootstrap-expect=1 -bind=127.0.0.1 -data-dir="$WORK/data" -log-level=warn \
      -config-file="$WORK/ports.json" >"$WORK/log" 2>&1 &
  else
    "$BIN" agent -dev -log-level=warn -config-file="$WORK/ports.json" >"$WORK/log" 2>&1 &
  fi
  PID=$!
  until curl -sf localhost:18502/v1/status/leader | grep -q 18504; do sleep 0.01; done
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
