// End-to-end conformance where third-party suites (h2spec, REDbot, smuggler, Autobahn) and hostile upstreams
// found nexo wrong: control bytes in upstream headers (a Deno panic that took every site down), HEAD over
// HTTP/2, requests without Host, a 304's Cache-Control, cookies and caching, underscore header spellings,
// and a buggy upstream's stray bytes after HEAD reaching another client. Real nexo, real curl (HTTP/1.1 and
// HTTP/2), raw upstreams that send exactly the bytes under test.

import assert from "node:assert/strict";
import { type Peer, startFaultyUpstream } from "./faulty_upstream.ts";
import { connectTls, curl, type NexoProcess, startNexo } from "./harness.ts";
import { closedPort, startRecordingUpstream } from "./upstreams.ts";
import { maskedTextFrame, upgradeRequest } from "./websocket_frames.ts";

/** Control bytes that are invalid in a field value but not CR, LF or NUL (those make nexo answer 502). */
const CONTROL_BYTES = [
  ...Array.from({ length: 0x20 }, (_, i) => i).filter((b) =>
    b !== 0 && b !== 0x09 && b !== 0x0a && b !== 0x0d
  ),
  0x7f,
];

/** Answers every request on the connection with `respond(target, method)`'s raw bytes, until it closes. */
function answerEach(respond: (target: string, method: string) => string) {
  return async (peer: Peer) => {
    for (let head = await peer.nextRequest(); head !== null; head = await peer.nextRequest()) {
      const [method = "", target = ""] = head.split(" ");
      await peer.write(respond(target, method));
    }
  };
}

async function isAlive(nexo: NexoProcess, host: string): Promise<void> {
  const res = await curl(nexo, host, "/zz");
  assert.equal(res.status, 200, `nexo stopped answering: ${res.stderr}\n${nexo.output().slice(-2000)}`);
}

Deno.test("an upstream header with a control byte is repaired over HTTP/1.1 and HTTP/2, and nexo stays up", async () => {
  const upstream = await startFaultyUpstream(answerEach((target) => {
    const byte = parseInt(target.slice(1), 16);
    const value = Number.isNaN(byte)
      ? "plain"
      : `attachment; filename="report${String.fromCharCode(byte)}.pdf"`;
    return `HTTP/1.1 200 OK\r\ncontent-disposition: ${value}\r\ncontent-length: 2\r\n\r\nok`;
  }));
  const nexo = await startNexo(`
proxies:
  "app.test":
    upstream: ${upstream.url}
`);
  try {
    for (const protocol of ["--http1.1", "--http2"]) {
      for (const byte of CONTROL_BYTES) {
        const hex = byte.toString(16).padStart(2, "0");
        const res = await curl(nexo, "app.test", `/${hex}`, [protocol]);
        assert.equal(res.code, 0, `byte 0x${hex} ${protocol}: ${res.stderr}\n${nexo.output().slice(-2000)}`);
        assert.equal(res.status, 200, `byte 0x${hex} ${protocol}`);
        assert.equal(res.headers["content-disposition"], 'attachment; filename="report .pdf"');
        assert.equal(res.body, "ok");
      }
    }
    await isAlive(nexo, "app.test");
    const line = await nexo.waitForLog((l) => l.msg === "upstream header repaired");
    assert.equal(line.header, "content-disposition");
    assert.equal(line.level, "warn");
  } finally {
    await nexo.stop();
    await upstream.close();
  }
});

