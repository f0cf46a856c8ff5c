#!/usr/bin/env bash
# The CUDA backend's checks on a GPU machine, in one run of under 8 minutes (no network there:
# nothing is installed). Writes gpu-check.json (the summary) and the logs to OUT_DIR.
#
#   scripts/gpu-check.sh [OUT_DIR]        (default: $OUT, else build-gpu-check)
#
# Programs: built here with FHEGPT_CUDA=ON when CMake finds the project's libraries; otherwise
# taken from build-gpu-bundle/gpu-bundle.tar.xz (scripts/gpu-bundle.sh, made on a machine that
# has them), and the kernels are still compiled with this machine's nvcc as a check.
# GPU_CHECK_USE_BUNDLE=1 takes the bundle without trying to build.
# Steps, each under a time limit: device and toolkit; build or bundle; the CPU tests of the
# shared per-coefficient functions; the GPU tests (GPU == CPU decryptions on insecure and
# production sets, noise against the model, many-LUT, chunked batches); `fhegpt bench pbs
# --device cuda` by batch size on PARAM_4BIT_2M128 and PARAM_5BIT_2M128_NORM2; the executor on
# one head (run-encrypted --part layer0.head0, 6 tokens, classic PARAM_4BIT_2M128_MIXED: the
# default for 6 tokens is multi-bit, which the backend does not run) on the GPU, then on the CPU if time is left.
# OUT_DIR receives three files (a device run brings back few): gpu-check.json, gpu-check.log and
# gpu-check-logs.tar.gz (every step's output).
set -uo pipefail
cd "$(dirname "$0")/.."
final=${1:-${OUT:-build-gpu-check}}
mkdir -p "$final"
final=$(cd "$final" && pwd)
out=$(mktemp -d /tmp/gpu-check.XXXXXX)
log=$out/gpu-check.log
started=$(date +%s)
elapsed() { echo $(($(date +%s) - started)); }
say() { echo "[gpu-check $(elapsed)s] $*" | tee -a "$log"; }
declare -A status

# --- device and toolkit -----------------------------------------------------------------------
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$out/device.txt" 2>&1
say "device: $(cat "$out/device.txt")"
nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
"$nvcc" --version > "$out/nvcc.txt" 2>&1
say "nvcc: $(tail -1 "$out/nvcc.txt")"
jobs=$(nproc)

# --- programs ---------------------------------------------------------------------------------
bin=""
build=build-gpu
if [ "${GPU_CHECK_USE_BUNDLE:-0}" != 1 ] && timeout 120 cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFHEGPT_CUDA=ON -DFHEGPT_WERROR=OFF \
     -DFHEGPT_BUILD_BENCH=OFF -DCMAKE_CUDA_COMPILER="$nvcc" > "$out/configure.log" 2>&1; then
  say "building with FHEGPT_CUDA=ON ($jobs jobs)"
  if timeout 300 cmake --build "$build" -j"$jobs" --target fhegpt test-tfhe-cuda test-tfhe-coefficient-ops \
       > "$out/build.log" 2>&1; then
    status[build]=built
    bin=$build
  else
    status[build]=build-failed
    say "build failed: tail of $out/build.log"; tail -20 "$out/build.log" | tee -a "$log"
  fi
else
  status[build]=no-libraries
  say "configure failed (the project's libraries are missing here?): $(grep -m1 -i error "$out/configure.log")"
fi
if [ -z "$bin" ] && [ -f build-gpu-bundle/gpu-bundle.tar.xz ]; then
  bundle=/tmp/fhegpt-gpu-bundle
  rm -rf "$bundle" && mkdir -p "$bundle" && tar -C "$bundle" -xJf build-gpu-bundle/gpu-bundle.tar.xz
  say "using the bundle of commit $(cat "$bundle/commit") (this tree: $(git rev-parse HEAD 2>/dev/null || echo unknown))"
  status[build]="${status[build]}+bundle"
  bin=bundle
  # The kernels with this machine's nvcc, for sm_90: a compile check only.
  if timeout 120 "$nvcc" -std=c++17 -O3 -arch=sm_90 -Isrc -c src/tfhe/cuda/pbs_kernels.cu -o /tmp/pbs_kernels.o \
       > "$out/nvcc-compile.log" 2>&1; then status[nvcc_compile]=ok; else status[nvcc_compile]=failed; fi
  say "nvcc compile of the kernels here: ${status[nvcc_compile]}"
fi
if [ -z "$bin" ]; then
  say "no programs: neither a build nor build-gpu-bundle/gpu-bundle.tar.xz"
  status[fatal]=no-programs
fi

# Paths of the programs and of the libraries they load (cuFFT from the toolkit or a wheel).
run_path=""
cufft_dirs=$( (ldconfig -p | awk '/libcufft\.so\.12/ {print $NF}'; \
               find /usr/local/cuda/lib64 /usr/local/cuda/targets /opt /usr/lib /usr/local/lib -maxdepth 8 \
                    -name 'libcufft.so.12' 2>/dev/null) | xargs -r -n1 dirname | sort -u | paste -sd:)
