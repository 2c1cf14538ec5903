// Real upstream servers for end-to-end tests, on 127.0.0.1 with port 0: an app that echoes what it received,
// streams large bodies and events, hashes uploads and echoes WebSocket messages; a TCP server that accepts
// and never answers (for 504); a raw-TCP server that records and strictly parses the bytes nexo sends (for
// request-smuggling tests).

import { createHash } from "node:crypto";
import { concatBytes } from "../lib/bytes.ts";

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
        return echoWebSocket(req, seen);
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

function echoWebSocket(req: Request, seen: Upstream["seen"]): Response {
  const protocols = (req.headers.get("sec-websocket-protocol") ?? "").split(",").map((p) => p.trim());
  const { socket, response } = Deno.upgradeWebSocket(
    req,
    protocols.includes("echo") ? { protocol: "echo" } : {},
  );
  socket.onmessage = (event) => {
    const flood = typeof event.data === "string" ? /^flood (\d+)$/.exec(event.data) : null;
    if (flood) return void floodWebSocket(socket, Number(flood[1]), seen);
    socket.send(typeof event.data === "string" ? `echo: ${event.data}` : event.data);
  };
  return response;
}

/**
 * Sends `count` 64 KiB binary messages as fast as the connection to nexo takes them (it waits while more
 * than 1 MiB is buffered here, so any pile-up is nexo's), then records in `seen` how many went out and
 * whether nexo closed the socket first: path "/ws-flood-end", headers {sent, closed}.
 */
async function floodWebSocket(socket: WebSocket, count: number, seen: Upstream["seen"]): Promise<void> {
  const message = new Uint8Array(64 * 1024);
  let sent = 0;
  while (sent < count && socket.readyState === WebSocket.OPEN) {
    if (socket.bufferedAmount > 1024 * 1024) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      continue;
    }
    socket.send(message);
    sent++;
  }
  seen.push({ path: "/ws-flood-end", headers: { sent: String(sent), closed: String(sent < count) } });
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

/** One request a recording upstream parsed from the bytes it received. */
export interface RecordedRequest {
  method: string;
  target: string;
  /** Field lines in arrival order, names and values exactly as received (latin1). */
  headers: Array<[string, string]>;
  body: Uint8Array;
}

export interface RecordingUpstream {
  url: string;
  /** Every request parsed, in arrival order across all connections. */
  requests: RecordedRequest[];
  /**
   * Why received bytes did not parse as a strict HTTP/1.1 request (the upstream closes that connection).
   * Stays empty as long as nexo sends only well-formed requests.
   */
  violations: string[];
  /** Every byte received, one entry per connection in accept order. */
  raw(): Uint8Array[];
  close(): Promise<void>;
}

/**
 * Starts a raw-TCP HTTP/1.1 upstream that records exactly the bytes it receives and parses them strictly
 * (RFC 9112): a request line in origin form (or `OPTIONS *`), token field names with no space before the colon, field values
 * free of NUL, CR and LF, no obs-fold, one Host, and one unambiguous framing (Content-Length digits or
 * Transfer-Encoding: chunked alone, with strict chunk lines). Each request gets a 200 whose body is
 * "<method> <target> <body bytes>", on a kept-alive connection. Unlike Deno.serve, nothing is normalised
 * away, so a test sees what a less careful backend would act on.
 */
export function startRecordingUpstream(): RecordingUpstream {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const requests: RecordedRequest[] = [];
  const violations: string[] = [];
  const raws: Uint8Array[][] = [];
  const conns = new Set<Deno.Conn>();
  const loops = new Set<Promise<void>>();
  const serve = async (conn: Deno.Conn) => {
    const received: Uint8Array[] = [];
    raws.push(received);
    let pending = new Uint8Array(0);
    const chunk = new Uint8Array(65536);
    try {
      for (;;) {
        const n = await conn.read(chunk);
        if (n === null) return;
        received.push(chunk.slice(0, n));
        pending = concatBytes([pending, chunk.subarray(0, n)]);
        for (;;) {
          const parsed = parseRecordedRequest(pending);
          if (parsed === null) break;
          if (typeof parsed === "string") {
            violations.push(parsed);
            return;
          }
          requests.push(parsed.request);
          pending = pending.slice(parsed.consumed);
          const { method, target, body } = parsed.request;
          const text = new TextEncoder().encode(`${method} ${target} ${body.length}`);
          await conn.write(new TextEncoder().encode(
            `HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${text.length}\r\n\r\n`,
          ));
          await conn.write(text);
        }
      }
    } catch {
      // nexo closed the connection mid-request (an aborted upload): what arrived is recorded.
    } finally {
      conns.delete(conn);
      try {
        conn.close();
      } catch {
        // already closed by close()
      }
    }
  };
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        conns.add(conn);
        const loop = serve(conn);
        loops.add(loop);
        loop.finally(() => loops.delete(loop));
      }
    } catch {
      // listener closed
    }
  })();
  return {
    url: `http://127.0.0.1:${listener.addr.port}`,
    requests,
    violations,
    raw: () => raws.map((parts) => concatBytes(parts)),
    async close() {
      listener.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // closed by its loop meanwhile
        }
      }
      await accepting;
      await Promise.all([...loops]);
    },
  };
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// RFC 9110 §5.5: field-value = *field-content, VCHAR / obs-text with SP and HTAB inside.
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const ORIGIN_FORM = /^\/[\x21-\x7e]*$/;

