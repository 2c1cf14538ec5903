import assert from "node:assert/strict";
import { parseConfig } from "../config/parse.ts";
import { Logger } from "../log.ts";
import { UpstreamPool } from "../proxy/upstream_client.ts";
import { matchRoute } from "../router.ts";
import { ServingState } from "./serving_state.ts";

const BASE =
  `base_dir: /srv/nexo\nlisten: "127.0.0.1:8443"\nhttp_listen: "127.0.0.1:8080"\nissuer: internal\n`;

function config(text: string) {
  return parseConfig(BASE + text, "/srv/nexo/config.yaml");
}

function context() {
  const log = new Logger({ format: "json", sink: { writeSync: (p) => p.length } });
  return { pool: new UpstreamPool(), log };
}

const TWO =
  `proxies:\n  "a.test":\n    upstream: http://127.0.0.1:3000\n  "b.test":\n    redirect: https://example.com\n`;

Deno.test("a reload swaps the snapshot whole: a request holding the old one keeps it", async () => {
  const state = await ServingState.create(config(TWO), context());
  assert.equal(state.version, 1);
  const before = state.snapshot;
  const summary = await state.apply(
    config(
      `proxies:\n  "a.test":\n    upstream: http://127.0.0.1:3001\n  "c.test":\n    upstream: http://127.0.0.1:3000\n`,
    ),
    () => [],
  );
  assert.deepEqual(summary, { added: ["c.test"], changed: ["a.test"], removed: ["b.test"], restart: [] });
  assert.equal(state.version, 2);
  assert.notEqual(state.snapshot, before);
  // The old snapshot still routes as it did; the new one as the new config says.
  assert.equal(matchRoute(before.table, "b.test")?.host, "b.test");
  assert.equal(matchRoute(before.table, "c.test"), undefined);
  assert.equal(matchRoute(state.snapshot.table, "b.test"), undefined);
  assert.equal(matchRoute(state.snapshot.table, "c.test")?.host, "c.test");
});

Deno.test("keys a running server cannot change are reported and kept until a restart", async () => {
  const state = await ServingState.create(config(TWO), context());
  const next = parseConfig(
    BASE.replace("issuer: internal", "issuer: acme\nemail: ops@example.com") +
      `cert_dir: /elsewhere\n` + TWO,
    "/srv/nexo/config.yaml",
  );
  const summary = await state.apply(next, () => []);
  assert.deepEqual(summary.restart, ["issuer", "certDir"]);
  assert.equal(state.config.issuer, "internal");
  assert.equal(state.config.certDir, "/srv/nexo/certs");
  assert.deepEqual(summary.added, []);
  assert.equal(state.version, 2, "the rest was applied");
});

Deno.test("a listen address the listeners could not move stays as it was in the config in force", async () => {
  const state = await ServingState.create(config(TWO), context());
  const moved = BASE.replace("8443", "9443").replace("8080", "9080");
  const asked: string[] = [];
  await state.apply(parseConfig(moved + TWO, "/srv/nexo/config.yaml"), (_current, next) => {
    asked.push(`${next.listen.port}/${next.httpListen?.port}`);
    return ["listen"];
  });
  assert.deepEqual(asked, ["9443/9080"], "the listeners were asked to move to the new addresses");
  assert.equal(state.config.listen.port, 8443, "not moved: still the old address");
  assert.equal(state.config.httpListen?.port, 9080, "moved");
});

Deno.test("access rules are loaded only for a config that has some, and dropped with them", async () => {
  const state = await ServingState.create(config(TWO), context());
  assert.equal(state.snapshot.access, null);
  await state.apply(config(TWO + `    allow: ["10.0.0.0/8"]\n`), () => []);
  assert.notEqual(state.snapshot.access, null);
  await state.apply(config(TWO), () => []);
  assert.equal(state.snapshot.access, null);
});
