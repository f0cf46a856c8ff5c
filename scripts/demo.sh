#!/usr/bin/env bash
# The README's main command: installs dependencies, builds, and runs `fhegpt demo`: private
# generation with the bundled model, a protected head evaluated on ciphertexts by
# fhegpt-server on loopback, next to the clear and the simulated-quantized model (it prints
# an estimate of its time, measured on this machine, before the encrypted run). Extra arguments
# go to `fhegpt demo` (e.g. --part layer0.attn -n 4).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh >/dev/null
exec build/bin/fhegpt demo "$@"
