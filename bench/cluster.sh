#!/usr/bin/env bash
# KV PUT throughput and latency of a 3-server proconsul cluster, side by side with a 3-member
# etcd cluster doing the same work on the same machine (same run, same load generator).
#
#   bash bench/cluster.sh [BINARY] [SECONDS]
#
# Needs wrk and etcd (apt-get install -y wrk etcd-server). proconsul: servers on
# 127.0.0.61-63 (default ports, -bootstrap-expect=3, durable redb logs in a temp dir), load on
# the leader's HTTP API. etcd: members on 127.0.0.1:23{79,80}, 127.0.0.1:33{79,80},
# 127.0.0.1:43{79,80}, load on the leader's v3 JSON gateway. wrk: 2 threads, 64 connections,
# 1,000 keys. Prints figures only; never a pass/fail.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/proconsul}
SECS=${2:-10}
command -v wrk >/dev/null || { echo "needs wrk: apt-get install -y wrk" >&2; exit 2; }
command -v etcd >/dev/null || { echo "needs etcd: apt-get install -y etcd-server" >&2; exit 2; }
[[ -x $BIN ]] || cargo build --release -p proconsul
WORK=$(mktemp -d)
PIDS=()
trap 'kill -9 "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT

report() { grep -E 'Requests/sec|Latency  |99%|Non-2xx' | sed 's/^/  /'; }

echo "=== proconsul: 3 servers"
for i in 1 2 3; do
  "$BIN" agent -server -bootstrap-expect=3 -node="s$i" -bind="127.0.0.6$i" -client="127.0.0.6$i" \
    -data-dir="$WORK/p$i" -retry-join=127.0.0.61 -retry-interval=1s -log-level=warn \
    >"$WORK/p$i.log" 2>&1 &
  PIDS+=($!)
done
leader=""
for _ in $(seq 1 300); do
  leader=$(curl -sf 127.0.0.61:8500/v1/status/leader | tr -d '"' | cut -d: -f1) && [[ -n $leader ]] && break
  sleep 0.1
done
[[ -n $leader ]] || { echo "no leader"; exit 1; }
until [[ $(curl -sf "$leader:8500/v1/status/peers" | grep -o 8300 | wc -l) == 3 ]]; do sleep 0.1; done
echo "leader: $leader"
wrk -t2 -c64 -d"${SECS}s" --latency -s bench/kv_put.lua "http://$leader:8500" | report
kill -9 "${PIDS[@]}"; wait 2>/dev/null || true; PIDS=()

echo "=== etcd $(etcd --version | head -n 1 | awk '{print $3}'): 3 members"
cluster="e1=http://127.0.0.1:2380,e2=http://127.0.0.1:3380,e3=http://127.0.0.1:4380"
for i in 1 2 3; do
  p=$((i + 1))
  etcd --name "e$i" --data-dir "$WORK/e$i" \
    --listen-client-urls "http://127.0.0.1:${p}379" --advertise-client-urls "http://127.0.0.1:${p}379" \
    --listen-peer-urls "http://127.0.0.1:${p}380" --initial-advertise-peer-urls "http://127.0.0.1:${p}380" \
    --initial-cluster "$cluster" --initial-cluster-state new --log-level error \
    >"$WORK/e$i.log" 2>&1 &
  PIDS+=($!)
done
eleader=""
for _ in $(seq 1 300); do
  for p in 2 3 4; do
    if curl -sf -X POST "127.0.0.1:${p}379/v3/maintenance/status" -d '{}' | python3 -c '
import json,sys; s=json.load(sys.stdin); sys.exit(0 if s.get("leader") == s["header"].get("member_id") else 1)' 2>/dev/null; then
      eleader="127.0.0.1:${p}379"; break 2
    fi
  done
  sleep 0.1
done
[[ -n $eleader ]] || { echo "no etcd leader"; exit 1; }
echo "leader: $eleader"
wrk -t2 -c64 -d"${SECS}s" --latency -s bench/etcd_put.lua "http://$eleader" | report
