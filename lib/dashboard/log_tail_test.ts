import assert from "node:assert/strict";
import { LogTail, TAIL_LIMITS } from "./log_tail.ts";

Deno.test("LogTail keeps the last lines and the latest requests apart, each bounded, long values cut", () => {
  const tail = new LogTail({ now: () => 0 });
  tail.add("info", "config loaded", { file: "/etc/nexo/config.yaml", routes: 2, unused: undefined });
  for (let i = 0; i < TAIL_LIMITS.requests + 50; i++) {
    tail.add("info", "request", { host: `made-up-${i}.example`, path: "/" + "a".repeat(9000), status: 404 });
  }
  for (let i = 0; i < TAIL_LIMITS.lines + 1; i++) tail.add("warn", "certificate skipped", { n: i });
  const lines = tail.lines();
  assert.equal(lines.length, TAIL_LIMITS.lines);
  assert.equal(lines[0]!.fields.n, 1, "the oldest went first; requests did not push them out");
  const requests = tail.requests();
  assert.equal(requests.length, TAIL_LIMITS.requests);
  assert.equal(requests.at(-1)!.fields.host, `made-up-${TAIL_LIMITS.requests + 49}.example`);
  assert.equal(String(requests[0]!.fields.path).length, TAIL_LIMITS.valueChars + 1);
  assert.deepEqual(Object.keys(new LogTail().lines()), []);
});
