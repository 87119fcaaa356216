# Disk and kernel faults against `relayguard serve` (issue 11). Sourced by
# scripts/conformance.sh, whose helpers it uses (ok, no, check, wait_port,
# write_config, $BIN, $WORK, $PORT, $LAN, $OUTSIDE, $SINK, pids). Its own
# ports: PORT+10 (server), PORT+11 (sink), PORT+12 (the refused second
# server). Every wait is bounded; every address is on loopback.
#   full disk:    spool and Maildir on a small tmpfs that fills up
#   corrupt:      a junk and a truncated file in the queue at recovery
#   nofile:       recovery of 40 queued messages under prlimit --nofile
#   SIGHUP, a second server on the same spool, peak RSS under load

DPORT=$((PORT + 10))
DSINK_PORT=$((PORT + 11))
DLOG="$WORK/disk-serve.log"
DSERVE_ARGS=() # more arguments for serve
FAULTS=scripts/disk_faults.py

disk_config() { # $1 file
  SINK_PORT=$DSINK_PORT write_config "$1" ""
}

# $1 spool, then an optional command prefix (prlimit ...); sets DSERVE_PID.
dserve() {
  local spool=$1; shift
  echo "=== serve $spool $*" >>"$DLOG"
  "$@" "$BIN" serve --config "$WORK/disk.toml" --listen "127.0.0.1:$DPORT" --spool "$spool" \
    --retry-base 1 --grace 2 --max-connections 200 --max-per-ip 200 "${DSERVE_ARGS[@]}" 2>>"$DLOG" &
  DSERVE_PID=$!
  pids+=("$DSERVE_PID")
  wait_port 127.0.0.1 "$DPORT" || { echo "serve did not start:"; tail -5 "$DLOG"; }
}

dstop() { kill -TERM "$DSERVE_PID" 2>/dev/null; wait "$DSERVE_PID" 2>/dev/null; }

# $1: a folder to keep messages in, or "discard". Sets DSINK_PID.
dsink() {
  if [ "$1" = discard ]; then
    smtp-sink -u nobody "$SINK:$DSINK_PORT" 200 &
  else
    mkdir -p "$1"; chown nobody "$1" 2>/dev/null
    smtp-sink -u nobody -d "$1/%H%M%S." "$SINK:$DSINK_PORT" 200 &
  fi
  DSINK_PID=$!
  pids+=("$DSINK_PID")
  wait_port "$SINK" "$DSINK_PORT"
}

dsink_stop() { kill "$DSINK_PID" 2>/dev/null; wait "$DSINK_PID" 2>/dev/null; }

# Waits (bounded: $1 tenths of a second) until the check of $2 (acked file)
# against $3 (folder) passes, with the remaining arguments; prints the result.
dwait_check() {
  local tenths=$1 acked=$2 dir=$3; shift 3
  local out
  for _ in $(seq 1 "$tenths"); do
    out=$(python3 "$FAULTS" check --acked "$acked" --dir "$dir" "$@")
    grep -q "^ok" <<<"$out" && break
    sleep 0.1
  done
  echo "$out"
}

queue_count() { find "$1/queue" -maxdepth 1 -type f | wc -l; }

# Queues $2 messages for remote recipients in spool $1 while the sink is
# down (every delivery defers), then stops the server. Writes $1.acked.
queue_up() {
  dserve "$1"
  python3 "$FAULTS" send --port "$DPORT" --source "$LAN" --to 'sink{i}@nmap.scanme.org' \
    --count "$2" --size 3000 --tag "$(basename "$1")" --connections 4 --out "$1.acked" >/dev/null
  dstop
}

disk_full() {
  local mnt="$WORK/disk-full"
  mkdir -p "$mnt"
  if ! mount -t tmpfs -o size=2m tmpfs "$mnt" 2>/dev/null; then
    # Without root this cannot run; as root (CI) it must.
    if [ "$(id -u)" -eq 0 ]; then
      no "full disk: mounting a tmpfs failed although running as root"
    else
      echo "skip  full disk: mounting a tmpfs needs root"
    fi
    return
  fi
  dserve "$mnt"
  # Fill the file system, then free room for a few messages only.
  dd if=/dev/zero of="$mnt/filler" bs=4k 2>/dev/null
  truncate -s -160K "$mnt/filler"
  python3 "$FAULTS" send --port "$DPORT" --source "$OUTSIDE" --sender s@outside.example \
    --to alice@example.com --count 24 --size 20000 --tag full --out "$WORK/full.acked" >/dev/null
  local acked refused
  acked=$(grep -c '^acked' "$WORK/full.acked")
  refused=$(grep -c '^refused 4' "$WORK/full.acked")
  check "full disk: some messages acked ($acked) and some refused with 4xx ($refused) while full" \
    test "$acked" -gt 0 -a "$refused" -gt 0
  check "full disk: nothing refused with other than 4xx" test "$((acked + refused))" -eq 24
  rm -f "$mnt/filler"
  local out
  out=$(dwait_check 400 "$WORK/full.acked" "$mnt/maildir/example.com/alice/new" --size 20000 --once)
  echo "check: $out"
  check "full disk: once space is freed every acked message is in the Maildir, intact, once" grep -q "^ok" <<<"$out"
  check "full disk: nothing was bounced" test "$(grep -c 'queue: bounce' "$DLOG")" -eq 0
  check "full disk: no partial file left in Maildir tmp/" \
    test -z "$(ls -A "$mnt/maildir/example.com/alice/tmp" 2>/dev/null)"
  check "full disk: the queue is empty afterwards" test "$(queue_count "$mnt")" -eq 0
  dstop
  umount "$mnt"
}

