#!/usr/bin/env bash
# HashiCorp serf's figures for what bench/gossip.sh measures on proconsul: N serf agents (one
# process each, LAN profile) on 127.0.2.x, each joining a random earlier one as fast as the CLI
# allows (the example's join pattern); the time until every agent lists all N alive, then one
# agent is killed (-9) and the time until every other lists it failed. Needs Debian's `serf`.
#
#   bash bench/gossip-serf.sh [N]
set -euo pipefail
n=${1:-50}
((n >= 2 && n <= 250)) || { echo "N must be 2..250" >&2; exit 2; }
command -v serf >/dev/null || { echo "needs serf (apt-get install serf)" >&2; exit 2; }
dir=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
ip() { echo "127.0.2.$(($1 + 1))"; }
now() { date +%s.%N; }
alive() { serf members -rpc-addr="$(ip "$1"):7373" -status=alive 2>/dev/null | wc -l; }

for ((i = 0; i < n; i++)); do
  serf agent -node="s$i" -bind="$(ip $i):7946" -rpc-addr="$(ip $i):7373" -log-level=err \
    >"$dir/s$i.log" 2>&1 &
  pids+=($!)
done
# Wait until every agent answers RPC.
for ((i = 0; i < n; i++)); do
  until serf members -rpc-addr="$(ip $i):7373" >/dev/null 2>&1; do sleep 0.05; done
done

t0=$(now)
for ((i = 1; i < n; i++)); do
  serf join -rpc-addr="$(ip $i):7373" "$(ip $((RANDOM % i))):7946" >/dev/null
done
t_join=$(now)
for ((i = 0; i < n; i++)); do
  until [[ $(alive $i) -eq $n ]]; do
    sleep 0.05
    if (($(echo "$(now) - $t0 > 300" | bc))); then echo "no convergence in 300 s" >&2; exit 1; fi
  done
done
t1=$(now)
printf 'serf, %d agents: joins issued in %.2fs, every agent lists all %d alive after %.2fs\n' \
  "$n" "$(echo "$t_join - $t0" | bc)" "$n" "$(echo "$t1 - $t0" | bc)"

victim=$((n - 1))
kill -9 "${pids[$victim]}"
t2=$(now)
for ((i = 0; i < victim; i++)); do
  until serf members -rpc-addr="$(ip $i):7373" -status=failed 2>/dev/null | grep -q "^s$victim "; do
    sleep 0.05
  done
done
t3=$(now)
printf 'one agent killed: all %d others list it failed after %.2fs\n' "$((n - 1))" \
  "$(echo "$t3 - $t2" | bc)"
