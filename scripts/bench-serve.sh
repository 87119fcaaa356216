#!/usr/bin/env bash
# Messages per second on loopback, driven by Postfix's smtp-source, against
# `relayguard serve` (durable: fsync before every 250, local Maildir delivery)
# and, in the same run, Postfix's smtp-sink (no storage: the upper bound).
# Not run by CI. Usage: scripts/bench-serve.sh [MESSAGES] [SESSIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-2000}
S=${2:-20}
BIN=target/release/relayguard
cargo build --release --quiet
WORK=$(mktemp -d /tmp/relayguard-bench.XXXXXX)
chmod 755 "$WORK"
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$WORK"' EXIT
wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

cat > "$WORK/bench.toml" <<TOML
hostname = "mail.example.com"
[domains]
local = ["example.com"]
[lan]
networks = ["127.0.0.1/32"]
TOML

run() { # $1 label, $2 port
  local t0 t1
  t0=$(date +%s.%N)
  smtp-source -s "$S" -m "$N" -l 4096 -f load@lan.example -t bench@example.com "127.0.0.1:$2"
  t1=$(date +%s.%N)
  python3 -c "import sys; n, a, b = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]); print(f'{sys.argv[4]:<28} {n} messages in {b-a:6.2f} s = {n/(b-a):8.0f} msg/s')" "$N" "$t0" "$t1" "$1"
}

"$BIN" serve --config "$WORK/bench.toml" --listen 127.0.0.1:2725 --spool "$WORK/spool" --max-per-ip 200 --max-connections 200 2>/dev/null &
pids+=($!)
wait_port 2725
run "relayguard serve (durable)" 2725

smtp-sink -u nobody 127.0.0.1:2726 256 &
pids+=($!)
wait_port 2726
run "postfix smtp-sink (no disk)" 2726
