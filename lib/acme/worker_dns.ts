// The ACME worker's DNS side of a job: the providers `WorkerSettings.dns` names, each module loaded only when
// a config uses it, behind one router for `dns.zones`; where each provider's records are checked; and the
// checks made before an order (a name no provider serves, more values than a provider keeps).

import { lookupTxt, lookupZone } from "../dns/lookups.ts";
import {
  challengeRecordName,
  type DnsProvider,
  DnsProviderError,
  normalizeDnsName,
  providerCapabilities,
} from "../dns/provider.ts";
import { ZonedDnsProvider } from "../dns/zoned.ts";
import { providerFor, zoneFor } from "../config/dns_zones.ts";
import type { WorkerDnsProvider, WorkerSettings } from "./messages.ts";

/** The propagation check's servers for the provider serving `fqdn` (see `WorkerSettings.checkServers`). */
export function checkServersFor(fqdn: string, settings: WorkerSettings): string[] {
  const zone = settings.dns === null ? null : zoneFor(normalizeDnsName(fqdn), settings.dns);
  return settings.checkServers[zone ?? ""] ?? [];
}

/**
 * Refuses an order whose challenges cannot all be published at once: a provider keeping N values (acme-dns
 * keeps 2 per account, whatever names are delegated to it) would lose the first before the CA checks them.
 * Counted per provider instance (one acme-dns account each).
 */
export function checkValueLimit(names: string[], dns: DnsSide): void {
  const byProvider = new Map<DnsProvider, number>();
  for (const name of names) {
    const provider = dns.providerOf(challengeRecordName(name));
    byProvider.set(provider, (byProvider.get(provider) ?? 0) + 1);
  }
  for (const [provider, count] of byProvider) {
    const limit = providerCapabilities(provider).maxValuesPerName;
    if (limit !== null && count > limit) {
      throw new Error(
        `${
          names.join(", ")
        } need ${count} DNS-01 values at once at one ${provider.name} account, which keeps ` +
          `${limit}: give these names their own acme-dns accounts in dns.zones (one per name and its wildcard)`,
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

/** A job's DNS providers behind one router (`provider`), and which of them serves a name. */
export interface DnsSide {
  provider: DnsProvider;
  /** Whether a DNS provider serves `name` (a certificate name). */
  serves(name: string): boolean;
  /** The provider serving `fqdn` (an `_acme-challenge` name). */
  providerOf(fqdn: string): DnsProvider;
  /**
   * Checks, once per job and provider, the providers serving `names` (certificate names): a provider with a
   * bad token fails its own certificates only. `jobNames` are every name of the job, verified together.
   */
  verify(names: string[], jobNames: string[]): Promise<void>;
}

/** The DNS providers `settings.dns` names, behind one router, and which names they serve. */
export async function dnsProviders(settings: WorkerSettings): Promise<DnsSide> {
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
  const verified = new Map<DnsProvider, Promise<void>>();
  const side: DnsSide = {
    provider: dns.zones.length === 0 ? built.get(dns.default!)! : zoned,
    serves: (name) => providerFor(normalizeDnsName(name), dns) !== null,
    providerOf: (fqdn) => zoned.providerFor(fqdn),
    async verify(names, jobNames) {
      for (const provider of new Set(names.map((name) => side.providerOf(challengeRecordName(name))))) {
        let check = verified.get(provider);
        if (check === undefined) {
          const fqdns = jobNames.map(challengeRecordName).filter((fqdn) =>
            side.providerOf(fqdn) === provider
          );
          check = provider.verify(fqdns);
          verified.set(provider, check);
        }
        await check;
      }
    },
  };
  return side;
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
    case "unavailable":
      return unavailableProvider(entry.reason);
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

/** A provider the job cannot use: every call fails with `reason` (safe to log: no secret in it). */
function unavailableProvider(reason: string): DnsProvider {
  const fail = () =>
    Promise.reject(new DnsProviderError("credentials", `This DNS provider cannot be used: ${reason}`));
  return {
    name: "unavailable",
    verify: fail,
    findZone: fail,
    createTxtRecord: fail,
    deleteTxtRecord: fail,
    cleanupStale: fail,
  };
}
