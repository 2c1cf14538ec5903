// `rate_limit`: a token bucket per client, in a table of bounded size. Pure: the caller passes the time.

import { parseIp } from "../cidr.ts";
import type { RateLimit } from "../config/types.ts";

/**
 * Clients tracked per route at most. Past it the least recently seen client is forgotten (it starts again with
 * a full bucket): an attacker with many addresses cannot grow memory, only reset the buckets of clients
 * quieter than all of its own addresses. Measured (tests/access_test.ts): a full table under a stream of new
 * addresses holds nexo about 10 MiB above the same traffic without a limit (a Map entry, a key string and a
 * bucket, with the collector's slack for their churn: about 1 KiB a client), and stays there.
 */
export const MAX_TRACKED_CLIENTS = 10_000;

interface Bucket {
  tokens: number;
  updatedMs: number;
}

export class RateLimiter {
  readonly limit: RateLimit;
  readonly #buckets = new Map<string, Bucket>();
  readonly #maxClients: number;
  /** Tokens per ms. */
  readonly #rate: number;

  constructor(limit: RateLimit, maxClients = MAX_TRACKED_CLIENTS) {
    this.limit = limit;
    this.#maxClients = maxClients;
    this.#rate = limit.requests / limit.perMs;
  }

  /** Clients tracked now. */
  get size(): number {
    return this.#buckets.size;
  }

  /**
   * Takes one request's token for `client` at `nowMs`: 0 when the request may go on, else the whole seconds
   * until a token is back (for Retry-After).
   */
  take(client: string, nowMs: number): number {
    const key = clientKey(client);
    let bucket = this.#buckets.get(key);
    if (bucket !== undefined) {
      bucket.tokens = Math.min(
        this.limit.burst,
        bucket.tokens + Math.max(0, nowMs - bucket.updatedMs) * this.#rate,
      );
      // Delete and set again: the Map's order is then least recently seen first, which eviction relies on.
      this.#buckets.delete(key);
    } else {
      if (this.#buckets.size >= this.#maxClients) this.#buckets.delete(this.#buckets.keys().next().value!);
      bucket = { tokens: this.limit.burst, updatedMs: nowMs };
    }
    bucket.updatedMs = nowMs;
    this.#buckets.set(key, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.#rate / 1000));
  }
}

/**
 * What a bucket is kept per: the address, or an IPv6 address's /64. One IPv6 host is routinely given a whole
 * /64, so per address the limit would not limit it.
 */
export function clientKey(client: string): string {
  const bytes = parseIp(client);
  if (bytes === null) return client;
  if (bytes.length === 4) return bytes.join("."); // "::ffff:192.0.2.1" is 192.0.2.1
  let key = "";
  for (let i = 0; i < 8; i += 2) key += ((bytes[i]! << 8) | bytes[i + 1]!).toString(16) + ":";
  return key + ":/64";
}
