// One ACME job as the worker runs it: the account for the directory (created once, stored, reused), the
// DNS provider checked once per job, then for each certificate: an issuance lock, stale challenge records
// removed, the order, the certificate stored atomically, and the result posted back. A failure is recorded
// in the certificate's meta.json with its next attempt time and never touches a working certificate.
// It knows nothing of Worker messaging beyond the `post` callback, so tests can run it in-process.

import { errorMessage } from "../error_message.ts";
import { Rfc2136DnsProvider } from "../dns/rfc2136.ts";
import { CloudflareDnsProvider } from "../dns/cloudflare.ts";
import { waitForTxt } from "../dns/propagation.ts";
import { challengeRecordName, type DnsProvider } from "../dns/provider.ts";
import { CertRepository } from "../storage/cert_repository.ts";
import { normalizeCertNames } from "../storage/cert_meta.ts";
import { parseCertificate } from "../tls/pem.ts";
import { AcmeError, createAcmeClient, createPrivateKey, ensureAccount } from "./acme_client.ts";
import { issueCertificate } from "./issue.ts";
import { dnsSolver, httpSolver } from "./solvers.ts";
import type { FromWorker, ToWorker, WorkerSettings } from "./messages.ts";
import { classifyAcmeError, retryDelayMs } from "./schedule.ts";

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
  const repository = CertRepository.open({ certDir: settings.certDir, baseDir: settings.baseDir });
  const failAll = async (error: unknown) => {
    for (const names of job.certificates) {
      await reportFailure(names, error, { jobId, settings, repository, post });
    }
  };
  try {
    let client = await accountClient(settings, repository, log);
    let reregistered = false;
    const dns = settings.http01 ? null : dnsProvider(settings);
    await dns?.verify(job.certificates.flat().map(challengeRecordName));
    for (const names of job.certificates) {
      const lock = await repository.lockIssuance(names);
      try {
        for (const fqdn of dns ? new Set(names.map(challengeRecordName)) : []) {
          const removed = await dns!.cleanupStale(fqdn);
          if (removed > 0) log("info", "stale dns records removed", { name: fqdn, count: String(removed) });
        }
        log("info", "certificate order started", { names: names.join(",") });
        const issue = () =>
          issueCertificate(names, {
            client,
            directoryUrl: settings.directoryUrl,
            solver: dns
              ? dnsSolver(dns, (fqdn, value) =>
                waitForTxt(fqdn, value, {
                  resolvers: settings.dnsResolvers,
                  timeoutMs: settings.propagationTimeoutMs,
                }))
              : http01Solver(post),
            keyType: settings.keyType,
            onProgress: (event, fields) => log("info", event, fields),
          });
        const chain = await issue().catch(async (error) => {
          // The CA forgot the account (a reset staging CA, a restarted Pebble): register again, once per
          // job, and retry the order; a second refusal is a real failure.
          if (reregistered || !isAccountGone(error)) throw error;
          reregistered = true;
          client = await accountClient(settings, repository, log, { forgotten: errorMessage(error) });
          return await issue();
        });
        // An issued certificate is never thrown away over a write that failed: ordering again for the same
        // names would spend Let's Encrypt's 5 duplicate certificates a week while the disk stays full. The
        // main thread serves it and retries the write.
        const storeError = await repository.saveCertificate(names, {
          certPem: chain.certPem,
          keyPem: chain.keyPem,
          issuer: "acme",
          directoryUrl: settings.directoryUrl,
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
          directoryUrl: settings.directoryUrl,
        });
      } catch (error) {
        await reportFailure(names, error, { jobId, settings, repository, post });
      } finally {
        await lock.release();
      }
    }
  } catch (error) {
    await failAll(error);
  }
  post({ type: "done", jobId });
}

/** RFC 8555 §7.3.1, §6.7: the account a request was signed for is unknown to the server. */
const ACCOUNT_DOES_NOT_EXIST = "urn:ietf:params:acme:error:accountDoesNotExist";

