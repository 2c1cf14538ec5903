// Storage held in a Map, for tests of code built on Storage (the certificate repository, the ACME worker):
// it keeps the same contract as FileStorage, including locks, within one process. It persists nothing and
// shares nothing between processes or workers.

import {
  checkKey,
  type LockOptions,
  type Storage,
  StorageError,
  type StorageKey,
  type StorageLock,
  type StoreOptions,
} from "./storage.ts";

interface Entry {
  value: Uint8Array;
  private: boolean;
}

/**
 * The Storage contract in memory. Values are copied in and out, so callers cannot change what is stored by
 * mutating a buffer. Every call completes in one microtask turn, which makes each one trivially atomic.
 */
export class MemoryStorage implements Storage {
  readonly #entries = new Map<StorageKey, Entry>();
  /** Lock name -> the release of the current holder's turn, chained so waiters go in order. */
  readonly #locks = new Map<string, Promise<void>>();

  describe(key: StorageKey): string {
    return `memory:${key}`;
  }

  /** Whether `key` was stored with `private: true` (for tests); false when missing. */
  isPrivate(key: StorageKey): boolean {
    return this.#entries.get(key)?.private ?? false;
  }

  load(key: StorageKey): Promise<Uint8Array | null> {
    return Promise.try(() => {
      checkKey(key);
      return this.#entries.get(key)?.value.slice() ?? null;
    });
  }

  store(key: StorageKey, value: Uint8Array | string, options: StoreOptions = {}): Promise<void> {
    return Promise.try(() => {
      checkKey(key);
      const segments = key.split("/");
      for (let i = 1; i < segments.length; i++) {
        const prefix = segments.slice(0, i).join("/");
        if (this.#entries.has(prefix)) throw this.#conflict(key, `"${prefix}" is a key`);
      }
      if (this.#keysBelow(key).length > 0) throw this.#conflict(key, "it has keys below it");
      const bytes = typeof value === "string" ? new TextEncoder().encode(value) : value.slice();
      this.#entries.set(key, { value: bytes, private: options.private === true });
    });
  }

  delete(key: StorageKey): Promise<boolean> {
    return Promise.try(() => {
      checkKey(key);
      const doomed = [...this.#keysBelow(key), ...(this.#entries.has(key) ? [key] : [])];
      for (const k of doomed) this.#entries.delete(k);
      return doomed.length > 0;
    });
  }

  list(prefix: StorageKey): Promise<string[]> {
    return Promise.try(() => {
      checkKey(prefix, true);
      const names = new Set<string>();
      const start = prefix === "" ? "" : prefix + "/";
      for (const key of this.#entries.keys()) {
        if (key.startsWith(start)) names.add(key.slice(start.length).split("/")[0] ?? "");
      }
      return [...names].sort();
    });
  }

  rename(from: StorageKey, to: StorageKey): Promise<void> {
    return Promise.try(() => {
      checkKey(from);
      checkKey(to);
      if (this.#entries.has(to) || this.#keysBelow(to).length > 0) {
        throw new StorageError(
          `Cannot rename "${this.describe(from)}" to "${this.describe(to)}": the target exists`,
        );
      }
      const moving = this.#entries.has(from) ? [from] : this.#keysBelow(from);
      if (moving.length === 0) {
        throw new StorageError(`Cannot rename "${this.describe(from)}": the source does not exist`);
      }
      for (const key of moving) {
        const entry = this.#entries.get(key);
        this.#entries.delete(key);
        if (entry !== undefined) this.#entries.set(to + key.slice(from.length), entry);
      }
    });
  }

  async lock(name: string, options: LockOptions = {}): Promise<StorageLock> {
    checkKey(name);
    options.signal?.throwIfAborted();
    const previous = this.#locks.get(name) ?? Promise.resolve();
    let releaseTurn = () => {};
    const turn = new Promise<void>((resolve) => releaseTurn = resolve);
    // Queue behind the current holder even if we give up waiting, so the chain never skips a holder.
    const mine = previous.then(() => turn);
    this.#locks.set(name, mine);
    await waitOrAbort(previous, options.signal, releaseTurn);
    let released = false;
    return {
      name,
      lost: new AbortController().signal,
      release: () => {
        if (!released) {
          released = true;
          if (this.#locks.get(name) === mine) this.#locks.delete(name);
          releaseTurn();
        }
        return Promise.resolve();
      },
    };
  }

  #keysBelow(prefix: StorageKey): StorageKey[] {
    return [...this.#entries.keys()].filter((key) => key.startsWith(prefix + "/"));
  }

  #conflict(key: StorageKey, why: string): StorageError {
    return new StorageError(
      `Cannot write "${
        this.describe(key)
      }": ${why}; a key cannot also be a prefix (this is a bug in the caller)`,
    );
  }
}

/** Resolves when `previous` does; on abort, passes our turn on at once and rejects with the reason. */
function waitOrAbort(
  previous: Promise<void>,
  signal: AbortSignal | undefined,
  giveUp: () => void,
): Promise<void> {
  if (signal === undefined) return previous;
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      giveUp();
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    previous.then(() => {
      signal.removeEventListener("abort", onAbort);
      if (!signal.aborted) resolve();
    });
  });
}
