#!/usr/bin/env bash
# The cost of ACLs on the KV path: `agent -dev` with ACLs off, then with ACLs on
# (`default_policy = "deny"`, requests carrying a token whose policy holds 20 rules), same
# binary, same load. Prints PUT and GET requests/s of both and the on/off ratio.
#
#   bash bench/acl.sh [BINARY] [SECONDS]
#
# Needs wrk and curl (apt-get install -y wrk curl). wrk: 2 threads, 64 connections.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/proconsul}
SECS=${2:-10}
source bench/lib.sh
bench_need wrk curl
[[ -x $BIN ]] || cargo build --release -p proconsul
ROOT=11111111-2222-3333-4444-555555555555
WORK=$(mktemp -d)
PID=
trap 'kill $PID 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT

run() { # $1: off|on → prints "put get"
  local mode=$1 header=()
  if [[ $mode == on ]]; then
    cat >"$WORK/cfg.json" <<JSON
{ "ports": { "http": 18500, "dns": -1, "grpc": -1 },
  "acl": { "enabled": true, "default_policy": "deny", "tokens": { "initial_management": "$ROOT" } } }
JSON
  else
    echo '{ "ports": { "http": 18500, "dns": -1, "grpc": -1 } }' >"$WORK/cfg.json"
  fi
  "$BIN" agent -dev -log-level=warn -config-file="$WORK/cfg.json" >"$WORK/log.$mode" 2>&1 &
  PID=$!
  until curl -sf -H "X-Consul-Token: $ROOT" localhost:18500/v1/acl/token/self >/dev/null 2>&1 \
      || { [[ $mode == off ]] && curl -sf localhost:18500/v1/status/leader | grep -q 8300; }; do
    sleep 0.05
  done
  if [[ $mode == on ]]; then
    # 20 rules: 19 that do not match the benchmark's keys, and the one that does.
    local rules='' i
    for i in $(seq 1 19); do rules+="key_prefix \\\"other$i/\\\" { policy = \\\"read\\\" }\\n"; done
    rules+='key_prefix \"bench/\" { policy = \"write\" }'
    curl -sf -X PUT -H "X-Consul-Token: $ROOT" localhost:18500/v1/acl/policy \
      -d "{\"Name\":\"bench\",\"Rules\":\"$rules\"}" >/dev/null
    local token
    token=$(curl -sf -X PUT -H "X-Consul-Token: $ROOT" localhost:18500/v1/acl/token \
      -d '{"Policies":[{"Name":"bench"}]}' | sed -E 's/.*"SecretID":"([^"]+)".*/\1/')
    header=(-H "X-Consul-Token: $token")
  fi
  local put get
  put=$(wrk -t2 -c64 -d"${SECS}s" "${header[@]}" -s bench/kv_put.lua http://127.0.0.1:18500 \
    | awk '/Requests\/sec/ {print $2} /Non-2xx/ {print "NON2XX"}')
  get=$(wrk -t2 -c64 -d"${SECS}s" "${header[@]}" -s bench/kv_get.lua http://127.0.0.1:18500 \
    | awk '/Requests\/sec/ {print $2} /Non-2xx/ {print "NON2XX"}')
  kill $PID; wait $PID 2>/dev/null || true
  echo "$put $get"
}

read -r off_put off_get < <(run off)
read -r on_put on_get < <(run on)
echo "PUT /v1/kv: ACLs off $off_put req/s, on $on_put req/s, on/off $(awk "BEGIN {printf \"%.3f\", $on_put / $off_put}")"
echo "GET /v1/kv: ACLs off $off_get req/s, on $on_get req/s, on/off $(awk "BEGIN {printf \"%.3f\", $on_get / $off_get}")"
