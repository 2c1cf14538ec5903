import assert from "node:assert/strict";
import { UpstreamHealth } from "./upstream_health.ts";

const url = new URL("http://10.0.0.5:3000");
const check = {
  path: "/",
  intervalMs: 1000,
  timeoutMs: 500,
  status: { min: 200, max: 399 },
  healthyAfter: 2,
  unhealthyAfter: 3,
};

Deno.test("UpstreamHealth: passive health rests an upstream after max_fails within the window, then lets it back", () => {
  const health = new UpstreamHealth(url, null, { maxFails: 3, failWindowMs: 10_000 });
  assert.equal(health.requestFailed("refused", 0), false);
  assert.equal(health.requestFailed("refused", 11_000), false, "the first failure left the window");
  assert.equal(health.requestFailed("refused", 12_000), false);
  assert.equal(health.requestFailed("refused", 13_000), true);
  assert.equal(health.healthy(13_001), false);
  assert.equal(health.healthy(23_000), true, "back after a window's rest");
  assert.equal(health.requestFailed("refused", 23_001), false, "the failures that took it out count no more");
  assert.deepEqual([health.failed, health.lastError], [5, "refused"]);
  const never = new UpstreamHealth(url, null, null);
  for (let i = 0; i < 10; i++) assert.equal(never.requestFailed("refused", i), false);
  assert.equal(never.healthy(10), true);
});

Deno.test("UpstreamHealth: checks take an upstream out after unhealthy_after and back after healthy_after", () => {
  const health = new UpstreamHealth(url, check, { maxFails: 1, failWindowMs: 60_000 });
  assert.equal(health.checked(false, "503", 0), null);
  assert.equal(health.checked(false, "503", 1), null);
  assert.equal(health.checked(false, "503", 2), false);
  assert.equal(health.checked(true, null, 3), null);
  assert.equal(health.checked(true, null, 4), true);
  // A passing check also ends a rest passive health imposed.
  assert.equal(health.requestFailed("reset", 5), true);
  assert.equal(health.healthy(6), false);
  assert.equal(health.checked(true, null, 7), true);
  assert.equal(health.healthy(8), true);
});
