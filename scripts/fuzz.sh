#!/usr/bin/env bash
# Fuzz one target for a while:  scripts/fuzz.sh [--asan] TARGET [SECONDS] [-- LIBFUZZER_ARGS...]
#
# Default build: `-s none` on stable Rust (coverage-guided, no sanitizer).
# --asan: AddressSanitizer build (RUSTC_BOOTSTRAP=1, nightly flags on stable).
# Runtime bugs: RELAYGUARD_BUGGIFY=lf-ends-data scripts/fuzz.sh session_script 60
#
# New inputs go to fuzz/corpus/TARGET (scratch, git-ignored), seeded from
# corpus/fuzz/TARGET (kept; `scripts/fuzz-campaign.sh` minimizes into it).
# A crash is minimized (cargo fuzz tmin); a session/session_script crash is
# written as corpus/regressions/fuzz-TARGET-HASH.smtp (+ .toml) and the raw
# input kept as corpus/fuzz/TARGET/crash-HASH. FUZZ_WORK and FUZZ_SEEDS
# override the scratch and seed folders (fresh runs for timing a bite).
# Prints a summary line:
#   SUMMARY target=.. seconds=.. execs=.. execs_per_sec=.. corpus=.. cov=.. ft=.. crashes=.. first_crash_s=..
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SAN=none
if [[ ${1:-} == --asan ]]; then
    SAN=address
    export RUSTC_BOOTSTRAP=1
    shift
fi
TARGET=${1:?usage: scripts/fuzz.sh [--asan] TARGET [SECONDS] [-- ARGS]}
SECONDS_=${2:-60}
shift $(($# >= 2 ? 2 : 1))
[[ ${1:-} == -- ]] && shift
EXTRA=("$@")

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1}
cargo fuzz build -s "$SAN" "$TARGET" >&2

WORK=${FUZZ_WORK:-fuzz/corpus/$TARGET}
ART=fuzz/artifacts/$TARGET
mkdir -p "$WORK" "$ART" "corpus/fuzz/$TARGET"
LOG=$(mktemp -t "fuzz-$TARGET.XXXX.log")
before=$(ls "$ART" | sort)

start=$(date +%s.%N)
set +e
cargo fuzz run -s "$SAN" "$TARGET" "$WORK" "${FUZZ_SEEDS:-corpus/fuzz/$TARGET}" -- \
    -max_total_time="$SECONDS_" -print_final_stats=1 -max_len=4096 "${EXTRA[@]}" 2>"$LOG" >&2
rc=$?
set -e
end=$(date +%s.%N)
elapsed=$(echo "$end - $start" | bc)

stat() { grep -o "stat::$1: *[0-9]*" "$LOG" | tail -1 | grep -o '[0-9]*$' || echo 0; }
execs=$(stat number_of_executed_units)
rate=$(stat average_exec_per_sec)
last=$(grep -E '^#[0-9]+' "$LOG" | tail -1 || true)
cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last")
ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$last")
corp=$(ls "$WORK" | wc -l)
# Artifacts of this run only.
crashes=$(comm -13 <(echo "$before") <(ls "$ART" | sort) | grep -cE '^(crash|leak|timeout|oom)-' || true)
first=""
if [[ $rc -ne 0 ]] && grep -qE 'ERROR: libFuzzer|panicked' "$LOG"; then
    first=$elapsed
    grep -E 'panicked|violation|ERROR' "$LOG" | head -5 >&2 || true
fi
echo "log: $LOG" >&2

# Minimize and keep each new crash.
if [[ -n $first ]]; then
    for a in $(ls -t "$ART" | grep -E '^(crash|oom|timeout)-' | head -1); do
        path=$ART/$a
        cargo fuzz tmin -s "$SAN" "$TARGET" "$path" -- -runs=2000 >&2 2>/dev/null || true
        min=$(ls -t "$ART" | grep '^minimized-from-' | head -1 || true)
        [[ -n $min ]] && path=$ART/$min
        hash=$(sha1sum "$path" | cut -c1-12)
        cp "$path" "corpus/fuzz/$TARGET/crash-$hash"
        echo "kept corpus/fuzz/$TARGET/crash-$hash" >&2
        case $TARGET in
            session|session_script)
                CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target} cargo run -q -p relayguard-fuzz-targets --bin regress -- \
                    "$TARGET" "$path" "corpus/regressions/fuzz-$TARGET-$hash${RELAYGUARD_BUGGIFY:+-buggify-$RELAYGUARD_BUGGIFY}" >&2 || true ;;
        esac
    done
fi
echo "SUMMARY target=$TARGET seconds=$elapsed execs=$execs execs_per_sec=$rate corpus=$corp cov=${cov:-?} ft=${ft:-?} crashes=$crashes first_crash_s=${first:-none} buggify=${RELAYGUARD_BUGGIFY:-none} sanitizer=$SAN"
