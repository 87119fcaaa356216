#!/usr/bin/env bash
# Peak RSS of `relayguard serve` holding deferred messages (issue 11): 200
# messages of 1 MB relayed from the LAN while their exchanger refuses
# connections (they stay queued, each retried), then the server restarted
# on that spool and left to recover and retry them. The node keeps only
# envelopes in memory and reads a body back per delivery round, at most
# --max-deliveries at once, so neither figure should grow with the queue.
# Prints one line per figure. Needs python3; loopback only.
set -uo pipefail
cd "$(dirname "$0")/.."

BIN=${RELAYGUARD:-target/release/relayguard}
[ -x "$BIN" ] || cargo build --release --quiet
WORK=$(mktemp -d -t relayguard-deferred.XXXXXX)
PORT=${PORT:-2960}
DEAD=$((PORT + 1)) # nothing listens here: every delivery is deferred
N=${DEFERRED_MESSAGES:-200}
pid=
cleanup() {
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

wait_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

cat > "$WORK/c.toml" <<TOML
hostname = "mail.example.com"
[domains]
local = ["example.com"]
[lan]
networks = ["127.0.0.2/32"]
[routes]
"*" = "127.0.0.1:$DEAD"
TOML

serve() {
  "$BIN" serve --config "$WORK/c.toml" --listen "127.0.0.1:$PORT" --spool "$WORK/spool" \
    --retry-base 1 --grace 1 --max-connections 200 --max-per-ip 200 2>>"$WORK/serve.log" &
  pid=$!
  wait_port || { echo "serve did not start"; tail -5 "$WORK/serve.log"; exit 1; }
}
hwm() { awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$pid/status"; }

serve
python3 scripts/disk_faults.py send --port "$PORT" --source 127.0.0.2 --to 'far{i}@elsewhere.example' \
  --count "$N" --size 1000000 --tag deferred --connections 20 --out "$WORK/acked" >/dev/null
sleep 5 # a few retry rounds of every message
acked=$(grep -c '^acked' "$WORK/acked")
queued=$(find "$WORK/spool/queue" -maxdepth 1 -type f | wc -l)
echo "deferred: $acked of $N messages of 1 MB acked, $queued queued; peak RSS (VmHWM) $(hwm) MiB"
kill -TERM "$pid"; wait "$pid" 2>/dev/null
serve
sleep 10 # recovery, then retry rounds of every message
echo "recovery: $(find "$WORK/spool/queue" -maxdepth 1 -type f | wc -l) queued after 10 s; peak RSS (VmHWM) $(hwm) MiB"
