// One DnsProvider over several (`dns.zones`): each name goes to the provider of the most specific zone that
// holds it, else to the default one. It routes only; the providers keep their own contracts, and a name no
// provider serves fails as zone_not_found.

import { dnsProviders, providerFor } from "../config/dns_zones.ts";
import {
  assertChallengeName,
  type DnsProvider,
  type DnsProviderCapabilities,
  DnsProviderError,
  normalizeDnsName,
  providerCapabilities,
  providerRecordName,
  type TxtRecordHandle,
} from "./provider.ts";

/** The providers by zone, longest zone first, and the one for every other name (or null). */
export interface ZonedProviders {
  default: DnsProvider | null;
  zones: ReadonlyArray<{ zone: string; provider: DnsProvider }>;
}

/**
 * Routes each call to the provider serving its name. Handles are the chosen provider's own, so a handle
 * written to disk deletes through the same provider after a restart, as long as the zones are the same.
 */
export class ZonedDnsProvider implements DnsProvider {
  readonly name: string;
  readonly #providers: ZonedProviders;

  constructor(providers: ZonedProviders) {
    this.#providers = providers;
    this.name = [...new Set(dnsProviders(providers).map((provider) => provider.name))].join("+");
  }

  /** The provider for `fqdn`; throws zone_not_found naming the name when none serves it. */
  providerFor(fqdn: string): DnsProvider {
    const name = normalizeDnsName(fqdn).replace(/^_acme-challenge\./, "");
    const provider = providerFor(name, this.#providers);
    if (provider === null) {
      throw new DnsProviderError(
        "zone_not_found",
        `No DNS provider serves "${name}": add its zone to dns.zones, or set dns.provider for every other name`,
      );
    }
    return provider;
  }

  /** The weakest of the providers' capabilities: deletes only if every one deletes, the smallest limit. */
  get capabilities(): DnsProviderCapabilities {
    const all = dnsProviders(this.#providers).map(providerCapabilities);
    const limits = all.flatMap((c) => c.maxValuesPerName === null ? [] : [c.maxValuesPerName]);
    return {
      deletes: all.every((c) => c.deletes),
      maxValuesPerName: limits.length === 0 ? null : Math.min(...limits),
    };
  }

  /** Where the serving provider keeps the record of `fqdn` (acme-dns: its own domain). */
  recordName(fqdn: string): string {
    return providerRecordName(this.providerFor(fqdn), fqdn);
  }

  async verify(fqdns?: readonly string[]): Promise<void> {
    if (fqdns === undefined) {
      for (const provider of dnsProviders(this.#providers)) await provider.verify();
      return;
    }
    const byProvider = new Map<DnsProvider, string[]>();
    for (const fqdn of fqdns) {
      const provider = this.providerFor(fqdn);
      byProvider.set(provider, [...byProvider.get(provider) ?? [], fqdn]);
    }
    for (const [provider, names] of byProvider) await provider.verify(names);
  }

  async findZone(fqdn: string): Promise<string> {
    return await this.providerFor(fqdn).findZone(fqdn);
  }

  async createTxtRecord(fqdn: string, value: string): Promise<TxtRecordHandle> {
    return await this.providerFor(fqdn).createTxtRecord(fqdn, value);
  }

  async deleteTxtRecord(handle: TxtRecordHandle): Promise<void> {
    return await this.providerFor(handle.fqdn).deleteTxtRecord(handle);
  }

  async cleanupStale(fqdn: string): Promise<number> {
    return await this.providerFor(assertChallengeName(fqdn)).cleanupStale(fqdn);
  }
}
