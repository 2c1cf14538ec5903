// One ACME job as the worker runs it: the DNS providers checked once per job (worker_dns.ts), then for each
// certificate: an issuance lock, stale challenge records removed, the order from the first CA that issues
// (issuers.ts), the certificate stored atomically, and the result posted back. A failure is recorded
// in the certificate's meta.json with its next attempt time and never touches a working certificate.
// It knows nothing of Worker messaging beyond the `post` callback, so tests can run it in-process.

import { errorMessage } from "../error_message.ts";
import { waitForTxt } from "../dns/propagation.ts";
import { challengeRecordName, providerRecordName } from "../dns/provider.ts";
import { CertRepository } from "../storage/cert_repository.ts";
import type { StorageLock } from "../storage/storage.ts";
import { normalizeCertNames } from "../storage/cert_meta.ts";
import { parseCertificate } from "../tls/pem.ts";
import { AcmeError } from "./acme_client.ts";
import { Issuers } from "./issuers.ts";
import { dnsSolver, httpSolver } from "./solvers.ts";
import type { FromWorker, ToWorker, WorkerSettings } from "./messages.ts";
import { classifyAcmeError, retryDelayMs } from "./schedule.ts";
import { checkServersFor, checkValueLimit, dnsProviders, noChallengeMethod } from "./worker_dns.ts";

type Post = (message: FromWorker) => void;
type Job = Extract<ToWorker, { type: "job" }>;

/** HTTP-01 responses are served by the main thread; each publish/withdraw waits for its ack. */
const pendingAcks = new Map<number, () => void>();
let nextRequestId = 0;

/** Delivers a main-thread message that is not a job (an HTTP-01 ack). */
export function receiveAck(message: ToWorker): void {
  if (message.type !== "http01-ack") return;
  pendingAcks.get(message.requestId)?.();
  pendingAcks.delete(message.requestId);
}

function http01Solver(post: Post) {
  const ask = (action: "publish" | "withdraw", token: string, keyAuthorization: string) =>
    new Promise<void>((resolve) => {
      const requestId = ++nextRequestId;
      pendingAcks.set(requestId, resolve);
      post({ type: "http01", requestId, action, token, keyAuthorization });
    });
  return httpSolver({
    publish: (token, keyAuthorization) => ask("publish", token, keyAuthorization),
    withdraw: (token) => ask("withdraw", token, ""),
  });
}

/** Runs `job` to the end, posting `issued`/`failed` per certificate, `log` lines, then `done`. Never throws. */
export async function runJob(job: Job, post: Post): Promise<void> {
  const { settings, jobId } = job;
  const log = (level: "info" | "warn", event: string, fields: Record<string, string>) =>
    post({ type: "log", level, event, fields });
  const startedAt = Date.now();
  const store = await openStore(settings).catch((error) => error as Error);
  if (store instanceof Error) {
    // Nothing can be recorded without the store: every certificate fails now and is tried again later.
    for (const names of job.certificates) {
      post(failedMessage(names, store, { jobId, settings, failures: 1 }));
    }
    post({ type: "done", jobId });
    return;
  }
  const { repository } = store;
  const failAll = async (error: unknown) => {
    for (const names of job.certificates) {
      await reportFailure(names, error, { jobId, settings, repository, post });
    }
  };
  try {
    const zoned = settings.dns === null ? null : await dnsProviders(settings);
    // Certificates whose every name a DNS provider serves use DNS-01; the rest HTTP-01 when http_listen is set.
    const viaDns = (names: string[]) => zoned !== null && names.every((name) => zoned.serves(name));
    const dnsNames = job.certificates.filter(viaDns).flat();
    const issuers = new Issuers(settings, repository, log);
    for (const [index, names] of job.certificates.entries()) {
      let lock: StorageLock;
      try {
        lock = await repository.lockIssuance(names);
      } catch (error) {
        // The store stopped answering: this certificate fails, the ones done before it stay done.
        await reportFailure(names, error, { jobId, settings, repository, post });
        continue;
      }
      try {
        // Another instance sharing the store may have got it, or failed it, while this one waited for the lock.
        const shared = await sharedOutcome(repository, names, { known: job.known?.[index], startedAt });
        if (shared?.kind === "adopted") {
          post({ ...shared.message, jobId });
          log("info", "certificate obtained by another instance", { names: names.join(",") });
          continue;
        }
        if (shared?.kind === "failed") {
          const { error, failures, nextAttemptAt } = shared;
          post(failedMessage(names, error, { jobId, settings, failures, nextAttemptAt }));
          continue;
        }
        const dns = viaDns(names) ? zoned!.provider : null;
        if (dns === null && !settings.http01) throw new Error(noChallengeMethod(names, settings));
        if (dns !== null) {
          await zoned!.verify(names, dnsNames);
          checkValueLimit(names, zoned!);
        }
        for (const fqdn of dns ? new Set(names.map(challengeRecordName)) : []) {
          const removed = await dns!.cleanupStale(fqdn);
          if (removed > 0) log("info", "stale dns records removed", { name: fqdn, count: String(removed) });
        }
        log("info", "certificate order started", { names: names.join(",") });
        const { chain, directoryUrl } = await issuers.issue(names, {
          solver: dns
            ? dnsSolver(dns, (fqdn, value) =>
              // acme-dns keeps the value at its own domain, where the CA's CNAME lookup ends.
              waitForTxt(providerRecordName(dns, fqdn), value, {
                resolvers: checkServersFor(fqdn, settings),
                timeoutMs: settings.propagationTimeoutMs,
              }))
            : http01Solver(post),
          replaces: job.replaces?.[index] ?? null,
        });
        // An issued certificate is never thrown away over a write that failed: ordering again for the same
        // names would spend Let's Encrypt's 5 duplicate certificates a week while the disk stays full. The
        // main thread serves it and retries the write.
        const storeError = await repository.saveCertificate(names, {
          certPem: chain.certPem,
          keyPem: chain.keyPem,
          issuer: "acme",
          directoryUrl,
        }).then(() => null, (error) => errorMessage(error));
        const info = parseCertificate(chain.certPem);
        post({
          type: "issued",
          jobId,
          names,
          certPem: chain.certPem,
          keyPem: chain.keyPem,
          notAfter: info.notAfter.getTime(),
          storeError,
          directoryUrl,
          adopted: false,
        });
      } catch (error) {
        await reportFailure(names, error, { jobId, settings, repository, post });
      } finally {
        await lock.release();
      }
    }
  } catch (error) {
    await failAll(error);
  } finally {
    store.close();
  }
  post({ type: "done", jobId });
}

