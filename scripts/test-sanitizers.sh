#!/usr/bin/env bash
# Builds the unit tests under AddressSanitizer + UndefinedBehaviorSanitizer and runs them.
# Tests that are pure speed or statistics on production parameters are labelled `slow` and
# skipped here: under ASan they would take hours and check nothing the Release run does not.
# The CUDA backend is left out here: nvcc's code is not instrumented; the Release run builds it
# and runs its tests. The vectorized FFT kernels (AVX2, AVX-512) are built uninstrumented and
# most code at -O1 (CMakeLists.txt, src/tfhe/fft/CMakeLists.txt): instrumented at -O2, the build
# and the bootstraps took most of this script's time.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFHEGPT_SANITIZE=ON \
      -DFHEGPT_BUILD_BENCH=OFF -DFHEGPT_CUDA=OFF >/dev/null
cmake --build build-asan -j "$(nproc)"
cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j "$(nproc)" -LE "slow|hf"
