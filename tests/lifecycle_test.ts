// End-to-end: how connections and the process end: a stalled upload is cut off with 408 instead of holding
// an upstream connection for ever, and SIGTERM lets in-flight requests finish before nexo exits 0.

import assert from "node:assert/strict";
import { connectTls, startNexo } from "./harness.ts";
import { startEchoUpstream } from "./upstreams.ts";

Deno.test("a request body that stalls for read_timeout gets 408", async () => {
  const app = startEchoUpstream();
  const nexo = await startNexo(`
limits:
  read_timeout: 1s
proxies:
  "app.test":
    upstream: ${app.url}
`);
  try {
    const conn = await connectTls(nexo, "app.test");
    await conn.write(new TextEncoder().encode(
      "POST /upload HTTP/1.1\r\nHost: app.test\r\nContent-Length: 100\r\n\r\n0123456789",
    ));
    const buffer = new Uint8Array(4096);
    let text = "";
    while (!text.includes("\r\n\r\n")) {
      const n = await conn.read(buffer);
      if (n === null) break;
      text += new TextDecoder().decode(buffer.subarray(0, n));
    }
    conn.close();
    assert.match(text, /^HTTP\/1\.1 408/);
    await nexo.waitForLog((l) => l.msg === "request" && l.status === 408);
  } finally {
    await nexo.stop();
    await app.close();
  }
});

Deno.test("SIGTERM lets an in-flight stream finish, then nexo exits 0", async () => {
  const app = startEchoUpstream();
  const nexo = await startNexo(`
proxies:
  "app.test":
    upstream: ${app.url}
`);
  try {
    const stream = await startEventStream(nexo, 3, 500);
    const exited = nexo.stop("SIGTERM");
    assert.match(await stream.rest(), /event 3/, "the stream in flight at SIGTERM was delivered whole");
    assert.equal((await stream.status).code, 0);
    assert.equal(await exited, 0);
    assert.ok(nexo.logs.some((l) => l.msg === "shutting down" && l.signal === "SIGTERM"));
  } finally {
    await nexo.stop();
    await app.close();
  }
});

/** curl reading `/sse?n=N&gap=MS` through nexo: resolves once the first event arrived. */
async function startEventStream(nexo: Awaited<ReturnType<typeof startNexo>>, n: number, gapMs: number) {
  const curl = new Deno.Command("curl", {
    args: [
      "-sSN",
      "--cacert",
      nexo.rootCert,
      "--resolve",
      `app.test:${nexo.port}:127.0.0.1`,
      `https://app.test:${nexo.port}/sse?n=${n}&gap=${gapMs}`,
    ],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = curl.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let received = "";
  while (!received.includes("event 1")) received += (await reader.read()).value ?? "";
  return {
    async rest(): Promise<string> {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return received;
        received += value;
      }
    },
    status: curl.status,
  };
}

Deno.test("Ctrl-C through deno task and npx (SIGINT twice at once) still drains, logs stopped, exits 0", async () => {
  const app = startEchoUpstream();
  const nexo = await startNexo(`proxies:\n  "app.test":\n    upstream: ${app.url}\n`);
  try {
    const stream = await startEventStream(nexo, 3, 500);
    // A terminal's Ctrl-C reaches every process of the group, and deno task forwards it: nexo gets a second
    // one just after it began shutting down (sent back to back, the two would merge into one).
    Deno.kill(nexo.pid, "SIGINT");
    await nexo.waitForLog((l) => l.msg === "shutting down");
    Deno.kill(nexo.pid, "SIGINT");
    assert.match(await stream.rest(), /event 3/, "the stream in flight was delivered whole");
    assert.equal((await stream.status).code, 0);
    assert.equal(await nexo.exited(), 0);
    assert.ok(nexo.logs.some((l) => l.msg === "stopped"), nexo.output());
  } finally {
    await nexo.stop();
    await app.close();
  }
});

Deno.test("a second stop signal a second after the first ends the drain at once", async () => {
  const app = startEchoUpstream();
  const nexo = await startNexo(`proxies:\n  "app.test":\n    upstream: ${app.url}\n`);
  try {
    const stream = await startEventStream(nexo, 60, 500);
    Deno.kill(nexo.pid, "SIGINT");
    await nexo.waitForLog((l) => l.msg === "shutting down");
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    const pressed = Date.now();
    Deno.kill(nexo.pid, "SIGINT");
    assert.equal(await nexo.exited(), 1);
    assert.ok(Date.now() - pressed < 2_000, "it did not wait for the stream (30 s more)");
    assert.ok(nexo.logs.some((l) => l.msg === "stopping at once" && l.signal === "SIGINT"), nexo.output());
    await stream.rest();
  } finally {
    await nexo.stop();
    await app.close();
  }
});

Deno.test("SIGTERM lets an upload in flight be read to the end, then nexo exits 0", async () => {
  // Deno 2.9.6's graceful shutdown cuts request bodies still being read (the client got a 400): nexo waits
  // for them first, within the shutdown grace.
  const app = startEchoUpstream();
  const nexo = await startNexo(`
proxies:
  "app.test":
    upstream: ${app.url}
`);
  try {
    const conn = await connectTls(nexo, "app.test");
    const body = new Uint8Array(256 * 1024).fill(7);
    const half = body.length / 2;
    await conn.write(new TextEncoder().encode(
      `POST /upload HTTP/1.1\r\nHost: app.test\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
    ));
    await writeAll(conn, body.subarray(0, half));
    // A body this large is streamed: the upstream sees the request while half of it is still to come.
    while (app.seen.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    const exited = nexo.stop("SIGTERM");
    await nexo.waitForLog((l) => l.msg === "shutting down");
    await new Promise((resolve) => setTimeout(resolve, 300));
    await writeAll(conn, body.subarray(half));
    const text = await readAll(conn);
    assert.match(text, /^HTTP\/1\.1 200/, `the upload was answered: ${text.slice(0, 200)}`);
    assert.match(text, new RegExp(`"length":${body.length}`), "the upstream received every byte");
    assert.equal(await exited, 0);
  } finally {
    await nexo.stop();
    await app.close();
  }
});

/** Writes all of `bytes` (a TLS write may take fewer than it was given). */
async function writeAll(conn: Deno.TlsConn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

async function readAll(conn: Deno.TlsConn): Promise<string> {
  const buffer = new Uint8Array(4096);
  let text = "";
  for (;;) {
    const n = await conn.read(buffer).catch(() => null);
    if (n === null) break;
    text += new TextDecoder().decode(buffer.subarray(0, n));
  }
  conn.close();
  return text;
}
