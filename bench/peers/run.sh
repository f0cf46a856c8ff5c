#!/usr/bin/env bash
# Zama's Concrete (concrete-python's CPU runtime) side by side with fhegpt on batches of 4-bit
# table lookups: installs concrete-python (pinned in bench/peers/requirements.txt) in build/peers-venv
# (scripts/python-venv.sh), then runs
# bench/peers/concrete_lookups.py, which also runs `fhegpt bench pbs` on the closest sets.
# Needs a built fhegpt (build/bin/fhegpt) and PyPI access; about 6 GB in the venv (torch comes
# with concrete-python). Not part of CI. Options go to the script (--threads, --batch, --runs).
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=build/peers-venv
fhegpt=build/bin/fhegpt
[ -x "$fhegpt" ] || { echo "build fhegpt first: cmake --build build --target fhegpt" >&2; exit 1; }
python=$(scripts/python-venv.sh "$venv" bench/peers/requirements.txt)
exec "$python" bench/peers/concrete_lookups.py --fhegpt "$fhegpt" "$@"
