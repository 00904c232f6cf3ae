#!/usr/bin/env bash
# KV PUT throughput and latency of a 3-server proconsul cluster, side by side with a 3-member
# etcd cluster doing the same work on the same machine (same run, same load generator), at
# 1, 8 and 64 connections.
#
#   bash bench/cluster.sh [BINARY[,BINARY...]] [SECONDS]
#
# Several comma-separated binaries (e.g. a build from before a change and one after) are each
# measured in turn, then etcd. Environment: CONNS (default "1 8 64"), ROUNDS (default 1: with
# more, the systems take turns round after round, so a noisy neighbour hurts all alike), NET
# (proconsul's servers on ${NET}1-3, default 127.0.0.6), EPORT (etcd's first client port,
# default 2379: members on 127.0.0.1:EPORT+{0,1000,2000}, peers one port above).
#
# Needs wrk and etcd (apt-get install -y wrk etcd-server). proconsul: default ports,
# -bootstrap-expect=3, durable redb logs in a temp dir, load on the leader's HTTP API. etcd:
# load on the leader's v3 JSON gateway. wrk: one thread for one connection, else 2; 1,000
# keys. Each system's first connection count is preceded by a 2 s warm-up. A 4 KiB
# overwrite+fdatasync probe of the temp dir's disk is printed before and after: the floor
# moves with whatever else the machine is doing. Prints figures only; never a pass/fail.
set -euo pipefail
cd "$(dirname "$0")/.."
BINS=${1:-target/release/proconsul}
SECS=${2:-10}
CONNS=${CONNS:-1 8 64}
ROUNDS=${ROUNDS:-1}
NET=${NET:-127.0.0.6}
EPORT=${EPORT:-2379}
source bench/lib.sh
bench_need wrk
command -v etcd >/dev/null || { echo "needs etcd: apt-get install -y etcd-server" >&2; exit 2; }
IFS=, read -r -a BINARIES <<<"$BINS"
for b in "${BINARIES[@]}"; do
  [[ -x $b ]] || cargo build --release -p proconsul
done
WORK=$(mktemp -d)
PIDS=()
trap 'kill -9 "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
RESULTS="$WORK/results"

fsync_probe() {
  python3 - "$WORK" <<'EOF'
import os, sys, time
path = os.path.join(sys.argv[1], "fsync-probe")
fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b"x" * (1 << 20)); os.fsync(fd)
xs = []
for i in range(300):
    os.pwrite(fd, b"y" * 4096, (i % 64) * 4096)
    t = time.perf_counter_ns(); os.fdatasync(fd); xs.append((time.perf_counter_ns() - t) / 1000)
xs.sort(); os.close(fd); os.unlink(path)
print("disk: 4 KiB overwrite + fdatasync p50 %.0f µs, p99 %.0f µs" % (xs[150], xs[296]))
EOF
}

# wrk's latency figure ("1.23ms", "456.78us", "1.01s") in ms.
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    if (u == "us") n /= 1000; else if (u == "s") n *= 1000
    printf "%.2f", n }'
}

# load NAME URL SCRIPT: wrk at each connection count, one result line each.
load() {
  local name=$1 url=$2 script=$3 c t out first=1
  for c in $CONNS; do
    t=$((c < 2 ? 1 : 2))
    if [[ -n $first ]]; then
      wrk -t"$t" -c"$c" -d2s -s "$script" "$url" >/dev/null
      first=""
    fi
    out=$(wrk -t"$t" -c"$c" -d"${SECS}s" --latency -s "$script" "$url")
    local rps p50 p99 errs
    rps=$(awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$out")
    p50=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
    p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
    errs=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
    printf "%-34s %5s %10s %9s %9s %s\n" "$name" "$c" "$rps" "$p50" "$p99" "${errs:+non-2xx=$errs}" | tee -a "$RESULTS"
  done
}

run_proconsul() {
  local bin=$1 i leader
  for i in 1 2 3; do
    "$bin" agent -server -bootstrap-expect=3 -node="s$i" -bind="${NET}$i" -client="${NET}$i" \
      -data-dir="$WORK/p$i" -retry-join="${NET}1" -retry-interval=1s -log-level=warn \
      >"$WORK/p$i.log" 2>&1 &
    PIDS+=($!)
  done
  leader=$(bench_cluster_leader)
  sleep 1
  load "proconsul $bin" "http://$leader:8500" bench/kv_put.lua
  kill -9 "${PIDS[@]}"; wait 2>/dev/null || true; PIDS=()
  rm -rf "$WORK"/p?
}

run_etcd() {
  local i p cluster="" eleader=""
  for i in 0 1 2; do
    p=$((EPORT + 1000 * i))
    cluster+="${cluster:+,}e$i=http://127.0.0.1:$((p + 1))"
  done
  for i in 0 1 2; do
    p=$((EPORT + 1000 * i))
    etcd --name "e$i" --data-dir "$WORK/e$i" \
      --listen-client-urls "http://127.0.0.1:$p" --advertise-client-urls "http://127.0.0.1:$p" \
      --listen-peer-urls "http://127.0.0.1:$((p + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((p + 1))" \
      --initial-cluster "$cluster" --initial-cluster-state new --log-level error \
      >"$WORK/e$i.log" 2>&1 &
    PIDS+=($!)
  done
  for _ in $(seq 1 300); do
    for i in 0 1 2; do
      p=$((EPORT + 1000 * i))
      if curl -sf -X POST "127.0.0.1:$p/v3/maintenance/status" -d '{}' | python3 -c '
import json,sys; s=json.load(sys.stdin); sys.exit(0 if s.get("leader") == s["header"].get("member_id") else 1)' 2>/dev/null; then
        eleader="127.0.0.1:$p"; break 2
      fi
    done
    sleep 0.1
  done
  [[ -n $eleader ]] || { echo "no etcd leader"; exit 1; }
  load "etcd $(etcd --version | head -n 1 | awk '{print $3}')" "http://$eleader" bench/etcd_put.lua
  kill -9 "${PIDS[@]}"; wait 2>/dev/null || true; PIDS=()
  rm -rf "$WORK"/e?
}

fsync_probe
printf "%-34s %5s %10s %9s %9s\n" "system" "conns" "req/s" "p50 ms" "p99 ms"
for _ in $(seq 1 "$ROUNDS"); do
  for b in "${BINARIES[@]}"; do run_proconsul "$b"; done
  run_etcd
done
fsync_probe
if [[ $ROUNDS -gt 1 ]]; then
  echo "--- median of $ROUNDS rounds"
  python3 - "$RESULTS" <<'EOF'
import collections, sys
rows = collections.OrderedDict()
for line in open(sys.argv[1]):
    f = line.split()
    name, c, rps, p50, p99 = " ".join(f[:2]), f[2], f[3], f[4], f[5]
    rows.setdefault((name, c), []).append((float(rps), float(p50), float(p99)))
med = lambda xs: sorted(xs)[len(xs) // 2]
for (name, c), v in rows.items():
    print("%-34s %5s %10.0f %9.2f %9.2f" % (name, c, med([x[0] for x in v]), med([x[1] for x in v]), med([x[2] for x in v])))
EOF
fi
