// End-to-end: the admin listener's /status and /metrics reflect requests, errors, certificates and reloads
// as they happen, and never show a secret.

import assert from "node:assert/strict";
import { curl, rssBytes, startNexo } from "./harness.ts";
import { closedPort, startEchoUpstream } from "./upstreams.ts";

Deno.test("admin /status and /metrics change as requests flow and configs reload", async () => {
  const app = startEchoUpstream();
  const adminPort = closedPort();
  const nexo = await startNexo(`
admin:
  listen: ":${adminPort}"
cloudflare:
  api_token: admin-test-secret-token-123
proxies:
  "app.test":
    upstream: ${app.url}
  "down.test":
    upstream: http://127.0.0.1:${closedPort()}
`);
  const get = async (path: string) => {
    const response = await fetch(`http://127.0.0.1:${adminPort}${path}`);
    return {
      status: response.status,
      type: response.headers.get("content-type"),
      text: await response.text(),
    };
  };
  const counter = (text: string, series: string) => {
    const line = text.split("\n").find((l) => l.startsWith(series + " "));
    return line ? Number(line.slice(series.length + 1)) : 0;
  };
  try {
    await nexo.waitForLog((l) =>
      l.msg === "listening" && l.protocol === "admin" && l.addr === `127.0.0.1:${adminPort}`
    );
    // DNS rebinding: a page on another name pointed at 127.0.0.1 gets nothing, dashboard or not.
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: adminPort });
    await conn.write(
      new TextEncoder().encode(
        "GET /status HTTP/1.1\r\nHost: rebound.example.com\r\nConnection: close\r\n\r\n",
      ),
    );
    const head = new Uint8Array(64);
    const read = await conn.read(head);
    conn.close();
    assert.match(new TextDecoder().decode(head.subarray(0, read ?? 0)), /^HTTP\/1\.1 421 /);
    const before = await get("/metrics");
    assert.equal(before.status, 200);
    assert.match(before.type ?? "", /text\/plain; version=0\.0\.4/);
    const ok = `nexo_requests_total{route="app.test",status="200"}`;
    const bad = `nexo_upstream_errors_total{route="down.test",status="502"}`;
    assert.equal(counter(before.text, ok), 0);

    for (let i = 0; i < 3; i++) await curl(nexo, "app.test", "/");
    await curl(nexo, "down.test", "/");
    const after = await get("/metrics");
    assert.equal(counter(after.text, ok), 3);
    assert.equal(counter(after.text, bad), 1);
    assert.ok(counter(after.text, "nexo_request_duration_seconds_count") >= 4);
    assert.equal(counter(after.text, "nexo_requests_in_flight"), 0);
    assert.match(after.text, /nexo_certificate_expiry_seconds\{names="app\.test"\} \d+/);
    // Memory gauges: the RSS is nexo's own (its /proc entry agrees to within what a moment's growth explains).
    const rss = counter(after.text, "process_resident_memory_bytes");
    assert.ok(Math.abs(rss - await rssBytes(nexo.pid)) < 16 * 1024 * 1024, `RSS gauge ${rss}`);
    assert.ok(counter(after.text, `nexo_js_heap_bytes{kind="used"}`) > 0);
    assert.ok(
      counter(after.text, `nexo_js_heap_bytes{kind="total"}`) >=
        counter(after.text, `nexo_js_heap_bytes{kind="used"}`),
    );
    assert.ok(counter(after.text, "nexo_js_external_bytes") > 0);

    const status = JSON.parse((await get("/status")).text);
    assert.equal(status.config.version, 1);
    assert.deepEqual(status.routes.map((r: { host: string }) => r.host), ["app.test", "down.test"]);
    assert.ok(status.certificates.served.some((c: { names: string[] }) => c.names.includes("app.test")));
    assert.equal(typeof status.uptime_s, "number");

    const file = `${nexo.dir}/config.yaml`;
    await Deno.writeTextFile(file, (await Deno.readTextFile(file)).replace(`"down.test":`, `"gone.test":`));
    await nexo.waitForLog((l) => l.msg === "config reloaded");
    const reloaded = JSON.parse((await get("/status")).text);
    assert.equal(reloaded.config.version, 2);
    assert.equal(counter((await get("/metrics")).text, "nexo_config_reloads_total"), 1);

    const everything = (await get("/status")).text + (await get("/metrics")).text + nexo.output();
    assert.ok(!everything.includes("admin-test-secret-token-123"), "the token appears nowhere");
    assert.equal((await get("/nothing")).status, 404);
  } finally {
    await nexo.stop();
    await app.close();
  }
});
