#!/bin/sh
# One process with T threads against T MPI ranks with one thread each (deploy/run-mpi.sh), on
# the same machine, for a served part's rows: the server's log line of each evaluation (rows,
# bootstraps, seconds) and, over MPI, what its batches exchanged (bytes each way, seconds to
# send, rank 0's own share, waiting for the other ranks' answers). docs/deployment.md turns
# these figures into a scaling model.
#
# Usage: bench/mpi-scaling.sh [PART] [RANKS] [SERVER_ARGS...]   (from the repository root)
#   PART   default layer0.head0; RANKS default 2
#   ROUNDS (environment, default 2): how many times each mode runs, alternating.
#   The client generates 2 tokens after "The king said": an evaluation of the prompt's 3 rows,
#   then one of a single row (with the server's encrypted cache).
set -eu
part=${1:-layer0.head0}
ranks=${2:-2}
if [ $# -ge 2 ]; then shift 2; elif [ $# -eq 1 ]; then shift; fi
fhegpt=build/bin/fhegpt
server_bin=build/bin/fhegpt-server
dir=$(mktemp -d)
pid=
trap 'if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi; rm -rf "$dir"' EXIT

run() { # MODE(local|mpi) LABEL SERVER_ARGS...
    mode=$1
    label=$2
    shift 2
    : >"$dir/out"
    set -- -m models/fhegpt-tiny --part "$part" --port 0 --max-positions 8 --max-sessions 1 "$@"
    if [ "$mode" = mpi ]; then
        FHEGPT_THREADS=1 sh deploy/run-mpi.sh "$ranks" --oversubscribe -- "$server_bin" "$@" >"$dir/out" 2>"$dir/log" &
    else
        FHEGPT_THREADS=$ranks "$server_bin" "$@" >"$dir/out" 2>"$dir/log" &
    fi
    pid=$!
    i=0
    until grep -q '^listening on ' "$dir/out"; do
        i=$((i + 1))
        if [ "$i" -gt 3000 ] || ! kill -0 "$pid" 2>/dev/null; then cat "$dir/log"; exit 1; fi
        sleep 0.1
    done
    url=$(sed -n 's/^listening on //p' "$dir/out")
    "$fhegpt" generate -m models/fhegpt-tiny -p "The king said" -n 2 --temperature 0 --server "$url" --encrypt "$part" \
        >/dev/null 2>"$dir/client"
    echo "== $label"
    grep ' threads' "$dir/log" | sed 's/^fhegpt-server: //' | cut -c1-220
    grep 'POST /v1/eval 200' "$dir/log" | sed 's/^.*POST .v1.eval 200 //'
    kill "$pid"
    wait "$pid" || true
    pid=
}

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "${ROUNDS:-2}"); do
    run local "round $round: 1 process x $ranks threads" "$@"
    run mpi "round $round: $ranks MPI ranks x 1 thread" "$@"
done
