// nexo's own admin pages: GET /status (JSON: routes, certificates, the ACME worker, config version, uptime),
// GET /metrics (Prometheus text) and, with `admin.password_hash`, the dashboard (lib/dashboard/); served on
// the admin listener (`admin.listen`, plain HTTP, loopback unless a password hash is set) and on routes with
// `admin: true` (HTTPS, the host's certificate). Where other machines reach them, /status needs a dashboard
// session and /metrics a session or `admin.metrics_token`. It never proxies.

import type { AdminConfig } from "../config/types.ts";
import { isLoopbackHost } from "../config/admin.ts";
import type { Dashboard } from "../dashboard/dashboard.ts";
import type { CertificateGauge, Metrics } from "../metrics.ts";

export interface AdminOptions {
  admin: AdminConfig;
  metrics: Metrics;
  /** Builds the /status document (may read storage). Must not contain keys or tokens. */
  status: () => Promise<unknown>;
  /** The certificates served now, for the expiry gauges. */
  certificates: () => CertificateGauge[];
  /** The dashboard, when `admin.password_hash` is set. */
  dashboard: Dashboard | null;
}

/** Where a request to the admin pages came in. */
export interface AdminVia {
  /** A route with admin: true (HTTPS, its host already matched) rather than the admin listener. */
  route: boolean;
  /** The client's address, for the sign-in lockout. */
  client: string;
}

/** Answers one request to the admin pages; never throws for what a client sends. */
export type AdminHandler = (req: Request, via: AdminVia) => Promise<Response>;

/** The admin pages' handler, shared by the admin listener and `admin: true` routes. */
export function createAdminHandler(options: AdminOptions): AdminHandler {
  const { admin, dashboard } = options;
  const loopback = isLoopbackHost(admin.listen.hostname || "127.0.0.1");
  const plain = (body: string, status: number, headers: Record<string, string> = {}) =>
    new Response(body, { status, headers: { "content-type": "text/plain; charset=utf-8", ...headers } });
  return async (req, via) => {
    // A route's Host was matched to a configured name already; the listener's must be an address. DNS
    // rebinding: a page on another site, its name pointed at this address, must not read /status either.
    if (!via.route && !isAddressHost(req.headers.get("host"))) {
      return plain("unknown host: open it by this machine's IP address or localhost\n", 421);
    }
    const answered = await dashboard?.handle(req, via.client, via.route);
    if (answered) return answered;
    const open = loopback && !via.route;
    const { pathname } = new URL(req.url);
    if (req.method !== "GET" && req.method !== "HEAD") {
      return plain("method not allowed\n", 405, { allow: "GET, HEAD" });
    }
    if (pathname === "/metrics") {
      if (!open && !dashboard?.authorized(req, { metrics: true })) {
        return plain("sign in, or send admin.metrics_token as a bearer token\n", 401, {
          "www-authenticate": `Bearer realm="nexo"`,
        });
      }
      return new Response(options.metrics.render(options.certificates()), {
        headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8", "cache-control": "no-store" },
      });
    }
    if (pathname === "/status") {
      if (!open && !dashboard?.authorized(req, { metrics: false })) return plain("sign in first\n", 401);
      return Response.json(await options.status(), { headers: { "cache-control": "no-store" } });
    }
    return plain(
      `not found: try ${dashboard === null ? "" : "/ (the dashboard), "}/status or /metrics\n`,
      404,
    );
  };
}

/**
 * Whether a Host header names an IP address or localhost, the names a DNS rebinding attack cannot point at
 * another site's page; false for any other name, and for none.
 */
export function isAddressHost(host: string | null): boolean {
  if (host === null) return false;
  const name = host.replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1").toLowerCase();
  return name === "localhost" || /^[0-9.]+$/.test(name) || (name.includes(":") && /^[0-9a-f:.]+$/.test(name));
}

/** Starts the admin listener. Throws Deno.errors.AddrInUse or PermissionDenied when it cannot bind. */
export function serveAdmin(
  listen: AdminConfig["listen"],
  handler: AdminHandler,
): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({
    hostname: listen.hostname || "127.0.0.1",
    port: listen.port,
    onListen: () => {},
    onError: () => new Response("internal error\n", { status: 500 }),
  }, (req, info) => handler(req, { route: false, client: info.remoteAddr.hostname }));
}
