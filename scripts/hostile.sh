#!/usr/bin/env bash
# The figures of issue 12 for the deadlines and throttles, re-measured on
# loopback against `relayguard serve` with command_timeout_secs = 10 (as in
# the issue) and data_timeout_secs = 10, every other limit at its default.
# Not run by CI; the numbers go into BENCHMARKS.md. Usage: scripts/hostile.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/relayguard
PORT=${PORT:-2810}
cargo build --release --quiet
WORK=$(mktemp -d /tmp/relayguard-hostile.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$WORK"' EXIT
wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

cat > "$WORK/hostile.toml" <<TOML
hostname = "mail.example.com"
[domains]
local = ["example.com"]
mailboxes = ["alice@example.com"]
[lan]
networks = ["127.0.0.2/32"]
[auth]
users = [{ name = "carol", password = "secret", relay = true }]
[limits]
command_timeout_secs = 10
data_timeout_secs = 10
TOML
"$BIN" serve --config "$WORK/hostile.toml" --listen 127.0.0.1:$PORT --spool "$WORK/spool" 2>/dev/null &
pids+=($!)
wait_port $PORT

swaks_at() { # $1 seconds to wait first
  sleep "$1"
  local out
  out=$(swaks --server 127.0.0.1:$PORT --local-interface 127.0.0.2 --from pc@lan.example --to alice@example.com 2>&1 || true)
  if grep -qE "<- +250 2.0.0 Ok: queued" <<<"$out"; then echo "swaks at +$1 s: served"
  else echo "swaks at +$1 s: not served: $(grep -E '^(<\*\*|\*\*\*)' <<<"$out" | head -1)"; fi
}

echo "== slowloris: 100 connections (100 addresses), one octet every 3 s of a command line, max_connections 100"
swaks_at 5 & s1=$!
swaks_at 12 & s2=$!
swaks_at 20 & s3=$!
python3 scripts/hostile.py slowloris --port $PORT --sources 127.0.1.1 --count 100 --every 3 --limit 60
wait $s1 $s2 $s3
echo "== slowloris inside DATA: 20 connections, one octet every 3 s"
python3 scripts/hostile.py slowloris --port $PORT --sources 127.0.2.1 --count 20 --every 3 --limit 60 --data
echo "== slow reader: pipelined NOOPs, never read"
python3 scripts/hostile.py slowreader --port $PORT --source 127.0.0.3 --limit 120
echo "== 1,000 wrong AUTH PLAIN from one address"
python3 scripts/hostile.py guess --port $PORT --source 127.0.0.4 --tries 1000 --limit 600
