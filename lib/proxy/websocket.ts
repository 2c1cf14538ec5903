// WebSocket upgrades on proxy routes: connect to the upstream first (so a refused upstream is a clean 502, not
// an accepted socket that dies), then accept the client with the subprotocol the upstream chose, and relay
// messages and closes both ways, close codes included, dropping a peer that does not answer a close.
// Limits of Deno 2.9.6 (measured, DEVELOPERS.md): Deno.serve has no raw upgrade, so the relay terminates the
// WebSocket on both sides instead of passing bytes; Deno's client always sends the upstream's own Host (the
// client's reaches the upstream as X-Forwarded-Host); neither side negotiates permessage-deflate; and on a
// client's protocol error (reserved bits or opcodes, invalid UTF-8) Deno drops the client without a close
// frame before nexo hears of it, so replies still on their way from the upstream are lost; to a wss://
// upstream, Deno's client takes the route's CA and skipped verification, but no client certificate and no
// server name other than the URL's host (webSocketTls refuses those upgrades with a reason).

import { errorMessage } from "../error_message.ts";
import type { ProxyRoute, UpstreamTlsMaterial } from "../config/types.ts";
import { errorPage, reportPage } from "./error_page.ts";
import { buildUpstreamHeaders, type ForwardedFor, type HeaderList } from "./headers.ts";
import { upstreamTlsOf, upstreamUrl } from "./forward.ts";
import type { ForwardOutcome } from "./forward.ts";
import { startTimer, stopTimer, unrefTimer } from "../timers.ts";

export interface WebSocketOptions {
  /** The upstream this connection goes to (one of the route's, picked once at connect time). */
  upstream: URL;
  /** `req.headers` as a list, as the handler iterated them. */
  headerList: HeaderList;
  forwarded: ForwardedFor;
  /** `lb: cookie`'s Set-Cookie for the 101, so the page's later requests stay on this upstream; or null. */
  setCookie?: string | null;
  onDone: (outcome: ForwardOutcome) => void;
  /**
   * Keeps the listener that accepted the request from shutting down while the relay runs (its shutdown
   * would close the client's socket); the relay calls the release it returns when both sides are closed.
   */
  hold?: () => () => void;
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
  const target = upstreamUrl(options.upstream, new URL(req.url));
  target.protocol = target.protocol === "https:" ? "wss:" : "ws:";
  const protocols = (req.headers.get("sec-websocket-protocol") ?? "")
    .split(",").map((p) => p.trim()).filter((p) => p !== "");
  const headers = buildUpstreamHeaders(options.headerList, options.forwarded)
    .filter(([name]) => !HANDSHAKE_HEADERS.has(name));

  const invalid = handshakeProblem(req);
  if (invalid) {
    return reportPage(errorPage(400, `This is not a valid WebSocket handshake: ${invalid}.`), {
      error: invalid,
      onDone: options.onDone,
    });
  }

  let upstream: WebSocket;
  try {
    const tls = target.protocol === "wss:" ? webSocketTls(upstreamTlsOf(route), target) : null;
    upstream = await openUpstream(target, protocols, headers, {
      timeoutMs: route.limits.responseTimeoutMs,
      signal: req.signal,
      tls,
    });
  } catch (error) {
    if (req.signal.aborted) {
      options.onDone({ status: 499, bytes: 0, error: "client closed request" });
      return new Response(null, { status: 400 });
    }
    const timedOut = error instanceof Error && error.name === "TimeoutError";
    const status = timedOut ? 504 : 502;
    return reportPage(
      errorPage(status, "The upstream server for this site did not accept the WebSocket connection."),
      { error: errorMessage(error), onDone: options.onDone },
    );
  }

