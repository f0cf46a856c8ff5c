#!/bin/sh
# `fhegpt tokenize` end to end: a corpus file to tiktoken's ids and back to the same bytes,
# and clear errors (exit status 1) for a bad id and a missing model directory.
# usage: cli_test.sh path/to/fhegpt path/to/source-dir
set -eu
fhegpt=$1
src=$2
model=$src/models/gpt2-tokenizer
corpus=$src/tests/data/tokenizer/corpus
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for name in prose_en gen_whitespace; do
    "$fhegpt" tokenize -m "$model" -f "$corpus/$name.txt" > "$tmp/$name.ids"
    cmp "$tmp/$name.ids" "$corpus/$name.ids"
    "$fhegpt" tokenize -m "$model" --decode < "$tmp/$name.ids" > "$tmp/$name.txt"
    cmp "$tmp/$name.txt" "$corpus/$name.txt"
done

# Standard input, and the special token.
printf 'Hello world<|endoftext|>' | "$fhegpt" tokenize -m "$model" > "$tmp/hello.ids"
[ "$(cat "$tmp/hello.ids")" = "15496 995 50256" ]

expect_error() { # expect_error MESSAGE-FRAGMENT COMMAND...
    fragment=$1
    shift
    if "$@" > "$tmp/out" 2> "$tmp/err"; then
        echo "expected failure: $*" >&2
        exit 1
    fi
    grep -q -- "$fragment" "$tmp/err" || { echo "missing '$fragment' in:" >&2; cat "$tmp/err" >&2; exit 1; }
}
echo "15496 50257" > "$tmp/bad.ids"
expect_error "token id 50257 out of range" "$fhegpt" tokenize -m "$model" --decode -f "$tmp/bad.ids"
echo "15496 hello" > "$tmp/bad.ids"
expect_error "'hello' is not a token id" "$fhegpt" tokenize -m "$model" --decode -f "$tmp/bad.ids"
expect_error "$tmp/none/vocab.json: cannot open" "$fhegpt" tokenize -m "$tmp/none" -f "$tmp/bad.ids"
expect_error "$tmp/missing.txt: cannot open" "$fhegpt" tokenize -m "$model" -f "$tmp/missing.txt"
echo "tokenizer-cli: ok"
