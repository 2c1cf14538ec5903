// The HTTPS request handler: request-head limits, host routing, the Host checks (against the request target
// and the connection's certificate), then a redirect, a WebSocket relay or a proxied request, the route's
// Strict-Transport-Security on whatever is answered, and one access-log line per request. It reads the
// current routing snapshot on every request, so a reload swaps routes without touching open connections.

import type { AdminHandler } from "./admin.ts";
import type { ProxyRoute, RedirectRoute, Route, RouteAccess } from "../config/types.ts";
import type { RouteBalancer } from "../balance/route_balancer.ts";
import type { Logger } from "../log.ts";
import { type Metrics, NO_ROUTE } from "../metrics.ts";
import { errorPage, holdOpen, pageBytes, reportPage } from "../proxy/error_page.ts";
import { drainBody } from "../proxy/body.ts";
import { type ForwardOutcome, forwardRequest } from "../proxy/forward.ts";
import { type ForwardedFor, headerBytes, type HeaderList } from "../proxy/headers.ts";
import { redirectResponse } from "../proxy/redirect.ts";
import type { AccessRules, AuthOutcome, Refusal } from "../access/rules.ts";
import type { SignInRequest } from "../access/github_auth.ts";
import type { Balancers } from "../balance/balancers.ts";
import { clientAddress } from "../client_address.ts";
import { type Cidr, inCidrs } from "../cidr.ts";
import type { UpstreamPool } from "../proxy/upstream_client.ts";
import { matchRoute, normalizeHost, type RouteTable } from "../router.ts";
import type { ConnInfo, Handler } from "./listen.ts";

/** What a request is served with: replaced whole on reload, never mutated. */
export interface ServingSnapshot {
  table: RouteTable;
  /** The access rules (`deny`, `allow`, `rate_limit`, `basic_auth`, `forward_auth`); null when it has none. */
  access: AccessRules | null;
  /** The balancers of routes with several upstreams, `lb`, health checks or `retry`; null when none has. */
  balancers: Balancers | null;
  /** Parsed `trusted_proxies`. */
  trustedProxies: readonly Cidr[];
  maxHeaderBytes: number;
  /** Server-wide `read_timeout`, applied to request bodies. */
  readTimeoutMs: number;
}

export interface HandlerOptions {
  /** Returns the snapshot new requests use. */
  snapshot: () => ServingSnapshot;
  /** The HTTPS listener's port now (a reload may move it): to recognize a request that named no host. */
  listenPort: () => number;
  /** Whether a certificate this server holds covers `host`; false means the TLS connection was for another. */
  covers: (host: string) => boolean;
  pool: UpstreamPool;
  log: Logger;
  metrics: Metrics;
  /** nexo's admin pages, for routes with admin: true (null until the admin pages exist, or without them). */
  admin?: () => AdminHandler | null;
}

/**
 * Creates the handler for the HTTPS listener. The handler never throws. A HEAD request never gets a body,
 * whoever made the response (RFC 9110 §9.3.2): Deno drops it on HTTP/1.1 but sends it on HTTP/2, where
 * clients fail the stream. A response nexo made without reading the request's body (a refusal, a sign-in
 * redirect, a 404) ends only once that body is drained: Deno 2.9.6 resets an HTTP/2 stream whose request
 * body is still arriving when its response completes, and curl then fails the request (error 92) instead
 * of showing the 403, measured in 10 to 40% of small form posts to a refused route.
 */
export function createHandler(options: HandlerOptions): Handler {
  const respond = createResponder(options);
  return (req: Request, info: ConnInfo): Promise<Response> | Response => {
    const response = respond(req, info);
    const finish = (answer: Response) => finishResponse(req, answer);
    return response instanceof Response ? finish(response) : response.then(finish);
  };
}

