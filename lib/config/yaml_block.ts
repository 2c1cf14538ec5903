// Block structure for nexo's YAML reader (YAML 1.2 §8, §9): the document and its markers, indented mappings
// and lists, implicit keys, literal and folded block scalars. Everything on one line inside them (scalars,
// [ ] and { }) is yaml_flow.ts's.

import type { YamlMap, YamlNode, YamlPair, YamlScalar, YamlSeq } from "./yaml.ts";
import { blockScalarValue, type Chomping, resolvePlain } from "./yaml_scalar.ts";
import { FlowReader } from "./yaml_flow.ts";
import { ANCHOR_NAME, INDICATORS } from "./yaml_source.ts";
import { trimEndOf, withoutComment } from "./trim.ts";

const COMPLEX_KEY =
  `complex mapping keys ("? ") are not supported; write the key as a plain or quoted string`;

export class BlockReader extends FlowReader {
  document(): YamlNode | null {
    const lone = /\r(?!\n)/.exec(this.src);
    if (lone) {
      this.fail(
        lone.index,
        "a carriage return without a line feed; save the file with LF or CRLF line ends",
      );
    }
    if (this.src.startsWith("\ufeff")) this.pos = 1;
    let line = this.nextLine(this.pos);
    // A "%YAML 1.2" line says what nexo reads anyway; 1.1 would change what yes/no mean, and %TAG is unused.
    while (line && this.src[line.at] === "%" && line.indent === 0) {
      const directive = withoutComment(this.src.slice(line.at, this.lineEnd(line.at))).trim();
      if (!/^%YAML[ \t]+1\.2$/.test(directive)) {
        this.fail(
          line.at,
          `nexo reads YAML 1.2 and no other directive; remove the line "${directive.slice(0, 40)}"`,
        );
      }
      line = this.nextLine(this.lineEnd(line.at));
    }
    let root: YamlNode | null = null;
    if (line && this.isMarker(line, "---")) {
      this.pos = line.at + 3;
      root = this.afterMarker();
    } else if (line && !this.isMarker(line, "...")) root = this.blockNode(line.at, -1, true);
    line = this.nextLine(this.pos);
    if (line && this.isMarker(line, "...")) {
      this.pos = line.at + 3;
      this.endOfLine("after the document end marker");
      line = this.nextLine(this.pos);
    }
    if (line && this.isMarker(line, "---")) {
      this.fail(
        line.at,
        `the file holds more than one YAML document (a "---" line starts the next); keep only one`,
      );
    }
    if (line) {
      this.fail(
        line.at,
        `this line is indented less than the value it belongs to, or does not continue it; check its indentation`,
      );
    }
    return root;
  }

  /** The node after a `---` on its line, or on the lines below. */
  protected afterMarker(): YamlNode | null {
    this.skipSpaces();
    if (!this.atLineEnd()) return this.blockNode(this.pos, -1, false);
    const line = this.nextLine(this.pos);
    return line && !this.isMarker(line, "---") && !this.isMarker(line, "...")
      ? this.blockNode(line.at, -1, true)
      : null;
  }

  // ---- block structure (§8.2) ----