Deno.test("HEAD gets no body over HTTP/2 on nexo's own 404, 421 and 502 and on proxied responses", async () => {
  const upstream = await startFaultyUpstream(
    answerEach((_target, method) =>
      method === "HEAD"
        ? "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\n"
        : "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"
    ),
  );
  const nexo = await startNexo(`
proxies:
  "app.test":
    upstream: ${upstream.url}
  "other.test":
    upstream: ${upstream.url}
  "down.test":
    upstream: http://127.0.0.1:${closedPort()}
`);
  try {
    const cases: Array<{ sni: string; host?: string; status: number }> = [
      { sni: "app.test", status: 200 },
      { sni: "app.test", host: "unknown.test", status: 404 },
      // other.test has a route but no certificate yet (none was asked for): the connection cannot serve it.
      { sni: "app.test", host: "other.test", status: 421 },
      { sni: "down.test", status: 502 },
    ];
    for (const protocol of ["--http2", "--http1.1"]) {
      for (const { sni, host, status } of cases) {
        const args = [protocol, "-I", ...(host ? ["-H", `Host: ${host}`] : [])];
        const res = await curl(nexo, sni, "/", args);
        const what = `HEAD ${host ?? sni} ${protocol}`;
        assert.equal(res.code, 0, `${what}: curl failed: ${res.stderr}`);
        assert.equal(res.status, status, what);
        assert.equal(res.body.trim(), "", what);
      }
    }
    const head = await curl(nexo, "app.test", "/", ["--http2", "-I"]);
    // curl -I prints the head twice (-D - and stdout), so the harness joins the two lines.
    assert.match(head.headers["content-length"] ?? "", /^5(, 5)?$/);
  } finally {
    await nexo.stop();
    await upstream.close();
  }
});

/** Sends one raw HTTP/1.1 request head over TLS (SNI `sni`) and returns the response's status code. */
async function rawStatus(nexo: NexoProcess, sni: string, head: string): Promise<number> {
  const conn = await connectTls(nexo, sni);
  try {
    await conn.write(new TextEncoder().encode(head));
    const buf = new Uint8Array(4096);
    let text = "";
    while (!text.includes("\r\n")) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    return Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
  } finally {
    conn.close();
  }
}

Deno.test("an HTTP/1.1 request without Host, or with an empty one, gets 400 (RFC 9112 §3.2)", async () => {
  const app = startRecordingUpstream();
  const nexo = await startNexo(`
proxies:
  "app.test":
    upstream: ${app.url}
`);
  try {
    assert.equal(await rawStatus(nexo, "app.test", "GET / HTTP/1.1\r\n\r\n"), 400);
    assert.equal(await rawStatus(nexo, "app.test", "GET / HTTP/1.1\r\nHost:\r\n\r\n"), 400);
    assert.equal(await rawStatus(nexo, "app.test", "GET / HTTP/1.0\r\n\r\n"), 400);
    assert.equal(await rawStatus(nexo, "app.test", "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n"), 200);
    assert.equal(app.requests.length, 1);
  } finally {
    await nexo.stop();
    await app.close();
  }
});

Deno.test("default Cache-Control: a 304 carries its 200's value and a request Cookie makes it private", async () => {
  const upstream = await startFaultyUpstream(answerEach((target) => {
    const [path = ""] = target.split("?");
    const type = path.endsWith(".css") || path === "/style" ? "content-type: text/css\r\n" : "";
    if (target.endsWith("?304")) {
      // Like Express: no Content-Type on a 304 unless the path asks for one here.
      return `HTTP/1.1 304 Not Modified\r\netag: "1"\r\n${path === "/style" ? type : ""}\r\n`;
    }
    return `HTTP/1.1 200 OK\r\n${
      type || "content-type: text/html\r\n"
    }etag: "1"\r\ncontent-length: 2\r\n\r\nok`;
  }));
  const nexo = await startNexo(`
proxies:
  "app.test":
    upstream: ${upstream.url}
`);
  try {
    const cacheControl = async (path: string, args: string[] = []) =>
      (await curl(nexo, "app.test", path, args)).headers["cache-control"];
    for (const path of ["/app.css", "/page", "/style"]) {
      assert.equal(await cacheControl(`${path}?304`), await cacheControl(path), path);
    }
    assert.equal(await cacheControl("/app.css"), "public, max-age=86400");
    assert.equal(await cacheControl("/page?304"), "no-cache");
    assert.equal(await cacheControl("/app.css", ["-H", "Cookie: session=1"]), "private, max-age=86400");
    assert.equal(await cacheControl("/app.css?304", ["-H", "Cookie: session=1"]), "private, max-age=86400");
    assert.equal(await cacheControl("/page", ["-H", "Cookie: session=1"]), "private, no-cache");
  } finally {
    await nexo.stop();
    await upstream.close();
  }
});

