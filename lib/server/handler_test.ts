import assert from "node:assert/strict";
import { AccessRules } from "../access/rules.ts";
import { parseCidr } from "../cidr.ts";
import { usesAccessRules } from "../config/access.ts";
import { parseConfig } from "../config/parse.ts";
import { Logger } from "../log.ts";
import { Metrics } from "../metrics.ts";
import { UpstreamPool } from "../proxy/upstream_client.ts";
import { buildRouteTable } from "../router.ts";
import { createHandler } from "./handler.ts";

/**
 * A handler over `routesYaml` (redirects, or upstreams the test runs), listening on `port`; `top` holds
 * top-level settings (`deny:`, `trusted_proxies:`).
 */
async function handlerFor(routesYaml: string, port: number, top = "") {
  const config = parseConfig(`${top}proxies:\n${routesYaml}`, "/test/config.yaml");
  const metrics = new Metrics();
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
  const access = usesAccessRules(config) ? await AccessRules.fromConfig(config, null, log) : null;
  const pool = new UpstreamPool();
  const handler = createHandler({
    snapshot: () => ({
      table: buildRouteTable(config.routes),
      access,
      balancers: null,
      trustedProxies: config.trustedProxies.map(parseCidr),
      maxHeaderBytes: 16 * 1024,
      readTimeoutMs: 1000,
    }),
    listenPort: () => port,
    covers: () => true,
    pool,
    log,
    metrics,
  });
  let holds = 0;
  const infoFrom = (client: string) => ({
    remoteAddr: { transport: "tcp" as const, hostname: client, port: 50000 },
    hold: (kind: string) => {
      assert.equal(kind, "request", "a request body holds the listener as a request");
      holds++;
      let released = false;
      return () => {
        if (!released) holds--;
        released = true;
      };
    },
  });
  return {
    /** Sends a request as if from `client` (the socket's address). */
    send: async (url: string, init: RequestInit = {}, client = "127.0.0.1") =>
      await handler(new Request(url, init), infoFrom(client)),
    metrics: () => metrics.render([]),
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
  const { send, close } = await handlerFor(`  "app.test":\n    redirect: example.org\n`, 8443);
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
  const local = await handlerFor(`  "localhost":\n    redirect: example.org\n`, 8443);
  const standard = await handlerFor(`  "app.test":\n    redirect: example.org\n`, 443);
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
  const { send, close } = await handlerFor(`  "app.test":\n    redirect: example.org\n`, 8443);
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
  const proxy = await handlerFor(
    `  "app.test":\n    upstream: http://127.0.0.1:${upstream.addr.port}\n`,
    8443,
  );
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
  const { send, requests, close } = await handlerFor(
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

Deno.test("createHandler() refuses by the top-level deny for every host, known or not, before routing", async () => {
  const { send, requests, metrics, close } = await handlerFor(
    `  "app.test":\n    redirect: example.org\n`,
    8443,
    `deny: ["203.0.113.0/24", "2001:db8:bad::/48"]\n`,
  );
  try {
    for (const host of ["app.test", "unknown.test"]) {
      const refused = await send(`https://${host}:8443/`, { headers: { host } }, "203.0.113.9");
      assert.equal(refused.status, 403, host);
      assert.match(await refused.text(), /may not reach this site/);
    }
    assert.equal((await send("https://app.test:8443/", {}, "2001:db8:bad::1")).status, 403);
    // IPv4-mapped IPv6, as a dual-stack socket reports an IPv4 client, is the same client.
    assert.equal((await send("https://app.test:8443/", {}, "::ffff:203.0.113.9")).status, 403);
    assert.equal((await send("https://app.test:8443/", {}, "198.51.100.1")).status, 302);
    assert.equal((await send("https://app.test:8443/", {}, "2001:db8:0bad::1")).status, 403);
    assert.equal((await send("https://app.test:8443/", {}, "2001:db8:beef::1")).status, 302);
    const logged = (await requests()).filter((l) => l.status === 403);
    assert.equal(logged.length, 5);
    assert.ok(logged.every((l) => l.error === "denied"));
    assert.match(metrics(), /nexo_access_refused_total\{route="app\.test",reason="denied"\} 4/);
    assert.match(metrics(), /nexo_access_refused_total\{route="-",reason="denied"\} 1/);
  } finally {
    close();
  }
});

Deno.test("createHandler() applies a route's deny, then allow, to the client behind trusted proxies", async () => {
  const { send, close } = await handlerFor(
    `  "admin.test":\n    redirect: example.org\n    allow: ["192.0.2.0/24", "2001:db8::/32"]\n` +
      `    deny: ["192.0.2.66"]\n  "open.test":\n    redirect: example.org\n`,
    8443,
    `trusted_proxies: ["10.0.0.0/8"]\n`,
  );
  const from = (client: string, xff?: string) =>
    send(
      "https://admin.test:8443/",
      xff === undefined ? {} : { headers: { "x-forwarded-for": xff } },
      client,
    );
  try {
    assert.equal((await from("192.0.2.10")).status, 302);
    assert.equal((await from("2001:db8::5")).status, 302);
    assert.equal((await from("192.0.2.66")).status, 403, "deny wins over allow");
    assert.equal((await from("198.51.100.7")).status, 403, "outside allow");
    // Behind a trusted proxy, the address it received from decides; the rightmost untrusted entry counts,
    // so a client cannot prepend an allowed address of its own.
    assert.equal((await from("10.1.2.3", "192.0.2.10")).status, 302);
    assert.equal((await from("10.1.2.3", "192.0.2.10, 198.51.100.7")).status, 403);
    assert.equal((await from("10.1.2.3", "198.51.100.7, 192.0.2.10, 10.9.9.9")).status, 302);
    assert.equal((await from("10.1.2.3", "192.0.2.10:5555")).status, 302);
    // From an untrusted socket the header is the client's own words: ignored.
    assert.equal((await from("198.51.100.7", "192.0.2.10")).status, 403);
    // Garbage in the chain stops at the last real hop: the trusted proxy, not in allow.
    assert.equal((await from("10.1.2.3", "192.0.2.10, not-an-ip")).status, 403);
    // A route without rules is open to all.
    assert.equal((await send("https://open.test:8443/", {}, "198.51.100.7")).status, 302);
  } finally {
    close();
  }
});

Deno.test("createHandler() answers 429 with Retry-After past a route's rate limit, per client", async () => {
  const { send, metrics, close } = await handlerFor(
    `  "api.test":\n    redirect: example.org\n    rate_limit: { requests: 2, per: 10s }\n`,
    8443,
  );
  try {
    assert.equal((await send("https://api.test:8443/", {}, "192.0.2.1")).status, 302);
    assert.equal((await send("https://api.test:8443/", {}, "192.0.2.1")).status, 302);
    const limited = await send("https://api.test:8443/", {}, "192.0.2.1");
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get("retry-after"), "5");
    assert.match(await limited.text(), /try again in 5 seconds/);
    // Another client has its own bucket.
    assert.equal((await send("https://api.test:8443/", {}, "192.0.2.2")).status, 302);
    // One IPv6 /64 is one client.
    assert.equal((await send("https://api.test:8443/", {}, "2001:db8:1:2::1")).status, 302);
    assert.equal((await send("https://api.test:8443/", {}, "2001:db8:1:2::2")).status, 302);
    assert.equal((await send("https://api.test:8443/", {}, "2001:db8:1:2:ffff::3")).status, 429);
    assert.match(metrics(), /nexo_access_refused_total\{route="api\.test",reason="rate limited"\} 2/);
  } finally {
    close();
  }
});
