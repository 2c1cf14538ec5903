// The text under nexo's YAML reader (lib/config/yaml.ts): lines, indentation, the characters that end
// tokens, and the syntax error that stops reading. Knows no YAML structure; yaml_flow.ts and yaml_block.ts
// build on it.

/**
 * Collections nested deeper than this are refused: a config needs a few levels, and each level is a
 * recursive call (an unclosed "[" repeated thousands of times would otherwise overflow the stack).
 */
export const MAX_DEPTH = 500;

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

/** Thrown by the reader at the first syntax error; parseYaml() turns it into the document's error. */
export class SyntaxFailure extends Error {
  constructor(readonly offset: number, message: string) {
    super(message);
  }
}

/** Characters that cannot start a plain scalar (§7.3.3 c-indicator), `-?:` only when a space follows. */
export const INDICATORS = "-?:,[]{}#&*!|>'\"%@`";
export const FLOW_INDICATORS = ",[]{}";
export const ANCHOR_NAME = /[^\s,[\]{}]+/y;

/** A line's first non-blank character and its column (its indentation). */
export interface LineStart {
  at: number;
  indent: number;
}

/** The reading position over a YAML text, and what every part of the reader asks of the text. */
export class YamlSource {
  protected pos = 0;

  constructor(protected readonly src: string) {}

  /**
   * The next content (not blank, not a comment) from `from`: on the rest of `from`'s line when `from` is
   * inside a line, else on the lines below. Null at the end of the file.
   */
  protected nextLine(from: number): LineStart | null {
    const src = this.src;
    let p = from;
    if (p > this.lineStartOf(p)) {
      while (src[p] === " " || src[p] === "\t" || src[p] === "\r") p++;
      const c = src[p];
      if (c !== undefined && c !== "\n" && c !== "#") return { at: p, indent: this.column(p) };
      p = this.lineEnd(p) + 1;
    }
    for (; p < src.length; p = this.lineEnd(p) + 1) {
      let spaces = 0;
      while (src[p + spaces] === " ") spaces++;
      let q = p + spaces;
      while (src[q] === " " || src[q] === "\t" || src[q] === "\r") q++;
      const c = src[q];
      if (c === undefined) return null;
      if (c === "\n" || c === "#") continue;
      if (q > p + spaces) this.fail(p + spaces, "Tabs are not allowed as indentation; indent with spaces");
      return { at: q, indent: spaces };
    }
    return null;
  }

  /** Fails unless only spaces and a comment remain on the current line. */
  protected endOfLine(where: string): void {
    this.skipSpaces();
    const c = this.src[this.pos];
    if (c === undefined || c === "\n" || c === "\r") return;
    if (c === "#" && this.afterSpace(this.pos)) return;
    if (c === ":") {
      this.fail(
        this.pos,
        `a key must be a single value on one line; put quotes around the text before ":"`,
      );
    }
    this.fail(
      this.pos,
      `unexpected text ${where}; put the whole value in quotes, or start a comment with " #"`,
    );
  }

  protected skipSpaces(): void {
    while (this.src[this.pos] === " " || this.src[this.pos] === "\t") this.pos++;
  }

  protected atLineEnd(): boolean {
    const c = this.src[this.pos];
    return c === undefined || c === "\n" || c === "\r" || (c === "#" && this.afterSpace(this.pos));
  }

  /** A `- ` block sequence entry at `at`. */
  protected isEntry(at: number): boolean {
    return this.src[at] === "-" && this.spaceOrEnd(at + 1);
  }

  protected isMarker(line: LineStart, marker: "---" | "..."): boolean {
    return line.indent === 0 && this.src.startsWith(marker, line.at) && this.spaceOrEnd(line.at + 3);
  }

  /** Whether `at` holds a space, tab, line break or the end (or, in flow context, a flow indicator). */
  protected spaceOrEnd(at: number, context: "block" | "flow" = "block"): boolean {
    const c = this.src[at];
    return c === undefined || c === " " || c === "\t" || c === "\n" || c === "\r" ||
      (context === "flow" && FLOW_INDICATORS.includes(c));
  }

  /** Whether the character before `at` is a space or tab (or `at` starts a line): a "#" there starts a comment. */
  protected afterSpace(at: number): boolean {
    const c = this.src[at - 1];
    return c === undefined || c === " " || c === "\t" || c === "\n";
  }

  protected lineEnd(at: number): number {
    const end = this.src.indexOf("\n", at);
    return end === -1 ? this.src.length : end;
  }

  protected lineStartOf(at: number): number {
    return this.src.lastIndexOf("\n", at - 1) + 1;
  }

  protected column(at: number): number {
    return at - this.lineStartOf(at);
  }

  /** The 1-based line of `at`, for messages. */
  protected lineOf(at: number): number {
    return new LinePositions(this.src).positionAt(at).line;
  }

  protected fail(at: number, message: string): never {
    throw new SyntaxFailure(at, message);
  }
}