Deno.test("request headers spelled with underscores never reach the upstream", async () => {
  const app = startRecordingUpstream();
  const nexo = await startNexo(`
proxies:
  "app.test":
    upstream: ${app.url}
`);
  try {
    const forged = ["X_Real_IP: 198.51.100.1", "X_Forwarded_For: 198.51.100.1", "X-Real_IP: 198.51.100.1"];
    for (const protocol of ["--http1.1", "--http2"]) {
      const res = await curl(nexo, "app.test", "/", [protocol, ...forged.flatMap((h) => ["-H", h])]);
      assert.equal(res.status, 200);
    }
    assert.equal(app.requests.length, 2);
    for (const request of app.requests) {
      const names = request.headers.map(([name]) => name.toLowerCase());
      assert.ok(!names.some((name) => name.includes("_")), names.join());
      assert.equal(request.headers.filter(([name]) => name.toLowerCase() === "x-real-ip").length, 0);
    }
  } finally {
    await nexo.stop();
    await app.close();
  }
});

Deno.test("an upstream's stray body after HEAD never reaches the next request on a pooled connection", async () => {
  const upstream = await startFaultyUpstream(async (peer) => {
    for (let head = await peer.nextRequest(); head !== null; head = await peer.nextRequest()) {
      if (head.startsWith("HEAD ")) {
        // A buggy app: declares 46 bytes, and writes them when the connection is next used.
        await peer.write("HTTP/1.1 200 OK\r\ncontent-length: 46\r\n\r\n");
        const next = await peer.nextRequest();
        if (next === null) return;
        await peer.write("HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nLEAKED");
        await peer.write("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfresh");
      } else {
        await peer.write("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfresh");
      }
    }
  });
  const nexo = await startNexo(`
proxies:
  "app.test":
    upstream: ${upstream.url}
`);
  try {
    for (let i = 0; i < 5; i++) {
      assert.equal((await curl(nexo, "app.test", "/", ["-I"])).status, 200);
      const res = await curl(nexo, "app.test", "/private");
      assert.equal(res.body, "fresh", `round ${i}: another request's bytes were served`);
    }
  } finally {
    await nexo.stop();
    await upstream.close();
  }
});

Deno.test("a 204 that declares a Content-Length reaches HTTP/2 clients without it", async () => {
  const upstream = await startFaultyUpstream(
    answerEach(() => "HTTP/1.1 204 No Content\r\ncontent-length: 5\r\n\r\n"),
  );
  const nexo = await startNexo(`
proxies:
  "app.test":
    upstream: ${upstream.url}
`);
  try {
    for (const protocol of ["--http2", "--http1.1"]) {
      const res = await curl(nexo, "app.test", "/", [protocol]);
      assert.equal(res.code, 0, `${protocol}: ${res.stderr}`);
      assert.equal(res.status, 204);
      assert.equal(res.headers["content-length"], undefined);
    }
  } finally {
    await nexo.stop();
    await upstream.close();
  }
});

/** One HTTP/2 frame (RFC 9113 §4.1). */
function h2Frame(
  type: number,
  flags: number,
  stream: number,
  payload: Uint8Array = new Uint8Array(0),
): Uint8Array {
  const frame = new Uint8Array(9 + payload.length);
  frame[0] = payload.length >> 16;
  frame[1] = (payload.length >> 8) & 0xff;
  frame[2] = payload.length & 0xff;
  frame[3] = type;
  frame[4] = flags;
  new DataView(frame.buffer).setUint32(5, stream);
  frame.set(payload, 9);
  return frame;
}

