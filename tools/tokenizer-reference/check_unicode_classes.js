#!/usr/bin/env node
// Checks, for every Unicode scalar value, that fhegpt's pre-tokenizer (PCRE2) puts it in the
// same class of GPT-2's regex as tiktoken (Rust regex): letter (\p{L}), number (\p{N}), other
// non-space ([^\s\p{L}\p{N}]) or space (\s). The two libraries may ship different Unicode
// versions, so a character may be a letter to one and unassigned to the other.
//
// Classes are made visible with a probe vocabulary: the 256 bytes plus "a"+b, "1"+b and "!"+b
// for every byte b. "aX" then encodes to one merged token first iff X is in the same regex
// piece as "a", i.e. iff X is a letter; likewise "1X" for numbers and "!X" for the rest.
//
// usage: node check_unicode_classes.js path/to/fhegpt   (prints the differing code points)
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
const { execFileSync } = require("child_process");
const { Tiktoken } = require("tiktoken/lite");
const gpt2 = require("tiktoken/encoders/gpt2.json");

const fhegpt = process.argv[2];
if (!fhegpt) {
  console.error("usage: node check_unicode_classes.js path/to/fhegpt");
  process.exit(2);
}

const prefixes = ["a", "1", "!"];
const classNames = ["letter", "number", "other", "space"];

// GPT-2's byte -> printable character table, as in vocab.json.
function byteToUnicode() {
  const table = [];
  let shifted = 256;
  for (let b = 0; b < 256; b++) {
    const self = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae);
    table.push(String.fromCodePoint(self ? b : shifted++));
  }
  return table;
}

// The probe vocabulary: id = rank, in both tiktoken's and vocab.json/merges.txt form.
const tokens = [];
for (let b = 0; b < 256; b++) tokens.push(Buffer.from([b]));
for (const p of prefixes) {
  for (let b = 0; b < 256; b++) tokens.push(Buffer.concat([Buffer.from(p), Buffer.from([b])]));
}
const eot = tokens.length;
const ranks = "! 0 " + tokens.map((t) => t.toString("base64")).join(" ");
const tiktoken = new Tiktoken(ranks, { "<|endoftext|>": eot }, gpt2.pat_str);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fhegpt-probe-"));
const b2u = byteToUnicode();
const text = (buf) => Array.from(buf, (b) => b2u[b]).join("");
const vocab = {};
tokens.forEach((t, id) => (vocab[text(t)] = id));
vocab["<|endoftext|>"] = eot;
fs.writeFileSync(path.join(dir, "vocab.json"), JSON.stringify(vocab));
const merges = tokens.slice(256).map((t) => text(t.subarray(0, 1)) + " " + text(t.subarray(1)));
fs.writeFileSync(path.join(dir, "merges.txt"), "#version: 0.2\n" + merges.join("\n") + "\n");

// Probes "aX\n1X\n!X\n" for each code point X of a chunk.
function probeText(codePoints) {
  let s = "";
  for (const cp of codePoints) {
    const x = String.fromCodePoint(cp);
    for (const p of prefixes) s += p + x + "\n";
  }
  return s;
}

// Reads the classes back: a probe's first token is a merged one iff X joined the prefix.
function classes(codePoints, ids) {
  const out = [];
  let i = 0;
  for (const cp of codePoints) {
    const len = Buffer.byteLength(String.fromCodePoint(cp));
    let cls = 3;
    for (let k = 0; k < prefixes.length; k++) {
      const merged = ids[i] >= 256;
      if (merged) cls = k;
      i += merged ? len + 1 : len + 2; // prefix, X's bytes, newline
    }
    out.push(cls);
  }
  if (i !== ids.length) throw new Error(`probe parse: ${i} of ${ids.length} ids`);
  return out;
}

let differing = 0;
const byPair = new Map(); // "tiktoken class/fhegpt class" -> code points
const chunk = 0x10000;
for (let start = 0; start <= 0x10ffff; start += chunk) {
  const cps = [];
  for (let cp = start; cp < start + chunk; cp++) {
    if (cp < 0xd800 || cp > 0xdfff) cps.push(cp);
  }
  const input = probeText(cps);
  const expected = classes(cps, Array.from(tiktoken.encode_ordinary(input)));
  fs.writeFileSync(path.join(dir, "input.txt"), input);
  const line = execFileSync(fhegpt, ["tokenize", "-m", dir, "-f", path.join(dir, "input.txt")], {
    maxBuffer: 1 << 28,
  }).toString();
  const actual = classes(cps, line.trim().split(/\s+/).map(Number));
  cps.forEach((cp, j) => {
    if (expected[j] !== actual[j]) {
      differing++;
      const key = `tiktoken ${classNames[expected[j]]}, fhegpt ${classNames[actual[j]]}`;
      if (!byPair.has(key)) byPair.set(key, []);
      byPair.get(key).push(cp);
    }
  });
}
tiktoken.free();

// Differences as PCRE2 class ranges, ready to paste into gpt2_pretokenizer.cpp.
for (const [key, cps] of byPair) {
  const ranges = [];
  for (const cp of cps) {
    const last = ranges[ranges.length - 1];
    if (last && last[1] === cp - 1) last[1] = cp;
    else ranges.push([cp, cp]);
  }
  const hex = (cp) => "\\x{" + cp.toString(16).toUpperCase() + "}";
  console.log(`${key}: ${cps.length} code points`);
  console.log(ranges.map(([a, b]) => (a === b ? hex(a) : hex(a) + "-" + hex(b))).join(""));
}
fs.rmSync(dir, { recursive: true });
console.error(`${differing} code points classified differently`);
process.exit(differing === 0 ? 0 : 1);
