// The main thread's side of ACME: decides which certificates are due (missing, or inside their renewal
// window: the CA's suggested one when it offers RFC 9773 renewal information, else the fixed schedule; and
// past any backoff), starts the sandboxed worker for one job at a time, installs what it posts into the
// CertStore (new handshakes get the new certificate; open connections keep theirs), and sleeps until the next
// certificate is due, the CA is to be asked again, or the jittered check interval passes. The worker is not
// resident between jobs; a crashed one is restarted with backoff. Nothing here blocks serving.

import { errorMessage } from "../error_message.ts";
import type { Config } from "../config/types.ts";
import type { Logger } from "../log.ts";
import { normalizeCertNames, type StoredCertificate } from "../storage/cert_meta.ts";
import { CertRepository } from "../storage/cert_repository.ts";
import type { CertStore } from "../tls/cert_store.ts";
import { parseCertificate } from "../tls/pem.ts";
import { shrinkHeap } from "../shrink_heap.ts";
import type { FromWorker, ToWorker } from "./messages.ts";
import { buildWorkerSettings } from "./worker_settings.ts";
import type { Http01Tokens } from "../http01_tokens.ts";
import { checkedWorkerPermissions } from "./worker_permissions.ts";
import type { AdviceRequest, RenewalAdvice, RenewalInfoClient } from "./ari_client.ts";
import { planCertificates } from "./plan.ts";
import {
  type CertValidity,
  needsRenewal,
  nextCheckAt,
  renewalDueAt,
  renewalWindowNote,
  retryDelayMs,
} from "./schedule.ts";
import { startTimer, stopTimer, type Timer, unrefTimer } from "../timers.ts";
import { isoTime } from "../iso_time.ts";

/**
 * How long a certificate lives before a CA's window may renew it: a tenth of its lifetime, at most a day (a
 * day of 90; 4 s of a test's 40 s certificate). A revocation event (Let's Encrypt revokes within 5 days)
 * still renews in time; a CA or clock calling every fresh certificate due renews once a day, not per check.
 */
const ARI_MIN_AGE_FRACTION = 1 / 10;
const ARI_MIN_AGE_MS = 24 * 3_600_000;

/** When a stored certificate renews, and by whose rule. */
interface RenewalTime {
  /** ms since the epoch. */
  at: number;
  /**
   * "ca_window": a time picked in the CA's suggested window (RFC 9773); "ca_window_capped": that time moved
   * earlier to keep a tenth of the lifetime (ari_schedule.ts); "fixed": the fixed schedule (schedule.ts).
   */
  source: "ca_window" | "ca_window_capped" | "fixed";
}

/** An issued certificate the worker could not write (see AcmeSupervisor's #unsaved). */
interface UnsavedCertificate {
  names: string[];
  certPem: string;
  keyPem: string;
  directoryUrl: string;
  validity: CertValidity;
  /** Writes tried so far, the worker's included. */
  writes: number;
  /** When to try the next write, ms since the epoch. */
  nextWriteAt: number;
}

/**
 * A crashed worker is restarted after 1 s, doubling per consecutive crash up to 5 minutes: quick enough for a
 * one-off fault, slow enough not to spin on a deterministic one. Propagation waits are bounded at 2 minutes
 * (the default): long enough for Cloudflare's anycast to converge, short enough to fail visibly.
 */
const CRASH_BACKOFF_MS = { first: 1_000, max: 5 * 60_000 };

export interface AcmeSupervisorOptions {
  config: Config;
  store: CertStore;
  log: Logger;
  /** HTTP-01 responses by token, served by the plain-HTTP listener (lib/server/http_redirect.ts). */
  http01: Http01Tokens;
  /**
   * Where certificates and accounts are kept: a shared store (`storage:`), or by default cert_dir and
   * base_dir.
   */
  repository?: CertRepository;
  /** Called after this instance stored a certificate it obtained (a shared store tells the others). */
  onStored?: (names: string[]) => void;
  /** Called after a certificate was put into the store (the TLS listener must pick it up). */
  onInstalled?: () => void;
  /** Called when an order ends, for the metrics. */
  onOrder?: (outcome: "success" | "failure") => void;
  /** The worker module; tests may point it elsewhere. */
  workerUrl?: URL;
}