Deno.test("HTTP/2 protocol noise (an unsolicited PING ack, a rapid-reset flood) leaves only JSON lines in the log", async () => {
  const app = startRecordingUpstream();
  const nexo = await startNexo(`
proxies:
  "app.test":
    upstream: ${app.url}
`);
  try {
    const conn = await connectTls(nexo, "app.test", ["h2"]);
    const preface = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    const frames = [preface, h2Frame(4, 0, 0), h2Frame(6, 1, 0, new Uint8Array(8).fill(7))];
    // HEADERS (END_STREAM | END_HEADERS) from HPACK's static table: GET, https, /, :authority app.test;
    // then RST_STREAM(CANCEL) at once, 200 times (CVE-2023-44487's pattern).
    const block = new Uint8Array([0x82, 0x87, 0x84, 0x41, 8, ...new TextEncoder().encode("app.test")]);
    for (let stream = 1; stream < 400; stream += 2) {
      frames.push(h2Frame(1, 0x5, stream, block), h2Frame(3, 0, stream, new Uint8Array([0, 0, 0, 8])));
    }
    try {
      try {
        for (const frame of frames) await conn.write(frame);
      } catch (error) {
        // nexo may end the connection mid-flood (GOAWAY, then close): the flood's expected outcome.
        if (!(error instanceof Deno.errors.BrokenPipe || error instanceof Deno.errors.ConnectionReset)) {
          throw error;
        }
      }
      // Read until nexo ends the connection (GOAWAY, then close) or a second passes.
      const buf = new Uint8Array(65536);
      const deadline = setTimeout(() => conn.close(), 1000);
      try {
        while ((await conn.read(buf)) !== null) { /* drain */ }
      } catch {
        // closed by the deadline, or reset by nexo
      } finally {
        clearTimeout(deadline);
      }
    } finally {
      try {
        conn.close();
      } catch {
        // already closed
      }
    }
    await isAlive(nexo, "app.test");
    await nexo.stop();
    const bare = nexo.output().split("\n").filter((line) => {
      if (line.trim() === "") return false;
      try {
        JSON.parse(line);
        return false;
      } catch {
        return true;
      }
    });
    assert.deepEqual(bare, []);
  } finally {
    await nexo.stop();
    await app.close();
  }
});

Deno.test("WebSocket relay: the upstream's close code reaches the client, and a client that never answers the close is dropped", async () => {
  // The upstream closes with 1011 when asked; Deno's server-side socket may send it.
  const upstream = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.onmessage = (event) => {
      if (event.data === "close please") socket.close(1011, "upstream broke");
    };
    return response;
  });
  const nexo = await startNexo(`
proxies:
  "app.test":
    upstream: http://127.0.0.1:${upstream.addr.port}
`);
  const conn = await connectTls(nexo, "app.test");
  try {
    await conn.write(upgradeRequest("app.test", "/ws"));
    const buf = new Uint8Array(4096);
    let received = new Uint8Array(0);
    const readMore = async () => {
      const n = await conn.read(buf);
      if (n === null) return false;
      received = new Uint8Array([...received, ...buf.subarray(0, n)]);
      return true;
    };
    while (!new TextDecoder().decode(received).includes("\r\n\r\n")) assert.ok(await readMore(), "no 101");
    const head = new TextDecoder().decode(received);
    assert.match(head, /^HTTP\/1\.1 101/);
    received = received.subarray(head.indexOf("\r\n\r\n") + 4);
    await conn.write(maskedTextFrame("close please"));
    while (received.length < 4) assert.ok(await readMore(), "no close frame");
    assert.equal(received[0], 0x88, "a close frame");
    assert.equal((received[2]! << 8) | received[3]!, 1011, "the upstream's code, not 1000");
    // This client never answers the close: nexo must not hold the connection for ever (RFC 6455 §7.1.1).
    const waitStarted = Date.now();
    const deadline = setTimeout(() => conn.close(), 10_000);
    try {
      while (await readMore()) { /* wait for the FIN */ }
    } catch {
      // closed by the deadline
    } finally {
      clearTimeout(deadline);
    }
    const waited = Date.now() - waitStarted;
    assert.ok(waited < 8_000, `the connection stayed open ${waited} ms after an unanswered close`);
  } finally {
    try {
      conn.close();
    } catch {
      // already closed
    }
    await nexo.stop();
    await upstream.shutdown();
  }
});

