// RedisStorage against a real redis-server: the Storage conformance suite, locks held across two clients (two
// nexo processes), a dead holder's lock taken over at its expiry, the holder told through `lost`, binary
// values, a password, and an outage: errors name Redis and the fix, and work resumes when it is back.

import assert from "node:assert/strict";
import { runStorageConformance } from "../lib/storage/storage_conformance.ts";
import { RedisStorage } from "../lib/storage/redis_storage.ts";
import { RespClient } from "../lib/storage/resp_client.ts";
import { parseRedisUrl } from "../lib/storage/redis_url.ts";
import { StorageError } from "../lib/storage/storage.ts";
import { startRedis } from "./redis.ts";

const OPTIONS = { connectTimeoutMs: 2_000, commandTimeoutMs: 5_000 };

/** Short lock timings: a dead holder's lock expires after 600 ms. */
const CONFORMANCE_LOCKS = { ttlMs: 600, refreshMs: 200, pollMs: 50 };

runStorageConformance("RedisStorage", async () => {
  const redis = await startRedis();
  const client = new RespClient(parseRedisUrl(redis.url), OPTIONS);
  return {
    storage: new RedisStorage({ client, prefix: "nexo", lockTimings: CONFORMANCE_LOCKS }),
    close: async () => {
      client.close();
      await redis[Symbol.asyncDispose]();
    },
    // Another connection, as another nexo has; closing it stops its refreshes, as a killed process would.
    holdElsewhere: async (name) => {
      const other = new RespClient(parseRedisUrl(redis.url), OPTIONS);
      const lock = await new RedisStorage({ client: other, prefix: "nexo", lockTimings: CONFORMANCE_LOCKS })
        .lock(name);
      return {
        die: async () => {
          other.close();
          await lock.release(); // only clears its refresh timer: the closed connection sends nothing
        },
      };
    },
    // The expiry, plus a waiter's poll and a margin for a loaded machine.
    takeoverMs: CONFORMANCE_LOCKS.ttlMs + CONFORMANCE_LOCKS.pollMs + 400,
  };
}, { crossProcess: true });

Deno.test("RedisStorage: two clients share values and locks; a dead holder's lock is taken over at its expiry", async () => {
  await using redis = await startRedis();
  const timings = { ttlMs: 600, refreshMs: 200, pollMs: 50 };
  const a = new RespClient(parseRedisUrl(redis.url), OPTIONS);
  const b = new RespClient(parseRedisUrl(redis.url), OPTIONS);
  try {
    const first = new RedisStorage({ client: a, prefix: "cluster", lockTimings: timings });
    const second = new RedisStorage({ client: b, prefix: "cluster", lockTimings: timings });
    await first.store("example.com/cert.pem", "chain");
    assert.equal(new TextDecoder().decode((await second.load("example.com/cert.pem"))!), "chain");
    // Another prefix is another cluster.
    assert.equal(await new RedisStorage({ client: b, prefix: "other" }).load("example.com/cert.pem"), null);

    // A held lock is refreshed past its TTL: the other client waits.
    const held = await first.lock("issue/example.com");
    let secondGot = false;
    const waiting = second.lock("issue/example.com").then((lock) => (secondGot = true, lock));
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    assert.equal(secondGot, false, "a refreshed lock is not taken over");
    await held.release();
    await (await waiting).release();

    // The holder dies (its client closes, nothing refreshes): the waiter takes over within the TTL.
    const dying = new RespClient(parseRedisUrl(redis.url), OPTIONS);
    const dead = await new RedisStorage({ client: dying, prefix: "cluster", lockTimings: timings }).lock(
      "job",
    );
    dying.close();
    const started = Date.now();
    const taken = await second.lock("job");
    assert.ok(Date.now() - started < 2_000, `taken over after ${Date.now() - started} ms`);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(dead.lost.aborted, false, "a closed client cannot learn it lost the lock");
    await dead.release(); // its token no longer holds the lock: the new holder keeps it
    let third = false;
    const next = first.lock("job").then((lock) => (third = true, lock));
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(third, false, "the old holder's release did not free the new holder's lock");
    await taken.release();
    await (await next).release();
  } finally {
    a.close();
    b.close();
  }
});

Deno.test("RedisStorage: a stalled holder learns through lost that its lock was taken over", async () => {
  await using redis = await startRedis();
  const client = new RespClient(parseRedisUrl(redis.url), OPTIONS);
  const other = new RespClient(parseRedisUrl(redis.url), OPTIONS);
  try {
    // refreshMs past ttlMs: the lock expires between refreshes, as when a process stalls.
    const slow = new RedisStorage({
      client,
      prefix: "n",
      lockTimings: { ttlMs: 200, refreshMs: 600, pollMs: 20 },
    });
    const lock = await slow.lock("job");
    const thief = await new RedisStorage({
      client: other,
      prefix: "n",
      lockTimings: { ttlMs: 5_000, refreshMs: 1_000, pollMs: 20 },
    })
      .lock("job");
    await new Promise((resolve) => setTimeout(resolve, 900));
    assert.equal(lock.lost.aborted, true);
    assert.match(String(lock.lost.reason), /was taken over/);
    await lock.release();
    await thief.release();
  } finally {
    client.close();
    other.close();
  }
});

Deno.test("RedisStorage: a password, and an outage named with the fix; work resumes when Redis is back", async () => {
  await using redis = await startRedis({ password: "s3cret-pass" });
  const wrong = new RespClient(parseRedisUrl(redis.url.replace("redis://", "redis://:wr0ng-p4ss@")), OPTIONS);
  const refused = await new RedisStorage({ client: wrong, prefix: "n" }).load("k").then(() => null, (e) => e);
  wrong.close();
  assert.ok(refused instanceof StorageError, String(refused));
  assert.match(refused.message, /refused nexo's login: WRONGPASS/);
  assert.ok(!refused.message.includes("wr0ng-p4ss"), "the password is never in a message");

  const client = new RespClient(parseRedisUrl(redis.url), { ...OPTIONS, password: "s3cret-pass" });
  try {
    const storage = new RedisStorage({ client, prefix: "n" });
    await storage.store("k", new Uint8Array([0, 13, 10, 255]));
    assert.deepEqual(await storage.load("k"), new Uint8Array([0, 13, 10, 255]));
    await redis.stop();
    const down = await storage.load("k").then(() => null, (e) => e);
    assert.ok(down instanceof StorageError, String(down));
    assert.match(down.message, /Cannot read k: .*127\.0\.0\.1:\d+.*\(is Redis running and reachable\?\)/);
    assert.ok(!down.message.includes("s3cret-pass"));
    await redis.start();
    await storage.store("k", "back"); // the next command reconnects
    assert.equal(new TextDecoder().decode((await storage.load("k"))!), "back");
  } finally {
    client.close();
  }
});
