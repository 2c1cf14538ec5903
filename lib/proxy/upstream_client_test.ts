import assert from "node:assert/strict";
import {
  UpstreamError,
  UpstreamPool,
  type UpstreamRequest,
  type UpstreamResponse,
} from "./upstream_client.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// ---------------------------------------------------------------------------------------------------------
// Test servers

/** A Deno.serve upstream on 127.0.0.1:0. */
function serveUpstream(handler: (req: Request) => Response | Promise<Response>) {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handler);
  return { port: server.addr.port, close: () => server.shutdown() };
}

/** Reads request heads (and bodies by Content-Length) from a raw connection. */
class RawPeer {
  #pending = new Uint8Array(0);
  constructor(readonly conn: Deno.Conn) {}

  /** The next request head as text without the final CRLF CRLF, or null at EOF. */
  async readHead(): Promise<string | null> {
    for (;;) {
      const text = decoder.decode(this.#pending);
      const end = text.indexOf("\r\n\r\n");
      if (end !== -1) {
        this.#pending = this.#pending.subarray(end + 4);
        return text.slice(0, end);
      }
      if (!(await this.#more())) return null;
    }
  }

  /** Exactly `n` body bytes. */
  async readBytes(n: number): Promise<Uint8Array> {
    while (this.#pending.length < n) {
      if (!(await this.#more())) throw new Error(`peer closed after ${this.#pending.length} of ${n} bytes`);
    }
    const out = this.#pending.slice(0, n);
    this.#pending = this.#pending.subarray(n);
    return out;
  }

  async write(text: string | Uint8Array): Promise<void> {
    const bytes = typeof text === "string" ? encoder.encode(text) : text;
    for (let offset = 0; offset < bytes.length;) offset += await this.conn.write(bytes.subarray(offset));
  }

  async #more(): Promise<boolean> {
    const buf = new Uint8Array(65536);
    let n: number | null;
    try {
      n = await this.conn.read(buf);
    } catch {
      return false;
    }
    if (n === null) return false;
    const joined = new Uint8Array(this.#pending.length + n);
    joined.set(this.#pending);
    joined.set(buf.subarray(0, n), this.#pending.length);
    this.#pending = joined;
    return true;
  }
}

/**
 * A raw TCP upstream: `handle` runs once per accepted connection (index from 0) and the connection is closed
 * after it returns. Records every request head it read through `peer.readHead()`.
 */
function rawUpstream(handle: (peer: RawPeer, index: number) => Promise<void>) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const handlers: Promise<void>[] = [];
  const heads: string[] = [];
  let accepted = 0;
  const loop = (async () => {
    for await (const conn of listener) {
      const index = accepted++;
      conns.add(conn);
      const peer = new RawPeer(conn);
      const readHead = peer.readHead.bind(peer);
      peer.readHead = async () => {
        const head = await readHead();
        if (head !== null) heads.push(head);
        return head;
      };
      handlers.push(
        handle(peer, index).catch(() => {}).finally(() => {
          if (conns.delete(conn)) conn.close();
        }),
      );
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    heads,
    get accepted() {
      return accepted;
    },
    async close() {
      listener.close();
      for (const conn of conns) conn.close();
      conns.clear();
      await loop.catch(() => {});
      await Promise.all(handlers);
    },
  };
}

/** Serves each request on a connection with `respond(head)` until the client closes it. */
function keepAliveHandler(respond: (head: string) => string | Uint8Array) {
  return async (peer: RawPeer) => {
    for (let head = await peer.readHead(); head !== null; head = await peer.readHead()) {
      await peer.write(respond(head));
    }
  };
}

function get(port: number, path = "/", extra: Partial<UpstreamRequest> = {}): UpstreamRequest {
  return {
    method: "GET",
    url: new URL(`http://127.0.0.1:${port}${path}`),
    headers: [["host", `127.0.0.1:${port}`]],
    body: null,
    bodyLength: null,
    responseTimeoutMs: 5_000,
    bodyTimeoutMs: 5_000,
    ...extra,
  };
}

async function text(res: UpstreamResponse): Promise<string> {
  return decoder.decode(await res.bytes());
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

function assertUpstreamError(error: unknown, kind: UpstreamError["kind"], message?: RegExp): void {
  assert.ok(error instanceof UpstreamError, `expected UpstreamError, got ${error}`);
  assert.equal(error.kind, kind, error.message);
  if (message) assert.match(error.message, message);
}

async function sha256Hex(data: Uint8Array | ArrayBuffer): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", data as BufferSource));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

const OK_5 = "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";

// ---------------------------------------------------------------------------------------------------------
// Normal exchanges against Deno.serve

Deno.test("request() returns status, headers and body from a Deno.serve upstream", async () => {
  const upstream = serveUpstream((req) =>
    new Response(`you asked for ${new URL(req.url).pathname}`, { status: 201, headers: { "x-answer": "42" } })
  );
  const pool = new UpstreamPool();
  try {
    const res = await pool.request(get(upstream.port, "/thing"));
    assert.equal(res.status, 201);
    assert.equal(res.statusText, "Created");
    assert.deepEqual(res.headers.find(([name]) => name === "x-answer"), ["x-answer", "42"]);
    assert.equal(res.contentLength, "you asked for /thing".length);
    assert.equal(await text(res), "you asked for /thing");
    assert.equal(pool.idleCount, 1);
  } finally {
    pool.close();
    await upstream.close();
  }
});

Deno.test("request() sends exactly the caller's header lines plus body framing, nothing else", async () => {
  // Keeps the connection for the second request: the pool reuses it at once.
  const upstream = rawUpstream(async (peer) => {
    for (let head = await peer.readHead(); head !== null; head = await peer.readHead()) {
      const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
      await peer.readBytes(length);
      await peer.write(OK_5);
    }
  });
  const pool = new UpstreamPool();
  try {
    await (await pool.request(get(upstream.port, "/a/b?x=1&y=%20", {
      headers: [["Host", "app.example"], ["X-Custom", "One"], ["x-custom", "two"], ["Accept", "text/plain"]],
    }))).bytes();
    await (await pool.request({
      ...get(upstream.port, "/post"),
      method: "POST",
      headers: [["host", "app.example"]],
      body: ReadableStream.from([encoder.encode("abc")]),
      bodyLength: 3,
    })).bytes();
    assert.deepEqual(upstream.heads, [
      "GET /a/b?x=1&y=%20 HTTP/1.1\r\nHost: app.example\r\nX-Custom: One\r\nx-custom: two\r\nAccept: text/plain",
      "POST /post HTTP/1.1\r\nhost: app.example\r\ncontent-length: 3",
    ]);
  } finally {
    pool.close();
    await upstream.close();
  }
});

Deno.test("a gzip-encoded body passes through byte for byte with its Content-Encoding", async () => {
  const plain = encoder.encode("compress me ".repeat(5_000));
  const gzipped = await new Response(ReadableStream.from([plain]).pipeThrough(new CompressionStream("gzip")))
    .bytes();
  const upstream = serveUpstream(() =>
    new Response(gzipped, { headers: { "content-encoding": "gzip", "content-type": "text/plain" } })
  );
  const pool = new UpstreamPool();
  try {
    const res = await pool.request(get(upstream.port));
    assert.deepEqual(res.headers.find(([name]) => name === "content-encoding"), ["content-encoding", "gzip"]);
    assert.deepEqual(await res.bytes(), gzipped);
  } finally {
    pool.close();
    await upstream.close();
  }
});

Deno.test("a 5 MiB request body of unknown length arrives intact with chunked encoding", async () => {
  const size = 5 * 1024 * 1024;
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i += 65536) crypto.getRandomValues(data.subarray(i, Math.min(size, i + 65536)));
  const upstream = serveUpstream(async (req) => {
    const te = req.headers.get("transfer-encoding");
    const digest = await sha256Hex(await req.arrayBuffer());
    return Response.json({ te, digest });
  });
  const pool = new UpstreamPool();
  try {
    let offset = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (offset >= size) return controller.close();
        const piece = 10_000 + (offset % 50_000); // uneven pieces
        controller.enqueue(data.slice(offset, offset + piece));
        offset += piece;
      },
    });
    const res = await pool.request({ ...get(upstream.port), method: "PUT", body, bodyLength: null });
    assert.deepEqual(JSON.parse(await text(res)), { te: "chunked", digest: await sha256Hex(data) });
  } finally {
    pool.close();
    await upstream.close();
  }
});

Deno.test("large response bodies arrive intact as separate buffers, with Content-Length and chunked", async () => {
  const data = new Uint8Array(3 * 1024 * 1024);
  for (let i = 0; i < data.length; i += 65536) crypto.getRandomValues(data.subarray(i, i + 65536));
  const upstream = serveUpstream((req) => {
    if (new URL(req.url).pathname === "/length") return new Response(data);
    let offset = 0;
    return new Response(
      new ReadableStream<Uint8Array>({
        pull(controller) {
          if (offset >= data.length) return controller.close();
          controller.enqueue(data.slice(offset, offset += 100_000));
        },
      }),
    );
  });
  const pool = new UpstreamPool();
  try {
    const expected = await sha256Hex(data);
    for (const path of ["/length", "/chunked"]) {
      const res = await pool.request(get(upstream.port, path));
      assert.equal(res.contentLength, path === "/length" ? data.length : null);
      // Collect every piece before looking at any: a view of a reused read buffer would be overwritten.
      const parts: Uint8Array[] = [];
      for await (const part of res.body!) parts.push(part);
      const whole = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
      parts.reduce((offset, part) => (whole.set(part, offset), offset + part.length), 0);
      assert.equal(await sha256Hex(whole), expected, path);
    }
    assert.equal(pool.idleCount, 1);
  } finally {
    pool.close();
    await upstream.close();
  }
});

Deno.test("concurrent requests use separate connections and maxIdlePerHost caps what is kept", async () => {
  const upstream = rawUpstream(keepAliveHandler(() => OK_5));
  const pool = new UpstreamPool({ maxIdlePerHost: 2 });
  try {
    const responses = await Promise.all([1, 2, 3].map(() => pool.request(get(upstream.port))));
    assert.equal(upstream.accepted, 3);
    for (const res of responses) assert.equal(await text(res), "hello");
    assert.equal(pool.idleCount, 2);
  } finally {
    pool.close();
    await upstream.close();
  }
});

Deno.test("HEAD, 204 and 304 responses have a null body; only a HEAD answer declaring a length is not pooled", async () => {
  const upstream = rawUpstream(keepAliveHandler((head) => {
    if (head.startsWith("HEAD /sized")) return "HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n";
    if (head.startsWith("HEAD")) return "HTTP/1.1 200 OK\r\n\r\n";
    if (head.includes("/204")) return "HTTP/1.1 204 No Content\r\n\r\n";
    return 'HTTP/1.1 304 Not Modified\r\netag: "x"\r\ncontent-length: 99\r\n\r\n';
  }));
  const pool = new UpstreamPool();
  try {
    const head = await pool.request({ ...get(upstream.port), method: "HEAD" });
    assert.equal(head.body, null);
    assert.equal(head.contentLength, null);
    assert.deepEqual(await head.bytes(), new Uint8Array(0));
    assert.equal((await pool.request(get(upstream.port, "/204"))).body, null);
    const notModified = await pool.request(get(upstream.port, "/304"));
    assert.equal(notModified.status, 304);
    assert.equal(notModified.body, null);
    assert.equal(upstream.accepted, 1);
    assert.equal(pool.idleCount, 1);
    // A buggy app may still write the 1,234 bytes it declared; they must not become the next response.
    const sized = await pool.request({ ...get(upstream.port, "/sized"), method: "HEAD" });
    assert.equal(sized.body, null);
    assert.equal(pool.idleCount, 0);
  } finally {
    pool.close();
    await upstream.close();
  }
});

// ---------------------------------------------------------------------------------------------------------
// Keep-alive

Deno.test("two sequential requests reuse one kept-alive connection", async () => {
  const upstream = rawUpstream(keepAliveHandler(() => OK_5));
  const pool = new UpstreamPool();
  try {
    assert.equal(await text(await pool.request(get(upstream.port))), "hello");
    assert.equal(pool.idleCount, 1);
    assert.equal(await text(await pool.request(get(upstream.port))), "hello");
    assert.equal(upstream.accepted, 1);
  } finally {
    pool.close();
    await upstream.close();
  }
});

Deno.test("a Connection: close response is not pooled and the next request opens a new connection", async () => {
  const upstream = rawUpstream(async (peer) => {
    await peer.readHead();
    await peer.write("HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 5\r\n\r\nhello");
  });
  const pool = new UpstreamPool();
  try {
    assert.equal(await text(await pool.request(get(upstream.port))), "hello");
    assert.equal(pool.idleCount, 0);
    assert.equal(await text(await pool.request(get(upstream.port))), "hello");
    assert.equal(upstream.accepted, 2);
  } finally {
    pool.close();
    await upstream.close();
  }
});

Deno.test("an HTTP/1.0 response without keep-alive is not pooled", async () => {
  const upstream = rawUpstream(keepAliveHandler(() => "HTTP/1.0 200 OK\r\ncontent-length: 5\r\n\r\nhello"));
  const pool = new UpstreamPool();
  try {
    assert.equal(await text(await pool.request(get(upstream.port))), "hello");
    assert.equal(pool.idleCount, 0);
  } finally {
    pool.close();
    await upstream.close();
  }
});

Deno.test("a GET on a pooled connection the upstream dropped is retried once on a fresh one", async () => {
  // The first connection answers one request, then closes when the second arrives (the keep-alive race).
  const upstream = rawUpstream(async (peer, index) => {
    await peer.readHead();
    if (index === 0) {
      await peer.write(OK_5);
      await peer.readHead();
      return;
    }
    await peer.write("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfresh");
  });
  const pool = new UpstreamPool();
  try {
    assert.equal(await text(await pool.request(get(upstream.port))), "hello");
    assert.equal(await text(await pool.request(get(upstream.port))), "fresh");
    assert.equal(upstream.accepted, 2);
  } finally {
    pool.close();
    await upstream.close();
  }
});

Deno.test("a request with a body is never retried on a dropped pooled connection", async () => {
  const upstream = rawUpstream(async (peer, index) => {
    await peer.readHead();
    await peer.write(OK_5);
    if (index === 0) await peer.readHead();
  });
  const pool = new UpstreamPool();
  try {
    await (await pool.request(get(upstream.port))).bytes();
    const error = await rejection(pool.request({
      ...get(upstream.port),
      method: "POST",
      body: ReadableStream.from([encoder.encode("data")]),
      bodyLength: 4,
    }));
    assertUpstreamError(error, "reset");
    assert.equal(upstream.accepted, 1);
  } finally {
    pool.close();
    await upstream.close();
  }
});

Deno.test("an idle connection the upstream closes leaves the pool at once", async () => {
  const upstream = rawUpstream(async (peer) => {
    await peer.readHead();
    await peer.write(OK_5);
  });
  const pool = new UpstreamPool();
  try {
    await (await pool.request(get(upstream.port))).bytes();
    for (let i = 0; i < 100 && pool.idleCount > 0; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(pool.idleCount, 0);
  } finally {
    pool.close();
    await upstream.close();
  }
});

Deno.test("idle connections are closed after idleTimeoutMs", async () => {
  const upstream = rawUpstream(keepAliveHandler(() => OK_5));
  const pool = new UpstreamPool({ idleTimeoutMs: 30 });
  try {
    await (await pool.request(get(upstream.port))).bytes();
    assert.equal(pool.idleCount, 1);
    for (let i = 0; i < 100 && pool.idleCount > 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(pool.idleCount, 0);
  } finally {
    pool.close();
    await upstream.close();
  }
});

Deno.test("a cancelled response body closes its connection instead of pooling it", async () => {
  const upstream = rawUpstream(keepAliveHandler(() => "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nabc"));
  const pool = new UpstreamPool();
  try {
    const res = await pool.request(get(upstream.port));
    await res.body!.cancel();
    assert.equal(pool.idleCount, 0);
  } finally {
    pool.close();
    await upstream.close();
  }
});

// ---------------------------------------------------------------------------------------------------------
// Response framing from handcrafted bytes

Deno.test("a chunked body with extensions and trailers is decoded and the connection reused", async () => {
  const upstream = rawUpstream(
    keepAliveHandler(() =>
      "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" +
      "5;name=value;flag\r\nhello\r\n" +
      '7 ; ext="quoted"\r\n, world\r\n' +
      "000\r\nx-trailer: yes\r\nx-other: 1\r\n\r\n"
    ),
  );
  const pool = new UpstreamPool();
  try {
    const res = await pool.request(get(upstream.port));
    assert.equal(res.contentLength, null);
    assert.equal(await text(res), "hello, world");
    assert.equal(pool.idleCount, 1);
    assert.equal(await text(await pool.request(get(upstream.port))), "hello, world");
    assert.equal(upstream.accepted, 1);
  } finally {
    pool.close();
    await upstream.close();
  }
});

Deno.test("interim 100 Continue and 103 Early Hints are skipped before the final response", async () => {
  const upstream = rawUpstream(
    keepAliveHandler(() =>
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n" + OK_5
    ),
  );
  const pool = new UpstreamPool();
  try {
    const res = await pool.request(get(upstream.port));
    assert.equal(res.status, 200);
    assert.equal(res.headers.some(([name]) => name === "link"), false);
    assert.equal(await text(res), "hello");
  } finally {
    pool.close();
    await upstream.close();
  }
});

Deno.test("101 Switching Protocols is returned with a null body and its connection closed", async () => {
  const upstream = rawUpstream(async (peer) => {
    await peer.readHead();
    await peer.write("HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n");
    await peer.readHead();
  });
  const pool = new UpstreamPool();
  try {
    const res = await pool.request(get(upstream.port));
    assert.equal(res.status, 101);
    assert.equal(res.body, null);
    assert.equal(pool.idleCount, 0);
  } finally {
    pool.close();
    await upstream.close();
  }
});

Deno.test("a body without Content-Length or chunked is read until the upstream closes", async () => {
  const upstream = rawUpstream(async (peer) => {
    await peer.readHead();
    await peer.write("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil ");
    await peer.write("close");
  });
  const pool = new UpstreamPool();
  try {
    const res = await pool.request(get(upstream.port));
    assert.equal(res.contentLength, null);
    assert.equal(await text(res), "until close");
    assert.equal(pool.idleCount, 0);
  } finally {
    pool.close();
    await upstream.close();
  }
});

Deno.test("Transfer-Encoding chunked overrides Content-Length, which is dropped from the headers", async () => {
  const upstream = rawUpstream(
    keepAliveHandler(() =>
      "HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    ),
  );
  const pool = new UpstreamPool();
  try {
    const res = await pool.request(get(upstream.port));
    assert.equal(res.headers.some(([name]) => name === "content-length"), false);
    assert.equal(await text(res), "hello");
    assert.equal(pool.idleCount, 0);
  } finally {
    pool.close();
    await upstream.close();
  }
});

Deno.test("a body shorter than its Content-Length errors the body stream with reset", async () => {
  const upstream = rawUpstream(async (peer) => {
    await peer.readHead();
    await peer.write("HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly this");
  });
  const pool = new UpstreamPool();
  try {
    const res = await pool.request(get(upstream.port));
    assert.equal(res.contentLength, 100);
    assertUpstreamError(await rejection(res.bytes()), "reset", /after 9 of 100 body bytes/);
    assert.equal(pool.idleCount, 0);
  } finally {
    pool.close();
    await upstream.close();
  }
});

Deno.test("a chunked body cut off mid-chunk errors the body stream with reset", async () => {
  const upstream = rawUpstream(async (peer) => {
    await peer.readHead();
    await peer.write("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\na\r\nhel");
  });
  const pool = new UpstreamPool();
  try {
    const res = await pool.request(get(upstream.port));
    assertUpstreamError(await rejection(res.bytes()), "reset", /inside a chunked body/);
  } finally {
    pool.close();
    await upstream.close();
  }
});

for (
  const [name, response, message] of [
    ["a garbage status line", "HTTP/1.1 OK 200\r\n\r\n", /invalid status line/],
    ["a non-HTTP answer", "SSH-2.0-OpenSSH_9.6\r\n\r\n", /did not answer with HTTP\/1\.x/],
    ["obs-fold", "HTTP/1.1 200 OK\r\nx-long: a\r\n  b\r\ncontent-length: 0\r\n\r\n", /line folding/],
    [
      "conflicting Content-Length",
      "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello",
      /Content-Length/,
    ],
    ["an invalid header name", "HTTP/1.1 200 OK\r\nbad name: x\r\n\r\n", /invalid header field line/],
    ["a bare LF", "HTTP/1.1 200 OK\r\nx: a\nb: c\r\n\r\n", /bare CR or LF/],
    [
      "a gzip transfer coding",
      "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n",
      /unsupported Transfer-Encoding/,
    ],
  ] as const
) {
  Deno.test(`a response with ${name} is a protocol error`, async () => {
    const upstream = rawUpstream(async (peer) => {
      await peer.readHead();
      await peer.write(response);
      await peer.readHead();
    });
    const pool = new UpstreamPool();
    try {
      assertUpstreamError(await rejection(pool.request(get(upstream.port))), "protocol", message);
      assert.equal(pool.idleCount, 0);
    } finally {
      pool.close();
      await upstream.close();
    }
  });
}

Deno.test("a response head over maxHeaderBytes is a protocol error", async () => {
  const upstream = rawUpstream(async (peer) => {
    await peer.readHead();
    await peer.write(`HTTP/1.1 200 OK\r\nx-big: ${"a".repeat(4000)}\r\ncontent-length: 0\r\n\r\n`);
    await peer.readHead();
  });
  const pool = new UpstreamPool({ maxHeaderBytes: 1024 });
  try {
    assertUpstreamError(
      await rejection(pool.request(get(upstream.port))),
      "protocol",
      /larger than 1024 bytes/,
    );
  } finally {
    pool.close();
    await upstream.close();
  }
});

Deno.test("a peer that is not an HTTP/1.x server is a protocol error as soon as it speaks", async () => {
  // An SMTP greeting has no CRLF CRLF: waiting for the head's end would last until the response timeout.
  const upstream = rawUpstream(async (peer) => {
    await peer.readHead();
    await peer.write("220 mail.example.com ESMTP ready\r\n");
    await peer.readHead();
  });
  const pool = new UpstreamPool();
  try {
    const started = performance.now();
    const error = await rejection(pool.request(get(upstream.port, "/", { responseTimeoutMs: 10_000 })));
    assertUpstreamError(error, "protocol", /did not answer with HTTP\/1\.x \(it sent "220 mail/);
    assert.ok(performance.now() - started < 5_000, "rejected without waiting for the response timeout");
  } finally {
    pool.close();
    await upstream.close();
  }
});

Deno.test("a response head split into many small writes is parsed", async () => {
  const upstream = rawUpstream(async (peer) => {
    await peer.readHead();
    for (const byte of encoder.encode(OK_5)) {
      await peer.write(new Uint8Array([byte]));
      await new Promise((r) => setTimeout(r, 0));
    }
    await peer.readHead();
  });
  const pool = new UpstreamPool();
  try {
    assert.equal(await text(await pool.request(get(upstream.port))), "hello");
  } finally {
    pool.close();
    await upstream.close();
  }
});

// ---------------------------------------------------------------------------------------------------------
// Failures: connect, reset, timeout, abort, request body

Deno.test("a closed port is a connect error naming the upstream", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const pool = new UpstreamPool();
  try {
    assertUpstreamError(
      await rejection(pool.request(get(port))),
      "connect",
      new RegExp(`cannot connect to upstream 127\\.0\\.0\\.1:${port} \\(connection refused\\)`),
    );
  } finally {
    pool.close();
  }
});

Deno.test("an upstream that closes without answering is a reset error", async () => {
  const upstream = rawUpstream(async (peer) => {
    await peer.readHead();
  });
  const pool = new UpstreamPool();
  try {
    assertUpstreamError(
      await rejection(pool.request(get(upstream.port))),
      "reset",
      /without sending a response/,
    );
  } finally {
    pool.close();
    await upstream.close();
  }
});

Deno.test("an upstream that accepts and never answers is a timeout error after responseTimeoutMs", async () => {
  const upstream = rawUpstream(async (peer) => {
    await peer.readHead();
    await peer.readHead();
  });
  const pool = new UpstreamPool();
  try {
    const started = performance.now();
    const error = await rejection(pool.request(get(upstream.port, "/", { responseTimeoutMs: 200 })));
    assertUpstreamError(error, "timeout", /no response head within 200 ms/);
    assert.ok(performance.now() - started >= 190);
  } finally {
    pool.close();
    await upstream.close();
  }
});

Deno.test("the response timeout does not limit a slow body once the head arrived", async () => {
  const upstream = rawUpstream(async (peer) => {
    await peer.readHead();
    await peer.write("HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nab");
    await new Promise((r) => setTimeout(r, 150));
    await peer.write("cd");
    await peer.readHead();
  });
  const pool = new UpstreamPool();
  try {
    const res = await pool.request(get(upstream.port, "/", { responseTimeoutMs: 50 }));
    assert.equal(await text(res), "abcd");
  } finally {
    pool.close();
    await upstream.close();
  }
});

Deno.test("a response body stalled past bodyTimeoutMs errors with timeout; its connection closes", async () => {
  let closedByClient: Promise<string | null> = Promise.resolve(null);
  const upstream = rawUpstream(async (peer) => {
    await peer.readHead();
    await peer.write("HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nstart");
    // Never sends the rest; readHead() returns null once the client closes the connection.
    closedByClient = peer.readHead();
    await closedByClient;
  });
  const pool = new UpstreamPool();
  try {
    const res = await pool.request(get(upstream.port, "/", { bodyTimeoutMs: 200 }));
    const started = performance.now();
    assertUpstreamError(await rejection(res.bytes()), "timeout", /no response body bytes for 200 ms/);
    assert.ok(performance.now() - started >= 190);
    assert.equal(await closedByClient, null, "the client closed the stalled connection");
    assert.equal(pool.idleCount, 0);
  } finally {
    pool.close();
    await upstream.close();
  }
});

Deno.test("bodyTimeoutMs times waits on the upstream, not the caller's pauses between reads", async () => {
  const upstream = rawUpstream(async (peer) => {
    await peer.readHead();
    await peer.write("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n");
    await new Promise((r) => setTimeout(r, 50));
    await peer.write("2\r\ncd\r\n0\r\n\r\n");
    await peer.readHead();
  });
  const pool = new UpstreamPool();
  try {
    const res = await pool.request(get(upstream.port, "/", { bodyTimeoutMs: 150 }));
    const reader = res.body!.getReader();
    let body = "";
    for (let result = await reader.read(); !result.done; result = await reader.read()) {
      body += decoder.decode(result.value);
      // A slow client: three body timeouts between reads, while the upstream's bytes wait in the socket.
      await new Promise((r) => setTimeout(r, 450));
    }
    assert.equal(body, "abcd");
  } finally {
    pool.close();
    await upstream.close();
  }
});

Deno.test("aborting the signal while waiting for the head rejects with the signal's reason", async () => {
  const upstream = rawUpstream(async (peer) => {
    await peer.readHead();
    await peer.readHead();
  });
  const pool = new UpstreamPool();
  const controller = new AbortController();
  const reason = new Error("client went away");
  try {
    const pending = pool.request(get(upstream.port, "/", { signal: controller.signal }));
    setTimeout(() => controller.abort(reason), 30);
    assert.equal(await rejection(pending), reason);
    assert.equal(pool.idleCount, 0);
  } finally {
    pool.close();
    await upstream.close();
  }
});

Deno.test("aborting the signal while the body streams errors the body with the signal's reason", async () => {
  const upstream = rawUpstream(async (peer) => {
    await peer.readHead();
    await peer.write("HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nfirst");
    await peer.readHead();
  });
  const pool = new UpstreamPool();
  const controller = new AbortController();
  const reason = new Error("client went away");
  try {
    const res = await pool.request(get(upstream.port, "/", { signal: controller.signal }));
    const reader = res.body!.getReader();
    assert.equal(decoder.decode((await reader.read()).value), "first");
    const next = reader.read();
    controller.abort(reason);
    assert.equal(await rejection(next), reason);
  } finally {
    pool.close();
    await upstream.close();
  }
});

Deno.test("an already aborted signal rejects before connecting", async () => {
  const pool = new UpstreamPool();
  const reason = new Error("too late");
  try {
    assert.equal(await rejection(pool.request(get(9, "/", { signal: AbortSignal.abort(reason) }))), reason);
  } finally {
    pool.close();
  }
});

Deno.test("a failing request body rejects with an UpstreamError carrying the body's error as cause", async () => {
  class TooLarge extends Error {}
  const upstream = rawUpstream(async (peer) => {
    await peer.readHead();
    await peer.readHead();
  });
  const pool = new UpstreamPool();
  try {
    let sent = false;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (sent) {
          await new Promise((r) => setTimeout(r, 20));
          return controller.error(new TooLarge("body over 4 bytes"));
        }
        sent = true;
        controller.enqueue(encoder.encode("1234"));
      },
    });
    const error = await rejection(
      pool.request({ ...get(upstream.port), method: "POST", body, bodyLength: null }),
    );
    assertUpstreamError(error, "reset", /request body for upstream .* failed \(body over 4 bytes\)/);
    assert.ok((error as Error).cause instanceof TooLarge);
  } finally {
    pool.close();
    await upstream.close();
  }
});

Deno.test("a request body shorter than bodyLength fails the request and closes the connection", async () => {
  const upstream = rawUpstream(async (peer) => {
    await peer.readHead();
    await peer.readHead();
  });
  const pool = new UpstreamPool();
  try {
    const error = await rejection(pool.request({
      ...get(upstream.port),
      method: "PUT",
      body: ReadableStream.from([encoder.encode("abc")]),
      bodyLength: 10,
    }));
    assertUpstreamError(error, "reset");
    assert.ok((error as Error).cause instanceof RangeError);
    assert.match(((error as Error).cause as Error).message, /ended after 3 of its declared 10 bytes/);
  } finally {
    pool.close();
    await upstream.close();
  }
});

Deno.test("a request body longer than bodyLength fails the request", async () => {
  const upstream = rawUpstream(async (peer) => {
    await peer.readHead();
    await peer.readHead();
  });
  const pool = new UpstreamPool();
  try {
    const error = await rejection(pool.request({
      ...get(upstream.port),
      method: "PUT",
      body: ReadableStream.from([encoder.encode("abc"), encoder.encode("def")]),
      bodyLength: 4,
    }));
    assertUpstreamError(error, "reset");
    assert.match(((error as Error).cause as Error).message, /longer than its declared length of 4 bytes/);
  } finally {
    pool.close();
    await upstream.close();
  }
});

Deno.test("an upstream answering before reading the body gets its response through", async () => {
  const upstream = rawUpstream(async (peer) => {
    await peer.readHead();
    await peer.write("HTTP/1.1 413 Content Too Large\r\ncontent-length: 4\r\n\r\nnope");
    await peer.readHead();
  });
  const pool = new UpstreamPool();
  try {
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(encoder.encode("x".repeat(1000)));
      },
    }); // never ends: the upstream answers anyway
    const res = await pool.request({ ...get(upstream.port), method: "POST", body, bodyLength: null });
    assert.equal(res.status, 413);
    assert.equal(await text(res), "nope");
    assert.equal(pool.idleCount, 0);
  } finally {
    pool.close();
    await upstream.close();
  }
});

Deno.test("a body-less POST is sent with Content-Length: 0", async () => {
  const upstream = rawUpstream(keepAliveHandler(() => OK_5));
  const pool = new UpstreamPool();
  try {
    await (await pool.request({ ...get(upstream.port), method: "POST" })).bytes();
    assert.deepEqual(upstream.heads, [
      `POST / HTTP/1.1\r\nhost: 127.0.0.1:${upstream.port}\r\ncontent-length: 0`,
    ]);
  } finally {
    pool.close();
    await upstream.close();
  }
});

Deno.test("request() rejects header injection and caller framing headers with TypeError before connecting", async () => {
  const pool = new UpstreamPool();
  try {
    const bad: Array<[string, string]>[] = [
      [["x-evil", "a\r\nx-injected: 1"]],
      [["bad name", "x"]],
      [["Content-Length", "5"]],
      [["transfer-encoding", "chunked"]],
    ];
    for (const headers of bad) {
      assert.ok(await rejection(pool.request(get(9, "/", { headers }))) instanceof TypeError);
    }
    assert.ok(
      await rejection(pool.request(get(9, "/", { url: new URL("ftp://127.0.0.1/") }))) instanceof TypeError,
    );
  } finally {
    pool.close();
  }
});

Deno.test("request() after close() is a connect error", async () => {
  const pool = new UpstreamPool();
  pool.close();
  pool.close();
  assertUpstreamError(await rejection(pool.request(get(9))), "connect", /pool was closed/);
});

// ---------------------------------------------------------------------------------------------------------
// https upstreams

/** A CA and a leaf certificate for localhost and 127.0.0.1 it signed, made with openssl in a temp directory. */
async function makeTestCertificates(): Promise<{ ca: string; cert: string; key: string }> {
  const dir = await Deno.makeTempDir({ prefix: "nexo_upstream_tls_" });
  const run = async (command: string) => {
    const args = command.split(" ");
    const out = await new Deno.Command("openssl", { args, cwd: dir, stdout: "null", stderr: "piped" })
      .output();
    if (!out.success) throw new Error(`openssl ${command} failed: ${decoder.decode(out.stderr)}`);
  };
  const ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
  try {
    await run(`req -x509 ${ec} -days 1 -subj /CN=nexo_test_CA -keyout ca.key -out ca.pem`);
    await run(`req ${ec} -subj /CN=localhost -keyout leaf.key -out leaf.csr`);
    await Deno.writeTextFile(
      `${dir}/leaf.ext`,
      "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    );
    await run(
      "x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile leaf.ext -out leaf.pem",
    );
    return {
      ca: await Deno.readTextFile(`${dir}/ca.pem`),
      cert: await Deno.readTextFile(`${dir}/leaf.pem`),
      key: await Deno.readTextFile(`${dir}/leaf.key`),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("an https upstream is verified against caCerts, with SNI from the URL's hostname", async (t) => {
  const { ca, cert, key } = await makeTestCertificates();
  let sawSecure = false;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, cert, key, onListen() {} }, (req) => {
    sawSecure = new URL(req.url).protocol === "https:";
    return new Response("secret");
  });
  const url = new URL(`https://localhost:${server.addr.port}/`);
  const request = { ...get(server.addr.port), url, headers: [["host", url.host]] as Array<[string, string]> };
  try {
    await t.step("trusted through caCerts", async () => {
      const pool = new UpstreamPool({ caCerts: [ca] });
      try {
        assert.equal(await text(await pool.request(request)), "secret");
        assert.equal(await text(await pool.request(request)), "secret");
        assert.equal(pool.idleCount, 1);
        assert.ok(sawSecure);
      } finally {
        pool.close();
      }
    });
    await t.step("rejected without the CA", async () => {
      const pool = new UpstreamPool();
      try {
        assertUpstreamError(
          await rejection(pool.request(request)),
          "connect",
          /TLS handshake with upstream localhost:\d+ failed/,
        );
      } finally {
        pool.close();
      }
    });
  } finally {
    await server.shutdown();
  }
});