function finishResponse(req: Request, response: Response): Response {
  if (req.method === "HEAD") return withoutBody(response);
  // Checked first: reading req.body after Deno.upgradeWebSocket() stalls the 101 (Deno 2.9.6, measured).
  if (response.status === 101) return response;
  const body = req.body;
  // A proxied request's body is locked by the upstream client, which reads it (forward.ts drains on 413).
  // A client that sent Expect: 100-continue has not sent its body: it must not be asked for it now.
  if (body === null || body.locked || req.headers.has("expect")) return response;
  return holdOpen(response, drainBody(body));
}

function withoutBody(response: Response): Response {
  if (response.body === null) return response;
  response.body.cancel().catch(() => {});
  return new Response(null, { status: response.status, headers: response.headers });
}

function createResponder(options: HandlerOptions): Handler {
  const { log, pool, metrics } = options;
  return (req: Request, info: ConnInfo): Promise<Response> | Response => {
    const started = performance.now();
    const snapshot = options.snapshot();
    metrics.startRequest();
    let url: URL;
    try {
      url = new URL(req.url);
    } catch {
      // hyper accepts some Host values (spaces, for one) that are not valid in a URL.
      return answerHostless(req, {
        info,
        started,
        metrics,
        log,
        detail: "The request's Host header is not a valid host name.",
        error: "invalid host",
      });
    }
    const hostField = req.headers.get("host");
    const hostHeader = hostField ?? url.host;
    if (
      hostField === "" ||
      (hostField === null && namesNoHost(url, { table: snapshot.table, port: options.listenPort() }))
    ) {
      // RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request without Host (or with an empty one).
      return answerHostless(req, {
        info,
        started,
        metrics,
        log,
        detail: "The request names no host: send a Host header.",
        error: "no host",
      });
    }
    const host = normalizeHost(hostHeader);
    const route = matchRoute(snapshot.table, host);
    const clientIp = info.remoteAddr.hostname;

    const done = (outcome: ForwardOutcome) => {
      const bytes = sentBytes(req, outcome.bytes);
      metrics.finishRequest(route?.host ?? NO_ROUTE, outcome.status, bytes, performance.now() - started);
      // 501 answers the client's transfer coding (forward.ts); every other 5xx here is the upstream's.
      const upstreamFault = outcome.status >= 500 && outcome.status !== 501;
      if (upstreamFault && outcome.error !== null) {
        log.warn("upstream failed", {
          host,
          path: url.pathname,
          status: outcome.status,
          upstream: outcome.upstream?.host ?? soleUpstream(route),
          error: outcome.error,
        });
      }
      if (route && !route.accessLog) return;
      log.info("request", {
        host,
        method: req.method,
        path: url.pathname,
        status: outcome.status,
        bytes,
        duration_ms: Math.round((performance.now() - started) * 10) / 10,
        upstream: outcome.upstream?.host ?? soleUpstream(route),
        client: clientIp,
        error: upstreamFault ? undefined : outcome.error ?? undefined,
      });
    };

    if (hostField !== null && normalizeHost(url.host) !== host) {
      // Deno builds req.url from an absolute-form target's authority (or HTTP/2's :authority), else from
      // Host. Two different names break RFC 9112 §3.2.2 (Host must equal the target's authority; RFC 9113
      // §8.3.1 likewise): routing by either one lets a proxy in front of nexo and nexo disagree on the site.
      return reportPage(errorPage(400, "The request target and the Host header name different hosts."), {
        error: "request target and Host name different hosts",
        onDone: done,
      });
    }

    // HSTS only for a host nexo serves and holds a certificate for: a policy sent on a 404 for an unknown
    // name, or on a connection whose certificate is for another name (421), would pin a host nexo does not
    // answer for (RFC 6797 §8.1: browsers heed it only over an error-free secure connection to that host).
    const covered = route !== undefined && options.covers(host);
    const access = snapshot.access;
    const client = access === null
      ? clientIp
      : access.clientOf(clientIp, req.headers.get("x-forwarded-for"), snapshot.trustedProxies);
    const refuse = (refusal: Refusal) => {
      metrics.recordRefusal(route?.host ?? NO_ROUTE, refusal.reason);
      const page = reportPage(refusalPage(refusal), { error: refusal.reason, onDone: done });
      return covered ? withHsts(page, route.hsts) : page;
    };
    // The top-level deny comes first, for every host, known or not.
    if (access !== null && access.deniedEverywhere(client)) return refuse({ status: 403, reason: "denied" });
    const headerList = [...req.headers];
    if (headerBytes(headerList) > snapshot.maxHeaderBytes) {
      const page = reportPage(errorPage(431, "The request headers are larger than this server accepts."), {
        error: "request headers too large",
        onDone: done,
      });
      return covered ? withHsts(page, route.hsts) : page;
    }
    if (!route) {
      return reportPage(errorPage(404, `No site is configured for this host name.`), {
        error: "no route for host",
        onDone: done,
      });
    }
    if (!covered) {
      // The connection's certificate cannot be for this host (none we hold covers it), so the client reused
      // a connection made for another name (RFC 9110 §15.5.20).
      return reportPage(
        errorPage(421, "This connection cannot serve this host name; open a new connection to it."),
        { error: "host not covered by the connection's certificate", onDone: done },
      );
    }
    const refusal = access === null ? null : access.check(route.host, client, Date.now());
    if (refusal !== null) return refuse(refusal);
    // What sign-in answers itself: a refusal (401, 403, a redirect to sign in), one of its pages, or 502.
    const answered = (outcome: Exclude<AuthOutcome, { kind: "allow" }>): Response => {
      switch (outcome.kind) {
        case "deny":
          metrics.recordRefusal(route.host, outcome.reason);
          done({ status: outcome.response.status, bytes: outcome.bytes, error: outcome.error });
          return outcome.response;
        case "answer":
          done({ status: outcome.response.status, bytes: outcome.bytes, error: null });
          return outcome.response;
        case "unavailable":
          metrics.recordRefusal(route.host, "auth unavailable");
          // A client that left while the auth server was asked is not the auth server failing.
          if (!req.signal.aborted) {
            log.warn("forward auth failed", {
              host,
              auth: route.access?.forwardAuth?.url.host,
              error: outcome.error,
            });
          }
          return reportPage(errorPage(502, "The sign-in service for this site did not answer."), {
            error: "forward_auth unavailable",
            onDone: done,
          });
      }
    };
    if (route.kind === "admin") {
      // The config refuses admin: true without admin.password_hash, so the pages exist once serving starts.
      const admin = options.admin?.() ?? null;
      if (admin === null) {
        return reportPage(errorPage(503, "The dashboard is starting."), {
          error: "admin not ready",
          onDone: done,
        });
      }
      // The client as access rules see it (trusted_proxies honoured): the sign-in lockout's key.
      const page = admin(req, { route: true, client }).then((response) => {
        done({
          status: response.status,
          bytes: Number(response.headers.get("content-length") ?? 0),
          error: null,
        });
        return response;
      }, (error) => {
        log.error("admin page failed", { error: error instanceof Error ? error.message : String(error) });
        return reportPage(errorPage(500, "The dashboard hit an internal error."), {
          error: "admin page failed",
          onDone: done,
        });
      });
      return withHsts(page, route.hsts);
    }
    if (route.kind === "sign-in") {
      // A sign-in route exists only with `auth:`, which loads the access rules (usesAccessRules).
      const request = signInRequest(req, url, headerList, client);
      const pages = access!.signInHost(pool, request, (name) => matchRoute(snapshot.table, name));
      return withHsts(pages.then(answered), route.hsts);
    }
    const serve = (headers: HeaderList) =>
      serveRoute(req, url, route, {
        pool,
        hold: info.hold,
        headerList: headers,
        forwarded: {
          clientIp,
          host: hostHeader,
          proto: "https",
          trusted: inCidrs(clientIp, snapshot.trustedProxies),
        },
        bodyReadTimeoutMs: snapshot.readTimeoutMs,
        balancer: route.kind === "proxy" && route.balancing !== null
          ? snapshot.balancers?.get(route.host) ?? null
          : null,
        // For ip_hash: the client behind trusted proxies, as the access rules see it.
        client: () =>
          access === null
            ? clientAddress(clientIp, req.headers.get("x-forwarded-for"), snapshot.trustedProxies)
            : client,
        done,
        repaired: (header) => {
          log.warn("upstream header repaired", {
            host,
            path: url.pathname,
            header,
            upstream: soleUpstream(route),
            fix: "the upstream sent control characters in this header; they were replaced with spaces",
          });
        },
      });
    const rules = route.access;
    if (access === null || rules === null || !requiresSignIn(rules)) {
      return withHsts(serve(headerList), route.hsts);
    }
    const verdict = access.authenticate(pool, route.host, rules, signInRequest(req, url, headerList, client))
      .then((outcome) => outcome.kind === "allow" ? serve(outcome.headerList) : answered(outcome));
    return withHsts(verdict, route.hsts);
  };
}

