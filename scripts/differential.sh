#!/usr/bin/env bash
# Differential proof of `relayguard probe` against real Postfix on loopback.
#
# For each configuration below, a throw-away Postfix instance (its own
# config_directory, queue and log, a non-default port) is started, probe is
# run against it with its sink as the "foreign" mail exchanger (Postfix's
# transport_maps route the test domain and the backup-MX domain there), and
# probe's verdicts are checked against Postfix's own log: which probe
# messages Postfix handed to the sink, which it delivered to local mailbox
# files, and which smuggled messages it accepted. Then probe is pointed at
# a dead server (accepts and never greets; closes at once) and must error.
#
#   closed-hardened   closed relay, smtpd_forbid_bare_newline = normalize
#   closed-default    closed relay, the 3.7 default smtpd_forbid_bare_newline = no
#   open-mynetworks   mynetworks = 0.0.0.0/0 (an open relay), normalize
#   backup-mx-routing relay_domains = backup.example.org,
#                     allow_untrusted_routing = yes, normalize
#
# Needs root (Postfix drops to its own user), postfix, python3. Prints the
# matrix (docs/probe.md holds a copy) and "differential: N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.."

BIN=${RELAYGUARD:-target/release/relayguard}
[ -x "$BIN" ] || cargo build --release --quiet
command -v postfix >/dev/null || { echo "differential: postfix is not installed"; exit 2; }
WORK=$(mktemp -d -t relayguard-differential.XXXXXX)
chmod 755 "$WORK"
PORT=${PORT:-2725}
SINK_PORT=$((PORT + 1))
DEAD_PORT=$((PORT + 2))
OUTSIDE=127.0.0.3
LAN=127.0.0.2
TEST_DOMAIN=probe.relayguard.test
VERSION=$(postconf -d -h mail_version)
pass=0
fail=0
pids=()
running=""

