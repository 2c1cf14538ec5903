// The shared test suite every Storage implementation runs (file_storage_test.ts, memory_storage_test.ts,
// tests/redis_storage_test.ts), so that code written against the Storage contract behaves the same on each.
// It checks only the contract in storage.ts, cross-process locks included where the fixture can hold a lock
// in another process; file modes, fsync and crash cases are tested beside each implementation.

import assert from "node:assert/strict";
import { loadText, type Storage, StorageError, withLock } from "./storage.ts";
import { sleep } from "../sleep.ts";

/** A fresh, empty storage for one test, and how to dispose of it. */
export interface StorageFixture {
  storage: Storage;
  close(): Promise<void>;
  /**
   * Takes lock `name` in another process sharing the backing store (a child process on the same folder,
   * another Redis connection) and resolves once it holds it; `die()` ends that holder without releasing,
   * as SIGKILL would. Absent for stores that live inside one process (memory).
   */
  holdElsewhere?: (name: string) => Promise<{ die(): Promise<void> }>;
  /** How soon after its holder died a lock must be taken over, ms (the implementation's stated bound). */
  takeoverMs?: number;
}

/**
 * Registers one `Deno.test` per clause of the Storage contract, named "<implementation>: <behaviour>".
 * `open` is called once per test and must return an empty storage.
 */
export function runStorageConformance(
  implementation: string,
  open: () => Promise<StorageFixture>,
  options: { crossProcess: boolean },
): void {
  for (const [behaviour, body] of Object.entries(CASES)) {
    Deno.test(`${implementation}: ${behaviour}`, async () => {
      const fixture = await open();
      try {
        await body(fixture.storage);
      } finally {
        await fixture.close();
      }
    });
  }
  for (const [behaviour, body] of Object.entries(CROSS_PROCESS_CASES)) {
    // Ignored, not passed, where no other process can share the store.
    Deno.test({
      name: `${implementation}: ${behaviour}`,
      ignore: !options.crossProcess,
      fn: async () => {
        const fixture = await open();
        try {
          await body(fixture);
        } finally {
          await fixture.close();
        }
      },
    });
  }
}

/** Cases that need a second process on the same backing store (`holdElsewhere`). */
const CROSS_PROCESS_CASES: Record<string, (fixture: StorageFixture) => Promise<void>> = {
  "lock() waits for a live holder in another process, and takes the lock once that holder dies": async (
    fixture,
  ) => {
    const { storage, holdElsewhere, takeoverMs } = fixture;
    assert.ok(holdElsewhere && takeoverMs, "the fixture can hold a lock elsewhere");
    const holder = await holdElsewhere("issue/example.com");
    let acquiredAt = 0;
    const waiting = storage.lock("issue/example.com").then((lock) => (acquiredAt = Date.now(), lock));
    // A holder that keeps its lock alive keeps it past the takeover bound.
    await sleep(2 * takeoverMs);
    assert.equal(acquiredAt, 0, "a live holder in another process is waited for");
    await holder.die();
    const diedAt = Date.now();
    const lock = await waiting;
    assert.ok(
      acquiredAt - diedAt <= takeoverMs,
      `taken over ${acquiredAt - diedAt} ms after the holder died`,
    );
    assert.equal(lock.lost.aborted, false);
    await lock.release();
  },
};

const text = (value: string) => new TextEncoder().encode(value);

