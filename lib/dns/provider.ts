// The DnsProvider interface: what the ACME code needs from a DNS host to answer DNS-01 challenges (RFC 8555
// §8.4), with the contract every implementation (cloudflare.ts, rfc2136.ts, acme_dns.ts, ...) must keep, the
// capabilities a limited provider declares, and the one error type providers throw. It holds no provider logic
// and does not check propagation (propagation.ts does) or decide when to retry (the scheduler reads `kind`).

import { errorMessage } from "../error_message.ts";

/**
 * The name a DNS-01 challenge's TXT record lives at, for a domain: "example.com" and "*.example.com" both give
 * "_acme-challenge.example.com" (RFC 8555 §8.4: the wildcard's "*." is dropped, so a wildcard and its apex put
 * two values on one name). Lowercase, no trailing dot.
 */
export function challengeRecordName(domain: string): string {
  const base = normalizeDnsName(domain).replace(/^\*\./, "");
  return `${ACME_CHALLENGE_LABEL}.${base}`;
}

/** The label every DNS-01 record name starts with (RFC 8555 §8.4). */
export const ACME_CHALLENGE_LABEL = "_acme-challenge";

/** Lowercases a DNS name and drops a trailing dot: the form handles and providers compare names in. */
export function normalizeDnsName(name: string): string {
  return name.trim().toLowerCase().replace(/\.$/, "");
}

/**
 * What `createTxtRecord()` returns and `deleteTxtRecord()` takes. Plain JSON data (no methods, no secrets),
 * so the ACME worker may keep it in memory, post it between threads or write it to disk and delete the record
 * after a restart.
 */
export interface TxtRecordHandle {
  /** The provider that created it (`DnsProvider.name`); another provider refuses the handle. */
  readonly provider: string;
  /** The record's name, normalized: lowercase, no trailing dot ("_acme-challenge.example.com"). */
  readonly fqdn: string;
  /** The TXT value, exactly as given to `createTxtRecord()`. */
  readonly value: string;
  /** The zone apex the record was created in ("example.com"). */
  readonly zone: string;
  /** Provider-specific identifiers (Cloudflare: `zoneId`, `recordId`); opaque to callers. */
  readonly ref: Readonly<Record<string, string>>;
}

/**
 * A DNS host that can publish the TXT records of DNS-01 challenges. The ACME code calls it; a provider never
 * calls the ACME code. Every implementation guarantees:
 *
 * - Calls may overlap, on different names and on the same name: the ACME worker may run several orders at
 *   once. A provider serializes internally whatever its API needs serialized.
 * - Values coexist: two `createTxtRecord()` calls with the same name and different values publish two TXT
 *   records (a wildcard and its apex, RFC 8555 §8.4); deleting one leaves the other in place. A provider
 *   whose `capabilities.maxValuesPerName` is N keeps the N newest values of a name: creating one more pushes
 *   out the oldest, so a caller keeps at most N challenges of one name pending at once.
 * - `createTxtRecord()` of a name and value that are already published succeeds and returns a handle to the
 *   existing record (a retried order after a crash must not fail on its own leftovers), and does not push out
 *   another value of that name.
 * - `deleteTxtRecord()` is idempotent: deleting a record that is already gone (by us, by a person, by
 *   `cleanupStale()`) resolves. A provider whose `capabilities.deletes` is false cannot remove records: its
 *   `deleteTxtRecord()` resolves without removing anything (later values push the old one out, and a used
 *   challenge value is worthless to anyone else) and its `cleanupStale()` resolves 0.
 * - Names are compared case-insensitively and without a trailing dot; handles carry the normalized form.
 * - Every failure is a `DnsProviderError`, except programming errors (a name outside `_acme-challenge` given to
 *   `cleanupStale()`, a foreign handle), which are `TypeError`s. Messages say what failed, on which name or
 *   zone and what to do, and never contain a credential (API token, key, password), not even a fragment.
 * - A provider does not retry on its own for longer than one request's worth of time: when its API says "slow
 *   down" it throws a `DnsProviderError` of kind "rate_limited" with `retryAfterMs`, and until that time has
 *   passed it fails further calls the same way without sending requests, so a busy caller cannot prolong an
 *   API ban.
 * - A provider prints nothing; callers log.
 */
export interface DnsProvider {
  /** Short lowercase provider name ("cloudflare"), stored in handles and used in log fields. */
  readonly name: string;

  /**
   * What this provider cannot do of the full contract (see `DnsProviderCapabilities`); absent means it keeps
   * all of it. Read it through `providerCapabilities()`.
   */
  readonly capabilities?: DnsProviderCapabilities;

  /**
   * Where the TXT record for `fqdn` really lives, when the provider publishes it under another name that
   * `fqdn` is a CNAME to (acme-dns: "<subdomain>.auth.example.org"); absent or returning `fqdn`: at `fqdn`
   * itself. A propagation check against authoritative servers asks this name (and its zone's servers): the
   * servers of `fqdn`'s zone answer with the CNAME alone (RFC 1034 §4.3.2), which holds no value. A CA's
   * validation, being recursive, follows the CNAME. Pure: no I/O, never throws for a name the provider serves.
   */
  recordName?(fqdn: string): string;

  /**
   * Checks at startup that the credentials work and carry the permissions nexo needs, so a bad token is
   * reported before the first certificate is due. With `fqdns`, also checks that each name's zone is
   * reachable. Throws a `DnsProviderError` of kind "credentials" or "zone_not_found" naming exactly what is
   * missing (which permission, on which zone) and how to fix it.
   */
  verify(fqdns?: readonly string[]): Promise<void>;

