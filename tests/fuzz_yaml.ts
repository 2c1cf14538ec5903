// Text mutations of YAML files for the config fuzz test: bit flips, nasty characters and values, line edits,
// anchors and alias bombs, deep nesting, long strings, odd line endings and extra documents. Knows YAML's
// syntax, not nexo's keys; tests/fuzz_config.ts generates configs that are valid by construction instead.

import type { Rng } from "./fuzz.ts";

/** Characters that break things: controls, YAML indicators, unicode that looks like ASCII or reorders text. */
const NASTY_CHARS = [
  ..."\u0000\t\r\n\u000b\u000c\u001b\u007f\u0085\u00a0\u200b\u200e\u202e\u2028\ufeff\ufffd",
  ..."\ud800\udfff", // lone surrogates
  ..."é中🎉İı",
  ...":-?[]{},&*!|>'\"%@`#~\\/.",
];

/** Values that stress number, string and tag handling when put where any value goes. */
const NASTY_VALUES = [
  "99999999999999999999999999999999",
  "1e400",
  "-1e400",
  "-0",
  "0x7fffffffffffffff",
  "0o777",
  "1_000",
  ".nan",
  ".inf",
  "-.inf",
  "~",
  "null",
  '""',
  "''",
  "yes",
  "no",
  "on",
  "2001-12-14t21:59:43.10-05:00",
  "!!binary aGVsbG8=",
  "!!str",
  "!!int 1",
  "!!float x",
  "!foo bar",
  "!<tag:yaml.org,2002:str> x",
  "*.example.com",
  "&a",
  "*a",
  "*undefined",
  "[",
  "{",
  "[]",
  "{}",
  "|",
  ">-\n  folded",
  '"\\x00\\u202e\\U0001F389"',
  '"unterminated',
  "'a''b'",
  "# comment",
  "http://u:p@[::1]:99999/%zz",
  "[::1]:443",
  "*",
  "**.a.b",
  "xn--bcher-kva.example",
  "b\u00fccher.example",
  "a".repeat(64) + ".com",
  `${"a.".repeat(130)}com`,
  "__proto__",
  "constructor",
];

/** How deep generated nesting goes: past the YAML library's stack limit (~800-1500 levels). */
const MAX_DEPTH = 2000;
/**
 * Mutated inputs are cut to this size, ten times a large real config. Past it, the YAML library's linear but
 * steep cost per syntax error (some garbage yields one error per byte, ~20 us each) would pass the hang limit
 * without anything super-linear going on; parse_fuzz_test.ts tries large alias-heavy files on their own.
 */
const MAX_INPUT = 32 * 1024;

type Mutator = (rng: Rng, text: string, seeds: readonly string[]) => string;

function lineSplice(text: string, edit: (lines: string[], at: number) => void, rng: Rng): string {
  const lines = text.split("\n");
  edit(lines, rng.int(lines.length));
  return lines.join("\n");
}

/**
 * A billion-laughs chain aimed at a real key: up to 12 levels of 10 aliases, 10^12 nodes if expanded. The
 * YAML library's maxAliasCount guards only its toJS(); nexo reads the node tree, so this checks it never
 * expands an alias either.
 */
function aliasBomb(rng: Rng): string {
  const levels = rng.between(3, 12);
  let out = `l0: &l0 [${Array(10).fill('"lol"').join(", ")}]\n`;
  for (let i = 1; i < levels; i++) out += `l${i}: &l${i} [${Array(10).fill(`*l${i - 1}`).join(", ")}]\n`;
  const target = rng.pick(["proxies", "wildcards", "trusted_proxies", "limits", "email", "admin"]);
  return `${out}${target}: *l${levels - 1}\n`;
}

/** Flow collections nested up to `MAX_DEPTH`; block ones to 400 levels, as their indentation grows as n^2. */
function deepNesting(rng: Rng): string {
  const depth = rng.between(10, MAX_DEPTH);
  switch (rng.int(4)) {
    case 0:
      return "[".repeat(depth) + (rng.chance(0.5) ? "]".repeat(depth) : "");
    case 1:
      return "{a: ".repeat(depth) + "1" + "}".repeat(depth);
    case 2:
      return "\n" +
        Array.from({ length: Math.min(depth, 400) }, (_, i) => `${" ".repeat(i + 2)}k${i}:`).join("\n");
    default:
      return "\n" +
        Array.from({ length: Math.min(depth, 400) }, (_, i) => `${" ".repeat(i + 2)}-`).join("\n");
  }
}

function longString(rng: Rng): string {
  const length = rng.pick([64, 254, 1025, 10_000, 30_000]);
  return rng.pick(["a", "a.", "ä", "\\x00", " ", "-", "*"]).repeat(length).slice(0, length);
}

