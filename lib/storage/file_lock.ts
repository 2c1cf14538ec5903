// Locks between processes for FileStorage: one exclusively created lock file per name, whose holder keeps a
// flock(2) on it and touches it while it works. A waiter breaks it at once when the flock is gone (the kernel
// drops it when the holder dies, even by kill -9), else once nobody has touched it for the stale timeout. It
// does not queue waiters fairly, and cannot stop a holder that stalled past the timeout: that holder's `lost`
// signal fires instead.

import { sleep } from "../sleep.ts";
import { dirname } from "../path.ts";
import type { LockOptions, StorageLock } from "./storage.ts";
import { toStorageError } from "./fs_errors.ts";
import { startInterval, stopTimer, type Timer } from "../timers.ts";
import { isoTime } from "../iso_time.ts";

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
 * it and breaking it when its holder is gone (see holderIsGone) or it is stale. Creates the lock file's
 * directory (0700). Rejects with the signal's reason when `options.signal` aborts, or with a StorageError
 * when the lock directory cannot be written.
 */
export async function acquireFileLock(
  path: string,
  name: string,
  options: LockTimings & LockOptions,
): Promise<StorageLock> {
  const token = crypto.randomUUID();
  try {
    await Deno.mkdir(dirname(path), { recursive: true, mode: 0o700 });
  } catch (err) {
    throw toStorageError(err, "create the lock directory", dirname(path));
  }
  for (;;) {
    options.signal?.throwIfAborted();
    const file = await tryCreate(path, lockContent(token));
    if (file !== null) return new FileLock({ name, path, token, refreshMs: options.refreshMs, file });
    const broken = await breakIfDead(path, options);
    if (!broken) await sleep(options.pollMs, options.signal);
  }
}

// Windows locks are mandatory: a flock held there would keep waiters from reading the lock file at all.
const USE_FLOCK = Deno.build.os !== "windows";

/**
 * The content of a lock (or breaker) file. The pid is for operators wondering who holds a lock; only the
 * token is compared. `flock` tells waiters that the holder keeps a flock on the file (see holderIsGone).
 */
function lockContent(token: string): (flocked: boolean) => string {
  return (flocked) =>
    JSON.stringify({ pid: Deno.pid, token, acquired_at: isoTime(Date.now()), flock: flocked }) + "\n";
}

/**
 * Creates `path` only if it does not exist (O_EXCL), takes an exclusive flock on it (where the file system
 * allows one), then writes `content(flocked)`; resolves it open, or null when it exists. So a lock file
 * with content is already flocked by its holder, and an empty one is at most microseconds old unless its
 * holder died.
 */
async function tryCreate(path: string, content: (flocked: boolean) => string): Promise<Deno.FsFile | null> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { write: true, createNew: true, mode: 0o600 });
  } catch (err) {
    if (err instanceof Deno.errors.AlreadyExists) return null;
    throw toStorageError(err, "create the lock file", path);
  }
  try {
    const flocked = USE_FLOCK && await file.lock(true).then(() => true, () => false);
    const bytes = new TextEncoder().encode(content(flocked));
    for (let written = 0; written < bytes.length;) written += await file.write(bytes.subarray(written));
  } catch (err) {
    file.close();
    // A lock file we could not fill is still ours: remove it rather than make others wait it out.
    await Deno.remove(path).catch(() => {});
    throw toStorageError(err, "write the lock file", path);
  }
  return file;
}

/**
 * Whether the holder of the lock file at `path` is known to be dead: its flock is free while `path` still
 * names the probed file, and either the file says its holder kept a flock or the file is empty and older
 * than `emptyGraceMs` (its holder died between creating and writing it). A holder unlinks its file before
 * closing it, and the kernel drops a dead process's flocks, so a free flock on a linked file means the
 * holder (a process or a worker) is gone, however it died. False when unsure (no flock recorded: an older
 * nexo or a file system without flock; the file changed or cannot be read): the stale timeout decides.
 */
