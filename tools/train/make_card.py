"""Write models/fhegpt-tiny/README.md (the model card) from the records of the shipped run.

Run from the repository root after export.py and sample.py; W (default /tmp/train) holds:
  summary_phase{1,2,3,5}.json  copies of <out>/summary.json that train.py wrote at the end of
                               phases 1, 2, 3 and 5
  train.log, phase{3,4,5}.log  train.py's stdout (train.log: phases 1 and 2)
  phase4.log                   phase 4 was stopped by hand after its checkpoint at step 2594, so
                               it has no summary: its step count, wall time and LR at the stop
                               are read from the log (the time is interpolated between the step
                               lines around the checkpoint)
  ppl_step2594.txt             sample.py --ppl on an export of that step-2594 checkpoint
  ppl_numpy.txt                sample.py --ppl on the shipped files
  card_samples.md              sample.py --prompts tools/train/card_prompts.txt --markdown
"""
import json, math, os, re, statistics, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import schedule  # noqa: E402

W = os.environ.get('W', '/tmp/train')
MODEL = 'models/fhegpt-tiny'
MIN_LR_FRAC = 0.1  # train.py's --min-lr-frac default


def rd(name):
    return open(os.path.join(W, name), encoding='utf-8').read()


def log_steps(name):
    """(step, tok/s, elapsed minutes) of every step line of a train.py log."""
    out = []
    for line in rd(name).splitlines():
        m = re.match(r'step (\d+)  loss .* (\d+) tok/s  elapsed ([\d.]+)min', line)
        if m:
            out.append((int(m.group(1)), int(m.group(2)), float(m.group(3))))
    return out


def cosine_lr(peak, start, planned_end, step):
    """LR of train.py's --resume --restart-schedule cosine (no warm-up) at `step`."""
    return schedule.cosine_lr(peak, MIN_LR_FRAC, (step - start) / (planned_end - start))


def killed_phase(log, lr, planned_steps, ppl_file):
    """Record of a phase stopped by hand: it ends at the last checkpoint its log reports."""
    text = rd(log)
    start = int(re.search(r'resumed at step (\d+)', text).group(1))
    stop = int(re.findall(r'saved checkpoint at step (\d+)', text)[-1])
    lines = log_steps(log)
    (s0, _, e0), (s1, _, e1) = [l for l in lines if l[0] <= stop][-1], [l for l in lines if l[0] >= stop][0]
    minutes = e0 if s1 == s0 else e0 + (e1 - e0) * (stop - s0) / (s1 - s0)
    ppl = float(re.search(r'perplexity ([\d.]+)', rd(ppl_file)).group(1))
    return dict(start=start, steps=stop, minutes=minutes, lr=lr, planned_steps=planned_steps,
                val_ppl=ppl, val_loss=math.log(ppl), lr_stop=cosine_lr(lr, start, planned_steps, stop))


s1, s2, s3, s5 = (json.load(open(os.path.join(W, f'summary_phase{i}.json'))) for i in (1, 2, 3, 5))
s4 = killed_phase('phase4.log', lr=6e-4, planned_steps=4050, ppl_file='ppl_step2594.txt')
phases = [s1, s2, s3, s4, s5]
step_tokens = s1['batch'] * s1['seq_len']
starts = [0] + [p['steps'] for p in phases[:-1]]
n_steps = [p['steps'] - a for p, a in zip(phases, starts)]
n_tokens = [n * step_tokens for n in n_steps]  # = each summary's 'tokens'
assert all(p['tokens'] == t for p, t in zip(phases, n_tokens) if 'tokens' in p)
mins = [p['minutes'] for p in phases]
total_tokens, total_mins = sum(n_tokens), sum(mins)
train_tokens = s5['train_tokens']

# per-step throughput of each phase, from its log lines inside its own step range
logs = ['train.log', 'train.log', 'phase3.log', 'phase4.log', 'phase5.log']
tps = [[t for s, t, _ in log_steps(lg) if a < s <= p['steps']] for lg, a, p in zip(logs, starts, phases)]
med = [statistics.median(t) for t in tps]
tmin, tmax = min(min(t) for t in tps), max(max(t) for t in tps)

