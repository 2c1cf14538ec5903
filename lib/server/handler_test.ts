import assert from "node:assert/strict";
import { parseConfig } from "../config/parse.ts";
import { Logger } from "../log.ts";
import { Metrics } from "../metrics.ts";
import { UpstreamPool } from "../proxy/upstream_client.ts";
import { buildRouteTable } from "../router.ts";
import { createHandler } from "./handler.ts";

/** A handler over `routesYaml` (redirects, or upstreams the test runs), listening on `port`. */
function handlerFor(routesYaml: string, port: number) {
  const config = parseConfig(`proxies:\n${routesYaml}`, "/test/config.yaml");
  const lines: string[] = [];
  const log = new Logger({
    format: "json",
    sink: {
      writeSync: (p) => {
        lines.push(new TextDecoder().decode(p));
        return p.length;
      },
    },
  });
  const pool = new UpstreamPool();
  const handler = createHandler({
    snapshot: () => ({
      table: buildRouteTable(config.routes),
      trustedProxies: [],
      maxHeaderBytes: 16 * 1024,
      readTimeoutMs: 1000,
    }),
    listenPort: () => port,
    covers: () => true,
    pool,
    log,
    metrics: new Metrics(),
  });
  let holds = 0;
  const info = {
    remoteAddr: { transport: "tcp" as const, hostname: "127.0.0.1", port: 50000 },
    hold: (kind: string) => {
      assert.equal(kind, "request", "a request body holds the listener as a request");
      holds++;
      let released = false;
      return () => {
        if (!released) holds--;
        released = true;
      };
    },
  };
  return {
    send: async (url: string, init: RequestInit = {}) => await handler(new Request(url, init), info),
    /** Holds on the listener taken and not yet released. */
    holds: () => holds,
    /** The access log's request lines so far (the logger writes asynchronously: settled first). */
    requests: async () => {
      await log.settle();
      return lines.flatMap((chunk) => chunk.split("\n")).filter((line) => line !== "")
        .map((line) => JSON.parse(line)).filter((line) => line.msg === "request");
    },
    close: () => pool.close(),
  };
}

// Deno 2.9.6 gives an HTTP/1.x request without Host the URL https://localhost:<listener port>/... and no Host
// header; an HTTP/2 request has no Host header either, its URL made from :authority.

Deno.test("createHandler() answers 400 to a request whose URL Deno made up for a missing Host", async () => {
  const { send, close } = handlerFor(`  "app.test":\n    redirect: example.org\n`, 8443);
  try {
    assert.equal((await send("https://localhost:8443/")).status, 400);
    assert.equal((await send("https://localhost:8443/", { headers: { host: "" } })).status, 400);
    // An HTTP/2 request for another port, or with a Host, is routed as usual (no route here: 404).
    assert.equal((await send("https://localhost:9443/")).status, 404);
    assert.equal((await send("https://app.test:8443/")).status, 302);
  } finally {
    close();
  }
});

Deno.test("createHandler() keeps a `localhost` route reachable over HTTP/2", async () => {
  const local = handlerFor(`  "localhost":\n    redirect: example.org\n`, 8443);
  const standard = handlerFor(`  "app.test":\n    redirect: example.org\n`, 443);
  try {
    // Indistinguishable from a Host-less HTTP/1.1 request, so with a localhost route it is served.
    assert.equal((await local.send("https://localhost:8443/")).status, 302);
    // On 443 Deno's made-up URL has no port.
    assert.equal((await standard.send("https://localhost/")).status, 400);
  } finally {
    local.close();
    standard.close();
  }
});

Deno.test("createHandler() never gives a HEAD request a body, on its own pages or redirects", async () => {
  const { send, close } = handlerFor(`  "app.test":\n    redirect: example.org\n`, 8443);
  try {
    for (const url of ["https://unknown.test:8443/", "https://app.test:8443/", "https://localhost:8443/"]) {
      const head = await send(url, { method: "HEAD", headers: { host: new URL(url).host } });
      const get = await send(url, { headers: { host: new URL(url).host } });
      assert.equal(head.status, get.status, url);
      assert.equal(head.body, null, url);
      assert.equal(head.headers.get("content-type"), get.headers.get("content-type"), url);
      await get.body?.cancel();
    }
  } finally {
    close();
  }
});

Deno.test("createHandler() holds the listener while a request body is forwarded, and only then", async () => {
  // A retiring listener's shutdown cuts request bodies still being read (Deno 2.9.6), so an upload holds it.
  let holdsWhileReading = -1;
  const probe = { holds: () => -1 };
  const upstream = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    holdsWhileReading = probe.holds();
    return new Response(String((await req.bytes()).byteLength));
  });
  const proxy = handlerFor(`  "app.test":\n    upstream: http://127.0.0.1:${upstream.addr.port}\n`, 8443);
  probe.holds = proxy.holds;
  try {
    const posted = await proxy.send("https://app.test:8443/up", {
      method: "POST",
      headers: { host: "app.test:8443" },
      body: new Uint8Array(100_000),
    });
    assert.equal(await posted.text(), "100000");
    assert.equal(holdsWhileReading, 1, "held while the upstream read the body");
    assert.equal(proxy.holds(), 0, "released once the response was done");
    const got = await proxy.send("https://app.test:8443/", { headers: { host: "app.test:8443" } });
    await got.body?.cancel();
    assert.equal(holdsWhileReading, 0, "a request without a body holds nothing");
    const refused = await proxy.send("https://app.test:8443/up", {
      method: "POST",
      headers: { host: "app.test:8443", "transfer-encoding": "gzip, chunked" },
      body: new Uint8Array(10),
    });
    await refused.body?.cancel();
    assert.equal(proxy.holds(), 0, "released when forwarding ends in an error page");
  } finally {
    proxy.close();
    await upstream.shutdown();
  }
});

Deno.test("createHandler() logs the body bytes of its own pages and redirects, and none for HEAD", async () => {
  // The access log said "bytes":0 for a 301 with a 191-byte body and a 502 with a 237-byte body.
  const { send, requests, close } = handlerFor(
    `  "app.test":\n    redirect: example.org\n  "down.test":\n    upstream: http://127.0.0.1:1\n`,
    8443,
  );
  try {
    const cases = [
      ["https://app.test:8443/", 302, true],
      ["https://unknown.test:8443/", 404, true],
      ["https://down.test:8443/", 502, true],
      ["https://localhost:8443/", 400, false], // no Host header: nexo's 400
    ] as const;
    for (const [url, status, withHost] of cases) {
      const headers: Record<string, string> = withHost ? { host: new URL(url).host } : {};
      const response = await send(url, { headers });
      const body = await response.bytes();
      assert.equal(response.status, status, url);
      assert.ok(body.byteLength > 100, url);
      assert.equal(
        (await requests()).at(-1)?.bytes,
        body.byteLength,
        `${url}: the logged bytes are the body's`,
      );
      await send(url, { method: "HEAD", headers });
      assert.equal((await requests()).at(-1)?.bytes, 0, `${url}: a HEAD answer has no body`);
    }
  } finally {
    close();
  }
});
