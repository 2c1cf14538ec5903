// WebSocket upgrades on proxy routes: connect to the upstream first (so a refused upstream is a clean 502, not
// an accepted socket that dies), then accept the client with the subprotocol the upstream chose, and relay
// messages and closes both ways. Limitation: Deno's WebSocket client always sends the upstream's own Host;
// the client's Host reaches the upstream as X-Forwarded-Host.

import { errorMessage } from "../error_message.ts";
import type { ProxyRoute } from "../config/types.ts";
import { errorPage } from "./error_page.ts";
import { buildUpstreamHeaders, type ForwardedFor, type HeaderList } from "./headers.ts";
import { upstreamUrl } from "./forward.ts";
import type { ForwardOutcome } from "./forward.ts";

/** Whether a request asks for a WebSocket upgrade (RFC 6455 §4.1). */
export function isWebSocketUpgrade(req: Request): boolean {
  const upgrade = req.headers.get("upgrade");
  return upgrade !== null && upgrade.toLowerCase() === "websocket";
}

export interface WebSocketOptions {
  /** `req.headers` as a list, as the handler iterated them. */
  headerList: HeaderList;
  forwarded: ForwardedFor;
  onDone: (outcome: ForwardOutcome) => void;
}

/** Headers the WebSocket handshake owns; Deno's client writes its own. */
const HANDSHAKE_HEADERS = new Set([
  "sec-websocket-key",
  "sec-websocket-version",
  "sec-websocket-extensions",
  "sec-websocket-protocol",
  "host",
]);

/**
 * Proxies a WebSocket upgrade. Never throws: an upstream that refuses or does not open within the route's
 * timeout gets the client a 502 or 504 page. `onDone` is called when both sockets are closed.
 */
export async function proxyWebSocket(
  req: Request,
  route: ProxyRoute,
  options: WebSocketOptions,
): Promise<Response> {
  const target = upstreamUrl(route.upstream, new URL(req.url));
  target.protocol = target.protocol === "https:" ? "wss:" : "ws:";
  const protocols = (req.headers.get("sec-websocket-protocol") ?? "")
    .split(",").map((p) => p.trim()).filter((p) => p !== "");
  const headers = buildUpstreamHeaders(options.headerList, options.forwarded)
    .filter(([name]) => !HANDSHAKE_HEADERS.has(name));

  const invalid = handshakeProblem(req);
  if (invalid) {
    options.onDone({ status: 400, bytes: 0, error: invalid });
    return errorPage(400, `This is not a valid WebSocket handshake: ${invalid}.`);
  }

  let upstream: WebSocket;
  try {
    upstream = await openUpstream(target, protocols, headers, {
      timeoutMs: route.limits.responseTimeoutMs,
      signal: req.signal,
    });
  } catch (error) {
    if (req.signal.aborted) {
      options.onDone({ status: 499, bytes: 0, error: "client closed request" });
      return new Response(null, { status: 400 });
    }
    const timedOut = error instanceof Error && error.name === "TimeoutError";
    const status = timedOut ? 504 : 502;
    options.onDone({ status, bytes: 0, error: errorMessage(error) });
    return errorPage(status, "The upstream server for this site did not accept the WebSocket connection.");
  }

  try {
    const upgradeOptions = upstream.protocol ? { protocol: upstream.protocol } : {};
    const { socket: client, response } = Deno.upgradeWebSocket(req, upgradeOptions);
    relay(client, upstream, options);
    return response;
  } catch (error) {
    upstream.close();
    options.onDone({ status: 400, bytes: 0, error: errorMessage(error) });
    return errorPage(400, "This WebSocket handshake could not be accepted.");
  }
}

/**
 * Why a request is not an acceptable opening handshake (RFC 6455 §4.2.1), or null. Checked before the
 * upstream is contacted, so a malformed request costs no upstream connection.
 */
function handshakeProblem(req: Request): string | null {
  if (req.method !== "GET") return "the method must be GET";
  const connection = req.headers.get("connection") ?? "";
  if (!connection.split(",").some((token) => token.trim().toLowerCase() === "upgrade")) {
    return "the Connection header must contain Upgrade";
  }
  const key = req.headers.get("sec-websocket-key") ?? "";
  // A base64-encoded 16-byte nonce is 24 characters ending in "==".
  if (!/^[A-Za-z0-9+/]{22}==$/.test(key)) return "Sec-WebSocket-Key is missing or malformed";
  if (req.headers.get("sec-websocket-version") !== "13") return "Sec-WebSocket-Version must be 13";
  return null;
}

