// Copies nexo's state from one Storage to another (`nexo migrate-storage`: files into Redis and back), so a
// single instance grows into a cluster without ordering its certificates again. It goes through the Storage
// API only and knows the certificate layout just enough to move a certificate directory as a unit; it does
// not recover the source, parse certificates, or decide which storages to copy (the CLI does).

import { ACCOUNTS_DIR } from "./acme_accounts.ts";
import { CHAIN_FILE, KEY_FILE, META_FILE } from "./cert_meta.ts";
import { recoverDirectory, replaceDirectory, type SwapFile, swapOwner } from "./dir_swap.ts";
import { joinKey, type Storage, StorageError, type StorageKey, withLock } from "./storage.ts";

/** What `copyStorage` copies, and how it treats what the destination already holds. */
export interface CopyOptions {
  /**
   * Keys (or prefixes) to copy, each with everything below it: [""] for everything, ["acme"] for the ACME
   * accounts of a base_dir storage.
   */
  prefixes: string[];
  /**
   * Whether to replace a destination value (or certificate directory) that differs from the source's.
   * False: it is left as it is and reported in `conflicts`.
   */
  overwrite: boolean;
  /**
   * Whether `key` holds a secret, stored with `{ private: true }` (mode 0600 in FileStorage). The Storage
   * API does not tell how a value was stored, so this decides it for every key written. Default
   * `isPrivateKey`.
   */
  isPrivate?: (key: StorageKey) => boolean;
  /** Whether to leave `key` (a value or a whole prefix) out, reporting it in `skipped`. Default `isTransient`. */
  skip?: (key: StorageKey) => boolean;
}

/** What `copyStorage` did; each list holds keys, or the directory name for a certificate directory. */
export interface CopyReport {
  /** Written to the destination: it was missing there, or differed and `overwrite` was set. */
  copied: string[];
  /** Already the same in the destination; not written. */
  unchanged: string[];
  /** Different in the destination and left there (`overwrite` false). */
  conflicts: string[];
  /** Left out by `skip` (swap leftovers: see `copyStorage`). */
  skipped: string[];
}

// The names of the files nexo writes with `private: true`: a certificate's key (cert_repository.ts), and an
// ACME account's key and its account.json, which holds the contact address (acme_accounts.ts).
const PRIVATE_FILES = new Set([KEY_FILE, "account.key", "account.json"]);

/**
 * Whether nexo stores `key` with `private: true` in its layout: "<dir>/privkey.pem" in cert_dir (and in a
 * swap's staging directory), "acme/<directory>/account.key" and "acme/<directory>/account.json" in base_dir.
 */
export function isPrivateKey(key: StorageKey): boolean {
  const segments = key.split("/");
  const name = segments.at(-1) ?? "";
  if (name === KEY_FILE) return true;
  return segments[0] === ACCOUNTS_DIR && PRIVATE_FILES.has(name);
}

/**
 * Whether `key` is a transient entry of nexo's layout that must not be copied: a swap's sibling directory
 * ("example.com+next", ".example.com+new", ".example.com+old": see dir_swap.ts) at any depth, or FileStorage's
 * lock directory ".locks". Failure records (".example.com+pending") are not transient.
 */
export function isTransient(key: StorageKey): boolean {
  const segments = key.split("/");
  return segments[0] === ".locks" || swapOwner(segments.at(-1) ?? "") !== undefined;
}

/**
 * Copies every value below each of `options.prefixes` from `from` to `to`, through the Storage API only, so
 * it works between any two implementations (FileStorage, RedisStorage, MemoryStorage). Each key is written
 * with one `store`, atomic on its own; values already equal in `to` are not written, so running it again
 * after a failure or on a copy made earlier finishes the job and reports the rest `unchanged`.
 *
 * A certificate directory (a top-level entry not starting with "." that holds meta.json or fullchain.pem)
 * moves as a unit, so the destination never pairs one issuance's key with another's chain: its files are
 * read under the source's "write/<dir>" lock (the lock CertRepository takes to write it), then, under the
 * destination's "write/<dir>" lock, an interrupted swap there is finished (dir_swap.ts recoverDirectory),
 * the directory is compared as a whole, and a missing or replaced one is written through replaceDirectory
 * (staged, then swapped in crash-safely). A differing one without `overwrite` is one conflict, named by its
 * directory. Files left in `to` that the source does not have are kept, except inside a certificate
 * directory that is replaced: it becomes exactly the source's.
 *
 * The caller recovers the source first (`new CertRepository(...).loadCertificates()` on cert_dir finishes
 * or undoes interrupted swaps): swap leftovers are skipped (see `isTransient`), so without that a swap the
 * source left committed but unfinished would copy the older certificate. Taking the source's locks writes
 * lock files there (FileStorage), so the source must be writable. Rejects with StorageError naming the key
 * and both locations when a read or write fails; what was copied before stays copied.
 */
