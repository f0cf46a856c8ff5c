#!/usr/bin/env node
// Writes the generated part of the tokenizer test corpus, tests/data/tokenizer/corpus/gen_*.txt.
// Deterministic (fixed-seed PRNG): running it again gives the same bytes. The hand-written
// files in that folder (prose, code, multilingual) are not touched. Then run make_expected.js.
//
// gen_kjv.txt needs Debian's `bible` program (packages bible-kjv, bible-kjv-text): the King
// James Version, public domain.
"use strict";
const fs = require("fs");
const path = require("path");
const { execFileSync } = require("child_process");

const outDir = path.resolve(__dirname, "../../tests/data/tokenizer/corpus");

// mulberry32: small, fast, and the same on every platform.
function makeRng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)); // inclusive
  const pick = (list) => list[Math.floor(next() * list.length)];
  const chance = (p) => next() < p;
  return { next, int, pick, chance };
}

const cp = (...codes) => String.fromCodePoint(...codes);
const range = (lo, hi) => Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
const isScalar = (c) => c < 0xd800 || c > 0xdfff;

function write(name, text) {
  fs.writeFileSync(path.join(outDir, name), text, "utf8");
  console.log(`${name}: ${Buffer.byteLength(text)} bytes`);
}

// --- English from templates: contractions, names, numbers, punctuation -----------------------
function genEnglish(rng) {
  const names = ["Alice", "Bob", "Chloe", "Dmitri", "Esther", "Farid", "Grace", "Hiro", "Ines",
    "Jamal", "Kofi", "Lena", "Mateo", "Nadia", "Oscar", "Priya", "Quentin", "Rosa", "Sven", "Tamsin"];
  const nouns = ["kettle", "report", "bicycle", "garden", "compiler", "river", "ledger", "window",
    "question", "orchestra", "spreadsheet", "harbour", "lantern", "algorithm", "meadow", "invoice",
    "telescope", "recipe", "umbrella", "volcano", "keyboard", "sandwich", "library", "thunderstorm"];
  const adjectives = ["quiet", "enormous", "peculiar", "bright", "rusty", "unexpected", "gentle",
    "broken", "brand-new", "half-finished", "well-known", "slippery", "ancient", "tiny", "cheerful"];
  const verbs = [["fix", "fixed"], ["paint", "painted"], ["find", "found"], ["carry", "carried"],
    ["build", "built"], ["read", "read"], ["open", "opened"], ["lose", "lost"], ["sell", "sold"],
    ["measure", "measured"], ["forget", "forgot"], ["borrow", "borrowed"], ["test", "tested"]];
  const adverbs = ["quickly", "carefully", "reluctantly", "twice", "again", "at last", "somehow",
    "before noon", "on Tuesday", "without a word", "by accident", "in the rain"];
  const templates = [
    () => `${rng.pick(names)} ${rng.pick(verbs)[1]} the ${rng.pick(adjectives)} ${rng.pick(nouns)} ${rng.pick(adverbs)}.`,
    () => `"I can't ${rng.pick(verbs)[0]} the ${rng.pick(nouns)}," said ${rng.pick(names)}. "It's too ${rng.pick(adjectives)}."`,
    () => `${rng.pick(names)}'s ${rng.pick(nouns)} wasn't ${rng.pick(adjectives)}; it was ${rng.pick(adjectives)}.`,
    () => `We'll ${rng.pick(verbs)[0]} ${rng.int(2, 99)} ${rng.pick(nouns)}s by ${rng.int(1, 12)}:${String(rng.int(0, 59)).padStart(2, "0")}, won't we?`,
    () => `They'd ${rng.pick(verbs)[1]} it, and you've ${rng.pick(verbs)[1]} it, but I'm not sure she'd ${rng.pick(verbs)[0]} it.`,
    () => `Why didn't ${rng.pick(names)} ${rng.pick(verbs)[0]} the ${rng.pick(nouns)}? Nobody knows!`,
    () => `The ${rng.pick(nouns)} (${rng.pick(adjectives)}, ${rng.int(1, 500)} kg) cost $${rng.int(1, 9999)}.${String(rng.int(0, 99)).padStart(2, "0")}.`,
    () => `${rng.pick(names).toUpperCase()} SAID: "DON'T ${rng.pick(verbs)[0].toUpperCase()} THE ${rng.pick(nouns).toUpperCase()}!"`,
    () => `${rng.pick(names)} asked, ‘Isn’t the ${rng.pick(nouns)} ${rng.pick(adjectives)}?’ — and ${rng.pick(names)} shrugged…`,
    () => `In ${rng.int(1800, 2099)}, ${rng.int(3, 97)}% of ${rng.pick(nouns)}s were ${rng.pick(adjectives)} [citation needed].`,
    () => `${rng.pick(names)} and ${rng.pick(names)} ${rng.pick(verbs)[1]} ${rng.int(2, 40)} ${rng.pick(nouns)}s; then they'll ${rng.pick(verbs)[0]} ${rng.int(2, 40)} more.`,
    () => `Note: the ${rng.pick(nouns)}'s ${rng.pick(nouns)} isn't the ${rng.pick(nouns)}s' ${rng.pick(nouns)}.`,
  ];
  const paragraphs = [];
  while (paragraphs.join("\n\n").length < 24000) {
    const sentences = [];
    for (let i = rng.int(2, 7); i > 0; i--) sentences.push(rng.pick(templates)());
    paragraphs.push(sentences.join(" "));
  }
  return paragraphs.join("\n\n") + "\n";
}

