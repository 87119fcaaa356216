#!/usr/bin/env bash
# Mutation testing of the relay's decision code: does some test fail when an
# operator, a condition or a return value changes? Not part of CI (hours on
# two cores); see docs/mutants.md for the figures and the equivalents.
#
#   scripts/mutants.sh [FILE…]          default: the files docs/mutants.md lists
#   JOBS=2 SHARD=0/4 scripts/mutants.sh core/src/policy.rs
#   BASELINE=skip SECOND=skip OUT=dir scripts/mutants.sh FILE   (see below)
#   NAMES=missed.txt BASELINE=skip scripts/mutants.sh FILE…      (re-run these)
#   FIRST=skip NAMES=missed.txt scripts/mutants.sh FILE…         (second pass only)
#
# The tests are the fast ones `cargo test --release` runs: all of core's and
# the node's, the corpus replay (tests/corpus.rs) and the fixed-seed
# campaign (sim/tests/sim.rs, 30 seeds). cargo-nextest runs them, so that a
# mutant stops at its first failing test.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-mutants >/dev/null || { echo "needs cargo-mutants: cargo install --locked cargo-mutants" >&2; exit 2; }
command -v cargo-nextest >/dev/null || { echo "needs cargo-nextest: cargo install --locked cargo-nextest" >&2; exit 2; }

files=("$@")
if [ ${#files[@]} -eq 0 ]; then
  files=(core/src/policy.rs core/src/address.rs core/src/data.rs core/src/session.rs
         core/src/command.rs core/src/netlist.rs core/src/addrlist.rs
         node/src/queue.rs node/src/delivery.rs)
fi
jobs=${JOBS:-2}
out=${OUT:-target}

filter='package(relayguard-core) | package(relayguard-node) | binary_id(relayguard::corpus)'
filter+=' | (package(relayguard-sim) & test(the_fixed_campaign_passes))'

common=(--copy-target=true --test-tool=nextest --jobs "$jobs" --profile mutants)
# Time limits per mutant's tests, set rather than derived from the
# baseline: cargo-mutants times the baseline with the mutated package's
# tests only, too short for the fixed seeds of the second pass. A mutant
# that makes a loop endless runs into the limit (and counts as caught), so
# the first pass's limit is a few times its tests' time on a busy machine.
timeout1=${TIMEOUT1:-120}
timeout2=${TIMEOUT:-300}
[ -n "${SHARD:-}" ] && common+=(--shard "$SHARD")
for f in "${files[@]}"; do common+=(-f "$f"); done

# Each mutant's name as a regular expression of its own, to select exactly
# the mutants a file of names (cargo-mutants' missed.txt) lists.
name_filters() {
  local r
  while IFS= read -r r; do
    [ -n "$r" ] && printf -- '-F\n^%s$\n' "$(printf '%s' "$r" | sed -e 's/[][\\.+*?(){}|^$#&~-]/\\&/g')"
  done < "$1"
}
# NAMES=FILE tests only the mutants FILE names (to re-run the survivors of
# an earlier run once tests for them are written).
sel=()
[ -n "${NAMES:-}" ] && mapfile -t sel < <(name_filters "$NAMES")

# Two passes. The first tests each mutant with its own package's tests
# only (core's or the node's: a rebuild of one crate); what they miss, the
# second tests again with the whole filter (the corpus replay and the fixed
# seeds rebuild everything above core). A mutant the first pass catches is
# caught by the second's tests too: they are a superset.
# BASELINE=skip leaves out the unmutated run (when an earlier run of the
# same commit has done it). FIRST=skip goes straight to the second pass
# with the mutants NAMES lists (what an earlier first pass missed).
if [ "${FIRST:-run}" = skip ]; then
  missed="${NAMES:?FIRST=skip needs NAMES}"
  rm -rf "$out/pass1"
else
  mkdir -p "$out/pass1"
  cargo mutants --workspace --test-workspace=false "${common[@]}" "${sel[@]}" --timeout "$timeout1" \
    --baseline "${BASELINE:-run}" --output "$out/pass1" || true
  missed="$out/pass1/mutants.out/missed.txt"
fi
rm -rf "$out/pass2"
mkdir -p "$out/pass2"
# SECOND=skip stops after the first pass (to write tests for what it
# missed before paying for the second).
if [ -s "$missed" ] && [ "${SECOND:-run}" != skip ]; then
  mapfile -t re < <(name_filters "$missed")
  # The baseline is never run again here: the first pass ran it, or an
  # earlier run did (BASELINE=skip, FIRST=skip).
  cargo mutants --workspace --test-workspace=true "${common[@]}" "${re[@]}" --timeout "$timeout2" \
    --baseline skip --output "$out/pass2" \
    --cargo-test-arg=-E --cargo-test-arg="$filter" || true
fi
python3 - "$out/pass1/mutants.out/outcomes.json" "$out/pass2/mutants.out/outcomes.json" <<'PY'
import json, os, sys, collections
def outcomes(path):
    if not os.path.exists(path):
        return {}
    got = {}
    for o in json.load(open(path))["outcomes"]:
        if o["scenario"] == "Baseline":
            continue
        m = o["scenario"]["Mutant"]
        got[(m["file"], m["name"])] = o["summary"]
    return got
first, second = outcomes(sys.argv[1]), outcomes(sys.argv[2])
per = collections.defaultdict(collections.Counter)
for key, summary in (first or second).items():
    if summary == "MissedMutant" and key in second:
        summary = second[key]
    per[key[0]][summary] += 1
print(f"{'file':28} {'mutants':>7} {'caught':>6} {'timeout':>7} {'unviable':>8} {'missed':>6} {'score':>6}")
for f in sorted(per):
    c = per[f]
    viable = c["CaughtMutant"] + c["Timeout"] + c["MissedMutant"]
    score = 100.0 * (c["CaughtMutant"] + c["Timeout"]) / viable if viable else 100.0
    print(f"{f:28} {sum(c.values()):7} {c['CaughtMutant']:6} {c['Timeout']:7} {c['Unviable']:8} {c['MissedMutant']:6} {score:5.1f}%")
PY
echo "missed by the whole filter: $out/pass2/mutants.out/missed.txt (none if pass 1 missed none)"
