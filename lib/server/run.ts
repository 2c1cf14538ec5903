// Starting and stopping a serving nexo from a resolved Config: certificate store (files in cert_dir, the local
// CA for `issuer: internal`), routing snapshot, upstream pool, the HTTPS listener and the optional HTTP one.
// It owns the process-lifetime objects; it does not parse config or handle signals (lib/cli.ts does).

import { errorMessage } from "../error_message.ts";
import type { AccessRules } from "../access/rules.ts";
import type { Balancers } from "../balance/balancers.ts";
import { usesAccessRules } from "../config/access.ts";
import type { Config, ListenAddress } from "../config/types.ts";
import type { Logger } from "../log.ts";
import { Metrics } from "../metrics.ts";
import { parseCidr } from "../cidr.ts";
import { ResponseBodyCutError } from "../proxy/body.ts";
import { errorPage } from "../proxy/error_page.ts";
import { UpstreamPool } from "../proxy/upstream_client.ts";
import { buildRouteTable } from "../router.ts";
import { loadCertDir } from "../tls/cert_files.ts";
import { CertStore } from "../tls/cert_store.ts";
import { LocalHttp01Tokens } from "../http01_tokens.ts";
import { createHandler, type ServingSnapshot } from "./handler.ts";
import { serveHttpRedirect } from "./http_redirect.ts";
import { shrinkHeapSoon } from "../shrink_heap.ts";
import { enableListenerHandover, MIGRATE_REQ, serveTls } from "./listen.ts";
import { formatAddr } from "../ip_address.ts";

/**
 * How often the TLS listener is renewed regardless of certificate events: far inside a local leaf's
 * re-mint window (a third of a week), and rare enough to cost nothing.
 */
const LISTENER_REFRESH_MS = 6 * 3600 * 1000;

export interface RunningServer {
  /** The bound HTTPS address (the real port when the config asked for port 0). */
  readonly httpsAddr: Deno.NetAddr;
  readonly httpAddr: Deno.NetAddr | null;
  /** The local CA's root certificate path, for `issuer: internal`. */
  readonly rootCertPath: string | null;
  /**
   * Swaps in a new config (from lib/reload.ts): routes, limits and certificate needs change for new requests
   * at once; requests in flight finish on the snapshot they started with. A changed listen/http_listen is
   * re-bound live (new listener up before the old one closes; if the new address cannot be bound, the old one
   * keeps serving and the log says so). Logs a one-line summary. A new issuer, base_dir or cert_dir is not
   * applied: the log says a restart is needed.
   */
  applyConfig(next: Config): Promise<void>;
  /** Stops accepting and lets in-flight requests finish for up to `graceMs`. */
  shutdown(graceMs: number): Promise<void>;
}

