#!/usr/bin/env bash
# All targets, two at a time (both cores), MINUTES in all (default 16, so
# 4 minutes per target), then `cargo fuzz cmin` of what they found into
# corpus/fuzz/TARGET, and a summary per target.
#   scripts/fuzz-campaign.sh [MINUTES]      (RELAYGUARD_BUGGIFY is passed on)
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${1:-16}
TARGETS=(command address session session_script policy client config transcript)
PAR=${FUZZ_JOBS:-2}
PER=$((MINUTES * 60 * PAR / ${#TARGETS[@]}))
((PER >= 10)) || PER=10

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1}
cargo fuzz build -s none >&2

OUT=$(mktemp -d -t fuzz-campaign.XXXX)
printf '%s\n' "${TARGETS[@]}" |
    xargs -P "$PAR" -I{} sh -c "scripts/fuzz.sh {} $PER > $OUT/{}.summary 2> $OUT/{}.log || true"

# Minimize: what the campaign found plus the kept seeds, into corpus/fuzz.
for t in "${TARGETS[@]}"; do
    keep=corpus/fuzz/$t
    merged=fuzz/corpus/$t
    cp -n "$keep"/* "$merged"/ 2>/dev/null || true
    cargo fuzz cmin -s none "$t" "$merged" -- -max_len=4096 >"$OUT/$t.cmin" 2>&1 || true
    # Crash inputs stay (they are regressions); the rest is replaced.
    find "$keep" -type f ! -name 'crash-*' -delete
    for f in "$merged"/*; do
        cp "$f" "$keep/$(sha1sum "$f" | cut -c1-16)"
    done
done

printf '%-15s %10s %12s %8s %8s %8s %8s %s\n' target execs/s execs corpus cov ft crashes first_crash_s
for t in "${TARGETS[@]}"; do
    line=$(grep SUMMARY "$OUT/$t.summary" || echo "")
    get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
    printf '%-15s %10s %12s %8s %8s %8s %8s %s\n' "$t" "$(get execs_per_sec)" "$(get execs)" \
        "$(ls corpus/fuzz/$t | wc -l)" "$(get cov)" "$(get ft)" "$(get crashes)" "$(get first_crash_s)"
done
echo "logs: $OUT"