/**
 * An HTTP/2 uploader that behaves like httpx (httpcore): it sends DATA as flow control allows and reads from
 * the socket only while its send window is empty, so it sees the response only after its whole body went
 * out. Sends `bodyBytes` without Content-Length to `host` on nexo; resolves with what happened.
 */
async function uploadLikeHttpx(
  nexo: NexoProcess,
  host: string,
  bodyBytes: number,
): Promise<{ outcome: "complete" | "stalled" | "closed"; sent: number; pageSeen: boolean }> {
  const conn = await connectTls(nexo, host, ["h2"]);
  const literal = (name: string, value: string) => {
    const n = new TextEncoder().encode(name);
    const v = new TextEncoder().encode(value);
    return [0x00, n.length, ...n, v.length, ...v];
  };
  // SETTINGS: no push, a 64 KiB connection window upgrade, then a POST without Content-Length.
  const block = new Uint8Array([
    ...literal(":method", "POST"),
    ...literal(":authority", host),
    ...literal(":scheme", "https"),
    ...literal(":path", "/upload"),
  ]);
  await conn.write(new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
  await conn.write(h2Frame(4, 0, 0, new Uint8Array([0, 2, 0, 0, 0, 0])));
  await conn.write(h2Frame(1, 0x4, 1, block));
  const window = { conn: 65_535, stream: 65_535, initial: 65_535, maxFrame: 16_384 };
  let pending = new Uint8Array(0);
  let responseEnded = false;
  let page = "";
  const readFrames = async (): Promise<boolean> => {
    const buf = new Uint8Array(65_536);
    const n = await conn.read(buf);
    if (n === null) return false;
    pending = new Uint8Array([...pending, ...buf.subarray(0, n)]);
    while (pending.length >= 9) {
      const length = (pending[0]! << 16) | (pending[1]! << 8) | pending[2]!;
      if (pending.length < 9 + length) break;
      const [type, flags] = [pending[3]!, pending[4]!];
      const stream = new DataView(pending.buffer, pending.byteOffset + 5, 4).getUint32(0) & 0x7fffffff;
      const payload = pending.slice(9, 9 + length);
      pending = pending.slice(9 + length);
      const view = new DataView(payload.buffer);
      if (type === 4 && !(flags & 1)) {
        for (let i = 0; i + 6 <= payload.length; i += 6) {
          const [id, value] = [view.getUint16(i), view.getUint32(i + 2)];
          if (id === 4) [window.stream, window.initial] = [window.stream + value - window.initial, value];
          if (id === 5) window.maxFrame = value;
        }
        await conn.write(h2Frame(4, 1, 0));
      } else if (type === 8) {
        if (stream === 0) window.conn += view.getUint32(0);
        else if (stream === 1) window.stream += view.getUint32(0);
      } else if (type === 0 && stream === 1) {
        page += new TextDecoder().decode(payload);
        if (flags & 1) responseEnded = true;
      } else if (type === 1 && stream === 1 && flags & 1) {
        responseEnded = true;
      } else if (type === 6 && !(flags & 1)) {
        await conn.write(h2Frame(6, 1, 0, payload));
      }
      // RST_STREAM and GOAWAY are not acted on while sending, as httpcore's flow-control wait does not.
    }
    return true;
  };
  // Ten seconds without a WINDOW_UPDATE that lets it send: the client is stuck for good.
  const withTimeout = async (read: Promise<boolean>) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((resolve) => timer = setTimeout(() => resolve("timeout"), 10_000));
    try {
      return await Promise.race([read, timeout]);
    } finally {
      clearTimeout(timer);
    }
  };
  let sent = 0;
  try {
    const chunk = new Uint8Array(16_384).fill(0x61);
    while (sent < bodyBytes) {
      while (Math.min(window.conn, window.stream) <= 0) {
        const read = await withTimeout(readFrames());
        if (read === "timeout") return { outcome: "stalled", sent, pageSeen: page.includes("413") };
        if (!read) return { outcome: "closed", sent, pageSeen: page.includes("413") };
      }
      const size = Math.min(window.conn, window.stream, window.maxFrame, bodyBytes - sent);
      await conn.write(h2Frame(0, 0, 1, chunk.subarray(0, size)));
      sent += size;
      window.conn -= size;
      window.stream -= size;
    }
    await conn.write(h2Frame(0, 1, 1));
    while (!responseEnded) {
      const read = await withTimeout(readFrames());
      if (read !== true) return { outcome: read === "timeout" ? "stalled" : "closed", sent, pageSeen: false };
    }
    return { outcome: "complete", sent, pageSeen: page.includes("413 Content Too Large") };
  } catch {
    return { outcome: "closed", sent, pageSeen: page.includes("413") };
  } finally {
    try {
      conn.close();
    } catch {
      // already closed
    }
  }
}

