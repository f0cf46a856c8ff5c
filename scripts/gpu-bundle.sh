#!/usr/bin/env bash
# Prepares what scripts/gpu-check.sh runs on a GPU machine that has the CUDA toolkit but not
# this project's Debian libraries (and no network to install them): builds the CUDA backend's
# tests and the fhegpt command here with FHEGPT_CUDA=ON, and packs them with the shared
# libraries they load (those of the C library and the CUDA driver excepted; libstdc++ and
# libgcc_s go to a fallback folder, used there only if the machine's own are older) into
# build-gpu-bundle/gpu-bundle.tar.xz (ignored by git; carry the folder to the GPU machine).
#
#   scripts/gpu-bundle.sh [BUILD_DIR]     (default: build, reconfigured with FHEGPT_CUDA=ON)
set -euo pipefail
cd "$(dirname "$0")/.."
root=build-gpu-bundle
build=${1:-build}
jobs=${JOBS:-2}

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFHEGPT_CUDA=ON >/dev/null
nice -n 15 cmake --build "$build" -j"$jobs" --target fhegpt test-tfhe-cuda test-tfhe-coefficient-ops

stage=$root/stage
rm -rf "$stage"
mkdir -p "$root" "$stage/bin" "$stage/lib" "$stage/lib-fallback"
cp "$build/bin/fhegpt" "$build/tests/test-tfhe-cuda" "$build/tests/test-tfhe-coefficient-ops" "$stage/bin/"
for binary in "$stage"/bin/*; do
  ldd "$binary" | awk '$3 ~ /^\// {print $3}'
done | sort -u | while read -r lib; do
  name=$(basename "$lib")
  case "$name" in
    libc.so*|libm.so*|libdl.so*|libpthread.so*|librt.so*|ld-linux*|libcuda.so*) ;;  # the system's
    libcufft*|libcudart*) ;;                                                       # the toolkit's there
    libstdc++.so*|libgcc_s.so*) cp -L "$lib" "$stage/lib-fallback/" ;;
    *) cp -L "$lib" "$stage/lib/" ;;
  esac
done
git rev-parse HEAD > "$stage/commit"
tar -C "$stage" -cJf "$root/gpu-bundle.tar.xz" .
rm -rf "$stage"
ls -la "$root/gpu-bundle.tar.xz"
echo "gpu-bundle: carry '$root' to the GPU machine (run: carry [\"$root\"])"
