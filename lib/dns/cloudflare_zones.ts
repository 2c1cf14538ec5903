// Which Cloudflare zone holds a name: the configured zone (`cloudflare.zone_id`), or the most specific suffix
// of the name that GET /zones?name= finds, cached per zone name (in-flight lookups shared). It does not touch
// DNS records (cloudflare.ts does) or speak HTTP itself (cloudflare_api.ts).

import { type CloudflareApi, TOKEN_PAGE } from "./cloudflare_api.ts";
import { DnsProviderError, normalizeDnsName } from "./provider.ts";

/**
 * A name found to hold no zone is remembered for a minute, so a burst of orders does not repeat the same
 * misses, while a zone added to the account is picked up soon after.
 */
const MISSING_ZONE_CACHE_MS = 60_000;

const ZONE_READ_HINT =
  `the API token needs the Zone:Zone:Read permission (and Zone:DNS:Edit) on this zone: edit it at ${TOKEN_PAGE}`;

/** A zone as the API returns it (other fields ignored); `name` normalized. */
export interface CloudflareZone {
  id: string;
  name: string;
}

/**
 * Zone lookups for one token. Found zones are cached for the object's life (a zone's id never changes while it
 * exists); calls may overlap.
 */
export class CloudflareZones {
  #api: CloudflareApi;
  #zoneId: string | null;
  #now: () => number;
  #configured: Promise<CloudflareZone> | null = null;
  #byNameCache = new Map<string, { zone: Promise<CloudflareZone | null>; expires: number }>();

  constructor(api: CloudflareApi, options: { zoneId: string | null; now: () => number }) {
    this.#api = api;
    this.#zoneId = options.zoneId;
    this.#now = options.now;
  }

  /**
   * The zone holding `name` (normalized): the configured one, or the longest suffix of `name` that is a zone.
   * Throws a DnsProviderError: "zone_not_found" naming the names looked up, or the API's error.
   */
  async zoneFor(name: string): Promise<CloudflareZone> {
    if (this.#zoneId !== null) {
      const zone = await this.#byId(this.#zoneId);
      if (!isWithin(name, zone.name)) {
        throw new DnsProviderError(
          "zone_not_found",
          `Cannot use Cloudflare zone ${zone.name} (cloudflare.zone_id ${this.#zoneId}) for "${name}": the name is ` +
            `outside that zone (remove cloudflare.zone_id to look zones up by name)`,
        );
      }
      return zone;
    }
    const candidates = zoneCandidates(name);
    for (const candidate of candidates) {
      const zone = await this.#byName(candidate);
      if (zone !== null) return zone;
    }
    const looked = candidates.join(", ") || "no candidate";
    throw new DnsProviderError(
      "zone_not_found",
      `Cannot find the Cloudflare zone of "${name}" (looked up ${looked}): add ` +
        `the domain to the Cloudflare account, make sure the API token's Zone Resources include it (with ` +
        `Zone:Zone:Read), or set cloudflare.zone_id`,
    );
  }

  /**
   * Drops `zone` from the cache, so the next call looks it up again: for when the API refused a request on it
   * (the zone may have been deleted and added again under a new id).
   */
  forget(zone: CloudflareZone): void {
    this.#byNameCache.delete(zone.name);
    this.#configured = null;
  }

  /** GET /zones?name= for one candidate; concurrent lookups of one name share a request. */
  #byName(candidate: string): Promise<CloudflareZone | null> {
    const cached = this.#byNameCache.get(candidate);
    if (cached !== undefined && cached.expires > this.#now()) return cached.zone;
    const zone = this.#api.expect<CloudflareZone[]>(`look up the Cloudflare zone "${candidate}"`, {
      method: "GET",
      path: `/zones?${new URLSearchParams({ name: candidate })}`,
      deniedHint: ZONE_READ_HINT,
    }).then((response) => {
      const found = response.result.find((zone) => normalizeDnsName(zone.name) === candidate);
      return found === undefined ? null : { id: found.id, name: candidate };
    });
    const entry = { zone, expires: Infinity };
    this.#byNameCache.set(candidate, entry);
    zone.then(
      (found) => {
        if (found === null) entry.expires = this.#now() + MISSING_ZONE_CACHE_MS;
      },
      () => {
        if (this.#byNameCache.get(candidate) === entry) this.#byNameCache.delete(candidate);
      },
    );
    return zone;
  }

  #byId(id: string): Promise<CloudflareZone> {
    if (this.#configured !== null) return this.#configured;
    const zone = this.#api.expect<CloudflareZone>(`read Cloudflare zone ${id} (cloudflare.zone_id)`, {
      method: "GET",
      path: `/zones/${encodeURIComponent(id)}`,
      deniedHint: `check cloudflare.zone_id; ${ZONE_READ_HINT}`,
    }).then((response) => ({ id: response.result.id, name: normalizeDnsName(response.result.name) }));
    this.#configured = zone;
    zone.catch(() => {
      if (this.#configured === zone) this.#configured = null;
    });
    return zone;
  }

  /**
   * Any zone the token can see (the configured one, if any), for checking a token without names. Throws a
   * "credentials" DnsProviderError when the token can read no zone.
   */
  async anyZone(): Promise<CloudflareZone> {
    if (this.#zoneId !== null) return await this.#byId(this.#zoneId);
    const response = await this.#api.expect<CloudflareZone[]>(
      "list the Cloudflare zones the API token can read",
      {
        method: "GET",
        path: `/zones?${new URLSearchParams({ per_page: "5" })}`,
        deniedHint: ZONE_READ_HINT,
      },
    );
    const [zone] = response.result;
    if (zone === undefined) {
      throw new DnsProviderError(
        "credentials",
        `The Cloudflare API token can read no zone: it lacks the Zone:Zone:Read permission, or its Zone ` +
          `Resources include none of your zones (edit it at ${TOKEN_PAGE})`,
        { status: response.status },
      );
    }
    return { id: zone.id, name: normalizeDnsName(zone.name) };
  }
}

/**
 * "_acme-challenge.a.example.com" -> ["a.example.com", "example.com"]: suffixes of two labels or more, most
 * specific first, skipping underscore labels (no zone starts with one).
 */
function zoneCandidates(name: string): string[] {
  const labels = name.split(".");
  const candidates: string[] = [];
  for (let i = 0; i <= labels.length - 2; i++) {
    if (labels[i]?.startsWith("_")) continue;
    candidates.push(labels.slice(i).join("."));
  }
  return candidates;
}

function isWithin(name: string, zone: string): boolean {
  return name === zone || name.endsWith(`.${zone}`);
}
