// The HTTP side of Cloudflare's v4 API: bearer-token requests, the JSON envelope (`success`, `errors[]`,
// `result`), rate-limit bans, request timeouts, a few quick retries of transient failures per call, and turning
// failures into DnsProviderErrors whose messages never contain the token. It knows nothing about zones or
// records (cloudflare.ts does).
// API reference: https://developers.cloudflare.com/api/ (v4, "client/v4" base).

import { errorMessage } from "../error_message.ts";
import { CLOUDFLARE_API_BASE } from "../config/defaults.ts";
import { sleep } from "../sleep.ts";
import { DnsProviderError, secretSafeError } from "./provider.ts";
import { startTimer, stopTimer } from "../timers.ts";

/** One entry of an envelope's `errors` or `messages` array. */
export interface CloudflareMessage {
  code: number;
  message: string;
  error_chain?: CloudflareMessage[];
}

/** Pagination info of list endpoints (`result_info`). */
export interface CloudflareResultInfo {
  page: number;
  per_page: number;
  count: number;
  total_count: number;
  total_pages: number;
}

/** A parsed API answer that is not a transport failure; `ok` is HTTP 2xx and `success: true` both. */
export interface CloudflareResponse<T> {
  ok: boolean;
  status: number;
  result: T | null;
  resultInfo: CloudflareResultInfo | null;
  errors: CloudflareMessage[];
}

export interface CloudflareApiOptions {
  /** The API token (a secret: sent only in the Authorization header, redacted from every message). */
  apiToken: string;
  /** API base without a trailing slash; defaults to https://api.cloudflare.com/client/v4. */
  apiBase?: string;
  /** The fetch to use (a seam for tests); defaults to the global fetch. */
  fetch?: typeof fetch;
  /** Current time in ms since the epoch (a seam for tests); defaults to Date.now. */
  now?: () => number;
  /** Longest a request (connect, answer, body) may take, in ms; default 30 s. */
  requestTimeoutMs?: number;
  /** How transient failures are retried within one call; defaults to CALL_RETRY (tests shorten it). */
  retry?: CallRetry;
  /** Waits `ms` (a seam for tests); defaults to a timer. */
  sleep?: (ms: number) => Promise<void>;
}

/** Retrying inside one API call (see CALL_RETRY). */
export interface CallRetry {
  /** Tries per call, the first included. */
  tries: number;
  /** Wait before the second try in ms, doubled for each further one, with ±20% jitter. */
  firstDelayMs: number;
  /** A Retry-After longer than this (ms) is not waited out inside the call: the call fails at once. */
  maxWaitMs: number;
}

/**
 * Three tries within about 10 s, as cloudflare-go and lego do: a 5xx, a 429 with a short Retry-After, a
 * reset or refused connection, or a timeout is usually gone a second later, while the order as a whole
 * backs off by retry_interval (an hour by default) when one call fails. A longer Retry-After is left to that
 * backoff rather than holding the order. Only requests that cannot act twice are retried here (GET, DELETE);
 * cloudflare.ts retries its record creation itself, looking the record up first.
 */
export const CALL_RETRY: CallRetry = { tries: 3, firstDelayMs: 1_000, maxWaitMs: 10_000 };

/**
 * Timing: 30 s per request is far above Cloudflare's usual sub-second answers but bounds a hung connection.
 * When a 429 carries no usable Retry-After we stay away for 5 minutes, because Cloudflare blocks a client for
 * 5 minutes once it passes 1200 requests in 5 minutes (https://developers.cloudflare.com/fundamentals/api/reference/limits/).
 */
const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
const DEFAULT_RATE_LIMIT_BAN_MS = 5 * 60_000;

/**
 * Codes Cloudflare uses for a token that is invalid (1000), malformed (6111, inside a 6003 "Invalid request
 * headers"), missing (9106), not allowed on the resource (9109) or lacking a permission (10000).
 */
const CREDENTIAL_ERROR_CODES = new Set([1000, 6111, 9106, 9109, 10000]);

export const TOKEN_PAGE = "https://dash.cloudflare.com/profile/api-tokens";

/**
 * A client for Cloudflare's v4 REST API with one token. Safe to use from overlapping calls. After a 429 it
 * refuses every request until the ban is over (throwing "rate_limited" without touching the network), so
 * callers cannot extend the ban by retrying.
 */
export class CloudflareApi {
  readonly apiBase: string;
  #token: string;
  #fetch: typeof fetch;
  #now: () => number;
  #timeoutMs: number;
  #bannedUntil = 0;
  readonly retry: CallRetry;
  readonly sleep: (ms: number) => Promise<void>;

