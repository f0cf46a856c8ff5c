"""GPT-2 style byte-level BPE: shared byte<->unicode table, pre-tokenizer and
encoder/decoder that read HF-format vocab.json + merges.txt."""
import json

import regex

PAT = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
EOT = "<|endoftext|>"


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable unicode mapping."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\u00a1"), ord("\u00ac") + 1)) \
        + list(range(ord("\u00ae"), ord("\u00ff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


BYTE_ENCODER = bytes_to_unicode()
BYTE_DECODER = {v: k for k, v in BYTE_ENCODER.items()}


def pretokenize(text):
    """Split text into GPT-2 pre-tokens, each mapped to its byte-level unicode string."""
    return ["".join(BYTE_ENCODER[b] for b in t.encode("utf-8")) for t in PAT.findall(text)]


class Tokenizer:
    def __init__(self, vocab_path, merges_path):
        self.encoder = json.load(open(vocab_path, encoding="utf-8"))
        self.decoder = {v: k for k, v in self.encoder.items()}
        lines = open(merges_path, encoding="utf-8").read().split("\n")
        assert lines[0].startswith("#version")
        merges = [tuple(l.split(" ")) for l in lines[1:] if l]
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.eot = self.encoder[EOT]
        self.cache = {}

    def bpe(self, word):
        if word in self.cache:
            return self.cache[word]
        parts = list(word)
        while len(parts) > 1:
            best, bi = None, -1
            for i in range(len(parts) - 1):
                r = self.ranks.get((parts[i], parts[i + 1]))
                if r is not None and (best is None or r < best):
                    best, bi = r, i
            if best is None:
                break
            a, b = parts[bi], parts[bi + 1]
            out, i = [], 0
            while i < len(parts):
                if i < len(parts) - 1 and parts[i] == a and parts[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(parts[i])
                    i += 1
            parts = out
        ids = [self.encoder[p] for p in parts]
        if len(self.cache) < 500000:
            self.cache[word] = ids
        return ids

    def encode(self, text):
        ids = []
        for w in pretokenize(text):
            ids.extend(self.bpe(w))
        return ids

    def decode(self, ids):
        s = "".join(self.decoder[i] for i in ids)
        return bytearray(BYTE_DECODER[c] for c in s).decode("utf-8", errors="replace")
