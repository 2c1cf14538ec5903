import assert from "node:assert/strict";
// The npm yaml package, which nexo read configs with before: the reference this reader is checked against.
import { parseDocument } from "yaml";
import {
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LinePositions,
  MAX_DEPTH,
  parseYaml,
  type YamlNode,
} from "./yaml.ts";
import { runFuzz, showString } from "../../tests/fuzz.ts";
import { mutateYaml } from "../../tests/fuzz_yaml.ts";
import { randomConfig } from "../../tests/fuzz_config.ts";

/** Where nexo's reader is deliberately stricter than the yaml package (and nests at most MAX_DEPTH deep). */
const UNSUPPORTED =
  /not supported|nexo reads YAML 1\.2|carriage return without a line feed|!!str applies to a single value|nested too deeply/;
/** Where the yaml package is wrong: it closes a single-quoted value left open at the end of the file. */
const THEIRS_LENIENT = /quote here is never closed/;
/** Where the yaml package is stricter: its 1024-character limit on implicit keys. */
const THEIRS_ONLY = /must be at most 1024 chars/;

/** A document as plain data: aliases followed, map keys as strings (what `toJS()` of the yaml package gives). */
function toData(node: YamlNode | null, depth = 0): unknown {
  if (node === null) return null;
  if (depth > 200) throw new RangeError("too deep to compare");
  switch (node.kind) {
    case "scalar":
      return node.value;
    case "alias":
      if (node.target === undefined) throw new ReferenceError(`unknown alias ${node.source}`);
      return toData(node.target, depth + 1);
    case "seq":
      return node.items.map((item) => toData(item, depth + 1));
    case "map": {
      const out: Record<string, unknown> = {};
      for (const { key, value } of node.items) {
        const name = key.kind === "scalar" ? (key.value === null ? "" : String(key.value)) : "";
        out[name] = toData(value, depth + 1);
      }
      return out;
    }
  }
}

/** JSON that tells NaN, Infinity and -0 apart. */
function show(value: unknown): string {
  return JSON.stringify(
    value,
    (_key, v) =>
      typeof v === "number" && (!Number.isFinite(v) || Object.is(v, -0))
        ? `number ${Object.is(v, -0) ? "-0" : v}`
        : v,
  );
}

/**
 * Asserts that nexo's reader and the yaml package agree on `text`: the same data, or both an error, or an
 * error only on the side whose strictness is deliberate. Returns what happened, for coverage checks.
 */
function assertAgrees(text: string): "same" | "both errors" | "unsupported" | "skipped" {
  // logLevel "error": no warning printed for a mapping used as a key (the comparison skips those anyway).
  const theirs = parseDocument(text, { prettyErrors: false, uniqueKeys: false, logLevel: "error" });
  const mine = parseYaml(text);
  let expected: string | null = null;
  if (theirs.errors.length === 0) {
    try {
      expected = show(theirs.toJS({ maxAliasCount: 10_000 }));
    } catch {
      return "skipped"; // an unknown alias or an alias bomb: the config reader reports or bounds those itself
    }
  }
  if (mine.error !== null) {
    if (expected === null) return "both errors";
    const deliberate = UNSUPPORTED.test(mine.error.message) || THEIRS_LENIENT.test(mine.error.message);
    assert.ok(deliberate, `only nexo failed: ${mine.error.message}`);
    return "unsupported";
  }
  if (expected === null) {
    assert.match(
      theirs.errors[0]!.message,
      THEIRS_ONLY,
      `only the yaml package failed: ${theirs.errors[0]!.message}`,
    );
    return "skipped";
  }
  let actual: string;
  try {
    actual = show(toData(mine.root));
  } catch {
    return "skipped";
  }
  assert.equal(actual, expected);
  return "same";
}