  /**
   * The apex of the zone that holds `fqdn` ("example.com" for "_acme-challenge.www.example.com"), as the
   * provider knows it; the propagation checker asks that zone's authoritative nameservers. Throws a
   * `DnsProviderError` of kind "zone_not_found" when the provider manages no zone containing `fqdn`.
   */
  findZone(fqdn: string): Promise<string>;

  /**
   * Publishes a TXT record `value` at `fqdn` ("_acme-challenge.example.com") with a short TTL and resolves once
   * the provider's API has accepted it; it may not be visible in DNS yet (see propagation.ts). Resolves with a
   * handle for `deleteTxtRecord()`. Throws a `DnsProviderError` on failure; nothing was created then.
   */
  createTxtRecord(fqdn: string, value: string): Promise<TxtRecordHandle>;

  /**
   * Removes the record `handle` names, and only that one (other values on the same name stay). Resolves when
   * the record is gone, including when it was already gone. Throws a `DnsProviderError` on failure, a
   * `TypeError` for a handle another provider created. Without `capabilities.deletes`: checks the handle the
   * same way, then resolves without removing anything.
   */
  deleteTxtRecord(handle: TxtRecordHandle): Promise<void>;

  /**
   * Removes every TXT record at `fqdn` (which must be an `_acme-challenge.` name, or this throws a `TypeError`)
   * left behind by a crashed run, and resolves with how many it removed. Call it only while no order for that
   * name is in progress: it also removes records a running order still needs. Without
   * `capabilities.deletes`: checks the name the same way (and its zone), then resolves 0.
   */
  cleanupStale(fqdn: string): Promise<number>;
}

/**
 * The parts of the contract a provider's DNS host cannot keep. acme-dns, for one, has no delete, no list
 * and two TXT slots per account; the ACME code works with that as long as it keeps at most
 * `maxValuesPerName` challenges of a name pending at once (an apex and its wildcard need two).
 */
export interface DnsProviderCapabilities {
  /** false: records cannot be removed; `deleteTxtRecord()` and `cleanupStale()` resolve without removing. */
  readonly deletes: boolean;
  /** The most TXT values one name holds at once; a further create pushes out the oldest. null: no limit. */
  readonly maxValuesPerName: number | null;
}

/** What a provider without `capabilities` keeps: the whole contract. */
export const FULL_CAPABILITIES: DnsProviderCapabilities = { deletes: true, maxValuesPerName: null };

/** The provider's capabilities, `FULL_CAPABILITIES` when it declares none. */
export function providerCapabilities(provider: Pick<DnsProvider, "capabilities">): DnsProviderCapabilities {
  return provider.capabilities ?? FULL_CAPABILITIES;
}

/** Where the TXT record for `fqdn` lives (`DnsProvider.recordName()`), normalized; `fqdn` when not elsewhere. */
export function providerRecordName(provider: Pick<DnsProvider, "recordName">, fqdn: string): string {
  return normalizeDnsName(provider.recordName?.(fqdn) ?? fqdn);
}

/**
 * Why a provider call failed, which decides what the caller does next:
 * - `credentials`: the token is invalid, expired or lacks a permission; retrying will not help until the config
 *   changes;
 * - `zone_not_found`: the provider manages no zone for the name (or the token cannot see it);
 * - `rate_limited`: the API asked us to slow down; retry after `retryAfterMs`;
 * - `unavailable`: the API could not be reached or failed on its side (5xx, timeout); retry later;
 * - `rejected`: the API refused the request for another reason (its message is quoted).
 */
export type DnsProviderErrorKind =
  | "credentials"
  | "zone_not_found"
  | "rate_limited"
  | "unavailable"
  | "rejected";

/** The error every `DnsProvider` method rejects with (see the interface for the exceptions). */
export class DnsProviderError extends Error {
  readonly kind: DnsProviderErrorKind;
  /** Milliseconds to wait before calling the provider again, when it said so (always set for "rate_limited"). */
  readonly retryAfterMs: number | null;
  /** The HTTP status of the failed API response, or null when there was none (network failure, timeout). */
  readonly status: number | null;

  constructor(
    kind: DnsProviderErrorKind,
    message: string,
    options: { retryAfterMs?: number | null; status?: number | null; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "DnsProviderError";
    this.kind = kind;
    this.retryAfterMs = options.retryAfterMs ?? null;
    this.status = options.status ?? null;
  }
}

/**
 * A DnsProviderError with every occurrence of `secret` (an API token, a password) cut out of its message and
 * its cause's: the one way provider API code builds errors, so a credential that a server or a library echoes
 * never reaches a log line or meta.json.
 */
export function secretSafeError(
  secret: string,
  kind: DnsProviderErrorKind,
  message: string,
  options: { status?: number | null; retryAfterMs?: number | null; cause?: unknown } = {},
): DnsProviderError {
  const redact = (text: string) => secret === "" ? text : text.replaceAll(secret, "[redacted]");
  const causeText = options.cause === undefined ? "" : errorMessage(options.cause);
  const cause = secret === "" || !causeText.includes(secret) ? options.cause : new Error(redact(causeText));
  return new DnsProviderError(kind, redact(message), {
    status: options.status ?? null,
    retryAfterMs: options.retryAfterMs ?? null,
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * Throws the `TypeError` the contract asks for when `fqdn` is not an `_acme-challenge.` name; providers call it
 * at the top of `cleanupStale()` so a slip can never wipe an unrelated record set.
 */
export function assertChallengeName(fqdn: string): string {
  const name = normalizeDnsName(fqdn);
  if (!name.startsWith(`${ACME_CHALLENGE_LABEL}.`)) {
    throw new TypeError(
      `Refusing to clean up TXT records at "${name}": only "${ACME_CHALLENGE_LABEL}." names hold DNS-01 records`,
    );
  }
  return name;
}
