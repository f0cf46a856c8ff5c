#!/usr/bin/env bash
# Zama's Concrete (concrete-python's CPU runtime) side by side with fhegpt on batches of 4-bit
# table lookups: installs concrete-python (pinned) in build/peers-venv, then runs
# bench/peers/concrete_lookups.py, which also runs `fhegpt bench pbs` on the closest sets.
# Needs a built fhegpt (build/bin/fhegpt) and PyPI access; about 6 GB in the venv (torch comes
# with concrete-python). Not part of CI. Options go to the script (--threads, --batch, --runs).
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=build/peers-venv
fhegpt=build/bin/fhegpt
[ -x "$fhegpt" ] || { echo "build fhegpt first: cmake --build build --target fhegpt" >&2; exit 1; }
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import concrete.fhe" 2>/dev/null; then
  python3 -m venv "$venv"
  # concrete-python 2.11 imports pkg_resources, which setuptools 81 drops.
  "$venv/bin/pip" install --quiet "concrete-python==2.11.0" "setuptools==80.9.0"
fi
exec "$venv/bin/python" bench/peers/concrete_lookups.py --fhegpt "$fhegpt" "$@"
