import assert from "node:assert/strict";
import { parseConfig } from "./parse.ts";
import { configWarnings } from "./warnings.ts";

function warningsFor(limits: string): string[] {
  const config = parseConfig(`proxies:\n  "a.test":\n    upstream: http://127.0.0.1:1\n${limits}`, "/x.yaml");
  return configWarnings(config).map((w) => `${w.key}: ${w.message}`);
}

Deno.test("configWarnings() says nothing about the default limits", () => {
  assert.deepEqual(warningsFor(""), []);
  assert.deepEqual(warningsFor("limits:\n  max_header: 16KiB\n"), []);
});

Deno.test("configWarnings() says which protocol refuses a max_header Deno cannot honour", () => {
  const [h2] = warningsFor("limits:\n  max_header: 32KiB\n");
  assert.match(h2!, /^limits\.max_header: 32768 bytes .*over HTTP\/2 past 16 KiB with a bare 431/);
  assert.doesNotMatch(h2!, /HTTP\/1\.1/);
  const [both] = warningsFor("limits:\n  max_header: 1MiB\n");
  assert.match(both!, /HTTP\/1\.1 Deno refuses heads past 64 KiB with 400, and over HTTP\/2/);
});
