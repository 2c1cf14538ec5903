import assert from "node:assert/strict";
import { parseCpuTicks } from "./process.ts";

Deno.test("parseCpuTicks() adds utime and stime, also when the command name has spaces and parentheses", () => {
  const stat = "4242 (Web Worker (x)) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 9 0 100 0 0";
  assert.equal(parseCpuTicks(stat), 325);
});
