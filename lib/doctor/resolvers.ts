// The DNS servers `nexo doctor` asks, and asking them: the configured `acme.dns_resolvers` (else this
// machine's resolver and two public ones), plus the authoritative servers of each zone, found through NS
// queries the way the propagation check finds them. Every query has a timeout and never throws.

import { errorMessage } from "../error_message.ts";
import { DnsLookup, findNameServers, parseResolver } from "../dns/name_servers.ts";
import { RCODES } from "../dns/dns_update.ts";
import { queryRcode } from "./dns_rcode.ts";
import { ipVersion } from "../ip_address.ts";

/** Longest one query may take: a server that has not answered in 3 s is as good as down for this report. */
const QUERY_TIMEOUT_MS = 3_000;

/** Public resolvers asked when `acme.dns_resolvers` is empty: what the rest of the world sees. */
const PUBLIC_RESOLVERS = ["1.1.1.1", "8.8.8.8"];

/** One server to ask; no `nameServer`: this machine's resolver (/etc/resolv.conf). */
export interface DnsServer {
  label: string;
  nameServer?: { ipAddr: string; port: number };
  /** One of the zone's own servers (its answers are the records as they are now). */
  authoritative?: boolean;
}

/** An answer: the records, [] for none (NXDOMAIN, NODATA), or why the query failed. */
export type Answer<T> = { records: T[] } | { error: string };

/** What a query of `T` returns per record. */
export type RecordOf<T extends string> = T extends "CAA" ? Deno.CaaRecord : string;

/** Asks DNS servers, with `resolveDns` as the seam. */
export class DnsAsker {
  readonly #resolve: typeof Deno.resolveDns;

  constructor(resolveDns: typeof Deno.resolveDns = Deno.resolveDns) {
    this.#resolve = resolveDns;
  }

  /** The `type` records of `name` at `server`, within the query timeout. */
  async ask<T extends "A" | "AAAA" | "CAA" | "NS">(
    name: string,
    type: T,
    server: DnsServer,
  ): Promise<Answer<RecordOf<T>>> {
    try {
      const records = await this.#resolve(name, type as "A", {
        ...(server.nameServer ? { nameServer: server.nameServer } : {}),
        signal: AbortSignal.timeout(QUERY_TIMEOUT_MS),
      });
      return { records: records as unknown as RecordOf<T>[] };
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        // Deno says NotFound for SERVFAIL and REFUSED too; ask the server itself where doctor knows it.
        const rcode = server.nameServer
          ? await queryRcode(name, type, server.nameServer, QUERY_TIMEOUT_MS)
          : null;
        if (rcode !== null && rcode !== 0 && rcode !== 3) {
          return { error: `the server answered ${RCODES[rcode] ?? `RCODE ${rcode}`}` };
        }
        return { records: [] };
      }
      const reason = error instanceof DOMException && error.name === "TimeoutError"
        ? `no answer within ${QUERY_TIMEOUT_MS / 1000} s`
        : errorMessage(error);
      return { error: reason };
    }
  }

  /**
   * The recursive servers to compare: each of `configured` (`acme.dns_resolvers`, host names resolved by this
   * machine), else this machine's resolver and the public ones. Throws a TypeError for a malformed entry
   * (the config parser has already refused those).
   */
  async recursiveServers(configured: readonly string[]): Promise<DnsServer[]> {
    if (configured.length === 0) {
      return [
        { label: "this machine's resolver" },
        ...PUBLIC_RESOLVERS.map((ip) => ({ label: ip, nameServer: { ipAddr: ip, port: 53 } })),
      ];
    }
    const servers: DnsServer[] = [];
    for (const text of configured) {
      const { host, port } = parseResolver(text);
      const found = await this.ask(host, "A", { label: "this machine's resolver" });
      const ipAddr = ipVersion(host) !== 0
        ? host
        : "records" in found && found.records[0] !== undefined
        ? found.records[0]
        : null;
      if (ipAddr !== null) {
        servers.push({ label: `${text} (acme.dns_resolvers)`, nameServer: { ipAddr, port } });
      }
    }
    return servers;
  }

  /**
   * The authoritative servers of the zone holding `name`, found by NS queries sent to `via` (the first
   * recursive server); throws an Error saying why none was found.
   */
  async authoritativeServers(name: string, via: DnsServer): Promise<DnsServer[]> {
    const resolveDns =
      ((query: string, type: "NS" | "A" | "AAAA", options?: Deno.ResolveDnsOptions) =>
        this.#resolve(query, type, {
          ...options,
          ...(via.nameServer && !options?.nameServer ? { nameServer: via.nameServer } : {}),
        })) as typeof Deno.resolveDns;
    const lookup = new DnsLookup({
      resolveDns,
      queryTimeoutMs: QUERY_TIMEOUT_MS,
      deadline: Date.now() + 4 * QUERY_TIMEOUT_MS,
      now: Date.now,
      signal: undefined,
    });
    const servers = await findNameServers(name, { resolvers: [], zone: undefined, lookup });
    return servers.map((server) => ({
      label: `${server.label}, authoritative`,
      nameServer: { ipAddr: server.ipAddr, port: server.port },
      authoritative: true,
    }));
  }
}