// --- numbers, dates, times, money, identifiers -------------------------------------------------
function genNumbers(rng) {
  const months = ["January", "February", "March", "April", "May", "June", "July", "August",
    "September", "October", "November", "December"];
  const days = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
  const pad = (n, w) => String(n).padStart(w, "0");
  const digits = (n) => Array.from({ length: n }, (_, i) => rng.int(i === 0 ? 1 : 0, 9)).join("");
  const ordinal = (n) => {
    const s = n % 100 >= 11 && n % 100 <= 13 ? "th" : ["th", "st", "nd", "rd"][n % 10] || "th";
    return `${n}${s}`;
  };
  const group = (s, sep) => s.replace(/\B(?=(\d{3})+(?!\d))/g, sep);
  const roman = (n) => {
    const table = [[1000, "M"], [900, "CM"], [500, "D"], [400, "CD"], [100, "C"], [90, "XC"],
      [50, "L"], [40, "XL"], [10, "X"], [9, "IX"], [5, "V"], [4, "IV"], [1, "I"]];
    let out = "";
    for (const [v, r] of table) while (n >= v) { out += r; n -= v; }
    return out;
  };
  const shift = (s, zero) => s.replace(/\d/g, (d) => cp(zero + Number(d)));
  const gens = [
    () => digits(rng.int(1, 24)),
    () => `-${digits(rng.int(1, 9))}.${digits(rng.int(1, 6))}`,
    () => group(digits(rng.int(4, 16)), ","),
    () => group(digits(rng.int(4, 12)), ".") + "," + pad(rng.int(0, 99), 2),
    () => group(digits(rng.int(4, 12)), " "),
    () => group(digits(rng.int(4, 12)), "\u202f"),
    () => `${rng.int(1, 9)}.${digits(rng.int(1, 5))}e${rng.pick(["", "+", "-"])}${rng.int(0, 308)}`,
    () => `0x${rng.int(0, 0xffffffff).toString(16).toUpperCase()}`,
    () => `0b${rng.int(0, 65535).toString(2)}`,
    () => `${rng.int(0, 100)}%`,
    () => `v${rng.int(0, 20)}.${rng.int(0, 99)}.${rng.int(0, 999)}${rng.pick(["", "-rc.1", "-beta+exp.sha.5114f85"])}`,
    () => `${rng.int(1, 255)}.${rng.int(0, 255)}.${rng.int(0, 255)}.${rng.int(0, 255)}:${rng.int(1, 65535)}`,
    () => Array.from({ length: 6 }, () => pad(rng.int(0, 255).toString(16), 2)).join(":"),
    () => `+${rng.int(1, 99)} (${digits(3)}) ${digits(3)}-${digits(4)}`,
    () => `${rng.int(1900, 2099)}-${pad(rng.int(1, 12), 2)}-${pad(rng.int(1, 28), 2)}`,
    () => `${pad(rng.int(1, 28), 2)}/${pad(rng.int(1, 12), 2)}/${rng.int(1900, 2099)}`,
    () => `${rng.int(1, 12)}/${rng.int(1, 28)}/${pad(rng.int(0, 99), 2)}`,
    () => `${rng.pick(months)} ${rng.int(1, 28)}, ${rng.int(1000, 2099)}`,
    () => `${rng.pick(days)}, ${ordinal(rng.int(1, 31))} of ${rng.pick(months)} ${rng.int(1, 2099)}`,
    () => `${rng.int(1, 28)} ${rng.pick(months).slice(0, 3)} ${rng.int(1900, 2099)}`,
    () => `${pad(rng.int(0, 23), 2)}:${pad(rng.int(0, 59), 2)}:${pad(rng.int(0, 59), 2)}`,
    () => `${rng.int(1, 12)}:${pad(rng.int(0, 59), 2)} ${rng.pick(["AM", "PM", "a.m.", "p.m."])}`,
    () => `${rng.int(1970, 2038)}-${pad(rng.int(1, 12), 2)}-${pad(rng.int(1, 28), 2)}T${pad(rng.int(0, 23), 2)}:${pad(rng.int(0, 59), 2)}:${pad(rng.int(0, 59), 2)}.${digits(3)}Z`,
    () => `${rng.int(1, 23)}h ${rng.int(1, 59)}m ${rng.int(1, 59)}s`,
    () => `${rng.pick(["$", "€", "£", "¥", "₹", "₩", "CHF ", "USD "])}${group(digits(rng.int(1, 7)), ",")}.${pad(rng.int(0, 99), 2)}`,
    () => `${group(digits(rng.int(1, 7)), "\u00a0")}\u00a0€`,
    () => ordinal(rng.int(1, 1000)),
    () => roman(rng.int(1, 3999)),
    () => `${rng.int(1, 9)}/${rng.int(2, 16)} ${rng.pick(["½", "⅓", "¼", "¾", "⅞"])}`,
    () => `x${rng.pick(["²", "³", "¹", "⁴", "⁰"])} + y${rng.pick(["₀", "₁", "₂", "₉"])} = 10${rng.pick(["⁻³", "⁶", "⁹"])}`,
    () => shift(digits(rng.int(1, 8)), 0xff10), // fullwidth
    () => shift(digits(rng.int(1, 8)), 0x0660), // Arabic-Indic
    () => shift(digits(rng.int(1, 8)), 0x0966), // Devanagari
    () => shift(digits(rng.int(1, 8)), 0x1d7ce), // mathematical bold
    () => rng.pick(["①②③", "⑩⑪⑫", "Ⅰ Ⅱ Ⅲ Ⅳ Ⅻ", "ⅰⅱⅲ", "〇一二三", "𝟙𝟚𝟛", "٣٫١٤", "3·14", "1‰", "2‱"]),
    () => `ISBN 978-${rng.int(0, 9)}-${digits(3)}-${digits(5)}-${rng.int(0, 9)}`,
    () => `#${digits(rng.int(1, 6))}`,
    () => `${digits(rng.int(1, 3))}×${digits(rng.int(1, 3))}=${digits(rng.int(1, 6))}`,
    () => `${rng.int(-40, 50)}°C / ${rng.int(-40, 120)}°F`,
    () => `${rng.int(1, 999)}${rng.pick(["km", "kg", "ms", "µs", "GiB", "MB/s", "Hz", "px", "em"])}`,
  ];
  const lines = [];
  while (lines.join("\n").length < 16000) {
    const parts = [];
    for (let i = rng.int(3, 9); i > 0; i--) parts.push(rng.pick(gens)());
    lines.push(parts.join(rng.pick([" ", ", ", "; ", " | ", "\t", " - ", " to "])));
  }
  return lines.join("\n") + "\n";
}

