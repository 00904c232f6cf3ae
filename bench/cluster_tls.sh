#!/usr/bin/env bash
# What TLS on the server RPC port costs: KV PUT throughput and latency of a 3-server cluster
# with plaintext RPC, then with `tls.internal_rpc` verify_incoming + verify_outgoing +
# verify_server_hostname (certificates from `proconsul tls`), same load, same run.
#
#   bash bench/cluster_tls.sh [BINARY] [SECONDS]
#
# Needs wrk (apt-get install -y wrk). Servers on 127.0.0.61-63 (default ports,
# -bootstrap-expect=3, durable redb logs in a temp dir), load on the leader's HTTP API (plain
# HTTP: only Raft replication and forwarding cross the TLS port). wrk: 2 threads at 64
# connections, then 1 connection. Prints figures only; never a pass/fail.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-target/release/proconsul}")
SECS=${2:-10}
command -v wrk >/dev/null || { echo "needs wrk: apt-get install -y wrk" >&2; exit 2; }
WORK=$(mktemp -d)
PIDS=()
trap 'kill -9 "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT

report() { grep -E 'Requests/sec|Latency  |50%|99%|Non-2xx' | sed 's/^/  /'; }

(cd "$WORK" && "$BIN" tls ca create >/dev/null &&
  for _ in 1 2 3; do "$BIN" tls cert create -server -dc dc1 >/dev/null; done)

run() { # label, tls(0/1)
  echo "=== $1"
  for i in 1 2 3; do
    local extra=()
    if [[ $2 == 1 ]]; then
      n=$((i - 1))
      cat >"$WORK/tls$i.json" <<JSON
{"tls": {"defaults": {"ca_file": "$WORK/consul-agent-ca.pem",
  "cert_file": "$WORK/dc1-server-consul-$n.pem", "key_file": "$WORK/dc1-server-consul-$n-key.pem",
  "verify_incoming": true, "verify_outgoing": true},
  "internal_rpc": {"verify_server_hostname": true}}}
JSON
      extra=(-config-file="$WORK/tls$i.json")
    fi
    "$BIN" agent -server -bootstrap-expect=3 -node="s$i" -bind="127.0.0.6$i" -client="127.0.0.6$i" \
      -data-dir="$WORK/$2-p$i" -retry-join=127.0.0.61 -retry-interval=1s -log-level=warn \
      "${extra[@]}" >"$WORK/$2-p$i.log" 2>&1 &
    PIDS+=($!)
  done
  leader=""
  for _ in $(seq 1 300); do
    leader=$(curl -sf 127.0.0.61:8500/v1/status/leader | tr -d '"' | cut -d: -f1) && [[ -n $leader ]] && break
    sleep 0.1
  done
  [[ -n $leader ]] || { echo "no leader"; tail "$WORK/$2-p1.log"; exit 1; }
  until [[ $(curl -sf "$leader:8500/v1/status/peers" | grep -o 8300 | wc -l) == 3 ]]; do sleep 0.1; done
  echo "leader: $leader; 64 connections"
  wrk -t2 -c64 -d"${SECS}s" --latency -s bench/kv_put.lua "http://$leader:8500" | report
  echo "1 connection"
  wrk -t1 -c1 -d"${SECS}s" --latency -s bench/kv_put.lua "http://$leader:8500" | report
  kill -9 "${PIDS[@]}"; wait 2>/dev/null || true; PIDS=()
}

run "plaintext RPC" 0
run "TLS RPC (verify_incoming, verify_outgoing, verify_server_hostname)" 1
