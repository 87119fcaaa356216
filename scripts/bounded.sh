#!/usr/bin/env bash
# Measures what one hostile client can make `relayguard serve` write or hold
# (issue 12, "bounded side effects"), on loopback:
#   1. 200,000 pipelined NOOPs: bytes and lines of log, and whether the
#      session is cut;
#   2. one 50 MiB junk line with --record: transcript size and the server's
#      peak RSS;
#   3. 20 messages of 100 recipients each to 2,000 local parts, without a
#      mailboxes list: mailbox folders made;
#   4. descriptor exhaustion (prlimit --nofile 64, 120 connections held for
#      10 s): accept log lines, then whether swaks is served.
# Prints one line per figure. Needs python3, swaks and prlimit.
set -uo pipefail
cd "$(dirname "$0")/.."

BIN=${RELAYGUARD:-target/release/relayguard}
[ -x "$BIN" ] || cargo build --release --quiet
WORK=$(mktemp -d -t relayguard-bounded.XXXXXX)
PORT=${PORT:-2950}
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

wait_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

cat > "$WORK/open-boxes.toml" <<TOML
hostname = "mail.example.com"
[domains]
local = ["example.com"]
TOML

serve() { # $1 name; more args go to serve. Sets SERVE_PID, log in $WORK/$1.log
  local name=$1; shift
  "$@" "$BIN" serve --config "${CONFIG:-$WORK/open-boxes.toml}" --listen "127.0.0.1:$PORT" \
    --spool "$WORK/$name" --retry-base 1 --grace 1 "${SERVE_ARGS[@]}" 2>"$WORK/$name.log" &
  SERVE_PID=$!
  pids+=("$SERVE_PID")
  wait_port "$PORT" || { echo "serve did not start"; cat "$WORK/$name.log"; exit 1; }
}
stop() { kill -TERM "$SERVE_PID"; wait "$SERVE_PID" 2>/dev/null; }

# --- 1. NOOP flood
SERVE_ARGS=()
serve flood
python3 - "$PORT" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(10)
s.recv(1024)
t0 = time.time()
data = b"EHLO flood.example\r\n" + b"NOOP\r\n" * 200000
sent = 0
try:
    s.sendall(data)
    sent = len(data)
except OSError as e:
    print(f"flood: send stopped: {e}")
got = b""
try:
    while True:
        b = s.recv(65536)
        if not b:
            break
        got += b
except OSError:
    pass
lines = got.split(b"\r\n")
cut = [l.decode() for l in lines if l.startswith(b"421")]
print(f"flood: {len(data)} octets to send, {sent} sent; {got.count(b'250 2.0.0 Ok')} NOOPs answered; "
      f"closed by the server: {'yes, ' + cut[0] if cut else 'no'}; {time.time() - t0:.2f} s")
PY
stop
echo "flood: log $(wc -c < "$WORK/flood.log") octets, $(wc -l < "$WORK/flood.log") lines (whole server log)"
grep -m1 "not logged" "$WORK/flood.log" | sed 's/^/flood: summary: /' || echo "flood: no summary line (the session logged less than its budget)"

# --- 1b. the same flood with the junk limit out of the way: the log budget alone
{ cat "$WORK/open-boxes.toml"; printf '[limits]\nmax_junk_commands = 1000000\n'; } > "$WORK/nojunk.toml"
SERVE_ARGS=()
CONFIG="$WORK/nojunk.toml" serve nojunk
python3 - "$PORT" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
s.recv(1024)
t0 = time.time()
s.sendall(b"EHLO flood.example\r\n" + b"NOOP\r\n" * 200000 + b"QUIT\r\n")
got = b""
while (b := s.recv(65536)):
    got += b
print(f"nojunk: {got.count(b'250 2.0.0 Ok')} NOOPs answered in {time.time() - t0:.2f} s")
PY
stop
echo "nojunk: log $(wc -c < "$WORK/nojunk.log") octets, $(wc -l < "$WORK/nojunk.log") lines (whole server log)"
grep -m1 "not logged" "$WORK/nojunk.log" | sed 's/^/nojunk: summary: /'

