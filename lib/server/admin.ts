// The optional admin listener (`admin.listen`, loopback unless a password hash is set): GET /status (JSON:
// routes, certificates, the ACME worker, config version, uptime), GET /metrics (Prometheus text) and, with
// `admin.password_hash`, the dashboard (lib/dashboard/). Plain HTTP. On loopback /status and /metrics are open
// as they always were; on an address other machines reach they need a dashboard session or, for /metrics,
// `admin.metrics_token`. It never proxies.

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

/** Starts the admin listener. Throws Deno.errors.AddrInUse or PermissionDenied when it cannot bind. */
export function serveAdmin(options: AdminOptions): Deno.HttpServer<Deno.NetAddr> {
  const { admin, dashboard } = options;
  const open = isLoopbackHost(admin.listen.hostname || "127.0.0.1");
  const plain = (body: string, status: number, headers: Record<string, string> = {}) =>
    new Response(body, { status, headers: { "content-type": "text/plain; charset=utf-8", ...headers } });
  return Deno.serve({
    hostname: admin.listen.hostname || "127.0.0.1",
    port: admin.listen.port,
    onListen: () => {},
    onError: () => plain("internal error\n", 500),
  }, async (req, info) => {
    if (dashboard !== null && !dashboard.hostAllowed(req)) {
      // DNS rebinding: a page on another site, its name pointed at this address, must not read the answers.
      return plain("unknown host: open the dashboard by this machine's IP address or localhost\n", 421);
    }
    const answered = await dashboard?.handle(req, info.remoteAddr.hostname);
    if (answered) return answered;
    const { pathname } = new URL(req.url);
    if (req.method !== "GET" && req.method !== "HEAD") {
      return plain("method not allowed\n", 405, { allow: "GET, HEAD" });
    }
    if (pathname === "/metrics") {
      if (!open && !dashboard!.authorized(req, { metrics: true })) {
        return plain("sign in, or send admin.metrics_token as a bearer token\n", 401, {
          "www-authenticate": `Bearer realm="nexo"`,
        });
      }
      return new Response(options.metrics.render(options.certificates()), {
        headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8", "cache-control": "no-store" },
      });
    }
    if (pathname === "/status") {
      if (!open && !dashboard!.authorized(req, { metrics: false })) return plain("sign in first\n", 401);
      return Response.json(await options.status(), { headers: { "cache-control": "no-store" } });
    }
    return plain(
      `not found: try ${dashboard === null ? "" : "/ (the dashboard), "}/status or /metrics\n`,
      404,
    );
  });
}
