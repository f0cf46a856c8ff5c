#!/bin/sh
# The Hugging Face compatibility test (ctest label hf): makes the pinned transformers venv
# (once, see scripts/python-venv.sh) and runs check_transformers.py against the fhegpt binary.
# Usage: tests/hf/run.sh FHEGPT VENV_DIR WORK_DIR   (from the source tree)
set -eu
[ $# -eq 3 ] || { echo "usage: $0 FHEGPT VENV_DIR WORK_DIR" >&2; exit 2; }
python=$(scripts/python-venv.sh --system-site-packages "$2" tests/hf/requirements.txt)
exec "$python" tests/hf/check_transformers.py "$1" models/fhegpt-tiny data/eval_prompts.txt "$3"