/** The job's certificate store: the shared one (`storage:`, imported only then) or cert_dir and base_dir. */
async function openStore(
  settings: WorkerSettings,
): Promise<{ repository: CertRepository; close(): void }> {
  if (settings.storage === null) {
    return {
      repository: CertRepository.open({ certDir: settings.certDir, baseDir: settings.baseDir }),
      close: () => {},
    };
  }
  return await (await import("../storage/shared_store.ts")).openSharedStore(settings.storage);
}

type SharedOutcome =
  | { kind: "adopted"; message: Omit<Extract<FromWorker, { type: "issued" }>, "jobId"> }
  | { kind: "failed"; error: Error; failures: number; nextAttemptAt: number };

/**
 * What the store says happened to `names` since the main thread planned this job, or null (order it): a
 * certificate newer than the one it planned from (`known`) is adopted; a failure recorded after the job
 * started, with its backoff still running, stands for this instance too. Only instances sharing a store see
 * either, and so one order is made per certificate across them.
 */
async function sharedOutcome(
  repository: CertRepository,
  names: string[],
  options: { known: number | null | undefined; startedAt: number },
): Promise<SharedOutcome | null> {
  if (options.known === undefined) return null;
  const stored = await repository.loadCertificate(names);
  if (stored === null) return null;
  const newer = stored.pair !== null && stored.managed && stored.notAfter !== null &&
    stored.notAfter.getTime() > (options.known ?? Date.now());
  if (newer) {
    const { pair, notAfter, directoryUrl } = stored;
    return {
      kind: "adopted",
      message: {
        type: "issued",
        names,
        certPem: pair!.certPem,
        keyPem: pair!.keyPem,
        notAfter: notAfter!.getTime(),
        storeError: null,
        directoryUrl: directoryUrl ?? "",
        adopted: true,
      },
    };
  }
  const failedAt = stored.lastFailureAt?.getTime() ?? 0;
  const nextAttemptAt = stored.nextAttemptAt?.getTime() ?? 0;
  if (failedAt > options.startedAt && nextAttemptAt > Date.now() && stored.lastError !== null) {
    return {
      kind: "failed",
      error: new Error(`${stored.lastError} (at another instance sharing the store)`),
      failures: stored.failures,
      nextAttemptAt,
    };
  }
  return null;
}

async function reportFailure(
  names: string[],
  error: unknown,
  context: { jobId: number; settings: WorkerSettings; repository: CertRepository; post: Post },
): Promise<void> {
  const known = (await context.repository.loadCertificates().catch(() => ({ certificates: [] }))).certificates
    .find((c) => sameNames(c.names, names));
  const message = failedMessage(names, error, { ...context, failures: (known?.failures ?? 0) + 1 });
  try {
    await context.repository.recordFailure(names, {
      error: message.error,
      nextAttemptAt: new Date(message.nextAttemptAt),
    });
  } catch (recordError) {
    context.post({
      type: "log",
      level: "warn",
      event: "certificate failure not recorded",
      fields: {
        names: names.join(","),
        error: errorMessage(recordError),
      },
    });
  }
  context.post(message);
}

/**
 * The `failed` message for `error`: the next attempt after the backoff for `failures` (the server's
 * Retry-After when it sent one), unless `nextAttemptAt` is given (another instance's record).
 */
function failedMessage(
  names: string[],
  error: unknown,
  context: { jobId: number; settings: WorkerSettings; failures: number; nextAttemptAt?: number },
): Extract<FromWorker, { type: "failed" }> {
  const problem = error instanceof AcmeError ? error.problem : null;
  const classified = problem ? classifyAcmeError(problem) : null;
  const retryAfterMs = problem?.retryAfterMs ?? classified?.retryAfterMs ??
    (error as { retryAfterMs?: number | null }).retryAfterMs ?? null;
  const nextAttemptAt = context.nextAttemptAt ?? Date.now() +
      retryDelayMs(
        context.failures,
        context.settings.retryIntervalMs,
        retryAfterMs === null ? {} : { retryAfterMs },
      );
  return {
    type: "failed",
    jobId: context.jobId,
    names,
    error: errorMessage(error),
    problemType: problem?.type ?? null,
    retryAfterMs,
    nextAttemptAt,
    failures: context.failures,
  };
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  const x = normalizeCertNames(a).join(",");
  return x === normalizeCertNames(b).join(",");
}
