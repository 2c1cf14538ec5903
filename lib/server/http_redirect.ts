// The optional plain-HTTP listener (`http_listen`): ACME HTTP-01 responses at /.well-known/acme-challenge/
// (RFC 8555 §8.3); otherwise configured hosts get a 308 to the same URL on https, so methods and bodies
// survive the redirect (RFC 9110 §15.4.9), and unknown hosts get a 404. It never proxies, and never sends
// Strict-Transport-Security: over plain HTTP the header must not be sent (RFC 6797 §7.2), since anyone on the
// path could forge or strip it; the HTTPS response after the 308 carries it.

import type { Http01Tokens } from "../http01_tokens.ts";
import type { Logger } from "../log.ts";
import { errorPage } from "../proxy/error_page.ts";
import { matchRoute, normalizeHost } from "../router.ts";
import type { ServingSnapshot } from "./handler.ts";

export interface HttpRedirectOptions {
  hostname: string;
  port: number;
  /**
   * The HTTPS port clients reach (`public_https_port`, read per request: a reload may change it); omitted from
   * the Location when it is 443.
   */
  httpsPort: () => number;
  snapshot: () => ServingSnapshot;
  log: Logger;
  /** HTTP-01 key authorizations by token, filled by the ACME supervisor while an order runs. */
  http01: Http01Tokens;
}

const CHALLENGE_PREFIX = "/.well-known/acme-challenge/";

/** Starts the plain-HTTP listener. Throws Deno.errors.AddrInUse or PermissionDenied when it cannot bind. */
export function serveHttpRedirect(options: HttpRedirectOptions): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({
    hostname: options.hostname,
    port: options.port,
    onListen: () => {},
    onError: () => errorPage(500, "Internal error."),
  }, async (req) => {
    let url: URL;
    try {
      url = new URL(req.url);
    } catch {
      return errorPage(400, "The request's Host header is not a valid host name.");
    }
    if (url.pathname.startsWith(CHALLENGE_PREFIX)) {
      const token = url.pathname.slice(CHALLENGE_PREFIX.length);
      // RFC 8555 §8.3: a token is base64url; nothing else is looked up (a shared store is asked too).
      const keyAuthorization = /^[A-Za-z0-9_-]{1,256}$/.test(token)
        ? await options.http01.lookup(token)
        : undefined;
      if (keyAuthorization === undefined) return errorPage(404, "No such ACME challenge.");
      options.log.info("acme challenge served", { path: url.pathname });
      return new Response(keyAuthorization, { headers: { "content-type": "application/octet-stream" } });
    }
    const host = normalizeHost(req.headers.get("host") ?? url.host);
    const route = matchRoute(options.snapshot().table, host);
    if (!route) return errorPage(404, "No site is configured for this host name.");
    const httpsPort = options.httpsPort();
    const port = httpsPort === 443 ? "" : `:${httpsPort}`;
    const location = `https://${host}${port}${url.pathname}${url.search}`;
    if (route.accessLog) {
      options.log.info("request", {
        host,
        method: req.method,
        path: url.pathname,
        status: 308,
        listener: "http",
      });
    }
    return new Response(null, { status: 308, headers: { location } });
  });
}
