// The Storage interface nexo keeps its state behind (certificates, ACME accounts, locks between processes),
// with the contract every implementation must keep, plus small helpers built only on that contract. It does
// not know what is stored (cert_repository.ts decides the layout) or where (file_storage.ts and
// memory_storage.ts do).

/**
 * Keys are slash-separated relative paths ("example.com/privkey.pem", "acme/example.org-dir/account.json").
 * A valid key has no empty segment (no leading, trailing or doubled "/"), no "." or ".." segment, no "\" and
 * no NUL, and its first segment is not ".locks" (reserved for lock files). Segments may start with ".";
 * callers use that for entries that other readers of the same directory should skip.
 */
export type StorageKey = string;

/** Options for `Storage.store`. */
export interface StoreOptions {
  /**
   * The value is secret (a private key): readable by the owner only (mode 0600 in FileStorage). Default
   * false: readable by anyone who can reach its directory (mode 0644; directories are always 0700).
   */
  private?: boolean;
}

/** Options for `Storage.lock`. */
export interface LockOptions {
  /** Stops waiting for the lock: `lock` rejects with the signal's reason. Not consulted once acquired. */
  signal?: AbortSignal;
}

/** A held lock; see `Storage.lock`. */
export interface StorageLock {
  readonly name: string;
  /**
   * Aborted when the implementation finds that another process has taken the lock over (FileStorage: this
   * process stalled past the stale-lock timeout and a waiter broke the lock; RedisStorage: a refresh found
   * the lock expired and taken, after a stall or a Redis outage longer than its expiry). Long holders should
   * check it before committing; it is never aborted by `release`.
   */
  readonly lost: AbortSignal;
  /** Releases the lock; resolves once another waiter may take it. Idempotent; never rejects. */
  release(): Promise<void>;
}

/**
 * Where nexo keeps state that must survive restarts. Every implementation guarantees:
 *
 * - Missing is not an error: `load` of an absent key (or of a prefix that has keys below it) resolves
 *   null, `delete` of an absent key resolves false, `list` of an absent prefix resolves [].
 * - Writes are atomic and durable: once `store` resolves, a reader (this process, another process, or
 *   this process after a crash or power loss) sees the new value in full; before that it sees the old value
 *   in full or, for a new key, nothing. Never a mix, never a truncated value. A `store` that rejects leaves
 *   the old value (or no value) in place. The same holds for `rename` (of a key or a whole prefix) and
 *   for `delete` of a single key.
 * - Calls may overlap, from one process or several sharing the same backing store. Each call is atomic on
 *   its own; a sequence of calls is not: hold a `lock` for read-modify-write or multi-key changes.
 * - A key cannot also be a prefix: `store` rejects when keys exist below `key` or when a prefix of `key`
 *   is itself a key.
 * - Errors are `StorageError`s whose message names the key's location and the fix; they never contain
 *   stored values.
 */
export interface Storage {
  /** The stored value, or null when `key` holds none. Rejects with StorageError when it cannot be read. */
  load(key: StorageKey): Promise<Uint8Array | null>;

  /** Atomically creates or replaces the value at `key`, creating its parent prefixes. Strings as UTF-8. */
  store(key: StorageKey, value: Uint8Array | string, options?: StoreOptions): Promise<void>;

  /**
   * Deletes the value at `key`, or every key below `key` when it is a prefix. Resolves whether anything was
   * there. A crash mid-way through a prefix may leave part of it; deleting it again finishes the job.
   */
  delete(key: StorageKey): Promise<boolean>;

  /**
   * The names (single segments, not full keys) of the keys and prefixes directly below `prefix` ("" for
   * the top), sorted by UTF-16 code unit, without the implementation's own internal entries. After a crash
   * it may also name a prefix that has no keys left below it; such a prefix loads as null.
   */
  list(prefix: StorageKey): Promise<string[]>;

  /**
   * Atomically moves the value or prefix at `from` to `to`, which must not exist: readers see everything
   * under the old name or everything under the new one. Rejects with StorageError when `from` is missing or
   * `to` exists. Durable once it resolves.
   */
  rename(from: StorageKey, to: StorageKey): Promise<void>;

  /**
   * Waits until this caller holds the exclusive lock `name` (a StorageKey-shaped name), then resolves. The
   * lock excludes every other holder using the same backing store, in this process or another; it is not
   * reentrant (locking a held name again waits forever). The holder keeps it alive while it holds it; one
   * that died without releasing it (killed, its machine gone) loses it after a bounded time, and a waiter
   * takes it (FileStorage: at once when the kernel dropped the dead holder's flock, else after the stale
   * timeout; RedisStorage: at the lock's expiry, 30 s by default). Only the holder's `release` frees it: a
   * release by a holder whose lock was taken over leaves the new holder's lock alone.
   */
  lock(name: string, options?: LockOptions): Promise<StorageLock>;

  /** Where `key` lives, for messages and docs: a file path, or "memory:<key>". */
  describe(key: StorageKey): string;
}

/** A storage operation that failed; the message names the location and the fix, never the value. */
export class StorageError extends Error {
  override name = "StorageError";
  /** The OS error code when there was one ("ENOSPC", "EROFS", "EACCES"), else undefined. */
  readonly code: string | undefined;

  constructor(message: string, options: { cause?: unknown; code?: string } = {}) {
    super(message, options.cause === undefined ? {} : { cause: options.cause });
    this.code = options.code;
  }
}

/**
 * Awaits `acquiring` (a pending `storage.lock(name)`), runs `fn` with the lock held, and releases it however
 * `fn` ends. Rejects with `fn`'s error, or with the lock's when it could not be taken (then `fn` never runs).
 * Usage: `await withLock(storage.lock("issue/example.com"), async () => { ... })`.
 */
export async function withLock<T>(
  acquiring: Promise<StorageLock>,
  fn: (lock: StorageLock) => Promise<T>,
): Promise<T> {
  const lock = await acquiring;
  try {
    return await fn(lock);
  } finally {
    await lock.release();
  }
}

/** `storage.load(key)` decoded as UTF-8, or null when missing. */
export async function loadText(storage: Storage, key: StorageKey): Promise<string | null> {
  const bytes = await storage.load(key);
  return bytes === null ? null : new TextDecoder().decode(bytes);
}

/** Joins key segments with "/" (no validation; `checkKey` does that). */
export function joinKey(...segments: string[]): StorageKey {
  return segments.filter((segment) => segment !== "").join("/");
}

const LOCKS_SEGMENT = ".locks";

/**
 * Throws StorageError unless `key` is a valid StorageKey (see its doc); `allowRoot` also accepts "" (the
 * top, for `list`). Implementations call it first so that a bad key never reaches the backing store.
 */
export function checkKey(key: string, allowRoot = false): void {
  if (key === "" && allowRoot) return;
  const segments = key.split("/");
  const bad = key === "" || key.includes("\\") || key.includes("\0") ||
    segments.some((segment) => segment === "" || segment === "." || segment === "..") ||
    segments[0] === LOCKS_SEGMENT;
  if (bad) {
    throw new StorageError(
      `Invalid storage key ${JSON.stringify(key)}: use "/"-separated names without empty, "." or ".." ` +
        `segments, backslashes or NUL, not starting with "${LOCKS_SEGMENT}" (this is a bug in the caller)`,
    );
  }
}
