// One ACME account per CA directory, kept as `acme/<directory host and path>/account.key` (the account's
// private key, 0600) and `account.json` (its URL and contact) in nexo's base_dir storage. It does not talk to
// the CA: the ACME client registers or looks up the account and hands the result here.

import { joinKey, loadText, type Storage, type StorageKey } from "./storage.ts";
import { isoTime } from "../iso_time.ts";

/** The folder under base_dir holding every account (the ACME worker may write there). */
export const ACCOUNTS_DIR = "acme";
const KEY_FILE = "account.key";
const INFO_FILE = "account.json";

/** An ACME account as stored. */
export interface AcmeAccount {
  /** The account's private key, PEM. Never log it. */
  keyPem: string;
  /** The account URL (RFC 8555 §7.3, the "kid"); null when only the key survived (see `loadAccount`). */
  url: string | null;
  /** The contact address it was registered with, or null. */
  email: string | null;
}

/** What `saveAccount` writes. */
export interface NewAcmeAccount {
  keyPem: string;
  url: string;
  email: string | null;
}

/**
 * The directory key for `directoryUrl`: "acme/" + host (with "_port") + path, "/" as "-", anything but
 * [a-z0-9._-] as "_" ("https://acme-v02.api.letsencrypt.org/directory" ->
 * "acme/acme-v02.api.letsencrypt.org-directory", "https://localhost:14000/dir" ->
 * "acme/localhost_14000-dir").
 * Throws an Error when `directoryUrl` is not an http(s) URL.
 */
export function accountDir(directoryUrl: string): StorageKey {
  let url: URL;
  try {
    url = new URL(directoryUrl);
  } catch (err) {
    throw new Error(
      `Invalid ACME directory URL ${JSON.stringify(directoryUrl)} (set acme.directory to an https URL)`,
      {
        cause: err,
      },
    );
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new Error(
      `Invalid ACME directory URL ${JSON.stringify(directoryUrl)}: it must start with https://`,
    );
  }
  const host = url.port === "" ? url.hostname : `${url.hostname}_${url.port}`;
  const path = url.pathname.split("/").filter((segment) => segment !== "").join("-");
  const name = [host, path].filter((part) => part !== "").join("-").toLowerCase().replace(
    /[^a-z0-9._-]/g,
    "_",
  );
  return joinKey(ACCOUNTS_DIR, name);
}

/** Reads and writes ACME accounts in `storage` (rooted at base_dir). Calls may overlap; see each method. */
export class AcmeAccountStore {
  readonly #storage: Storage;

  constructor(storage: Storage) {
    this.#storage = storage;
  }

  /**
   * The account for `directoryUrl`, or null when none was saved. When the key exists but account.json is
   * missing or unreadable (a crash between the two writes of `saveAccount`), resolves the key with
   * `url: null`: the caller should find the account by key (RFC 8555 §7.3.1, onlyReturnExisting) rather
   * than register a new one. Rejects with an Error when account.json belongs to another directory URL that
   * sanitizes to the same name, and with StorageError when the files cannot be read.
   */
  async loadAccount(directoryUrl: string): Promise<AcmeAccount | null> {
    const dir = accountDir(directoryUrl);
    const keyPem = await loadText(this.#storage, joinKey(dir, KEY_FILE));
    if (keyPem === null) return null;
    const info = parseInfo(await loadText(this.#storage, joinKey(dir, INFO_FILE)));
    // An account.json written for another key (the crash case in saveAccount) must not pair with this one.
    if (info === null || info.keySha256 !== await sha256Hex(keyPem)) {
      return { keyPem, url: null, email: null };
    }
    if (info.directoryUrl !== null && info.directoryUrl !== directoryUrl) {
      throw new Error(
        `Cannot use the ACME account in "${
          this.#storage.describe(dir)
        }" for ${directoryUrl}: it belongs to ` +
          `${info.directoryUrl} (move that directory away to keep both accounts)`,
      );
    }
    return { keyPem, url: info.url, email: info.email };
  }

  /**
   * Stores `account` for `directoryUrl`, replacing any earlier one: the key first (0600), then
   * account.json (also 0600: it holds the contact address), each atomically. A crash in between leaves the
   * new key with the old or no account.json (account.json records a hash of its key to tell), which
   * `loadAccount` reports as `url: null`. Overlapping saves
   * for one directory: the last one wins for each file; hold a lock when that matters.
   */
  async saveAccount(directoryUrl: string, account: NewAcmeAccount): Promise<void> {
    const dir = accountDir(directoryUrl);
    await this.#storage.store(joinKey(dir, KEY_FILE), account.keyPem, { private: true });
    const info = {
      directory_url: directoryUrl,
      url: account.url,
      email: account.email,
      key_sha256: await sha256Hex(account.keyPem),
      saved_at: isoTime(Date.now()),
    };
    await this.#storage.store(joinKey(dir, INFO_FILE), JSON.stringify(info, null, 2) + "\n", {
      private: true,
    });
  }
}

function parseInfo(
  text: string | null,
): { directoryUrl: string | null; url: string; email: string | null; keySha256: string | null } | null {
  if (text === null) return null;
  try {
    const raw = JSON.parse(text) as Record<string, unknown>;
    if (typeof raw.url !== "string") return null;
    return {
      directoryUrl: typeof raw.directory_url === "string" ? raw.directory_url : null,
      url: raw.url,
      email: typeof raw.email === "string" ? raw.email : null,
      keySha256: typeof raw.key_sha256 === "string" ? raw.key_sha256 : null,
    };
  } catch {
    return null; // unreadable: treated like a missing file, see loadAccount
  }
}

async function sha256Hex(text: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  return digest.toHex();
}
