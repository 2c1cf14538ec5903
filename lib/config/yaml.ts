// nexo's YAML reader: one YAML 1.2 document -> nodes with their offsets, for the config reader's positioned
// messages. Block and flow mappings and sequences, plain, quoted and block scalars, comments, anchors and
// aliases (never expanded); the core schema. Not supported, each with a message that says so: complex keys
// (`? `), tags other than !!str, directives, several documents. The npm `yaml` package did this before; as
// CommonJS it brought up Deno's Node layer, +10.8 MiB idle RSS (DEVELOPERS.md). Errors stop at the first.

import {
  blockScalarValue,
  type Chomping,
  decodeEscape,
  foldQuotedLines,
  resolvePlain,
} from "./yaml_scalar.ts";
import type { ScalarValue } from "./yaml_scalar.ts";

export type { ScalarValue } from "./yaml_scalar.ts";

interface NodeBase {
  /** Offsets in the text: where the node starts (after its anchor) and where it ends. */
  range: [number, number];
  anchor?: string;
}
export interface YamlScalar extends NodeBase {
  kind: "scalar";
  value: ScalarValue;
  /** The scalar's text before the schema read it: `0x1F` for 31, the unescaped text of a quoted one. */
  source: string;
}
export interface YamlPair {
  key: YamlNode;
  /** null for `key:` with nothing after it. */
  value: YamlNode | null;
}
export interface YamlMap extends NodeBase {
  kind: "map";
  items: YamlPair[];
}
export interface YamlSeq extends NodeBase {
  kind: "seq";
  /** null for an empty entry (`-` with nothing after it). */
  items: (YamlNode | null)[];
}
export interface YamlAlias extends NodeBase {
  kind: "alias";
  /** The anchor's name, without the `*`. */
  source: string;
  /** The node last anchored with that name before the alias; undefined when there is none. */
  target: YamlNode | undefined;
}
export type YamlNode = YamlScalar | YamlMap | YamlSeq | YamlAlias;

export interface YamlSyntaxError {
  /** Offset in the text where the problem is. */
  offset: number;
  message: string;
}

/** The document's top node (null when the file holds none), or the first syntax error. */
export type YamlDocument = { root: YamlNode | null; error: null } | { root: null; error: YamlSyntaxError };

export const isMap = (node: unknown): node is YamlMap => (node as YamlNode | null)?.kind === "map";
export const isSeq = (node: unknown): node is YamlSeq => (node as YamlNode | null)?.kind === "seq";
export const isScalar = (node: unknown): node is YamlScalar => (node as YamlNode | null)?.kind === "scalar";
export const isAlias = (node: unknown): node is YamlAlias => (node as YamlNode | null)?.kind === "alias";

/** Offsets in a text to 1-based line and column (columns in UTF-16 code units, as editors count them). */
export class LinePositions {
  readonly #starts: number[] = [0];

  constructor(text: string) {
    for (let at = text.indexOf("\n"); at !== -1; at = text.indexOf("\n", at + 1)) this.#starts.push(at + 1);
  }

  positionAt(offset: number): { line: number; col: number } {
    let low = 0;
    let high = this.#starts.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if (this.#starts[mid]! <= offset) low = mid;
      else high = mid - 1;
    }
    return { line: low + 1, col: offset - this.#starts[low]! + 1 };
  }
}

/**
 * Collections nested deeper than this are refused: a config needs a few levels, and each level is a
 * recursive call (an unclosed "[" repeated thousands of times would otherwise overflow the stack).
 */
export const MAX_DEPTH = 500;

/** Parses `text` as one YAML document. Never throws on any input. */
export function parseYaml(text: string): YamlDocument {
  try {
    return { root: new Parser(text).document(), error: null };
  } catch (error) {
    if (error instanceof SyntaxFailure) {
      return { root: null, error: { offset: error.offset, message: error.message } };
    }
    throw error;
  }
}

class SyntaxFailure extends Error {
  constructor(readonly offset: number, message: string) {
    super(message);
  }
}

/** Characters that cannot start a plain scalar (§7.3.3 c-indicator), `-?:` only when a space follows. */
const INDICATORS = "-?:,[]{}#&*!|>'\"%@`";
const FLOW_INDICATORS = ",[]{}";
const COMPLEX_KEY =
  `complex mapping keys ("? ") are not supported; write the key as a plain or quoted string`;
const ANCHOR_NAME = /[^\s,[\]{}]+/y;