# phase 3: cosine restarted at s2's step, planned to s3['planned_steps'], cut by the wall-clock limit
lr3_end = cosine_lr(s3['lr'], s2['steps'], s3['planned_steps'], s3['steps'])


def e(x):
    return f'{x:.1e}'.replace('e-0', 'e-')


def e0(x):
    return f'{x:.0e}'.replace('e-0', 'e-')


def sig2(x):  # two significant figures
    return f'{int(round(x, 2 - len(str(int(x))))):,}'


samples = rd('card_samples.md').strip()
ppl_np, ppl_np_n = re.search(r'perplexity ([\d.]+) over (\d+) tokens', rd('ppl_numpy.txt')).groups()
ppl_np = float(ppl_np)
match = 'matches' if abs(ppl_np - s5['val_ppl']) < 1e-4 * s5['val_ppl'] else 'DIFFERS FROM'
empty_sampled = [int(re.findall(r'^(\d+)\. ', samples[:m.start()], re.M)[-1])
                 for m in re.finditer(r'- sampled: *$', samples, re.M)]
size = sum(os.path.getsize(os.path.join(MODEL, f)) for f in os.listdir(MODEL) if f != 'README.md')
ends_early = ('A continuation ends early when the model produces\n`<|endoftext|>`'
              + ('' if not empty_sampled else
                 ' (the sampled continuation of prompt %s is empty: its first\nsampled token was '
                 '`<|endoftext|>`)' % ', '.join(map(str, empty_sampled))) + '.')

