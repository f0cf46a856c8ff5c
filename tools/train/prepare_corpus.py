#!/usr/bin/env python3
"""Build the fhegpt-tiny training corpus from public-domain / freely licensed
English text shipped in Debian packages.

Sources (install with apt; see tools/train/README.md):
  bible-kjv, bible-kjv-text  King James Bible (text public domain)       -> `bible` CLI
  dict-gcide                 GCIDE, Webster 1913 + additions (GPL-2+)    -> /usr/share/dictd/gcide.dict.dz
  dict-devil                 Bierce, The Devil's Dictionary (public domain)
  dict-jargon                The Jargon File 4.4.7 (public domain)
  fortunes                   fortune-mod English cookies (BSD collection, selected files)
  debian-reference-en        Debian Reference, Osamu Aoki (GPL-2+)

Output: <out>/train.jsonl and <out>/val.jsonl, one {"src", "text"} document per
line.  Every document is assigned to val iff md5(src:index) % 50 == 0 (~2%),
so the split is deterministic and independent of file order.
"""
import argparse
import gzip
import hashlib
import json
import os
import re
import subprocess
from html.parser import HTMLParser

DICTD = "/usr/share/dictd"
FORTUNES = "/usr/share/games/fortunes"
DEBREF = "/usr/share/debian-reference"

# English fortune files used.  Excluded: ascii-art/art (pictures), translate-me,
# zippy/pratchett/startrek/songs-poems/literature (quotations of recent
# copyrighted works in bulk), ethnic (jokes about groups).
FORTUNE_FILES = [
    "computers", "cookie", "debian", "definitions", "disclaimer", "drugs",
    "education", "food", "fortunes", "goedel", "humorists", "kids", "knghtbrd",
    "law", "linux", "linuxcookie", "love", "magic", "medicine", "men-women",
    "miscellaneous", "news", "paradoxum", "people", "perl", "pets",
    "platitudes", "politics", "riddles", "science", "sports", "tao", "wisdom",
    "work",
]

WS = re.compile(r"[ \t]+")


def norm(s):
    s = s.replace("\r", "")
    s = s.replace("\u2019", "'").replace("\u2018", "'")
    s = s.replace("\u201c", '"').replace("\u201d", '"')
    s = s.replace("\u2014", " -- ").replace("\u2013", "-").replace("\u2026", "...")
    s = s.replace("\u00a0", " ")
    lines = [WS.sub(" ", l).strip() for l in s.split("\n")]
    out, blank = [], False
    for l in lines:
        if not l:
            if out and not blank:
                out.append("")
            blank = True
        else:
            out.append(l)
            blank = False
    return "\n".join(out).strip()


def ascii_ratio(s):
    if not s:
        return 0.0
    return sum(1 for c in s if ord(c) < 128) / len(s)


# ---------------------------------------------------------------- KJV Bible
def kjv():
    raw = subprocess.run(["bible", "-l0", "gen1:1-rev22:21"], stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, check=True).stdout
    docs, cur = [], []
    for line in raw.split("\n"):
        m = re.match(r"^\s*\d+\s+(.*)$", line)
        if m:
            cur.append(m.group(1).strip())
        elif line.strip():  # chapter heading, e.g. "Genesis 1"
            if cur:
                docs.append("\n".join(cur))
            cur = []
    if cur:
        docs.append("\n".join(cur))
    return docs


# ---------------------------------------------------------------- GCIDE
def strip_brackets(s):
    prev = None
    while prev != s:
        prev = s
        s = re.sub(r"\[[^\[\]]*\]", "", s)
    return s


