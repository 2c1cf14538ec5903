import assert from "node:assert/strict";
import { parseConfig } from "../config/parse.ts";
import { Logger } from "../log.ts";
import { buildRouteTable } from "../router.ts";
import { CertStore } from "../tls/cert_store.ts";
import { parseCertificate } from "../tls/pem.ts";
import { INTERNAL_LEAF_LIFETIME_MS, serveFromLocalCa } from "./internal_issuer.ts";

Deno.test("serveFromLocalCa() mints a leaf for a route's host at its first lookup and nothing for other names", async () => {
  const dir = await Deno.makeTempDir();
  const lines: Array<Record<string, unknown>> = [];
  const log = new Logger({
    format: "json",
    sink: {
      writeSync: (bytes) => {
        for (const line of new TextDecoder().decode(bytes).split("\n")) {
          if (line) lines.push(JSON.parse(line));
        }
        return bytes.length;
      },
    },
  });
  try {
    const config = parseConfig(
      `proxies:\n  "app.test":\n    upstream: http://127.0.0.1:1\n  "*.wild.test":\n    upstream: http://127.0.0.1:1\n`,
      `${dir}/config.yaml`,
    );
    const store = new CertStore();
    const table = buildRouteTable(config.routes);
    const root = await serveFromLocalCa(store, { baseDir: dir, table: () => table, log });
    assert.equal(root, `${dir}/ca/root.crt`);
    const pair = await store.resolve("app.test");
    assert.ok(pair, "a route's host gets a certificate");
    const leaf = parseCertificate(pair.cert);
    assert.deepEqual(leaf.names, ["app.test"]);
    // Served as expiring when a third of its week is left, so a fresh one is minted in time.
    const lifetime = leaf.notAfter.getTime() - leaf.notBefore.getTime();
    // notBefore is backdated a few minutes for clocks that run behind.
    assert.ok(Math.abs(lifetime - INTERNAL_LEAF_LIFETIME_MS) <= 10 * 60_000, `lifetime ${lifetime}`);
    assert.ok(Math.abs(pair.notAfterMs - (leaf.notAfter.getTime() - INTERNAL_LEAF_LIFETIME_MS / 3)) < 1000);
    assert.ok(await store.resolve("a.wild.test"), "a name under a wildcard route too");
    assert.equal(await store.resolve("unknown.test"), undefined, "an unknown SNI name gets nothing");
    log.flush();
    assert.deepEqual(
      lines.filter((l) => l.msg === "certificate issued").map((l) => l.names),
      ["app.test", "a.wild.test"],
    );
    assert.ok(lines.some((l) => l.msg === "local CA ready" && l.root_certificate === root));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