  /**
   * The node starting at `at` in block context, its parent at column `parent` (-1 for the top). `compact`
   * allows a mapping or list to start there: not on a key's line (`key: a: b`), yes after `- `.
   */
  protected blockNode(at: number, parent: number, compact: boolean): YamlNode | null {
    this.pos = at;
    // A mapping's indentation is where its first line starts, before any anchor of its first key.
    const col = this.column(at);
    const props = this.properties();
    if (props) {
      this.skipSpaces();
      if (this.atLineEnd()) {
        const line = this.nextLine(this.pos);
        const below = line !== null && !this.isMarker(line, "---") && !this.isMarker(line, "...");
        const node = below && (line.indent > parent || (line.indent === parent && this.isEntry(line.at)))
          ? this.blockNode(line.at, line.indent === parent ? parent - 1 : parent, true)
          : this.emptyScalar(props.end);
        return this.apply(props, node);
      }
      at = this.pos;
    }
    const char = this.src[at];
    let node: YamlNode;
    if (this.isEntry(at)) {
      if (props) this.fail(props.start, `an anchor or tag of a list goes on the line above the list`);
      if (!compact) {
        this.fail(at, `a list cannot start on the line of its key; start it on the next line, indented`);
      }
      node = this.nested(at, () => this.sequence(at, col));
    } else if (char === "?" && this.spaceOrEnd(at + 1)) {
      this.fail(at, COMPLEX_KEY);
    } else if (this.keyEnd(at) !== null) {
      if (!compact) {
        this.fail(
          at,
          `a mapping cannot start on the line of its key ("key: a: b"); put it on the next line, indented`,
        );
      }
      const map = this.nested(at, () => this.mapping(at, col));
      // "&a key: value" anchors the key (YAML 1.2 §8.2.2: properties on the key's line belong to the key).
      if (props) this.apply(props, map.items[0]!.key);
      return map;
    } else if (char === "|" || char === ">") {
      node = this.blockScalar(at, parent);
    } else {
      node = this.flowNode(parent, "block");
      this.endOfLine("after a value");
    }
    return props ? this.apply(props, node) : node;
  }

  protected sequence(at: number, col: number): YamlSeq {
    const start = at;
    const items: (YamlNode | null)[] = [];
    for (;;) {
      this.pos = at + 1;
      this.skipSpaces();
      if (this.atLineEnd()) {
        const line = this.nextLine(this.pos);
        items.push(line && line.indent > col ? this.blockNode(line.at, col, true) : null);
      } else items.push(this.blockNode(this.pos, col, true));
      const next = this.nextLine(this.pos);
      if (!next || next.indent < col) break;
      if (next.indent > col) this.fail(next.at, `this line is indented more than the list items above it`);
      if (!this.isEntry(next.at)) break;
      at = next.at;
    }
    return { kind: "seq", items, range: [start, this.pos] };
  }

  protected mapping(at: number, col: number): YamlMap {
    const start = at;
    const items: YamlPair[] = [];
    for (;;) {
      // The first key's anchor or tag was read by #blockNode; a later key's is read here.
      this.pos = at;
      const props = at === start ? null : this.properties();
      if (props) this.skipSpaces();
      if (this.keyEnd(this.pos) === null) {
        this.fail(
          this.pos,
          this.src[this.pos] === "?" && this.spaceOrEnd(this.pos + 1)
            ? COMPLEX_KEY
            : `expected "key: value" here, at the indentation of the keys above`,
        );
      }
      const key = this.key(this.pos);
      if (props) this.apply(props, key);
      this.skipSpaces();
      let value: YamlNode | null;
      if (this.atLineEnd()) {
        const line = this.nextLine(this.pos);
        if (line && line.indent > col) value = this.blockNode(line.at, col, true);
        // A list may sit at its key's indentation (§8.2.2: "key:\n- a").
        else if (line && line.indent === col && this.isEntry(line.at)) {
          value = this.blockNode(line.at, col - 1, true);
        } else value = null;
      } else value = this.blockNode(this.pos, col, false);
      items.push({ key, value });
      const next = this.nextLine(this.pos);
      if (!next || next.indent < col || this.isMarker(next, "---") || this.isMarker(next, "...")) break;
      if (next.indent > col) {
        this.fail(
          next.at,
          this.src[next.at] === ":"
            ? `an empty key (a line starting with ":") is not supported here; write the key before the ":"`
            : `this line is indented more than the keys above it; line it up with them or nest it under a key`,
        );
      }
      if (this.isEntry(next.at)) {
        this.fail(next.at, `a list item among keys; put the list under a key ("key:" on the line above it)`);
      }
      at = next.at;
    }
    return { kind: "map", items, range: [start, this.pos] };
  }