/**
 * Parses one request from the front of `bytes`: the request and how many bytes it took, null when more bytes
 * are needed, or a string saying why the bytes are not a strict HTTP/1.1 request.
 */
function parseRecordedRequest(
  bytes: Uint8Array,
): { request: RecordedRequest; consumed: number } | string | null {
  const text = latin1(bytes);
  const headEnd = text.indexOf("\r\n\r\n");
  if (headEnd === -1) {
    return /\0|\r(?!\n|$)|(?<!\r)\n/.test(text) ? `NUL or bare CR/LF in head ${JSON.stringify(text)}` : null;
  }
  const head = text.slice(0, headEnd);
  if (/\0|\r(?!\n)|(?<!\r)\n/.test(head)) return `NUL or bare CR/LF in head ${JSON.stringify(head)}`;
  const [requestLine = "", ...lines] = head.split("\r\n");
  const match = /^(\S+) (\S+) HTTP\/1\.1$/.exec(requestLine);
  // Origin form, or asterisk form for OPTIONS (RFC 9112 §3.2.1, §3.2.4).
  const asterisk = match?.[1] === "OPTIONS" && match[2] === "*";
  if (!match || !TOKEN.test(match[1]!) || !(ORIGIN_FORM.test(match[2]!) || asterisk)) {
    return `request line ${JSON.stringify(requestLine)}`;
  }
  const headers: Array<[string, string]> = [];
  for (const line of lines) {
    const colon = line.indexOf(":");
    const name = line.slice(0, colon);
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, "");
    if (colon <= 0 || !TOKEN.test(name) || !FIELD_VALUE.test(value)) {
      return `field line ${JSON.stringify(line)}`;
    }
    headers.push([name, value]);
  }
  const named = (wanted: string) => headers.filter(([name]) => name.toLowerCase() === wanted);
  if (named("host").length !== 1) return `${named("host").length} Host fields`;
  const lengths = named("content-length");
  const codings = named("transfer-encoding");
  const bodyStart = headEnd + 4;
  const request = { method: match[1]!, target: match[2]!, headers };
  if (codings.length > 0) {
    if (codings.length > 1 || codings[0]![1] !== "chunked" || lengths.length > 0) {
      return `ambiguous framing ${JSON.stringify(headers)}`;
    }
    const chunked = parseStrictChunked(bytes, text, bodyStart);
    return chunked === null || typeof chunked === "string" ? chunked : {
      request: { ...request, body: chunked.body },
      consumed: chunked.end,
    };
  }
  if (lengths.length > 1 || (lengths.length === 1 && !/^\d{1,15}$/.test(lengths[0]![1]))) {
    return `Content-Length fields ${JSON.stringify(lengths)}`;
  }
  const length = lengths.length === 1 ? Number(lengths[0]![1]) : 0;
  if (bytes.length < bodyStart + length) return null;
  return {
    request: { ...request, body: bytes.slice(bodyStart, bodyStart + length) },
    consumed: bodyStart + length,
  };
}

/** A chunked body with bare hex sizes and no trailers (all nexo sends), or null when incomplete. */
function parseStrictChunked(
  bytes: Uint8Array,
  text: string,
  start: number,
): { body: Uint8Array; end: number } | string | null {
  const parts: Uint8Array[] = [];
  let at = start;
  for (;;) {
    const lineEnd = text.indexOf("\r\n", at);
    if (lineEnd === -1) return text.length - at > 16 ? "chunk size line too long" : null;
    const sizeLine = text.slice(at, lineEnd);
    if (!/^[0-9a-f]{1,8}$/i.test(sizeLine)) return `chunk size line ${JSON.stringify(sizeLine)}`;
    const size = parseInt(sizeLine, 16);
    const dataStart = lineEnd + 2;
    if (bytes.length < dataStart + size + 2) return null;
    if (text.slice(dataStart + size, dataStart + size + 2) !== "\r\n") {
      return "chunk data not followed by CRLF";
    }
    if (size === 0) return { body: concatBytes(parts), end: dataStart + 2 };
    parts.push(bytes.slice(dataStart, dataStart + size));
    at = dataStart + size + 2;
  }
}

function latin1(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    text += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return text;
}
