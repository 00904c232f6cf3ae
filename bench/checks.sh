#!/usr/bin/env bash
# Check scheduling cost: 10,000 TTL checks and 1,000 HTTP checks (1 s interval) on one
# `proconsul agent -dev`; reports the agent's CPU (% of one core) and RSS in steady state.
#
#   bash bench/checks.sh [BINARY] [SECONDS]
#
# The HTTP checks probe examples/web's /health (built here). TTL checks are registered passing
# with a 10 m TTL, so they stay armed timers for the whole run. Needs curl and python3. Prints
# figures only; never a pass/fail.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/proconsul}
SECS=${2:-30}
TTL_CHECKS=${TTL_CHECKS:-10000}
HTTP_CHECKS=${HTTP_CHECKS:-1000}
[[ -x $BIN ]] || cargo build --release -p proconsul
cargo build --release -q -p proconsul-example-web
WORK=$(mktemp -d)
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
cat >"$WORK/ports.json" <<JSON
{ "node_name": "bench", "ports": { "http": 18502, "dns": -1, "grpc": -1 } }
JSON
target/release/web 127.0.0.1:19999 >"$WORK/web.log" 2>&1 &
PIDS+=($!)
# The checks come from a config file, as an operator would declare them (registering 11,000
# checks one API call at a time costs O(N) anti-entropy work per call; see docs/STATUS.md).
python3 - "$TTL_CHECKS" "$HTTP_CHECKS" "$WORK/checks.json" <<'PY'
import json, sys
ttl, http_n, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
checks = [{"id": f"ttl-{i}", "name": f"ttl {i}", "ttl": "10m", "status": "passing"} for i in range(ttl)]
checks += [{"id": f"http-{i}", "name": f"http {i}", "http": "http://127.0.0.1:19999/health",
            "interval": "1s", "timeout": "1s"} for i in range(http_n)]
json.dump({"checks": checks}, open(out, "w"))
PY
t0=$(date +%s.%N)
"$BIN" agent -dev -log-level=warn -config-file="$WORK/ports.json" -config-file="$WORK/checks.json" \
  >"$WORK/agent.log" 2>&1 &
AGENT=$!
PIDS+=($AGENT)
until curl -sf localhost:18502/v1/status/leader | grep -q 8300; do sleep 0.02; done
total=$((TTL_CHECKS + HTTP_CHECKS))
until [[ $(curl -s 'localhost:18502/v1/health/state/any' | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))') -ge $total ]]; do
  sleep 0.5
done
t1=$(date +%s.%N)
python3 -c "print('agent up with %d TTL + %d HTTP checks in the catalog after %.1f s' % ($TTL_CHECKS, $HTTP_CHECKS, $t1 - $t0))"

rss() { awk '/VmRSS/ {print $2/1024}' /proc/$AGENT/status; }
cpu_ticks() { awk '{print $14 + $15}' /proc/$AGENT/stat; }
# settle: every HTTP check has run a few times and the catalog is in sync
sleep 10
passing=$(curl -s 'localhost:18502/v1/health/state/passing' | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
echo "checks passing in the catalog: $passing"
hz=$(getconf CLK_TCK)
c0=$(cpu_ticks); s0=$(date +%s.%N)
sleep "$SECS"
c1=$(cpu_ticks); s1=$(date +%s.%N)
python3 -c "print('agent CPU: %.1f %% of one core over %d s' % (100.0 * ($c1 - $c0) / $hz / ($s1 - $s0), $SECS))"
echo "agent RSS: $(rss) MB"
