#!/usr/bin/python3
"""Logits of an exported fhegpt model directory (e.g. models/fhegpt-tiny), computed by the
training code's own PyTorch model class (tools/train/model.py) in float32.

Usage: bundled_model_logits.py MODEL_DIR TOKENS_I32 OUT_F32

  MODEL_DIR   config.json + model.safetensors (F32, Hugging Face GPT-2 names, as written by
              tools/train/export.py: "transformer." prefix, lm_head tied and not stored)
  TOKENS_I32  the token ids, int32 little-endian
  OUT_F32     written: [n_tokens, vocab_size] float32 little-endian, row i = logits after
              tokens[0..i]

The safetensors file is read by the few lines below (no safetensors/numpy package); the
tensor names are those of GPT2LMHead.state_dict(), so they load with strict=True.
"""
import json
import os
import struct
import sys

import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tools", "train"))
from model import GPT2LMHead  # noqa: E402


def read_safetensors_f32(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    assert sys.byteorder == "little"
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            sys.exit(f"{path}: {name} is {info['dtype']}, only F32 is supported")
        s, e = info["data_offsets"]
        out[name] = torch.frombuffer(bytearray(data[s:e]), dtype=torch.float32).reshape(info["shape"])
    return out


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    model_dir, tokens_path, out_path = sys.argv[1:]
    torch.set_num_threads(1)
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    if not cfg.get("tie_word_embeddings", True):
        sys.exit("GPT2LMHead has a tied lm_head only")
    weights = read_safetensors_f32(os.path.join(model_dir, "model.safetensors"))
    weights.pop("lm_head.weight", None)  # tied: a copy of wte if an exporter stored it anyway

    model = GPT2LMHead(cfg)  # reads vocab_size, n_positions, n_embd, n_layer, n_head, layer_norm_epsilon
    model.load_state_dict(weights, strict=True)
    model.float().eval()

    with open(tokens_path, "rb") as f:
        raw = f.read()
    tokens = list(struct.unpack(f"<{len(raw) // 4}i", raw))
    assert 0 < len(tokens) <= cfg["n_positions"], len(tokens)
    with torch.no_grad():
        logits, _ = model(torch.tensor([tokens], dtype=torch.long))
    logits = logits[0].to(torch.float32).contiguous()
    assert logits.shape == (len(tokens), cfg["vocab_size"])
    with open(out_path, "wb") as f:
        f.write(logits.numpy().astype("<f4").tobytes())
    print(f"bundled_model_logits: {len(tokens)} x {cfg['vocab_size']} logits to {out_path}")


if __name__ == "__main__":
    main()
