// The admin side of a serving nexo, for a config with `admin:`: /status and /metrics (lib/server/admin.ts),
// the dashboard when `admin.password_hash` is set (lib/dashboard/, imported only then), and the admin
// listener. lib/server/run.ts imports this module only for such a config, so a config without `admin:` loads
// none of it (tests/import_graph_test.ts).

import type { AcmeSupervisor } from "../acme/supervisor.ts";
import type { SharedState } from "../cluster/shared_state.ts";
import type { Config } from "../config/types.ts";
import { formatAddr } from "../ip_address.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import type { CertRepository } from "../storage/cert_repository.ts";
import type { CertStore } from "../tls/cert_store.ts";
import { type AdminHandler, createAdminHandler, serveAdmin } from "./admin.ts";
import { type Listeners, listenOrExplain } from "./listeners.ts";
import type { ServingState } from "./serving_state.ts";
import { buildStatus, certificatesInStore } from "./status.ts";
import { isoTime } from "../iso_time.ts";

export interface AdminStartOptions {
  /** The config nexo starts with; its `admin` settings hold until a restart. */
  config: Config & { admin: NonNullable<Config["admin"]> };
  state: ServingState;
  listeners: Listeners;
  startedAt: number;
  store: CertStore;
  metrics: Metrics;
  acme: AcmeSupervisor | null;
  repository: CertRepository;
  shared: SharedState | null;
  log: Logger;
}

export interface RunningAdmin {
  /** Answers the admin listener and the `admin: true` routes. */
  readonly handler: AdminHandler;
  /** Stops the admin listener (the HTTPS listener may still be serving `admin: true` routes). */
  shutdown(): Promise<void>;
  /** Closes the dashboard, once nothing serves it any more. */
  close(): Promise<void>;
}

/** Starts the admin pages and their listener. Throws with a clear message when `admin.listen` cannot be bound. */
export async function startAdmin(options: AdminStartOptions): Promise<RunningAdmin> {
  const { config, state, listeners, store, metrics, acme, log } = options;
  const status = () =>
    buildStatus({
      config: state.config,
      version: state.version,
      loadedAt: state.loadedAt,
      startedAt: options.startedAt,
      listen: formatAddr(listeners.https.addr),
      httpListen: listeners.http ? formatAddr(listeners.http.addr) : null,
      served: certificatesInStore(store),
      acme: acme?.state() ?? null,
      repository: options.repository,
      storage: options.shared?.status() ?? null,
      upstreams: state.snapshot.balancers?.status() ?? {},
    });
  // The dashboard's code is loaded only when a password is set for it.
  const passwordHash = config.admin.passwordHash;
  const dashboard = passwordHash !== null
    ? new (await import("../dashboard/dashboard.ts")).Dashboard({
      admin: { ...config.admin, passwordHash },
      configFile: config.file,
      overview: async () => ({
        status: await status(),
        memory: Deno.memoryUsage(),
        traffic: metrics.routeTotals(),
        // The certificate each route's host is served with, by the store's own (wildcard) lookup.
        covering: Object.fromEntries(state.config.routes.map((route) => {
          const entry = store.lookup(route.host);
          return [route.host, entry ? { names: entry.names, not_after: isoTime(entry.notAfter) } : null];
        })),
        at: Date.now(),
      }),
      renew: acme === null ? null : (names) => acme.renewNow(names),
      log,
    })
    : null;
  if (dashboard !== null) {
    log.tap((level, event, fields) => dashboard.tail.add(level, event, fields));
    metrics.listen((route, status, bytes, durationMs) =>
      dashboard.traffic.record(route, status, bytes, durationMs)
    );
    await dashboard.start();
  }
  const handler = createAdminHandler({
    admin: config.admin,
    metrics,
    status,
    certificates: () => certificatesInStore(store),
    dashboard,
  });
  const server = listenOrExplain(
    "admin.listen",
    config.admin.listen,
    () => serveAdmin(config.admin.listen, handler),
  );
  log.info("listening", { addr: formatAddr(server.addr), protocol: "admin" });
  return {
    handler,
    shutdown: () => server.shutdown(),
    async close() {
      if (dashboard === null) return;
      log.tap(null);
      metrics.listen(null);
      await dashboard.close();
    },
  };
}