// --- whitespace: runs, tabs, trailing spaces, CRLF, unusual spaces -----------------------------
const unusualSpaces = [0x00a0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006,
  0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000, 0x0085, 0x000b, 0x000c];
// Characters that look like spaces or are invisible but are not White_Space.
const notSpaces = [0x200b, 0x200c, 0x200d, 0x2060, 0xfeff, 0x180e, 0x00ad, 0x034f, 0x2800, 0x3164];

function genWhitespace(rng) {
  const words = ["alpha", "Beta", "gamma", "42", "3.14", "x", "(", ")", "{", "}", ";", "...",
    "don't", "'s", "-", "+", "é", "ü", "Ω", "Жук", "中文", "😀", "#", "//", "\"q\"", "a1b2"];
  const gaps = [" ", " ", " ", "  ", "   ", "    ", "\t", "\t\t", "\n", "\n\n", "\n\n\n", "\r\n",
    "\r\n\r\n", " \n", "\n ", "  \n", "\n  ", " \t ", "\t \t", " \r\n", "\r", "\f", "\v",
    "        ", "\n\t", "\n\t\t", "\n    ", " \u00a0", "\u00a0", "\u00a0\u00a0", " \u3000 "];
  let out = "";
  // Free-form runs of words and gaps.
  for (let i = 0; i < 1500; i++) {
    out += rng.pick(words);
    out += rng.chance(0.1) ? cp(rng.pick(unusualSpaces)) : rng.pick(gaps);
  }
  out += "\n";
  // Indented lines with trailing spaces, and lines of only spaces.
  for (let i = 0; i < 200; i++) {
    const indent = rng.pick(["", " ", "  ", "    ", "\t", "\t\t", "   \t", "\t  "]);
    const trail = rng.pick(["", "", " ", "  ", "\t", "   ", " \t"]);
    if (rng.chance(0.15)) out += " ".repeat(rng.int(1, 12)) + "\n";
    out += `${indent}${rng.pick(words)} ${rng.pick(words)}${trail}\n`;
  }
  // A block with CRLF line endings, one with lone CR, and CRLF with trailing spaces.
  for (let i = 0; i < 60; i++) out += `line ${i}: ${rng.pick(words)} ${rng.pick(words)}\r\n`;
  out += "\r\n";
  for (let i = 0; i < 20; i++) out += `old mac ${i}${rng.pick(["", " ", "  "])}\r`;
  for (let i = 0; i < 40; i++) out += `${rng.pick(words)}${" ".repeat(rng.int(0, 4))}\r\n${rng.pick(["", "\r\n"])}`;
  // Each unusual space and each lookalike in several contexts.
  for (const c of [...unusualSpaces, ...notSpaces, 0x20, 0x09, 0x0a, 0x0d]) {
    const s = cp(c);
    out += `a${s}b ${s}c${s} ${s}${s}d 1${s}2 !${s}? ${s}\n${s}${s}${s}x\n`;
    out += `[${s}] ${s}${s}${s}${s}end${s}\n`;
  }
  // Space before every kind of piece: letters, digits, punctuation, marks, emoji.
  for (const w of ["word", "123", "!!", "é", "\u0301x", "😀", "'s", "'S", "中"]) {
    for (const g of [" ", "  ", "\t", "\n", " \n ", "\u00a0", "\u3000", "\u2003"]) out += `${g}${w}`;
  }
  return out + "\n";
}

