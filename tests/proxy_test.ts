// End-to-end: the real CLI serving real upstreams, checked with curl and raw TLS sockets that verify against
// nexo's local CA. One nexo process serves every step of a test, as it would in production.

import assert from "node:assert/strict";
import { connectTls, curl, rssBytes, startNexo } from "./harness.ts";
import { BLOCK, closedPort, expectedSha256, startEchoUpstream, startSilentUpstream } from "./upstreams.ts";
import { maskedTextFrame } from "./websocket_frames.ts";

Deno.test("nexo proxies requests to upstreams with correct headers, bodies and errors", async (t) => {
  const app = startEchoUpstream();
  const silent = startSilentUpstream();
  const nexo = await startNexo(`
http_listen: "127.0.0.1:0"
limits:
  max_header: 16KiB
proxies:
  "app.test":
    upstream: ${app.url}
  "base.test":
    upstream: ${app.url}/base/
  "nocache.test":
    upstream: ${app.url}
    cache: false
  "*.wild.test":
    upstream: ${app.url}
  "small.test":
    upstream: ${app.url}
    max_body: 1KiB
  "down.test":
    upstream: http://127.0.0.1:${closedPort()}
  "slow.test":
    upstream: ${silent.url}
    timeout: 1s
  "go.test":
    redirect: example.org/landing
  "keep.test":
    redirect: https://example.org/new
    status: 308
    keep_path: true
  "other.test":
    upstream: ${app.url}
`);
  try {
    await t.step("GET reaches the upstream with Host and X-Forwarded-* set", async () => {
      const res = await curl(nexo, "app.test", "/hello?x=1&y=2", ["-H", "X-Forwarded-For: 198.51.100.9"]);
      assert.equal(res.status, 200, res.stderr);
      const echo = JSON.parse(res.body);
      assert.equal(echo.path, "/hello");
      assert.equal(echo.query, "?x=1&y=2");
      assert.equal(echo.headers.host, `app.test:${nexo.port}`);
      // 127.0.0.1 is not in trusted_proxies here: the client-supplied chain is dropped, not extended.
      assert.equal(echo.headers["x-forwarded-for"], "127.0.0.1");
      assert.equal(echo.headers["x-forwarded-proto"], "https");
      assert.equal(echo.headers["x-forwarded-host"], `app.test:${nexo.port}`);
      assert.equal(echo.headers["user-agent"]?.startsWith("curl/"), true);
      assert.equal(echo.headers["accept-language"], undefined, "no headers the client did not send");
    });

    await t.step("every method is forwarded with its body", async () => {
      for (const method of ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"]) {
        const res = await curl(nexo, "app.test", "/m", ["-X", method, "--data-binary", `body of ${method}`]);
        const echo = JSON.parse(res.body);
        assert.equal(echo.method, method);
        assert.equal(echo.body, `body of ${method}`);
      }
      const head = await curl(nexo, "app.test", "/css", ["-I"]);
      assert.equal(head.status, 200);
      assert.equal(head.body.trim(), "");
    });

    await t.step("body-less requests reach the upstream without a body framing they never had", async () => {
      for (const method of ["DELETE", "OPTIONS"]) {
        for (const version of ["--http1.1", "--http2"]) {
          const echo = JSON.parse((await curl(nexo, "app.test", "/nobody", ["-X", method, version])).body);
          assert.equal(echo.method, method);
          assert.equal(echo.headers["transfer-encoding"], undefined, `${method} ${version}`);
          assert.equal(echo.headers["content-length"], undefined, `${method} ${version}`);
        }
      }
      const post = JSON.parse((await curl(nexo, "app.test", "/nobody", ["-X", "POST"])).body);
      assert.equal(post.headers["content-length"], "0");
    });

    await t.step(
      "a Host that is not a plain host name gets 400 or 404, never a 500 or a redirect elsewhere",
      async () => {
        const spaced = await curl(nexo, "a.wild.test", "/", ["--http1.1", "-H", "Host: a b.wild.test"]);
        assert.ok([400, 404].includes(spaced.status), `status ${spaced.status}`);
        const out = await new Deno.Command("curl", {
          args: [
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            "Host: evil%2ecom/.wild.test",
            `http://127.0.0.1:${nexo.httpPort}/p`,
          ],
          stdout: "piped",
        }).output();
        assert.equal(new TextDecoder().decode(out.stdout), "404");
        assert.ok(!nexo.logs.some((l) => l.msg === "handler failed"), "no handler crashed");
      },
    );

    await t.step("HTTP/2 is negotiated by ALPN and proxies the same way", async () => {
      const res = await curl(nexo, "app.test", "/h2", ["--http2", "-w", "%{http_version}"]);
      assert.ok(res.body.endsWith("2"), `expected HTTP/2, got ${res.body.slice(-3)}`);
      const echo = JSON.parse(res.body.slice(0, -1));
      assert.equal(echo.headers.host, `app.test:${nexo.port}`);
    });

    await t.step("the upstream's base path is prefixed to the request path", async () => {
      const res = await curl(nexo, "base.test", "/echo-me?q=1");
      assert.equal(JSON.parse(res.body).path, "/base/echo-me");
    });

    await t.step("hop-by-hop response headers are removed, repeated Set-Cookie kept", async () => {
      const hop = await curl(nexo, "app.test", "/hop");
      assert.equal(hop.headers["x-internal"], undefined);
      assert.equal(hop.headers["x-kept"], "1");
      const cookies = await curl(nexo, "app.test", "/cookies");
      assert.equal(cookies.headers["set-cookie"], "a=1, b=2");
    });

    await t.step("compressed upstream bodies pass through byte for byte", async () => {
      const res = await curl(nexo, "app.test", "/gzip", ["-H", "Accept-Encoding: gzip", "--compressed"]);
      assert.equal(res.headers["content-encoding"], "gzip");
      assert.equal(res.body, "hello gzip ".repeat(100));
    });

    await t.step("a default Cache-Control is added unless the route says cache: false", async () => {
      assert.equal((await curl(nexo, "app.test", "/css")).headers["cache-control"], "public, max-age=86400");
      assert.equal((await curl(nexo, "app.test", "/x")).headers["cache-control"], "no-cache");
      assert.equal((await curl(nexo, "nocache.test", "/css")).headers["cache-control"], undefined);
    });

    await t.step("small chunked responses and empty statuses come through intact", async () => {
      assert.equal((await curl(nexo, "app.test", "/chunked-small")).body, "small chunked");
      const noContent = await curl(nexo, "app.test", "/status?code=204");
      assert.equal(noContent.status, 204);
      assert.equal((await curl(nexo, "app.test", "/status?code=418")).status, 418);
    });

    await t.step("wildcard routes match one label", async () => {
      assert.equal((await curl(nexo, "a.wild.test", "/")).status, 200);
      const deep = await curl(nexo, "a.b.wild.test", "/");
      assert.notEqual(deep.code, 0, "no certificate for a name two labels under the wildcard");
    });

    await t.step("an unknown SNI name gets no certificate", async () => {
      const res = await curl(nexo, "unknown.test", "/");
      assert.equal(res.code, 35, `curl should fail the handshake: ${res.stderr}`);
    });

    await t.step(
      "an unknown Host gets 404 and a Host the connection's certificate does not cover gets 421",
      async () => {
        const unknown = await curl(nexo, "app.test", "/", ["-H", "Host: nowhere.test"]);
        assert.equal(unknown.status, 404);
        assert.match(unknown.body, /No site is configured/);
        const misdirected = await curl(nexo, "app.test", "/", ["-H", "Host: other.test"]);
        assert.equal(misdirected.status, 421);
      },
    );

    await t.step("redirect routes add https://, default to 302 and can keep the path", async () => {
      const plain = await curl(nexo, "go.test", "/any/path");
      assert.equal(plain.status, 302);
      assert.equal(plain.headers.location, "https://example.org/landing");
      const keep = await curl(nexo, "keep.test", "/a/b?c=d");
      assert.equal(keep.status, 308);
      assert.equal(keep.headers.location, "https://example.org/new/a/b?c=d");
    });

    await t.step("http_listen answers configured hosts with 308 to https", async () => {
      const out = await new Deno.Command("curl", {
        args: [
          "-sS",
          "-o",
          "/dev/null",
          "-w",
          "%{http_code} %{redirect_url}",
          "-H",
          "Host: app.test",
          `http://127.0.0.1:${nexo.httpPort}/p?q=1`,
        ],
        stdout: "piped",
      }).output();
      // To the standard port, not the bound one (public_https_port defaults to 443: Docker maps 443 -> 8443).
      assert.equal(new TextDecoder().decode(out.stdout), `308 https://app.test/p?q=1`);
    });

    await t.step("a refused upstream gives 502 and a silent one 504, each with a log line", async () => {
      const down = await curl(nexo, "down.test", "/");
      assert.equal(down.status, 502);
      assert.match(down.body, /502 Bad Gateway/);
      assert.doesNotMatch(down.body, /127\.0\.0\.1/, "the page does not leak the upstream address");
      const slow = await curl(nexo, "slow.test", "/");
      assert.equal(slow.status, 504);
      await nexo.waitForLog((l) => l.msg === "upstream failed" && l.status === 504);
      await nexo.waitForLog((l) => l.msg === "upstream failed" && l.status === 502);
    });

    await t.step("a body over max_body gets 413, with Content-Length or chunked", async () => {
      const big = "x".repeat(2048);
      const declared = await curl(nexo, "small.test", "/upload", ["--data-binary", big]);
      assert.equal(declared.status, 413, declared.stderr);
      const chunked = await curl(nexo, "small.test", "/upload", [
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        big,
      ]);
      assert.equal(chunked.status, 413);
      const fits = await curl(nexo, "small.test", "/upload", [
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        "x".repeat(1000),
      ]);
      assert.equal(JSON.parse(fits.body).length, 1000);
    });

    await t.step("request headers over max_header get 431", async () => {
      const res = await curl(nexo, "app.test", "/", ["-H", `X-Big: ${"a".repeat(20_000)}`]);
      assert.equal(res.status, 431);
    });

    await t.step(
      "the access log has one line per request with host, method, path, status, bytes, duration",
      async () => {
        const line = await nexo.waitForLog((l) => l.msg === "request" && l.path === "/hello");
        assert.equal(line.host, "app.test");
        assert.equal(line.method, "GET");
        assert.equal(line.status, 200);
        assert.equal(typeof line.bytes, "number");
        assert.equal(typeof line.duration_ms, "number");
        assert.equal(line.upstream, `127.0.0.1:${app.port}`);
      },
    );

    await t.step(
      "a raw TLS client speaking HTTP/1.1 keep-alive gets two responses on one connection",
      async () => {
        const conn = await connectTls(nexo, "app.test");
        const request =
          `GET /one HTTP/1.1\r\nHost: app.test\r\n\r\nGET /two HTTP/1.1\r\nHost: app.test\r\n\r\n`;
        await conn.write(new TextEncoder().encode(request));
        let text = "";
        const buffer = new Uint8Array(65536);
        while ((text.match(/HTTP\/1\.1 200/g) ?? []).length < 2 || !text.includes('"/two"')) {
          const n = await conn.read(buffer);
          if (n === null) break;
          text += new TextDecoder().decode(buffer.subarray(0, n));
        }
        conn.close();
        assert.equal((text.match(/HTTP\/1\.1 200/g) ?? []).length, 2);
      },
    );
  } finally {
    const code = await nexo.stop();
    await app.close();
    silent.close();
    assert.equal(code, 0, "SIGTERM exits 0");
  }
});

