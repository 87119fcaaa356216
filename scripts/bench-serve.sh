#!/usr/bin/env bash
# Messages per second on loopback, driven by Postfix's smtp-source with the
# same load against three servers in each run:
#   - `relayguard serve` (durable: fsync before every 250, local Maildir
#     delivery);
#   - Postfix's own smtpd (its queue on disk, `discard` transports: the mail
#     is queued durably, then thrown away), from a throw-away
#     config_directory and queue under mktemp, stopped at the end;
#   - Postfix's smtp-sink (stores nothing: the upper bound).
# Prints each rate and the ratios of serve to the other two, per run, then
# min/median/max over the runs.
# The servers run one after the other, each RUNS times (serve, the sink,
# then Postfix), not interleaved: Postfix removes a queue file per message,
# and ext4 without a journal (this machine's) passes over every inode
# freed in the last one to six minutes when it makes a file, so a serve
# run right after a Postfix run pays for Postfix's removals; and Postfix
# goes on discarding after its last run, which would slow a sink run after
# it. For the same reason start it a few minutes after any large removal
# (a build, the end of an earlier run).
# Not run by CI; needs root (Postfix's master) and postfix installed.
# Usage: scripts/bench-serve.sh [MESSAGES] [SESSIONS] [RUNS]
# RELAYGUARD=path runs that binary (say, a build of an earlier commit, for a
# before/after in one sitting) instead of building this tree's.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-5000}
S=${2:-50}
RUNS=${3:-3}
BIN=${RELAYGUARD:-target/release/relayguard}
SERVE_PORT=${SERVE_PORT:-2725}
SINK_PORT=${SINK_PORT:-2726}
POSTFIX_PORT=${POSTFIX_PORT:-2727}
[ -n "${RELAYGUARD:-}" ] || cargo build --release --quiet
WORK=$(mktemp -d -t relayguard-bench.XXXXXX)
chmod 755 "$WORK"
pids=()
PF="$WORK/postfix"
cleanup() {
  [[ -f "$PF/etc/main.cf" ]] && postfix -c "$PF/etc" stop >/dev/null 2>&1 || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

cp scripts/bench-serve.toml "$WORK/bench.toml"

# Postfix's smtpd on loopback: its own config_directory, queue and data
# directories, no chroot, every transport `discard`, logging to a file.
postfix_start() {
  mkdir -p "$PF/etc" "$PF/queue" "$PF/data"
  chown postfix "$PF/data"
  cat > "$PF/etc/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $PF/queue
data_directory = $PF/data
myhostname = mail.example.com
mydomain = example.com
mydestination = example.com
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
local_transport = discard:
default_transport = discard:
relay_transport = discard:
virtual_transport = discard:
maillog_file = $PF/maillog
maillog_file_prefixes = $PF
alias_maps =
alias_database =
local_recipient_maps =
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
default_process_limit = 200
CF
  # Debian's master.cf, the smtpd on our port, no chroot anywhere.
  awk -v port="$POSTFIX_PORT" '
    /^#/ || /^[ \t]/ || NF < 8 { print; next }
    $1 == "smtp" && $2 == "inet" { $1 = "127.0.0.1:" port }
    { $5 = "n"; print }
  ' /etc/postfix/master.cf > "$PF/etc/master.cf"
  postfix -c "$PF/etc" check >/dev/null 2>&1 || true
  postfix -c "$PF/etc" start >/dev/null 2>&1
  wait_port "$POSTFIX_PORT"
}

rate() { # $1 port: prints messages per second
  local t0 t1
  t0=$(date +%s.%N)
  smtp-source -s "$S" -m "$N" -l 4096 -f load@lan.example -t bench@example.com "127.0.0.1:$1"
  t1=$(date +%s.%N)
  python3 -c "import sys; print(round(int(sys.argv[1]) / (float(sys.argv[3]) - float(sys.argv[2]))))" "$N" "$t0" "$t1"
}

"$BIN" serve --config "$WORK/bench.toml" --listen "127.0.0.1:$SERVE_PORT" --spool "$WORK/spool" \
  --max-per-ip 200 --max-connections 200 2>/dev/null &
pids+=($!)
smtp-sink -u nobody "127.0.0.1:$SINK_PORT" 256 &
pids+=($!)
postfix_start
wait_port "$SERVE_PORT"
wait_port "$SINK_PORT"

echo "smtp-source -s $S -m $N -l 4096, loopback, $RUNS runs"
printf '%-4s %10s %10s %10s %12s %12s\n' run serve postfix sink serve/postfix serve/sink
serve=() postfix=() sink=()
for _ in $(seq 1 "$RUNS"); do serve+=("$(rate "$SERVE_PORT")"); done
for _ in $(seq 1 "$RUNS"); do sink+=("$(rate "$SINK_PORT")"); done
for _ in $(seq 1 "$RUNS"); do postfix+=("$(rate "$POSTFIX_PORT")"); done
results=()
for r in $(seq 1 "$RUNS"); do
  s=${serve[r-1]} p=${postfix[r-1]} k=${sink[r-1]}
  results+=("$s $p $k")
  python3 -c "import sys; r,s,p,k = sys.argv[1], *map(int, sys.argv[2:]); print(f'{r:<4} {s:>10} {p:>10} {k:>10} {s/p:>12.2f} {s/k:>12.2f}')" "$r" "$s" "$p" "$k"
done
printf '%s\n' "${results[@]}" | python3 -c '
import sys, statistics
rows = [tuple(map(int, l.split())) for l in sys.stdin if l.strip()]
def mmm(xs):
    xs = sorted(xs)
    return f"{xs[0]:.2f} / {statistics.median(xs):.2f} / {xs[-1]:.2f}" if isinstance(xs[0], float) else f"{xs[0]} / {statistics.median(xs):.0f} / {xs[-1]}"
print("min / median / max (msg/s)")
for name, i in (("relayguard serve (durable)", 0), ("postfix smtpd (queue, discard)", 1), ("postfix smtp-sink (no disk)", 2)):
    print(f"  {name:<32} {mmm([row[i] for row in rows])}")
for name, j in (("serve / postfix smtpd", 1), ("serve / smtp-sink", 2)):
    print(f"  {name:<32} {mmm([row[0] / row[j] for row in rows])}")
'
# How many messages Postfix took in, as its log says (a check that the
# load reached its smtpd and not something else).
sleep 2
echo "postfix: $(grep -c 'status=sent' "$PF/maillog" || true) messages queued and discarded (expected $((N * RUNS)))"