function isAccountGone(error: unknown): boolean {
  return error instanceof AcmeError && error.problem?.type === ACCOUNT_DOES_NOT_EXIST;
}

/**
 * A client for the stored account of the directory, registering one first when none is stored. With
 * `forgotten` (why the server refused the stored one), the stored URL is dropped and the same key is
 * registered again: the server made a new account for it, whose URL replaces the old one.
 */
async function accountClient(
  settings: WorkerSettings,
  repository: CertRepository,
  log: (level: "info" | "warn", event: string, fields: Record<string, string>) => void,
  options: { forgotten?: string } = {},
) {
  const stored = await repository.loadAccount(settings.directoryUrl);
  const keyPem = stored?.keyPem ?? await createPrivateKey("ecdsa");
  const storedUrl = options.forgotten === undefined ? stored?.url ?? null : null;
  const client = createAcmeClient({
    directoryUrl: settings.directoryUrl,
    accountKeyPem: keyPem,
    accountUrl: storedUrl,
    caCertsPem: settings.caCertsPem,
    eab: settings.eab,
  });
  if (!storedUrl) {
    // RFC 8555 §7.3: registering an existing key returns that account, so a key whose account URL was lost
    // (a crash between the two writes) finds its account again instead of burning a new registration.
    const url = await ensureAccount(client, settings.email, settings.directoryUrl, settings.eab !== null);
    await repository.saveAccount(settings.directoryUrl, { keyPem, url, email: settings.email });
    if (options.forgotten !== undefined) {
      log("warn", "acme account re-registered", {
        directory: settings.directoryUrl,
        previous: stored?.url ?? "",
        account: url,
        reason: options.forgotten,
      });
    } else {
      log("info", stored ? "acme account recovered" : "acme account created", {
        directory: settings.directoryUrl,
      });
    }
  }
  return client;
}

function dnsProvider(settings: WorkerSettings): DnsProvider {
  if (settings.rfc2136) {
    const { server, keyName, algorithm, secretBase64, zone } = settings.rfc2136;
    return new Rfc2136DnsProvider({
      server,
      key: { name: keyName, algorithm, secret: Uint8Array.fromBase64(secretBase64) },
      zone,
    });
  }
  if (!settings.cloudflare) {
    throw new Error(
      "No way to answer ACME challenges: add a cloudflare: or dns: block (DNS-01, needed for " +
        "wildcards) or set http_listen to a port the CA reaches as port 80 (HTTP-01)",
    );
  }
  return new CloudflareDnsProvider({
    apiToken: settings.cloudflare.apiToken,
    apiBase: settings.cloudflare.apiBase,
    zoneId: settings.cloudflare.zoneId,
  });
}

async function reportFailure(
  names: string[],
  error: unknown,
  context: { jobId: number; settings: WorkerSettings; repository: CertRepository; post: Post },
): Promise<void> {
  const message = errorMessage(error);
  const problem = error instanceof AcmeError ? error.problem : null;
  const classified = problem ? classifyAcmeError(problem) : null;
  const retryAfterMs = problem?.retryAfterMs ?? classified?.retryAfterMs ??
    (error as { retryAfterMs?: number | null }).retryAfterMs ?? null;
  const known = (await context.repository.loadCertificates().catch(() => ({ certificates: [] }))).certificates
    .find((c) => sameNames(c.names, names));
  const failures = (known?.failures ?? 0) + 1;
  const nextAttemptAt = Date.now() +
    retryDelayMs(failures, context.settings.retryIntervalMs, retryAfterMs === null ? {} : { retryAfterMs });
  try {
    await context.repository.recordFailure(names, { error: message, nextAttemptAt: new Date(nextAttemptAt) });
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
  context.post({
    type: "failed",
    jobId: context.jobId,
    names,
    error: message,
    problemType: problem?.type ?? null,
    retryAfterMs,
    nextAttemptAt,
    failures,
  });
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  const x = normalizeCertNames(a).join(",");
  return x === normalizeCertNames(b).join(",");
}