// --- contractions, apostrophes and quotes -----------------------------------------------------
function genContractions(rng) {
  const suffixes = ["s", "t", "re", "ve", "m", "ll", "d", "S", "T", "RE", "VE", "M", "LL", "D",
    "Re", "rE", "Ve", "Ll", "lL", "st", "tis", "twas", "dd", "lll", "mm", "ss", "re's", "ve'd",
    "", "'", "''", "n", "em", "cause", "90s", "7", "é", "ß", "Σ", "😀", " s", "\ns"];
  const quotes = ["'", "'", "'", "’", "‘", "`", "´", "ʼ", "′", "＇"];
  const stems = ["it", "IT", "It", "don", "DON", "can", "he", "she", "they", "THEY", "we", "you",
    "I", "o", "rock", "y", "ma", "", " ", "\n", "1", "2020", "!", ".", "\"", "(", "é", "Ω", "日"];
  const parts = [];
  for (const q of quotes) {
    for (const s of suffixes) parts.push(`it${q}${s}`, `${q}${s}`, ` ${q}${s}`);
  }
  for (let i = 0; i < 900; i++) {
    const q = rng.pick(quotes);
    let w = `${rng.pick(stems)}${q}${rng.pick(suffixes)}`;
    if (rng.chance(0.3)) w += `${rng.pick(quotes)}${rng.pick(suffixes)}`;
    parts.push(w);
  }
  parts.push("y'all'd've", "'tisn't", "ne'er", "o'er", "fo'c's'le", "'''", "''''s", "'s's's",
    "''t", "l'll", "I'm'm", "'M'", "'\n's", "' s", "'\ts");
  let out = "";
  for (const p of parts) out += p + rng.pick([" ", " ", " ", ", ", ". ", "\n", "", "  "]);
  return out + "\n";
}

