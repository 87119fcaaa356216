#!/usr/bin/env bash
# Conformance of `relayguard serve` with real peers, all on loopback:
#   swaks (LAN relays out, outsider refused and delivered locally),
#   Python smtplib (AUTH PLAIN relays, a wrong password gets 535),
#   nmap's smtp-open-relay script (closed config: no relay; open config: relay),
#   every corpus attack over TCP (nothing reaches the sink),
#   kill -9 in the middle of a load (every 250 arrives, nothing else),
#   hostile peers (slowloris, a client that never reads, password guessing).
#   bounded side effects: a NOOP flood is cut with a bounded log, a 50 MiB
#   junk line gives a capped transcript, descriptor exhaustion
#   (prlimit --nofile) logs a few lines and the server recovers.
#   disk and kernel faults (scripts/conformance-disk.sh: a full tmpfs, a
#   corrupt queue, prlimit --nofile, SIGHUP, a second server, peak RSS).
#   haproxy in front (scripts/conformance-proxy.sh: send-proxy and
#   send-proxy-v2, LAN relays and outside refused through it, a forged
#   header sent directly is refused).
#   STARTTLS (scripts/conformance-tls.sh: swaks --tls with AUTH, openssl
#   s_client -starttls smtp, smtplib starttls(), a raw STARTTLS command
#   injection, nmap smtp-commands and ssl-enum-ciphers).
#   BDAT over raw sockets (scripts/conformance-chunking.sh: chunks relayed
#   to the sink, a bare LF refused 554, an oversize declared size 552 with
#   its octets never run, DATA after BDAT 503).
# Needs swaks (with IO::Socket::SSL), nmap, postfix (smtp-sink), haproxy,
# openssl and python3; .ci/run installs them.
# Prints "conformance: N passed, M failed" and exits non-zero on a failure.
set -uo pipefail
cd "$(dirname "$0")/.."

BIN=${RELAYGUARD:-target/release/relayguard}
[ -x "$BIN" ] || cargo build --release --quiet
WORK=$(mktemp -d /tmp/relayguard-conformance.XXXXXX)
chmod 755 "$WORK"
PORT=${PORT:-2625}
SINK_PORT=$((PORT + 1))
LAN=127.0.0.2
OUTSIDE=127.0.0.3
SINK=127.0.0.5
pass=0
fail=0
pids=()

cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

