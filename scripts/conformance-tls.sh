# Sourced by scripts/conformance.sh: STARTTLS against `serve` with real
# TLS peers (issue 14). serve presents a throw-away certificate made by
# openssl on the fly, with `[auth] require_tls` at its default (on), on
# loopback. Checked: swaks --tls with AUTH relays, openssl s_client
# -starttls smtp sees AUTH only after TLS, Python smtplib starttls() +
# login + sendmail, a raw-socket STARTTLS injection (commands in the same
# packet as STARTTLS never run, and the log counts their octets), nmap
# (STARTTLS in the EHLO list, TLS 1.2 and 1.3 only). TLS_ONLY=1 runs only
# these. Needs openssl, swaks with IO::Socket::SSL, python3 and nmap.

tls_checks() {
  local port=$((PORT + 20)) dir="$WORK/tls"
  mkdir -p "$dir"
  if ! command -v openssl >/dev/null; then
    no "tls: openssl is not installed"
    return
  fi
  if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
      -subj "/CN=mail.example.com" -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>"$dir/openssl-req.log"; then
    no "tls: openssl req made no certificate: $(tail -1 "$dir/openssl-req.log")"
    return
  fi
  write_config "$dir/tls.toml" ""
  # Relative to the configuration file, as every path in it.
  printf '[tls]\ncert = "cert.pem"\nkey = "key.pem"\n' >> "$dir/tls.toml"
  "$BIN" serve --config "$dir/tls.toml" --listen "127.0.0.1:$port" --spool "$dir/spool" \
    --retry-base 1 --grace 1 --record "$dir/recorded" 2>"$dir/serve.log" &
  local serve_pid=$!
  pids+=("$serve_pid")
  wait_port 127.0.0.1 "$port" || { echo "serve did not start:"; tail -5 "$dir/serve.log"; }
  [ -d "$WORK/sink" ] || start_sink

  local out before
  # --- swaks
  out=$(swaks --server 127.0.0.1:$port --local-interface $OUTSIDE --ehlo swaks.example \
    --from carol@example.com --to relaytest@nmap.scanme.org --tls \
    --auth PLAIN --auth-user carol --auth-password secret --h-Subject "over TLS" 2>&1)
  check "tls: swaks --tls: STARTTLS answered 220 2.0.0" grep -qE "<- +220 2.0.0 Ready to start TLS" <<<"$out"
  check "tls: swaks --tls: the handshake is TLS 1.2 or 1.3" grep -qE "TLS started with cipher TLSv1\.[23]" <<<"$out"
  check "tls: swaks --tls --auth: AUTH PLAIN over TLS is accepted (235)" grep -qE "<~ +235 " <<<"$out"
  check "tls: swaks --tls --auth relays out (250 after DATA)" grep -qE "<~ +250 2.0.0 Ok: queued" <<<"$out"
  out=$(swaks --server 127.0.0.1:$port --local-interface $OUTSIDE --from carol@example.com \
    --to relaytest@nmap.scanme.org --auth PLAIN --auth-user carol --auth-password secret 2>&1)
  check "tls: swaks --auth without --tls: AUTH is not advertised before TLS" \
    grep -q "Host did not advertise authentication" <<<"$out"

  # --- openssl s_client
  # -name: s_client's own EHLO, whose default (mail.example.com) is the
  # server's name, which serve refuses as a forged HELO.
  out=$(printf 'EHLO s-client.example\nQUIT\n' | timeout 20 openssl s_client -starttls smtp \
    -name s-client.example -connect 127.0.0.1:$port -crlf -ign_eof 2>&1)
  check "tls: openssl s_client -starttls smtp: a TLS 1.2/1.3 session" grep -qE "^New, TLSv1\.[23]" <<<"$out"
  check "tls: openssl s_client: the EHLO after TLS shows AUTH and no STARTTLS any more" \
    bash -c 'grep -qE "^250[- ]AUTH " <<<"$1" && ! grep -q "^250[- ]STARTTLS" <<<"$1"' _ "$out"
  check "tls: serve answered s_client's STARTTLS with 220 2.0.0" \
    grep -q "reply 220 2.0.0 Ready to start TLS" "$dir/serve.log"

  # --- Python smtplib
  before=$(sink_count)
  out=$(python3 - "$port" "$OUTSIDE" <<'PY'
import smtplib, ssl, sys
port, src = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP("127.0.0.1", port, source_address=(src, 0), timeout=20)
s.ehlo("py.example")
print("before TLS: auth" if s.has_extn("auth") else "before TLS: no auth")
print("before TLS: starttls" if s.has_extn("starttls") else "before TLS: no starttls")
code, _ = s.starttls(context=ctx)
print("starttls", code, s.sock.version())
s.ehlo("py.example")
print("after TLS: auth" if s.has_extn("auth") else "after TLS: no auth")
s.login("carol", "secret")
refused = s.sendmail("carol@example.com", ["relaytest@nmap.scanme.org"], b"Subject: smtplib over TLS\r\n\r\nhello\r\n")
print("sent", len(refused), "refused")
s.quit()
PY
)
  check "tls: smtplib: EHLO before TLS offers STARTTLS and no AUTH" \
    bash -c 'grep -q "before TLS: starttls" <<<"$1" && grep -q "before TLS: no auth" <<<"$1"' _ "$out"
  check "tls: smtplib: starttls() gets 220 and TLS 1.2/1.3" grep -qE "starttls 220 TLSv1\.[23]" <<<"$out"
  check "tls: smtplib: login over TLS, sendmail relays" \
    bash -c 'grep -q "after TLS: auth" <<<"$1" && grep -q "sent 0 refused" <<<"$1"' _ "$out"
  check "tls: the relayed messages reach the sink" wait_sink $((before + 1))

  # --- STARTTLS command injection (CVE-2011-0411): MAIL and RCPT in the
  # same packet as STARTTLS must never run, before or after the handshake.
  out=$(python3 - "$port" "$OUTSIDE" <<'PY'
import socket, ssl, sys
port, src = int(sys.argv[1]), sys.argv[2]

def replies(sock, want):
    """Reads until `want` whole replies came, or the peer closed."""
    data = b""
    while sum(1 for l in data.split(b"\r\n")[:-1] if l[3:4] != b"-") < want:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace")

s = socket.create_connection(("127.0.0.1", port), timeout=20, source_address=(src, 0))
replies(s, 1)
s.sendall(b"EHLO inject.example\r\n")
replies(s, 1)
injected = b"MAIL FROM:<s@outside.example>\r\nRCPT TO:<alice@example.com>\r\n"
s.sendall(b"STARTTLS\r\n" + injected)
plain = replies(s, 1)
print("plain:", plain.strip().replace("\r\n", " | "))
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
t = ctx.wrap_socket(s)
print("tls:", t.version())
t.sendall(b"NOOP\r\n")
print("first over TLS:", replies(t, 1).strip())
t.sendall(b"QUIT\r\n")
rest = b""
try:
    while True:
        chunk = t.recv(4096)
        if not chunk:
            break
        rest += chunk
except (OSError, ssl.SSLError):
    pass
print("rest over TLS:", rest.decode(errors="replace").strip().replace("\r\n", " | "))
print("injected octets:", len(injected))
PY
)
  check "tls: injection: only the 220 answers the STARTTLS packet" \
    grep -qxE "plain: 220 2.0.0 Ready to start TLS" <<<"$out"
  check "tls: injection: the first reply over TLS is NOOP's (the injected MAIL did not run)" \
    grep -qE "^first over TLS: 250 2.0.0 " <<<"$out"
  check "tls: injection: after it only QUIT's 221 (the injected RCPT did not run)" \
    grep -qE "^rest over TLS: 221 [^|]*$" <<<"$out"
  local n
  n=$(sed -n 's/^injected octets: //p' <<<"$out")
  check "tls: injection: serve's log counts the $n octets thrown away" \
    grep -q "TLS established; ${n:-x} octets pipelined after STARTTLS thrown away" "$dir/serve.log"
  check "tls: --record writes the handshake as a T: handshake step" \
    grep -rlq "^T: handshake" "$dir/recorded"

  # --- nmap: what a scanner sees. -sV names the service on this port, so
  # that the smtp scripts run on it.
  if command -v nmap >/dev/null; then
    out=$(timeout 120 nmap -Pn -n -sV --version-light -p "$port" \
      --script smtp-commands,ssl-enum-ciphers 127.0.0.1 2>&1)
    check "tls: nmap smtp-commands: STARTTLS in the EHLO list" grep -qE "smtp-commands:.*STARTTLS" <<<"$out"
    check "tls: nmap ssl-enum-ciphers: TLS 1.2 or 1.3 offered" grep -qE "^\|   TLSv1\.[23]:" <<<"$out"
    check "tls: nmap ssl-enum-ciphers: nothing older than TLS 1.2" \
      bash -c '! grep -qE "^\|   (SSLv3|TLSv1\.0|TLSv1\.1):" <<<"$1"' _ "$out"
  else
    no "tls: nmap is not installed"
  fi
  kill -TERM "$serve_pid" 2>/dev/null
  wait "$serve_pid" 2>/dev/null
}