export async function copyStorage(from: Storage, to: Storage, options: CopyOptions): Promise<CopyReport> {
  const copier = new Copier(from, to, options);
  for (const prefix of options.prefixes) {
    if (prefix === "") {
      for (const name of await from.list("")) await copier.copyEntry(name);
    } else {
      await copier.copyEntry(prefix);
    }
  }
  return copier.report;
}

/** One file of a directory: its name relative to the directory, and its value. */
interface DirFile {
  name: string;
  value: Uint8Array;
}

class Copier {
  readonly report: CopyReport = { copied: [], unchanged: [], conflicts: [], skipped: [] };
  readonly #from: Storage;
  readonly #to: Storage;
  readonly #overwrite: boolean;
  readonly #isPrivate: (key: StorageKey) => boolean;
  readonly #skip: (key: StorageKey) => boolean;

  constructor(from: Storage, to: Storage, options: CopyOptions) {
    this.#from = from;
    this.#to = to;
    this.#overwrite = options.overwrite;
    this.#isPrivate = options.isPrivate ?? isPrivateKey;
    this.#skip = options.skip ?? isTransient;
  }

  /** Copies the value at `key`, or the certificate directory or prefix `key` with everything below it. */
  async copyEntry(key: StorageKey): Promise<void> {
    if (this.#skip(key)) {
      this.report.skipped.push(key);
      return;
    }
    const value = await this.#from.load(key);
    if (value !== null) return await this.#guard(key, () => this.#copyValue(key, value));
    const names = await this.#from.list(key);
    if (isCertDir(key, names)) return await this.#guard(key, () => this.#copyCertDir(key));
    for (const name of names) await this.copyEntry(joinKey(key, name));
  }

  async #copyValue(key: StorageKey, value: Uint8Array): Promise<void> {
    const existing = await this.#to.load(key);
    if (existing !== null && sameBytes(existing, value)) {
      this.report.unchanged.push(key);
    } else if (existing !== null && !this.#overwrite) {
      this.report.conflicts.push(key);
    } else {
      await this.#to.store(key, value, { private: this.#isPrivate(key) });
      this.report.copied.push(key);
    }
  }

  async #copyCertDir(dir: StorageKey): Promise<void> {
    const files = await withLock(this.#from.lock(`write/${dir}`), () => readDir(this.#from, dir));
    if (files.length === 0) return; // deleted since it was listed: nothing to copy
    await withLock(this.#to.lock(`write/${dir}`), async (lock) => {
      await recoverDirectory(this.#to, dir);
      const existing = await readDir(this.#to, dir);
      if (sameFiles(existing, files)) {
        this.report.unchanged.push(dir);
        return;
      }
      // A value stored at the directory's own key is in the way just like a differing directory.
      const occupied = existing.length > 0 || await this.#to.load(dir) !== null;
      if (occupied && !this.#overwrite) {
        this.report.conflicts.push(dir);
        return;
      }
      if (lock.lost.aborted) {
        throw new StorageError(
          `Cannot copy "${dir}" to "${this.#to.describe(dir)}": its lock write/${dir} was taken over while ` +
            `copying (another process writes it; run the copy again)`,
        );
      }
      const swapFiles: SwapFile[] = files.map(({ name, value }) => ({
        name,
        value,
        private: this.#isPrivate(joinKey(dir, name)),
      }));
      await replaceDirectory(this.#to, { dir, files: swapFiles });
      this.report.copied.push(dir);
    });
  }

  /** Runs `copy` for `key`, wrapping a StorageError with both locations and what a rerun does. */
  async #guard(key: StorageKey, copy: () => Promise<void>): Promise<void> {
    try {
      await copy();
    } catch (err) {
      if (!(err instanceof StorageError)) throw err;
      throw new StorageError(
        `Cannot copy "${this.#from.describe(key)}" to "${this.#to.describe(key)}": ${err.message} (what ` +
          `was copied before stays copied; fix this and run the copy again to finish)`,
        { cause: err, ...(err.code === undefined ? {} : { code: err.code }) },
      );
    }
  }
}

/** Whether `entry` (with children `names`) is a certificate directory of cert_dir's layout. */
function isCertDir(entry: StorageKey, names: string[]): boolean {
  return !entry.includes("/") && !entry.startsWith(".") &&
    (names.includes(META_FILE) || names.includes(CHAIN_FILE));
}

/** Every value below `dir`, named relative to it, sorted by name; [] when there is none. */
async function readDir(storage: Storage, dir: StorageKey, below = ""): Promise<DirFile[]> {
  const files: DirFile[] = [];
  for (const name of await storage.list(joinKey(dir, below))) {
    const relative = joinKey(below, name);
    const value = await storage.load(joinKey(dir, relative));
    if (value !== null) files.push({ name: relative, value });
    else files.push(...await readDir(storage, dir, relative));
  }
  return files.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

function sameFiles(a: DirFile[], b: DirFile[]): boolean {
  return a.length === b.length &&
    a.every((file, i) => file.name === b[i]!.name && sameBytes(file.value, b[i]!.value));
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
