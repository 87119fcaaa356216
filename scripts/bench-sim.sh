#!/usr/bin/env bash
# Simulation throughput: seeds per minute and simulated sessions per wall
# second, for the default campaign, in release. Usage:
#   scripts/bench-sim.sh [SEEDS] [JOBS]
set -euo pipefail
seeds=${1:-1000}
jobs=${2:-2}
cd "$(dirname "$0")/.."
cargo build --release --quiet
echo "relayguard sim --seeds $seeds --jobs $jobs"
target/release/relayguard sim --seeds "$seeds" --jobs "$jobs"
echo "relayguard sim --seeds $((seeds / 4)) --jobs 1 (one core)"
target/release/relayguard sim --seeds "$((seeds / 4))" --jobs 1