// --- words in many scripts, combining marks, NFD --------------------------------------------------
function genScripts(rng) {
  const alphabets = {
    latin1: [...range(0xc0, 0xd6), ...range(0xd8, 0xf6), ...range(0xf8, 0xff)],
    latinExt: range(0x100, 0x17f),
    ipa: range(0x250, 0x2af),
    greek: [...range(0x391, 0x3a1), ...range(0x3a3, 0x3c9), 0x3ac, 0x3ad, 0x3ae, 0x3af, 0x3cc],
    polytonic: range(0x1f00, 0x1f15),
    cyrillic: range(0x400, 0x4ff),
    armenian: range(0x531, 0x556),
    hebrew: range(0x5d0, 0x5ea),
    arabic: range(0x621, 0x64a),
    devanagari: [...range(0x905, 0x939), 0x93e, 0x93f, 0x940, 0x947, 0x94d],
    thai: range(0xe01, 0xe2e),
    georgian: range(0x10d0, 0x10fa),
    hangul: range(0xac00, 0xd7a3),
    hiragana: range(0x3041, 0x3096),
    katakana: range(0x30a1, 0x30fa),
    cjk: range(0x4e00, 0x9fff),
    cjkExtB: range(0x20000, 0x2a6df),
    mathAlnum: range(0x1d400, 0x1d7ff),
    // Letters and digits new in Unicode 15 and 16 (PCRE2 10.42 does not know them).
    unicode16: [...range(0x31350, 0x31360), ...range(0x1e4d0, 0x1e4eb), ...range(0x10d4a, 0x10d65),
      ...range(0x10d40, 0x10d49), ...range(0x1e5f1, 0x1e5fa), ...range(0x16d40, 0x16d6c), 0xa7cb, 0x1c89],
  };
  const names = Object.keys(alphabets);
  const marks = range(0x300, 0x36f);
  const seps = [" ", " ", " ", ", ", ". ", "\n", "·", "-", "—", "、", "。", "؟ ", "", "1", "'s "];
  let out = "";
  while (Buffer.byteLength(out) < 30000) {
    const script = alphabets[rng.pick(names)];
    let word = "";
    for (let i = rng.int(1, 12); i > 0; i--) {
      word += cp(rng.pick(script));
      if (rng.chance(0.08)) word += cp(rng.pick(marks));
    }
    if (rng.chance(0.1)) word = word.normalize(rng.pick(["NFD", "NFKD", "NFC"]));
    out += word + rng.pick(seps);
  }
  // Stacked combining marks ("zalgo") and marks with no base.
  for (let i = 0; i < 30; i++) {
    out += "\n" + rng.pick(["a", "Z", " ", "1", "!", "ж", ""]);
    for (let k = rng.int(1, 20); k > 0; k--) out += cp(rng.pick(marks));
  }
  return out + "\n";
}

