// Flow syntax for nexo's YAML reader (YAML 1.2 §7): [ ] and { } collections, plain, single- and double-quoted
// scalars, aliases and the anchor and !!str properties before a node. Block structure is yaml_block.ts's.

import type { YamlAlias, YamlMap, YamlNode, YamlPair, YamlScalar, YamlSeq } from "./yaml.ts";
import { decodeEscape, foldQuotedLines, resolvePlain } from "./yaml_scalar.ts";
import { ANCHOR_NAME, FLOW_INDICATORS, INDICATORS, MAX_DEPTH, YamlSource } from "./yaml_source.ts";
import { trimEndOf } from "./trim.ts";

export class FlowReader extends YamlSource {
  protected depth = 0;
  protected readonly anchors = new Map<string, YamlNode>();
  protected readonly tagged = new WeakSet<YamlNode>();

  /** A scalar, alias or [ ] / { } collection at the current position; `context` says where it may end. */
  protected flowNode(parent: number, context: "block" | "flow"): YamlNode {
    const props = context === "flow" ? this.properties() : null;
    if (props) this.skipFlowSpace(parent);
    const at = this.pos;
    const char = this.src[at];
    let node: YamlNode;
    if (props && (char === "," || char === "]" || char === "}" || char === ":")) node = this.emptyScalar(at);
    else if (char === "[" || char === "{") node = this.nested(at, () => this.flowCollection(parent));
    else if (char === '"' || char === "'") node = this.quoted(parent);
    else if (char === "*") node = this.alias();
    else node = this.plain(parent, context);
    return props ? this.apply(props, node) : node;
  }

  protected flowCollection(parent: number): YamlMap | YamlSeq {
    const open = this.pos;
    const isSeq = this.src[open] === "[";
    const close = isSeq ? "]" : "}";
    const items: (YamlNode | null)[] = [];
    const pairs: YamlPair[] = [];
    this.pos++;
    for (;;) {
      this.skipFlowSpace(parent, open);
      if (this.src[this.pos] === close) break;
      if (this.src[this.pos] === ",") this.fail(this.pos, `an empty entry between commas; remove one ","`);
      const entry = this.src[this.pos] === ":" && !isSeq ? null : this.flowNode(parent, "flow");
      this.skipFlowSpace(parent, open);
      if (isSeq && this.src[this.pos] === ":") {
        // "[a: 1]" holds a mapping of one pair (§7.4.1), its key on one line.
        if (entry !== null && this.src.slice(entry.range[0], entry.range[1]).includes("\n")) {
          this.fail(entry.range[0], `a key must be on one line; join its lines or quote it`);
        }
        this.pos++;
        this.skipFlowSpace(parent, open);
        const end = this.src[this.pos];
        const value = end === "," || end === "]" ? null : this.flowNode(parent, "flow");
        this.skipFlowSpace(parent, open);
        const key = entry ?? this.emptyScalar(this.pos);
        items.push({ kind: "map", items: [{ key, value }], range: [key.range[0], this.pos] });
      } else if (isSeq) items.push(entry);
      else {
        let value: YamlNode | null = null;
        if (this.src[this.pos] === ":") {
          this.pos++;
          this.skipFlowSpace(parent, open);
          if (this.src[this.pos] !== "," && this.src[this.pos] !== "}") {
            value = this.flowNode(parent, "flow");
          }
          this.skipFlowSpace(parent, open);
        }
        const key = entry ?? this.emptyScalar(this.pos);
        pairs.push({ key, value });
      }
      if (this.src[this.pos] === ",") this.pos++;
      else if (this.src[this.pos] !== close) {
        this.fail(
          this.pos,
          `expected "," or "${close}" in the ${isSeq ? "[ ] list" : "{ } mapping"} opened on line ${
            this.lineOf(open)
          }`,
        );
      }
    }
    this.pos++;
    const range: [number, number] = [open, this.pos];
    return isSeq ? { kind: "seq", items, range } : { kind: "map", items: pairs, range };
  }

