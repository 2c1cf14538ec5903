// `issuer: internal` while serving: the local CA in base_dir/ca and the certificate store's miss handler that
// mints a leaf for a route's host at its first handshake (and again once a third of its life is left). It
// decides nothing about routes (the caller's table says which names are served) and stores nothing on disk
// but the CA itself.

import type { Logger } from "../log.ts";
import { matchRoute, type RouteTable } from "../router.ts";
import type { CertStore } from "../tls/cert_store.ts";
import { LocalCa, localCaDir } from "../tls/local_ca.ts";
import { isoTime } from "../iso_time.ts";

/** Leaf certificates from the local CA live a week (like Caddy's internal issuer, short-lived by design). */
export const INTERNAL_LEAF_LIFETIME_MS = 7 * 24 * 3600 * 1000;

/**
 * Loads or creates the local CA under `baseDir/ca` and makes `store` mint leaves from it for names a route
 * in `table()` answers; an unknown SNI name still gets no certificate. Returns the root certificate's path
 * (logged, for the user to trust). Throws when the CA cannot be read or created.
 */
export async function serveFromLocalCa(
  store: CertStore,
  options: { baseDir: string; table: () => RouteTable; log: Logger },
): Promise<string> {
  const { log } = options;
  const ca = await LocalCa.loadOrCreate(localCaDir(options.baseDir));
  log.info("local CA ready", { root_certificate: ca.rootCertPath });
  store.setMissHandler(async (serverName) => {
    if (!matchRoute(options.table(), serverName)) return undefined;
    const leaf = await ca.issue([serverName], { lifetimeMs: INTERNAL_LEAF_LIFETIME_MS });
    log.info("certificate issued", {
      names: serverName,
      issuer: "internal",
      not_after: isoTime(leaf.notAfter),
    });
    // Stored as expiring when a third of its life remains, so the next handshake after that mints a new
    // one while the old one is still valid for connections that hold it.
    const renewAt = new Date(leaf.notAfter.getTime() - INTERNAL_LEAF_LIFETIME_MS / 3);
    return {
      certPem: leaf.certPem,
      keyPem: leaf.keyPem,
      names: [serverName],
      notAfter: renewAt,
      source: "internal",
    };
  });
  return ca.rootCertPath;
}