const CASES: Record<string, (storage: Storage) => Promise<void>> = {
  "load() resolves null for a missing key and for a prefix": async (storage) => {
    assert.equal(await storage.load("absent"), null);
    assert.equal(await storage.load("absent/deeper/key"), null);
    await storage.store("dir/key", "v");
    assert.equal(await storage.load("dir"), null);
    assert.equal(await storage.load("dir/key/below"), null);
  },

  "store() then load() returns the same bytes, strings as UTF-8": async (storage) => {
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
    await storage.store("a/b/binary", bytes);
    assert.deepEqual(await storage.load("a/b/binary"), bytes);
    await storage.store("a/text", "grüße ✓");
    assert.equal(await loadText(storage, "a/text"), "grüße ✓");
  },

  "store() replaces the whole value, leaving nothing of a longer old one": async (storage) => {
    await storage.store("k", "a much longer first value");
    await storage.store("k", "short");
    assert.equal(await loadText(storage, "k"), "short");
  },

  "store() keeps a copy: changing the caller's buffer afterwards changes nothing": async (storage) => {
    const bytes = text("original");
    await storage.store("k", bytes);
    bytes.fill(0);
    const loaded = await storage.load("k");
    assert.equal(new TextDecoder().decode(loaded ?? new Uint8Array()), "original");
  },

  "store() rejects a key that is a prefix of other keys, or below a key, and keeps both": async (storage) => {
    await storage.store("p/child", "child");
    await assert.rejects(storage.store("p", "parent"), StorageError);
    await storage.store("leaf", "leaf");
    await assert.rejects(storage.store("leaf/below", "x"), StorageError);
    assert.equal(await loadText(storage, "p/child"), "child");
    assert.equal(await loadText(storage, "leaf"), "leaf");
  },

  "delete() resolves false for a missing key and true after removing one": async (storage) => {
    assert.equal(await storage.delete("absent"), false);
    assert.equal(await storage.delete("absent/deeper"), false);
    await storage.store("k", "v");
    assert.equal(await storage.delete("k"), true);
    assert.equal(await storage.load("k"), null);
    assert.equal(await storage.delete("k"), false);
  },

  "delete() of a prefix removes every key below it and nothing beside it": async (storage) => {
    await storage.store("site/a", "1");
    await storage.store("site/deep/b", "2");
    await storage.store("site-other/c", "3");
    assert.equal(await storage.delete("site"), true);
    assert.equal(await storage.load("site/a"), null);
    assert.equal(await storage.load("site/deep/b"), null);
    assert.deepEqual(await storage.list(""), ["site-other"]);
  },

  "list() names direct children sorted, keys and prefixes alike, and [] for a missing prefix": async (
    storage,
  ) => {
    assert.deepEqual(await storage.list(""), []);
    assert.deepEqual(await storage.list("absent"), []);
    await storage.store("b/x", "1");
    await storage.store("b/y/z", "2");
    await storage.store("a", "3");
    await storage.store(".hidden/k", "4");
    assert.deepEqual(await storage.list(""), [".hidden", "a", "b"]);
    assert.deepEqual(await storage.list("b"), ["x", "y"]);
    assert.deepEqual(await storage.list("b/y"), ["z"]);
  },

  "list() no longer names a prefix once its last key is deleted": async (storage) => {
    await storage.store("gone/deep/k", "1");
    await storage.store("kept", "2");
    await storage.delete("gone/deep/k");
    assert.deepEqual(await storage.list(""), ["kept"]);
  },

  "rename() moves a key, and a whole prefix with every key below it": async (storage) => {
    await storage.store("one", "1");
    await storage.rename("one", "moved/one");
    assert.equal(await storage.load("one"), null);
    assert.equal(await loadText(storage, "moved/one"), "1");
    await storage.store(".new/a", "a");
    await storage.store(".new/sub/b", "b");
    await storage.rename(".new", "live");
    assert.deepEqual(await storage.list(""), ["live", "moved"]);
    assert.equal(await loadText(storage, "live/a"), "a");
    assert.equal(await loadText(storage, "live/sub/b"), "b");
  },

  "rename() rejects when the target exists or the source is missing, changing nothing": async (storage) => {
    await storage.store("src/k", "new");
    await storage.store("dst/k", "old");
    await assert.rejects(storage.rename("src", "dst"), StorageError);
    await assert.rejects(storage.rename("src/k", "dst/k"), StorageError);
    await assert.rejects(storage.rename("absent", "elsewhere"), StorageError);
    assert.equal(await loadText(storage, "src/k"), "new");
    assert.equal(await loadText(storage, "dst/k"), "old");
    assert.equal(await storage.load("elsewhere"), null);
  },

  "every method rejects an invalid key with a StorageError before touching anything": async (storage) => {
    const bad = [
      "",
      "/abs",
      "trailing/",
      "a//b",
      "../up",
      "a/./b",
      "a/../b",
      "back\\slash",
      "nul\0",
      ".locks/x",
    ];
    for (const key of bad) {
      await assert.rejects(storage.load(key), StorageError, `load(${JSON.stringify(key)})`);
      await assert.rejects(storage.store(key, "v"), StorageError, `store(${JSON.stringify(key)})`);
      await assert.rejects(storage.delete(key), StorageError, `delete(${JSON.stringify(key)})`);
      await assert.rejects(storage.rename("x", key), StorageError, `rename(x, ${JSON.stringify(key)})`);
      await assert.rejects(storage.lock(key), StorageError, `lock(${JSON.stringify(key)})`);
    }
    await assert.rejects(storage.list("../up"), StorageError);
    assert.deepEqual(await storage.list(""), []);
  },

  "overlapping store() calls on one key leave exactly one complete value": async (storage) => {
    const values = Array.from({ length: 20 }, (_, i) => String(i).repeat(10_000 + i));
    await Promise.all(values.map((value) => storage.store("contended", value)));
    const final = await loadText(storage, "contended");
    assert.ok(final !== null && values.includes(final), "the final value is one of the written values");
    assert.deepEqual(await storage.list(""), ["contended"]);
  },

  "lock() makes a second holder of the same name wait until the first releases": async (storage) => {
    const events: string[] = [];
    const first = await storage.lock("issue/example.com");
    const second = storage.lock("issue/example.com").then((lock) => {
      events.push("second acquired");
      return lock;
    });
    const other = await storage.lock("issue/other.example"); // a different name does not wait
    await other.release();
    await sleep(50);
    events.push("first releasing");
    await first.release();
    await (await second).release();
    assert.deepEqual(events, ["first releasing", "second acquired"]);
  },

  "withLock() releases the lock when the function throws": async (storage) => {
    await assert.rejects(
      withLock(storage.lock("job"), () => Promise.reject(new Error("boom"))),
      /boom/,
    );
    const again = await withLock(storage.lock("job"), (lock) => Promise.resolve(lock.name));
    assert.equal(again, "job");
  },

  "lock() stops waiting when its signal aborts, and the lock stays usable": async (storage) => {
    const held = await storage.lock("job");
    const controller = new AbortController();
    const waiting = storage.lock("job", { signal: controller.signal });
    controller.abort(new Error("gave up"));
    await assert.rejects(waiting, /gave up/);
    await held.release();
    const next = await storage.lock("job");
    assert.equal(next.lost.aborted, false);
    await next.release();
    await next.release(); // idempotent
  },
};
