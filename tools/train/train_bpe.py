#!/usr/bin/env python3
"""Train a GPT-2 style byte-level BPE vocabulary on the training split.

Pre-tokenizes every document once with GPT-2's regex, counts the distinct
pre-token words, then learns merges with incremental pair-count updates and a
lazy max-heap (ties broken by the pair's strings, so the result is
deterministic).  Writes HF/GPT-2 format vocab.json and merges.txt: ids 0..255
are the 256 byte symbols in GPT-2's byte-to-unicode order, then one id per
merge in the order learned, then <|endoftext|> as the last id.
"""
import argparse
import collections
import heapq
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bpe import BYTE_ENCODER, EOT, pretokenize  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default="/tmp/train/corpus/train.jsonl")
    ap.add_argument("--out", default="/tmp/train/tok")
    ap.add_argument("--vocab-size", type=int, default=6144, help="including <|endoftext|>")
    args = ap.parse_args()
    t0 = time.time()
    counts = collections.Counter()
    for line in open(args.corpus, encoding="utf-8"):
        counts.update(pretokenize(json.loads(line)["text"]))
    print("distinct pre-token words: %d (%.1fs)" % (len(counts), time.time() - t0), flush=True)

    words = [list(w) for w in counts]
    freqs = [counts[w] for w in counts]
    pair_counts = collections.defaultdict(int)
    where = collections.defaultdict(set)
    for i, (w, f) in enumerate(zip(words, freqs)):
        for a, b in zip(w, w[1:]):
            pair_counts[(a, b)] += f
            where[(a, b)].add(i)
    heap = [(-c, p) for p, c in pair_counts.items()]
    heapq.heapify(heap)

    base = [BYTE_ENCODER[b] for b in range(256)]
    n_merges = args.vocab_size - 256 - 1
    merges = []
    merged = set()
    while len(merges) < n_merges and heap:
        negc, pair = heapq.heappop(heap)
        c = pair_counts.get(pair, 0)
        if c <= 0:
            continue
        if -negc != c:  # stale entry; the current count was pushed separately
            continue
        if pair in merged:  # pair re-formed after its merge: never learn it twice
            pair_counts.pop(pair, None)
            continue
        merged.add(pair)
        a, b = pair
        ab = a + b
        merges.append(pair)
        changed = set()
        for i in list(where.pop(pair, ())):
            w = words[i]
            f = freqs[i]
            if len(w) < 2:
                continue
            # does this word still contain the pair?
            if not any(w[k] == a and w[k + 1] == b for k in range(len(w) - 1)):
                continue
            for p in zip(w, w[1:]):
                pair_counts[p] -= f
                changed.add(p)
            nw, k = [], 0
            while k < len(w):
                if k < len(w) - 1 and w[k] == a and w[k + 1] == b:
                    nw.append(ab)
                    k += 2
                else:
                    nw.append(w[k])
                    k += 1
            words[i] = nw
            for p in zip(nw, nw[1:]):
                pair_counts[p] += f
                where[p].add(i)
                changed.add(p)
        pair_counts.pop(pair, None)
        for p in changed:
            if p == pair:
                continue
            c2 = pair_counts.get(p, 0)
            if c2 > 0:
                heapq.heappush(heap, (-c2, p))
            else:
                pair_counts.pop(p, None)
        if len(merges) % 500 == 0:
            print("merges %d  last %r count %d  (%.1fs)" % (len(merges), ab, c, time.time() - t0),
                  flush=True)

    vocab = {}
    for s in base:
        vocab[s] = len(vocab)
    for a, b in merges:
        if a + b not in vocab:  # cannot happen with this trainer, kept as a guard
            vocab[a + b] = len(vocab)
    vocab[EOT] = len(vocab)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(args.out, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write("%s %s\n" % (a, b))
    print("vocab size %d (%d merges), eot id %d, %.1fs" %
          (len(vocab), len(merges), vocab[EOT], time.time() - t0))


if __name__ == "__main__":
    main()
