// When to renew a certificate, when to look again, and how long to wait after a failed attempt, plus what an
// ACME server's error means for that wait (RFC 8555 §6.7). Pure functions of times in ms since the epoch and
// an injected random source: no I/O, no clock, no state. The ACME worker owns the loop and the storage.

const MINUTE_MS = 60 * 1000;
const HOUR_MS = 60 * MINUTE_MS;

/**
 * The numbers of the renewal and retry policy, and why:
 *
 * | constant                | value | why                                                                |
 * | ----------------------- | ----- | ------------------------------------------------------------------ |
 * | RENEW_AT_MOST_FRACTION  | 1/2   | a `renew_before` above half the lifetime would renew a 6-day       |
 * |                         |       | certificate daily or at once; clamped to half, it still renews     |
 * |                         |       | days early.                                                        |
 * | RENEW_AT_LEAST_FRACTION | 1/3   | Let's Encrypt recommends renewing with a third of the lifetime     |
 * |                         |       | left (30 days of 90); a smaller `renew_before` never delays        |
 * |                         |       | renewal past that, which leaves room for weeks of failed attempts  |
 * |                         |       | before expiry.                                                     |
 * | CHECK_JITTER_FRACTION   | 1/4   | each check lands 0.75-1.25 intervals after the last, so after a    |
 * |                         |       | few days the time of day is random and hosts started together      |
 * |                         |       | (cron, a reboot, midnight) do not all hit the CA at once, as LE    |
 * |                         |       | asks.                                                              |
 * | RETRY_JITTER_FRACTION   | 1/4   | the same spread for retries, so certificates that failed together  |
 * |                         |       | (a CA outage) do not come back in lockstep.                        |
 * | MAX_RETRY_DELAY_MS      | 24 h  | doubling from `retry_interval` (1 h: 1, 2, 4, 8, 16 h) stops at a  |
 * |                         |       | day: a problem the operator fixes (DNS, CAA) is noticed within a   |
 * |                         |       | day, and 30 days of margin still hold 30 tries, far below LE's     |
 * |                         |       | limit of 5 failed validations per account and name per hour.       |
 */
export const RENEW_AT_MOST_FRACTION = 1 / 2;
export const RENEW_AT_LEAST_FRACTION = 1 / 3;
export const CHECK_JITTER_FRACTION = 1 / 4;
export const RETRY_JITTER_FRACTION = 1 / 4;
export const MAX_RETRY_DELAY_MS = 24 * HOUR_MS;

/** A random source uniform in [0, 1), like Math.random (a seam for tests). */
export type Random = () => number;

/** The validity period of a certificate, as `parseCertificate` and the certificate repository give it. */
export interface CertValidity {
  notBefore: Date;
  notAfter: Date;
}

/**
 * How long before expiry a certificate with lifetime `lifetimeMs` is renewed, in ms, given the configured
 * `renew_before` (`renewBeforeMs`): max(min(renewBeforeMs, lifetime / 2), lifetime / 3). So `renew_before`
 * applies as written inside [lifetime / 3, lifetime / 2]. With the default 720 h: a 90-day certificate renews
 * with 30 days left; a 45-day one with 22.5 days left (15 with `renew_before: 360h`); a 6-day one with 3
 * days left (2 at the least). Never later than a third of the lifetime, never absurdly early when
 * `renew_before` exceeds the lifetime. A non-positive lifetime gives 0.
 */
export function renewalThresholdMs(lifetimeMs: number, renewBeforeMs: number): number {
  if (!(lifetimeMs > 0)) return 0;
  const capped = Math.min(renewBeforeMs, lifetimeMs * RENEW_AT_MOST_FRACTION);
  return Math.max(capped, lifetimeMs * RENEW_AT_LEAST_FRACTION);
}

/**
 * Why `renew_before` does not apply as written to a certificate of lifetime `lifetimeMs`, or null when it
 * does: "renew_before 1200h is more than half this certificate's 90-day lifetime; it renews 45 days before
 * expiry". For `check`, the start-up log and `certs`, so the bound is never silent.
 */
export function renewalWindowNote(lifetimeMs: number, renewBeforeMs: number): string | null {
  if (!(lifetimeMs > 0) || renewBeforeMs <= lifetimeMs * RENEW_AT_MOST_FRACTION) return null;
  const hours = Math.round((renewBeforeMs / HOUR_MS) * 10) / 10;
  return `renew_before ${hours}h is more than half this certificate's ${days(lifetimeMs)}-day lifetime; it ` +
    `renews ${days(renewalThresholdMs(lifetimeMs, renewBeforeMs))} days before expiry`;
}

/** Milliseconds as days, to a tenth. */
function days(ms: number): number {
  return Math.round((ms / (24 * HOUR_MS)) * 10) / 10;
}

