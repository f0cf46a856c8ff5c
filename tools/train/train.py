#!/usr/bin/env python3
"""Train fhegpt-tiny (GPT-2 architecture) on the prepared corpus.

AdamW (betas 0.9/0.95, weight decay on matrices only), linear warmup then
cosine decay to 10% of the peak LR, gradient clipping at 1.0.  Batches are
random 257-token windows of the concatenated training stream (documents
joined by <|endoftext|>), drawn from a seeded generator, so a run is
reproducible for a fixed thread count.  Checkpoints (model + optimizer +
step) are written every --ckpt-minutes to <out>/ckpt.pt, and at the end.
"""
import argparse
import hashlib
import json
import math
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bpe import Tokenizer  # noqa: E402
from model import GPT2LMHead  # noqa: E402
from schedule import cosine_lr  # noqa: E402


def tokenize_split(tok, jsonl, out_path):
    ids = []
    for line in open(jsonl, encoding="utf-8"):
        ids.extend(tok.encode(json.loads(line)["text"]))
        ids.append(tok.eot)
    arr = np.array(ids, dtype=np.uint16)
    arr.tofile(out_path)
    return arr


def load_data(args):
    tok = Tokenizer(os.path.join(args.tok, "vocab.json"), os.path.join(args.tok, "merges.txt"))
    h = hashlib.md5(open(os.path.join(args.tok, "merges.txt"), "rb").read()).hexdigest()[:8]
    os.makedirs(args.data, exist_ok=True)
    out = {}
    for split in ("train", "val"):
        p = os.path.join(args.data, "%s-%s.bin" % (split, h))
        if os.path.exists(p):
            out[split] = np.fromfile(p, dtype=np.uint16)
        else:
            t0 = time.time()
            out[split] = tokenize_split(tok, os.path.join(args.corpus, split + ".jsonl"), p)
            print("tokenized %s: %d tokens (%.1fs)" % (split, len(out[split]), time.time() - t0),
                  flush=True)
    chars = {s: sum(len(json.loads(l)["text"]) + 1 for l in open(os.path.join(args.corpus, s + ".jsonl")))
             for s in ("train", "val")}
    print("train %d tokens (%.2f chars/token), val %d tokens" %
          (len(out["train"]), chars["train"] / len(out["train"]), len(out["val"])), flush=True)
    return tok, out