ok() { echo "ok    $*"; pass=$((pass + 1)); }
no() { echo "FAIL  $*"; fail=$((fail + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else no "$what"; fi; }

# Waits (bounded) until a TCP port accepts connections.
wait_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

write_config() { # $1 file, $2 extra [relay] lines
  cat > "$1" <<TOML
hostname = "mail.example.com"
own_addresses = ["127.0.0.1"]
[domains]
local = ["example.com"]
mailboxes = ["alice@example.com", "bob@example.com", "carol@example.com", "postmaster@example.com"]
[lan]
networks = ["$LAN/32"]
[relay]
$2
[auth]
users = [{ name = "carol", password = "secret", relay = true }, { name = "dave", password = "pw", relay = false }]
[routes]
"*" = "$SINK:$SINK_PORT"
TOML
}

start_sink() {
  mkdir -p "$WORK/sink"
  chown nobody "$WORK/sink" 2>/dev/null
  smtp-sink -u nobody -d "$WORK/sink/%H%M%S." "$SINK:$SINK_PORT" 100 &
  pids+=($!)
  wait_port "$SINK" "$SINK_PORT"
}

serve() { # $1 config, $2 spool; runs in the background, sets SERVE_PID
  "$BIN" serve --config "$1" --listen "127.0.0.1:$PORT" --spool "$2" --retry-base 1 --grace 2 \
    --record "$2/recorded" 2>>"$WORK/serve.log" &
  SERVE_PID=$!
  pids+=("$SERVE_PID")
  wait_port 127.0.0.1 "$PORT" || { echo "serve did not start:"; tail -5 "$WORK/serve.log"; }
}

sink_count() { find "$WORK/sink" -type f | wc -l; }

# Waits (bounded) until the sink holds $1 messages.
wait_sink() {
  for _ in $(seq 1 100); do
    [ "$(sink_count)" -ge "$1" ] && return 0
    sleep 0.1
  done
  return 1
}

# Disk and kernel faults (issue 11) live in their own file; DISK_ONLY=1 runs only them.
. scripts/conformance-disk.sh
. scripts/conformance-proxy.sh
. scripts/conformance-tls.sh
if [ -n "${TLS_ONLY:-}" ]; then
  tls_checks
  echo "conformance: $pass passed, $fail failed"
  [ "$fail" -eq 0 ]; exit
fi
. scripts/conformance-chunking.sh
if [ -n "${CHUNKING_ONLY:-}" ]; then
  start_sink
  chunking_checks
  echo "conformance: $pass passed, $fail failed"
  [ "$fail" -eq 0 ]; exit
fi
if [ -n "${PROXY_ONLY:-}" ]; then
  proxy_checks
  echo "conformance: $pass passed, $fail failed"
  [ "$fail" -eq 0 ]; exit
fi
if [ -n "${DISK_ONLY:-}" ]; then
  disk_checks
  echo "conformance: $pass passed, $fail failed"
  [ "$fail" -eq 0 ]; exit
fi

start_sink
write_config "$WORK/closed.toml" ""
serve "$WORK/closed.toml" "$WORK/spool"

# --- swaks
out=$(swaks --server 127.0.0.1:$PORT --local-interface $LAN --from pc@lan.example --to relaytest@nmap.scanme.org --h-Subject "from the LAN" 2>&1)
check "swaks from the LAN: bound to $LAN" grep -q "Connected to 127.0.0.1" <<<"$out"
check "swaks from the LAN relays out (250 after DATA)" grep -qE "<- +250 2.0.0 Ok: queued" <<<"$out"
check "the relayed message reaches the sink" wait_sink 1
before=$(sink_count)
out=$(swaks --server 127.0.0.1:$PORT --local-interface $OUTSIDE --from s@outside.example --to relaytest@nmap.scanme.org 2>&1)
check "swaks from outside: relay refused with 550 5.7.1" grep -qE "<\*\* +550 5.7.1" <<<"$out"
out=$(swaks --server 127.0.0.1:$PORT --local-interface $OUTSIDE --from s@outside.example --to alice@example.com --h-Subject inbound 2>&1)
check "swaks from outside delivers to a local mailbox" grep -qE "<- +250 2.0.0 Ok: queued" <<<"$out"
maildir_has() { for _ in $(seq 1 50); do [ -n "$(ls "$WORK/spool/maildir/example.com/alice/new" 2>/dev/null)" ] && return 0; sleep 0.1; done; return 1; }
check "the Maildir file appears" maildir_has

# --- Python smtplib, AUTH PLAIN
py=$(python3 - "$PORT" "$OUTSIDE" <<'PY'
import smtplib, sys
port, src = int(sys.argv[1]), sys.argv[2]
s = smtplib.SMTP("127.0.0.1", port, source_address=(src, 0))
s.ehlo("py.example")
try:
    s.login("carol", "wrong")
    print("wrong password accepted")
except smtplib.SMTPAuthenticationError as e:
    print("wrong-password", e.smtp_code)
s.login("carol", "secret")
refused = s.sendmail("carol@example.com", ["friend@nmap.scanme.org"], b"Subject: auth\r\n\r\nrelayed after AUTH\r\n")
print("relayed", len(refused))
s.quit()
PY
)
check "smtplib: a wrong password gets 535" grep -q "wrong-password 535" <<<"$py"
check "smtplib: AUTH PLAIN relays" grep -q "relayed 0" <<<"$py"
check "the authenticated message reaches the sink" wait_sink $((before + 1))

# --- nmap smtp-open-relay, closed config
out=$(nmap -Pn -n -S $OUTSIDE -e lo -p $PORT --script +smtp-open-relay --script-args smtp-open-relay.domain=nmap.scanme.org 127.0.0.1 2>&1)
check "nmap: closed config is not an open relay" grep -q "Server doesn't seem to be an open relay" <<<"$out"

# --- every corpus attack over TCP: nothing reaches the sink
before=$(sink_count)
out=$("$BIN" replay --target 127.0.0.1:$PORT --source $OUTSIDE --config "$WORK/closed.toml" --timeout 5 corpus/attacks 2>&1)
check "corpus attacks over TCP: the oracle finds no open relay" grep -qE "replay: [0-9]+ passed, 0 failed" <<<"$out"
# A marker from the LAN, sent after the attacks: once it has arrived, the
# queue has had its chance to deliver anything the attacks got accepted.
swaks --server 127.0.0.1:$PORT --local-interface $LAN --from pc@lan.example --to marker@nmap.scanme.org >/dev/null 2>&1
wait_sink $((before + 1))
check "corpus attacks over TCP: nothing reached the sink but the marker" test "$(sink_count)" -eq $((before + 1))
check "sessions were recorded as transcripts" test -n "$(ls "$WORK/spool/recorded" 2>/dev/null)"
out=$("$BIN" replay --config "$WORK/closed.toml" "$WORK/spool/recorded" 2>&1)
check "recorded sessions replay in audit mode" grep -qE "replay: [0-9]+ passed, 0 failed" <<<"$out"

kill -TERM "$SERVE_PID"
wait "$SERVE_PID"
check "SIGTERM: serve exits 0" test $? -eq 0

# --- nmap against an acknowledged open relay: the check can fail
write_config "$WORK/open.toml" $'outside_lan = true\nacknowledge_open_relay = true'
serve "$WORK/open.toml" "$WORK/spool-open"
out=$(nmap -Pn -n -S $OUTSIDE -e lo -p $PORT --script +smtp-open-relay --script-args smtp-open-relay.domain=nmap.scanme.org 127.0.0.1 2>&1)
check "nmap: acknowledged open relay is reported open" grep -q "Server is an open relay" <<<"$out"
kill -TERM "$SERVE_PID"; wait "$SERVE_PID"

# --- kill -9 under load: every 250 arrives exactly once at the sink, nothing else
write_config "$WORK/load.toml" ""
rm -rf "$WORK/sink"; start_sink
serve "$WORK/load.toml" "$WORK/spool-load"
python3 scripts/load.py --port "$PORT" --source "$LAN" --messages 400 --connections 8 --out "$WORK/acked.txt" &
LOAD=$!
wait_sink 20  # the load is under way
kill -9 "$SERVE_PID"
wait "$SERVE_PID" 2>/dev/null  # reaped: its port is free again
serve "$WORK/load.toml" "$WORK/spool-load"
wait "$LOAD"
acked=$(wc -l < "$WORK/acked.txt")
# Deliveries deferred across the restart are retried (1 s, 2 s, ...): wait,
# bounded, until the check holds.
for _ in $(seq 1 120); do
  missing=$(python3 scripts/load.py --check "$WORK/acked.txt" --sink "$WORK/sink")
  grep -q "^ok" <<<"$missing" && break
  sleep 0.5
done
echo "check: $missing"
check "kill -9: every acknowledged message at the sink, intact; nothing unsent ($acked acked)" grep -q "^ok" <<<"$missing"
kill -TERM "$SERVE_PID"; wait "$SERVE_PID"

# --- hostile peers: deadlines and the AUTH throttle (scripts/hostile.py).
# Short limits so that the bounded loops end in seconds: each check allows
# the deadline plus 2 s.
hostile_peers() {
  write_config "$WORK/hostile.toml" ""
  cat >> "$WORK/hostile.toml" <<TOML
[limits]
command_timeout_secs = 3
data_timeout_secs = 3
auth_failure_delay_ms = 200
auth_failures_per_ip = 10
# Every refused AUTH is an error too; past the soft limit each would wait a
# second by default, which makes the 200 tries below slow, not wrong.
error_delay_ms = 50
TOML
  serve "$WORK/hostile.toml" "$WORK/spool-hostile"
  python3 scripts/hostile.py slowloris --port "$PORT" --sources 127.0.0.10 --count 10 --every 1 --limit 20 > "$WORK/loris.txt" &
  local loris=$!
  sleep 1  # the slowloris connections are open
  local out
  out=$(swaks --server 127.0.0.1:$PORT --local-interface $LAN --from pc@lan.example --to alice@example.com 2>&1)
  check "hostile: swaks is served while a slowloris runs" grep -qE "<- +250 2.0.0 Ok: queued" <<<"$out"
  wait "$loris"
  echo "slowloris: $(cat "$WORK/loris.txt")"
  check "hostile: 10 slowloris connections (1 octet/s) all cut within 3 s + 2" \
    awk '$1 == "lasted" && $4 == "10/10" && $3 <= 5 { ok = 1 } END { exit !ok }' "$WORK/loris.txt"
  out=$(python3 scripts/hostile.py slowloris --port "$PORT" --sources 127.0.0.30 --count 5 --every 1 --limit 20 --data)
  echo "slowloris in DATA: $out"
  check "hostile: 5 slowloris connections in DATA all cut within 3 s + 2" \
    awk '$1 == "lasted" && $4 == "5/5" && $3 <= 5 { ok = 1 } END { exit !ok }' <<<"$out"
  out=$(python3 scripts/hostile.py slowreader --port "$PORT" --source $OUTSIDE --limit 30)
  echo "slow reader: $out"
  # The replies first fill the socket buffers; then a write waits 3 s at most.
  check "hostile: a client that never reads is dropped" grep -q "^dropped after" <<<"$out"
  out=$(python3 scripts/hostile.py guess --port "$PORT" --source $OUTSIDE --tries 200 --limit 120)
  echo "password guessing: $out"
  check "hostile: of 200 wrong passwords at most 10 are tried, the rest refused, 200 ms apart at least" \
    awk '$1 == "tries" && $2 == 200 && $4 <= 10 && $6 >= 190 && $12 >= 0.2 { ok = 1 } END { exit !ok }' <<<"$out"
  kill -TERM "$SERVE_PID"; wait "$SERVE_PID"
  # The connection rate per address, counted across connections by the
  # node's table: the sixth connection in a minute is refused at once,
  # another address is not.
  write_config "$WORK/rate.toml" ""
  printf '[limits]\nconnections_per_ip_per_minute = 5\nsoft_error_limit = 2\nerror_delay_ms = 300\n' >> "$WORK/rate.toml"
  serve "$WORK/rate.toml" "$WORK/spool-rate"
  out=$(python3 - "$PORT" <<'PY'
import socket, sys
port = int(sys.argv[1])
def greeting(src):
    s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(src, 0))
    line = s.recv(512).decode(errors="replace")
    s.close()
    return line[:3]
print(" ".join(greeting("127.0.0.40") for _ in range(8)), greeting("127.0.0.41"))
PY
)
  echo "connection rate: $out"
  # Past the soft error limit each error waits error_delay_ms: 8 bad
  # commands with a limit of 2 and 300 ms take at least 6 x 0.3 s.
  local slow
  slow=$(python3 - "$PORT" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
s = socket.create_connection(("127.0.0.1", port), timeout=20, source_address=("127.0.0.42", 0))
s.recv(512)
start = time.monotonic()
s.sendall(b"BOGUS\r\n" * 8 + b"QUIT\r\n")
got = b""
while b"221 " not in got:
    b = s.recv(4096)
    if not b:
        break
    got += b
print("errors", got.count(b"\r\n500 ") + got.startswith(b"500 "), "in %.2f s" % (time.monotonic() - start))
PY
)
  echo "error delay: $slow"
  check "hostile: 8 errors past a soft limit of 2 take at least 6 x 300 ms" \
    awk '$1 == "errors" && $2 == 8 && $4 >= 1.8 { ok = 1 } END { exit !ok }' <<<"$slow"
  check "hostile: 5 connections a minute from one address, the next 3 hear 421, another address 220" \
    test "$out" = "220 220 220 220 220 421 421 421 220"
  kill -TERM "$SERVE_PID"; wait "$SERVE_PID"
}
hostile_peers
# --- bounded side effects: what one client can make the server write or hold
write_config "$WORK/bounded.toml" ""
"$BIN" serve --config "$WORK/bounded.toml" --listen "127.0.0.1:$PORT" --spool "$WORK/spool-bounded" --grace 1 \
  --record "$WORK/rec-bounded" --record-max-session 65536 2>"$WORK/bounded.log" &
SERVE_PID=$!; pids+=("$SERVE_PID")
wait_port 127.0.0.1 "$PORT"
py=$(python3 - "$PORT" "$OUTSIDE" <<'PY'
import socket, sys
port, src = int(sys.argv[1]), sys.argv[2]
def talk(payload, shut=False):
    s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(src, 0))
    s.recv(1024)
    try:
        s.sendall(payload)
        if shut:
            s.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    got = b""
    try:
        while (b := s.recv(65536)):
            got += b
    except OSError:
        pass
    return got
got = talk(b"EHLO flood.example\r\n" + b"NOOP\r\n" * 200000)
last = got.rstrip(b"\r\n").split(b"\r\n")[-1].decode()
print("flood", got.count(b"250 2.0.0 Ok\r\n"), last)
talk(b"\xff" * (50 << 20), shut=True)
print("junk sent")
PY
)
check "NOOP flood: cut with 421 after max_junk_commands (100) NOOPs" grep -qE "^flood 100 421 4.7.0" <<<"$py"
check "NOOP flood: the server log stays small ($(wc -l < "$WORK/bounded.log") lines)" test "$(wc -l < "$WORK/bounded.log")" -lt 300
rss=$(awk '/VmHWM/ {print $2}' "/proc/$SERVE_PID/status")
check "50 MiB junk line: peak RSS of serve under 50 MB (${rss} kB)" test "${rss:-999999}" -lt 51200
kill -TERM "$SERVE_PID"; wait "$SERVE_PID"
big=$(ls -S "$WORK/rec-bounded"/*.smtp | head -1)
check "50 MiB junk line: the transcript is capped ($(wc -c < "$big") octets)" test "$(wc -c < "$big")" -le $((65536 + 1024))
check "50 MiB junk line: the transcript says @truncated" grep -q "^@truncated " "$big"
out=$("$BIN" replay --config "$WORK/bounded.toml" "$big" 2>&1)
check "a truncated transcript replays, and replay says it was truncated" grep -q "ok .*recording truncated after" <<<"$out"

# The log budget alone: with the junk limit out of the way, 200,000 NOOPs
# are all answered, and the log keeps --log-lines-per-session of them.
{ cat "$WORK/bounded.toml"; printf '[limits]\nmax_junk_commands = 1000000\n'; } > "$WORK/nojunk.toml"
"$BIN" serve --config "$WORK/nojunk.toml" --listen "127.0.0.1:$PORT" --spool "$WORK/spool-nojunk" --grace 1 \
  2>"$WORK/nojunk.log" &
SERVE_PID=$!; pids+=("$SERVE_PID")
wait_port 127.0.0.1 "$PORT"
python3 - "$PORT" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"EHLO flood.example\r\n" + b"NOOP\r\n" * 200000 + b"QUIT\r\n")
try:
    while s.recv(65536):
        pass
except OSError:
    pass
PY
kill -TERM "$SERVE_PID"; wait "$SERVE_PID"
check "NOOP flood without the junk limit: $(wc -l < "$WORK/nojunk.log") log lines" test "$(wc -l < "$WORK/nojunk.log")" -lt 300
check "NOOP flood without the junk limit: the close says how many lines were left out" grep -q "more lines of this session not logged" "$WORK/nojunk.log"

# Descriptor exhaustion: 100 held connections against 64 descriptors.
prlimit --nofile=64 "$BIN" serve --config "$WORK/bounded.toml" --listen "127.0.0.1:$PORT" --spool "$WORK/spool-nofile" \
  --grace 1 --max-connections 1000 --max-per-ip 1000 2>"$WORK/nofile.log" &
SERVE_PID=$!; pids+=("$SERVE_PID")
wait_port 127.0.0.1 "$PORT"
python3 - "$PORT" <<'PY'
import socket, sys, time
socks = []
for _ in range(100):
    try:
        socks.append(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2))
    except OSError:
        pass
time.sleep(3)
for s in socks:
    s.close()
PY
out=$(swaks --server 127.0.0.1:$PORT --local-interface $OUTSIDE --from s@outside.example --to alice@example.com 2>&1)
n=$(grep -c "accept:" "$WORK/nofile.log")
check "nofile exhausted: accept failed and was logged ($n accept lines, at most 4)" test "$n" -ge 1 -a "$n" -le 4
check "nofile exhausted: the server recovers and serves swaks" grep -qE "<- +250 2.0.0 Ok: queued" <<<"$out"
kill -TERM "$SERVE_PID"; wait "$SERVE_PID"
disk_checks
proxy_checks
tls_checks
chunking_checks

echo "conformance: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