/**
 * Whether a request without a Host header (the caller checks that there is none) had its URL made up by
 * Deno: for an HTTP/1.x request without Host, Deno 2.9.6 builds req.url from "localhost" and the listener's
 * port (omitted when it is 443). An HTTP/2
 * request carries no Host header either (its :authority becomes the URL), so one for that same "localhost"
 * authority looks identical. Such a request is refused only when no route answers "localhost" (it would have
 * had no site anyway); a `localhost` route stays reachable over HTTP/2, and an HTTP/1.1 request without Host
 * then reaches it too (Deno shows nexo no difference).
 */
function namesNoHost(url: URL, context: { table: RouteTable; port: number }): boolean {
  if (url.host !== (context.port === 443 ? "localhost" : `localhost:${context.port}`)) return false;
  return matchRoute(context.table, "localhost") === undefined;
}

const STS = "strict-transport-security";

/**
 * Puts the route's Strict-Transport-Security value (computed at config load) on a response nexo sends over
 * HTTPS: proxied, redirect or one of nexo's own pages, replacing an upstream's own so the config is what
 * browsers see. With `hsts: false` (null) the response is untouched, so an upstream's own header passes.
 */
function withHsts(response: Promise<Response> | Response, hsts: string | null): Promise<Response> | Response {
  if (hsts === null) return response;
  if (response instanceof Response) return setHsts(response, hsts);
  return response.then((resolved) => setHsts(resolved, hsts));
}

