#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for FUZZ_SECONDS (default 30).
# Seeds come from fuzz/corpus/<target>/ when present; a crash fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
seconds="${FUZZ_SECONDS:-30}"
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DFHEGPT_FUZZ=ON -DFHEGPT_BUILD_TESTS=OFF -DFHEGPT_BUILD_BENCH=OFF >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target fuzzers
for bin in build-fuzz/fuzz/fuzz-*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin")
  work="build-fuzz/corpus/$name"
  mkdir -p "$work"
  seeds=()
  [ -d "fuzz/corpus/$name" ] && seeds=("fuzz/corpus/$name")
  echo "fuzz: $name for ${seconds}s"
  "$bin" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 "$work" "${seeds[@]}" \
      2>"build-fuzz/$name.log" || { tail -50 "build-fuzz/$name.log"; exit 1; }
  tail -1 "build-fuzz/$name.log"
done