@torch.no_grad()
def evaluate(model, data, T, device, max_windows=None, bs=16):
    """Mean next-token loss over consecutive non-overlapping windows of data."""
    model.eval()
    n = (len(data) - 1) // T
    if max_windows:
        n = min(n, max_windows)
    tot, cnt = 0.0, 0
    for s in range(0, n, bs):
        idx = [torch.from_numpy(data[i * T:(i + 1) * T + 1].astype(np.int64)) for i in range(s, min(n, s + bs))]
        b = torch.stack(idx).to(device)
        _, loss = model(b[:, :-1], b[:, 1:])
        tot += loss.item() * b.size(0) * T
        cnt += b.size(0) * T
    model.train()
    return tot / cnt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default="/tmp/train/corpus")
    ap.add_argument("--tok", default="/tmp/train/tok")
    ap.add_argument("--data", default="/tmp/train/data")
    ap.add_argument("--out", default="/tmp/train/run")
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--n-embd", type=int, default=256)
    ap.add_argument("--n-positions", type=int, default=256)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=60)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--eval-windows", type=int, default=48)
    ap.add_argument("--ckpt-minutes", type=float, default=4.0)
    ap.add_argument("--time-limit-minutes", type=float, default=0, help="stop (and save) after this long")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--restart-schedule", action="store_true",
                    help="with --resume: new cosine from the resumed step to --steps (no warm-up)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    tok, data = load_data(args)
    vocab_size = len(tok.encoder)
    cfg = dict(vocab_size=vocab_size, n_positions=args.n_positions, n_embd=args.n_embd,
               n_layer=args.n_layer, n_head=args.n_head, layer_norm_epsilon=1e-5,
               eot_id=tok.eot)
    assert args.n_embd // args.n_head == 64, "head dimension must be 64"
    model = GPT2LMHead(cfg).to(args.device)
    n_params = sum(p.numel() for p in model.parameters())
    print("config", json.dumps(cfg), "params %d" % n_params, flush=True)

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)

    sched0 = [0]  # with --resume --restart-schedule the cosine restarts at the resumed step

    def lr_at(step):
        if sched0[0]:
            prog = min(1.0, (step - sched0[0]) / max(1, args.steps - sched0[0]))
            return cosine_lr(args.lr, args.min_lr_frac, prog)
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        prog = min(1.0, (step - args.warmup) / max(1, args.steps - args.warmup))
        if args.time_limit_minutes:  # anneal on whichever runs out first: steps or wall time
            prog = max(prog, min(1.0, (time.time() - t_start) / (args.time_limit_minutes * 60)))
        return cosine_lr(args.lr, args.min_lr_frac, prog)

    gen = torch.Generator().manual_seed(args.seed)
    step = 0
    ckpt_path = os.path.join(args.out, "ckpt.pt")
    if args.resume and os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path, map_location=args.device)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step = ck["step"]
        gen.set_state(ck["gen"])
        print("resumed at step", step, flush=True)
        if args.restart_schedule:
            sched0[0] = step

    def save(tag=""):
        ck = dict(model=model.state_dict(), opt=opt.state_dict(), step=step, cfg=cfg,
                  gen=gen.get_state(), args=vars(args))
        torch.save(ck, ckpt_path + ".tmp")
        os.replace(ckpt_path + ".tmp", ckpt_path)
        print("saved checkpoint at step %d %s" % (step, tag), flush=True)

    train = data["train"]
    T, B = args.seq_len, args.batch
    hi = len(train) - T - 1
    t_start = time.time()
    t_ckpt = time.time()
    tok_seen = 0
    log = open(os.path.join(args.out, "log.jsonl"), "a")
    loss_ema = None
    while step < args.steps:
        if step % args.eval_every == 0 and step > 0:
            vl = evaluate(model, data["val"], T, args.device, args.eval_windows)
            print("step %d  val_loss %.4f  val_ppl %.2f" % (step, vl, math.exp(vl)), flush=True)
            log.write(json.dumps(dict(step=step, val_loss=vl)) + "\n")
            log.flush()
        lr = lr_at(step)
        for g in opt.param_groups:
            g["lr"] = lr
        offs = torch.randint(0, hi, (B,), generator=gen)
        batch = torch.stack([torch.from_numpy(train[o:o + T + 1].astype(np.int64)) for o in offs.tolist()])
        batch = batch.to(args.device)
        t0 = time.time()
        _, loss = model(batch[:, :-1], batch[:, 1:])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip).item()
        opt.step()
        step += 1
        tok_seen += B * T
        dt = time.time() - t0
        li = loss.item()
        loss_ema = li if loss_ema is None else 0.95 * loss_ema + 0.05 * li
        if step % 10 == 0 or step == 1:
            el = time.time() - t_start
            print("step %d  loss %.4f  ema %.4f  lr %.2e  gnorm %.2f  %.0f tok/s  elapsed %.1fmin" %
                  (step, li, loss_ema, lr, gnorm, B * T / dt, el / 60), flush=True)
            log.write(json.dumps(dict(step=step, loss=li, lr=lr, gnorm=gnorm, tok_s=B * T / dt,
                                      elapsed=el)) + "\n")
            log.flush()
        if time.time() - t_ckpt > args.ckpt_minutes * 60:
            save()
            t_ckpt = time.time()
        if args.time_limit_minutes and time.time() - t_start > args.time_limit_minutes * 60:
            print("time limit reached", flush=True)
            break
    save("(final)")
    el = time.time() - t_start
    vl = evaluate(model, data["val"], T, args.device, None)
    tl = evaluate(model, train[: len(data["val"]) * 4], T, args.device, len(data["val"]) // T)
    summary = dict(steps=step, tokens=tok_seen, minutes=el / 60, params=n_params,
                   val_loss=vl, val_ppl=math.exp(vl), train_loss=tl, train_ppl=math.exp(tl),
                   batch=B, seq_len=T, lr=args.lr, warmup=args.warmup, planned_steps=args.steps,
                   train_tokens=int(len(train)), val_tokens=int(len(data["val"])))
    json.dump(summary, open(os.path.join(args.out, "summary.json"), "w"), indent=1)
    print("SUMMARY", json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
