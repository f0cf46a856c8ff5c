"""fhegpt against Hugging Face transformers itself (tests/hf/run.sh sets up the venv):

1. tokens: GPT2TokenizerFast.from_pretrained(MODEL) and `fhegpt tokenize` give the same ids
   for every evaluation prompt and for the whole prompt file;
2. logits: GPT2LMHeadModel.from_pretrained(MODEL) and `fhegpt perplexity --logits` give the
   same logits on the prompt file, window by window, and the same perplexity;
3. a random GPT2Config checkpoint (every weight, bias and LayerNorm parameter random) written by
   save_pretrained loads in fhegpt and gives the same logits and perplexity.

"The same": every logit within 1e-4 of its row's largest magnitude (float32 matrix products
summed in different orders differ by ~1e-6 of it), the perplexity within 1e-4 relative.
Usage: check_transformers.py FHEGPT MODEL_DIR PROMPTS WORK_DIR
"""
import math
import os
import subprocess
import sys

import numpy as np
import torch
import transformers
from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

TOLERANCE = 1e-4


def fhegpt_tokenize(fhegpt, model_dir, path):
    out = subprocess.run([fhegpt, "tokenize", "-m", model_dir, "-f", path], check=True, capture_output=True).stdout
    return [int(t) for t in out.split()]


def fhegpt_logits(fhegpt, model_dir, prompts_path, window, logits_path, n_vocab):
    """fhegpt's perplexity of the file and the logits it wrote, [tokens, n_vocab]."""
    out = subprocess.run([fhegpt, "perplexity", "-m", model_dir, "-f", prompts_path, "--ctx", str(window),
                          "--threads", "1", "--logits", logits_path], check=True, capture_output=True, text=True).stdout
    logits = np.fromfile(logits_path, dtype="<f4")
    assert logits.size % n_vocab == 0, (logits.size, n_vocab)
    return float(out.strip().splitlines()[-1]), logits.reshape(-1, n_vocab)


def transformers_logits(model, ids, window):
    """The windows of `fhegpt perplexity` (a final single token dropped), their logits and perplexity."""
    rows, nll, predicted = [], 0.0, 0
    with torch.no_grad():
        for begin in range(0, len(ids), window):
            text = ids[begin:begin + window]
            if len(text) < 2:
                break
            logits = model(torch.tensor([text])).logits[0].double()
            rows.append(logits.numpy())
            log_probs = torch.log_softmax(logits[:-1], dim=-1)
            nll -= log_probs[torch.arange(len(text) - 1), torch.tensor(text[1:])].sum().item()
            predicted += len(text) - 1
    return math.exp(nll / predicted), np.concatenate(rows)


def compare_logits(what, ours, theirs):
    if ours.shape != theirs.shape:
        sys.exit(f"{what}: fhegpt wrote {ours.shape} logits, transformers computed {theirs.shape}")
    scale = np.abs(theirs).max(axis=1, keepdims=True)
    worst = float((np.abs(ours - theirs) / scale).max())
    print(f"{what}: {ours.shape[0]} x {ours.shape[1]} logits, largest difference {worst:.2e} of the row's scale")
    if not worst <= TOLERANCE:
        sys.exit(f"{what}: logits differ by {worst:.2e} of the row's scale (tolerance {TOLERANCE})")


def compare_perplexity(what, ours, theirs):
    print(f"{what}: perplexity fhegpt {ours:.6f}, transformers {theirs:.6f}")
    if not abs(ours - theirs) <= TOLERANCE * theirs:
        sys.exit(f"{what}: perplexity {ours} != {theirs}")


def check_model(fhegpt, model_dir, tokenizer, prompts_path, window, work, what):
    model = GPT2LMHeadModel.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
    with open(prompts_path, encoding="utf-8") as f:
        ids = tokenizer(f.read())["input_ids"]
    ours_ppl, ours = fhegpt_logits(fhegpt, model_dir, prompts_path, window, os.path.join(work, "logits.f32"),
                                   model.config.vocab_size)
    theirs_ppl, theirs = transformers_logits(model, ids, window)
    compare_logits(what, ours, theirs)
    compare_perplexity(what, ours_ppl, theirs_ppl)


def check_tokens(fhegpt, model_dir, tokenizer, prompts_path, work):
    with open(prompts_path, encoding="utf-8") as f:
        text = f.read()
    whole = fhegpt_tokenize(fhegpt, model_dir, prompts_path)
    if whole != tokenizer(text)["input_ids"]:
        sys.exit(f"{prompts_path}: fhegpt's tokens differ from GPT2TokenizerFast's")
    prompts = [line for line in text.split("\n") if line.strip(" \t\r")]
    one = os.path.join(work, "prompt.txt")
    for prompt in prompts:
        with open(one, "w", encoding="utf-8") as f:
            f.write(prompt)
        ours, theirs = fhegpt_tokenize(fhegpt, model_dir, one), tokenizer(prompt)["input_ids"]
        if ours != theirs:
            sys.exit(f"prompt {prompt!r}: fhegpt {ours}, GPT2TokenizerFast {theirs}")
    print(f"tokens: {len(whole)} for the whole file and each of {len(prompts)} prompts equal GPT2TokenizerFast's")


def random_checkpoint(tokenizer, directory):
    """A small GPT-2 with every parameter random (not HF's zero biases and unit LayerNorms, which
    would hide a bias or LayerNorm read from the wrong tensor), saved as safetensors."""
    torch.manual_seed(21)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=48, n_embd=64, n_layer=2, n_head=4,
                        layer_norm_epsilon=1e-5, bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id)
    model = GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            parameter.normal_(1.0 if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")) else 0.0, 0.2)
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    return config


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    fhegpt, model_dir, prompts_path, work = sys.argv[1:]
    os.makedirs(work, exist_ok=True)
    torch.set_num_threads(1)
    print(f"transformers {transformers.__version__}, torch {torch.__version__}")
    tokenizer = GPT2TokenizerFast.from_pretrained(model_dir)
    check_tokens(fhegpt, model_dir, tokenizer, prompts_path, work)
    check_model(fhegpt, model_dir, tokenizer, prompts_path, 64, work, model_dir)

    random_dir = os.path.join(work, "random-gpt2")
    config = random_checkpoint(tokenizer, random_dir)
    check_model(fhegpt, random_dir, tokenizer, prompts_path, config.n_positions, work, "save_pretrained(random GPT2Config)")
    print("transformers agrees with fhegpt")


if __name__ == "__main__":
    main()
