// When to renew inside an ACME server's suggested renewal window (RFC 9773 §4.2) and when to ask it again
// (§4.3): reading a RenewalInfo answer, bounding Retry-After, backing off after failed requests, picking a
// uniformly random time in the window once. Pure functions of ms times and an injected random source, like
// schedule.ts (the fixed schedule); ari_client.ts does the requests and the storage.

import { parseRetryAfter, type Random } from "./schedule.ts";
import { isoTime } from "../iso_time.ts";

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;

/**
 * The numbers of nexo's ARI policy, and why:
 *
 * | constant                | value | why                                                                 |
 * | ----------------------- | ----- | ------------------------------------------------------------------- |
 * | MIN_POLL_MS             | 1 min | RFC 9773 §4.3.2: clients MUST bound the interval; a Retry-After     |
 * |                         |       | under a minute is read as a minute (its own example), or as         |
 * |                         |       | `check_interval` when the operator set that shorter (tests do).     |
 * | MAX_POLL_MS             | 24 h  | §4.3.2's example upper bound: a CA's change of mind (a mass         |
 * |                         |       | revocation) is seen within a day whatever Retry-After said.         |
 * | LONG_TERM_ERROR_MS      | 6 h   | §4.3.3: after a long-term error (a malformed answer, a 4xx, no or   |
 * |                         |       | a bad Retry-After) ask again after six hours, or `check_interval`   |
 * |                         |       | when shorter ("some other locally configured default").             |
 * | TEMPORARY_ERROR_TRIES   | 4     | §4.3.3: temporary errors (network, timeouts, 5xx) back off          |
 * |                         |       | exponentially from MIN_POLL_MS for a capped number of tries (1, 2,  |
 * |                         |       | 4, 8 min), then count as a long-term error.                         |
 * | LATEST_RENEWAL_FRACTION | 1/10  | nexo's own bound: whatever the window, renew with a tenth of the    |
 * |                         |       | lifetime left (9 days of 90), so a CA's mistake or a clock skew     |
 * |                         |       | (RFC 9773 §6) cannot let a certificate expire. Real windows sit     |
 * |                         |       | near a third of the lifetime left and are never capped.             |
 */
export const MIN_POLL_MS = MINUTE_MS;
export const MAX_POLL_MS = 24 * HOUR_MS;
export const LONG_TERM_ERROR_MS = 6 * HOUR_MS;
export const TEMPORARY_ERROR_TRIES = 4;
export const LATEST_RENEWAL_FRACTION = 1 / 10;

/** A suggested renewal window, ms since the epoch; `end` is after `start`. */
export interface RenewalWindow {
  start: number;
  end: number;
}

/** A RenewalInfo answer (RFC 9773 §4.2), as `parseRenewalInfo` reads it. */
export interface RenewalInfo {
  window: RenewalWindow;
  /** The CA's page on why the window is what it is (§4.2: shown to the operator), or null. */
  explanationUrl: string | null;
  /** The answer's Retry-After in ms from the answer, or null when absent or unreadable (§4.3.3). */
  retryAfterMs: number | null;
}

/**
 * A renewalInfo request that failed: `temporary` for what may pass soon (network errors, timeouts, 5xx),
 * `longTerm` for the rest (§4.3.3: a malformed answer, another status). The message says what was wrong.
 */
export class RenewalInfoError extends Error {
  override name = "RenewalInfoError";
  /** The answer's Retry-After as a delay in ms (a 429 or 503 saying when to come back), or null. */
  readonly retryAfterMs: number | null;
  constructor(
    message: string,
    readonly kind: "temporary" | "longTerm",
    options?: { cause?: unknown; retryAfterMs?: number | null },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.retryAfterMs = options?.retryAfterMs ?? null;
  }
}

// RFC 3339 §5.6 date-time: full-date "T" full-time, seconds required, fraction and offset as it allows.
const RFC_3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/;

