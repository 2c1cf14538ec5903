// What nexo knows about each stored ACME certificate's renewal window (RFC 9773), on the main thread: when to
// ask its CA again, the time picked in the window (kept in meta.json, so a restart does not pick again) and
// one log line per change of state; ari_http.ts makes the requests. Loaded with import() once cert_dir holds
// an ACME certificate; it orders nothing and never throws.

import { errorMessage } from "../error_message.ts";
import type { Logger } from "../log.ts";
import type { RenewalInfoRecord } from "../storage/cert_meta.ts";
import type { CertRepository } from "../storage/cert_repository.ts";
import { CertificateError } from "../tls/pem.ts";
import { ariCertId } from "./ari_cert_id.ts";
import { DIRECTORY_TTL_MS, RenewalInfoFetcher } from "./ari_http.ts";
import {
  failureDelayMs,
  planRenewal,
  pollDelayMs,
  RenewalInfoError,
  type RenewalWindow,
} from "./ari_schedule.ts";
import type { CertValidity, Random } from "./schedule.ts";
import { isoTime } from "../iso_time.ts";

/** One stored certificate to advise on, as the supervisor found it in cert_dir. */
export interface AdviceRequest {
  /** Its names, for log lines and meta.json. */
  names: string[];
  /** The stored chain, leaf first. */
  certPem: string;
  /** Where it lives, for messages ("/etc/nexo/certs/example.com"). */
  location: string;
  /** The ACME directory that issued it (meta.json's directory_url): the one asked about it. */
  directoryUrl: string;
  validity: CertValidity;
  /** meta.json's renewal_info: an earlier pick to keep while the CA's window is unchanged. */
  stored: RenewalInfoRecord | null;
  /** When the fixed schedule renews it, ms (for the log line saying that it applies). */
  fixedDueAt: number;
}

/** What the supervisor learns about one certificate. */
export interface RenewalAdvice {
  /**
   * The certificate's RFC 9773 §4.1 certID when its CA offers renewal information, for the renewal order's
   * `replaces` (§5: not sent to a CA that does not); null otherwise.
   */
  replaces: string | null;
  /** The CA's window and when to renew in it, or null when the fixed schedule applies. */
  window: AdvisedWindow | null;
  /** When to ask the CA again, ms since the epoch, or null when there is nothing to ask. */
  nextCheckAt: number | null;
}

/** A window the CA suggested and nexo's time in it. */
export interface AdvisedWindow extends RenewalWindow {
  /** When to renew, ms; due once it is not in the future. */
  renewAt: number;
  /** Whether the time was moved earlier to keep a tenth of the lifetime (ari_schedule.ts). */
  capped: boolean;
  explanationUrl: string | null;
}

/** Per-round inputs of `advise`: they may change with a reload. */
export interface AdviceContext {
  /** Where the picks are stored (meta.json). */
  repository: CertRepository;
  /** `acme.check_interval`, ms: bounds how often the CA is asked (ari_schedule.ts). */
  checkIntervalMs: number;
  /**
   * The PEM file of extra CAs trusted for the TLS of the ACME server at a directory URL (`acme.ca_cert`, or
   * that CA's own in `acme.issuers`), or null.
   */
  caCertFor: (directoryUrl: string) => string | null;
}

export interface RenewalInfoClientOptions {
  log: Logger;
  /** A seam for tests; default the global fetch. */
  fetch?: typeof fetch;
  /** The current time, ms since the epoch; default Date.now. */
  now?: () => number;
  /** Default Math.random. */
  random?: Random;
}

/** What this process knows about one certificate's renewal information, by certID. */
interface PollState {
  nextPollAt: number;
  /** Failed requests in a row. */
  failures: number;
  /** The last answer's window and pick; null after a failure (the fixed schedule applies then). */
  answer: { window: RenewalWindow; picked: number; explanationUrl: string | null } | null;
  /** What was last logged about it, so a state is logged once, not at every poll. */
  logged: string;
}

/**
 * Renewal information for the certificates of one nexo process. Calls to `advise` must not overlap (the
 * supervisor runs one check at a time). Requests go through `Deno.createHttpClient` trusting `acme.ca_cert`
 * when it is set; `close()` releases that client.
 */