def gcide(max_chars):
    text = gzip.open(os.path.join(DICTD, "gcide.dict.dz"), "rt", encoding="utf-8",
                     errors="replace").read()
    # entries start with a headword line in column 0 containing a \pron\ mark
    blocks = re.split(r"\n\s*\n", text)
    entries, cur = [], None
    for b in blocks:
        if re.match(r"^[A-Za-z][^\n]*\\[^\n]*\\", b):
            if cur:
                entries.append(cur)
            cur = [b]
        elif cur is not None:
            cur.append(b)
    if cur:
        entries.append(cur)
    docs = []
    for e in entries:
        head = e[0]
        m = re.match(r"^([^\\\n]+?)\s*\\[^\\]*\\,?\s*(.*)$", head, re.S)
        if not m:
            continue
        word = m.group(1).strip()
        rest = m.group(2)
        paras = [rest] + e[1:]
        out = []
        for p in paras:
            p = strip_brackets(p.replace("\n", " "))
            p = re.sub(r"\\[^\\]*\\", "", p)            # pronunciations
            p = p.replace("{", "").replace("}", "")
            p = re.sub(r"--\s*[A-Z][\w.' ]*\.?\s*$", "", p)  # --Author.
            p = re.sub(r"\s--\s*[A-Z][\w.']*( [A-Z][\w.']*)*\.", "", p)
            p = re.sub(r"^\s*(\d+\.|\([a-z]\))\s*", "", p)
            p = re.sub(r"\bSyn\.\s*--", "Synonyms:", p)
            p = re.sub(r"\bNote:\s*", "", p)
            p = WS.sub(" ", p).strip(" ;,")
            if len(p) < 3 or "?" in p[:1] or ascii_ratio(p) < 0.98:
                continue
            if re.fullmatch(r"[\W\d]*", p):
                continue
            out.append(p)
        if not out:
            continue
        body = out[0]
        doc = word + ", " + body if body else word
        doc = doc + ("\n" + "\n".join(out[1:]) if len(out) > 1 else "")
        if len(doc) >= 80:
            docs.append(doc)
    # deterministic thinning to the character budget, keeping entry order
    total = sum(len(d) for d in docs)
    if total > max_chars:
        keep = max_chars / total
        sel = []
        for i, d in enumerate(docs):
            h = int(hashlib.md5(("gcide-keep:%d" % i).encode()).hexdigest(), 16) % 10000
            if h < keep * 10000:
                sel.append(d)
        docs = sel
    return docs


# ---------------------------------------------------------------- Devil's Dictionary
def devil():
    text = gzip.open(os.path.join(DICTD, "devil.dict.dz"), "rt", encoding="utf-8",
                     errors="replace").read()
    paras = re.split(r"\n\s*\n", text)
    docs, cur = [], []
    head = re.compile(r"^[A-Z][A-Z'\- ]+, (n|v|adj|adv|pp|p|x|prep|conj|pron|interj|v\.t|v\.i)\b")
    started = False
    for p in paras:
        if head.match(p):
            started = True
            if cur:
                docs.append("\n\n".join(cur))
            cur = [p]
        elif started:
            cur.append(p)
    if cur:
        docs.append("\n\n".join(cur))
    return [norm(d.replace("{", "").replace("}", "")) for d in docs]


# ---------------------------------------------------------------- Jargon File
def jargon():
    text = gzip.open(os.path.join(DICTD, "jargon.dict.dz"), "rt", encoding="utf-8",
                     errors="replace").read()
    lines = text.split("\n")
    docs, cur = [], None
    for i, l in enumerate(lines):
        if l and not l[0].isspace() and not l.startswith("00-database"):
            if cur:
                docs.append(cur)
            cur = [l.strip()]
        elif cur is not None:
            cur.append(l)
    if cur:
        docs.append(cur)
    out = []
    for d in docs:
        word = d[0]
        body = "\n".join(d[1:])
        body = body.replace("{", "").replace("}", "")
        paras = [WS.sub(" ", p.replace("\n", " ")).strip() for p in re.split(r"\n\s*\n", body)]
        paras = [p for p in paras if p]
        if not paras:
            continue
        # first para is usually the part of speech / pronunciation line
        if len(paras[0]) < 30 and len(paras) > 1:
            s = word + " (" + paras[0] + "): " + "\n".join(paras[1:])
        else:
            s = word + ": " + "\n".join(paras)
        s = norm(s)
        if len(s) >= 60 and ascii_ratio(s) > 0.97:
            out.append(s)
    return out