  constructor(options: CloudflareApiOptions) {
    this.#token = options.apiToken;
    this.apiBase = (options.apiBase ?? CLOUDFLARE_API_BASE).replace(/\/+$/, "");
    this.#fetch = options.fetch ?? fetch;
    this.#now = options.now ?? Date.now;
    this.#timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.retry = options.retry ?? CALL_RETRY;
    this.sleep = options.sleep ?? ((ms) => sleep(ms));
  }

  /**
   * Sends a request and parses the envelope. `what` completes "Cannot ..." in error messages ("create TXT
   * record ..."). Resolves for any answer with a JSON envelope below 500 (check `ok`); throws a
   * DnsProviderError for a network failure or timeout ("unavailable"), a 5xx or non-JSON answer
   * ("unavailable"), a 429 or an ongoing ban ("rate_limited", with `retryAfterMs`). GET and DELETE are tried
   * up to `retry.tries` times while they fail that way (see `retryDelay()`); POST is sent once.
   */
  async request<T>(what: string, method: "GET" | "POST" | "DELETE", path: string, body?: unknown): Promise<
    CloudflareResponse<T>
  > {
    for (let attempt = 1;; attempt++) {
      try {
        return await this.#requestOnce<T>(what, method, path, body);
      } catch (error) {
        const delay = method === "POST" ? null : this.retryDelay(error, attempt);
        if (delay === null) throw error;
        await this.sleep(delay);
      }
    }
  }

  /**
   * How long to wait before try `attempt + 1` of a call that failed with `error`, or null to give up: only
   * "unavailable" (5xx, timeout, connection failure) and "rate_limited" errors are retried, while tries are
   * left, and a Retry-After (or an ongoing ban) is waited out only up to `retry.maxWaitMs`.
   */
  retryDelay(error: unknown, attempt: number): number | null {
    if (!(error instanceof DnsProviderError) || attempt >= this.retry.tries) return null;
    if (error.kind !== "unavailable" && error.kind !== "rate_limited") return null;
    const backoff = this.retry.firstDelayMs * 2 ** (attempt - 1) * (0.8 + 0.4 * Math.random());
    const wait = Math.max(backoff, error.retryAfterMs ?? 0);
    return wait > this.retry.maxWaitMs ? null : wait;
  }