  /** Reads the implicit key at `at` (`#keyEnd` found its colon) and moves past the colon. */
  protected key(at: number): YamlNode {
    const colon = this.keyEnd(at)!;
    this.pos = at;
    const char = this.src[at];
    let key: YamlNode;
    if (colon === at) key = this.emptyScalar(at);
    else if (char === '"' || char === "'") key = this.quoted();
    else if (char === "*") key = this.alias();
    else {
      const source = trimEndOf(this.src.slice(at, colon), " \t");
      key = { kind: "scalar", value: resolvePlain(source), source, range: [at, at + source.length] };
    }
    this.pos = colon + 1;
    return key;
  }

  /**
   * The offset of the colon ending an implicit key that starts at `at` on this line (§7.4: a key and its
   * ":" on one line, the ":" followed by a space or the line's end), or null when the line holds no key.
   */
  protected keyEnd(at: number): number | null {
    const src = this.src;
    const char = src[at];
    let p = at;
    if (char === '"' || char === "'") {
      p = this.quoteEndOnLine(at);
      if (p < 0) return null;
      while (src[p] === " " || src[p] === "\t") p++;
      return src[p] === ":" && this.spaceOrEnd(p + 1) ? p : null;
    }
    if (char === "[" || char === "{") {
      const line = withoutComment(src.slice(at, this.lineEnd(at)));
      if (/[\]}][ \t]*:(?:[ \t]|$)/.test(line)) {
        this.fail(
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
      return p > at + 1 && src[p] === ":" && this.spaceOrEnd(p + 1) ? p : null;
    }
    if (char === undefined) return null;
    // An empty key (": value") is read as null, as the yaml package did; the config reader reports it.
    if (char === ":" && this.spaceOrEnd(at + 1)) return at;
    if (INDICATORS.includes(char) && !("-?:".includes(char) && !this.spaceOrEnd(at + 1))) return null;
    for (p = at + 1; p < src.length && src[p] !== "\n" && src[p] !== "\r"; p++) {
      if (src[p] === ":" && this.spaceOrEnd(p + 1)) return p;
      if (src[p] === "#" && (src[p - 1] === " " || src[p - 1] === "\t")) return null;
    }
    return null;
  }

  /** Offset after the closing quote of the quoted scalar at `at` when it closes on the same line, else -1. */
  protected quoteEndOnLine(at: number): number {
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
  protected blockScalar(at: number, parent: number): YamlScalar {
    const src = this.src;
    let p = at + 1;
    let chomping: Chomping = "clip";
    let explicit = 0;
    for (let i = 0; i < 2; i++) {
      if ((src[p] === "-" || src[p] === "+") && chomping === "clip") {
        chomping = src[p++] === "-" ? "strip" : "keep";
      } else if (src[p]! >= "1" && src[p]! <= "9" && explicit === 0) explicit = Number(src[p++]);
    }
    this.pos = p;
    this.endOfLine(
      `after "${src.slice(at, p)}" (a block scalar's header takes only - or + and an indentation digit)`,
    );
    // Content lines: from the line after the header to the first non-blank one indented too little (§8.1.1.1:
    // without an indentation digit, the first non-blank line sets the indentation).
    let indent = explicit > 0 ? Math.max(parent, 0) + explicit : -1;
    const lines: string[] = [];
    let endsWithBreak = false;
    let leadingSpaces = 0;
    let end = this.lineEnd(this.pos);
    for (let lineStart = end + 1; lineStart < src.length;) {
      const lineEnd = this.lineEnd(lineStart);
      const raw = src.slice(lineStart, lineEnd).replace(/\r$/, "");
      let spaces = 0;
      while (raw[spaces] === " ") spaces++;
      // Only spaces: an empty line, unless (once the indentation is known) it has more spaces than that.
      const blank = spaces === raw.length && (indent < 0 || spaces <= indent);
      if (indent < 0 && !blank) {
        if (spaces <= parent) break;
        if (leadingSpaces > spaces) {
          this.fail(
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
    this.pos = end;
    const value = blockScalarValue(lines, { folded: src[at] === ">", chomping, endsWithBreak });
    return { kind: "scalar", value, source: value, range: [at, end] };
  }
}
