#!/bin/sh
# Two processes on loopback: fhegpt-server serves a part (insecure test keys, so that the test
# is fast), `fhegpt generate --server` runs the model with that part on the server. The
# encrypted generation must write exactly the tokens of the clear simulation, with the
# server's KV cache and without it (every token sends the whole sequence), and the simulation
# with its cache those of the simulation recomputing the whole sequence.
# Usage: $0 path/to/fhegpt path/to/fhegpt-server PART TOKENS UNCACHED_TOKENS [PARAMS]
# UNCACHED_TOKENS 0: no run without the cache (that path does not depend on the part).
# PARAMS: the server's parameter set (default INSECURE_TEST_4BIT_PBS_L2; whole blocks need one
# with two bootstrapping keys, INSECURE_TEST_4BIT_MIXED).
set -eu
fhegpt="$1"
server_bin="$2"
part="$3"
tokens="$4"
uncached_tokens="$5"
params="${6:-INSECURE_TEST_4BIT_PBS_L2}"
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT

"$server_bin" -m models/fhegpt-tiny --part "$part" --n-bits 4 --params "$params" \
    --port 0 --max-positions 8 >"$dir/out" 2>"$dir/log" &
pid=$!
i=0
until grep -q '^listening on ' "$dir/out"; do
    i=$((i + 1))
    if [ "$i" -gt 600 ] || ! kill -0 "$pid" 2>/dev/null; then cat "$dir/log"; exit 1; fi
    sleep 0.1
done
url=$(sed -n 's/^listening on //p' "$dir/out")

gen() { "$fhegpt" generate -m models/fhegpt-tiny -p "The king said" --temperature 0 --n-bits 4 "$@"; }
encrypted=$(gen -n "$tokens" --server "$url" --encrypt "$part" 2>"$dir/client")
simulated=$(gen -n "$tokens" --simulate "$part" 2>/dev/null)
recomputed=$(gen -n "$tokens" --simulate "$part" --no-kv-cache 2>/dev/null)
echo "encrypted:  $encrypted"
echo "simulated:  $simulated"
echo "recomputed: $recomputed"
same_without_cache=true
if [ "$uncached_tokens" -gt 0 ]; then
    # Without the server's cache every token sends and evaluates the whole sequence (quadratic):
    # fewer tokens, against the simulation of as many.
    uncached=$(gen -n "$uncached_tokens" --server "$url" --encrypt "$part" --no-kv-cache 2>/dev/null)
    simulated_short=$(gen -n "$uncached_tokens" --simulate "$part" 2>/dev/null)
    echo "uncached ($uncached_tokens tokens):  $uncached"
    echo "simulated ($uncached_tokens tokens): $simulated_short"
    [ -n "$uncached" ] && [ "$uncached" = "$simulated_short" ] || same_without_cache=false
fi
cat "$dir/client"
# The client's progress lines and the server's log lines.
grep -q 'PBS, .* s on the server' "$dir/client"
grep -q 'POST /v1/eval 200' "$dir/log"
kill "$pid"
wait "$pid" || true
grep -q 'stopped' "$dir/log"
[ -n "$encrypted" ] && [ "$encrypted" = "$simulated" ] && [ "$simulated" = "$recomputed" ] && $same_without_cache
