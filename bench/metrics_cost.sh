#!/usr/bin/env bash
# What recording metrics costs on the hot paths: KV PUT (wrk, 64 connections) and DNS SRV
# (dnsperf) against `agent -dev`, once with every metric kept and once with all of them
# dropped by `telemetry { prefix_filter = ["-consul"] }` (a dropped metric's handle records
# nothing), alternating ROUNDS times. Prints each run and the on/off ratios; never a pass/fail.
#
#   bash bench/metrics_cost.sh [BINARY] [SECONDS] [ROUNDS]
#
# Needs wrk, dnsperf and curl (apt-get install -y wrk dnsperf curl).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/proconsul}
SECS=${2:-10}
ROUNDS=${3:-2}
for t in wrk dnsperf curl dig; do command -v $t >/dev/null || { echo "needs $t" >&2; exit 2; }; done
WORK=$(mktemp -d)
PID=""
trap '[[ -n $PID ]] && kill $PID 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
echo "web.service.consul SRV" >"$WORK/queries"

run() { # on|off → "put_rps dns_qps"
  local filter='[]'
  [[ $1 == off ]] && filter='["-consul"]'
  cat >"$WORK/cfg.json" <<JSON
{ "ports": { "http": 18520, "dns": 18620, "grpc": -1 }, "telemetry": { "prefix_filter": $filter } }
JSON
  "$BIN" agent -dev -log-level=warn -config-file="$WORK/cfg.json" >"$WORK/log.$1" 2>&1 &
  PID=$!
  until curl -sf localhost:18520/v1/status/leader | grep -q 8300; do sleep 0.01; done
  curl -sf -X PUT localhost:18520/v1/agent/service/register \
    -d '{"Name":"web","Port":9999,"Check":{"TTL":"600s","Status":"passing"}}' >/dev/null
  until [[ -n $(dig +short @127.0.0.1 -p 18620 web.service.consul SRV) ]]; do sleep 0.05; done
  local put dns
  put=$(wrk -t2 -c64 -d"${SECS}s" -s bench/kv_put.lua http://127.0.0.1:18520 | awk '/Requests\/sec/ {print $2}')
  dns=$(dnsperf -s 127.0.0.1 -p 18620 -d "$WORK/queries" -l "$SECS" -c 8 -T 2 -q 200 2>&1 | awk '/Queries per second/ {print $4}')
  kill $PID; wait $PID 2>/dev/null || true; PID=""
  echo "$put $dns"
}

declare -a on_put on_dns off_put off_dns
for r in $(seq 1 "$ROUNDS"); do
  read -r p d < <(run on);  on_put+=("$p");  on_dns+=("$d");  echo "round $r  metrics on:  PUT $p/s  DNS $d qps"
  read -r p d < <(run off); off_put+=("$p"); off_dns+=("$d"); echo "round $r  metrics off: PUT $p/s  DNS $d qps"
done
python3 - "${on_put[*]}" "${off_put[*]}" "${on_dns[*]}" "${off_dns[*]}" <<'PY'
import sys, statistics as s
on_p, off_p, on_d, off_d = ([float(x) for x in a.split()] for a in sys.argv[1:5])
print("median PUT  on %.0f  off %.0f  on/off %.3f" % (s.median(on_p), s.median(off_p), s.median(on_p) / s.median(off_p)))
print("median DNS  on %.0f  off %.0f  on/off %.3f" % (s.median(on_d), s.median(off_d), s.median(on_d) / s.median(off_d)))
PY