/** The instant (ms since the epoch) from which `cert` is due for renewal; see `renewalThresholdMs`. */
export function renewalDueAt(cert: CertValidity, renewBeforeMs: number): number {
  const notAfter = cert.notAfter.getTime();
  return notAfter - renewalThresholdMs(notAfter - cert.notBefore.getTime(), renewBeforeMs);
}

/** Inputs of `needsRenewal`. */
export interface RenewalOptions {
  /** The current time, ms since the epoch (`Date.now()` in production). */
  now: number;
  /** The configured `acme.renew_before`, in ms. */
  renewBeforeMs: number;
}

/** Whether `cert` is due for renewal at `options.now` (expired certificates are due too). */
export function needsRenewal(cert: CertValidity, options: RenewalOptions): boolean {
  return options.now >= renewalDueAt(cert, options.renewBeforeMs);
}

/** Options for `nextCheckAt` and `retryDelayMs`. */
export interface JitterOptions {
  /** Default Math.random. */
  random?: Random;
}

/** `value` spread uniformly over ±`fraction` of itself. */
function jitter(value: number, fraction: number, random: Random): number {
  return value * (1 + fraction * (2 * random() - 1));
}

/**
 * When (ms since the epoch) the worker should next look at its certificates: `now` plus `checkIntervalMs`
 * spread uniformly over ±1/4 of it (CHECK_JITTER_FRACTION). Jittering every check, rather than only the
 * first, keeps the time of day random even across restarts at fixed times.
 */
export function nextCheckAt(now: number, checkIntervalMs: number, options: JitterOptions = {}): number {
  return now + Math.round(jitter(checkIntervalMs, CHECK_JITTER_FRACTION, options.random ?? Math.random));
}

/** Options for `retryDelayMs`. */
export interface RetryOptions extends JitterOptions {
  /** The server's Retry-After (RFC 8555 §6.6) in ms, from `classifyAcmeError`; never retry sooner. */
  retryAfterMs?: number;
}

/**
 * How long to wait, in ms, before the next attempt after `failures` consecutive failures (1 for the first):
 * `retryIntervalMs` doubled per further failure, capped at MAX_RETRY_DELAY_MS, spread ±1/4
 * (RETRY_JITTER_FRACTION) but never past the cap, and never shorter than `options.retryAfterMs` (which may
 * exceed the cap: a CA's rate limit is not negotiable). `failures` below 1 counts as 1.
 */
export function retryDelayMs(failures: number, retryIntervalMs: number, options: RetryOptions = {}): number {
  const doublings = Math.max(0, Math.floor(failures) - 1);
  // Cap before doubling overflows to Infinity: 2^60 intervals is past any cap.
  const base = Math.min(retryIntervalMs * 2 ** Math.min(doublings, 60), MAX_RETRY_DELAY_MS);
  const spread = Math.min(
    jitter(base, RETRY_JITTER_FRACTION, options.random ?? Math.random),
    MAX_RETRY_DELAY_MS,
  );
  return Math.round(Math.max(spread, options.retryAfterMs ?? 0));
}

/** An RFC 7807 problem document from an ACME server (RFC 8555 §6.7), as far as nexo reads it. */
export interface AcmeProblem {
  /** "urn:ietf:params:acme:error:rateLimited"; absent (or null) for non-ACME errors. */
  type?: string | null;
  detail?: string;
  /** The HTTP status of the response that carried it. */
  status?: number;
  /** The response's Retry-After already in ms, when the caller parsed it (wins over `options.retryAfter`). */
  retryAfterMs?: number | null;
  /** Per-identifier problems of a "compound" error (RFC 8555 §6.7.1). */
  subproblems?: AcmeProblem[];
}

/** What an ACME error means for the next attempt; see `classifyAcmeError`. */
export interface AcmeErrorClass {
  /** The problem type without its URN prefix ("rateLimited"), or "unknown". */
  type: string;
  /** Repeat the request at once (with a fresh nonce): only for badNonce (RFC 8555 §6.5). */
  retryNow: boolean;
  /**
   * Repeating the same request cannot succeed until something changes (config, DNS, CAA records, the
   * account). Still retried with the backoff, since the operator may fix it without restarting nexo, but
   * worth a loud log line with `hint`.
   */
  permanent: boolean;
  /** The server's Retry-After in ms from `now`, when it sent one; pass it to `retryDelayMs`. */
  retryAfterMs?: number;
  /** What the operator can do, for logs and meta.json's last_error; never holds secrets. */
  hint: string;
}

interface ErrorRule {
  retryNow?: boolean;
  permanent: boolean;
  hint: string;
}

