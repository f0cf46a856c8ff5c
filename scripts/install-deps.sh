#!/usr/bin/env bash
# Installs the Debian 12 packages fhegpt needs to build, test and train, by name, idempotently:
# packages already present are skipped and apt is not touched when nothing is missing.
set -euo pipefail

packages=(
  # build
  build-essential cmake ninja-build pkg-config git
  # libraries
  nlohmann-json3-dev libpcre2-dev libopenblas-dev libopenblas0-pthread libsodium-dev
  libcli11-dev libcpp-httplib-dev libboost-dev libssl-dev libfmt-dev
  # tests, benchmarks, fuzzing (libFuzzer ships with clang's runtime)
  libgtest-dev libgmock-dev libbenchmark-dev clang libclang-rt-14-dev
  # deployment: load balancer in front of several servers, MPI across machines
  haproxy openmpi-bin libopenmpi-dev
  # reference model and training (Debian's torch, on OpenBLAS), plots
  python3 python3-venv python3-torch python3-numpy python3-matplotlib python3-regex
  # public-domain training text for the bundled model
  bible-kjv bible-kjv-text fortunes dict-gcide dict-devil dict-jargon debian-reference-en
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
