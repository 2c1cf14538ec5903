import assert from "node:assert/strict";
import { LOGIN_LIMITS, LoginLimiter } from "./login_limiter.ts";

Deno.test("LoginLimiter locks an address out after 5 failures in 15 minutes, for 15 minutes", () => {
  let now = 0;
  const limiter = new LoginLimiter({ now: () => now });
  for (let i = 0; i < LOGIN_LIMITS.failures - 1; i++) assert.equal(limiter.fail("198.51.100.7"), false);
  now += LOGIN_LIMITS.windowMs; // the first four are forgotten
  assert.equal(limiter.fail("198.51.100.7"), false);
  for (let i = 0; i < LOGIN_LIMITS.failures - 2; i++) limiter.fail("198.51.100.7");
  assert.equal(limiter.fail("198.51.100.7"), true);
  const locked = limiter.admit("198.51.100.7");
  assert.equal(locked.allowed, false);
  assert.deepEqual(locked, { allowed: false, reason: "locked", retryAfterS: LOGIN_LIMITS.lockoutMs / 1000 });
  const other = limiter.admit("203.0.113.9");
  assert.equal(other.allowed, true, "another address is not affected");
  if (other.allowed) other.release();
  now += LOGIN_LIMITS.lockoutMs;
  const again = limiter.admit("198.51.100.7");
  assert.equal(again.allowed, true);
  if (again.allowed) again.release();
});

Deno.test("LoginLimiter runs at most two checks at once and remembers a bounded number of addresses", () => {
  const limiter = new LoginLimiter();
  const one = limiter.admit("a");
  const two = limiter.admit("b");
  assert.deepEqual(limiter.admit("c"), { allowed: false, reason: "busy", retryAfterS: 1 });
  if (one.allowed) one.release();
  if (one.allowed) one.release(); // twice frees one slot only
  const three = limiter.admit("c");
  assert.equal(three.allowed, true);
  assert.equal(limiter.admit("d").allowed, false);
  if (two.allowed) two.release();
  if (three.allowed) three.release();
  for (let i = 0; i < LOGIN_LIMITS.failures; i++) limiter.fail("victim");
  for (let i = 0; i < LOGIN_LIMITS.addresses; i++) limiter.fail(`spray-${i}`);
  const forgotten = limiter.admit("victim");
  assert.equal(forgotten.allowed, true, "the oldest record went once 4,096 newer ones came");
  if (forgotten.allowed) forgotten.release();
});
