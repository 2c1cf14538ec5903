// End-to-end: who may reach a route, against a real nexo with real clients: allow and deny (through
// trusted_proxies, as behind a CDN), the top-level deny, rate_limit's 429 and recovery, rules applied live on
// reload, and a WebSocket and an event stream through a protected route.

import assert from "node:assert/strict";
import { connectTls, curl, type NexoProcess, startNexo } from "./harness.ts";
import { startEchoUpstream } from "./upstreams.ts";
import { maskedTextFrame, upgradeRequest } from "./websocket_frames.ts";

/** curl through nexo as if a trusted proxy (127.0.0.1) received the request from `client`. */
const from = (nexo: NexoProcess, host: string, path: string, client: string) =>
  curl(nexo, host, path, ["-H", `X-Forwarded-For: ${client}`]);

/** A WebSocket opening handshake through nexo for `client`: the response head, and the socket. */
async function openWebSocket(nexo: NexoProcess, host: string, client: string) {
  const conn = await connectTls(nexo, host);
  await conn.write(upgradeRequest(host, "/ws", [`X-Forwarded-For: ${client}`]));
  let received = new Uint8Array(0);
  const buffer = new Uint8Array(4096);
  let end = -1;
  while (end === -1) {
    const n = await conn.read(buffer);
    if (n === null) break;
    received = new Uint8Array([...received, ...buffer.subarray(0, n)]);
    end = new TextDecoder().decode(received).indexOf("\r\n\r\n");
  }
  const text = new TextDecoder().decode(received);
  return { head: end === -1 ? text : text.slice(0, end), rest: received.subarray(end + 4), conn };
}

/** The payload of the next server text frame (unmasked, under 126 bytes), after `pending` bytes. */
async function readTextFrame(conn: Deno.TlsConn, pending: Uint8Array): Promise<string> {
  let bytes = pending;
  const buffer = new Uint8Array(4096);
  while (bytes.length < 2 || bytes.length < 2 + (bytes[1]! & 0x7f)) {
    const n = await conn.read(buffer);
    if (n === null) throw new Error("closed before a frame");
    bytes = new Uint8Array([...bytes, ...buffer.subarray(0, n)]);
  }
  return new TextDecoder().decode(bytes.subarray(2, 2 + (bytes[1]! & 0x7f)));
}

Deno.test("allow, deny and the top-level deny guard routes for requests, event streams and WebSockets", async (t) => {
  const app = startEchoUpstream();
  const nexo = await startNexo(`
trusted_proxies: ["127.0.0.1"]
deny: ["203.0.113.0/24"]
proxies:
  "admin.test":
    upstream: ${app.url}
    allow: ["192.0.2.0/24", "2001:db8::/32"]
    deny: ["192.0.2.66"]
  "open.test":
    upstream: ${app.url}
`);
  try {
    await t.step("an allowed client gets through, others get 403 from nexo, not the app", async () => {
      assert.equal((await from(nexo, "admin.test", "/echo", "192.0.2.5")).status, 200);
      assert.equal((await from(nexo, "admin.test", "/echo", "2001:db8::9")).status, 200);
      const refused = await from(nexo, "admin.test", "/echo", "198.51.100.1");
      assert.equal(refused.status, 403);
      assert.match(refused.body, /may not reach this site from your network/);
      assert.equal((await from(nexo, "admin.test", "/echo", "192.0.2.66")).status, 403);
      // The trusted proxy itself (no X-Forwarded-For) is not in allow.
      assert.equal((await curl(nexo, "admin.test", "/echo")).status, 403);
      // A client prepending an allowed address to its own gains nothing.
      assert.equal((await from(nexo, "admin.test", "/echo", "192.0.2.5, 198.51.100.1")).status, 403);
      const seen = app.seen.filter((r) => r.path === "/echo").length;
      assert.equal(seen, 2, "refused requests never reached the app");
    });

    await t.step("the top-level deny refuses on every host, configured or not", async () => {
      assert.equal((await from(nexo, "open.test", "/", "203.0.113.9")).status, 403);
      assert.equal((await from(nexo, "open.test", "/", "198.51.100.1")).status, 200);
      assert.equal((await from(nexo, "admin.test", "/", "203.0.113.9")).status, 403);
    });

    await t.step("an event stream flows to an allowed client", async () => {
      const stream = await from(nexo, "admin.test", "/sse?n=3&gap=100", "192.0.2.5");
      assert.equal(stream.status, 200);
      assert.equal([...stream.body.matchAll(/data: event/g)].length, 3);
      assert.equal((await from(nexo, "admin.test", "/sse?n=3&gap=100", "198.51.100.1")).status, 403);
    });

    await t.step(
      "a WebSocket opens for an allowed client and is refused before the upgrade otherwise",
      async () => {
        const allowed = await openWebSocket(nexo, "admin.test", "192.0.2.5");
        assert.match(allowed.head, /^HTTP\/1\.1 101/);
        await allowed.conn.write(maskedTextFrame("through the guard"));
        assert.equal(await readTextFrame(allowed.conn, allowed.rest), "echo: through the guard");
        allowed.conn.close();
        const refused = await openWebSocket(nexo, "admin.test", "198.51.100.1");
        assert.match(refused.head, /^HTTP\/1\.1 403/);
        refused.conn.close();
      },
    );
  } finally {
    await nexo.stop();
    await app.close();
  }
});

Deno.test("rate_limit answers 429 with Retry-After, and lets the client in again once a token is back", async () => {
  const app = startEchoUpstream();
  const nexo = await startNexo(`
trusted_proxies: ["127.0.0.1"]
proxies:
  "api.test":
    upstream: ${app.url}
    rate_limit: { requests: 2, per: 2s }
`);
  try {
    assert.equal((await from(nexo, "api.test", "/", "192.0.2.1")).status, 200);
    assert.equal((await from(nexo, "api.test", "/", "192.0.2.1")).status, 200);
    const limited = await from(nexo, "api.test", "/", "192.0.2.1");
    assert.equal(limited.status, 429);
    assert.equal(limited.headers["retry-after"], "1");
    // Another client is not slowed by this one.
    assert.equal((await from(nexo, "api.test", "/", "192.0.2.2")).status, 200);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    assert.equal((await from(nexo, "api.test", "/", "192.0.2.1")).status, 200);
    assert.ok(nexo.logs.some((l) => l.msg === "request" && l.status === 429 && l.error === "rate limited"));
  } finally {
    await nexo.stop();
    await app.close();
  }
});

Deno.test("access rules apply live: a reload that adds allow refuses within a second, removing it reopens", async () => {
  const app = startEchoUpstream();
  const route = `proxies:\n  "app.test":\n    upstream: ${app.url}\n`;
  const nexo = await startNexo(route);
  const file = `${nexo.dir}/config.yaml`;
  const base = (await Deno.readTextFile(file)).split("proxies:")[0]!;
  const eventually = async (status: number) => {
    const deadline = Date.now() + 1_000;
    while ((await curl(nexo, "app.test", "/")).status !== status) {
      if (Date.now() > deadline) throw new Error(`not ${status} within 1 s:\n${nexo.output()}`);
    }
  };
  try {
    assert.equal((await curl(nexo, "app.test", "/")).status, 200);
    await Deno.writeTextFile(file, `${base}${route}    allow: ["192.0.2.0/24"]\n`);
    await eventually(403);
    await Deno.writeTextFile(file, `${base}${route}`);
    await eventually(200);
  } finally {
    await nexo.stop();
    await app.close();
  }
});
