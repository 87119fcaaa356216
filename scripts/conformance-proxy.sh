# Sourced by scripts/conformance.sh: Debian's haproxy in front of `serve`
# (issue 15). haproxy connects from its own address (PROXY_ADDR, the only
# trusted proxy) and names the client with send-proxy (v1) on one port and
# send-proxy-v2 on another. Through it the LAN address relays and the
# outside address is refused; a direct connection from outside carrying a
# forged header is refused and closed. PROXY_ONLY=1 runs only these.

PROXY_ADDR=127.0.0.4

proxy_checks() {
  if ! command -v haproxy >/dev/null; then
    no "proxy: haproxy is not installed"
    return
  fi
  local v1=$((PORT + 10)) v2=$((PORT + 11))
  write_config "$WORK/proxy.toml" ""
  printf '[proxy]\ntrusted = ["%s"]\nheader = "optional"\n' "$PROXY_ADDR" >> "$WORK/proxy.toml"
  cat > "$WORK/haproxy.cfg" <<CFG
global
  log stderr format raw local0 emerg
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend v1
  bind 127.0.0.1:$v1
  default_backend relay_v1
frontend v2
  bind 127.0.0.1:$v2
  default_backend relay_v2
backend relay_v1
  server relay 127.0.0.1:$PORT send-proxy source $PROXY_ADDR
backend relay_v2
  server relay 127.0.0.1:$PORT send-proxy-v2 source $PROXY_ADDR
CFG
  "$BIN" serve --config "$WORK/proxy.toml" --listen "127.0.0.1:$PORT" --spool "$WORK/spool-proxy" \
    --retry-base 1 --grace 1 --record "$WORK/spool-proxy/recorded" 2>"$WORK/proxy.log" &
  local serve_pid=$!
  pids+=("$serve_pid")
  wait_port 127.0.0.1 "$PORT" || { echo "serve did not start:"; tail -5 "$WORK/proxy.log"; }
  haproxy -db -f "$WORK/haproxy.cfg" 2>"$WORK/haproxy.log" &
  local ha_pid=$!
  pids+=("$ha_pid")
  wait_port 127.0.0.1 "$v1" && wait_port 127.0.0.1 "$v2" || { echo "haproxy did not start:"; tail -5 "$WORK/haproxy.log"; }

  local out port name
  for port in $v1 $v2; do
    name="send-proxy$([ "$port" = "$v2" ] && echo -v2)"
    out=$(swaks --server 127.0.0.1:$port --local-interface $LAN --from pc@lan.example --to relaytest@nmap.scanme.org 2>&1)
    check "proxy: haproxy $name, swaks from the LAN address relays out" grep -qE "<- +250 2.0.0 Ok: queued" <<<"$out"
    out=$(swaks --server 127.0.0.1:$port --local-interface $OUTSIDE --from s@outside.example --to relaytest@nmap.scanme.org 2>&1)
    check "proxy: haproxy $name, swaks from outside is refused (550 5.7.1)" grep -qE "<\*\* +550 5.7.1" <<<"$out"
  done
  check "proxy: the log names the proxied clients (the outside address)" \
    bash -c 'grep "proxied: the trusted proxy names the client" "$1" | grep -q "$2"' _ "$WORK/proxy.log" "$OUTSIDE"
  check "proxy: a recorded session carries @peer (client) and @proxy (haproxy)" \
    grep -lq "^@proxy $PROXY_ADDR" -r "$WORK/spool-proxy/recorded"

  # From the trusted address itself: a v2 LOCAL (names no client) and a
  # truncated header are refused with what is wrong.
  local what
  for what in local truncated; do
    out=$(python3 - "$PORT" "$PROXY_ADDR" "$what" <<'PY'
import socket, sys
port, src, kind = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.socket()
s.settimeout(10)
s.bind((src, 0))
s.connect(("127.0.0.1", port))
if kind == "local":
    s.sendall(b"\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00")
else:
    s.sendall(b"PROXY TCP4 127.0.0.2 127.0.")
    s.shutdown(socket.SHUT_WR)
data = b""
try:
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
except OSError:
    pass
print(data.decode(errors="replace"))
PY
)
    check "proxy: a $what header from the trusted proxy is refused (554 5.5.0)" grep -q "554 5.5.0" <<<"$out"
  done

  for forged in v1 v2; do
    out=$(python3 - "$PORT" "$OUTSIDE" "$forged" <<'PY'
import socket, sys
port, src, kind = int(sys.argv[1]), sys.argv[2], sys.argv[3]
if kind == "v1":
    header = b"PROXY TCP4 127.0.0.2 127.0.0.1 40000 25\r\n"
else:
    header = (b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c" + bytes([127, 0, 0, 2, 127, 0, 0, 1])
              + (40000).to_bytes(2, "big") + (25).to_bytes(2, "big"))
s = socket.socket()
s.settimeout(10)
s.bind((src, 0))
s.connect(("127.0.0.1", port))
s.sendall(header + b"EHLO forged.example\r\nMAIL FROM:<s@outside.example>\r\nRCPT TO:<relaytest@nmap.scanme.org>\r\n")
data = b""
try:
    while True:
        chunk = s.recv(4096)
        if not chunk:
            print("closed")
            break
        data += chunk
except OSError:
    pass
print(data.decode(errors="replace"))
PY
)
    check "proxy: a direct $forged header from outside is refused (554 5.7.0)" grep -q "554 5.7.0 Error: PROXY protocol header not accepted from $OUTSIDE" <<<"$out"
    check "proxy: ... and the connection is closed, nothing relayed" bash -c '! grep -q "250 2.1.5" <<<"$1" && grep -q closed <<<"$1"' _ "$out"
  done
  kill -TERM "$ha_pid" "$serve_pid" 2>/dev/null
  wait "$ha_pid" "$serve_pid" 2>/dev/null
}
