// The main thread's side of ACME: decides which certificates are due (missing, or inside their renewal window,
// and past any backoff), starts the sandboxed worker for one job at a time, installs what it posts into the
// CertStore (new handshakes get the new certificate; open connections keep theirs), and sleeps until the next
// certificate is due or the jittered check interval passes. The worker is not resident between jobs. A
// crashed worker is restarted with backoff. It never blocks serving: everything runs in the background.

import { errorMessage } from "../error_message.ts";
import { DnsLookup, findNameServers, parseResolver } from "../dns/name_servers.ts";
import { challengeRecordName } from "../dns/provider.ts";
import type { Config } from "../config/types.ts";
import { parseTsigSecret } from "../config/tsig_secret.ts";
import type { Logger } from "../log.ts";
import { normalizeCertNames } from "../storage/cert_meta.ts";
import { CertRepository } from "../storage/cert_repository.ts";
import type { CertStore } from "../tls/cert_store.ts";
import { parseCertificate } from "../tls/pem.ts";
import { shrinkHeap } from "../shrink_heap.ts";
import type { FromWorker, ToWorker, WorkerSettings } from "./messages.ts";
import { planCertificates } from "./plan.ts";
import {
  type CertValidity,
  needsRenewal,
  nextCheckAt,
  renewalDueAt,
  renewalWindowNote,
  retryDelayMs,
} from "./schedule.ts";
import { formatAddr } from "../ip_address.ts";

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
  http01: Map<string, string>;
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
  readonly #http01: Map<string, string>;
  readonly #onInstalled: () => void;
  readonly #onOrder: (outcome: "success" | "failure") => void;
  #timer: ReturnType<typeof setTimeout> | undefined;
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

  constructor(options: AcmeSupervisorOptions) {
    this.#config = options.config;
    this.#store = options.store;
    this.#log = options.log;
    this.#workerUrl = options.workerUrl ?? new URL("./worker.ts", import.meta.url);
    this.#http01 = options.http01;
    this.#onInstalled = options.onInstalled ?? (() => {});
    this.#onOrder = options.onOrder ?? (() => {});
  }

  /** Starts the first check in the background. */
  start(): void {
    this.#wake(0);
  }

  /** For /status: whether a worker runs, its job, consecutive crashes, and certificates in backoff. */
  state(): {
    worker: "running" | "idle";
    job: number | null;
    crashes: number;
    backoff: Record<string, string>;
  } {
    return {
      worker: this.#worker ? "running" : "idle",
      job: this.#worker ? this.#jobId : null,
      crashes: this.#crashes,
      backoff: Object.fromEntries([...this.#notBefore].map(([key, at]) => [key, new Date(at).toISOString()])),
    };
  }

  /** Uses `config` from now on (a reload) and checks at once whether new certificates are needed. */
  updateConfig(config: Config): void {
    this.#config = config;
    if (!this.#worker) this.#wake(0);
  }

  /** Stops timers and terminates a running worker (its order is abandoned; the next start resumes). */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#worker?.terminate();
    this.#worker = null;
  }

  #wake(delayMs: number): void {
    clearTimeout(this.#timer);
    if (this.#stopped) return;
    // setTimeout's limit is 2^31-1 ms (24.8 days); a longer sleep just wakes up early and sleeps again.
    this.#timer = setTimeout(() => {
      this.#check().catch((error) => {
        this.#log.error("certificate check failed", {
          error: errorMessage(error),
        });
        this.#wake(this.#config.acme.retryIntervalMs);
      });
    }, Math.min(Math.max(0, delayMs), 2 ** 31 - 1));
    Deno.unrefTimer(this.#timer);
  }

  async #check(): Promise<void> {
    if (this.#worker || this.#stopped) return;
    const config = this.#config;
    const now = Date.now();
    const repository = CertRepository.open({ certDir: config.certDir, baseDir: config.baseDir });
    const { certificates, problems } = await repository.loadCertificates();
    for (const problem of problems) this.#log.warn("certificate storage problem", { error: problem });
    let wakeAt = nextCheckAt(now, config.acme.checkIntervalMs);
    wakeAt = Math.min(wakeAt, await this.#storeUnsaved(repository, now));
    const due: string[][] = [];
    for (const plan of planCertificates(config)) {
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
      if (stored?.pair && stored.notBefore && stored.notAfter) {
        const validity = { notBefore: stored.notBefore, notAfter: stored.notAfter };
        this.#noteRenewalWindow(plan.names, validity, config.acme.renewBeforeMs);
        if (!needsRenewal(validity, { now, renewBeforeMs: config.acme.renewBeforeMs })) {
          wakeAt = Math.min(wakeAt, renewalDueAt(validity, config.acme.renewBeforeMs));
          continue;
        }
      }
      const notBefore = Math.max(stored?.nextAttemptAt?.getTime() ?? 0, this.#notBefore.get(key) ?? 0);
      if (notBefore > now) {
        wakeAt = Math.min(wakeAt, notBefore);
        continue;
      }
      due.push(plan.names);
    }
    if (due.length === 0) return this.#wake(wakeAt - now);
    await this.#runJob(due);
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
          next_attempt: new Date(unsaved.nextWriteAt).toISOString(),
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
      renews_at: new Date(renewalDueAt(validity, renewBeforeMs)).toISOString(),
    });
  }

  async #runJob(certificates: string[][]): Promise<void> {
    const settings = await this.#settings(certificates);
    const job: ToWorker = { type: "job", jobId: ++this.#jobId, settings, certificates };
    this.#log.info("certificate job started", {
      job: job.jobId,
      certificates: certificates.map((c) => c.join("+")).join(" "),
    });
    const permissions = workerPermissions(settings);
    // Deno refuses a worker more than nexo has ("Can't escalate parent thread permissions"): name the flag.
    const missing = missingPermissionFlags(permissions);
    if (missing.length > 0) {
      throw new Error(
        `nexo runs without permissions its ACME worker needs: run it with ${missing.join(" ")} ` +
          "(the compiled binary, deno task start and the README's commands have them)",
      );
    }
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
      case "http01":
        if (message.action === "publish") this.#http01.set(message.token, message.keyAuthorization);
        else this.#http01.delete(message.token);
        worker.postMessage({ type: "http01-ack", requestId: message.requestId } satisfies ToWorker);
        return;
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
        this.#onOrder("success");
        this.#log.info("certificate installed", {
          names: message.names.join(","),
          not_after: info.notAfter.toISOString(),
          issuer: info.issuer,
        });
        if (message.storeError === null) {
          this.#unsaved.delete(key);
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
          next_attempt: new Date(nextWriteAt).toISOString(),
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
          next_attempt: new Date(message.nextAttemptAt).toISOString(),
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
    if (this.#worker === worker) this.#worker = null;
    // The job's garbage on this thread (its messages, the chain parsed and installed, the log lines) goes
    // now, and the young generation it grew is shrunk back (lib/shrink_heap.ts).
    shrinkHeap();
    this.#wake(delayMs);
  }

  async #settings(certificates: string[][]): Promise<WorkerSettings> {
    const { acme, cloudflare, rfc2136 } = this.#config;
    const rfc2136Server = rfc2136 === null ? null : formatAddr(rfc2136.server);
    return {
      directoryUrl: acme.directory,
      caCertsPem: acme.caCert ? [await Deno.readTextFile(acme.caCert)] : [],
      email: this.#config.email,
      certDir: this.#config.certDir,
      baseDir: this.#config.baseDir,
      keyType: acme.keyType,
      eab: acme.eab,
      cloudflare: cloudflare
        ? { apiToken: cloudflare.apiToken, apiBase: cloudflare.apiBase, zoneId: cloudflare.zoneId }
        : null,
      rfc2136: rfc2136 === null ? null : {
        server: rfc2136.server,
        keyName: rfc2136.tsigKey,
        algorithm: rfc2136.tsigAlgorithm,
        // Read for each job (a rotated key applies without a restart); checked when the config loaded.
        secretBase64: parseTsigSecret(await Deno.readTextFile(rfc2136.tsigSecretFile)).secret.toBase64(),
        zone: rfc2136.zone,
      },
      // Without a DNS provider, HTTP-01 through http_listen is the way (no propagation checks then).
      http01: cloudflare === null && rfc2136 === null && this.#config.httpListen !== null,
      // RFC 2136 updates go to a primary that is authoritative itself (and may be a private one no public NS
      // record names): records are checked there and at the zone's public servers if it has any (a hidden
      // primary's secondaries lag), unless acme.dns_resolvers says where.
      dnsResolvers: acme.dnsResolvers.length > 0
        ? acme.dnsResolvers
        : rfc2136Server !== null
        ? [...new Set([rfc2136Server, ...await this.#authoritativeServers(certificates)])]
        : cloudflare === null
        ? []
        : await this.#authoritativeServers(certificates),
      retryIntervalMs: acme.retryIntervalMs,
      propagationTimeoutMs: acme.propagationTimeoutMs,
    };
  }

  /**
   * The authoritative nameservers of every certificate's zone, as "address:53", looked up here so that the
   * worker's network permission can list them. A lookup that fails leaves the list shorter: the worker's
   * propagation check then reports which record it could not see.
   */
  async #authoritativeServers(certificates: string[][]): Promise<string[]> {
    const servers = new Set<string>();
    const lookup = new DnsLookup({
      resolveDns: Deno.resolveDns,
      queryTimeoutMs: 5_000,
      deadline: Date.now() + 30_000,
      now: Date.now,
      signal: undefined,
    });
    for (const name of new Set(certificates.flat().map(challengeRecordName))) {
      try {
        for (const server of await findNameServers(name, { resolvers: [], zone: undefined, lookup })) {
          servers.add(formatAddr({ hostname: server.ipAddr, port: server.port }));
        }
      } catch (error) {
        this.#log.warn("nameserver lookup failed", {
          name,
          error: errorMessage(error),
        });
      }
    }
    return [...servers];
  }
}