/**
 * The most one round of `advise` spends asking CAs before it answers from what it knows: 30 s is three
 * requests that hit their 10 s timeout, while a healthy CA answers a hundred certificates in that time.
 */
const ADVICE_BUDGET_MS = 30_000;

export class RenewalInfoClient {
  readonly #log: Logger;
  readonly #http: RenewalInfoFetcher;
  readonly #now: () => number;
  readonly #random: Random;
  readonly #polls = new Map<string, PollState>();
  /** Certificates whose missing certID was logged, by location and expiry. */
  readonly #noId = new Set<string>();

  constructor(options: RenewalInfoClientOptions) {
    this.#log = options.log;
    this.#http = new RenewalInfoFetcher({ log: options.log, fetch: options.fetch ?? fetch });
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
  }

  /**
   * Advice for each of `requests`, in order: asks each CA what it has not been asked recently, stores new
   * picks in meta.json, logs each change of state once (a new window or pick at info; a failure at warn,
   * naming the fallback), and forgets certificates no longer listed. Never rejects.
   */
  async advise(requests: AdviceRequest[], context: AdviceContext): Promise<RenewalAdvice[]> {
    const advice: RenewalAdvice[] = [];
    const seen = new Set<string>();
    // Orders (a new host's first certificate among them) wait for this: a slow CA gets a bounded share.
    const pollUntil = this.#now() + ADVICE_BUDGET_MS;
    for (const request of requests) {
      try {
        advice.push(await this.#adviseOne(request, { ...context, pollUntil }, seen));
      } catch (error) {
        // A bug here must not stop renewals: the fixed schedule still holds.
        this.#log.error("renewal information check failed", {
          names: request.names.join(","),
          error: errorMessage(error),
        });
        advice.push({ replaces: null, window: null, nextCheckAt: null });
      }
    }
    for (const certId of this.#polls.keys()) if (!seen.has(certId)) this.#polls.delete(certId);
    return advice;
  }

  /** Releases the HTTP client (the supervisor stops). */
  close(): void {
    this.#http.close();
  }