/** Keeps the certificates `config` needs obtained and renewed. Call `start()` once serving has begun. */
export class AcmeSupervisor {
  #config: Config;
  readonly #store: CertStore;
  readonly #log: Logger;
  readonly #workerUrl: URL;
  readonly #http01: Http01Tokens;
  readonly #repository: CertRepository;
  readonly #onStored: (names: string[]) => void;
  readonly #onInstalled: () => void;
  readonly #onOrder: (outcome: "success" | "failure") => void;
  #timer: Timer | undefined;
  #worker: Worker | null = null;
  #jobId = 0;
  #crashes = 0;
  #stopped = false;
  /** Backoff known to this process, by certificate key (also persisted in meta.json by the worker). */
  readonly #notBefore = new Map<string, number>();
  /** Certificates whose capped renewal window was logged (see #noteRenewalWindow). */
  readonly #windowNoted = new Set<string>();
  /**
   * Issued chains that could not be written to cert_dir, by certificate key: served from memory, written
   * again at each check (with backoff) and never ordered again while they wait. Lost on restart.
   */
  readonly #unsaved = new Map<string, UnsavedCertificate>();
  /** RFC 9773 renewal information: imported (ari_client.ts) once cert_dir holds an ACME certificate. */
  #renewalInfo: RenewalInfoClient | null = null;
  /** Each stored certificate's next renewal as the last check decided it, by certificate key (/status). */
  #renewals = new Map<string, RenewalTime>();
  /** A check is running; another asked for meanwhile (a reload) runs right after it. */
  #checking = false;
  #checkAgain = false;
  /** Checks that failed in a row (storage unreadable), for their backoff. */
  #checkFailures = 0;
  /** Certificates to renew at the next check whatever their schedule says (renewNow), by certificate key. */
  readonly #forced = new Set<string>();
  /** The certificates of the job under way, by certificate key. */
  #jobKeys = new Set<string>();

  constructor(options: AcmeSupervisorOptions) {
    this.#config = options.config;
    this.#store = options.store;
    this.#log = options.log;
    this.#workerUrl = options.workerUrl ?? defaultWorkerUrl();
    this.#http01 = options.http01;
    this.#repository = options.repository ??
      CertRepository.open({ certDir: options.config.certDir, baseDir: options.config.baseDir });
    this.#onStored = options.onStored ?? (() => {});
    this.#onInstalled = options.onInstalled ?? (() => {});
    this.#onOrder = options.onOrder ?? (() => {});
  }

  /** Starts the first check in the background. */
  start(): void {
    this.#wake(0);
  }

