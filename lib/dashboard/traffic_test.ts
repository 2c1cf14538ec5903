import assert from "node:assert/strict";
import { TrafficHistory } from "./traffic.ts";

const MINUTE = 60_000;

Deno.test("TrafficHistory keeps an hour by minute and a day by hour per route, with recent percentiles", () => {
  let now = Date.UTC(2026, 11, 7, 12, 0, 30);
  const history = new TrafficHistory({ now: () => now });
  for (let i = 0; i < 98; i++) history.record("app.example.com", 200, 1000, 8);
  history.record("app.example.com", 502, 0, 3000);
  history.record("app.example.com", 404, 10, 70_000);
  now += 2 * MINUTE;
  history.record("-", 404, 0, 1);
  const snapshot = history.snapshot();
  const app = snapshot["app.example.com"]!;
  assert.equal(app.minutes.length, 60);
  assert.equal(app.hours.length, 24);
  const minute = app.minutes.at(-3)!;
  assert.equal(minute.requests, 100);
  assert.equal(minute.bytes, 98_010);
  assert.deepEqual(minute.status, [0, 98, 0, 1, 1]);
  assert.equal(minute.gateway, 1);
  assert.deepEqual(app.recent, { requests: 100, gateway: 1 });
  assert.equal(app.minutes.at(-1)!.requests, 0, "a minute without traffic is there, empty");
  assert.equal(app.hours.at(-1)!.requests, 100);
  assert.equal(app.p50Ms, 10);
  assert.equal(app.p99Ms, 5000);
  assert.equal(snapshot["-"]!.minutes.at(-1)!.requests, 1);
  now += 61 * MINUTE;
  assert.equal(
    history.snapshot()["app.example.com"]!.minutes.every((m) => m.requests === 0),
    true,
    "an hour on",
  );
  assert.equal(history.snapshot()["app.example.com"]!.hours.reduce((n, h) => n + h.requests, 0), 100);
});

Deno.test("TrafficHistory is bounded in routes, and survives a round trip through its file", () => {
  let now = Date.UTC(2026, 11, 7, 12, 0, 0);
  const history = new TrafficHistory({ now: () => now });
  for (let i = 0; i < 1500; i++) history.record(`host-${i}.example.com`, 200, 1, 1);
  assert.equal(Object.keys(history.snapshot()).length, 1000);
  const restored = new TrafficHistory({ now: () => now });
  restored.restore(history.toJson());
  assert.deepEqual(restored.snapshot(), history.snapshot());
  now += 25 * 3_600_000;
  const later = new TrafficHistory({ now: () => now });
  later.restore(history.toJson());
  assert.equal(
    later.snapshot()["host-1.example.com"]!.hours.every((h) => h.requests === 0),
    true,
    "a day later: gone",
  );
  assert.throws(() => later.restore(`{"version": 2}`), /not a nexo traffic file of version 1/);
  assert.throws(() => later.restore("not json"));
});
