// Storage on the local file system, rooted at one directory: keys are relative file paths, every write goes
// to a temp file that is fsynced and renamed over the target, and locks are lock files under `<root>/.locks`.
// It does not cache, watch for changes, or work on network file systems whose rename or O_EXCL is not atomic.

import { dirname, join, resolve } from "../path.ts";
import {
  checkKey,
  type LockOptions,
  type Storage,
  StorageError,
  type StorageKey,
  type StorageLock,
  type StoreOptions,
} from "./storage.ts";
import { acquireFileLock, type LockTimings } from "./file_lock.ts";
import { syncDir, writeAndRename } from "./atomic_write.ts";
import { toStorageError } from "./fs_errors.ts";

/**
 * The lock protocol's timings. A lock whose holder died is taken over at the next look, because the kernel
 * drops the holder's flock (file_lock.ts); the stale timeout is the fallback where that cannot tell (a file
 * system without flock, a lock file from an older nexo). A holder touches its lock file every 5 s; a lock
 * untouched for 60 s belongs to a dead process: twelve missed refreshes is more than a live process stalls
 * even on a loaded 1-core VPS (GC pause, swapping), while such a crash delays the next certificate issuance
 * by a minute at most. Waiters look again every second: locks guard issuances that take seconds to minutes,
 * and a look is a stat call (plus a read and a flock probe of the lock file while it is held).
 */
export const DEFAULT_LOCK_TIMINGS: LockTimings = { staleMs: 60_000, refreshMs: 5_000, pollMs: 1_000 };

/** Where lock files live under a storage root (the ACME worker may write there). */
export const LOCK_DIR = ".locks";
const TEMP_NAME = /^\..*\.tmp-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const PRIVATE_FILE_MODE = 0o600;
const PUBLIC_FILE_MODE = 0o644;
const DIR_MODE = 0o700;
// A concurrent `delete` may prune an emptied parent directory between our mkdir and our open.
const STORE_ATTEMPTS = 3;

/** Options for `new FileStorage`. */
export interface FileStorageOptions {
  /** Overrides for DEFAULT_LOCK_TIMINGS (tests use short ones). */
  lockTimings?: Partial<LockTimings>;
}

/**
 * The Storage contract on a directory tree. Values are files (0600 when `private`, else 0644) and prefixes
 * are directories (created 0700; existing ones are left as they are). `root` is created on the first write.
 * Crash leftovers (temp files named `.<name>.tmp-<uuid>`) are invisible to `load` and `list` and go away
 * with their prefix. One caveat beyond the contract: when only the final fsync of the directory fails (an
 * I/O error), `store` rejects although the new value is already visible.
 */
export class FileStorage implements Storage {
  /** The absolute root directory. */
  readonly root: string;
  readonly #lockTimings: LockTimings;

  constructor(root: string, options: FileStorageOptions = {}) {
    this.root = resolve(root);
    this.#lockTimings = { ...DEFAULT_LOCK_TIMINGS, ...options.lockTimings };
  }

  describe(key: StorageKey): string {
    return key === "" ? this.root : join(this.root, ...key.split("/"));
  }

  async load(key: StorageKey): Promise<Uint8Array | null> {
    checkKey(key);
    const path = this.describe(key);
    try {
      return await Deno.readFile(path);
    } catch (err) {
      if (isAbsent(err) || err instanceof Deno.errors.IsADirectory) return null;
      throw toStorageError(err, "read", path);
    }
  }

  async store(key: StorageKey, value: Uint8Array | string, options: StoreOptions = {}): Promise<void> {
    checkKey(key);
    const path = this.describe(key);
    const bytes = typeof value === "string" ? new TextEncoder().encode(value) : value;
    const mode = options.private === true ? PRIVATE_FILE_MODE : PUBLIC_FILE_MODE;
    for (let attempt = 1;; attempt++) {
      await this.#makeParents(key, path);
      try {
        await writeAndRename(path, bytes, mode);
        break;
      } catch (err) {
        if (err instanceof Deno.errors.NotFound && attempt < STORE_ATTEMPTS) continue;
        if (err instanceof Deno.errors.IsADirectory) throw prefixConflict(path, "has keys below it");
        throw toStorageError(err, "write", path);
      }
    }
    await syncDir(dirname(path));
  }