// --- emoji: skin tones, ZWJ sequences, flags, keycaps, variation selectors ---------------------
function genEmoji(rng) {
  const basic = [...range(0x1f600, 0x1f64f), ...range(0x1f300, 0x1f3fa), ...range(0x1f900, 0x1f9ff)];
  const tones = range(0x1f3fb, 0x1f3ff);
  const people = [0x1f44b, 0x1f44d, 0x1f64f, 0x1f9d1, 0x1f469, 0x1f468, 0x1f467, 0x1f466, 0x270c];
  const zwj = [
    [0x1f468, 0x200d, 0x1f469, 0x200d, 0x1f467, 0x200d, 0x1f466],
    [0x1f469, 0x200d, 0x1f680], [0x1f9d1, 0x200d, 0x1f4bb], [0x1f3f3, 0xfe0f, 0x200d, 0x1f308],
    [0x1f441, 0xfe0f, 0x200d, 0x1f5e8, 0xfe0f], [0x1f468, 0x1f3fd, 0x200d, 0x1f373],
    [0x1f469, 0x200d, 0x2764, 0xfe0f, 0x200d, 0x1f48b, 0x200d, 0x1f468],
    [0x1f415, 0x200d, 0x1f9ba], [0x1f3c3, 0x1f3ff, 0x200d, 0x2640, 0xfe0f],
  ];
  const flag = () => cp(0x1f1e6 + rng.int(0, 25), 0x1f1e6 + rng.int(0, 25));
  const keycap = () => cp(rng.pick([0x30, 0x31, 0x39, 0x23, 0x2a]), 0xfe0f, 0x20e3);
  const textual = [0x2764, 0x263a, 0x2600, 0x2614, 0x270f, 0x2702, 0x00a9, 0x00ae, 0x2122];
  const gens = [
    () => cp(rng.pick(basic)),
    () => cp(rng.pick(people), rng.pick(tones)),
    () => cp(...rng.pick(zwj)),
    flag,
    keycap,
    () => cp(rng.pick(textual), rng.pick([0xfe0f, 0xfe0e])),
    () => cp(0x1f3f4, 0xe0067, 0xe0062, 0xe0073, 0xe0063, 0xe0074, 0xe007f), // Scotland
  ];
  const words = ["I", "love", "NY", "ok", "lol", "party", "2024", "!!", "?", "so", "good", "café"];
  let out = "";
  while (Buffer.byteLength(out) < 16000) {
    const n = rng.int(1, 6);
    let run = "";
    for (let i = 0; i < n; i++) run += rng.pick(gens)() + (rng.chance(0.3) ? " " : "");
    out += rng.chance(0.5) ? `${rng.pick(words)} ${run}` : `${run}${rng.pick(words)}`;
    out += rng.pick([" ", " ", "\n", ". ", "! ", ""]);
  }
  return out + "\n";
}

// --- a sample of all of Unicode, each code point in a few contexts ------------------------------
function genCodePoints(rng) {
  const contexts = [(s) => s, (s) => ` ${s}`, (s) => `a${s}`, (s) => `${s}a`, (s) => `1${s}`,
    (s) => `${s}${s}`, (s) => `.${s}`, (s) => `${s}\n`, (s) => `'${s}`];
  let out = "";
  // All of ASCII and C1 controls, then every 211th scalar value up to U+10FFFF.
  const chosen = [...range(0, 0x7f), ...range(0x80, 0x9f)];
  for (let c = 0xa0; c <= 0x10ffff; c += 211) if (isScalar(c)) chosen.push(c);
  chosen.push(0xfffd, 0xfffe, 0xffff, 0x10fffd, 0x10ffff, 0xe0001, 0xf0000);
  let column = 0;
  for (const c of chosen) {
    const piece = rng.pick(contexts)(cp(c)) + rng.pick([" ", "", "", "\t"]);
    out += piece;
    column += piece.length;
    if (column > 60) {
      out += "\n";
      column = 0;
    }
  }
  return out + "\n";
}

