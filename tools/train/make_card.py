import json, math, os
s1 = json.load(open('/tmp/train/summary_phase1.json'))
s2 = json.load(open('/tmp/train/summary_phase2.json'))
s3 = json.load(open('/tmp/train/run/summary.json'))
samples = open('/tmp/train/card_samples.md').read().strip()
ppl_np = open('/tmp/train/ppl_numpy.txt').read().strip()
size = sum(os.path.getsize(os.path.join('models/fhegpt-tiny', f)) for f in os.listdir('models/fhegpt-tiny') if f != 'README.md')
tokens = s1['tokens'] + s2['tokens'] + s3['tokens']
mins = s1['minutes'] + s2['minutes'] + s3['minutes']
# phase 3: cosine restarted at s2's step, planned to s3['planned_steps'], cut by the wall-clock limit
p3 = min(1.0, (s3['steps'] - s2['steps']) / (s3['planned_steps'] - s2['steps']))
lr3_end = s3['lr'] * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p3)))
lr3_end_s = f'{lr3_end:.1e}'.replace('e-0', 'e-')
card = f"""# fhegpt-tiny

A small GPT-2-architecture language model trained from scratch for the fhegpt
project (GPT-2's own weights cannot be downloaded here). It is the default model
for tests, the demo and quantization-accuracy measurements. The files are in the
Hugging Face `GPT2LMHeadModel` format: `config.json`, `model.safetensors` (F32,
`lm_head` tied to `wte`, so `lm_head.weight` is not stored), `vocab.json`,
`merges.txt`. `transformers` was not available here to load it, so the format
was checked against the spec. `export.py` reads the safetensors file back and
gets bit-identical logits, and an independent numpy forward pass
(`tools/train/sample.py`) matches PyTorch to within 2e-6.

**This is a weak model.** Because of the compute it got (see Training), it writes
English words, KJV-style phrases and dictionary/fortune formatting, but greedy
decoding quickly falls into loops. Held-out perplexity is {s3['val_ppl']:.0f} per BPE
token (it was {s2['val_ppl']:.0f} before the third training phase). Use it for
format, pipeline and quantization tests, not for text quality.

## Architecture

| | |
|---|---|
| layers / heads / n_embd / head dim | 4 / 4 / 256 / 64 |
| MLP | 1024 (4 x n_embd), `gelu_new` (tanh GELU) |
| context (`n_positions` = `n_ctx`) | 256 |
| vocabulary | 6,144 (byte-level BPE; `<|endoftext|>` = 6143 = bos = eos) |
| LayerNorm eps | 1e-5, pre-LN blocks, final `ln_f` |
| parameters | {s3['params']:,} (tied embeddings) |
| files total (without this card) | {size/1e6:.2f} MB |

Init is GPT-2's: N(0, 0.02), with `c_proj` weights scaled by 1/sqrt(2*n_layer).
There is no dropout (the config's pdrop values are 0).

## Data (all English, from Debian packages)

| source (Debian package) | licence | train chars | val chars |
|---|---|---|---|
| King James Bible (`bible-kjv-text`, via the `bible` CLI), one document per chapter | public domain (copyright expired) | 4,018,309 | 121,165 |
| GCIDE, the Collaborative International Dictionary of English 0.48 (`dict-gcide`): Webster 1913 + WordNet-derived definitions and literary citations, markup stripped, deterministic ~2/3 subsample | **GPL-2+** | 5,931,376 | 112,814 |
| The Devil's Dictionary, A. Bierce (`dict-devil`) | public domain | 341,823 | 9,220 |
| The Jargon File 4.4.7 (`dict-jargon`) | public domain | 1,202,975 | 26,564 |
| fortune cookies, 34 English files of `fortunes` (art, ascii-art, translate-me, zippy, pratchett, startrek, songs-poems, literature and ethnic left out) | collection distributed in Debian main under the BSD licence. Mixed provenance: short quotations and jokes from many authors (see `/usr/share/doc/fortunes/copyright`) | 1,940,234 | 35,029 |
| Debian Reference (`debian-reference-en`), prose paragraphs only | GPL-2+ | 239,550 | 7,454 |

Total: 13.67 M characters, 4,017,056 training tokens (3.41 chars/token) and
89,939 held-out tokens. A document goes to validation iff `md5(source:index) % 50 == 0`
(about 2% of documents).

## Tokenizer

Byte-level BPE trained on the training split with `tools/train/train_bpe.py`,
using GPT-2's scheme: the same pre-tokenization regex, the same byte-to-unicode
table, and merges ranked in the order they were learned. Ids 0-255 are the byte
symbols, 256-6142 are the 5,887 merges in order, and 6143 is `<|endoftext|>`.
`merges.txt` starts with `#version: 0.2`. Documents are joined with
`<|endoftext|>` in the training stream.

## Training

- PyTorch 1.13 CPU, 2 threads, on a 2-core machine shared with several
  concurrent C++ builds and CI runs (load average 4-12). Throughput was
  130-3,000 tokens/s: median about 460 in phase 1, 2,100-2,300 in phases 2 and 3.
- AdamW (betas 0.9/0.95, eps 1e-8, weight decay 0.1 on matrices only),
  gradient clipping 1.0, batch 12 x 256 tokens = 3,072 tokens/step, random
  windows from a seeded generator (seed 1234).
- Phase 1: peak LR 2e-3, 50 warm-up steps, then a cosine decay to 2e-4 annealed
  on a 54-minute wall-clock budget: {s1['steps']} steps. Phase 2 (resumed from the
  same optimizer state, because the machine became less loaded): LR 8e-4 with a
  cosine decay to 8e-5 over 18 minutes, reaching step {s2['steps']}. Phase 3
  (resumed again, same optimizer state): a new cosine from LR 6e-4 (no
  warm-up) planned over steps {s2['steps']}-{s3['planned_steps']}, stopped by a
  {s3['minutes']:.0f}-minute wall-clock limit at step {s3['steps']} (LR about {lr3_end_s} at the stop).
- Per phase: {s1['steps']} / {s2['steps'] - s1['steps']} / {s3['steps'] - s2['steps']} steps,
  {s1['tokens']/1e6:.2f} / {s2['tokens']/1e6:.2f} / {s3['tokens']/1e6:.2f} M tokens,
  {s1['minutes']:.0f} / {s2['minutes']:.0f} / {s3['minutes']:.0f} minutes.
- Total: **{s3['steps']} steps, {tokens/1e6:.2f} M tokens (about {tokens/4017056:.2f} epochs), {mins:.0f} minutes of wall time.**
- Why 4 layers: 6 layers at this vocabulary would be 6.3 M parameters, about
  25.2 MB, which is over the 25 MB budget. Given the CPU time available, more
  steps on 4 layers was also the better trade. The model is under-trained: loss
  was still falling when training stopped.

## Evaluation

| | loss (nats/token) | perplexity (per BPE token) |
|---|---|---|
| held-out (89,856 of the 89,939 val tokens: 351 full 256-token windows) | {s3['val_loss']:.3f} | **{s3['val_ppl']:.1f}** |
| training (first 89,856 tokens of the train stream: KJV) | {s3['train_loss']:.3f} | {s3['train_ppl']:.1f} |
| after phase 2 only (step {s2['steps']}), held-out | {s2['val_loss']:.3f} | {s2['val_ppl']:.1f} |
| after phase 1 only (step {s1['steps']}), held-out | {s1['val_loss']:.3f} | {s1['val_ppl']:.1f} |

Numpy re-evaluation of the exported files (`sample.py --ppl`): {ppl_np}.

Note that the train row covers only the start of the KJV, which is easier than
the mixed held-out set (the held-out set is about 40% dictionary text, which has
high perplexity).

## Samples

These are the ten prompts in `tools/train/card_prompts.txt`, each followed by
40 new tokens. "Greedy" is argmax decoding. "Sampled" uses temperature 0.8,
top-k 40 and numpy PCG64 seed 1234+i for prompt i (0-based). ⏎ marks a newline.
Regenerate with
`python3 tools/train/sample.py --model models/fhegpt-tiny --prompts tools/train/card_prompts.txt --markdown`.

{samples}

## Limitations

- The model is tiny and under-trained. Greedy decoding falls into loops
  ("and the LORD, and the LORD", "I will I will"), and sampled text is only locally
  grammatical.
- Its style is dominated by the KJV and 1913 dictionary English. Modern prose,
  dialogue and technical text are weak.
- It is meant for measuring quantization/FHE accuracy against its own float
  logits, not as a source of facts.
- Attention and activation statistics come from a short training run and may
  be less extreme (fewer outlier channels) than in a fully trained GPT-2.

## Licence of the weights

The training data includes GPL-2+ texts (GCIDE, Debian Reference). To be safe,
the weights and tokenizer files are distributed under the **GPL-2.0-or-later**,
the licence of those sources. The other sources are public domain or BSD
(fortunes collection). Reproduce with `bash tools/train/reproduce.sh`; see
`tools/train/README.md`.
"""
open('models/fhegpt-tiny/README.md', 'w').write(card)
print(len(card))
