// DNS questions asked of given servers (the propagation check's, or `acme.dns_resolvers`) rather than found
// through NS records: the TXT values at a name and the zone apex holding it, which the exec provider cannot
// ask its hook (lego's exec protocol has no "list" and no "zone"), and Deno.resolveDns bound to the first
// configured resolver. It answers; it never changes a record.

import { DnsLookup, findNameServers, findZoneApex, type NameServer, parseResolver } from "./name_servers.ts";
import { normalizeDnsName } from "./provider.ts";

/** One query may take 5 s and the whole question 20 s: a crashed run's leftovers are not worth more. */
const QUERY_TIMEOUT_MS = 5_000;
const TOTAL_TIMEOUT_MS = 20_000;

function newLookup(): DnsLookup {
  return new DnsLookup({
    resolveDns: Deno.resolveDns,
    queryTimeoutMs: QUERY_TIMEOUT_MS,
    deadline: Date.now() + TOTAL_TIMEOUT_MS,
    now: Date.now,
    signal: undefined,
  });
}

/** `resolvers` ("host:port") as servers to query, a host name looked up; throws when there is none. */
async function serversOf(
  resolvers: readonly string[],
  name: string,
  lookup: DnsLookup,
): Promise<NameServer[]> {
  if (resolvers.length === 0) throw new Error("no DNS server to ask (set acme.dns_resolvers)");
  return await findNameServers(name, { resolvers: resolvers.map(parseResolver), zone: undefined, lookup });
}

/**
 * Every TXT value at `fqdn` that any of `resolvers` serves. Throws when none of them answered, or when there
 * are no resolvers to ask.
 */
export async function lookupTxt(fqdn: string, resolvers: readonly string[]): Promise<string[]> {
  const name = normalizeDnsName(fqdn);
  const lookup = newLookup();
  const values = new Set<string>();
  const errors: string[] = [];
  for (const server of await serversOf(resolvers, name, lookup)) {
    const answer = await lookup.txt(name, server);
    if (answer.values === null) errors.push(`${server.label}: ${answer.error}`);
    else for (const value of answer.values) values.add(value);
  }
  if (errors.length === resolvers.length) throw new Error(errors.join("; "));
  return [...values];
}

/**
 * The zone apex holding `fqdn`: the longest parent (two labels or more, no "_" label) with NS records at the
 * first of `resolvers` (authoritative servers answer NS for their own zone). Throws when none.
 */
export async function lookupZone(fqdn: string, resolvers: readonly string[]): Promise<string> {
  const name = normalizeDnsName(fqdn);
  const lookup = newLookup();
  const [server] = await serversOf(resolvers.slice(0, 1), name, lookup);
  return (await findZoneApex(name, lookup, server)).zone;
}

/**
 * Deno.resolveDns asking the first of `resolvers` ("host:port" with an IP address, as `acme.dns_resolvers`
 * holds them in tests and behind split DNS), or the system's resolver when there is none.
 */
export function resolveDnsAt(resolvers: readonly string[]): typeof Deno.resolveDns {
  const [first] = resolvers;
  if (first === undefined) return Deno.resolveDns;
  const { host, port } = parseResolver(first);
  return ((query: string, type: Deno.RecordType, options?: Deno.ResolveDnsOptions) =>
    Deno.resolveDns(query, type, {
      ...options,
      nameServer: { ipAddr: host, port },
    })) as typeof Deno.resolveDns;
}
