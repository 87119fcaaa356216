# Sourced by scripts/conformance.sh: BDAT (RFC 3030 CHUNKING) against
# `serve` over raw sockets, in Python (issue 14): a message in pipelined
# chunks from the LAN is relayed and reaches the sink; a chunk with a bare
# LF is refused whole (554 5.6.0); a declared size past max_message_size is
# refused at once (552 5.3.4) and the octets after it are skipped, not run;
# DATA after BDAT is 503. swaks has no BDAT (no option sends it: checked
# in its --help), so it is not used here. CHUNKING_ONLY=1 runs only these.

chunking_checks() {
  write_config "$WORK/chunking.toml" ""
  "$BIN" serve --config "$WORK/chunking.toml" --listen "127.0.0.1:$PORT" --spool "$WORK/spool-chunking" \
    --retry-base 1 --grace 1 2>"$WORK/chunking.log" &
  local serve_pid=$!
  pids+=("$serve_pid")
  wait_port 127.0.0.1 "$PORT" || { echo "serve did not start:"; tail -5 "$WORK/chunking.log"; }

  local scenario out
  for scenario in chunked bare-lf oversize bdat-data; do
    out=$(python3 - "$PORT" "$LAN" "$OUTSIDE" "$scenario" <<'PY'
import socket, sys
port, lan, outside, scenario = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]

def connect(src):
    s = socket.socket()
    s.settimeout(5)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s

buf = b""
def replies(s, n):
    """The next n whole replies, each as its last line; 'timeout' if none."""
    global buf
    got = []
    while len(got) < n:
        while b"\r\n" not in buf:
            try:
                chunk = s.recv(4096)
            except socket.timeout:
                got.append("timeout")
                return got
            if not chunk:
                got.append("closed")
                return got
            buf += chunk
        line, buf = buf.split(b"\r\n", 1)
        text = line.decode(errors="replace")
        if len(text) < 4 or text[3] != "-":
            got.append(text)
    return got

def transaction():
    """A session from outside with a transaction open for a local mailbox."""
    s = connect(outside)
    replies(s, 1)
    s.sendall(b"EHLO probe.example\r\nMAIL FROM:<s@outside.example>\r\nRCPT TO:<alice@example.com>\r\n")
    replies(s, 3)
    return s

out = []
if scenario == "chunked":
    s = connect(lan)
    replies(s, 1)
    s.sendall(b"EHLO pc.lan\r\n")
    ehlo = replies(s, 1)
    body = [b"X-Conformance: bdat-chunked\r\nSubject: chunks\r\n\r\n", b"first line,\r", b"\nsecond line.\r\n"]
    wire = b"MAIL FROM:<pc@lan.example>\r\nRCPT TO:<relaytest@nmap.scanme.org>\r\n"
    for i, c in enumerate(body):
        last = b" LAST" if i == len(body) - 1 else b""
        wire += b"BDAT %d%s\r\n" % (len(c), last) + c
    s.sendall(wire)
    out = replies(s, 2 + len(body))
    s.sendall(b"QUIT\r\n")
    out += replies(s, 1)
elif scenario == "bare-lf":
    s = transaction()
    c1 = b"Subject: x\r\n\r\nhello\r\n"
    c2 = b"spam\n.\nMAIL FROM:<ceo@example.com>\r\nRCPT TO:<relaytest@nmap.scanme.org>\r\nDATA\r\n"
    s.sendall(b"BDAT %d\r\n" % len(c1) + c1 + b"BDAT %d LAST\r\n" % len(c2) + c2)
    out = replies(s, 2)
    s.sendall(b"QUIT\r\n")
    out += replies(s, 1)
elif scenario == "oversize":
    s = transaction()
    # Only the command: the 552 must come before any octet of the chunk.
    s.sendall(b"BDAT 99999999999 LAST\r\n")
    out = replies(s, 1)
    # What follows is octets of the refused chunk: never answered.
    s.sendall(b"MAIL FROM:<s@outside.example>\r\nRCPT TO:<relaytest@nmap.scanme.org>\r\nQUIT\r\n")
    s.settimeout(2)
    out += replies(s, 1)
elif scenario == "bdat-data":
    s = transaction()
    s.sendall(b"BDAT 4\r\nhi\r\nDATA\r\n")
    out = replies(s, 2)
    s.sendall(b"QUIT\r\n")
    out += replies(s, 1)
print("\n".join(out))
PY
)
    case $scenario in
      chunked)
        check "chunking: EHLO offers CHUNKING, three pipelined chunks from the LAN are relayed (250 after LAST)" \
          bash -c 'grep -q "^250 2.0.0 .*octets received" <<<"$1" && grep -q "^250 2.0.0 Ok: queued" <<<"$1"' _ "$out"
        local found=""
        for _ in $(seq 1 50); do
          if grep -rlq "X-Conformance: bdat-chunked" "$WORK/sink" 2>/dev/null; then found=1; break; fi
          sleep 0.2
        done
        check "chunking: ... and the chunked message reaches the sink" test -n "$found"
        ;;
      bare-lf)
        check "chunking: a bare LF inside a chunk refuses the message whole (554 5.6.0)" \
          bash -c 'grep -q "^554 5.6.0" <<<"$1" && ! grep -q "Ok: queued" <<<"$1"' _ "$out" ;;
      oversize)
        check "chunking: a declared size past the limit is refused at once (552 5.3.4), its octets never run" \
          bash -c 'head -1 <<<"$1" | grep -q "^552 5.3.4" && [ "$(sed -n 2p <<<"$1")" = timeout ]' _ "$out" ;;
      bdat-data)
        check "chunking: DATA after BDAT in one transaction is 503 5.5.1" \
          bash -c 'grep -q "^250 2.0.0 4 octets received" <<<"$1" && grep -q "^503 5.5.1" <<<"$1"' _ "$out" ;;
    esac
  done
  kill -TERM "$serve_pid" 2>/dev/null
  wait "$serve_pid" 2>/dev/null
}
