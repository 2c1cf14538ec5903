import assert from "node:assert/strict";
import { ConfigError, formatIssue, sortIssues } from "./errors.ts";

Deno.test("ConfigError's message lists every issue as FILE:LINE:COL: message, one per line", () => {
  const error = new ConfigError([
    { file: "/etc/nexo/config.yaml", line: 3, col: 5, message: "first" },
    { file: "/etc/nexo/config.yaml", line: 9, col: 1, message: "second" },
  ]);
  assert.equal(error.message, "/etc/nexo/config.yaml:3:5: first\n/etc/nexo/config.yaml:9:1: second");
  assert.equal(error.name, "ConfigError");
  assert.equal(error.issues.length, 2);
  assert.ok(error instanceof Error);
});

Deno.test("formatIssue() leaves out the position of a whole-file issue", () => {
  assert.equal(formatIssue({ file: "/x.yaml", line: 0, col: 0, message: "missing" }), "/x.yaml: missing");
});

Deno.test("ConfigError refuses to be built without issues", () => {
  assert.throws(() => new ConfigError([]), TypeError);
});

Deno.test("sortIssues() orders by line then column, keeping ties in the order found", () => {
  const issue = (line: number, col: number, message: string) => ({ file: "f", line, col, message });
  const sorted = sortIssues([issue(5, 1, "c"), issue(2, 7, "b"), issue(2, 3, "a"), issue(5, 1, "d")]);
  assert.deepEqual(sorted.map((i) => i.message), ["a", "b", "c", "d"]);
});
