// YAML 1.2 scalars for lib/config/yaml.ts: the core schema's reading of plain text (null, bool, int, float,
// else string; YAML 1.2.2 §10.3.2), double-quoted escapes (§5.7), line folding inside quoted scalars (§6.5) and
// the content of literal and folded block scalars (§8.1). Pure functions on strings; positions and errors
// stay in yaml.ts.

import { trimEndOf } from "./trim.ts";

/** A scalar's value once resolved: what the config reader checks types against. */
export type ScalarValue = string | number | boolean | null;

const NULL = /^(?:~|null|Null|NULL)?$/;
const BOOL = /^(?:true|True|TRUE|false|False|FALSE)$/;
const INT = /^[-+]?[0-9]+$/;
const OCT = /^0o[0-7]+$/;
const HEX = /^0x[0-9a-fA-F]+$/;
const FLOAT = /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$/;
const INF = /^[-+]?\.(?:inf|Inf|INF)$/;
const NAN = /^\.(?:nan|NaN|NAN)$/;

/** The core schema's value of a plain (unquoted) scalar: `~` is null, `0x1F` is 31, `yes` stays a string. */
export function resolvePlain(text: string): ScalarValue {
  if (NULL.test(text)) return null;
  if (BOOL.test(text)) return text[0] === "t" || text[0] === "T";
  if (INT.test(text)) return Number(text);
  if (OCT.test(text)) return parseInt(text.slice(2), 8);
  if (HEX.test(text)) return parseInt(text.slice(2), 16);
  if (FLOAT.test(text)) return Number(text);
  if (INF.test(text)) return text[0] === "-" ? -Infinity : Infinity;
  if (NAN.test(text)) return NaN;
  return text;
}

/** Single-character escapes of double-quoted scalars (§5.7), besides \x, \u and \U. */
const ESCAPES: Record<string, string> = {
  "0": "\0",
  "a": "\x07",
  "b": "\b",
  "t": "\t",
  "\t": "\t",
  "n": "\n",
  "v": "\v",
  "f": "\f",
  "r": "\r",
  "e": "\x1b",
  " ": " ",
  '"': '"',
  "/": "/",
  "\\": "\\",
  "N": "\u0085",
  "_": "\u00a0",
  "L": "\u2028",
  "P": "\u2029",
};
const HEX_ESCAPE_LENGTH: Record<string, number> = { x: 2, u: 4, U: 8 };

/**
 * Decodes one escape of a double-quoted scalar, `text[at]` being the character after the backslash. Returns
 * the decoded text and the index after the escape, or a message naming what is wrong.
 */
export function decodeEscape(text: string, at: number): { value: string; next: number } | { error: string } {
  const char = text[at] ?? "";
  const simple = ESCAPES[char];
  if (simple !== undefined) return { value: simple, next: at + 1 };
  const length = HEX_ESCAPE_LENGTH[char];
  if (length === undefined) {
    return { error: `unknown escape "\\${char}" in a double-quoted value (write "\\\\" for a backslash)` };
  }
  const digits = text.slice(at + 1, at + 1 + length);
  const code = /^[0-9a-fA-F]+$/.test(digits) && digits.length === length ? parseInt(digits, 16) : NaN;
  if (!(code <= 0x10ffff)) {
    return { error: `"\\${char}" must be followed by ${length} hex digits of a character` };
  }
  return { value: String.fromCodePoint(code), next: at + 1 + length };
}

/**
 * Joins the lines of a multi-line quoted scalar (§6.5 flow folding): each line trimmed where it meets a
 * break (the first line's start and the last line's end are kept), one break between two lines becomes a
 * space, and each empty line between them a "\n". `joined[i]` says the break after line i was escaped with a
 * backslash (double quotes only): no space is added there.
 */
export function foldQuotedLines(lines: string[], joined: boolean[]): string {
  let out = "";
  let empties = 0;
  for (let i = 0; i < lines.length; i++) {
    const first = i === 0;
    const last = i === lines.length - 1;
    let line = lines[i]!;
    if (!first) line = line.replace(/^[ \t]+/, "");
    if (!last && !joined[i]) line = trimEndOf(line, " \t");
    if (!first && !last && line === "") {
      empties++;
      continue;
    }
    if (!first) out += empties > 0 ? "\n".repeat(empties) : joined[i - 1 - empties] ? "" : " ";
    empties = 0;
    out += line;
  }
  return out;
}

/** How a block scalar's final line breaks are kept (§8.1.1.2): `-` strip, none clip, `+` keep. */
export type Chomping = "strip" | "clip" | "keep";

/**
 * The value of a block scalar from its content lines, indentation already removed ("" for an empty line):
 * literal (`|`) keeps every line break, folded (`>`) joins lines of text with a space, keeping breaks around
 * more-indented lines and empty ones. `endsWithBreak` says the last line had a line break after it.
 */
export function blockScalarValue(
  lines: string[],
  options: { folded: boolean; chomping: Chomping; endsWithBreak: boolean },
): string {
  let end = lines.length;
  while (end > 0 && lines[end - 1] === "") end--;
  const body = lines.slice(0, end);
  const trailing = lines.length - end;
  let out = "";
  if (!options.folded) out = body.join("\n");
  else {
    let previous: "none" | "text" | "indented" = "none";
    let empties = 0;
    for (const line of body) {
      if (line === "") {
        empties++;
        continue;
      }
      const kind = /^[ \t]/.test(line) ? "indented" : "text";
      if (previous === "none") out += "\n".repeat(empties);
      else if (previous === "text" && kind === "text") out += empties > 0 ? "\n".repeat(empties) : " ";
      else out += "\n".repeat(empties + 1);
      out += line;
      previous = kind;
      empties = 0;
    }
  }
  if (options.chomping === "strip") return out;
  // Every line but the last ends with a break; the last one does when `endsWithBreak`.
  const lastBody = body.length > 0 && (end < lines.length || options.endsWithBreak) ? "\n" : "";
  if (options.chomping === "clip") return out + lastBody;
  // With no text at all, each line break counts, and at least one when there is a line (as the yaml package
  // reads "|+" followed by blank lines).
  if (body.length === 0) {
    return "\n".repeat(Math.max(trailing - (options.endsWithBreak ? 0 : 1), Math.min(trailing, 1)));
  }
  const trailingBreaks = Math.max(0, trailing - (options.endsWithBreak ? 0 : 1));
  return out + lastBody + "\n".repeat(trailingBreaks);
}