/** The host of a proxy route's upstream when it has exactly one, for log lines. */
function soleUpstream(route: Route | undefined): string | undefined {
  return route?.kind === "proxy" && route.upstreams.length === 1 ? route.upstreams[0]!.host : undefined;
}

/** Whether a route's rules include a sign-in (`basic_auth`, `github_auth`, `forward_auth`). */
function requiresSignIn(rules: RouteAccess): boolean {
  return rules.basicAuth !== null || rules.githubAuth !== null || rules.forwardAuth !== null;
}

/** What sign-in (basic, GitHub, forward auth) is told about a request. */
function signInRequest(req: Request, url: URL, headerList: HeaderList, client: string): SignInRequest {
  return {
    method: req.method,
    url,
    headerList,
    client,
    signal: req.signal,
    upgrade: isWebSocketUpgrade(req),
  };
}

/** nexo's page for a request the access rules refuse: 403, or 429 with Retry-After. */
function refusalPage(refusal: Refusal): Response {
  if (refusal.status === 403) return errorPage(403, "You may not reach this site from your network.");
  const page = errorPage(
    429,
    `Too many requests from your address; try again in ${refusal.retryAfterS} second${
      refusal.retryAfterS === 1 ? "" : "s"
    }.`,
  );
  page.headers.set("retry-after", String(refusal.retryAfterS));
  return page;
}

