#!/usr/bin/env bash
# The CPU cost of ACLs per KV request, counted rather than timed: instructions the agent runs
# per request (valgrind callgrind, counters zeroed after warm-up, 2,000 sequential requests
# on one keep-alive connection), ACLs off vs on (`default_policy = "deny"`, a token whose
# policy holds 20 rules). Deterministic, so it holds on a busy machine where wrk figures
# (bench/acl.sh) swing by ±30 %.
#
#   bash bench/acl_instructions.sh [BINARY]
#
# Needs valgrind, curl and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-target/release/proconsul}")
ROOT=11111111-2222-3333-4444-555555555555
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cat >"$WORK/client.py" <<'PY'
import http.client, sys
n, method, token = int(sys.argv[1]), sys.argv[2], sys.argv[3]
c = http.client.HTTPConnection("127.0.0.1", 18502)
h = {"X-Consul-Token": token} if token else {}
for i in range(n):
    c.request(method, f"/v1/kv/bench/key{i % 100}", body=b"v" if method == "PUT" else None, headers=h)
    r = c.getresponse(); r.read()
    assert r.status in (200, 404), r.status
PY

count() { # $1 on|off, $2 GET|PUT → instructions per request
  local mode=$1 method=$2 token=''
  if [[ $mode == on ]]; then
    echo "{ \"ports\": { \"http\": 18502, \"dns\": -1, \"grpc\": -1 }, \"acl\": { \"enabled\": true, \"default_policy\": \"deny\", \"tokens\": { \"initial_management\": \"$ROOT\" } } }" >"$WORK/cfg.json"
  else
    echo '{ "ports": { "http": 18502, "dns": -1, "grpc": -1 } }' >"$WORK/cfg.json"
  fi
  rm -f "$WORK"/callgrind.out.*
  valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out.%p" "$BIN" agent -dev \
    -log-level=warn -config-file="$WORK/cfg.json" >"$WORK/log" 2>&1 &
  local pid=$!
  until curl -sf -H "X-Consul-Token: $ROOT" localhost:18502/v1/acl/token/self >/dev/null 2>&1 \
      || { [[ $mode == off ]] && curl -sf localhost:18502/v1/status/leader | grep -q 8300; }; do
    sleep 0.3
  done
  if [[ $mode == on ]]; then
    local rules='' i
    for i in $(seq 1 19); do rules+="key_prefix \\\"other$i/\\\" { policy = \\\"read\\\" }\\n"; done
    rules+='key_prefix \"bench/\" { policy = \"write\" }'
    curl -sf -X PUT -H "X-Consul-Token: $ROOT" localhost:18502/v1/acl/policy \
      -d "{\"Name\":\"bench\",\"Rules\":\"$rules\"}" >/dev/null
    token=$(curl -sf -X PUT -H "X-Consul-Token: $ROOT" localhost:18502/v1/acl/token \
      -d '{"Policies":[{"Name":"bench"}]}' | sed -E 's/.*"SecretID":"([^"]+)".*/\1/')
  fi
  python3 "$WORK/client.py" 300 PUT "$token"
  python3 "$WORK/client.py" 300 "$method" "$token"
  sleep 2
  callgrind_control -z $pid >/dev/null 2>&1
  python3 "$WORK/client.py" 2000 "$method" "$token"
  callgrind_control -d $pid >/dev/null 2>&1
  sleep 1
  kill $pid; wait $pid 2>/dev/null || true
  local f ir
  f=$(ls -t "$WORK"/callgrind.out.$pid.* | head -1)
  ir=$(grep -h "^summary:" "$f" | awk '{print $2}')
  echo $(( ir / 2000 ))
}

for method in GET PUT; do
  off=$(count off $method)
  on=$(count on $method)
  echo "$method /v1/kv: ACLs off $off, on $on instructions/request, on/off $(awk "BEGIN {printf \"%.3f\", $on / $off}")"
done
