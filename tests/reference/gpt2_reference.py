#!/usr/bin/python3
"""Independent reference for fhegpt's GPT-2 forward pass.

Builds a small random GPT-2, writes it as Hugging Face checkpoint directories (config.json +
model.safetensors, written by the minimal safetensors writer below, in several dtypes and
naming variants), runs its own GPT-2 forward pass in float64 with torch on a fixed token
sequence and writes the logits of every position. Shares no code with the C++ engine.

Usage: gpt2_reference.py OUT_DIR

Writes:
  OUT_DIR/tokens.i32                 the token sequence, int32 little-endian
  OUT_DIR/<variant>/config.json
  OUT_DIR/<variant>/model.safetensors
  OUT_DIR/<variant>/logits.f64       [n_tokens, vocab] float64 little-endian, row i = logits
                                     after tokens[0..i], from the weights as stored (F16/BF16
                                     rounded) computed in float64
  OUT_DIR/f32/vocab.json, merges.txt  a byte-level BPE tokenizer of the model's 500 tokens
                                     (256 bytes, 243 merges learned from TEXT, <|endoftext|>),
                                     so that the fhegpt commands can run on the f32 model
Variants: f32 (bare names, causal-mask buffers as in the hub's gpt2), f16 and bf16
("transformer." prefix, lm_head omitted: tied), f32_untied (tie_word_embeddings false and its
own lm_head.weight).
"""
import json
import math
import os
import struct
import sys

import torch

N_LAYER, N_HEAD, N_EMBD, N_VOCAB, N_CTX = 3, 4, 128, 500, 64
EPS = 1e-5
SEED = 1234


def random_weights(gen):
    """Weights in float32 keyed by the Hugging Face GPT2Model names (no prefix)."""

    def normal(*shape, std=0.02, mean=0.0):
        return (torch.randn(*shape, generator=gen, dtype=torch.float64) * std + mean).float()

    w = {
        "wte.weight": normal(N_VOCAB, N_EMBD, std=0.1),
        "wpe.weight": normal(N_CTX, N_EMBD, std=0.05),
        "ln_f.weight": normal(N_EMBD, std=0.1, mean=1.0),
        "ln_f.bias": normal(N_EMBD, std=0.05),
    }
    for i in range(N_LAYER):
        p = f"h.{i}."
        w[p + "ln_1.weight"] = normal(N_EMBD, std=0.1, mean=1.0)
        w[p + "ln_1.bias"] = normal(N_EMBD, std=0.05)
        # Conv1D layout: weight [in, out]; large enough q/k weights to give peaked attention.
        w[p + "attn.c_attn.weight"] = normal(N_EMBD, 3 * N_EMBD, std=0.12)
        w[p + "attn.c_attn.bias"] = normal(3 * N_EMBD, std=0.05)
        w[p + "attn.c_proj.weight"] = normal(N_EMBD, N_EMBD, std=0.06)
        w[p + "attn.c_proj.bias"] = normal(N_EMBD, std=0.05)
        w[p + "ln_2.weight"] = normal(N_EMBD, std=0.1, mean=1.0)
        w[p + "ln_2.bias"] = normal(N_EMBD, std=0.05)
        w[p + "mlp.c_fc.weight"] = normal(N_EMBD, 4 * N_EMBD, std=0.08)
        w[p + "mlp.c_fc.bias"] = normal(4 * N_EMBD, std=0.05)
        w[p + "mlp.c_proj.weight"] = normal(4 * N_EMBD, N_EMBD, std=0.04)
        w[p + "mlp.c_proj.bias"] = normal(N_EMBD, std=0.05)
    return w


# --- minimal safetensors writer -------------------------------------------------------------

DTYPES = {"F32": (torch.float32, 4), "F16": (torch.float16, 2), "BF16": (torch.bfloat16, 2)}


def tensor_bytes(t, dtype_name):
    torch_dtype, size = DTYPES[dtype_name]
    t = t.to(torch_dtype).contiguous()
    # Reinterpret as integers of the element size to get the raw little-endian bytes.
    as_int = t.view(torch.int32 if size == 4 else torch.int16)
    return as_int.numpy().astype("<i4" if size == 4 else "<i2").tobytes()


def write_safetensors(path, tensors):
    """tensors: list of (name, torch tensor, dtype name)."""
    header = {"__metadata__": {"format": "pt"}}
    blobs = []
    offset = 0
    for name, t, dtype_name in tensors:
        data = tensor_bytes(t, dtype_name)
        header[name] = {"dtype": dtype_name, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header_bytes = json.dumps(header, separators=(",", ":")).encode()
    header_bytes += b" " * ((8 - len(header_bytes) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)))
        f.write(header_bytes)
        for blob in blobs:
            f.write(blob)


def write_config(path, tie):
    config = {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": N_VOCAB,
        "n_positions": N_CTX,
        "n_ctx": N_CTX,
        "n_embd": N_EMBD,
        "n_layer": N_LAYER,
        "n_head": N_HEAD,
        "layer_norm_epsilon": EPS,
        "activation_function": "gelu_new",
        "tie_word_embeddings": tie,
    }
    with open(path, "w") as f:
        json.dump(config, f, indent=2)


# --- a tiny byte-level BPE tokenizer -------------------------------------------------------

TEXT = (
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was the "
    "age of foolishness, it was the epoch of belief, it was the epoch of incredulity, it was the "
    "season of Light, it was the season of Darkness, it was the spring of hope, it was the winter "
    "of despair, we had everything before us, we had nothing before us, we were all going direct "
    "to Heaven, we were all going direct the other way. There were a king with a large jaw and a "
    "queen with a plain face, on the throne of England; there were a king with a large jaw and a "
    "queen with a fair face, on the throne of France. "
)


