#!/usr/bin/env python3
"""Greedy and sampled continuations from an exported model directory.

Independent of the training code: reads config.json, model.safetensors,
vocab.json and merges.txt with its own tiny loader and runs GPT-2's forward
pass in numpy (float32).  Sampling: temperature, top-k, fixed seed (numpy
PCG64), one generator per prompt so each continuation is reproducible alone.

  python3 tools/train/sample.py --model models/fhegpt-tiny --prompts FILE [--markdown]
  python3 tools/train/sample.py --model models/fhegpt-tiny --ppl VAL.jsonl   # held-out perplexity
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bpe import Tokenizer  # noqa: E402


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    w = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        s, e = info["data_offsets"]
        w[name] = np.frombuffer(data[s:e], dtype="<f4").reshape(info["shape"])
    return w


class NumpyGPT2:
    def __init__(self, model_dir):
        self.cfg = json.load(open(os.path.join(model_dir, "config.json")))
        self.w = load_safetensors(os.path.join(model_dir, "model.safetensors"))
        self.eps = self.cfg["layer_norm_epsilon"]

    def ln(self, x, p):
        m = x.mean(-1, keepdims=True)
        v = ((x - m) ** 2).mean(-1, keepdims=True)
        return (x - m) / np.sqrt(v + self.eps) * self.w[p + ".weight"] + self.w[p + ".bias"]

    def lin(self, x, p):
        return x @ self.w[p + ".weight"] + self.w[p + ".bias"]

    def logits(self, ids):
        """ids: list of token ids (len <= n_positions) -> [T, vocab] logits."""
        c, w = self.cfg, self.w
        T, C, H = len(ids), c["n_embd"], c["n_head"]
        hd = C // H
        x = w["transformer.wte.weight"][ids] + w["transformer.wpe.weight"][:T]
        mask = np.triu(np.full((T, T), -np.inf, dtype=np.float32), 1)
        for i in range(c["n_layer"]):
            p = "transformer.h.%d." % i
            h = self.ln(x, p + "ln_1")
            qkv = self.lin(h, p + "attn.c_attn")
            q, k, v = (qkv[:, j * C:(j + 1) * C].reshape(T, H, hd).transpose(1, 0, 2) for j in range(3))
            a = q @ k.transpose(0, 2, 1) / math.sqrt(hd) + mask
            a = np.exp(a - a.max(-1, keepdims=True))
            a /= a.sum(-1, keepdims=True)
            y = (a @ v).transpose(1, 0, 2).reshape(T, C)
            x = x + self.lin(y, p + "attn.c_proj")
            h = self.ln(x, p + "ln_2")
            h = self.lin(h, p + "mlp.c_fc")
            h = 0.5 * h * (1 + np.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h ** 3)))
            x = x + self.lin(h, p + "mlp.c_proj")
        x = self.ln(x, "transformer.ln_f")
        return x @ w["transformer.wte.weight"].T


def generate(model, tok, prompt, n_new, greedy, temperature=0.8, top_k=40, seed=0):
    ids = tok.encode(prompt)
    rng = np.random.default_rng(seed)
    n_pos = model.cfg["n_positions"]
    out = []
    for _ in range(n_new):
        lg = model.logits((ids + out)[-n_pos:])[-1].astype(np.float64)
        if greedy:
            nxt = int(lg.argmax())
        else:
            lg = lg / temperature
            kth = np.sort(lg)[-top_k]
            lg[lg < kth] = -np.inf
            p = np.exp(lg - lg.max())
            p /= p.sum()
            nxt = int(rng.choice(len(p), p=p))
        if nxt == tok.eot:
            break
        out.append(nxt)
    return tok.decode(out)


def perplexity(model, tok, jsonl, T):
    ids = []
    for line in open(jsonl, encoding="utf-8"):
        ids.extend(tok.encode(json.loads(line)["text"]))
        ids.append(tok.eot)
    nll, cnt = 0.0, 0
    for s in range(0, (len(ids) - 1) // T):
        x = ids[s * T:(s + 1) * T + 1]
        lg = model.logits(x[:-1]).astype(np.float64)
        lg -= lg.max(-1, keepdims=True)
        lp = lg - np.log(np.exp(lg).sum(-1, keepdims=True))
        nll -= lp[np.arange(T), x[1:]].sum()
        cnt += T
    return math.exp(nll / cnt), cnt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/fhegpt-tiny")
    ap.add_argument("--prompts", help="file, one prompt per line")
    ap.add_argument("--prompt", action="append", default=[])
    ap.add_argument("--n-new", type=int, default=40)
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--top-k", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--ppl", help="jsonl file: print per-token perplexity over 256-token windows")
    args = ap.parse_args()
    model = NumpyGPT2(args.model)
    tok = Tokenizer(os.path.join(args.model, "vocab.json"), os.path.join(args.model, "merges.txt"))
    if args.ppl:
        ppl, n = perplexity(model, tok, args.ppl, model.cfg["n_positions"])
        print("perplexity %.3f over %d tokens" % (ppl, n))
        return
    prompts = list(args.prompt)
    if args.prompts:
        prompts += [l.rstrip("\n") for l in open(args.prompts, encoding="utf-8") if l.strip()]
    for i, p in enumerate(prompts):
        g = generate(model, tok, p, args.n_new, True)
        s = generate(model, tok, p, args.n_new, False, args.temperature, args.top_k, args.seed + i)
        if args.markdown:
            esc = lambda t: t.replace("\n", " ⏎ ").replace("|", "\\|")  # noqa: E731
            print("%d. **%s**\n   - greedy: %s\n   - sampled: %s\n" % (i + 1, esc(p), esc(g), esc(s)))
        else:
            print("PROMPT:", p)
            print("  greedy :", repr(g))
            print("  sampled:", repr(s))


if __name__ == "__main__":
    main()
