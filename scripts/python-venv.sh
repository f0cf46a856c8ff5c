#!/usr/bin/env bash
# Creates the Python virtual environment DIR with the packages pinned in REQUIREMENTS, once,
# and prints the path of its python on stdout (pip's messages go to stderr). The venv is made
# again when REQUIREMENTS changes (it keeps a copy of the file it was made from). Safe to run
# from several processes at once (a lock in DIR's parent).
#
# Usage: scripts/python-venv.sh [--system-site-packages] DIR REQUIREMENTS
#   --system-site-packages  also see Debian's python3 packages (python3-torch, python3-numpy)
#                           instead of downloading pip's much larger ones
# The interpreter is $PYTHON, by default Debian's /usr/bin/python3 (whose site packages
# scripts/install-deps.sh fills), else the first python3 on PATH. Needs PyPI access the first time.
set -euo pipefail

system_site=()
if [ "${1:-}" = "--system-site-packages" ]; then
  system_site=(--system-site-packages)
  shift
fi
[ $# -eq 2 ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d' >&2; exit 2; }
dir=$1
requirements=$2
[ -f "$requirements" ] || { echo "python-venv: $requirements: no such file" >&2; exit 1; }
python=${PYTHON:-}
if [ -z "$python" ]; then
  if [ -x /usr/bin/python3 ]; then python=/usr/bin/python3; else python=python3; fi
fi

mkdir -p "$(dirname "$dir")"
exec 9>"$dir.lock"
flock 9
stamp="$dir/requirements.txt"
if [ ! -x "$dir/bin/python" ] || ! cmp -s "$requirements" "$stamp"; then
  echo "python-venv: creating $dir from $requirements" >&2
  rm -rf "$dir"
  "$python" -m venv "${system_site[@]}" "$dir" >&2
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements" >&2
  cp "$requirements" "$stamp"
fi
echo "$dir/bin/python"
