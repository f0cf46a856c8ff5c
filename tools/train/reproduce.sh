#!/usr/bin/env bash
# Rebuild models/fhegpt-tiny from scratch on this machine (CPU, 2 threads).
# Needs Debian packages: python3-torch (1.13), python3-numpy, python3-regex,
# bible-kjv bible-kjv-text dict-gcide dict-devil dict-jargon fortunes debian-reference-en.
# Scratch space: /tmp/train (corpus, tokenized data, checkpoint, log).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-/usr/bin/python3}
W=${W:-/tmp/train}
# The shipped run had three phases, each stopped on a wall-clock budget
# (--time-limit-minutes 54, then --resume --time-limit-minutes 18 with LR 8e-4,
# then --resume --restart-schedule --steps 2100 --lr 6e-4 --time-limit-minutes 30),
# which reached steps 496, 1039 and 1650.  Here the same phases run on step-based
# cosine schedules with those step counts.  (Phase 3 of the shipped run was cut
# at step 1650 of a cosine planned to 2100, at LR ~2.7e-4; here it decays fully
# to 6e-5 by step 1650, so the result is close to, not identical with, the
# shipped weights.)
ARCH="--n-layer 4 --n-head 4 --n-embd 256 --n-positions 256 --seq-len 256 --batch 12 --seed 1234"
COMMON="--corpus $W/corpus --tok $W/tok --data $W/data --out $W/run ${DEVICE:+--device $DEVICE}"
$PY tools/train/train.py $COMMON $ARCH --steps 496 --warmup 50 --lr 2e-3 2>&1 | tee "$W/train.log"
$PY tools/train/train.py $COMMON $ARCH --resume --restart-schedule --steps 1039 --lr 8e-4 2>&1 | tee -a "$W/train.log"
$PY tools/train/train.py $COMMON $ARCH --resume --restart-schedule --steps 1650 --lr 6e-4 2>&1 | tee -a "$W/train.log"
$PY tools/train/export.py --ckpt "$W/run/ckpt.pt" --tok "$W/tok" --out models/fhegpt-tiny
$PY tools/train/sample.py --model models/fhegpt-tiny --prompts tools/train/card_prompts.txt --markdown
$PY tools/train/sample.py --model models/fhegpt-tiny --ppl "$W/corpus/val.jsonl"