  async delete(key: StorageKey): Promise<boolean> {
    checkKey(key);
    const path = this.describe(key);
    try {
      await Deno.remove(path, { recursive: true });
    } catch (err) {
      if (isAbsent(err)) return false;
      throw toStorageError(err, "delete", path);
    }
    await syncDir(dirname(path));
    await this.#pruneEmptyParents(dirname(path));
    return true;
  }

  async list(prefix: StorageKey): Promise<string[]> {
    checkKey(prefix, true);
    const path = this.describe(prefix);
    const names: string[] = [];
    try {
      for await (const entry of Deno.readDir(path)) {
        if (TEMP_NAME.test(entry.name) || (prefix === "" && entry.name === LOCK_DIR)) continue;
        names.push(entry.name);
      }
    } catch (err) {
      if (isAbsent(err)) return [];
      throw toStorageError(err, "list", path);
    }
    return names.sort();
  }

  async rename(from: StorageKey, to: StorageKey): Promise<void> {
    checkKey(from);
    checkKey(to);
    const source = this.describe(from);
    const target = this.describe(to);
    // rename(2) would silently replace a file or an empty directory; the contract says `to` must not exist.
    if (await lstatOrNull(target) !== null) {
      throw new StorageError(
        `Cannot rename "${source}" to "${target}": the target already exists (delete it first; this is a ` +
          `bug in the caller unless another process wrote it)`,
        { code: "EEXIST" },
      );
    }
    await this.#makeParents(to, target);
    try {
      await Deno.rename(source, target);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        throw new StorageError(
          `Cannot rename "${source}" to "${target}": the source does not exist (this is a bug in the ` +
            `caller unless another process removed it)`,
          { cause: err, code: "ENOENT" },
        );
      }
      throw toStorageError(err, `rename to "${target}"`, source);
    }
    await syncDir(dirname(target));
    if (dirname(source) !== dirname(target)) await syncDir(dirname(source));
  }

  lock(name: string, options: LockOptions = {}): Promise<StorageLock> {
    return Promise.try(() => {
      checkKey(name);
      const segments = name.split("/");
      const last = segments.pop() ?? name;
      const path = join(this.root, LOCK_DIR, ...segments, `${last}.lock`);
      return acquireFileLock(path, name, { ...this.#lockTimings, ...options });
    });
  }

  /** Creates the directories above `key` (0700), naming a key that is in the way. */
  async #makeParents(key: StorageKey, path: string): Promise<void> {
    const parent = dirname(path);
    try {
      await Deno.mkdir(parent, { recursive: true, mode: DIR_MODE });
    } catch (err) {
      if (err instanceof Deno.errors.AlreadyExists || err instanceof Deno.errors.NotADirectory) {
        throw prefixConflict(path, `has a key at one of its prefixes ("${key}")`);
      }
      throw toStorageError(err, "create the directory", parent);
    }
  }

  /** Removes directories a delete left empty, up to (not including) the root; stops at one in use. */
  async #pruneEmptyParents(dir: string): Promise<void> {
    for (let current = dir; current.startsWith(this.root + "/"); current = dirname(current)) {
      try {
        await Deno.remove(current);
      } catch {
        return; // not empty (or already gone): nothing above it is empty either
      }
    }
  }
}

function isAbsent(err: unknown): boolean {
  return err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory;
}

function prefixConflict(path: string, what: string): StorageError {
  return new StorageError(
    `Cannot write "${path}": it ${what}; a key cannot also be a prefix (this is a bug in the caller, or a ` +
      `file was put there by hand: move it away)`,
  );
}

async function lstatOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.lstat(path);
  } catch (err) {
    if (isAbsent(err)) return null;
    throw toStorageError(err, "inspect", path);
  }
}
