#!/usr/bin/env bash
# Scale of gossip (#20), measured as memberlist's own model measures it, on the in-memory
# simulator (crates/gossip/src/sim, virtual time): in a converged pool of N = 50, 200 and 1,000
# members with memberlist's LAN timing, 0.5–5 ms one-way latency and 1 % UDP loss, (a) the
# spread of one member's join, (b) the detection of one member's crash, (c) live members
# suspected or declared dead over 5 minutes — each next to memberlist's predicted figure.
# Figures and method: docs/gossip-scale.md. Takes a few minutes (N = 1,000 dominates).
#
#   bash bench/gossip-scale.sh [--seeds K] [--loss P] [--no-tcp-ping] [--window SECS] [N ...]
#   bash bench/gossip-scale.sh --mass-join [--loss 0] 50 200   # the mass join, simulated
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run -q --release -p proconsul-gossip --features sim --example gossip_scale -- "$@"