# ---------------------------------------------------------------- fortunes
def fortunes():
    docs = []
    for f in FORTUNE_FILES:
        path = os.path.join(FORTUNES, f)
        if not os.path.exists(path):
            continue
        raw = open(path, encoding="utf-8", errors="replace").read()
        for c in re.split(r"\n%\n", raw):
            c = norm(c)
            if len(c) < 40:
                continue
            letters = sum(ch.isalpha() for ch in c)
            if letters / len(c) < 0.6 or ascii_ratio(c) < 0.98:
                continue
            docs.append(c)
    return docs


# ---------------------------------------------------------------- Debian Reference
class _Text(HTMLParser):
    BLOCK = {"p", "li", "dt", "dd", "h1", "h2", "h3", "h4", "title"}
    SKIP = {"pre", "table", "script", "style", "code", "screen"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.paras, self.buf, self.skip, self.depth = [], [], 0, 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skip += 1
        if tag in self.BLOCK:
            self.flush()

    def handle_endtag(self, tag):
        if tag in self.SKIP and self.skip:
            self.skip -= 1
        if tag in self.BLOCK:
            self.flush()

    def handle_data(self, data):
        if not self.skip:
            self.buf.append(data)

    def flush(self):
        s = WS.sub(" ", " ".join(self.buf).replace("\n", " ")).strip()
        s = re.sub(r" ([,.;:)])", r"\1", s)
        if len(s) > 40 and sum(c.isalpha() for c in s) / len(s) > 0.7:
            self.paras.append(s)
        self.buf = []


def debref():
    docs = []
    for name in sorted(os.listdir(DEBREF)):
        if not name.endswith(".en.html"):
            continue
        p = _Text()
        p.feed(open(os.path.join(DEBREF, name), encoding="utf-8", errors="replace").read())
        p.flush()
        paras = [norm(x) for x in p.paras]
        for i in range(0, len(paras), 8):
            d = "\n".join(paras[i:i + 8])
            if ascii_ratio(d) > 0.97:
                docs.append(d)
    return docs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/tmp/train/corpus")
    ap.add_argument("--gcide-chars", type=int, default=6_000_000)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    sources = [
        ("kjv", kjv()),
        ("gcide", gcide(args.gcide_chars)),
        ("devil", devil()),
        ("jargon", jargon()),
        ("fortunes", fortunes()),
        ("debref", debref()),
    ]
    stats = {}
    with open(os.path.join(args.out, "train.jsonl"), "w") as ft, \
            open(os.path.join(args.out, "val.jsonl"), "w") as fv:
        for src, docs in sources:
            st = stats.setdefault(src, {"docs": 0, "chars": 0, "val_docs": 0, "val_chars": 0})
            for i, d in enumerate(docs):
                d = norm(d)
                if not d:
                    continue
                h = int(hashlib.md5(("%s:%d" % (src, i)).encode()).hexdigest(), 16)
                rec = json.dumps({"src": src, "text": d}, ensure_ascii=False) + "\n"
                if h % 50 == 0:
                    fv.write(rec)
                    st["val_docs"] += 1
                    st["val_chars"] += len(d)
                else:
                    ft.write(rec)
                    st["docs"] += 1
                    st["chars"] += len(d)
    json.dump(stats, open(os.path.join(args.out, "stats.json"), "w"), indent=1)
    for k, v in stats.items():
        print("%-9s train %6d docs %10d chars | val %5d docs %8d chars" %
              (k, v["docs"], v["chars"], v["val_docs"], v["val_chars"]))
    print("total train chars", sum(v["chars"] for v in stats.values()),
          "val chars", sum(v["val_chars"] for v in stats.values()))


if __name__ == "__main__":
    main()
