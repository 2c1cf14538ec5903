// The optional admin listener (`admin.listen`, loopback unless the config says otherwise): GET /status (JSON:
// routes, certificates, the ACME worker, config version, uptime) and GET /metrics (Prometheus text). Plain
// HTTP and no authentication, which is why it is off unless configured. It never proxies.

import type { ListenAddress } from "../config/types.ts";
import type { CertificateGauge, Metrics } from "../metrics.ts";

export interface AdminOptions {
  listen: ListenAddress;
  metrics: Metrics;
  /** Builds the /status document (may read storage). Must not contain keys or tokens. */
  status: () => Promise<unknown>;
  /** The certificates served now, for the expiry gauges. */
  certificates: () => CertificateGauge[];
}

/** Starts the admin listener. Throws Deno.errors.AddrInUse or PermissionDenied when it cannot bind. */
export function serveAdmin(options: AdminOptions): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({
    hostname: options.listen.hostname || "127.0.0.1",
    port: options.listen.port,
    onListen: () => {},
    onError: () => new Response("internal error\n", { status: 500 }),
  }, async (req) => {
    const { pathname } = new URL(req.url);
    if (req.method !== "GET" && req.method !== "HEAD") {
      return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
    }
    if (pathname === "/metrics") {
      return new Response(options.metrics.render(options.certificates()), {
        headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8", "cache-control": "no-store" },
      });
    }
    if (pathname === "/status") {
      return Response.json(await options.status(), { headers: { "cache-control": "no-store" } });
    }
    return new Response("not found: try /status or /metrics\n", { status: 404 });
  });
}