if [ "$bin" = bundle ]; then
  fhegpt=$bundle/bin/fhegpt; tests=$bundle/bin
  export LD_LIBRARY_PATH=$bundle/lib:${cufft_dirs}:${LD_LIBRARY_PATH:-}
  if ! "$tests/test-tfhe-coefficient-ops" --gtest_list_tests > /dev/null 2>&1; then
    export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$bundle/lib-fallback
    say "the machine's libstdc++ is older than the bundle's: using the bundled one"
  fi
elif [ -n "$bin" ]; then
  fhegpt=$bin/bin/fhegpt; tests=$bin/tests
  export LD_LIBRARY_PATH=${cufft_dirs}:${LD_LIBRARY_PATH:-}
fi

# --- tests ------------------------------------------------------------------------------------
run_gtest() { # name, time limit
  local name=$1 limit=$2
  say "$name"
  timeout "$limit" "$tests/$name" --gtest_output="json:$out/$name.json" > "$out/$name.log" 2>&1
  local rc=$?
  status[$name]=$rc
  grep -E "^\[  (PASSED|FAILED|SKIPPED) |variance|no CUDA" "$out/$name.log" | tee -a "$log"
  [ "$rc" -eq 124 ] && say "$name: stopped at its limit of ${limit}s"
}
if [ -n "$bin" ]; then
  run_gtest test-tfhe-coefficient-ops 60
  run_gtest test-tfhe-cuda 240

  # --- benchmark by batch size -----------------------------------------------------------------
  for set in PARAM_4BIT_2M128 PARAM_5BIT_2M128_NORM2; do
    [ "$(elapsed)" -gt 330 ] && { say "bench $set skipped: time"; continue; }
    say "bench pbs --device cuda --params $set"
    timeout 100 "$fhegpt" bench pbs --device cuda --params "$set" --batches 1,16,256,1024,4096,8192 --json \
      > "$out/bench-$set.json" 2> "$out/bench-$set.log"
    status[bench_$set]=$?
    tail -c 600 "$out/bench-$set.json" | tee -a "$log"; echo | tee -a "$log"
  done

  # --- the executor on one head -------------------------------------------------------------
  prompt="The king said unto the people"
  for device in cuda cpu; do
    [ "$(elapsed)" -gt 400 ] && { say "run-encrypted on $device skipped: time"; continue; }
    say "run-encrypted --part layer0.head0 --device $device"
    timeout $([ $device = cuda ] && echo 90 || echo 60) "$fhegpt" run-encrypted --part layer0.head0 --n-bits 4 \
      --params PARAM_4BIT_2M128_MIXED \
      -p "$prompt" --device "$device" --json > "$out/head-$device.json" 2> "$out/head-$device.log"
    status[head_$device]=$?
    tail -3 "$out/head-$device.log" | tee -a "$log"
  done
fi

# --- summary ------------------------------------------------------------------------------------
status_json=$(for key in "${!status[@]}"; do printf '"%s": "%s",\n' "$key" "${status[$key]}"; done)
python3 - "$out" "$(elapsed)" <<PY
import json, os, sys
out, seconds = sys.argv[1], int(sys.argv[2])
def read(name):
    path = os.path.join(out, name)
    return open(path).read().strip() if os.path.exists(path) else None
def gtest(name):
    text = read(name + ".json")
    if not text: return None
    data = json.loads(text)
    cases = [t for s in data.get("testsuites", []) for t in s.get("testsuite", [])]
    return {"tests": data.get("tests"), "failures": data.get("failures"),
            "skipped": sum(1 for t in cases if t.get("result") == "SKIPPED"),
            "failed": [t["classname"] + "." + t["name"] for t in cases if t.get("failures")]}
def jsonl(name):
    text = read(name)
    try: return [json.loads(line) for line in text.splitlines() if line.startswith("{")] if text else None
    except ValueError: return text[-2000:]
def whole(name):
    text = read(name)
    try: return json.loads(text) if text else None
    except ValueError: return text[-2000:]
summary = {
    "device": read("device.txt"), "nvcc": (read("nvcc.txt") or "").splitlines()[-1:],
    "status": json.loads("{" + """$status_json""".rstrip().rstrip(",") + "}"),
    "seconds": seconds,
    "tests": {n: gtest(n) for n in ("test-tfhe-coefficient-ops", "test-tfhe-cuda")},
    "bench": {s: jsonl("bench-%s.json" % s) for s in ("PARAM_4BIT_2M128", "PARAM_5BIT_2M128_NORM2")},
    "head": {d: whole("head-%s.json" % d) for d in ("cuda", "cpu")},
}
json.dump(summary, open(os.path.join(out, "gpu-check.json"), "w"), indent=1)
print(json.dumps(summary)[:3000])
PY
cp "$out/gpu-check.json" "$out/gpu-check.log" "$final/"
tar -C "$out" -czf "$final/gpu-check-logs.tar.gz" .
say "done; summary in $final/gpu-check.json"
cp "$log" "$final/gpu-check.log"