const MUTATORS: ReadonlyArray<[string, Mutator]> = [
  ["flip a bit of a byte", (rng, text) => {
    // In the UTF-8 the file holds, decoded as Deno.readTextFile() does (bad sequences become U+FFFD).
    const bytes = new TextEncoder().encode(text);
    if (bytes.length === 0) return text;
    bytes[rng.int(bytes.length)]! ^= 1 << rng.int(8);
    return new TextDecoder().decode(bytes);
  }],
  ["insert a nasty character", (rng, text) => {
    const at = rng.int(text.length + 1);
    return text.slice(0, at) + rng.pick(NASTY_CHARS) + text.slice(at);
  }],
  ["delete a range", (rng, text) => {
    const at = rng.int(text.length + 1);
    return text.slice(0, at) + text.slice(at + rng.between(1, 20));
  }],
  ["delete a line", (rng, text) => lineSplice(text, (lines, at) => lines.splice(at, 1), rng)],
  [
    "duplicate a line",
    (rng, text) =>
      lineSplice(
        text,
        (lines, at) => lines.splice(at, 0, ...Array(rng.between(1, 200)).fill(lines[at])),
        rng,
      ),
  ],
  ["swap two lines", (rng, text) =>
    lineSplice(text, (lines, at) => {
      const other = rng.int(lines.length);
      [lines[at], lines[other]] = [lines[other]!, lines[at]!];
    }, rng)],
  ["swap two values", (rng, text) => {
    const lines = text.split("\n");
    const pairs = lines.flatMap((line, i) => /^\s*[^#\s][^:]*:\s+\S/.test(line) ? [i] : []);
    if (pairs.length < 2) return text;
    const [a, b] = [rng.pick(pairs), rng.pick(pairs)];
    const split = (line: string) => /^(\s*[^:]*:\s+)([^]*)$/.exec(line) ?? [];
    const [, keyA = "", valueA = ""] = split(lines[a]!);
    const [, keyB = "", valueB = ""] = split(lines[b]!);
    lines[a] = keyA + valueB;
    lines[b] = keyB + valueA;
    return lines.join("\n");
  }],
  ["replace a value with a nasty one", (rng, text) => {
    const lines = text.split("\n");
    const pairs = lines.flatMap((line, i) => /:\s+\S/.test(line) ? [i] : []);
    if (pairs.length === 0) return text;
    const i = rng.pick(pairs);
    const value = rng.chance(0.15) ? longString(rng) : rng.pick(NASTY_VALUES);
    lines[i] = lines[i]!.replace(/(:\s+)[^]*$/, (_, sep: string) => sep + value);
    return lines.join("\n");
  }],
  ["duplicate a key with another value", (rng, text) =>
    lineSplice(text, (lines, at) => {
      const line = lines[at] ?? "";
      const key = /^(\s*[^:#\s][^:]*:)/.exec(line)?.[1];
      if (key !== undefined) lines.splice(at + 1, 0, `${key} ${rng.pick(NASTY_VALUES)}`);
    }, rng)],
  ["add an anchor and aliases", (rng, text) => {
    const lines = text.split("\n");
    const pairs = lines.flatMap((line, i) => /:\s+\S/.test(line) ? [i] : []);
    if (pairs.length === 0) return text;
    const anchored = rng.pick(pairs);
    lines[anchored] = lines[anchored]!.replace(/(:\s+)/, "$1&x ");
    for (let n = rng.between(1, 5); n > 0; n--) {
      const i = rng.pick(pairs);
      lines[i] = lines[i]!.replace(/(:\s+)[^]*$/, "$1*x");
    }
    return lines.join("\n");
  }],
  ["prepend an alias bomb", (rng, text) => aliasBomb(rng) + text],
  ["insert deep nesting", (rng, text) => {
    const at = rng.int(text.length + 1);
    return text.slice(0, at) + deepNesting(rng) + text.slice(at);
  }],
  ["insert a long string", (rng, text) => {
    const at = rng.int(text.length + 1);
    const long = longString(rng);
    const wrapped = rng.pick([long, `"${long}"`, `? ${long}\n: 1\n`, `${long}: x\n`]);
    return text.slice(0, at) + wrapped + text.slice(at);
  }],
  ["shift indentation", (rng, text) =>
    lineSplice(text, (lines, at) => {
      const line = lines[at] ?? "";
      lines[at] = rng.chance(0.5) ? rng.pick([" ", "  ", "\t", "    "]) + line : line.replace(/^\s/, "");
    }, rng)],
  ["truncate", (rng, text) => text.slice(0, rng.int(text.length + 1))],
  ["splice in another config", (rng, text, seeds) => {
    const other = rng.pick(seeds);
    const from = rng.int(other.length);
    const at = rng.int(text.length + 1);
    return text.slice(0, at) + other.slice(from, from + rng.between(1, 200)) + text.slice(at);
  }],
  ["change line endings", (rng, text) => text.replaceAll("\n", rng.pick(["\r\n", "\r", "\u2028", "\n\n"]))],
  [
    "add a document or directive",
    (rng, text) =>
      rng.pick(["---\n", "%YAML 1.1\n---\n", "%TAG ! tag:x,2000:\n---\n", "...\n", ""]) + text +
      rng.pick(["\n---\nemail: a@b.co\n", "\n...\n", "\n--- |\n  x\n", ""]),
  ],
];

/** 1-4 random mutations of one of `seeds`, cut to `MAX_INPUT`, with the names of the steps taken. */
export function mutateYaml(rng: Rng, seeds: readonly string[]): { text: string; steps: string[] } {
  let text = rng.pick(seeds);
  const steps: string[] = [];
  for (let n = rng.between(1, 4); n > 0; n--) {
    const [name, mutate] = rng.pick(MUTATORS);
    steps.push(name);
    text = mutate(rng, text, seeds).slice(0, MAX_INPUT);
  }
  return { text, steps };
}
