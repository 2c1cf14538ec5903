// Which DNS servers a propagation check asks and how it asks them: configured resolvers parsed from "host:port"
// strings, or a zone's authoritative nameservers found through NS and A/AAAA queries, and Deno.resolveDns
// wrapped with per-query timeouts. It does not poll or decide when a record counts as visible (propagation.ts).

import { errorMessage } from "../error_message.ts";
import { ipVersion, isIpv6Address } from "../ip_address.ts";
import { normalizeDnsName } from "./provider.ts";
import { startTimer, stopTimer } from "../timers.ts";

const DNS_PORT = 53;

/** A server to query. */
export interface NameServer {
  ipAddr: string;
  port: number;
  /** "198.51.100.1:53 (ns1.example.net)" or "127.0.0.1:8053": how messages name it. */
  label: string;
}

/**
 * The servers to ask about `name`: the configured `resolvers` (host names resolved to an address), or else the
 * authoritative nameservers of `zone` (or of the zone found by walking up `name`). Throws an Error saying why
 * none was found; the caller retries until its deadline.
 */
export async function findNameServers(
  name: string,
  options: { resolvers: Resolver[]; zone: string | undefined; lookup: DnsLookup },
): Promise<NameServer[]> {
  const { resolvers, zone: zoneOption, lookup } = options;
  if (resolvers.length > 0) {
    const servers: NameServer[] = [];
    for (const { host, port } of resolvers) {
      const address = ipVersion(host) !== 0 ? host : await lookup.address(host);
      if (address === null) throw new Error(`the DNS resolver host ${JSON.stringify(host)} has no address`);
      servers.push({
        ipAddr: address,
        port,
        label: address === host ? `${host}:${port}` : `${address}:${port} (${host})`,
      });
    }
    return servers;
  }
  const { zone, nsNames } = zoneOption !== undefined
    ? { zone: normalizeDnsName(zoneOption), nsNames: await lookup.ns(normalizeDnsName(zoneOption)) }
    : await findZoneApex(name, lookup);
  if (nsNames.length === 0) throw new Error(`the zone ${zone} has no NS records`);
  const servers: NameServer[] = [];
  for (const nsName of nsNames) {
    const address = await lookup.address(nsName);
    if (address !== null) {
      servers.push({ ipAddr: address, port: DNS_PORT, label: `${address}:${DNS_PORT} (${nsName})` });
    }
  }
  if (servers.length === 0) {
    throw new Error(`no address found for the nameservers of ${zone}: ${nsNames.join(", ")}`);
  }
  return servers;
}

/**
 * The longest suffix of `name` (two labels or more, no "_" label) that has NS records, the zone apex, with
 * those records; asked of the system resolver, or of `server` (an authoritative server answers NS for its
 * own zone). Throws when there is none.
 */
export async function findZoneApex(
  name: string,
  lookup: DnsLookup,
  server?: NameServer,
): Promise<{ zone: string; nsNames: string[] }> {
  const labels = name.split(".");
  for (let i = 0; i <= labels.length - 2; i++) {
    if (labels[i]?.startsWith("_")) continue;
    const zone = labels.slice(i).join(".");
    const nsNames = await lookup.ns(zone, server);
    if (nsNames.length > 0) return { zone, nsNames };
  }
  throw new Error(`no NS records found for any parent of ${name}${server ? ` at ${server.label}` : ""}`);
}

/** A configured resolver, parsed. */
export interface Resolver {
  host: string;
  port: number;
}

/**
 * Parses "host", "host:port", "[v6]", "[v6]:port" (or a bare IPv6 address); throws a TypeError naming a
 * malformed one at once, since waiting cannot fix it.
 */
export function parseResolver(resolver: string): Resolver {
  const text = resolver.trim();
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  const plain = /^([^:\[\]]+)(?::(\d+))?$/.exec(text);
  const bareV6 = isIpv6Address(text);
  const host = bracketed?.[1] ?? (bareV6 ? text : plain?.[1]);
  const portText = bracketed?.[2] ?? (bareV6 ? undefined : plain?.[2]);
  const port = portText === undefined ? DNS_PORT : Number(portText);
  if (host === undefined || !(port > 0 && port < 65536)) {
    const quoted = JSON.stringify(resolver);
    throw new TypeError(
      `invalid DNS resolver ${quoted}: write it like "1.1.1.1", "127.0.0.1:8053" or "[::1]:53"`,
    );
  }
  return { host, port };
}

/** One server's answer: the values (null when the query failed) or why the query failed. */
export interface TxtAnswer {
  values: string[] | null;
  error: string | null;
}

export interface DnsLookupOptions {
  resolveDns: typeof Deno.resolveDns;
  /** Longest one query may take, in ms. */
  queryTimeoutMs: number;
  /** No query runs past this time (ms since the epoch, by `now`). */
  deadline: number;
  now: () => number;
  /** Aborts every query in flight; they reject with its reason. */
  signal: AbortSignal | undefined;
}

/** Deno.resolveDns with a per-query timeout bounded by an overall deadline, and an abort signal. */
export class DnsLookup {
  #resolve: typeof Deno.resolveDns;
  #queryTimeoutMs: number;
  #deadline: number;
  #now: () => number;
  #signal: AbortSignal | undefined;

  constructor(options: DnsLookupOptions) {
    this.#resolve = options.resolveDns;
    this.#queryTimeoutMs = options.queryTimeoutMs;
    this.#deadline = options.deadline;
    this.#now = options.now;
    this.#signal = options.signal;
  }

  /** The TXT values at `name` on `server` (each record's strings joined, RFC 1035 §3.3.14). */
  async txt(name: string, server: NameServer): Promise<TxtAnswer> {
    try {
      const records = await this.#query((signal) =>
        this.#resolve(name, "TXT", { nameServer: { ipAddr: server.ipAddr, port: server.port }, signal })
      );
      return { values: records.map((chunks) => chunks.join("")), error: null };
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return { values: [], error: null };
      this.#signal?.throwIfAborted();
      return { values: null, error: errorMessage(error) };
    }
  }

  /** NS names of `zone` from the system resolver, or from `server`; [] when it has none. */
  async ns(zone: string, server?: NameServer): Promise<string[]> {
    const nameServer = server === undefined
      ? {}
      : { nameServer: { ipAddr: server.ipAddr, port: server.port } };
    try {
      const names = await this.#query((signal) => this.#resolve(zone, "NS", { ...nameServer, signal }));
      return names.map(normalizeDnsName);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return [];
      throw error;
    }
  }

  /** An IPv4 address of `host`, else an IPv6 one, else null. */
  async address(host: string): Promise<string | null> {
    if (host === "localhost") return "127.0.0.1";
    for (const type of ["A", "AAAA"] as const) {
      try {
        const [address] = await this.#query((signal) => this.#resolve(host, type, { signal }));
        if (address !== undefined) return address;
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      }
    }
    return null;
  }

  async #query<T>(run: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const controller = new AbortController();
    const limit = Math.max(1, Math.min(this.#queryTimeoutMs, this.#deadline - this.#now()));
    const timer = startTimer(() => controller.abort(new Error(`no answer within ${limit} ms`)), limit);
    const onAbort = () => controller.abort(this.#signal?.reason);
    this.#signal?.addEventListener("abort", onAbort, { once: true });
    try {
      return await run(controller.signal);
    } catch (error) {
      // Deno rejects an aborted query with a generic AbortError; report our reason (the timeout) instead.
      if (controller.signal.aborted) throw controller.signal.reason;
      throw error;
    } finally {
      stopTimer(timer);
      this.#signal?.removeEventListener("abort", onAbort);
    }
  }
}
