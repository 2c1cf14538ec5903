// The HTTP side of ACME Renewal Information (RFC 9773) on the main thread: a directory's `renewalInfo` URL
// (cached for a day) and one certificate's RenewalInfo, as plain GETs with a timeout, trusting `acme.ca_cert`
// when it is set. Failures become RenewalInfoError, temporary or long-term (§4.3.3). Reading an answer is
// ari_schedule.ts's concern; what to do with it, ari_client.ts's.

import { errorMessage } from "../error_message.ts";
import type { Logger } from "../log.ts";
import { parseRenewalInfo, type RenewalInfo, RenewalInfoError } from "./ari_schedule.ts";
import { parseRetryAfter } from "./schedule.ts";

/**
 * A directory's `renewalInfo` URL is looked up again after a day: a CA that starts (or stops) offering it is
 * noticed as fast as any change of its windows can matter (MAX_POLL_MS). Requests get 10 s, a third of the
 * ACME worker's bound: they are one small GET each, and a hung CA must not hold the renewal check long.
 */
export const DIRECTORY_TTL_MS = 24 * 3_600_000;
export const REQUEST_TIMEOUT_MS = 10_000;

export interface RenewalInfoFetcherOptions {
  log: Logger;
  /** A seam for tests: the global fetch in production. */
  fetch: typeof fetch;
}

/**
 * Fetches renewal information. Calls may not overlap (ari_client.ts makes one at a time). `close()`
 * releases the HTTP client made for `acme.ca_cert`.
 */
export class RenewalInfoFetcher {
  readonly #log: Logger;
  readonly #fetch: typeof fetch;
  readonly #directories = new Map<string, { renewalInfoUrl: string | null; expiresAt: number }>();
  /** Directories whose lack of renewal information was logged. */
  readonly #noAri = new Set<string>();
  #http: { caCertPem: string; client: Deno.HttpClient } | null = null;

  constructor(options: RenewalInfoFetcherOptions) {
    this.#log = options.log;
    this.#fetch = options.fetch;
  }

  /**
   * The `renewalInfo` URL of `directoryUrl` last seen (even when its day is over), or null when none was:
   * whether `replaces` may be sent (RFC 9773 §5: not to a server that does not advertise it).
   */
  knownRenewalInfoUrl(directoryUrl: string): string | null {
    return this.#directories.get(directoryUrl)?.renewalInfoUrl ?? null;
  }

  /**
   * The `renewalInfo` URL of `directoryUrl` (cached for DIRECTORY_TTL_MS from `now`), or null when the
   * directory offers none (logged once per directory). Rejects with RenewalInfoError.
   */
  async renewalInfoUrl(directoryUrl: string, caCertPath: string | null, now: number): Promise<string | null> {
    const cached = this.#directories.get(directoryUrl);
    if (cached !== undefined && cached.expiresAt > now) return cached.renewalInfoUrl;
    const response = await this.#get(directoryUrl, caCertPath);
    const body = await response.text();
    if (!response.ok) throw statusError(response, body, "the ACME directory");
    let directory: unknown;
    try {
      directory = JSON.parse(body);
    } catch (err) {
      throw new RenewalInfoError("the ACME directory is not JSON", "longTerm", { cause: err });
    }
    const value = (directory as { renewalInfo?: unknown } | null)?.renewalInfo;
    // RFC 9773 §3: a server offering renewal information names its URL in the directory.
    const renewalInfoUrl = typeof value === "string" && URL.canParse(value) ? value : null;
    this.#directories.set(directoryUrl, { renewalInfoUrl, expiresAt: now + DIRECTORY_TTL_MS });
    if (renewalInfoUrl !== null) this.#noAri.delete(directoryUrl);
    else if (!this.#noAri.has(directoryUrl)) {
      this.#noAri.add(directoryUrl);
      this.#log.info("renewal information not offered", {
        directory: directoryUrl,
        note: "the CA's directory has no renewalInfo (RFC 9773): renewing on the fixed schedule",
      });
    }
    return renewalInfoUrl;
  }

  /**
   * The RenewalInfo of the certificate `certId` at `renewalInfoUrl` (RFC 9773 §4.1: that URL, "/", the
   * certID, fetched with a plain GET, not POST-as-GET), read at `now()`. Rejects with RenewalInfoError:
   * temporary for network failures, timeouts, 5xx and 429; long-term for other statuses and bad answers.
   */
  async renewalInfo(
    renewalInfoUrl: string,
    certId: string,
    caCertPath: string | null,
    now: () => number,
  ): Promise<RenewalInfo> {
    const response = await this.#get(`${renewalInfoUrl.replace(/\/+$/, "")}/${certId}`, caCertPath);
    const body = await response.text();
    if (!response.ok) throw statusError(response, body, "the renewal information");
    return parseRenewalInfo(body, response.headers.get("retry-after"), now());
  }

  /** Releases the HTTP client (the supervisor stops). */
  close(): void {
    this.#http?.client.close();
    this.#http = null;
  }

  /** GET `url` within REQUEST_TIMEOUT_MS; network failures and timeouts become temporary errors. */
  async #get(url: string, caCertPath: string | null): Promise<Response> {
    const client = await this.#client(caCertPath);
    try {
      return await this.#fetch(url, {
        headers: { accept: "application/json" },
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        ...(client === null ? {} : { client }),
      });
    } catch (error) {
      const timedOut = error instanceof DOMException && error.name === "TimeoutError";
      throw new RenewalInfoError(
        timedOut
          ? `${url} did not answer within ${REQUEST_TIMEOUT_MS / 1000} s`
          : `${url} cannot be reached (${errorMessage(error)})`,
        "temporary",
        { cause: error },
      );
    }
  }

  /** The HTTP client trusting `acme.ca_cert` (re-read each time, so a replaced file applies), or null. */
  async #client(caCertPath: string | null): Promise<Deno.HttpClient | null> {
    if (caCertPath === null) {
      this.close();
      return null;
    }
    let caCertPem: string;
    try {
      caCertPem = await Deno.readTextFile(caCertPath);
    } catch (error) {
      throw new RenewalInfoError(
        `cannot read acme.ca_cert "${caCertPath}" (${errorMessage(error)}; fix the path or the file's mode)`,
        "longTerm",
        { cause: error },
      );
    }
    if (this.#http?.caCertPem !== caCertPem) {
      this.close();
      this.#http = { caCertPem, client: Deno.createHttpClient({ caCerts: [caCertPem] }) };
    }
    return this.#http.client;
  }
}

/**
 * A non-2xx answer as a RenewalInfoError: 5xx and 429 are temporary, the rest long-term (RFC 9773 §4.3.3),
 * with the problem document's detail (RFC 7807) when there is one.
 */
function statusError(response: Response, body: string, what: string): RenewalInfoError {
  let detail = "";
  try {
    const problem = JSON.parse(body) as { detail?: unknown } | null;
    if (typeof problem?.detail === "string") detail = `: ${problem.detail.slice(0, 200)}`;
  } catch {
    // not a problem document
  }
  const kind = response.status >= 500 || response.status === 429 ? "temporary" : "longTerm";
  const retryAfterMs = parseRetryAfter(response.headers.get("retry-after"), Date.now()) ?? null;
  return new RenewalInfoError(`the CA answered HTTP ${response.status} for ${what}${detail}`, kind, {
    retryAfterMs,
  });
}
