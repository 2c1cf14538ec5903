// Real upstream servers for end-to-end tests, on 127.0.0.1 with port 0: an app that echoes what it received,
// streams large bodies and events, hashes uploads and echoes WebSocket messages; a TCP server that accepts
// and never answers (for 504).

import { createHash } from "node:crypto";

/** 1 MiB of deterministic bytes; large downloads repeat it. */
export const BLOCK: Uint8Array = (() => {
  const block = new Uint8Array(1024 * 1024);
  let x = 0x12345678;
  for (let i = 0; i < block.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    block[i] = x & 0xff;
  }
  return block;
})();

/** SHA-256 (hex) of BLOCK repeated `mib` times. */
export function expectedSha256(mib: number): string {
  const hash = createHash("sha256");
  for (let i = 0; i < mib; i++) hash.update(BLOCK);
  return hash.digest("hex");
}

export interface Upstream {
  url: string;
  port: number;
  /** Requests seen, by path. */
  seen: Array<{ path: string; headers: Record<string, string> }>;
  close(): Promise<void>;
}

/** Starts the echo app. */
export function startEchoUpstream(): Upstream {
  const seen: Upstream["seen"] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    seen.push({ path: url.pathname, headers: Object.fromEntries(req.headers) });
    switch (url.pathname.replace(/^\/base/, "")) {
      case "/big":
        return bigBody(Number(url.searchParams.get("mib") ?? "1"));
      case "/upload":
        return await hashUpload(req);
      case "/sse":
        return events(Number(url.searchParams.get("n") ?? "3"), Number(url.searchParams.get("gap") ?? "300"));
      case "/ws":
        return echoWebSocket(req);
      case "/gzip":
        return gzipped();
      case "/cookies":
        return new Response("ok", {
          headers: [["set-cookie", "a=1"], ["set-cookie", "b=2"], ["content-type", "text/plain"]],
        });
      case "/hop":
        return new Response("ok", {
          headers: { connection: "x-internal", "x-internal": "secret", "x-kept": "1" },
        });
      case "/css":
        return new Response("body{}", { headers: { "content-type": "text/css" } });
      case "/status":
        return new Response(null, { status: Number(url.searchParams.get("code") ?? "204") });
      case "/chunked-small":
        return new Response(
          new ReadableStream({
            start(c) {
              c.enqueue(new TextEncoder().encode("small "));
              c.enqueue(new TextEncoder().encode("chunked"));
              c.close();
            },
          }),
        );
    }
    const body = req.body ? await req.text() : "";
    return Response.json({
      method: req.method,
      path: url.pathname,
      query: url.search,
      headers: Object.fromEntries(req.headers),
      body,
    });
  });
  const port = server.addr.port;
  return { url: `http://127.0.0.1:${port}`, port, seen, close: () => server.shutdown() };
}

function bigBody(mib: number): Response {
  let sent = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent === mib) return controller.close();
      sent++;
      controller.enqueue(BLOCK.slice());
    },
  }, { highWaterMark: 0 });
  return new Response(body, {
    headers: { "content-type": "application/octet-stream", "content-length": String(mib * BLOCK.length) },
  });
}

async function hashUpload(req: Request): Promise<Response> {
  const hash = createHash("sha256");
  let length = 0;
  try {
    for await (const chunk of req.body ?? []) {
      hash.update(chunk);
      length += chunk.byteLength;
    }
  } catch (error) {
    // nexo cut the upload short (413, 408): expected in those tests.
    return new Response(`upload aborted: ${error}`, { status: 400 });
  }
  return Response.json({
    sha256: hash.digest("hex"),
    length,
    transferEncoding: req.headers.get("transfer-encoding"),
  });
}

function events(count: number, gapMs: number): Response {
  let sent = 0;
  let timer: ReturnType<typeof setInterval> | undefined;
  const encoder = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      const tick = () => {
        sent++;
        controller.enqueue(encoder.encode(`data: event ${sent} at ${Date.now()}\n\n`));
        if (sent === count) {
          clearInterval(timer);
          controller.close();
        }
      };
      tick();
      timer = setInterval(tick, gapMs);
    },
    cancel() {
      clearInterval(timer);
    },
  });
  return new Response(body, { headers: { "content-type": "text/event-stream" } });
}

function echoWebSocket(req: Request): Response {
  const protocols = (req.headers.get("sec-websocket-protocol") ?? "").split(",").map((p) => p.trim());
  const { socket, response } = Deno.upgradeWebSocket(
    req,
    protocols.includes("echo") ? { protocol: "echo" } : {},
  );
  socket.onmessage = (event) => {
    socket.send(typeof event.data === "string" ? `echo: ${event.data}` : event.data);
  };
  return response;
}

async function gzipped(): Promise<Response> {
  const stream = new Blob(["hello gzip ".repeat(100)]).stream().pipeThrough(new CompressionStream("gzip"));
  const bytes = new Uint8Array(await new Response(stream).arrayBuffer());
  return new Response(bytes, { headers: { "content-encoding": "gzip", "content-type": "text/plain" } });
}

/** A TCP server that accepts connections and never answers; for 504 tests. */
export function startSilentUpstream(): { url: string; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  (async () => {
    try {
      for await (const conn of listener) conns.push(conn);
    } catch {
      // closed
    }
  })();
  return {
    url: `http://127.0.0.1:${listener.addr.port}`,
    close() {
      listener.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // already closed by the peer
        }
      }
    },
  };
}

/** A port with nothing listening on it; for 502 tests. */
export function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}
