// The /status document: what a running nexo serves and why, for people and scripts. Built on request from
// the serving config, the certificate store and what is stored under cert_dir. No keys, no tokens.

import type { Config } from "../config/types.ts";
import type { CertRepository } from "../storage/cert_repository.ts";
import { errorMessage } from "../error_message.ts";
import type { CertStore } from "../tls/cert_store.ts";
import { VERSION } from "../version.ts";
import { isoTime } from "../iso_time.ts";

export interface ServedCertificate {
  names: string[];
  notAfter: Date;
  source: string;
}

/** The distinct certificates the store serves now (one entry per certificate, not per name). */
export function certificatesInStore(store: CertStore): ServedCertificate[] {
  const seen = new Set<string>();
  const out: ServedCertificate[] = [];
  for (const name of store.names()) {
    const entry = store.lookup(name);
    if (!entry || seen.has(entry.certPem)) continue;
    seen.add(entry.certPem);
    out.push({ names: entry.names, notAfter: entry.notAfter, source: entry.source });
  }
  return out;
}

export interface StatusContext {
  config: Config;
  /** 1 for the config nexo started with, +1 per applied reload. */
  version: number;
  loadedAt: Date;
  startedAt: number;
  listen: string;
  httpListen: string | null;
  served: ServedCertificate[];
  acme: unknown;
  /** Where the stored certificates are read: cert_dir, or the shared store. */
  repository: CertRepository;
  /** The shared store's state (lib/cluster/shared_state.ts), or null without `storage:`. */
  storage: unknown;
  /** Each balanced route's upstreams and their health (lib/balance/), by route host. */
  upstreams: Record<string, unknown[]>;
}

/** Builds the /status JSON value; reads the stored certificates' meta.json (failure state, last errors). */
export async function buildStatus(context: StatusContext): Promise<unknown> {
  const { config } = context;
  const stored = await context.repository.loadCertificates().catch((error) => ({
    certificates: [],
    problems: [`Cannot read the stored certificates: ${errorMessage(error)}`],
  }));
  return {
    nexo: VERSION,
    uptime_s: Math.round((Date.now() - context.startedAt) / 1000),
    config: { file: config.file, version: context.version, loaded_at: isoTime(context.loadedAt) },
    listen: context.listen,
    http_listen: context.httpListen,
    issuer: config.issuer,
    routes: config.routes.map((route) =>
      route.kind === "proxy"
        ? route.balancing === null ? { host: route.host, upstream: route.upstreams[0]!.href } : {
          host: route.host,
          lb: route.balancing.lb,
          upstreams: context.upstreams[route.host] ?? route.upstreams.map((url) => ({ url: url.href })),
        }
        : route.kind === "redirect"
        ? { host: route.host, redirect: route.target.href, status: route.status }
        : route.kind === "admin"
        ? { host: route.host, admin: true }
        : { host: route.host, sign_in: "github" }
    ),
    certificates: {
      served: context.served.map((cert) => ({
        names: cert.names,
        source: cert.source,
        not_after: isoTime(cert.notAfter),
      })),
      stored: stored.certificates.map((cert) => ({
        names: cert.names,
        issuer: cert.issuer,
        managed: cert.managed,
        not_after: cert.notAfter ? isoTime(cert.notAfter) : null,
        failures: cert.failures,
        last_error: cert.lastError,
        next_attempt_at: cert.nextAttemptAt ? isoTime(cert.nextAttemptAt) : null,
      })),
      problems: stored.problems,
    },
    acme: context.acme,
    storage: context.storage,
  };
}