async function holderIsGone(path: string, emptyGraceMs: number): Promise<boolean> {
  if (!USE_FLOCK) return false;
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch {
    return false;
  }
  try {
    // Content and flock are probed through one descriptor, so they belong to the same file. A lock file is
    // ~150 bytes, which one read of a regular file returns whole.
    const buffer = new Uint8Array(1024);
    const length = await file.read(buffer) ?? 0;
    const probed = await file.stat();
    if (length === 0) {
      if (probed.mtime === null || Date.now() - probed.mtime.getTime() < emptyGraceMs) return false;
    } else {
      const record = JSON.parse(new TextDecoder().decode(buffer.subarray(0, length))) as { flock?: unknown };
      if (record.flock !== true) return false;
    }
    if (!(await file.tryLock(false))) return false;
    const current = await Deno.stat(path);
    return probed.ino !== null && probed.ino === current.ino && probed.dev === current.dev;
  } catch {
    return false; // torn, gone, or no flock support
  } finally {
    file.close();
  }
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
 * Removes the lock file when its holder is gone or it is stale; resolves true when the caller should retry
 * at once (the file is gone). Two waiters may find the same dead file: each must first create
 * `<path>.break` (a lock file itself), and re-checks while holding it, so a waiter never removes the fresh
 * lock another waiter just took. A holder that stalls between creating its file and writing it for longer
 * than `refreshMs` counts as dead; if it was not, it finds out through its `lost` signal.
 */
async function breakIfDead(path: string, timings: LockTimings): Promise<boolean> {
  const isDead = async (file: string, info: Deno.FileInfo) =>
    isStale(info, timings.staleMs) || await holderIsGone(file, timings.refreshMs);
  const info = await statOrNull(path);
  if (info === null) return true;
  if (!(await isDead(path, info))) return false;
  const breaker = `${path}.break`;
  const breakerFile = await tryCreate(breaker, lockContent(crypto.randomUUID()));
  if (breakerFile === null) {
    // A breaker left by a waiter that died while breaking would block everyone: it is broken like a lock.
    const breakerInfo = await statOrNull(breaker);
    if (breakerInfo !== null && await isDead(breaker, breakerInfo)) await removeIfExists(breaker);
    return false;
  }
  try {
    const again = await statOrNull(path);
    if (again !== null && await isDead(path, again)) await removeIfExists(path);
  } finally {
    try {
      await removeIfExists(breaker);
    } finally {
      breakerFile.close(); // after the unlink, as FileLock.release does
    }
  }
  return true;
}

class FileLock implements StorageLock {
  readonly name: string;
  readonly #path: string;
  readonly #token: string;
  /** The lock file, open (and flocked) for as long as the lock is held. */
  readonly #file: Deno.FsFile;
  readonly #lost = new AbortController();
  readonly #timer: Timer;
  #refreshing: Promise<void> | undefined;
  #released = false;

  constructor(held: { name: string; path: string; token: string; refreshMs: number; file: Deno.FsFile }) {
    this.name = held.name;
    this.#path = held.path;
    this.#token = held.token;
    this.#file = held.file;
    this.#timer = startInterval(() => {
      this.#refreshing ??= this.#refresh().finally(() => this.#refreshing = undefined);
    }, held.refreshMs);
  }

  get lost(): AbortSignal {
    return this.#lost.signal;
  }

  /** Touches the lock file if it is still ours; marks the lock lost when another holder replaced it. */
  async #refresh(): Promise<void> {
    try {
      if (!(await this.#isOurs())) {
        stopTimer(this.#timer);
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
    stopTimer(this.#timer);
    await this.#refreshing;
    try {
      if (await this.#isOurs()) await Deno.remove(this.#path);
    } catch {
      // See the doc comment: the stale timeout is the fallback.
    } finally {
      // Only now, after the unlink: a waiter must never see our file linked with its flock free.
      this.#file.close();
    }
  }
}
