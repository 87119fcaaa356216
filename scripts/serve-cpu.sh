#!/usr/bin/env bash
# CPU time `relayguard serve` spends per message, receipt and local
# delivery both, under Postfix's smtp-source (the load of bench-serve.sh).
# A rate swings with whatever else the machine runs; the CPU a message
# costs much less, so this is the figure to compare builds with on a
# shared machine. Builds given together are run alternately, ROUNDS times.
#
#   scripts/serve-cpu.sh BIN [BIN…]
#   N=5000 ROUNDS=3 TMPDIR=/dev/shm scripts/serve-cpu.sh target/release/relayguard
#
# The spool is made under TMPDIR (so TMPDIR picks the file system). Prints,
# per run, serve's user+system CPU seconds per 1,000 messages (from
# /proc/PID/stat, read after the queue has drained), the rate smtp-source
# saw, and the messages found in the Maildir; then min / median per build.
# Not run by CI; needs smtp-source (Debian's postfix package).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { sed -n '2,15p' "$0" >&2; exit 2; }
N=${N:-5000}
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-2735}
command -v smtp-source >/dev/null || { echo "needs smtp-source (postfix)" >&2; exit 2; }
tick=$(getconf CLK_TCK)
results=$(mktemp)
# Every run's spool is removed at the end, not after the run: ext4 passes
# over inodes freed in the last minutes when it allocates new ones, so a
# removal between runs would slow the run after it.
works=()
trap 'rm -f "$results"; rm -rf "${works[@]}"' EXIT

one() { # $1 work directory, $2 binary: prints "cpu_per_1000 rate delivered"
  local work pid c0 c1 t0 t1 n
  work=$1
  cp scripts/bench-serve.toml "$work/serve.toml"
  "$2" serve --config "$work/serve.toml" --listen "127.0.0.1:$PORT" --spool "$work/spool" \
    --max-per-ip 200 --max-connections 200 2>/dev/null &
  pid=$!
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
  c0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  t0=$(date +%s.%N)
  smtp-source -s 50 -m "$N" -l 4096 -f load@lan.example -t bench@example.com "127.0.0.1:$PORT"
  t1=$(date +%s.%N)
  # Deliveries run after the 250s: the message's cost includes them.
  for _ in $(seq 1 400); do
    [ -z "$(find "$work/spool/queue" -maxdepth 1 -type f -print -quit)" ] && break
    sleep 0.05
  done
  c1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  n=$(find "$work/spool/maildir/example.com/bench/new" -type f | wc -l)
  python3 -c 'import sys; c0, c1, tick, n, t0, t1 = map(float, sys.argv[1:]); print(f"{(c1 - c0) / tick / n * 1000:.3f} {n / (t1 - t0):.0f}")' \
    "$c0" "$c1" "$tick" "$N" "$t0" "$t1" | tr '\n' ' '
  echo "$n"
}

printf '%-6s %-40s %14s %10s %10s\n' round build cpu-s/1000msg msg/s delivered
for r in $(seq 1 "$ROUNDS"); do
  for bin in "$@"; do
    work=$(mktemp -d -t relayguard-cpu.XXXXXX)
    works+=("$work")
    read -r cpu rate n < <(one "$work" "$bin")
    printf '%-6s %-40s %14s %10s %10s\n' "$r" "$bin" "$cpu" "$rate" "$n"
    echo "$bin $cpu" >> "$results"
    [ "$n" -eq "$N" ] || { echo "only $n of $N messages delivered" >&2; exit 1; }
  done
done
python3 - "$results" <<'PY'
import sys, statistics, collections
per = collections.defaultdict(list)
for line in open(sys.argv[1]):
    b, c = line.split()
    per[b].append(float(c))
print("min / median CPU seconds per 1,000 messages")
for b, cs in per.items():
    print(f"  {b:40} {min(cs):.3f} / {statistics.median(cs):.3f}")
PY
