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

// A secret's key and value, in block or flow style: `api_token: abc`, `{ client_secret: "x" }`.
const SECRET =
  /\b(api_token|client_secret|hmac_key|metrics_token|password_hash)(\s*:[ \t]*)("[^"\n]*"|'[^'\n]*'|[^\s,}#]+)/g;
// The password in a redis:// URL.
const URL_PASSWORD = /(rediss?:\/\/[^:@\/\s"']*:)([^@\s"']+)(@)/g;

/** `text` with every secret value replaced by the mask (quoted the way it was). */
export function maskSecrets(text: string): string {
  return text
    .replace(SECRET, (_, key, colon, value: string) => `${key}${colon}${quoteLike(value, MASK)}`)
    .replace(URL_PASSWORD, (_, head, _password, at) => `${head}${MASK}${at}`);
}

/**
 * `edited` with each masked value put back from `original`, matched by key and order of appearance. Throws
 * RouteEditError naming the line of a masked value the original has none for (it would be saved as the mask).
 */
export function unmaskSecrets(edited: string, original: string): string {
  const values = new Map<string, string[]>();
  for (const match of original.matchAll(SECRET)) {
    values.set(match[1]!, [...values.get(match[1]!) ?? [], match[3]!]);
  }
  const passwords = [...original.matchAll(URL_PASSWORD)].map((match) => match[2]!);
  const seen = new Map<string, number>();
  let urls = 0;
  const unmasked = edited.replace(SECRET, (whole, key: string, colon, value: string, offset: number) => {
    const index = seen.get(key) ?? 0;
    seen.set(key, index + 1);
    if (unquote(value) !== MASK) return whole;
    const kept = values.get(key)?.[index];
    if (kept === undefined) {
      const line = edited.slice(0, offset).split("\n").length;
      throw new RouteEditError(
        `${key} on line ${line} is still masked and has no saved value to keep: type it`,
      );
    }
    return `${key}${colon}${kept}`;
  });
  return unmasked.replace(URL_PASSWORD, (whole, head, password: string, at) => {
    const kept = passwords[urls++];
    return password === MASK && kept !== undefined ? `${head}${kept}${at}` : whole;
  });
}

function unquote(value: string): string {
  return /^(["']).*\1$/.test(value) ? value.slice(1, -1) : value;
}

function quoteLike(value: string, text: string): string {
  return value.startsWith('"') ? `"${text}"` : value.startsWith("'") ? `'${text}'` : `"${text}"`;
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

  async #change(
    version: string,
    user: string,
    event: string,
    edit: (raw: string) => string,
  ): Promise<SaveResult> {
    const raw = await Deno.readTextFile(this.#file);
    if (await versionOf(raw) !== version) {
      return {
        saved: false,
        status: 409,
        error: "the config file changed since you loaded it: reload it, then make your change again",
        issues: [],
      };
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
    try {
      await writeAndRename(target, new TextEncoder().encode(text), mode);
      await syncDir(dirname(target));
    } catch (error) {
      return {
        saved: false,
        status: 409,
        error: `cannot write ${target}: ${errorMessage(error)} (nothing was changed)`,
        issues: [],
      };
    }
    this.#log.info(event, { user, file: target });
    return { saved: true, version: await versionOf(text) };
  }
}

async function versionOf(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return new Uint8Array(digest).toHex();
}