Deno.test("nexo streams a 200 MiB download and a 9 MiB upload with correct checksums and flat memory", async () => {
  const app = startEchoUpstream();
  const nexo = await startNexo(`
proxies:
  "app.test":
    upstream: ${app.url}
`);
  try {
    // Warm up so the baseline includes the code paths and buffers a transfer needs.
    await curl(nexo, "app.test", "/big?mib=1", ["-o", "/dev/null"]);
    const before = await rssBytes(nexo.pid);
    let peak = before;
    const sampler = setInterval(async () => {
      peak = Math.max(peak, await rssBytes(nexo.pid).catch(() => 0));
    }, 50);
    const download = await new Deno.Command("sh", {
      args: [
        "-c",
        `curl -sS --cacert "$1" --resolve "app.test:$2:127.0.0.1" "https://app.test:$2/big?mib=200" | sha256sum`,
        "sh",
        nexo.rootCert,
        String(nexo.port),
      ],
      stdout: "piped",
    }).output();
    clearInterval(sampler);
    const sha = new TextDecoder().decode(download.stdout).split(" ")[0];
    assert.equal(sha, expectedSha256(200));
    const growth = peak - before;
    assert.ok(
      growth < 48 * 1024 * 1024,
      `RSS grew by ${(growth / 1048576).toFixed(1)} MiB for a 200 MiB download`,
    );

    const file = await Deno.makeTempFile();
    try {
      const upload = new Uint8Array(9 * 1024 * 1024);
      for (let i = 0; i < 9; i++) upload.set(BLOCK, i * 1024 * 1024);
      await Deno.writeFile(file, upload);
      const res = await curl(nexo, "app.test", "/upload", [
        "--data-binary",
        `@${file}`,
        "-H",
        "Content-Type: application/octet-stream",
      ]);
      const echo = JSON.parse(res.body);
      assert.equal(echo.length, 9 * 1024 * 1024);
      assert.equal(echo.sha256, expectedSha256(9));
      const chunked = await curl(nexo, "app.test", "/upload", [
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        `@${file}`,
      ]);
      assert.equal(JSON.parse(chunked.body).sha256, expectedSha256(9));
    } finally {
      await Deno.remove(file);
    }
  } finally {
    await nexo.stop();
    await app.close();
  }
});

