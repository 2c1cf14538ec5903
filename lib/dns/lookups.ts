// Two DNS questions the exec provider cannot ask its hook (lego's exec protocol has no "list" and no "zone"):
// the TXT values at a name and the zone apex holding it, asked of the servers the propagation check uses
// (the zones' authoritative servers, or `acme.dns_resolvers`). It answers; it never changes a record.

import { DnsLookup, type NameServer, parseResolver } from "./name_servers.ts";
import { normalizeDnsName } from "./provider.ts";

/** One query may take 5 s and the whole question 20 s: a crashed run's leftovers are not worth more. */
const QUERY_TIMEOUT_MS = 5_000;
const TOTAL_TIMEOUT_MS = 20_000;

function servers(resolvers: readonly string[]): NameServer[] {
  return resolvers.map((resolver) => {
    const { host, port } = parseResolver(resolver);
    return { ipAddr: host, port, label: `${host}:${port}` };
  });
}

function newLookup(): DnsLookup {
  return new DnsLookup({
    resolveDns: Deno.resolveDns,
    queryTimeoutMs: QUERY_TIMEOUT_MS,
    deadline: Date.now() + TOTAL_TIMEOUT_MS,
    now: Date.now,
    signal: undefined,
  });
}

/**
 * Every TXT value at `fqdn` that any of `resolvers` ("host:port" IP addresses) serves. Throws when none of
 * them answered, or when there are no resolvers to ask.
 */
export async function lookupTxt(fqdn: string, resolvers: readonly string[]): Promise<string[]> {
  if (resolvers.length === 0) throw new Error("no DNS server to ask (set acme.dns_resolvers)");
  const lookup = newLookup();
  const values = new Set<string>();
  const errors: string[] = [];
  for (const server of servers(resolvers)) {
    const answer = await lookup.txt(normalizeDnsName(fqdn), server);
    if (answer.values === null) errors.push(`${server.label}: ${answer.error}`);
    else for (const value of answer.values) values.add(value);
  }
  if (errors.length === resolvers.length) throw new Error(errors.join("; "));
  return [...values];
}

/**
 * The zone apex holding `fqdn`: the longest parent (two labels or more, no "_" label) with NS records at the
 * first of `resolvers` that answers (authoritative servers answer NS for their own zone). Throws when none.
 */
export async function lookupZone(fqdn: string, resolvers: readonly string[]): Promise<string> {
  const [server] = servers(resolvers);
  if (server === undefined) throw new Error("no DNS server to ask (set acme.dns_resolvers)");
  const labels = normalizeDnsName(fqdn).split(".");
  for (let i = 0; i <= labels.length - 2; i++) {
    if (labels[i]!.startsWith("_")) continue;
    const zone = labels.slice(i).join(".");
    try {
      const names = await Deno.resolveDns(zone, "NS", {
        nameServer: { ipAddr: server.ipAddr, port: server.port },
        signal: AbortSignal.timeout(QUERY_TIMEOUT_MS),
      });
      if (names.length > 0) return zone;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  throw new Error(`no NS records for any parent of ${fqdn} at ${server.label}`);
}
