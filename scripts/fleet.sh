#!/usr/bin/env bash
# A fleet loop (docs/campaigns.md "A fleet loop"): for a time budget, pick a
# random seed range of the simulation, or a fuzz target, run it, and add
# every failing seed, with its commit and the command that reproduces it,
# to a tracked file of failures kept fastest-to-fail first. Each run first
# replays the failures already in the file.
#
#   scripts/fleet.sh [--minutes M] [--failures FILE] [--buggify NAME]... [--batch N] [--fuzz-share P]
#
#   --minutes M     time budget (default 10)
#   --failures F    the failures file (default corpus/fleet/failures.tsv)
#   --buggify NAME  run with an injected bug (to see the fleet find it)
#   --batch N       seeds per simulation batch (default 50)
#   --fuzz-share P  percent of batches that fuzz instead (default 20; 0 when
#                   cargo-fuzz is not installed)
#   FLEET_SEED      seeds the fleet's own choices (default: the clock)
#
# The file is tab-separated, one failing seed per line:
#   first_violation_ms  seed  commit  bugs  reproduce  violation
set -euo pipefail
cd "$(dirname "$0")/.."

MINUTES=10
FAILURES=corpus/fleet/failures.tsv
BATCH=50
FUZZ_SHARE=20
BUGS=()
while [ $# -gt 0 ]; do
  case $1 in
    --minutes) MINUTES=$2; shift 2 ;;
    --failures) FAILURES=$2; shift 2 ;;
    --buggify) BUGS+=(--buggify "$2"); shift 2 ;;
    --batch) BATCH=$2; shift 2 ;;
    --fuzz-share) FUZZ_SHARE=$2; shift 2 ;;
    *) echo "fleet: unknown option $1" >&2; exit 2 ;;
  esac
done
RANDOM=${FLEET_SEED:-$(date +%s)}
command -v cargo-fuzz >/dev/null || FUZZ_SHARE=0

cargo build --release --quiet
BIN=target/release/relayguard
mkdir -p "$(dirname "$FAILURES")"
touch "$FAILURES"
WORK=$(mktemp -d -t relayguard-fleet.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# The known failures first: each still failing is said; one that passes now
# was fixed (or needs its bug flag) and stays in the file as a record.
replayed=0; still=0
while IFS=$'\t' read -r _ms seed _commit _bugs reproduce _v; do
  [ -n "${seed:-}" ] || continue
  replayed=$((replayed + 1))
  # reproduce is "relayguard sim --seed N [--buggify B]...": run it with this build.
  # shellcheck disable=SC2086
  if ! $BIN ${reproduce#relayguard } --regressions "$WORK/regressions" >/dev/null 2>&1; then
    still=$((still + 1))
    echo "still failing: $reproduce"
  fi
done < "$FAILURES"
echo "fleet: replayed $replayed known failures, $still still fail"

deadline=$(( $(date +%s) + MINUTES * 60 ))
batches=0; sims=0; fuzzes=0
while [ "$(date +%s)" -lt "$deadline" ]; do
  batches=$((batches + 1))
  if [ $((RANDOM % 100)) -lt "$FUZZ_SHARE" ]; then
    targets=(command address session session_script policy client config transcript)
    t=${targets[$((RANDOM % ${#targets[@]}))]}
    fuzzes=$((fuzzes + 1))
    echo "fleet: fuzz $t for 60 s"
    scripts/fuzz.sh "$t" 60 | grep '^SUMMARY' || true
    continue
  fi
  from=$(( (RANDOM << 15 | RANDOM) * 64 ))
  sims=$((sims + 1))
  echo "fleet: seeds $from..$((from + BATCH))"
  set +e
  $BIN sim --from "$from" --seeds "$BATCH" --jobs 2 --json "${BUGS[@]}" \
    --regressions "$WORK/regressions" > "$WORK/batch.json"
  code=$?
  set -e
  if [ "$code" -gt 1 ]; then
    echo "fleet: relayguard sim exited $code" >&2
    exit 2
  fi
  python3 - "$WORK/batch.json" "$FAILURES" <<'PY'
import json, sys
summary = json.load(open(sys.argv[1]))
path = sys.argv[2]
rows = [l.rstrip("\n").split("\t") for l in open(path) if l.strip()]
seen = {(r[1], r[2], r[3]) for r in rows}
bugs = ",".join(summary["bugs"]) or "-"
for f in summary["failing"]:
    key = (str(f["seed"]), summary["commit"], bugs)
    if key in seen:
        continue
    seen.add(key)
    first = f["violations"][0].replace("\t", " ").replace("\n", " ")
    rows.append([str(f["first_violation_ms"]), str(f["seed"]), summary["commit"], bugs, f["reproduce"], first])
    print(f"new failure: seed {f['seed']} at {f['first_violation_ms']} ms: {first[:100]}")
rows.sort(key=lambda r: (int(r[0]), int(r[1])))
with open(path, "w") as out:
    for r in rows:
        out.write("\t".join(r) + "\n")
PY
done
echo "fleet: $batches batches ($sims simulation, $fuzzes fuzz) in $MINUTES min; $(wc -l < "$FAILURES") failures on file: $FAILURES"