const SNIPPETS = [
  "a: 1",
  "a: |\n  x\n  y\n",
  "a: |-\n  x\n\n",
  "a: |+\n  x\n\n\n",
  "a: >\n  x\n  y\n\n  z\n",
  "a: >\n  x\n    indented\n  y\n",
  "a: >-\n  one\n  two\n",
  "a: |2\n    x\n",
  "a: |\n\n  x\n",
  "a: |\n  x\nb: 2",
  "- |\n  x\n- y",
  "a: >+\n  x\n\n",
  "a: |\n",
  "a: |\nb: 1",
  "a: >\n\n\n  x",
  "a: |\n  x",
  "a: |+\n  x",
  "a: |+\n  x\n  ",
  'a: "x\n  y"',
  'a: "x\n\n  y"',
  'a: "x\\\n  y"',
  "a: 'it''s'",
  "a: 'x\n  y\n\n  z'",
  'a: "\\u00e9\\x41\\t\\n"',
  'a: "  lead "',
  "a: b\n  c",
  "a: b\n\n  c",
  "a: b # c",
  "a: b#c",
  "a:b",
  "a: [1, 2, 3]",
  "a: [1,\n  2]",
  "a: {x: 1, y: [2]}",
  "a: {x, y: 1}",
  'a: {"x":1}',
  "a: []",
  "a: {}",
  "a: [a b, c]",
  "a: &x 1\nb: *x",
  "a: &x\n  k: v\nb: *x",
  "a: *nope",
  "&a a: 1",
  "a:\n- 1\n- 2\nb: 3",
  "a:\n  - 1\n  -\n  - 3",
  "- a: 1\n  b: 2\n- c",
  "- - 1\n  - 2\n- 3",
  "-\n  a: 1",
  "a: !!str 123",
  "a: !!str",
  "a: ~",
  "a: null",
  "a: NULL",
  "a: True",
  "a: yes",
  "a: 0x1F",
  "a: 0o17",
  "a: 017",
  "a: 1_000",
  "a: 1e3",
  "a: .5",
  "a: -.inf",
  "a: .NaN",
  "a: -0",
  "a: +12",
  "a: 2001-12-14",
  "a: 99999999999999999999",
  '"a": 1',
  "'a': 1",
  "? a\n: 1",
  "a: 1\n---\nb: 2",
  "--- \na: 1",
  "---\na: 1\n...\n",
  "--- a",
  "a: b: c",
  "a:\n\tb: 1",
  "a: 'x",
  'a: "x',
  "a: [x",
  "a:\n  b: 1\n c: 2",
  "a:\n  b: 1\n   c: 2",
  "k: v\n- x",
  "# only comment",
  "",
  "a:   # comment\n  b: 1",
  "a: -1",
  "a: - 1",
  "a: -x",
  "a: ?x",
  "a: :x",
  "a: x:y",
  "a: x: y",
  "a: @x",
  "a: `x",
  "a: %x",
  "a: ,x",
  "a: [a, [b, {c: d}]]",
  "a: {b: [1, 2], c: {d: e}}",
  "a: [\n  1,\n  2,\n]",
  "a: {\n  b: 1,\n}",
  "a: [1,,2]",
  "a: [1 2]",
  "a: [a: 1]",
  'a: "x" y',
  "a: 'x' # c",
  'a: "\\q"',
  "a: b\n# c\n  d",
  "a:\n  # c\n  b: 1",
  "a: 1\n\n\nb: 2\n",
  "a: |\n  # not a comment\n",
  "a: >\n  a\n\n\n  b\n",
  "- >\n  x\n- |\n  y",
  "a:\n  - b:\n      c: 1\n  - d",
  "a: 'multi\n\n\n  line'",
  "a: x\n  y: z",
  "\ufeffa: 1",
  "a: 1\r\nb: 2\r\n",
  'a: "x\r\n  y"',
  "a: |\r\n  x\r\n  y\r\n",
  "a: b\r\n  c\r\n",
  "a: {b: 1, b: 2}",
  "a: 1\na: 2",
  "a: [*x]",
  "x: &x [1]\ny: [*x, *x]",
  "a: &anchor\nb: *anchor",
  "a: !!str\n  b",
  "a: >2\n   x\n  y\n",
  "a: |-\n",
  "a: |\n  x\n\n# c\n",
  "a: |\n  x\n \n  y",
  "a: {b: c,\n d: e}",
  "a: [b,\nc]",
  "- [a,\n  b]",
  "key with spaces: v",
  "a b: c d",
  "a: 'x'\n",
  'a: ""',
  "a: ''",
  "a:",
  "a: # c",
  "- ",
  "-",
  "- # c\n- x",
  "a: *",
  "a: &",
  "a: & x",
  'a: "\\/\\ \\_\\N\\L\\P\\e\\0"',
  'a: "\\U0001F389"',
  'a: "\\uD800"',
  'a: "tab\\\tx"',
  "a: 'x'y'",
  'a: "line1\n\n\n  line2"',
  'a: "x   \n   y"',
  "a: [\"a\", 'b']",
  "a: {'a': \"b\"}",
  "a: b\n...\n",
  "a: b\n... # c\n",
  "a: b\n...\nc: d",
  "a:\n  b\n  c",
  "a:\n  b\n\n  c\n",
  "- a\n  b",
  "- a\n - b",
  "a: >\n x\n",
  "-  a\n-   b",
  "a:\n    - 1\n    - 2\n  b: 1",
];

Deno.test("parseYaml() reads each of YAML's forms as the yaml package does", () => {
  const outcomes: Record<string, number> = {};
  for (const text of SNIPPETS) {
    try {
      const outcome = assertAgrees(text);
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
    } catch (error) {
      throw new Error(`${showString(text)}: ${error instanceof Error ? error.message : error}`, {
        cause: error,
      });
    }
  }
  assert.ok(outcomes["same"]! > 120, JSON.stringify(outcomes));
});