  /**
   * For /status: whether a worker runs, its job, consecutive crashes, certificates in backoff, and when each
   * stored certificate renews and why ("ca_window": a time picked in the CA's suggested window; "fixed").
   */
  state(): {
    worker: "running" | "idle";
    job: number | null;
    crashes: number;
    backoff: Record<string, string>;
    renewals: Record<string, { renews_at: string; source: RenewalTime["source"] }>;
  } {
    return {
      worker: this.#worker ? "running" : "idle",
      job: this.#worker ? this.#jobId : null,
      crashes: this.#crashes,
      backoff: Object.fromEntries([...this.#notBefore].map(([key, at]) => [key, isoTime(at)])),
      renewals: Object.fromEntries(
        [...this.#renewals].map((
          [key, { at, source }],
        ) => [key, { renews_at: isoTime(at), source }]),
      ),
    };
  }

  /** Uses `config` from now on (a reload) and checks at once whether new certificates are needed. */
  updateConfig(config: Config): void {
    this.#config = config;
    this.checkNow();
  }

  /** Checks at once (unless a job runs): the shared store is reachable again, say. */
  checkNow(): void {
    if (!this.#worker) this.#wake(0);
  }

  /**
   * Renews the certificate for `names` at the next check (at once unless a job runs), whatever its renewal
   * time and backoff say: the dashboard's "renew now". It goes through the same job, lock and store as any
   * renewal, so it never makes a second order for names being ordered: "running" when the job under way has
   * them (nothing more is queued), "unknown" when the config needs no certificate with exactly these names.
   */
  renewNow(names: readonly string[]): "queued" | "running" | "unknown" {
    const key = certKey(names);
    if (!planCertificates(this.#config).some((plan) => certKey(plan.names) === key)) return "unknown";
    if (this.#jobKeys.has(key)) return "running";
    this.#forced.add(key);
    this.#log.info("certificate renewal requested", { names: normalizeCertNames(names).join(",") });
    this.checkNow();
    return "queued";
  }

  /** Stops timers and terminates a running worker (its order is abandoned; the next start resumes). */
  stop(): void {
    this.#stopped = true;
    stopTimer(this.#timer);
    this.#worker?.terminate();
    this.#worker = null;
    this.#renewalInfo?.close();
  }

  #wake(delayMs: number): void {
    stopTimer(this.#timer);
    if (this.#stopped) return;
    // A timer's limit is 2^31-1 ms (24.8 days); a longer sleep just wakes up early and sleeps again.
    this.#timer = startTimer(() => void this.#runCheck(), Math.min(Math.max(0, delayMs), 2 ** 31 - 1));
    unrefTimer(this.#timer);
  }

  /**
   * Runs #check, one at a time: a check waits on storage and on the CAs' renewal information, and two at once
   * could start two workers. A wake during a check (a reload) runs another check right after it.
   */
  async #runCheck(): Promise<void> {
    if (this.#checking) {
      this.#checkAgain = true;
      return;
    }
    this.#checking = true;
    try {
      await this.#check();
      this.#checkFailures = 0;
    } catch (error) {
      // Storage that cannot be read (a shared store down): checked again after a growing delay, or at once
      // when the store answers again (checkNow).
      this.#checkFailures++;
      const delayMs = retryDelayMs(this.#checkFailures, this.#config.acme.retryIntervalMs);
      this.#log.error("certificate check failed", {
        error: errorMessage(error),
        next_check: isoTime(Date.now() + delayMs),
      });
      this.#wake(delayMs);
    } finally {
      this.#checking = false;
      if (this.#checkAgain) {
        this.#checkAgain = false;
        this.#wake(0);
      }
    }
  }

  async #check(): Promise<void> {
    if (this.#worker || this.#stopped) return;
    const config = this.#config;
    const now = Date.now();
    const repository = this.#repository;
    const { certificates, problems } = await repository.loadCertificates();
    for (const problem of problems) this.#log.warn("certificate storage problem", { error: problem });
    let wakeAt = nextCheckAt(now, config.acme.checkIntervalMs);
    wakeAt = Math.min(wakeAt, await this.#storeUnsaved(repository, now));
    const plans = planCertificates(config);
    const advice = await this.#adviseRenewals(plans, certificates, repository);
    const renewals = new Map<string, RenewalTime>();
    const due: string[][] = [];
    const replaces: Array<string | null> = [];
    const known: Array<number | null> = [];
    for (const plan of plans) {
      const key = certKey(plan.names);
      const unsaved = this.#unsaved.get(key);
      if (unsaved && !needsRenewal(unsaved.validity, { now, renewBeforeMs: config.acme.renewBeforeMs })) {
        // Served from memory and waiting for its write: not a reason to order the same names again.
        continue;
      }
      const stored = certificates.find((c) => certKey(c.names) === key);
      // A certificate put there by hand or by certbot is served but not nexo's to renew. (An unmanaged entry
      // without a pair is only a failure record of a certificate nexo has not obtained yet.)
      if (stored && !stored.managed && stored.pair) continue;
      const ari = advice.get(key);
      let renewal: RenewalTime | null = null;
      if (stored?.pair && stored.notBefore && stored.notAfter) {
        const validity = { notBefore: stored.notBefore, notAfter: stored.notAfter };
        renewal = this.#renewalTime(plan.names, validity, ari);
        renewals.set(key, renewal);
        // RFC 9773 §4.3: ask the CA again when its Retry-After (bounded) says.
        if (ari?.nextCheckAt) wakeAt = Math.min(wakeAt, ari.nextCheckAt);
        if (now < renewal.at && !this.#forced.has(key)) {
          wakeAt = Math.min(wakeAt, renewal.at);
          continue;
        }
      }
      const notBefore = Math.max(stored?.nextAttemptAt?.getTime() ?? 0, this.#notBefore.get(key) ?? 0);
      if (notBefore > now && !this.#forced.has(key)) {
        wakeAt = Math.min(wakeAt, notBefore);
        continue;
      }
      due.push(plan.names);
      this.#forced.delete(key);
      // RFC 9773 §5: a renewal at the CA that issued the certificate names it; another CA does not know it.
      const predecessor = stored?.directoryUrl === config.acme.directory ? ari?.replaces ?? null : null;
      replaces.push(predecessor);
      known.push(stored?.pair ? stored.notAfter?.getTime() ?? null : null);
      if (renewal !== null) {
        this.#log.info("certificate renewal due", {
          names: plan.names.join(","),
          renews_at: isoTime(renewal.at),
          source: renewal.source,
          replaces: predecessor ?? undefined,
        });
      }
    }
    this.#renewals = renewals;
    if (due.length === 0) return this.#wake(wakeAt - now);
    // The CAs' renewal information may have taken seconds: a stop meanwhile starts no worker.
    if (this.#stopped) return;
    await this.#runJob(due, { replaces, known });
  }

  /**
   * The CA's renewal information (RFC 9773) for the stored ACME certificates `plans` still need, by
   * certificate key; empty, importing nothing, while cert_dir holds none (most configs at first start, and
   * every `issuer: internal` one never gets here).
   */
  async #adviseRenewals(
    plans: Array<{ names: string[] }>,
    certificates: StoredCertificate[],
    repository: CertRepository,
  ): Promise<Map<string, RenewalAdvice>> {
    const { acme } = this.#config;
    const wanted = new Set(plans.map((plan) => certKey(plan.names)));
    const requests: Array<AdviceRequest & { key: string }> = [];
    for (const cert of certificates) {
      const key = certKey(cert.names);
      const { pair, directoryUrl, notBefore, notAfter } = cert;
      if (!cert.managed || cert.issuer !== "acme" || !wanted.has(key)) continue;
      if (pair === null || directoryUrl === null || notBefore === null || notAfter === null) continue;
      const validity = { notBefore, notAfter };
      requests.push({
        key,
        names: cert.names,
        certPem: pair.certPem,
        location: cert.location,
        directoryUrl,
        validity,
        stored: cert.renewalInfo,
        fixedDueAt: renewalDueAt(validity, acme.renewBeforeMs),
      });
    }
    if (requests.length === 0 && this.#renewalInfo === null) return new Map();
    this.#renewalInfo ??= new (await import("./ari_client.ts")).RenewalInfoClient({ log: this.#log });
    const advice = await this.#renewalInfo.advise(requests, {
      repository,
      checkIntervalMs: acme.checkIntervalMs,
      caCertFor: (directoryUrl) =>
        [{ directory: acme.directory, caCert: acme.caCert }, ...acme.fallbacks]
          .find((ca) => ca.directory === directoryUrl)?.caCert ?? acme.caCert,
    });
    return new Map(requests.map((request, i) => [request.key, advice[i]!]));
  }

  /**
   * When a stored certificate renews: at the time picked in its CA's suggested window while the CA answers
   * (RFC 9773 §4.2), else on the fixed schedule (schedule.ts), whose `renew_before` cap is then noted.
   */
  #renewalTime(names: string[], validity: CertValidity, advice: RenewalAdvice | undefined): RenewalTime {
    const window = advice?.window ?? null;
    if (window !== null) {
      // A CA (or a skewed clock) calling a certificate due right after issuing it would otherwise have it
      // renewed at every check until the CA's duplicate limit stops it: not before a tenth of its lifetime.
      const lifetimeMs = validity.notAfter.getTime() - validity.notBefore.getTime();
      const earliest = validity.notBefore.getTime() +
        Math.min(lifetimeMs * ARI_MIN_AGE_FRACTION, ARI_MIN_AGE_MS);
      return {
        at: Math.max(window.renewAt, earliest),
        source: window.capped ? "ca_window_capped" : "ca_window",
      };
    }
    const renewBeforeMs = this.#config.acme.renewBeforeMs;
    this.#noteRenewalWindow(names, validity, renewBeforeMs);
    return { at: renewalDueAt(validity, renewBeforeMs), source: "fixed" };
  }

  /**
   * Tries to write every chain waiting in memory; returns when to try again (ms since the epoch), or
   * Infinity when none is left. Doubling from retry_interval, as failed orders do.
   */
  async #storeUnsaved(repository: CertRepository, now: number): Promise<number> {
    let retryAt = Infinity;
    for (const [key, unsaved] of this.#unsaved) {
      if (unsaved.nextWriteAt > now) {
        retryAt = Math.min(retryAt, unsaved.nextWriteAt);
        continue;
      }
      try {
        await repository.saveCertificate(unsaved.names, {
          certPem: unsaved.certPem,
          keyPem: unsaved.keyPem,
          issuer: "acme",
          directoryUrl: unsaved.directoryUrl,
        });
        this.#unsaved.delete(key);
        this.#onStored(unsaved.names);
        this.#log.info("certificate stored", {
          names: unsaved.names.join(","),
          after_attempts: unsaved.writes + 1,
        });
      } catch (error) {
        unsaved.writes++;
        unsaved.nextWriteAt = now + retryDelayMs(unsaved.writes, this.#config.acme.retryIntervalMs);
        retryAt = Math.min(retryAt, unsaved.nextWriteAt);
        this.#log.warn("certificate still not stored", {
          names: unsaved.names.join(","),
          error: errorMessage(error),
          next_attempt: isoTime(unsaved.nextWriteAt),
        });
      }
    }
    return retryAt;
  }