def bytes_to_unicode():
    """GPT-2's printable stand-ins for the 256 byte values."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1))
    keep += list(range(ord("\xae"), ord("\xff") + 1))
    chars = {}
    extra = 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


def write_tokenizer(d, n_merges):
    """Learns n_merges merges on TEXT's words (each word with its leading space)."""
    chars = bytes_to_unicode()
    vocab = {chars[b]: b for b in range(256)}
    words = {}
    for i, word in enumerate(TEXT.split(" ")):
        piece = (" " if i > 0 else "") + word
        key = tuple(chars[b] for b in piece.encode())
        words[key] = words.get(key, 0) + 1
    merges = []
    while len(merges) < n_merges:
        counts = {}
        for word, count in words.items():
            for pair in zip(word, word[1:]):
                counts[pair] = counts.get(pair, 0) + count
        if not counts:
            break
        best = max(counts, key=lambda pair: (counts[pair], pair))
        merges.append(best)
        vocab[best[0] + best[1]] = len(vocab)
        merged = {}
        for word, count in words.items():
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + count
        words = merged
    # Pad with merges of unused byte pairs if the text ran out of pairs.
    filler = iter((chars[a], chars[b]) for a in range(256) for b in range(256))
    while len(merges) < n_merges:
        pair = next(filler)
        if pair[0] + pair[1] not in vocab:
            merges.append(pair)
            vocab[pair[0] + pair[1]] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    with open(os.path.join(d, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(d, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for left, right in merges:
            f.write(f"{left} {right}\n")


# --- reference forward pass (float64) --------------------------------------------------------


def layer_norm(x, g, b):
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + EPS) * g + b


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def forward(w, lm_head, tokens):
    """Logits [n, vocab] of every position; w holds float64 tensors."""
    n = len(tokens)
    hd = N_EMBD // N_HEAD
    x = w["wte.weight"][tokens] + w["wpe.weight"][:n]
    mask = torch.tril(torch.ones(n, n, dtype=torch.bool))
    for i in range(N_LAYER):
        p = f"h.{i}."
        h = layer_norm(x, w[p + "ln_1.weight"], w[p + "ln_1.bias"])
        qkv = h @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]
        q, k, v = qkv.split(N_EMBD, dim=-1)
        heads = []
        for hh in range(N_HEAD):
            cols = slice(hh * hd, (hh + 1) * hd)
            scores = (q[:, cols] @ k[:, cols].T) / math.sqrt(hd)
            scores = scores.masked_fill(~mask, float("-inf"))
            heads.append(torch.softmax(scores, dim=-1) @ v[:, cols])
        attn = torch.cat(heads, dim=-1) @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
        x = x + attn
        h = layer_norm(x, w[p + "ln_2.weight"], w[p + "ln_2.bias"])
        h = gelu_new(h @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"])
        x = x + h @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
    x = layer_norm(x, w["ln_f.weight"], w["ln_f.bias"])
    return x @ lm_head.T


def as_stored(t, dtype_name):
    """The values the engine reads back: rounded to the stored dtype, widened to float64."""
    return t.to(DTYPES[dtype_name][0]).to(torch.float64)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    gen = torch.Generator().manual_seed(SEED)
    weights = random_weights(gen)
    untied_lm_head = (torch.randn(N_VOCAB, N_EMBD, generator=gen, dtype=torch.float64) * 0.1).float()

    # A fixed sequence filling the whole context, with the first and last vocabulary ids.
    tokens = torch.randint(0, N_VOCAB, (N_CTX,), generator=gen)
    tokens[5] = 0
    tokens[17] = N_VOCAB - 1
    tokens[40] = tokens[3]
    tokens.to(torch.int32).numpy().astype("<i4").tofile(os.path.join(out, "tokens.i32"))

    variants = [
        # (dir, dtype, prefix, tied, causal-mask buffers)
        ("f32", "F32", "", True, True),
        ("f16", "F16", "transformer.", True, False),
        ("bf16", "BF16", "transformer.", True, False),
        ("f32_untied", "F32", "transformer.", False, False),
    ]
    for name, dtype_name, prefix, tied, mask_buffers in variants:
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        tensors = [(prefix + k, v, dtype_name) for k, v in weights.items()]
        if mask_buffers:
            for i in range(N_LAYER):
                mask = torch.tril(torch.ones(N_CTX, N_CTX)).view(1, 1, N_CTX, N_CTX)
                tensors.append((f"h.{i}.attn.bias", mask, "F32"))
        if not tied:
            tensors.append(("lm_head.weight", untied_lm_head, dtype_name))
        write_safetensors(os.path.join(d, "model.safetensors"), tensors)
        write_config(os.path.join(d, "config.json"), tied)

        stored = {k: as_stored(v, dtype_name) for k, v in weights.items()}
        lm_head = stored["wte.weight"] if tied else as_stored(untied_lm_head, dtype_name)
        with torch.no_grad():
            logits = forward(stored, lm_head, tokens.tolist())
        logits.numpy().astype("<f8").tofile(os.path.join(d, "logits.f64"))
        if name == "f32":
            write_tokenizer(d, N_VOCAB - 257)
    print(f"gpt2_reference: wrote {len(variants)} checkpoints and logits of {N_CTX} tokens to {out}")


if __name__ == "__main__":
    main()
