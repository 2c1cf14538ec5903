// Typed, position-aware reads from a parsed YAML document for parse.ts and routes.ts: a wrong type or bad
// value becomes a ConfigIssue at the offending node and reading carries on, so one run reports every issue.
// Knows YAML nodes and nexo's value kinds (string, bool, duration, size); not which keys exist where.

import {
  isAlias,
  isMap,
  isScalar,
  isSeq,
  type LinePositions,
  type YamlNode as Node,
  type YamlScalar as Scalar,
} from "./yaml.ts";
import type { ConfigIssue } from "./errors.ts";
import type { SourcePosition } from "./types.ts";
import { parseDuration } from "./duration.ts";
import { parseSize } from "./size.ts";
import { didYouMean } from "./suggest.ts";

/** One `key: value` of a mapping, with what error messages need. */
export interface Field {
  /** The key as written. */
  name: string;
  /** The key's path from the top of the file, for messages: `proxies."api.example.com".upstream`. */
  path: string;
  keyNode: Node;
  /** Where to report a bad value: the value's node, or the key's when the value is empty. */
  at: Node;
  /** The value with aliases resolved; null when the key has no value (`key:`, `key: null` or `key: ~`). */
  value: Node | null;
}

/** One string of a list, with what error messages need. */
export interface ListItem {
  value: string;
  node: Node;
  /** The item's path: `acme.dns_resolvers[1]`. */
  path: string;
}

/** Options for `readMapping()`. */
export interface MappingOptions {
  /** Keys allowed here; null accepts any key (the hosts under `proxies`). */
  known: readonly string[] | null;
  /** What the mapping should be, for the wrong-type message: "a mapping of settings". */
  expected: string;
  /** Extra text for an unknown key, e.g. where the key belongs instead; falls back to "did you mean". */
  hintUnknown?: (name: string) => string | null;
  /** The mapping may hold a secret: never quote its values, or its keys unless they look like key names. */
  secret?: boolean;
}

/** Collects issues against one document; every read reports into `issues` instead of throwing, and returns
 * undefined (or null for mappings) for a value it could not read. */
export class Reader {
  readonly issues: ConfigIssue[] = [];

  constructor(
    readonly file: string,
    private readonly lines: LinePositions,
  ) {}

  /** 1-based line and column where `node` starts (line 1, column 1 if the node has no range). */
  positionOf(node: Node): SourcePosition {
    const { line, col } = this.lines.positionAt(node.range[0]);
    return { file: this.file, line, col };
  }

  /** Records an issue at `node`. */
  report(node: Node, message: string): void {
    this.issues.push({ ...this.positionOf(node), message });
  }

  /** Resolves aliases; null for YAML null, empty values and unknown aliases (those reported at `node`). */
  resolve(node: unknown): Node | null {
    if (isAlias(node)) {
      // Resolved by the parser to the last node anchored with that name before it; nothing is expanded, so
      // alias bombs ("billion laughs") cost no more than their text.
      const target = node.target;
      if (target === undefined) {
        const hint = node.source.startsWith(".") ? ` (to write a wildcard, quote it: "*${node.source}")` : "";
        this.report(node, `unknown YAML alias "*${node.source}"${hint}`);
        return null;
      }
      return this.resolve(target);
    }
    if (isScalar(node) && node.value === null) return null;
    return isScalar(node) || isMap(node) || isSeq(node) ? node : null;
  }

  /**
   * Reads a mapping's fields by key, in file order. Reports, and leaves out: non-name keys, keys set twice
   * (naming the first one's line) and, when `known` is given, unknown keys (with a suggestion). Returns null,
   * after reporting at `f.at`, when the value is not a mapping; an empty map when it is empty.
   */
  readMapping(f: Field, options: MappingOptions): Map<string, Field> | null {
    const fields = new Map<string, Field>();
    if (f.value === null) return fields;
    if (!isMap(f.value)) {
      this.report(
        f.at,
        `${f.path || "the config"} must be ${options.expected}, got ${describe(f.value, options.secret)}`,
      );
      return null;
    }
    for (const pair of f.value.items) {
      const keyNode = pair.key;
      const key = this.resolve(keyNode);
      if (!isScalar(key)) {
        this.report(
          keyNode,
          `${f.path || "the config"} has a key that is not a name (keys are words like "upstream")`,
        );
        continue;
      }
      const field = this.makeField(f.path, scalarText(key), keyNode, pair.value);
      const first = fields.get(field.name);
      if (first !== undefined) {
        const line = this.positionOf(first.keyNode).line;
        this.report(keyNode, `${field.path} is set twice (first on line ${line}); remove one of them`);
      } else if (options.known !== null && !options.known.includes(field.name)) {
        this.reportUnknown(field, f.path, options);
      } else {
        fields.set(field.name, field);
      }
    }
    return fields;
  }

  /**
   * Reads a string; undefined when empty, not a string (reported, quoting the value unless `secret`), or
   * holding a control character other than whitespace at either end (reported, never quoting the value).
   * No setting takes one, and an accepted one failed later, outside the config check: a NUL in a path made
   * the file system call throw, a newline in a token made the HTTP header invalid.
   */
  readString(f: Field, options: { secret?: boolean } = {}): string | undefined {
    if (f.value === null) return undefined;
    if (isScalar(f.value) && typeof f.value.value === "string") {
      const control = CONTROL_CHARACTER.exec(f.value.value.trim())?.[0];
      if (control === undefined) return f.value.value;
      const code = control.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0");
      this.report(f.at, `${f.path} contains the control character U+${code}; remove it`);
      return undefined;
    }
    const secret = options.secret ?? false;
    const quoted = secret ? "" : `: ${JSON.stringify(isScalar(f.value) ? scalarText(f.value) : "")}`;
    const hint = isScalar(f.value) ? ` (put it in quotes${quoted})` : "";
    this.report(f.at, `${f.path} must be a string, got ${describe(f.value, secret)}${hint}`);
    return undefined;
  }