disk_corrupt() {
  local spool="$WORK/spool-corrupt"
  queue_up "$spool" 20
  check "corrupt: 20 messages queued while the exchanger is down" test "$(queue_count "$spool")" -eq 20
  # A truncated file (its last 400 bytes gone), junk, and a directory in tmp/.
  local victim vid
  victim=$(find "$spool/queue" -maxdepth 1 -type f | sort | head -1)
  vid=$(grep -ao 'X-Disk-Id: [^[:space:]]*' "$victim" | cut -d' ' -f2)
  truncate -s -400 "$victim"
  printf 'GET / HTTP/1.0\r\n\r\n' >"$spool/queue/junk"
  mkdir -p "$spool/queue/tmp/a-dir"
  sed -i "/ $vid\$/d" "$spool.acked"  # the truncated one must not arrive
  dsink "$WORK/sink-corrupt"
  dserve "$spool"
  local out
  out=$(dwait_check 300 "$spool.acked" "$WORK/sink-corrupt" --size 3000 --once --absent "$vid")
  echo "check: $out"
  check "corrupt: the 19 intact messages delivered once, the truncated one not at all" grep -q "^ok" <<<"$out"
  check "corrupt: junk and truncated file moved to corrupt/" \
    test -f "$spool/corrupt/junk" -a -f "$spool/corrupt/$(basename "$victim")"
  check "corrupt: the log names the truncated file and why" \
    grep -q "queue file $(basename "$victim") unreadable (length .* truncated); moved to" "$DLOG"
  check "corrupt: a directory in queue/tmp did not stop the start" test -d "$spool/corrupt/tmp-a-dir"
  disk_sighup
  disk_second_instance "$spool"
  dstop
  dsink_stop
}

disk_sighup() {
  kill -HUP "$DSERVE_PID"
  local out
  out=$(swaks --server 127.0.0.1:$DPORT --local-interface $LAN --from pc@lan.example --to hup@nmap.scanme.org 2>&1)
  check "SIGHUP: the server is still running and answers 250" grep -qE "<- +250 2.0.0 Ok: queued" <<<"$out"
  check "SIGHUP: logged as ignored" grep -q "SIGHUP: ignored" "$DLOG"
}

disk_second_instance() { # $1 the spool of the running server
  local err rc
  err=$(timeout 20 "$BIN" serve --config "$WORK/disk.toml" --listen "127.0.0.1:$((PORT + 12))" \
    --spool "$1" 2>&1 >/dev/null)
  rc=$?
  echo "second instance: exit $rc: $err"
  check "second server on the same spool refused (exit 2)" test "$rc" -eq 2
  check "second server: the message names the spool and the other instance" \
    grep -q "spool $1 is in use: another relayguard serve" <<<"$err"
}

disk_nofile() {
  local spool="$WORK/spool-nofile" limit=${DISK_NOFILE:-24}
  queue_up "$spool" 40
  check "nofile: 40 messages queued while the exchanger is down" test "$(queue_count "$spool")" -eq 40
  dsink "$WORK/sink-nofile"
  local mark
  mark=$(wc -l <"$DLOG")
  # Every recovered message delivered at once, so that the limit bites.
  DSERVE_ARGS=(--max-deliveries 40)
  dserve "$spool" prlimit --nofile="$limit:$limit"
  DSERVE_ARGS=()
  local out
  out=$(dwait_check 600 "$spool.acked" "$WORK/sink-nofile" --size 3000 --once)
  echo "check: $out"
  check "nofile $limit: all 40 recovered messages delivered, once, intact" grep -q "^ok" <<<"$out"
  check "nofile $limit: the limit bit (EMFILE in the log)" \
    grep -q "Too many open files" <(tail -n +"$mark" "$DLOG")
  check "nofile $limit: nothing bounced, nothing quarantined" \
    test "$(tail -n +"$mark" "$DLOG" | grep -c 'queue: bounce\|unreadable')" -eq 0
  check "nofile $limit: the queue is empty afterwards" test "$(queue_count "$spool")" -eq 0
  dstop
  dsink_stop
}

disk_rss() {
  local spool="$WORK/spool-rss" n=${DISK_RSS_MESSAGES:-100}
  dsink discard
  dserve "$spool"
  python3 "$FAULTS" send --port "$DPORT" --source "$LAN" --to 'big{i}@nmap.scanme.org' \
    --count "$n" --size 10000000 --tag rss --connections "$n" --out "$WORK/rss.acked" >/dev/null
  # The peak may come while the messages go out: wait (bounded) until sent.
  for _ in $(seq 1 600); do [ "$(queue_count "$spool")" -eq 0 ] && break; sleep 0.2; done
  local hwm
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$DSERVE_PID/status")
  echo "measure: peak RSS (VmHWM) of relayguard serve with $n concurrent 10 MB messages: $((hwm / 1024)) MiB"
  check "rss: all $n messages of 10 MB acked" test "$(grep -c '^acked' "$WORK/rss.acked")" -eq "$n"
  # Issue 11's goal: bodies stream to the spool and the queue keeps
  # envelopes, so 100 messages of 10 MB cost far less than 1 GB.
  check "rss: peak RSS of serve under 256 MiB ($((hwm / 1024)) MiB)" test "${hwm:-999999999}" -lt 262144
  dstop
  dsink_stop
}

disk_checks() {
  echo "== disk and kernel faults (server on port $DPORT)"
  disk_config "$WORK/disk.toml"
  : >"$DLOG"
  disk_full
  disk_corrupt
  disk_nofile
  disk_rss
}