// RFC 8555 §6.7 and its registry; the hint says what an operator can do about each.
const ACME_ERROR_RULES: Record<string, ErrorRule> = {
  accountDoesNotExist: {
    permanent: true,
    hint: "the ACME account is gone from the server; delete its files under base_dir/acme to register anew",
  },
  alreadyRevoked: { permanent: true, hint: "the certificate was already revoked" },
  badCSR: {
    permanent: true,
    hint: "the CA rejected nexo's certificate request; this is a bug, please report it",
  },
  badNonce: { retryNow: true, permanent: false, hint: "stale anti-replay nonce; retried at once" },
  badPublicKey: { permanent: true, hint: "the CA rejected the key type; this is a bug, please report it" },
  badRevocationReason: { permanent: true, hint: "the CA rejected the revocation reason" },
  badSignatureAlgorithm: {
    permanent: true,
    hint: "the CA does not accept nexo's signature algorithm; use another CA or report it",
  },
  caa: {
    permanent: true,
    hint: 'a DNS CAA record forbids this CA; add one allowing it (e.g. 0 issue "letsencrypt.org")',
  },
  connection: {
    permanent: false,
    hint: "the CA could not connect to the validation target; check DNS and firewalls",
  },
  dns: { permanent: false, hint: "the CA's DNS lookup failed; check the zone's name servers" },
  externalAccountRequired: {
    permanent: true,
    hint: "this CA needs an external account binding, which nexo does not support; use another CA",
  },
  incorrectResponse: {
    permanent: false,
    hint: "the challenge response was wrong; check that DNS changes propagate",
  },
  invalidContact: { permanent: true, hint: "the CA rejected the contact address; fix `email` in the config" },
  malformed: {
    permanent: true,
    hint: "the CA rejected a malformed request; this is a bug, please report it",
  },
  orderNotReady: { permanent: false, hint: "the order was not ready; retried later" },
  rateLimited: { permanent: false, hint: "rate limited by the CA; nexo waits as long as the CA asks" },
  rejectedIdentifier: {
    permanent: true,
    hint: "the CA will not issue for this name; remove it from the config or use another CA",
  },
  serverInternal: { permanent: false, hint: "the CA had an internal error; retried later" },
  tls: { permanent: false, hint: "a TLS error during validation; retried later" },
  unauthorized: {
    permanent: false,
    hint: "the CA found no valid proof of control; check the DNS provider token and that the zone is served",
  },
  unsupportedContact: {
    permanent: true,
    hint: "the CA does not accept this contact; use a mailto address in `email`",
  },
  unsupportedIdentifier: {
    permanent: true,
    hint: "the CA does not issue for this kind of name; fix the config",
  },
  userActionRequired: {
    permanent: true,
    hint: "the CA needs the account holder to act (e.g. accept new terms); see the CA's instructions",
  },
};

const ACME_ERROR_PREFIXES = ["urn:ietf:params:acme:error:", "urn:acme:error:"];

/** Options for `classifyAcmeError`. */
export interface ClassifyOptions {
  /** The response's Retry-After header, when there was one. */
  retryAfter?: string | null;
  /** The current time, ms since the epoch, to turn an HTTP-date Retry-After into a delay. */
  now?: number;
}

/**
 * Classifies an ACME problem document for the retry policy. Unknown types, and errors without a document
 * (network failures), are transient; 5xx and 429 responses without a known type too. A "compound" problem is
 * permanent when any subproblem is, retried now only when all are, and waits for the longest Retry-After.
 */
export function classifyAcmeError(
  problem: AcmeProblem | undefined,
  options: ClassifyOptions = {},
): AcmeErrorClass {
  const type = shortType(problem?.type);
  const retryAfterMs = problem?.retryAfterMs ??
    parseRetryAfter(options.retryAfter, options.now ?? Date.now());
  const withRetryAfter = (result: Omit<AcmeErrorClass, "retryAfterMs">): AcmeErrorClass =>
    retryAfterMs === undefined ? result : { ...result, retryAfterMs };
  const subproblems = problem?.subproblems ?? [];
  if (type === "compound" && subproblems.length > 0) {
    const parts = subproblems.map((sub) => classifyAcmeError(sub, {}));
    return withRetryAfter({
      type,
      retryNow: parts.every((part) => part.retryNow),
      permanent: parts.some((part) => part.permanent),
      hint: [...new Set(parts.map((part) => part.hint))].join("; "),
    });
  }
  const rule = ACME_ERROR_RULES[type] ?? (problem?.status === 429 ? ACME_ERROR_RULES.rateLimited : undefined);
  if (rule === undefined) {
    return withRetryAfter({ type, retryNow: false, permanent: false, hint: "retried later" });
  }
  return withRetryAfter({
    type,
    retryNow: rule.retryNow === true,
    permanent: rule.permanent,
    hint: rule.hint,
  });
}

function shortType(type: string | null | undefined): string {
  if (type === undefined || type === null || type === "") return "unknown";
  const prefix = ACME_ERROR_PREFIXES.find((p) => type.startsWith(p));
  return prefix === undefined ? type : type.slice(prefix.length);
}

/**
 * A Retry-After header value (RFC 9110 §10.2.3: delay-seconds or an HTTP-date) as ms from `now`, at least
 * 0; undefined when absent or unparseable.
 */
export function parseRetryAfter(value: string | null | undefined, now: number): number | undefined {
  const text = value?.trim() ?? "";
  if (text === "") return undefined;
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