Deno.test("nexo delivers server-sent events one by one and relays WebSocket messages both ways", async (t) => {
  const app = startEchoUpstream();
  const nexo = await startNexo(`
proxies:
  "app.test":
    upstream: ${app.url}
`);
  try {
    await t.step("SSE events arrive as the upstream produces them", async () => {
      const child = new Deno.Command("curl", {
        args: [
          "-sSN",
          "--cacert",
          nexo.rootCert,
          "--resolve",
          `app.test:${nexo.port}:127.0.0.1`,
          `https://app.test:${nexo.port}/sse?n=4&gap=400`,
        ],
        stdout: "piped",
      }).spawn();
      const arrivals: number[] = [];
      const started = Date.now();
      for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
        for (const _ of chunk.matchAll(/data: event/g)) arrivals.push(Date.now() - started);
      }
      await child.status;
      assert.equal(arrivals.length, 4);
      // Four events 400 ms apart: if nexo buffered the stream, all would arrive together at the end.
      assert.ok(arrivals[3]! - arrivals[0]! >= 800, `events arrived together: ${arrivals.join(", ")} ms`);
    });

    await t.step("a WebSocket upgrade is proxied with the negotiated subprotocol", async () => {
      const conn = await connectTls(nexo, "app.test");
      const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
      await conn.write(new TextEncoder().encode(
        `GET /ws HTTP/1.1\r\nHost: app.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: echo\r\n\r\n`,
      ));
      const reader = new FrameReader(conn);
      const head = await reader.readHead();
      assert.match(head, /^HTTP\/1\.1 101/);
      assert.match(head, /sec-websocket-protocol: echo/i);
      await conn.write(maskedTextFrame("hello through nexo"));
      assert.equal(await reader.readTextFrame(), "echo: hello through nexo");
      await conn.write(maskedTextFrame("second"));
      assert.equal(await reader.readTextFrame(), "echo: second");
      conn.close();
    });

    await t.step(
      "a WebSocket client that stops reading gets both sides closed, not unbounded buffering",
      async () => {
        const conn = await connectTls(nexo, "app.test");
        const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
        await conn.write(new TextEncoder().encode(
          `GET /ws HTTP/1.1\r\nHost: app.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
        ));
        assert.match(await new FrameReader(conn).readHead(), /^HTTP\/1\.1 101/);
        // 128 MiB asked for, none of it read: kernel buffers hold a few MiB, nexo may hold 16 MiB more.
        const asked = 2048;
        await conn.write(maskedTextFrame(`flood ${asked}`));
        const deadline = Date.now() + 30_000;
        let end;
        while (!(end = app.seen.find((s) => s.path === "/ws-flood-end")) && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        conn.close();
        assert.ok(end, "the upstream's flood ended");
        assert.equal(end.headers.closed, "true", "nexo closed the upstream socket");
        assert.ok(Number(end.headers.sent) < asked / 2, `sent ${end.headers.sent} of ${asked} messages`);
        const line = await nexo.waitForLog((l) =>
          l.msg === "request" && l.status === 101 && /too slowly/.test(String(l.error))
        );
        assert.match(String(line.error), /client read too slowly \(over 16777216 bytes waiting\)/);
      },
    );

    await t.step("a malformed WebSocket handshake gets 400 without an upstream connection", async () => {
      const before = app.seen.filter((s) => s.path === "/ws").length;
      const conn = await connectTls(nexo, "app.test");
      await conn.write(new TextEncoder().encode(
        `GET /ws HTTP/1.1\r\nHost: app.test\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      ));
      const head = await new FrameReader(conn).readHead();
      conn.close();
      assert.match(head, /^HTTP\/1\.1 400/);
      assert.equal(app.seen.filter((s) => s.path === "/ws").length, before);
    });
  } finally {
    await nexo.stop();
    await app.close();
  }
});

