#!/usr/bin/env node
// Writes the expected GPT-2 token ids for every tests/data/tokenizer/corpus/NAME.txt, from
// OpenAI's tiktoken (encoding "gpt2", the Rust tokenizer compiled to WebAssembly):
//   NAME.ids          encode_ordinary(text): "<|endoftext|>" is plain text
//   NAME.special.ids  encode(text, "all"): only for files containing "<|endoftext|>"
// One line of space-separated ids each. Also reports whether the gpt-3-encoder package (an
// independent JavaScript port of OpenAI's encoder.py) agrees; it is known to differ on some
// Unicode, so its disagreements are printed, not fatal.
"use strict";
const fs = require("fs");
const path = require("path");
const { get_encoding } = require("tiktoken");
const gpt3encoder = require("gpt-3-encoder");

const corpusDir = path.resolve(__dirname, "../../tests/data/tokenizer/corpus");
const eot = "<|endoftext|>";
const enc = get_encoding("gpt2");

function firstDifference(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

const names = fs.readdirSync(corpusDir).filter((n) => n.endsWith(".txt")).sort();
let failed = false;
for (const name of names) {
  const bytes = fs.readFileSync(path.join(corpusDir, name));
  const text = bytes.toString("utf8");
  // tiktoken takes a JavaScript string: bytes that are not UTF-8 would silently become U+FFFD.
  if (!Buffer.from(text, "utf8").equals(bytes)) {
    console.error(`${name}: not valid UTF-8`);
    failed = true;
    continue;
  }
  const base = path.join(corpusDir, name.slice(0, -".txt".length));
  const ordinary = Array.from(enc.encode_ordinary(text));
  if (Buffer.from(enc.decode(Uint32Array.from(ordinary))).compare(bytes) !== 0) {
    console.error(`${name}: tiktoken does not round-trip`);
    failed = true;
  }
  fs.writeFileSync(base + ".ids", ordinary.join(" ") + "\n");
  const specialPath = base + ".special.ids";
  if (text.includes(eot)) {
    fs.writeFileSync(specialPath, Array.from(enc.encode(text, "all")).join(" ") + "\n");
  } else if (fs.existsSync(specialPath)) {
    fs.unlinkSync(specialPath);
  }

  const other = gpt3encoder.encode(text);
  const at = firstDifference(ordinary, other);
  const agreement = at < 0 ? "gpt-3-encoder agrees" : `gpt-3-encoder differs from token ${at}`;
  console.log(`${name}: ${bytes.length} bytes, ${ordinary.length} tokens; ${agreement}`);
}
enc.free();
process.exit(failed ? 1 : 0);