Deno.test("an HTTP/2 upload without Content-Length over max_body gets its 413 even from a client that reads only when blocked", async () => {
  const app = startRecordingUpstream();
  const nexo = await startNexo(`
proxies:
  "app.test":
    upstream: ${app.url}
    max_body: 1MiB
`);
  try {
    // 6 MiB against a 1 MiB limit: once nexo has answered, Deno resets the stream and sends no more
    // WINDOW_UPDATEs, unless nexo is still reading the body when the page is sent.
    for (let run = 0; run < 3; run++) {
      const result = await uploadLikeHttpx(nexo, "app.test", 6 * 1024 * 1024);
      assert.deepEqual(result, { outcome: "complete", sent: 6 * 1024 * 1024, pageSeen: true }, `run ${run}`);
    }
    await isAlive(nexo, "app.test");
  } finally {
    await nexo.stop();
    await app.close();
  }
});

Deno.test("OPTIONS * reaches the upstream in asterisk form (RFC 9112 §3.2.4), whatever the upstream's base path", async () => {
  const app = startRecordingUpstream();
  const nexo = await startNexo(`
proxies:
  "app.test":
    upstream: ${app.url}
  "base.test":
    upstream: ${app.url}/base/
`);
  try {
    assert.equal(await rawStatus(nexo, "app.test", "OPTIONS * HTTP/1.1\r\nHost: app.test\r\n\r\n"), 200);
    const h2 = await curl(nexo, "base.test", "/", ["--http2", "-X", "OPTIONS", "--request-target", "*"]);
    assert.equal(h2.status, 200, h2.stderr);
    assert.equal(await rawStatus(nexo, "app.test", "OPTIONS /x HTTP/1.1\r\nHost: app.test\r\n\r\n"), 200);
    assert.deepEqual(app.requests.map((r) => `${r.method} ${r.target}`), [
      "OPTIONS *",
      "OPTIONS *",
      "OPTIONS /x",
    ]);
    assert.deepEqual(app.violations, []);
  } finally {
    await nexo.stop();
    await app.close();
  }
});

Deno.test("http_listen redirects to public_https_port, not to the port nexo is bound to", async () => {
  const app = startRecordingUpstream();
  const nexo = await startNexo(`
http_listen: "127.0.0.1:0"
public_https_port: 8443
proxies:
  "app.test":
    upstream: ${app.url}
`);
  try {
    const location = async () => {
      const out = await new Deno.Command("curl", {
        args: [
          "-sS",
          "-o",
          "/dev/null",
          "-w",
          "%{redirect_url}",
          "-H",
          "Host: app.test",
          `http://127.0.0.1:${nexo.httpPort}/p?q=1`,
        ],
        stdout: "piped",
      }).output();
      return new TextDecoder().decode(out.stdout);
    };
    assert.equal(await location(), "https://app.test:8443/p?q=1");
    // A reload that drops the key goes back to the standard port at once.
    const file = `${nexo.dir}/config.yaml`;
    await Deno.writeTextFile(file, (await Deno.readTextFile(file)).replace("public_https_port: 8443\n", ""));
    await nexo.waitForLog((l) => l.msg === "config reloaded");
    assert.equal(await location(), "https://app.test/p?q=1");
  } finally {
    await nexo.stop();
    await app.close();
  }
});
