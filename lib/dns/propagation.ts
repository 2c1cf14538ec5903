// Waiting for a DNS-01 TXT record to become visible where the CA will look: at the zone's authoritative
// nameservers (found through NS queries), or at configured resolvers (`acme.dns_resolvers`) instead. It polls
// with Deno.resolveDns until every server shows the value or a deadline passes. It does not create records
// (DnsProvider does) and caches nothing between calls.

import { errorMessage } from "../error_message.ts";
import { sleep as abortableSleep } from "../sleep.ts";
import {
  DnsLookup,
  findNameServers,
  type NameServer,
  parseResolver,
  type TxtAnswer,
} from "./name_servers.ts";
import { normalizeDnsName } from "./provider.ts";

/**
 * Timing: Let's Encrypt validates from several places against the authoritative servers, and Cloudflare's
 * usually answer with a new record within seconds, so polling every 2 s keeps the wait short without
 * flooding them; 2 minutes covers slow publication while keeping a stuck order from holding the worker. One
 * query may take 5 s (UDP loss, a slow server) before it counts as "no answer this round".
 */
export const DEFAULT_PROPAGATION_TIMEOUT_MS = 120_000;
export const DEFAULT_POLL_INTERVAL_MS = 2_000;
const DEFAULT_QUERY_TIMEOUT_MS = 5_000;

export interface WaitForTxtOptions {
  /**
   * Resolvers to ask instead of the zone's authoritative servers, as "host", "host:port", "[ipv6]" or
   * "[ipv6]:port" (port 53 by default; the form `acme.dns_resolvers` holds). Empty or absent: authoritative.
   */
  resolvers?: readonly string[];
  /** The zone apex (`DnsProvider.findZone()`); absent: found by asking for NS records up `fqdn`'s labels. */
  zone?: string;
  /** Give up after this many ms; default 2 minutes. */
  timeoutMs?: number;
  /** Ms between polls; default 2 s. */
  intervalMs?: number;
  /** Longest one DNS query may take, in ms; default 5 s. */
  queryTimeoutMs?: number;
  /** Aborts the wait (rejects with the signal's reason), e.g. on shutdown. */
  signal?: AbortSignal;
  /** Seams for tests: the resolver, the clock and the pause between polls. */
  resolveDns?: typeof Deno.resolveDns;
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** Thrown by `waitForTxt()` when the deadline passes; names the servers that never showed the value. */
export class DnsPropagationError extends Error {
  readonly fqdn: string;
  readonly value: string;
  /** "address:port (name)" of each server that did not show the value, with its last answer. */
  readonly pending: string[];

  constructor(fqdn: string, value: string, pending: string[], message: string) {
    super(message);
    this.name = "DnsPropagationError";
    this.fqdn = fqdn;
    this.value = value;
    this.pending = pending;
  }
}

/**
 * Resolves once every server to ask (configured resolvers, else each authoritative nameserver of the zone)
 * answers a TXT query for `fqdn` with `value` among its records. Polls every `intervalMs`; a server that has
 * shown the value is not asked again. Throws `DnsPropagationError` after `timeoutMs`, naming the record and
 * each server that did not show it with its last answer; rejects with the signal's reason when aborted, and
 * with a TypeError at once for a malformed resolver.
 */
export async function waitForTxt(
  fqdn: string,
  value: string,
  options: WaitForTxtOptions = {},
): Promise<void> {
  const name = normalizeDnsName(fqdn);
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? abortableSleep;
  const timeoutMs = options.timeoutMs ?? DEFAULT_PROPAGATION_TIMEOUT_MS;
  const deadline = now() + timeoutMs;
  const queryTimeoutMs = options.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS;
  const lookup = new DnsLookup({
    resolveDns: options.resolveDns ?? Deno.resolveDns,
    queryTimeoutMs,
    deadline,
    now,
    signal: options.signal,
  });
  const resolvers = (options.resolvers ?? []).map(parseResolver);
  let servers: NameServer[] | null = null;
  let discoveryError = "";
  const lastAnswer = new Map<string, string>();
  const confirmed = new Set<string>();
  for (;;) {
    options.signal?.throwIfAborted();
    if (servers === null) {
      try {
        servers = await findNameServers(name, { resolvers, zone: options.zone, lookup });
      } catch (error) {
        discoveryError = errorMessage(error);
      }
    }
    if (servers !== null) {
      // The last round starts at the deadline, so its queries get a millisecond (DnsLookup never runs past
      // the deadline). A query cut short like that says nothing about the server: its failure must not
      // replace what the server did answer, or every timeout would read "no answer within 1 ms".
      const cutShort = deadline - now() < queryTimeoutMs;
      const pending = servers.filter((server) => !confirmed.has(server.label));
      await Promise.all(pending.map(async (server) => {
        const answer = await lookup.txt(name, server);
        if (answer.values?.includes(value)) confirmed.add(server.label);
        else if (!(cutShort && answer.values === null && lastAnswer.has(server.label))) {
          lastAnswer.set(server.label, describeAnswer(answer));
        }
      }));
      if (confirmed.size === servers.length) return;
    }
    const remaining = deadline - now();
    if (remaining <= 0) {
      throw timeoutError(name, value, timeoutMs, servers, confirmed, lastAnswer, discoveryError);
    }
    await sleep(Math.min(options.intervalMs ?? DEFAULT_POLL_INTERVAL_MS, remaining), options.signal);
  }
}

function timeoutError(
  name: string,
  value: string,
  timeoutMs: number,
  servers: NameServer[] | null,
  confirmed: Set<string>,
  lastAnswer: Map<string, string>,
  discoveryError: string,
): DnsPropagationError {
  const record = `TXT record "${name}" with value ${JSON.stringify(value)}`;
  const seconds = timeoutMs % 1000 === 0 ? `${timeoutMs / 1000} s` : `${timeoutMs} ms`;
  if (servers === null) {
    return new DnsPropagationError(
      name,
      value,
      [],
      `Cannot check ${record}: found no DNS servers to ask within ${seconds} (${discoveryError}); ` +
        `set acme.dns_resolvers to resolvers that can see the zone`,
    );
  }
  const pending = servers.filter((server) => !confirmed.has(server.label))
    .map((server) => `${server.label}: ${lastAnswer.get(server.label) ?? "no answer"}`);
  const pendingText = pending.join("; ");
  return new DnsPropagationError(
    name,
    value,
    pending,
    `${record} did not appear within ${seconds} at ${pending.length} of ${servers.length} DNS servers ` +
      `(${pendingText}); check that the DNS provider published it and that these servers serve its zone`,
  );
}

function describeAnswer(answer: TxtAnswer): string {
  if (answer.error !== null) return answer.error;
  if (answer.values === null || answer.values.length === 0) return "no TXT record";
  return `other values ${answer.values.map((value) => JSON.stringify(value)).join(", ")}`;
}
