#!/usr/bin/env bash
# Gossip pool convergence and failure-detection spread with memberlist's LAN timing:
# N in-process members on 127.0.1.x (default 50). Prints figures only.
#
#   bash bench/gossip.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run -q --release -p proconsul-gossip --example convergence -- "${1:-50}"