// --- long pieces: the BPE's heap path (pieces over 32 bytes) and regex worst cases -----------
function genLongRuns(rng) {
  const lengths = [31, 32, 33, 40, 64, 65, 100, 129, 257];
  const letters = "abcdefghijklmnopqrstuvwxyz";
  const randomWord = (n, alphabet) => Array.from({ length: n }, () => rng.pick(alphabet)).join("");
  const units = [" ", "\t", "\n", " \n", "a", "ab", "the", "e", "A", "Ab", "0", "12", "9", "=",
    "-", "#", "!?", ".", "*-", "中", "文字", "한", "😀", "🇫🇷", "é", "\u0301", "ж", "ø", "\u00a0",
    "\u3000", "\r\n"];
  let out = "";
  for (const u of units) {
    for (const n of lengths) {
      if (rng.chance(0.3)) out += (rng.chance(0.5) ? " " : "") + u.repeat(n) + rng.pick(["\n", " x\n", "!\n"]);
    }
  }
  for (let i = 0; i < 20; i++) out += " " + randomWord(rng.int(33, 200), letters) + "\n";
  for (let i = 0; i < 10; i++) out += randomWord(rng.int(40, 200), letters.toUpperCase() + letters) + "\n";
  for (let i = 0; i < 10; i++) out += randomWord(rng.int(40, 200), "0123456789") + "\n";
  for (let i = 0; i < 10; i++) out += randomWord(rng.int(40, 200), "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~") + "\n";
  for (let i = 0; i < 10; i++) out += randomWord(rng.int(40, 200), range(0x4e00, 0x4fff).map((c) => cp(c))) + "\n";
  for (let i = 0; i < 10; i++) out += randomWord(rng.int(40, 200), ["aa", "ab", "ba", "bb", "a", "b"]) + "\n";
  // Base64 and hex blobs: many alternations between letters, digits and punctuation.
  for (let i = 0; i < 5; i++) {
    out += randomWord(rng.int(100, 400), "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") + "==\n";
    out += randomWord(rng.int(64, 128), "0123456789abcdef") + "\n";
  }
  out += "Pneumonoultramicroscopicsilicovolcanoconiosis supercalifragilisticexpialidocious\n";
  out += "Rindfleischetikettierungsüberwachungsaufgabenübertragungsgesetz\n";
  out += "https://example.com/a/very/long/path/with-many-segments_and_underscores?query=string&x=1&y=2#fragment\n";
  return out;
}

// --- the special token among ordinary text --------------------------------------------------------
function genSpecial(rng) {
  const eot = "<|endoftext|>";
  const near = ["<|endoftext|", "|endoftext|>", "<|endoftext", "<|EndOfText|>", "<| endoftext |>",
    "<|endoftext|>>", "<<|endoftext|>", "<|endof text|>", "<|startoftext|>", "< |endoftext|>"];
  const texts = ["Hello world", "The end.", "  indented", "\n", "\n\n", "tail ", " lead", "中文",
    "😀", "It's", "123", "", "", "x", "é", "\r\n", "'s", "!"];
  let out = `${eot}starts the file\n`;
  for (let i = 0; i < 400; i++) {
    out += rng.pick(texts);
    out += rng.chance(0.6) ? eot : rng.pick(near);
    if (rng.chance(0.2)) out += eot;
  }
  return out + "ends with the token" + eot;
}

function genKjv() {
  const passages = ["Gen1", "Gen2", "Ex20", "Ruth1", "Job38", "Ps1", "Ps23", "Ps90", "Ps121",
    "Prov31", "Eccl1", "Eccl3", "Eccl12", "Mat6", "Luke15", "John1", "1Cor13", "Rev22"];
  const chapters = passages.map((p) => `${p}:1-999`); // a bare chapter gives only verse 1
  return execFileSync("bible", ["-l80", ...chapters], { maxBuffer: 1 << 26 }).toString("utf8");
}

const generators = {
  "gen_english.txt": () => genEnglish(makeRng(1)),
  "gen_numbers.txt": () => genNumbers(makeRng(2)),
  "gen_whitespace.txt": () => genWhitespace(makeRng(3)),
  "gen_contractions.txt": () => genContractions(makeRng(4)),
  "gen_scripts.txt": () => genScripts(makeRng(5)),
  "gen_emoji.txt": () => genEmoji(makeRng(6)),
  "gen_codepoints.txt": () => genCodePoints(makeRng(7)),
  "gen_long_runs.txt": () => genLongRuns(makeRng(8)),
  "gen_special_tokens.txt": () => genSpecial(makeRng(9)),
  "gen_kjv.txt": genKjv,
};

fs.mkdirSync(outDir, { recursive: true });
for (const [name, gen] of Object.entries(generators)) write(name, gen());