  /** Reads true/false; undefined when empty or not a bool (reported; YAML 1.1's yes/no/on/off get a hint). */
  readBool(f: Field): boolean | undefined {
    if (f.value === null) return undefined;
    if (isScalar(f.value) && typeof f.value.value === "boolean") return f.value.value;
    const legacy = isScalar(f.value) && /^(y|n|yes|no|on|off)$/i.test(String(f.value.value));
    const hint = legacy ? " (YAML 1.2 reads yes/no/on/off as strings)" : "";
    this.report(f.at, `${f.path} must be true or false, got ${describe(f.value)}${hint}`);
    return undefined;
  }

  /** Reads a duration in ms (see `parseDuration()`); undefined when empty or invalid (reported). Durations
   * must be at least 1ms: every duration in the config is a timeout or an interval, and 0 would break it. */
  readDuration(f: Field): number | undefined {
    const text = this.readScalarText(f, `a duration like "30s" or "1h30m"`);
    if (text === undefined) return undefined;
    try {
      const ms = parseDuration(text);
      if (ms >= 1) return ms;
      this.report(
        f.at,
        `${f.path} must be at least 1ms, got ${JSON.stringify(text)} (write a duration like "30s")`,
      );
    } catch (error) {
      if (!(error instanceof RangeError)) throw error;
      this.report(f.at, `${f.path}: ${error.message}`);
    }
    return undefined;
  }

  /** Reads a byte size (see `parseSize()`); undefined when empty or invalid (reported). */
  readSize(f: Field): number | undefined {
    const text = this.readScalarText(f, `a size like "10MiB" or a byte count`);
    if (text === undefined) return undefined;
    try {
      return parseSize(text);
    } catch (error) {
      if (!(error instanceof RangeError)) throw error;
      this.report(f.at, `${f.path}: ${error.message}`);
      return undefined;
    }
  }

  /** Reads a string or a number as text (for durations, sizes, ports); undefined when empty or another type
   * (reported as "must be `expected`"). */
  readScalarText(f: Field, expected: string): string | undefined {
    if (f.value === null) return undefined;
    if (isScalar(f.value) && ["string", "number"].includes(typeof f.value.value)) {
      return String(f.value.value);
    }
    this.report(f.at, `${f.path} must be ${expected}, got ${describe(f.value)}`);
    return undefined;
  }

  /** Reads a list of strings as items with their node and `path` (`wildcards[2]`); wrong items are reported
   * and left out. `example` is a valid item, for messages. */
  readStringList(f: Field, example: string): ListItem[] {
    if (f.value === null) return [];
    if (!isSeq(f.value)) {
      const got = describe(f.value);
      this.report(
        f.at,
        `${f.path} must be a list, got ${got} (write each entry on its own line: - ${example})`,
      );
      return [];
    }
    const items: ListItem[] = [];
    f.value.items.forEach((item, i) => {
      const node = item ?? f.at;
      const path = `${f.path}[${i}]`;
      const value = this.resolve(item);
      if (isScalar(value) && typeof value.value === "string") items.push({ value: value.value, node, path });
      else if (!isAlias(item) || value !== null) {
        this.report(node, `${path} must be a string like ${example}, got ${describe(value)}`);
      }
    });
    return items;
  }

  private makeField(parent: string, name: string, keyNode: Node, valueNode: Node | null): Field {
    const value = this.resolve(valueNode);
    const at = value !== null && valueNode !== null ? valueNode : keyNode;
    return { name, path: childPath(parent, name), keyNode, at, value };
  }

  private reportUnknown(field: Field, parent: string, options: MappingOptions): void {
    const known = options.known ?? [];
    const hint = field.name === "<<"
      ? " (YAML merge keys are not supported; write the settings out)"
      : options.hintUnknown?.(field.name) ?? didYouMean(field.name, known);
    const showName = !options.secret || /^[a-z][a-z0-9_-]{0,23}$/i.test(field.name);
    const where = parent === "" ? "at the top level" : `in ${parent}`;
    const what = showName ? `unknown key "${field.name}" ${where}` : `unknown key ${where}`;
    this.report(field.keyNode, `${what}${hint === "" ? ` (known keys: ${known.join(", ")})` : hint}`);
  }
}

// deno-lint-ignore no-control-regex -- finding control characters is the point
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/;

/** Appends a key to a path, quoting it unless it is a plain key name: `proxies."api.example.com"`. */
export function childPath(parent: string, key: string): string {
  const part = /^[a-z_][a-z0-9_]*$/i.test(key) ? key : JSON.stringify(key);
  return parent === "" ? part : `${parent}.${part}`;
}

/** Describes a value for "got ..." in messages: a type for collections, the value itself for scalars
 * (unless `secret`, when only the type is given). */
export function describe(node: Node | null, secret = false): string {
  if (node === null) return "nothing";
  if (isMap(node)) return "a mapping";
  if (isSeq(node)) return "a list";
  if (!isScalar(node)) return "an alias";
  const value = node.value;
  if (value === null) return "nothing";
  if (typeof value === "string") return secret ? "a string" : quoteValue(value);
  if (secret) {
    return typeof value === "number" ? "a number" : typeof value === "boolean" ? "a bool" : "a value";
  }
  return scalarText(node);
}

/** Quotes a user's string for a message, shortening it past 80 characters. */
export function quoteValue(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
}

/** The text of a scalar as written (`0x1F`, not 31). */
function scalarText(node: Scalar): string {
  return node.source;
}
