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
    const curl = new Deno.Command("curl", {
      args: [
        "-sSN",
        "--cacert",
        nexo.rootCert,
        "--resolve",
        `app.test:${nexo.port}:127.0.0.1`,
        `https://app.test:${nexo.port}/sse?n=3&gap=500`,
      ],
      stdout: "piped",
    }).spawn();
    const reader = curl.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let received = "";
    while (!received.includes("event 1")) received += (await reader.read()).value ?? "";
    const exited = nexo.stop("SIGTERM");
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      received += value;
    }
    assert.equal((await curl.status).code, 0);
    assert.match(received, /event 3/, "the stream in flight at SIGTERM was delivered whole");
    assert.equal(await exited, 0);
    assert.ok(nexo.logs.some((l) => l.msg === "shutting down" && l.signal === "SIGTERM"));
  } finally {
    await nexo.stop();
    await app.close();
  }
});