function openUpstream(
  url: URL,
  protocols: string[],
  headers: Array<[string, string]>,
  options: { timeoutMs: number; signal: AbortSignal },
): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    // Deno's WebSocket accepts headers for the handshake request (a Deno extension to the constructor).
    const ws = new WebSocket(url, { protocols, headers } as unknown as string[]);
    ws.binaryType = "arraybuffer";
    const settle = (error: Error | null) => {
      clearTimeout(timer);
      options.signal.removeEventListener("abort", onAbort);
      if (error === null) return resolve(ws);
      ws.close();
      reject(error);
    };
    const timer = setTimeout(() => {
      const error = new Error(`upstream WebSocket ${url.host} did not open within ${options.timeoutMs} ms`);
      error.name = "TimeoutError";
      settle(error);
    }, options.timeoutMs);
    // The client leaving while the upstream handshake runs must not leave the upstream socket open.
    const onAbort = () => settle(new Error("client closed request"));
    options.signal.addEventListener("abort", onAbort, { once: true });
    ws.onopen = () => settle(null);
    ws.onerror = (event) => {
      const message = event instanceof ErrorEvent ? event.message : "connection failed";
      settle(new Error(`upstream WebSocket ${url.host}: ${message}`));
    };
  });
}

/** A client socket not open this long after the 101 never will be (the client left during the upgrade). */
const CLIENT_OPEN_TIMEOUT_MS = 10_000;

/**
 * Most bytes one side may have waiting to go out. The WebSocket API cannot stop reading from the faster side,
 * so a peer that stops reading (or reads slower than the other side sends) would otherwise grow nexo's
 * memory without bound; past this the relay closes both sides, as nginx does when its buffers fill.
 */
export const MAX_WEBSOCKET_BUFFERED_BYTES = 16 * 1024 * 1024;

/** Relays messages both ways; a close on either side closes the other with the same code when allowed. */
function relay(client: WebSocket, upstream: WebSocket, options: WebSocketOptions): void {
  client.binaryType = "arraybuffer";
  const backlog: Array<string | ArrayBuffer> = [];
  let bytes = 0;
  let done = false;
  const finish = (error: string | null) => {
    if (done) return;
    done = true;
    options.onDone({ status: 101, bytes, error });
  };

  let backlogBytes = 0;
  const tooSlow = (side: string) => {
    const reason = `the ${side} read too slowly (over ${MAX_WEBSOCKET_BUFFERED_BYTES} bytes waiting)`;
    closeQuietly(client, 1000, "peer too slow");
    closeQuietly(upstream, 1000, "peer too slow");
    finish(reason);
  };
  upstream.onmessage = (event: MessageEvent<string | ArrayBuffer>) => {
    const size = typeof event.data === "string" ? event.data.length : event.data.byteLength;
    bytes += size;
    if (client.readyState === WebSocket.OPEN) {
      client.send(event.data);
      if (client.bufferedAmount > MAX_WEBSOCKET_BUFFERED_BYTES) tooSlow("client");
    } else if (client.readyState === WebSocket.CONNECTING) {
      backlog.push(event.data);
      backlogBytes += size;
      if (backlogBytes > MAX_WEBSOCKET_BUFFERED_BYTES) tooSlow("client");
    }
  };
  const notOpened = setTimeout(() => {
    if (client.readyState !== WebSocket.CONNECTING) return;
    closeQuietly(upstream, 1000, "client never opened");
    finish("client never completed the upgrade");
  }, CLIENT_OPEN_TIMEOUT_MS);
  client.onopen = () => {
    clearTimeout(notOpened);
    for (const data of backlog.splice(0)) client.send(data);
  };
  client.onmessage = (event: MessageEvent<string | ArrayBuffer>) => {
    if (upstream.readyState !== WebSocket.OPEN) return;
    upstream.send(event.data);
    if (upstream.bufferedAmount > MAX_WEBSOCKET_BUFFERED_BYTES) tooSlow("upstream");
  };
  client.onclose = (event) => {
    clearTimeout(notOpened);
    closeQuietly(upstream, event.code, event.reason);
    finish(null);
  };
  upstream.onclose = (event) => {
    clearTimeout(notOpened);
    backlog.length = 0;
    closeQuietly(client, event.code, event.reason);
    finish(null);
  };
  client.onerror = () => closeQuietly(upstream, 1000, "client error");
  upstream.onerror = () => closeQuietly(client, 1000, "upstream error");
}

/**
 * Closes a socket with the peer's code where the WebSocket API allows it (1000 and 3000-4999 only); other codes
 * (1001 going away, 1011 server error; 1005/1006 never go on the wire, RFC 6455 §7.4.1) become 1000.
 */
function closeQuietly(ws: WebSocket, code: number, reason: string): void {
  if (ws.readyState === WebSocket.CLOSING || ws.readyState === WebSocket.CLOSED) return;
  const allowed = code === 1000 || (code >= 3000 && code <= 4999);
  try {
    ws.close(allowed ? code : 1000, reason);
  } catch {
    ws.close();
  }
}