  try {
    const upgradeOptions = upstream.protocol ? { protocol: upstream.protocol } : {};
    const { socket: client, response } = Deno.upgradeWebSocket(req, upgradeOptions);
    if (options.setCookie) response.headers.append("set-cookie", options.setCookie);
    const release = options.hold?.() ?? (() => {});
    relay(client, upstream, {
      ...options,
      onDone: (outcome) => {
        release();
        options.onDone(outcome);
      },
    });
    return response;
  } catch (error) {
    upstream.close();
    return reportPage(errorPage(400, "This WebSocket handshake could not be accepted."), {
      error: errorMessage(error),
      onDone: options.onDone,
    });
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

/**
 * The TLS options of Deno 2.9.6's WebSocket client, which it reads from an undici-style `dispatcher` (its
 * node:undici Agent's options, under this registered symbol): CAs added to the roots, and no verification.
 * Its `client` option (a Deno.HttpClient, which could carry a client certificate) speaks only HTTP/2 there
 * and fails against an HTTP/1.1 upstream (measured), so a client certificate cannot be sent.
 */
const DISPATCHER_OPTIONS = Symbol.for("Deno.internal.node.undici.dispatcherOptions");

interface WebSocketTls {
  caCerts: string[];
  unsafelyIgnoreCertificateErrors: boolean;
}

/**
 * What of `upstream_tls` Deno's WebSocket client can honour for `target`, or null for the defaults. Throws
 * when the route needs what it cannot do (a client certificate, a server name other than the URL's host):
 * the upgrade then fails with a 502 whose log line says why, rather than connect without them.
 */
function webSocketTls(tls: UpstreamTlsMaterial | null, target: URL): WebSocketTls | null {
  if (tls === null) return null;
  const cannot = tls.clientCert !== null
    ? "present a client certificate (upstream_tls.client_cert_file)"
    : tls.serverName !== null && tls.serverName !== target.hostname
    ? `verify the name ${tls.serverName} (upstream_tls.server_name) on a connection to ${target.hostname}`
    : null;
  if (cannot !== null) {
    throw new Error(
      `cannot open a WebSocket to upstream ${target.host}: Deno 2.9.6's WebSocket client cannot ${cannot}; ` +
        `serve WebSockets from an upstream reached by the name in its certificate, without a client certificate`,
    );
  }
  return { caCerts: [...tls.caCerts], unsafelyIgnoreCertificateErrors: tls.insecureSkipVerify };
}

function openUpstream(
  url: URL,
  protocols: string[],
  headers: Array<[string, string]>,
  options: { timeoutMs: number; signal: AbortSignal; tls: WebSocketTls | null },
): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    // Deno's WebSocket accepts headers for the handshake request (a Deno extension to the constructor).
    const init = {
      protocols,
      headers,
      ...(options.tls === null ? {} : { dispatcher: { [DISPATCHER_OPTIONS]: options.tls } }),
    };
    const ws = new WebSocket(url, init as unknown as string[]);
    ws.binaryType = "arraybuffer";
    const settle = (error: Error | null) => {
      stopTimer(timer);
      options.signal.removeEventListener("abort", onAbort);
      if (error === null) return resolve(ws);
      ws.close();
      reject(error);
    };
    const timer = startTimer(() => {
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
    closeQuietly(client, 1008, "peer too slow", true);
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
  const notOpened = startTimer(() => {
    if (client.readyState !== WebSocket.CONNECTING) return;
    closeQuietly(upstream, 1000, "client never opened");
    finish("client never completed the upgrade");
  }, CLIENT_OPEN_TIMEOUT_MS);
  client.onopen = () => {
    stopTimer(notOpened);
    for (const data of backlog.splice(0)) client.send(data);
  };
  client.onmessage = (event: MessageEvent<string | ArrayBuffer>) => {
    if (upstream.readyState !== WebSocket.OPEN) return;
    upstream.send(event.data);
    if (upstream.bufferedAmount > MAX_WEBSOCKET_BUFFERED_BYTES) tooSlow("upstream");
  };
  client.onclose = (event) => {
    stopTimer(notOpened);
    closeQuietly(upstream, event.code, event.reason);
    finish(null);
  };
  upstream.onclose = (event) => {
    stopTimer(notOpened);
    backlog.length = 0;
    closeQuietly(client, event.code, event.reason, true);
    finish(null);
  };
  // On a client protocol error Deno has already dropped the client (no close frame) when this runs; the
  // messages before the bad frame were relayed, and the close queued after them reaches the upstream after them.
  client.onerror = () => closeQuietly(upstream, 1000, "client error");
  // 1011, not 1014 (Bad Gateway): Deno's WebSocket client, among others, rejects 1014.
  upstream.onerror = () => closeQuietly(client, 1011, "upstream error", true);
}

/**
 * Codes the client's socket (server side, from Deno.upgradeWebSocket) may send besides 1000 and 3000-4999:
 * Deno applies the WebSocket API's rule only to sockets it opened as a client, and strict clients (Deno's
 * among them) accept these. 1004-1006 and 1015 never go on the wire (RFC 6455 §7.4.1).
 */
const SERVER_CLOSE_CODES = new Set([1001, 1002, 1003, 1007, 1008, 1009, 1011, 1012, 1013]);
/** How long a peer has to answer nexo's close frame before its connection is dropped (RFC 6455 §7.1.1). */
const CLOSE_HANDSHAKE_TIMEOUT_MS = 5_000;
const utf8 = new TextEncoder();

/**
 * Closes a socket with the peer's code where allowed: 1000 and 3000-4999, and on the client's socket
 * (`serverSide`) also SERVER_CLOSE_CODES; other codes become 1000 (1011 for 1014 on the server side).
 * A reason longer than a close frame holds (123 bytes) is cut. Deno waits forever for the peer to answer a
 * close (it has no closing timeout), so a peer that has not answered in CLOSE_HANDSHAKE_TIMEOUT_MS is dropped.
 */
function closeQuietly(ws: WebSocket, code: number, reason: string, serverSide = false): void {
  if (ws.readyState === WebSocket.CLOSING || ws.readyState === WebSocket.CLOSED) return;
  const allowed = code === 1000 || (code >= 3000 && code <= 4999) ||
    (serverSide && SERVER_CLOSE_CODES.has(code));
  while (utf8.encode(reason).length > 123) reason = reason.slice(0, -1);
  try {
    ws.close(allowed ? code : serverSide && code === 1014 ? 1011 : 1000, reason);
  } catch {
    ws.close();
  }
  const timer = startTimer(() => abortSocket(ws), CLOSE_HANDSHAKE_TIMEOUT_MS);
  unrefTimer(timer);
  ws.addEventListener("close", () => stopTimer(timer), { once: true });
}

/**
 * Drops a socket's connection at once. The WebSocket API has no abort, so this closes Deno's resource
 * through Deno's internals (nexo already relies on them in listen.ts); a no-op should they change.
 */
function abortSocket(ws: WebSocket): void {
  if (ws.readyState === WebSocket.CLOSED) return;
  // deno-lint-ignore no-explicit-any
  const core = (Deno as any)[(Deno as any).internal]?.core;
  const ridSymbol = Object.getOwnPropertySymbols(ws).find((s) => s.description === "[[rid]]");
  const rid = ridSymbol ? (ws as unknown as Record<symbol, unknown>)[ridSymbol] : undefined;
  if (typeof core?.tryClose === "function" && typeof rid === "number") core.tryClose(rid);
}