/** Body bytes the client receives: none for HEAD (nexo's own pages and redirects lose theirs: withoutBody()). */
function sentBytes(req: Request, bytes: number): number {
  return req.method === "HEAD" ? 0 : bytes;
}

/** A 400 for a request with no usable host, logged and counted without one. */
function answerHostless(
  req: Request,
  context: { info: ConnInfo; started: number; metrics: Metrics; log: Logger; detail: string; error: string },
): Response {
  const page = errorPage(400, context.detail);
  const bytes = sentBytes(req, pageBytes(page));
  context.metrics.finishRequest(NO_ROUTE, 400, bytes, performance.now() - context.started);
  context.log.info("request", {
    method: req.method,
    status: 400,
    bytes,
    error: context.error,
    client: context.info.remoteAddr.hostname,
  });
  return page;
}

function setHsts(response: Response, hsts: string): Response {
  // A 101 hands the connection to the WebSocket protocol; the page that opened it carried the policy.
  if (response.status !== 101) response.headers.set(STS, hsts);
  return response;
}

function serveRoute(
  req: Request,
  url: URL,
  route: ProxyRoute | RedirectRoute,
  context: {
    pool: UpstreamPool;
    hold: ConnInfo["hold"];
    headerList: HeaderList;
    forwarded: ForwardedFor;
    bodyReadTimeoutMs: number;
    /** The route's balancer (several upstreams, lb, health checks, retries), or null for its one upstream. */
    balancer: RouteBalancer | null;
    client: () => string;
    done: (outcome: ForwardOutcome) => void;
    repaired: (header: string) => void;
  },
): Promise<Response> | Response {
  if (route.kind === "redirect") {
    const response = redirectResponse(route, url);
    context.done({ status: response.status, bytes: pageBytes(response), error: null });
    return response;
  }
  const { balancer } = context;
  if (isWebSocketUpgrade(req)) {
    // Balanced once, when it opens; a later change in another upstream's health does not touch it.
    const chosen = balancer?.choose(context.client(), context.headerList);
    // The relay is imported at the first upgrade: a module stays in memory for the life of the process, and
    // many configs never see a WebSocket (docs/performance.md, "What an import costs").
    return import("../proxy/websocket.ts").then(({ proxyWebSocket }) =>
      proxyWebSocket(req, route, {
        upstream: chosen?.upstream ?? route.upstreams[0]!,
        headerList: context.headerList,
        forwarded: context.forwarded,
        setCookie: chosen?.setCookie ?? null,
        onDone: (outcome) => {
          chosen?.release(outcome.status === 502 || outcome.status === 504 ? outcome.error : null);
          context.done(outcome);
        },
        hold: () => context.hold("upgrade"),
      })
    );
  }
  // Deno 2.9.6: a listener's graceful shutdown (a certificate swap retires it) cuts the request bodies its
  // connections are still reading ("Cannot read request body as underlying resource unavailable", so the
  // client got a 400 mid-upload). A request with a body holds its listener until it is done, as a WebSocket
  // does (and past a held listener's deadline: see REQUEST_GRACE_MS); the hold is released once (on
  // completion, or if forwarding throws).
  const release = req.body === null ? () => {} : context.hold("request");
  const response = forwardRequest(req, route, {
    pool: context.pool,
    url,
    headerList: context.headerList,
    forwarded: context.forwarded,
    bodyReadTimeoutMs: context.bodyReadTimeoutMs,
    onDone: (outcome) => {
      release();
      context.done(outcome);
    },
    onRepairedHeader: context.repaired,
    dispatch: balancer?.dispatcher(context.client(), context.headerList) ?? null,
  });
  response.catch(release);
  return response;
}

/** Whether a request asks for a WebSocket upgrade (RFC 6455 §4.1). */
export function isWebSocketUpgrade(req: Request): boolean {
  const upgrade = req.headers.get("upgrade");
  return upgrade !== null && upgrade.toLowerCase() === "websocket";
}
