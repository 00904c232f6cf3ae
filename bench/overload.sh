#!/usr/bin/env bash
# Overload: do 10,000 idle keep-alive connections, slow readers and a flood from one client slow
# down the clients doing ordinary work? Runs examples/watchers' `overload` tool against
# `proconsul agent -dev` on 127.0.0.1:18541 with its default limits (http_max_conns_per_client
# 200): 8 active clients read one KV key in a closed loop, alone and then beside each load.
# A flood's connections beyond the per-client limit get Consul's 429 and are closed before
# they are read; the ones admitted take turns with the other clients' (crates/http/src/fair.rs).
# MAX_CONNS changes the limit.
#
#   bash bench/overload.sh [BINARY] [SECONDS] [IDLE] [SLOW] [FLOOD]
#   MAX_CONNS=16 bash bench/overload.sh        # the agent's http_max_conns_per_client
#   FLOOD_NICE=4 bash bench/overload.sh        # the flood generator's CPU priority (below)
#
# The flood's own rate is measured alone first, then beside the active clients. The flood
# generator shares this machine's cores with the agent and the active clients' generator: at
# equal CPU priority it takes the CPU the active clients need to send their next request, and
# the figures then show the load tool starving itself. Its thread runs FLOOD_NICE (default 4)
# nice levels below the tool's; "alone" shows it still offers the agent more than it answers.
# The same flood then runs against a second agent on this machine ("+ flood elsewhere"): what
# the active clients lose there is what the flood costs them through the shared cores alone;
# the difference to "+ flood" is what it costs them through their own agent.
#
# Both processes hold one descriptor per idle connection: `ulimit -n` is raised as far as the
# hard limit allows. Prints figures only; never a pass/fail.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/proconsul}
SECS=${2:-10}
IDLE=${3:-10000}
SLOW=${4:-200}
FLOOD=${5:-5000}
MAX_CONNS=${MAX_CONNS:-200}
FLOOD_NICE=${FLOOD_NICE:-4}
ulimit -n $(( IDLE + 2000 )) 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[[ -x $BIN ]] || cargo build --release -p proconsul
# Its own target dir: built alone, tokio's feature set differs from the workspace's.
cargo build --release -q -p proconsul-example-watchers --target-dir target/bench

source bench/lib.sh
bench_port_free 18541
bench_port_free 18551
WORK=$(mktemp -d)
PID="" OTHER=""
trap 'kill $PID $OTHER 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
# An agent -dev on ports BASE..BASE+2 (MODE is for the scripts that offer a server).
start_agent() {
  local base=$1
  cat >"$WORK/config.$base.json" <<JSON
{ "ports": { "http": $base, "dns": -1, "grpc": -1, "serf_lan": $((base + 1)), "serf_wan": -1, "server": $((base + 2)) },
  "limits": { "http_max_conns_per_client": $MAX_CONNS } }
JSON
  MODE=dev bench_start_single "$WORK/config.$base.json" "$WORK/log.$base" "" "$base" $((base + 2))
}
start_agent 18551
OTHER=$PID
start_agent 18541
curl -sf -X PUT -d 'a small value' localhost:18551/v1/kv/bench/hot >/dev/null
echo "proconsul $($BIN version | head -1), $(nproc) cores, http_max_conns_per_client $MAX_CONNS"
target/bench/release/overload --addr 127.0.0.1:18541 --pid "$PID" --secs "$SECS" \
  --idle "$IDLE" --slow "$SLOW" --flood "$FLOOD" --flood-nice "$FLOOD_NICE" \
  --flood-addr 127.0.0.1:18551
