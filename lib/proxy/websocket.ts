// WebSocket upgrades on proxy routes: connect to the upstream first (so a refused upstream is a clean 502, not
// an accepted socket that dies), then accept the client with the subprotocol the upstream chose, and relay
// messages and closes both ways. Limitation: Deno's WebSocket client always sends the upstream's own Host;
// the client's Host reaches the upstream as X-Forwarded-Host.

import type { ProxyRoute } from "../config/types.ts";
import { errorPage } from "./error_page.ts";
import { buildUpstreamHeaders, type ForwardedFor } from "./headers.ts";
import { upstreamUrl } from "./forward.ts";
import type { ForwardOutcome } from "./forward.ts";

/** Whether a request asks for a WebSocket upgrade (RFC 6455 §4.1). */
export function isWebSocketUpgrade(req: Request): boolean {
  const upgrade = req.headers.get("upgrade");
  return upgrade !== null && upgrade.toLowerCase() === "websocket";
}

export interface WebSocketOptions {
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
  const headers = buildUpstreamHeaders(req.headers, options.forwarded)
    .filter(([name]) => !HANDSHAKE_HEADERS.has(name));

  let upstream: WebSocket;
  try {
    upstream = await openUpstream(target, protocols, headers, route.limits.responseTimeoutMs);
  } catch (error) {
    const timedOut = error instanceof Error && error.name === "TimeoutError";
    const status = timedOut ? 504 : 502;
    options.onDone({ status, bytes: 0, error: error instanceof Error ? error.message : String(error) });
    return errorPage(status, "The upstream server for this site did not accept the WebSocket connection.");
  }

  const upgradeOptions = upstream.protocol ? { protocol: upstream.protocol } : {};
  const { socket: client, response } = Deno.upgradeWebSocket(req, upgradeOptions);
  relay(client, upstream, options);
  return response;
}

function openUpstream(
  url: URL,
  protocols: string[],
  headers: Array<[string, string]>,
  timeoutMs: number,
): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    // Deno's WebSocket accepts headers for the handshake request (a Deno extension to the constructor).
    const ws = new WebSocket(url, { protocols, headers } as unknown as string[]);
    ws.binaryType = "arraybuffer";
    const timer = setTimeout(() => {
      ws.close();
      const error = new Error(`upstream WebSocket ${url.host} did not open within ${timeoutMs} ms`);
      error.name = "TimeoutError";
      reject(error);
    }, timeoutMs);
    ws.onopen = () => {
      clearTimeout(timer);
      resolve(ws);
    };
    ws.onerror = (event) => {
      clearTimeout(timer);
      const message = event instanceof ErrorEvent ? event.message : "connection failed";
      reject(new Error(`upstream WebSocket ${url.host}: ${message}`));
    };
  });
}

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

  upstream.onmessage = (event: MessageEvent<string | ArrayBuffer>) => {
    bytes += typeof event.data === "string" ? event.data.length : event.data.byteLength;
    if (client.readyState === WebSocket.OPEN) client.send(event.data);
    else if (client.readyState === WebSocket.CONNECTING) backlog.push(event.data);
  };
  client.onopen = () => {
    for (const data of backlog.splice(0)) client.send(data);
  };
  client.onmessage = (event: MessageEvent<string | ArrayBuffer>) => {
    if (upstream.readyState === WebSocket.OPEN) upstream.send(event.data);
  };
  client.onclose = (event) => {
    closeQuietly(upstream, event.code, event.reason);
    finish(null);
  };
  upstream.onclose = (event) => {
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