cleanup() {
  [ -n "$running" ] && postfix -c "$running" stop >/dev/null 2>&1
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  [ -n "${KEEP:-}" ] && echo "kept $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT

ok() { echo "ok    $*"; pass=$((pass + 1)); }
no() { echo "FAIL  $*"; fail=$((fail + 1)); }

# Writes a Postfix instance into $WORK/$1 with extra main.cf lines $2.
setup() {
  local name=$1 extra=$2 dir=$WORK/$1
  mkdir -p "$dir/etc" "$dir/queue" "$dir/data" "$dir/mail"
  chmod 1777 "$dir/mail"
  chown postfix "$dir/data"
  cat > "$dir/etc/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = $dir/maillog
maillog_file_prefixes = $dir
myhostname = mail.example.com
mydomain = example.com
myorigin = example.com
mydestination = example.com, mail.example.com
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.1/32 $LAN/32
alias_maps = texthash:$dir/etc/aliases
alias_database =
transport_maps = texthash:$dir/etc/transport
default_transport = error:no mail leaves this test
header_checks = regexp:$dir/etc/header_checks
nested_header_checks =
smtp_tls_security_level = none
smtpd_tls_security_level = none
disable_dns_lookups = yes
smtp_host_lookup = native
biff = no
$extra
CF
  sed -e 's/^\(smtp *inet.*\)$/#\1/' \
      -e 's/^\([a-z]* *unix *[-n] *[-n] *\)y/\1n/' \
      -e 's/^\([a-z]* *unix-dgram *[-n] *[-n] *\)y/\1n/' \
      /usr/share/postfix/master.cf.dist > "$dir/etc/master.cf"
  echo "127.0.0.1:$PORT inet n - n - - smtpd" >> "$dir/etc/master.cf"
  cat > "$dir/etc/aliases" <<AL
postmaster $dir/mail/postmaster
alice $dir/mail/alice
bob $dir/mail/bob, bob@$TEST_DOMAIN
AL
  cat > "$dir/etc/transport" <<TR
$TEST_DOMAIN smtp:[127.0.0.1]:$SINK_PORT
backup.example.org smtp:[127.0.0.1]:$SINK_PORT
TR
  echo '/^X-Relayguard-Probe: (.*)$/ WARN probe-token $1' > "$dir/etc/header_checks"
}

wait_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# Runs probe against the running instance; $1 name, $2 extra probe flags.
probe() {
  local name=$1 dir=$WORK/$1
  shift
  "$BIN" probe "127.0.0.1:$PORT" --sink "127.0.0.1:$SINK_PORT" --test-domain "$TEST_DOMAIN" \
    --outside "$OUTSIDE" --lan "$LAN" --mailbox alice@example.com --mailbox2 bob@example.com \
    --json --junit "$dir/junit.xml" "$@" > "$dir/probe.json" 2> "$dir/probe.err"
  echo $? > "$dir/probe.rc"
}

# Runs one configuration: $1 name, $2 main.cf lines, $3 expected exit, rest probe flags.
config() {
  local name=$1 extra=$2 want=$3 dir=$WORK/$1
  shift 3
  setup "$name" "$extra"
  if ! postfix -c "$dir/etc" start >/dev/null 2>&1 || ! wait_port 127.0.0.1 "$PORT"; then
    no "$name: postfix did not start"; tail -5 "$dir/maillog" 2>/dev/null; return
  fi
  running=$dir/etc
  local t0=$SECONDS
  probe "$name" "$@"
  local took=$((SECONDS - t0))
  # Let Postfix finish what it accepted before its log is read.
  for _ in $(seq 1 50); do
    [ -z "$(find "$dir/queue/active" "$dir/queue/incoming" -type f 2>/dev/null | head -1)" ] && break
    sleep 0.2
  done
  postfix -c "$dir/etc" stop >/dev/null 2>&1
  running=""
  # The next instance takes the same port: wait (bounded) until it is free.
  for _ in $(seq 1 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null || break
    sleep 0.1
  done
  local rc
  rc=$(cat "$dir/probe.rc")
  if [ "$rc" = "$want" ]; then ok "$name: probe exit $rc (${took}s)"; else no "$name: probe exit $rc, expected $want"; head -5 "$dir/probe.err"; fi
  python3 scripts/differential_check.py "$name" "$dir" "$SINK_PORT" >> "$WORK/matrix" 2> "$dir/check.err"
  if [ -s "$dir/check.err" ]; then no "$name: probe disagrees with Postfix's log"; cat "$dir/check.err"; else ok "$name: every verdict agrees with Postfix's log"; fi
}

echo "differential: Postfix $VERSION on 127.0.0.1:$PORT, sink 127.0.0.1:$SINK_PORT"
config closed-hardened "smtpd_forbid_bare_newline = normalize" 0
config closed-default "" 1
config open-mynetworks "mynetworks = 0.0.0.0/0
smtpd_forbid_bare_newline = normalize" 1
config backup-mx-routing "relay_domains = backup.example.org
allow_untrusted_routing = yes
smtpd_forbid_bare_newline = normalize" 1 --backup-domain backup.example.org

# A dead server: accepts and never greets; accepts and closes at once.
for mode in silent close; do
  python3 - "$DEAD_PORT" "$mode" <<'PY' &
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(64)
held = []
while True:
    c, _ = s.accept()
    if sys.argv[2] == "close":
        c.close()
    else:
        held.append(c)
PY
  pids+=($!)
  wait_port 127.0.0.1 "$DEAD_PORT"
  t0=$SECONDS
  "$BIN" probe "127.0.0.1:$DEAD_PORT" --sink "127.0.0.1:$SINK_PORT" --timeout 3 > "$WORK/dead.out" 2>&1
  rc=$?
  if [ "$rc" = 2 ]; then ok "dead server ($mode): probe exit 2 in $((SECONDS - t0))s: $(tail -1 "$WORK/dead.out")"; else no "dead server ($mode): probe exit $rc"; fi
  echo "| dead ($mode) | exit $rc | $(tail -1 "$WORK/dead.out" | cut -c1-90) |" >> "$WORK/dead"
  kill "${pids[-1]}" 2>/dev/null; wait "${pids[-1]}" 2>/dev/null
  unset 'pids[-1]'
done

echo
echo "matrix (Postfix $VERSION):"
echo "| config | exit | confirmed | suspected | refused | skipped | error | Postfix relayed for outsiders | inbound smuggling Postfix fell for | probe messages in local mailboxes | confirmed | suspected |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
cat "$WORK/matrix" "$WORK/dead" 2>/dev/null
echo "differential: $pass passed, $fail failed"
[ "$fail" = 0 ]
