// The ACME worker's DNS side of a job: the providers `WorkerSettings.dns` names, each module loaded only when
// a config uses it, behind one router for `dns.zones`; where each provider's records are checked; and the
// checks made before an order (a name no provider serves, more values than a provider keeps).

import { lookupTxt, lookupZone } from "../dns/lookups.ts";
import {
  challengeRecordName,
  type DnsProvider,
  normalizeDnsName,
  providerCapabilities,
  providerRecordName,
} from "../dns/provider.ts";
import { ZonedDnsProvider } from "../dns/zoned.ts";
import { isInZone, providerFor } from "../config/dns_zones.ts";
import type { WorkerDnsProvider, WorkerSettings } from "./messages.ts";

/** The propagation check's servers for the provider serving `fqdn` (see `WorkerSettings.checkServers`). */
export function checkServersFor(fqdn: string, settings: WorkerSettings): string[] {
  const name = normalizeDnsName(fqdn).replace(/^_acme-challenge\./, "");
  const zone = settings.dns?.zones.find((entry) => isInZone(name.replace(/^\*\./, ""), entry.zone))?.zone ??
    "";
  return settings.checkServers[zone] ?? [];
}

/**
 * Refuses an order whose challenges cannot all be published at once: a provider keeping N values per name
 * (acme-dns keeps 2 per account) would lose the first values before the CA checks them.
 */
export function checkValueLimit(names: string[], dns: DnsProvider): void {
  const limit = providerCapabilities(dns).maxValuesPerName;
  if (limit === null) return;
  const byRecord = new Map<string, number>();
  for (const name of names) {
    const record = providerRecordName(dns, challengeRecordName(name));
    byRecord.set(record, (byRecord.get(record) ?? 0) + 1);
  }
  for (const [record, count] of byRecord) {
    if (count > limit) {
      throw new Error(
        `${
          names.join(", ")
        } need ${count} DNS-01 values at ${record} at once, and its provider keeps ${limit}: ` +
          `give these names their own acme-dns accounts in dns.zones (one per name and its wildcard)`,
      );
    }
  }
}

/** Why `names` cannot be proven: no DNS provider serves one of them, and HTTP-01 is not set up. */
export function noChallengeMethod(names: string[], settings: WorkerSettings): string {
  return settings.dns === null
    ? "No way to answer ACME challenges: add a cloudflare: or dns: block (DNS-01, needed for wildcards) or " +
      "set http_listen to a port the CA reaches as port 80 (HTTP-01)"
    : `No DNS provider serves ${
      names.join(", ")
    } (dns.zones covers other names) and http_listen is not set: ` +
      "add the zone to dns.zones, set dns.provider for every other name, or set http_listen (HTTP-01)";
}

/** The DNS providers `settings.dns` names, behind one router, and which names they serve. */
export async function dnsProviders(
  settings: WorkerSettings,
): Promise<{ provider: DnsProvider; serves: (name: string) => boolean }> {
  const dns = settings.dns!;
  const built = new Map<WorkerDnsProvider, DnsProvider>();
  if (dns.default !== null) {
    built.set(dns.default, await buildProvider(dns.default, { settings, zone: null }));
  }
  for (const { zone, provider } of dns.zones) {
    built.set(provider, await buildProvider(provider, { settings, zone }));
  }
  const zoned = new ZonedDnsProvider({
    default: dns.default === null ? null : built.get(dns.default)!,
    zones: dns.zones.map((entry) => ({ zone: entry.zone, provider: built.get(entry.provider)! })),
  });
  return {
    provider: dns.zones.length === 0 ? built.get(dns.default!)! : zoned,
    serves: (name) => providerFor(normalizeDnsName(name), dns) !== null,
  };
}

/**
 * One provider, its module loaded only when a config uses it (the worker's memory is the config's). `zone` is
 * its `dns.zones` key, null for the default provider.
 */
async function buildProvider(
  entry: WorkerDnsProvider,
  { settings, zone }: { settings: WorkerSettings; zone: string | null },
): Promise<DnsProvider> {
  switch (entry.provider) {
    case "cloudflare": {
      const { CloudflareDnsProvider } = await import("../dns/cloudflare.ts");
      return new CloudflareDnsProvider({
        apiToken: entry.apiToken,
        apiBase: entry.apiBase,
        zoneId: entry.zoneId,
      });
    }
    case "rfc2136": {
      const { Rfc2136DnsProvider } = await import("../dns/rfc2136.ts");
      const { server, keyName, algorithm, secretBase64, zone } = entry;
      return new Rfc2136DnsProvider({
        server,
        key: { name: keyName, algorithm, secret: Uint8Array.fromBase64(secretBase64) },
        zone,
      });
    }
    case "exec": {
      const { ExecDnsProvider } = await import("../dns/exec.ts");
      return new ExecDnsProvider({
        command: entry.command,
        timeoutMs: entry.timeoutMs,
        zone: entry.zone ?? zone,
        lookupTxt: (fqdn) => lookupTxt(fqdn, settings.checkServers[zone ?? ""] ?? []),
        lookupZone: (fqdn) => lookupZone(fqdn, settings.checkServers[zone ?? ""] ?? []),
      });
    }
    case "acme-dns": {
      const { AcmeDnsProvider } = await import("../dns/acme_dns.ts");
      return new AcmeDnsProvider({
        api: entry.api,
        username: entry.username,
        password: entry.password,
        subdomain: entry.subdomain,
        fulldomain: entry.fulldomain,
        domain: zone,
      });
    }
  }
}
