#!/usr/bin/env bash
# DNS throughput: proconsul's SRV answers for a 2-instance service vs dnsmasq serving the same
# records statically, measured in the same run with dnsperf.
#
#   bash bench/dns.sh [BINARY] [SECONDS]
#   SHAPES="4x1" bash bench/dns.sh        # dnsperf clients x threads (default "8x2 4x1")
#
# Needs dnsperf and dnsmasq (apt-get install -y dnsperf dnsmasq-base) and curl. Prints figures
# and the ratio; never a pass/fail.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/proconsul}
SECS=${2:-10}
for t in dnsperf dnsmasq curl; do command -v $t >/dev/null || { echo "needs $t" >&2; exit 2; }; done
[[ -x $BIN ]] || cargo build --release -p proconsul
WORK=$(mktemp -d)
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
cat >"$WORK/ports.json" <<JSON
{ "node_name": "bench", "ports": { "http": 18501, "dns": 18600, "grpc": -1 } }
JSON
"$BIN" agent -dev -log-level=warn -config-file="$WORK/ports.json" >"$WORK/agent.log" 2>&1 &
PIDS+=($!)
until curl -sf localhost:18501/v1/status/leader | grep -q 8300; do sleep 0.01; done
# two instances of web on two nodes, both passing
for n in 1 2; do
  curl -sf -X PUT localhost:18501/v1/catalog/register -d "{
    \"Node\": \"node$n\", \"Address\": \"127.0.0.$((10 + n))\",
    \"Service\": {\"Service\": \"web\", \"Port\": 9999},
    \"Check\": {\"CheckID\": \"web-$n\", \"Name\": \"web\", \"Status\": \"passing\", \"ServiceID\": \"web\"}}" >/dev/null
done
until [[ $(dig +short @127.0.0.1 -p 18600 web.service.consul SRV | wc -l) == 2 ]]; do sleep 0.05; done

# dnsmasq with the same records, static
dnsmasq --no-daemon --port=18653 --listen-address=127.0.0.1 --bind-interfaces --no-resolv --no-hosts \
  --srv-host=web.service.consul,node1.node.dc1.consul,9999,1,1 \
  --srv-host=web.service.consul,node2.node.dc1.consul,9999,1,1 \
  --host-record=node1.node.dc1.consul,127.0.0.11 --host-record=node2.node.dc1.consul,127.0.0.12 \
  --cache-size=1000 >"$WORK/dnsmasq.log" 2>&1 &
PIDS+=($!)
sleep 0.5

echo "web.service.consul SRV" >"$WORK/queries"
# dnsperf clients x threads: 8x2 loads both cores; 4x1 is a host's resolver forwarding to the
# agent (issue #21's "ordinary concurrency").
run() {
  dnsperf -s 127.0.0.1 -p "$1" -d "$WORK/queries" -l "$SECS" -c "$2" -T "$3" -q 200 2>&1 |
    awk '/Queries per second/ {print $4}'
}
for shape in ${SHAPES:-8x2 4x1}; do
  c=${shape%x*} t=${shape#*x}
  p=$(run 18600 "$c" "$t")
  d=$(run 18653 "$c" "$t")
  echo "$c clients, $t thread(s): proconsul SRV qps $p, dnsmasq $d, ratio $(python3 -c "print('%.2f' % ($p / $d))")"
done