  /**
   * Skips spaces, line breaks and comments inside a [ ] or { } (or a multi-line quoted scalar) opened at
   * `open`; fails at the end of the file, or on a line not indented past `parent` (§7: flow content in a
   * block collection must be indented more than it).
   */
  protected skipFlowSpace(parent: number, open?: number): void {
    const src = this.src;
    for (;;) {
      const char = src[this.pos];
      if (char === " " || char === "\t" || char === "\r") this.pos++;
      else if (char === "#" && this.afterSpace(this.pos)) this.pos = this.lineEnd(this.pos);
      else if (char === "\n") {
        this.pos++;
        let spaces = 0;
        while (src[this.pos + spaces] === " ") spaces++;
        const next = src[this.pos + spaces];
        const closes = next === "]" || next === "}";
        if (
          next !== undefined && next !== "\n" && next !== "\r" && next !== "#" && !closes && spaces <= parent
        ) {
          this.unclosed(open, this.pos + spaces);
        }
      } else if (char === undefined) this.unclosed(open, this.pos);
      else return;
    }
  }

  protected unclosed(open: number | undefined, at: number): never {
    if (open === undefined) this.fail(at, "unexpected end of the value");
    const close = this.src[open] === "[" ? "]" : "}";
    this.fail(
      at,
      `the "${this.src[open]}" opened on line ${this.lineOf(open)} is not closed; close it with "${close}" ` +
        `(and indent its continuation lines more than the key it belongs to)`,
    );
  }