/**
 * Reads the body and Retry-After header of a 200 answer to `GET <renewalInfo>/<certID>` (RFC 9773 §4.2).
 * `now` (ms) turns an HTTP-date Retry-After into a delay. Throws a long-term RenewalInfoError saying what is
 * wrong when the body is not JSON, `suggestedWindow` or its `start`/`end` is missing or not an RFC 3339
 * time, or `end` does not come after `start` (§4.2: such an answer counts as none).
 */
export function parseRenewalInfo(body: string, retryAfter: string | null, now: number): RenewalInfo {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch (err) {
    throw new RenewalInfoError(`the answer is not JSON (${describeBody(body)})`, "longTerm", { cause: err });
  }
  const window = (raw as { suggestedWindow?: unknown } | null)?.suggestedWindow;
  if (typeof window !== "object" || window === null) {
    throw new RenewalInfoError('the answer has no "suggestedWindow" object', "longTerm");
  }
  const start = readTime(window, "start");
  const end = readTime(window, "end");
  if (end <= start) {
    throw new RenewalInfoError(
      `its suggestedWindow ends (${isoTime(end)}) before it starts ` +
        `(${isoTime(start)})`,
      "longTerm",
    );
  }
  const explanation = (raw as { explanationURL?: unknown }).explanationURL;
  return {
    window: { start, end },
    explanationUrl: typeof explanation === "string" && URL.canParse(explanation) ? explanation : null,
    retryAfterMs: parseRetryAfter(retryAfter, now) ?? null,
  };
}

function readTime(window: object, key: "start" | "end"): number {
  const value = (window as Record<string, unknown>)[key];
  if (typeof value !== "string") {
    throw new RenewalInfoError(`its suggestedWindow has no "${key}" time`, "longTerm");
  }
  const match = RFC_3339.exec(value);
  const ms = match === null ? NaN : Date.parse(value);
  // V8 reads "2025-02-30" as March 2; RFC 3339 §5.7 bounds the day by the month.
  const [year, month, day] = (match?.slice(1) ?? []).map(Number) as [number, number, number];
  if (Number.isNaN(ms) || day > new Date(Date.UTC(year, month, 0)).getUTCDate()) {
    throw new RenewalInfoError(
      `its suggestedWindow "${key}" is not an RFC 3339 time: ${JSON.stringify(value.slice(0, 40))}`,
      "longTerm",
    );
  }
  return ms;
}

/** The start of a body for a message: at most 40 characters, one line. */
function describeBody(body: string): string {
  const text = body.trim().replace(/\s+/g, " ");
  if (text === "") return "it is empty";
  return `it starts ${JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text)}`;
}

/**
 * How long to wait, in ms, before asking about a certificate again after an answer (RFC 9773 §4.3):
 * its Retry-After within [min(MIN_POLL_MS, checkIntervalMs), MAX_POLL_MS] (§4.3.2); without a usable one,
 * the long-term error delay (§4.3.3; see `failureDelayMs`).
 */
export function pollDelayMs(retryAfterMs: number | null, checkIntervalMs: number): number {
  if (retryAfterMs === null) return longTermDelayMs(checkIntervalMs);
  return Math.min(Math.max(retryAfterMs, minPollMs(checkIntervalMs)), MAX_POLL_MS);
}

/**
 * How long to wait, in ms, before asking again after `failures` failed requests in a row (1 for the first)
 * whose last was of `kind` (RFC 9773 §4.3.3): temporary ones double from the minimum interval for
 * TEMPORARY_ERROR_TRIES tries, never past the long-term delay; after that, and for long-term errors, the
 * long-term delay: LONG_TERM_ERROR_MS, or `checkIntervalMs` when that is shorter. Never sooner than the
 * failed answer's `retryAfterMs`.
 */
