// Which certificates a config needs: one per route host, except that hosts one label under a `wildcards` entry
// share one certificate for "*.example.com" plus "example.com" (so the apex is covered too). A wildcards
// entry with no host under it issues nothing. Pure: no I/O, no ACME.

import type { Config } from "../config/types.ts";

/** One certificate to hold: its names, first name first (the CN and the storage directory's name). */
export interface CertificatePlan {
  names: string[];
}

/**
 * Returns the certificates `config` needs, in a stable order (wildcard certificates first, in `wildcards`
 * order, then single hosts in route order). A route key that is itself a wildcard ("*.example.com") needs
 * the wildcard certificate; a host covered by a wildcard certificate gets no certificate of its own.
 */
export function planCertificates(config: Pick<Config, "routes" | "wildcards">): CertificatePlan[] {
  const hosts = config.routes.map((route) => route.host);
  const plans: CertificatePlan[] = [];
  const covered = new Set<string>();
  for (const wildcard of config.wildcards) {
    const apex = wildcard.slice(2);
    const under = hosts.filter((host) => host === wildcard || isOneLabelUnder(host, apex));
    if (under.length === 0) continue;
    plans.push({ names: [wildcard, apex] });
    for (const host of under) covered.add(host);
    covered.add(apex);
  }
  const seen = new Set<string>();
  for (const host of hosts) {
    if (covered.has(host) || seen.has(host)) continue;
    seen.add(host);
    plans.push({ names: [host] });
  }
  return plans;
}

/** Whether `host` is exactly one label under `apex` ("a.example.com" under "example.com"). */
export function isOneLabelUnder(host: string, apex: string): boolean {
  if (!host.endsWith(`.${apex}`)) return false;
  const label = host.slice(0, host.length - apex.length - 1);
  return label.length > 0 && !label.includes(".") && label !== "*";
}
