// The dashboard's config editor: the config file's text with its secrets masked, and saving an edited text
// (or a route form's edit, route_edit.ts) only once it passes the same checks as `nexo check`, written
// atomically with the file's mode kept; the live reload then applies it like any other edit. A masked secret
// saved back keeps its value; an invalid config and an edit of a file changed meanwhile are never written.

import { ConfigError } from "../config/errors.ts";
import { checkConfigText } from "../config/parse.ts";
import { errorMessage } from "../error_message.ts";
import type { Logger } from "../log.ts";
import { dirname } from "../path.ts";
import { syncDir, writeAndRename } from "../storage/atomic_write.ts";
import { editRoute, type RouteChange, RouteEditError } from "./route_edit.ts";

/** What a masked secret reads as in the editor. */
export const MASK = "********";

// A secret key (quoted or not) and its colon, in block or flow style: `api_token: abc`, `{ "hmac_key": x }`.
const SECRET_KEY = /(["']?)\b(api_token|client_secret|hmac_key|metrics_token|password_hash)\1[ \t]*:[ \t]*/g;
// The password in a redis:// URL (everything between the user's ":" and the host's "@").
const URL_PASSWORD = /rediss?:\/\/[^:@\/\s"']*:([^\s"']+)@[^@\s"']+/g;
// A bcrypt hash anywhere (basic_auth users, whose keys are user names).
const BCRYPT = /\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}/g;

/** One secret value in a config's text: what kind it is (its key, "url", "bcrypt") and where. */
interface SecretSpan {
  kind: string;
  start: number;
  end: number;
  /** Quoted in the text: the mask goes between the quotes. */
  quoted: boolean;
}

/** Every secret value in `text`, in order; a mask left in an edited text counts as one of its kind. */
function secretSpans(text: string): SecretSpan[] {
  const spans: SecretSpan[] = [];
  const taken = (at: number) => spans.some((span) => at >= span.start && at < span.end);
  for (const match of text.matchAll(SECRET_KEY)) {
    const at = match.index + match[0].length;
    const end = valueEnd(text, at);
    if (end > at) spans.push({ kind: match[2]!, start: at, end, quoted: /["']/.test(text[at]!) });
  }
  for (const match of text.matchAll(URL_PASSWORD)) {
    const start = match.index + match[0].indexOf(":", match[0].indexOf("//")) + 1;
    const end = match.index + match[0].lastIndexOf("@");
    if (!taken(start)) spans.push({ kind: "url", start, end, quoted: false });
  }
  // A hash, or a mask left where one was: the span is what sits between its quotes, if it has any.
  for (const pattern of [BCRYPT, /(?<=["'])\*{8}(?=["'])/g]) {
    for (const match of text.matchAll(pattern)) {
      if (taken(match.index)) continue;
      const quoted = /["']/.test(text[match.index - 1] ?? "");
      spans.push({ kind: "bcrypt", start: match.index, end: match.index + match[0].length, quoted });
    }
  }
  return spans.sort((a, b) => a.start - b.start);
}

/**
 * Where the YAML value starting at `at` ends: a quoted one at its closing quote; a plain one at the end of the
 * line (before a " #" comment), or inside a flow mapping or list at the next "," "}" or "]".
 */
function valueEnd(text: string, at: number): number {
  const quote = text[at];
  if (quote === '"' || quote === "'") {
    for (let i = at + 1; i < text.length && text[i] !== "\n"; i++) {
      if (quote === '"' && text[i] === "\\") i++;
      else if (text[i] === quote && !(quote === "'" && text[i + 1] === "'")) return i + 1;
      else if (text[i] === quote) i++;
    }
    return at;
  }
  const lineStart = text.lastIndexOf("\n", at - 1) + 1;
  const before = text.slice(lineStart, at);
  const flow = (before.match(/[{[]/g)?.length ?? 0) > (before.match(/[}\]]/g)?.length ?? 0);
  let end = at;
  while (end < text.length && text[end] !== "\n") {
    if (flow && /[,}\]]/.test(text[end]!)) break;
    if (text[end] === "#" && /\s/.test(text[end - 1] ?? "")) break;
    end++;
  }
  while (end > at && /\s/.test(text[end - 1]!)) end--;
  return end;
}

function masked(text: string, span: SecretSpan): boolean {
  const value = text.slice(span.start, span.end);
  return value === MASK || /^(["'])\*{8}\1$/.test(value);
}

/** `text` with every secret value replaced by the mask (quoted, so YAML never reads it as an alias). */
export function maskSecrets(text: string): string {
  let out = "";
  let from = 0;
  for (const span of secretSpans(text)) {
    out += text.slice(from, span.start);
    // A key's value is replaced with its quotes; a hash or URL password inside its quotes or URL.
    out += span.kind === "url" || (span.kind === "bcrypt" && span.quoted) ? MASK : `"${MASK}"`;
    from = span.end;
  }
  return out + text.slice(from);
}

/**
 * `edited` with each masked value put back from `original`, matched by kind and order of appearance. Throws
 * RouteEditError when that matching could put a secret in the wrong place (a masked secret's block removed or
 * added, so its kind counts differ) or when the original has no value for a mask: the text names the line.
 */
export function unmaskSecrets(edited: string, original: string): string {
  const before = secretSpans(original);
  const after = secretSpans(edited);
  const count = (spans: SecretSpan[], kind: string) => spans.filter((span) => span.kind === kind).length;
  const line = (at: number) => edited.slice(0, at).split("\n").length;
  let out = "";
  let from = 0;
  const seen = new Map<string, number>();
  for (const span of after) {
    const index = seen.get(span.kind) ?? 0;
    seen.set(span.kind, index + 1);
    if (!masked(edited, span)) continue;
    const name = span.kind === "url"
      ? "a Redis URL's password"
      : span.kind === "bcrypt"
      ? "a bcrypt hash"
      : span.kind;
    if (count(before, span.kind) !== count(after, span.kind)) {
      throw new RouteEditError(
        `${name} on line ${
          line(span.start)
        } is still masked, but secrets of its kind were added or removed, so ` +
          `nexo cannot tell which value it stands for: type it, or reload the editor`,
      );
    }
    const kept = before.filter((s) => s.kind === span.kind)[index];
    if (kept === undefined) {
      throw new RouteEditError(
        `${name} on line ${line(span.start)} is still masked and has no saved value: type it`,
      );
    }
    out += edited.slice(from, span.start) + original.slice(kept.start, kept.end);
    from = span.end;
  }
  return out + edited.slice(from);
}

/** A config problem at its place, for the editor. */
export interface EditorIssue {
  line: number;
  col: number;
  message: string;
}

export type SaveResult =
  | { saved: true; version: string }
  | { saved: false; status: 409 | 422; error: string; issues: EditorIssue[] };

export class ConfigEditor {
  readonly #file: string;
  readonly #log: Logger;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: { file: string; log: Logger }) {
    this.#file = options.file;
    this.#log = options.log;
  }

  /** The file's text, secrets masked, and its version (the SHA-256 of what is on disk). */
  async load(): Promise<{ file: string; text: string; version: string }> {
    const raw = await Deno.readTextFile(this.#file);
    return { file: this.#file, text: maskSecrets(raw), version: await versionOf(raw) };
  }

  /** Saves `masked` (the editor's text) if the file is still at `version` and the text is a valid config. */
  async save(masked: string, version: string, user: string): Promise<SaveResult> {
    return await this.#change(
      version,
      user,
      "config saved from the dashboard",
      (raw) => unmaskSecrets(masked, raw),
    );
  }

  /** Applies a route form's change to the file's text (route_edit.ts), under the same rules as `save`. */
  async changeRoute(change: RouteChange, version: string, user: string): Promise<SaveResult> {
    return await this.#change(
      version,
      user,
      "route changed from the dashboard",
      (raw) => editRoute(raw, change),
    );
  }

  /** One change at a time: two tabs saving at once must not both pass the version check. */
  #change(version: string, user: string, event: string, edit: (raw: string) => string): Promise<SaveResult> {
    const run = this.#queue.then(() => this.#changeNow(version, user, event, edit));
    this.#queue = run.catch(() => {});
    return run;
  }

  async #changeNow(
    version: string,
    user: string,
    event: string,
    edit: (raw: string) => string,
  ): Promise<SaveResult> {
    const raw = await Deno.readTextFile(this.#file);
    if (await versionOf(raw) !== version) {
      return conflict("the config file changed since you loaded it: reload it, then make your change again");
    }
    let text: string;
    try {
      text = edit(raw);
      await checkConfigText(text, this.#file);
    } catch (error) {
      if (error instanceof ConfigError) {
        const issues = error.issues.map(({ line, col, message }) => ({ line, col, message }));
        return { saved: false, status: 422, error: "the config is not valid: nothing was written", issues };
      }
      if (error instanceof RouteEditError) {
        return { saved: false, status: 422, error: error.message, issues: [] };
      }
      throw error;
    }
    // The file behind a symlink (a Docker or Kubernetes mount) is the one replaced, with its mode kept.
    const target = await Deno.realPath(this.#file);
    const mode = ((await Deno.stat(target)).mode ?? 0o600) & 0o777;
    // Checked again just before the write: a hand edit during the check above is not overwritten.
    if (await versionOf(await Deno.readTextFile(target)) !== version) {
      return conflict(
        "the config file changed while your change was checked: reload it, then make your change again",
      );
    }
    try {
      await writeAndRename(target, new TextEncoder().encode(text), mode);
      await syncDir(dirname(target));
    } catch (error) {
      return conflict(`cannot write ${target}: ${errorMessage(error)} (nothing was changed)`);
    }
    this.#log.info(event, { user, file: target });
    return { saved: true, version: await versionOf(text) };
  }
}

/** A change not written because the file is not as the editor had it, or cannot be written now. */
function conflict(error: string): SaveResult {
  return { saved: false, status: 409, error, issues: [] };
}

async function versionOf(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return new Uint8Array(digest).toHex();
}