# --- 2. 50 MiB junk line with --record
SERVE_ARGS=(--record "$WORK/recorded")
serve junk
python3 - "$PORT" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.recv(1024)
chunk = b"\xff" * (1 << 20)
for _ in range(50):
    s.sendall(chunk)
s.shutdown(socket.SHUT_WR)
s.settimeout(10)
try:
    while s.recv(65536):
        pass
except OSError:
    pass
PY
for _ in $(seq 1 50); do [ -n "$(ls "$WORK/recorded" 2>/dev/null)" ] && break; sleep 0.1; done
rss=$(awk '/VmHWM/ {print $2, $3}' "/proc/$SERVE_PID/status")
stop
f=$(ls -S "$WORK/recorded"/*.smtp | head -1)  # the largest: the probe of wait_port is recorded too
echo "junk: transcript $(wc -c < "$f") octets, $(grep -c '' "$f") lines, marker: $(grep '^@truncated' "$f"); serve peak RSS (VmHWM) $rss"
echo "junk: replay: $("$BIN" replay --config "$WORK/open-boxes.toml" "$f" 2>&1 | tail -2 | tr '\n' ' ')"

# --- 3. mailbox folders without a mailboxes list
SERVE_ARGS=()
serve boxes
python3 - "$PORT" <<'PY'
import smtplib, sys
port = int(sys.argv[1])
acked = 0
for m in range(20):
    s = smtplib.SMTP("127.0.0.1", port)
    s.ehlo("boxes.example")
    rcpts = [f"u{m * 100 + i}@example.com" for i in range(100)]
    refused = s.sendmail("x@outside.example", rcpts, b"Subject: folders\r\n\r\nhi\r\n")
    acked += 100 - len(refused)
    s.quit()
print(f"boxes: 20 messages, {acked} recipients accepted")
PY
# Delivery runs after the 250s: wait (bounded) until the folder count settles.
last=-1
for _ in $(seq 1 60); do
  n=$(find "$WORK/boxes/maildir" -mindepth 2 -maxdepth 2 -type d 2>/dev/null | wc -l)
  [ "$n" -eq "$last" ] && break
  last=$n; sleep 0.5
done
stop
echo "boxes: $n mailbox folders made; $(grep -c 'queue: bounced' "$WORK/boxes.log") messages bounced (recipients beyond the limit); log $(grep -c '' "$WORK/boxes.log") lines"

# --- 4. descriptor exhaustion (connection limits high, so that the held
# sessions keep their descriptors instead of being refused and closed)
SERVE_ARGS=(--max-connections 1000 --max-per-ip 1000)
serve emfile prlimit --nofile=64
python3 - "$PORT" <<'PY' &
import socket, sys, time
socks = []
for _ in range(120):
    try:
        socks.append(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2))
    except OSError:
        pass
time.sleep(10)
for s in socks:
    s.close()
PY
HOLD=$!
sleep 2
before=$(grep -c "accept:" "$WORK/emfile.log")
sleep 6
after=$(grep -c "accept:" "$WORK/emfile.log")
wait "$HOLD"
# The episode's closing line comes with the first connection accepted after
# ten quiet seconds (10 x the 1 s cap).
sleep 11
out=$(swaks --server 127.0.0.1:$PORT --from a@outside.example --to bob@example.com 2>&1)
stop
echo "emfile: $(grep -c 'accept:' "$WORK/emfile.log") accept log lines in all, $((after - before)) in 6 s of exhaustion; first: $(grep -m1 accept "$WORK/emfile.log" | cut -c1-200)"
grep 'accept:' "$WORK/emfile.log" | cut -c1-200 | sed 's/^/emfile: /'
echo "emfile: after the clients left, swaks: $(grep -E '<- +250 2.0.0 Ok: queued' <<<"$out" | head -1 | sed 's/^ *//' || echo not served)"