class FrameReader {
  #buffer = new Uint8Array(0);
  constructor(private conn: Deno.Conn) {}

  async #fill(): Promise<void> {
    const chunk = new Uint8Array(16384);
    const n = await this.conn.read(chunk);
    if (n === null) throw new Error("connection closed");
    const merged = new Uint8Array(this.#buffer.length + n);
    merged.set(this.#buffer);
    merged.set(chunk.subarray(0, n), this.#buffer.length);
    this.#buffer = merged;
  }

  async readHead(): Promise<string> {
    for (;;) {
      const text = new TextDecoder().decode(this.#buffer);
      const end = text.indexOf("\r\n\r\n");
      if (end !== -1) {
        this.#buffer = this.#buffer.subarray(new TextEncoder().encode(text.slice(0, end + 4)).length);
        return text.slice(0, end);
      }
      await this.#fill();
    }
  }

  /** Reads one unmasked server text frame with a short payload. */
  async readTextFrame(): Promise<string> {
    while (this.#buffer.length < 2 || this.#buffer.length < 2 + (this.#buffer[1]! & 0x7f)) await this.#fill();
    const length = this.#buffer[1]! & 0x7f;
    const text = new TextDecoder().decode(this.#buffer.subarray(2, 2 + length));
    this.#buffer = this.#buffer.subarray(2 + length);
    return text;
  }
}

Deno.test("a client in trusted_proxies keeps its X-Forwarded-For chain and X-Real-IP", async () => {
  const app = startEchoUpstream();
  const nexo = await startNexo(`
trusted_proxies: ["127.0.0.0/8", "2400:cb00::/32"]
proxies:
  "app.test":
    upstream: ${app.url}
`);
  try {
    const res = await curl(nexo, "app.test", "/", [
      "-H",
      "X-Forwarded-For: 198.51.100.9",
      "-H",
      "X-Real-IP: 198.51.100.9",
    ]);
    const headers = JSON.parse(res.body).headers;
    assert.equal(headers["x-forwarded-for"], "198.51.100.9, 127.0.0.1");
    assert.equal(headers["x-real-ip"], "198.51.100.9");
  } finally {
    await nexo.stop();
    await app.close();
  }
});

Deno.test("a small request body is read whole before nexo opens an upstream request; a large one streams", async () => {
  const app = startEchoUpstream();
  const nexo = await startNexo(`
proxies:
  "app.test":
    upstream: ${app.url}
`);
  const uploads = () => app.seen.filter((s) => s.path === "/upload").length;
  const trickle = async (length: number) => {
    const conn = await connectTls(nexo, "app.test");
    await conn.write(new TextEncoder().encode(
      `POST /upload HTTP/1.1\r\nHost: app.test\r\nContent-Length: ${length}\r\n\r\n` + "x".repeat(10),
    ));
    await new Promise((resolve) => setTimeout(resolve, 500));
    const reachedUpstream = uploads();
    const rest = new TextEncoder().encode("x".repeat(length - 10));
    for (let sent = 0; sent < rest.length;) sent += await conn.write(rest.subarray(sent));
    const reader = new FrameReader(conn);
    const head = await reader.readHead();
    conn.close();
    return { reachedUpstream, head };
  };
  try {
    // 1 KiB, 10 bytes sent: a slow client holds no upstream connection (nor one of the app's workers).
    const small = await trickle(1024);
    assert.equal(small.reachedUpstream, 0, "the upstream saw the request before its body was complete");
    assert.match(small.head, /^HTTP\/1\.1 200/);
    assert.equal(uploads(), 1);
    // 1 MiB: streamed as it arrives, the upstream sees the request at once.
    const large = await trickle(1024 * 1024);
    assert.equal(large.reachedUpstream, 2, "a large upload is streamed, not buffered");
    assert.match(large.head, /^HTTP\/1\.1 200/);
  } finally {
    await nexo.stop();
    await app.close();
  }
});
