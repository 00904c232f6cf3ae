# Shared by the bench scripts (sourced, after `cd` to the repository root): what each needs,
# and starting agents until they serve. Every function leaves the processes it starts to the
# caller's trap (`PID`, or the `PIDS` array).

# Stop with apt's hint unless each named command is there.
bench_need() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null || { echo "needs $c: apt-get install -y $c" >&2; exit 2; }
  done
}

# Stop unless 127.0.0.1:PORT is free of an agent.
bench_port_free() {
  if curl -sf "localhost:$1/v1/status/leader" >/dev/null 2>&1; then
    echo "something already answers on 127.0.0.1:$1: stop it first" >&2; exit 1
  fi
}

# One agent with the config file CONFIG, logging to LOG: `agent -dev`, or with MODE=server a
# durable single server whose data dir is DATA. Sets PID and returns once the agent's HTTP
# port HTTP_PORT names a leader on SERVER_PORT.
bench_start_single() {
  local config=$1 log=$2 data=$3 http_port=$4 server_port=$5
  if [[ ${MODE:-dev} == server ]]; then
    "$BIN" agent -server -bootstrap-expect=1 -bind=127.0.0.1 -data-dir="$data" -log-level=warn \
      -config-file="$config" >"$log" 2>&1 &
  else
    "$BIN" agent -dev -log-level=warn -config-file="$config" >"$log" 2>&1 &
  fi
  PID=$!
  until curl -sf "localhost:$http_port/v1/status/leader" | grep -q "$server_port"; do
    kill -0 "$PID" 2>/dev/null || { cat "$log"; exit 1; }
    sleep 0.005
  done
}

# Wait for the 3-server cluster on ${NET}1-3 (HTTP on 8500): prints the leader's address once
# all three are its Raft peers.
bench_cluster_leader() {
  local leader="" _
  for _ in $(seq 1 300); do
    leader=$(curl -sf "${NET}1:8500/v1/status/leader" | tr -d '"' | cut -d: -f1) && [[ -n $leader ]] && break
    sleep 0.1
  done
  [[ -n $leader ]] || { echo "no leader" >&2; exit 1; }
  until [[ $(curl -sf "$leader:8500/v1/status/peers" | grep -o 8300 | wc -l) == 3 ]]; do sleep 0.1; done
  echo "$leader"
}