card = f"""# fhegpt-tiny

A small GPT-2-architecture language model trained from scratch for the fhegpt
project (GPT-2's own weights cannot be downloaded here). It is the default model
for tests, the demo and quantization-accuracy measurements. The files are in the
Hugging Face `GPT2LMHeadModel` format: `config.json`, `model.safetensors` (F32,
`lm_head` tied to `wte`, so `lm_head.weight` is not stored), `vocab.json`,
`merges.txt`. `transformers` was not available here to load it, so the format
was checked against the spec. `export.py` reads the safetensors file back and
gets bit-identical logits, and an independent numpy forward pass
(`tools/train/sample.py`) matches PyTorch's logits to within 2e-6 of the largest
logit.

**This is a weak model.** Because of the compute it got (see Training), it writes
English words, KJV-style phrases and dictionary/fortune formatting, but greedy
decoding quickly falls into loops. Held-out perplexity is {s5['val_ppl']:.0f} per BPE
token (it was {s2['val_ppl']:.0f} after the second training phase, {s3['val_ppl']:.0f} after the third and
{s4['val_ppl']:.0f} at the end of the fourth). Use it for format, pipeline and quantization tests,
not for text quality.

## Architecture

| | |
|---|---|
| layers / heads / n_embd / head dim | 4 / 4 / 256 / 64 |
| MLP | 1024 (4 x n_embd), `gelu_new` (tanh GELU) |
| context (`n_positions` = `n_ctx`) | 256 |
| vocabulary | 6,144 (byte-level BPE; `<|endoftext|>` = 6143 = bos = eos) |
| LayerNorm eps | 1e-5, pre-LN blocks, final `ln_f` |
| parameters | {s5['params']:,} (tied embeddings) |
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

Total: 13.67 M characters, {train_tokens:,} training tokens (3.41 chars/token) and
{s5['val_tokens']:,} held-out tokens. A document goes to validation iff `md5(source:index) % 50 == 0`
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
  concurrent C++ builds and CI runs (load average 4-12). Throughput of single
  steps ranged from {tmin:,} to {tmax:,} tokens/s. The median was about {sig2(med[0])} in phase 1
  and {sig2(min(med[1:]))}-{sig2(max(med[1:]))} in phases 2-5. The wall times below also include
  evaluations, checkpoints and waits between steps.
- AdamW (betas 0.9/0.95, eps 1e-8, weight decay 0.1 on matrices only),
  gradient clipping 1.0, batch {s1['batch']} x {s1['seq_len']} tokens = {step_tokens:,} tokens/step, random
  windows from a seeded generator (seed 1234).
- Phase 1: peak LR 2e-3, 50 warm-up steps, then a cosine decay to 2e-4 annealed
  on a {s1['minutes']:.0f}-minute wall-clock budget: {s1['steps']} steps. Phase 2 (resumed from the
  same optimizer state, because the machine became less loaded): LR 8e-4 with a
  cosine decay to 8e-5 over {s2['minutes']:.0f} minutes, reaching step {s2['steps']}.
- Phase 3 (resumed again, same optimizer state): a new cosine from LR 6e-4 (no
  warm-up) planned over steps {s2['steps']}-{s3['planned_steps']}, stopped by a
  {s3['minutes']:.0f}-minute wall-clock limit at step {s3['steps']} (LR about {e(lr3_end)} at the stop).
- Phase 4 (resumed, same optimizer state): a new cosine from LR {e0(s4['lr'])} (no
  warm-up) planned over steps {s4['start']}-{s4['planned_steps']}. It was stopped by hand after its
  checkpoint at step {s4['steps']} (LR about {e(s4['lr_stop'])} there), and training went on from that
  checkpoint.
- Phase 5 (resumed from the step-{s4['steps']} checkpoint, same optimizer state): a new
  cosine from LR {e0(s5['lr'])} (no warm-up) down to {e0(s5['lr'] * MIN_LR_FRAC)} (10%) over steps
  {s4['steps']}-{s5['steps']}. It ran to the end of its schedule in {s5['minutes']:.0f} minutes.
- Per phase: {' / '.join(map(str, n_steps))} steps,
  {' / '.join(f'{t/1e6:.2f}' for t in n_tokens)} M tokens,
  {' / '.join(f'{m:.0f}' for m in mins)} minutes (phase 4 counted up to its step-{s4['steps']} checkpoint).
- Total: **{s5['steps']:,} steps, {total_tokens/1e6:.2f} M tokens (about {total_tokens/train_tokens:.2f} epochs), {total_mins:.0f} minutes of wall time.**
- Why 4 layers: 6 layers at this vocabulary would be 6.3 M parameters, about
  25.2 MB, which is over the 25 MB budget. Given the CPU time available, more
  steps on 4 layers was also the better trade. The model is under-trained: loss
  was still falling when training stopped.

## Evaluation

| | loss (nats/token) | perplexity (per BPE token) |
|---|---|---|
| held-out ({int(ppl_np_n):,} of the {s5['val_tokens']:,} val tokens: {int(ppl_np_n) // s5['seq_len']} full {s5['seq_len']}-token windows) | {s5['val_loss']:.3f} | **{s5['val_ppl']:.1f}** |
| training (first {int(ppl_np_n):,} tokens of the train stream: KJV) | {s5['train_loss']:.3f} | {s5['train_ppl']:.1f} |
| after phase 4 (its step-{s4['steps']} checkpoint, evaluated with `sample.py --ppl`), held-out | {s4['val_loss']:.3f} | {s4['val_ppl']:.1f} |
| after phase 3 (step {s3['steps']}), held-out | {s3['val_loss']:.3f} | {s3['val_ppl']:.1f} |
| after phase 2 (step {s2['steps']}), held-out | {s2['val_loss']:.3f} | {s2['val_ppl']:.1f} |
| after phase 1 (step {s1['steps']}), held-out | {s1['val_loss']:.3f} | {s1['val_ppl']:.1f} |

Numpy re-evaluation of the exported files (`sample.py --ppl`): perplexity {ppl_np:.3f} over
{int(ppl_np_n):,} tokens ({match} PyTorch's {s5['val_ppl']:.3f}).

Note that the train row covers only the start of the KJV, which is easier than
the mixed held-out set (the held-out set is about 40% dictionary text, which has
high perplexity).

## Samples

These are the ten prompts in `tools/train/card_prompts.txt`, each followed by
up to 40 new tokens. "Greedy" is argmax decoding. "Sampled" uses temperature 0.8,
top-k 40 and numpy PCG64 seed 1234+i for prompt i (0-based).
{ends_early} ⏎ marks a newline. Regenerate with
`python3 tools/train/sample.py --model models/fhegpt-tiny --prompts tools/train/card_prompts.txt --markdown`.

{samples}

## Limitations

- The model is tiny and under-trained. Greedy decoding falls into loops
  ("and the LORD, and the LORD", "-- J. J. J."), and sampled text is only locally
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
open(os.path.join(MODEL, 'README.md'), 'w', encoding='utf-8').write(card)
print(len(card))
