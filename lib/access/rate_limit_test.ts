import assert from "node:assert/strict";
import { clientKey, MAX_TRACKED_CLIENTS, RateLimiter } from "./rate_limit.ts";

Deno.test("RateLimiter lets a burst through, refuses with the seconds until a token, and refills", () => {
  const limiter = new RateLimiter({ requests: 6, perMs: 60_000, burst: 3 });
  const at = 1_000_000;
  assert.deepEqual([0, 1, 2].map(() => limiter.take("192.0.2.1", at)), [0, 0, 0]);
  // One token every 10 s.
  assert.equal(limiter.take("192.0.2.1", at), 10);
  assert.equal(limiter.take("192.0.2.1", at + 4_000), 6);
  assert.equal(limiter.take("192.0.2.1", at + 10_000), 0);
  assert.equal(limiter.take("192.0.2.1", at + 10_000), 10);
  // Refused requests take nothing: after a minute of silence the bucket is full again, never fuller.
  assert.deepEqual([0, 1, 2, 3].map(() => limiter.take("192.0.2.1", at + 120_000)), [0, 0, 0, 10]);
  // A clock that goes back gives nothing.
  assert.equal(limiter.take("192.0.2.1", at), 10);
});

Deno.test("RateLimiter keeps a bucket per IPv4 address and per IPv6 /64", () => {
  const limiter = new RateLimiter({ requests: 1, perMs: 60_000, burst: 1 });
  assert.equal(limiter.take("192.0.2.1", 0), 0);
  assert.equal(limiter.take("::ffff:192.0.2.1", 0), 60);
  assert.equal(limiter.take("192.0.2.2", 0), 0);
  assert.equal(limiter.take("2001:db8:0:1::1", 0), 0);
  assert.equal(limiter.take("2001:db8:0:1:8000::9", 0), 60);
  assert.equal(limiter.take("2001:db8:0:2::1", 0), 0);
  assert.equal(clientKey("2001:0db8:0000:0001::1"), "2001:db8:0:1::/64");
  assert.equal(clientKey("::ffff:192.0.2.1"), "192.0.2.1");
});

Deno.test("RateLimiter holds at most its bound of clients under 100,000 addresses, forgetting the stalest", () => {
  const limiter = new RateLimiter({ requests: 1, perMs: 3_600_000, burst: 1 });
  assert.equal(limiter.take("198.51.100.1", 0), 0);
  const before = Deno.memoryUsage().heapUsed;
  for (let i = 0; i < 100_000; i++) {
    limiter.take(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, 1 + i);
    // A client that keeps coming stays tracked (and limited) while strangers churn past it.
    if (i % 1000 === 0) assert.ok(limiter.take("198.51.100.1", 1 + i) > 0, `tracked at ${i}`);
  }
  assert.equal(limiter.size, MAX_TRACKED_CLIENTS);
  // About 100 bytes a client: the table stays a few MiB, whatever the number of addresses.
  assert.ok(Deno.memoryUsage().heapUsed - before < 16 * 1024 * 1024);
  // The first strangers were forgotten: back with a full bucket.
  assert.equal(limiter.take("10.0.0.0", 100_001), 0);
});