/** A worker's Deno permissions, as `new Worker(..., { deno: { permissions } })` takes them. */
export interface WorkerPermissions {
  net: string[];
  read: string[];
  write: string[];
  env: false;
  run: false;
  ffi: false;
  sys: string[];
  import: false;
}

/**
 * The worker's permissions: network only to the ACME server, the DNS API and the DNS servers it polls;
 * files only under base_dir and cert_dir; the system's CA store; nothing else (no env, run, ffi).
 */
export function workerPermissions(settings: WorkerSettings): WorkerPermissions {
  const net = new Set<string>([hostPort(settings.directoryUrl)]);
  if (settings.cloudflare) net.add(hostPort(settings.cloudflare.apiBase));
  if (settings.rfc2136) net.add(formatAddr(settings.rfc2136.server));
  for (const resolver of settings.dnsResolvers) {
    const { host, port } = parseResolver(resolver);
    net.add(formatAddr({ hostname: host, port }));
  }
  return {
    net: [...net],
    read: [settings.baseDir, settings.certDir],
    write: [settings.baseDir, settings.certDir],
    env: false,
    run: false,
    ffi: false,
    // node:https (under acme-client) reads the system's trusted CA certificates to verify the ACME server.
    sys: ["ca"],
    import: false,
  };
}

