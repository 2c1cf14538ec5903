import assert from "node:assert/strict";
import { parseConfig } from "../config/parse.ts";
import { Logger } from "../log.ts";
import { AccessRules } from "./rules.ts";

const config = (limit: string) =>
  parseConfig(
    `proxies:\n  "api.test":\n    redirect: example.org\n    rate_limit: ${limit}\n` +
      `  "other.test":\n    redirect: example.org\n    rate_limit: { requests: 1, per: 1h }\n`,
    "/test/config.yaml",
  );

Deno.test("AccessRules keeps a route's rate-limit buckets across a reload that leaves its limit alone", async () => {
  const first = await AccessRules.fromConfig(config("{ requests: 1, per: 1h }"), null, new Logger());
  assert.equal(first.check("api.test", "192.0.2.1", 0), null);
  assert.equal(first.check("api.test", "192.0.2.1", 0)?.status, 429);
  // Reloaded with the same limit: the client is still limited (a reload is not a reset an attacker can wait for).
  const same = await AccessRules.fromConfig(config("{ requests: 1, per: 1h }"), first, new Logger());
  assert.equal(same.check("api.test", "192.0.2.1", 0)?.status, 429);
  // A changed limit starts afresh, by its own numbers.
  const changed = await AccessRules.fromConfig(config("{ requests: 5, per: 1h }"), same, new Logger());
  assert.equal(changed.check("api.test", "192.0.2.1", 0), null);
  // A route without rules is not checked at all.
  assert.equal(changed.check("unknown.test", "192.0.2.1", 0), null);
  assert.deepEqual(changed.check("api.test", "192.0.2.1", 0), null);
});