  /** A plain scalar from the current position (§7.3.3), folded over lines indented more than `parent`. */
  protected plain(parent: number, context: "block" | "flow"): YamlScalar {
    const src = this.src;
    const start = this.pos;
    const char = src[start];
    if (char === undefined || char === "\n" || char === "\r") this.fail(start, "a value is missing here");
    if (INDICATORS.includes(char) && !("-?:".includes(char) && !this.spaceOrEnd(start + 1, context))) {
      this.fail(start, this.indicatorMessage(char));
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
        if (c === ":" && this.spaceOrEnd(q + 1, context)) break;
        if (c === "#" && this.afterSpace(q)) break;
        if (context === "flow" && FLOW_INDICATORS.includes(c)) break;
      }
      const text = trimEndOf(src.slice(p, q), " \t");
      if (lines.length > 0 && context === "block" && src[q] === ":") {
        this.fail(
          p,
          `this line is indented more than the keys above it; line it up with them or nest it under a key`,
        );
      }
      lines.push(text);
      end = p + text.length;
      this.pos = end;
      if (src[q] !== "\n" && src[q] !== "\r") break;
      // The next line continues the scalar if it is indented past the parent and is not a comment.
      const next = this.peekContinuation(q, parent, context);
      if (next === null) break;
      if (src[next.at] === ":" && this.spaceOrEnd(next.at + 1, context)) break;
      for (let blank = 0; blank < next.blanks; blank++) lines.push("");
      p = next.at;
    }
    const source = lines.length === 1 ? lines[0]! : foldQuotedLines(lines, []);
    return { kind: "scalar", value: resolvePlain(source), source, range: [start, end] };
  }

  /** The start of the line after the break at `q` that continues a plain scalar, and the blank lines between. */
  protected peekContinuation(
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

  protected indicatorMessage(char: string): string {
    if (char === "@" || char === "`") return `a value cannot start with "${char}"; put it in quotes`;
    if (char === "!") {
      return `YAML tags other than !!str are not supported; remove the tag or quote the value`;
    }
    if (char === "%") return `a value cannot start with "%"; put it in quotes`;
    return `unexpected "${char}"; put the value in quotes if it starts with "${char}"`;
  }

  /** A single- or double-quoted scalar at the current position (§7.3.1, §7.3.2), maybe over several lines. */
  protected quoted(parent = -1): YamlScalar {
    const src = this.src;
    const start = this.pos;
    const quote = src[start];
    const lines: string[] = [];
    const joined: boolean[] = [];
    let line = "";
    let p = start + 1;
    for (;;) {
      const c = src[p];
      if (c === undefined) {
        this.fail(start, `the ${quote === '"' ? "double" : "single"} quote here is never closed`);
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
          this.fail(
            start,
            `the quote here is not closed before the "${src.slice(p, p + 3)}" line that ends the document`,
          );
        }
        if (next !== undefined && next !== "\n" && next !== "\r" && spaces <= parent) {
          this.fail(
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
        if ("error" in escape) this.fail(p, escape.error);
        line += escape.value;
        p = escape.next;
        continue;
      }
      line += c;
      p++;
    }
    lines.push(line);
    this.pos = p;
    const value = lines.length === 1 ? line : foldQuotedLines(lines, joined);
    return { kind: "scalar", value, source: value, range: [start, p] };
  }

  protected alias(): YamlAlias {
    const start = this.pos;
    ANCHOR_NAME.lastIndex = start + 1;
    const name = ANCHOR_NAME.exec(this.src)?.[0] ?? "";
    if (name === "") this.fail(start, `"*" starts an alias and needs a name; put the value in quotes`);
    this.pos = start + 1 + name.length;
    return { kind: "alias", source: name, target: this.anchors.get(name), range: [start, this.pos] };
  }

  /** An anchor (`&name`) and/or the !!str tag before a node; null when there are none. */
  protected properties(): { start: number; end: number; anchor?: string; str: boolean } | null {
    const start = this.pos;
    let anchor: string | undefined;
    let str = false;
    for (let i = 0; i < 2; i++) {
      const at = this.pos;
      const char = this.src[at];
      if (char === "&" && anchor === undefined) {
        ANCHOR_NAME.lastIndex = at + 1;
        anchor = ANCHOR_NAME.exec(this.src)?.[0] ?? "";
        if (anchor === "") this.fail(at, `"&" starts an anchor and needs a name; put the value in quotes`);
        this.pos = at + 1 + anchor.length;
      } else if (char === "!" && !str) {
        const tag = /[^\s,[\]{}]*/y;
        tag.lastIndex = at;
        const name = tag.exec(this.src)![0];
        if (name !== "!!str") {
          this.fail(at, `YAML tags other than !!str are not supported ("${name}"); remove the tag`);
        }
        str = true;
        this.pos = at + name.length;
      } else break;
      const after = this.src[this.pos];
      if (!this.spaceOrEnd(this.pos) && after !== "," && after !== "]" && after !== "}") {
        this.fail(this.pos, `a space must follow an anchor or tag`);
      }
      this.skipSpaces();
    }
    return this.pos === start
      ? null
      : { start, end: this.pos, ...(anchor === undefined ? {} : { anchor }), str };
  }

  /** Attaches an anchor (registered for later aliases) and the !!str tag to `node`. */
  protected apply(props: { start: number; anchor?: string; str: boolean }, node: YamlNode | null): YamlNode {
    const target = node ?? this.emptyScalar(props.start);
    if (props.anchor !== undefined && target.anchor !== undefined) {
      this.fail(props.start, `a value can have only one anchor`);
    }
    if (target.kind === "alias") this.fail(props.start, `an alias cannot have an anchor or tag`);
    if (props.str) {
      if (this.tagged.has(target)) this.fail(props.start, `a value can have only one tag`);
      this.tagged.add(target);
      if (target.kind !== "scalar") {
        this.fail(props.start, `!!str applies to a single value, not a collection`);
      }
      target.value = target.source;
    }
    if (props.anchor !== undefined) {
      target.anchor = props.anchor;
      this.anchors.set(props.anchor, target);
    }
    return target;
  }

  protected emptyScalar(at: number): YamlScalar {
    return { kind: "scalar", value: null, source: "", range: [at, at] };
  }

  protected nested<T>(at: number, parse: () => T): T {
    if (++this.depth > MAX_DEPTH) {
      this.fail(
        at,
        `collections are nested too deeply to read; a config needs only a few levels (look for an unclosed "[" or "{")`,
      );
    }
    try {
      return parse();
    } finally {
      this.depth--;
    }
  }
}