const SEEDS = [
  ...[...Deno.readDirSync(new URL("../../examples", import.meta.url))]
    .filter((entry) => entry.isFile && entry.name.endsWith(".yaml"))
    .map((entry) => Deno.readTextFileSync(new URL(`../../examples/${entry.name}`, import.meta.url))),
  Deno.readTextFileSync(new URL("../../tests/testdata/seed.yaml", import.meta.url)),
  Deno.readTextFileSync(new URL("../../tests/testdata/fuzz_seed.yaml", import.meta.url)),
];

Deno.test("parseYaml() agrees with the yaml package on mutated configs and configs in random styles", () => {
  let same = 0;
  runFuzz({
    name: "parseYaml() agrees with the yaml package on mutated configs and configs in random styles",
    file: import.meta.url,
    defaultRuns: 2000,
    generate: (rng) => rng.chance(0.5) ? mutateYaml(rng, SEEDS).text : randomConfig(rng).yaml,
    check: (text) => {
      if (assertAgrees(text) === "same") same++;
    },
    show: showString,
  });
  assert.ok(same > 0);
});

/** Pieces of YAML syntax, strung together at random: corners that real configs rarely reach. */
const PIECES = [
  "a",
  "b",
  "key: ",
  "x: ",
  "- ",
  "  ",
  "\n",
  "\n  ",
  "\n    ",
  "[",
  "]",
  "{",
  "}",
  ", ",
  "'q'",
  '"d"',
  "|",
  ">",
  "|-",
  ">+",
  "&a ",
  "*a",
  " # c",
  ":",
  "? ",
  "-",
  "1",
  "~",
  "'",
  '"',
  "0x1F",
  "true",
  " ",
  "...",
  "---",
  "!!str ",
  "\\n",
  "''",
  "tx t",
];

Deno.test("parseYaml() agrees with the yaml package on random strings of YAML syntax", () => {
  let same = 0;
  runFuzz({
    name: "parseYaml() agrees with the yaml package on random strings of YAML syntax",
    file: import.meta.url,
    defaultRuns: 4000,
    generate: (rng) => rng.repeat(rng.between(1, 14), () => PIECES[rng.between(0, PIECES.length - 1)]!),
    check: (text) => {
      if (assertAgrees(text) === "same") same++;
    },
    show: showString,
  });
  assert.ok(same > 1000, `only ${same} cases read as data by both`);
});

Deno.test("parseYaml() gives each node its offsets, anchors and alias targets", () => {
  const text = "a: &x 1\nlist:\n  - *x\n  - {k: v}\n";
  const { root, error } = parseYaml(text);
  assert.equal(error, null);
  assert.ok(isMap(root));
  const [a, list] = root.items;
  assert.ok(isScalar(a!.key) && isScalar(a!.value));
  assert.deepEqual([a!.key.range[0], a!.value.range[0], a!.value.anchor], [0, 6, "x"]);
  assert.ok(isSeq(list!.value));
  const [alias, flow] = list!.value.items;
  assert.ok(isAlias(alias));
  assert.equal(alias.target, a!.value, "the alias points at the anchored node, not a copy");
  assert.ok(isMap(flow));
  assert.equal(text.slice(flow.range[0], flow.range[1]), "{k: v}");
  assert.equal(isScalar(null), false);
});

Deno.test("parseYaml() reports the first syntax error at its offset, and never throws", () => {
  const { error } = parseYaml("a: 1\nb: [x\n");
  assert.ok(error);
  assert.deepEqual(new LinePositions("a: 1\nb: [x\n").positionAt(error.offset), { line: 3, col: 1 });
  const deep = parseYaml(`a: ${"[".repeat(MAX_DEPTH * 10)}`);
  assert.match(deep.error?.message ?? "", /nested too deeply/);
  for (
    const text of [
      "\u0000",
      '"',
      "'",
      "[",
      "{",
      "&",
      "*",
      "!",
      "|9",
      ">-+",
      "? x",
      "%TAG x",
      "- - - -",
      ":::",
    ]
  ) {
    const result = parseYaml(text);
    assert.ok(result.error === null || typeof result.error.message === "string", showString(text));
  }
});

Deno.test("LinePositions turns offsets into 1-based lines and columns", () => {
  const lines = new LinePositions("ab\n\ncd");
  assert.deepEqual([0, 1, 2, 3, 4, 5].map((at) => lines.positionAt(at)), [
    { line: 1, col: 1 },
    { line: 1, col: 2 },
    { line: 1, col: 3 },
    { line: 2, col: 1 },
    { line: 3, col: 1 },
    { line: 3, col: 2 },
  ]);
});