export function failureDelayMs(
  kind: RenewalInfoError["kind"],
  failures: number,
  checkIntervalMs: number,
  retryAfterMs: number | null = null,
): number {
  const longTerm = longTermDelayMs(checkIntervalMs);
  const backoff = kind === "longTerm" || failures > TEMPORARY_ERROR_TRIES
    ? longTerm
    : Math.min(minPollMs(checkIntervalMs) * 2 ** Math.max(0, Math.floor(failures) - 1), longTerm);
  // A 429 or 503 that says when to come back is obeyed (bounded like any Retry-After, §4.3.2).
  return retryAfterMs === null ? backoff : Math.max(backoff, Math.min(retryAfterMs, MAX_POLL_MS));
}

function minPollMs(checkIntervalMs: number): number {
  return Math.max(1, Math.min(MIN_POLL_MS, checkIntervalMs));
}

function longTermDelayMs(checkIntervalMs: number): number {
  return Math.max(1, Math.min(LONG_TERM_ERROR_MS, checkIntervalMs));
}

/** A time picked in a window earlier: kept while the CA suggests the same window. */
export interface PickedTime {
  window: RenewalWindow;
  renewAt: number;
}

/**
 * The renewal time for `window`, ms: `previous.renewAt` when `previous` was picked in the same window, else
 * a uniformly random time in [start, end) (RFC 9773 §4.2 step 1). Picking once keeps the time stable
 * across polls and restarts (the caller stores it), so repeated answers do not drift it toward the start.
 */
export function pickRenewalTime(
  window: RenewalWindow,
  previous: PickedTime | null,
  random: Random = Math.random,
): number {
  if (previous !== null && previous.window.start === window.start && previous.window.end === window.end) {
    return previous.renewAt;
  }
  return window.start + Math.floor(random() * (window.end - window.start));
}

/** When to renew per the CA's window, after nexo's bound; see `boundRenewalTime`. */
export interface BoundedTime {
  /** ms since the epoch; renewal is due once it is not in the future (§4.2 step 2). */
  renewAt: number;
  /** Whether LATEST_RENEWAL_FRACTION moved it earlier than the picked time. */
  capped: boolean;
}

/**
 * `renewAt` (picked in the CA's window), moved earlier when it falls past the point where a tenth of the
 * certificate's lifetime is left (LATEST_RENEWAL_FRACTION). A renewal time in the past means "now" (§4.2
 * step 2); the supervisor can wake at exactly any time (§4.2 step 3), so there is no step 4 to take.
 */
export function boundRenewalTime(
  renewAt: number,
  validity: { notBefore: Date; notAfter: Date },
): BoundedTime {
  const notAfter = validity.notAfter.getTime();
  const lifetime = Math.max(0, notAfter - validity.notBefore.getTime());
  const latest = notAfter - lifetime * LATEST_RENEWAL_FRACTION;
  return renewAt > latest ? { renewAt: Math.floor(latest), capped: true } : { renewAt, capped: false };
}

/** What `planRenewal` decided for one certificate. */
export interface RenewalPlan extends BoundedTime {
  /** The time picked in the window, before nexo's bound: what the caller stores to keep the pick. */
  picked: number;
  /** Whether renewal is due at `now` (the bounded time is not in the future). */
  due: boolean;
}

/** Inputs of `planRenewal`. */
export interface PlanOptions {
  /** The current time, ms since the epoch. */
  now: number;
  validity: { notBefore: Date; notAfter: Date };
  /** The pick stored for this certificate, if any (kept when the window is unchanged). */
  previous: PickedTime | null;
  /** Default Math.random. */
  random?: Random;
}

/**
 * RFC 9773 §4.2's algorithm for one answer: pick a time in `window` (or keep the earlier pick), bound it
 * (`boundRenewalTime`), and say whether renewal is due at `options.now`: a window wholly in the past, or a
 * pick that has passed, means at once.
 */
export function planRenewal(window: RenewalWindow, options: PlanOptions): RenewalPlan {
  const picked = pickRenewalTime(window, options.previous, options.random);
  const bounded = boundRenewalTime(picked, options.validity);
  return { ...bounded, picked, due: bounded.renewAt <= options.now };
}
