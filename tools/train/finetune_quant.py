#!/usr/bin/env python3
"""Fine-tune a GPT-2 checkpoint to be robust to the encrypted circuit's quantization.

The circuit (src/circuit) rounds the model at many points: 4-bit weights, 6-bit buckets of
the LayerNorms' inputs, of q/k/v, of the attention weights and of each head's output, 5-bit
buckets of the GELUs' inputs, 6-bit GELU outputs. Its outputs drift from the float model's,
and the drift compounds over the blocks. This script trains the float weights so that the
model's predictions do not move when every one of those points is perturbed by noise of its
rounding's size (uniform over one step, a step taken from the tensor's current range):

    loss = CE(noisy logits, next tokens) + kl_weight * KL(clean || noisy)

The clean logits are computed without gradient; the KL term is what makes the clean model's
top-1 survive the circuit, the CE term keeps it a language model. The noise is injected in a
forward pass of its own (model.py stays the float model that export.py writes), so the exported
checkpoint is an ordinary GPT-2.

Starts from an exported model directory (config.json, model.safetensors), writes a checkpoint
that export.py turns into a model directory.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import GPT2LMHead, gelu_new  # noqa: E402
from sample import load_safetensors  # noqa: E402
from schedule import cosine_lr  # noqa: E402
from train import evaluate, load_data  # noqa: E402


class RoundingNoise:
    """Uniform noise of one rounding step at each point the circuit quantizes.

    scale multiplies every step; the bit widths are those of the circuit's runnable
    configurations (x and lookups at 6 bits, weights at 4).
    """

    def __init__(self, scale, weight_bits=4, proj_weight_bits=5, lut_bits=6, gelu_bucket_bits=5,
                 layer_norm_error=0.07, client_layer_norm_error=0.03):
        self.scale = scale
        self.weight_bits = weight_bits
        self.proj_weight_bits = proj_weight_bits
        self.lut_bits = lut_bits
        self.gelu_bucket_bits = gelu_bucket_bits
        self.layer_norm_error = layer_norm_error
        self.client_layer_norm_error = client_layer_norm_error

    def uniform(self, x, step):
        return x + (torch.rand_like(x) - 0.5) * (step * self.scale).detach()

    def per_channel(self, x, bits):
        """Bucket of `bits` over each channel's range (the last dimension) in this batch."""
        flat = x.detach().reshape(-1, x.size(-1))
        span = flat.max(0).values - flat.min(0).values
        return self.uniform(x, span / 2 ** bits)

    def weight(self, w, bits):
        """One scale per tensor, clipped at three standard deviations (calibrated clips)."""
        clip = 3.0 * w.detach().std()
        return self.uniform(w, 2 * clip / (2 ** bits - 1))

    def layer_norm(self, x, ln, relative_error):
        mean = x.mean(-1, keepdim=True)
        var = ((x - mean) ** 2).mean(-1, keepdim=True)
        x_hat = (x - mean) / torch.sqrt(var + ln.eps)
        x_hat = x_hat + torch.randn_like(x_hat) * (relative_error * self.scale)
        return x_hat * ln.weight + ln.bias


def linear(x, conv, w):
    return torch.addmm(conv.bias, x.reshape(-1, x.size(-1)), w).view(*x.shape[:-1], -1)


def noisy_logits(model, idx, noise):
    """model.py's forward, with the circuit's roundings replaced by uniform noise."""
    t = model.transformer
    T = idx.size(1)
    x = t.wte(idx) + t.wpe(torch.arange(T, device=idx.device))[None]
    for layer, blk in enumerate(t.h):
        attn = blk.attn
        ln_error = noise.client_layer_norm_error if layer == 0 else noise.layer_norm_error
        h = noise.layer_norm(x, blk.ln_1, ln_error)
        B, _, C = h.shape
        hd = C // attn.n_head
        qkv = linear(h, attn.c_attn, noise.weight(attn.c_attn.weight, noise.weight_bits))
        q, k, v = (noise.per_channel(z, noise.lut_bits) for z in qkv.split(C, dim=2))
        q, k, v = (z.view(B, T, attn.n_head, hd).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
        att = att.masked_fill(~attn.mask[:, :, :T, :T], torch.finfo(att.dtype).min)
        att = F.softmax(att, dim=-1)
        att = noise.uniform(att, torch.tensor(2.0 ** -noise.lut_bits)) * attn.mask[:, :, :T, :T]
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        y = noise.per_channel(y, noise.lut_bits)
        x = x + linear(y, attn.c_proj, noise.weight(attn.c_proj.weight, noise.proj_weight_bits))
        mlp = blk.mlp
        h = noise.layer_norm(x, blk.ln_2, noise.layer_norm_error)
        a = linear(h, mlp.c_fc, noise.weight(mlp.c_fc.weight, noise.weight_bits))
        g = noise.per_channel(gelu_new(noise.per_channel(a, noise.gelu_bucket_bits)), noise.lut_bits)
        x = x + linear(g, mlp.c_proj, noise.weight(mlp.c_proj.weight, noise.proj_weight_bits))
    x = t.ln_f(x)
    return x @ t.wte.weight.t()


def load_model(model_dir):
    hf = json.load(open(os.path.join(model_dir, "config.json")))
    vocab = json.load(open(os.path.join(model_dir, "vocab.json")))
    cfg = dict(vocab_size=hf["vocab_size"], n_positions=hf["n_positions"], n_embd=hf["n_embd"],
               n_layer=hf["n_layer"], n_head=hf["n_head"], layer_norm_epsilon=hf["layer_norm_epsilon"],
               eot_id=vocab["<|endoftext|>"])
    model = GPT2LMHead(cfg)
    weights = load_safetensors(os.path.join(model_dir, "model.safetensors"))
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in weights.items()})
    return model, cfg


