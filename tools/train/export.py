#!/usr/bin/env python3
"""Export a training checkpoint as a Hugging Face GPT-2 model directory:
config.json, model.safetensors (F32, tied lm_head omitted), vocab.json,
merges.txt.  The safetensors writer is self-contained (no safetensors
package).  After writing, the file is read back and the logits of the
reloaded weights are compared with the checkpoint's.
"""
import argparse
import json
import os
import shutil
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import GPT2LMHead  # noqa: E402


def write_safetensors(path, tensors, metadata=None):
    """tensors: dict name -> float32 numpy array (C order, little-endian)."""
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype="<f4")
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    header["__metadata__"] = metadata or {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32"
        s, e = info["data_offsets"]
        out[name] = np.frombuffer(data[s:e], dtype="<f4").reshape(info["shape"])
    return out


def hf_config(cfg):
    eot = cfg["eot_id"]
    return {
        "activation_function": "gelu_new",
        "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.0,
        "bos_token_id": eot,
        "embd_pdrop": 0.0,
        "eos_token_id": eot,
        "initializer_range": 0.02,
        "layer_norm_epsilon": cfg["layer_norm_epsilon"],
        "model_type": "gpt2",
        "n_ctx": cfg["n_positions"],
        "n_embd": cfg["n_embd"],
        "n_head": cfg["n_head"],
        "n_inner": None,
        "n_layer": cfg["n_layer"],
        "n_positions": cfg["n_positions"],
        "reorder_and_upcast_attn": False,
        "resid_pdrop": 0.0,
        "scale_attn_by_inverse_layer_idx": False,
        "scale_attn_weights": True,
        "summary_activation": None,
        "summary_first_dropout": 0.1,
        "summary_proj_to_labels": True,
        "summary_type": "cls_index",
        "summary_use_proj": True,
        "tie_word_embeddings": True,
        "torch_dtype": "float32",
        "transformers_version": "4.30.0",
        "use_cache": True,
        "vocab_size": cfg["vocab_size"],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default="/tmp/train/run/ckpt.pt")
    ap.add_argument("--tok", default="/tmp/train/tok")
    ap.add_argument("--out", default="models/fhegpt-tiny")
    args = ap.parse_args()
    torch.set_num_threads(2)
    ck = torch.load(args.ckpt, map_location="cpu")
    cfg = ck["cfg"]
    model = GPT2LMHead(cfg)
    model.load_state_dict(ck["model"])
    model.eval()
    os.makedirs(args.out, exist_ok=True)
    tensors = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    assert "lm_head.weight" not in tensors
    write_safetensors(os.path.join(args.out, "model.safetensors"), tensors)
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(hf_config(cfg), f, indent=2)
        f.write("\n")
    for fn in ("vocab.json", "merges.txt"):
        shutil.copyfile(os.path.join(args.tok, fn), os.path.join(args.out, fn))

    # round-trip check
    back = read_safetensors(os.path.join(args.out, "model.safetensors"))
    m2 = GPT2LMHead(cfg)
    m2.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in back.items()})
    m2.eval()
    x = torch.randint(0, cfg["vocab_size"], (2, 64), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        d = (model(x)[0] - m2(x)[0]).abs().max().item()
    n_params = sum(v.size for v in back.values())
    print("exported %d tensors, %d parameters, step %d, max |dlogit| after reload %.3g" %
          (len(back), n_params, ck["step"], d))
    assert d == 0.0
    total = sum(os.path.getsize(os.path.join(args.out, f)) for f in os.listdir(args.out))
    print("directory size %.2f MB" % (total / 1e6))


if __name__ == "__main__":
    main()