/** A line's first non-blank character and its column (its indentation). */
interface LineStart {
  at: number;
  indent: number;
}

class Parser {
  #pos = 0;
  #depth = 0;
  readonly #anchors = new Map<string, YamlNode>();
  readonly #tagged = new WeakSet<YamlNode>();

  constructor(private readonly src: string) {}

  document(): YamlNode | null {
    const lone = /\r(?!\n)/.exec(this.src);
    if (lone) {
      this.#fail(
        lone.index,
        "a carriage return without a line feed; save the file with LF or CRLF line ends",
      );
    }
    if (this.src.startsWith("\ufeff")) this.#pos = 1;
    let line = this.#nextLine(this.#pos);
    // A "%YAML 1.2" line says what nexo reads anyway; 1.1 would change what yes/no mean, and %TAG is unused.
    while (line && this.src[line.at] === "%" && line.indent === 0) {
      const directive = this.src.slice(line.at, this.#lineEnd(line.at)).replace(/\s+#.*$/, "").trim();
      if (!/^%YAML[ \t]+1\.2$/.test(directive)) {
        this.#fail(
          line.at,
          `nexo reads YAML 1.2 and no other directive; remove the line "${directive.slice(0, 40)}"`,
        );
      }
      line = this.#nextLine(this.#lineEnd(line.at));
    }
    let root: YamlNode | null = null;
    if (line && this.#isMarker(line, "---")) {
      this.#pos = line.at + 3;
      root = this.#afterMarker();
    } else if (line && !this.#isMarker(line, "...")) root = this.#blockNode(line.at, -1, true);
    line = this.#nextLine(this.#pos);
    if (line && this.#isMarker(line, "...")) {
      this.#pos = line.at + 3;
      this.#endOfLine("after the document end marker");
      line = this.#nextLine(this.#pos);
    }
    if (line && this.#isMarker(line, "---")) {
      this.#fail(
        line.at,
        `the file holds more than one YAML document (a "---" line starts the next); keep only one`,
      );
    }
    if (line) {
      this.#fail(
        line.at,
        `this line is indented less than the value it belongs to, or does not continue it; check its indentation`,
      );
    }
    return root;
  }

  /** The node after a `---` on its line, or on the lines below. */
  #afterMarker(): YamlNode | null {
    this.#skipSpaces();
    if (!this.#atLineEnd()) return this.#blockNode(this.#pos, -1, false);
    const line = this.#nextLine(this.#pos);
    return line && !this.#isMarker(line, "---") && !this.#isMarker(line, "...")
      ? this.#blockNode(line.at, -1, true)
      : null;
  }

  // ---- block structure (§8.2) ----

  /**
   * The node starting at `at` in block context, its parent at column `parent` (-1 for the top). `compact`
   * allows a mapping or list to start there: not on a key's line (`key: a: b`), yes after `- `.
   */
  #blockNode(at: number, parent: number, compact: boolean): YamlNode | null {
    this.#pos = at;
    // A mapping's indentation is where its first line starts, before any anchor of its first key.
    const col = this.#column(at);
    const props = this.#properties();
    if (props) {
      this.#skipSpaces();
      if (this.#atLineEnd()) {
        const line = this.#nextLine(this.#pos);
        const below = line !== null && !this.#isMarker(line, "---") && !this.#isMarker(line, "...");
        const node = below && (line.indent > parent || (line.indent === parent && this.#isEntry(line.at)))
          ? this.#blockNode(line.at, line.indent === parent ? parent - 1 : parent, true)
          : this.#emptyScalar(props.end);
        return this.#apply(props, node);
      }
      at = this.#pos;
    }
    const char = this.src[at];
    let node: YamlNode;
    if (this.#isEntry(at)) {
      if (props) this.#fail(props.start, `an anchor or tag of a list goes on the line above the list`);
      if (!compact) {
        this.#fail(at, `a list cannot start on the line of its key; start it on the next line, indented`);
      }
      node = this.#nested(at, () => this.#sequence(at, col));
    } else if (char === "?" && this.#spaceOrEnd(at + 1)) {
      this.#fail(at, COMPLEX_KEY);
    } else if (this.#keyEnd(at) !== null) {
      if (!compact) {
        this.#fail(
          at,
          `a mapping cannot start on the line of its key ("key: a: b"); put it on the next line, indented`,
        );
      }
      const map = this.#nested(at, () => this.#mapping(at, col));
      // "&a key: value" anchors the key (YAML 1.2 §8.2.2: properties on the key's line belong to the key).
      if (props) this.#apply(props, map.items[0]!.key);
      return map;
    } else if (char === "|" || char === ">") {
      node = this.#blockScalar(at, parent);
    } else {
      node = this.#flowNode(parent, "block");
      this.#endOfLine("after a value");
    }
    return props ? this.#apply(props, node) : node;
  }

  #sequence(at: number, col: number): YamlSeq {
    const start = at;
    const items: (YamlNode | null)[] = [];
    for (;;) {
      this.#pos = at + 1;
      this.#skipSpaces();
      if (this.#atLineEnd()) {
        const line = this.#nextLine(this.#pos);
        items.push(line && line.indent > col ? this.#blockNode(line.at, col, true) : null);
      } else items.push(this.#blockNode(this.#pos, col, true));
      const next = this.#nextLine(this.#pos);
      if (!next || next.indent < col) break;
      if (next.indent > col) this.#fail(next.at, `this line is indented more than the list items above it`);
      if (!this.#isEntry(next.at)) break;
      at = next.at;
    }
    return { kind: "seq", items, range: [start, this.#pos] };
  }

  #mapping(at: number, col: number): YamlMap {
    const start = at;
    const items: YamlPair[] = [];
    for (;;) {
      // The first key's anchor or tag was read by #blockNode; a later key's is read here.
      this.#pos = at;
      const props = at === start ? null : this.#properties();
      if (props) this.#skipSpaces();
      if (this.#keyEnd(this.#pos) === null) {
        this.#fail(
          this.#pos,
          this.src[this.#pos] === "?" && this.#spaceOrEnd(this.#pos + 1)
            ? COMPLEX_KEY
            : `expected "key: value" here, at the indentation of the keys above`,
        );
      }
      const key = this.#key(this.#pos);
      if (props) this.#apply(props, key);
      this.#skipSpaces();
      let value: YamlNode | null;
      if (this.#atLineEnd()) {
        const line = this.#nextLine(this.#pos);
        if (line && line.indent > col) value = this.#blockNode(line.at, col, true);
        // A list may sit at its key's indentation (§8.2.2: "key:\n- a").
        else if (line && line.indent === col && this.#isEntry(line.at)) {
          value = this.#blockNode(line.at, col - 1, true);
        } else value = null;
      } else value = this.#blockNode(this.#pos, col, false);
      items.push({ key, value });
      const next = this.#nextLine(this.#pos);
      if (!next || next.indent < col || this.#isMarker(next, "---") || this.#isMarker(next, "...")) break;
      if (next.indent > col) {
        this.#fail(
          next.at,
          this.src[next.at] === ":"
            ? `an empty key (a line starting with ":") is not supported here; write the key before the ":"`
            : `this line is indented more than the keys above it; line it up with them or nest it under a key`,
        );
      }
      if (this.#isEntry(next.at)) {
        this.#fail(next.at, `a list item among keys; put the list under a key ("key:" on the line above it)`);
      }
      at = next.at;
    }
    return { kind: "map", items, range: [start, this.#pos] };
  }

  /** Reads the implicit key at `at` (`#keyEnd` found its colon) and moves past the colon. */
  #key(at: number): YamlNode {
    const colon = this.#keyEnd(at)!;
    this.#pos = at;
    const char = this.src[at];
    let key: YamlNode;
    if (colon === at) key = this.#emptyScalar(at);
    else if (char === '"' || char === "'") key = this.#quoted();
    else if (char === "*") key = this.#alias();
    else {
      const source = this.src.slice(at, colon).replace(/[ \t]+$/, "");
      key = { kind: "scalar", value: resolvePlain(source), source, range: [at, at + source.length] };
    }
    this.#pos = colon + 1;
    return key;
  }

  /**
   * The offset of the colon ending an implicit key that starts at `at` on this line (§7.4: a key and its
   * ":" on one line, the ":" followed by a space or the line's end), or null when the line holds no key.
   */
  #keyEnd(at: number): number | null {
    const src = this.src;
    const char = src[at];
    let p = at;
    if (char === '"' || char === "'") {
      p = this.#quoteEndOnLine(at);
      if (p < 0) return null;
      while (src[p] === " " || src[p] === "\t") p++;
      return src[p] === ":" && this.#spaceOrEnd(p + 1) ? p : null;
    }
    if (char === "[" || char === "{") {
      const line = src.slice(at, this.#lineEnd(at)).replace(/\s#.*$/, "");
      if (/[\]}][ \t]*:(?:[ \t]|$)/.test(line)) {
        this.#fail(
          at,
          `a [ ] or { } collection as a key is not supported; write the key as a plain or quoted string`,
        );
      }
      return null;
    }
    if (char === "*") {
      ANCHOR_NAME.lastIndex = at + 1;
      p = at + 1 + (ANCHOR_NAME.exec(src)?.[0].length ?? 0);
      while (src[p] === " " || src[p] === "\t") p++;
      return p > at + 1 && src[p] === ":" && this.#spaceOrEnd(p + 1) ? p : null;
    }
    if (char === undefined) return null;
    // An empty key (": value") is read as null, as the yaml package did; the config reader reports it.
    if (char === ":" && this.#spaceOrEnd(at + 1)) return at;
    if (INDICATORS.includes(char) && !("-?:".includes(char) && !this.#spaceOrEnd(at + 1))) return null;
    for (p = at + 1; p < src.length && src[p] !== "\n" && src[p] !== "\r"; p++) {
      if (src[p] === ":" && this.#spaceOrEnd(p + 1)) return p;
      if (src[p] === "#" && (src[p - 1] === " " || src[p - 1] === "\t")) return null;
    }
    return null;
  }

  /** Offset after the closing quote of the quoted scalar at `at` when it closes on the same line, else -1. */
  #quoteEndOnLine(at: number): number {
    const quote = this.src[at];
    for (let p = at + 1; p < this.src.length && this.src[p] !== "\n"; p++) {
      if (quote === '"' && this.src[p] === "\\") p++;
      else if (this.src[p] === quote) {
        if (quote === "'" && this.src[p + 1] === "'") p++;
        else return p + 1;
      }
    }
    return -1;
  }

  /** A literal (`|`) or folded (`>`) block scalar whose header is at `at`, its parent at column `parent`. */
  #blockScalar(at: number, parent: number): YamlScalar {
    const src = this.src;
    let p = at + 1;
    let chomping: Chomping = "clip";
    let explicit = 0;
    for (let i = 0; i < 2; i++) {
      if ((src[p] === "-" || src[p] === "+") && chomping === "clip") {
        chomping = src[p++] === "-" ? "strip" : "keep";
      } else if (src[p]! >= "1" && src[p]! <= "9" && explicit === 0) explicit = Number(src[p++]);
    }
    this.#pos = p;
    this.#endOfLine(
      `after "${src.slice(at, p)}" (a block scalar's header takes only - or + and an indentation digit)`,
    );
    // Content lines: from the line after the header to the first non-blank one indented too little (§8.1.1.1:
    // without an indentation digit, the first non-blank line sets the indentation).
    let indent = explicit > 0 ? Math.max(parent, 0) + explicit : -1;
    const lines: string[] = [];
    let endsWithBreak = false;
    let leadingSpaces = 0;
    let end = this.#lineEnd(this.#pos);
    for (let lineStart = end + 1; lineStart < src.length;) {
      const lineEnd = this.#lineEnd(lineStart);
      const raw = src.slice(lineStart, lineEnd).replace(/\r$/, "");
      let spaces = 0;
      while (raw[spaces] === " ") spaces++;
      // Only spaces: an empty line, unless (once the indentation is known) it has more spaces than that.
      const blank = spaces === raw.length && (indent < 0 || spaces <= indent);
      if (indent < 0 && !blank) {
        if (spaces <= parent) break;
        if (leadingSpaces > spaces) {
          this.#fail(
            lineStart,
            `a block scalar's leading empty line is indented more than its first line of text`,
          );
        }
        indent = spaces;
      }
      if (indent < 0) leadingSpaces = Math.max(leadingSpaces, spaces);
      else if (!blank && spaces < indent) break;
      if (spaces === 0 && /^(?:---|\.\.\.)(?:[ \t]|$)/.test(raw)) break;
      lines.push(blank ? "" : raw.slice(indent));
      // The end of the file ends a line of text as a line break would (as the yaml package read it).
      endsWithBreak = lineEnd < src.length || !blank;
      end = lineEnd;
      lineStart = lineEnd + 1;
    }
    // Spaces alone are no text: with no other line, they are empty lines (as the yaml package reads them).
    if (lines.every((line) => line.trim() === "")) lines.fill("");
    this.#pos = end;
    const value = blockScalarValue(lines, { folded: src[at] === ">", chomping, endsWithBreak });
    return { kind: "scalar", value, source: value, range: [at, end] };
  }

  // ---- flow (§7) ----

  /** A scalar, alias or [ ] / { } collection at the current position; `context` says where it may end. */
  #flowNode(parent: number, context: "block" | "flow"): YamlNode {
    const props = context === "flow" ? this.#properties() : null;
    if (props) this.#skipFlowSpace(parent);
    const at = this.#pos;
    const char = this.src[at];
    let node: YamlNode;
    if (props && (char === "," || char === "]" || char === "}" || char === ":")) node = this.#emptyScalar(at);
    else if (char === "[" || char === "{") node = this.#nested(at, () => this.#flowCollection(parent));
    else if (char === '"' || char === "'") node = this.#quoted(parent);
    else if (char === "*") node = this.#alias();
    else node = this.#plain(parent, context);
    return props ? this.#apply(props, node) : node;
  }

  #flowCollection(parent: number): YamlMap | YamlSeq {
    const open = this.#pos;
    const isSeq = this.src[open] === "[";
    const close = isSeq ? "]" : "}";
    const items: (YamlNode | null)[] = [];
    const pairs: YamlPair[] = [];
    this.#pos++;
    for (;;) {
      this.#skipFlowSpace(parent, open);
      if (this.src[this.#pos] === close) break;
      if (this.src[this.#pos] === ",") this.#fail(this.#pos, `an empty entry between commas; remove one ","`);
      const entry = this.src[this.#pos] === ":" && !isSeq ? null : this.#flowNode(parent, "flow");
      this.#skipFlowSpace(parent, open);
      if (isSeq && this.src[this.#pos] === ":") {
        // "[a: 1]" holds a mapping of one pair (§7.4.1), its key on one line.
        if (entry !== null && this.src.slice(entry.range[0], entry.range[1]).includes("\n")) {
          this.#fail(entry.range[0], `a key must be on one line; join its lines or quote it`);
        }
        this.#pos++;
        this.#skipFlowSpace(parent, open);
        const end = this.src[this.#pos];
        const value = end === "," || end === "]" ? null : this.#flowNode(parent, "flow");
        this.#skipFlowSpace(parent, open);
        const key = entry ?? this.#emptyScalar(this.#pos);
        items.push({ kind: "map", items: [{ key, value }], range: [key.range[0], this.#pos] });
      } else if (isSeq) items.push(entry);
      else {
        let value: YamlNode | null = null;
        if (this.src[this.#pos] === ":") {
          this.#pos++;
          this.#skipFlowSpace(parent, open);
          if (this.src[this.#pos] !== "," && this.src[this.#pos] !== "}") {
            value = this.#flowNode(parent, "flow");
          }
          this.#skipFlowSpace(parent, open);
        }
        const key = entry ?? this.#emptyScalar(this.#pos);
        pairs.push({ key, value });
      }
      if (this.src[this.#pos] === ",") this.#pos++;
      else if (this.src[this.#pos] !== close) {
        this.#fail(
          this.#pos,
          `expected "," or "${close}" in the ${isSeq ? "[ ] list" : "{ } mapping"} opened on line ${
            this.#lineOf(open)
          }`,
        );
      }
    }
    this.#pos++;
    const range: [number, number] = [open, this.#pos];
    return isSeq ? { kind: "seq", items, range } : { kind: "map", items: pairs, range };
  }

  /**
   * Skips spaces, line breaks and comments inside a [ ] or { } (or a multi-line quoted scalar) opened at
   * `open`; fails at the end of the file, or on a line not indented past `parent` (§7: flow content in a
   * block collection must be indented more than it).
   */
  #skipFlowSpace(parent: number, open?: number): void {
    const src = this.src;
    for (;;) {
      const char = src[this.#pos];
      if (char === " " || char === "\t" || char === "\r") this.#pos++;
      else if (char === "#" && this.#afterSpace(this.#pos)) this.#pos = this.#lineEnd(this.#pos);
      else if (char === "\n") {
        this.#pos++;
        let spaces = 0;
        while (src[this.#pos + spaces] === " ") spaces++;
        const next = src[this.#pos + spaces];
        const closes = next === "]" || next === "}";
        if (
          next !== undefined && next !== "\n" && next !== "\r" && next !== "#" && !closes && spaces <= parent
        ) {
          this.#unclosed(open, this.#pos + spaces);
        }
      } else if (char === undefined) this.#unclosed(open, this.#pos);
      else return;
    }
  }

  #unclosed(open: number | undefined, at: number): never {
    if (open === undefined) this.#fail(at, "unexpected end of the value");
    const close = this.src[open] === "[" ? "]" : "}";
    this.#fail(
      at,
      `the "${this.src[open]}" opened on line ${
        this.#lineOf(open)
      } is not closed; close it with "${close}" ` +
        `(and indent its continuation lines more than the key it belongs to)`,
    );
  }

  /** A plain scalar from the current position (§7.3.3), folded over lines indented more than `parent`. */
  #plain(parent: number, context: "block" | "flow"): YamlScalar {
    const src = this.src;
    const start = this.#pos;
    const char = src[start];
    if (char === undefined || char === "\n" || char === "\r") this.#fail(start, "a value is missing here");
    if (INDICATORS.includes(char) && !("-?:".includes(char) && !this.#spaceOrEnd(start + 1, context))) {
      this.#fail(start, this.#indicatorMessage(char));
    }
    const lines: string[] = [];
    let end = start;
    let p = start;
    for (;;) {
      // One line's worth: up to ": ", " #", the line's end or (in flow) a flow indicator.
      let q = p;
      for (; q < src.length; q++) {
        const c = src[q]!;
        if (c === "\n" || c === "\r") break;
        if (c === ":" && this.#spaceOrEnd(q + 1, context)) break;
        if (c === "#" && this.#afterSpace(q)) break;
        if (context === "flow" && FLOW_INDICATORS.includes(c)) break;
      }
      const text = src.slice(p, q).replace(/[ \t]+$/, "");
      if (lines.length > 0 && context === "block" && src[q] === ":") {
        this.#fail(
          p,
          `this line is indented more than the keys above it; line it up with them or nest it under a key`,
        );
      }
      lines.push(text);
      end = p + text.length;
      this.#pos = end;
      if (src[q] !== "\n" && src[q] !== "\r") break;
      // The next line continues the scalar if it is indented past the parent and is not a comment.
      const next = this.#peekContinuation(q, parent, context);
      if (next === null) break;
      if (src[next.at] === ":" && this.#spaceOrEnd(next.at + 1, context)) break;
      for (let blank = 0; blank < next.blanks; blank++) lines.push("");
      p = next.at;
    }
    const source = lines.length === 1 ? lines[0]! : foldQuotedLines(lines, []);
    return { kind: "scalar", value: resolvePlain(source), source, range: [start, end] };
  }

  /** The start of the line after the break at `q` that continues a plain scalar, and the blank lines between. */
  #peekContinuation(
    q: number,
    parent: number,
    context: "block" | "flow",
  ): { at: number; blanks: number } | null {
    const src = this.src;
    let blanks = 0;
    let p = q;
    for (;;) {
      p = src[p] === "\r" ? p + 2 : p + 1;
      let spaces = 0;
      while (src[p + spaces] === " " || (spaces > parent && src[p + spaces] === "\t")) spaces++;
      const c = src[p + spaces];
      if (c === undefined) return null;
      if (c === "\n" || c === "\r") {
        blanks++;
        p += spaces;
        continue;
      }
      if (c === "#" || spaces <= parent) return null;
      if (spaces === 0 && /^(?:---|\.\.\.)(?:\s|$)/.test(src.slice(p, p + 4))) return null;
      if (context === "flow" && FLOW_INDICATORS.includes(c)) return null;
      return { at: p + spaces, blanks };
    }
  }

  #indicatorMessage(char: string): string {
    if (char === "@" || char === "`") return `a value cannot start with "${char}"; put it in quotes`;
    if (char === "!") {
      return `YAML tags other than !!str are not supported; remove the tag or quote the value`;
    }
    if (char === "%") return `a value cannot start with "%"; put it in quotes`;
    return `unexpected "${char}"; put the value in quotes if it starts with "${char}"`;
  }

  /** A single- or double-quoted scalar at the current position (§7.3.1, §7.3.2), maybe over several lines. */
  #quoted(parent = -1): YamlScalar {
    const src = this.src;
    const start = this.#pos;
    const quote = src[start];
    const lines: string[] = [];
    const joined: boolean[] = [];
    let line = "";
    let p = start + 1;
    for (;;) {
      const c = src[p];
      if (c === undefined) {
        this.#fail(start, `the ${quote === '"' ? "double" : "single"} quote here is never closed`);
      }
      if (c === quote) {
        if (quote === "'" && src[p + 1] === "'") {
          line += "'";
          p += 2;
          continue;
        }
        p++;
        break;
      }
      if (c === "\n" || (c === "\r" && src[p + 1] === "\n")) {
        lines.push(line);
        joined.push(false);
        line = "";
        p += c === "\r" ? 2 : 1;
        let spaces = 0;
        while (src[p + spaces] === " ") spaces++;
        const next = src[p + spaces];
        if (spaces === 0 && /^(?:---|\.\.\.)(?:[ \t\r\n]|$)/.test(src.slice(p, p + 4))) {
          this.#fail(
            start,
            `the quote here is not closed before the "${src.slice(p, p + 3)}" line that ends the document`,
          );
        }
        if (next !== undefined && next !== "\n" && next !== "\r" && spaces <= parent) {
          this.#fail(
            start,
            `the ${
              quote === '"' ? "double" : "single"
            } quote here is not closed on its line; close it, or indent its next lines more than its key`,
          );
        }
        continue;
      }
      if (quote === '"' && c === "\\") {
        if (src[p + 1] === "\n" || (src[p + 1] === "\r" && src[p + 2] === "\n")) {
          lines.push(line);
          joined.push(true);
          line = "";
          p += src[p + 1] === "\r" ? 3 : 2;
          continue;
        }
        const escape = decodeEscape(src, p + 1);
        if ("error" in escape) this.#fail(p, escape.error);
        line += escape.value;
        p = escape.next;
        continue;
      }
      line += c;
      p++;
    }
    lines.push(line);
    this.#pos = p;
    const value = lines.length === 1 ? line : foldQuotedLines(lines, joined);
    return { kind: "scalar", value, source: value, range: [start, p] };
  }

  #alias(): YamlAlias {
    const start = this.#pos;
    ANCHOR_NAME.lastIndex = start + 1;
    const name = ANCHOR_NAME.exec(this.src)?.[0] ?? "";
    if (name === "") this.#fail(start, `"*" starts an alias and needs a name; put the value in quotes`);
    this.#pos = start + 1 + name.length;
    return { kind: "alias", source: name, target: this.#anchors.get(name), range: [start, this.#pos] };
  }

  /** An anchor (`&name`) and/or the !!str tag before a node; null when there are none. */
  #properties(): { start: number; end: number; anchor?: string; str: boolean } | null {
    const start = this.#pos;
    let anchor: string | undefined;
    let str = false;
    for (let i = 0; i < 2; i++) {
      const at = this.#pos;
      const char = this.src[at];
      if (char === "&" && anchor === undefined) {
        ANCHOR_NAME.lastIndex = at + 1;
        anchor = ANCHOR_NAME.exec(this.src)?.[0] ?? "";
        if (anchor === "") this.#fail(at, `"&" starts an anchor and needs a name; put the value in quotes`);
        this.#pos = at + 1 + anchor.length;
      } else if (char === "!" && !str) {
        const tag = /[^\s,[\]{}]*/y;
        tag.lastIndex = at;
        const name = tag.exec(this.src)![0];
        if (name !== "!!str") {
          this.#fail(at, `YAML tags other than !!str are not supported ("${name}"); remove the tag`);
        }
        str = true;
        this.#pos = at + name.length;
      } else break;
      const after = this.src[this.#pos];
      if (!this.#spaceOrEnd(this.#pos) && after !== "," && after !== "]" && after !== "}") {
        this.#fail(this.#pos, `a space must follow an anchor or tag`);
      }
      this.#skipSpaces();
    }
    return this.#pos === start
      ? null
      : { start, end: this.#pos, ...(anchor === undefined ? {} : { anchor }), str };
  }

  /** Attaches an anchor (registered for later aliases) and the !!str tag to `node`. */
  #apply(props: { start: number; anchor?: string; str: boolean }, node: YamlNode | null): YamlNode {
    const target = node ?? this.#emptyScalar(props.start);
    if (props.anchor !== undefined && target.anchor !== undefined) {
      this.#fail(props.start, `a value can have only one anchor`);
    }
    if (target.kind === "alias") this.#fail(props.start, `an alias cannot have an anchor or tag`);
    if (props.str) {
      if (this.#tagged.has(target)) this.#fail(props.start, `a value can have only one tag`);
      this.#tagged.add(target);
      if (target.kind !== "scalar") {
        this.#fail(props.start, `!!str applies to a single value, not a collection`);
      }
      target.value = target.source;
    }
    if (props.anchor !== undefined) {
      target.anchor = props.anchor;
      this.#anchors.set(props.anchor, target);
    }
    return target;
  }

  #emptyScalar(at: number): YamlScalar {
    return { kind: "scalar", value: null, source: "", range: [at, at] };
  }

  #nested<T>(at: number, parse: () => T): T {
    if (++this.#depth > MAX_DEPTH) {
      this.#fail(
        at,
        `collections are nested too deeply to read; a config needs only a few levels (look for an unclosed "[" or "{")`,
      );
    }
    try {
      return parse();
    } finally {
      this.#depth--;
    }
  }

  // ---- lines and characters ----

  /**
   * The next content (not blank, not a comment) from `from`: on the rest of `from`'s line when `from` is
   * inside a line, else on the lines below. Null at the end of the file.
   */
  #nextLine(from: number): LineStart | null {
    const src = this.src;
    let p = from;
    if (p > this.#lineStartOf(p)) {
      while (src[p] === " " || src[p] === "\t" || src[p] === "\r") p++;
      const c = src[p];
      if (c !== undefined && c !== "\n" && c !== "#") return { at: p, indent: this.#column(p) };
      p = this.#lineEnd(p) + 1;
    }
    for (; p < src.length; p = this.#lineEnd(p) + 1) {
      let spaces = 0;
      while (src[p + spaces] === " ") spaces++;
      let q = p + spaces;
      while (src[q] === " " || src[q] === "\t" || src[q] === "\r") q++;
      const c = src[q];
      if (c === undefined) return null;
      if (c === "\n" || c === "#") continue;
      if (q > p + spaces) this.#fail(p + spaces, "Tabs are not allowed as indentation; indent with spaces");
      return { at: q, indent: spaces };
    }
    return null;
  }

  /** Fails unless only spaces and a comment remain on the current line. */
  #endOfLine(where: string): void {
    this.#skipSpaces();
    const c = this.src[this.#pos];
    if (c === undefined || c === "\n" || c === "\r") return;
    if (c === "#" && this.#afterSpace(this.#pos)) return;
    if (c === ":") {
      this.#fail(
        this.#pos,
        `a key must be a single value on one line; put quotes around the text before ":"`,
      );
    }
    this.#fail(
      this.#pos,
      `unexpected text ${where}; put the whole value in quotes, or start a comment with " #"`,
    );
  }

  #skipSpaces(): void {
    while (this.src[this.#pos] === " " || this.src[this.#pos] === "\t") this.#pos++;
  }

  #atLineEnd(): boolean {
    const c = this.src[this.#pos];
    return c === undefined || c === "\n" || c === "\r" || (c === "#" && this.#afterSpace(this.#pos));
  }

  /** A `- ` block sequence entry at `at`. */
  #isEntry(at: number): boolean {
    return this.src[at] === "-" && this.#spaceOrEnd(at + 1);
  }

  #isMarker(line: LineStart, marker: "---" | "..."): boolean {
    return line.indent === 0 && this.src.startsWith(marker, line.at) && this.#spaceOrEnd(line.at + 3);
  }

  /** Whether `at` holds a space, tab, line break or the end (or, in flow context, a flow indicator). */
  #spaceOrEnd(at: number, context: "block" | "flow" = "block"): boolean {
    const c = this.src[at];
    return c === undefined || c === " " || c === "\t" || c === "\n" || c === "\r" ||
      (context === "flow" && FLOW_INDICATORS.includes(c));
  }

  /** Whether the character before `at` is a space or tab (or `at` starts a line): a "#" there starts a comment. */
  #afterSpace(at: number): boolean {
    const c = this.src[at - 1];
    return c === undefined || c === " " || c === "\t" || c === "\n";
  }

  #lineEnd(at: number): number {
    const end = this.src.indexOf("\n", at);
    return end === -1 ? this.src.length : end;
  }

  #lineStartOf(at: number): number {
    return this.src.lastIndexOf("\n", at - 1) + 1;
  }

  #column(at: number): number {
    return at - this.#lineStartOf(at);
  }

  #lineOf(at: number): number {
    let line = 1;
    for (let p = this.src.indexOf("\n"); p !== -1 && p < at; p = this.src.indexOf("\n", p + 1)) line++;
    return line;
  }

  #fail(at: number, message: string): never {
    throw new SyntaxFailure(at, message);
  }
}
