// A Storage wrapper for crash tests: it passes calls through until the N-th write (store, delete, rename),
// then "crashes": that write does not happen (a prefix delete happens in part, as a real crash mid-way
// through a recursive delete would leave it) and every later call fails. Not part of nexo.

import type { LockOptions, Storage, StorageKey, StorageLock, StoreOptions } from "../storage.ts";

/** What a crashed process's pending calls reject with. */
export class SimulatedCrash extends Error {
  override name = "SimulatedCrash";
}

export class CrashingStorage implements Storage {
  readonly #inner: Storage;
  readonly #crashAt: number;
  /** The writes performed (or attempted at the crash), in order, e.g. `rename .a+new -> a+next`. */
  readonly writes: string[] = [];

  /** Crashes at the write with index `crashAt` (0-based); Infinity never crashes. */
  constructor(inner: Storage, crashAt: number) {
    this.#inner = inner;
    this.#crashAt = crashAt;
  }

  get crashed(): boolean {
    return this.writes.length > this.#crashAt;
  }

  async #write<T>(description: string, perform: () => Promise<T>, partial?: () => Promise<void>): Promise<T> {
    if (this.crashed) throw new SimulatedCrash(`process already crashed; not performing ${description}`);
    this.writes.push(description);
    if (this.crashed) {
      await partial?.();
      throw new SimulatedCrash(`crashed at ${description}`);
    }
    return await perform();
  }

  #alive(): void {
    if (this.crashed) throw new SimulatedCrash("process already crashed");
  }

  describe(key: StorageKey): string {
    return this.#inner.describe(key);
  }

  load(key: StorageKey): Promise<Uint8Array | null> {
    return Promise.try(() => {
      this.#alive();
      return this.#inner.load(key);
    });
  }

  list(prefix: StorageKey): Promise<string[]> {
    return Promise.try(() => {
      this.#alive();
      return this.#inner.list(prefix);
    });
  }

  store(key: StorageKey, value: Uint8Array | string, options?: StoreOptions): Promise<void> {
    return this.#write(`store ${key}`, () => this.#inner.store(key, value, options));
  }

  delete(key: StorageKey): Promise<boolean> {
    return this.#write(`delete ${key}`, () => this.#inner.delete(key), async () => {
      const [first] = await this.#inner.list(key);
      if (first !== undefined) await this.#inner.delete(`${key}/${first}`);
    });
  }

  rename(from: StorageKey, to: StorageKey): Promise<void> {
    return this.#write(`rename ${from} -> ${to}`, () => this.#inner.rename(from, to));
  }

  /** Locks pass through and stay releasable, so the "restarted" process does not wait out a stale lock. */
  lock(name: string, options?: LockOptions): Promise<StorageLock> {
    return this.#inner.lock(name, options);
  }
}
