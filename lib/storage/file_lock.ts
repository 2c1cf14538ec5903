// Locks between processes for FileStorage: one exclusively created lock file per name, whose holder touches
// it while it works, and which a waiter breaks once nobody has touched it for the stale timeout (its holder
// crashed). It does not queue waiters fairly, and cannot stop a holder that stalled past the timeout: that
// holder's `lost` signal fires instead.

import { sleep } from "../sleep.ts";
import { dirname } from "node:path";
import type { LockOptions, StorageLock } from "./storage.ts";
import { toStorageError } from "./fs_errors.ts";

/** Timings of the lock protocol, in ms; FileStorage's defaults are in its DEFAULT_LOCK_TIMINGS. */
export interface LockTimings {
  /** A lock file not touched for this long belongs to a dead holder and may be broken. */
  staleMs: number;
  /** How often a holder touches its lock file; must be well below `staleMs`. */
  refreshMs: number;
  /** How often a waiter looks at the lock file again. */
  pollMs: number;
}

/**
 * Takes the lock file at `path` for `name`, waiting (polling every `pollMs`) while another live holder has
 * it and breaking it when stale. Creates the lock file's directory (0700). Rejects with the signal's reason
 * when `options.signal` aborts, or with a StorageError when the lock directory cannot be written.
 */
export async function acquireFileLock(
  path: string,
  name: string,
  options: LockTimings & LockOptions,
): Promise<StorageLock> {
  const token = crypto.randomUUID();
  // The pid is for operators wondering who holds a lock; only the token is compared.
  const content = JSON.stringify({ pid: Deno.pid, token, acquired_at: new Date().toISOString() }) + "\n";
  try {
    await Deno.mkdir(dirname(path), { recursive: true, mode: 0o700 });
  } catch (err) {
    throw toStorageError(err, "create the lock directory", dirname(path));
  }
  for (;;) {
    options.signal?.throwIfAborted();
    if (await tryCreate(path, content)) return new FileLock(name, path, token, options.refreshMs);
    const broken = await breakIfStale(path, options.staleMs);
    if (!broken) await sleep(options.pollMs, options.signal);
  }
}

/** Creates `path` only if it does not exist (O_EXCL); resolves false when it does. */
async function tryCreate(path: string, content: string): Promise<boolean> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { write: true, createNew: true, mode: 0o600 });
  } catch (err) {
    if (err instanceof Deno.errors.AlreadyExists) return false;
    throw toStorageError(err, "create the lock file", path);
  }
  try {
    const bytes = new TextEncoder().encode(content);
    for (let written = 0; written < bytes.length;) written += await file.write(bytes.subarray(written));
  } catch (err) {
    file.close();
    // A lock file we could not fill is still ours: remove it rather than make others wait it out.
    await Deno.remove(path).catch(() => {});
    throw toStorageError(err, "write the lock file", path);
  }
  file.close();
  return true;
}

function isStale(info: Deno.FileInfo, staleMs: number): boolean {
  return info.mtime === null || Date.now() - info.mtime.getTime() > staleMs;
}

async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw toStorageError(err, "inspect the lock file", path);
  }
}

async function removeIfExists(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw toStorageError(err, "remove the lock file", path);
  }
}

/**
 * Removes the lock file when it is stale; resolves true when the caller should retry at once (the file is
 * gone). Two waiters may find the same stale file: each must first create `<path>.break`, and re-checks
 * staleness while holding it, so a waiter never removes the fresh lock another waiter just took.
 */
async function breakIfStale(path: string, staleMs: number): Promise<boolean> {
  const info = await statOrNull(path);
  if (info === null) return true;
  if (!isStale(info, staleMs)) return false;
  const breaker = `${path}.break`;
  if (!(await tryCreate(breaker, ""))) {
    // A breaker left by a waiter that crashed while breaking would block everyone: it goes stale too.
    const breakerInfo = await statOrNull(breaker);
    if (breakerInfo !== null && isStale(breakerInfo, staleMs)) await removeIfExists(breaker);
    return false;
  }
  try {
    const again = await statOrNull(path);
    if (again !== null && isStale(again, staleMs)) await removeIfExists(path);
  } finally {
    await removeIfExists(breaker);
  }
  return true;
}

class FileLock implements StorageLock {
  readonly name: string;
  readonly #path: string;
  readonly #token: string;
  readonly #lost = new AbortController();
  readonly #timer: ReturnType<typeof setInterval>;
  #refreshing: Promise<void> | undefined;
  #released = false;

  constructor(name: string, path: string, token: string, refreshMs: number) {
    this.name = name;
    this.#path = path;
    this.#token = token;
    this.#timer = setInterval(() => {
      this.#refreshing ??= this.#refresh().finally(() => this.#refreshing = undefined);
    }, refreshMs);
  }

  get lost(): AbortSignal {
    return this.#lost.signal;
  }

  /** Touches the lock file if it is still ours; marks the lock lost when another holder replaced it. */
  async #refresh(): Promise<void> {
    try {
      if (!(await this.#isOurs())) {
        clearInterval(this.#timer);
        this.#lost.abort(new Error(`Lock "${this.name}" was taken over by another process`));
        return;
      }
      const now = new Date();
      await Deno.utime(this.#path, now, now);
    } catch {
      // Transient (e.g. EIO): the next refresh tries again, and the timeout leaves room for many misses.
    }
  }

  async #isOurs(): Promise<boolean> {
    try {
      return (await Deno.readTextFile(this.#path)).includes(this.#token);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return false;
      throw err;
    }
  }

  /** Never rejects: a lock file that cannot be removed goes stale and is broken by the next waiter. */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    clearInterval(this.#timer);
    await this.#refreshing;
    try {
      if (await this.#isOurs()) await Deno.remove(this.#path);
    } catch {
      // See the doc comment: the stale timeout is the fallback.
    }
  }
}