  /**
   * Logs once per certificate (and again for a new one) when `renew_before` cannot apply as written to it,
   * with the renewal time that applies instead: the cap is never silent.
   */
  #noteRenewalWindow(names: string[], validity: CertValidity, renewBeforeMs: number): void {
    const key = `${certKey(names)} ${validity.notAfter.getTime()} ${renewBeforeMs}`;
    if (this.#windowNoted.has(key)) return;
    this.#windowNoted.add(key);
    const note = renewalWindowNote(validity.notAfter.getTime() - validity.notBefore.getTime(), renewBeforeMs);
    if (note === null) return;
    this.#log.warn("renewal window capped", {
      names: names.join(","),
      note,
      renews_at: isoTime(renewalDueAt(validity, renewBeforeMs)),
    });
  }

  async #runJob(
    certificates: string[][],
    plan: { replaces: Array<string | null>; known: Array<number | null> },
  ): Promise<void> {
    const settings = await buildWorkerSettings(this.#config, certificates, this.#log);
    const job: ToWorker = { type: "job", jobId: ++this.#jobId, settings, certificates, ...plan };
    this.#log.info("certificate job started", {
      job: job.jobId,
      certificates: certificates.map((c) => c.join("+")).join(" "),
    });
    const permissions = checkedWorkerPermissions(settings);
    this.#jobKeys = new Set(certificates.map(certKey));
    const worker = new Worker(this.#workerUrl, {
      type: "module",
      // deno-lint-ignore no-explicit-any
      deno: { permissions } as any,
    });
    this.#worker = worker;
    worker.onmessage = (event: MessageEvent<FromWorker>) => this.#receive(worker, event.data);
    // What the worker's own handlers (worker_crash.ts) cannot report: it failed to load, for one.
    worker.onerror = (event) => {
      event.preventDefault();
      this.#crashed(worker, event.message);
    };
    worker.postMessage(job);
  }

  #receive(worker: Worker, message: FromWorker): void {
    switch (message.type) {
      case "log":
        this.#log.write(message.level, message.event, message.fields);
        return;
      case "http01": {
        const done = message.action === "publish"
          ? this.#http01.publish(message.token, message.keyAuthorization)
          : this.#http01.withdraw(message.token);
        // Acked either way: a response not served fails the challenge, which the order reports.
        done.catch((error) =>
          this.#log.warn("acme challenge not shared", { action: message.action, error: errorMessage(error) })
        ).finally(() =>
          worker.postMessage({ type: "http01-ack", requestId: message.requestId } satisfies ToWorker)
        );
        return;
      }
      case "issued": {
        const info = parseCertificate(message.certPem);
        this.#store.set({
          certPem: message.certPem,
          keyPem: message.keyPem,
          names: info.names,
          notAfter: info.notAfter,
          source: "acme",
        });
        const key = certKey(message.names);
        this.#notBefore.delete(key);
        this.#onInstalled();
        if (!message.adopted) this.#onOrder("success");
        this.#log.info("certificate installed", {
          names: message.names.join(","),
          not_after: isoTime(info.notAfter),
          issuer: info.issuer,
          obtained_by: message.adopted ? "another instance" : undefined,
        });
        if (message.storeError === null) {
          this.#unsaved.delete(key);
          if (!message.adopted) this.#onStored(message.names);
          return;
        }
        const nextWriteAt = Date.now() + retryDelayMs(1, this.#config.acme.retryIntervalMs);
        this.#unsaved.set(key, {
          names: message.names,
          certPem: message.certPem,
          keyPem: message.keyPem,
          directoryUrl: message.directoryUrl,
          validity: { notBefore: info.notBefore, notAfter: info.notAfter },
          writes: 1,
          nextWriteAt,
        });
        this.#log.warn("certificate kept in memory", {
          names: message.names.join(","),
          error: message.storeError,
          next_attempt: isoTime(nextWriteAt),
          note: "served now; only the write is retried, no new order (a restart would order again)",
        });
        return;
      }
      case "failed":
        this.#onOrder("failure");
        this.#notBefore.set(certKey(message.names), message.nextAttemptAt);
        this.#log.warn("certificate failed", {
          names: message.names.join(","),
          error: message.error,
          problem: message.problemType ?? undefined,
          failures: message.failures,
          next_attempt: isoTime(message.nextAttemptAt),
        });
        return;
      case "done":
        this.#crashes = 0;
        this.#finish(worker, 0);
        return;
      case "crashed":
        this.#crashed(worker, message.error);
        return;
    }
  }

  /** A worker that died: logged, and the job run again on a new one after a growing backoff. */
  #crashed(worker: Worker, error: string): void {
    this.#crashes++;
    const delay = Math.min(CRASH_BACKOFF_MS.first * 2 ** (this.#crashes - 1), CRASH_BACKOFF_MS.max);
    this.#log.error("acme worker crashed", { error, restart_in_ms: delay });
    this.#finish(worker, delay);
  }

  #finish(worker: Worker, delayMs: number): void {
    worker.terminate();
    this.#jobKeys = new Set();
    if (this.#worker === worker) this.#worker = null;
    // The job's garbage on this thread (its messages, the chain parsed and installed, the log lines) goes
    // now, and the young generation it grew is shrunk back (lib/shrink_heap.ts).
    shrinkHeap();
    this.#wake(delayMs);
  }
}

function certKey(names: readonly string[]): string {
  return normalizeCertNames(names).join(",");
}

/**
 * The ACME worker's module: worker.ts beside this file when nexo runs from its sources. In the bundle that
 * `deno task build` writes (what the tasks, the installed launcher and the compiled binary run), this code is
 * in one of dist/'s chunks and the worker is dist/acme_worker.js, bundled on its own.
 */
function defaultWorkerUrl(): URL {
  const fromSources = import.meta.url.endsWith(".ts");
  return new URL(fromSources ? "./worker.ts" : "./acme_worker.js", import.meta.url);
}