  async #adviseOne(
    request: AdviceRequest,
    context: AdviceContext & { pollUntil: number },
    seen: Set<string>,
  ): Promise<RenewalAdvice> {
    const none: RenewalAdvice = { replaces: null, window: null, nextCheckAt: null };
    const certId = this.#certId(request);
    if (certId === null) return none;
    seen.add(certId);
    const now = this.#now();
    let state = this.#polls.get(certId);
    if (state === undefined) {
      state = { nextPollAt: now, failures: 0, answer: null, logged: "" };
      this.#polls.set(certId, state);
    }
    // Past the round's budget, a due poll waits for the next check; the last answer (or the fixed schedule)
    // holds meanwhile.
    if (state.nextPollAt <= now && now < context.pollUntil) {
      // RFC 9773 §4.3: an expired certificate is not asked about any more (it is due anyway).
      if (now >= request.validity.notAfter.getTime()) return none;
      await this.#poll(request, certId, state, context, now);
    }
    const renewalInfoUrl = this.#http.knownRenewalInfoUrl(request.directoryUrl);
    if (renewalInfoUrl === null && state.answer === null && state.failures === 0) return none;
    return {
      replaces: renewalInfoUrl === null ? null : certId,
      window: state.answer === null ? null : advisedWindow(state.answer, request.validity, now),
      nextCheckAt: state.nextPollAt,
    };
  }

  /** The leaf's certID, or null (logged once) when it has no authority key identifier or does not parse. */
  #certId(request: AdviceRequest): string | null {
    try {
      return ariCertId(request.certPem, request.location);
    } catch (error) {
      if (!(error instanceof CertificateError)) throw error;
      const key = `${request.location} ${request.validity.notAfter.getTime()}`;
      if (!this.#noId.has(key)) {
        this.#noId.add(key);
        this.#log.info("renewal information not asked", {
          names: request.names.join(","),
          reason: error.message,
        });
      }
      return null;
    }
  }

  /** Asks the CA about one certificate now and updates `state` (and meta.json, for a new pick). */
  async #poll(
    request: AdviceRequest,
    certId: string,
    state: PollState,
    context: AdviceContext,
    now: number,
  ): Promise<void> {
    const names = request.names.join(",");
    try {
      const caCertPath = context.caCertFor(request.directoryUrl);
      const base = await this.#http.renewalInfoUrl(request.directoryUrl, caCertPath, now);
      if (base === null) {
        state.answer = null;
        state.failures = 0;
        state.nextPollAt = now + DIRECTORY_TTL_MS; // when the directory is looked at again
        return;
      }
      const info = await this.#http.renewalInfo(base, certId, caCertPath, this.#now);
      const stored = request.stored?.certId === certId ? request.stored : null;
      const previous = state.answer ?? (stored === null ? null : {
        window: { start: stored.windowStart.getTime(), end: stored.windowEnd.getTime() },
        picked: stored.renewAt.getTime(),
      });
      const plan = planRenewal(info.window, {
        now,
        validity: request.validity,
        previous: previous === null ? null : { window: previous.window, renewAt: previous.picked },
        random: this.#random,
      });
      state.answer = { window: info.window, picked: plan.picked, explanationUrl: info.explanationUrl };
      state.failures = 0;
      state.nextPollAt = now + pollDelayMs(info.retryAfterMs, context.checkIntervalMs);
      await this.#store(request, certId, state.answer, context);
      this.#logOnce(state, `window ${info.window.start} ${info.window.end} ${plan.picked}`, () => {
        const fields = {
          names,
          window_start: isoTime(info.window.start),
          window_end: isoTime(info.window.end),
          renews_at: isoTime(plan.renewAt),
          explanation_url: info.explanationUrl ?? undefined,
        };
        if (!plan.capped) return this.#log.info("renewal window from CA", fields);
        this.#log.warn("renewal window from CA", {
          ...fields,
          note: "the CA's window ends too late: renewing with a tenth of the lifetime left instead",
        });
      });
    } catch (error) {
      const failure = error instanceof RenewalInfoError
        ? error
        : new RenewalInfoError(errorMessage(error), "temporary", { cause: error });
      state.answer = null;
      state.failures++;
      state.nextPollAt = now +
        failureDelayMs(failure.kind, state.failures, context.checkIntervalMs, failure.retryAfterMs);
      this.#logOnce(
        state,
        `error ${failure.message}`,
        () =>
          this.#log.warn("renewal information unavailable", {
            names,
            error:
              `Cannot get the renewal window of ${names} from ${request.directoryUrl}: ${failure.message}`,
            fallback: "fixed schedule",
            renews_at: isoTime(request.fixedDueAt),
            next_check: isoTime(state.nextPollAt),
          }),
      );
    }
  }

  /** Writes a new pick to meta.json; a failed write is logged (the pick still applies in this process). */
  async #store(
    request: AdviceRequest,
    certId: string,
    answer: NonNullable<PollState["answer"]>,
    context: AdviceContext,
  ): Promise<void> {
    const record: RenewalInfoRecord = {
      certId,
      windowStart: new Date(answer.window.start),
      windowEnd: new Date(answer.window.end),
      renewAt: new Date(answer.picked),
      explanationUrl: answer.explanationUrl,
    };
    if (JSON.stringify(request.stored) === JSON.stringify(record)) return;
    try {
      await context.repository.recordRenewalInfo(request.names, record);
    } catch (error) {
      this.#log.warn("renewal window not stored", {
        names: request.names.join(","),
        error: errorMessage(error),
        note: "kept in memory; a restart picks a new time in the window",
      });
    }
  }

  #logOnce(state: PollState, key: string, log: () => void): void {
    if (state.logged === key) return;
    state.logged = key;
    log();
  }
}

/** The window of `answer` with the time to renew in it at `now` (ari_schedule.ts's bound applied). */
function advisedWindow(
  answer: NonNullable<PollState["answer"]>,
  validity: CertValidity,
  now: number,
): AdvisedWindow {
  const previous = { window: answer.window, renewAt: answer.picked };
  const { renewAt, capped } = planRenewal(answer.window, { now, validity, previous });
  return { ...answer.window, renewAt, capped, explanationUrl: answer.explanationUrl };
}