/** Starts serving `config`. Throws with a clear message when a listen address cannot be bound. */
export async function startServer(config: Config, log: Logger): Promise<RunningServer> {
  let current = config;
  const pool = new UpstreamPool();
  const balancers = await balancersFor(config, null, { pool, log });
  let snapshot = servingSnapshot(config, await accessRules(config, null, log), balancers);
  const store = new CertStore();
  // Set once the HTTPS listener exists: certificates installed before it need no listener refresh.
  let onInstalled = () => {};
  // A shared store (`storage:`) replaces cert_dir; its code is imported only then.
  const shared = config.storage === null
    ? null
    : await (await import("../cluster/shared_state.ts")).SharedState.open(config.storage, {
      store,
      log,
      onInstalled: () => onInstalled(),
      onReachable: () => acme?.checkNow(),
    });
  if (shared !== null) {
    await shared.sync();
  } else {
    const { errors } = await loadCertDir(config.certDir, store);
    for (const message of errors) log.warn("certificate skipped", { reason: message });
  }
  // ACME's accounts, locks and stored certificates: for the supervisor and the admin status only, so the
  // repository's code is imported only for them.
  const repository = shared?.repository ??
    (config.issuer === "acme" || config.admin
      ? (await import("../storage/cert_repository.ts")).CertRepository.open({
        certDir: config.certDir,
        baseDir: config.baseDir,
      })
      : null);

  // Optional parts are imported only when the config uses them: each module graph stays in memory for the
  // life of the process (DEVELOPERS.md, "What an import costs").
  const rootCertPath = config.issuer === "internal"
    ? await (await import("./internal_issuer.ts")).serveFromLocalCa(store, {
      baseDir: config.baseDir,
      table: () => snapshot.table,
      log,
    })
    : null;

  const handover = await enableListenerHandover();
  if (handover === "enabled") {
    log.info("listener handover enabled", {
      sysctl: "net.ipv4.tcp_migrate_req=1",
      why: "certificate swaps drop no connection",
    });
  } else if (handover === "not permitted") {
    log.info("listener handover unavailable", {
      fix:
        "sysctl -w net.ipv4.tcp_migrate_req=1 (else a certificate swap may reset a connection being accepted)",
    });
  } else if (handover === "not readable") {
    // Deno 2.9.6 lets a process read /proc/sys only with --allow-all: under nexo's narrow flags whether it
    // is on is unknown, so no claim that it is off.
    log.info("listener handover not checked", {
      file: MIGRATE_REQ,
      fix:
        "make sure `sysctl net.ipv4.tcp_migrate_req` says 1 (else a certificate swap may reset a connection " +
        "being accepted); nexo cannot read it without --allow-all",
    });
  }

  const metrics = new Metrics({
    droppedLogLines: () => log.droppedLines,
    upstreams: () => snapshot.balancers?.status() ?? {},
  });
  const startedAt = Date.now();
  /** The admin pages (admin.ts), set once they exist: the admin listener's and `admin: true` routes' handler. */
  let adminHandler: import("./admin.ts").AdminHandler | null = null;
  let configVersion = 1;
  let configLoadedAt = new Date(startedAt);
  const handler = createHandler({
    snapshot: () => snapshot,
    // `https` is assigned before the first request can arrive.
    listenPort: () => https.addr.port,
    covers: (host) => store.covers(host),
    pool,
    log,
    metrics,
    admin: () => adminHandler,
  });
  const https = listenOrExplain("listen", config.listen, () =>
    serveTls({
      hostname: config.listen.hostname || "0.0.0.0",
      port: config.listen.port,
      resolveCertificate: (name) => store.resolve(name),
      // Exact route hosts that have a certificate already: warming never mints one (the local CA issues on a
      // client's first handshake) and a wildcard's names are only known when clients send them.
      warmNames: () =>
        current.routes.map((route) => route.host).filter((host) =>
          !host.startsWith("*.") && store.covers(host)
        ),
      handler,
      onRetired: ({ addr, heldMs, webSockets }) =>
        log.info("listener retired", {
          addr: formatAddr(addr),
          held_ms: heldMs >= 1000 ? heldMs : undefined,
          websockets_closed: webSockets || undefined,
        }),
      onError: (error) => {
        // Deno also reports a streamed response body cut short by its upstream here, after the response
        // began: no handler failed, and the access log already has it.
        if (error instanceof ResponseBodyCutError) return errorPage(502, "The response was cut short.");
        log.error("handler failed", {
          error: error instanceof Error ? error.stack ?? error.message : String(error),
        });
        return errorPage(500, "The server hit an internal error.");
      },
    }));
  log.info("listening", { addr: formatAddr(https.addr), protocol: "https", routes: config.routes.length });
  // A new certificate replaces the listener when the listener's cache holds something else for one of its
  // names (the old certificate, or a failure); a name no client has asked for yet needs nothing.
  onInstalled = () => void https.refreshIfStale({ urgentWithinMs: 0, anyStale: true });

  const http01 = shared?.http01 ?? new LocalHttp01Tokens();
  const startHttp = (listen: ListenAddress) => {
    const server = listenOrExplain("http_listen", listen, () =>
      serveHttpRedirect({
        hostname: listen.hostname || "0.0.0.0",
        port: listen.port,
        // The port clients use, not the bound one (Docker maps 443 to 8443); read per request for reloads.
        httpsPort: () => current.publicHttpsPort,
        snapshot: () => snapshot,
        log,
        http01,
      }));
    log.info("listening", { addr: formatAddr(server.addr), protocol: "http" });
    return server;
  };
  let http: Deno.HttpServer<Deno.NetAddr> | null = config.httpListen ? startHttp(config.httpListen) : null;

  /** Moves the listeners to a reloaded config's addresses; returns the keys it could not apply. */
  const moveListeners = (next: Config): string[] => {
    const failed: string[] = [];
    if (!sameAddress(current.listen, next.listen)) {
      try {
        listenOrExplain(
          "listen",
          next.listen,
          () => https.moveTo(next.listen.hostname || "0.0.0.0", next.listen.port),
        );
        log.info("listening", { addr: formatAddr(https.addr), protocol: "https", moved: true });
      } catch (error) {
        log.error("listen not changed", { error: errorMessage(error) });
        failed.push("listen");
      }
    }
    if (!sameAddress(current.httpListen, next.httpListen)) {
      try {
        const replacement = next.httpListen ? startHttp(next.httpListen) : null;
        http?.shutdown();
        http = replacement;
      } catch (error) {
        log.error("http_listen not changed", {
          error: errorMessage(error),
        });
        failed.push("httpListen");
      }
    }
    return failed;
  };

  // Issuance runs in the background after the listener is up: hosts with a stored certificate are served at
  // once, the others as soon as their certificate arrives.
  const acme = config.issuer === "acme"
    ? new (await import("../acme/supervisor.ts")).AcmeSupervisor({
      config,
      store,
      log,
      http01,
      repository: repository!,
      onStored: (names) => void shared?.announce(names),
      onInstalled: () => onInstalled(),
      onOrder: (outcome) => metrics.recordRenewal(outcome),
    })
    : null;
  acme?.start();
  shared?.start();
  // Deno caches each name's certificate per listener; a periodic fresh listener lets expiring entries (the
  // local CA's week-long leaves, files replaced by hand) be looked up again. See TlsServer.refresh().
  const refresher = setInterval(
    () => void https.refreshIfStale({ urgentWithinMs: 2 * LISTENER_REFRESH_MS, anyStale: true }),
    LISTENER_REFRESH_MS,
  );
  Deno.unrefTimer(refresher);

  // What /status and the dashboard show; imported with the admin listener, the only place it is shown.
  const statusModule = config.admin ? await import("./status.ts") : null;
  const servedCertificates = () => statusModule!.certificatesInStore(store);
  const status = () =>
    statusModule!.buildStatus({
      config: current,
      version: configVersion,
      loadedAt: configLoadedAt,
      startedAt,
      listen: formatAddr(https.addr),
      httpListen: http ? formatAddr(http.addr) : null,
      served: servedCertificates(),
      acme: acme?.state() ?? null,
      repository: repository!,
      storage: shared?.status() ?? null,
      upstreams: snapshot.balancers?.status() ?? {},
    });
  const adminModule = config.admin ? await import("./admin.ts") : null;
  // The dashboard's code is loaded only when a password is set for it.
  const passwordHash = config.admin?.passwordHash ?? null;
  const dashboard = config.admin && passwordHash !== null
    ? new (await import("../dashboard/dashboard.ts")).Dashboard({
      admin: { ...config.admin, passwordHash },
      configFile: config.file,
      overview: async () => ({
        status: await status(),
        memory: Deno.memoryUsage(),
        traffic: metrics.routeTotals(),
        // The certificate each route's host is served with, by the store's own (wildcard) lookup.
        covering: Object.fromEntries(current.routes.map((route) => {
          const entry = store.lookup(route.host);
          return [route.host, entry ? { names: entry.names, not_after: entry.notAfter.toISOString() } : null];
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
  adminHandler = adminModule && config.admin
    ? adminModule.createAdminHandler({
      admin: config.admin,
      metrics,
      status,
      certificates: () => servedCertificates(),
      dashboard,
    })
    : null;
  const admin = adminModule && config.admin && adminHandler
    ? listenOrExplain(
      "admin.listen",
      config.admin.listen,
      () => adminModule.serveAdmin(config.admin!.listen, adminHandler!),
    )
    : null;
  if (admin) log.info("listening", { addr: formatAddr(admin.addr), protocol: "admin" });
  // Start-up is such a burst too (the config's parse, the certificates read, every module evaluated): its
  // garbage and the young generation it grew are given back a second later. Measured 4 s after a start with
  // one request served, four alternating runs: V8's heap 8.9 -> 5.9 MiB, anonymous memory 17.3-17.6 ->
  // 14.9-15.2, RSS 56.9-58.7 -> 56.0-58.5 (the GC's own code pages take back part of it).
  shrinkHeapSoon();

  return {
    get httpsAddr() {
      return https.addr;
    },
    async applyConfig(next: Config) {
      const access = await accessRules(next, snapshot.access, log);
      const nextBalancers = await balancersFor(next, snapshot.balancers, { pool, log });
      const summary = diffRoutes(current, next);
      const restart = RESTART_KEYS.filter((key) =>
        JSON.stringify(current[key]) !== JSON.stringify(next[key])
      );
      const unmoved = moveListeners(next);
      // One assignment: a request reads `snapshot` once, so it never sees half of the old and half of the new.
      snapshot = servingSnapshot(next, access, nextBalancers);
      configVersion++;
      configLoadedAt = new Date();
      metrics.recordReload();
      current = {
        ...next,
        listen: unmoved.includes("listen") ? current.listen : next.listen,
        httpListen: unmoved.includes("httpListen") ? current.httpListen : next.httpListen,
        issuer: current.issuer,
        baseDir: current.baseDir,
        certDir: current.certDir,
        storage: current.storage,
        // The admin pages keep the settings they started with (a changed password needs a restart: logged).
        admin: current.admin,
      };
      acme?.updateConfig(current);
      // Deno 2.9.6 also caches failed lookups per listener: a host that had no route (so no certificate) at
      // an earlier handshake gets one only through a fresh listener.
      if (summary.added.length > 0) {
        void https.refreshIfStale({ urgentWithinMs: 2 * LISTENER_REFRESH_MS, anyStale: false });
      }
      log.info("config reloaded", {
        added: summary.added.join(",") || undefined,
        changed: summary.changed.join(",") || undefined,
        removed: summary.removed.join(",") || undefined,
        routes: next.routes.length,
        certificate_work: acme && summary.added.length > 0 ? "queued" : undefined,
      });
      if (restart.length > 0) {
        log.warn("config change needs a restart", { keys: restart.join(","), note: "the rest was applied" });
      }
      // The reload's garbage (the file parsed, validated and diffed) goes once reloads settle, and the young
      // generation it grew is shrunk back: without this, each reload left ~0.5 MiB more RSS (lib/shrink_heap.ts).
      shrinkHeapSoon();
    },
    get httpAddr() {
      return http?.addr ?? null;
    },
    rootCertPath,
    async shutdown(graceMs: number) {
      clearInterval(refresher);
      acme?.stop();
      snapshot.balancers?.stop();
      await Promise.all([https.shutdown(graceMs), http?.shutdown(), admin?.shutdown()]);
      pool.close();
      await shared?.close();
      if (dashboard !== null) {
        log.tap(null);
        metrics.listen(null);
        await dashboard.close();
      }
    },
  };
}

function listenOrExplain<T>(key: string, addr: ListenAddress, listen: () => T): T {
  try {
    return listen();
  } catch (error) {
    const where = `${addr.hostname || "*"}:${addr.port}`;
    if (error instanceof Deno.errors.AddrInUse) {
      throw new Error(
        `Cannot listen on ${where} (${key}): the address is already in use; stop the other ` +
          `server or choose another ${key}`,
        { cause: error },
      );
    }
    if (error instanceof Deno.errors.PermissionDenied) {
      throw new Error(
        `Cannot listen on ${where} (${key}): permission denied; ports below 1024 need root or ` +
          `CAP_NET_BIND_SERVICE, or choose a port above 1024`,
        { cause: error },
      );
    }
    throw error;
  }
}

/** Config keys a running server cannot change in place (new sockets, a new issuer or new state folders). */
const RESTART_KEYS = ["issuer", "baseDir", "certDir", "storage", "admin"] as const;

function sameAddress(a: ListenAddress | null, b: ListenAddress | null): boolean {
  return a?.hostname === b?.hostname && a?.port === b?.port;
}

/**
 * The access rules of `config`, from lib/access/ imported on first use (a config without rules loads none
 * of it); a route whose rate limit did not change keeps its buckets from `previous`.
 */
async function accessRules(
  config: Config,
  previous: AccessRules | null,
  log: Logger,
): Promise<AccessRules | null> {
  if (!usesAccessRules(config)) return null;
  return await (await import("../access/rules.ts")).AccessRules.fromConfig(config, previous, log);
}

/**
 * The balancers of `config`'s routes with several upstreams, `lb`, health checks or `retry`: lib/balance/
 * imported on first use, and `current` updated in place (it keeps upstream health across reloads).
 */
async function balancersFor(
  config: Config,
  current: Balancers | null,
  context: { pool: UpstreamPool; log: Logger },
): Promise<Balancers | null> {
  const used = config.routes.some((route) => route.kind === "proxy" && route.balancing !== null);
  if (current === null && !used) return null;
  const balancers = current ??
    await (await import("../balance/balancers.ts")).Balancers.create(context.pool, context.log);
  await balancers.update(config);
  return balancers;
}

function servingSnapshot(
  config: Config,
  access: AccessRules | null,
  balancers: Balancers | null,
): ServingSnapshot {
  return {
    table: buildRouteTable(config.routes),
    access,
    balancers,
    trustedProxies: config.trustedProxies.map(parseCidr),
    maxHeaderBytes: config.limits.maxHeaderBytes,
    readTimeoutMs: config.limits.readTimeoutMs,
  };
}

/** Which route hosts a reload adds, changes (any option) or removes. */
export function diffRoutes(
  before: Config,
  after: Config,
): { added: string[]; changed: string[]; removed: string[] } {
  const key = (route: Config["routes"][number]) => JSON.stringify({ ...route, position: null });
  const old = new Map(before.routes.map((route) => [route.host, key(route)]));
  const next = new Map(after.routes.map((route) => [route.host, key(route)]));
  return {
    added: [...next.keys()].filter((host) => !old.has(host)),
    changed: [...next.keys()].filter((host) => old.has(host) && old.get(host) !== next.get(host)),
    removed: [...old.keys()].filter((host) => !next.has(host)),
  };
}
