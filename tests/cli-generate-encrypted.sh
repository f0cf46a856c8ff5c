#!/bin/sh
# Greedy generation with a head on ciphertexts (insecure test keys, encrypted KV cache) must
# write exactly the tokens of the same generation with the head's clear simulation, with and
# without the cache. Usage: $0 path/to/fhegpt
set -eu
fhegpt="$1"
encrypted=$("$fhegpt" generate -m models/fhegpt-tiny -p "The king said" -n 4 --temperature 0 --n-bits 4 \
    --encrypt layer0.head0 --params INSECURE_TEST_4BIT_PBS_L2)
simulated=$("$fhegpt" generate -m models/fhegpt-tiny -p "The king said" -n 4 --temperature 0 --n-bits 4 \
    --simulate layer0.head0)
recomputed=$("$fhegpt" generate -m models/fhegpt-tiny -p "The king said" -n 4 --temperature 0 --n-bits 4 \
    --simulate layer0.head0 --no-kv-cache)
echo "encrypted:  $encrypted"
echo "simulated:  $simulated"
echo "recomputed: $recomputed"
[ -n "$encrypted" ] && [ "$encrypted" = "$simulated" ] && [ "$simulated" = "$recomputed" ]
