#!/bin/bash -eu
# Builds every fuzz target into $OUT, with a seed corpus zip per target.
# On ClusterFuzzLite/OSS-Fuzz (base-builder-rust) the sanitizer comes from
# $SANITIZER; run locally with OUT set it builds `-s none` on stable:
#   OUT=/tmp/cflite-out .clusterfuzzlite/build.sh
if [[ -n ${SRC:-} && -d $SRC/relayguard ]]; then
    cd "$SRC/relayguard"
else
    cd "$(dirname "$0")/.."
fi
: "${OUT:?set OUT to the output folder}"
mkdir -p "$OUT"

if [[ -n ${SANITIZER:-} && ${SANITIZER} != none ]]; then
    # OSS-Fuzz: cargo-fuzz reads the sanitizer flags from the environment.
    cargo fuzz build -O --debug-assertions
    SAN_DIR=fuzz/target/x86_64-unknown-linux-gnu/release
else
    command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
    CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1} cargo fuzz build -O -s none
    SAN_DIR=fuzz/target/$(rustc -vV | sed -n 's/^host: //p')/release
fi

for src in fuzz/fuzz_targets/*.rs; do
    t=$(basename "$src" .rs)
    cp "$SAN_DIR/$t" "$OUT/$t"
    if [[ -d corpus/fuzz/$t ]]; then
        rm -f "$OUT/${t}_seed_corpus.zip"
        if command -v zip >/dev/null; then
            (cd "corpus/fuzz/$t" && zip -q -r "$OUT/${t}_seed_corpus.zip" .)
        else
            python3 -c 'import sys,zipfile,os
z=zipfile.ZipFile(sys.argv[1],"w")
[z.write(os.path.join(sys.argv[2],f),f) for f in sorted(os.listdir(sys.argv[2]))]' \
                "$OUT/${t}_seed_corpus.zip" "corpus/fuzz/$t"
        fi
    fi
    printf '[libfuzzer]\nmax_len = 4096\n' >"$OUT/$t.options"
done
echo "built $(ls fuzz/fuzz_targets/*.rs | wc -l) targets into $OUT"
