// Starting and stopping a serving nexo from a resolved Config: it composes the process-lifetime parts (the
// certificate store and where it is filled from: cert_dir, the shared store, the local CA, the ACME
// supervisor; the serving state; the listeners; the admin pages) and applies reloads to them. It does not
// parse config or handle signals (lib/cli.ts does).

import type { Config } from "../config/types.ts";
import { LocalHttp01Tokens } from "../http01_tokens.ts";
import type { Logger } from "../log.ts";
import { Metrics } from "../metrics.ts";
import { UpstreamPool } from "../proxy/upstream_client.ts";
import { shrinkAfterBursts, shrinkHeapSoon } from "../shrink_heap.ts";
import { loadCertDir } from "../tls/cert_files.ts";
import { CertStore } from "../tls/cert_store.ts";
import type { RunningAdmin } from "./admin_start.ts";
import { createHandler } from "./handler.ts";
import { Listeners } from "./listeners.ts";
import { ServingState } from "./serving_state.ts";
import { startInterval, stopTimer, unrefTimer } from "../timers.ts";

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
  const pool = new UpstreamPool();
  const state = await ServingState.create(config, { pool, log });
  const store = new CertStore();
  // Set once the HTTPS listener exists: certificates installed before it need no listener refresh.
  let onInstalled = () => {};
  // Optional parts are imported only when the config uses them: each module graph stays in memory for the
  // life of the process (DEVELOPERS.md, "What an import costs").
  // A shared store (`storage:`) replaces cert_dir.
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
  // ACME's accounts, locks and stored certificates: for the supervisor and the admin status only.
  const repository = shared?.repository ??
    (config.issuer === "acme" || config.admin
      ? (await import("../storage/cert_repository.ts")).CertRepository.open({
        certDir: config.certDir,
        baseDir: config.baseDir,
      })
      : null);
  // The local CA mints a name's certificate at its first handshake (lib/server/internal_issuer.ts).
  const rootCertPath = config.issuer === "internal"
    ? await (await import("./internal_issuer.ts")).serveFromLocalCa(store, {
      baseDir: config.baseDir,
      table: () => state.snapshot.table,
      log,
    })
    : null;

  const metrics = new Metrics({
    droppedLogLines: () => log.droppedLines,
    upstreams: () => state.snapshot.balancers?.status() ?? {},
  });
  const startedAt = Date.now();
  // Set once the admin pages exist; the handler asks for them only on requests.
  let admin: RunningAdmin | null = null;
  const handler = createHandler({
    snapshot: () => state.snapshot,
    // The listeners exist before the first request can arrive.
    listenPort: () => listeners.https.addr.port,
    covers: (host) => store.covers(host),
    pool,
    log,
    metrics,
    admin: () => admin?.handler ?? null,
  });
  const http01 = shared?.http01 ?? new LocalHttp01Tokens();
  const listeners = await Listeners.start({
    config,
    current: () => state.config,
    snapshot: () => state.snapshot,
    store,
    handler,
    http01,
    log,
  });
  // A new certificate replaces the listener when the listener's cache holds something else for one of its
  // names (the old certificate, or a failure); a name no client has asked for yet needs nothing.
  onInstalled = () => void listeners.https.refreshIfStale({ urgentWithinMs: 0, anyStale: true });

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
  const refresher = startInterval(
    () => void listeners.https.refreshIfStale({ urgentWithinMs: 2 * LISTENER_REFRESH_MS, anyStale: true }),
    LISTENER_REFRESH_MS,
  );
  unrefTimer(refresher);

  if (config.admin !== null) {
    admin = await (await import("./admin_start.ts")).startAdmin({
      config: { ...config, admin: config.admin },
      state,
      listeners,
      startedAt,
      store,
      metrics,
      acme,
      repository: repository!,
      shared,
      log,
    });
  }
  // Start-up is such a burst too (the config's parse, the certificates read, every module evaluated): its
  // garbage and the young generation it grew are given back a second later. Measured 4 s after a start with
  // one request served, four alternating runs: V8's heap 8.9 -> 5.9 MiB, anonymous memory 17.3-17.6 ->
  // 14.9-15.2, RSS 56.9-58.7 -> 56.0-58.5 (the GC's own code pages take back part of it).
  shrinkHeapSoon();
  // And after a burst of traffic, once it is over: the heap it grew and the buffers glibc keeps.
  const stopShrinking = shrinkAfterBursts(() => metrics.finishedRequests);

  return {
    get httpsAddr() {
      return listeners.https.addr;
    },
    get httpAddr() {
      return listeners.http?.addr ?? null;
    },
    rootCertPath,
    async applyConfig(next: Config) {
      const summary = await state.apply(next, (current, next) => listeners.move(current, next));
      metrics.recordReload();
      acme?.updateConfig(state.config);
      // Deno 2.9.6 also caches failed lookups per listener: a host that had no route (so no certificate) at
      // an earlier handshake gets one only through a fresh listener.
      if (summary.added.length > 0) {
        void listeners.https.refreshIfStale({ urgentWithinMs: 2 * LISTENER_REFRESH_MS, anyStale: false });
      }
      log.info("config reloaded", {
        added: summary.added.join(",") || undefined,
        changed: summary.changed.join(",") || undefined,
        removed: summary.removed.join(",") || undefined,
        routes: next.routes.length,
        certificate_work: acme && summary.added.length > 0 ? "queued" : undefined,
      });
      if (summary.restart.length > 0) {
        log.warn("config change needs a restart", {
          keys: summary.restart.join(","),
          note: "the rest was applied",
        });
      }
      // The reload's garbage (the file parsed, validated and diffed) goes once reloads settle, and the young
      // generation it grew is shrunk back: without this, each reload left ~0.5 MiB more RSS (lib/shrink_heap.ts).
      shrinkHeapSoon();
    },
    async shutdown(graceMs: number) {
      stopTimer(refresher);
      stopShrinking();
      acme?.stop();
      state.snapshot.balancers?.stop();
      await Promise.all([listeners.shutdown(graceMs), admin?.shutdown()]);
      pool.close();
      await shared?.close();
      await admin?.close();
    },
  };
}
