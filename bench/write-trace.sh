#!/usr/bin/env bash
# Where a lone write's time goes: p50/p99 of each step of a KV PUT on a 3-server cluster.
#
#   bash bench/write-trace.sh [BINARY] [WRITES]
#
# Starts 3 servers like bench/cluster.sh (durable redb logs in a temp dir, on ${NET}1-3,
# NET=127.0.0.6 by default) with PROCONSUL_WRITE_TRACE set, so each records the steps of every
# write with wall-clock timestamps (crates/raft/src/trace.rs; off and free without the
# variable). One client then PUTs WRITES (default 3000) values one after another on one
# keep-alive connection, and bench/write_trace.py lines the client's send/reply times up with
# the servers' records by log index. Prints figures only; never a pass/fail. KEEP=1 keeps the
# records (the directory is printed); WRK=SECONDS drives the writes with wrk's one connection
# instead (a faster client than Python's, so the server-side steps as wrk sees them; no
# client-side times).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/proconsul}
N=${2:-3000}
NET=${NET:-127.0.0.6}
source bench/lib.sh
[[ -x $BIN ]] || cargo build --release -p proconsul
WORK=$(mktemp -d)
PIDS=()
trap 'kill -9 "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null; [[ -n ${KEEP:-} ]] || rm -rf "$WORK"' EXIT
mkdir -p "$WORK/trace"

for i in 1 2 3; do
  PROCONSUL_WRITE_TRACE="$WORK/trace" "$BIN" agent -server -bootstrap-expect=3 -node="s$i" \
    -bind="${NET}$i" -client="${NET}$i" -data-dir="$WORK/p$i" -retry-join="${NET}1" \
    -retry-interval=1s -log-level=error >"$WORK/p$i.log" 2>&1 &
  PIDS+=($!)
done
leader=$(bench_cluster_leader)
sleep 2 # let the leader's first reconcile writes pass
echo "leader: $leader ($BIN)"
python3 bench/write_trace.py client "$leader:8500" 500 "$WORK/warmup.txt"
if [[ -n ${WRK:-} ]]; then
  # wrk's one connection instead (a faster client; no client-side times): WRK=seconds.
  sleep 0.5
  rm -f "$WORK"/trace/*.tsv
  wrk -t1 -c1 -d"${WRK}s" --latency -s bench/kv_put.lua "http://$leader:8500" | grep -E 'Requests/sec|50%|99%'
else
  python3 bench/write_trace.py client "$leader:8500" "$N" "$WORK/trace/client.txt"
fi
sleep 1 # the servers flush their records every 200 ms
python3 bench/write_trace.py analyse "$WORK/trace"
[[ -z ${KEEP:-} ]] || echo "records: $WORK/trace"
