#!/usr/bin/env bash
# Memory per registered service instance: `proconsul agent -dev`, 30,000 instances on 10,000
# nodes with one check each, registered through /v1/catalog/register (8 connections); prints the
# agent's RSS before and after and the bytes per instance.
#
#   bash bench/instances.sh [BINARY] [INSTANCES]
#
# Everything an instance costs counts: the state store's records and indexes, the Raft log's
# entries not yet compacted into a snapshot, and allocator slack. Prints figures only.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/proconsul}
N=${2:-30000}
[[ -x $BIN ]] || cargo build --release -p proconsul
WORK=$(mktemp -d)
trap 'kill $PID 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
cat >"$WORK/config.json" <<JSON
{ "ports": { "http": 18541, "dns": -1, "grpc": -1 },
  "limits": { "http_max_conns_per_client": 0 } }
JSON
"$BIN" agent -dev -log-level=warn -config-file="$WORK/config.json" >"$WORK/log" 2>&1 &
PID=$!
until curl -sf localhost:18541/v1/status/leader | grep -q 8300; do
  kill -0 $PID 2>/dev/null || { cat "$WORK/log"; exit 1; }
  sleep 0.05
done
sleep 1
echo "binary: $BIN ($(git rev-parse --short HEAD 2>/dev/null || echo ?))"
python3 bench/instances.py 127.0.0.1:18541 "$PID" "$N" 3
