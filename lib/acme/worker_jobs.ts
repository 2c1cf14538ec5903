// One ACME job as the worker runs it: the account for the directory (created once, stored, reused), the
// DNS provider checked once per job, then for each certificate: an issuance lock, stale challenge records
// removed, the order, the certificate stored atomically, and the result posted back. A failure is recorded
// in the certificate's meta.json with its next attempt time and never touches a working certificate.
// It knows nothing of Worker messaging beyond the `post` callback, so tests can run it in-process.

import { errorMessage } from "../error_message.ts";
import { waitForTxt } from "../dns/propagation.ts";
import {
  challengeRecordName,
  type DnsProvider,
  normalizeDnsName,
  providerCapabilities,
  providerRecordName,
} from "../dns/provider.ts";
import { ZonedDnsProvider } from "../dns/zoned.ts";
import { isInZone, providerFor } from "../config/dns_zones.ts";
import { CertRepository } from "../storage/cert_repository.ts";
import { normalizeCertNames } from "../storage/cert_meta.ts";
import { parseCertificate } from "../tls/pem.ts";
import {
  type AcmeClient,
  AcmeError,
  createAcmeClient,
  createPrivateKey,
  ensureAccount,
} from "./acme_client.ts";
import { issueCertificate, type IssuedChain } from "./issue.ts";
import { type ChallengeSolver, dnsSolver, httpSolver } from "./solvers.ts";
import type { FromWorker, ToWorker, WorkerDnsProvider, WorkerSettings } from "./messages.ts";
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
    const zoned = settings.dns === null ? null : await dnsProviders(settings);
    // Certificates whose every name a DNS provider serves use DNS-01; the rest HTTP-01 when http_listen is set.
    const viaDns = (names: string[]) => zoned !== null && names.every((name) => zoned.serves(name));
    const dnsNames = job.certificates.filter(viaDns).flat();
    if (dnsNames.length > 0) await zoned!.provider.verify(dnsNames.map(challengeRecordName));
    const issuers = new Issuers(settings, repository, log);
    for (const [index, names] of job.certificates.entries()) {
      const lock = await repository.lockIssuance(names);
      try {
        const dns = viaDns(names) ? zoned!.provider : null;
        if (dns === null && !settings.http01) throw new Error(noChallengeMethod(names, settings));
        if (dns !== null) checkValueLimit(names, dns);
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

/** One CA as the worker orders from it: `acme.directory` and its settings, or one of `acme.issuers`. */
type Issuer = Pick<WorkerSettings, "directoryUrl" | "eab" | "caCertsPem">;

/**
 * The CAs of a job (`acme.directory`, then `acme.issuers`' others), each with its account client made on
 * first use. A certificate the first CA fails to issue (an ACME error, or the CA unreachable) is ordered from
 * the next, as Caddy falls back from Let's Encrypt to ZeroSSL; a failure on nexo's side (DNS, the disk) is
 * the same at every CA and is not retried elsewhere.
 */
class Issuers {
  readonly #settings: WorkerSettings;
  readonly #repository: CertRepository;
  readonly #log: (level: "info" | "warn", event: string, fields: Record<string, string>) => void;
  readonly #clients = new Map<string, Promise<AcmeClient>>();
  /** Directories whose forgotten account was registered again in this job (once each). */
  readonly #reregistered = new Set<string>();

  constructor(
    settings: WorkerSettings,
    repository: CertRepository,
    log: (level: "info" | "warn", event: string, fields: Record<string, string>) => void,
  ) {
    this.#settings = settings;
    this.#repository = repository;
    this.#log = log;
  }

  /** Orders `names` from each CA in turn until one issues; throws the last CA's error. */
  async issue(
    names: string[],
    options: { solver: ChallengeSolver; replaces: string | null },
  ): Promise<{ chain: IssuedChain; directoryUrl: string }> {
    const { directoryUrl, eab, caCertsPem } = this.#settings;
    const issuers: Issuer[] = [{ directoryUrl, eab, caCertsPem }, ...this.#settings.fallbacks];
    for (const [i, issuer] of issuers.entries()) {
      try {
        // `replaces` names a certificate of the first CA (the supervisor sends it only then); others refuse it.
        const replaces = i === 0 ? options.replaces : null;
        const chain = await this.#issueAt(issuer, names, { solver: options.solver, replaces });
        return { chain, directoryUrl: issuer.directoryUrl };
      } catch (error) {
        const next = issuers[i + 1];
        if (next === undefined || !(error instanceof AcmeError)) throw error;
        this.#log("warn", "certificate issuer failed, trying the next", {
          names: names.join(","),
          directory: issuer.directoryUrl,
          next: next.directoryUrl,
          error: errorMessage(error),
        });
      }
    }
    throw new Error("unreachable: the last issuer's failure is thrown above");
  }

  async #issueAt(
    issuer: Issuer,
    names: string[],
    options: { solver: ChallengeSolver; replaces: string | null },
  ): Promise<IssuedChain> {
    const settings = { ...this.#settings, ...issuer };
    const order = async () =>
      issueCertificate(names, {
        client: await this.#client(settings),
        directoryUrl: issuer.directoryUrl,
        solver: options.solver,
        keyType: settings.keyType,
        replaces: options.replaces,
        onProgress: (event, fields) => this.#log("info", event, fields),
      });
    return await order().catch(async (error) => {
      // The CA forgot the account (a reset staging CA, a restarted Pebble): register again, once per job and
      // CA, and retry the order; a second refusal is a real failure.
      if (this.#reregistered.has(issuer.directoryUrl) || !isAccountGone(error)) throw error;
      this.#reregistered.add(issuer.directoryUrl);
      this.#clients.set(
        issuer.directoryUrl,
        accountClient(settings, this.#repository, this.#log, { forgotten: errorMessage(error) }),
      );
      return await order();
    });
  }

  /** The account client for the CA of `settings`, made (and the account registered) on first use. */
  #client(settings: WorkerSettings): Promise<AcmeClient> {
    let client = this.#clients.get(settings.directoryUrl);
    if (client === undefined) {
      client = accountClient(settings, this.#repository, this.#log);
      // A CA that could not be reached is asked again for the next certificate.
      client.catch(() => this.#clients.delete(settings.directoryUrl));
      this.#clients.set(settings.directoryUrl, client);
    }
    return client;
  }
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

/** The propagation check's servers for the provider serving `fqdn` (see `WorkerSettings.checkServers`). */
function checkServersFor(fqdn: string, settings: WorkerSettings): string[] {
  const name = normalizeDnsName(fqdn).replace(/^_acme-challenge\./, "");
  const zone = settings.dns?.zones.find((entry) => isInZone(name.replace(/^\*\./, ""), entry.zone))?.zone ??
    "";
  return settings.checkServers[zone] ?? [];
}

/**
 * Refuses an order whose challenges cannot all be published at once: a provider keeping N values per name
 * (acme-dns keeps 2 per account) would lose the first values before the CA checks them.
 */
function checkValueLimit(names: string[], dns: DnsProvider): void {
  const limit = providerCapabilities(dns).maxValuesPerName;
  if (limit === null) return;
  const byRecord = new Map<string, number>();
  for (const name of names) {
    const record = providerRecordName(dns, challengeRecordName(name));
    byRecord.set(record, (byRecord.get(record) ?? 0) + 1);
  }
  for (const [record, count] of byRecord) {
    if (count > limit) {
      throw new Error(
        `${
          names.join(", ")
        } need ${count} DNS-01 values at ${record} at once, and its provider keeps ${limit}: ` +
          `give these names their own acme-dns accounts in dns.zones (one per name and its wildcard)`,
      );
    }
  }
}

/** Why `names` cannot be proven: no DNS provider serves one of them, and HTTP-01 is not set up. */
function noChallengeMethod(names: string[], settings: WorkerSettings): string {
  return settings.dns === null
    ? "No way to answer ACME challenges: add a cloudflare: or dns: block (DNS-01, needed for wildcards) or " +
      "set http_listen to a port the CA reaches as port 80 (HTTP-01)"
    : `No DNS provider serves ${
      names.join(", ")
    } (dns.zones covers other names) and http_listen is not set: ` +
      "add the zone to dns.zones, set dns.provider for every other name, or set http_listen (HTTP-01)";
}

/** The DNS providers `settings.dns` names, behind one router, and which names they serve. */
async function dnsProviders(
  settings: WorkerSettings,
): Promise<{ provider: DnsProvider; serves: (name: string) => boolean }> {
  const dns = settings.dns!;
  const built = new Map<WorkerDnsProvider, DnsProvider>();
  if (dns.default !== null) {
    built.set(dns.default, await buildProvider(dns.default, { settings, zone: null }));
  }
  for (const { zone, provider } of dns.zones) {
    built.set(provider, await buildProvider(provider, { settings, zone }));
  }
  const zoned = new ZonedDnsProvider({
    default: dns.default === null ? null : built.get(dns.default)!,
    zones: dns.zones.map((entry) => ({ zone: entry.zone, provider: built.get(entry.provider)! })),
  });
  return {
    provider: dns.zones.length === 0 ? built.get(dns.default!)! : zoned,
    serves: (name) => providerFor(normalizeDnsName(name), dns) !== null,
  };
}

/**
 * One provider, its module loaded only when a config uses it (the worker's memory is the config's). `zone` is
 * its `dns.zones` key, null for the default provider.
 */
async function buildProvider(
  entry: WorkerDnsProvider,
  { settings, zone }: { settings: WorkerSettings; zone: string | null },
): Promise<DnsProvider> {
  switch (entry.provider) {
    case "cloudflare": {
      const { CloudflareDnsProvider } = await import("../dns/cloudflare.ts");
      return new CloudflareDnsProvider({
        apiToken: entry.apiToken,
        apiBase: entry.apiBase,
        zoneId: entry.zoneId,
      });
    }
    case "rfc2136": {
      const { Rfc2136DnsProvider } = await import("../dns/rfc2136.ts");
      const { server, keyName, algorithm, secretBase64, zone } = entry;
      return new Rfc2136DnsProvider({
        server,
        key: { name: keyName, algorithm, secret: Uint8Array.fromBase64(secretBase64) },
        zone,
      });
    }
    case "exec": {
      const { ExecDnsProvider } = await import("../dns/exec.ts");
      const { lookupTxt, lookupZone } = await import("../dns/lookups.ts");
      return new ExecDnsProvider({
        command: entry.command,
        timeoutMs: entry.timeoutMs,
        zone: entry.zone ?? zone,
        lookupTxt: (fqdn) => lookupTxt(fqdn, settings.checkServers[zone ?? ""] ?? []),
        lookupZone: (fqdn) => lookupZone(fqdn, settings.checkServers[zone ?? ""] ?? []),
      });
    }
    case "acme-dns": {
      const { AcmeDnsProvider } = await import("../dns/acme_dns.ts");
      return new AcmeDnsProvider({
        api: entry.api,
        username: entry.username,
        password: entry.password,
        subdomain: entry.subdomain,
        fulldomain: entry.fulldomain,
        domain: zone,
      });
    }
  }
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