/** The `--allow-*` flags this process lacks for `permissions` (as workerPermissions() returns them). */
export function missingPermissionFlags(permissions: WorkerPermissions): string[] {
  const missing: string[] = [];
  const granted = (descriptor: Deno.PermissionDescriptor) =>
    Deno.permissions.querySync(descriptor).state === "granted";
  const hosts = permissions.net.filter((host) => !granted({ name: "net", host }));
  if (hosts.length > 0) missing.push(`--allow-net=${hosts.join(",")}`);
  for (const name of ["read", "write"] as const) {
    const paths = permissions[name].filter((path) => !granted({ name, path }));
    if (paths.length > 0) missing.push(`--allow-${name}=${paths.join(",")}`);
  }
  // "ca" (the system's trusted certificates) is a kind Deno 2.9.6 accepts but does not type.
  const sys = permissions.sys.filter((kind) => !granted({ name: "sys", kind } as Deno.PermissionDescriptor));
  if (sys.length > 0) missing.push("--allow-sys");
  return missing;
}

function hostPort(url: string): string {
  const parsed = new URL(url);
  const port = parsed.port || (parsed.protocol === "https:" ? "443" : "80");
  return `${parsed.hostname}:${port}`;
}

function certKey(names: readonly string[]): string {
  return normalizeCertNames(names).join(",");
}