  async #requestOnce<T>(
    what: string,
    method: "GET" | "POST" | "DELETE",
    path: string,
    body?: unknown,
  ): Promise<CloudflareResponse<T>> {
    const bannedForMs = this.#bannedUntil - this.#now();
    if (bannedForMs > 0) {
      throw this.#error("rate_limited", `Cannot ${what}: ${banText(bannedForMs)}`, {
        retryAfterMs: bannedForMs,
      });
    }
    const headers: Record<string, string> = {
      // Cloudflare API tokens are bearer tokens (RFC 6750 §2.1).
      authorization: `Bearer ${this.#token}`,
      accept: "application/json",
    };
    // Only a request with a body gets a Content-Type: Cloudflare answers a DELETE that claims a JSON body but
    // sends none with 400 "Malformed JSON in request body" (code 6007).
    if (body !== undefined) headers["content-type"] = "application/json";
    const controller = new AbortController();
    const timer = startTimer(() => controller.abort(), this.#timeoutMs);
    let response: Response;
    let text: string;
    try {
      response = await this.#fetch(`${this.apiBase}${path}`, {
        method,
        headers,
        body: body === undefined ? null : JSON.stringify(body),
        signal: controller.signal,
      });
      text = await response.text();
    } catch (error) {
      const reason = controller.signal.aborted
        ? `no answer within ${this.#timeoutMs / 1000} s`
        : errorMessage(error);
      const message = `Cannot ${what}: Cloudflare API at ${this.apiBase} failed: ${reason}`;
      throw this.#error("unavailable", message, { cause: error });
    } finally {
      stopTimer(timer);
    }
    return this.#parse<T>(what, response, text);
  }

  /**
   * Like `request()`, but throws the error `failure()` builds unless the answer is `ok`; resolves with it.
   * `deniedHint` is what to tell the user when Cloudflare refuses the token (which permission is missing).
   */
  async expect<T>(
    what: string,
    request: { method: "GET" | "POST" | "DELETE"; path: string; body?: unknown; deniedHint: string },
  ): Promise<CloudflareResponse<T> & { result: T }> {
    const response = await this.request<T>(what, request.method, request.path, request.body);
    if (!response.ok || response.result === null) throw this.failure(what, response, request.deniedHint);
    return response as CloudflareResponse<T> & { result: T };
  }

  /**
   * The DnsProviderError for an answer that is not `ok`: "credentials" (with `deniedHint` appended) when
   * Cloudflare refused the token (401, 403 or one of its authentication error codes), otherwise "rejected"
   * quoting Cloudflare's errors. A 200 with `success: false` is a failure too.
   */
  failure(what: string, response: CloudflareResponse<unknown>, deniedHint: string): DnsProviderError {
    const detail = `Cloudflare answered HTTP ${response.status}${quoteErrors(response.errors)}`;
    const denied = response.status === 401 || response.status === 403 ||
      flatten(response.errors).some((error) => CREDENTIAL_ERROR_CODES.has(error.code));
    const options = { status: response.status };
    if (denied) return this.#error("credentials", `Cannot ${what}: ${detail} (${deniedHint})`, options);
    return this.#error("rejected", `Cannot ${what}: ${detail}`, options);
  }

  #parse<T>(what: string, response: Response, text: string): CloudflareResponse<T> {
    const status = response.status;
    // RFC 6585 §4: 429 Too Many Requests, with Retry-After (RFC 9110 §10.2.3) saying how long to wait.
    if (status === 429) {
      const retryAfterMs = parseRetryAfter(response.headers.get("retry-after"), this.#now()) ??
        DEFAULT_RATE_LIMIT_BAN_MS;
      this.#bannedUntil = Math.max(this.#bannedUntil, this.#now() + retryAfterMs);
      const message = `Cannot ${what}: Cloudflare answered HTTP 429 (${banText(retryAfterMs)})`;
      throw this.#error("rate_limited", message, { status, retryAfterMs });
    }
    const envelope = parseEnvelope<T>(text);
    const answered = `Cannot ${what}: Cloudflare answered HTTP ${status}`;
    if (status >= 500) {
      const retryAfterMs = parseRetryAfter(response.headers.get("retry-after"), this.#now());
      const body = envelope === null ? ` with a body that is not Cloudflare's JSON envelope` : "";
      const message = `${answered}${body}${quoteErrors(envelope?.errors ?? [])} (a failure on Cloudflare's ` +
        `side or in between; try again later)`;
      throw this.#error("unavailable", message, { status, retryAfterMs });
    }
    if (envelope === null) {
      const message =
        `${answered} with a body that is not Cloudflare's JSON envelope (check cloudflare.api_base: ` +
        `${this.apiBase})`;
      throw this.#error("rejected", message, { status });
    }
    return {
      ok: response.ok && envelope.success === true,
      status,
      result: envelope.result ?? null,
      resultInfo: envelope.result_info ?? null,
      errors: Array.isArray(envelope.errors) ? envelope.errors : [],
    };
  }

  /** Every error leaves through here, so the token is cut out of any text that could carry it. */
  #error(
    kind: DnsProviderError["kind"],
    message: string,
    options: { status?: number | null; retryAfterMs?: number | null; cause?: unknown } = {},
  ): DnsProviderError {
    return secretSafeError(this.#token, kind, message, options);
  }
}

/** Whether an answer carries Cloudflare error `code` (81058 "identical record exists", 81044 "not found"). */
export function hasErrorCode(response: CloudflareResponse<unknown>, code: number): boolean {
  return response.errors.some((error) => error.code === code);
}

interface Envelope<T> {
  success: boolean;
  errors?: CloudflareMessage[];
  result?: T | null;
  result_info?: CloudflareResultInfo;
}

function parseEnvelope<T>(text: string): Envelope<T> | null {
  try {
    const parsed = JSON.parse(text);
    return typeof parsed === "object" && parsed !== null && typeof parsed.success === "boolean"
      ? parsed
      : null;
  } catch {
    return null;
  }
}

/** ` (code 10000 "Authentication error"; code 6111 "...")`, or "" when Cloudflare sent no errors. */
function quoteErrors(errors: CloudflareMessage[]): string {
  const flat = flatten(errors);
  if (flat.length === 0) return "";
  return ` (${
    flat.map((error) => `code ${error.code} ${JSON.stringify(String(error.message))}`).join("; ")
  })`;
}

/** Errors with their `error_chain` entries, in order. */
function flatten(errors: CloudflareMessage[]): CloudflareMessage[] {
  return errors.flatMap((error) => [error, ...flatten(error.error_chain ?? [])]);
}

/** Retry-After as ms from `now`: delay-seconds or an HTTP-date (RFC 9110 §10.2.3); null when absent or bad. */
export function parseRetryAfter(value: string | null, now: number): number | null {
  if (value === null || value.trim() === "") return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}

function banText(ms: number): string {
  const seconds = Math.ceil(ms / 1000);
  return `rate limited; nexo sends Cloudflare no requests for ${seconds} s (Cloudflare allows 1200 requests per ` +
    `5 minutes per user and blocks for 5 minutes past that)`;
}