@torch.no_grad()
def agreement(model, data, T, noise, windows, seed):
    """Top-1 agreement and mean KL of the noisy forward against the clean one."""
    gen_state = torch.get_rng_state()
    torch.manual_seed(seed)
    agree, kl, count = 0.0, 0.0, 0
    for i in range(windows):
        b = torch.from_numpy(data[i * T:(i + 1) * T].astype(np.int64))[None]
        clean = model(b)[0].log_softmax(-1)
        noisy = noisy_logits(model, b, noise).log_softmax(-1)
        agree += (clean.argmax(-1) == noisy.argmax(-1)).float().sum().item()
        kl += F.kl_div(noisy, clean, log_target=True, reduction="sum").item()
        count += T
    torch.set_rng_state(gen_state)
    return agree / count, kl / count


def self_check(model_dir):
    """The noisy forward is the float model at noise scale 0, and moves the logits at scale 1."""
    model, cfg = load_model(model_dir)
    model.eval()
    tokens = torch.randint(0, cfg["vocab_size"], (2, 48), generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        clean = model(tokens)[0]
        silent = noisy_logits(model, tokens, RoundingNoise(0.0))
        noisy = noisy_logits(model, tokens, RoundingNoise(1.0))
    scale = clean.abs().max().item()
    silent_error = (silent - clean).abs().max().item() / scale
    noisy_change = (noisy - clean).abs().max().item() / scale
    print("noise scale 0: max relative logit difference %.2e; scale 1: %.3f" % (silent_error, noisy_change))
    assert silent_error < 1e-5, "the noisy forward at scale 0 is not the float model"
    assert noisy_change > 1e-2, "the noisy forward at scale 1 does not perturb the logits"
    print("self-check passed")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/fhegpt-tiny", help="exported model to start from")
    ap.add_argument("--corpus", default="/tmp/train/corpus")
    ap.add_argument("--tok", default="/tmp/train/tok")
    ap.add_argument("--data", default="/tmp/train/data")
    ap.add_argument("--out", default="/tmp/train/finetune-quant")
    ap.add_argument("--noise-scale", type=float, default=1.0, help="multiplies every rounding step")
    ap.add_argument("--kl-weight", type=float, default=1.0)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--batch", type=int, default=12)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--min-lr-frac", type=float, default=0.1)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--eval-windows", type=int, default=24)
    ap.add_argument("--time-limit-minutes", type=float, default=0, help="stop (and save) after this long")
    ap.add_argument("--measure-only", action="store_true", help="print the noisy forward's agreement and stop")
    ap.add_argument("--self-check", action="store_true", help="check the noisy forward against model.py and stop")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.self_check:
        self_check(args.model)
        return
    os.makedirs(args.out, exist_ok=True)
    _, data = load_data(args)
    model, cfg = load_model(args.model)
    noise = RoundingNoise(args.noise_scale)
    T = args.seq_len
    val = data["val"]

    def report(step):
        model.eval()
        vl = evaluate(model, val, T, "cpu", args.eval_windows)
        top1, kl = agreement(model, val, T, noise, max(1, args.eval_windows // 3), args.seed)
        model.train()
        print("step %d  val_ppl %.2f  noisy top-1 %.4f  noisy KL %.4f" % (step, math.exp(vl), top1, kl), flush=True)
        return dict(step=step, val_loss=vl, noisy_top1=top1, noisy_kl=kl)

    first = report(0)
    if args.measure_only:
        return

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    gen = torch.Generator().manual_seed(args.seed)
    train = data["train"]
    hi = len(train) - T - 1
    t_start = time.time()
    log = open(os.path.join(args.out, "log.jsonl"), "a")
    log.write(json.dumps(first) + "\n")
    step = 0
    while step < args.steps:
        prog = step / args.steps
        if args.time_limit_minutes:
            prog = max(prog, (time.time() - t_start) / (args.time_limit_minutes * 60))
        if prog >= 1.0:
            break
        lr = cosine_lr(args.lr, args.min_lr_frac, prog)
        for g in opt.param_groups:
            g["lr"] = lr
        offs = torch.randint(0, hi, (args.batch,), generator=gen)
        batch = torch.stack([torch.from_numpy(train[o:o + T + 1].astype(np.int64)) for o in offs.tolist()])
        with torch.no_grad():
            clean = model(batch[:, :-1])[0].log_softmax(-1)
        noisy = noisy_logits(model, batch[:, :-1], noise).log_softmax(-1)
        ce = F.nll_loss(noisy.reshape(-1, noisy.size(-1)), batch[:, 1:].reshape(-1))
        kl = F.kl_div(noisy, clean, log_target=True, reduction="batchmean") / T
        loss = ce + args.kl_weight * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        step += 1
        if step % 10 == 0:
            print("step %d  ce %.4f  kl %.4f  lr %.2e  elapsed %.1fmin" %
                  (step, ce.item(), kl.item(), lr, (time.time() - t_start) / 60), flush=True)
        if step % args.eval_every == 0:
            log.write(json.dumps(report(step)) + "\n")
            log.flush()
    last = report(step)
    log.write(json.dumps(last) + "\n")
    torch.save(dict(model=model.state_dict(), step=step, cfg=cfg, args=vars(args)),
               os.path.join(args.out, "ckpt.pt"))
    summary = dict(start=first, end=last, steps=step, minutes=(time.time() - t_start) / 60, args=vars(args))
    json.dump(summary, open(os.path.join(args.out, "summary.json"), "w"), indent=1)
    print("SUMMARY", json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
