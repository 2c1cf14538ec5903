import assert from "node:assert/strict";
import { cancelDeadline, startDeadline, TICK_MS } from "./deadlines.ts";

Deno.test("startDeadline() fires once, never early and at most a tick late", async () => {
  const started = performance.now();
  const fired: number[] = [];
  await new Promise<void>((resolve) => {
    startDeadline(120, () => {
      fired.push(performance.now() - started);
      resolve();
    });
  });
  await new Promise((resolve) => setTimeout(resolve, 3 * TICK_MS));
  assert.equal(fired.length, 1);
  assert.ok(fired[0]! >= 120, `fired after ${fired[0]} ms`);
  // A tick of lateness, plus slack for a loaded machine.
  assert.ok(fired[0]! < 120 + TICK_MS + 500, `fired after ${fired[0]} ms`);
});

Deno.test("cancelDeadline() stops it; deadlines fire in any order of starting; no timer is left behind", async () => {
  const calls: string[] = [];
  const cancelled = startDeadline(60, () => calls.push("cancelled"));
  const late = startDeadline(150, () => calls.push("late"));
  const early = startDeadline(10, () => calls.push("early"));
  assert.ok(cancelled && late && early);
  cancelDeadline(cancelled);
  cancelDeadline(cancelled); // twice is harmless
  await new Promise((resolve) => setTimeout(resolve, 150 + 3 * TICK_MS));
  assert.deepEqual(calls, ["early", "late"]);
  // The test's op sanitizer fails it if the interval were still running now.
});

Deno.test("startDeadline() treats an infinite or too long limit as none", () => {
  assert.equal(startDeadline(Infinity, () => {}), undefined);
  assert.equal(startDeadline(2 ** 31, () => {}), undefined);
  cancelDeadline(undefined);
});
