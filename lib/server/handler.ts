// The HTTPS request handler: request-head limits, host routing, the SNI/Host consistency check, then a
// redirect, a WebSocket relay or a proxied request, and one access-log line per request. It reads the
// current routing snapshot on every request, so a reload swaps routes without touching open connections.

import type { Route } from "../config/types.ts";
import type { Logger } from "../log.ts";
import { type Metrics, NO_ROUTE } from "../metrics.ts";
import { errorPage } from "../proxy/error_page.ts";
import { type ForwardOutcome, forwardRequest } from "../proxy/forward.ts";
import { type ForwardedFor, headerBytes } from "../proxy/headers.ts";
import { redirectResponse } from "../proxy/redirect.ts";
import { type Cidr, isTrusted } from "../proxy/trusted_proxies.ts";
import type { UpstreamPool } from "../proxy/upstream_client.ts";
import { isWebSocketUpgrade, proxyWebSocket } from "../proxy/websocket.ts";
import { matchRoute, normalizeHost, type RouteTable } from "../router.ts";
import type { ConnInfo, Handler } from "./listen.ts";

/** What a request is served with: replaced whole on reload, never mutated. */
export interface ServingSnapshot {
  table: RouteTable;
  /** Parsed `trusted_proxies`. */
  trustedProxies: readonly Cidr[];
  maxHeaderBytes: number;
  /** Server-wide `read_timeout`, applied to request bodies. */
  readTimeoutMs: number;
}

export interface HandlerOptions {
  /** Returns the snapshot new requests use. */
  snapshot: () => ServingSnapshot;
  /** Whether a certificate this server holds covers `host`; false means the TLS connection was for another. */
  covers: (host: string) => boolean;
  pool: UpstreamPool;
  log: Logger;
  metrics: Metrics;
}

/** Creates the handler for the HTTPS listener. The handler never throws. */
export function createHandler(options: HandlerOptions): Handler {
  const { log, pool, metrics } = options;
  return (req: Request, info: ConnInfo): Promise<Response> | Response => {
    const started = performance.now();
    const snapshot = options.snapshot();
    metrics.startRequest();
    let url: URL;
    try {
      url = new URL(req.url);
    } catch {
      metrics.finishRequest(NO_ROUTE, 400, 0, performance.now() - started);
      // hyper accepts some Host values (spaces, for one) that are not valid in a URL.
      log.info("request", {
        method: req.method,
        status: 400,
        error: "invalid host",
        client: info.remoteAddr.hostname,
      });
      return errorPage(400, "The request's Host header is not a valid host name.");
    }
    const hostHeader = req.headers.get("host") ?? url.host;
    const host = normalizeHost(hostHeader);
    const route = matchRoute(snapshot.table, host);
    const clientIp = info.remoteAddr.hostname;

    const done = (outcome: ForwardOutcome) => {
      metrics.finishRequest(
        route?.host ?? NO_ROUTE,
        outcome.status,
        outcome.bytes,
        performance.now() - started,
      );
      if (outcome.status >= 500 && outcome.error !== null) {
        log.warn("upstream failed", {
          host,
          path: url.pathname,
          status: outcome.status,
          upstream: route?.kind === "proxy" ? route.upstream.host : undefined,
          error: outcome.error,
        });
      }
      if (route && !route.accessLog) return;
      log.info("request", {
        host,
        method: req.method,
        path: url.pathname,
        status: outcome.status,
        bytes: outcome.bytes,
        duration_ms: Math.round((performance.now() - started) * 10) / 10,
        upstream: route?.kind === "proxy" ? route.upstream.host : undefined,
        client: clientIp,
        error: outcome.status < 500 ? outcome.error ?? undefined : undefined,
      });
    };

    if (headerBytes(req.headers) > snapshot.maxHeaderBytes) {
      done({ status: 431, bytes: 0, error: "request headers too large" });
      return errorPage(431, "The request headers are larger than this server accepts.");
    }
    if (!route) {
      done({ status: 404, bytes: 0, error: "no route for host" });
      return errorPage(404, `No site is configured for this host name.`);
    }
    if (!options.covers(host)) {
      // The connection's certificate cannot be for this host (none we hold covers it), so the client reused
      // a connection made for another name (RFC 9110 §15.5.20).
      done({ status: 421, bytes: 0, error: "host not covered by the connection's certificate" });
      return errorPage(421, "This connection cannot serve this host name; open a new connection to it.");
    }
    return serveRoute(req, url, route, {
      pool,
      forwarded: {
        clientIp,
        host: hostHeader,
        proto: "https",
        trusted: isTrusted(clientIp, snapshot.trustedProxies),
      },
      bodyReadTimeoutMs: snapshot.readTimeoutMs,
      done,
    });
  };
}

function serveRoute(
  req: Request,
  url: URL,
  route: Route,
  context: {
    pool: UpstreamPool;
    forwarded: ForwardedFor;
    bodyReadTimeoutMs: number;
    done: (outcome: ForwardOutcome) => void;
  },
): Promise<Response> | Response {
  if (route.kind === "redirect") {
    const response = redirectResponse(route, url);
    context.done({ status: response.status, bytes: 0, error: null });
    return response;
  }
  if (isWebSocketUpgrade(req)) {
    return proxyWebSocket(req, route, { forwarded: context.forwarded, onDone: context.done });
  }
  return forwardRequest(req, route, {
    pool: context.pool,
    url,
    forwarded: context.forwarded,
    bodyReadTimeoutMs: context.bodyReadTimeoutMs,
    onDone: context.done,
  });
}
