#!/usr/bin/env bash
# The README's main command: installs dependencies, builds, and generates text with the
# bundled default model. Extra arguments are passed to `fhegpt generate`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh >/dev/null
exec build/bin/fhegpt generate -m models/fhegpt-tiny -p "${PROMPT:-The king said unto his servants}" -n 40 "$@"
