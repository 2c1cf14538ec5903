// Which DNS provider serves a name under `dns:`: the `dns.zones` entry whose zone is the name or one of its
// parents, the longest such zone winning, else the default provider. One rule, used by the config's checks,
// the supervisor (which names need HTTP-01) and the ACME worker's provider router. Pure.

/** Whether `name` is `zone` or a name below it; both lowercase without a trailing dot. */
function isInZone(name: string, zone: string): boolean {
  return name === zone || name.endsWith(`.${zone}`);
}

/**
 * The provider for `name` ("_acme-challenge.www.example.org" or "www.example.org", lowercase, no trailing
 * dot; a wildcard's "*." is ignored): the first of `zones` (sorted longest first) that holds it, else
 * `fallback`, which may be null (no provider serves the name).
 */
export function providerFor<T>(
  name: string,
  dns: { default: T | null; zones: ReadonlyArray<{ zone: string; provider: T }> },
): T | null {
  return zoneEntryFor(name, dns)?.provider ?? dns.default;
}

/** The `dns.zones` key whose provider serves `name` (as `providerFor` reads it), or null for the default's. */
export function zoneFor(name: string, dns: { zones: ReadonlyArray<{ zone: string }> }): string | null {
  return zoneEntryFor(name, dns)?.zone ?? null;
}

function zoneEntryFor<E extends { zone: string }>(
  name: string,
  dns: { zones: ReadonlyArray<E> },
): E | undefined {
  const bare = name.startsWith("*.") ? name.slice(2) : name;
  return dns.zones.find((entry) => isInZone(bare, entry.zone));
}

/** Every provider `dns` names, the default first, then the zones' (longest zone first). */
export function dnsProviders<T>(
  dns: { default: T | null; zones: ReadonlyArray<{ zone: string; provider: T }> } | null,
): T[] {
  if (dns === null) return [];
  return [...(dns.default === null ? [] : [dns.default]), ...dns.zones.map((entry) => entry.provider)];
}
